//! The Swagger 2.0 document of a `GatewayConfig`, in API Gateway's dialect: JWT providers as
//! oauth2 definitions with `x-google-issuer`, `x-google-backend` per operation,
//! `x-google-management` quota limits and `x-google-quota` costs.
//!
//! Deterministic: no clock, no randomness, and every object is a sorted map (serde_json without
//! `preserve_order`), so the same spec always gives the same bytes — configs are named by hash.

use super::checks::{self, RouteAuth};
use super::operations;
use super::{API_KEY_DEFINITION, RenderError};
use crate::api::gateway_config::{ApiKeyLocation, GatewayConfigSpec, JwtProvider, Quota};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// `info.version`: API Gateway requires one; revisions are tracked by config id instead.
const API_VERSION: &str = "1.0.0";

/// Renders the Swagger 2.0 document for a GatewayConfig. `name` is the GatewayConfig's name
/// (title and description); `backends` maps a route's `backend.service` (a SecureApiService
/// name) to its resolved URL.
///
/// Re-checks what the schema's CEL rules say (JWT providers, quota metrics, one route per
/// method and path, one of service and address), because neither the emulator nor
/// `secure-api-operator render` evaluates CEL.
pub fn render(name: &str, spec: &GatewayConfigSpec, backends: &BTreeMap<String, String>) -> Result<Value, RenderError> {
    checks::check(spec)?;
    let mut document = Map::new();
    document.insert("swagger".to_owned(), json!("2.0"));
    document.insert("info".to_owned(), info(name, spec));
    document.insert("schemes".to_owned(), json!(["https"]));
    document.insert("produces".to_owned(), json!(["application/json"]));
    let definitions = security_definitions(spec)?;
    if !definitions.is_empty() {
        document.insert("securityDefinitions".to_owned(), Value::Object(definitions));
    }
    if !spec.quotas.is_empty() {
        document.insert("x-google-management".to_owned(), management(&spec.quotas));
    }
    document.insert("paths".to_owned(), Value::Object(operations::paths(spec, backends)?));
    Ok(Value::Object(document))
}

/// [`render`] as YAML text, identical byte for byte for the same input (keys sorted).
pub fn render_yaml(
    name: &str,
    spec: &GatewayConfigSpec,
    backends: &BTreeMap<String, String>,
) -> Result<String, RenderError> {
    let document = render(name, spec, backends)?;
    serde_saphyr::to_string(&document).map_err(|e| RenderError::Yaml(e.to_string()))
}

fn info(name: &str, spec: &GatewayConfigSpec) -> Value {
    json!({
        "title": spec.display_name.as_deref().unwrap_or(name),
        "version": API_VERSION,
        "description": format!("Managed by secure-api-operator from GatewayConfig {name}"),
    })
}

/// `api_key` when a route uses it, and one oauth2 definition per JWT provider a route uses
/// (unused providers are left out: API Gateway would still fetch their keys).
fn security_definitions(spec: &GatewayConfigSpec) -> Result<Map<String, Value>, RenderError> {
    let used = spec.routes.iter().map(RouteAuth::of).collect::<Result<Vec<_>, _>>()?;
    let mut definitions = Map::new();
    if used.contains(&RouteAuth::ApiKey) {
        definitions.insert(API_KEY_DEFINITION.to_owned(), api_key_definition(spec));
    }
    for provider in checks::jwt_providers(spec) {
        if used.contains(&RouteAuth::Jwt(&provider.name)) {
            definitions.insert(provider.name.clone(), jwt_definition(provider));
        }
    }
    Ok(definitions)
}

/// The API key's location: `auth.apiKey`, defaulting to the query parameter `key`.
fn api_key_definition(spec: &GatewayConfigSpec) -> Value {
    let declared = spec.auth.as_ref().and_then(|auth| auth.api_key.as_ref());
    let location = declared.map(|key| key.in_).unwrap_or_default();
    let (default_name, location) = match location {
        ApiKeyLocation::Query => ("key", "query"),
        ApiKeyLocation::Header => ("x-api-key", "header"),
    };
    let name = declared.and_then(|key| key.name.as_deref()).unwrap_or(default_name);
    json!({"type": "apiKey", "name": name, "in": location})
}

