//! The client, built from kubectl's flags with the retry policy in its stack, and typed handles
//! for the rendered objects.

use std::time::Duration;

use anyhow::Context as _;
use kube::api::{Api, DeleteParams, DynamicObject};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::Value;

use super::errors::{explain, status_code};
use super::objects::{api_resource, describe_object};
use super::retry;
use crate::wait::Poll;

/// The field manager every write of the plugin uses; server-side apply tracks ownership by it.
pub(crate) const FIELD_MANAGER: &str = "kubectl-redis";

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
    let client = retry::client(config)
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

/// A dynamic handle for the object's kind, scoped to its namespace when it has one.
pub(crate) fn api_for(client: &Client, object: &Value) -> anyhow::Result<Api<DynamicObject>> {
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

/// How a delete treats an object's dependents: a StatefulSet in the foreground (it is gone only
/// once its pods are), everything else in the background.
pub(crate) fn cascade(kind: &str) -> DeleteParams {
    if kind == "StatefulSet" {
        DeleteParams::foreground()
    } else {
        DeleteParams::background()
    }
}

/// Deletes an object and waits until the server no longer has it; one that is gone already is
/// no error.
pub(crate) async fn delete_and_wait(
    connection: &Connection,
    object: &Value,
    params: &DeleteParams,
    deadline: std::time::Instant,
) -> anyhow::Result<()> {
    let api = api_for(&connection.client, object)?;
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    match api.delete(name, params).await {
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
            Ok(match api.get_opt(name).await? {
                None => Poll::Ready(()),
                Some(_) => Poll::Pending(String::new()),
            })
        },
    )
    .await
}
