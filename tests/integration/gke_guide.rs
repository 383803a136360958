//! docs/gke.md, run: every ```sh block of the guide, in order, with bash against the playground's
//! emulators (`testbed dev`), as a person would paste them in a clone of the
//! repository. Only blocks marked ```` ```sh gke-only ```` are skipped, and those may hold
//! nothing but GKE's own commands (creating the cluster, its credentials): the Kubernetes emulator
//! is the cluster. At the end the example is Ready, the gateway answered, and the rotation reached
//! the service.

use crate::support::PROJECT;
use crate::support::playground::{block, client_of, paste, paste_in, ready, start_dev};
use crate::support::process::{exit_within, terminate};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use secure_api_operator::api::{GatewayConfig, SecureApiService};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The playground's start; and the guide's commands, whose waits are bounded by the guide itself.
const DEADLINE: Duration = Duration::from_secs(120);
const GUIDE_DEADLINE: Duration = Duration::from_secs(600);

/// The guide's placeholder project, which a reader replaces with theirs (here the playground's).
const PLACEHOLDER: &str = "PROJECT=my-project";
/// The info string of the blocks that need a real GKE.
const GKE_ONLY: &str = "sh gke-only";
/// What a gke-only block may run: GKE's own commands.
const GKE_COMMANDS: &str = "gcloud container clusters ";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fenced block of the guide: its info string, the line it starts on, its text.
struct Fenced {
    info: String,
    line: usize,
    text: String,
}

fn fenced_blocks(markdown: &str) -> Vec<Fenced> {
    let mut blocks = Vec::new();
    let mut open: Option<Fenced> = None;
    for (number, line) in markdown.lines().enumerate() {
        match (line.strip_prefix("```"), open.take()) {
            (Some(_), Some(done)) => blocks.push(done),
            (Some(info), None) => {
                open = Some(Fenced { info: info.trim().to_owned(), line: number + 1, text: String::new() })
            }
            (None, Some(mut current)) => {
                current.text.push_str(line);
                current.text.push('\n');
                open = Some(current);
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "docs/gke.md ends inside a fenced block");
    blocks
}

/// The commands of a block: continuation lines joined, comments and blank lines left out.
fn commands(text: &str) -> Vec<String> {
    let joined = text.replace("\\\n", " ");
    joined.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect()
}

/// Copies `from` into `to`, recursively.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    let entries = std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    for entry in entries.map(|e| e.unwrap_or_else(|e| panic!("{}: {e}", from.display()))) {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap_or_else(|e| panic!("{}: {e}", entry.path().display()));
        }
    }
}

/// The real curl on PATH.
fn real_curl() -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).map(|dir| dir.join("curl")).find(|candidate| candidate.is_file());
    found.unwrap_or_else(|| panic!("no curl on PATH"))
}

