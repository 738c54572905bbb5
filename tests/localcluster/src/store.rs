//! The object store: resourceVersions, watch history, and the write semantics of the API
//! server (create/update/patch/apply/delete, managedFields, defaulting, immutability).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};
use tokio::sync::broadcast;

use crate::resources::{by_plural, ApiError, ApiResult, ResourceInfo};
use crate::ssa::{self, FieldSet};

/// How many events the store keeps for watches that resume from an older resourceVersion.
const HISTORY: usize = 20_000;

#[derive(Clone, Debug)]
pub struct WatchEvent {
    pub rv: u64,
    pub plural: &'static str,
    pub namespace: String,
    pub kind: &'static str,
    pub object: Arc<Value>,
}

type Key = (&'static str, String, String);

struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<WatchEvent>,
    uid_seq: u64,
    cluster_ip_seq: u32,
}

pub struct Store {
    inner: Mutex<Inner>,
    events: broadcast::Sender<WatchEvent>,
}

/// What kind of write, for managedFields bookkeeping.
#[derive(Clone, Debug, Default)]
pub struct WriteOpts {
    pub manager: String,
    pub dry_run: bool,
    /// "" or "status".
    pub subresource: String,
}

pub enum PatchKind {
    Json,
    Merge,
    Strategic,
    Apply { force: bool },
}

