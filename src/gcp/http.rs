//! The request executor: per-attempt timeout, retries with backoff, concurrency and rate
//! limits, and observation of every attempt. It returns raw bodies; callers decode them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, AUTHORIZATION, RETRY_AFTER};
use secrecy::zeroize::Zeroizing;
use tokio::sync::Semaphore;
use tracing::debug;

use super::GcpConfig;
use super::auth::{Auth, token_error};
use super::error::{Code, Detail, GcpError};
use super::rate::RateLimiter;
use super::retry::{Backoff, XorShift, parse_retry_after};

/// Largest body read (a 64 KiB payload is ~88 KiB as base64 JSON); bounds memory per call.
const MAX_BODY: usize = 1 << 20;

/// Observes every HTTP attempt, e.g. for Prometheus metrics. Never receives names or payloads.
pub trait CallObserver: Send + Sync {
    /// `service` like "secretmanager", `method` like "secretmanager.versions.access", `outcome` the
    /// HTTP status code ("200", "429") or "timeout", "connect_error", "auth_error"; `elapsed` is the
    /// attempt's duration without time spent waiting for the concurrency or rate limits.
    fn observe(&self, service: &'static str, method: &'static str, outcome: &str, elapsed: Duration);
}

/// One logical call: what to fetch and how to name it in errors and metrics.
pub(super) struct Call<'a> {
    pub(super) service: &'static str,
    pub(super) method: &'static str,
    /// Resource name shown in errors and logs.
    pub(super) resource: &'a str,
    pub(super) url: &'a str,
}

/// A successful answer; the body is wiped on drop because it may carry a secret.
pub(super) struct Success {
    pub(super) http_code: u16,
    pub(super) body: Zeroizing<Vec<u8>>,
}

/// Sends requests to one Google API within the configured limits.
pub(super) struct Executor {
    client: reqwest::Client,
    auth: Auth,
    rate: RateLimiter,
    slots: Semaphore,
    timeout: Duration,
    max_attempts: u32,
    backoff: Backoff,
    observer: Option<Arc<dyn CallObserver>>,
}

/// How one attempt ended, as reported to the observer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Status(u16),
    Timeout,
    Connect,
    Auth,
}

impl Outcome {
    fn label(self) -> String {
        match self {
            Outcome::Status(code) => code.to_string(),
            Outcome::Timeout => "timeout".to_owned(),
            Outcome::Connect => "connect_error".to_owned(),
            Outcome::Auth => "auth_error".to_owned(),
        }
    }
}

/// A failed attempt and the server's requested pause, if any.
struct Failure {
    error: GcpError,
    retry_after: Option<Duration>,
}

impl From<GcpError> for Failure {
    fn from(error: GcpError) -> Self {
        Self { error, retry_after: None }
    }
}

enum BodyError {
    TooLarge,
    Transport,
}

