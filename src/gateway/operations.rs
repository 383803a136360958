//! `paths`: one Swagger operation per route and method, with its `x-google-backend` and
//! `x-google-quota`.

use super::checks::RouteAuth;
use super::{API_KEY_DEFINITION, RenderError, method_key};
use crate::api::gateway_config::{Backend, GatewayConfigSpec, HttpMethod, PathTranslation, Route};
use serde_json::{Map, Number, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The `paths` object. Expects [`super::checks::check`] to have passed (no (path, method) twice).
pub(super) fn paths(
    spec: &GatewayConfigSpec,
    backends: &BTreeMap<String, String>,
) -> Result<Map<String, Value>, RenderError> {
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut operation_ids = BTreeSet::new();
    for route in &spec.routes {
        let backend = backend(route, backends)?;
        let auth = RouteAuth::of(route)?;
        for (index, method) in route.methods.iter().enumerate() {
            let id = operation_id(route, *method, index);
            if !operation_ids.insert(id.clone()) {
                return Err(RenderError::DuplicateOperationId(id));
            }
            let operation = operation(route, id, auth, backend.clone());
            paths.entry(route.path.clone()).or_default().insert(method_key(*method).to_owned(), operation);
        }
    }
    Ok(paths.into_iter().map(|(path, operations)| (path, Value::Object(operations))).collect())
}

/// One operation object.
fn operation(route: &Route, id: String, auth: RouteAuth<'_>, backend: Value) -> Value {
    let mut operation = Map::new();
    operation.insert("operationId".to_owned(), Value::String(id));
    if let Some(security) = security(auth) {
        operation.insert("security".to_owned(), security);
    }
    let parameters = path_parameters(&route.path);
    if !parameters.is_empty() {
        operation.insert("parameters".to_owned(), Value::Array(parameters));
    }
    operation.insert("responses".to_owned(), json!({"200": {"description": "OK"}}));
    operation.insert("x-google-backend".to_owned(), backend);
    if let Some(quota) = quota(route) {
        operation.insert("x-google-quota".to_owned(), quota);
    }
    Value::Object(operation)
}

/// The route's `operationId` for its `index`-th method: the declared id for the first method and
/// the id plus the capitalised method for the others; generated from method and path otherwise.
fn operation_id(route: &Route, method: HttpMethod, index: usize) -> String {
    match &route.operation_id {
        Some(id) if index == 0 => id.clone(),
        Some(id) => format!("{id}{}", capitalise(method_key(method))),
        None => format!("{}{}", method_key(method), camel_case_path(&route.path)),
    }
}

/// `/database/status` → `DatabaseStatus`, `/items/{id}` → `ItemsById`, `/` → `Root`; characters
/// that are not ASCII letters or digits separate words, so the result is a valid identifier.
fn camel_case_path(path: &str) -> String {
    let mut camel = String::new();
    for segment in path.split('/').filter(|segment| !segment.is_empty()) {
        let words = match segment.strip_prefix('{').and_then(|rest| rest.strip_suffix('}')) {
            Some(parameter) => {
                camel.push_str("By");
                parameter
            }
            None => segment,
        };
        for word in words.split(|c: char| !c.is_ascii_alphanumeric()).filter(|word| !word.is_empty()) {
            camel.push_str(&capitalise(word));
        }
    }
    if camel.is_empty() {
        camel.push_str("Root");
    }
    camel
}

/// First character in upper case, the rest as is (`getItem` stays camel case).
fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// `security` requirement; `None` for public routes (no key at all, as there is no global one).
fn security(auth: RouteAuth<'_>) -> Option<Value> {
    let definition = match auth {
        RouteAuth::None => return None,
        RouteAuth::ApiKey => API_KEY_DEFINITION,
        RouteAuth::Jwt(provider) => provider,
    };
    Some(json!([{ (definition): [] }]))
}

/// A required string path parameter per distinct `{name}` in the path template, in path order.
fn path_parameters(path: &str) -> Vec<Value> {
    let mut names: Vec<&str> = Vec::new();
    let mut rest = path;
    while let Some((name, after)) = rest.split_once('{').and_then(|(_, open)| open.split_once('}')) {
        // Swagger rejects two parameters with the same name and location.
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
        rest = after;
    }
    names.into_iter().map(|name| json!({"name": name, "in": "path", "required": true, "type": "string"})).collect()
}

/// `x-google-backend` of the route's operations.
fn backend(route: &Route, backends: &BTreeMap<String, String>) -> Result<Value, RenderError> {
    let declared = &route.backend;
    let mut backend = Map::new();
    backend.insert("address".to_owned(), Value::String(backend_address(route, backends)?));
    backend.insert("path_translation".to_owned(), json!(path_translation(declared.path_translation)));
    if let Some(seconds) = declared.deadline_seconds {
        backend.insert("deadline".to_owned(), Value::Number(deadline(route, seconds)?));
    }
    // API Gateway rejects jwt_audience together with disable_auth.
    if declared.disable_auth {
        backend.insert("disable_auth".to_owned(), Value::Bool(true));
    } else if let Some(audience) = &declared.jwt_audience {
        backend.insert("jwt_audience".to_owned(), Value::String(audience.clone()));
    }
    Ok(Value::Object(backend))
}

/// The explicit `backend.address`, or the resolved URL of `backend.service`.
fn backend_address(route: &Route, backends: &BTreeMap<String, String>) -> Result<String, RenderError> {
    let Backend { service, address, .. } = &route.backend;
    match (service, address) {
        (None, Some(address)) => Ok(address.clone()),
        (Some(service), None) => backends
            .get(service)
            .filter(|url| !url.is_empty())
            .cloned()
            .ok_or_else(|| RenderError::MissingBackend { route: route.path.clone(), service: service.clone() }),
        _ => Err(RenderError::InvalidBackend {
            route: route.path.clone(),
            reason: "set exactly one of backend.service and backend.address".to_owned(),
        }),
    }
}

/// The longest `deadlineSeconds` API Gateway takes (the CRD's maximum).
const MAX_DEADLINE_SECONDS: f64 = 3600.0;

/// `deadlineSeconds` as a JSON number, checked again here: `render` reads YAML that no API
/// server saw (YAML can spell `.nan` and `.inf`, JSON cannot), and a deadline of 0 would make
/// every call time out at once.
fn deadline(route: &Route, seconds: f64) -> Result<Number, RenderError> {
    let invalid = |reason: String| RenderError::InvalidBackend { route: route.path.clone(), reason };
    if !(seconds > 0.0 && seconds <= MAX_DEADLINE_SECONDS) {
        return Err(invalid(format!(
            "backend.deadlineSeconds must be above 0 and at most {MAX_DEADLINE_SECONDS}, got {seconds}"
        )));
    }
    Number::from_f64(seconds).ok_or_else(|| invalid(format!("backend.deadlineSeconds must be a number, got {seconds}")))
}

fn path_translation(translation: PathTranslation) -> &'static str {
    match translation {
        PathTranslation::APPEND_PATH_TO_ADDRESS => "APPEND_PATH_TO_ADDRESS",
        PathTranslation::CONSTANT_ADDRESS => "CONSTANT_ADDRESS",
    }
}

