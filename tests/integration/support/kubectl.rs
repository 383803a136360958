//! The real kubectl on the machine, for one kubeconfig and namespace (shared by the kubectl-driven
//! test modules).

use secure_api_testbed::emulator::kube::KubeEmulator;
use secure_api_testbed::listener::Listener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Serves `emulator` on 127.0.0.1 and writes a kubeconfig for it to `dir`/kubeconfig: kubectl
/// reaches the emulator there while the returned listener lives.
pub async fn serve_emulator(emulator: &KubeEmulator, dir: &Path) -> (PathBuf, Listener) {
    let listener = emulator.listen(([127, 0, 0, 1], 0).into()).await.unwrap_or_else(|e| panic!("listen: {e}"));
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, KubeEmulator::kubeconfig(&listener.url())).unwrap_or_else(|e| panic!("{e}"));
    (kubeconfig, listener)
}

/// The real kubectl, for one kubeconfig and namespace.
pub struct Kubectl {
    pub kubeconfig: PathBuf,
    pub namespace: String,
}

impl Kubectl {
    pub fn new(kubeconfig: impl Into<PathBuf>, namespace: &str) -> Self {
        Self { kubeconfig: kubeconfig.into(), namespace: namespace.to_owned() }
    }

    /// Runs kubectl (bounded by its request timeout) and returns what it did, success or not.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--namespace", &self.namespace, "--request-timeout=20s"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("kubectl is required on PATH for this test: {e}"))
    }

    /// Runs kubectl and returns stdout, failing the test with kubectl's stderr on error.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}
