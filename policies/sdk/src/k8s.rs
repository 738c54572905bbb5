//! Read-only helpers over plain Kubernetes objects (as JSON), so that rules stay short.

use crate::packed::Array;
use crate::{Input, Value};

/// Annotations the plugin puts on a rendered RedisCluster StatefulSet.
pub use kr_policy_abi::annotations::{
    MASTERS as MASTERS_ANNOTATION, REPLICAS_PER_MASTER as REPLICAS_PER_MASTER_ANNOTATION,
};

/// The kinds [`Workload::of`] knows. A module that reads workloads declares them (`kinds:` of
/// [`kr_policy!`](crate::kr_policy)), or the host does not send it the workloads.
pub const WORKLOAD_KINDS: &[&str] = &[
    "StatefulSet",
    "Deployment",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "Pod",
];

/// The kinds [`Input::cluster_mode`] reads: a module that calls it declares them.
pub const CLUSTER_MODE_KINDS: &[&str] = &["StatefulSet", "ConfigMap"];

pub fn kind(o: Value<'_>) -> &str {
    o.get("kind").and_then(Value::as_str).unwrap_or("")
}

pub fn name(o: Value<'_>) -> &str {
    o.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn annotation<'a>(o: Value<'a>, key: &str) -> Option<&'a str> {
    o.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// `~` and `/` escaped for one JSON pointer segment (RFC 6901).
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// A string field, or "".
pub fn str_at<'a>(o: Value<'a>, pointer: &str) -> &'a str {
    o.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// An array field, or an empty array.
pub fn array_at<'a>(o: Value<'a>, pointer: &str) -> Array<'a> {
    o.pointer(pointer)
        .and_then(Value::as_array)
        .unwrap_or_default()
}

/// Labels as (key, value) pairs of a map at `pointer`.
pub fn string_map<'a>(o: Value<'a>, pointer: &str) -> Vec<(&'a str, &'a str)> {
    o.pointer(pointer)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k, v)))
                .collect()
        })
        .unwrap_or_default()
}

/// An object with a pod template: StatefulSet, Deployment, DaemonSet, ReplicaSet, Job, or a Pod.
#[derive(Clone, Copy)]
pub struct Workload<'a> {
    pub object: Value<'a>,
    /// Pointer to the pod template inside `object` ("/spec/template", or "" for a Pod).
    pub template_pointer: &'static str,
    pub template: Value<'a>,
}

impl<'a> Workload<'a> {
    pub fn of(object: Value<'a>) -> Option<Workload<'a>> {
        let template_pointer = match kind(object) {
            "StatefulSet" | "Deployment" | "DaemonSet" | "ReplicaSet" | "Job" => "/spec/template",
            "Pod" => "",
            _ => return None,
        };
        let template = object.pointer(template_pointer)?;
        Some(Workload {
            object,
            template_pointer,
            template,
        })
    }

    pub fn kind(&self) -> &'a str {
        kind(self.object)
    }

    /// A pointer into the pod spec, e.g. `pod_pointer("/volumes/0")`.
    pub fn pod_pointer(&self, rest: &str) -> String {
        format!("{}/spec{}", self.template_pointer, rest)
    }

