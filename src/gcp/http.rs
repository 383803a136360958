//! The request executor: per-attempt timeout, retries with backoff, concurrency and rate
//! limits, and observation of every attempt. It returns raw bodies; callers decode them.
//!
//! Reads are retried on every transient error. Writes (POST, PATCH, DELETE) are retried only
//! when the request is known not to have been applied: HTTP 429 and 503, a connection that could
//! not be opened, or no access token; never after a timeout or a broken connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use secrecy::ExposeSecret;
use secrecy::zeroize::Zeroizing;
use tokio::sync::Semaphore;
use tracing::debug;

use super::GcpConfig;
use super::auth::{Auth, bearer, token_error};
use super::caller::Caller;
use super::error::{Code, Detail, GcpError};
use super::rate::RateLimiter;
use super::retry::{Backoff, XorShift, parse_retry_after};

/// Largest body read (a 64 KiB payload is ~88 KiB as base64 JSON); bounds memory per call.
const MAX_BODY: usize = 1 << 20;

/// Observes every HTTP attempt, e.g. for Prometheus metrics. Never receives names or payloads.
pub trait CallObserver: Send + Sync {
    /// `service` like "secretmanager" or "apigateway", `method` like "secretmanager.versions.access", `outcome` the
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
    /// Whose token goes into the `Authorization` header.
    pub(super) caller: &'a Caller,
}

/// The HTTP method of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verb {
    Get,
    Post,
    Patch,
    Delete,
}

impl Verb {
    /// Whether the call changes state on the server (and so is not blindly retried).
    pub(super) fn is_mutating(self) -> bool {
        !matches!(self, Verb::Get)
    }

    fn method(self) -> reqwest::Method {
        match self {
            Verb::Get => reqwest::Method::GET,
            Verb::Post => reqwest::Method::POST,
            Verb::Patch => reqwest::Method::PATCH,
            Verb::Delete => reqwest::Method::DELETE,
        }
    }
}

/// What to send: the method and, for writes, a JSON body (cheap to clone for retries).
#[derive(Clone, Debug)]
pub(super) struct Request {
    pub(super) verb: Verb,
    pub(super) json: Option<Bytes>,
    /// A form body (`application/x-www-form-urlencoded`) instead of JSON, as OAuth endpoints take.
    pub(super) form: bool,
}

impl Request {
    /// A GET without body.
    pub(super) const GET: Request = Request { verb: Verb::Get, json: None, form: false };

    /// A request with a JSON body.
    pub(super) fn json(verb: Verb, json: Bytes) -> Self {
        Self { verb, json: Some(json), form: false }
    }
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

/// A failed attempt, the server's requested pause, and whether the request surely never left.
#[derive(Debug)]
struct Failure {
    error: GcpError,
    retry_after: Option<Duration>,
    /// The request was not sent (no token, connection refused): safe to send again even if it writes.
    unsent: bool,
}

impl Failure {
    /// A failure after which the request may have reached the server.
    fn maybe_sent(error: GcpError) -> Self {
        Self { error, retry_after: None, unsent: false }
    }

    /// A failure before the request could leave.
    fn unsent(error: GcpError) -> Self {
        Self { error, retry_after: None, unsent: true }
    }
}

/// Whether a failed attempt may be repeated. Reads (idempotent calls): any transient error.
/// Writes: only when the request surely was not applied (429, 503, or never sent).
fn may_retry(idempotent: bool, failure: &Failure) -> bool {
    if !failure.error.is_transient() {
        return false;
    }
    idempotent || failure.unsent || matches!(failure.error.http_code, Some(429 | 503))
}

enum BodyError {
    TooLarge,
    Transport,
}

impl Executor {
    /// Initialises the token source `config` asks for, then builds the executor: the common
    /// constructor of all clients.
    pub(super) async fn from_config(
        config: &GcpConfig,
        observer: Option<Arc<dyn CallObserver>>,
    ) -> Result<Self, GcpError> {
        let auth = Auth::from_config(config).await?;
        Self::new(config, auth, observer)
    }

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
        self.execute(call, &Request::GET).await
    }

    /// Sends `request` to `call.url`, retrying as [`may_retry`] allows up to the configured number
    /// of attempts.
    pub(super) async fn execute(&self, call: &Call<'_>, request: &Request) -> Result<Success, GcpError> {
        self.run(call, request, !request.verb.is_mutating()).await
    }