fn now() -> String {
    // RFC 3339 in UTC without a date crate: derived from the Unix time.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

pub fn timestamp() -> String {
    now()
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

fn strip_status(obj: &mut Value) {
    if let Some(m) = obj.as_object_mut() {
        m.remove("status");
    }
}

impl Store {
    pub fn new() -> Arc<Self> {
        let (tx, _) = broadcast::channel(4096);
        let store = Arc::new(Store {
            inner: Mutex::new(Inner {
                rv: 1,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                uid_seq: 0,
                cluster_ip_seq: 10,
            }),
            events: tx,
        });
        let opts = WriteOpts {
            manager: "localcluster".into(),
            ..Default::default()
        };
        for ns in ["default", "kube-system", "kube-public"] {
            let _ = store.create(
                by_plural("namespaces"),
                "",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                &opts,
            );
        }
        store
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, res: &'static ResourceInfo, ns: &str, name: &str) -> ApiResult<Value> {
        let ns = if res.namespaced { ns } else { "" };
        self.lock()
            .objects
            .get(&(res.plural, ns.to_string(), name.to_string()))
            .cloned()
            .ok_or_else(|| ApiError::not_found(res, name))
    }

    /// Objects of a type, in one namespace or all (`None`), and the list's resourceVersion.
    pub fn list(&self, res: &'static ResourceInfo, ns: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let items = inner
            .objects
            .iter()
            .filter(|((p, n, _), _)| {
                *p == res.plural && (ns.is_none() || !res.namespaced || Some(n.as_str()) == ns)
            })
            .map(|(_, v)| v.clone())
            .collect();
        (items, inner.rv)
    }

    /// Events after `rv` still in history (or Err if `rv` is too old) plus a live receiver;
    /// taken under one lock so no event falls between them.
    #[allow(clippy::type_complexity)]
    pub fn watch_from(
        &self,
        rv: u64,
    ) -> Result<(Vec<WatchEvent>, broadcast::Receiver<WatchEvent>), ()> {
        let inner = self.lock();
        let rx = self.events.subscribe();
        if let Some(first) = inner.history.front() {
            if rv.saturating_add(1) < first.rv && inner.history.len() >= HISTORY {
                return Err(());
            }
        }
        let past = inner
            .history
            .iter()
            .filter(|e| e.rv > rv)
            .cloned()
            .collect();
        Ok((past, rx))
    }

    fn emit(
        &self,
        inner: &mut Inner,
        plural: &'static str,
        ns: &str,
        kind: &'static str,
        obj: &Value,
    ) {
        let ev = WatchEvent {
            rv: inner.rv,
            plural,
            namespace: ns.to_string(),
            kind,
            object: Arc::new(obj.clone()),
        };
        inner.history.push_back(ev.clone());
        while inner.history.len() > HISTORY {
            inner.history.pop_front();
        }
        let _ = self.events.send(ev);
    }

    fn check_namespace(&self, inner: &Inner, res: &ResourceInfo, ns: &str) -> ApiResult<()> {
        if res.namespaced
            && !inner
                .objects
                .contains_key(&("namespaces", String::new(), ns.to_string()))
        {
            let mut e = ApiError::new(404, "NotFound", format!("namespaces \"{ns}\" not found"));
            e.details = Some(json!({"name": ns, "kind": "namespaces"}));
            return Err(e);
        }
        Ok(())
    }

    pub fn create(
        &self,
        res: &'static ResourceInfo,
        ns: &str,
        mut obj: Value,
        opts: &WriteOpts,
    ) -> ApiResult<Value> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the request body is not a JSON object",
            ));
        }
        let ns = if res.namespaced { ns } else { "" };
        check_type_meta(res, &obj)?;
        obj["apiVersion"] = json!(res.api_version());
        obj["kind"] = json!(res.kind);
        match obj.get("metadata") {
            None | Some(Value::Null) => obj["metadata"] = json!({}),
            Some(Value::Object(_)) => {}
            Some(_) => {
                return Err(ApiError::bad_request(format!(
                    "{} in version \"{}\" cannot be handled as a {}: metadata must be an object",
                    res.kind, res.version, res.kind
                )))
            }
        }
        let mut inner = self.lock();
        if meta_str(&obj, "name").is_none_or(str::is_empty) {
            if let Some(g) = meta_str(&obj, "generateName").map(str::to_string) {
                inner.uid_seq += 1;
                obj["metadata"]["name"] = json!(format!("{g}{:05x}", inner.uid_seq));
            }
        }
        let name = meta_str(&obj, "name").unwrap_or("").to_string();
        if name.is_empty() {
            return Err(ApiError::invalid(
                res,
                "",
                &[(
                    "metadata.name".into(),
                    "FieldValueRequired",
                    "Required value: name or generateName is required".into(),
                )],
            ));
        }
        if let Some(obj_ns) = meta_str(&obj, "namespace") {
            if res.namespaced && obj_ns != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
        self.check_namespace(&inner, res, ns)?;
        let key = (res.plural, ns.to_string(), name.clone());
        if inner.objects.contains_key(&key) {
            return Err(ApiError::already_exists(res, &name));
        }
        if res.has_status && opts.subresource.is_empty() && res.plural != "pods" {
            // Clients cannot set status on create (the pod's status is the kubelet's too).
            strip_status(&mut obj);
        }
        if res.plural == "pods" {
            strip_status(&mut obj);
        }
        validate(res, &name, &obj)?;
        check_shape(res, &obj)?;
        default_object(res, &mut obj, &mut inner);
        inner.uid_seq += 1;
        let uid = format!("00000000-0000-4000-8000-{:012x}", inner.uid_seq);
        let meta = obj["metadata"].as_object_mut().expect("checked above");
        if res.namespaced {
            meta.insert("namespace".into(), json!(ns));
        } else {
            meta.remove("namespace");
        }
        meta.insert("uid".into(), json!(uid));
        meta.insert("creationTimestamp".into(), json!(now()));
        meta.insert("generation".into(), json!(1));
        meta.remove("resourceVersion");
        meta.remove("managedFields");
        let owned = ssa::field_set(&obj, false, res.has_status);
        set_manager_entry(
            &mut obj,
            &opts.manager,
            "Update",
            &opts.subresource,
            owned,
            res,
        );
        if opts.dry_run {
            obj["metadata"]["resourceVersion"] = json!("");
            return Ok(obj);
        }
        inner.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        self.emit(&mut inner, res.plural, ns, "ADDED", &obj);
        inner.objects.insert(key, obj.clone());
        Ok(obj)
    }

    /// PUT: replace the object (or its status), with optimistic concurrency on resourceVersion.
    pub fn update(
        &self,
        res: &'static ResourceInfo,
        ns: &str,
        name: &str,
        mut obj: Value,
        opts: &WriteOpts,
    ) -> ApiResult<Value> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the request body is not a JSON object",
            ));
        }
        check_type_meta(res, &obj)?;
        if let Some(n) = meta_str(&obj, "name") {
            if n != name {
                return Err(ApiError::bad_request(
                    "the name of the object does not match the name on the URL",
                ));
            }
        }
        let ns = if res.namespaced { ns } else { "" };
        let mut inner = self.lock();
        let key = (res.plural, ns.to_string(), name.to_string());
        let Some(old) = inner.objects.get(&key).cloned() else {
            return Err(ApiError::not_found(res, name));
        };
        if let Some(rv) = meta_str(&obj, "resourceVersion") {
            if !rv.is_empty() && Some(rv) != meta_str(&old, "resourceVersion") {
                return Err(ApiError::modified(res, name));
            }
        }
        obj["apiVersion"] = json!(res.api_version());
        obj["kind"] = json!(res.kind);
        if opts.subresource == "status" {
            let mut merged = old.clone();
            merged["status"] = obj.get("status").cloned().unwrap_or(json!({}));
            obj = merged;
        }
        self.commit(&mut inner, res, ns, name, &old, obj, opts, None)
    }

    /// PATCH of any kind. Apply (server-side apply) may create the object.
    pub fn patch(
        &self,
        res: &'static ResourceInfo,
        ns: &str,
        name: &str,
        kind: PatchKind,
        patch: &Value,
        opts: &WriteOpts,
    ) -> ApiResult<Value> {
        let ns = if res.namespaced { ns } else { "" };
        let mut inner = self.lock();
        let key = (res.plural, ns.to_string(), name.to_string());
        let old = inner.objects.get(&key).cloned();
        let status_only = opts.subresource == "status";
        match kind {
            PatchKind::Apply { force } => {
                if opts.manager.is_empty() {
                    return Err(ApiError::bad_request(
                        "PATCH, application/apply-patch+yaml requires fieldManager to be set",
                    ));
                }
                if !patch.is_object()
                    || !patch
                        .get("metadata")
                        .is_none_or(|m| m.is_object() || m.is_null())
                {
                    return Err(ApiError::bad_request(
                        "the apply configuration and its metadata must be objects",
                    ));
                }
                check_type_meta(res, patch)?;
                if let Some(n) = meta_str(patch, "name") {
                    if n != name {
                        return Err(ApiError::bad_request(
                            "the name of the object does not match the name on the URL",
                        ));
                    }
                }
                let Some(old) = old else {
                    if status_only {
                        return Err(ApiError::not_found(res, name));
                    }
                    drop(inner);
                    let mut obj = patch.clone();
                    if !obj.get("metadata").is_some_and(Value::is_object) {
                        obj["metadata"] = json!({});
                    }
                    obj["metadata"]["name"] = json!(name);
                    let owned = ssa::field_set(patch, false, res.has_status);
                    let created = self.create(res, ns, obj, opts);
                    // The applier owns what it sent, as an Apply entry (create() records Update).
                    return created.map(|mut o| {
                        if let Some(m) = o["metadata"].as_object_mut() {
                            m.remove("managedFields");
                        }
                        set_manager_entry(&mut o, &opts.manager, "Apply", "", owned, res);
                        if !opts.dry_run {
                            let mut inner = self.lock();
                            if let Some(stored) = inner.objects.get_mut(&key) {
                                stored["metadata"]["managedFields"] =
                                    o["metadata"]["managedFields"].clone();
                            }
                        }
                        o
                    });
                };
                if let Some(rv) = meta_str(patch, "resourceVersion") {
                    if Some(rv) != meta_str(&old, "resourceVersion") {
                        return Err(ApiError::modified(res, name));
                    }
                }
                let (new, entries) = apply(res, &old, patch, &opts.manager, force, status_only)?;
                let mut new = new;
                new["metadata"]["managedFields"] = Value::Array(entries);
                self.commit(&mut inner, res, ns, name, &old, new, opts, Some(()))
            }
            other => {
                let Some(old) = old else {
                    return Err(ApiError::not_found(res, name));
                };
                let mut new = old.clone();
                match other {
                    PatchKind::Json => {
                        let p: json_patch::Patch =
                            serde_json::from_value(patch.clone()).map_err(|e| {
                                ApiError::bad_request(format!("invalid JSON patch: {e}"))
                            })?;
                        json_patch::patch(&mut new, &p).map_err(|e| {
                            ApiError::new(422, "Invalid", format!("the JSON patch failed: {e}"))
                        })?;
                    }
                    PatchKind::Merge => {
                        if !patch.is_object() {
                            return Err(ApiError::bad_request("the merge patch is not an object"));
                        }
                        json_patch::merge(&mut new, patch);
                    }
                    PatchKind::Strategic => {
                        if !patch.is_object() {
                            return Err(ApiError::bad_request("the patch is not an object"));
                        }
                        ssa::merge(&mut new, patch, "", true);
                    }
                    PatchKind::Apply { .. } => unreachable!(),
                }
                if let Some(rv) = meta_str(patch, "resourceVersion") {
                    if Some(rv) != meta_str(&old, "resourceVersion") {
                        return Err(ApiError::modified(res, name));
                    }
                }
                if status_only {
                    let mut merged = old.clone();
                    merged["status"] = new.get("status").cloned().unwrap_or(json!({}));
                    new = merged;
                }
                self.commit(&mut inner, res, ns, name, &old, new, opts, None)
            }
        }
    }

    /// Validates and stores a new version of an existing object.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        inner: &mut Inner,
        res: &'static ResourceInfo,
        ns: &str,
        name: &str,
        old: &Value,
        mut new: Value,
        opts: &WriteOpts,
        applied: Option<()>,
    ) -> ApiResult<Value> {
        let status_only = opts.subresource == "status";
        if !new.is_object()
            || !new
                .get("metadata")
                .is_none_or(|m| m.is_object() || m.is_null())
        {
            return Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: metadata must be an object",
                res.kind, res.version, res.kind
            )));
        }
        if new.get("metadata").is_none_or(Value::is_null) {
            new["metadata"] = json!({});
        }
        // Identity and system metadata come from the stored object.
        for f in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
        ] {
            match old["metadata"].get(f) {
                Some(v) => new["metadata"][f] = v.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(f);
                    }
                }
            }
        }
        new["apiVersion"] = json!(res.api_version());
        new["kind"] = json!(res.kind);
        if res.has_status && !status_only {
            match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => strip_status(&mut new),
            }
        }
        if applied.is_none() {
            new["metadata"]["managedFields"] = old["metadata"]
                .get("managedFields")
                .cloned()
                .unwrap_or(json!([]));
        }
        if res.plural == "services" && new["spec"].get("clusterIP").is_none() {
            // As upstream: an update that omits the allocated address keeps it.
            for f in ["clusterIP", "clusterIPs"] {
                if let Some(v) = old["spec"].get(f) {
                    new["spec"][f] = v.clone();
                }
            }
        }
        validate(res, name, &new)?;
        check_shape(res, &new)?;
        default_object(res, &mut new, inner);
        check_immutable(res, name, old, &new)?;
        if applied.is_none() {
            let changed =
                ssa::changed_fields(old, &new, status_only, res.has_status && !status_only);
            if !changed.is_empty() {
                record_update(&mut new, &opts.manager, &opts.subresource, &changed, res);
            }
        }
        // generation counts changes outside metadata and status.
        let spec_changed = {
            let strip = |v: &Value| {
                let mut v = v.clone();
                if let Some(m) = v.as_object_mut() {
                    m.remove("metadata");
                    m.remove("status");
                }
                v
            };
            strip(old) != strip(&new)
        };
        if spec_changed {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
            new["metadata"]["generation"] = json!(g + 1);
        }
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if new == *old || opts.dry_run {
            // A no-op write keeps the resourceVersion and emits nothing, as upstream.
            return Ok(new);
        }
        inner.rv += 1;
        new["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        self.emit(inner, res.plural, ns, "MODIFIED", &new);
        inner
            .objects
            .insert((res.plural, ns.to_string(), name.to_string()), new.clone());
        Ok(new)
    }

    pub fn delete(
        &self,
        res: &'static ResourceInfo,
        ns: &str,
        name: &str,
        precondition_rv: Option<&str>,
        dry_run: bool,
    ) -> ApiResult<Value> {
        let ns = if res.namespaced { ns } else { "" };
        let mut inner = self.lock();
        let key = (res.plural, ns.to_string(), name.to_string());
        let Some(old) = inner.objects.get(&key).cloned() else {
            return Err(ApiError::not_found(res, name));
        };
        if let Some(rv) = precondition_rv {
            if Some(rv) != meta_str(&old, "resourceVersion") {
                return Err(ApiError::modified(res, name));
            }
        }
        if dry_run {
            return Ok(old);
        }
        // No finalizers or graceful deletion: objects go at once (documented in the README).
        inner.objects.remove(&key);
        inner.rv += 1;
        let mut gone = old.clone();
        gone["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        self.emit(&mut inner, res.plural, ns, "DELETED", &gone);
        if res.plural == "namespaces" {
            let doomed: Vec<Key> = inner
                .objects
                .keys()
                .filter(|(_, n, _)| n == name)
                .cloned()
                .collect();
            for k in doomed {
                if let Some(o) = inner.objects.remove(&k) {
                    inner.rv += 1;
                    let mut o = o;
                    o["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
                    self.emit(&mut inner, k.0, &k.1, "DELETED", &o);
                }
            }
        }
        Ok(old)
    }

    /// Controller-side status/metadata write: `f` edits a copy; stored only if it changed.
    pub fn mutate(
        &self,
        res: &'static ResourceInfo,
        ns: &str,
        name: &str,
        manager: &str,
        subresource: &str,
        f: impl FnOnce(&mut Value),
    ) -> ApiResult<Value> {
        let ns = if res.namespaced { ns } else { "" };
        let mut inner = self.lock();
        let key = (res.plural, ns.to_string(), name.to_string());
        let Some(old) = inner.objects.get(&key).cloned() else {
            return Err(ApiError::not_found(res, name));
        };
        let mut new = old.clone();
        f(&mut new);
        if new == old {
            return Ok(old);
        }
        let opts = WriteOpts {
            manager: manager.into(),
            dry_run: false,
            subresource: subresource.into(),
        };
        self.commit(&mut inner, res, ns, name, &old, new, &opts, None)
    }
}

/// Decodes the object as its k8s-openapi type, as the real server decodes every body: wrong
/// shapes (a string where an object belongs, a missing container name) are 400 BadRequest, and
/// the defaulting below can rely on the shapes it edits.
fn check_shape(res: &ResourceInfo, obj: &Value) -> ApiResult<()> {
    use k8s_openapi::api::{apps::v1 as apps, core::v1 as core};
    fn de<T: serde::de::DeserializeOwned>(v: &Value) -> Result<(), String> {
        serde_json::from_value::<T>(v.clone())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
    let r = match res.plural {
        "namespaces" => de::<core::Namespace>(obj),
        "configmaps" => de::<core::ConfigMap>(obj),
        "secrets" => de::<core::Secret>(obj),
        "services" => de::<core::Service>(obj),
        "persistentvolumes" => de::<core::PersistentVolume>(obj),
        "persistentvolumeclaims" => de::<core::PersistentVolumeClaim>(obj),
        "pods" => de::<core::Pod>(obj),
        "statefulsets" => de::<apps::StatefulSet>(obj),
        _ => Ok(()),
    };
    r.map_err(|e| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            res.kind, res.version, res.kind
        ))
    })
}