/// `x-google-quota` with the route's cost per metric; `None` when it charges nothing.
///
/// API Gateway only enforces quotas on operations that identify the consumer project, i.e. that
/// require an API key; a quota on a public or JWT-only route is accepted but not enforced.
/// Not checked here: it is a deployment choice, not a malformed document.
fn quota(route: &Route) -> Option<Value> {
    let costs = route.quota.as_ref().filter(|costs| !costs.is_empty())?;
    Some(json!({"metricCosts": costs}))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{backends, render_error, rendered, spec};
    use super::*;

    #[test]
    fn each_method_becomes_an_operation_under_its_lowercase_key() {
        let doc = rendered("routes: [{path: /items, methods: [GET, POST, DELETE], backend: {service: secure-api}}]");
        let keys: Vec<&String> = doc["paths"]["/items"].as_object().map(|ops| ops.keys().collect()).unwrap_or_default();
        assert_eq!(keys, ["delete", "get", "post"]);
    }

    #[test]
    fn declared_operation_id_gets_the_method_appended_after_the_first_method() {
        let doc = rendered(
            "routes: [{path: /item, methods: [GET, POST, PUT], operationId: getItem, backend: {service: secure-api}}]",
        );
        let item = &doc["paths"]["/item"];
        assert_eq!(item["get"]["operationId"], "getItem");
        assert_eq!(item["post"]["operationId"], "getItemPost");
        assert_eq!(item["put"]["operationId"], "getItemPut");
    }

    #[test]
    fn missing_operation_id_is_generated_from_method_and_camel_cased_path() {
        let cases = [
            ("/database/status", "GET", "getDatabaseStatus"),
            ("/items/{id}", "GET", "getItemsById"),
            ("/v1/user-profiles/{user_id}", "DELETE", "deleteV1UserProfilesByUserId"),
            ("/", "POST", "postRoot"),
        ];
        for (path, method, expected) in cases {
            let doc = rendered(&format!(
                "routes: [{{path: \"{path}\", methods: [{method}], backend: {{service: secure-api}}}}]"
            ));
            assert_eq!(doc["paths"][path][method.to_ascii_lowercase()]["operationId"], expected, "{method} {path}");
        }
    }

    #[test]
    fn duplicate_operation_id_is_rejected() {
        let error = render_error(
            r#"
routes:
  - {path: /a, operationId: same, backend: {service: secure-api}}
  - {path: /b, operationId: same, backend: {service: secure-api}}
"#,
        );
        assert_eq!(error, RenderError::DuplicateOperationId("same".into()));
    }

    #[test]
    fn suffixed_operation_id_colliding_with_a_declared_one_is_rejected() {
        let error = render_error(
            r#"
routes:
  - {path: /a, methods: [GET, POST], operationId: item, backend: {service: secure-api}}
  - {path: /b, operationId: itemPost, backend: {service: secure-api}}
"#,
        );
        assert_eq!(error, RenderError::DuplicateOperationId("itemPost".into()));
    }

    #[test]
    fn public_route_has_no_security_key() {
        let doc = rendered("routes: [{path: /a, auth: none, backend: {service: secure-api}}]");
        assert!(doc["paths"]["/a"]["get"].get("security").is_none());
    }

    #[test]
    fn api_key_route_requires_the_api_key_definition() {
        let doc = rendered("routes: [{path: /a, auth: apiKey, backend: {service: secure-api}}]");
        assert_eq!(doc["paths"]["/a"]["get"]["security"], json!([{"api_key": []}]));
    }

    #[test]
    fn jwt_route_requires_its_provider_definition() {
        let doc = rendered(
            r#"
auth: {jwt: [{name: google, issuer: "https://accounts.google.com", jwksUri: "https://www.googleapis.com/oauth2/v3/certs"}]}
routes: [{path: /a, auth: "jwt:google", backend: {service: secure-api}}]
"#,
        );
        assert_eq!(doc["paths"]["/a"]["get"]["security"], json!([{"google": []}]));
    }

    #[test]
    fn each_path_template_variable_is_a_required_string_path_parameter() {
        let doc = rendered("routes: [{path: \"/shelves/{shelf}/books/{book}\", backend: {service: secure-api}}]");
        let expected = json!([
            {"name": "shelf", "in": "path", "required": true, "type": "string"},
            {"name": "book", "in": "path", "required": true, "type": "string"},
        ]);
        assert_eq!(doc["paths"]["/shelves/{shelf}/books/{book}"]["get"]["parameters"], expected);
    }

    #[test]
    fn path_without_template_variables_has_no_parameters() {
        let doc = rendered("routes: [{path: /a, backend: {service: secure-api}}]");
        assert!(doc["paths"]["/a"]["get"].get("parameters").is_none());
    }

    #[test]
    fn every_operation_answers_200_ok() {
        let doc = rendered("routes: [{path: /a, methods: [GET, POST], backend: {service: secure-api}}]");
        for method in ["get", "post"] {
            assert_eq!(doc["paths"]["/a"][method]["responses"], json!({"200": {"description": "OK"}}));
        }
    }

    #[test]
    fn backend_service_is_replaced_by_its_resolved_url() {
        let doc = rendered("routes: [{path: /a, backend: {service: secure-api}}]");
        let expected =
            json!({"address": "https://secure-api.example.com", "path_translation": "APPEND_PATH_TO_ADDRESS"});
        assert_eq!(doc["paths"]["/a"]["get"]["x-google-backend"], expected);
    }

    #[test]
    fn backend_address_is_used_as_given() {
        let doc = rendered("routes: [{path: /a, backend: {address: \"https://api.example.com/v2\"}}]");
        assert_eq!(doc["paths"]["/a"]["get"]["x-google-backend"]["address"], "https://api.example.com/v2");
    }

    #[test]
    fn unresolved_backend_service_is_rejected() {
        let spec = spec("routes: [{path: /a, backend: {service: other}}]");
        let empty = BTreeMap::from([("other".to_owned(), String::new())]);
        for backends in [backends(), empty] {
            let error = super::super::render("gw", &spec, &backends);
            assert_eq!(error, Err(RenderError::MissingBackend { route: "/a".into(), service: "other".into() }));
        }
    }

    #[test]
    fn backend_with_both_or_neither_service_and_address_is_rejected() {
        let both = "routes: [{path: /a, backend: {service: secure-api, address: \"https://a.example.com\"}}]";
        for yaml in [both, "routes: [{path: /a, backend: {}}]"] {
            assert!(matches!(render_error(yaml), RenderError::InvalidBackend { route, .. } if route == "/a"));
        }
    }

    #[test]
    fn backend_carries_path_translation_deadline_and_jwt_audience() {
        let doc = rendered(
            r#"
routes:
  - path: /a
    backend: {service: secure-api, pathTranslation: CONSTANT_ADDRESS, deadlineSeconds: 30.5, jwtAudience: "aud-1"}
"#,
        );
        let expected = json!({
            "address": "https://secure-api.example.com",
            "path_translation": "CONSTANT_ADDRESS",
            "deadline": 30.5,
            "jwt_audience": "aud-1",
        });
        assert_eq!(doc["paths"]["/a"]["get"]["x-google-backend"], expected);
    }

    #[test]
    fn disable_auth_is_rendered_without_jwt_audience() {
        let doc = rendered("routes: [{path: /a, backend: {service: secure-api, disableAuth: true, jwtAudience: x}}]");
        let backend = &doc["paths"]["/a"]["get"]["x-google-backend"];
        assert_eq!(backend["disable_auth"], true);
        assert!(backend.get("jwt_audience").is_none());
    }

    #[test]
    fn non_finite_deadline_is_rejected() {
        let error = render_error("routes: [{path: /a, backend: {service: secure-api, deadlineSeconds: .inf}}]");
        assert!(matches!(error, RenderError::InvalidBackend { route, .. } if route == "/a"));
    }

    #[test]
    fn a_deadline_of_zero_or_less_or_past_an_hour_is_rejected() {
        for seconds in ["0", "0.0", "-0", "-1", ".nan", "3600.5"] {
            let yaml = format!("routes: [{{path: /a, backend: {{service: secure-api, deadlineSeconds: {seconds}}}}}]");
            let error = render_error(&yaml);
            assert!(
                matches!(&error, RenderError::InvalidBackend { route, reason } if route == "/a" && reason.contains("above 0")),
                "{seconds}: {error:?}"
            );
        }
    }

    #[test]
    fn route_quota_becomes_metric_costs_of_each_operation() {
        let doc = rendered(
            r#"
quotas: [{metric: reads, limitPerMinute: 100}, {metric: heavy, limitPerMinute: 5}]
routes:
  - {path: /a, methods: [GET, POST], auth: apiKey, quota: {reads: 1, heavy: 3}, backend: {service: secure-api}}
  - {path: /b, auth: apiKey, quota: {}, backend: {service: secure-api}}
"#,
        );
        for method in ["get", "post"] {
            assert_eq!(doc["paths"]["/a"][method]["x-google-quota"], json!({"metricCosts": {"reads": 1, "heavy": 3}}));
        }
        assert!(doc["paths"]["/b"]["get"].get("x-google-quota").is_none());
    }
}
