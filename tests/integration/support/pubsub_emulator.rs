//! Google's own Pub/Sub emulator (Java, from the Cloud SDK), started on a free port of
//! 127.0.0.1 in a temporary directory for one test and killed, with everything it started, when
//! dropped. Tests that need it skip (with a line on stderr) where it cannot be found or started.
//! `PUBSUB_EMULATOR` may name its launcher.

use super::http::{free_port, http_get};
use hyper::StatusCode;
use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the Cloud SDK's Debian package puts the launcher.
const DEFAULT_LAUNCHER: &str = "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator";

/// The JVM is up in about 3 s; a busy machine gets more.
const STARTUP: Duration = Duration::from_secs(60);

/// A running emulator.
pub struct GooglePubsubEmulator {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl GooglePubsubEmulator {
    /// Starts the emulator and waits until it answers `GET /v1/projects/p/topics`; `None`, after
    /// printing why the test skips, when it cannot.
    pub async fn start(test: &str) -> Option<Self> {
        match Self::try_start().await {
            Ok(emulator) => Some(emulator),
            Err(reason) => {
                eprintln!("SKIP {test}: Google's Pub/Sub emulator is not available: {reason}");
                None
            }
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn try_start() -> Result<Self, String> {
        let launcher =
            launcher().ok_or("no launcher (set PUBSUB_EMULATOR, or install the Cloud SDK's pubsub-emulator)")?;
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let log = File::create(dir.path().join("emulator.log")).map_err(|e| format!("log file: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("log file: {e}"))?;
        let mut command = Command::new(&launcher);
        command
            .args([format!("--host={}", addr.ip()), format!("--port={}", addr.port())])
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group: dropping it kills the JVM too, whatever the launcher forks.
            .process_group(0);
        if let Ok(java_home) = std::env::var("JAVA_HOME") {
            command.env("JAVA_HOME", java_home);
        }
        let child = command.spawn().map_err(|e| format!("cannot run {}: {e}", launcher.display()))?;
        let mut emulator = Self { child, addr, dir };
        emulator.wait_until_ready().await?;
        Ok(emulator)
    }

    async fn wait_until_ready(&mut self) -> Result<(), String> {
        let give_up = Instant::now() + STARTUP;
        loop {
            if let Some((StatusCode::OK, _)) = http_get(self.addr, "/v1/projects/p/topics").await {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("it exited ({status}): {}", self.log_tail()));
            }
            if Instant::now() > give_up {
                return Err(format!("no answer after {STARTUP:?}: {}", self.log_tail()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("emulator.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().rev().take(5).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }
}

impl Drop for GooglePubsubEmulator {
    fn drop(&mut self) {
        if let Ok(group) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: signals the process group this test created for its own child; no memory
            // is involved.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn launcher() -> Option<PathBuf> {
    let candidates = std::env::var_os("PUBSUB_EMULATOR").map(PathBuf::from).into_iter().chain([
        PathBuf::from(DEFAULT_LAUNCHER),
        // Next to a gcloud found on PATH: SDK_ROOT/bin/gcloud → SDK_ROOT/platform/pubsub-emulator.
        sdk_root_of_gcloud()
            .map(|root| root.join("platform/pubsub-emulator/bin/cloud-pubsub-emulator"))
            .unwrap_or_default(),
    ]);
    candidates.into_iter().find(|path| is_executable(path))
}

fn sdk_root_of_gcloud() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let gcloud = std::env::split_paths(&path).map(|dir| dir.join("gcloud")).find(|p| p.exists())?;
    let resolved = std::fs::canonicalize(gcloud).ok()?;
    Some(resolved.parent()?.parent()?.to_path_buf())
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
