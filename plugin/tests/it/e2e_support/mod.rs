//! Shared by the end-to-end tests: a local cluster with its kubeconfig, and the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use localcluster::{LocalCluster, Options};

pub(crate) mod writer;

pub(crate) struct Env {
    pub cluster: LocalCluster,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

pub(crate) struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Env {
    pub(crate) fn start() -> Env {
        Env::start_with(Options::default())
    }

    pub(crate) fn start_with(mut options: Options) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        options.kubeconfig = Some(kubeconfig.clone());
        let cluster = LocalCluster::start(options).expect("the local cluster starts");
        Env {
            cluster,
            dir,
            kubeconfig,
        }
    }

    pub(crate) fn repo(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf()
    }

    /// Runs `kubectl-redis --kubeconfig ... ARGS` from the repository root, without colour.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.run_with_kubeconfig(&self.kubeconfig, args)
    }

    pub(crate) fn run_with_kubeconfig(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        let output = Command::new(env!("CARGO_BIN_EXE_kubectl-redis"))
            .current_dir(self.repo())
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--color", "never"])
            .args(args)
            .env_remove("KUBECONFIG")
            .output()
            .unwrap();
        let out = Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        out
    }

    /// Starts `kubectl-redis apply -f SPEC --yes --timeout 300s -o json` in the background, its
    /// JSON lines on a pipe, for a test that kills it.
    pub(crate) fn spawn_apply(&self, spec: &str) -> std::process::Child {
        Command::new(env!("CARGO_BIN_EXE_kubectl-redis"))
            .current_dir(self.repo())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args([
                "apply",
                "-f",
                spec,
                "--yes",
                "--timeout",
                "300s",
                "-o",
                "json",
            ])
            .env_remove("KUBECONFIG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Runs and expects exit 0; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.code, 0,
            "kubectl-redis {args:?} failed:\n{}\n{}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    /// `apply --yes` of the Kubernetes objects only (no Redis step), which must succeed.
    pub(crate) fn apply_objects(&self, spec: &str) -> String {
        self.ok(&[
            "apply",
            "-f",
            spec,
            "--yes",
            "--skip-cluster-init",
            "--timeout",
            "60s",
        ])
    }

    /// The real kubectl against this cluster; expects success, returns trimmed stdout.
    pub(crate) fn kubectl(&self, args: &[&str]) -> String {
        let output = Command::new(kubectl_bin())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// kubectl with `stdin` piped in: (exit code, stdout, stderr).
    pub(crate) fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> (i32, String, String) {
        use std::io::Write as _;
        let mut child = Command::new(kubectl_bin())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `kubectl apply --server-side` of a manifest from stdin, as another field manager would.
    pub(crate) fn kubectl_apply(&self, manifest: &str) {
        let args = [
            "apply",
            "--server-side",
            "--field-manager",
            "someone-else",
            "-f",
            "-",
        ];
        let (code, _, stderr) = self.kubectl_stdin(&args, manifest);
        assert_eq!(code, 0, "kubectl apply: {stderr}");
    }

    /// Every object of the kinds kubectl-redis manages that carries its managed-by label.
    pub(crate) fn owned_objects(&self) -> String {
        self.kubectl(&[
            "get",
            "pv,pvc,cm,secret,svc,sts",
            "-A",
            "-l",
            "app.kubernetes.io/managed-by=kubectl-redis",
            "-o",
            "name",
        ])
    }

    pub(crate) fn kubectl_status(&self, args: &[&str]) -> i32 {
        Command::new(kubectl_bin())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .unwrap()
            .status
            .code()
            .unwrap_or(-1)
    }

    pub(crate) fn running_pods(&self, selector: &str) -> usize {
        self.kubectl(&[
            "get",
            "pods",
            "-l",
            selector,
            "-o",
            "jsonpath={.items[*].status.phase}",
        ])
        .split_whitespace()
        .filter(|phase| *phase == "Running")
        .count()
    }
}

/// Runs a future to its end on a runtime of its own (the tests themselves are synchronous).
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// kubectl of the test cluster's release, built from the same Go module as its control plane.
pub(crate) fn kubectl_bin() -> PathBuf {
    localcluster::controlplane::bin_dir()
        .expect("the control plane is built")
        .join("kubectl")
}

/// Writes a copy of the seed's cluster spec with text replaced; returns its path.
pub(crate) fn spec_with(env: &Env, name: &str, replacements: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(env.repo().join("specs/redis-cluster.yaml")).unwrap();
    for (from, to) in replacements {
        assert!(text.contains(from), "the seed spec has `{from}`");
        text = text.replace(from, to);
    }
    let path = env.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// Keys written straight to the masters that own their slots, read back the same way, through
/// the plugin's own direct transport (the test runs where the pod IPs are reachable).
pub(crate) mod keys {
    use std::collections::BTreeMap;

    use kubectl_redis::cluster::cmd;
    use kubectl_redis::cluster::parse_nodes;
    use kubectl_redis::cluster::Reply;
    use kubectl_redis::cluster::{direct, key_slot, PodAddr, RedisTransport};

    pub(crate) fn key(i: u32) -> String {
        format!("key:{i}")
    }

    pub(crate) fn value(i: u32) -> String {
        format!("value-{i}")
    }

    fn addr(ip: &str) -> PodAddr {
        PodAddr {
            name: ip.to_string(),
            ip: ip.to_string(),
            port: 6379,
        }
    }

    /// slot → IP of the master serving it, as the first pod sees it.
    async fn owners(transport: &dyn RedisTransport, ips: &[String]) -> Vec<String> {
        let reply = transport
            .pipeline(&addr(&ips[0]), &[cmd(["CLUSTER", "NODES"])])
            .await
            .unwrap();
        let nodes = parse_nodes(&reply[0].text().unwrap()).unwrap();
        let mut map = vec![String::new(); 16384];
        for node in nodes.iter().filter(|n| n.is_master()) {
            for &(first, last) in &node.slots {
                for slot in first..=last {
                    map[slot as usize] = node.ip.clone();
                }
            }
        }
        assert!(
            map.iter().all(|ip| !ip.is_empty()),
            "every slot has a master"
        );
        map
    }

    async fn by_master(
        ips: &[String],
        count: u32,
    ) -> (Box<dyn RedisTransport>, BTreeMap<String, Vec<u32>>) {
        let transport: Box<dyn RedisTransport> =
            Box::new(direct(std::time::Duration::from_secs(10)));
        let owners = owners(transport.as_ref(), ips).await;
        let mut groups: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for i in 0..count {
            groups
                .entry(owners[key_slot(key(i).as_bytes()) as usize].clone())
                .or_default()
                .push(i);
        }
        (transport, groups)
    }

    /// SET key:0..count, pipelined per master.
    pub(crate) async fn write(ips: &[String], count: u32) {
        let (transport, groups) = by_master(ips, count).await;
        for (ip, keys) in groups {
            for chunk in keys.chunks(1000) {
                let cmds: Vec<_> = chunk
                    .iter()
                    .map(|i| cmd(["SET".to_string(), key(*i), value(*i)]))
                    .collect();
                let replies = transport.pipeline(&addr(&ip), &cmds).await.unwrap();
                assert!(
                    replies.iter().all(|r| *r == Reply::Status("OK".into())),
                    "writes to {ip} succeed"
                );
            }
            wait_until_in_aof(transport.as_ref(), &ip).await;
        }
    }

    /// With `appendfsync everysec` Redis acknowledges a write before it reaches the AOF file (for
    /// up to 2 s while an fsync is in flight), so a process killed in that window loses it on every
    /// node at once: Redis's documented durability, not the plugin's doing. The tests wait until
    /// the writes are in the file before they kill pods, as an application that needs the
    /// guarantee must (WAITAOF, from Redis 7.2).
    async fn wait_until_in_aof(transport: &dyn RedisTransport, ip: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let reply = transport
                .pipeline(&addr(ip), &[cmd(["INFO", "persistence"])])
                .await
                .unwrap();
            let info = reply[0].text().unwrap();
            if info.contains("aof_buffer_length:0") && info.contains("aof_pending_bio_fsync:0") {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{ip} never flushed its AOF:\n{info}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The keys among key:0..count that are missing or wrong.
    pub(crate) async fn missing(ips: &[String], count: u32) -> Vec<u32> {
        let (transport, groups) = by_master(ips, count).await;
        let mut missing = Vec::new();
        for (ip, keys) in groups {
            for chunk in keys.chunks(1000) {
                let cmds: Vec<_> = chunk
                    .iter()
                    .map(|i| cmd(["GET".to_string(), key(*i)]))
                    .collect();
                let replies = transport.pipeline(&addr(&ip), &cmds).await.unwrap();
                for (i, reply) in chunk.iter().zip(replies) {
                    if reply != Reply::Bulk(value(*i).into_bytes()) {
                        missing.push(*i);
                    }
                }
            }
        }
        missing
    }
}

impl Env {
    /// The pods' IPs in ordinal order, once all `count` are Running with an IP.
    pub(crate) fn pod_ips(&self, selector: &str, count: usize) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let ips: Vec<String> = self
                .kubectl(&[
                    "get",
                    "pods",
                    "-l",
                    selector,
                    "--sort-by=.metadata.name",
                    "-o",
                    "jsonpath={range .items[?(@.status.phase==\"Running\")]}{.status.podIP} {end}",
                ])
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if ips.len() == count {
                return ips;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{count} pods Running: got {ips:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// `status -o json` for the one cluster, checked against its schema, with its exit code.
    pub(crate) fn status_json(&self, extra: &[&str]) -> (i32, serde_json::Value) {
        let mut args = vec!["status", "-o", "json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        let json: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("status -o json: {e}: {}{}", out.stdout, out.stderr));
        assert_schema(include_str!("../../../schemas/status.schema.json"), &json);
        (out.code, json[0]["report"].clone())
    }

    /// `apply` or `destroy` with `-o json`: every line of stdout parsed and checked against
    /// the schema of JSON lines; the exit code and the lines.
    pub(crate) fn json_lines(&self, args: &[&str]) -> (i32, Vec<serde_json::Value>) {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.run(&all);
        let lines: Vec<serde_json::Value> = out
            .stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| {
                    panic!(
                        "{args:?}: a line that is not JSON ({e}): {line}\n{}",
                        out.stderr
                    )
                })
            })
            .collect();
        for line in &lines {
            assert_schema(include_str!("../../../schemas/events.schema.json"), line);
        }
        (out.code, lines)
    }
}

/// Panics with every violation when `value` does not match the JSON schema `schema`.
fn assert_schema(schema: &str, value: &serde_json::Value) {
    let schema: serde_json::Value = serde_json::from_str(schema).expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{value}: {errors:#?}");
}
