//! The node agent: what the kubelet and a container runtime do, for `N` Nodes on this machine,
//! talking to the real API server with each node's own identity (`system:node:<name>`, so the
//! Node authorizer and NodeRestriction apply). It registers the Nodes, renews their Leases,
//! runs every pod the scheduler binds to them as real processes under bubblewrap in the pod's own
//! network namespace, reports pod status, and terminates pods gracefully when they are deleted.
//! The kubelet API (exec, attach, port-forward, logs) is served by the `kubelet-streaming` shim,
//! from the sandbox descriptions this agent writes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Node, PersistentVolume, PersistentVolumeClaim, Pod, Secret, ServiceAccount,
};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::Client;
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};

use crate::images::{resolve_image, Image};
use crate::net::{Network, PodNetwork};
use crate::sandbox::{
    container_argv, field_ref, key_files, mkdir, strings, workdir, write_files, Sandbox,
};

/// One Node this agent runs.
pub(crate) struct NodeHandle {
    pub name: String,
    pub client: Client,
}

pub(crate) struct Agent {
    pub nodes: Vec<NodeHandle>,
    state_dir: PathBuf,
    target_dir: PathBuf,
    net: Arc<Network>,
    kubelet_port: u16,
    bwrap: PathBuf,
    pods: Mutex<HashMap<String, Arc<RunningPod>>>,
    /// Every live container process group, for synchronous cleanup.
    groups: Arc<Mutex<HashSet<i32>>>,
    /// Woken by the pod watches.
    changed: Notify,
}

/// A pod this agent started.
struct RunningPod {
    ns: String,
    name: String,
    uid: String,
    node: usize,
    network: PodNetwork,
    status: Mutex<Value>,
    status_changed: Notify,
    /// container → process group of its current process
    pgids: Mutex<HashMap<String, i32>>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    terminating: std::sync::atomic::AtomicBool,
}

