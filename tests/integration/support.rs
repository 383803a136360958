//! Shared test helpers: waiting on conditions with deadlines, a small HTTP client, and a stand-in
//! Kubernetes API server that answers only the start-up checks of `run`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

/// Path of the operator binary under test.
pub fn operator_bin() -> &'static str {
    env!("CARGO_BIN_EXE_secure-api-operator")
}

/// Polls `check` until it returns `Some`, failing the test with `what` after `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let give_up = Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < give_up, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `GET http://addr/path`: status and body, or `None` when nothing answers.
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<(StatusCode, String)> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(connection);
    let request = Request::get(path).header("host", addr.to_string()).body(Full::new(Bytes::new())).ok()?;
    let response = sender.send_request(request).await.ok()?;
    let status = response.status();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for one test process).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|error| panic!("no free port: {error}"))
}

/// Writes a kubeconfig for `server` (no credentials) to `path`.
pub fn write_kubeconfig(path: &Path, server: &str) {
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n\
         contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\ncurrent-context: test\n\
         users:\n- name: test\n  user: {{}}\n"
    );
    std::fs::write(path, kubeconfig).unwrap_or_else(|error| panic!("writing {}: {error}", path.display()));
}

/// A stand-in API server that answers `/version` and the discovery document of
/// `secureapi.dev/v1alpha1` (listing `installed` plurals, or 404 when empty). It serves until the
/// test's runtime ends.
pub async fn start_discovery_server(installed: &'static [&'static str]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("local_addr: {e}"));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| async move {
                Ok::<_, Infallible>(discovery_response(request.uri().path(), installed))
            });
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    addr
}

fn discovery_response(path: &str, installed: &[&str]) -> Response<Full<Bytes>> {
    let (status, body) = match path {
        "/version" => (
            StatusCode::OK,
            serde_json::json!({
                "major": "1", "minor": "33", "gitVersion": "v1.33.0", "gitCommit": "test",
                "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.24",
                "compiler": "gc", "platform": "linux/amd64",
            }),
        ),
        "/apis/secureapi.dev/v1alpha1" if !installed.is_empty() => (
            StatusCode::OK,
            serde_json::json!({
                "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "secureapi.dev/v1alpha1",
                "resources": installed.iter().map(|name| serde_json::json!({
                    "name": name, "singularName": "", "namespaced": true, "kind": "X", "verbs": ["get", "list", "watch"],
                })).collect::<Vec<_>>(),
            }),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                "message": "the server could not find the requested resource", "code": 404,
            }),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
    response
}
