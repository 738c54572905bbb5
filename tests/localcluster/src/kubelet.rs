//! The kubelet: runs every pod's containers as real processes under bubblewrap, each pod on
//! its own loopback address, and reports pod status (Running/Ready/restartCount) to the store.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::resources::{by_plural, ApiError, ApiResult};
use crate::store::{base64_decode, timestamp, Store};

const MANAGER: &str = "kubelet";

/// Everything needed to start a process inside a pod's sandbox.
#[derive(Clone, Debug)]
pub struct Sandbox {
    pub ip: String,
    /// (host directory, mount path, read-only)
    pub mounts: Vec<(PathBuf, String, bool)>,
    pub env: Vec<(String, String)>,
    pub workdir: String,
    pub log: PathBuf,
}

struct PodHandle {
    ns: String,
    name: String,
    ip: String,
    /// container name -> sandbox
    sandboxes: BTreeMap<String, Sandbox>,
    /// container name -> process group of its current process
    pgids: Arc<Mutex<HashMap<String, i32>>>,
    stop: watch::Sender<bool>,
}

pub struct Kubelet {
    store: Arc<Store>,
    state_dir: PathBuf,
    pub nodes: Vec<String>,
    pods: Mutex<HashMap<String, PodHandle>>,
    /// Every live process group, for synchronous cleanup.
    groups: Arc<Mutex<HashSet<i32>>>,
    bwrap: PathBuf,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Pod addresses come from one counter per process, started at a random point so that two
/// clusters (parallel tests, other users of the machine) rarely meet; an address whose ports
/// are taken is skipped.
static NEXT_IP: AtomicU32 = AtomicU32::new(0);

fn alloc_ip(ports: &[u16]) -> String {
    if NEXT_IP.load(Ordering::Relaxed) == 0 {
        let seed = std::process::id()
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
        let _ =
            NEXT_IP.compare_exchange(0, 1 + seed % 40_000, Ordering::Relaxed, Ordering::Relaxed);
    }
    loop {
        let n = NEXT_IP.fetch_add(1, Ordering::Relaxed) % 64_000;
        // 127.0.1.1 ... 127.0.252.254: skips 127.0.0.x where loopback services usually live.
        let ip = format!("127.0.{}.{}", 1 + n / 254, 1 + n % 254);
        let free = ports
            .iter()
            .all(|p| std::net::TcpListener::bind((ip.as_str(), *p)).is_ok());
        if free {
            return ip;
        }
    }
}

fn container_ports(c: &Value) -> Vec<u16> {
    c["ports"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["containerPort"].as_u64().map(|x| x as u16))
                .collect()
        })
        .unwrap_or_default()
}

/// Maps a host path (a PV's hostPath) under the state directory.
pub fn host_path(state_dir: &Path, p: &str) -> PathBuf {
    state_dir.join("hostpath").join(p.trim_start_matches('/'))
}