/// A `curl` that reaches API Gateway as the playground does: a gateway's `https://HOST` answers on
/// the GCP emulator's listener (plain HTTP on 127.0.0.1, the `Host` header picks the gateway, as
/// the playground's printed `curl --resolve` shows). Any other URL is refused: the test talks to
/// 127.0.0.1 only.
fn curl_to_the_emulator(bin: &Path, port: u16) {
    let script = format!(
        r#"#!/bin/bash
set -euo pipefail
args=()
for arg in "$@"; do
  if [[ $arg =~ ^https://([a-z0-9.-]+\.gateway\.dev)(/.*)?$ ]]; then
    host=${{BASH_REMATCH[1]}}
    args+=(--resolve "$host:{port}:127.0.0.1" "http://$host:{port}${{BASH_REMATCH[2]}}")
  elif [[ $arg =~ ^[a-zA-Z]+:// ]]; then
    echo "curl (test): $arg is not an API Gateway URL; the test reaches 127.0.0.1 only" >&2
    exit 2
  else
    args+=("$arg")
  fi
done
exec {curl} "${{args[@]}}"
"#,
        curl = real_curl().display()
    );
    std::fs::create_dir_all(bin).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    let path = bin.join("curl");
    std::fs::write(&path, script).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap_or_else(|e| panic!("chmod: {e}"));
}

/// A command as the shell reads it, for comparing the guide's with the playground's: the guide's
/// variables replaced by their values in the playground, quotes dropped.
fn expanded(command: &str) -> String {
    let number = secure_api_testbed::emulator::gcp::GcpEmulator::project_number(PROJECT);
    let pool = format!(
        "principal://iam.googleapis.com/projects/{number}/locations/global/workloadIdentityPools/{PROJECT}.svc.id.goog"
    );
    let command = command.replace("$POOL", &pool).replace("$NUMBER", &number.to_string()).replace("$PROJECT", PROJECT);
    command.replace(['\'', '"'], "")
}

/// The guide uses the playground's commands where they overlap: every command the playground
/// prints to set up the example, its API key's read and its rotation are in the guide.
fn assert_the_guide_has_the_playgrounds_commands(guide: &[Fenced], printed: &str) {
    let db = |password: &str| {
        format!(r#"echo -n '{{"host":"db.example.com","port":5432,"username":"api_user","password":"{password}"}}'"#)
    };
    let setup = block(printed, &db("change-me"), "\n\n");
    let key = block(printed, "KEY=$(", "\n");
    let rotation = block(printed, &db("rotated"), "\n");
    let guide: Vec<String> = guide.iter().flat_map(|b| commands(&b.text)).map(|c| expanded(&c)).collect();
    let printed = [setup, key, rotation].join("\n");
    for command in commands(&printed) {
        assert!(guide.contains(&expanded(&command)), "the playground prints a command docs/gke.md lacks: {command}");
    }
}

/// The default `image.repository` of the chart.
fn chart_image() -> String {
    let values = std::fs::read_to_string(repo().join("charts/secure-api-operator/values.yaml")).unwrap_or_default();
    let values: Value = serde_saphyr::from_str(&values).unwrap_or_else(|e| panic!("values.yaml: {e}"));
    values["image"]["repository"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn only_the_clusters_creation_is_left_out_of_the_run() {
    let guide = std::fs::read_to_string(repo().join("docs/gke.md")).unwrap_or_else(|e| panic!("docs/gke.md: {e}"));
    let blocks = fenced_blocks(&guide);
    for block in &blocks {
        assert!(
            block.info == "sh" || block.info == GKE_ONLY,
            "docs/gke.md line {}: a ```{} block; the guide's blocks are ```sh (run by the test) or ```{GKE_ONLY}",
            block.line,
            block.info
        );
    }
    let skipped: Vec<&Fenced> = blocks.iter().filter(|b| b.info == GKE_ONLY).collect();
    assert_eq!(skipped.len(), 1, "one gke-only block: the cluster's creation and credentials");
    let skipped = commands(&skipped[0].text);
    for command in &skipped {
        assert!(command.starts_with(GKE_COMMANDS), "a command that needs no GKE hides in a gke-only block: {command}");
    }
    assert!(
        skipped.iter().any(|c| c.contains("clusters create") && c.contains("--workload-pool=$PROJECT.svc.id.goog")),
        "the cluster is created with Workload Identity: {skipped:?}"
    );
    assert!(skipped.iter().any(|c| c.contains("clusters get-credentials")), "{skipped:?}");
    assert_eq!(guide.matches(PLACEHOLDER).count(), 1, "the guide sets its project once, as {PLACEHOLDER}");
    let image = format!("\nIMAGE={}\n", chart_image());
    assert!(guide.contains(&image), "the guide's IMAGE is the chart's default image.repository ({image:?})");
}

#[tokio::test]
async fn the_gke_guide_runs_block_by_block_against_the_emulators() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap_or_else(|e| panic!("home: {e}"));
    let mut dev = start_dev(&dir.path().join("dev"), DEADLINE).await;
    let exports = block(&dev.printed, "export KUBECONFIG=", "\n\n");
    // The GCP emulator's port, from the endpoint overrides (`=http://127.0.0.1:PORT/`).
    let gcp_port = exports
        .split("=http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|port| port.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no GCP emulator port in:\n{exports}"));

    // A clone of the repository, as far as the guide reads it (it edits deploy/examples/).
    let clone = dir.path().join("clone");
    for part in ["charts", "deploy"] {
        copy_tree(&repo().join(part), &clone.join(part));
    }
    let bin = dir.path().join("bin");
    curl_to_the_emulator(&bin, gcp_port);

    // The guide starts from an empty project; the playground made the notification topic and the
    // operator's subscription already, and the guide makes them again.
    paste(
        &format!(
            "{exports}\ngcloud pubsub subscriptions delete secret-events-operator\ngcloud pubsub topics delete secret-events"
        ),
        &home,
    );

    let guide = std::fs::read_to_string(repo().join("docs/gke.md")).unwrap_or_else(|e| panic!("docs/gke.md: {e}"));
    let blocks = fenced_blocks(&guide);
    assert_the_guide_has_the_playgrounds_commands(&blocks, &dev.printed);
    let mut script = format!("{exports}\nexport PATH=\"{}:$PATH\"\n", bin.display());
    for block in blocks.iter().filter(|b| b.info == "sh") {
        let text = block.text.replace(PLACEHOLDER, &format!("PROJECT={PROJECT}"));
        script.push_str(&format!("echo '--- docs/gke.md line {}' >&2\n{text}", block.line));
    }
    let printed = tokio::task::spawn_blocking(move || paste_in(&script, &home, &clone, GUIDE_DEADLINE))
        .await
        .unwrap_or_else(|e| panic!("the guide's run: {e}"));

    for answer in ["\"status\":\"healthy\"", "UNAUTHENTICATED", "\"cache_ttl\":3600", "\"host\":\"db.example.com\""] {
        assert!(printed.contains(answer), "no {answer:?} in what the guide printed:\n{printed}");
    }
    let client = client_of(&exports).await;
    let services: Api<SecureApiService> = Api::namespaced(client.clone(), "default");
    let gateways: Api<GatewayConfig> = Api::namespaced(client.clone(), "default");
    let service = services.get("secure-api").await.unwrap_or_else(|e| panic!("SecureApiService secure-api: {e}"));
    let status = service.status.unwrap_or_default();
    assert!(ready(&status.conditions), "the example's service is not Ready: {:?}", status.conditions);
    assert_eq!(status.secret_versions.get("db").map(String::as_str), Some("2"), "the rotation reached the service");
    let revision = status.revision.unwrap_or_default();
    let last = printed.lines().rfind(|l| l.contains("\"host\":\"db.example.com\"")).unwrap_or_default();
    assert!(last.contains(&format!("\"revision\":\"{revision}\"")), "the new revision {revision} answered: {last}");
    let gateway = gateways.get("secure-api").await.unwrap_or_else(|e| panic!("GatewayConfig secure-api: {e}"));
    let conditions = gateway.status.map(|s| s.conditions).unwrap_or_default();
    assert!(ready(&conditions), "the example's gateway is not Ready: {conditions:?}");
    // The chart's release, upgraded to pull the subscription (nobody runs its pods here).
    let deployments: Api<Deployment> = Api::namespaced(client, "secure-api-operator");
    let operator = deployments.get("secure-api-operator").await.unwrap_or_else(|e| panic!("the release: {e}"));
    let env = serde_json::to_value(operator.spec.and_then(|s| s.template.spec).map(|p| p.containers))
        .unwrap_or_default()
        .to_string();
    assert!(
        env.contains(&format!("projects/{PROJECT}/subscriptions/secret-events-operator")),
        "helm upgrade set config.pubsubSubscription: {env}"
    );

    terminate(&dev.process);
    let status = exit_within(&mut dev.process, DEADLINE).await;
    assert!(status.success(), "dev exited with {status:?} after SIGTERM");
}
