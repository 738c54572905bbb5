//! Rule 9: a Redis Cluster's redis.conf enables cluster mode and keeps nodes.conf on the data
//! volume (it holds the node's identity); every directive of a redis.conf is one the image's Redis
//! version knows; a warning when Redis would not persist data.

mod directives;

use directives::TABLES;
use kr_policy_sdk::k8s::{
    self, array_at, escape, image_repository, image_tag, str_at, Container, Workload,
};
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
/// Only when the image tag names a version with a table (5.0 to 7.4): with `latest`, a digest
/// or no tag there is no finding at all, as any directive might be valid.
const DIRECTIVES: Rule = Rule::deny(
    "redis-conf-directives",
    "Every redis.conf directive is one the Redis version of the image tag accepts",
);
const PERSISTENCE: Rule = Rule::warn(
    "redis-persistence",
    "Redis persists its data on a persistent volume",
);

kr_policy!(
    name: "redis-conf",
    rules: [CONF, DIRECTIVES, PERSISTENCE],
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

/// The table (index into [`TABLES`]) of the Redis a `redis*` image runs, from its tag:
/// `5.0.1-alpine` is 5.0, `7` the newest 7.x; a minor without a table gets the newest one below
/// it in its major. None for a tag without a version or a major without tables.
fn directive_table(image: &str) -> Option<usize> {
    if !image_repository(image)
        .rsplit('/')
        .next()
        .is_some_and(|r| r.starts_with("redis"))
    {
        return None;
    }
    let mut parts = image_tag(image)?.split(['.', '-']);
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: Option<u32> = parts.next().and_then(|m| m.parse().ok());
    TABLES
        .iter()
        .rposition(|&((ma, mi), _)| ma == major && minor.is_none_or(|m| mi <= m))
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The name of `names` nearest to `name`, if near enough to be a typo (a third of its length,
/// at most 3 edits; short names are too easily near anything).
fn closest(name: &str, names: &[&'static str]) -> Option<&'static str> {
    let max = (name.chars().count() / 3).min(3);
    names
        .iter()
        .map(|n| (levenshtein(name, n), *n))
        .filter(|&(d, _)| d <= max)
        .min_by_key(|&(d, _)| d)
        .map(|(_, n)| n)
}

/// None when Redis of table `t` has directive `name`, else a note on it: the version that added
/// or removed it, or a name it may be a typo of (or "").
fn unknown_directive(name: &str, t: usize) -> Option<String> {
    let ((major, _), names) = TABLES[t];
    // From 7.0 a dotted name is a module's config, checked by the module when it loads.
    if names.binary_search(&name).is_ok() || (major >= 7 && name.contains('.')) {
        return None;
    }
    let knows = |(_, known): &(_, &[&str])| known.binary_search(&name).is_ok();
    if let Some(((ma, mi), _)) = TABLES[t + 1..].iter().find(|e| knows(e)) {
        return Some(format!(" (added in Redis {ma}.{mi})"));
    }
    if let Some(i) = TABLES[..t].iter().rposition(knows) {
        let ((ma, mi), _) = TABLES[i + 1];
        return Some(format!(" (removed in Redis {ma}.{mi})"));
    }
    Some(closest(name, names).map_or_else(String::new, |n| format!(" (did you mean `{n}`?)")))
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
        if let Some(t) = directive_table(c.image()) {
            let ((major, minor), _) = TABLES[t];
            for d in &conf {
                if let Some(note) = unknown_directive(&d.name, t) {
                    out.push(DIRECTIVES.finding(cm, path.clone(), format!("{}: Redis {major}.{minor} (image `{}`) has no directive `{}`{note}; redis-server would exit with \"Bad directive or wrong number of arguments\"", at(d.line), c.image(), d.name)));
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use kr_policy_sdk::pack_input;

    /// The rendered cluster's redis.conf (plugin/tests/golden/redis-cluster.yaml).
    const SEED: &str = "# Rendered by kubectl-redis for RedisCluster redis-cluster.
port 6379
cluster-enabled yes
cluster-config-file /data/nodes.conf
cluster-node-timeout 15000
cluster-require-full-coverage no
cluster-migration-barrier 1
appendonly yes
protected-mode no
dir /data
";

    /// The messages of `redis-conf-directives` for a StatefulSet of `image` reading `conf`.
    fn directive_findings(image: &str, conf: &str) -> Vec<String> {
        let objects = [
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "conf"}, "data": {"redis.conf": conf}}),
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "redis"}, "spec": {"template": {"spec": {
                "containers": [{"name": "redis", "image": image, "command": ["redis-server", "/conf/redis.conf"],
                    "volumeMounts": [{"name": "conf", "mountPath": "/conf"}, {"name": "data", "mountPath": "/data"}]}],
                "volumes": [{"name": "conf", "configMap": {"name": "conf"}}, {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
            }}}}),
        ];
        let packed = pack_input(&objects, &json!({}));
        let input = Input::from_packed(&packed).expect("packed input");
        evaluate(&input, &Settings::default())
            .into_iter()
            .filter(|f| f.rule == DIRECTIVES.id)
            .map(|f| f.message)
            .collect()
    }

    #[test]
    fn tables_are_sorted_and_lower_case() {
        for ((major, minor), names) in TABLES {
            assert!(
                names.windows(2).all(|w| w[0] < w[1]),
                "{major}.{minor} is not sorted and unique"
            );
            assert!(
                names.iter().all(|n| *n == n.to_ascii_lowercase()),
                "{major}.{minor}"
            );
        }
        assert!(TABLES.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn the_version_comes_from_the_tag() {
        let version = |image| directive_table(image).map(|t| TABLES[t].0);
        assert_eq!(version("redis:5.0.1-alpine"), Some((5, 0)));
        assert_eq!(version("redis:7.2.4"), Some((7, 2)));
        assert_eq!(version("bitnami/redis:6.2"), Some((6, 2)));
        assert_eq!(
            version("docker.io/library/redis:6.2.14-bookworm@sha256:ab"),
            Some((6, 2))
        );
        // A major alone, or a minor newer than its tables: the newest table of the major.
        assert_eq!(version("redis:7"), Some((7, 4)));
        assert_eq!(version("redis:7-alpine"), Some((7, 4)));
        assert_eq!(version("redis:7.6.0"), Some((7, 4)));
        // A minor without a table: the newest one below it.
        assert_eq!(version("redis:6.1"), Some((6, 0)));
        for image in [
            "redis:latest",
            "redis",
            "redis@sha256:ab",
            "redis:alpine",
            "redis:4.0.14",
            "redis:8.0",
            "cache:7.2",
        ] {
            assert_eq!(version(image), None, "{image}");
        }
    }

    #[test]
    fn the_seed_passes_on_5_0() {
        assert_eq!(
            directive_findings("redis:5.0.1-alpine", SEED),
            Vec::<String>::new()
        );
        // Redis reads names in any case; include, rename-command and loadmodule are directives.
        let more = "APPENDONLY yes\ninclude /conf/extra.conf\nrename-command FLUSHALL \"\"\nloadmodule /m.so\nslaveof 10.0.0.1 6379\n";
        assert_eq!(
            directive_findings("redis:5.0.1-alpine", more),
            Vec::<String>::new()
        );
    }

    #[test]
    fn an_unknown_directive_is_denied_at_its_line() {
        let conf = format!("{SEED}no-such-directive yes\n");
        assert_eq!(
            directive_findings("redis:5.0.1-alpine", &conf),
            ["redis.conf line 11: Redis 5.0 (image `redis:5.0.1-alpine`) has no directive `no-such-directive`; redis-server would exit with \"Bad directive or wrong number of arguments\""]
        );
    }

    #[test]
    fn a_typo_gets_the_nearest_name() {
        let findings =
            directive_findings("redis:7.2.4", "appendonlyy yes\nCluster-Node-Timout 5000\n");
        assert_eq!(findings.len(), 2, "{findings:?}");
        assert!(findings[0].starts_with("redis.conf line 1: Redis 7.2 (image `redis:7.2.4`) has no directive `appendonlyy` (did you mean `appendonly`?);"), "{}", findings[0]);
        assert!(
            findings[1].contains("line 2:")
                && findings[1]
                    .contains("`cluster-node-timout` (did you mean `cluster-node-timeout`?)"),
            "{}",
            findings[1]
        );
    }

    #[test]
    fn a_directive_of_another_version_says_which() {
        let conf = "enable-debug-command local\n";
        let findings = directive_findings("redis:5.0.1-alpine", conf);
        assert_eq!(findings.len(), 1);
        assert!(
            findings[0].contains("has no directive `enable-debug-command` (added in Redis 7.0)"),
            "{}",
            findings[0]
        );
        assert_eq!(directive_findings("redis:7.0", conf), Vec::<String>::new());
        let user = directive_findings("redis:5.0.1-alpine", "user default on nopass ~* +@all\n");
        assert!(user[0].contains("(added in Redis 6.0)"), "{user:?}");
        assert_eq!(
            directive_findings("redis:6.0.9", "user default on nopass ~* +@all\n"),
            Vec::<String>::new()
        );
        let gopher = directive_findings("redis:7.2", "gopher-enabled no\n");
        assert!(gopher[0].contains("(removed in Redis 7.0)"), "{gopher:?}");
    }

    #[test]
    fn module_configs_are_left_to_their_module_from_7_0() {
        assert_eq!(
            directive_findings("redis:7.2", "search.timeout 500\n"),
            Vec::<String>::new()
        );
        assert_eq!(
            directive_findings("redis:6.2", "search.timeout 500\n").len(),
            1
        );
    }

    #[test]
    fn no_version_no_finding() {
        for image in ["redis:latest", "redis", "redis@sha256:ab", "redis:8.0"] {
            assert_eq!(
                directive_findings(image, "no-such-directive yes\n"),
                Vec::<String>::new(),
                "{image}"
            );
        }
    }
}
