//! An index over the bundle, built once per evaluation (lazily, on first use), so that rules that
//! relate objects (a workload and its ConfigMap, Services and the workloads they select) look
//! them up instead of scanning every object for every workload.
//!
//! Every lookup answers exactly what the corresponding scan over `Input::objects` would, in bundle
//! order: where several objects share a key, the first one in the bundle wins.

use std::collections::{HashMap, HashSet};

use crate::k8s::{kind, name, str_at, string_map, Workload};
use crate::{Input, Value};

/// Label pairs, borrowed from the input.
type Labels<'a> = Vec<(&'a str, &'a str)>;

/// Positions (into `Input::objects`) by key; see the module docs. Every key is borrowed from the
/// input's packed bytes: building the index copies no string.
#[derive(Debug, Default)]
pub struct Index<'a> {
    /// kind → namespace → name → first object.
    objects: HashMap<&'a str, HashMap<&'a str, HashMap<&'a str, usize>>>,
    /// Every Service, in bundle order.
    services: Vec<usize>,
    /// namespace → Services, in bundle order.
    services_by_namespace: HashMap<&'a str, Vec<usize>>,
    service_names: HashSet<&'a str>,
    /// Services with a non-empty selector, under one (key, value) pair of it: the pair the fewest
    /// workloads carry, so a workload only meets the Services that can select it.
    services_by_selector: HashMap<&'a str, HashMap<&'a str, Vec<usize>>>,
    /// Every workload (object with a pod template), in bundle order.
    workloads: Vec<usize>,
    /// Pod template labels of `workloads[i]`.
    workload_labels: Vec<Labels<'a>>,
    /// label key → value → positions in `workloads`, ascending.
    workloads_by_label: HashMap<&'a str, HashMap<&'a str, Vec<usize>>>,
}

fn contains_all(labels: &[(&str, &str)], selector: &[(&str, &str)]) -> bool {
    selector.iter().all(|pair| labels.contains(pair))
}

impl<'a> Index<'a> {
    pub fn build(objects: &[Value<'a>]) -> Index<'a> {
        let mut ix = Index::default();
        let mut selectors: Vec<(usize, Labels<'a>)> = Vec::new();
        for (i, &o) in objects.iter().enumerate() {
            let k = kind(o);
            let namespace = str_at(o, "/metadata/namespace");
            ix.objects
                .entry(k)
                .or_default()
                .entry(namespace)
                .or_default()
                .entry(name(o))
                .or_insert(i);
            if k == "Service" {
                ix.services.push(i);
                ix.services_by_namespace
                    .entry(namespace)
                    .or_default()
                    .push(i);
                ix.service_names.insert(name(o));
                let selector = string_map(o, "/spec/selector");
                if !selector.is_empty() {
                    selectors.push((i, selector));
                }
            }
            if let Some(w) = Workload::of(o) {
                let position = ix.workloads.len();
                let labels = w.pod_labels();
                for &(k, v) in &labels {
                    ix.workloads_by_label
                        .entry(k)
                        .or_default()
                        .entry(v)
                        .or_default()
                        .push(position);
                }
                ix.workloads.push(i);
                ix.workload_labels.push(labels);
            }
        }
        for (i, selector) in selectors {
            let (k, v) = selector
                .iter()
                .min_by_key(|(k, v)| ix.workloads_with_label(k, v).len())
                .copied()
                .expect("non-empty selector");
            ix.services_by_selector
                .entry(k)
                .or_default()
                .entry(v)
                .or_default()
                .push(i);
        }
        ix
    }

    fn workloads_with_label(&self, key: &str, value: &str) -> &[usize] {
        self.workloads_by_label
            .get(key)
            .and_then(|m| m.get(value))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// A workload of the bundle with its pod template labels, as the index holds them.
#[derive(Clone, Copy)]
pub struct IndexedWorkload<'a> {
    pub workload: Workload<'a>,
    /// Pod template labels (string values only, in key order), as `Workload::pod_labels`.
    pub labels: &'a [(&'a str, &'a str)],
}

impl IndexedWorkload<'_> {
    /// Whether every pair of `selector` is among the labels (true for an empty selector).
    pub fn has_labels(&self, selector: &[(&str, &str)]) -> bool {
        contains_all(self.labels, selector)
    }
}

impl<'a> Input<'a> {
    /// The index over `objects`, built on first use.
    pub fn index(&self) -> &Index<'a> {
        self.index.get_or_init(|| Index::build(&self.objects))
    }

    /// The first object with this kind, namespace ("" when unset) and name.
    pub fn object(&self, kind: &str, namespace: &str, name: &str) -> Option<Value<'a>> {
        self.index()
            .objects
            .get(kind)
            .and_then(|m| m.get(namespace))
            .and_then(|m| m.get(name))
            .map(|&i| self.objects[i])
    }

    /// The first ConfigMap with this namespace ("" when unset) and name.
    pub fn config_map(&self, namespace: &str, name: &str) -> Option<Value<'a>> {
        self.object("ConfigMap", namespace, name)
    }

