//! The GCP client tests' stub: a tiny HTTP server on 127.0.0.1 that answers what a test's
//! responder says and records every request (method, path, query, JSON body, auth headers), the
//! client configuration pointed at it, a recording call observer and a tracing subscriber that
//! captures log output.

use std::fmt::{Debug, Write as _};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use secure_api_operator::gcp::{CallObserver, GcpConfig, GcpError};
use secure_api_testbed::listener::{Listener, listen};
use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Metadata, Subscriber, span};

/// Locks ignoring poisoning (a failed test already reports the panic).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the stub answers to one request.
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
    pub delay: Duration,
}

impl Reply {
    /// A successful `:access` answer for the requested path, resolved to version `number`.
    pub fn version(path: &str, number: u32, data: &[u8]) -> Self {
        let requested = path.trim_start_matches("/v1/").trim_end_matches(":access");
        let secret = requested.rsplit_once("/versions/").map_or(requested, |(secret, _)| secret);
        let body = serde_json::json!({
            "name": format!("{secret}/versions/{number}"),
            "payload": {
                "data": base64::engine::general_purpose::STANDARD.encode(data),
                "dataCrc32c": crc32c::crc32c(data).to_string(),
            },
        });
        Self { status: 200, body: body.to_string(), headers: Vec::new(), delay: Duration::ZERO }
    }

    /// A google.rpc error answer.
    pub fn error(status: u16, rpc_status: &str, message: &str) -> Self {
        let body = serde_json::json!({"error": {"code": status, "message": message, "status": rpc_status}});
        Self { status, body: body.to_string(), headers: Vec::new(), delay: Duration::ZERO }
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
}

/// One request as the stub saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The JSON body (`Null` when there is none).
    pub body: Value,
    pub authorization: Option<String>,
    pub user_agent: Option<String>,
}

type Responder = dyn Fn(usize, &Seen) -> Reply + Send + Sync;

struct State {
    responder: Box<Responder>,
    requests: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
}

/// The stub server (the product's HTTP listener); stops when dropped.
pub struct Stub {
    state: Arc<State>,
    listener: Listener,
}

impl Stub {
    /// Starts on 127.0.0.1:0. `responder` gets the 0-based request index and the URL path.
    pub async fn start(responder: impl Fn(usize, &str) -> Reply + Send + Sync + 'static) -> std::io::Result<Self> {
        Self::start_with(move |index, seen| responder(index, &seen.path)).await
    }

    /// Starts on 127.0.0.1:0. `responder` gets the 0-based request index and the whole request.
    pub async fn start_with(
        responder: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let state = Arc::new(State {
            responder: Box::new(responder),
            requests: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        });
        let serving = Arc::clone(&state);
        let handler = move |request| handle(Arc::clone(&serving), request);
        let listener = listen(([127, 0, 0, 1], 0).into(), handler).await?;
        Ok(Self { state, listener })
    }

    pub fn endpoint(&self) -> String {
        self.listener.url()
    }

    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.state.seen).clone()
    }
}

/// A client configuration for `stub`: both services' endpoints there, no credentials, short
/// timeouts and backoffs, and a rate limit that never bites.
pub fn config(stub: &Stub) -> GcpConfig {
    GcpConfig {
        secret_manager_endpoint: Some(stub.endpoint()),
        api_gateway_endpoint: Some(stub.endpoint()),
        no_auth: true,
        request_timeout: Duration::from_secs(5),
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(20),
        requests_per_second: 10_000.0,
        ..GcpConfig::default()
    }
}

/// The error of a call that had to fail.
pub fn expect_error<T: Debug>(result: Result<T, GcpError>) -> GcpError {
    match result {
        Ok(value) => panic!("unexpected success: {value:?}"),
        Err(error) => error,
    }
}

/// Decrements the in-flight count even when the handler is dropped mid-delay.
struct InFlightGuard(Arc<State>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(state: Arc<State>, request: Request<Bytes>) -> Response<Full<Bytes>> {
    let index = state.requests.fetch_add(1, Ordering::SeqCst);
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let _guard = InFlightGuard(Arc::clone(&state));
    let header = |name| request.headers().get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_owned);
    let seen = Seen {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        query: request.uri().query().unwrap_or_default().to_owned(),
        body: serde_json::from_slice(request.body()).unwrap_or(Value::Null),
        authorization: header("authorization"),
        user_agent: header("user-agent"),
    };
    lock(&state.seen).push(seen.clone());
    let reply = (state.responder)(index, &seen);
    tokio::time::sleep(reply.delay).await;
    response(reply)
}

fn response(reply: Reply) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    response
}

/// Records every observed attempt.
#[derive(Default)]
pub struct Recorder {
    calls: Mutex<Vec<(&'static str, &'static str, String)>>,
}

impl Recorder {
    pub fn outcomes(&self) -> Vec<String> {
        lock(&self.calls).iter().map(|(_, _, outcome)| outcome.clone()).collect()
    }

    pub fn calls(&self) -> Vec<(&'static str, &'static str, String)> {
        lock(&self.calls).clone()
    }
}

impl CallObserver for Recorder {
    fn observe(&self, service: &'static str, method: &'static str, outcome: &str, _elapsed: Duration) {
        lock(&self.calls).push((service, method, outcome.to_owned()));
    }
}

/// A subscriber writing every event's and span's fields into a shared string.
#[derive(Clone, Default)]
pub struct Capture {
    output: Arc<Mutex<String>>,
    next_span: Arc<AtomicU64>,
}

impl Capture {
    pub fn output(&self) -> String {
        lock(&self.output).clone()
    }
}

struct Writer<'a>(&'a mut String);

impl Visit for Writer<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _metadata: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &span::Attributes<'_>) -> span::Id {
        span.record(&mut Writer(&mut lock(&self.output)));
        span::Id::from_u64(self.next_span.fetch_add(1, Ordering::SeqCst) + 1)
    }

    fn record(&self, _span: &span::Id, values: &span::Record<'_>) {
        values.record(&mut Writer(&mut lock(&self.output)));
    }

    fn record_follows_from(&self, _span: &span::Id, _follows: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut output = lock(&self.output);
        event.record(&mut Writer(&mut output));
        output.push('\n');
    }

    fn enter(&self, _span: &span::Id) {}

    fn exit(&self, _span: &span::Id) {}
}
