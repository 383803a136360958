//! The real gcloud, pointed at the GCP emulators (Secret Manager, Pub/Sub, API Gateway, API Keys,
//! Service Usage, IAM, IAM Credentials, STS and Resource Manager endpoint overrides), with a fresh
//! configuration directory and a bounded run time.

use secure_api_testbed::emulator::gcp::GcpEmulator;
use secure_api_testbed::listener::Listener;
use serde_json::Value;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::PROJECT;

const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// gcloud settings for a machine with no user and no metadata server: no prompts, no update
/// check, no usage reporting, no GCE metadata probe.
pub const QUIET_ENV: [(&str, &str); 5] = [
    ("CLOUDSDK_CORE_DISABLE_PROMPTS", "1"),
    ("CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK", "true"),
    ("CLOUDSDK_CORE_DISABLE_USAGE_REPORTING", "true"),
    ("CLOUDSDK_CORE_CHECK_GCE_METADATA", "false"),
    ("NO_GCE_CHECK", "True"),
];

/// What one gcloud run printed.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn success(self) -> Result<Self, String> {
        if self.status.success() { Ok(self) } else { Err(format!("gcloud failed ({}): {}", self.status, self.stderr)) }
    }

    pub fn json(&self) -> Result<Value, String> {
        serde_json::from_str(&self.stdout).map_err(|e| format!("gcloud printed no JSON ({e}): {}", self.stdout))
    }
}

/// gcloud pointed at the emulator, with a fresh configuration directory.
pub struct Gcloud {
    endpoint: String,
    home: tempfile::TempDir,
    /// `CLOUDSDK_AUTH_ACCESS_TOKEN`: a token the emulator did not issue acts as the owner.
    access_token: String,
}

impl Gcloud {
    /// gcloud for the emulators listening at `url` (`http://127.0.0.1:PORT`).
    pub fn new(url: &str) -> Result<Self, String> {
        let home = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        Ok(Self { endpoint: format!("{url}/"), home, access_token: "test-token".to_owned() })
    }

    /// Runs later commands with `token` (e.g. one the emulator's STS issued, to act as that
    /// principal).
    pub fn set_access_token(&mut self, token: &str) {
        token.clone_into(&mut self.access_token);
    }

    pub fn dir(&self) -> &Path {
        self.home.path()
    }

    /// Writes `contents` to a file in the gcloud directory and returns its path.
    pub fn file(&self, name: &str, contents: &str) -> Result<String, String> {
        let path = self.dir().join(name);
        std::fs::write(&path, contents).map_err(|e| format!("writing {name}: {e}"))?;
        Ok(path.display().to_string())
    }

    /// Runs gcloud without input.
    pub async fn run(&self, args: &[&str]) -> Result<Run, String> {
        self.run_with_input(args, None).await
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(std::env::var("GCLOUD").unwrap_or_else(|_| "gcloud".to_owned()));
        // A clean environment: no proxies, no user configuration, no metadata-server probe.
        command.env_clear().args(args).current_dir(self.dir());
        for (name, value) in [
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("HOME", self.dir().display().to_string()),
            ("LANG", "C.UTF-8".to_owned()),
            ("CLOUDSDK_CONFIG", self.dir().join("gcloud-config").display().to_string()),
            ("CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER", self.endpoint.clone()),
            ("CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB", self.endpoint.clone()),
            ("CLOUDSDK_API_ENDPOINT_OVERRIDES_APIGATEWAY", self.endpoint.clone()),
            ("CLOUDSDK_API_ENDPOINT_OVERRIDES_APIKEYS", self.endpoint.clone()),
            ("CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE", self.endpoint.clone()),
            ("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM", self.endpoint.clone()),
            ("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS", self.endpoint.clone()),
            ("CLOUDSDK_API_ENDPOINT_OVERRIDES_STS", self.endpoint.clone()),
            ("CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER", self.endpoint.clone()),
            ("CLOUDSDK_AUTH_ACCESS_TOKEN", self.access_token.clone()),
            ("CLOUDSDK_CORE_PROJECT", PROJECT.to_owned()),
        ] {
            command.env(name, value);
        }
        command.envs(QUIET_ENV);
        command
    }

    /// Runs gcloud to completion (or kills it after [`COMMAND_TIMEOUT`]), off the async runtime.
    pub async fn run_with_input(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Run, String> {
        let command = self.command(args);
        let stdin = stdin.map(<[u8]>::to_vec);
        let dir = self.dir().to_path_buf();
        let label = args.join(" ");
        tokio::task::spawn_blocking(move || run_bounded(command, stdin, &dir))
            .await
            .map_err(|e| format!("gcloud {label}: {e}"))?
            .map_err(|e| format!("gcloud {label}: {e}"))
    }
}

/// Output goes to files, so a chatty command never blocks on a full pipe.
fn run_bounded(mut command: Command, stdin: Option<Vec<u8>>, dir: &Path) -> Result<Run, String> {
    let stdout_path = dir.join("stdout");
    let stderr_path = dir.join("stderr");
    let stdout = File::create(&stdout_path).map_err(|e| e.to_string())?;
    let stderr = File::create(&stderr_path).map_err(|e| e.to_string())?;
    command.stdout(stdout).stderr(stderr);
    command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = command.spawn().map_err(|e| format!("cannot start gcloud: {e}"))?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(&data).map_err(|e| format!("writing stdin: {e}"))?;
    }
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if started.elapsed() > COMMAND_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {COMMAND_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |path: &PathBuf| std::fs::read_to_string(path).map_err(|e| e.to_string());
    Ok(Run { status, stdout: read(&stdout_path)?, stderr: read(&stderr_path)? })
}

/// A fresh GCP emulator on 127.0.0.1 and gcloud pointed at it.
pub async fn start() -> Result<(GcpEmulator, Listener, Gcloud), String> {
    let emulator = GcpEmulator::new();
    let addr = "127.0.0.1:0".parse().map_err(|e| format!("address: {e}"))?;
    let listener = emulator.listen(addr).await.map_err(|e| format!("listen: {e}"))?;
    let gcloud = Gcloud::new(&listener.url())?;
    Ok((emulator, listener, gcloud))
}
