//! `secure-api-operator render`: the seed's GatewayConfig renders to the checked-in golden
//! document, which a real Swagger 2.0 validator accepts; `-f` takes a multi-document manifest and
//! picks its GatewayConfig, and every failure is one line.

use crate::support::operator_bin;
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BACKEND: [&str; 2] = ["--backend", "secure-api=https://secure-api.example.com"];

fn render(args: &[&str]) -> Output {
    Command::new(operator_bin()).arg("render").args(args).output().unwrap_or_else(|e| panic!("render: {e}"))
}

fn golden() -> String {
    std::fs::read_to_string(format!("{ROOT}/tests/golden/seed-gateway.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

/// The one line a failed render prints.
fn error_line(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success() && output.stdout.is_empty(), "render should fail: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line on stderr: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

#[test]
fn the_seed_gatewayconfig_renders_to_the_golden_document() {
    let output = Command::new(operator_bin())
        .args(["render", "-f", &format!("{ROOT}/tests/fixtures/seed-gateway-config.yaml")])
        .args(["--backend", "secure-api=https://secure-api.example.com"])
        .output()
        .unwrap_or_else(|e| panic!("render: {e}"));
    assert!(output.status.success(), "render failed: {}", String::from_utf8_lossy(&output.stderr));
    let golden =
        std::fs::read_to_string(format!("{ROOT}/tests/golden/seed-gateway.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        String::from_utf8_lossy(&output.stdout) == golden,
        "render output differs from tests/golden/seed-gateway.yaml"
    );
}

/// The example's manifest as a user has it (a ServiceAccount first, no backend URL): the document
/// is printed, with a placeholder address that never resolves, and a note says how to give one.
#[test]
fn render_of_the_examples_manifest_prints_the_document_with_a_placeholder_backend() {
    let output = Command::new(operator_bin())
        .args(["render", "-f", &format!("{ROOT}/deploy/examples/gateway.yaml")])
        .output()
        .unwrap_or_else(|e| panic!("render: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let document = String::from_utf8_lossy(&output.stdout);
    assert!(document.contains("swagger:"), "{document}");
    assert!(document.contains("https://secure-api.backend.invalid"), "{document}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--backend secure-api=URL"), "{stderr}");
}

#[test]
fn the_golden_document_passes_a_swagger_2_validator() {
    // openapi-spec-validator (PyPI), installed by .ci/run.
    let output = Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--schema", "2.0", &format!("{ROOT}/tests/golden/seed-gateway.yaml")])
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(
        output.status.success(),
        "the Swagger 2.0 validator rejected the document (is openapi-spec-validator installed?): {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn render_picks_the_gateway_config_out_of_the_examples_manifest() {
    // deploy/examples/gateway.yaml starts with the gateway's ServiceAccount.
    let output = render(&[&["-f", &format!("{ROOT}/deploy/examples/gateway.yaml")][..], &BACKEND].concat());
    assert!(output.status.success(), "render failed: {}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout) == golden(), "differs from tests/golden/seed-gateway.yaml");
}

#[test]
fn several_gateway_configs_need_name_and_the_error_names_them() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let seed = std::fs::read_to_string(format!("{ROOT}/tests/fixtures/seed-gateway-config.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let other = seed.replace("name: secure-api\n", "name: internal\n");
    let file = dir.path().join("gateways.yaml");
    std::fs::write(&file, format!("{seed}---\n{other}")).unwrap_or_else(|e| panic!("{e}"));
    let file = file.to_string_lossy().into_owned();

    let ambiguous = error_line(&render(&[&["-f", &file][..], &BACKEND].concat()));
    assert!(
        ambiguous.contains("2 GatewayConfigs (secure-api, internal)") && ambiguous.contains("--name"),
        "{ambiguous}"
    );
    let picked = render(&[&["-f", &file, "--name", "secure-api"][..], &BACKEND].concat());
    assert!(String::from_utf8_lossy(&picked.stdout) == golden(), "{}", String::from_utf8_lossy(&picked.stderr));
    let unknown = error_line(&render(&[&["-f", &file, "--name", "nope"][..], &BACKEND].concat()));
    assert!(unknown.contains("no GatewayConfig named \"nope\"; it holds secure-api, internal"), "{unknown}");
}

#[test]
fn a_broken_file_fails_with_one_line_that_says_where() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let file = dir.path().join("broken.yaml");
    let text = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a}\n---\napiVersion: secureapi.dev/v1alpha1\n\
                kind: GatewayConfig\nmetadata: {name: gw}\nspec:\n  routes: {path: /health}\n";
    std::fs::write(&file, text).unwrap_or_else(|e| panic!("{e}"));
    let line = error_line(&render(&["-f", &file.to_string_lossy()]));
    assert!(line.contains("broken.yaml: GatewayConfig gw: ") && line.contains("line 9"), "{line}");

    std::fs::write(&file, "kind: [GatewayConfig\n").unwrap_or_else(|e| panic!("{e}"));
    let line = error_line(&render(&["-f", &file.to_string_lossy()]));
    assert!(line.contains("broken.yaml: ") && line.contains("line 1"), "{line}");
}
