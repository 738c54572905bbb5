//! API errors rewritten into something a user can act on: who was refused what, which field the
//! server rejected and why, and whether a 422 means an immutable field (a replace) or a plain
//! mistake in the spec.

use serde_json::Value;

use super::objects::{api_resource, describe_object};

/// The HTTP status of an API error, if it is one.
pub(crate) fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// The `reason` of one cause in a 422's Status: apimachinery's `field.ErrorType` as the server
/// sends it (`metav1.CauseType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CauseReason {
    /// `FieldValueInvalid`: the value is wrong (also what `ValidateImmutableField` reports).
    Invalid,
    /// `FieldValueForbidden`: the change is not allowed (most update-only rules).
    Forbidden,
    Required,
    NotSupported,
    Duplicate,
    TooLong,
    TooMany,
    TypeInvalid,
    /// A reason this plugin does not know; kept verbatim for the message.
    Other(String),
}

impl CauseReason {
    fn parse(reason: &str) -> CauseReason {
        match reason {
            "FieldValueInvalid" => CauseReason::Invalid,
            "FieldValueForbidden" => CauseReason::Forbidden,
            "FieldValueRequired" => CauseReason::Required,
            "FieldValueNotSupported" => CauseReason::NotSupported,
            "FieldValueDuplicate" => CauseReason::Duplicate,
            "FieldValueTooLong" => CauseReason::TooLong,
            "FieldValueTooMany" => CauseReason::TooMany,
            "FieldValueTypeInvalid" => CauseReason::TypeInvalid,
            other => CauseReason::Other(other.to_string()),
        }
    }
}

/// One cause of a 422, as `details.causes[]` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidCause {
    pub reason: CauseReason,
    /// The field path as the server spells it (`spec.template.metadata.labels`).
    pub field: String,
    /// The server's words, e.g. `Invalid value: "x": field is immutable`.
    pub message: String,
}

impl InvalidCause {
    /// Whether the cause says the field cannot change in place, so that only deleting and
    /// creating the object again can apply it. The reason is typed; which Invalid/Forbidden
    /// causes mean "immutable" is only in the message, in upstream's fixed wording:
    /// - `field is immutable`: apimachinery's `FieldImmutableErrorMsg` (`ValidateImmutableField`
    ///   reports it as Invalid, declarative `+k8s:immutable` validation as Forbidden); also
    ///   ConfigMap/Secret data under `immutable: true` ("field is immutable when `immutable` is set");
    /// - `... is immutable after creation`: a PersistentVolume's source, a claim's spec;
    /// - `updates to statefulset spec for fields other than ... are forbidden`: StatefulSet.
    pub fn is_immutable(&self) -> bool {
        let message = self.message.as_str();
        match self.reason {
            CauseReason::Invalid => message.contains("field is immutable"),
            CauseReason::Forbidden => {
                message.contains("field is immutable")
                    || message.contains("is immutable after creation")
                    || (message.contains("updates to statefulset spec for fields other than")
                        && message.contains("are forbidden"))
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for InvalidCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "field `{}`: {}", self.field, self.message)
        }
    }
}