    /// Containers and init containers.
    pub fn containers(&self) -> Vec<Container<'a>> {
        let mut out = self.main_containers();
        out.extend(self.containers_of("initContainers"));
        out
    }

    /// The main containers only.
    pub fn main_containers(&self) -> Vec<Container<'a>> {
        self.containers_of("containers").collect()
    }

    fn containers_of(&self, field: &'static str) -> impl Iterator<Item = Container<'a>> {
        let template_pointer = self.template_pointer;
        let spec = self.template.get("spec");
        let list = spec.and_then(|s| s.get(field)).and_then(Value::as_array);
        list.unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(move |(index, value)| Container {
                value,
                template_pointer,
                field,
                index,
            })
    }

    pub fn volumes(&self) -> Array<'a> {
        array_at(self.template, "/spec/volumes")
    }

    pub fn volume(&self, name: &str) -> Option<(usize, Value<'a>)> {
        self.volumes()
            .iter()
            .enumerate()
            .find(|(_, v)| str_at(*v, "/name") == name)
    }

    pub fn pod_labels(&self) -> Vec<(&'a str, &'a str)> {
        string_map(self.template, "/metadata/labels")
    }

    /// The workload runs redis-server (by command or image).
    pub fn runs_redis(&self) -> bool {
        self.main_containers().iter().any(Container::runs_redis)
    }

    /// Resolves a file path in `container` to a ConfigMap key of the bundle, following the volume
    /// mount, `subPath` and `items`.
    pub fn config_map_file(
        &self,
        input: &Input<'a>,
        container: &Container<'a>,
        path: &str,
    ) -> Option<ConfigFile<'a>> {
        let (mount, rest) = container.mount_for(path)?;
        let volume_name = str_at(mount, "/name");
        let (volume_index, volume) = self.volume(volume_name)?;
        let cm = volume.get("configMap")?;
        let cm_name = str_at(cm, "/name");
        // With subPath the mount is a single file (or a directory inside the volume).
        let sub_path = str_at(mount, "/subPath");
        let in_volume = match (sub_path.is_empty(), rest.is_empty()) {
            (true, _) => rest.to_string(),
            (false, true) => sub_path.to_string(),
            (false, false) => format!("{}/{}", sub_path.trim_end_matches('/'), rest),
        };
        let items = array_at(cm, "/items");
        let (key, item_index) = if items.is_empty() {
            (in_volume.clone(), None)
        } else {
            let (i, item) = items
                .iter()
                .enumerate()
                .find(|(_, it)| str_at(*it, "/path") == in_volume)?;
            (str_at(item, "/key").to_string(), Some(i))
        };
        let config_map = input.config_map(str_at(self.object, "/metadata/namespace"), cm_name);
        let text = config_map
            .and_then(|o| o.pointer(&format!("/data/{}", escape(&key))))
            .and_then(Value::as_str);
        let mode = item_index
            .and_then(|i| items.get(i)?.get("mode"))
            .or_else(|| cm.get("defaultMode"))
            .and_then(Value::as_i64);
        Some(ConfigFile {
            config_map_name: cm_name,
            config_map,
            key,
            text,
            mode,
            volume_index,
            item_index,
            mode_pointer: match item_index {
                Some(i) if items.get(i).and_then(|it| it.get("mode")).is_some() => {
                    self.pod_pointer(&format!("/volumes/{volume_index}/configMap/items/{i}/mode"))
                }
                _ => self.pod_pointer(&format!("/volumes/{volume_index}/configMap/defaultMode")),
            },
        })
    }

    /// The redis.conf a redis-server container is started with, if it comes from a ConfigMap.
    pub fn redis_conf(&self, input: &Input<'a>) -> Option<(Container<'a>, ConfigFile<'a>)> {
        for c in self.main_containers() {
            if !c.runs_redis() {
                continue;
            }
            let argv = c.argv();
            let Some(pos) = argv
                .iter()
                .position(|a| a.rsplit('/').next() == Some("redis-server"))
            else {
                continue;
            };
            if let Some(conf) = argv[pos + 1..].iter().find(|a| a.ends_with(".conf")) {
                if let Some(file) = self.config_map_file(input, &c, conf) {
                    return Some((c, file));
                }
            }
        }
        None
    }
}

/// A file a container sees, backed by a ConfigMap key.
pub struct ConfigFile<'a> {
    pub config_map_name: &'a str,
    /// The ConfigMap, when it is part of the bundle.
    pub config_map: Option<Value<'a>>,
    pub key: String,
    pub text: Option<&'a str>,
    /// The file mode set by the volume (`items[].mode` or `defaultMode`); None means 0644.
    pub mode: Option<i64>,
    pub volume_index: usize,
    pub item_index: Option<usize>,
    /// Where the mode is (or would be) set, in the workload.
    pub mode_pointer: String,
}

#[derive(Clone, Copy)]
pub struct Container<'a> {
    pub value: Value<'a>,
    /// Where it is in its workload object: `{template_pointer}/spec/{field}/{index}`, written
    /// out only when a finding asks ([`Container::pointer`]).
    template_pointer: &'static str,
    field: &'static str,
    index: usize,
}

impl<'a> Container<'a> {
    pub fn name(&self) -> &'a str {
        str_at(self.value, "/name")
    }

    pub fn image(&self) -> &'a str {
        str_at(self.value, "/image")
    }

    /// A pointer into the container, inside its workload object: `pointer("/image")`.
    pub fn pointer(&self, rest: &str) -> String {
        format!(
            "{}/spec/{}/{}{rest}",
            self.template_pointer, self.field, self.index
        )
    }

    /// command followed by args.
    pub fn argv(&self) -> Vec<&'a str> {
        array_at(self.value, "/command")
            .iter()
            .chain(array_at(self.value, "/args"))
            .filter_map(Value::as_str)
            .collect()
    }

    pub fn runs_redis(&self) -> bool {
        self.argv()
            .iter()
            .any(|a| a.rsplit('/').next() == Some("redis-server"))
            || crate::k8s::image_repository(self.image())
                .rsplit('/')
                .next()
                == Some("redis")
    }

    pub fn env(&self, name: &str) -> Option<(usize, Value<'a>)> {
        array_at(self.value, "/env")
            .iter()
            .enumerate()
            .find(|(_, e)| str_at(*e, "/name") == name)
    }

    pub fn ports(&self) -> Array<'a> {
        array_at(self.value, "/ports")
    }

    /// The volume mount whose mountPath contains `path`, and the rest of the path below it.
    pub fn mount_for<'p>(&self, path: &'p str) -> Option<(Value<'a>, &'p str)> {
        array_at(self.value, "/volumeMounts")
            .iter()
            .filter_map(|m| {
                let mp = str_at(m, "/mountPath").trim_end_matches('/');
                if path == mp {
                    Some((m, "", mp.len()))
                } else {
                    path.strip_prefix(mp)
                        .and_then(|r| r.strip_prefix('/'))
                        .map(|r| (m, r, mp.len()))
                }
            })
            .max_by_key(|(_, _, l)| *l)
            .map(|(m, r, _)| (m, r))
    }
}

