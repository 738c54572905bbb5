//! A local Kubernetes cluster for tests and first runs, on machines without a container
//! engine: the **real** control plane (etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler, built from source by `tests/k8s/build.sh`) and a node agent of ours in place
//! of the kubelet and container runtime, which runs each pod's containers as real processes under
//! bubblewrap, each pod in its own network namespace on a bridge.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let cluster = localcluster::LocalCluster::start(localcluster::Options::default())?;
//! let client = cluster.client()?; // a kube::Client for this cluster (as the admin)
//! # let _ = client; Ok(()) }
//! ```
//! Dropping the [`LocalCluster`] stops every process it started, removes the network it made
//! and its temporary directories. See README.md for what is real and what is ours.

// The node agent forks, enters network namespaces, signals process groups and takes flocks
// through libc (each call with a SAFETY comment): the one crate of the workspace that needs it.
#![allow(unsafe_code)]

mod agent;
pub mod controlplane;
mod faults;
pub mod images;
pub mod net;
mod pki;
mod proxy;
mod sandbox;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use k8s_openapi::api::core::v1::{Node, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams};

pub use faults::{FailRule, RequestCounts, RequestRecord};
pub use images::{
    cargo_target_dir, redis5_bin_dir, resolve_image, resolve_image_in, Image, ImageError,
    REDIS5_VERSION, SYSTEM_REDIS_BIN,
};

use crate::agent::{Agent, NodeHandle};
use crate::controlplane::{Addresses, Component, ControlPlane, Layout};
use crate::faults::Faults;
use crate::net::Network;
use crate::pki::{write_private, Pki};
use crate::proxy::Proxy;

/// How to start a cluster.
#[derive(Clone, Debug)]
pub struct Options {
    /// Nodes pods are spread over (`localcluster-node-1..N`); at least 1.
    pub nodes: usize,
    /// Where etcd's data, logs, pod directories and hostPath volumes live. `None`: a temporary
    /// directory that is removed on shutdown. A given directory is kept.
    pub state_dir: Option<PathBuf>,
    /// Also write the admin kubeconfig here (once the cluster is ready; removed on shutdown).
    pub kubeconfig: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nodes: 1,
            state_dir: None,
            kubeconfig: None,
        }
    }
}

/// How long each start-up phase took.
#[derive(Clone, Debug, Default)]
pub struct Startup {
    pub apiserver_ready: Duration,
    /// Nodes registered, Ready and schedulable; the default ServiceAccount exists.
    pub cluster_ready: Duration,
}