impl Kubelet {
    pub fn new(store: Arc<Store>, state_dir: PathBuf, nodes: usize) -> Arc<Self> {
        let bwrap = which("bwrap").unwrap_or_else(|| PathBuf::from("/usr/bin/bwrap"));
        Arc::new(Kubelet {
            store,
            state_dir,
            nodes: (1..=nodes.max(1))
                .map(|i| format!("localcluster-node-{i}"))
                .collect(),
            pods: Mutex::new(HashMap::new()),
            groups: Arc::new(Mutex::new(HashSet::new())),
            bwrap,
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// The sync loop: start pods that appeared, stop pods that went away.
    pub async fn run(self: Arc<Self>) {
        let Ok((_, mut rx)) = self.store.watch_from(u64::MAX) else {
            return;
        };
        loop {
            self.sync().await;
            tokio::select! {
                _ = rx.recv() => {
                    // Coalesce bursts of events into one sync.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    while rx.try_recv().is_ok() {}
                }
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    async fn sync(self: &Arc<Self>) {
        let (pods, _) = self.store.list(by_plural("pods"), None);
        let live: HashSet<String> = pods
            .iter()
            .filter_map(|p| p["metadata"]["uid"].as_str().map(str::to_string))
            .collect();
        // Stop pods whose object is gone (deleted, or replaced by a new pod of the same name).
        let gone: Vec<String> = self
            .pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .filter(|uid| !live.contains(*uid))
            .cloned()
            .collect();
        for uid in gone {
            self.stop_pod(&uid);
        }
        for pod in pods {
            let uid = pod["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if self
                .pods
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&uid)
            {
                continue;
            }
            if let Err(msg) = self.start_pod(&pod) {
                let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
                let name = pod["metadata"]["name"].as_str().unwrap_or_default();
                let _ = self.store.mutate(by_plural("pods"), ns, name, MANAGER, "status", |p| {
                    if p["metadata"]["uid"] == uid.as_str() {
                        p["status"]["phase"] = json!("Pending");
                        p["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "False",
                            "reason": "Unschedulable", "message": msg}]);
                    }
                });
            }
        }
    }

    fn stop_pod(&self, uid: &str) {
        let handle = self
            .pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
        if let Some(h) = handle {
            let _ = h.stop.send(true);
            for pg in h.pgids.lock().unwrap_or_else(|e| e.into_inner()).values() {
                kill_group(*pg);
            }
        }
    }

    /// Prepares volumes and env, assigns the address, and starts one supervisor per container.
    fn start_pod(self: &Arc<Self>, pod: &Value) -> Result<(), String> {
        let ns = pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let uid = pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let spec = &pod["spec"];
        let node = match spec["nodeName"].as_str() {
            Some(n) => n.to_string(),
            None => self.pick_node(),
        };
        let pod_dir = self
            .state_dir
            .join("pods")
            .join(format!("{ns}_{name}_{uid}"));
        std::fs::create_dir_all(&pod_dir)
            .map_err(|e| format!("creating {}: {e}", pod_dir.display()))?;
        // Volumes first: a claim that is not bound keeps the pod Pending, as on Kubernetes.
        let mut volumes: HashMap<String, PathBuf> = HashMap::new();
        for v in spec["volumes"].as_array().cloned().unwrap_or_default() {
            let vname = v["name"].as_str().unwrap_or_default().to_string();
            let dir = self.prepare_volume(&ns, &v, &pod_dir.join("volumes").join(&vname))?;
            volumes.insert(vname, dir);
        }
        let containers = spec["containers"].as_array().cloned().unwrap_or_default();
        let all_ports: Vec<u16> = containers.iter().flat_map(container_ports).collect();
        let ip = alloc_ip(&all_ports);
        let mut sandboxes = BTreeMap::new();
        let mut argvs = Vec::new();
        for c in &containers {
            let cname = c["name"].as_str().unwrap_or_default().to_string();
            let mut mounts = Vec::new();
            for m in c["volumeMounts"].as_array().cloned().unwrap_or_default() {
                let vname = m["name"].as_str().unwrap_or_default();
                let Some(dir) = volumes.get(vname) else {
                    return Err(format!("container {cname}: volume {vname:?} not found"));
                };
                let mut src = dir.clone();
                if let Some(sp) = m["subPath"].as_str().filter(|s| !s.is_empty()) {
                    src = src.join(sp);
                    if !src.exists() {
                        let _ = std::fs::create_dir_all(&src);
                    }
                }
                mounts.push((
                    src,
                    m["mountPath"].as_str().unwrap_or("/").to_string(),
                    m["readOnly"].as_bool().unwrap_or(false),
                ));
            }
            let env = self.container_env(pod, c, &ip, &node)?;
            let image = c["image"].as_str().unwrap_or_default();
            let workdir = match c["workingDir"].as_str() {
                Some(w) => w.to_string(),
                // The redis image's WORKDIR.
                None if is_redis_image(image) => "/data".to_string(),
                None => "/".to_string(),
            };
            let argv = container_argv(c, &ip)?;
            sandboxes.insert(
                cname.clone(),
                Sandbox {
                    ip: ip.clone(),
                    mounts,
                    env,
                    workdir,
                    log: pod_dir.join(format!("{cname}.log")),
                },
            );
            argvs.push((cname, argv, container_ports(c), is_redis_image(image)));
        }
        let now = timestamp();
        self.store
            .mutate(by_plural("pods"), &ns, &name, MANAGER, "status", |p| {
                if p["metadata"]["uid"] != uid.as_str() {
                    return;
                }
                p["status"] = json!({
                    "phase": "Pending",
                    "podIP": ip, "podIPs": [{"ip": ip}],
                    "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
                    "startTime": now,
                    "qosClass": "BestEffort",
                    "conditions": [
                        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                        {"type": "ContainersReady", "status": "False", "lastTransitionTime": now},
                        {"type": "Ready", "status": "False", "lastTransitionTime": now},
                    ],
                    "containerStatuses": argvs.iter().map(|(cn, _, _, _)| {
                        let image = containers.iter().find(|c| c["name"] == cn.as_str()).map(|c| c["image"].clone()).unwrap_or(Value::Null);
                        json!({"name": cn, "image": image, "imageID": "", "ready": false, "started": false, "restartCount": 0,
                            "state": {"waiting": {"reason": "ContainerCreating"}}})
                    }).collect::<Vec<_>>(),
                });
                if p["spec"].get("nodeName").is_none() {
                    p["spec"]["nodeName"] = json!(node);
                }
            })
            .map_err(|e| e.message)?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let pgids = Arc::new(Mutex::new(HashMap::new()));
        self.pods.lock().unwrap_or_else(|e| e.into_inner()).insert(
            uid.clone(),
            PodHandle {
                ns: ns.clone(),
                name: name.clone(),
                ip: ip.clone(),
                sandboxes: sandboxes.clone(),
                pgids: pgids.clone(),
                stop: stop_tx,
            },
        );
        for (cname, argv, ports, redis) in argvs {
            let sb = sandboxes[&cname].clone();
            let this = self.clone();
            let key = PodKey {
                ns: ns.clone(),
                name: name.clone(),
                uid: uid.clone(),
            };
            let t = tokio::spawn(this.supervise(
                key,
                cname,
                argv,
                sb,
                ports,
                redis,
                stop_rx.clone(),
                pgids.clone(),
            ));
            self.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(t);
        }
        Ok(())
    }

    fn pick_node(&self) -> String {
        let (pods, _) = self.store.list(by_plural("pods"), None);
        let mut counts: BTreeMap<&str, usize> =
            self.nodes.iter().map(|n| (n.as_str(), 0)).collect();
        for p in &pods {
            if let Some(n) = p["spec"]["nodeName"].as_str() {
                if let Some(c) = counts.get_mut(n) {
                    *c += 1;
                }
            }
        }
        counts
            .iter()
            .min_by_key(|(_, c)| **c)
            .map(|(n, _)| n.to_string())
            .unwrap_or_else(|| self.nodes[0].clone())
    }

    fn prepare_volume(&self, ns: &str, v: &Value, dir: &Path) -> Result<PathBuf, String> {
        let mk = |d: &Path| {
            std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))
        };
        if let Some(cm) = v.get("configMap").or_else(|| v.get("secret")) {
            let is_secret = v.get("secret").is_some();
            let (res, name_field) = if is_secret {
                (by_plural("secrets"), "secretName")
            } else {
                (by_plural("configmaps"), "name")
            };
            let oname = cm[name_field].as_str().unwrap_or_default();
            let optional = cm["optional"].as_bool().unwrap_or(false);
            let obj = match self.store.get(res, ns, oname) {
                Ok(o) => o,
                Err(_) if optional => json!({}),
                Err(_) => return Err(format!("{} \"{oname}\" not found", res.singular)),
            };
            mk(dir)?;
            let default_mode = cm["defaultMode"].as_u64().unwrap_or(0o644) as u32;
            let mut data: BTreeMap<String, Vec<u8>> = BTreeMap::new();
            for (k, val) in obj["data"].as_object().cloned().unwrap_or_default() {
                let s = val.as_str().unwrap_or_default();
                let bytes = if is_secret {
                    base64_decode(s).unwrap_or_default()
                } else {
                    s.as_bytes().to_vec()
                };
                data.insert(k, bytes);
            }
            for (k, val) in obj["binaryData"].as_object().cloned().unwrap_or_default() {
                data.insert(
                    k,
                    base64_decode(val.as_str().unwrap_or_default()).unwrap_or_default(),
                );
            }
            let files: Vec<(String, String, u32)> = match cm["items"].as_array() {
                Some(items) => items
                    .iter()
                    .map(|it| {
                        (
                            it["key"].as_str().unwrap_or_default().to_string(),
                            it["path"].as_str().unwrap_or_default().to_string(),
                            it["mode"]
                                .as_u64()
                                .map(|m| m as u32)
                                .unwrap_or(default_mode),
                        )
                    })
                    .collect(),
                None => data
                    .keys()
                    .map(|k| (k.clone(), k.clone(), default_mode))
                    .collect(),
            };
            for (key, path, mode) in files {
                let Some(bytes) = data.get(&key) else {
                    if optional {
                        continue;
                    }
                    return Err(format!(
                        "configmap references non-existent config key: {key}"
                    ));
                };
                let dest = dir.join(&path);
                if let Some(parent) = dest.parent() {
                    mk(parent)?;
                }
                std::fs::write(&dest, bytes)
                    .map_err(|e| format!("writing {}: {e}", dest.display()))?;
                std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode & 0o7777))
                    .map_err(|e| format!("chmod {}: {e}", dest.display()))?;
            }
            return Ok(dir.to_path_buf());
        }
        if let Some(claim) = v.get("persistentVolumeClaim") {
            let cname = claim["claimName"].as_str().unwrap_or_default();
            let pvc = self
                .store
                .get(by_plural("persistentvolumeclaims"), ns, cname)
                .map_err(|_| format!("persistentvolumeclaim \"{cname}\" not found"))?;
            let Some(pv_name) = pvc["spec"]["volumeName"]
                .as_str()
                .filter(|_| pvc["status"]["phase"] == "Bound")
            else {
                return Err(format!(
                    "pod has unbound immediate PersistentVolumeClaims ({cname})"
                ));
            };
            let pv = self
                .store
                .get(by_plural("persistentvolumes"), "", pv_name)
                .map_err(|_| format!("persistentvolume \"{pv_name}\" not found"))?;
            let Some(hp) = pv["spec"]["hostPath"]["path"].as_str() else {
                return Err(format!("persistentvolume {pv_name} has no hostPath; only hostPath volumes are emulated"));
            };
            let d = host_path(&self.state_dir, hp);
            mk(&d)?;
            return Ok(d);
        }
        if let Some(hp) = v["hostPath"]["path"].as_str() {
            let d = host_path(&self.state_dir, hp);
            mk(&d)?;
            return Ok(d);
        }
        // emptyDir and anything else: a fresh directory of the pod.
        mk(dir)?;
        Ok(dir.to_path_buf())
    }

