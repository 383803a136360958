//! What a GatewayConfig asks for in Google Cloud (pure): names, the rendered document, and the
//! config id derived from it, from the backend URLs resolved before.

use super::error::Error;
use crate::api::GatewayConfig;
use crate::gateway::render_yaml;
use crate::runtime::children::hash_of;
use crate::runtime::error::InvalidField;
use kube::ResourceExt;
use std::collections::BTreeMap;

/// Path of the OpenAPI document inside an API config.
pub const DOCUMENT_PATH: &str = "openapi.yaml";

/// Google Cloud names of a GatewayConfig's resources.
pub struct Names {
    pub project: String,
    pub location: String,
    pub api_id: String,
    pub gateway_id: String,
}

/// Everything one provisioning pass needs.
pub struct Plan {
    pub project: String,
    pub location: String,
    pub api_id: String,
    pub gateway_id: String,
    pub display_name: String,
    /// `<apiId>-<hash of the document and gateway service account>`: a new document is a new config.
    pub config_id: String,
    pub document: String,
    pub gateway_service_account: Option<String>,
    /// Whose the resources are: the labels on what we create, and the check of what we find.
    pub owner: Owner,
}

impl Plan {
    /// `projects/P/locations/global/apis/A/configs/C`.
    pub fn config_name(&self) -> String {
        format!("projects/{}/locations/global/apis/{}/configs/{}", self.project, self.api_id, self.config_id)
    }
}

/// Longest Google Cloud label value.
const MAX_LABEL: usize = 63;
/// Longest API and gateway id (the CRD's `RESOURCE_ID_PATTERN`).
const MAX_ID: usize = 50;
/// Hex digits of the hash that stands for what a too long id or label value leaves out.
const SHORTENED_HASH: usize = 10;

/// GCP label values: lowercase letters, digits, `_` and `-`, at most 63; a longer one keeps its
/// start and a hash of the whole, so two long names never share a value.
fn label_value(text: &str) -> String {
    let value: String = text
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' { c } else { '_' })
        .collect();
    shortened(value, text, MAX_LABEL)
}

/// `value` if it fits in `max`, else its start, `-` and a hash of `whole`.
fn shortened(value: String, whole: &str, max: usize) -> String {
    if value.len() <= max {
        return value;
    }
    let hash = &hash_of(&whole)[..SHORTENED_HASH];
    let start: String = value.chars().take(max - SHORTENED_HASH - 1).collect();
    format!("{}-{hash}", start.trim_end_matches(['-', '_']))
}

/// The default id of a GatewayConfig's API and gateway: `<namespace>-<name>`, so that two
/// namespaces never reach for the same resources by default, within the id rules (`[a-z0-9-]`,
/// a letter first, at most 50) — shortened with a hash when too long.
fn default_id(namespace: &str, name: &str) -> String {
    let text = format!("{namespace}-{name}");
    let id: String = text.chars().map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' }).collect();
    let id = if id.starts_with(|c: char| c.is_ascii_lowercase()) { id } else { format!("g{id}") };
    shortened(id, &format!("{namespace}/{name}"), MAX_ID).trim_end_matches('-').to_owned()
}

/// The labels that mark a Google Cloud resource as one GatewayConfig's: ours, its namespace and
/// name. (Not its uid: the namespace is the tenant's boundary, and a GatewayConfig re-created
/// after `deletionPolicy: Retain` takes its resources back.)
#[derive(Clone, Debug, PartialEq)]
pub struct Owner {
    labels: BTreeMap<String, String>,
    /// As versions before hashed long names wrote them: the name cut at 63 characters.
    legacy: BTreeMap<String, String>,
}

impl Owner {
    pub fn of(gateway: &GatewayConfig) -> Self {
        let name = gateway.name_any();
        let namespace = label_value(&gateway.namespace().unwrap_or_default());
        let labels = |name: String| {
            BTreeMap::from([
                ("managed-by".to_string(), "secure-api-operator".to_string()),
                ("gatewayconfig".to_string(), name),
                ("namespace".to_string(), namespace.clone()),
            ])
        };
        let legacy_name = label_value(&name.chars().take(MAX_LABEL).collect::<String>());
        Self { labels: labels(label_value(&name)), legacy: labels(legacy_name) }
    }