fn check_type_meta(res: &ResourceInfo, obj: &Value) -> ApiResult<()> {
    if let Some(k) = obj.get("kind").and_then(Value::as_str) {
        if k != res.kind {
            return Err(ApiError::bad_request(format!(
                "the kind \"{k}\" of the object does not match the resource {} (kind {})",
                res.qualified(),
                res.kind
            )));
        }
    }
    if let Some(av) = obj.get("apiVersion").and_then(Value::as_str) {
        if av != res.api_version() {
            return Err(ApiError::bad_request(format!(
                "the apiVersion \"{av}\" of the object does not match {}",
                res.api_version()
            )));
        }
    }
    Ok(())
}

fn entries(obj: &Value) -> Vec<Value> {
    obj["metadata"]
        .get("managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn entry_set(e: &Value) -> FieldSet {
    e.get("fieldsV1")
        .map(ssa::from_fields_v1)
        .unwrap_or_default()
}

fn entry_sub(e: &Value) -> &str {
    e.get("subresource").and_then(Value::as_str).unwrap_or("")
}

fn make_entry(manager: &str, op: &str, sub: &str, set: &FieldSet, res: &ResourceInfo) -> Value {
    let mut e = json!({
        "manager": manager,
        "operation": op,
        "apiVersion": res.api_version(),
        "time": now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": ssa::to_fields_v1(set),
    });
    if !sub.is_empty() {
        e["subresource"] = json!(sub);
    }
    e
}

fn set_manager_entry(
    obj: &mut Value,
    manager: &str,
    op: &str,
    sub: &str,
    set: FieldSet,
    res: &ResourceInfo,
) {
    let mut es = entries(obj);
    es.retain(|e| !(e["manager"] == manager && e["operation"] == op && entry_sub(e) == sub));
    if !set.is_empty() {
        es.push(make_entry(manager, op, sub, &set, res));
    }
    obj["metadata"]["managedFields"] = Value::Array(es);
}

/// An Update-operation write: the writer takes the fields it changed from every other manager.
fn record_update(
    obj: &mut Value,
    manager: &str,
    sub: &str,
    changed: &FieldSet,
    res: &ResourceInfo,
) {
    let mut mine = FieldSet::new();
    let mut out = Vec::new();
    for e in entries(obj) {
        let set = entry_set(&e);
        if e["manager"] == manager && e["operation"] == "Update" && entry_sub(&e) == sub {
            mine = set;
            continue;
        }
        let rest: FieldSet = set.difference(changed).cloned().collect();
        if rest.is_empty() {
            continue;
        }
        let mut e2 = e.clone();
        e2["fieldsV1"] = ssa::to_fields_v1(&rest);
        out.push(e2);
    }
    let present = ssa::field_set(obj, sub == "status", sub != "status" && res.has_status);
    mine.extend(changed.iter().filter(|p| present.contains(*p)).cloned());
    mine.retain(|p| present.contains(p));
    if !mine.is_empty() {
        out.push(make_entry(manager, "Update", sub, &mine, res));
    }
    obj["metadata"]["managedFields"] = Value::Array(out);
}

/// Server-side apply of `cfg` by `manager` onto `live`. Returns the merged object and the new
/// managedFields, or the 409 conflict the real server returns.
fn apply(
    res: &ResourceInfo,
    live: &Value,
    cfg: &Value,
    manager: &str,
    force: bool,
    status_only: bool,
) -> ApiResult<(Value, Vec<Value>)> {
    let sub = if status_only { "status" } else { "" };
    let skip_status = !status_only && res.has_status;
    let new_set = ssa::field_set(cfg, status_only, skip_status);
    let mut old_mine = FieldSet::new();
    let mut others: Vec<(Value, FieldSet)> = Vec::new();
    let mut kept: Vec<Value> = Vec::new();
    for e in entries(live) {
        if entry_sub(&e) != sub {
            kept.push(e);
            continue;
        }
        if e["manager"] == manager && e["operation"] == "Apply" {
            old_mine = entry_set(&e);
            continue;
        }
        let set = entry_set(&e);
        others.push((e, set));
    }
    // A field owned by another manager conflicts only if this apply would change its value;
    // setting the same value makes the appliers co-owners, as on a real server.
    let mut conflicts: Vec<(String, String, String)> = Vec::new(); // (manager, op-suffix, field)
    for (e, set) in others.iter_mut() {
        let mut lost = FieldSet::new();
        for p in new_set.intersection(set) {
            if p.last().map(String::as_str) == Some(".") {
                continue;
            }
            if ssa::value_at(live, p) != ssa::value_at(cfg, p) {
                lost.insert(p.clone());
            }
        }
        if lost.is_empty() {
            continue;
        }
        if force {
            set.retain(|p| !lost.contains(p));
        } else {
            let m = e["manager"].as_str().unwrap_or("").to_string();
            let using = if e["operation"] == "Update" {
                format!(" using {}", e["apiVersion"].as_str().unwrap_or(""))
            } else {
                String::new()
            };
            for p in lost {
                conflicts.push((m.clone(), using.clone(), ssa::display_path(&p)));
            }
        }
    }
    if !conflicts.is_empty() {
        let n = conflicts.len();
        let message = if n == 1 {
            let (m, u, f) = &conflicts[0];
            format!("Apply failed with 1 conflict: conflict with \"{m}\"{u}: {f}")
        } else {
            let mut s = format!("Apply failed with {n} conflicts: ");
            let mut by_mgr: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
            for (m, u, f) in &conflicts {
                by_mgr
                    .entry((m.clone(), u.clone()))
                    .or_default()
                    .push(f.clone());
            }
            let parts: Vec<String> = by_mgr
                .iter()
                .map(|((m, u), fs)| {
                    if fs.len() == 1 {
                        format!("conflict with \"{m}\"{u}: {}", fs[0])
                    } else {
                        format!(
                            "conflicts with \"{m}\"{u}:\n{}",
                            fs.iter()
                                .map(|f| format!("- {f}"))
                                .collect::<Vec<_>>()
                                .join("\n")
                        )
                    }
                })
                .collect();
            s.push_str(&parts.join("\n"));
            s
        };
        let mut e = ApiError::new(409, "Conflict", message);
        e.details = Some(json!({
            "causes": conflicts.iter().map(|(m, u, f)| json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with \"{m}\"{u}"),
                "field": f,
            })).collect::<Vec<_>>()
        }));
        return Err(e);
    }
    // Fields this manager applied before but not now are removed unless someone else owns them.
    let mut merged = live.clone();
    let other_union: FieldSet = others.iter().flat_map(|(_, s)| s.iter().cloned()).collect();
    let mut dropped: Vec<&Vec<String>> = old_mine.difference(&new_set).collect();
    // Deepest first, so removing an item happens after its fields.
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in dropped {
        let owned_elsewhere = if p.last().map(String::as_str) == Some(".") {
            ssa::has_prefix(&other_union, &p[..p.len() - 1])
                || ssa::has_prefix(&new_set, &p[..p.len() - 1])
        } else {
            ssa::has_prefix(&other_union, p) || ssa::has_prefix(&new_set, p)
        };
        if !owned_elsewhere {
            ssa::remove_at(&mut merged, p);
        }
    }
    let mut body = cfg.clone();
    if let Some(m) = body.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
        if status_only {
            m.retain(|k, _| k == "status");
        } else if res.has_status {
            m.remove("status");
        }
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            for f in [
                "managedFields",
                "resourceVersion",
                "uid",
                "creationTimestamp",
                "generation",
            ] {
                meta.remove(f);
            }
        }
    }
    ssa::merge(&mut merged, &body, "", false);
    let mut out = kept;
    for (mut e, set) in others {
        if set.is_empty() {
            continue;
        }
        e["fieldsV1"] = ssa::to_fields_v1(&set);
        out.push(e);
    }
    if !new_set.is_empty() {
        out.push(make_entry(manager, "Apply", sub, &new_set, res));
    }
    Ok((merged, out))
}