/// `registry/repo` of an image reference, without tag or digest.
pub fn image_repository(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or("");
    match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    }
}

/// The tag of an image reference, if it has one.
pub fn image_tag(image: &str) -> Option<&str> {
    let repo = image_repository(image);
    let rest = image.split('@').next().unwrap_or("");
    rest.strip_prefix(repo)
        .and_then(|t| t.strip_prefix(':'))
        .filter(|t| !t.is_empty())
}

pub fn image_digest(image: &str) -> Option<&str> {
    image
        .split_once('@')
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty())
}

impl<'a> Input<'a> {
    pub fn of_kind<'s>(&'s self, kind: &'s str) -> impl Iterator<Item = Value<'a>> + 's {
        self.objects
            .iter()
            .copied()
            .filter(move |o| crate::k8s::kind(*o) == kind)
    }

    pub fn workloads(&self) -> impl Iterator<Item = Workload<'a>> + '_ {
        self.objects.iter().copied().filter_map(Workload::of)
    }

    /// Workloads that run redis-server.
    pub fn redis_workloads(&self) -> impl Iterator<Item = Workload<'a>> + '_ {
        self.workloads().filter(Workload::runs_redis)
    }

    /// A Redis Cluster bundle: rendered from a RedisCluster spec (its annotations), or a redis.conf
    /// in a ConfigMap that says `cluster-enabled yes`.
    pub fn cluster_mode(&self) -> bool {
        self.of_kind("StatefulSet")
            .any(|o| annotation(o, MASTERS_ANNOTATION).is_some())
            || self.of_kind("ConfigMap").any(|cm| {
                cm.get("data")
                    .and_then(Value::as_object)
                    .is_some_and(|data| {
                        data.values().filter_map(Value::as_str).any(|text| {
                            // Most ConfigMaps never name the directive: skip parsing those.
                            mentions_cluster_enabled(text)
                                && crate::redis_conf::parse(text)
                                    .iter()
                                    .any(|d| d.name == "cluster-enabled" && d.arg(0) == Some("yes"))
                        })
                    })
            })
    }
}

/// Whether `text` has `cluster-enabled` anywhere, in any case (Redis reads directive names
/// case-insensitively): a cheap test before parsing a file as redis.conf.
fn mentions_cluster_enabled(text: &str) -> bool {
    const NAME: &[u8] = b"cluster-enabled";
    text.as_bytes()
        .windows(NAME.len())
        .any(|w| w.eq_ignore_ascii_case(NAME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_kinds_are_the_kinds_with_a_pod_template() {
        for k in WORKLOAD_KINDS {
            let template = if *k == "Pod" {
                crate::pack(&serde_json::json!({"kind": k, "spec": {}}))
            } else {
                crate::pack(&serde_json::json!({"kind": k, "spec": {"template": {}}}))
            };
            assert!(
                Workload::of(Value::root(&template).unwrap()).is_some(),
                "{k}"
            );
        }
        let other = crate::pack(&serde_json::json!({"kind": "CronJob", "spec": {"template": {}}}));
        assert!(Workload::of(Value::root(&other).unwrap()).is_none());
    }

    #[test]
    fn cluster_mode_reads_redis_conf_in_any_case() {
        let bundle = |conf: &str| {
            crate::pack_input(
                &[
                    serde_json::json!({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"redis.conf": conf}}),
                ],
                &serde_json::Value::Null,
            )
        };
        for (conf, cluster) in [
            ("appendonly yes\ncluster-enabled yes\n", true),
            ("CLUSTER-Enabled yes\n", true),
            ("cluster-enabled no\n", false),
            ("# cluster-enabled yes\n", false),
            ("appendonly yes\n", false),
        ] {
            let packed = bundle(conf);
            let input = Input::from_packed(&packed).unwrap();
            assert_eq!(input.cluster_mode(), cluster, "{conf:?}");
        }
    }

    #[test]
    fn image_parts() {
        assert_eq!(image_repository("redis:5.0.1-alpine"), "redis");
        assert_eq!(image_tag("redis:5.0.1-alpine"), Some("5.0.1-alpine"));
        assert_eq!(
            image_repository("localhost:5000/redis"),
            "localhost:5000/redis"
        );
        assert_eq!(image_tag("localhost:5000/redis"), None);
        assert_eq!(image_tag("localhost:5000/redis:7@sha256:ab"), Some("7"));
        assert_eq!(image_digest("redis@sha256:ab"), Some("sha256:ab"));
        assert_eq!(image_tag("redis@sha256:ab"), None);
    }
}
