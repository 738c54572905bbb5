//! A local stand-in for a Kubernetes cluster, for tests and first runs on machines where no
//! real cluster can run: an emulated API server on 127.0.0.1 (discovery, CRUD, watch,
//! server-side apply, dry-run), PV binding, a StatefulSet controller, and a kubelet that runs
//! each pod's command for real under bubblewrap on its own loopback address.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let cluster = localcluster::LocalCluster::start(localcluster::Options::default())?;
//! let client = cluster.client()?; // a kube::Client for this cluster
//! # let _ = client; Ok(()) }
//! ```
//! Dropping the [`LocalCluster`] stops every process it started and removes its temporary
//! directories. See README.md for what is emulated and how it differs from a real cluster.

mod api;
mod controllers;
mod faults;
mod kubelet;
mod openapi;
mod resources;
mod selector;
mod spdy;
mod spdy_dictionary;
mod ssa;
mod store;
mod streams;
mod table;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

pub use faults::{FailRule, RequestCounts, RequestRecord};

use crate::faults::Faults;
use crate::kubelet::Kubelet;
use crate::resources::by_plural;
use crate::store::Store;

/// How to start a cluster.
#[derive(Clone, Debug)]
pub struct Options {
    /// Fake node names pods are spread over (`localcluster-node-1..N`); at least 1.
    pub nodes: usize,
    /// Where pod directories and hostPath volumes live. `None`: a temporary directory that is
    /// removed on shutdown. A given directory is kept (so data survives restarts of the cluster).
    pub state_dir: Option<PathBuf>,
    /// Also write the kubeconfig here (once the endpoint is ready; removed on shutdown).
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

/// A running local cluster. Drop it (or call [`LocalCluster::shutdown`]) to stop it.
pub struct LocalCluster {
    url: String,
    kubeconfig: PathBuf,
    extra_kubeconfig: Option<PathBuf>,
    state_dir: PathBuf,
    tmp: Option<tempfile::TempDir>,
    store: Arc<Store>,
    faults: Arc<Faults>,
    kubelet: Arc<Kubelet>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// How long start() took until the endpoint answered.
    pub startup: Duration,
}

fn kubeconfig_yaml(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: localcluster\n  cluster:\n    server: {url}\ncontexts:\n- name: localcluster\n  context:\n    cluster: localcluster\n    user: localcluster\n    namespace: default\ncurrent-context: localcluster\nusers:\n- name: localcluster\n  user:\n    token: localcluster\npreferences: {{}}\n"
    )
}

