//! `deploy/install.yaml` is the chart rendered with its default values by `deploy/render.sh`
//! (no drift), and is a valid manifest: the restricted Namespace first, then the CRDs and objects.

use super::tools::{assert_valid_kubernetes, documents, helm, text};
use super::{NAMESPACE, ROOT};
use std::path::Path;
use std::process::Command;

#[test]
fn the_install_manifest_is_the_chart_rendered_with_default_values() {
    let output = Command::new("bash")
        .arg(Path::new(ROOT).join("deploy/render.sh"))
        .env("HELM", helm())
        .output()
        .unwrap_or_else(|e| panic!("running deploy/render.sh: {e}"));
    assert!(output.status.success(), "deploy/render.sh failed:\n{}", text(&output));
    let fresh = String::from_utf8_lossy(&output.stdout);
    let checked_in = std::fs::read_to_string(Path::new(ROOT).join("deploy/install.yaml")).unwrap_or_default();
    // Compared as objects, not text: a helm release that only lays out its output differently
    // (blank lines, separators) is no drift; any changed object, field or value is.
    assert!(
        documents(&fresh) == documents(&checked_in),
        "deploy/install.yaml has drifted from the chart; regenerate it with `deploy/render.sh > deploy/install.yaml`"
    );
    assert_valid_kubernetes("install", &checked_in);
    let docs = documents(&checked_in);
    assert_eq!(docs[0]["kind"], "Namespace");
    assert_eq!(docs[0]["metadata"]["name"], NAMESPACE);
    assert_eq!(docs[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted");
    let crds = docs.iter().filter(|d| d["kind"] == "CustomResourceDefinition").count();
    assert_eq!(crds, 3, "install.yaml carries the three CRDs");
}
