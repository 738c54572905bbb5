//! Deadlines and polling: every wait of the pipeline has one deadline, taken once from the
//! command's `--timeout`, and polls through [`poll_until`] instead of a loop of its own.

use std::future::Future;
use std::time::{Duration, Instant};

/// The instant `timeout` from now; an error (never a panic) when the clock cannot count that far.
pub fn deadline_after(timeout: Duration) -> anyhow::Result<Instant> {
    Instant::now().checked_add(timeout).ok_or_else(|| {
        anyhow::anyhow!(
            "a timeout of {} is beyond what this system's clock can count to",
            humantime::format_duration(timeout)
        )
    })
}

/// What a poll found: done with a value, or not yet, with the state seen (by default a
/// description of it, for the timeout message).
pub(crate) enum Poll<T, S = String> {
    Ready(T),
    Pending(S),
}

/// A wait that reached its deadline: what was awaited and the last state seen. Callers that add
/// detail on timeout (which pods are stuck, and why) find it with `error.downcast_ref`.
#[derive(Debug, thiserror::Error)]
#[error("timed out waiting for {what}{}", if .state.is_empty() { String::new() } else { format!(": {}", .state) })]
pub(crate) struct TimedOut {
    pub what: String,
    pub state: String,
}

/// Calls `check` every `every` until it is ready or `deadline` passes; on timeout the error is
/// [`TimedOut`]. Errors from `check` end the wait at once.
pub(crate) async fn poll_until<T, F, Fut>(
    deadline: Instant,
    every: Duration,
    what: &str,
    check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Poll<T>>>,
{
    poll_last(deadline, every, check).await?.map_err(|state| {
        TimedOut {
            what: what.to_string(),
            state,
        }
        .into()
    })
}

/// [`poll_until`] for callers with an error of their own on timeout: `Ok(Err(state))` is the last
/// state seen when `deadline` passed (a cluster report, say, that the caller explains).
pub(crate) async fn poll_last<T, S, F, Fut>(
    deadline: Instant,
    every: Duration,
    mut check: F,
) -> anyhow::Result<Result<T, S>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Poll<T, S>>>,
{
    loop {
        match check().await? {
            Poll::Ready(value) => return Ok(Ok(value)),
            Poll::Pending(state) => {
                if Instant::now() >= deadline {
                    return Ok(Err(state));
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(every.min(left).max(Duration::from_millis(1))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_never_overflow() {
        assert!(deadline_after(Duration::from_secs(24 * 3600)).is_ok());
        assert!(deadline_after(Duration::MAX).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn polls_until_ready() {
        let mut calls = 0;
        let value = poll_until(
            Instant::now() + Duration::from_secs(60),
            Duration::from_secs(1),
            "three calls",
            || {
                calls += 1;
                let n = calls;
                async move {
                    Ok(if n == 3 {
                        Poll::Ready(n)
                    } else {
                        Poll::Pending(format!("{n} so far"))
                    })
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn a_timeout_names_the_wait_and_the_last_state() {
        let error = poll_until(
            Instant::now() + Duration::from_millis(20),
            Duration::from_millis(5),
            "the moon",
            || async { anyhow::Ok(Poll::<()>::Pending("still new".into())) },
        )
        .await
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "timed out waiting for the moon: still new"
        );
        assert!(error.is::<TimedOut>());
    }

    #[tokio::test]
    async fn an_error_ends_the_wait() {
        let error = poll_until(
            Instant::now() + Duration::from_secs(60),
            Duration::from_millis(5),
            "anything",
            || async { Err::<Poll<()>, _>(anyhow::anyhow!("403")) },
        )
        .await
        .unwrap_err();
        assert_eq!(error.to_string(), "403");
    }
}
