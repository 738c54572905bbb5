//! Plan: what `apply` would change in the live cluster, computed by the API server itself.
//!
//! For every rendered object the plugin reads the live object and, at the same time, asks the
//! server for a dry-run server-side apply with its field manager. The dry run's answer is what
//! the server would store (defaults, admission and merge strategies included), so comparing it
//! with the live object gives an exact plan. Objects are planned concurrently, a bounded number
//! at a time (`fanout`): the wall time is about two round trips per batch of objects.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context as _;
use kube::api::{Patch, PatchParams};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cluster::preview::{RedisPreview, RedisStep};
use crate::cluster::step::{self, Via};
use crate::k8s::{self, ConnectOptions, Connection, InvalidCause, FIELD_MANAGER};
use crate::ownership;
use crate::policy::{PolicyOptions, Report};
use crate::render::{self, Bundle, RenderedObject};
use crate::report::redact;
use crate::report::style::Style;
use crate::spec;

/// A plan ready to show or apply, with the connection it was computed over.
pub struct Prepared {
    pub connection: Connection,
    pub plan: Plan,
    /// Warn-level policy findings (they do not block; `check` lists them).
    pub policy_warnings: usize,
}

/// How far [`prepare`] got.
pub enum Preparation {
    Ready(Prepared),
    /// Deny-level policy findings: nothing was planned, the cluster was not read.
    Blocked(Report),
}

/// The shared front half of `plan` and `apply`: load, render, check policies, compute the plan
/// and, with `redis_via`, preview the Redis step through that transport. Deny-level findings
/// stop it before it reads the cluster.
pub async fn prepare(
    connect: &ConnectOptions,
    namespace: Option<&str>,
    files: &[std::path::PathBuf],
    policy: &PolicyOptions,
    delete_volumes: bool,
    redis_via: Option<Via>,
) -> anyhow::Result<Preparation> {
    let spec = spec::load(files)?;
    let connection = k8s::connect(connect).await?;
    let bundle = render::render(spec, namespace, &connection.default_namespace)?;
    let report = crate::policy::run(&bundle, policy)?;
    if report.blocking() > 0 {
        return Ok(Preparation::Blocked(report));
    }
    let policy_warnings = report.count(crate::policy::Severity::Warn);
    let mut plan = compute(&connection, &bundle, delete_volumes).await?;
    if let Some(via) = redis_via {
        plan.redis = preview_redis(&connection, &plan, via).await;
    }
    Ok(Preparation::Ready(Prepared {
        connection,
        plan,
        policy_warnings,
    }))
}

/// The Redis step's preview for every cluster-mode StatefulSet of the plan.
pub async fn preview_redis(connection: &Connection, plan: &Plan, via: Via) -> Vec<RedisPreview> {
    let mut previews = Vec::new();
    for object in plan.objects.iter().filter(|o| o.kind() == "StatefulSet") {
        if object.action == Action::Destroy {
            continue;
        }
        let live = object.live.as_ref();
        if let Some(preview) = step::preview(
            &connection.client,
            &object.desired,
            live,
            object.planned.as_ref(),
            via,
        )
        .await
        {
            previews.push(preview);
        }
    }
    previews
}

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
}

impl Summary {
    pub fn has_changes(&self) -> bool {
        self.add + self.change + self.replace + self.destroy > 0
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
        write!(
            f,
            "Plan: {} to add, {} to change, {} to replace, {} to destroy.",
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
        }
        summary
    }

