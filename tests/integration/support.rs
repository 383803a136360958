//! Shared test helpers: waiting on conditions with deadlines, a small HTTP client, kubeconfigs.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

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
