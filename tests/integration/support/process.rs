//! Child processes of the binary under test: signalling them, waiting for them to exit, their
//! stderr.

use super::wait::wait_for;
use super::{operator_bin, testbed_bin};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// `testbed emulator`, writing its kubeconfig to `kubeconfig` and serving the GCP
/// emulators on `gcp`; stderr piped; killed if the test fails first.
pub fn spawn_emulator(kubeconfig: &Path, gcp: SocketAddr) -> KilledOnDrop {
    let child = Command::new(testbed_bin())
        .args(["emulator", "--kube-listen", "127.0.0.1:0", "--kubeconfig-out", &kubeconfig.to_string_lossy()])
        .args(["--gcp-listen", &gcp.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning emulator: {e}"));
    KilledOnDrop(child)
}

/// `secure-api-operator run` with `args`, logging at its default level to a piped stderr (read it
/// with [`stderr_of`] once it has exited); killed if the test fails first.
pub fn spawn_run(args: &[&str]) -> KilledOnDrop {
    let child = Command::new(operator_bin())
        .arg("run")
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning run: {e}"));
    KilledOnDrop(child)
}

/// A child process that is killed when dropped: a test that fails midway leaves none behind.
pub struct KilledOnDrop(pub Child);

impl std::ops::Deref for KilledOnDrop {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for KilledOnDrop {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends SIGTERM, as Kubernetes does on pod termination.
pub fn terminate(child: &Child) {
    let pid = libc::pid_t::try_from(child.id()).unwrap_or_else(|e| panic!("pid: {e}"));
    // SAFETY: sending a signal to our own child process has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "sending SIGTERM failed");
}

/// The child's exit status, once it has exited (it must within `deadline`).
pub async fn exit_within(child: &mut Child, deadline: Duration) -> ExitStatus {
    wait_for("the process to exit", deadline, || {
        let status = child.try_wait().ok().flatten();
        async move { status }
    })
    .await
}

/// Everything the child wrote to its piped stderr (read once it has exited).
pub fn stderr_of(child: &mut Child) -> String {
    use std::io::Read;
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut text);
    }
    text
}

/// A client for the kubeconfig a spawned emulator writes to `path`, once the file is there.
pub async fn client_for(path: &Path, deadline: Duration) -> kube::Client {
    let text = wait_for("the kubeconfig", deadline, || {
        let text = std::fs::read_to_string(path).ok();
        async move { text }
    })
    .await;
    let parsed = kube::config::Kubeconfig::from_yaml(&text).unwrap_or_else(|e| panic!("kubeconfig: {e}"));
    let config = kube::Config::from_custom_kubeconfig(parsed, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("config: {e}"));
    kube::Client::try_from(config).unwrap_or_else(|e| panic!("client: {e}"))
}
