//! The real Kubernetes control plane, built from source by `tests/k8s/build.sh`: etcd,
//! kube-apiserver, kube-controller-manager and kube-scheduler, each its own process with its
//! own log under `<state-dir>/logs`, on free loopback ports.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::pki::{write_private, Pki};

/// The release the binaries are built from (tests/k8s/go.mod pins it).
pub const KUBERNETES_VERSION: &str = "v1.37.2";

/// The directory holding the control plane's binaries, building them first if the Go inputs
/// changed since the last build (a no-op otherwise). `LOCALCLUSTER_K8S_BIN` overrides it.
pub fn bin_dir() -> Result<PathBuf> {
    static DIR: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn build() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("LOCALCLUSTER_K8S_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("tests/k8s/build.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "building the Kubernetes control plane failed ({}); run `bash tests/k8s/build.sh` to see why",
            out.status
        );
    }
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok(PathBuf::from(dir))
}

/// One running component.
pub struct Component {
    pub name: &'static str,
    pub child: Child,
    pub log: PathBuf,
}

impl Component {
    /// Starts `bin` with `args`, output to `<logs>/<name>.log`. The process dies with the thread
    /// that spawns it (so a crashed test leaves nothing behind) and has its own process group.
    pub fn spawn(
        name: &'static str,
        bin: &Path,
        args: &[String],
        logs: &Path,
    ) -> Result<Component> {
        use std::os::unix::process::CommandExt;
        std::fs::create_dir_all(logs)?;
        let log = logs.join(format!("{name}.log"));
        let file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({})", bin.display()))?;
        Ok(Component { name, child, log })
    }

    /// Fails with the log's tail if the process has exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}):\n{}",
                self.name,
                log_tail(&self.log, 30)
            );
        }
        Ok(())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(&mut self) {
        // SAFETY: kill(2) on our child's process group.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last `n` lines of a log file.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    format!(
        "--- last {} lines of {} ---\n{}",
        lines.len() - start,
        path.display(),
        lines[start..].join("\n")
    )
}

/// A free TCP port on 127.0.0.1 (bound and released: another process could take it, which the
/// caller notices when its component fails to start).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A free TCP port on `ip`.
pub fn free_port_on(ip: Ipv4Addr) -> Result<u16> {
    let l = std::net::TcpListener::bind((ip, 0))?;
    Ok(l.local_addr()?.port())
}

/// Where everything of one control plane lives.
pub struct Layout {
    pub state: PathBuf,
    pub logs: PathBuf,
    pub bin: PathBuf,
}

pub struct ControlPlane {
    /// Stopped in reverse order: scheduler, controller manager, API server, etcd.
    pub components: Vec<Component>,
    /// `https://127.0.0.1:PORT` of kube-apiserver itself (clients use the proxy in front).
    pub apiserver_url: String,
}

pub struct Addresses {
    pub gateway: Ipv4Addr,
    pub service_cidr: String,
}

