//! Retries as a policy of the client, so that every request the plugin sends (reads, dry runs,
//! applies, deletes, port-forward and exec upgrades) goes through the same rule: 429 and 5xx
//! answers and transport failures are sent again, with exponential backoff (the server's
//! `Retry-After` when it gives one, capped), a bounded number of times; anything else is
//! final. Every write the plugin makes is a server-side apply or a delete, so sending one twice
//! is harmless. kube's own default retry layer is turned off: it retries only 429/503/504, up
//! to 15 times, with delays of up to 1000 s, and would multiply with this one.

use std::time::Duration;

use http::{Request, Response, StatusCode};
use kube::client::{Body, ClientBuilder};
use kube::{Client, Config};
use tower::buffer::BufferLayer;
use tower::retry::{Policy, RetryLayer};
use tower::BoxError;

/// How many times a request is sent in all.
const ATTEMPTS: u32 = 4;
const FIRST_DELAY: Duration = Duration::from_millis(200);
/// The longest wait between two attempts, whatever the server's `Retry-After` says.
const MAX_DELAY: Duration = Duration::from_secs(5);

/// The client for `config`, with [`TransientRetry`] around the whole stack.
pub(super) fn client(mut config: Config) -> kube::Result<Client> {
    config.default_retry = false;
    Ok(ClientBuilder::try_from(config)?
        // The retry layer sends requests again, so the service below it must be cloneable.
        .with_layer(&BufferLayer::new(1024))
        .with_layer(&RetryLayer::new(TransientRetry::default()))
        .build())
}

/// The policy; one copy per request, counting that request's attempts.
#[derive(Debug, Clone)]
pub(super) struct TransientRetry {
    attempt: u32,
    delay: Duration,
}

impl Default for TransientRetry {
    fn default() -> Self {
        TransientRetry {
            attempt: 1,
            delay: FIRST_DELAY,
        }
    }
}

impl TransientRetry {
    /// How long to wait before the next attempt, or `None` when this answer is final.
    fn next_delay<Res>(&mut self, result: &Result<Response<Res>, BoxError>) -> Option<Duration> {
        if self.attempt >= ATTEMPTS {
            return None;
        }
        let wait = match result {
            Ok(response) if is_transient(response.status()) => {
                retry_after(response).unwrap_or(self.delay)
            }
            Ok(_) => return None,
            // Errors below this layer are transport failures: refused or reset connections,
            // TLS handshakes, timeouts.
            Err(_) => self.delay,
        };
        self.attempt += 1;
        self.delay = (self.delay * 2).min(MAX_DELAY);
        Some(wait.min(MAX_DELAY))
    }
}

fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// `Retry-After: <seconds>`, as the API server sends it with 429s (priority and fairness).
fn retry_after<Res>(response: &Response<Res>) -> Option<Duration> {
    let seconds = response.headers().get(http::header::RETRY_AFTER)?;
    Some(Duration::from_secs(
        seconds.to_str().ok()?.trim().parse().ok()?,
    ))
}

impl<Res> Policy<Request<Body>, Response<Res>, BoxError> for TransientRetry {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        request: &mut Request<Body>,
        result: &mut Result<Response<Res>, BoxError>,
    ) -> Option<Self::Future> {
        let delay = self.next_delay(result)?;
        let answer = match result {
            Ok(response) => response.status().to_string(),
            Err(error) => error.to_string(),
        };
        tracing::debug!(
            method = %request.method(),
            uri = %request.uri(),
            attempt = self.attempt,
            %answer,
            "retrying after {delay:?}"
        );
        Some(tokio::time::sleep(delay))
    }

    fn clone_request(&mut self, request: &Request<Body>) -> Option<Request<Body>> {
        // Only a body held in memory can be sent again; a streaming one makes the answer final.
        let body = request.body().try_clone()?;
        let mut clone = Request::builder()
            .method(request.method().clone())
            .uri(request.uri().clone())
            .version(request.version())
            .body(body)
            .ok()?;
        *clone.headers_mut() = request.headers().clone();
        *clone.extensions_mut() = request.extensions().clone();
        Some(clone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16) -> Result<Response<()>, BoxError> {
        Ok(Response::builder().status(status).body(()).unwrap())
    }

    #[test]
    fn server_errors_and_throttling_are_retried_a_bounded_number_of_times() {
        for status in [429, 500, 502, 503, 504] {
            let mut policy = TransientRetry::default();
            let delays: Vec<Duration> = std::iter::from_fn(|| policy.next_delay(&answer(status)))
                .take(10)
                .collect();
            assert_eq!(
                delays,
                [200, 400, 800].map(Duration::from_millis),
                "{status}"
            );
        }
    }

    #[test]
    fn client_errors_and_successes_are_final() {
        for status in [200, 201, 400, 401, 403, 404, 409, 422] {
            assert_eq!(TransientRetry::default().next_delay(&answer(status)), None);
        }
    }

    #[test]
    fn transport_failures_are_retried() {
        let mut policy = TransientRetry::default();
        let refused: Result<Response<()>, BoxError> = Err("connection refused".into());
        assert_eq!(policy.next_delay(&refused), Some(FIRST_DELAY));
    }

    #[test]
    fn the_servers_retry_after_is_used_but_capped() {
        let throttled = |after: &str| -> Result<Response<()>, BoxError> {
            Ok(Response::builder()
                .status(429)
                .header("Retry-After", after)
                .body(())
                .unwrap())
        };
        let mut policy = TransientRetry::default();
        assert_eq!(
            policy.next_delay(&throttled("1")),
            Some(Duration::from_secs(1))
        );
        assert_eq!(policy.next_delay(&throttled("3600")), Some(MAX_DELAY));
        assert_eq!(
            policy.next_delay(&throttled("soon")),
            Some(Duration::from_millis(800)),
            "an unreadable Retry-After falls back to the backoff"
        );
    }

    #[test]
    fn requests_with_bodies_in_memory_are_cloned_whole() {
        let request = Request::builder()
            .method("PATCH")
            .uri("/apis/apps/v1/namespaces/default/statefulsets/r?fieldManager=kubectl-redis")
            .header("content-type", "application/apply-patch+yaml")
            .body(Body::from(b"{}".to_vec()))
            .unwrap();
        let clone = <TransientRetry as Policy<_, Response<()>, BoxError>>::clone_request(
            &mut TransientRetry::default(),
            &request,
        )
        .expect("an in-memory body can be sent again");
        assert_eq!(clone.method(), "PATCH");
        assert_eq!(clone.uri(), request.uri());
        assert_eq!(clone.headers(), request.headers());
    }
}