    /// Every Service, in bundle order.
    pub fn services(&self) -> impl Iterator<Item = Value<'a>> + '_ {
        self.index().services.iter().map(|&i| self.objects[i])
    }

    /// The Services of a namespace ("" when unset), in bundle order.
    pub fn services_in(&self, namespace: &str) -> impl Iterator<Item = Value<'a>> + '_ {
        self.index()
            .services_by_namespace
            .get(namespace)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(|&i| self.objects[i])
    }

    /// Whether a Service of this name (in any namespace) is in the bundle.
    pub fn has_service_named(&self, name: &str) -> bool {
        self.index().service_names.contains(name)
    }

    /// Services (any namespace) with a non-empty selector whose every pair is among `labels`, in
    /// bundle order.
    pub fn services_selecting(&self, labels: &[(&str, &str)]) -> Vec<Value<'a>> {
        let ix = self.index();
        let mut found: Vec<usize> = labels
            .iter()
            .filter_map(|(k, v)| ix.services_by_selector.get(k).and_then(|m| m.get(v)))
            .flatten()
            .copied()
            .filter(|&i| {
                string_map(self.objects[i], "/spec/selector")
                    .iter()
                    .all(|kv| labels.contains(kv))
            })
            .collect();
        found.sort_unstable();
        found.dedup();
        found.into_iter().map(|i| self.objects[i]).collect()
    }

    /// Every workload with its pod template labels, in bundle order (as `workloads()`).
    pub fn indexed_workloads(&self) -> impl Iterator<Item = IndexedWorkload<'_>> + use<'_, 'a> {
        let ix = self.index();
        ix.workloads
            .iter()
            .zip(&ix.workload_labels)
            .filter_map(|(&i, labels)| {
                Workload::of(self.objects[i]).map(|workload| IndexedWorkload {
                    workload,
                    labels: labels.as_slice(),
                })
            })
    }

    /// Workloads whose pod template labels include every pair of a non-empty `selector`, in
    /// bundle order (empty for an empty selector).
    pub fn workloads_selected_by<'i: 's, 's>(
        &'i self,
        selector: &'s [(&'s str, &'s str)],
    ) -> impl Iterator<Item = IndexedWorkload<'i>> + use<'i, 's, 'a> {
        let ix = self.index();
        let candidates = selector
            .iter()
            .map(|(k, v)| ix.workloads_with_label(k, v))
            .min_by_key(|c| c.len())
            .unwrap_or(&[]);
        candidates.iter().filter_map(move |&p| {
            let labels = ix.workload_labels[p].as_slice();
            if !contains_all(labels, selector) {
                return None;
            }
            Workload::of(self.objects[ix.workloads[p]])
                .map(|workload| IndexedWorkload { workload, labels })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    type Json = serde_json::Value;

    fn sts(name: &str, ns: Option<&str>, labels: Json) -> Json {
        let mut o = json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name},
            "spec": {"template": {"metadata": {"labels": labels}, "spec": {"containers": []}}},
        });
        if let Some(ns) = ns {
            o["metadata"]["namespace"] = json!(ns);
        }
        o
    }

    fn svc(name: &str, ns: Option<&str>, selector: Json) -> Json {
        let mut o = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name}, "spec": {"selector": selector},
        });
        if let Some(ns) = ns {
            o["metadata"]["namespace"] = json!(ns);
        }
        o
    }

    #[test]
    fn index_lookups_match_scans() {
        let cm = |name: &str, ns: Option<&str>, tag: &str| {
            let mut o = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"tag": tag}});
            if let Some(ns) = ns {
                o["metadata"]["namespace"] = json!(ns);
            }
            o
        };
        let packed = crate::pack_input(
            &[
                cm("conf", None, "first"),
                cm("conf", None, "second"),
                cm("conf", Some("prod"), "prod"),
                sts("redis", None, json!({"app": "redis", "tier": "db"})),
                sts("web", Some("prod"), json!({"app": "web", "n": 1})),
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {}}, "spec": {"containers": []}}),
                svc("all-redis", None, json!({"app": "redis"})),
                svc("db", Some("prod"), json!({"tier": "db", "app": "redis"})),
                svc("none", None, json!({"app": "redis", "tier": "cache"})),
                svc("empty", None, json!({})),
                svc("web", Some("prod"), json!({"app": "web"})),
            ],
            &Json::Null,
        );
        let input = Input::from_packed(&packed).unwrap();

        // First object wins; a missing namespace is "".
        let tag = |o: Option<Value>| o.map(|o| str_at(o, "/data/tag").to_string());
        assert_eq!(tag(input.config_map("", "conf")), Some("first".into()));
        assert_eq!(tag(input.config_map("prod", "conf")), Some("prod".into()));
        assert!(input.config_map("dev", "conf").is_none());
        assert_eq!(
            input.object("StatefulSet", "prod", "web").map(name),
            Some("web")
        );
        assert!(input.object("Service", "prod", "redis").is_none());

        let names = |v: Vec<Value>| {
            v.into_iter()
                .map(|o| name(o).to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(input.services().collect()),
            ["all-redis", "db", "none", "empty", "web"]
        );
        assert_eq!(names(input.services_in("prod").collect()), ["db", "web"]);
        assert_eq!(
            names(input.services_in("").collect()),
            ["all-redis", "none", "empty"]
        );
        assert!(input.has_service_named("web") && !input.has_service_named("redis"));

        // Services selecting a workload: the same answer (and order) as the nested scan.
        for w in input.indexed_workloads() {
            let labels = w.workload.pod_labels();
            assert_eq!(w.labels, labels.as_slice());
            let scan: Vec<Value> = input
                .of_kind("Service")
                .filter(|s| {
                    let sel = string_map(*s, "/spec/selector");
                    !sel.is_empty() && sel.iter().all(|kv| labels.contains(kv))
                })
                .collect();
            assert_eq!(names(input.services_selecting(&labels)), names(scan));
        }
        let redis = input.indexed_workloads().next().unwrap();
        assert_eq!(
            names(input.services_selecting(&redis.workload.pod_labels())),
            ["all-redis", "db"]
        );
        assert_eq!(input.indexed_workloads().count(), input.workloads().count());

        // Workloads a selector picks (string label values only).
        let picked = |sel: &[(&str, &str)]| {
            input
                .workloads_selected_by(sel)
                .map(|w| name(w.workload.object).to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(picked(&[("app", "redis")]), ["redis"]);
        assert_eq!(picked(&[("tier", "db"), ("app", "redis")]), ["redis"]);
        assert_eq!(picked(&[("tier", "cache")]), Vec::<String>::new());
        assert_eq!(picked(&[("n", "1")]), Vec::<String>::new());
        assert_eq!(picked(&[]), Vec::<String>::new());
    }
}