/// API Gateway's JWT definition: oauth2 implicit with an empty authorization URL, validated by
/// `x-google-issuer`, `x-google-jwks_uri` and, when given, `x-google-audiences`.
fn jwt_definition(provider: &JwtProvider) -> Value {
    let mut definition = Map::new();
    definition.insert("type".to_owned(), json!("oauth2"));
    definition.insert("authorizationUrl".to_owned(), json!(""));
    definition.insert("flow".to_owned(), json!("implicit"));
    definition.insert("x-google-issuer".to_owned(), json!(provider.issuer));
    definition.insert("x-google-jwks_uri".to_owned(), json!(provider.jwks_uri));
    if !provider.audiences.is_empty() {
        definition.insert("x-google-audiences".to_owned(), json!(provider.audiences.join(",")));
    }
    Value::Object(definition)
}

/// `x-google-management`: one INT64 DELTA metric and one per-minute, per-consumer-project limit
/// per declared quota, in declaration order.
///
/// API Gateway counts quota per consumer project, which it only knows from an API key: routes
/// that charge a metric should use `auth: apiKey` (not enforced here).
fn management(quotas: &[Quota]) -> Value {
    let metrics: Vec<Value> = quotas
        .iter()
        .map(|q| json!({"name": q.metric, "displayName": q.metric, "valueType": "INT64", "metricKind": "DELTA"}))
        .collect();
    let limits: Vec<Value> = quotas
        .iter()
        .map(|q| {
            json!({
                "name": format!("{}-limit", q.metric),
                "metric": q.metric,
                "unit": "1/min/{project}",
                "values": {"STANDARD": q.limit_per_minute},
            })
        })
        .collect();
    json!({"metrics": metrics, "quota": {"limits": limits}})
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{SEED, backends, rendered, spec};
    use super::*;

    /// The seed scenario's rendering, checked in; `openapi_spec_validator` also checks it.
    const GOLDEN: &str = include_str!("../../tests/golden/seed-gateway.yaml");
    /// Set to `1` to rewrite the golden file from the current renderer (then review the diff).
    const UPDATE_GOLDEN: &str = "SECUREAPI_UPDATE_GOLDEN";

    const ONE_ROUTE: &str = "routes: [{path: /a, backend: {service: secure-api}}]";

    #[test]
    fn seed_gateway_matches_golden_file() {
        let yaml = render_yaml("secure-api", &spec(SEED), &backends())
            .unwrap_or_else(|e| panic!("the seed GatewayConfig must render: {e}"));
        if std::env::var(UPDATE_GOLDEN).as_deref() == Ok("1") {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/seed-gateway.yaml");
            std::fs::write(path, &yaml).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
            return;
        }
        assert!(
            yaml == GOLDEN,
            "tests/golden/seed-gateway.yaml differs from the rendering; if the change is intended, regenerate \
             it with `{UPDATE_GOLDEN}=1 cargo test --lib seed_gateway_matches_golden_file`, review the diff, and \
             re-run `python3 -m openapi_spec_validator --schema 2.0 tests/golden/seed-gateway.yaml`.\n\
             rendered:\n{yaml}"
        );
    }

    #[test]
    fn same_input_renders_identical_bytes() {
        let first = render_yaml("secure-api", &spec(SEED), &backends());
        let second = render_yaml("secure-api", &spec(SEED), &backends());
        assert!(first.is_ok());
        assert_eq!(first, second);
    }

    #[test]
    fn document_declares_swagger_2_https_and_json() {
        let doc = rendered(ONE_ROUTE);
        assert_eq!(doc["swagger"], "2.0");
        assert_eq!(doc["schemes"], json!(["https"]));
        assert_eq!(doc["produces"], json!(["application/json"]));
    }

    #[test]
    fn info_is_titled_by_the_gatewayconfig_name() {
        let expected = json!({
            "title": "gw",
            "version": "1.0.0",
            "description": "Managed by secure-api-operator from GatewayConfig gw",
        });
        assert_eq!(rendered(ONE_ROUTE)["info"], expected);
    }

    #[test]
    fn info_title_prefers_display_name() {
        let doc = rendered("displayName: Secure API\nroutes: [{path: /a, backend: {service: secure-api}}]");
        assert_eq!(doc["info"]["title"], "Secure API");
        assert_eq!(doc["info"]["description"], "Managed by secure-api-operator from GatewayConfig gw");
    }

    #[test]
    fn api_key_definition_defaults_to_query_parameter_key() {
        let doc = rendered("routes: [{path: /a, auth: apiKey, backend: {service: secure-api}}]");
        assert_eq!(doc["securityDefinitions"], json!({"api_key": {"type": "apiKey", "name": "key", "in": "query"}}));
    }

    #[test]
    fn api_key_in_header_defaults_to_x_api_key() {
        let doc = rendered(
            "auth: {apiKey: {in: header}}\nroutes: [{path: /a, auth: apiKey, backend: {service: secure-api}}]",
        );
        let expected = json!({"type": "apiKey", "name": "x-api-key", "in": "header"});
        assert_eq!(doc["securityDefinitions"]["api_key"], expected);
    }

    #[test]
    fn api_key_definition_uses_the_declared_name() {
        let doc = rendered(
            "auth: {apiKey: {in: header, name: X-Key}}\nroutes: [{path: /a, auth: apiKey, backend: {service: secure-api}}]",
        );
        assert_eq!(doc["securityDefinitions"]["api_key"], json!({"type": "apiKey", "name": "X-Key", "in": "header"}));
    }

    #[test]
    fn no_security_definitions_when_every_route_is_public() {
        let doc = rendered("auth: {apiKey: {in: query}}\nroutes: [{path: /a, backend: {service: secure-api}}]");
        assert!(doc.get("securityDefinitions").is_none());
    }

    #[test]
    fn jwt_definition_for_each_used_provider_with_comma_joined_audiences() {
        let doc = rendered(
            r#"
auth:
  jwt:
    - {name: google, issuer: "https://accounts.google.com", jwksUri: "https://www.googleapis.com/oauth2/v3/certs", audiences: [a1, a2]}
    - {name: unused, issuer: "https://unused.example.com", jwksUri: "https://unused.example.com/jwks"}
routes: [{path: /a, auth: "jwt:google", backend: {service: secure-api}}]
"#,
        );
        let expected = json!({"google": {
            "type": "oauth2",
            "authorizationUrl": "",
            "flow": "implicit",
            "x-google-issuer": "https://accounts.google.com",
            "x-google-jwks_uri": "https://www.googleapis.com/oauth2/v3/certs",
            "x-google-audiences": "a1,a2",
        }});
        assert_eq!(doc["securityDefinitions"], expected);
    }

    #[test]
    fn jwt_definition_omits_audiences_when_none_are_declared() {
        let doc = rendered(
            r#"
auth: {jwt: [{name: idp, issuer: "https://idp.example.com", jwksUri: "https://idp.example.com/jwks"}]}
routes: [{path: /a, auth: "jwt:idp", backend: {service: secure-api}}]
"#,
        );
        assert!(doc["securityDefinitions"]["idp"].get("x-google-audiences").is_none());
    }

    #[test]
    fn quotas_declare_management_metrics_and_per_minute_limits() {
        let doc = rendered(
            "quotas: [{metric: reads, limitPerMinute: 1000}]\nroutes: [{path: /a, auth: apiKey, backend: {service: secure-api}}]",
        );
        let expected = json!({
            "metrics": [{"name": "reads", "displayName": "reads", "valueType": "INT64", "metricKind": "DELTA"}],
            "quota": {"limits": [{
                "name": "reads-limit",
                "metric": "reads",
                "unit": "1/min/{project}",
                "values": {"STANDARD": 1000},
            }]},
        });
        assert_eq!(doc["x-google-management"], expected);
    }

    #[test]
    fn no_management_section_without_quotas() {
        assert!(rendered(ONE_ROUTE).get("x-google-management").is_none());
    }
}
