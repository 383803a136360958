//! API Gateway v1 resources as the operator reads them, and decoding of answers.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::super::error::{Code, Detail, GcpError};

/// An API (`projects/{p}/locations/global/apis/{id}`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Api {
    /// Full resource name.
    pub name: String,
    /// Display name.
    #[serde(default)]
    pub display_name: String,
    /// The Service Management service of the API, e.g. "my-api-0123abc.apigateway.p.cloud.goog".
    #[serde(default)]
    pub managed_service: String,
    /// CREATING, ACTIVE, FAILED, DELETING, UPDATING (empty when not reported).
    #[serde(default)]
    pub state: String,
    /// Resource labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// An API config (`projects/{p}/locations/global/apis/{api}/configs/{id}`); immutable once created.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiConfig {
    /// Full resource name.
    pub name: String,
    /// CREATING, ACTIVE, FAILED, DELETING, UPDATING, ACTIVATING (empty when not reported).
    #[serde(default)]
    pub state: String,
    /// Display name.
    #[serde(default)]
    pub display_name: String,
    /// The service account the gateways of this config use to call backends.
    #[serde(default)]
    pub gateway_service_account: Option<String>,
    /// Resource labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl ApiConfig {
    /// The config id: the last segment of [`Self::name`].
    pub fn id(&self) -> &str {
        self.name.rsplit_once('/').map_or(self.name.as_str(), |(_, id)| id)
    }
}

/// A gateway (`projects/{p}/locations/{location}/gateways/{id}`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    /// Full resource name.
    pub name: String,
    /// Full name of the API config it serves.
    #[serde(default)]
    pub api_config: String,
    /// CREATING, ACTIVE, FAILED, DELETING, UPDATING (empty when not reported).
    #[serde(default)]
    pub state: String,
    /// Host name the gateway answers on, e.g. "my-gw-0123abcd.uc.gateway.dev".
    #[serde(default)]
    pub default_hostname: String,
    /// Resource labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A long-running operation returned by every create, update and delete.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// `projects/{p}/locations/{location}/operations/{id}`: poll it with `ApiGateway::get_operation`.
    pub name: String,
    /// Whether the operation has finished (successfully unless [`Self::error`] is set).
    #[serde(default)]
    pub done: bool,
    /// Why a finished operation failed.
    #[serde(default)]
    pub error: Option<OperationError>,
}

/// The failure of an operation (google.rpc.Status). Its message is the operation's own text
/// (e.g. an invalid OpenAPI document), meant to be shown to users; it carries no secrets.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct OperationError {
    /// google.rpc.Code number, e.g. 3 for INVALID_ARGUMENT.
    #[serde(default)]
    pub code: i32,
    /// Human-readable explanation from the service.
    #[serde(default)]
    pub message: String,
}

/// One page of `apis.configs.list`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ConfigPage {
    #[serde(default)]
    pub(super) api_configs: Vec<ApiConfig>,
    /// Empty (or absent) on the last page.
    #[serde(default)]
    pub(super) next_page_token: String,
}

/// Decodes a success answer. Errors never quote the body (serde messages can).
pub(super) fn decode<T: DeserializeOwned>(
    method: &'static str,
    resource: &str,
    http_code: u16,
    body: &[u8],
) -> Result<T, GcpError> {
    serde_json::from_slice(body).map_err(|_| malformed(method, resource, Some(http_code)))
}

/// An answer that does not have the promised shape.
pub(super) fn malformed(method: &'static str, resource: &str, http_code: Option<u16>) -> GcpError {
    GcpError { http_code, ..GcpError::new(method, resource, Code::Unknown, Some(Detail::MalformedResponse)) }
}

#[cfg(test)]
mod tests {
    use super::{Api, ApiConfig, Code, ConfigPage, Detail, Gateway, Operation, OperationError, decode};