    /// What becomes of each volume the plan keeps (no longer declared, or not destroyed).
    pub fn kept_volumes(&self) -> Vec<String> {
        self.objects
            .iter()
            .filter(|o| o.action == Action::Keep)
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

/// Computes the plan for every object of the bundle, and the prune of owned objects the spec no
/// longer declares, all at once.
pub async fn compute(
    connection: &Connection,
    bundle: &Bundle,
    delete_volumes: bool,
) -> anyhow::Result<Plan> {
    let declared = crate::fanout::try_all(
        bundle
            .objects
            .iter()
            .map(|object| plan_object(connection, object)),
    );
    let members = ownership::list_members(connection, &bundle.name, &bundle.namespace);
    let (mut objects, members) = tokio::try_join!(declared, members)?;
    let key = |o: &Value| k8s::describe_object(o);
    let declared_keys: BTreeSet<String> = bundle.objects.iter().map(|o| key(&o.object)).collect();
    let mut pruned: Vec<ObjectPlan> = members
        .into_iter()
        .filter(|member| !declared_keys.contains(&key(member)))
        .map(|member| prune_plan(member, delete_volumes))
        .collect();
    // Reverse dependency order: the StatefulSet goes before what it uses.
    pruned.sort_by_key(|o| std::cmp::Reverse(render::apply_rank(o.kind())));
    objects.extend(pruned);
    Ok(Plan {
        format: PLAN_FORMAT.into(),
        spec_name: bundle.name.clone(),
        namespace: bundle.namespace.clone(),
        objects,
        redis: Vec::new(),
    })
}

async fn plan_object(
    connection: &Connection,
    rendered: &RenderedObject,
) -> anyhow::Result<ObjectPlan> {
    let desired = &rendered.object;
    let api = k8s::api_for(&connection.client, desired)?;
    let name = rendered.name().to_string();
    let explain = |error, verb| k8s::explain(error, verb, desired, &connection.source);

    let patch = Patch::Apply(desired);
    let dry_run_params = PatchParams::apply(FIELD_MANAGER).dry_run();
    let forced_params = dry_run_params.clone().force();
    let read = api.get_opt(&name);
    let dry_run = api.patch(&name, &dry_run_params, &patch);
    let (live, dry_run) = tokio::join!(read, dry_run);
    let live = live.map_err(|e| explain(e, "get"))?;
    let live = live
        .map(|object| serde_json::to_value(object).expect("API objects serialize"))
        .map(|object| {
            let version = object["metadata"]["resourceVersion"]
                .as_str()
                .map(str::to_string);
            (object, version)
        });

    let mut conflicts = Vec::new();
    let mut consequence = None;
    let planned = match dry_run {
        Ok(object) => Some(serde_json::to_value(object).expect("API objects serialize")),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            conflicts = conflicts_of(&status);
            // Ask again with force to learn what the apply would store if the user takes over.
            let forced = api
                .patch(&name, &forced_params, &patch)
                .await
                .map_err(|e| explain(e, "patch"))?;
            Some(serde_json::to_value(forced).expect("API objects serialize"))
        }
        Err(kube::Error::Api(status)) if status.code == 422 => {
            let causes = k8s::invalid_causes(&status);
            let (immutable, invalid): (Vec<_>, Vec<_>) =
                causes.into_iter().partition(InvalidCause::is_immutable);
            // Only an immutable field is cured by deleting and creating the object; any other
            // cause (or none given) would fail the create just the same, after the delete.
            if live.is_none() || immutable.is_empty() || !invalid.is_empty() {
                return Err(InvalidObject {
                    object: k8s::describe_object(desired),
                    origin: format!("{}:{}", rendered.origin.file, rendered.origin.line),
                    live: live.is_some(),
                    server_message: status.message.clone(),
                    causes: invalid,
                    immutable: immutable.len(),
                }
                .into());
            }
            consequence = Some(replace_consequence(desired, &immutable));
            None
        }
        Err(error) => return Err(explain(error, "patch")),
    };

    let (live, live_resource_version) = match live {
        Some((object, version)) => (Some(object), version),
        None => (None, None),
    };
    let drift = live
        .as_ref()
        .map(|l| drift_of(l, desired))
        .unwrap_or_default();
    let live = live.map(|l| normalize(&l));
    let planned = planned.map(|p| normalize(&p));
    let action = match (&live, &planned) {
        (None, _) => Action::Add,
        (Some(_), None) => Action::Replace,
        (Some(live), Some(planned)) if live == planned => Action::Unchanged,
        (Some(_), Some(_)) => Action::Change,
    };
    Ok(ObjectPlan {
        action,
        desired: desired.clone(),
        live,
        planned,
        live_resource_version,
        conflicts,
        drift,
        consequence,
        source: format!("{}:{}", rendered.origin.file, rendered.origin.line),
    })
}

/// The plan entry for an owned object the spec no longer declares.
fn prune_plan(member: Value, delete_volumes: bool) -> ObjectPlan {
    let is_volume = matches!(
        member["kind"].as_str(),
        Some("PersistentVolume" | "PersistentVolumeClaim")
    );
    let (action, consequence) = if is_volume && !delete_volumes {
        (
            Action::Keep,
            Some(format!(
                "{} Pass --delete-volumes to delete it.",
                volume_fate(&member)
            )),
        )
    } else if is_volume {
        (Action::Destroy, Some(volume_fate(&member)))
    } else {
        (Action::Destroy, None)
    };
    let source = format!(
        "owned by kubectl-redis ({})",
        member["metadata"]["labels"][crate::ownership::INSTANCE_LABEL]
            .as_str()
            .unwrap_or_default()
    );
    ObjectPlan {
        action,
        live_resource_version: member["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_string),
        live: Some(normalize(&member)),
        desired: normalize(&member),
        planned: None,
        conflicts: Vec::new(),
        drift: Vec::new(),
        consequence,
        source,
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

/// Reads the conflicting managers and fields out of a 409's causes, as the API server words
/// them (`conflict with "other": .spec.replicas`).
fn conflicts_of(status: &kube::core::Status) -> Vec<Conflict> {
    let causes = status
        .details
        .as_ref()
        .map(|d| d.causes.clone())
        .unwrap_or_default();
    let mut conflicts: Vec<Conflict> = causes
        .iter()
        .map(|cause| {
            let manager = cause
                .message
                .split('"')
                .nth(1)
                .unwrap_or("another field manager")
                .to_string();
            Conflict {
                manager,
                field: cause.field.clone(),
            }
        })
        .collect();
    if conflicts.is_empty() {
        conflicts.push(Conflict {
            manager: "another field manager".into(),
            field: status.message.clone(),
        });
    }
    conflicts
}

/// The API server refuses an object for a reason a replace would not cure: the plan stops
/// before anything is written, naming the object, the fields and the server's words.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.describe())]
pub struct InvalidObject {
    /// `StatefulSet default/redis`.
    pub object: String,
    /// `file:line` of the spec document.
    pub origin: String,
    /// Whether the object exists, so that a replace was a possibility.
    pub live: bool,
    /// The Status message, for a 422 that gives no causes.
    pub server_message: String,
    /// The causes that are not immutable fields.
    pub causes: Vec<InvalidCause>,
    /// How many causes were immutable fields (which alone would plan a replace).
    pub immutable: usize,
}

impl InvalidObject {
    fn describe(&self) -> String {
        let reasons = if self.causes.is_empty() {
            self.server_message.clone()
        } else {
            self.causes
                .iter()
                .map(InvalidCause::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        };
        let replace = if self.live {
            " for a reason that replacing it would not cure"
        } else {
            ""
        };
        let immutable = match self.immutable {
            0 => String::new(),
            n => format!("\n  (and {n} change(s) to immutable fields, which would need a replace)"),
        };
        format!(
            "{} ({}) is invalid: the API server refuses it (422){replace}:\n  {reasons}{immutable}\n\
             Nothing was written; fix the spec and plan again",
            self.object, self.origin
        )
    }
}

/// What replacing an object does to the data it stands for, in words.
fn replace_consequence(desired: &Value, immutable: &[InvalidCause]) -> String {
    let what = k8s::describe_object(desired);
    let fields = immutable
        .iter()
        .map(InvalidCause::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let why = format!("the API server refuses an in-place update ({fields})");
    match desired["kind"].as_str().unwrap_or_default() {
        "StatefulSet" => format!(
            "{why}. {what} will be deleted with its pods orphaned (they keep running) and created \
             again; the new StatefulSet adopts the pods and then rolls them. Existing claims and \
             their volumes are kept with all their data at their current size: a new \
             volumeClaimTemplate applies only to claims created from now on."
        ),
        "PersistentVolume" => format!(
            "{why}. {what} will be deleted and created again. With reclaimPolicy Retain the data \
             stays where it is on the node (hostPath) or in the backing store, and the new volume \
             must point at it; with Delete it is erased."
        ),
        "PersistentVolumeClaim" => format!(
            "{why}. {what} will be deleted and created again: with its volume's reclaimPolicy \
             Delete its DATA IS LOST; with Retain the old volume is released and must be bound \
             again by hand."
        ),
        _ => format!("{why}. {what} will be deleted and created again; it holds no data."),
    }
}

/// Kubernetes' own controllers fill in fields (a PV's claimRef uid, binding annotations) as part
/// of normal operation; that is not drift a user needs to hear about.
const CONTROLLERS: [&str; 4] = [
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-apiserver",
];

/// Leaf fields owned by managers other than this plugin (outside status) that the spec does not
/// set: changes made outside the spec, which apply leaves alone.
fn drift_of(live: &Value, desired: &Value) -> Vec<Drift> {
    let Some(entries) = live["metadata"]["managedFields"].as_array() else {
        return Vec::new();
    };
    let declared: BTreeSet<String> = field_paths_of_value(desired, "");
    let mut drift: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for entry in entries {
        let manager = entry["manager"].as_str().unwrap_or_default();
        if manager == FIELD_MANAGER
            || CONTROLLERS.contains(&manager)
            || entry["subresource"].as_str() == Some("status")
        {
            continue;
        }
        let mut fields = Vec::new();
        field_paths_of_fieldsv1(&entry["fieldsV1"], "", &mut fields);
        let foreign: Vec<String> = fields
            .into_iter()
            .filter(|f| !f.starts_with(".status") && !declared.iter().any(|d| d == f))
            .collect();
        if !foreign.is_empty() {
            let operation = entry["operation"].as_str().unwrap_or_default().to_string();
            drift
                .entry((manager.to_string(), operation))
                .or_default()
                .extend(foreign);
        }
    }
    drift
        .into_iter()
        .map(|((manager, operation), fields)| Drift {
            manager,
            operation,
            fields,
        })
        .collect()
}

/// Leaf paths of a managedFields `fieldsV1` tree: `f:spec` → `.spec`, `k:{"name":"redis"}` →
/// `[name=redis]`, `v:"x"` → `[x]`.
fn field_paths_of_fieldsv1(tree: &Value, prefix: &str, out: &mut Vec<String>) {
    let Some(map) = tree.as_object() else { return };
    let children: Vec<(&String, &Value)> = map.iter().filter(|(k, _)| k.as_str() != ".").collect();
    if children.is_empty() && !prefix.is_empty() {
        out.push(prefix.to_string());
        return;
    }
    for (key, child) in children {
        let step = if let Some(field) = key.strip_prefix("f:") {
            format!(".{field}")
        } else if let Some(keys) = key.strip_prefix("k:") {
            let parsed: BTreeMap<String, Value> = serde_json::from_str(keys).unwrap_or_default();
            let inner: Vec<String> = parsed
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        v.as_str().map(str::to_string).unwrap_or(v.to_string())
                    )
                })
                .collect();
            format!("[{}]", inner.join(","))
        } else if let Some(value) = key.strip_prefix("v:") {
            format!("[{}]", value.trim_matches('"'))
        } else {
            format!(".{key}")
        };
        field_paths_of_fieldsv1(child, &format!("{prefix}{step}"), out);
    }
}

/// The same path notation for an object's own leaves; list items are keyed by `name`,
/// `containerPort` or `port` when they have one, as Kubernetes merge keys are.
fn field_paths_of_value(value: &Value, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                out.extend(field_paths_of_value(child, &format!("{prefix}.{key}")));
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                let key = ["name", "containerPort", "port", "mountPath"]
                    .iter()
                    .find_map(|k| item.get(*k).map(|v| (k, v)));
                match key {
                    Some((k, v)) => {
                        let v = v.as_str().map(str::to_string).unwrap_or(v.to_string());
                        out.extend(field_paths_of_value(item, &format!("{prefix}[{k}={v}]")));
                    }
                    None => {
                        out.insert(prefix.to_string());
                    }
                }
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
    out
}

/// Options for showing a plan.
pub struct ShowOptions {
    pub style: Style,
    pub show_secrets: bool,
}

/// The plan as text: a unified diff per object that changes, conflicts and drift, and the
/// summary line.
pub fn show(plan: &Plan, options: &ShowOptions) -> String {
    let s = options.style;
    let mut out = String::new();
    for object in &plan.objects {
        let title = object.describe();
        let (sign, header) = match object.action {
            Action::Add => (s.green("+"), format!("{title} will be created")),
            Action::Change => (s.yellow("~"), format!("{title} will be updated in place")),
            Action::Replace => (s.red("-/+"), format!("{title} must be REPLACED")),
            Action::Unchanged if object.drift.is_empty() => continue,
            Action::Unchanged => (s.dim("="), format!("{title} is unchanged")),
            Action::Destroy => (
                s.red("-"),
                format!("{title} will be destroyed (no longer in the spec)"),
            ),
            Action::Keep => (
                s.yellow("="),
                format!("{title} is no longer in the spec but is KEPT"),
            ),
        };
        out.push_str(&format!(
            "{sign} {}  {}\n",
            s.bold(&header),
            s.dim(&object.source)
        ));
        if let Some(consequence) = &object.consequence {
            out.push_str(&format!("    {}\n", s.red(consequence)));
        }
        for conflict in &object.conflicts {
            out.push_str(&format!(
                "    {} {} is owned by field manager \"{}\": apply fails unless --force-conflicts\n",
                s.red("conflict:"),
                conflict.field,
                conflict.manager
            ));
        }
        for drift in &object.drift {
            out.push_str(&format!(
                "    {} \"{}\" ({}) set fields the spec does not mention; apply leaves them: {}\n",
                s.yellow("drift:"),
                drift.manager,
                drift.operation,
                drift.fields.join(", ")
            ));
        }
        if matches!(
            object.action,
            Action::Add | Action::Change | Action::Replace
        ) {
            out.push_str(&diff_text(object, options));
        }
    }
    for preview in &plan.redis {
        if !preview.has_work() {
            continue;
        }
        out.push_str(&format!(
            "{} {}\n",
            s.yellow("~"),
            s.bold(&format!(
                "Redis Cluster {}/{}: the Redis step will",
                preview.namespace, preview.statefulset
            ))
        ));
        for step in &preview.steps {
            let line = step.to_string();
            let line = match step {
                RedisStep::Refused { .. } => s.red(&line),
                _ => line,
            };
            out.push_str(&format!("    {line}\n"));
        }
    }
    let summary = plan.summary();
    let redis = crate::cluster::preview::summary(&plan.redis);
    if !summary.has_changes() {
        out.push_str(if redis.is_some() {
            "The live objects match the spec.\n"
        } else {
            "No changes. The live objects match the spec.\n"
        });
    }
    let line = match redis {
        Some(redis) => format!("{summary} {redis}"),
        None => summary.to_string(),
    };
    out.push_str(&format!("{}\n", s.bold(&line)));
    out
}

/// Unified diff of the live object and what the server would store, as YAML, secrets masked.
fn diff_text(object: &ObjectPlan, options: &ShowOptions) -> String {
    let s = options.style;
    let (before, after) = match (&object.live, &object.planned) {
        (live, Some(planned)) => (live.clone().unwrap_or(Value::Null), planned.clone()),
        // A replace has no dry-run answer: compare the fields the spec declares, so the
        // server's defaults in the live object do not show up as removals.
        (Some(live), None) => {
            let desired = normalize(&object.desired);
            (project(live, &desired), desired)
        }
        (None, None) => (Value::Null, normalize(&object.desired)),
    };
    let as_yaml = |value: &Value| -> String {
        let mut value = value.clone();
        if !options.show_secrets {
            redact::mask_secrets(&mut value);
        }
        match value {
            Value::Null => String::new(),
            value => serde_yaml::to_string(&value).unwrap_or_default(),
        }
    };
    let (before, after) = (as_yaml(&before), as_yaml(&after));
    if before == after {
        return format!(
            "    {}\n",
            s.dim("(only sensitive values differ; pass --show-secrets to see them)")
        );
    }
    let diff = similar::TextDiff::from_lines(&before, &after);
    let mut out = String::new();
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        out.push_str(&format!("    {}\n", s.cyan(&hunk.header().to_string())));
        for change in hunk.iter_changes() {
            let line = change.to_string_lossy();
            let line = line.trim_end_matches('\n');
            let text = match change.tag() {
                similar::ChangeTag::Delete => s.red(&format!("-{line}")),
                similar::ChangeTag::Insert => s.green(&format!("+{line}")),
                similar::ChangeTag::Equal => format!(" {line}"),
            };
            out.push_str(&format!("    {text}\n"));
        }
    }
    out
}

/// The parts of `live` that `shape` has: same keys in objects, same indexes in arrays.
fn project(live: &Value, shape: &Value) -> Value {
    match (live, shape) {
        (Value::Object(live), Value::Object(shape)) => Value::Object(
            shape
                .iter()
                .filter_map(|(key, child)| Some((key.clone(), project(live.get(key)?, child))))
                .collect(),
        ),
        (Value::Array(live), Value::Array(shape)) => Value::Array(
            live.iter()
                .enumerate()
                .map(|(i, item)| {
                    shape
                        .get(i)
                        .map_or_else(|| item.clone(), |s| project(item, s))
                })
                .collect(),
        ),
        (live, _) => live.clone(),
    }
}

/// The plan as JSON: per object, its action and the JSON-patch operations from the live object
/// to what the server would store (secrets masked unless asked).
pub fn to_json(plan: &Plan, show_secrets: bool) -> Value {
    let objects: Vec<Value> = plan
        .objects
        .iter()
        .map(|object| {
            let mask = |value: Option<&Value>| {
                let mut value = value.cloned().unwrap_or_else(|| serde_json::json!({}));
                if !show_secrets {
                    redact::mask_secrets(&mut value);
                }
                value
            };
            let before = mask(object.live.as_ref());
            let after = mask(
                object
                    .planned
                    .as_ref()
                    .or(Some(&normalize(&object.desired))),
            );
            let patch = json_patch::diff(&before, &after);
            serde_json::json!({
                "kind": object.kind(),
                "namespace": object.desired["metadata"]["namespace"],
                "name": object.desired["metadata"]["name"],
                "action": object.action,
                "source": object.source,
                "patch": patch,
                "conflicts": object.conflicts,
                "drift": object.drift,
                "consequence": object.consequence,
            })
        })
        .collect();
    serde_json::json!({
        "objects": objects,
        "redis": plan.redis,
        "summary": plan.summary(),
        "redisSummary": crate::cluster::preview::summary(&plan.redis),
        "hasWork": plan.has_work(),
    })
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
    fn fieldsv1_paths_read_like_kubectl() {
        let tree = json!({"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"redis\"}": {".": {}, "f:image": {}}}}}}});
        let mut paths = Vec::new();
        field_paths_of_fieldsv1(&tree, "", &mut paths);
        assert_eq!(
            paths,
            [
                ".spec.replicas",
                ".spec.template.spec.containers[name=redis].image"
            ]
        );
    }

    #[test]
    fn drift_lists_foreign_fields_the_spec_does_not_set() {
        let desired = json!({"spec": {"replicas": 6, "template": {"spec": {"containers": [{"name": "redis", "image": "redis:5"}]}}}});
        let live = json!({"metadata": {"managedFields": [
            {"manager": "kubectl-redis", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {},
                "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"redis\"}": {"f:image": {}, "f:args": {}}}}}}}},
            {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status", "fieldsV1": {"f:status": {"f:replicas": {}}}}
        ]}});
        let drift = drift_of(&live, &desired);
        assert_eq!(drift.len(), 1);
        assert_eq!(drift[0].manager, "kubectl-edit");
        assert_eq!(
            drift[0].fields,
            [".spec.template.spec.containers[name=redis].args"]
        );
    }

    #[test]
    fn projection_keeps_only_declared_fields() {
        let live =
            json!({"spec": {"a": 1, "defaulted": true, "list": [{"x": 1, "y": 2}, {"x": 3}]}});
        let shape = json!({"spec": {"a": 2, "list": [{"x": 0}]}});
        assert_eq!(
            project(&live, &shape),
            json!({"spec": {"a": 1, "list": [{"x": 1}, {"x": 3}]}})
        );
    }

    #[test]
    fn an_invalid_object_names_its_fields_and_the_immutable_ones_it_also_changes() {
        let cause = InvalidCause {
            reason: k8s::CauseReason::Invalid,
            field: "spec.template.metadata.labels".into(),
            message: "Invalid value: {}: `selector` does not match template `labels`".into(),
        };
        let error = InvalidObject {
            object: "StatefulSet default/redis".into(),
            origin: "specs/redis-single/03-redis.yaml:14".into(),
            live: true,
            server_message: "StatefulSet.apps \"redis\" is invalid: [...]".into(),
            causes: vec![cause],
            immutable: 1,
        };
        assert_eq!(
            error.to_string(),
            "StatefulSet default/redis (specs/redis-single/03-redis.yaml:14) is invalid: the API \
             server refuses it (422) for a reason that replacing it would not cure:\n  field \
             `spec.template.metadata.labels`: Invalid value: {}: `selector` does not match \
             template `labels`\n  (and 1 change(s) to immutable fields, which would need a \
             replace)\nNothing was written; fix the spec and plan again"
        );
        let bare = InvalidObject {
            live: false,
            causes: Vec::new(),
            immutable: 0,
            ..error
        };
        assert!(
            bare.to_string()
                .contains("refuses it (422):\n  StatefulSet.apps \"redis\" is invalid"),
            "without causes, the server's message: {bare}"
        );
    }

    #[test]
    fn summary_line_reads_like_terraform() {
        let summary = Summary {
            add: 9,
            change: 0,
            replace: 0,
            destroy: 0,
        };
        assert_eq!(
            summary.to_string(),
            "Plan: 9 to add, 0 to change, 0 to replace, 0 to destroy."
        );
    }
}
