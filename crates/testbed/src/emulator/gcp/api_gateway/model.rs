//! The resources — APIs, API configs and gateways — with their states, and their JSON (camelCase,
//! empty fields left out as proto3 JSON does).

use super::rest::timestamp;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The state of a resource. Every kind shares these names (configs also know `ACTIVATING`,
/// which the emulator never reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Its create operation is running.
    Creating,
    /// Ready.
    Active,
    /// Its create operation failed.
    Failed,
    /// Its delete operation is running.
    Deleting,
    /// An update operation is running.
    Updating,
}

impl State {
    /// The enum name in JSON, e.g. `ACTIVE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "CREATING",
            Self::Active => "ACTIVE",
            Self::Failed => "FAILED",
            Self::Deleting => "DELETING",
            Self::Updating => "UPDATING",
        }
    }

    /// Whether an operation on the resource is still running.
    pub fn is_pending(self) -> bool {
        matches!(self, Self::Creating | Self::Deleting | Self::Updating)
    }
}

/// What every resource has.
#[derive(Clone, Debug, PartialEq)]
pub struct Meta {
    /// The full resource name.
    pub name: String,
    /// `displayName`, left out of answers when empty.
    pub display_name: Option<String>,
    /// `labels`, left out of answers when empty.
    pub labels: BTreeMap<String, String>,
    /// What its latest operation left it in (or is doing).
    pub state: State,
    /// When it was created.
    pub create_time: jiff::Timestamp,
    /// When an operation last changed it.
    pub update_time: jiff::Timestamp,
}

impl Meta {
    /// A new resource, `CREATING` until its operation is done.
    pub fn new(name: String, at: jiff::Timestamp) -> Self {
        Self {
            name,
            display_name: None,
            labels: BTreeMap::new(),
            state: State::Creating,
            create_time: at,
            update_time: at,
        }
    }

    fn write(&self, object: &mut Map<String, Value>) {
        object.insert("name".into(), json!(self.name));
        if let Some(display_name) = self.display_name.as_deref().filter(|n| !n.is_empty()) {
            object.insert("displayName".into(), json!(display_name));
        }
        if !self.labels.is_empty() {
            object.insert("labels".into(), json!(self.labels));
        }
        object.insert("state".into(), json!(self.state.as_str()));
        object.insert("createTime".into(), json!(timestamp(self.create_time)));
        object.insert("updateTime".into(), json!(timestamp(self.update_time)));
    }
}

/// An API: a name for a managed service that configs are made for.
#[derive(Clone, Debug, PartialEq)]
pub struct Api {
    pub meta: Meta,
    /// `{id}-{hash}.apigateway.{project}.cloud.goog`, or the one the caller set.
    pub managed_service: String,
}

/// One OpenAPI document of a config, as uploaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    pub path: String,
    pub contents: Vec<u8>,
}

/// An API config: immutable OpenAPI documents (and the service account gateways use).
#[derive(Clone, Debug, PartialEq)]
pub struct ApiConfig {
    pub meta: Meta,
    pub gateway_service_account: Option<String>,
    pub documents: Vec<Document>,
    pub service_config_id: String,
}

/// A gateway: serves one API config in one region.
#[derive(Clone, Debug, PartialEq)]
pub struct Gateway {
    pub meta: Meta,
    /// The config's full name.
    pub api_config: String,
    /// `{id}-{8 hex}.{region code}.gateway.dev`.
    pub default_hostname: String,
}

/// The fields an update changes when its operation completes: `Some` for each one in the mask.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Patch {
    /// `Some(None)` clears the display name.
    pub display_name: Option<Option<String>>,
    pub labels: Option<BTreeMap<String, String>>,
    /// A gateway's new config.
    pub api_config: Option<String>,
}

impl Patch {
    /// Writes the fields into a resource's common part.
    pub fn apply(&self, meta: &mut Meta) {
        if let Some(display_name) = &self.display_name {
            meta.display_name.clone_from(display_name);
        }
        if let Some(labels) = &self.labels {
            meta.labels.clone_from(labels);
        }
    }
}

/// How much of a config to answer: `BASIC` leaves out the documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Basic,
    Full,
}

impl View {
    /// `view` as a query gives it: `BASIC` (the default), `FULL` or `CONFIG_VIEW_UNSPECIFIED`.
    pub fn parse(view: Option<&str>) -> Option<Self> {
        match view.unwrap_or_default() {
            "" | "CONFIG_VIEW_UNSPECIFIED" | "BASIC" => Some(Self::Basic),
            "FULL" => Some(Self::Full),
            _ => None,
        }
    }
}

/// An Api resource.
pub fn api_json(api: &Api) -> Value {
    let mut object = Map::new();
    api.meta.write(&mut object);
    object.insert("managedService".into(), json!(api.managed_service));
    Value::Object(object)
}

