//! The operator's alerts and dashboard: the chart's PrometheusRule takes its thresholds from the
//! values and is valid for the PrometheusRule CRD's schema; the plain rules file
//! `monitoring/secure-api-operator.rules.yaml` is that rule rendered with the defaults; the real
//! `promtool` checks the rules and runs their unit tests (each alert fires and does not); every
//! metric the alerts and the dashboard read is one the operator exports.
//!
//! `promtool` comes from `SECUREAPI_PROMTOOL` or PATH (Debian package `prometheus`, which `.ci/run`
//! installs); without it the promtool test skips with one message.

use super::combinations::EVERYTHING_ON;
use super::objects::find;
use super::tools::{on_path, render, text};
use super::{RELEASE, ROOT};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use secure_api_operator::gcp::CallObserver;
use secure_api_operator::metrics::{Controller, Metrics};
use secure_api_testbed::emulator::kube::KubeEmulator;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const RULES: &str = "monitoring/secure-api-operator.rules.yaml";
const RULE_TESTS: &str = "monitoring/secure-api-operator.rules.test.yaml";
const CRD: &str = "tests/integration/fixtures/prometheusrules.monitoring.coreos.com.yaml";
const CUSTOM: &str = "
shards: 3
prometheusRule:
  enabled: true
  selector: namespace=\"ops\", job=~\"secure-api.*\"
  secretAccess: {threshold: 250, minutes: 10}
  secretRefNotReady: {minutes: 30}
  rotationNotReflected: {minutes: 20}
  notificationsFailing: {minutes: 7}
  noLeader: {minutes: 2}
";

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn prometheus_rule(values: &str) -> Value {
    find(&render(values), "PrometheusRule", RELEASE).clone()
}

/// The rules of the rendered PrometheusRule by alert name: (expr, for).
fn alerts(rule: &Value) -> Vec<(String, String, String)> {
    let rules = rule["spec"]["groups"].as_array().into_iter().flatten().flat_map(|g| g["rules"].as_array());
    rules
        .flatten()
        .map(|r| {
            let field = |key: &str| r[key].as_str().unwrap_or_default().trim().to_owned();
            (field("alert"), field("expr"), field("for"))
        })
        .collect()
}

#[test]
fn the_plain_rules_file_is_the_chart_rule_rendered_with_defaults() {
    let rule = prometheus_rule("prometheusRule:\n  enabled: true\n");
    let plain: Value = serde_saphyr::from_str(&read(RULES)).unwrap_or_else(|e| panic!("{RULES} does not parse: {e}"));
    assert!(
        plain == rule["spec"],
        "{RULES} differs from the chart's PrometheusRule; regenerate it with \
         `monitoring/render.sh > {RULES}`"
    );
    let names: Vec<String> = alerts(&rule).into_iter().map(|(name, ..)| name).collect();
    assert_eq!(
        names,
        [
            "SecureApiSecretAccessRateHigh",
            "SecureApiSecretRefNotReady",
            "SecureApiRotationNotReflected",
            "SecureApiNotificationsFailing",
            "SecureApiNoLeader"
        ]
    );
}

