//! What a GatewayConfig asks for in Google Cloud (pure): names, the rendered document, and the
//! config id derived from it, from the backend URLs resolved before.

use super::error::Error;
use crate::api::GatewayConfig;
use crate::controllers::children::hash_of;
use crate::gateway::render_yaml;
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
    /// Labels on what we create in Google Cloud.
    pub labels: BTreeMap<String, String>,
    /// The labels that mark a resource as this GatewayConfig's.
    pub owner: BTreeMap<String, String>,
}

impl Plan {
    /// `projects/P/locations/global/apis/A/configs/C`.
    pub fn config_name(&self) -> String {
        format!("projects/{}/locations/global/apis/{}/configs/{}", self.project, self.api_id, self.config_id)
    }
}

/// GCP label values: lowercase letters, digits, `_` and `-`, at most 63.
fn label_value(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' { c } else { '_' })
        .take(63)
        .collect()
}

/// Whether a resource's labels say it is the GatewayConfig's.
pub fn is_ours(labels: &BTreeMap<String, String>, owner: &BTreeMap<String, String>) -> bool {
    owner.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Project, location and ids (defaults: the operator's project, the object's name).
pub fn names(gateway: &GatewayConfig, default_project: Option<&str>) -> Result<Names, Error> {
    let spec = &gateway.spec;
    let project = spec
        .project_id
        .clone()
        .or_else(|| default_project.map(str::to_owned))
        .ok_or_else(|| Error::InvalidSpec("no projectId, and the operator has no --gcp-project".into()))?;
    Ok(Names {
        project,
        location: spec.location.clone(),
        api_id: spec.api_id.clone().unwrap_or_else(|| gateway.name_any()),
        gateway_id: spec.gateway_id.clone().unwrap_or_else(|| gateway.name_any()),
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
    let document = render_yaml(&name, &gateway.spec, urls).map_err(|e| Error::InvalidSpec(e.to_string()))?;
    let gateway_service_account = gateway.spec.gateway_service_account.clone();
    let config_id = format!("{}-{}", names.api_id, &hash_of(&(&document, &gateway_service_account))[..10]);
    let owner = BTreeMap::from([
        ("managed-by".to_string(), "secure-api-operator".to_string()),
        ("gatewayconfig".to_string(), label_value(&name)),
        ("namespace".to_string(), label_value(&gateway.namespace().unwrap_or_default())),
    ]);
    Ok(Plan {
        project: names.project,
        location: names.location,
        api_id: names.api_id,
        gateway_id: names.gateway_id,
        display_name: gateway.spec.display_name.clone().unwrap_or(name),
        config_id,
        document,
        gateway_service_account,
        labels: owner.clone(),
        owner,
    })
}