/// An ApiConfig resource; the documents (contents as base64) only in the `FULL` view.
pub fn config_json(config: &ApiConfig, view: View) -> Value {
    let mut object = Map::new();
    config.meta.write(&mut object);
    if let Some(account) = &config.gateway_service_account {
        object.insert("gatewayServiceAccount".into(), json!(account));
    }
    object.insert("serviceConfigId".into(), json!(config.service_config_id));
    if view == View::Full && !config.documents.is_empty() {
        let documents: Vec<Value> = config
            .documents
            .iter()
            .map(|d| json!({ "document": { "path": d.path, "contents": STANDARD.encode(&d.contents) } }))
            .collect();
        object.insert("openapiDocuments".into(), Value::Array(documents));
    }
    Value::Object(object)
}

/// A Gateway resource.
pub fn gateway_json(gateway: &Gateway) -> Value {
    let mut object = Map::new();
    gateway.meta.write(&mut object);
    object.insert("apiConfig".into(), json!(gateway.api_config));
    object.insert("defaultHostname".into(), json!(gateway.default_hostname));
    Value::Object(object)
}

/// `{id}-{hash}.apigateway.{project}.cloud.goog`: the hash is derived from the API's name, so
/// the same API gets the same service in every run.
pub fn managed_service(project: &str, id: &str, name: &str) -> String {
    format!("{id}-{}.apigateway.{project}.cloud.goog", short_hash(name, 7))
}

/// `{id}-{8 hex}.{region code}.gateway.dev`, where the region code is the first letters of the
/// region's first two words (`us-central1` → `uc`, `europe-west1` → `ew`), as Google's hosts read.
pub fn default_hostname(id: &str, region: &str, name: &str) -> String {
    let code: String = region.split('-').take(2).filter_map(|word| word.chars().next()).collect();
    format!("{id}-{}.{code}.gateway.dev", short_hash(name, 4))
}

/// The first `bytes` bytes of the SHA-256 of `text`, in hex.
fn short_hash(text: &str, bytes: usize) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().take(bytes).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str) -> Meta {
        Meta::new(name.to_owned(), jiff::Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn an_api_has_its_managed_service_and_leaves_out_empty_fields() {
        let name = "projects/p/locations/global/apis/orders";
        let api = Api { meta: meta(name), managed_service: managed_service("p", "orders", name) };
        let value = api_json(&api);
        assert_eq!(value["state"], "CREATING");
        assert_eq!(value["createTime"], "1970-01-01T00:00:00.000000Z");
        assert!(value.get("labels").is_none() && value.get("displayName").is_none());
        let service = value["managedService"].as_str().unwrap_or_default();
        assert!(service.starts_with("orders-") && service.ends_with(".apigateway.p.cloud.goog"), "{service}");
    }

    #[test]
    fn documents_are_only_in_the_full_view() {
        let config = ApiConfig {
            meta: meta("projects/p/locations/global/apis/a/configs/c"),
            gateway_service_account: Some("gw@p.iam.gserviceaccount.com".into()),
            documents: vec![Document { path: "openapi.yaml".into(), contents: b"hi".to_vec() }],
            service_config_id: "c-0".into(),
        };
        assert!(config_json(&config, View::Basic).get("openapiDocuments").is_none());
        let full = config_json(&config, View::Full);
        assert_eq!(full["openapiDocuments"], json!([{ "document": { "path": "openapi.yaml", "contents": "aGk=" } }]));
        assert_eq!(full["serviceConfigId"], "c-0");
        assert_eq!(View::parse(Some("FULL")), Some(View::Full));
        assert_eq!(View::parse(None), Some(View::Basic));
        assert_eq!(View::parse(Some("ALL")), None);
    }

    #[test]
    fn a_default_hostname_has_the_region_code_and_eight_hex_digits() {
        let host = default_hostname("gw", "us-central1", "projects/p/locations/us-central1/gateways/gw");
        let hash = host.strip_prefix("gw-").and_then(|rest| rest.strip_suffix(".uc.gateway.dev"));
        assert!(hash.is_some_and(|h| h.len() == 8 && h.bytes().all(|b| b.is_ascii_hexdigit())), "{host}");
        assert!(default_hostname("gw", "europe-west1", "x").ends_with(".ew.gateway.dev"));
    }

    #[test]
    fn pending_states_are_the_ones_with_an_operation_running() {
        let pending: Vec<State> = [State::Creating, State::Active, State::Failed, State::Deleting, State::Updating]
            .into_iter()
            .filter(|s| s.is_pending())
            .collect();
        assert_eq!(pending, [State::Creating, State::Deleting, State::Updating]);
    }
}
