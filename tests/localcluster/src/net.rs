//! Pod networking like a CNI bridge plugin: one Linux bridge per cluster, and for each pod a
//! network namespace held by a "pause" process, joined to the bridge by a veth pair, with an
//! address from the cluster's pod CIDR. The host owns the bridge's gateway address, so it reaches
//! every pod directly; the service CIDR is a blackhole route, since there is no kube-proxy.
//!
//! Cleanup does not depend on this process ending well: a pod's namespace (and with it its veth
//! pair) lives only as long as its pause process, which dies with the thread that spawned it
//! (`PR_SET_PDEATHSIG`). What could outlive a crash — the bridge and the blackhole route — belongs
//! to a numbered slot guarded by an advisory lock; the next cluster that takes a slot whose lock
//! nobody holds removes the leftovers first.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};

/// How many clusters can run on one machine at once (parallel tests).
const SLOTS: u8 = 100;
const LOCK_DIR: &str = "/run/localcluster";

/// The network of one cluster.
pub struct Network {
    slot: u8,
    bridge: String,
    /// The first two octets of every address of this cluster: 10.(100 + slot).
    prefix: [u8; 2],
    next_host: AtomicU32,
    pods: Mutex<Vec<u32>>,
    _lock: File,
}

/// A pod's network namespace. Dropping it kills the pause process, which removes the namespace
/// and the veth pair with it.
pub struct PodNetwork {
    pub ip: Ipv4Addr,
    /// The host side of the veth pair (set down to cut the pod off the network).
    pub host_link: String,
    pause: Child,
    netns: File,
}

impl Network {
    /// Takes a free slot, removes what a crashed holder of that slot left behind, and creates
    /// the bridge and the blackhole route. Needs root (CAP_NET_ADMIN).
    pub fn create() -> Result<Network> {
        std::fs::create_dir_all(LOCK_DIR).with_context(|| format!("creating {LOCK_DIR}"))?;
        // Start at a different slot in each process so parallel test binaries rarely probe the
        // same locks; every other free slot is swept of what a killed holder left behind.
        let start = (std::process::id() % u32::from(SLOTS)) as u8;
        let mut taken: Option<Network> = None;
        for i in 0..SLOTS {
            let slot = (start + i) % SLOTS;
            let Some(lock) = try_lock(slot)? else {
                continue;
            };
            if taken.is_some() {
                // A free slot: sweep it if a killed holder left its bridge, then let it go.
                if std::path::Path::new("/sys/class/net")
                    .join(format!("lcbr{slot}"))
                    .exists()
                {
                    remove_leftovers(slot);
                }
                continue;
            }
            let net = Network {
                slot,
                bridge: format!("lcbr{slot}"),
                prefix: [10, 100 + slot],
                next_host: AtomicU32::new(2),
                pods: Mutex::new(Vec::new()),
                _lock: lock,
            };
            remove_leftovers(slot);
            net.setup()
                .with_context(|| format!("creating bridge {}", net.bridge))?;
            taken = Some(net);
        }
        taken.ok_or_else(|| {
            anyhow!("all {SLOTS} localcluster network slots are in use (see {LOCK_DIR})")
        })
    }