    fn container_env(
        &self,
        pod: &Value,
        c: &Value,
        ip: &str,
        node: &str,
    ) -> Result<Vec<(String, String)>, String> {
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let mut env = vec![
            (
                "PATH".to_string(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
            ),
            ("HOSTNAME".to_string(), name.to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        for e in c["env"].as_array().cloned().unwrap_or_default() {
            let k = e["name"].as_str().unwrap_or_default().to_string();
            let v = if let Some(v) = e["value"].as_str() {
                v.to_string()
            } else if let Some(fr) = e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                match fr {
                    "status.podIP" => ip.to_string(),
                    "status.podIPs" => ip.to_string(),
                    "status.hostIP" | "status.hostIPs" => "127.0.0.1".to_string(),
                    "metadata.name" => name.to_string(),
                    "metadata.namespace" => ns.to_string(),
                    "metadata.uid" => pod["metadata"]["uid"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    "spec.nodeName" => node.to_string(),
                    "spec.serviceAccountName" => pod["spec"]["serviceAccountName"]
                        .as_str()
                        .unwrap_or("default")
                        .to_string(),
                    other => {
                        if let Some(l) = other
                            .strip_prefix("metadata.labels['")
                            .and_then(|s| s.strip_suffix("']"))
                        {
                            pod["metadata"]["labels"][l]
                                .as_str()
                                .unwrap_or_default()
                                .to_string()
                        } else {
                            return Err(format!("unsupported fieldRef {other}"));
                        }
                    }
                }
            } else if let Some(r) = e["valueFrom"]
                .get("configMapKeyRef")
                .or_else(|| e["valueFrom"].get("secretKeyRef"))
            {
                let secret = e["valueFrom"].get("secretKeyRef").is_some();
                let res = by_plural(if secret { "secrets" } else { "configmaps" });
                let obj = self
                    .store
                    .get(res, ns, r["name"].as_str().unwrap_or_default());
                let raw = obj.ok().and_then(|o| {
                    o["data"][r["key"].as_str().unwrap_or_default()]
                        .as_str()
                        .map(str::to_string)
                });
                match raw {
                    Some(s) if secret => {
                        String::from_utf8_lossy(&base64_decode(&s).unwrap_or_default()).into_owned()
                    }
                    Some(s) => s,
                    None if r["optional"].as_bool() == Some(true) => continue,
                    None => return Err(format!("couldn't find key {} for env {k}", r["key"])),
                }
            } else {
                String::new()
            };
            env.retain(|(ek, _)| *ek != k);
            env.push((k, v));
        }
        Ok(env)
    }

    /// Restarts the container's process whenever it exits, until the pod is stopped.
    #[allow(clippy::too_many_arguments)]
    async fn supervise(
        self: Arc<Self>,
        key: PodKey,
        cname: String,
        argv: Vec<String>,
        sb: Sandbox,
        ports: Vec<u16>,
        redis: bool,
        mut stop: watch::Receiver<bool>,
        pgids: Arc<Mutex<HashMap<String, i32>>>,
    ) {
        let mut restarts: i64 = 0;
        let mut last_state = Value::Null;
        loop {
            if *stop.borrow() {
                return;
            }
            let mut cmd = self.sandbox_command(&sb, &argv);
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&sb.log);
            let (out, err) = match log.and_then(|f| Ok((f.try_clone()?, f))) {
                Ok((a, b)) => (Stdio::from(a), Stdio::from(b)),
                Err(_) => (Stdio::null(), Stdio::null()),
            };
            cmd.stdin(Stdio::null()).stdout(out).stderr(err);
            let started = timestamp();
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    self.set_container(&key, &cname, |cs| {
                        cs["state"] = json!({"waiting": {"reason": "CreateContainerError", "message": format!("starting bwrap: {e}")}});
                    });
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                        _ = stop.changed() => return,
                    }
                }
            };
            let pid = child.id().map(|p| p as i32).unwrap_or(0);
            pgids
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(cname.clone(), pid);
            self.groups
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(pid);
            let ls = last_state.clone();
            self.set_container(&key, &cname, |cs| {
                cs["state"] = json!({"running": {"startedAt": started}});
                cs["started"] = json!(true);
                cs["ready"] = json!(false);
                cs["restartCount"] = json!(restarts);
                cs["containerID"] = json!(format!("localcluster://{pid}"));
                if !ls.is_null() {
                    cs["lastState"] = ls;
                }
            });
            let probe = {
                let this = self.clone();
                let key = key.clone();
                let cname = cname.clone();
                let ip = sb.ip.clone();
                let ports = ports.clone();
                tokio::spawn(async move { this.readiness(key, cname, ip, ports, redis).await })
            };
            let status = tokio::select! {
                s = child.wait() => s.ok(),
                _ = stop.changed() => {
                    kill_group(pid);
                    let _ = child.wait().await;
                    None
                }
            };
            probe.abort();
            self.groups
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&pid);
            kill_group(pid);
            if *stop.borrow() {
                return;
            }
            let code = status.and_then(|s| {
                use std::os::unix::process::ExitStatusExt;
                s.code().or(s.signal().map(|sig| 128 + sig))
            });
            restarts += 1;
            let finished = timestamp();
            last_state = json!({"terminated": {"exitCode": code.unwrap_or(-1), "reason": if code == Some(0) { "Completed" } else { "Error" },
                "startedAt": started, "finishedAt": finished}});
            let ls = last_state.clone();
            self.set_container(&key, &cname, |cs| {
                cs["ready"] = json!(false);
                cs["restartCount"] = json!(restarts);
                cs["lastState"] = ls;
                cs["state"] = json!({"waiting": {"reason": "CrashLoopBackOff"}});
            });
            // Short backoff: a crash loop must not spin, and tests want quick restarts.
            let backoff = Duration::from_millis((100u64 << restarts.min(6)).min(5_000));
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Ready once the first port answers (PING for Redis, a TCP connect otherwise).
    async fn readiness(
        self: Arc<Self>,
        key: PodKey,
        cname: String,
        ip: String,
        ports: Vec<u16>,
        redis: bool,
    ) {
        let mut ready = false;
        loop {
            let ok = match ports.first() {
                None => true,
                Some(p) if redis => ping(&ip, *p).await,
                Some(p) => tokio::net::TcpStream::connect((ip.as_str(), *p))
                    .await
                    .is_ok(),
            };
            if ok != ready {
                ready = ok;
                self.set_container(&key, &cname, |cs| cs["ready"] = json!(ok));
            }
            tokio::time::sleep(Duration::from_millis(if ready { 1000 } else { 50 })).await;
        }
    }

