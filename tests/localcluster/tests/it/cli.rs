//! The `localcluster up` binary: kubeconfig once ready, foreground until SIGTERM, then every
//! process it started is gone and the kubeconfig is removed.

use crate::common;

use std::time::{Duration, Instant};

use common::{kubectl, text};

/// Pids whose command line mentions `needle` (bwrap's command line names the state directory).
fn pids_mentioning(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
        if !zombie && String::from_utf8_lossy(&cmd).contains(needle) {
            out.push(pid);
        }
    }
    out
}

#[tokio::test]
async fn up_serves_until_sigterm_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let state = dir.path().join("state");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_localcluster"))
        .args(["up", "--nodes", "2", "--kubeconfig"])
        .arg(&kc)
        .arg("--state-dir")
        .arg(&state)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !kc.exists() {
        assert!(start.elapsed() < Duration::from_secs(30), "no kubeconfig");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Written only once ready: the first request succeeds.
    let out = kubectl(&kc, &["get", "namespaces", "-o", "name"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("namespace/default"));

    let pod = dir.path().join("pod.yaml");
    std::fs::write(
        &pod,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: sleeper\nspec:\n  containers:\n  - name: main\n    image: busybox\n    command: [sleep, '3600']\n",
    )
    .unwrap();
    let out = kubectl(
        &kc,
        &["apply", "--server-side", "-f", pod.to_str().unwrap()],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = kubectl(
        &kc,
        &[
            "wait",
            "--for=condition=Ready",
            "pod/sleeper",
            "--timeout=60s",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let needle = state.canonicalize().unwrap().to_string_lossy().into_owned();
    let running = pids_mentioning(&needle);
    assert!(!running.is_empty(), "the pod's sandbox runs");

    // SIGTERM: the binary exits cleanly, leaving nothing behind.
    let pid = child.id().unwrap() as i32;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!kc.exists(), "kubeconfig removed on shutdown");
    let left: Vec<i32> = running
        .into_iter()
        .filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            !stat
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .collect();
    assert!(left.is_empty(), "processes left: {left:?}");
    assert!(pids_mentioning(&needle).is_empty());
    // A given --state-dir is kept (data survives); only temporary directories are removed.
    assert!(state.exists());
}