    /// The labels put on every resource the operator creates for the GatewayConfig.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }

    /// Whether a resource with `labels` is the GatewayConfig's.
    pub fn owns(&self, labels: &BTreeMap<String, String>) -> bool {
        let carries = |owner: &BTreeMap<String, String>| owner.iter().all(|(k, v)| labels.get(k) == Some(v));
        carries(&self.labels) || carries(&self.legacy)
    }
}

/// Project, location and ids. An id is the spec's, else the one status recorded at the first
/// provisioning (an object keeps its resources), else — for an object provisioned before ids were
/// recorded — its name, as then; else `<namespace>-<name>` ([`default_id`]).
pub fn names(gateway: &GatewayConfig, default_project: Option<&str>) -> Result<Names, Error> {
    let spec = &gateway.spec;
    let project = spec
        .project_id
        .clone()
        .or_else(|| default_project.map(str::to_owned))
        .ok_or_else(|| InvalidField::new("spec.projectId", "not set, and the operator has no --gcp-project"))?;
    let status = gateway.status.clone().unwrap_or_default();
    let provisioned_unrecorded = status.api_id.is_none()
        && (status.api_config_id.is_some() || status.pending_operation.is_some() || status.gateway_url.is_some());
    let default = if provisioned_unrecorded {
        gateway.name_any()
    } else {
        default_id(&gateway.namespace().unwrap_or_default(), &gateway.name_any())
    };
    Ok(Names {
        project,
        location: spec.location.clone(),
        api_id: spec.api_id.clone().or(status.api_id).unwrap_or_else(|| default.clone()),
        gateway_id: spec.gateway_id.clone().or(status.gateway_id).unwrap_or(default),
    })
}