/// Maps a host path (a PV's hostPath) under the state directory.
pub(crate) fn host_path(state_dir: &Path, p: &str) -> PathBuf {
    state_dir.join("hostpath").join(p.trim_start_matches('/'))
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

impl Agent {
    pub(crate) fn new(
        nodes: Vec<NodeHandle>,
        state_dir: PathBuf,
        target_dir: PathBuf,
        net: Arc<Network>,
        kubelet_port: u16,
    ) -> Arc<Agent> {
        Arc::new(Agent {
            nodes,
            state_dir,
            target_dir,
            net,
            kubelet_port,
            bwrap: which("bwrap").unwrap_or_else(|| PathBuf::from("/usr/bin/bwrap")),
            pods: Mutex::new(HashMap::new()),
            groups: Arc::new(Mutex::new(HashSet::new())),
            changed: Notify::new(),
        })
    }

    /// Creates (or takes over) the Node objects and marks them Ready.
    pub(crate) async fn register_nodes(&self) -> Result<()> {
        for n in &self.nodes {
            let api: Api<Node> = Api::all(n.client.clone());
            let node: Node = serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": n.name, "labels": {
                    "kubernetes.io/hostname": n.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                }},
            }))?;
            match api.create(&PostParams::default(), &node).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e).with_context(|| format!("registering node {}", n.name)),
            }
            self.post_node_status(n).await?;
        }
        Ok(())
    }

    async fn post_node_status(&self, n: &NodeHandle) -> Result<()> {
        let api: Api<Node> = Api::all(n.client.clone());
        let t = now();
        let resources =
            json!({"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"});
        let cond = |ty: &str, status: &str, reason: &str, msg: &str| {
            json!({"type": ty, "status": status, "reason": reason, "message": msg,
                   "lastHeartbeatTime": t, "lastTransitionTime": t})
        };
        let status = json!({"status": {
            "capacity": resources, "allocatable": resources,
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "localcluster node agent is posting ready status"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": self.net.gateway().to_string()},
                {"type": "Hostname", "address": n.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
            "nodeInfo": {
                "machineID": "", "systemUUID": "", "bootID": "",
                "kernelVersion": kernel_version(), "osImage": "localcluster node agent",
                "containerRuntimeVersion": "localcluster://bubblewrap",
                "kubeletVersion": crate::controlplane::KUBERNETES_VERSION,
                "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64",
            },
        }});
        api.patch_status(&n.name, &PatchParams::default(), &Patch::Strategic(status))
            .await
            .with_context(|| format!("posting the status of node {}", n.name))?;
        Ok(())
    }

    /// Renews every node's Lease in `kube-node-lease` (what node health is judged by).
    pub(crate) async fn renew_leases(self: Arc<Self>) {
        loop {
            for n in &self.nodes {
                let api: Api<Lease> = Api::namespaced(n.client.clone(), "kube-node-lease");
                let lease = json!({
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": n.name},
                    "spec": {"holderIdentity": n.name, "leaseDurationSeconds": 40,
                             "renewTime": k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()},
                });
                let pp = PatchParams::apply("localcluster-node-agent").force();
                if let Err(e) = api.patch(&n.name, &pp, &Patch::Apply(lease)).await {
                    tracing::warn!("renewing the lease of {}: {e}", n.name);
                }
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    }

    /// Watches the pods bound to node `i` and wakes the sync loop on every change.
    pub(crate) async fn watch_pods(self: Arc<Self>, i: usize) {
        use futures::StreamExt;
        let n = &self.nodes[i];
        let api: Api<Pod> = Api::all(n.client.clone());
        let cfg =
            kube::runtime::watcher::Config::default().fields(&format!("spec.nodeName={}", n.name));
        let mut stream = kube::runtime::watcher(api, cfg).boxed();
        while let Some(ev) = stream.next().await {
            if let Err(e) = ev {
                tracing::debug!("pod watch of {}: {e}", n.name);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            self.changed.notify_one();
        }
    }

    /// The sync loop: start pods bound here, terminate deleted ones, stop those that are gone.
    pub(crate) async fn run(self: Arc<Self>) {
        loop {
            self.sync().await;
            tokio::select! {
                _ = self.changed.notified() => {
                    // Coalesce a burst of events into one sync.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    async fn sync(self: &Arc<Self>) {
        let mut seen = HashSet::new();
        let mut listed_all = true;
        for (i, n) in self.nodes.iter().enumerate() {
            let api: Api<Pod> = Api::all(n.client.clone());
            let lp = kube::api::ListParams::default().fields(&format!("spec.nodeName={}", n.name));
            let pods = match api.list(&lp).await {
                Ok(l) => l.items,
                Err(e) => {
                    tracing::debug!("listing the pods of {}: {e}", n.name);
                    listed_all = false;
                    continue;
                }
            };
            for pod in pods {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                seen.insert(uid.clone());
                let running = self
                    .pods
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&uid)
                    .cloned();
                let terminal = matches!(
                    pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded") | Some("Failed")
                );
                match (running, pod.metadata.deletion_timestamp.is_some()) {
                    (Some(p), true) => {
                        if !p
                            .terminating
                            .swap(true, std::sync::atomic::Ordering::SeqCst)
                        {
                            let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(30);
                            tokio::spawn(self.clone().terminate(p, grace));
                        }
                    }
                    (None, true) => {
                        // Nothing runs for it here (e.g. after an agent restart): confirm.
                        let _ = self.confirm_deleted(i, &pod).await;
                    }
                    (Some(_), false) => {}
                    (None, false) if terminal => {}
                    (None, false) => {
                        if let Err(msg) = self.start_pod(i, &pod).await {
                            self.report_pending(i, &pod, &msg).await;
                        }
                    }
                }
            }
        }
        if !listed_all {
            return;
        }
        // Pods whose object is gone (force-deleted, or replaced by a new pod of the same name).
        let gone: Vec<Arc<RunningPod>> = {
            let mut pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
            let uids: Vec<String> = pods
                .keys()
                .filter(|u| !seen.contains(*u))
                .cloned()
                .collect();
            uids.iter().filter_map(|u| pods.remove(u)).collect()
        };
        for p in gone {
            self.stop_pod(&p, Duration::ZERO).await;
        }
    }

    async fn report_pending(&self, i: usize, pod: &Pod, msg: &str) {
        let api: Api<Pod> = Api::namespaced(
            self.nodes[i].client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let name = pod.metadata.name.clone().unwrap_or_default();
        let waiting: Vec<Value> = pod.spec.as_ref().map(|s| s.containers.iter().map(|c| json!({
            "name": c.name, "image": c.image, "imageID": "", "ready": false, "started": false, "restartCount": 0,
            "state": {"waiting": {"reason": if msg.contains("ErrImagePull") { "ErrImagePull" } else { "ContainerCreating" }, "message": msg}},
        })).collect()).unwrap_or_default();
        let patch = json!({
            "metadata": {"uid": pod.metadata.uid},
            "status": {"phase": "Pending", "hostIP": self.net.gateway().to_string(),
                "conditions": [{"type": "PodReadyToStartContainers", "status": "False", "reason": "ContainerCreating", "message": msg}],
                "containerStatuses": waiting}});
        if let Err(e) = api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            tracing::debug!("reporting pod {name} pending: {e}");
        }
    }

    /// Resolves images and volumes, creates the pod's network, and starts one supervisor per
    /// container. An error keeps the pod Pending with the message; the next sync retries.
    async fn start_pod(self: &Arc<Self>, i: usize, pod: &Pod) -> Result<(), String> {
        let node = &self.nodes[i];
        let v = serde_json::to_value(pod).map_err(|e| e.to_string())?;
        let ns = v["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let name = v["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let uid = v["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let containers = v["spec"]["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut images = Vec::new();
        for c in &containers {
            let image = c["image"].as_str().unwrap_or_default();
            images.push(
                resolve_image(image, &self.target_dir).map_err(|e| format!("ErrImagePull: {e}"))?,
            );
        }
        let pod_dir = self
            .state_dir
            .join("pods")
            .join(format!("{ns}_{name}_{uid}"));
        mkdir(&pod_dir)?;
        // The network first: the downward API and env need the address.
        let network = self.net.add_pod().map_err(|e| format!("{e:#}"))?;
        let ip = network.ip.to_string();
        let host_ip = self.net.gateway().to_string();
        // Volumes: a claim that is not bound keeps the pod Pending, as on Kubernetes.
        let mut volumes: HashMap<String, PathBuf> = HashMap::new();
        for vol in v["spec"]["volumes"].as_array().cloned().unwrap_or_default() {
            let vname = vol["name"].as_str().unwrap_or_default().to_string();
            let dir = self
                .prepare_volume(
                    node,
                    &v,
                    &vol,
                    &pod_dir.join("volumes").join(&vname),
                    &ip,
                    &host_ip,
                )
                .await?;
            volumes.insert(vname, dir);
        }
        let mut sandboxes = BTreeMap::new();
        let mut plans = Vec::new();
        for (c, image) in containers.iter().zip(&images) {
            let cname = c["name"].as_str().unwrap_or_default().to_string();
            let mut mounts = Vec::new();
            if let Image::Redis { bin_dir, .. } = image {
                // The image's own redis-server and redis-cli, where the image has them.
                if bin_dir != Path::new("/usr/bin") {
                    mounts.push((bin_dir.clone(), "/usr/local/bin".to_string(), true));
                }
            }
            for m in c["volumeMounts"].as_array().cloned().unwrap_or_default() {
                let vname = m["name"].as_str().unwrap_or_default();
                let Some(dir) = volumes.get(vname) else {
                    return Err(format!("container {cname}: volume {vname:?} not found"));
                };
                let mut src = dir.clone();
                if let Some(sp) = m["subPath"].as_str().filter(|s| !s.is_empty()) {
                    src = src.join(sp);
                    mkdir(&src)?;
                }
                mounts.push((
                    src,
                    m["mountPath"].as_str().unwrap_or("/").to_string(),
                    m["readOnly"].as_bool().unwrap_or(false),
                ));
            }
            let env = self.container_env(node, &v, c, &ip, &host_ip).await?;
            let argv = container_argv(c, image)?;
            sandboxes.insert(
                cname.clone(),
                Sandbox {
                    mounts,
                    env,
                    workdir: workdir(c, image),
                    log: pod_dir.join(format!("{cname}.log")),
                },
            );
            plans.push((cname, argv, c["readinessProbe"].clone()));
        }
        self.write_sandbox_file(&ns, &name, &uid, &network, &sandboxes)?;
        let t = now();
        let status = json!({
            "phase": "Pending",
            "podIP": ip, "podIPs": [{"ip": ip}],
            "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
            "startTime": t,
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": t},
                {"type": "Initialized", "status": "True", "lastTransitionTime": t},
                {"type": "ContainersReady", "status": "False", "lastTransitionTime": t},
                {"type": "Ready", "status": "False", "lastTransitionTime": t},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": t},
            ],
            "containerStatuses": containers.iter().map(|c| json!({
                "name": c["name"], "image": c["image"], "imageID": "", "ready": false, "started": false,
                "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}},
            })).collect::<Vec<_>>(),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let rp = Arc::new(RunningPod {
            ns: ns.clone(),
            name: name.clone(),
            uid: uid.clone(),
            node: i,
            network,
            status: Mutex::new(status),
            status_changed: Notify::new(),
            pgids: Mutex::new(HashMap::new()),
            stop: stop_tx,
            tasks: Mutex::new(Vec::new()),
            terminating: std::sync::atomic::AtomicBool::new(false),
        });
        self.pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid.clone(), rp.clone());
        let mut tasks = vec![tokio::spawn(
            self.clone().report_status(rp.clone(), stop_rx.clone()),
        )];
        rp.status_changed.notify_one();
        for (cname, argv, probe) in plans {
            let sb = sandboxes[&cname].clone();
            tasks.push(tokio::spawn(self.clone().supervise(
                rp.clone(),
                cname,
                argv,
                sb,
                probe,
                stop_rx.clone(),
            )));
        }
        rp.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(tasks);
        Ok(())
    }

    /// `<state>/sandboxes/<ns>/<pod>.json`, read by the kubelet-streaming shim for exec, attach,
    /// port-forward and logs.
    fn write_sandbox_file(
        &self,
        ns: &str,
        name: &str,
        uid: &str,
        network: &PodNetwork,
        sandboxes: &BTreeMap<String, Sandbox>,
    ) -> Result<(), String> {
        let dir = self.state_dir.join("sandboxes").join(ns);
        mkdir(&dir)?;
        let containers: serde_json::Map<String, Value> = sandboxes
            .iter()
            .map(|(c, sb)| {
                let mut exec = network.nsenter_args();
                exec.push(self.bwrap.display().to_string());
                exec.extend(sb.bwrap_args());
                (c.clone(), json!({"exec": exec, "log": sb.log}))
            })
            .collect();
        let doc = json!({"uid": uid, "ip": network.ip.to_string(), "netns": network.netns_path(), "containers": containers,
                         "default": sandboxes.keys().next()});
        let tmp = dir.join(format!(".{name}.json.tmp"));
        std::fs::write(&tmp, doc.to_string())
            .map_err(|e| format!("writing {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, dir.join(format!("{name}.json")))
            .map_err(|e| format!("writing the sandbox of {name}: {e}"))
    }

    fn remove_sandbox_file(&self, p: &RunningPod) {
        let path = self
            .state_dir
            .join("sandboxes")
            .join(&p.ns)
            .join(format!("{}.json", p.name));
        // Only this pod's: a new pod of the same name may have written its own already.
        if let Ok(text) = std::fs::read_to_string(&path) {
            if serde_json::from_str::<Value>(&text).is_ok_and(|d| d["uid"] == p.uid.as_str()) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    async fn prepare_volume(
        &self,
        node: &NodeHandle,
        pod: &Value,
        vol: &Value,
        dir: &Path,
        ip: &str,
        host_ip: &str,
    ) -> Result<PathBuf, String> {
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
        if let Some(src) = vol.get("configMap") {
            let mode = src["defaultMode"].as_u64().unwrap_or(0o644) as u32;
            let files = self.config_map_files(node, ns, src, mode).await?;
            write_files(dir, &files)?;
            return Ok(dir.to_path_buf());
        }
        if let Some(src) = vol.get("secret") {
            let mode = src["defaultMode"].as_u64().unwrap_or(0o644) as u32;
            let files = self.secret_files(node, ns, src, mode).await?;
            write_files(dir, &files)?;
            return Ok(dir.to_path_buf());
        }
        if let Some(proj) = vol.get("projected") {
            let mode = proj["defaultMode"].as_u64().unwrap_or(0o644) as u32;
            let mut files = BTreeMap::new();
            for s in proj["sources"].as_array().cloned().unwrap_or_default() {
                if let Some(src) = s.get("configMap") {
                    files.extend(self.config_map_files(node, ns, src, mode).await?);
                } else if let Some(src) = s.get("secret") {
                    files.extend(self.secret_files(node, ns, src, mode).await?);
                } else if let Some(src) = s.get("downwardAPI") {
                    files.extend(downward_files(pod, src, mode, ip, host_ip)?);
                } else if let Some(src) = s.get("serviceAccountToken") {
                    let token = self.service_account_token(node, pod, src).await?;
                    let path = src["path"].as_str().unwrap_or("token").to_string();
                    files.insert(path, (token.into_bytes(), mode));
                }
            }
            write_files(dir, &files)?;
            return Ok(dir.to_path_buf());
        }
        if let Some(src) = vol.get("downwardAPI") {
            let mode = src["defaultMode"].as_u64().unwrap_or(0o644) as u32;
            write_files(dir, &downward_files(pod, src, mode, ip, host_ip)?)?;
            return Ok(dir.to_path_buf());
        }
        if let Some(claim) = vol.get("persistentVolumeClaim") {
            let cname = claim["claimName"].as_str().unwrap_or_default();
            let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(node.client.clone(), ns);
            let pvc = pvcs
                .get(cname)
                .await
                .map_err(|e| format!("persistentvolumeclaim \"{cname}\": {e}"))?;
            let bound = pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
            let Some(pv_name) = pvc
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.clone())
                .filter(|_| bound)
            else {
                return Err(format!("persistentvolumeclaim \"{cname}\" is not bound"));
            };
            let pvs: Api<PersistentVolume> = Api::all(node.client.clone());
            let pv = pvs
                .get(&pv_name)
                .await
                .map_err(|e| format!("persistentvolume \"{pv_name}\": {e}"))?;
            let Some(hp) = pv.spec.and_then(|s| s.host_path).map(|h| h.path) else {
                return Err(format!("persistentvolume {pv_name} is not a hostPath volume; the node agent mounts only hostPath volumes"));
            };
            let d = host_path(&self.state_dir, &hp);
            mkdir(&d)?;
            return Ok(d);
        }
        if let Some(hp) = vol["hostPath"]["path"].as_str() {
            let d = host_path(&self.state_dir, hp);
            mkdir(&d)?;
            return Ok(d);
        }
        // emptyDir and anything else: a fresh directory of the pod.
        mkdir(dir)?;
        Ok(dir.to_path_buf())
    }

    async fn config_map_files(
        &self,
        node: &NodeHandle,
        ns: &str,
        src: &Value,
        mode: u32,
    ) -> Result<BTreeMap<String, (Vec<u8>, u32)>, String> {
        let name = src["name"].as_str().unwrap_or_default();
        let optional = src["optional"].as_bool().unwrap_or(false);
        let api: Api<ConfigMap> = Api::namespaced(node.client.clone(), ns);
        let data = match api
            .get_opt(name)
            .await
            .map_err(|e| format!("configmap \"{name}\": {e}"))?
        {
            Some(cm) => {
                let mut d: BTreeMap<String, Vec<u8>> = cm
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect();
                d.extend(
                    cm.binary_data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.0)),
                );
                d
            }
            None if optional => BTreeMap::new(),
            None => return Err(format!("configmap \"{name}\" not found")),
        };
        key_files(&data, src, mode, optional, &format!("configmap {name}"))
    }

    async fn secret_files(
        &self,
        node: &NodeHandle,
        ns: &str,
        src: &Value,
        mode: u32,
    ) -> Result<BTreeMap<String, (Vec<u8>, u32)>, String> {
        let name = src["secretName"]
            .as_str()
            .or(src["name"].as_str())
            .unwrap_or_default();
        let optional = src["optional"].as_bool().unwrap_or(false);
        let api: Api<Secret> = Api::namespaced(node.client.clone(), ns);
        let data = match api
            .get_opt(name)
            .await
            .map_err(|e| format!("secret \"{name}\": {e}"))?
        {
            Some(s) => s
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect(),
            None if optional => BTreeMap::new(),
            None => return Err(format!("secret \"{name}\" not found")),
        };
        key_files(&data, src, mode, optional, &format!("secret {name}"))
    }

    /// A token bound to the pod, from the TokenRequest API, as the kubelet gets one.
    async fn service_account_token(
        &self,
        node: &NodeHandle,
        pod: &Value,
        src: &Value,
    ) -> Result<String, String> {
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
        let sa = pod["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or("default");
        let api: Api<ServiceAccount> = Api::namespaced(node.client.clone(), ns);
        let mut spec = json!({
            "expirationSeconds": src["expirationSeconds"].as_i64().unwrap_or(3607),
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]},
        });
        if let Some(aud) = src["audience"].as_str() {
            spec["audiences"] = json!([aud]);
        }
        let req =
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec});
        let resp: Value = api
            .create_subresource("token", sa, &PostParams::default(), &req)
            .await
            .map_err(|e| format!("requesting a token for service account {sa}: {e}"))?;
        Ok(resp["status"]["token"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    async fn container_env(
        &self,
        node: &NodeHandle,
        pod: &Value,
        c: &Value,
        ip: &str,
        host_ip: &str,
    ) -> Result<Vec<(String, String)>, String> {
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
        let mut env = vec![
            (
                "PATH".to_string(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
            ),
            (
                "HOSTNAME".to_string(),
                pod["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ),
            ("HOME".to_string(), "/root".to_string()),
        ];
        for e in c["env"].as_array().cloned().unwrap_or_default() {
            let k = e["name"].as_str().unwrap_or_default().to_string();
            let val = if let Some(v) = e["value"].as_str() {
                v.to_string()
            } else if let Some(path) = e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                field_ref(pod, path, ip, host_ip)?
            } else if let Some(r) = e["valueFrom"].get("configMapKeyRef") {
                let api: Api<ConfigMap> = Api::namespaced(node.client.clone(), ns);
                let cm = api
                    .get_opt(r["name"].as_str().unwrap_or_default())
                    .await
                    .map_err(|e| e.to_string())?;
                match cm
                    .and_then(|cm| cm.data)
                    .and_then(|d| d.get(r["key"].as_str().unwrap_or_default()).cloned())
                {
                    Some(v) => v,
                    None if r["optional"].as_bool() == Some(true) => continue,
                    None => {
                        return Err(format!(
                            "couldn't find key {} in configmap {} for env {k}",
                            r["key"], r["name"]
                        ))
                    }
                }
            } else if let Some(r) = e["valueFrom"].get("secretKeyRef") {
                let api: Api<Secret> = Api::namespaced(node.client.clone(), ns);
                let s = api
                    .get_opt(r["name"].as_str().unwrap_or_default())
                    .await
                    .map_err(|e| e.to_string())?;
                match s
                    .and_then(|s| s.data)
                    .and_then(|d| d.get(r["key"].as_str().unwrap_or_default()).cloned())
                {
                    Some(v) => String::from_utf8_lossy(&v.0).into_owned(),
                    None if r["optional"].as_bool() == Some(true) => continue,
                    None => {
                        return Err(format!(
                            "couldn't find key {} in secret {} for env {k}",
                            r["key"], r["name"]
                        ))
                    }
                }
            } else {
                String::new()
            };
            env.retain(|(ek, _)| *ek != k);
            env.push((k, val));
        }
        Ok(env)
    }

    /// Runs one container: restarts it whenever it exits (backoff 100 ms doubling to 5 s) until
    /// the pod stops, and keeps its status current.
    async fn supervise(
        self: Arc<Self>,
        pod: Arc<RunningPod>,
        cname: String,
        argv: Vec<String>,
        sb: Sandbox,
        probe: Value,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut restarts: i64 = 0;
        let mut last_state = Value::Null;
        loop {
            if *stop.borrow() {
                return;
            }
            let mut cmd = tokio::process::Command::new(&self.bwrap);
            cmd.args(sb.bwrap_args()).args(&argv);
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&sb.log);
            let (out, err) = match log.and_then(|f| Ok((f.try_clone()?, f))) {
                Ok((a, b)) => (Stdio::from(a), Stdio::from(b)),
                Err(_) => (Stdio::null(), Stdio::null()),
            };
            cmd.stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .env_clear()
                .kill_on_drop(true)
                .process_group(0);
            let netns = pod.network.netns_fd();
            // SAFETY: prctl and setns are async-signal-safe; the namespace fd is owned by `pod`,
            // which outlives this spawn.
            unsafe {
                cmd.pre_exec(move || {
                    // Die with the runtime thread that spawned us, so a crashed test leaves
                    // no process behind.
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    if libc::setns(netns, libc::CLONE_NEWNET) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let started = now();
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    pod.set_container(&cname, |cs| {
                        cs["state"] = json!({"waiting": {"reason": "CreateContainerError", "message": format!("starting bwrap: {e}")}});
                    });
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                        _ = stop.changed() => return,
                    }
                }
            };
            let pid = child.id().map(|p| p as i32).unwrap_or(0);
            pod.pgids
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(cname.clone(), pid);
            self.groups
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(pid);
            let ls = last_state.clone();
            pod.set_container(&cname, |cs| {
                cs["state"] = json!({"running": {"startedAt": started}});
                cs["started"] = json!(true);
                cs["ready"] = json!(false);
                cs["restartCount"] = json!(restarts);
                cs["containerID"] = json!(format!("localcluster://{pid}"));
                if !ls.is_null() {
                    cs["lastState"] = ls;
                }
            });
            let readiness = tokio::spawn(readiness(
                pod.clone(),
                cname.clone(),
                probe.clone(),
                sb.clone(),
                self.bwrap.clone(),
            ));
            let status = tokio::select! {
                s = child.wait() => s.ok(),
                _ = stop.changed() => {
                    // terminate() has signalled the group; reap.
                    let _ = child.wait().await;
                    None
                }
            };
            readiness.abort();
            self.groups
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&pid);
            kill_group(pid, libc::SIGKILL);
            if *stop.borrow() {
                return;
            }
            let code = status.and_then(|s| {
                use std::os::unix::process::ExitStatusExt;
                s.code().or(s.signal().map(|sig| 128 + sig))
            });
            restarts += 1;
            last_state = json!({"terminated": {"exitCode": code.unwrap_or(-1),
                "reason": if code == Some(0) { "Completed" } else { "Error" },
                "startedAt": started, "finishedAt": now()}});
            let ls = last_state.clone();
            pod.set_container(&cname, |cs| {
                cs["ready"] = json!(false);
                cs["restartCount"] = json!(restarts);
                cs["lastState"] = ls;
                cs["state"] = json!({"waiting": {"reason": "CrashLoopBackOff"}});
            });
            let backoff = Duration::from_millis((100u64 << restarts.min(6)).min(5_000));
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Pushes the pod's status to the API server whenever it changes, until the pod stops.
    async fn report_status(self: Arc<Self>, pod: Arc<RunningPod>, mut stop: watch::Receiver<bool>) {
        let api: Api<Pod> = Api::namespaced(self.nodes[pod.node].client.clone(), &pod.ns);
        let mut sent = Value::Null;
        loop {
            tokio::select! {
                _ = pod.status_changed.notified() => {}
                // A stopped pod's status is the deletion's business, not ours.
                _ = stop.changed() => return,
            }
            // Let a burst of container updates settle into one write.
            tokio::time::sleep(Duration::from_millis(5)).await;
            let status = pod.status.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if status == sent {
                continue;
            }
            let patch = json!({"metadata": {"uid": pod.uid}, "status": status});
            match api
                .patch_status(&pod.name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => sent = status,
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => return,
                Err(e) => {
                    tracing::debug!("pod {}/{} status: {e}", pod.ns, pod.name);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    pod.status_changed.notify_one();
                }
            }
        }
    }

    /// Graceful termination: SIGTERM, up to the grace period, SIGKILL; then the pod object is
    /// deleted for good (what the kubelet confirms with a zero-grace delete).
    async fn terminate(self: Arc<Self>, pod: Arc<RunningPod>, grace: i64) {
        let grace = Duration::from_secs(grace.clamp(0, 30) as u64);
        self.stop_pod(&pod, grace).await;
        self.pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pod.uid);
        let api: Api<Pod> = Api::namespaced(self.nodes[pod.node].client.clone(), &pod.ns);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(pod.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        if let Err(e) = api.delete(&pod.name, &dp).await {
            tracing::debug!("confirming the deletion of {}/{}: {e}", pod.ns, pod.name);
        }
    }

    async fn confirm_deleted(&self, i: usize, pod: &Pod) -> Result<()> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let api: Api<Pod> = Api::namespaced(self.nodes[i].client.clone(), ns);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        api.delete(pod.metadata.name.as_deref().unwrap_or_default(), &dp)
            .await?;
        Ok(())
    }

    /// Stops a pod's containers: SIGTERM to each process group, SIGKILL after `grace`.
    async fn stop_pod(&self, pod: &RunningPod, grace: Duration) {
        let groups: Vec<i32> = pod
            .pgids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .copied()
            .collect();
        let _ = pod.stop.send(true);
        if !grace.is_zero() {
            for g in &groups {
                kill_group(*g, libc::SIGTERM);
            }
            let deadline = tokio::time::Instant::now() + grace;
            while groups.iter().any(|g| group_alive(*g)) && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        for g in &groups {
            kill_group(*g, libc::SIGKILL);
        }
        let tasks: Vec<_> =
            std::mem::take(&mut *pod.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        // The supervisors reap their children after the kill; the status reporter just ends.
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            for t in tasks {
                let _ = t.await;
            }
        })
        .await;
        self.remove_sandbox_file(pod);
    }

    // ---- faults and introspection for tests ------------------------------------------

    fn find(&self, ns: &str, name: &str) -> Option<Arc<RunningPod>> {
        self.pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .find(|p| {
                p.ns == ns
                    && p.name == name
                    && !p.terminating.load(std::sync::atomic::Ordering::SeqCst)
            })
            .cloned()
    }

    /// SIGKILLs a pod's processes; the supervisor restarts them in the same pod (same IP).
    pub(crate) fn kill_processes(&self, ns: &str, name: &str) -> Result<usize> {
        let p = self
            .find(ns, name)
            .with_context(|| format!("pod {ns}/{name} is not running on this node agent"))?;
        let groups = p.pgids.lock().unwrap_or_else(|e| e.into_inner());
        for g in groups.values() {
            kill_group(*g, libc::SIGKILL);
        }
        Ok(groups.len())
    }

    /// Cuts a pod off the network (or reconnects it).
    pub(crate) fn partition(&self, ns: &str, name: &str, cut: bool) -> Result<()> {
        let p = self
            .find(ns, name)
            .with_context(|| format!("pod {ns}/{name} is not running on this node agent"))?;
        self.net.partition(&p.network, cut)
    }

    pub(crate) fn pod_ip(&self, ns: &str, name: &str) -> Option<String> {
        self.find(ns, name).map(|p| p.network.ip.to_string())
    }

    /// Every process this agent runs: container process groups and the pods' pause processes.
    pub(crate) fn process_ids(&self) -> Vec<i32> {
        let groups: Vec<i32> = self
            .groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        let mut pids = crate::processes_in_groups(&groups);
        for p in self.pods.lock().unwrap_or_else(|e| e.into_inner()).values() {
            pids.push(p.network.pause_pid() as i32);
        }
        pids
    }

    /// Stops every pod now (SIGKILL) and waits, bounded, for the supervisors.
    pub(crate) async fn shutdown(&self) {
        let pods: Vec<Arc<RunningPod>> = self
            .pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, p)| p)
            .collect();
        for p in &pods {
            self.stop_pod(p, Duration::ZERO).await;
        }
    }

    /// Synchronous last resort (Drop paths): SIGKILL every known group.
    pub(crate) fn kill_all_now(&self) {
        for g in self.groups.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            kill_group(*g, libc::SIGKILL);
        }
        self.pods.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

impl RunningPod {
    /// Edits one container status and recomputes the pod's phase and conditions.
    fn set_container(&self, cname: &str, f: impl FnOnce(&mut Value)) {
        let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
        let Some(list) = st["containerStatuses"].as_array_mut() else {
            return;
        };
        if let Some(cs) = list.iter_mut().find(|c| c["name"] == cname) {
            f(cs);
        }
        let all_ready = list.iter().all(|c| c["ready"] == true);
        let any_running = list.iter().any(|c| c["state"].get("running").is_some());
        if any_running {
            st["phase"] = json!("Running");
        }
        let t = now();
        if let Some(conds) = st["conditions"].as_array_mut() {
            for c in conds.iter_mut() {
                if c["type"] == "Ready" || c["type"] == "ContainersReady" {
                    let want = if all_ready { "True" } else { "False" };
                    if c["status"] != want {
                        c["status"] = json!(want);
                        c["lastTransitionTime"] = json!(t);
                    }
                }
            }
        }
        drop(st);
        self.status_changed.notify_one();
    }
}

/// Readiness as the kubelet judges it: ready once running when there is no readiness probe;
/// otherwise the probe (exec, tcpSocket, httpGet) after its initial delay, every period.
async fn readiness(pod: Arc<RunningPod>, cname: String, probe: Value, sb: Sandbox, bwrap: PathBuf) {
    if probe.is_null() {
        pod.set_container(&cname, |cs| cs["ready"] = json!(true));
        return;
    }
    let secs = |k: &str, d: u64| probe[k].as_u64().unwrap_or(d);
    tokio::time::sleep(Duration::from_secs(secs("initialDelaySeconds", 0))).await;
    let period = Duration::from_secs(secs("periodSeconds", 10).max(1));
    let timeout = Duration::from_secs(secs("timeoutSeconds", 1).max(1));
    let (success, failure) = (
        secs("successThreshold", 1).max(1),
        secs("failureThreshold", 3).max(1),
    );
    let (mut ok_run, mut fail_run, mut ready) = (0, 0, false);
    loop {
        let ok = tokio::time::timeout(timeout, probe_once(&pod, &probe, &sb, &bwrap))
            .await
            .unwrap_or(false);
        if ok {
            ok_run += 1;
            fail_run = 0;
        } else {
            fail_run += 1;
            ok_run = 0;
        }
        let want = if ok_run >= success {
            true
        } else if fail_run >= failure {
            false
        } else {
            ready
        };
        if want != ready {
            ready = want;
            pod.set_container(&cname, |cs| cs["ready"] = json!(want));
        }
        tokio::time::sleep(period).await;
    }
}

async fn probe_once(pod: &RunningPod, probe: &Value, sb: &Sandbox, bwrap: &Path) -> bool {
    let ip = pod.network.ip.to_string();
    let port = |v: &Value| v["port"].as_u64().map(|p| p as u16);
    if let Some(cmd) = probe.get("exec") {
        let mut c = tokio::process::Command::new(bwrap);
        c.args(sb.bwrap_args())
            .args(strings(&cmd["command"]))
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let netns = pod.network.netns_fd();
        // SAFETY: setns is async-signal-safe; the fd is owned by `pod`.
        unsafe {
            c.pre_exec(move || {
                if libc::setns(netns, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        return c.status().await.is_ok_and(|s| s.success());
    }
    if let Some(p) = probe.get("tcpSocket").and_then(port) {
        return tokio::net::TcpStream::connect((ip.as_str(), p))
            .await
            .is_ok();
    }
    if let Some(h) = probe.get("httpGet") {
        let Some(p) = port(h) else { return false };
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut s) = tokio::net::TcpStream::connect((ip.as_str(), p)).await else {
            return false;
        };
        let path = h["path"].as_str().unwrap_or("/");
        let req = format!("GET {path} HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n");
        let mut buf = [0u8; 12];
        return s.write_all(req.as_bytes()).await.is_ok()
            && s.read_exact(&mut buf).await.is_ok()
            && matches!(&buf[9..10], b"2" | b"3");
    }
    false
}

fn downward_files(
    pod: &Value,
    src: &Value,
    mode: u32,
    ip: &str,
    host_ip: &str,
) -> Result<BTreeMap<String, (Vec<u8>, u32)>, String> {
    let mut out = BTreeMap::new();
    for it in src["items"].as_array().cloned().unwrap_or_default() {
        let path = it["path"].as_str().unwrap_or_default().to_string();
        let m = it["mode"].as_u64().map(|m| m as u32).unwrap_or(mode);
        if let Some(fp) = it["fieldRef"]["fieldPath"].as_str() {
            out.insert(path, (field_ref(pod, fp, ip, host_ip)?.into_bytes(), m));
        }
    }
    Ok(out)
}

fn kill_group(pgid: i32, sig: i32) {
    if pgid > 1 {
        // SAFETY: plain syscall; a stale group id only yields ESRCH.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    pgid > 1 && unsafe { libc::kill(-pgid, 0) } == 0
}

fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(bin))
            .find(|p| p.is_file())
    })
}
