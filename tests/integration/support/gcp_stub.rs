//! Test support: a tiny Secret Manager stub on 127.0.0.1, a recording call observer and a
//! tracing subscriber that captures log output.

use std::convert::Infallible;
use std::fmt::{Debug, Write as _};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use secure_api_operator::gcp::CallObserver;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
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
    pub path: String,
    pub authorization: Option<String>,
    pub user_agent: Option<String>,
}

type Responder = dyn Fn(usize, &str) -> Reply + Send + Sync;

struct State {
    responder: Box<Responder>,
    requests: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
}

/// The stub server; stops accepting when dropped (connections end with the test's runtime).
pub struct Stub {
    addr: SocketAddr,
    state: Arc<State>,
    accept_loop: JoinHandle<()>,
}

impl Stub {
    /// Starts on 127.0.0.1:0. `responder` gets the 0-based request index and the URL path.
    pub async fn start(responder: impl Fn(usize, &str) -> Reply + Send + Sync + 'static) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            responder: Box::new(responder),
            requests: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        });
        let accept_loop = tokio::spawn(accept(listener, Arc::clone(&state)));
        Ok(Self { addr, state, accept_loop })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
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

impl Drop for Stub {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    while let Ok((stream, _)) = listener.accept().await {
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(Arc::clone(&state), request));
            // Connection errors (e.g. a client that timed out and hung up) are expected.
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// Decrements the in-flight count even when the handler is dropped mid-delay.
struct InFlightGuard(Arc<State>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let index = state.requests.fetch_add(1, Ordering::SeqCst);
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let _guard = InFlightGuard(Arc::clone(&state));
    let header = |name| request.headers().get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_owned);
    let path = request.uri().path().to_owned();
    let seen = Seen { path: path.clone(), authorization: header("authorization"), user_agent: header("user-agent") };
    lock(&state.seen).push(seen);
    let reply = (state.responder)(index, &path);
    tokio::time::sleep(reply.delay).await;
    Ok(response(reply))
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
