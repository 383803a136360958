//! The playground answers what people ask kubectl beyond get and apply: `kubectl explain` on the
//! custom resources (OpenAPI v3 schemas).

use crate::support::kubectl::Kubectl;
use secure_api_operator::dev::playground::{Playground, PlaygroundOptions};

async fn start(dir: &std::path::Path) -> Playground {
    let options = PlaygroundOptions {
        kube_listen: ([127, 0, 0, 1], 0).into(),
        gcp_listen: ([127, 0, 0, 1], 0).into(),
        dir: dir.to_path_buf(),
        gcp_project: "demo-project".into(),
        notifications: false,
    };
    Playground::start(&options).await.unwrap_or_else(|e| panic!("the playground did not start: {e}"))
}

/// Runs blocking kubectl steps off the runtime, which serves the playground meanwhile.
async fn blocking<T: Send + 'static>(steps: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(steps).await.unwrap_or_else(|e| panic!("kubectl steps: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_describes_the_custom_resources_fields() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let playground = start(dir.path()).await;
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
