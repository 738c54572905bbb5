//! The resource types this emulated API server serves, and the Status errors it returns.

use serde_json::{json, Value};

/// One served resource type.
#[derive(Debug)]
pub struct ResourceInfo {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    /// Has a `/status` subresource: writes to the main resource keep the live status.
    pub has_status: bool,
    pub short_names: &'static [&'static str],
    /// Extra subresources listed in discovery (besides `status`).
    pub subresources: &'static [&'static str],
}

impl ResourceInfo {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `statefulsets.apps` / `pods`, as the real server names a resource in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

pub static RESOURCES: &[ResourceInfo] = &[
    ResourceInfo {
        group: "",
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        has_status: true,
        short_names: &["ns"],
        subresources: &[],
    },
    ResourceInfo {
        group: "",
        version: "v1",
        plural: "configmaps",
        singular: "configmap",
        kind: "ConfigMap",
        namespaced: true,
        has_status: false,
        short_names: &["cm"],
        subresources: &[],
    },
    ResourceInfo {
        group: "",
        version: "v1",
        plural: "secrets",
        singular: "secret",
        kind: "Secret",
        namespaced: true,
        has_status: false,
        short_names: &[],
        subresources: &[],
    },
    ResourceInfo {
        group: "",
        version: "v1",
        plural: "services",
        singular: "service",
        kind: "Service",
        namespaced: true,
        has_status: true,
        short_names: &["svc"],
        subresources: &[],
    },
    ResourceInfo {
        group: "",
        version: "v1",
        plural: "persistentvolumes",
        singular: "persistentvolume",
        kind: "PersistentVolume",
        namespaced: false,
        has_status: true,
        short_names: &["pv"],
        subresources: &[],
    },
    ResourceInfo {
        group: "",
        version: "v1",
        plural: "persistentvolumeclaims",
        singular: "persistentvolumeclaim",
        kind: "PersistentVolumeClaim",
        namespaced: true,
        has_status: true,
        short_names: &["pvc"],
        subresources: &[],
    },
    ResourceInfo {
        group: "",
        version: "v1",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        has_status: true,
        short_names: &["po"],
        subresources: &["exec", "portforward", "log"],
    },
    ResourceInfo {
        group: "apps",
        version: "v1",
        plural: "statefulsets",
        singular: "statefulset",
        kind: "StatefulSet",
        namespaced: true,
        has_status: true,
        short_names: &["sts"],
        subresources: &["scale"],
    },
];

pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

pub fn by_plural(plural: &str) -> &'static ResourceInfo {
    RESOURCES
        .iter()
        .find(|r| r.plural == plural)
        .expect("internal callers name served resources only")
}

/// A Kubernetes `Status` failure, the body of every error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }
    pub fn not_found(res: &ResourceInfo, name: &str) -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", res.qualified(), name),
        );
        e.details = Some(json!({"name": name, "group": res.group, "kind": res.plural}));
        e
    }
    pub fn already_exists(res: &ResourceInfo, name: &str) -> Self {
        let mut e = Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", res.qualified(), name),
        );
        e.details = Some(json!({"name": name, "group": res.group, "kind": res.plural}));
        e
    }
    pub fn modified(res: &ResourceInfo, name: &str) -> Self {
        let mut e = Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                res.qualified(),
                name
            ),
        );
        e.details = Some(json!({"name": name, "group": res.group, "kind": res.plural}));
        e
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }
    /// 422 with one cause per (field, cause-reason, message).
    pub fn invalid(res: &ResourceInfo, name: &str, causes: &[(String, &str, String)]) -> Self {
        let list: Vec<String> = causes.iter().map(|(f, _, m)| format!("{f}: {m}")).collect();
        let msg = if list.len() == 1 {
            list[0].clone()
        } else {
            format!("[{}]", list.join(", "))
        };
        let mut e = Self::new(
            422,
            "Invalid",
            format!("{} \"{}\" is invalid: {}", res.kind, name, msg),
        );
        e.details = Some(json!({
            "name": name,
            "group": res.group,
            "kind": res.kind,
            "causes": causes.iter().map(|(f, r, m)| json!({"reason": r, "message": m, "field": f})).collect::<Vec<_>>(),
        }));
        e
    }

    pub fn to_status(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        v
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