    /// The address the host (and so the API server and the node agent) has on the bridge.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.prefix[0], self.prefix[1], 0, 1)
    }

    /// Pods get addresses from the lower half of the cluster's /16.
    pub fn pod_cidr(&self) -> String {
        format!("{}.{}.0.0/17", self.prefix[0], self.prefix[1])
    }

    /// ClusterIPs come from the upper half; nothing routes them anywhere.
    pub fn service_cidr(&self) -> String {
        format!("{}.{}.128.0/17", self.prefix[0], self.prefix[1])
    }

    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    fn setup(&self) -> Result<()> {
        let br = &self.bridge;
        ip_batch(
            None,
            &format!(
                "link add {br} type bridge\n\
                 addr add {gw}/17 dev {br}\n\
                 link set {br} up\n\
                 route add blackhole {svc}\n",
                gw = self.gateway(),
                svc = self.service_cidr()
            ),
        )
    }

    /// Creates a pod's namespace with a fresh address (never reused within this network, so a
    /// recreated pod gets a new IP, as on Kubernetes).
    pub fn add_pod(&self) -> Result<PodNetwork> {
        let host = self.next_host.fetch_add(1, Ordering::Relaxed);
        // 10.X.0.2 .. 10.X.127.254
        if host >= 128 * 256 - 1 {
            bail!("the pod CIDR {} is exhausted", self.pod_cidr());
        }
        let ip = Ipv4Addr::new(
            self.prefix[0],
            self.prefix[1],
            (host / 256) as u8,
            (host % 256) as u8,
        );
        if ip.octets()[3] == 0 || ip.octets()[3] == 255 {
            return self.add_pod();
        }
        let pause = spawn_pause()?;
        let pid = pause.id();
        let netns_path = format!("/proc/{pid}/ns/net");
        let netns = File::open(&netns_path).with_context(|| format!("opening {netns_path}"))?;
        let host_link = format!("lc{}h{host}", self.slot);
        let peer = format!("lc{}p{host}", self.slot);
        let pod = PodNetwork {
            ip,
            host_link: host_link.clone(),
            pause,
            netns,
        };
        ip_batch(
            None,
            &format!(
                "link add {host_link} type veth peer name {peer} netns {pid}\n\
                 link set {host_link} master {br} up\n",
                br = self.bridge
            ),
        )
        .context("creating the pod's veth pair")?;
        ip_batch(
            Some(&pod.netns),
            &format!(
                "link set lo up\n\
                 link set {peer} name eth0\n\
                 addr add {ip}/17 dev eth0\n\
                 link set eth0 up\n\
                 route add default via {gw}\n",
                gw = self.gateway()
            ),
        )
        .context("configuring the pod's network namespace")?;
        self.pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(pid);
        Ok(pod)
    }

    /// Cuts a pod off the network (`cut`) or reconnects it, at its veth on the bridge.
    pub fn partition(&self, pod: &PodNetwork, cut: bool) -> Result<()> {
        let state = if cut { "down" } else { "up" };
        ip_batch(None, &format!("link set {} {state}\n", pod.host_link))
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Pods are normally dropped first; a pause process still alive would keep its veth, and
        // deleting the bridge detaches it anyway.
        for pid in self
            .pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            // SAFETY: kill(2) on a pid of our own child; at worst ESRCH.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
        remove_leftovers(self.slot);
    }
}

impl PodNetwork {
    /// Makes a command run inside this pod's network namespace.
    pub fn enter(&self, cmd: &mut Command) {
        let fd = self.netns.as_raw_fd();
        // SAFETY: setns(2) is async-signal-safe; the fd stays open until spawn returns because
        // `self` outlives the borrow of `cmd` at the call sites (spawn happens right after).
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// The namespace as a file descriptor, for `setns(2)` in a child before it execs; valid as
    /// long as `self` lives.
    pub fn netns_fd(&self) -> std::os::fd::RawFd {
        self.netns.as_raw_fd()
    }

    /// The namespace's path, for other processes to join.
    pub fn netns_path(&self) -> String {
        format!("/proc/{}/ns/net", self.pause.id())
    }

    /// The pid of the process that holds the namespace.
    pub fn pause_pid(&self) -> u32 {
        self.pause.id()
    }

    /// `nsenter` arguments that enter this namespace, for processes started by others (the
    /// kubelet streaming shim runs `exec` commands this way).
    pub fn nsenter_args(&self) -> Vec<String> {
        vec![
            "nsenter".into(),
            format!("--net={}", self.netns_path()),
            "--".into(),
        ]
    }
}

impl Drop for PodNetwork {
    fn drop(&mut self) {
        // The kernel removes the pair with the namespace, but asynchronously; deleting it here
        // makes the removal happen before drop returns.
        let _ = ip_batch(None, &format!("link del {}\n", self.host_link));
        let _ = self.pause.kill();
        let _ = self.pause.wait();
    }
}

/// The pause process: `sleep infinity` in a new network namespace, dying with its parent thread.
fn spawn_pause() -> Result<Child> {
    let mut cmd = Command::new("sleep");
    cmd.arg("infinity")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: unshare and prctl are async-signal-safe and touch no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::unshare(libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
        .map_err(|e| anyhow!("starting a pod's pause process (sleep) in a new network namespace: {e} (this needs root)"))
}

/// Removes a slot's bridge and blackhole route. Both may be absent; errors only mean there was
/// nothing to remove.
fn remove_leftovers(slot: u8) {
    let _ = ip_batch(None, &format!("link del lcbr{slot}\n"));
    let _ = ip_batch(
        None,
        &format!("route del blackhole 10.{}.128.0/17\n", 100 + slot),
    );
}

/// The lock of `slot` if nobody holds it.
fn try_lock(slot: u8) -> Result<Option<File>> {
    let path = PathBuf::from(LOCK_DIR).join(format!("net-{slot}.lock"));
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let got = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    Ok(got.then_some(lock))
}

/// Runs `ip -batch -` (in the namespace of `netns`, if given) and reports its error output.
fn ip_batch(netns: Option<&File>, script: &str) -> Result<()> {
    use std::io::Write;
    let mut cmd = Command::new("ip");
    cmd.args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(ns) = netns {
        let fd = ns.as_raw_fd();
        // SAFETY: setns(2) is async-signal-safe; `ns` outlives the spawn below.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| anyhow!("running `ip` (Debian package iproute2): {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "`ip -batch` failed on:\n{script}{}",
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    Ok(())
}
