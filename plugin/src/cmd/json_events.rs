//! `apply -o json` and `destroy -o json`: one JSON object per line — the plan first, then each
//! step as it happens (object written, wait moved on or finished, Redis step with the commands
//! it ran), then a summary — as `plugin/schemas/events.schema.json` describes them.

use std::io::Write;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use kubectl_redis::plan::{self, Plan};
use kubectl_redis::progress::{Event, Events};
use serde::Serialize;

use super::progress::Ending;

pub(crate) struct JsonEvents<W: Write + Send> {
    out: Mutex<W>,
    command: &'static str,
    start: Instant,
    seen: Mutex<Seen>,
}

/// What the summary reports, gathered from the plan and the events.
#[derive(Default)]
struct Seen {
    written: plan::Summary,
    clusters: Vec<Cluster>,
    kept: Vec<String>,
    left_alone: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
struct Cluster {
    statefulset: String,
    changed: bool,
    verdict: String,
}

/// The last line.
#[derive(Serialize)]
#[serde(tag = "event", rename = "summary", rename_all = "camelCase")]
struct Summary<'a> {
    command: &'a str,
    /// `succeeded`, `cancelled`, `blocked` (policy violations, exit 2) or `failed` (exit 1).
    result: &'a str,
    error: Option<String>,
    /// The objects written, by action.
    written: plan::Summary,
    clusters: &'a [Cluster],
    /// The volume objects kept, with what became of their data.
    kept: &'a [String],
    /// Objects with a name the spec declares but without its ownership labels: not touched.
    left_alone: &'a [String],
    elapsed_ms: u128,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<W: Write + Send> JsonEvents<W> {
    pub(crate) fn new(command: &'static str, out: W) -> Self {
        JsonEvents {
            out: Mutex::new(out),
            command,
            start: Instant::now(),
            seen: Mutex::new(Seen::default()),
        }
    }

    fn line(&self, value: &impl Serialize) {
        let mut out = lock(&self.out);
        // A reader that went away gets no more lines; the exit code still tells how it went.
        let _ = serde_json::to_writer(&mut *out, value)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
            .and_then(|()| out.flush());
    }

    /// The first line: the plan (secrets masked unless `show_secrets`), as `plan -o json`
    /// writes it.
    pub(crate) fn plan(&self, plan: &Plan, show_secrets: bool, left_alone: &[String]) {
        {
            let mut seen = lock(&self.seen);
            seen.kept = plan.kept_volumes();
            seen.left_alone = left_alone.to_vec();
        }
        self.line(&serde_json::json!({
            "event": "plan",
            "plan": plan::to_json(plan, show_secrets),
        }));
    }

    /// The last line: how the command ended and what it did.
    pub(crate) fn finish(&self, ended: &anyhow::Result<Ending>) {
        let (result, error) = match ended {
            Ok(ending) => (ending.name(), None),
            Err(error) => ("failed", Some(format!("{error:#}"))),
        };
        let seen = lock(&self.seen);
        self.line(&Summary {
            command: self.command,
            result,
            error,
            written: seen.written,
            clusters: &seen.clusters,
            kept: &seen.kept,
            left_alone: &seen.left_alone,
            elapsed_ms: self.start.elapsed().as_millis(),
        });
    }
}

impl<W: Write + Send> Events for JsonEvents<W> {
    fn emit(&self, event: Event) {
        {
            let mut seen = lock(&self.seen);
            match &event {
                Event::Wrote { action, .. } => seen.written.count(*action),
                Event::RedisConverged {
                    statefulset,
                    changed,
                    verdict,
                    ..
                } => seen.clusters.push(Cluster {
                    statefulset: statefulset.clone(),
                    changed: *changed,
                    verdict: verdict.clone(),
                }),
                // The verdict after a roll supersedes the one before it.
                Event::RollFinished {
                    statefulset,
                    verdict,
                    ..
                } => {
                    let cluster = Cluster {
                        statefulset: statefulset.clone(),
                        changed: true,
                        verdict: verdict.clone(),
                    };
                    match seen
                        .clusters
                        .iter_mut()
                        .find(|c| c.statefulset == *statefulset)
                    {
                        Some(known) => *known = cluster,
                        None => seen.clusters.push(cluster),
                    }
                }
                _ => {}
            }
        }
        self.line(&event);
    }
}

#[cfg(test)]
mod tests {
    use kubectl_redis::plan::{Action, ObjectPlan, PLAN_FORMAT};
    use serde_json::{json, Value};

    use super::*;

    fn lines(out: &[u8]) -> Vec<Value> {
        String::from_utf8(out.to_vec())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    fn plan() -> Plan {
        let object = |kind: &str, name: &str, action: Action| ObjectPlan {
            action,
            desired: json!({"apiVersion": "v1", "kind": kind,
                "metadata": {"name": name, "namespace": "default"}}),
            live: None,
            planned: None,
            live_resource_version: None,
            conflicts: Vec::new(),
            drift: Vec::new(),
            consequence: None,
            source: "spec.yaml:1".into(),
            adopt: false,
        };
        Plan {
            format: PLAN_FORMAT.into(),
            spec_name: "redis-cluster".into(),
            namespace: "default".into(),
            objects: vec![
                object("Service", "redis", Action::Add),
                object("PersistentVolumeClaim", "data-redis-0", Action::Keep),
            ],
            redis: Vec::new(),
        }
    }

    /// Runs a plan, two events and an ending through the writer; returns the lines.
    fn run(ended: anyhow::Result<Ending>) -> Vec<Value> {
        let events = JsonEvents::new("destroy", Vec::new());
        events.plan(&plan(), false, &["ConfigMap default/theirs".to_string()]);
        events.emit(Event::Wrote {
            action: Action::Destroy,
            object: "Service default/redis".into(),
        });
        events.emit(Event::RedisConverged {
            statefulset: "redis-cluster".into(),
            changed: false,
            commands: Vec::new(),
            verdict: "Cluster healthy".into(),
            elapsed_ms: 40,
        });
        events.finish(&ended);
        lines(&events.out.into_inner().unwrap())
    }

    #[test]
    fn every_line_matches_the_schema_and_the_summary_adds_up() {
        let schema: Value =
            serde_json::from_str(include_str!("../../schemas/events.schema.json")).unwrap();
        let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
        for ended in [
            Ok(Ending::Succeeded),
            Ok(Ending::Cancelled),
            Ok(Ending::Blocked),
            Err(anyhow::anyhow!("pass --yes")),
        ] {
            let lines = run(ended);
            for line in &lines {
                let errors: Vec<String> = validator
                    .iter_errors(line)
                    .map(|e| format!("{e} at {}", e.instance_path()))
                    .collect();
                assert!(errors.is_empty(), "{line}: {errors:#?}");
            }
            assert_eq!(lines[0]["event"], "plan");
            assert_eq!(lines[0]["plan"]["summary"]["add"], 1);
            let summary = &lines[3];
            assert_eq!(summary["event"], "summary");
            assert_eq!(summary["command"], "destroy");
            assert_eq!(summary["written"]["destroy"], 1);
            assert_eq!(summary["clusters"][0]["verdict"], "Cluster healthy");
            assert_eq!(summary["leftAlone"], json!(["ConfigMap default/theirs"]));
            assert_eq!(summary["kept"].as_array().unwrap().len(), 1);
        }
        let failed = run(Err(anyhow::anyhow!("pass --yes")));
        assert_eq!(failed[3]["result"], "failed");
        assert_eq!(failed[3]["error"], "pass --yes");
        assert_eq!(run(Ok(Ending::Blocked))[3]["result"], "blocked");
    }
}
