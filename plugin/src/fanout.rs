//! Bounded fan-out: the plan's reads and dry runs, deletes, saved-plan checks and the Redis step
//! all run one call per object or pod, and a spec may have a thousand of them. At most [`LIMIT`]
//! calls are in flight, so neither the API server nor the process is flooded; results come back
//! in input order, so output stays deterministic.

use std::future::Future;

use futures::stream::{self, StreamExt as _, TryStreamExt as _};

/// Calls in flight at once: enough to hide round trips, far below what floods an API server.
pub(crate) const LIMIT: usize = 16;

/// Every call's result in input order, or the first error (the calls not yet started never are).
pub(crate) async fn try_all<T, E, F>(calls: impl IntoIterator<Item = F>) -> Result<Vec<T>, E>
where
    F: Future<Output = Result<T, E>>,
{
    stream::iter(calls).buffered(LIMIT).try_collect().await
}

/// Every call's output in input order.
pub(crate) async fn all<T, F>(calls: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: Future<Output = T>,
{
    stream::iter(calls).buffered(LIMIT).collect().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn at_most_limit_in_flight_and_results_in_order() {
        let (running, peak) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let calls = (0..100u64).map(|i| {
            let (running, peak) = (&running, &peak);
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                // Later calls finish first: the order must still be the input's.
                tokio::time::sleep(Duration::from_millis(100 - i)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<u64, String>(i)
            }
        });
        assert_eq!(try_all(calls).await.unwrap(), (0..100).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), LIMIT);
    }

    #[tokio::test]
    async fn the_first_error_stops_the_rest() {
        let started = AtomicUsize::new(0);
        let calls = (0..1000).map(|i| {
            let started = &started;
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                if i == 3 {
                    Err(format!("call {i} failed"))
                } else {
                    Ok(i)
                }
            }
        });
        assert_eq!(try_all(calls).await, Err("call 3 failed".to_string()));
        assert!(started.load(Ordering::SeqCst) <= 3 + LIMIT);
        assert_eq!(
            all((0..5).map(|i| async move { i * 2 })).await,
            [0, 2, 4, 6, 8]
        );
    }
}
