//! Shared helpers of the integration tests, one submodule per job. Test modules import helpers
//! from here only, never from one another.

pub mod cluster;
pub mod conditions;
pub mod events;
pub mod gateway_api;
pub mod gcloud;
pub mod gcp_stub;
pub mod http;
pub mod kubectl;
pub mod logs;
pub mod operator;
pub mod playground;
pub mod process;
pub mod prometheus;
pub mod pubsub_emulator;
pub mod wait;

/// The GCP project of the tests: the in-process operator's default project and gcloud's
/// `core/project`.
pub const PROJECT: &str = "demo-project";

/// GKE's federated principal of ServiceAccount `ksa` of `namespace` in [`PROJECT`], as the GCP
/// emulator's STS issues it and IAM bindings name it.
pub fn principal(namespace: &str, ksa: &str) -> String {
    let number = secure_api_testbed::emulator::gcp::GcpEmulator::project_number(PROJECT);
    format!(
        "principal://iam.googleapis.com/projects/{number}/locations/global/workloadIdentityPools/{PROJECT}.svc.id.goog/subject/ns/{namespace}/sa/{ksa}"
    )
}

/// Path of the operator binary under test.
pub fn operator_bin() -> &'static str {
    env!("CARGO_BIN_EXE_secure-api-operator")
}

/// Path of the test bed's binary (`dev`, `emulator`): the root package's example `testbed`, which
/// `cargo test` and `cargo nextest` build with the tests, beside the operator binary's directory.
pub fn testbed_bin() -> std::path::PathBuf {
    let operator = std::path::Path::new(operator_bin());
    let binary = operator.with_file_name("examples").join(format!("testbed{}", std::env::consts::EXE_SUFFIX));
    assert!(binary.is_file(), "{} is missing: build it with `cargo build --example testbed`", binary.display());
    binary
}
