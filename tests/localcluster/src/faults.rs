//! Fault injection and request accounting for the HTTP API (controllers bypass both).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Fail matching API requests with an HTTP error.
#[derive(Clone, Debug, Default)]
pub struct FailRule {
    /// Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection,
    /// or the pods subresources exec / portforward. `None` matches any.
    pub verb: Option<String>,
    /// Plural resource name (`statefulsets`); `None` matches any, including discovery.
    pub resource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// 500 (InternalError), 403 (Forbidden), 429, 503 … any HTTP error code.
    pub status: u16,
    /// Fail only this many matching requests, then stop; `None` = until cleared.
    pub times: Option<u64>,
}

impl FailRule {
    pub fn new(status: u16) -> Self {
        FailRule {
            status,
            ..Default::default()
        }
    }
    pub fn verb(mut self, v: &str) -> Self {
        self.verb = Some(v.into());
        self
    }
    pub fn resource(mut self, r: &str) -> Self {
        self.resource = Some(r.into());
        self
    }
    pub fn namespace(mut self, n: &str) -> Self {
        self.namespace = Some(n.into());
        self
    }
    pub fn name(mut self, n: &str) -> Self {
        self.name = Some(n.into());
        self
    }
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }
}

/// One API request as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub verb: String,
    pub resource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub dry_run: bool,
    /// The response code (0 for streams that never finished a response).
    pub status: u16,
}

impl RequestRecord {
    /// A request that changes (or would change, without dry-run) stored objects.
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }
}

#[derive(Default)]
pub(crate) struct Faults {
    latency: Mutex<Duration>,
    rules: Mutex<Vec<FailRule>>,
    log: Mutex<Vec<RequestRecord>>,
}

impl Faults {
    pub(crate) fn set_latency(&self, d: Duration) {
        *self.latency.lock().unwrap_or_else(|e| e.into_inner()) = d;
    }
    pub(crate) fn latency(&self) -> Duration {
        *self.latency.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub(crate) fn add_rule(&self, r: FailRule) {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).push(r);
    }
    pub(crate) fn clear(&self) {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.set_latency(Duration::ZERO);
    }
    /// The status code to fail this request with, consuming one use of the rule.
    pub(crate) fn check(&self, rec: &RequestRecord) -> Option<u16> {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let idx = rules.iter().position(|r| {
            r.verb.as_ref().is_none_or(|v| *v == rec.verb)
                && r.resource
                    .as_ref()
                    .is_none_or(|v| Some(v) == rec.resource.as_ref())
                && r.namespace
                    .as_ref()
                    .is_none_or(|v| Some(v) == rec.namespace.as_ref())
                && r.name.as_ref().is_none_or(|v| Some(v) == rec.name.as_ref())
        })?;
        let status = rules[idx].status;
        if let Some(t) = rules[idx].times.as_mut() {
            *t = t.saturating_sub(1);
            if *t == 0 {
                rules.remove(idx);
            }
        }
        Some(status)
    }
    pub(crate) fn record(&self, rec: RequestRecord) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).push(rec);
    }
    pub(crate) fn log(&self) -> Vec<RequestRecord> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    pub(crate) fn reset_log(&self) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
    pub(crate) fn counts(&self) -> RequestCounts {
        let mut by_verb = BTreeMap::new();
        let mut writes = 0;
        let mut dry_run_writes = 0;
        for r in self.log.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            *by_verb.entry(r.verb.clone()).or_insert(0) += 1;
            if r.is_write() {
                if r.dry_run {
                    dry_run_writes += 1;
                } else {
                    writes += 1;
                }
            }
        }
        RequestCounts {
            by_verb,
            writes,
            dry_run_writes,
        }
    }
}

/// Request counts since start (or the last reset).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Every request by verb (dry-run ones included).
    pub by_verb: BTreeMap<String, u64>,
    /// create/update/patch/delete/deletecollection requests without dryRun.
    pub writes: u64,
    /// The same verbs with `dryRun=All`.
    pub dry_run_writes: u64,
}

impl RequestCounts {
    pub fn verb(&self, v: &str) -> u64 {
        self.by_verb.get(v).copied().unwrap_or(0)
    }
}

/// Wait for a duration in async code without holding locks (used for API latency).
pub(crate) async fn delay(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}