/// The defaults the real API server fills in that clients (and kubectl diff) commonly see.
fn default_object(res: &ResourceInfo, obj: &mut Value, inner: &mut Inner) {
    match res.plural {
        "namespaces" => {
            let name = obj["metadata"]["name"].clone();
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
            if obj.get("status").is_none() {
                obj["status"] = json!({"phase": "Active"});
            }
        }
        "secrets" => {
            if obj.get("type").is_none() {
                obj["type"] = json!("Opaque");
            }
            if let Some(Value::Object(sd)) =
                obj.as_object_mut().and_then(|m| m.remove("stringData"))
            {
                for (k, v) in sd {
                    obj["data"][k] = json!(base64(v.as_str().unwrap_or("").as_bytes()));
                }
            }
        }
        "services" => {
            let spec = &mut obj["spec"];
            if spec.get("type").is_none() {
                spec["type"] = json!("ClusterIP");
            }
            if spec.get("sessionAffinity").is_none() {
                spec["sessionAffinity"] = json!("None");
            }
            if spec.get("clusterIP").is_none() {
                inner.cluster_ip_seq += 1;
                let s = inner.cluster_ip_seq;
                let ip = format!("10.96.{}.{}", s / 250, s % 250 + 1);
                spec["clusterIP"] = json!(ip);
                spec["clusterIPs"] = json!([ip]);
            }
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports {
                    if p.get("protocol").is_none() {
                        p["protocol"] = json!("TCP");
                    }
                    if p.get("targetPort").is_none() {
                        p["targetPort"] = p["port"].clone();
                    }
                }
            }
        }
        "persistentvolumes" => {
            let spec = &mut obj["spec"];
            if spec.get("persistentVolumeReclaimPolicy").is_none() {
                spec["persistentVolumeReclaimPolicy"] = json!("Retain");
            }
            if spec.get("volumeMode").is_none() {
                spec["volumeMode"] = json!("Filesystem");
            }
            if obj.get("status").is_none() {
                obj["status"] = json!({"phase": "Pending"});
            }
        }
        "persistentvolumeclaims" => {
            if obj["spec"].get("volumeMode").is_none() {
                obj["spec"]["volumeMode"] = json!("Filesystem");
            }
            if obj.get("status").is_none() {
                obj["status"] = json!({"phase": "Pending"});
            }
        }
        "pods" => default_pod_spec(&mut obj["spec"]),
        "statefulsets" => {
            let spec = &mut obj["spec"];
            if spec.get("replicas").is_none() {
                spec["replicas"] = json!(1);
            }
            if spec.get("podManagementPolicy").is_none() {
                spec["podManagementPolicy"] = json!("OrderedReady");
            }
            if spec.get("revisionHistoryLimit").is_none() {
                spec["revisionHistoryLimit"] = json!(10);
            }
            if spec.get("updateStrategy").is_none() {
                spec["updateStrategy"] =
                    json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}});
            }
            if spec.get("persistentVolumeClaimRetentionPolicy").is_none() {
                spec["persistentVolumeClaimRetentionPolicy"] =
                    json!({"whenDeleted": "Retain", "whenScaled": "Retain"});
            }
            if let Some(t) = spec
                .get_mut("volumeClaimTemplates")
                .and_then(Value::as_array_mut)
            {
                for t in t {
                    if t["spec"].get("volumeMode").is_none() && t.get("spec").is_some() {
                        t["spec"]["volumeMode"] = json!("Filesystem");
                    }
                }
            }
            if spec.get("template").is_some() {
                default_pod_spec(&mut spec["template"]["spec"]);
            }
        }
        _ => {}
    }
}

