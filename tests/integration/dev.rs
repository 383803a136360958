//! `testbed dev`: the demo the README starts with, a failing step named as such, no
//! secret value in the report, and the playground's printed commands run as printed.

use crate::support::conditions::{self, wait_condition};
use crate::support::playground::{block, client_of, in_process, paste, ready, start_dev};
use crate::support::process::{KilledOnDrop, exit_within, terminate};
use crate::support::testbed_bin;
use crate::support::wait::wait_for;
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::WatchParams;
use secure_api_operator::api::{GatewayConfig, SecretRef, SecureApiService};
use secure_api_testbed::dev::demo::{self, DemoOptions};
use secure_api_testbed::emulator::gcp::GcpFault;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Generous: the demo takes a few seconds, a loaded CI machine more.
const DEADLINE: Duration = Duration::from_secs(120);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn dev_demo_plays_the_seed_scenario_and_exits_0() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let stdout_path = dir.path().join("stdout");
    let stdout = std::fs::File::create(&stdout_path).unwrap_or_else(|e| panic!("stdout file: {e}"));
    let child = Command::new(testbed_bin())
        .args(["dev", "--demo", "--dir", &dir.path().to_string_lossy()])
        .env_remove("RUST_LOG")
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning dev --demo: {e}"));
    let mut guard = KilledOnDrop(child);
    let status = wait_for("dev --demo to exit", DEADLINE, || {
        let status = guard.0.try_wait().ok().flatten();
        async move { status }
    })
    .await;
    let report = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    assert!(status.success(), "dev --demo exited with {status:?}:\n{report}");
    for step in 1..=17 {
        assert!(report.contains(&format!("[{step}/17] ")), "no step {step} in:\n{report}");
    }
    assert_eq!(report.matches("\n      ok (").count(), 17, "{report}");
    assert!(report.contains("All 17 steps succeeded"), "{report}");
    // The seed's validation through the gateway, and the rotations seen through it.
    for check in [
        "GET /health           without a key                200 {",
        "GET /config           without a key                401 UNAUTHENTICATED",
        "GET /config           with the API key             200 {\"cache_ttl\":3600,",
        "GET /database/status  with the API key             200 {\"host\":\"db.example.com\",\"port\":5432,",
        "GET /api/data         API key, no Bearer token     401 ",
        "GET /api/data         API key + external_api_key   200 ",
        "GET /config           with the old one (overlap)   200 ",
        "GET /config           with the old API key         400 INVALID_ARGUMENT: API key not found.",
    ] {
        assert!(report.contains(check), "no {check:?} in:\n{report}");
    }
    assert!(report.contains("Ready=False PermissionDenied"), "the SecretRef of team-b is refused:\n{report}");
    assert!(report.contains("subject/ns/team-b/sa/app"), "the denied principal is shown:\n{report}");
    assert!(report.contains("pinned to         config=1, db=2, keys=1"), "{report}");
    assert!(report.contains("API Gateway calls that changed something during the rotation: 0"), "{report}");
    assert_safe_rotation(&report);
    let log = std::fs::read_to_string(dir.path().join("operator.log")).unwrap_or_default();
    assert!(log.contains("secure-api-operator started"), "the operator's log is not in the playground's directory");
}

/// The share `role` got on the report's line that starts with `label`: `canary secure-api-… 5
/// (10%)` gives 10.
fn share(report: &str, label: &str, role: &str) -> i64 {
    let line = report.lines().map(str::trim).find(|l| l.starts_with(label));
    let line = line.unwrap_or_else(|| panic!("no {label:?} line in:\n{report}"));
    let counted = line.split(&format!(" {role} ")).nth(1).unwrap_or_else(|| panic!("no {role} on {line:?}"));
    let percent = counted.split('(').nth(1).and_then(|p| p.split('%').next()).and_then(|p| p.parse().ok());
    percent.unwrap_or_else(|| panic!("no share of {role} on {line:?}"))
}

