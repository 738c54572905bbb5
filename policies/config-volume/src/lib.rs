//! Rule 2: a script the Redis container runs from a ConfigMap volume is there and executable, and
//! in cluster mode the ConfigMap volume has defaultMode 0755 (493 on the wire).

use kr_policy_sdk::k8s;
use kr_policy_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct Settings {
    /// Required mode of the ConfigMap volume in cluster mode (decimal on the wire: 0755 = 493).
    default_mode: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            default_mode: 0o755,
        }
    }
}

impl PolicySettings for Settings {
    fn validate(&self) -> Result<(), String> {
        if !(0..=0o777).contains(&self.default_mode) {
            return Err(format!(
                "defaultMode must be between 0 and 0777 (511), not {}",
                self.default_mode
            ));
        }
        Ok(())
    }
}

const CONFIG_VOLUME: Rule = Rule::deny(
    "config-volume",
    "ConfigMap volume has defaultMode 0755 and the script it runs is executable",
);

kr_policy!(
    name: "config-volume",
    rules: [CONFIG_VOLUME],
    kinds: [k8s::WORKLOAD_KINDS, k8s::CLUSTER_MODE_KINDS],
    settings: Settings,
    evaluate: evaluate,
);

fn evaluate(input: &Input, s: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
    let cluster = input.cluster_mode();
    for w in input.redis_workloads() {
        let mut checked_volumes = Vec::new();
        for c in w.main_containers() {
            let argv = c.argv();
            let Some(first) = argv.first() else { continue };
            // The entrypoint script, when it comes from a ConfigMap.
            if let Some(file) = w.config_map_file(input, &c, first) {
                let mode = file.mode.unwrap_or(0o644);
                if mode & 0o100 == 0 {
                    out.push(
                        CONFIG_VOLUME
                            .finding(w.object, file.mode_pointer.clone(), format!("`{first}` is run as the command but its mode is {mode:#o}; it needs the execute bit ({:#o})", s.default_mode))
                            .with_fix(vec![json!({"op": "add", "path": file.mode_pointer, "value": s.default_mode})]),
                    );
                }
                match (file.config_map, file.text) {
                    (Some(cm), None) => out.push(CONFIG_VOLUME.finding(cm, "/data", format!("ConfigMap has no key `{}`, which container `{}` runs as `{first}`", file.key, c.name()))),
                    (Some(cm), Some(text)) if !text.starts_with("#!") => out.push(CONFIG_VOLUME.finding(
                        cm,
                        format!("/data/{}", kr_policy_sdk::k8s::escape(&file.key)),
                        format!("`{}` is run as a command but has no `#!` line, so exec fails with `exec format error`", file.key),
                    )),
                    _ => {}
                }
                checked_volumes.push(file.volume_index);
            }
            if let Some((_, conf)) = w.redis_conf(input) {
                checked_volumes.push(conf.volume_index);
            }
        }
        if !cluster {
            continue;
        }
        checked_volumes.sort_unstable();
        checked_volumes.dedup();
        for i in checked_volumes {
            let pointer = w.pod_pointer(&format!("/volumes/{i}/configMap/defaultMode"));
            let mode = w
                .template
                .pointer(&format!("/spec/volumes/{i}/configMap/defaultMode"))
                .and_then(Value::as_i64);
            if mode != Some(s.default_mode) {
                let shown = mode
                    .map(|m| format!("{m:#o} ({m})"))
                    .unwrap_or_else(|| "unset (0644)".into());
                out.push(
                    CONFIG_VOLUME
                        .finding(w.object, pointer.clone(), format!("ConfigMap volume defaultMode is {shown}; cluster mode needs {:#o} ({})", s.default_mode, s.default_mode))
                        .with_fix(vec![json!({"op": "add", "path": pointer, "value": s.default_mode})]),
                );
            }
        }
    }
    out
}