/// The plan for the backend `urls` (by SecureApiService name); a spec the renderer refuses is
/// invalid.
pub fn plan(
    gateway: &GatewayConfig,
    default_project: Option<&str>,
    urls: &BTreeMap<String, String>,
) -> Result<Plan, Error> {
    let names = names(gateway, default_project)?;
    let name = gateway.name_any();
    let document = render_yaml(&name, &gateway.spec, urls)?;
    let gateway_service_account = gateway.spec.gateway_service_account.clone();
    let config_id = format!("{}-{}", names.api_id, &hash_of(&(&document, &gateway_service_account))[..10]);
    let owner = Owner::of(gateway);
    Ok(Plan {
        project: names.project,
        location: names.location,
        api_id: names.api_id,
        gateway_id: names.gateway_id,
        display_name: gateway.spec.display_name.clone().unwrap_or(name),
        config_id,
        document,
        gateway_service_account,
        owner,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway_config(namespace: &str, name: &str, status: serde_json::Value) -> GatewayConfig {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "GatewayConfig",
            "metadata": { "name": name, "namespace": namespace },
            "spec": { "projectId": "p", "routes": [{ "path": "/a", "backend": { "address": "https://a.example.com" } }] },
            "status": status,
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn ids(gateway: &GatewayConfig) -> (String, String) {
        let names = names(gateway, None).unwrap_or_else(|e| panic!("{e}"));
        (names.api_id, names.gateway_id)
    }

    #[test]
    fn default_ids_carry_the_namespace_and_fit_googles_rules() {
        let pair = |id: &str| (id.to_owned(), id.to_owned());
        assert_eq!(ids(&gateway_config("team-a", "orders", serde_json::json!({}))), pair("team-a-orders"));
        assert_eq!(ids(&gateway_config("team-b", "orders", serde_json::json!({}))), pair("team-b-orders"));
        assert_eq!(ids(&gateway_config("9lives", "a.b", serde_json::json!({}))), pair("g9lives-a-b"));
        let long = "x".repeat(60);
        let (api, _) = ids(&gateway_config("team-a", &long, serde_json::json!({})));
        let rule = regex::Regex::new(r"^[a-z][a-z0-9-]{0,48}[a-z0-9]$").unwrap_or_else(|e| panic!("{e}"));
        assert!(rule.is_match(&api), "{api}");
        let (other, _) = ids(&gateway_config("team-b", &long, serde_json::json!({})));
        assert_ne!(api, other, "shortened ids keep a hash of the whole");
    }

    #[test]
    fn an_object_keeps_the_ids_it_was_provisioned_with() {
        let recorded = serde_json::json!({ "apiId": "first-api", "gatewayId": "first-gw" });
        assert_eq!(ids(&gateway_config("team-a", "orders", recorded)), ("first-api".to_owned(), "first-gw".to_owned()));
        // Provisioned by a version that used the name alone and recorded no ids.
        let before = serde_json::json!({ "apiConfigId": "orders-0123456789" });
        assert_eq!(ids(&gateway_config("team-a", "orders", before)), ("orders".to_owned(), "orders".to_owned()));
    }

    #[test]
    fn long_label_values_are_shortened_with_a_hash_and_the_old_cut_still_counts() {
        let long = "x".repeat(70);
        let owner = Owner::of(&gateway_config("team-a", &long, serde_json::json!({})));
        let value = &owner.labels()["gatewayconfig"];
        assert!(value.len() <= 63, "{value}");
        let mut before = owner.labels().clone();
        before.insert("gatewayconfig".into(), "x".repeat(63));
        assert!(owner.owns(&before), "resources labelled by the version that cut at 63 stay ours");
    }

    fn with_spec(spec: serde_json::Value) -> GatewayConfig {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "GatewayConfig",
            "metadata": { "name": "orders", "namespace": "team-a" },
            "spec": spec,
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn route(path: &str) -> serde_json::Value {
        serde_json::json!({ "path": path, "backend": { "address": "https://a.example.com" } })
    }

    #[test]
    fn a_project_comes_from_the_spec_else_the_operator_else_the_spec_is_invalid() {
        let unnamed = with_spec(serde_json::json!({ "routes": [route("/a")] }));
        let refused = names(&unnamed, None).err().map(|e| e.to_string());
        assert_eq!(
            refused.as_deref(),
            Some("invalid spec: spec.projectId: not set, and the operator has no --gcp-project")
        );
        let refused =
            plan(&unnamed, None, &BTreeMap::new()).err().map(|e| crate::runtime::skeleton::Failure::reason(&e));
        assert_eq!(refused, Some("InvalidSpec"));
        assert_eq!(
            names(&unnamed, Some("operator-project")).map(|n| n.project).ok().as_deref(),
            Some("operator-project")
        );
        let named = with_spec(serde_json::json!({ "projectId": "p", "routes": [route("/a")] }));
        assert_eq!(names(&named, Some("operator-project")).map(|n| n.project).ok().as_deref(), Some("p"));
    }

    #[test]
    fn the_config_id_follows_the_document_and_the_gateway_service_account_only() {
        let config_id = |spec: serde_json::Value| {
            plan(&with_spec(spec), None, &BTreeMap::new()).map(|p| p.config_id).unwrap_or_else(|e| panic!("{e}"))
        };
        let base = config_id(serde_json::json!({ "projectId": "p", "routes": [route("/a")] }));
        assert!(base.starts_with("team-a-orders-") && base.len() == "team-a-orders-".len() + 10, "{base}");
        assert_eq!(config_id(serde_json::json!({ "projectId": "p", "routes": [route("/a")] })), base, "same document");
        assert_ne!(config_id(serde_json::json!({ "projectId": "p", "routes": [route("/b")] })), base, "a new route");
        let account = serde_json::json!({ "projectId": "p", "routes": [route("/a")], "gatewayServiceAccount": "gw@p.iam.gserviceaccount.com" });
        assert_ne!(config_id(account), base, "another identity for the backends is another config");
        let moved = serde_json::json!({ "projectId": "other", "routes": [route("/a")] });
        assert_eq!(config_id(moved), base, "the project is not part of the config");
    }

    #[test]
    fn routes_the_renderer_refuses_are_an_invalid_spec_in_its_words() {
        let clash = serde_json::json!({ "path": "/a", "methods": ["GET"], "backend": { "address": "https://a.example.com" }, "auth": "jwt:nobody" });
        let refused =
            plan(&with_spec(serde_json::json!({ "projectId": "p", "routes": [clash] })), None, &BTreeMap::new()).err();
        let message = refused.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(matches!(refused, Some(Error::Routes(_))), "{message}");
        assert!(message.starts_with("invalid spec: route /a: auth jwt:nobody names no provider"), "{message}");
    }
}