impl ControlPlane {
    /// Starts etcd and the API server and returns once `/readyz` answers; the controller
    /// manager and scheduler are started right after, without waiting for them.
    pub async fn start(
        layout: &Layout,
        pki: &Pki,
        addrs: &Addresses,
        deadline: Instant,
    ) -> Result<ControlPlane> {
        let mut cp = ControlPlane {
            components: Vec::new(),
            apiserver_url: String::new(),
        };
        let etcd_port = free_port()?;
        let peer_port = free_port()?;
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let s = |v: &str| v.to_string();
        cp.components.push(Component::spawn(
            "etcd",
            &layout.bin.join("etcd"),
            &[
                s("--name=localcluster"),
                format!("--data-dir={}", layout.state.join("etcd").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=localcluster={peer_url}"),
                // A test cluster: durability across a power cut is not wanted, speed is.
                s("--unsafe-no-fsync"),
                s("--log-level=warn"),
            ],
            &layout.logs,
        )?);
        wait_http_ok(
            &mut cp.components[0],
            ("127.0.0.1", etcd_port),
            "/health",
            deadline,
        )
        .await?;

        let api_port = free_port()?;
        cp.apiserver_url = format!("https://127.0.0.1:{api_port}");
        let p = |path: &Path| path.display().to_string();
        cp.components.push(Component::spawn(
            "kube-apiserver",
            &layout.bin.join("kube-apiserver"),
            &[
                format!("--etcd-servers={etcd_url}"),
                s("--bind-address=127.0.0.1"),
                format!("--secure-port={api_port}"),
                format!("--advertise-address={}", addrs.gateway),
                // The endpoint reconcilers refuse an address no pod could reach anyway.
                s("--endpoint-reconciler-type=none"),
                format!("--tls-cert-file={}", p(&pki.apiserver.cert)),
                format!("--tls-private-key-file={}", p(&pki.apiserver.key)),
                format!("--client-ca-file={}", p(&pki.ca)),
                format!("--cert-dir={}", p(&layout.state.join("apiserver"))),
                s("--service-account-issuer=https://kubernetes.default.svc.cluster.local"),
                format!("--service-account-key-file={}", p(&pki.service_account_pub)),
                format!(
                    "--service-account-signing-key-file={}",
                    p(&pki.service_account_key)
                ),
                s("--authorization-mode=Node,RBAC"),
                s("--enable-admission-plugins=NodeRestriction"),
                format!("--service-cluster-ip-range={}", addrs.service_cidr),
                s("--allow-privileged=true"),
                s("--kubelet-preferred-address-types=InternalIP"),
                format!(
                    "--kubelet-client-certificate={}",
                    p(&pki.apiserver_kubelet_client.cert)
                ),
                format!(
                    "--kubelet-client-key={}",
                    p(&pki.apiserver_kubelet_client.key)
                ),
                format!("--kubelet-certificate-authority={}", p(&pki.ca)),
                s("--profiling=false"),
                s("--v=1"),
            ],
            &layout.logs,
        )?);
        Ok(cp)
    }

    /// Starts kube-controller-manager and kube-scheduler with their own identities.
    pub fn start_controllers(&mut self, layout: &Layout, pki: &Pki) -> Result<()> {
        let p = |path: &Path| path.display().to_string();
        let s = |v: &str| v.to_string();
        let cm_kubeconfig = layout.state.join("controller-manager.kubeconfig");
        write_private(
            &cm_kubeconfig,
            &pki.kubeconfig(&self.apiserver_url, "system:kube-controller-manager", &[])?,
        )?;
        let sched_kubeconfig = layout.state.join("scheduler.kubeconfig");
        write_private(
            &sched_kubeconfig,
            &pki.kubeconfig(&self.apiserver_url, "system:kube-scheduler", &[])?,
        )?;
        self.components.push(Component::spawn(
            "kube-controller-manager",
            &layout.bin.join("kube-controller-manager"),
            &[
                format!("--kubeconfig={}", p(&cm_kubeconfig)),
                format!("--authentication-kubeconfig={}", p(&cm_kubeconfig)),
                format!("--authorization-kubeconfig={}", p(&cm_kubeconfig)),
                s("--leader-elect=false"),
                s("--bind-address=127.0.0.1"),
                s("--secure-port=0"),
                s("--controllers=*"),
                // Each controller acts as its own service account, as kubeadm sets it up.
                s("--use-service-account-credentials=true"),
                format!(
                    "--service-account-private-key-file={}",
                    p(&pki.service_account_key)
                ),
                format!("--root-ca-file={}", p(&pki.ca)),
                format!("--cluster-signing-cert-file={}", p(&pki.ca)),
                format!("--cluster-signing-key-file={}", p(&pki.dir.join("ca.key"))),
                // Faster reaction to the node agent's Ready condition (the default is 5 s).
                s("--node-monitor-period=1s"),
                s("--profiling=false"),
                s("--v=1"),
            ],
            &layout.logs,
        )?);
        self.components.push(Component::spawn(
            "kube-scheduler",
            &layout.bin.join("kube-scheduler"),
            &[
                format!("--kubeconfig={}", p(&sched_kubeconfig)),
                format!("--authentication-kubeconfig={}", p(&sched_kubeconfig)),
                format!("--authorization-kubeconfig={}", p(&sched_kubeconfig)),
                s("--leader-elect=false"),
                s("--bind-address=127.0.0.1"),
                s("--secure-port=0"),
                s("--profiling=false"),
                s("--v=1"),
            ],
            &layout.logs,
        )?);
        Ok(())
    }

    /// Fails with the log tail of the first component that exited.
    pub fn check_running(&mut self) -> Result<()> {
        for c in &mut self.components {
            c.check_running()?;
        }
        Ok(())
    }

    pub fn stop(&mut self) {
        while let Some(mut c) = self.components.pop() {
            c.stop();
        }
    }

    /// Resident memory of each component, in KiB (from /proc).
    pub fn memory_kib(&self) -> Vec<(&'static str, u64)> {
        self.components
            .iter()
            .map(|c| (c.name, rss_kib(c.pid())))
            .collect()
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

/// VmRSS of a process in KiB, 0 if it is gone.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Polls a plain-HTTP endpoint until it answers 200, failing early if the process exited.
async fn wait_http_ok(
    c: &mut Component,
    addr: (&str, u16),
    path: &str,
    deadline: Instant,
) -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        c.check_running()?;
        if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
            let req = format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                addr.0
            );
            let mut buf = Vec::new();
            if s.write_all(req.as_bytes()).await.is_ok()
                && s.read_to_end(&mut buf).await.is_ok()
                && buf.starts_with(b"HTTP/1.1 200")
            {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("{} did not become ready:\n{}", c.name, log_tail(&c.log, 30));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
