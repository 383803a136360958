//! API Gateway: the Swagger 2.0 (OpenAPI 2.0) document a `GatewayConfig` declares.
//!
//! [`openapi::render`] is pure (no I/O, no clock): the controller hashes its output to name
//! immutable API configs, and `secure-api-operator render` prints it, so both see the same bytes.

mod checks;
mod error;
pub mod manifest;
pub mod openapi;
mod operations;

use crate::api::gateway_config::HttpMethod;
pub use error::RenderError;
pub use openapi::{render, render_yaml};

/// Name of the API-key security definition that `auth: apiKey` routes require.
const API_KEY_DEFINITION: &str = "api_key";

/// Lowercase method, as Swagger's path-item keys spell it.
fn method_key(method: HttpMethod) -> &'static str {
    match method {
        HttpMethod::GET => "get",
        HttpMethod::POST => "post",
        HttpMethod::PUT => "put",
        HttpMethod::PATCH => "patch",
        HttpMethod::DELETE => "delete",
        HttpMethod::HEAD => "head",
        HttpMethod::OPTIONS => "options",
    }
}

/// Builders shared by the unit tests of this module.
#[cfg(test)]
mod fixtures {
    use crate::api::GatewayConfigSpec;
    use std::collections::BTreeMap;

    /// A spec from YAML; panics with the parse error on a bad fixture.
    pub(super) fn spec(yaml: &str) -> GatewayConfigSpec {
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("bad GatewayConfigSpec fixture: {e}"))
    }

    /// The resolved backends of the seed scenario.
    pub(super) fn backends() -> BTreeMap<String, String> {
        BTreeMap::from([("secure-api".to_owned(), "https://secure-api.example.com".to_owned())])
    }

    /// Renders `yaml` as the GatewayConfig `gw` with [`backends`]; panics on a render error.
    pub(super) fn rendered(yaml: &str) -> serde_json::Value {
        super::render("gw", &spec(yaml), &backends()).unwrap_or_else(|e| panic!("render failed: {e}"))
    }

    /// The render error of `yaml`; panics when it renders.
    pub(super) fn render_error(yaml: &str) -> super::RenderError {
        match super::render("gw", &spec(yaml), &backends()) {
            Ok(doc) => panic!("expected a render error, got {doc}"),
            Err(e) => e,
        }
    }

    /// The seed scenario's GatewayConfig `secure-api` (SCENARIO.md, "The API Gateway").
    pub(super) const SEED: &str = r#"
auth:
  apiKey: {in: query, name: key}
routes:
  - path: /health
    methods: [GET]
    operationId: healthCheck
    auth: none
    backend: {service: secure-api}
  - path: /config
    methods: [GET]
    operationId: getConfig
    auth: apiKey
    backend: {service: secure-api}
  - path: /database/status
    methods: [GET]
    operationId: databaseStatus
    auth: apiKey
    backend: {service: secure-api}
  - path: /api/data
    methods: [GET]
    operationId: getSecureData
    auth: apiKey
    backend: {service: secure-api}
"#;
}
