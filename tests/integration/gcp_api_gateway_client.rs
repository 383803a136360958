//! Integration tests of the API Gateway client against a stub server on 127.0.0.1 that records
//! methods, queries and bodies (the shared `gcp_stub::Stub` only sees paths).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use secure_api_operator::gcp::{
    ApiGateway, CallObserver, Code, Detail, GcpConfig, GcpError, Operation, OperationError,
};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::support::gcp_stub::{Recorder, Reply, lock};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const DEADLINE: Duration = Duration::from_secs(30);
const API_NAME: &str = "projects/p/locations/global/apis/shop";
const API: &str = "/v1/projects/p/locations/global/apis/shop";
const CONFIG: &str = "projects/p/locations/global/apis/shop/configs/shop-1";
const OPERATION: &str = "projects/p/locations/global/operations/op-1";

async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(DEADLINE, future).await.unwrap_or_else(|_| panic!("test exceeded {DEADLINE:?}"))
}

/// One request as the stub saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    query: String,
    body: Value,
}

type Responder = dyn Fn(usize, &Seen) -> Reply + Send + Sync;

struct State {
    responder: Box<Responder>,
    requests: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
}

/// A stub answering with `responder(index, request)`; stops accepting when dropped.
struct GatewayStub {
    addr: SocketAddr,
    state: Arc<State>,
    accept_loop: JoinHandle<()>,
}

impl GatewayStub {
    async fn start(responder: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            responder: Box::new(responder),
            requests: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        });
        let accept_loop = tokio::spawn(accept(listener, Arc::clone(&state)));
        Ok(Self { addr, state, accept_loop })
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    fn seen(&self) -> Vec<Seen> {
        lock(&self.state.seen).clone()
    }
}

impl Drop for GatewayStub {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    while let Ok((stream, _)) = listener.accept().await {
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(Arc::clone(&state), request));
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let index = state.requests.fetch_add(1, Ordering::SeqCst);
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let bytes = request.into_body().collect().await.map(|body| body.to_bytes()).unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let seen = Seen { method, path, query, body };
    lock(&state.seen).push(seen.clone());
    let reply = (state.responder)(index, &seen);
    tokio::time::sleep(reply.delay).await;
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Ok(response)
}

fn ok(body: Value) -> Reply {
    Reply { status: 200, body: body.to_string(), headers: Vec::new(), delay: Duration::ZERO }
}

fn operation(done: bool) -> Reply {
    ok(json!({"name": OPERATION, "done": done, "metadata": {"verb": "create"}}))
}

fn config(stub: &GatewayStub) -> GcpConfig {
    GcpConfig {
        api_gateway_endpoint: Some(stub.endpoint()),
        no_auth: true,
        request_timeout: Duration::from_secs(5),
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(20),
        requests_per_second: 10_000.0,
        ..GcpConfig::default()
    }
}

async fn client(config: GcpConfig, recorder: &Arc<Recorder>) -> Result<ApiGateway, GcpError> {
    ApiGateway::new(config, Some(Arc::clone(recorder) as Arc<dyn CallObserver>)).await
}

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([("owner".to_owned(), "shop".to_owned())])
}

fn expect_error<T: std::fmt::Debug>(result: Result<T, GcpError>) -> GcpError {
    match result {
        Ok(value) => panic!("unexpected success: {value:?}"),
        Err(error) => error,
    }
}