    fn parse<T: serde::de::DeserializeOwned>(json: serde_json::Value) -> T {
        decode("m", "r", 200, json.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parses_an_api_and_ignores_unknown_fields() {
        let api: Api = parse(serde_json::json!({
            "name": "projects/p/locations/global/apis/a", "displayName": "A",
            "managedService": "a-1.apigateway.p.cloud.goog", "state": "ACTIVE", "createTime": "2024-01-01T00:00:00Z", "labels": {"x": "y"},
        }));
        assert_eq!(api.managed_service, "a-1.apigateway.p.cloud.goog");
        assert_eq!((api.display_name.as_str(), api.state.as_str()), ("A", "ACTIVE"));
        assert_eq!(api.labels, std::collections::BTreeMap::from([("x".to_owned(), "y".to_owned())]));
        let bare: Api = parse(serde_json::json!({"name": "n"}));
        let empty = Api {
            name: "n".into(),
            display_name: String::new(),
            managed_service: String::new(),
            state: String::new(),
            labels: std::collections::BTreeMap::new(),
        };
        assert_eq!(bare, empty);
    }

    #[test]
    fn parses_a_config_and_its_id() {
        let config: ApiConfig = parse(serde_json::json!({
            "name": "projects/p/locations/global/apis/a/configs/a-1234", "state": "CREATING",
            "gatewayServiceAccount": "gw@p.iam.gserviceaccount.com", "labels": {"owner": "ns.gc"},
        }));
        assert_eq!((config.id(), config.state.as_str()), ("a-1234", "CREATING"));
        assert_eq!(config.gateway_service_account.as_deref(), Some("gw@p.iam.gserviceaccount.com"));
        assert_eq!(config.labels.get("owner").map(String::as_str), Some("ns.gc"));
        let bare: ApiConfig = parse(serde_json::json!({"name": "c"}));
        assert_eq!((bare.id(), bare.gateway_service_account.as_deref(), bare.labels.len()), ("c", None, 0));
    }

    #[test]
    fn parses_a_gateway() {
        let gateway: Gateway = parse(serde_json::json!({
            "name": "projects/p/locations/us-central1/gateways/g", "state": "ACTIVE",
            "apiConfig": "projects/1/locations/global/apis/a/configs/c", "defaultHostname": "g-1.uc.gateway.dev",
        }));
        assert_eq!(gateway.api_config, "projects/1/locations/global/apis/a/configs/c");
        assert_eq!(gateway.default_hostname, "g-1.uc.gateway.dev");
    }

    #[test]
    fn parses_pending_done_and_failed_operations() {
        let pending: Operation =
            parse(serde_json::json!({"name": "projects/p/locations/global/operations/o", "metadata": {}}));
        assert!(!pending.done && pending.error.is_none());
        let done: Operation = parse(serde_json::json!({"name": "o", "done": true, "response": {"name": "x"}}));
        assert!(done.done && done.error.is_none());
        let failed: Operation = parse(serde_json::json!({
            "name": "o", "done": true,
            "error": {"code": 3, "message": "Cannot convert to service config.", "details": []},
        }));
        let error = OperationError { code: 3, message: "Cannot convert to service config.".into() };
        assert_eq!((failed.done, failed.error), (true, Some(error)));
    }

    #[test]
    fn parses_pages_with_and_without_token() {
        let page: ConfigPage =
            parse(serde_json::json!({"apiConfigs": [{"name": "a"}, {"name": "b"}], "nextPageToken": "t2"}));
        assert_eq!((page.api_configs.len(), page.next_page_token.as_str()), (2, "t2"));
        let empty: ConfigPage = parse(serde_json::json!({}));
        assert!(empty.api_configs.is_empty() && empty.next_page_token.is_empty());
    }

    #[test]
    fn malformed_answers_are_unknown_and_not_quoted() {
        for body in [&b"SENTINEL-not-json"[..], br#"{"done": true}"#, br#"{"name": 5, "x": "SENTINEL"}"#] {
            match decode::<Operation>("apigateway.operations.get", "o", 200, body) {
                Ok(operation) => panic!("decoded {operation:?}"),
                Err(error) => {
                    assert_eq!(
                        (error.status, error.detail, error.http_code),
                        (Code::Unknown, Some(Detail::MalformedResponse), Some(200))
                    );
                    assert_eq!(error.to_string(), "apigateway.operations.get o: HTTP 200 UNKNOWN (malformed response)");
                }
            }
        }
    }
}