    /// Edits one container status and recomputes the pod's phase and conditions.
    fn set_container(&self, key: &PodKey, cname: &str, f: impl FnOnce(&mut Value)) {
        let _ = self.store.mutate(
            by_plural("pods"),
            &key.ns,
            &key.name,
            MANAGER,
            "status",
            |p| {
                if p["metadata"]["uid"] != key.uid.as_str() {
                    return;
                }
                let Some(list) = p["status"]["containerStatuses"].as_array_mut() else {
                    return;
                };
                if let Some(cs) = list.iter_mut().find(|c| c["name"] == cname) {
                    f(cs);
                }
                let all_ready = list.iter().all(|c| c["ready"] == true);
                let any_running = list.iter().any(|c| c["state"].get("running").is_some());
                let now = timestamp();
                if any_running {
                    p["status"]["phase"] = json!("Running");
                }
                if let Some(conds) = p["status"]["conditions"].as_array_mut() {
                    for c in conds.iter_mut() {
                        if c["type"] == "Ready" || c["type"] == "ContainersReady" {
                            let want = if all_ready { "True" } else { "False" };
                            if c["status"] != want {
                                c["status"] = json!(want);
                                c["lastTransitionTime"] = json!(now);
                            }
                        }
                    }
                }
            },
        );
    }