/// The causes of a 422. A Status without causes yields none; callers must not read that as
/// "immutable".
pub(crate) fn invalid_causes(status: &kube::core::Status) -> Vec<InvalidCause> {
    status
        .details
        .as_ref()
        .map(|details| {
            details
                .causes
                .iter()
                .map(|cause| InvalidCause {
                    reason: CauseReason::parse(&cause.reason),
                    field: cause.field.clone(),
                    message: cause.message.clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Rewrites an API error into a sentence that says what failed and what to do about it.
pub(crate) fn explain(
    error: kube::Error,
    verb: &str,
    object: &Value,
    connection: &str,
) -> anyhow::Error {
    let kind = object["kind"].as_str().unwrap_or_default();
    let namespace = object["metadata"]["namespace"].as_str();
    let (resource, namespaced) = api_resource(kind)
        .map(|(r, namespaced)| (r.plural, namespaced))
        .unwrap_or_else(|| (kind.to_lowercase(), namespace.is_some()));
    // A list names no object: say which resource, and where.
    let target = match object["metadata"]["name"].as_str() {
        Some(_) => describe_object(object),
        None => match namespace.filter(|_| namespaced) {
            Some(namespace) => format!("{resource} in namespace `{namespace}`"),
            None => format!("{resource} (cluster-wide)"),
        },
    };
    let scope = match namespace.filter(|_| namespaced) {
        Some(namespace) => format!(" in namespace `{namespace}` (a Role there will do)"),
        None => format!(
            " cluster-wide: {resource} are cluster-scoped, so only a ClusterRole (with a \
             ClusterRoleBinding) grants it"
        ),
    };
    match &error {
        kube::Error::Api(status) => match status.code {
            401 => anyhow::anyhow!(
                "cannot {verb} {target}: the API server does not accept your credentials (401 \
                 Unauthorized). Refresh them, or pick another --user/--context ({connection})"
            ),
            403 => anyhow::anyhow!(
                "cannot {verb} {target}: RBAC forbids it (403 Forbidden). Your user needs `{verb}` \
                 on `{resource}`{scope}. The server said: {}",
                status.message
            ),
            409 => anyhow::anyhow!(
                "cannot {verb} {target}: conflict (409): {}. Another field manager owns these \
                 fields: re-run with --force-conflicts to take them over, drop them from the spec, \
                 or set them to the live value",
                status.message
            ),
            422 => {
                let causes = invalid_causes(status);
                let reasons = if causes.is_empty() {
                    status.message.clone()
                } else {
                    causes
                        .iter()
                        .map(InvalidCause::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                anyhow::anyhow!(
                    "cannot {verb} {target}: the API server rejected it as invalid (422): {reasons}"
                )
            }
            code => anyhow::anyhow!(
                "cannot {verb} {target}: the API server answered {code} {}: {}",
                status.reason,
                status.message
            ),
        },
        _ => anyhow::Error::new(error).context(format!(
            "cannot {verb} {target}: the API server is unreachable ({connection})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;
    use serde_json::json;

    fn api_error(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(Status::failure(message, "Reason").with_code(code).boxed())
    }

    #[test]
    fn forbidden_names_verb_resource_and_namespace() {
        let object = json!({"kind": "StatefulSet", "metadata": {"name": "r", "namespace": "prod"}});
        let message = explain(api_error(403, "nope"), "patch", &object, "ctx").to_string();
        assert!(
            message.contains("`patch` on `statefulsets` in namespace `prod`"),
            "{message}"
        );
        let pv = json!({"kind": "PersistentVolume", "metadata": {"name": "redis01"}});
        let message = explain(api_error(403, "nope"), "get", &pv, "ctx").to_string();
        assert!(
            message.contains("`get` on `persistentvolumes` cluster-wide"),
            "{message}"
        );
        // A list of a cluster-scoped kind, probed with the spec's namespace, names no namespace.
        let probe = json!({"kind": "Namespace", "metadata": {"namespace": "team"}});
        let message = explain(api_error(403, "nope"), "list", &probe, "ctx").to_string();
        assert!(
            message.starts_with("cannot list namespaces (cluster-wide): RBAC forbids it"),
            "{message}"
        );
        assert!(!message.contains("in namespace"), "{message}");
    }

    /// A 422 as kube-apiserver sends it (`apierrors.NewInvalid`): one cause per field error.
    fn invalid(causes: serde_json::Value) -> Status {
        serde_json::from_value(
            json!({"status": "Failure", "reason": "Invalid", "code": 422,
            "message": "x is invalid", "details": {"name": "x", "kind": "x", "causes": causes}}),
        )
        .unwrap()
    }

    fn immutable(reason: &str, field: &str, message: &str) -> bool {
        let status = invalid(json!([{"reason": reason, "field": field, "message": message}]));
        let causes = invalid_causes(&status);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, field);
        causes[0].is_immutable()
    }

    #[test]
    fn only_immutable_field_causes_read_as_immutable() {
        // Upstream's words: apps/validation ValidateStatefulSetUpdate (two releases' lists),
        // core/validation ValidatePersistentVolumeUpdate and ValidatePersistentVolumeClaimUpdate,
        // apimachinery ValidateImmutableField (Invalid) and declarative +k8s:immutable (Forbidden).
        assert!(immutable("FieldValueForbidden", "spec", "Forbidden: updates to statefulset spec for fields other than 'replicas', 'template', and 'updateStrategy' are forbidden."));
        assert!(immutable("FieldValueForbidden", "spec", "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"));
        assert!(immutable("FieldValueForbidden", "spec.persistentvolumesource", "Forbidden: spec.persistentvolumesource is immutable after creation\n  core.PersistentVolumeSource{...}"));
        assert!(immutable("FieldValueForbidden", "spec", "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"));
        assert!(immutable(
            "FieldValueInvalid",
            "spec.clusterIP",
            "Invalid value: \"10.0.0.1\": field is immutable"
        ));
        assert!(immutable(
            "FieldValueForbidden",
            "spec.volumeName",
            "Forbidden: field is immutable"
        ));

        // Plain validation errors: a replace would fail the same way, after the delete.
        assert!(!immutable(
            "FieldValueInvalid",
            "spec.template.metadata.labels",
            "Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`"
        ));
        assert!(!immutable(
            "FieldValueRequired",
            "spec.selector",
            "Required value"
        ));
        assert!(!immutable(
            "FieldValueForbidden",
            "spec.resources.requests.storage",
            "Forbidden: field can not be less than previous value"
        ));
        assert!(!immutable(
            "FieldValueNotSupported",
            "spec.template.spec.restartPolicy",
            "Unsupported value: \"Never\": supported values: \"Always\""
        ));
        // The words alone are not enough: the reason is checked first.
        assert!(!immutable(
            "FieldValueRequired",
            "spec",
            "field is immutable"
        ));

        let bare: Status =
            serde_json::from_value(json!({"code": 422, "message": "invalid", "reason": "Invalid"}))
                .unwrap();
        assert!(
            invalid_causes(&bare).is_empty(),
            "no causes, nothing to read"
        );
    }

    #[test]
    fn a_422_names_each_field_and_the_servers_words() {
        let status = invalid(json!([
            {"reason": "FieldValueInvalid", "field": "spec.template.metadata.labels", "message": "Invalid value: {}: `selector` does not match template `labels`"},
            {"reason": "FieldValueRequired", "field": "spec.selector", "message": "Required value"}
        ]));
        let object = json!({"kind": "StatefulSet", "metadata": {"name": "r", "namespace": "ns"}});
        let message =
            explain(kube::Error::Api(status.boxed()), "patch", &object, "ctx").to_string();
        assert_eq!(
            message,
            "cannot patch StatefulSet ns/r: the API server rejected it as invalid (422): field \
             `spec.template.metadata.labels`: Invalid value: {}: `selector` does not match \
             template `labels`; field `spec.selector`: Required value"
        );
    }
}