/// The demo's safe rotation as its report shows it: the refused version's canary is aborted and
/// no request reaches it after the abort; the good one takes its share at each step, within 5
/// points of its weight, and all of the requests once promoted.
fn assert_safe_rotation(report: &str) {
    assert!(report.contains("Ready=False RolloutAborted: revision "), "no abort in:\n{report}");
    assert!(report.contains("0 of 1 pods were Ready 2s after the step began"), "the gate's reason:\n{report}");
    assert_eq!(share(report, "after the abort", "rejected"), 0, "{report}");
    assert_eq!(share(report, "after the abort", "stable"), 100, "{report}");
    assert!(report.contains("; requests it answered: 0;"), "{report}");
    let first = share(report, "step 1/2 (10%)", "canary");
    assert!((first - 10).abs() <= 5, "the canary answered {first}% during the 10% step:\n{report}");
    let second = share(report, "step 2/2 (50%)", "canary");
    assert!((second - 50).abs() <= 5, "the canary answered {second}% during the 50% step:\n{report}");
    assert_eq!(share(report, "promoted", "stable"), 100, "{report}");
}

#[tokio::test]
async fn a_failing_step_is_named_and_ends_the_demo() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let playground = in_process(dir.path(), true).await;
    let denied = GcpFault {
        method: Some("secretmanager.versions.access".into()),
        resource_contains: Some("secrets/api-config-keys/".into()),
        status: Some(403),
        ..GcpFault::default()
    };
    playground.gcp.inject_fault(denied);
    let options = DemoOptions { step_deadline: Duration::from_secs(3), ..DemoOptions::default() };
    let mut report = Vec::new();
    let failure = demo::play(&playground, &options, &mut report).await.err();
    let report = String::from_utf8_lossy(&report).into_owned();
    playground.stop().await;

    let failure = failure.unwrap_or_else(|| panic!("the demo succeeded despite the denied secret:\n{report}"));
    assert_eq!((failure.step, failure.title), (4, "Wait for the SecretRefs to sync"), "{failure}");
    assert!(failure.reason.contains("SecretRef keys: Ready=False (PermissionDenied"), "{failure}");
    assert!(report.contains("[4/17] Wait for the SecretRefs to sync\n      FAILED: SecretRef keys"), "{report}");
    assert!(!report.contains("[5/17]"), "the demo went on after a failed step:\n{report}");
}

#[tokio::test]
async fn the_demo_report_never_shows_a_secret_value() {
    const SENTINEL: &str = "sentinel-7f3a9c";
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let playground = in_process(dir.path(), true).await;
    let options = DemoOptions { payload_prefix: SENTINEL.into(), ..DemoOptions::default() };
    let mut report = Vec::new();
    let played = demo::play(&playground, &options, &mut report).await;
    let report = String::from_utf8_lossy(&report).into_owned();
    let synced: Api<Secret> = Api::namespaced(playground.client(), "default");
    let db = synced.get("db").await.unwrap_or_else(|e| panic!("the synced Secret db: {e}"));
    // Both API keys the demo used: the rotated one and its successor (deleted ones included).
    let gcp = &playground.gcp;
    let key_strings: Vec<String> =
        gcp.api_keys("demo-project").iter().filter_map(|k| gcp.key_string("demo-project", &k.id)).collect();
    let services: Api<SecureApiService> = Api::namespaced(playground.client(), "default");
    let status = services.get("secure-api").await.unwrap_or_else(|e| panic!("{e}")).status.unwrap_or_default();
    let served = playground.standin().served();
    playground.stop().await;

    assert!(played.is_ok(), "{report}");
    assert_safe_rotation(&report);
    let rejected = status.rejected_revisions.first().map(|r| r.revision.clone()).unwrap_or_default();
    assert_eq!(status.rejected_revisions.len(), 1, "one rotation was rejected: {status:?}");
    assert_eq!(served.get(&rejected), None, "no request ever reached the rejected revision: {served:?}");
    let promoted = status.revision.unwrap_or_default();
    assert!(served.get(&promoted).is_some_and(|n| *n > 0), "the promoted revision answers: {served:?}");
    let password = db.data.unwrap_or_default().get("password").map(|v| String::from_utf8_lossy(&v.0).into_owned());
    assert!(password.unwrap_or_default().starts_with(SENTINEL), "the sentinel was not planted in the payloads");
    assert!(!report.contains(SENTINEL), "a secret value is in the demo's report:\n{report}");
    assert_eq!(key_strings.len(), 2, "the demo rotates its API key once");
    for key_string in &key_strings {
        assert!(!report.contains(key_string.as_str()), "an API key string is in the demo's report:\n{report}");
    }
}

