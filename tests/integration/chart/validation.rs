//! Every value combination passes `helm lint --strict` and renders to objects that Kubernetes'
//! schemas accept, each naming its namespace exactly when it is namespaced, each labelled.

use super::combinations::{COMBINATIONS, EVERYTHING_ON, NAMESPACED, SHARDED};
use super::tools::{assert_valid_kubernetes, documents, lint, render_text, text};

#[test]
fn helm_lint_passes_strictly() {
    for (name, values) in
        [("defaults", ""), ("everything-on", EVERYTHING_ON), ("namespaced", NAMESPACED), ("sharded", SHARDED)]
    {
        let output = lint(values);
        assert!(output.status.success(), "helm lint --strict failed with the `{name}` values:\n{}", text(&output));
    }
}

#[test]
fn every_value_combination_renders_to_valid_kubernetes_objects() {
    for (name, values) in COMBINATIONS {
        let rendered = render_text(values, &["--include-crds"]);
        assert_valid_kubernetes(name, &rendered);
        for doc in documents(&rendered) {
            let kind = doc["kind"].as_str().unwrap_or_default();
            let cluster_scoped = matches!(
                kind,
                "CustomResourceDefinition"
                    | "ClusterRole"
                    | "ClusterRoleBinding"
                    | "ValidatingAdmissionPolicy"
                    | "ValidatingAdmissionPolicyBinding"
            );
            assert_eq!(
                doc["metadata"]["namespace"].is_string(),
                !cluster_scoped,
                "`{name}`: {kind} {} must {}name its namespace (kubectl apply of deploy/install.yaml needs it)",
                doc["metadata"]["name"],
                if cluster_scoped { "not " } else { "" }
            );
            if kind != "CustomResourceDefinition" {
                let labels = &doc["metadata"]["labels"];
                for label in [
                    "app.kubernetes.io/name",
                    "app.kubernetes.io/instance",
                    "app.kubernetes.io/version",
                    "app.kubernetes.io/managed-by",
                    "helm.sh/chart",
                ] {
                    assert!(labels[label].is_string(), "`{name}`: {kind} lacks the label {label}");
                }
            }
        }
    }
}
