//! The real kubectl on the machine, driven against the emulator's TCP listener (or the real
//! cluster of `SECUREAPI_E2E_KUBECONFIG`): every command the README and docs show must work.

use crate::support::kubectl::{Kubectl, serve_emulator};
use crate::support::wait::{DEADLINE, wait_for};
use secure_api_testbed::emulator::kube::KubeEmulator;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path.to_string_lossy().into_owned()
}

const SECRET_REF: &str = "apiVersion: secureapi.dev/v1alpha1
kind: SecretRef
metadata:
  name: db
spec:
  secret: api-config-db
  format: json
";

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: nginx:1.27
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_manages_crds_custom_resources_and_deployments_with_emulator_hooks() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (emulator, _listener, kubeconfig, namespace) = match std::env::var("SECUREAPI_E2E_KUBECONFIG") {
        Ok(path) if !path.is_empty() => (None, None, PathBuf::from(path), format!("kubectl-{}", std::process::id())),
        _ => {
            let emulator = KubeEmulator::new();
            let (kubeconfig, listener) = serve_emulator(&emulator, dir.path()).await;
            (Some(emulator), Some(listener), kubeconfig, "default".to_string())
        }
    };
    let kubectl = Kubectl { kubeconfig, namespace: namespace.clone() };
    let watching = emulator.clone();
    let blocking = move || {
        if namespace != "default" {
            kubectl.ok(&["create", "namespace", &namespace]);
        }
        let crds = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/");
        kubectl.ok(&["apply", "--server-side", "-f", crds]);
        kubectl.ok(&["wait", "--for=condition=Established", "crd/secretrefs.secureapi.dev", "--timeout=20s"]);
        // The README's form: the CRDs piped from the binary.
        let printed = Command::new(env!("CARGO_BIN_EXE_secure-api-operator")).arg("crds").output();
        let printed = printed.unwrap_or_else(|e| panic!("crds: {e}")).stdout;
        let mut apply = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubectl.kubeconfig)
            .args(["apply", "--server-side", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("kubectl apply -f -: {e}"));
        if let Some(mut stdin) = apply.stdin.take() {
            std::io::Write::write_all(&mut stdin, &printed).unwrap_or_else(|e| panic!("piping the CRDs: {e}"));
        }
        let applied = apply.wait_with_output().unwrap_or_else(|e| panic!("kubectl apply -f -: {e}"));
        assert!(
            applied.status.success()
                && String::from_utf8_lossy(&applied.stdout).matches("serverside-applied").count() == 3
        );
        let crds = kubectl.ok(&[
            "get",
            "crd",
            "secretrefs.secureapi.dev",
            "secureapiservices.secureapi.dev",
            "gatewayconfigs.secureapi.dev",
        ]);
        assert_eq!(crds.lines().count(), 4, "{crds}");

        let secret_ref = write(dir.path(), "secretref.yaml", SECRET_REF);
        let deployment = write(dir.path(), "deployment.yaml", DEPLOYMENT);
        assert!(
            kubectl
                .ok(&["apply", "--server-side", "-f", &secret_ref])
                .contains("secretref.secureapi.dev/db serverside-applied")
        );
        assert!(
            kubectl
                .ok(&["apply", "--server-side", "-f", &deployment])
                .contains("deployment.apps/web serverside-applied")
        );

        let table = kubectl.ok(&["get", "secretrefs"]);
        let header: Vec<&str> = table.lines().next().unwrap_or_default().split_whitespace().collect();
        assert_eq!(header, ["NAME", "READY", "REASON", "VERSION", "AGE"], "{table}");
        assert!(kubectl.ok(&["get", "secureapi"]).contains("secretref.secureapi.dev/db"));

        let yaml = kubectl.ok(&["get", "sref", "db", "-o", "yaml"]);
        assert!(yaml.contains("refreshInterval: 1h"), "defaults are applied:\n{yaml}");

        kubectl.ok(&["patch", "sref", "db", "--type=merge", "-p", r#"{"spec":{"version":"3"}}"#]);
        assert_eq!(kubectl.ok(&["get", "sref", "db", "-o", "jsonpath={.spec.version}"]), "3");
        kubectl.ok(&["label", "sref", "db", "tier=backend"]);
        assert!(
            kubectl.ok(&["get", "sref", "-l", "tier=backend", "-o", "name"]).contains("secretref.secureapi.dev/db")
        );

        // A watch, bounded by its request timeout, sees a change made while it runs. The emulator's
        // simulated controllers hold watches of their own, so kubectl's is one more than before.
        let watches_before = watching.as_ref().map_or(0, |emulator| emulator.open_watches());
        let watch = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubectl.kubeconfig)
            .args([
                "--namespace",
                &kubectl.namespace,
                "get",
                "deployments",
                "--watch",
                "-o",
                "name",
                "--request-timeout=3s",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("kubectl watch: {e}"));
        if let Some(emulator) = &watching {
            let give_up = std::time::Instant::now() + DEADLINE;
            while emulator.open_watches() <= watches_before {
                assert!(std::time::Instant::now() < give_up, "kubectl's watch never opened");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        kubectl.ok(&["label", "deployment", "web", "watched=yes"]);
        let watched = watch.wait_with_output().unwrap_or_else(|e| panic!("kubectl watch: {e}"));
        assert!(watched.status.success(), "{}", String::from_utf8_lossy(&watched.stderr));
        let lines = String::from_utf8_lossy(&watched.stdout).lines().filter(|l| *l == "deployment.apps/web").count();
        let expected = if watching.is_some() { 2 } else { 1 };
        assert!(lines >= expected, "the watch printed {lines} lines for web (list, then the label change)");

        kubectl.ok(&["delete", "deployment", "web"]);
        kubectl.ok(&[
            "patch",
            "sref",
            "db",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":["secureapi.dev/cleanup"]}}"#,
        ]);
        kubectl.ok(&["delete", "sref", "db", "--wait=false"]);
        let deleting = kubectl.ok(&["get", "sref", "db", "-o", "jsonpath={.metadata.deletionTimestamp}"]);
        assert!(!deleting.is_empty(), "the finalizer holds the object");
        kubectl.ok(&["patch", "sref", "db", "--type=json", "-p", r#"[{"op":"remove","path":"/metadata/finalizers"}]"#]);
        kubectl
    };
    let kubectl = tokio::task::spawn_blocking(blocking).await.unwrap_or_else(|e| panic!("kubectl steps: {e}"));
    wait_for("the SecretRef to go", DEADLINE, || {
        let gone = !String::from_utf8_lossy(&kubectl.run(&["get", "sref", "-o", "name"]).stdout).contains("db");
        async move { gone.then_some(()) }
    })
    .await;
}