fn default_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    if spec.get("restartPolicy").is_none() {
        spec["restartPolicy"] = json!("Always");
    }
    if let Some(cs) = spec.get_mut("containers").and_then(Value::as_array_mut) {
        for c in cs {
            if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports {
                    if p.get("protocol").is_none() {
                        p["protocol"] = json!("TCP");
                    }
                }
            }
        }
    }
}

fn validate(res: &ResourceInfo, name: &str, obj: &Value) -> ApiResult<()> {
    let mut causes: Vec<(String, &str, String)> = Vec::new();
    match res.plural {
        "statefulsets" => {
            let sel = &obj["spec"]["selector"];
            if sel.is_null() {
                causes.push((
                    "spec.selector".into(),
                    "FieldValueRequired",
                    "Required value".into(),
                ));
            } else if let Some(ml) = sel.get("matchLabels").and_then(Value::as_object) {
                let labels = &obj["spec"]["template"]["metadata"]["labels"];
                if ml.iter().any(|(k, v)| labels.get(k) != Some(v)) {
                    causes.push((
                        "spec.template.metadata.labels".into(),
                        "FieldValueInvalid",
                        format!(
                            "Invalid value: {}: `selector` does not match template `labels`",
                            serde_json::to_string(labels).unwrap_or_default()
                        ),
                    ));
                }
            }
            if obj["spec"]["template"]["spec"]["containers"]
                .as_array()
                .is_none_or(Vec::is_empty)
            {
                causes.push((
                    "spec.template.spec.containers".into(),
                    "FieldValueRequired",
                    "Required value".into(),
                ));
            }
        }
        "pods"
            if obj["spec"]["containers"]
                .as_array()
                .is_none_or(Vec::is_empty) =>
        {
            causes.push((
                "spec.containers".into(),
                "FieldValueRequired",
                "Required value".into(),
            ));
        }
        _ => {}
    }
    let pod_spec = match res.plural {
        "pods" => Some(("spec", &obj["spec"])),
        "statefulsets" => Some(("spec.template.spec", &obj["spec"]["template"]["spec"])),
        _ => None,
    };
    if let Some((prefix, spec)) = pod_spec {
        for (i, c) in spec["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            if c["name"].as_str().is_none_or(str::is_empty) {
                causes.push((
                    format!("{prefix}.containers[{i}].name"),
                    "FieldValueRequired",
                    "Required value".into(),
                ));
            }
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(res, name, &causes))
    }
}

