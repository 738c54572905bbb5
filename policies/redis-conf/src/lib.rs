//! Rule 9: a Redis Cluster's redis.conf enables cluster mode and keeps nodes.conf on the data
//! volume (it holds the node's identity); a warning when Redis would not persist data.

use kr_policy_sdk::k8s::{self, array_at, escape, str_at, Container, Workload};
use kr_policy_sdk::prelude::*;
use kr_policy_sdk::redis_conf::{last, parse};

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct Settings {
    /// The working directory of the image, where a relative `dir` and file names resolve
    /// (`/data` in the official redis image).
    workdir: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            workdir: "/data".into(),
        }
    }
}

impl PolicySettings for Settings {
    fn validate(&self) -> Result<(), String> {
        if !self.workdir.starts_with('/') {
            return Err(format!(
                "workdir must be an absolute path, not {:?}",
                self.workdir
            ));
        }
        Ok(())
    }
}

const CONF: Rule = Rule::deny(
    "redis-conf",
    "redis.conf has cluster-enabled yes and cluster-config-file on the data volume",
);
const PERSISTENCE: Rule = Rule::warn(
    "redis-persistence",
    "Redis persists its data on a persistent volume",
);

kr_policy!(
    name: "redis-conf",
    rules: [CONF, PERSISTENCE],
    kinds: [k8s::WORKLOAD_KINDS, k8s::CLUSTER_MODE_KINDS],
    settings: Settings,
    evaluate: evaluate,
);

fn resolve(base: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!(
            "{}/{}",
            base.trim_end_matches('/'),
            path.trim_start_matches("./")
        )
    }
}

/// Whether `path` in the container lies on a PersistentVolumeClaim-backed volume.
fn on_claim(w: &Workload, c: &Container, path: &str) -> bool {
    let Some((mount, _)) = c.mount_for(path) else {
        return false;
    };
    let volume = str_at(mount, "/name");
    array_at(w.object, "/spec/volumeClaimTemplates")
        .iter()
        .any(|t| str_at(t, "/metadata/name") == volume)
        || w.volume(volume)
            .is_some_and(|(_, v)| v.get("persistentVolumeClaim").is_some())
}

fn evaluate(input: &Input, s: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
    let cluster = input.cluster_mode();
    for w in input.redis_workloads() {
        let Some((c, file)) = w.redis_conf(input) else {
            if cluster {
                out.push(CONF.finding(w.object, w.pod_pointer("/containers"), "cluster mode, but no redis-server container reads a redis.conf from a ConfigMap of the bundle"));
            }
            continue;
        };
        let (Some(cm), Some(text)) = (file.config_map, file.text) else {
            continue;
        };
        let path = format!("/data/{}", escape(&file.key));
        let conf = parse(text);
        let at = |line: usize| format!("{} line {line}", file.key);
        let dir = last(&conf, "dir")
            .and_then(|d| d.arg(0))
            .map(|d| resolve(&s.workdir, d))
            .unwrap_or_else(|| s.workdir.clone());
        if cluster {
            match last(&conf, "cluster-enabled") {
                Some(d) if d.arg(0) == Some("yes") => {}
                Some(d) => out.push(CONF.finding(
                    cm,
                    path.clone(),
                    format!(
                        "{}: cluster-enabled is `{}`; a Redis Cluster needs `cluster-enabled yes`",
                        at(d.line),
                        d.args.join(" ")
                    ),
                )),
                None => out.push(CONF.finding(
                    cm,
                    path.clone(),
                    format!("{} has no `cluster-enabled yes`", file.key),
                )),
            }
            match last(&conf, "cluster-config-file").and_then(|d| d.arg(0).map(|a| (d.line, a))) {
                None => out.push(CONF.finding(cm, path.clone(), format!("{} has no cluster-config-file; set it on the data volume (e.g. /data/nodes.conf) so a pod keeps its node identity", file.key))),
                Some((line, f)) => {
                    let full = resolve(&dir, f);
                    if !on_claim(&w, &c, &full) {
                        out.push(CONF.finding(cm, path.clone(), format!("{}: cluster-config-file {full} is not on a persistent volume; a restarted pod would come back as a new node", at(line))));
                    }
                }
            }
        }
        let aof = last(&conf, "appendonly").and_then(|d| d.arg(0)) == Some("yes");
        let save_off = last(&conf, "save").is_some_and(|d| d.arg(0) == Some(""));
        if !aof && save_off {
            out.push(PERSISTENCE.finding(cm, path.clone(), format!("{}: persistence is off (appendonly is not `yes` and `save \"\"`); data is lost when a pod restarts", file.key)));
        } else if !on_claim(&w, &c, &format!("{dir}/")) && !on_claim(&w, &c, &dir) {
            out.push(PERSISTENCE.finding(cm, path, format!("{}: Redis writes its data to {dir} (`dir`), which is not on a persistent volume", file.key)));
        }
    }
    out
}
