//! Helpers shared by the integration tests.

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Client;
use serde_json::Value;

pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub(crate) fn api_resource(api_version: &str, kind: &str) -> ApiResource {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
}

pub(crate) fn dyn_api(
    client: &Client,
    api_version: &str,
    kind: &str,
    ns: Option<&str>,
) -> Api<DynamicObject> {
    let ar = api_resource(api_version, kind);
    match ns {
        Some(ns) if kind != "PersistentVolume" && kind != "Namespace" => {
            Api::namespaced_with(client.clone(), ns, &ar)
        }
        _ => Api::all_with(client.clone(), &ar),
    }
}

/// Server-side applies every document of a YAML file, in order.
pub(crate) async fn apply_file(
    client: &Client,
    path: &PathBuf,
    manager: &str,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)?;
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v: Value = serde::Deserialize::deserialize(doc)?;
        if v.is_null() {
            continue;
        }
        let av = v["apiVersion"].as_str().unwrap_or_default();
        let kind = v["kind"].as_str().unwrap_or_default();
        let name = v["metadata"]["name"].as_str().unwrap_or_default();
        let api = dyn_api(client, av, kind, Some("default"));
        api.patch(name, &PatchParams::apply(manager), &Patch::Apply(&v))
            .await?;
    }
    Ok(())
}

/// Polls `f` until it returns Some, or fails after `limit` (a generous bound, not a timing assertion).
pub(crate) async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// kubectl of the cluster's own release, built from the same Go module as the control plane.
pub(crate) fn kubectl_bin() -> PathBuf {
    localcluster::controlplane::bin_dir()
        .expect("the control plane is built")
        .join("kubectl")
}

/// Runs kubectl of the cluster's release against the cluster (off the async runtime's threads).
pub(crate) async fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(kubectl_bin());
    cmd.arg("--kubeconfig").arg(kubeconfig).args(args);
    cmd.output().await.expect("running kubectl")
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A Redis PING over a plain TCP connection.
pub(crate) async fn redis_ping(ip: &str, port: u16) -> bool {
    redis_cmd(ip, port, "PING")
        .await
        .is_some_and(|r| r.starts_with("+PONG"))
}

/// Sends one inline command and returns the raw reply.
pub(crate) async fn redis_cmd(ip: &str, port: u16, cmd: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fut = async {
        let mut s = tokio::net::TcpStream::connect((ip, port)).await.ok()?;
        s.write_all(format!("{cmd}\r\n").as_bytes()).await.ok()?;
        let mut buf = vec![0u8; 16 * 1024];
        let n = s.read(&mut buf).await.ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(2), fut)
        .await
        .ok()
        .flatten()
}
