//! The CustomResourceDefinitions as YAML, generated from the types in [`crate::api`].
//!
//! `crds/` holds the same output checked in (one file per CRD), and `docs/crd-reference.md` the
//! field reference rendered from the same schemas; tests fail when either drifts.

pub mod reference;

use crate::api::{GatewayConfig, SecretRef, SecureApiService};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CRD of the operator, ordered by name (so `cat crds/*.yaml` gives the same stream).
pub fn all() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![SecretRef::crd(), SecureApiService::crd(), GatewayConfig::crd()];
    crds.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    crds
}

/// File name of a CRD under `crds/`: `<plural>.<group>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

/// One CRD as a YAML document, starting with `---`.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_saphyr::SerializeError> {
    Ok(format!("---\n{}", serde_saphyr::to_string(crd)?))
}

/// Every CRD as one multi-document YAML stream.
pub fn all_yaml() -> Result<String, serde_saphyr::SerializeError> {
    all().iter().map(to_yaml).collect()
}
