//! The playground answers what people ask kubectl beyond get and apply: `kubectl explain` on the
//! custom resources (OpenAPI v3 schemas), and `kubectl get events --sort-by=.lastTimestamp` over
//! the Events the operator writes through events.k8s.io/v1.

use crate::support::kubectl::Kubectl;
use crate::support::playground::in_process;
use crate::support::wait::{DEADLINE, wait_for};

/// Runs blocking kubectl steps off the runtime, which serves the playground meanwhile.
async fn blocking<T: Send + 'static>(steps: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(steps).await.unwrap_or_else(|e| panic!("kubectl steps: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_describes_the_custom_resources_fields() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let playground = in_process(dir.path(), false).await;
    let kubectl = Kubectl::new(&playground.kubeconfig, "default");
    blocking(move || {
        let field = kubectl.ok(&["explain", "secretref.spec.refreshInterval"]);
        assert!(field.contains("KIND:       SecretRef"), "{field}");
        assert!(field.contains("FIELD: refreshInterval <string>"), "{field}");
        assert!(field.contains("How often `latest` and aliases are re-checked"), "the field's description:\n{field}");

        let spec = kubectl.ok(&["explain", "secureapiservice.spec"]);
        assert!(spec.contains("FIELD: spec <Object>") && spec.contains("image\t<string> -required-"), "{spec}");

        let kind = kubectl.ok(&["explain", "gatewayconfig"]);
        assert!(kind.contains("KIND:       GatewayConfig") && kind.contains("metadata\t<ObjectMeta>"), "{kind}");
        let missing = kubectl.run(&["explain", "secretref.spec.noSuchField"]);
        let stderr = String::from_utf8_lossy(&missing.stderr);
        assert!(!missing.status.success() && stderr.contains("noSuchField"), "{stderr}");
    })
    .await;
    playground.stop().await;
}

const SECRET_REF: &str = "apiVersion: secureapi.dev/v1alpha1
kind: SecretRef
metadata:
  name: db
spec:
  secret: no-such-secret
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sorts_the_operators_events_by_last_timestamp() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let playground = in_process(dir.path(), false).await;
    let kubectl = Kubectl::new(&playground.kubeconfig, "default");
    let manifest = dir.path().join("secretref.yaml");
    std::fs::write(&manifest, SECRET_REF).unwrap_or_else(|e| panic!("{e}"));
    let kubectl = blocking(move || {
        kubectl.ok(&["apply", "--server-side", "-f", &manifest.to_string_lossy()]);
        kubectl
    })
    .await;
    // The SecretRef cannot sync (no identity for it, or no such secret): a Warning Event on it.
    wait_for("the operator's Event", DEADLINE, || {
        let names = kubectl.ok(&["get", "events", "-o", "name"]);
        async move { (!names.trim().is_empty()).then_some(()) }
    })
    .await;
    blocking(move || {
        let sorted = kubectl.run(&["get", "events", "--sort-by=.lastTimestamp"]);
        let (stdout, stderr) = (String::from_utf8_lossy(&sorted.stdout), String::from_utf8_lossy(&sorted.stderr));
        assert!(sorted.status.success() && stderr.is_empty(), "{stderr}");
        assert!(stdout.starts_with("LAST SEEN") && stdout.contains("secretref/db"), "{stdout}");

        // As on kube-apiserver: unset times are there, as null, through both Event APIs.
        let core = kubectl.ok(&["get", "events", "-o", "jsonpath={.items[0].lastTimestamp}{.items[0].source}"]);
        assert_eq!(core, "null{}", "lastTimestamp null, source empty");
        let yaml = kubectl.ok(&["get", "events.v1.events.k8s.io", "-o", "yaml"]);
        assert!(yaml.contains("deprecatedLastTimestamp: null") && yaml.contains("eventTime: \"20"), "{yaml}");
    })
    .await;
    playground.stop().await;
}