impl Executor {
    /// Builds the HTTP client and limits from `config`.
    pub(super) fn new(
        config: &GcpConfig,
        auth: Auth,
        observer: Option<Arc<dyn CallObserver>>,
    ) -> Result<Self, GcpError> {
        let client = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            // Google APIs do not redirect; following one could leak the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| {
                debug!(error = %error, "cannot build the HTTP client");
                GcpError::new("http.client", "reqwest", Code::Internal, None)
            })?;
        Ok(Self {
            client,
            auth,
            rate: RateLimiter::new(config.requests_per_second),
            slots: Semaphore::new(config.max_concurrency.clamp(1, Semaphore::MAX_PERMITS)),
            timeout: config.request_timeout,
            max_attempts: config.max_attempts.max(1),
            backoff: Backoff { initial: config.initial_backoff, max: config.max_backoff },
            observer,
        })
    }

    /// GETs `call.url`, retrying transient failures up to the configured number of attempts.
    pub(super) async fn get(&self, call: &Call<'_>) -> Result<Success, GcpError> {
        let mut rng = XorShift::seeded();
        let mut attempt = 1;
        loop {
            let failure = match self.attempt(call).await {
                Ok(success) => return Ok(success),
                Err(failure) => failure,
            };
            if attempt >= self.max_attempts || !failure.error.is_transient() {
                return Err(failure.error);
            }
            let delay = self.backoff.delay(attempt - 1, failure.retry_after, &mut rng);
            debug!(
                method = call.method,
                resource = call.resource,
                code = failure.error.status.as_str(),
                http_code = failure.error.http_code,
                attempt,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "retrying GCP call"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// One attempt within the limits and the timeout, reported to the observer.
    async fn attempt(&self, call: &Call<'_>) -> Result<Success, Failure> {
        self.rate.acquire().await;
        // The semaphore is never closed; the error arm only exists to avoid a panic path.
        let Ok(_slot) = self.slots.acquire().await else {
            return Err(GcpError::new(call.method, call.resource, Code::Internal, None).into());
        };
        let started = Instant::now();
        let (outcome, result) = match tokio::time::timeout(self.timeout, self.send(call)).await {
            Ok(sent) => sent,
            Err(_elapsed) => {
                let error = GcpError::new(call.method, call.resource, Code::DeadlineExceeded, Some(Detail::Timeout));
                (Outcome::Timeout, Err(error.into()))
            }
        };
        if let Some(observer) = &self.observer {
            observer.observe(call.service, call.method, &outcome.label(), started.elapsed());
        }
        result
    }

    /// Sends the request and reads the whole body.
    async fn send(&self, call: &Call<'_>) -> (Outcome, Result<Success, Failure>) {
        let mut request = self.client.get(call.url).header(ACCEPT, "application/json");
        match self.auth.header().await {
            Ok(Some(value)) => request = request.header(AUTHORIZATION, value),
            Ok(None) => {}
            Err(failure) => return (Outcome::Auth, Err(token_error(call.method, call.resource, failure).into())),
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return (Outcome::Connect, Err(transport_error(call, &error).into())),
        };
        let http_code = response.status().as_u16();
        let retry_after = response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let success = response.status().is_success();
        let body = match read_body(response).await {
            Ok(body) => body,
            Err(BodyError::Transport) => {
                let error = GcpError::new(call.method, call.resource, Code::Unavailable, Some(Detail::Connect));
                return (Outcome::Connect, Err(error.into()));
            }
            // An oversized error body is classified from the HTTP code alone.
            Err(BodyError::TooLarge) if !success => Zeroizing::new(Vec::new()),
            Err(BodyError::TooLarge) => {
                let mut error =
                    GcpError::new(call.method, call.resource, Code::Unknown, Some(Detail::MalformedResponse));
                error.http_code = Some(http_code);
                return (Outcome::Status(http_code), Err(error.into()));
            }
        };
        let outcome = Outcome::Status(http_code);
        if success {
            return (outcome, Ok(Success { http_code, body }));
        }
        let error = GcpError::from_response(call.method, call.resource, http_code, &body);
        (outcome, Err(Failure { error, retry_after }))
    }
}

/// A request that got no answer: timeouts are DEADLINE_EXCEEDED, the rest UNAVAILABLE.
fn transport_error(call: &Call<'_>, error: &reqwest::Error) -> GcpError {
    // reqwest errors name the URL (a resource name) but never carry bodies.
    debug!(method = call.method, resource = call.resource, error = %error, "GCP request failed without an answer");
    if error.is_timeout() {
        GcpError::new(call.method, call.resource, Code::DeadlineExceeded, Some(Detail::Timeout))
    } else {
        GcpError::new(call.method, call.resource, Code::Unavailable, Some(Detail::Connect))
    }
}

/// Reads at most `MAX_BODY` bytes into a buffer sized from Content-Length, so that the secret
/// is (best effort) not left behind in reallocated memory.
async fn read_body(mut response: reqwest::Response) -> Result<Zeroizing<Vec<u8>>, BodyError> {
    let hint = response.content_length().and_then(|len| usize::try_from(len).ok()).unwrap_or(0).min(MAX_BODY);
    let mut body = Zeroizing::new(Vec::with_capacity(hint));
    while let Some(chunk) = response.chunk().await.map_err(|_| BodyError::Transport)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::Outcome;

    #[test]
    fn outcome_labels() {
        assert_eq!(Outcome::Status(429).label(), "429");
        assert_eq!(Outcome::Timeout.label(), "timeout");
        assert_eq!(Outcome::Connect.label(), "connect_error");
        assert_eq!(Outcome::Auth.label(), "auth_error");
    }
}