fn write_atomic(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("localcluster-tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

impl LocalCluster {
    /// Starts the API server, controllers and kubelet on a runtime of their own (so it works
    /// from sync tests and from any async runtime), and returns once the endpoint answers.
    pub fn start(opts: Options) -> Result<LocalCluster> {
        let t0 = Instant::now();
        if which("bwrap").is_none() {
            return Err(anyhow!(
                "bwrap (bubblewrap) is not on PATH; install the Debian package `bubblewrap`"
            ));
        }
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
        let store = Store::new();
        let faults = Arc::new(Faults::default());
        let kubelet = Kubelet::new(store.clone(), state_dir.clone(), opts.nodes);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<u16>>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (s, f, k) = (store.clone(), faults.clone(), kubelet.clone());
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
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(anyhow!("binding 127.0.0.1: {e}")));
                            return;
                        }
                    };
                    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
                    let state = Arc::new(api::ApiState {
                        store: s.clone(),
                        faults: f,
                        kubelet: k.clone(),
                    });
                    let server = tokio::spawn(api::serve(listener, state));
                    let ctl = controllers::Controllers {
                        store: s.clone(),
                        nodes: k.nodes.clone(),
                    };
                    let ctl = tokio::spawn(ctl.run());
                    let kl = tokio::spawn(k.clone().run());
                    let _ = ready_tx.send(Ok(port));
                    let _ = stop_rx.await;
                    server.abort();
                    ctl.abort();
                    kl.abort();
                    k.shutdown().await;
                });
                rt.shutdown_timeout(Duration::from_secs(2));
            })?;
        let port = ready_rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| anyhow!("the local cluster did not start"))??;
        let url = format!("http://127.0.0.1:{port}");
        // Ready means answering HTTP, not just bound.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                use std::io::{Read, Write};
                let _ = s.write_all(
                    b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                );
                let mut buf = [0u8; 12];
                if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1 200") {
                    break;
                }
            }
            if Instant::now() > deadline {
                return Err(anyhow!("the local cluster's endpoint did not become ready"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let kubeconfig = state_dir.join("kubeconfig");
        let yaml = kubeconfig_yaml(&url);
        write_atomic(&kubeconfig, &yaml)?;
        if let Some(k) = &opts.kubeconfig {
            write_atomic(k, &yaml)?;
        }
        Ok(LocalCluster {
            url,
            kubeconfig,
            extra_kubeconfig: opts.kubeconfig.clone(),
            state_dir,
            tmp,
            store,
            faults,
            kubelet,
            stop: Some(stop_tx),
            thread: Some(thread),
            startup: t0.elapsed(),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A kubeconfig file for this cluster (context `localcluster`, namespace `default`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig_yaml(&self.url)
    }

    /// A kube client config pointing at this cluster (default namespace `default`).
    pub fn kube_config(&self) -> Result<kube::Config> {
        let uri: http::Uri = self.url.parse()?;
        let mut c = kube::Config::new(uri);
        c.default_namespace = "default".into();
        Ok(c)
    }

    /// A `kube::Client`. Call it inside the tokio runtime that will use the client.
    pub fn client(&self) -> Result<kube::Client> {
        Ok(kube::Client::try_from(self.kube_config()?)?)
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Where a PV's `hostPath` (e.g. `/redis01`) lives on this machine.
    pub fn host_path(&self, path: &str) -> PathBuf {
        kubelet::host_path(&self.state_dir, path)
    }

    /// The fake node names (`spec.nodeName` values).
    pub fn nodes(&self) -> Vec<String> {
        self.kubelet.nodes.clone()
    }

    // ---- fault injection -------------------------------------------------------------

    /// Delays every API request by `d` (zero to turn off).
    pub fn set_api_latency(&self, d: Duration) {
        self.faults.set_latency(d);
    }

    /// Fails matching API requests; rules are checked in the order added.
    pub fn fail_requests(&self, rule: FailRule) {
        self.faults.add_rule(rule);
    }

    /// Removes every failure rule and the latency.
    pub fn clear_faults(&self) {
        self.faults.clear();
    }

    /// Request counts (per verb, writes) since start or the last reset.
    pub fn request_counts(&self) -> RequestCounts {
        self.faults.counts()
    }

    /// Every API request since start or the last reset, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.faults.log()
    }

    pub fn reset_request_counts(&self) {
        self.faults.reset_log();
    }

    /// SIGKILLs the pod's processes. The kubelet restarts them in the same pod (same IP),
    /// and the container's restartCount goes up, as after a container crash.
    pub fn kill_pod_process(&self, namespace: &str, pod: &str) -> Result<()> {
        self.kubelet.kill_processes(namespace, pod)?;
        Ok(())
    }

    /// Deletes the pod object (its processes are killed). A StatefulSet recreates it with a
    /// new IP; its claims, and so its data directory, stay.
    pub fn delete_pod(&self, namespace: &str, pod: &str) -> Result<()> {
        self.store
            .delete(by_plural("pods"), namespace, pod, None, false)?;
        Ok(())
    }

    /// Deletes every pod in the namespace at once (the "whole cluster restarted" case: every
    /// pod comes back with a new IP). Returns how many were deleted.
    pub fn kill_all_pods(&self, namespace: &str) -> Result<usize> {
        let (pods, _) = self.store.list(by_plural("pods"), Some(namespace));
        let mut n = 0;
        for p in pods {
            if let Some(name) = p["metadata"]["name"].as_str() {
                if self
                    .store
                    .delete(by_plural("pods"), namespace, name, None, false)
                    .is_ok()
                {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Process ids of every process the cluster's pods are running now.
    pub fn process_ids(&self) -> Vec<i32> {
        processes_in_groups(&self.kubelet.process_groups())
    }

    /// The IP of a pod as the kubelet assigned it, if it is running.
    pub fn pod_ip(&self, namespace: &str, pod: &str) -> Option<String> {
        self.kubelet.pod_ip(namespace, pod).ok()
    }

    /// Waits (polling the store, not counted as API requests) until exactly `count` pods that
    /// match `label_selector` in `namespace` are Running and Ready, and returns them by name.
    pub async fn wait_for_ready_pods(
        &self,
        namespace: &str,
        label_selector: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<k8s_openapi::api::core::v1::Pod>> {
        let sel = selector::LabelSelector::parse(label_selector)?;
        let deadline = Instant::now() + timeout;
        loop {
            let (pods, _) = self.store.list(by_plural("pods"), Some(namespace));
            let matching: Vec<serde_json::Value> = pods
                .into_iter()
                .filter(|p| sel.matches(&p["metadata"]["labels"]))
                .collect();
            let ready = |p: &serde_json::Value| {
                p["status"]["phase"] == "Running"
                    && p["status"]["conditions"].as_array().is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
            };
            if matching.len() == count && matching.iter().all(ready) {
                return matching
                    .into_iter()
                    .map(|p| Ok(serde_json::from_value(p)?))
                    .collect();
            }
            if Instant::now() > deadline {
                return Err(anyhow!(
                    "{} of {count} pods matching {label_selector:?} in {namespace} are ready after {timeout:?}",
                    matching.iter().filter(|p| ready(p)).count()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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
        self.kubelet.kill_all_now();
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
