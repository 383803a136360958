//! The chart's values: every `run` flag has a `config` value that reaches the container, unset
//! values leave the binary's defaults, and the schema and templates reject wrong values.

use super::combinations::NO_LEADER_ELECTION;
use super::objects::{container, env, env_of, lease_role, strings};
use super::tools::{render, template, text};
use super::{CHART, NAMESPACE, RELEASE, chart_yaml};
use crate::support::operator_bin;
use clap::CommandFactory;
use secure_api_operator::cli::Cli;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// `gcp_project` → `gcpProject`.
fn camel_case(id: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in id.chars() {
        if c == '_' || c == '-' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Every flag of `run` plus the global flags (the log settings): (id, env variable, sample
/// value for the chart, the value the container must then get).
fn run_flags() -> Vec<(String, String, Value, String)> {
    let cli = Cli::command();
    let run = cli.find_subcommand("run").unwrap_or_else(|| panic!("no `run` subcommand"));
    let globals = cli.get_arguments().filter(|arg| arg.is_global_set());
    let mut flags = Vec::new();
    for arg in globals.chain(run.get_arguments()) {
        let id = arg.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        let env = arg
            .get_env()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_else(|| panic!("flag --{id} reads no environment variable; the chart sets flags through them"));
        let value_name = arg.get_value_names().and_then(|names| names.first()).map(|n| n.to_string());
        let possible: Vec<String> = arg.get_possible_values().iter().map(|v| v.get_name().to_owned()).collect();
        let (sample, expected) = if !arg.get_action().takes_values() {
            (json!(true), "true".to_owned())
        } else if let Some(last) = possible.last() {
            (json!(last), last.clone())
        } else {
            match value_name.as_deref() {
                Some("N") => (json!(3), "3".to_owned()),
                // `run` wants the Lease retry period (7, below) shorter than 2/3 of the duration.
                Some("SECONDS") if id == "lease_duration" => (json!(30), "30".to_owned()),
                Some("SECONDS") => (json!(7), "7".to_owned()),
                Some("RATE") => (json!(12.5), "12.5".to_owned()),
                Some("N/M") => (json!("1/3"), "1/3".to_owned()),
                Some("ADDR") => (json!("0.0.0.0:9090"), "0.0.0.0:9090".to_owned()),
                Some("URL") => {
                    let url = format!("https://{}.example.test", id.replace('_', "-"));
                    (json!(url), url)
                }
                _ => {
                    let sample = format!("sample-{}", id.replace('_', "-"));
                    (json!(sample), sample)
                }
            }
        };
        flags.push((id.to_owned(), env, sample, expected));
    }
    assert!(flags.len() >= 21, "expected every run flag and the log flags, got {}", flags.len());
    flags
}

fn config_keys_of(value: &Value) -> BTreeSet<String> {
    value.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

#[test]
fn every_run_flag_has_a_chart_value_that_reaches_the_container() {
    let flags = run_flags();
    let expected_keys: BTreeSet<String> = flags.iter().map(|(id, ..)| camel_case(id)).collect();

    let values = chart_yaml("values.yaml");
    assert_eq!(config_keys_of(&values["config"]), expected_keys, "values.yaml `config` must hold one key per flag");
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(CHART).join("values.schema.json"))
            .unwrap_or_else(|e| panic!("values.schema.json: {e}")),
    )
    .unwrap_or_else(|e| panic!("values.schema.json does not parse: {e}"));
    assert_eq!(
        config_keys_of(&schema["properties"]["config"]["properties"]),
        expected_keys,
        "values.schema.json `config` must describe one key per flag"
    );

    // Every flag set at once: each must reach the container as its environment variable.
    let config: serde_json::Map<String, Value> =
        flags.iter().map(|(id, _, sample, _)| (camel_case(id), sample.clone())).collect();
    let values = serde_json::to_string(&json!({ "config": config })).unwrap_or_default();
    let docs = render(&values);
    let env = env(&docs);
    for (id, variable, _, expected) in &flags {
        assert_eq!(
            env.get(variable),
            Some(expected),
            "config.{} must render {variable}={expected} (flag --{})",
            camel_case(id),
            id.replace('_', "-")
        );
    }
    let known: BTreeSet<&String> = flags.iter().map(|(_, variable, ..)| variable).collect();
    for variable in env.keys().filter(|v| v.starts_with("SECUREAPI_")) {
        assert!(known.contains(variable), "{variable} is no flag of `run`");
    }
    // The metrics port follows --metrics-addr; the Lease Role follows --lease-namespace/--lease-name.
    assert_eq!(container(&docs)["ports"][0]["containerPort"], 9090);
    let lease_role = lease_role(&docs);
    assert_eq!(lease_role["metadata"]["namespace"], "sample-lease-namespace");
    // `config.shard: 1/3`: shard 1 elects its leader on a Lease of its own.
    assert_eq!(lease_role["rules"][1]["resourceNames"], json!(["sample-lease-name-shard-1"]));

    // The binary accepts every rendered value: it gets as far as loading the (sample) kubeconfig.
    let args = strings(&container(&docs)["args"]);
    let output = Command::new(operator_bin())
        .args(&args)
        .envs(env.iter().filter(|(_, value)| !value.starts_with("fieldRef:")))
        .env_remove("KUBECONFIG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap_or_else(|e| panic!("running the operator: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot load the Kubernetes client configuration: sample-kubeconfig"),
        "the operator did not accept the chart's settings:\n{stderr}"
    );
}

#[test]
fn unset_values_leave_the_binary_defaults_and_the_chart_fills_in_the_lease() {
    let docs = render("");
    let env = env(&docs);
    let expected: BTreeMap<String, String> = [
        ("POD_NAME", "fieldRef:metadata.name"),
        ("SECUREAPI_LEADER_ELECTION", "true"),
        ("SECUREAPI_LEASE_NAMESPACE", "fieldRef:metadata.namespace"),
        ("SECUREAPI_LEADER_IDENTITY", "fieldRef:metadata.name"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(env, expected);
    let lease_name = Cli::command()
        .find_subcommand("run")
        .and_then(|run| run.get_arguments().find(|a| a.get_id() == "lease_name").cloned())
        .and_then(|arg| arg.get_default_values().first().map(|v| v.to_string_lossy().into_owned()))
        .unwrap_or_else(|| panic!("--lease-name has no default"));
    let lease_role = lease_role(&docs);
    assert_eq!(lease_role["metadata"]["namespace"], NAMESPACE);
    assert_eq!(lease_role["rules"][1]["resourceNames"], json!([lease_name]), "the Role names the binary's Lease");

    let off = render(NO_LEADER_ELECTION);
    assert_eq!(env_of(&off, "SECUREAPI_LEADER_ELECTION"), Some("false".to_owned()));
    assert!(env_of(&off, "SECUREAPI_LEASE_NAMESPACE").is_none());
    let lease_role_name = format!("{RELEASE}-leader-election");
    assert!(
        !off.iter().any(|d| d["kind"] == "Role" && d["metadata"]["name"] == lease_role_name.as_str()),
        "no Lease Role without leader election"
    );
}

#[test]
fn the_values_schema_rejects_wrong_values() {
    for (values, complaint) in [
        ("replicaCount: two\n", "/replicaCount"),
        ("config:\n  concurrency: fast\n", "/config/concurrency"),
        ("config:\n  concurrency: 0\n", "/config/concurrency"),
        ("config:\n  leaseDuration: 301\n", "/config/leaseDuration"),
        ("config:\n  leaderElection: maybe\n", "/config/leaderElection"),
        ("config:\n  logFormat: xml\n", "/config/logFormat"),
        ("config:\n  gcpProjet: typo\n", "gcpProjet"),
        ("image:\n  pullPolicy: Sometimes\n", "/image/pullPolicy"),
        ("serviceAccount:\n  gcpServiceAccount: not-an-email\n", "/serviceAccount/gcpServiceAccount"),
        ("rbac:\n  namespaced: 'yes'\n", "/rbac/namespaced"),
        ("rbac:\n  namespaces: team-a,team-b\n", "/rbac/namespaces"),
        ("rbac:\n  namespaces: [Team_A]\n", "/rbac/namespaces/0"),
        ("rbac:\n  namespaces: [team-a, team-a]\n", "/rbac/namespaces"),
        ("networkPolicy:\n  enabled: true\n  googleApis: [everywhere]\n", "/networkPolicy/googleApis"),
        ("prometheusRule:\n  secretRefNotReady:\n    minutes: 0\n", "/prometheusRule/secretRefNotReady/minutes"),
        ("prometheusRule:\n  secretAccess:\n    threshold: many\n", "/prometheusRule/secretAccess/threshold"),
        ("prometheusRule:\n  selector: 'namespace=ops'\n", "/prometheusRule/selector"),
        ("grafanaDashboard:\n  enabled: 'yes'\n", "/grafanaDashboard/enabled"),
        ("unknownTopLevel: 1\n", "unknownTopLevel"),
    ] {
        let output = template(values, &[]);
        let message = text(&output);
        assert!(!output.status.success(), "helm template accepted the wrong values\n{values}");
        assert!(
            message.contains("schema") && message.contains(complaint),
            "helm's complaint about\n{values}does not name {complaint}:\n{message}"
        );
    }
}

#[test]
fn more_than_one_replica_needs_leader_election() {
    let output = template("replicaCount: 2\nconfig:\n  leaderElection: false\n", &[]);
    assert!(!output.status.success());
    assert!(text(&output).contains("config.leaderElection"), "{}", text(&output));
}

#[test]
fn shards_install_one_deployment_per_shard_each_with_its_lease_and_subscription() {
    let docs = render("shards: 2\nconfig:\n  pubsubSubscription: secret-events,other/events\n");
    let deployments: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "Deployment").collect();
    assert_eq!(deployments.len(), 2);
    for (index, deployment) in deployments.iter().enumerate() {
        let name = format!("secure-api-operator-shard-{index}");
        assert_eq!(deployment["metadata"]["name"], json!(name));
        let shard_label = json!(index.to_string());
        assert_eq!(deployment["spec"]["selector"]["matchLabels"]["secureapi.dev/shard"], shard_label);
        assert_eq!(deployment["spec"]["template"]["metadata"]["labels"]["secureapi.dev/shard"], shard_label);
        let env: BTreeMap<String, String> = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| Some((e["name"].as_str()?.to_owned(), e["value"].as_str()?.to_owned())))
            .collect();
        assert_eq!(env.get("SECUREAPI_SHARD"), Some(&format!("{index}/2")), "{name}");
        let subscriptions = format!("secret-events-shard-{index},other/events-shard-{index}");
        assert_eq!(env.get("SECUREAPI_PUBSUB_SUBSCRIPTION"), Some(&subscriptions), "{name}");
    }
    let names = json!(["secure-api-operator-shard-0", "secure-api-operator-shard-1"]);
    assert_eq!(lease_role(&docs)["rules"][1]["resourceNames"], names, "one Lease per shard");

    let both = template("shards: 2\nconfig:\n  shard: 0/2\n", &[]);
    assert!(!both.status.success(), "shards and config.shard together");
    assert!(text(&both).contains("config.shard"), "{}", text(&both));
}
