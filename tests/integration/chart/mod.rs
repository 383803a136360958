//! The Helm chart (`charts/secure-api-operator`) and the install manifest rendered from it
//! (`deploy/install.yaml`), checked with the real `helm` and with Kubernetes' own schemas
//! (`kubernetes-validate`): the CRDs are the repository's, every value combination renders to
//! valid objects, every `run` flag is settable, the schema rejects wrong values, the RBAC is the
//! least the code needs, and the pod is hardened.
//!
//! `helm` comes from `SECUREAPI_HELM` or PATH, `kubernetes-validate` from PATH or
//! `python3 -m kubernetes_validate`; `.ci/run` installs both. Without them these tests fail (they
//! do not skip) and say how to install them.
//!
//! Helpers: `tools` (running helm and kubernetes-validate), `objects` (looking into rendered
//! objects), `combinations` (the values the tests render). Tests: `repository` (the chart agrees
//! with the rest of the repository), `validation` (lint and schemas), `install` (install.yaml
//! drift), `values` (values, flags, schema), `rbac`, `pod` (hardening and optional objects),
//! `alerts` (the PrometheusRule against its CRD schema, promtool, the dashboard).

mod alerts;
mod combinations;
mod install;
mod objects;
mod pod;
mod rbac;
mod repository;
mod tools;
mod validation;
mod values;

use serde_json::Value;
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/secure-api-operator");
const RELEASE: &str = "secure-api-operator";
const NAMESPACE: &str = "secure-api-operator";

/// A YAML file of the chart (`Chart.yaml`, `values.yaml`), parsed.
fn chart_yaml(file: &str) -> Value {
    let content = std::fs::read_to_string(Path::new(CHART).join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    serde_saphyr::from_str(&content).unwrap_or_else(|e| panic!("{file} does not parse: {e}"))
}
