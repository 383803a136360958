//! Child processes of the binary under test: signalling them, waiting for them to exit, their
//! stderr.

use super::wait::wait_for;
use std::process::{Child, ExitStatus};
use std::time::Duration;

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