/// The immutable fields the plugin can trip over, with the real server's messages.
fn check_immutable(res: &ResourceInfo, name: &str, old: &Value, new: &Value) -> ApiResult<()> {
    let forbid = |field: &str, msg: &str| {
        Err(ApiError::invalid(
            res,
            name,
            &[(
                field.to_string(),
                "FieldValueForbidden",
                format!("Forbidden: {msg}"),
            )],
        ))
    };
    match res.plural {
        "statefulsets" => {
            let mut o = old["spec"].clone();
            let mut n = new["spec"].clone();
            for f in [
                "replicas",
                "ordinals",
                "template",
                "updateStrategy",
                "persistentVolumeClaimRetentionPolicy",
                "minReadySeconds",
                "revisionHistoryLimit",
            ] {
                if let Some(m) = o.as_object_mut() {
                    m.remove(f);
                }
                if let Some(m) = n.as_object_mut() {
                    m.remove(f);
                }
            }
            if o != n {
                return forbid(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                );
            }
        }
        "persistentvolumes" => {
            let src = |v: &Value| {
                let mut s = v["spec"].clone();
                if let Some(m) = s.as_object_mut() {
                    m.retain(|k, _| {
                        !matches!(
                            k.as_str(),
                            "capacity"
                                | "accessModes"
                                | "claimRef"
                                | "persistentVolumeReclaimPolicy"
                                | "storageClassName"
                                | "mountOptions"
                                | "volumeMode"
                                | "nodeAffinity"
                                | "volumeAttributesClassName"
                        )
                    });
                }
                s
            };
            if src(old) != src(new) {
                return forbid(
                    "spec.persistentvolumesource",
                    "spec.persistentvolumesource is immutable after creation",
                );
            }
        }
        "persistentvolumeclaims" => {
            let strip = |v: &Value| {
                let mut s = v["spec"].clone();
                if let Some(m) = s.as_object_mut() {
                    m.remove("resources");
                    m.remove("volumeAttributesClassName");
                    // The binder fills volumeName in once.
                    if old["spec"].get("volumeName").is_none() {
                        m.remove("volumeName");
                    }
                }
                s
            };
            if strip(old) != strip(new) {
                return forbid(
                    "spec",
                    "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
                );
            }
        }
        "services"
            if old["spec"].get("clusterIP").is_some()
                && old["spec"]["clusterIP"] != new["spec"]["clusterIP"] =>
        {
            return Err(ApiError::invalid(
                res,
                name,
                &[(
                    "spec.clusterIP".into(),
                    "FieldValueInvalid",
                    "Invalid value: field is immutable".into(),
                )],
            ));
        }
        _ => {}
    }
    Ok(())
}

pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\n' | b'\r' => continue,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Pulls a string map field (`labels`, `matchLabels`) out of a JSON object.
pub fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m: &Map<String, Value>| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}
