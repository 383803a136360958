//! `testbed dev` started as a person starts it, the commands it prints, and shell
//! commands run with bash as a person pastes them (with a deadline, and nothing left running).

use super::gcloud::QUIET_ENV;
use super::process::KilledOnDrop;
use super::testbed_bin;
use super::wait::wait_for;
use secure_api_operator::api::conditions::{Condition, types};
use secure_api_testbed::dev::playground::{Playground, PlaygroundOptions};
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The playground's process and what it printed up to its last instruction.
pub struct Dev {
    pub process: KilledOnDrop,
    pub printed: String,
}

/// Starts `testbed dev --dir DIR` and waits (up to `deadline`) until it has printed
/// its instructions, ending with `Stop with Ctrl-C.`.
pub async fn start_dev(dir: &Path, deadline: Duration) -> Dev {
    let child = Command::new(testbed_bin())
        .args(["dev", "--dir", &dir.to_string_lossy()])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning dev: {e}"));
    let mut process = KilledOnDrop(child);
    let (lines, received) = mpsc::channel();
    let stdout = process.stdout.take().unwrap_or_else(|| panic!("no stdout pipe"));
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let mut printed = String::new();
    wait_for("the playground's instructions", deadline, || {
        printed.extend(received.try_iter().map(|line| line + "\n"));
        let done = printed.contains("Stop with Ctrl-C.");
        async move { done.then_some(()) }
    })
    .await;
    Dev { process, printed }
}

/// The lines of the printed block that starts at `from` and ends before `to`, trimmed.
pub fn block(text: &str, from: &str, to: &str) -> String {
    let start = text.find(from).unwrap_or_else(|| panic!("no {from:?} in:\n{text}"));
    let end = text[start..].find(to).map(|i| start + i).unwrap_or_else(|| panic!("no {to:?} in:\n{text}"));
    text[start..end].lines().map(str::trim).collect::<Vec<_>>().join("\n")
}

/// How long pasted commands may run.
const PASTE_DEADLINE: Duration = Duration::from_secs(300);

/// Runs commands with bash in the repository, as a person would paste them there, and returns
/// what they printed; fails the test if they fail (see [`paste_in`]).
pub fn paste(script: &str, home: &Path) -> String {
    paste_in(script, home, Path::new(env!("CARGO_MANIFEST_DIR")), PASTE_DEADLINE)
}

/// Runs `script` with `bash -euo pipefail` in `dir`, with a clean environment (`PATH`, `HOME`
/// and `TMPDIR` = `home`, gcloud's quiet settings: no proxies, no user configuration, no
/// metadata-server probe) and no input. Fails the test, with the script and what it printed, if
/// it fails or outlives `deadline`; its whole process group is killed then, and if the test
/// fails while it runs. Returns its stdout.
pub fn paste_in(script: &str, home: &Path, dir: &Path, deadline: Duration) -> String {
    use std::os::unix::process::CommandExt;
    let mut stdout = tempfile::tempfile().unwrap_or_else(|e| panic!("stdout file: {e}"));
    let mut stderr = tempfile::tempfile().unwrap_or_else(|e| panic!("stderr file: {e}"));
    let clone = |file: &std::fs::File| file.try_clone().unwrap_or_else(|e| panic!("output file: {e}"));
    let child = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("TMPDIR", home)
        .envs(QUIET_ENV)
        .stdin(Stdio::null())
        .stdout(clone(&stdout))
        .stderr(clone(&stderr))
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("bash: {e}"));
    let mut group = GroupKilledOnDrop { leader: child, exited: false };
    let give_up = Instant::now() + deadline;
    let status: Option<ExitStatus> = loop {
        if let Some(status) = group.leader.try_wait().unwrap_or_else(|e| panic!("waiting for bash: {e}")) {
            group.exited = true;
            break Some(status);
        }
        if Instant::now() > give_up {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(group);
    let read = |file: &mut std::fs::File| {
        let mut text = String::new();
        let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
        text
    };
    let (out, err) = (read(&mut stdout), read(&mut stderr));
    let failure = match status {
        Some(status) if status.success() => return out,
        Some(status) => format!("failed ({status})"),
        None => format!("did not finish within {deadline:?}"),
    };
    panic!("the pasted commands {failure}:\n{script}\n--- stdout\n{out}\n--- stderr\n{err}")
}

/// A child leading its own process group: dropped before it exited (a timeout, a failed test),
/// it is killed with its group (bash and whatever it started), so nothing outlives the test.
/// Once it has exited and been reaped its group id is no longer ours to signal.
struct GroupKilledOnDrop {
    leader: Child,
    exited: bool,
}

impl Drop for GroupKilledOnDrop {
    fn drop(&mut self) {
        if self.exited {
            return;
        }
        if let Ok(pid) = libc::pid_t::try_from(self.leader.id()) {
            // SAFETY: signalling the process group of our own child, which has not been reaped,
            // has no memory-safety preconditions.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        let _ = self.leader.wait();
    }
}

/// The playground in this process (emulators and operator), its files in `dir`.
pub async fn in_process(dir: &Path, notifications: bool) -> Playground {
    let options = PlaygroundOptions {
        kube_listen: ([127, 0, 0, 1], 0).into(),
        gcp_listen: ([127, 0, 0, 1], 0).into(),
        dir: dir.to_path_buf(),
        gcp_project: super::PROJECT.into(),
        notifications,
        prometheus_allowed_url_prefixes: Vec::new(),
    };
    Playground::start(&options).await.unwrap_or_else(|e| panic!("the playground did not start: {e}"))
}

/// A client of the playground whose kubeconfig the printed `exports` name.
pub async fn client_of(exports: &str) -> kube::Client {
    let kubeconfig = exports.lines().next().and_then(|l| l.strip_prefix("export KUBECONFIG=")).unwrap_or_default();
    let config = kube::config::Kubeconfig::read_from(kubeconfig).unwrap_or_else(|e| panic!("kubeconfig: {e}"));
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("config: {e}"));
    kube::Client::try_from(config).unwrap_or_else(|e| panic!("client: {e}"))
}

/// Whether the conditions say Ready=True.
pub fn ready(conditions: &[Condition]) -> bool {
    conditions.iter().any(|c| c.is_true(types::READY))
}
