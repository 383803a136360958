//! The command line as a user meets it: help texts, and one clear line on start-up failures.

use crate::support::cluster::write_kubeconfig;
use crate::support::operator_bin;
use std::process::{Command, Output};

fn operator(args: &[&str]) -> Output {
    Command::new(operator_bin())
        .args(args)
        .env_remove("KUBECONFIG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"))
}

fn stderr_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr).lines().map(str::to_owned).collect()
}

#[test]
fn help_describes_every_subcommand_and_flag() {
    let top = String::from_utf8_lossy(&operator(&["--help"]).stdout).into_owned();
    for subcommand in ["crds", "run"] {
        assert!(top.contains(subcommand), "--help does not list {subcommand}:\n{top}");
    }
    for (subcommand, flags) in [
        ("crds", &["--output-dir"][..]),
        (
            "run",
            &[
                "--kubeconfig",
                "--context",
                "--namespace",
                "--metrics-addr",
                "--startup-timeout",
                "--log-format",
                "--log-filter",
            ][..],
        ),
    ] {
        let output = operator(&[subcommand, "--help"]);
        assert!(output.status.success());
        let help = String::from_utf8_lossy(&output.stdout);
        for flag in flags {
            let line = help
                .lines()
                .find(|line| line.trim_start().starts_with(flag))
                .unwrap_or_else(|| panic!("`{subcommand} --help` does not show {flag}:\n{help}"));
            let description = line.trim_start().trim_start_matches(flag).trim();
            assert!(
                description.len() > 10 || help.contains(&format!("{line}\n          ")),
                "`{subcommand} --help` shows {flag} without a description:\n{help}"
            );
        }
        if subcommand == "run" {
            assert!(
                help.contains("[env: SECUREAPI_METRICS_ADDR="),
                "run flags show their environment variable:\n{help}"
            );
        }
    }
}

#[test]
fn run_with_an_unreachable_cluster_exits_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let kubeconfig = dir.path().join("kubeconfig");
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    write_kubeconfig(&kubeconfig, "http://127.0.0.1:1");
    let output = operator(&["run", "--kubeconfig", &kubeconfig.to_string_lossy(), "--startup-timeout", "10"]);

    assert!(!output.status.success(), "run must fail without a cluster");
    let lines = stderr_lines(&output);
    assert_eq!(lines.len(), 1, "expected one line on stderr, got {lines:#?}");
    assert!(
        lines[0].starts_with("error: cannot reach the Kubernetes API server at http://127.0.0.1:1/"),
        "unclear error line: {}",
        lines[0]
    );
}

#[test]
fn run_with_a_missing_kubeconfig_names_the_file() {
    let output = operator(&["run", "--kubeconfig", "/nonexistent/kubeconfig"]);
    assert!(!output.status.success());
    let lines = stderr_lines(&output);
    assert_eq!(lines.len(), 1, "expected one line on stderr, got {lines:#?}");
    assert!(
        lines[0].starts_with("error: cannot load the Kubernetes client configuration: /nonexistent/kubeconfig"),
        "{}",
        lines[0]
    );
}

#[test]
fn every_run_flag_is_documented_in_the_configuration_reference() {
    let reference =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md")).unwrap_or_default();
    let help = String::from_utf8_lossy(&operator(&["run", "--help"]).stdout).into_owned();
    let flags: Vec<&str> = help
        .split_whitespace()
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .map(|word| word.trim_end_matches([',', '.']))
        .filter(|flag| *flag != "--help" && *flag != "--version")
        .collect();
    assert!(flags.len() > 10, "{help}");
    for flag in flags {
        assert!(reference.contains(&format!("`{flag}")), "docs/configuration.md does not document {flag}");
    }
}
