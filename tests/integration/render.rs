//! `secure-api-operator render`: the seed's GatewayConfig renders to the checked-in golden
//! document, which a real Swagger 2.0 validator accepts.

use crate::support::operator_bin;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

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

#[test]
fn render_without_a_backend_url_says_how_to_give_one() {
    let output = Command::new(operator_bin())
        .args(["render", "-f", &format!("{ROOT}/tests/fixtures/seed-gateway-config.yaml")])
        .output()
        .unwrap_or_else(|e| panic!("render: {e}"));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--backend"), "{stderr}");
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