    /// Like [`Self::execute`] for a POST that changes nothing on the server (a token exchange):
    /// retried on every transient error, like a read.
    pub(super) async fn execute_idempotent(&self, call: &Call<'_>, request: &Request) -> Result<Success, GcpError> {
        self.run(call, request, true).await
    }

    async fn run(&self, call: &Call<'_>, request: &Request, idempotent: bool) -> Result<Success, GcpError> {
        let mut rng = XorShift::seeded();
        let mut attempt = 1;
        loop {
            let failure = match self.attempt(call, request).await {
                Ok(success) => return Ok(success),
                Err(failure) => failure,
            };
            if attempt >= self.max_attempts || !may_retry(idempotent, &failure) {
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
    async fn attempt(&self, call: &Call<'_>, request: &Request) -> Result<Success, Failure> {
        self.rate.acquire(call.resource).await;
        // The semaphore is never closed; the error arm only exists to avoid a panic path.
        let Ok(_slot) = self.slots.acquire().await else {
            return Err(Failure::unsent(GcpError::new(call.method, call.resource, Code::Internal, None)));
        };
        let started = Instant::now();
        let (outcome, result) = match tokio::time::timeout(self.timeout, self.send(call, request)).await {
            Ok(sent) => sent,
            Err(_elapsed) => {
                let error = GcpError::new(call.method, call.resource, Code::DeadlineExceeded, Some(Detail::Timeout));
                (Outcome::Timeout, Err(Failure::maybe_sent(error)))
            }
        };
        if let Some(observer) = &self.observer {
            observer.observe(call.service, call.method, &outcome.label(), started.elapsed());
        }
        result
    }

    /// The request of one attempt, with the `Authorization` header when there is a token.
    async fn build(&self, call: &Call<'_>, request: &Request) -> Result<reqwest::RequestBuilder, Failure> {
        let mut builder = self.client.request(request.verb.method(), call.url).header(ACCEPT, "application/json");
        if let Some(body) = &request.json {
            let content_type = if request.form { "application/x-www-form-urlencoded" } else { "application/json" };
            builder = builder.header(CONTENT_TYPE, content_type).body(body.clone());
        }
        let header = match call.caller {
            Caller::Operator => self.auth.header().await,
            Caller::Delegated { token, .. } => bearer(token.expose_secret()).map(Some),
        };
        match header {
            Ok(Some(value)) => Ok(builder.header(AUTHORIZATION, value)),
            Ok(None) => Ok(builder),
            Err(failure) => Err(Failure::unsent(token_error(call.method, call.resource, failure))),
        }
    }

    /// Sends the request and reads the whole body.
    async fn send(&self, call: &Call<'_>, request: &Request) -> (Outcome, Result<Success, Failure>) {
        let builder = match self.build(call, request).await {
            Ok(builder) => builder,
            Err(failure) => return (Outcome::Auth, Err(failure)),
        };
        let response = match builder.send().await {
            Ok(response) => response,
            Err(error) => return (Outcome::Connect, Err(transport_failure(call, &error))),
        };
        let http_code = response.status().as_u16();
        let retry_after = response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let success = response.status().is_success();
        let body = match read_body(response).await {
            Ok(body) => body,
            Err(BodyError::Transport) => {
                let error = GcpError::new(call.method, call.resource, Code::Unavailable, Some(Detail::Connect));
                return (Outcome::Connect, Err(Failure::maybe_sent(error)));
            }
            // An oversized error body is classified from the HTTP code alone.
            Err(BodyError::TooLarge) if !success => Zeroizing::new(Vec::new()),
            Err(BodyError::TooLarge) => {
                let mut error =
                    GcpError::new(call.method, call.resource, Code::Unknown, Some(Detail::MalformedResponse));
                error.http_code = Some(http_code);
                return (Outcome::Status(http_code), Err(Failure::maybe_sent(error)));
            }
        };
        let outcome = Outcome::Status(http_code);
        if success {
            return (outcome, Ok(Success { http_code, body }));
        }
        let error = GcpError::from_response(call.method, call.resource, http_code, &body);
        (outcome, Err(Failure { error, retry_after, unsent: false }))
    }
}

/// A request that got no answer: timeouts are DEADLINE_EXCEEDED, the rest UNAVAILABLE. Only a
/// connection that could not be opened proves that the request never left.
fn transport_failure(call: &Call<'_>, error: &reqwest::Error) -> Failure {
    // reqwest errors name the URL (a resource name) but never carry bodies.
    debug!(method = call.method, resource = call.resource, error = %error, "GCP request failed without an answer");
    if error.is_timeout() {
        Failure::maybe_sent(GcpError::new(call.method, call.resource, Code::DeadlineExceeded, Some(Detail::Timeout)))
    } else if error.is_connect() {
        Failure::unsent(GcpError::new(call.method, call.resource, Code::Unavailable, Some(Detail::Connect)))
    } else {
        Failure::maybe_sent(GcpError::new(call.method, call.resource, Code::Unavailable, Some(Detail::Connect)))
    }
}

/// An `http(s)://host[:port][/prefix]` endpoint override, returned without trailing slash;
/// `setting` names the configuration field in the error.
pub(super) fn check_endpoint(endpoint: &str, setting: &'static str) -> Result<String, GcpError> {
    let valid = reqwest::Url::parse(endpoint)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some() && url.query().is_none());
    if !valid {
        return Err(GcpError::new("config", setting, Code::InvalidArgument, Some(Detail::InvalidRequest)));
    }
    Ok(endpoint.trim_end_matches('/').to_owned())
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
    use super::{Code, Detail, Failure, GcpError, Outcome, Verb, check_endpoint, may_retry};

    #[test]
    fn outcome_labels() {
        assert_eq!(Outcome::Status(429).label(), "429");
        assert_eq!(Outcome::Timeout.label(), "timeout");
        assert_eq!(Outcome::Connect.label(), "connect_error");
        assert_eq!(Outcome::Auth.label(), "auth_error");
    }

    fn answered(http_code: u16) -> Failure {
        Failure::maybe_sent(GcpError::from_response("m", "r", http_code, b""))
    }

    fn timeout() -> Failure {
        Failure::maybe_sent(GcpError::new("m", "r", Code::DeadlineExceeded, Some(Detail::Timeout)))
    }

    fn refused() -> Failure {
        Failure::unsent(GcpError::new("m", "r", Code::Unavailable, Some(Detail::Connect)))
    }

    fn broken() -> Failure {
        Failure::maybe_sent(GcpError::new("m", "r", Code::Unavailable, Some(Detail::Connect)))
    }

    #[test]
    fn reads_retry_every_transient_error() {
        for failure in [answered(429), answered(500), answered(503), answered(504), timeout(), refused(), broken()] {
            assert!(may_retry(true, &failure), "{failure:?}");
        }
        for failure in [answered(400), answered(403), answered(404)] {
            assert!(!may_retry(true, &failure), "{failure:?}");
        }
    }

    #[test]
    fn writes_retry_only_when_surely_not_applied() {
        for verb in [Verb::Post, Verb::Patch, Verb::Delete] {
            for failure in [answered(429), answered(503), refused()] {
                assert!(may_retry(!verb.is_mutating(), &failure), "{verb:?} {failure:?}");
            }
            for failure in [answered(500), answered(502), answered(504), answered(409), timeout(), broken()] {
                assert!(!may_retry(!verb.is_mutating(), &failure), "{verb:?} {failure:?}");
            }
            assert!(!may_retry(!verb.is_mutating(), &answered(404)));
        }
    }

    #[test]
    fn missing_tokens_are_retried_only_when_transient() {
        let transient = Failure::unsent(GcpError::new("m", "r", Code::Unavailable, Some(Detail::Token)));
        let permanent = Failure::unsent(GcpError::new("m", "r", Code::Unauthenticated, Some(Detail::Token)));
        assert!(may_retry(false, &transient));
        assert!(!may_retry(false, &permanent));
    }

    #[test]
    fn endpoints_are_checked_and_trimmed() {
        assert_eq!(check_endpoint("http://127.0.0.1:9000/", "x").ok().as_deref(), Some("http://127.0.0.1:9000"));
        for bad in ["127.0.0.1:9000", "ftp://x", "http://x/?q=1", ""] {
            let error = check_endpoint(bad, "some_endpoint").err();
            assert_eq!(
                error.map(|e| e.to_string()).as_deref(),
                Some("config some_endpoint: INVALID_ARGUMENT (invalid request)")
            );
        }
    }
}
