//! Talking to the Kubernetes API: the client built from kubectl's flags, typed handles for the
//! rendered objects, bounded retries, and errors rewritten into something a user can act on.

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolume, PersistentVolumeClaim, Secret, Service,
};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::Value;

use crate::wait::Poll;

/// The field manager every write of the plugin uses; server-side apply tracks ownership by it.
pub const FIELD_MANAGER: &str = "kubectl-redis";

/// How many times a call that failed with a 5xx or a timeout is tried in all.
const ATTEMPTS: u32 = 4;

/// Where the kubeconfig is and what to pick inside it: kubectl's `--kubeconfig`, `--context`,
/// `--cluster` and `--user`.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub kubeconfig: Option<std::path::PathBuf>,
    pub context: Option<String>,
    pub cluster: Option<String>,
    pub user: Option<String>,
}

/// A connected client and the namespace the kubeconfig context defaults to.
pub struct Connection {
    pub client: Client,
    pub default_namespace: String,
    /// Where the config came from, for error messages (`kubeconfig /x, context y`).
    pub source: String,
}

/// Builds a client the way kubectl does: `--kubeconfig`, else `$KUBECONFIG` (several files are
/// merged, missing ones skipped), else `~/.kube/config`, else the in-cluster service account;
/// `--context`, `--cluster` and `--user` pick inside the kubeconfig.
pub async fn connect(connect: &ConnectOptions) -> anyhow::Result<Connection> {
    let options = KubeConfigOptions {
        context: connect.context.clone(),
        cluster: connect.cluster.clone(),
        user: connect.user.clone(),
    };
    let (config, source) = match read_kubeconfig(connect.kubeconfig.as_deref())? {
        Some((kubeconfig, files)) => {
            let source = describe(&files, &kubeconfig, &options);
            check_names(&kubeconfig, &options, &files)?;
            let config = Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .with_context(|| format!("cannot use {source}"))?;
            (config, source)
        }
        None => match Config::incluster() {
            Ok(config) => (config, "the in-cluster service account".to_string()),
            Err(_) => anyhow::bail!(
                "no Kubernetes configuration found: no --kubeconfig, no file in $KUBECONFIG, no \
                 ~/.kube/config, and not running in a pod. Pass --kubeconfig FILE or set \
                 KUBECONFIG (for a local test cluster: cargo run -p localcluster -- up \
                 --kubeconfig FILE)"
            ),
        },
    };
    let default_namespace = config.default_namespace.clone();
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config)
        .with_context(|| format!("cannot build a client for {server} ({source})"))?;
    Ok(Connection {
        client,
        default_namespace,
        source: format!("{source}, server {server}"),
    })
}

/// The kubeconfig to use and the files it came from; `None` when there is none at all.
fn read_kubeconfig(
    explicit: Option<&std::path::Path>,
) -> anyhow::Result<Option<(Kubeconfig, String)>> {
    let read = |path: &std::path::Path| {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the kubeconfig {}", path.display()))?;
        Kubeconfig::from_yaml(&text)
            .with_context(|| format!("{} is not a valid kubeconfig", path.display()))
    };
    if let Some(path) = explicit {
        return Ok(Some((read(path)?, path.display().to_string())));
    }
    let files: Vec<std::path::PathBuf> = match std::env::var_os("KUBECONFIG") {
        Some(list) if !list.is_empty() => std::env::split_paths(&list).collect(),
        _ => home_kubeconfig().into_iter().collect(),
    };
    // Like kubectl: files in the list that do not exist are skipped; the first file wins for
    // each name and for current-context.
    let mut merged: Option<Kubeconfig> = None;
    let mut used = Vec::new();
    for file in files.iter().filter(|f| f.exists()) {
        let next = read(file)?;
        merged = Some(match merged {
            None => next,
            Some(config) => config
                .merge(next)
                .with_context(|| format!("cannot merge the kubeconfig {}", file.display()))?,
        });
        used.push(file.display().to_string());
    }
    Ok(merged.map(|config| (config, used.join(":"))))
}

fn home_kubeconfig() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".kube/config"))
}