/// A running cluster. Drop it (or call [`LocalCluster::shutdown`]) to stop it.
pub struct LocalCluster {
    url: String,
    kubeconfig: PathBuf,
    kubeconfig_yaml: String,
    extra_kubeconfig: Option<PathBuf>,
    state_dir: PathBuf,
    tmp: Option<tempfile::TempDir>,
    pki: Arc<Pki>,
    faults: Arc<Faults>,
    proxy: Arc<Proxy>,
    agent: Arc<Agent>,
    /// A client straight to the API server, for the test helpers (not counted, no faults).
    direct: kube::Client,
    rt: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    control_plane_pids: Vec<(&'static str, u32)>,
    /// How long start() took, phase by phase.
    pub startup: Startup,
}

/// What the runtime thread hands back once the cluster is up.
struct Started {
    proxy_url: String,
    proxy: Arc<Proxy>,
    agent: Arc<Agent>,
    direct: kube::Client,
    rt: tokio::runtime::Handle,
    control_plane_pids: Vec<(&'static str, u32)>,
    apiserver_ready: Duration,
}

impl LocalCluster {
    /// Builds the control plane if needed (a no-op when it is current), starts it, the node
    /// agent and the proxy on a runtime of their own (so it works from sync tests and from any
    /// async runtime), and returns once pods can be scheduled and run.
    pub fn start(opts: Options) -> Result<LocalCluster> {
        let t0 = Instant::now();
        for (bin, package) in [
            ("bwrap", "bubblewrap"),
            ("ip", "iproute2"),
            ("nsenter", "util-linux"),
        ] {
            if which(bin).is_none() {
                bail!("{bin} is not on PATH; install the Debian package `{package}` (or run `bash .ci/setup`)");
            }
        }
        let bin = controlplane::bin_dir()?;
        let (tmp, state_dir) = match &opts.state_dir {
            Some(d) => {
                std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
                (None, d.canonicalize()?)
            }
            None => {
                let t = tempfile::Builder::new().prefix("localcluster-").tempdir()?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        if let Some(k) = &opts.kubeconfig {
            // A stale file would tell waiting tools the cluster is up before it is.
            let _ = std::fs::remove_file(k);
        }
        let layout_logs = state_dir.join("logs");
        let layout = Layout {
            state: state_dir.clone(),
            logs: state_dir.join("logs"),
            bin,
        };
        let net = Arc::new(Network::create()?);
        let service_ip = first_service_ip(&net.service_cidr())?;
        let pki = Arc::new(Pki::create(
            &state_dir.join("pki"),
            net.gateway(),
            service_ip,
        )?);
        let faults = Arc::new(Faults::default());
        let nodes: Vec<String> = (1..=opts.nodes.max(1))
            .map(|i| format!("localcluster-node-{i}"))
            .collect();

        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<Started>>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (p, f) = (pki.clone(), faults.clone());
        let panic_tx = ready_tx.clone();
        let thread = std::thread::Builder::new()
            .name("localcluster".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("localcluster-worker")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                let handle = rt.handle().clone();
                // Everything is spawned from the runtime's worker threads, which live until the
                // runtime ends: the processes' PR_SET_PDEATHSIG is bound to the spawning thread.
                let (cp_tx, cp_rx) = tokio::sync::oneshot::channel();
                let h = handle.clone();
                let main = handle.spawn(async move {
                    let started = bring_up(&layout, &p, net, nodes, f, h, t0).await;
                    match started {
                        Ok((started, control_plane, shim, agent_tasks)) => {
                            let _ = ready_tx.send(Ok(started));
                            let _ = cp_tx.send((control_plane, shim, agent_tasks));
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
                rt.block_on(async move {
                    if let Err(e) = main.await {
                        let _ =
                            panic_tx.send(Err(anyhow!("the local cluster's start-up failed: {e}")));
                    }
                    let Ok((mut control_plane, mut shim, (agent, tasks, net))) = cp_rx.await else {
                        return;
                    };
                    let _ = stop_rx.await;
                    for t in &tasks {
                        t.abort();
                    }
                    agent.shutdown().await;
                    shim.stop();
                    control_plane.stop();
                    drop(agent);
                    drop(net);
                });
                rt.shutdown_timeout(Duration::from_secs(2));
            })?;
        let started = match ready_rx.recv_timeout(Duration::from_secs(120)) {
            Ok(r) => r?,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                bail!(
                    "the local cluster did not start within 120 s (logs: {})",
                    layout_logs.display()
                )
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                bail!("the local cluster's start-up thread ended without a result")
            }
        };
        let kubeconfig = state_dir.join("kubeconfig");
        let (cert, key) = pki.client_cert("localcluster-admin", &["system:masters"])?;
        started.proxy.add_identity(&cert, &key)?;
        let kubeconfig_yaml =
            pki.kubeconfig_with(&started.proxy_url, "localcluster-admin", &cert, &key);
        write_private(&kubeconfig, &kubeconfig_yaml)?;
        if let Some(k) = &opts.kubeconfig {
            write_atomic(k, &kubeconfig_yaml)?;
        }
        Ok(LocalCluster {
            url: started.proxy_url,
            kubeconfig,
            kubeconfig_yaml,
            extra_kubeconfig: opts.kubeconfig.clone(),
            state_dir,
            tmp,
            pki,
            faults,
            proxy: started.proxy,
            agent: started.agent,
            direct: started.direct,
            rt: started.rt,
            stop: Some(stop_tx),
            thread: Some(thread),
            control_plane_pids: started.control_plane_pids,
            startup: Startup {
                apiserver_ready: started.apiserver_ready,
                cluster_ready: t0.elapsed(),
            },
        })
    }

    /// `https://127.0.0.1:PORT`: the proxy in front of the API server.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A kubeconfig file for this cluster: the admin (`system:masters`) by client certificate,
    /// context `localcluster`, namespace `default`.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn kubeconfig_yaml(&self) -> String {
        self.kubeconfig_yaml.clone()
    }

    /// A kubeconfig for another user (a client certificate with CN `user` and O `groups`);
    /// what that user may do is up to RBAC.
    pub fn kubeconfig_for(&self, user: &str, groups: &[&str]) -> Result<String> {
        let (cert, key) = self.pki.client_cert(user, groups)?;
        self.proxy.add_identity(&cert, &key)?;
        Ok(self.pki.kubeconfig_with(&self.url, user, &cert, &key))
    }

    /// A kubeconfig that authenticates with a bearer token (e.g. a ServiceAccount's).
    pub fn kubeconfig_with_token(&self, user: &str, token: &str) -> String {
        self.pki.token_kubeconfig(&self.url, user, token)
    }

    /// A kube client config for the admin (default namespace `default`).
    pub fn kube_config(&self) -> Result<kube::Config> {
        let kc = kube::config::Kubeconfig::from_yaml(&self.kubeconfig_yaml)?;
        let opts = kube::config::KubeConfigOptions::default();
        // Reading an in-memory kubeconfig does no I/O; the future completes at once.
        futures::executor::block_on(kube::Config::from_custom_kubeconfig(kc, &opts))
            .map_err(|e| anyhow!("building the kube config: {e}"))
    }

    /// A `kube::Client` for the admin. Call it inside the tokio runtime that will use it.
    pub fn client(&self) -> Result<kube::Client> {
        Ok(kube::Client::try_from(self.kube_config()?)?)
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Where a PV's `hostPath` (e.g. `/redis01`) lives on this machine.
    pub fn host_path(&self, path: &str) -> PathBuf {
        agent::host_path(&self.state_dir, path)
    }

    /// The node names (`spec.nodeName` values).
    pub fn nodes(&self) -> Vec<String> {
        self.agent.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// The control plane's binaries (kubectl of the same release is there too).
    pub fn bin_dir(&self) -> Result<PathBuf> {
        controlplane::bin_dir()
    }

    /// The component logs (`etcd.log`, `kube-apiserver.log`, …).
    pub fn log_dir(&self) -> PathBuf {
        self.state_dir.join("logs")
    }

    // ---- fault injection (at the proxy: clients only) -----------------------------

    /// Delays every client request by `d` (zero to turn off).
    pub fn set_api_latency(&self, d: Duration) {
        self.faults.set_latency(d);
    }

    /// Fails matching client requests; rules are checked in the order added.
    pub fn fail_requests(&self, rule: FailRule) {
        self.faults.add_rule(rule);
    }

    /// Removes every failure rule and the latency.
    pub fn clear_faults(&self) {
        self.faults.clear();
    }

    /// Client request counts (per verb, writes) since start or the last reset. The control
    /// plane's and the node agent's own requests are not counted.
    pub fn request_counts(&self) -> RequestCounts {
        self.faults.counts()
    }

    /// Every client request since start or the last reset, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.faults.log()
    }

    pub fn reset_request_counts(&self) {
        self.faults.reset_log();
    }

    /// SIGKILLs the pod's processes. The node agent restarts them in the same pod (same IP),
    /// and the container's restartCount goes up, as after a container crash.
    pub fn kill_pod_process(&self, namespace: &str, pod: &str) -> Result<()> {
        self.agent.kill_processes(namespace, pod)?;
        Ok(())
    }

    /// Deletes the pod as `kubectl delete pod` does (graceful: SIGTERM, then gone) and waits
    /// until the object is gone. A StatefulSet recreates it with a new IP; its claims, and so
    /// its data directory, stay.
    pub fn delete_pod(&self, namespace: &str, pod: &str) -> Result<()> {
        let api: Api<Pod> = Api::namespaced(self.direct.clone(), namespace);
        let name = pod.to_string();
        self.block_on(async move {
            let uid = api.get(&name).await?.metadata.uid;
            api.delete(&name, &DeleteParams::default()).await?;
            wait_gone(&api, &name, uid, Duration::from_secs(60)).await
        })
    }

    /// Force-deletes every pod in the namespace at once, as a crash of every node would end them
    /// (SIGKILL, no grace): every pod comes back with a new IP. Returns how many were deleted.
    pub fn kill_all_pods(&self, namespace: &str) -> Result<usize> {
        let api: Api<Pod> = Api::namespaced(self.direct.clone(), namespace);
        self.block_on(async move {
            let pods = api.list(&ListParams::default()).await?;
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            };
            let mut n = 0;
            for p in &pods.items {
                if let Some(name) = &p.metadata.name {
                    if api.delete(name, &dp).await.is_ok() {
                        n += 1;
                    }
                }
            }
            Ok(n)
        })
    }

    /// Cuts a pod off the network at its veth (`cut`), or reconnects it.
    pub fn partition_pod(&self, namespace: &str, pod: &str, cut: bool) -> Result<()> {
        self.agent.partition(namespace, pod, cut)
    }

    /// Process ids of every process the node agent runs now (containers and pause processes).
    pub fn process_ids(&self) -> Vec<i32> {
        self.agent.process_ids()
    }

    /// The control plane's processes (etcd, API server, controller manager, scheduler, the
    /// kubelet streaming shim).
    pub fn control_plane_pids(&self) -> Vec<(&'static str, u32)> {
        self.control_plane_pids.clone()
    }

    /// Resident memory of each control-plane process, in KiB.
    pub fn memory_kib(&self) -> Vec<(&'static str, u64)> {
        self.control_plane_pids
            .iter()
            .map(|(n, pid)| (*n, controlplane::rss_kib(*pid)))
            .collect()
    }

    /// The IP of a pod as the node agent assigned it, if it is running.
    pub fn pod_ip(&self, namespace: &str, pod: &str) -> Option<String> {
        self.agent.pod_ip(namespace, pod)
    }

    /// Waits (not counted as client requests) until exactly `count` pods that match
    /// `label_selector` in `namespace` are Running and Ready, and returns them.
    pub async fn wait_for_ready_pods(
        &self,
        namespace: &str,
        label_selector: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<Pod>> {
        let api: Api<Pod> = Api::namespaced(self.direct.clone(), namespace);
        let lp = ListParams::default().labels(label_selector);
        let deadline = Instant::now() + timeout;
        let ready = |p: &Pod| {
            p.metadata.deletion_timestamp.is_none()
                && p.status.as_ref().is_some_and(|s| {
                    s.phase.as_deref() == Some("Running")
                        && s.conditions
                            .iter()
                            .flatten()
                            .any(|c| c.type_ == "Ready" && c.status == "True")
                })
        };
        let api2 = api.clone();
        loop {
            let lp2 = lp.clone();
            let api3 = api2.clone();
            let pods = self
                .rt
                .spawn(async move { api3.list(&lp2).await })
                .await
                .map_err(|e| anyhow!("{e}"))??
                .items;
            if pods.len() == count && pods.iter().all(ready) {
                return Ok(pods);
            }
            if Instant::now() > deadline {
                return Err(anyhow!(
                    "{} of {count} pods matching {label_selector:?} in {namespace} are ready after {timeout:?} ({} match)",
                    pods.iter().filter(|p| ready(p)).count(),
                    pods.len()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs a future on the cluster's runtime and waits for it (from sync or async code).
    fn block_on<T: Send + 'static>(
        &self,
        f: impl std::future::Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.rt.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv()
            .map_err(|_| anyhow!("the local cluster stopped"))?
    }

    /// Stops everything and removes temporary directories (the same as dropping).
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // In case the runtime thread died early: nothing may outlive the cluster.
        self.agent.kill_all_now();
        for (_, pid) in &self.control_plane_pids {
            // SAFETY: kill(2) on a pid of ours; at worst ESRCH.
            unsafe {
                libc::kill(*pid as i32, libc::SIGKILL);
            }
        }
        if let Some(k) = &self.extra_kubeconfig {
            let _ = std::fs::remove_file(k);
        }
        if let Some(t) = self.tmp.take() {
            let _ = t.close();
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop_now();
    }
}

type AgentParts = (Arc<Agent>, Vec<tokio::task::JoinHandle<()>>, Arc<Network>);

/// Starts every component, in order, on the cluster's runtime.
async fn bring_up(
    layout: &Layout,
    pki: &Arc<Pki>,
    net: Arc<Network>,
    nodes: Vec<String>,
    faults: Arc<Faults>,
    rt: tokio::runtime::Handle,
    t0: Instant,
) -> Result<(Started, ControlPlane, Component, AgentParts)> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let addrs = Addresses {
        gateway: net.gateway(),
        service_cidr: net.service_cidr(),
    };
    let mut cp = ControlPlane::start(layout, pki, &addrs, deadline).await?;
    let admin_yaml =
        pki.kubeconfig(&cp.apiserver_url, "localcluster-admin", &["system:masters"])?;
    let direct = client_from_yaml(&admin_yaml).await?;
    wait_readyz(&direct, &mut cp, deadline).await?;
    let apiserver_ready = t0.elapsed();
    cp.start_controllers(layout, pki)?;

    // The kubelet API, served by upstream's streaming code.
    let kubelet_port = controlplane::free_port_on(net.gateway())?;
    let p = |path: &Path| path.display().to_string();
    let mut shim = Component::spawn(
        "kubelet-streaming",
        &layout.bin.join("kubelet-streaming"),
        &[
            format!("--listen={}:{kubelet_port}", net.gateway()),
            format!("--tls-cert-file={}", p(&pki.kubelet_serving.cert)),
            format!("--tls-private-key-file={}", p(&pki.kubelet_serving.key)),
            format!("--client-ca-file={}", p(&pki.ca)),
            format!("--state-dir={}", p(&layout.state)),
        ],
        &layout.logs,
    )?;

    let mut handles = Vec::new();
    for name in &nodes {
        let yaml = pki.kubeconfig(
            &cp.apiserver_url,
            &format!("system:node:{name}"),
            &["system:nodes"],
        )?;
        handles.push(NodeHandle {
            name: name.clone(),
            client: client_from_yaml(&yaml).await?,
        });
    }
    let target_dir = layout
        .bin
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let agent = Agent::new(
        handles,
        layout.state.clone(),
        target_dir,
        net.clone(),
        kubelet_port,
    );
    agent.register_nodes().await?;
    let mut tasks = vec![
        tokio::spawn(agent.clone().renew_leases()),
        tokio::spawn(agent.clone().run()),
    ];
    for i in 0..nodes.len() {
        tasks.push(tokio::spawn(agent.clone().watch_pods(i)));
    }

    let proxy = Arc::new(Proxy::new(cp.apiserver_url.clone(), &pki.ca_pem(), faults)?);
    let tls = proxy.server_config(
        &std::fs::read_to_string(&pki.apiserver.cert)?,
        &std::fs::read_to_string(&pki.apiserver.key)?,
    )?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let proxy_url = format!("https://127.0.0.1:{}", listener.local_addr()?.port());
    tasks.push(tokio::spawn(proxy.clone().serve(listener, tls)));

    wait_schedulable(&direct, &nodes, &mut cp, &mut shim, deadline).await?;
    let mut control_plane_pids: Vec<(&'static str, u32)> =
        cp.components.iter().map(|c| (c.name, c.pid())).collect();
    control_plane_pids.push((shim.name, shim.pid()));
    Ok((
        Started {
            proxy_url,
            proxy,
            agent: agent.clone(),
            direct,
            rt,
            control_plane_pids,
            apiserver_ready,
        },
        cp,
        shim,
        (agent, tasks, net),
    ))
}

async fn client_from_yaml(yaml: &str) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::from_yaml(yaml)?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await?;
    Ok(kube::Client::try_from(config)?)
}

async fn wait_readyz(
    client: &kube::Client,
    cp: &mut ControlPlane,
    deadline: Instant,
) -> Result<()> {
    loop {
        cp.check_running()?;
        let req = http::Request::get("/readyz").body(Vec::new())?;
        if let Ok(text) = client.request_text(req).await {
            if text.trim() == "ok" {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            let api = cp.components.iter().find(|c| c.name == "kube-apiserver");
            bail!(
                "kube-apiserver did not become ready:\n{}",
                api.map(|c| controlplane::log_tail(&c.log, 30))
                    .unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every node is Ready without the not-ready taint and the `default`
/// ServiceAccount exists (pods are refused before it does).
async fn wait_schedulable(
    client: &kube::Client,
    nodes: &[String],
    cp: &mut ControlPlane,
    shim: &mut Component,
    deadline: Instant,
) -> Result<()> {
    let node_api: Api<Node> = Api::all(client.clone());
    let sa_api: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    loop {
        cp.check_running()?;
        shim.check_running()?;
        let mut waiting_for = Vec::new();
        for n in nodes {
            let schedulable = node_api
                .get_opt(n)
                .await
                .ok()
                .flatten()
                .is_some_and(|node| {
                    node.spec
                        .and_then(|s| s.taints)
                        .unwrap_or_default()
                        .iter()
                        .all(|t| t.effect != "NoSchedule" && t.effect != "NoExecute")
                });
            if !schedulable {
                waiting_for.push(format!("node {n} to be schedulable"));
            }
        }
        if sa_api.get_opt("default").await.ok().flatten().is_none() {
            waiting_for.push("the default ServiceAccount".into());
        }
        if waiting_for.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let cm = cp
                .components
                .iter()
                .find(|c| c.name == "kube-controller-manager");
            bail!(
                "the cluster did not become ready: waiting for {}\n{}",
                waiting_for.join(", "),
                cm.map(|c| controlplane::log_tail(&c.log, 30))
                    .unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_gone(
    api: &Api<Pod>,
    name: &str,
    uid: Option<String>,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match api.get_opt(name).await? {
            None => return Ok(()),
            Some(p) if p.metadata.uid != uid => return Ok(()),
            Some(_) if Instant::now() > deadline => {
                bail!("pod {name} was not gone after {timeout:?}")
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// The first address of a CIDR + 1: the ClusterIP of `kubernetes.default`.
fn first_service_ip(cidr: &str) -> Result<std::net::Ipv4Addr> {
    let base: std::net::Ipv4Addr = cidr
        .split('/')
        .next()
        .unwrap_or_default()
        .parse()
        .with_context(|| format!("parsing {cidr}"))?;
    Ok(std::net::Ipv4Addr::from(u32::from(base) + 1))
}

fn write_atomic(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("localcluster-tmp");
    write_private(&tmp, text)?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Pids whose process group is one of `groups` (from /proc).
pub fn processes_in_groups(groups: &[i32]) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command's closing parenthesis: state ppid pgrp ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 2 && f[0] != "Z" {
            if let Ok(pgrp) = f[2].parse::<i32>() {
                if groups.contains(&pgrp) {
                    out.push(pid);
                }
            }
        }
    }
    out
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(bin))
            .find(|p| p.is_file())
    })
}
