//! A real Prometheus server for one test (the test bed's [`Prometheus`]: Debian's `prometheus`
//! package, on a free port of 127.0.0.1, scraping one endpoint of the test every second, killed
//! when dropped), and an endpoint whose `/metrics` the test sets. Tests that need Prometheus skip
//! (with a line on stderr) where it cannot be found or started; `.ci/run` installs it.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
pub use secure_api_testbed::prometheus::Prometheus;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::net::TcpListener;

/// Starts Prometheus scraping `target` every second and waits until it is ready; `None`, after
/// printing why `test` skips, when it cannot.
pub async fn start_prometheus(test: &str, target: SocketAddr) -> Option<Prometheus> {
    let started = match secure_api_testbed::prometheus::free_addr() {
        Ok(listen) => Prometheus::start(listen, &[target]).await,
        Err(error) => Err(error),
    };
    match started {
        Ok(server) => Some(server),
        Err(reason) => {
            eprintln!("SKIP {test}: Prometheus is not available: {reason}");
            None
        }
    }
}

/// An endpoint serving `/metrics` in Prometheus' text format: whatever the test sets last.
#[derive(Clone)]
pub struct MetricsEndpoint {
    pub addr: SocketAddr,
    text: Arc<Mutex<String>>,
}

impl MetricsEndpoint {
    /// Serves on a free port of 127.0.0.1 until the test's runtime ends.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("addr: {e}"));
        let text = Arc::new(Mutex::new(String::new()));
        let served = text.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let served = served.clone();
                let service = service_fn(move |_request| {
                    let body = served.lock().unwrap_or_else(PoisonError::into_inner).clone();
                    async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body)))) }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        Self { addr, text }
    }

    /// What `/metrics` answers from now on.
    pub fn set(&self, text: &str) {
        *self.text.lock().unwrap_or_else(PoisonError::into_inner) = text.to_owned();
    }
}