/// Names asked for with `--context`, `--cluster` or `--user` must exist; say which ones do.
fn check_names(
    kubeconfig: &Kubeconfig,
    options: &KubeConfigOptions,
    files: &str,
) -> anyhow::Result<()> {
    let checks = [
        (
            "context",
            &options.context,
            kubeconfig
                .contexts
                .iter()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>(),
        ),
        (
            "cluster",
            &options.cluster,
            kubeconfig.clusters.iter().map(|c| c.name.clone()).collect(),
        ),
        (
            "user",
            &options.user,
            kubeconfig
                .auth_infos
                .iter()
                .map(|u| u.name.clone())
                .collect(),
        ),
    ];
    for (what, wanted, known) in checks {
        if let Some(wanted) = wanted {
            if !known.contains(wanted) {
                anyhow::bail!(
                    "--{what} `{wanted}` is not in the kubeconfig {files}; it has: {}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                );
            }
        }
    }
    Ok(())
}

fn describe(files: &str, kubeconfig: &Kubeconfig, options: &KubeConfigOptions) -> String {
    let context = options
        .context
        .clone()
        .or_else(|| kubeconfig.current_context.clone())
        .unwrap_or_else(|| "(none)".into());
    format!("kubeconfig {files}, context `{context}`")
}

/// The API resource of a rendered object's kind; only the kinds the spec accepts exist here.
pub fn api_resource(kind: &str) -> Option<(ApiResource, bool)> {
    let namespaced = |resource: ApiResource| Some((resource, true));
    let cluster = |resource: ApiResource| Some((resource, false));
    match kind {
        "Namespace" => cluster(ApiResource::erase::<Namespace>(&())),
        "PersistentVolume" => cluster(ApiResource::erase::<PersistentVolume>(&())),
        "PersistentVolumeClaim" => namespaced(ApiResource::erase::<PersistentVolumeClaim>(&())),
        "ConfigMap" => namespaced(ApiResource::erase::<ConfigMap>(&())),
        "Secret" => namespaced(ApiResource::erase::<Secret>(&())),
        "Service" => namespaced(ApiResource::erase::<Service>(&())),
        "StatefulSet" => namespaced(ApiResource::erase::<StatefulSet>(&())),
        _ => None,
    }
}

/// A dynamic handle for the object's kind, scoped to its namespace when it has one.
pub fn api_for(client: &Client, object: &Value) -> anyhow::Result<Api<DynamicObject>> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let (resource, namespaced) =
        api_resource(kind).with_context(|| format!("kubectl-redis does not manage kind {kind}"))?;
    Ok(if namespaced {
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default");
        Api::namespaced_with(client.clone(), namespace, &resource)
    } else {
        Api::all_with(client.clone(), &resource)
    })
}

/// `StatefulSet default/redis-cluster`, `PersistentVolume redis01`.
pub fn describe_object(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    match object["metadata"]["namespace"].as_str() {
        Some(namespace) => format!("{kind} {namespace}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// The HTTP status of an API error, if it is one.
pub fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code >= 500 || status.code == 429,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Runs an API call, retrying 5xx answers, 429s and transport failures with exponential backoff
/// a bounded number of times; other errors return at once.
pub async fn with_retries<T, F, Fut>(mut call: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match call().await {
            Err(error) if attempt < ATTEMPTS && is_transient(&error) => {
                tracing::debug!(attempt, %error, "retrying after a transient API error");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// How a delete treats an object's dependents: a StatefulSet in the foreground (it is gone only
/// once its pods are), everything else in the background.
pub fn cascade(kind: &str) -> DeleteParams {
    if kind == "StatefulSet" {
        DeleteParams::foreground()
    } else {
        DeleteParams::background()
    }
}

/// Deletes an object and waits until the server no longer has it; one that is gone already is
/// no error.
pub async fn delete_and_wait(
    connection: &Connection,
    object: &Value,
    params: &DeleteParams,
    deadline: std::time::Instant,
) -> anyhow::Result<()> {
    let api = api_for(&connection.client, object)?;
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    match with_retries(|| api.delete(name, params)).await {
        Ok(_) => {}
        Err(e) if status_code(&e) == Some(404) => return Ok(()),
        Err(e) => return Err(explain(e, "delete", object, &connection.source)),
    }
    let api = &api;
    crate::wait::poll_until(
        deadline,
        Duration::from_millis(300),
        &format!("{} to be deleted", describe_object(object)),
        move || async move {
            Ok(match with_retries(|| api.get_opt(name)).await? {
                None => Poll::Ready(()),
                Some(_) => Poll::Pending(String::new()),
            })
        },
    )
    .await
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
pub fn invalid_causes(status: &kube::core::Status) -> Vec<InvalidCause> {
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
pub fn explain(error: kube::Error, verb: &str, object: &Value, connection: &str) -> anyhow::Error {
    let target = describe_object(object);
    let kind = object["kind"].as_str().unwrap_or_default();
    let resource = api_resource(kind)
        .map(|(r, _)| r.plural)
        .unwrap_or_else(|| kind.to_lowercase());
    let namespace = object["metadata"]["namespace"].as_str();
    match &error {
        kube::Error::Api(status) => match status.code {
            401 => anyhow::anyhow!(
                "cannot {verb} {target}: the API server does not accept your credentials (401 \
                 Unauthorized). Refresh them, or pick another --user/--context ({connection})"
            ),
            403 => anyhow::anyhow!(
                "cannot {verb} {target}: RBAC forbids it (403 Forbidden). Your user needs `{verb}` \
                 on `{resource}`{}. The server said: {}",
                namespace
                    .map(|n| format!(" in namespace `{n}`"))
                    .unwrap_or_else(|| " (cluster-scoped)".into()),
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
            message.contains("`get` on `persistentvolumes` (cluster-scoped)"),
            "{message}"
        );
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

    #[tokio::test(start_paused = true)]
    async fn retries_server_errors_a_bounded_number_of_times() {
        let mut calls = 0;
        let result: Result<(), _> = with_retries(|| {
            calls += 1;
            async { Err(api_error(503, "busy")) }
        })
        .await;
        assert_eq!(status_code(&result.unwrap_err()), Some(503));
        assert_eq!(calls, ATTEMPTS);

        let mut calls = 0;
        let result: Result<(), _> = with_retries(|| {
            calls += 1;
            async { Err(api_error(404, "missing")) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, 1, "client errors are not retried");
    }
}