    /// `bwrap` with the host's userland read-only, the pod's volumes bound at their mount paths,
    /// a private /tmp, and the container's env. Network is shared: the pod owns its loopback IP.
    pub fn sandbox_command(&self, sb: &Sandbox, argv: &[String]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.bwrap);
        cmd.arg("--unshare-pid").arg("--die-with-parent");
        for top in [
            "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "opt",
        ] {
            let p = Path::new("/").join(top);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_symlink() => {
                    if let Ok(t) = std::fs::read_link(&p) {
                        cmd.arg("--symlink").arg(t).arg(&p);
                    }
                }
                Ok(m) if m.is_dir() => {
                    cmd.arg("--ro-bind").arg(&p).arg(&p);
                }
                _ => {}
            }
        }
        cmd.args([
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run", "--dir",
            "/root",
        ]);
        for (src, dst, ro) in &sb.mounts {
            cmd.arg(if *ro { "--ro-bind" } else { "--bind" })
                .arg(src)
                .arg(dst);
        }
        if !sb.mounts.iter().any(|(_, d, _)| *d == sb.workdir) && sb.workdir != "/" {
            cmd.arg("--dir").arg(&sb.workdir);
        }
        cmd.arg("--chdir").arg(&sb.workdir);
        cmd.arg("--clearenv");
        for (k, v) in &sb.env {
            cmd.arg("--setenv").arg(k).arg(v);
        }
        cmd.arg("--").args(argv);
        cmd.env_clear();
        cmd.kill_on_drop(true);
        cmd.process_group(0);
        // SAFETY: prctl is async-signal-safe; the closure touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                // Die with the thread that spawned us (a runtime worker), so a crashed test or
                // a killed `localcluster` leaves no process behind.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd
    }

    /// The sandbox of a running pod's container (for exec).
    pub fn sandbox(&self, ns: &str, name: &str, container: Option<&str>) -> ApiResult<Sandbox> {
        let pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        let h = pods
            .values()
            .find(|h| h.ns == ns && h.name == name)
            .ok_or_else(|| ApiError::bad_request(format!("pod {name} is not running")))?;
        match container {
            Some(c) => h.sandboxes.get(c).cloned().ok_or_else(|| {
                ApiError::bad_request(format!("container {c} is not valid for pod {name}"))
            }),
            None => h
                .sandboxes
                .values()
                .next()
                .cloned()
                .ok_or_else(|| ApiError::bad_request(format!("pod {name} has no containers"))),
        }
    }

    pub fn pod_ip(&self, ns: &str, name: &str) -> ApiResult<String> {
        let pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        pods.values()
            .find(|h| h.ns == ns && h.name == name)
            .map(|h| h.ip.clone())
            .ok_or_else(|| ApiError::bad_request(format!("pod {name} is not running")))
    }

    pub fn logs(&self, ns: &str, name: &str, container: Option<&str>) -> ApiResult<String> {
        let pod = self.store.get(by_plural("pods"), ns, name)?;
        let sb = self.sandbox(ns, name, container)?;
        let _ = pod;
        Ok(std::fs::read_to_string(&sb.log).unwrap_or_default())
    }

    /// Kills a pod's processes (SIGKILL); the supervisor restarts them, as a container restart.
    pub fn kill_processes(&self, ns: &str, name: &str) -> ApiResult<usize> {
        let pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        let h = pods
            .values()
            .find(|h| h.ns == ns && h.name == name)
            .ok_or_else(|| ApiError::bad_request(format!("pod {name} is not running")))?;
        let groups = h.pgids.lock().unwrap_or_else(|e| e.into_inner());
        for pg in groups.values() {
            kill_group(*pg);
        }
        Ok(groups.len())
    }

    /// The process groups of every container process now running.
    pub fn process_groups(&self) -> Vec<i32> {
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect()
    }

    /// Stops every pod and waits (bounded) for the processes to be gone.
    pub async fn shutdown(&self) {
        let uids: Vec<String> = self
            .pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        for uid in uids {
            self.stop_pod(&uid);
        }
        for pg in self.process_groups() {
            kill_group(pg);
        }
        let tasks: Vec<_> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        // The supervisors reap their children after the kill.
        let _ =
            tokio::time::timeout(Duration::from_secs(5), futures::future::join_all(tasks)).await;
    }

    /// Synchronous last resort (Drop paths): SIGKILL every known group.
    pub fn kill_all_now(&self) {
        for pg in self.process_groups() {
            kill_group(pg);
        }
        for h in self.pods.lock().unwrap_or_else(|e| e.into_inner()).values() {
            for pg in h.pgids.lock().unwrap_or_else(|e| e.into_inner()).values() {
                kill_group(*pg);
            }
        }
    }
}

