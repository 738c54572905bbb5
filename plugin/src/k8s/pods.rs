//! What a pod says about itself that the waits act on: whether it is Ready, and whether its
//! container keeps failing to start, with the last lines it wrote.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};

/// Restarts after which a container in `CrashLoopBackOff` is taken to be failing for good: one
/// exit can be a crash that a restart cures, three in a row are its configuration or image.
const CRASH_RESTARTS: i32 = 3;
/// How many of its last log lines a crashing pod's error shows.
const LOG_LINES: i64 = 8;

/// The label the StatefulSet controller puts on each pod: the revision it was created from.
const REVISION_LABEL: &str = "controller-revision-hash";

/// The StatefulSet revision the pod was created from.
pub(crate) fn revision(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()?
        .get(REVISION_LABEL)
        .map(String::as_str)
}

/// Whether the pod's `Ready` condition is `True`.
pub(crate) fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// `CrashLoopBackOff after 3 restarts (exit code 1)` when one of the pod's containers keeps
/// exiting with an error as soon as it starts; waiting longer does not change that.
pub(crate) fn crash_loop(pod: &Pod) -> Option<String> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    statuses.iter().find_map(|status| {
        let waiting = status.state.as_ref()?.waiting.as_ref()?;
        if waiting.reason.as_deref() != Some("CrashLoopBackOff")
            || status.restart_count < CRASH_RESTARTS
        {
            return None;
        }
        let exit = status
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(|t| t.exit_code);
        if exit == Some(0) {
            return None;
        }
        let exit = exit
            .map(|code| format!(", exit code {code}"))
            .unwrap_or_default();
        Some(format!(
            "container `{}` is in CrashLoopBackOff after {} restarts{exit}",
            status.name, status.restart_count
        ))
    })
}

/// The last lines the pod's container wrote, indented, or a note that they could not be read.
pub(crate) async fn log_tail(pods: &Api<Pod>, name: &str) -> String {
    let params = LogParams {
        tail_lines: Some(LOG_LINES),
        ..LogParams::default()
    };
    match pods.logs(name, &params).await {
        Ok(text) if !text.trim().is_empty() => text
            .lines()
            .map(|line| format!("\n    | {line}"))
            .collect::<String>(),
        Ok(_) => " (it wrote nothing)".into(),
        Err(e) => format!(" (its log could not be read: {e})"),
    }
}

/// The error that ends a wait on a crash-looping pod: which pod, why, and its last words.
pub(crate) async fn crash_error(pods: &Api<Pod>, name: &str, crash: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "pod {name} cannot start: {crash}; its last log lines:{}\nWaiting will not fix this: \
         correct the spec (a redis.conf directive the image refuses, a wrong command) and apply \
         again; apply then replaces the pod",
        log_tail(pods, name).await
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(restarts: i32, reason: &str, exit: i32) -> Pod {
        serde_json::from_value(json!({"status": {
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "redis", "image": "redis", "imageID": "",
                "ready": false, "restartCount": restarts,
                "state": {"waiting": {"reason": reason}},
                "lastState": {"terminated": {"exitCode": exit}}}]}}))
        .unwrap()
    }

    #[test]
    fn only_repeated_failed_starts_are_a_crash_loop() {
        assert_eq!(
            crash_loop(&pod(3, "CrashLoopBackOff", 1)).as_deref(),
            Some("container `redis` is in CrashLoopBackOff after 3 restarts, exit code 1")
        );
        assert_eq!(
            crash_loop(&pod(1, "CrashLoopBackOff", 1)),
            None,
            "one crash"
        );
        assert_eq!(
            crash_loop(&pod(5, "CrashLoopBackOff", 0)),
            None,
            "clean exits"
        );
        assert_eq!(crash_loop(&pod(5, "ContainerCreating", 1)), None);
        assert!(!is_ready(&pod(0, "ContainerCreating", 0)));
    }
}