#[tokio::test]
async fn dev_prints_kubectl_and_gcloud_commands_that_work_as_printed() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let mut dev = start_dev(dir.path(), DEADLINE).await;
    let printed = std::mem::take(&mut dev.printed);

    let exports = block(&printed, "export KUBECONFIG=", "\n\n");
    let setup = block(&printed, "# the example's secrets", "# the example's validation");
    paste(&format!("{exports}\n{setup}"), dir.path());
    let validation = block(&printed, "# the example's validation", "# rotate");
    let answers = paste(&format!("{exports}\n{validation}"), dir.path());
    for answer in ["\"status\":\"healthy\"", "UNAUTHENTICATED", "\"cache_ttl\":3600", "secure-api-client-"] {
        assert!(answers.contains(answer), "no {answer:?} in what the validation printed:\n{answers}");
    }

    let client = client_of(&exports).await;
    let services: Api<SecureApiService> = Api::namespaced(client.clone(), "default");
    let gateways: Api<GatewayConfig> = Api::namespaced(client, "default");
    wait_condition(&gateways, "secure-api", conditions::ready().status("True")).await;

    let rotate = block(&printed, "# rotate", "Stop with Ctrl-C.");
    paste(&format!("{exports}\n{rotate}"), dir.path());
    wait_for("the service pinned to db version 2", DEADLINE, || async {
        let status = services.get("secure-api").await.ok()?.status?;
        (status.secret_versions.get("db").map(String::as_str) == Some("2") && ready(&status.conditions)).then_some(())
    })
    .await;

    // A watch held open (as `kubectl get -w` would) does not keep the playground running.
    let watch = services.watch(&WatchParams::default().timeout(290), "0").await.unwrap_or_else(|e| panic!("{e}"));
    let watch = tokio::spawn(watch.map_err(|e| e.to_string()).try_collect::<Vec<_>>());
    terminate(&dev.process);
    let status = exit_within(&mut dev.process, DEADLINE).await;
    assert!(status.success(), "dev exited with {status:?} after SIGTERM");
    let ended = watch.await.unwrap_or_else(|e| panic!("watch task: {e}"));
    assert!(ended.is_ok(), "the watch was cut instead of ended: {ended:?}");
}

/// The README's quick start, as written: in the playground, after its printed Google Cloud setup
/// of the example (without its `kubectl apply` of deploy/examples/), the YAML block of the README
/// applied with kubectl makes every object it declares Ready.
#[tokio::test]
async fn the_readme_quick_start_applied_as_written_becomes_ready() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let mut dev = start_dev(dir.path(), DEADLINE).await;
    let printed = std::mem::take(&mut dev.printed);
    let exports = block(&printed, "export KUBECONFIG=", "\n\n");
    let setup = block(&printed, "# the example's secrets", "# the example's validation");
    let google_side: Vec<&str> = setup.lines().filter(|line| !line.starts_with("kubectl ")).collect();
    paste(&format!("{exports}\n{}", google_side.join("\n")), dir.path());

    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap_or_else(|e| panic!("README.md: {e}"));
    let quick_start =
        readme.split("<!-- quickstart -->").nth(1).unwrap_or_else(|| panic!("no quick start in README.md"));
    let yaml = quick_start.split("```yaml\n").nth(1).and_then(|rest| rest.split("\n```").next());
    let yaml = yaml.unwrap_or_else(|| panic!("no YAML block after the quick start marker")).to_owned();
    let file = dir.path().join("quick-start.yaml");
    std::fs::write(&file, yaml + "\n").unwrap_or_else(|e| panic!("{e}"));
    paste(&format!("{exports}\nkubectl apply --server-side -f {}", file.display()), dir.path());

    let client = client_of(&exports).await;
    let secret_refs: Api<SecretRef> = Api::namespaced(client.clone(), "default");
    let services: Api<SecureApiService> = Api::namespaced(client.clone(), "default");
    let gateways: Api<GatewayConfig> = Api::namespaced(client, "default");
    wait_for("every object of the quick start Ready", DEADLINE, || async {
        let secret_ref = secret_refs.get("db").await.ok()?.status?;
        let service = services.get("secure-api").await.ok()?.status?;
        let gateway = gateways.get("secure-api").await.ok()?.status?;
        (ready(&secret_ref.conditions) && ready(&service.conditions) && ready(&gateway.conditions)).then_some(())
    })
    .await;
    terminate(&dev.process);
}
