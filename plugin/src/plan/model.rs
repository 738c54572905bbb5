//! The plan's types: what applying each object means, and a plan's summary, saving and loading.

use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cluster::preview::RedisPreview;
use crate::k8s;

/// What applying one object means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Add,
    Change,
    /// An immutable field changes: the object must be deleted and created again.
    Replace,
    Unchanged,
    /// Owned by the spec's ApplySet but no longer declared: apply deletes it.
    Destroy,
    /// A volume no longer declared; kept because volumes may hold data (`--delete-volumes`).
    Keep,
}

/// Fields another field manager owns that this apply would set to a different value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub manager: String,
    pub field: String,
}

/// Fields of the live object that another manager set and the spec does not mention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    pub manager: String,
    pub operation: String,
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectPlan {
    pub action: Action,
    /// The rendered object, exactly as `apply` will send it.
    pub desired: Value,
    /// The live object as read, without server bookkeeping; absent when it does not exist.
    pub live: Option<Value>,
    /// What the server would store after the apply (dry run), without server bookkeeping.
    pub planned: Option<Value>,
    pub live_resource_version: Option<String>,
    #[serde(default)]
    pub conflicts: Vec<Conflict>,
    #[serde(default)]
    pub drift: Vec<Drift>,
    /// Why a replace is needed and what happens to data, for replace plans.
    pub consequence: Option<String>,
    /// `file:line` of the spec document this object comes from.
    pub source: String,
    /// It exists and kubectl-redis does not manage it: applying puts it under this spec, which
    /// `apply` does only with `--adopt`.
    #[serde(default)]
    pub adopt: bool,
}

impl ObjectPlan {
    pub fn describe(&self) -> String {
        k8s::describe_object(&self.desired)
    }
    pub fn kind(&self) -> &str {
        self.desired["kind"].as_str().unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Saved plans carry a format tag so an old binary never misreads a new file.
    pub format: String,
    pub spec_name: String,
    pub namespace: String,
    pub objects: Vec<ObjectPlan>,
    /// What the Redis step will do to each cluster, seen at plan time.
    #[serde(default)]
    pub redis: Vec<RedisPreview>,
}

pub const PLAN_FORMAT: &str = "kubectl-redis.io/plan/v1";

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub replace: usize,
    pub destroy: usize,
    /// Existing objects the apply takes under its management (counted in `change` too when
    /// their fields change, as Terraform counts an import).
    pub adopt: usize,
}

impl Summary {
    pub fn has_changes(&self) -> bool {
        self.add + self.change + self.replace + self.destroy + self.adopt > 0
    }

    /// Counts one object that gets `action`.
    pub fn count(&mut self, action: Action) {
        match action {
            Action::Add => self.add += 1,
            Action::Change => self.change += 1,
            Action::Replace => self.replace += 1,
            Action::Destroy => self.destroy += 1,
            Action::Unchanged | Action::Keep => {}
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let adopt = match self.adopt {
            0 => String::new(),
            n => format!("{n} to adopt, "),
        };
        write!(
            f,
            "Plan: {adopt}{} to add, {} to change, {} to replace, {} to destroy.",
            self.add, self.change, self.replace, self.destroy
        )
    }
}

impl Plan {
    /// Whether `apply` would do anything: write an object or run a Redis step.
    pub fn has_work(&self) -> bool {
        self.summary().has_changes() || self.redis.iter().any(RedisPreview::has_work)
    }

    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for object in &self.objects {
            summary.count(object.action);
            summary.adopt += usize::from(object.adopt);
        }
        summary
    }

    /// What becomes of each volume the plan keeps (no longer declared, or not destroyed).
    pub fn kept_volumes(&self) -> Vec<String> {
        self.objects
            .iter()
            .filter(|o| o.action == Action::Keep && o.kind() != "Namespace")
            .map(|o| volume_fate(&o.desired))
            .collect()
    }

    /// Writes the plan for a later `apply PLANFILE`. It holds the rendered objects, secrets
    /// included, so only its owner may read it.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let text = serde_json::to_vec_pretty(self)?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot write the plan to {}", path.display()))?;
        file.write_all(&text)?;
        Ok(())
    }

    pub fn load(path: &Path) -> anyhow::Result<Plan> {
        let text = std::fs::read(path)
            .with_context(|| format!("cannot read the plan file {}", path.display()))?;
        let plan: Plan = serde_json::from_slice(&text).with_context(|| {
            format!(
                "{} is not a plan written by `kubectl redis plan --out`",
                path.display()
            )
        })?;
        anyhow::ensure!(
            plan.format == PLAN_FORMAT,
            "{} has plan format `{}`; this kubectl-redis reads `{PLAN_FORMAT}`",
            path.display(),
            plan.format
        );
        Ok(plan)
    }
}

/// What deleting a volume object does to the data on it, from its reclaim policy.
pub fn volume_fate(object: &Value) -> String {
    let name = k8s::describe_object(object);
    match object["kind"].as_str() {
        Some("PersistentVolume") => {
            let policy = object["spec"]["persistentVolumeReclaimPolicy"]
                .as_str()
                .unwrap_or("Retain");
            let place = match object["spec"]["hostPath"]["path"].as_str() {
                Some(path) => format!("hostPath {path} on its node"),
                None => "its backing storage".to_string(),
            };
            match policy {
                "Retain" => format!("{name} has reclaimPolicy Retain: its data stays in {place}."),
                other => format!(
                    "{name} has reclaimPolicy {other}: deleting it ERASES the data in {place}."
                ),
            }
        }
        _ => {
            let volume = object["spec"]["volumeName"]
                .as_str()
                .unwrap_or("its volume");
            format!(
                "{name} is bound to {volume}: deleting the claim releases the volume, whose reclaim \
                 policy decides whether the data survives."
            )
        }
    }
}

/// Drops what the server fills in and nobody writes: bookkeeping, status, managedFields.
pub fn normalize(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "selfLink",
        ] {
            metadata.remove(field);
        }
        if let Some(annotations) = metadata
            .get_mut("annotations")
            .and_then(Value::as_object_mut)
        {
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
            if annotations.is_empty() {
                metadata.remove("annotations");
            }
        }
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalize_drops_server_bookkeeping_only() {
        let live = json!({"kind": "ConfigMap", "metadata": {"name": "c", "uid": "u", "resourceVersion": "7",
            "creationTimestamp": "t", "generation": 2, "managedFields": [], "labels": {"a": "b"}},
            "data": {"k": "v"}, "status": {"x": 1}});
        assert_eq!(
            normalize(&live),
            json!({"kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "b"}}, "data": {"k": "v"}})
        );
    }

    #[test]
    fn summary_line_reads_like_terraform() {
        let summary = Summary {
            add: 9,
            change: 0,
            replace: 0,
            destroy: 0,
            adopt: 0,
        };
        assert_eq!(
            summary.to_string(),
            "Plan: 9 to add, 0 to change, 0 to replace, 0 to destroy."
        );
        let adopting = Summary {
            change: 1,
            adopt: 1,
            ..summary
        };
        assert_eq!(
            adopting.to_string(),
            "Plan: 1 to adopt, 9 to add, 1 to change, 0 to replace, 0 to destroy."
        );
        assert!(Summary {
            adopt: 1,
            ..Summary::default()
        }
        .has_changes());
    }
}
