//! A real Prometheus server (Debian's `prometheus` package) for one test: started on a free port
//! of 127.0.0.1 in a temporary directory, scraping one endpoint of the test every second, and
//! killed when dropped. Tests that need it skip (with a line on stderr) where it cannot be found
//! or started; `.ci/run` installs it.

use super::http::{free_port, http_get};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::fs::File;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

const STARTUP: Duration = Duration::from_secs(30);

/// A running Prometheus server.
pub struct PrometheusServer {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl PrometheusServer {
    /// Starts Prometheus scraping `target` every second and waits until it is ready; `None`,
    /// after printing why the test skips, when it cannot.
    pub async fn start(test: &str, target: SocketAddr) -> Option<Self> {
        match Self::try_start(target).await {
            Ok(server) => Some(server),
            Err(reason) => {
                eprintln!("SKIP {test}: Prometheus is not available: {reason}");
                None
            }
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn try_start(target: SocketAddr) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let config = dir.path().join("prometheus.yml");
        let scrape = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: test\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(&config, scrape).map_err(|e| format!("config: {e}"))?;
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let log = File::create(dir.path().join("prometheus.log")).map_err(|e| format!("log file: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("log file: {e}"))?;
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("cannot run prometheus: {e}"))?;
        let mut server = Self { child, addr, _dir: dir };
        let give_up = Instant::now() + STARTUP;
        loop {
            if let Some((StatusCode::OK, _)) = http_get(server.addr, "/-/ready").await {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("prometheus exited: {status}"));
            }
            if Instant::now() >= give_up {
                return Err(format!("not ready within {STARTUP:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
