//! Request bodies: an Api, ApiConfig or Gateway as clients send them to create and patch.
//! Output-only fields (`name`, `state`, times, …) are accepted and ignored, since gcloud sends a
//! resource it has just read back with an update; any other unknown field is `INVALID_ARGUMENT`,
//! as proto3 JSON parsing answers it.

use super::model::{Document, Patch};
use super::rest::decode_bytes;
use super::rpc::RpcError;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// An Api.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiBody {
    pub display_name: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub managed_service: Option<String>,
    #[serde(rename = "name")]
    _name: Option<IgnoredAny>,
    #[serde(rename = "state")]
    _state: Option<IgnoredAny>,
    #[serde(rename = "createTime")]
    _create_time: Option<IgnoredAny>,
    #[serde(rename = "updateTime")]
    _update_time: Option<IgnoredAny>,
}

/// An ApiConfig.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigBody {
    pub display_name: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub gateway_service_account: Option<String>,
    pub openapi_documents: Option<Vec<OpenApiDocument>>,
    pub grpc_services: Option<Vec<Value>>,
    pub managed_service_configs: Option<Vec<Value>>,
    #[serde(rename = "serviceConfigId")]
    _service_config_id: Option<IgnoredAny>,
    #[serde(rename = "name")]
    _name: Option<IgnoredAny>,
    #[serde(rename = "state")]
    _state: Option<IgnoredAny>,
    #[serde(rename = "createTime")]
    _create_time: Option<IgnoredAny>,
    #[serde(rename = "updateTime")]
    _update_time: Option<IgnoredAny>,
}

/// `{"document": {"path": ..., "contents": <base64>}}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenApiDocument {
    pub document: Option<File>,
}

/// An uploaded file.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct File {
    pub path: Option<String>,
    pub contents: Option<String>,
}

/// A Gateway.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayBody {
    pub api_config: Option<String>,
    pub display_name: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "defaultHostname")]
    _default_hostname: Option<IgnoredAny>,
    #[serde(rename = "name")]
    _name: Option<IgnoredAny>,
    #[serde(rename = "state")]
    _state: Option<IgnoredAny>,
    #[serde(rename = "createTime")]
    _create_time: Option<IgnoredAny>,
    #[serde(rename = "updateTime")]
    _update_time: Option<IgnoredAny>,
}

/// The fields every resource can change: `displayName` and `labels`.
pub trait Common {
    /// The display name sent.
    fn display_name(&self) -> Option<&String>;
    /// The labels sent.
    fn labels(&self) -> Option<&BTreeMap<String, String>>;
}

macro_rules! common {
    ($($body:ty),*) => {$(
        impl Common for $body {
            fn display_name(&self) -> Option<&String> {
                self.display_name.as_ref()
            }
            fn labels(&self) -> Option<&BTreeMap<String, String>> {
                self.labels.as_ref()
            }
        }
    )*};
}

common!(ApiBody, ConfigBody, GatewayBody);

/// The `displayName` or `labels` part of an update; `false` for any other mask path.
pub fn patch_common(patch: &mut Patch, path: &str, body: &impl Common) -> bool {
    match path {
        "displayName" => patch.display_name = Some(body.display_name().cloned()),
        "labels" => patch.labels = Some(body.labels().cloned().unwrap_or_default()),
        _ => return false,
    }
    true
}

impl ConfigBody {
    /// The uploaded OpenAPI documents, decoded; each needs a path and its contents.
    pub fn documents(&self) -> Result<Vec<Document>, RpcError> {
        let mut documents = Vec::new();
        for (index, item) in self.openapi_documents.iter().flatten().enumerate() {
            let field = format!("api_config.openapi_documents[{index}].document");
            let file =
                item.document.as_ref().ok_or_else(|| RpcError::invalid_argument(format!("{field} is required.")))?;
            let path = file.path.clone().filter(|p| !p.trim().is_empty());
            let path = path.ok_or_else(|| RpcError::invalid_argument(format!("{field}.path is required.")))?;
            let contents = decode_bytes(file.contents.as_deref().unwrap_or_default(), &format!("{field}.contents"))?;
            if contents.is_empty() {
                return Err(RpcError::invalid_argument(format!("{field}.contents is required.")));
            }
            documents.push(Document { path, contents });
        }
        Ok(documents)
    }

    /// Whether it carries gRPC definitions or service configs (which the emulator cannot read).
    pub fn has_grpc(&self) -> bool {
        self.grpc_services.as_ref().is_some_and(|s| !s.is_empty())
            || self.managed_service_configs.as_ref().is_some_and(|s| !s.is_empty())
    }
}

/// A list answer, `{"<field>":[...],"nextPageToken":"..."}`, empty fields left out.
pub fn list_json(field: &str, items: Vec<Value>, next_page_token: Option<String>) -> Value {
    let mut object = Map::new();
    if !items.is_empty() {
        object.insert(field.to_owned(), Value::Array(items));
    }
    if let Some(token) = next_page_token {
        object.insert("nextPageToken".into(), json!(token));
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::super::rest::parse_body;
    use super::*;

    #[test]
    fn output_only_fields_are_accepted_and_unknown_ones_are_not() {
        let read_back =
            r#"{"name":"n","state":"ACTIVE","createTime":"t","updateTime":"t","defaultHostname":"h","apiConfig":"c"}"#;
        let body = parse_body::<GatewayBody>(read_back.as_bytes());
        assert_eq!(body.map(|b| b.api_config), Ok(Some("c".to_owned())));
        let error = parse_body::<ApiBody>(br#"{"displayName":"x","apiId":"a"}"#).err();
        assert!(matches!(error, Some(ref e) if e.message.contains("apiId")), "{error:?}");
    }

    #[test]
    fn documents_are_decoded_and_need_a_path_and_contents() {
        let body = r#"{"openapiDocuments":[{"document":{"path":"openapi.yaml","contents":"aGk="}}]}"#;
        let documents = parse_body::<ConfigBody>(body.as_bytes()).and_then(|b| b.documents());
        assert_eq!(documents, Ok(vec![Document { path: "openapi.yaml".into(), contents: b"hi".to_vec() }]));
        for bad in [r#"[{}]"#, r#"[{"document":{"contents":"aGk="}}]"#, r#"[{"document":{"path":"a.yaml"}}]"#] {
            let body = format!(r#"{{"openapiDocuments":{bad}}}"#);
            let documents = parse_body::<ConfigBody>(body.as_bytes()).and_then(|b| b.documents());
            assert_eq!(documents.map_err(|e| e.code.name()), Err("INVALID_ARGUMENT"), "{bad}");
        }
    }

    #[test]
    fn a_mask_path_sets_only_common_fields() {
        let body = GatewayBody { display_name: Some("Orders".into()), ..GatewayBody::default() };
        let mut patch = Patch::default();
        assert!(patch_common(&mut patch, "displayName", &body));
        assert!(patch_common(&mut patch, "labels", &body));
        assert!(!patch_common(&mut patch, "apiConfig", &body));
        assert_eq!(patch.display_name, Some(Some("Orders".to_owned())));
        assert_eq!(patch.labels, Some(BTreeMap::new()));
    }

    #[test]
    fn an_empty_list_is_an_empty_object() {
        assert_eq!(list_json("apis", Vec::new(), None), json!({}));
        assert_eq!(list_json("apis", vec![json!(1)], Some("t".into())), json!({"apis": [1], "nextPageToken": "t"}));
    }
}