#[test]
fn every_alert_threshold_is_a_chart_value() {
    let rule = prometheus_rule(CUSTOM);
    let selector = r#"namespace="ops", job=~"secure-api.*""#;
    let expected = [
        (
            "SecureApiSecretAccessRateHigh",
            format!(
                r#"sum(increase(secureapi_gcp_requests_total{{service="secretmanager",method="secretmanager.versions.access",{selector}}}[10m])) > 250"#
            ),
            "",
        ),
        (
            "SecureApiSecretRefNotReady",
            format!(r#"sum by (reason) (secureapi_objects{{kind="SecretRef",ready="False",{selector}}}) > 0"#),
            "30m",
        ),
        ("SecureApiRotationNotReflected", format!("max(secureapi_rotation_pending_seconds{{{selector}}}) > 1200"), ""),
        (
            "SecureApiNotificationsFailing",
            format!("sum(rate(secureapi_pubsub_pull_errors_total{{{selector}}}[5m])) > 0"),
            "7m",
        ),
        (
            "SecureApiNoLeader",
            format!("(sum(secureapi_leader{{{selector}}}) < 3) or absent(secureapi_leader{{{selector}}})"),
            "2m",
        ),
    ];
    let expected: Vec<(String, String, String)> =
        expected.into_iter().map(|(a, e, f)| (a.to_owned(), e, f.to_owned())).collect();
    assert_eq!(alerts(&rule), expected);
}

/// `promtool`: `SECUREAPI_PROMTOOL`, else PATH.
fn promtool() -> Option<PathBuf> {
    std::env::var_os("SECUREAPI_PROMTOOL").filter(|p| !p.is_empty()).map(PathBuf::from).or_else(|| on_path("promtool"))
}

fn run_promtool(promtool: &Path, args: &[&str]) {
    let output = Command::new(promtool)
        .args(args)
        .current_dir(ROOT)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", promtool.display()));
    assert!(output.status.success(), "promtool {} failed:\n{}", args.join(" "), text(&output));
}

#[test]
fn promtool_accepts_the_rules_and_their_unit_tests_pass() {
    let Some(promtool) = promtool() else {
        eprintln!(
            "skipped: promtool is not on PATH (Debian: `apt-get install prometheus`, as .ci/run does; \
             or set SECUREAPI_PROMTOOL)"
        );
        return;
    };
    run_promtool(&promtool, &["check", "rules", RULES]);
    run_promtool(&promtool, &["test", "rules", RULE_TESTS]);
    // Other thresholds and a selector render to rules promtool accepts too.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let custom = dir.path().join("custom.rules.yaml");
    let groups = serde_json::to_string(&prometheus_rule(CUSTOM)["spec"]).unwrap_or_default();
    std::fs::write(&custom, groups).unwrap_or_else(|e| panic!("writing {}: {e}", custom.display()));
    run_promtool(&promtool, &["check", "rules", &custom.to_string_lossy()]);
}

/// Metric names (`secureapi_…`) that PromQL `text` reads, without the `_total`/`_bucket` suffixes
/// the exposition adds.
fn metrics_read(text: &str) -> BTreeSet<String> {
    let names = regex::Regex::new(r"secureapi_[a-z_]+").unwrap_or_else(|e| panic!("{e}"));
    names
        .find_iter(text)
        .map(|m| {
            let name = m.as_str();
            let base = ["_total", "_bucket", "_count", "_sum"].iter().find_map(|s| name.strip_suffix(s));
            base.unwrap_or(name).to_owned()
        })
        .collect()
}

#[test]
fn the_alerts_and_the_dashboard_read_only_metrics_the_operator_exports() {
    // Families show once they have a series: give every labelled one a sample.
    let metrics = Metrics::new();
    metrics.reconcile_failed(Controller::SecretRef, "permission_denied");
    metrics.pubsub_message("SECRET_VERSION_ADD", "queued");
    metrics.observe("secretmanager", "secretmanager.versions.access", "200", Duration::from_millis(1));
    let exported: BTreeSet<String> = metrics
        .encode()
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.split(' ').next().map(str::to_owned))
        .collect();
    let docs = render(EVERYTHING_ON);
    let dashboard = find(&docs, "ConfigMap", &format!("{RELEASE}-dashboard"));
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1", "the label Grafana's sidecar looks for");
    let json = dashboard["data"]["secure-api-operator.json"].as_str().unwrap_or_default();
    let parsed: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("the dashboard is no JSON: {e}"));
    let exprs: Vec<&str> = parsed["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str())
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");
    let rule = find(&docs, "PrometheusRule", RELEASE);
    assert_eq!(rule["metadata"]["labels"]["release"], "prometheus");
    let rule_exprs: Vec<String> = alerts(rule).into_iter().map(|(_, expr, _)| expr).collect();
    let read = metrics_read(&format!("{}\n{}", exprs.join("\n"), rule_exprs.join("\n")));
    assert!(read.contains("secureapi_objects") && read.contains("secureapi_rotation_pending_seconds"), "{read:?}");
    let unknown: Vec<&String> = read.difference(&exported).collect();
    assert!(unknown.is_empty(), "read but not exported: {unknown:?} (exported: {exported:?})");
}

/// kubernetes-validate has no schema for custom resources: the PrometheusRule is applied, with
/// strict field validation, to the Kubernetes API emulator holding the Prometheus Operator's CRD.
#[tokio::test]
async fn the_prometheus_rule_is_valid_for_its_crd_schema() {
    let emulator = KubeEmulator::new();
    let client = emulator.client();
    let crd: CustomResourceDefinition =
        serde_saphyr::from_str(&read(CRD)).unwrap_or_else(|e| panic!("{CRD} does not parse: {e}"));
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply("chart-tests").force().validation_strict();
    let name = "prometheusrules.monitoring.coreos.com";
    crds.patch(name, &params, &Patch::Apply(&crd)).await.unwrap_or_else(|e| panic!("installing the CRD: {e}"));
    crate::support::wait::wait_for("the PrometheusRule CRD Established", crate::support::wait::DEADLINE, || async {
        let conditions = crds.get(name).await.ok()?.status?.conditions?;
        conditions.iter().any(|c| c.type_ == "Established" && c.status == "True").then_some(())
    })
    .await;
    let gvk = GroupVersionKind::gvk("monitoring.coreos.com", "v1", "PrometheusRule");
    let rules: Api<DynamicObject> = Api::namespaced_with(client, "default", &ApiResource::from_gvk(&gvk));
    let apply = |object: &Value| {
        let rules = rules.clone();
        let params = params.clone();
        let mut object = object.clone();
        object["metadata"]["namespace"] = json!("default");
        async move { rules.patch(RELEASE, &params, &Patch::Apply(&object)).await }
    };
    for values in [EVERYTHING_ON, CUSTOM] {
        let rule = prometheus_rule(values);
        apply(&rule).await.unwrap_or_else(|e| panic!("the chart's PrometheusRule is refused by its CRD: {e}"));
    }
    // The schema is enforced: a duration Prometheus cannot read and an unknown field are refused.
    let mut bad_duration = prometheus_rule(CUSTOM);
    bad_duration["spec"]["groups"][0]["rules"][1]["for"] = json!("30 minutes");
    let refused = apply(&bad_duration).await;
    assert!(refused.as_ref().is_err_and(|e| e.to_string().contains("for")), "{refused:?}");
    let mut unknown_field = prometheus_rule(CUSTOM);
    unknown_field["spec"]["groups"][0]["rules"][0]["severity"] = json!("warning");
    let refused = apply(&unknown_field).await;
    assert!(refused.as_ref().is_err_and(|e| e.to_string().contains("severity")), "{refused:?}");
}
