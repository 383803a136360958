//! The CustomResourceDefinitions as YAML, generated from the types in [`crate::api`].
//!
//! `crds/` holds the same output checked in (one file per CRD), and `docs/crd-reference.md` the
//! field reference rendered from the same schemas; tests fail when either drifts.

pub mod reference;

use crate::api::{GatewayConfig, ObjectRule, SecretRef, SecureApiService, secret_ref, secure_api_service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{CustomResourceDefinition, ValidationRule};
use kube::CustomResourceExt;

/// Every CRD of the operator, ordered by name (so `cat crds/*.yaml` gives the same stream).
pub fn all() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        with_object_rules(SecretRef::crd(), secret_ref::OBJECT_RULES),
        with_object_rules(SecureApiService::crd(), secure_api_service::OBJECT_RULES),
        GatewayConfig::crd(),
    ];
    crds.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    crds
}

/// `crd` with `rules` on the root of every version's schema: the derive puts rules on the spec
/// and its fields only, and rules on `metadata.name` must sit at the root.
fn with_object_rules(mut crd: CustomResourceDefinition, rules: &[ObjectRule]) -> CustomResourceDefinition {
    let schemas = crd.spec.versions.iter_mut().filter_map(|v| v.schema.as_mut()?.open_api_v3_schema.as_mut());
    for schema in schemas {
        let validations = schema.x_kubernetes_validations.get_or_insert_with(Vec::new);
        validations.extend(rules.iter().map(|rule| ValidationRule {
            rule: rule.rule.to_owned(),
            message: Some(rule.message.to_owned()),
            ..ValidationRule::default()
        }));
    }
    crd
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
