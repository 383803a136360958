//! A real Prometheus server (Debian's `prometheus` package, `prometheus` on the `PATH`) for the
//! tests and benchmarks that gate canaries on a query: started on 127.0.0.1 in a temporary
//! directory, scraping the given endpoints' `/metrics` every second, and killed when dropped.

use std::fs::File;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long Prometheus may take to answer `/-/ready`.
const STARTUP: Duration = Duration::from_secs(30);
/// How often it scrapes: short, so that a query sees a change within about a second.
const SCRAPE_INTERVAL: &str = "1s";

/// A running Prometheus server.
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// A free port of 127.0.0.1 (bound and released), for a server whose address must be known
/// before it starts: the operator is told which Prometheus it may query when it starts.
pub fn free_addr() -> Result<SocketAddr, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener.local_addr().map_err(|e| format!("no free port: {e}"))
}

impl Prometheus {
    /// Starts Prometheus on `listen` (a loopback address) scraping `targets`, and waits until it
    /// is ready; the error says why it cannot (not installed, exited, not ready in time).
    pub async fn start(listen: SocketAddr, targets: &[SocketAddr]) -> Result<Self, String> {
        if !listen.ip().is_loopback() {
            return Err(format!("{listen} is not a loopback address"));
        }
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, config_text(targets)).map_err(|e| format!("config: {e}"))?;
        let log = File::create(dir.path().join("prometheus.log")).map_err(|e| format!("log file: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("log file: {e}"))?;
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={listen}"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("cannot run prometheus: {e}"))?;
        let mut server = Self { child, addr: listen, _dir: dir };
        server.wait_ready().await?;
        Ok(server)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| format!("an HTTP client: {e}"))?;
        let ready = format!("{}/-/ready", self.url());
        let give_up = Instant::now() + STARTUP;
        loop {
            if client.get(&ready).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("prometheus exited: {status}"));
            }
            if Instant::now() >= give_up {
                return Err(format!("not ready within {STARTUP:?}"));
            }
            // Polling a child process's startup: there is nothing to wait on instead.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `prometheus.yml`: one job scraping every target each [`SCRAPE_INTERVAL`].
fn config_text(targets: &[SocketAddr]) -> String {
    let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    format!(
        "global:\n  scrape_interval: {SCRAPE_INTERVAL}\n  evaluation_interval: {SCRAPE_INTERVAL}\nscrape_configs:\n  - job_name: test\n    static_configs:\n      - targets: [{}]\n",
        targets.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_scrapes_every_target_each_second() {
        let targets: [SocketAddr; 2] = [([127, 0, 0, 1], 9101).into(), ([127, 0, 0, 1], 9102).into()];
        let text = config_text(&targets);
        assert!(text.contains("scrape_interval: 1s"), "{text}");
        assert!(text.contains("- targets: ['127.0.0.1:9101', '127.0.0.1:9102']"), "{text}");
    }
}