#[derive(Clone)]
struct PodKey {
    ns: String,
    name: String,
    uid: String,
}

fn kill_group(pgid: i32) {
    if pgid > 1 {
        // SAFETY: plain syscall; a stale group id only yields ESRCH.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

pub fn is_redis_image(image: &str) -> bool {
    let repo = image.split(['@']).next().unwrap_or(image);
    let repo = repo
        .rsplit_once(':')
        .map_or(repo, |(r, tag)| if tag.contains('/') { repo } else { r });
    let last = repo.rsplit('/').next().unwrap_or(repo);
    last == "redis" || last == "redis-stack-server" || last == "valkey"
}

/// The process a container runs: `command` + `args`, with the redis image's entrypoint
/// behaviour when `command` is empty.
fn container_argv(c: &Value, ip: &str) -> Result<Vec<String>, String> {
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let command = strs(&c["command"]);
    let args = strs(&c["args"]);
    let image = c["image"].as_str().unwrap_or_default();
    let mut argv = if !command.is_empty() {
        command.into_iter().chain(args).collect::<Vec<_>>()
    } else if is_redis_image(image) {
        // docker-entrypoint.sh: no args or flags/a .conf file first means redis-server.
        if args.is_empty() || args[0].starts_with('-') || args[0].ends_with(".conf") {
            std::iter::once("redis-server".to_string())
                .chain(args)
                .collect()
        } else {
            args
        }
    } else if !args.is_empty() {
        args
    } else {
        return Err(format!(
            "image {image:?} has no known entrypoint; set command"
        ));
    };
    if argv
        .iter()
        .any(|a| a == "redis-server" || a.ends_with("/redis-server"))
    {
        // Pods share the host network namespace, each on its own loopback address. Redis must
        // listen on that address only (two pods use the same ports) and must also *originate*
        // its cluster-bus connections from it: otherwise handshakes arrive from 127.0.0.1, peers
        // record the wrong address, and the cluster never forms. Redis >= 7 has
        // bind-source-addr; the flags go last so they override the config file.
        argv.extend([
            "--bind".to_string(),
            ip.to_string(),
            "--bind-source-addr".to_string(),
            ip.to_string(),
        ]);
    }
    Ok(argv)
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(bin))
            .find(|p| p.is_file())
    })
}

async fn ping(ip: &str, port: u16) -> bool {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect((ip, port)).await.ok()?;
        s.write_all(b"PING\r\n").await.ok()?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.ok()?;
        // -LOADING or -NOAUTH also prove the server is up, but only +PONG means it serves.
        Some(buf[..n].starts_with(b"+PONG"))
    };
    tokio::time::timeout(Duration::from_millis(500), fut)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}