/// Polls `name` until it is done, as a controller would across reconciles (bounded).
async fn wait_done(client: &ApiGateway, name: &str) -> Result<Operation, GcpError> {
    loop {
        let operation = client.get_operation(name).await?;
        if operation.done {
            return Ok(operation);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn created_api_operation_is_polled_until_done() -> TestResult {
    let stub = GatewayStub::start(|index, _| operation(index >= 3)).await?;
    let recorder = Arc::new(Recorder::default());
    let gateway = client(config(&stub), &recorder).await?;
    let started = within(gateway.create_api("p", "shop", "Shop", &labels())).await?;
    assert_eq!((started.name.as_str(), started.done), (OPERATION, false));
    let done = within(wait_done(&gateway, &started.name)).await?;
    assert!(done.done && done.error.is_none());

    let seen = stub.seen();
    assert_eq!((seen[0].method.as_str(), seen[0].path.as_str()), ("POST", "/v1/projects/p/locations/global/apis"));
    assert_eq!(seen[0].query, "apiId=shop");
    assert_eq!(seen[0].body, json!({"displayName": "Shop", "labels": {"owner": "shop"}}));
    assert!(seen[1..].iter().all(|s| s.method == "GET" && s.path == format!("/v1/{OPERATION}") && s.body.is_null()));
    let methods: Vec<(&str, &str)> = recorder.calls().iter().map(|(service, method, _)| (*service, *method)).collect();
    assert_eq!(methods[0], ("apigateway", "apigateway.apis.create"));
    assert_eq!(methods[1..], [("apigateway", "apigateway.operations.get"); 3]);
    Ok(())
}

#[tokio::test]
async fn failed_operation_carries_its_message() -> TestResult {
    let message = "Cannot convert to service config: paths./x missing operationId";
    let stub = GatewayStub::start(move |_, _| {
        ok(json!({"name": OPERATION, "done": true, "error": {"code": 3, "message": message, "details": []}}))
    })
    .await?;
    let gateway = client(config(&stub), &Arc::new(Recorder::default())).await?;
    let operation = within(gateway.get_operation(OPERATION)).await?;
    assert_eq!(operation.error, Some(OperationError { code: 3, message: message.to_owned() }));
    Ok(())
}

#[tokio::test]
async fn post_answered_503_or_429_is_retried() -> TestResult {
    let stub = GatewayStub::start(|index, _| match index {
        0 => Reply::error(503, "UNAVAILABLE", "backend unavailable"),
        1 => Reply::error(429, "RESOURCE_EXHAUSTED", "quota"),
        _ => operation(false),
    })
    .await?;
    let recorder = Arc::new(Recorder::default());
    let gateway = client(config(&stub), &recorder).await?;
    let document = b"swagger: '2.0'\n";
    let started =
        within(gateway.create_config("p", "shop", "shop-1", "openapi.yaml", document, None, &labels())).await?;
    assert_eq!(started.name, OPERATION);
    assert_eq!(recorder.outcomes(), ["503", "429", "200"]);
    let seen = stub.seen();
    assert_eq!(seen.len(), 3);
    for request in &seen {
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", &*format!("{API}/configs")));
        assert_eq!(request.query, "apiConfigId=shop-1");
        assert_eq!(request.body.pointer("/openapiDocuments/0/document/contents"), Some(&json!("c3dhZ2dlcjogJzIuMCcK")));
        assert_eq!(request.body, seen[0].body);
    }
    Ok(())
}

#[tokio::test]
async fn post_that_timed_out_is_not_retried() -> TestResult {
    let stub = GatewayStub::start(|_, _| operation(false).delayed(Duration::from_secs(10))).await?;
    let recorder = Arc::new(Recorder::default());
    let gateway = client(GcpConfig { request_timeout: Duration::from_millis(200), ..config(&stub) }, &recorder).await?;
    let error = expect_error(within(gateway.create_gateway("p", "us-central1", "gw", CONFIG, "Shop", &labels())).await);
    assert_eq!((error.status, error.http_code, error.detail), (Code::DeadlineExceeded, None, Some(Detail::Timeout)));
    assert_eq!(
        error.to_string(),
        "apigateway.gateways.create projects/p/locations/us-central1/gateways/gw: DEADLINE_EXCEEDED (timeout)"
    );
    assert_eq!(recorder.outcomes(), ["timeout"]);
    assert_eq!(stub.requests(), 1);
    Ok(())
}

#[tokio::test]
async fn write_answered_500_is_not_retried_but_a_read_is() -> TestResult {
    let stub = GatewayStub::start(|index, seen| match (index, seen.method.as_str()) {
        (0, _) | (1, "GET") => Reply::error(500, "INTERNAL", "oops"),
        (_, "GET") => ok(json!({"name": API_NAME, "state": "ACTIVE"})),
        _ => operation(false),
    })
    .await?;
    let recorder = Arc::new(Recorder::default());
    let gateway = client(config(&stub), &recorder).await?;
    let error = expect_error(within(gateway.delete_api("p", "shop")).await);
    assert_eq!((error.status, error.http_code), (Code::Internal, Some(500)));
    assert_eq!(stub.requests(), 1);
    let api = within(gateway.get_api("p", "shop")).await?;
    assert_eq!(api.map(|api| api.state).as_deref(), Some("ACTIVE"));
    assert_eq!(recorder.outcomes(), ["500", "500", "200"]);
    Ok(())
}

#[tokio::test]
async fn refused_connections_are_retried_for_writes() -> TestResult {
    // A port that was just free: nothing listens there any more.
    let port = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?.local_addr()?.port();
    let recorder = Arc::new(Recorder::default());
    let config = GcpConfig {
        api_gateway_endpoint: Some(format!("http://127.0.0.1:{port}")),
        no_auth: true,
        max_attempts: 3,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        ..GcpConfig::default()
    };
    let gateway = client(config, &recorder).await?;
    let error = expect_error(within(gateway.delete_gateway("p", "us-central1", "gw")).await);
    assert_eq!((error.status, error.detail), (Code::Unavailable, Some(Detail::Connect)));
    assert_eq!(recorder.outcomes(), ["connect_error"; 3]);
    Ok(())
}

#[tokio::test]
async fn list_configs_follows_page_tokens() -> TestResult {
    let stub = GatewayStub::start(|_, seen| {
        let config = |id: &str| json!({"name": format!("{API_NAME}/configs/{id}"), "state": "ACTIVE"});
        match seen.query.as_str() {
            "pageSize=100" => ok(json!({"apiConfigs": [config("a"), config("b")], "nextPageToken": "t/2+"})),
            "pageSize=100&pageToken=t%2F2%2B" => ok(json!({"apiConfigs": [config("c")], "nextPageToken": "t3"})),
            "pageSize=100&pageToken=t3" => ok(json!({"apiConfigs": [config("d")]})),
            _ => Reply::error(400, "INVALID_ARGUMENT", "unexpected page"),
        }
    })
    .await?;
    let gateway = client(config(&stub), &Arc::new(Recorder::default())).await?;
    let configs = within(gateway.list_configs("p", "shop")).await?;
    let ids: Vec<&str> = configs.iter().map(|config| config.id()).collect();
    assert_eq!(ids, ["a", "b", "c", "d"]);
    assert!(stub.seen().iter().all(|seen| seen.method == "GET" && seen.path == format!("{API}/configs")));
    assert_eq!(stub.requests(), 3);
    Ok(())
}

#[tokio::test]
async fn missing_resources_are_none() -> TestResult {
    let stub = GatewayStub::start(|_, _| Reply::error(404, "NOT_FOUND", "Resource not found")).await?;
    let recorder = Arc::new(Recorder::default());
    let gateway = client(config(&stub), &recorder).await?;
    assert_eq!(within(gateway.get_api("p", "shop")).await?, None);
    assert_eq!(within(gateway.get_config("p", "shop", "shop-1")).await?, None);
    assert_eq!(within(gateway.get_gateway("p", "us-central1", "gw")).await?, None);
    let error = expect_error(within(gateway.get_operation(OPERATION)).await);
    assert_eq!((error.status, error.http_code), (Code::NotFound, Some(404)));
    let methods: Vec<&str> = recorder.calls().iter().map(|(_, method, _)| *method).collect();
    let expected =
        ["apigateway.apis.get", "apigateway.apiConfigs.get", "apigateway.gateways.get", "apigateway.operations.get"];
    assert_eq!(methods, expected);
    Ok(())
}

#[tokio::test]
async fn gateway_is_read_and_moved_to_a_new_config() -> TestResult {
    let stub = GatewayStub::start(|_, seen| match seen.method.as_str() {
        "GET" => ok(json!({
            "name": "projects/p/locations/us-central1/gateways/gw", "apiConfig": CONFIG, "state": "ACTIVE",
            "defaultHostname": "gw-1a2b.uc.gateway.dev",
        })),
        _ => operation(false),
    })
    .await?;
    let gateway = client(config(&stub), &Arc::new(Recorder::default())).await?;
    let live = within(gateway.get_gateway("p", "us-central1", "gw")).await?;
    let live = live.ok_or("gateway missing")?;
    assert_eq!((live.api_config.as_str(), live.default_hostname.as_str()), (CONFIG, "gw-1a2b.uc.gateway.dev"));
    let next = "projects/p/locations/global/apis/shop/configs/shop-2";
    within(gateway.update_gateway_config("p", "us-central1", "gw", next)).await?;
    let patch = stub.seen().pop().ok_or("no request")?;
    assert_eq!((patch.method.as_str(), patch.query.as_str()), ("PATCH", "updateMask=apiConfig"));
    assert_eq!(patch.path, "/v1/projects/p/locations/us-central1/gateways/gw");
    assert_eq!(patch.body, json!({"apiConfig": next}));
    Ok(())
}
