//! What a gateway's OpenAPI 2.0 documents declare, read once per request: each operation's
//! path template, method, `operationId`, security, backend and quota costs, plus the
//! document's quota limits; and which operation a request calls. Pure.

use serde_json::Value;
use std::time::Duration;

/// The operations a Swagger 2.0 path item can hold.
const METHODS: [&str; 7] = ["get", "put", "post", "delete", "options", "head", "patch"];
/// `x-google-backend.deadline` when unset (Google's documented default).
const DEFAULT_DEADLINE: Duration = Duration::from_secs(15);

/// The served API: every operation of every document of the config, and the quota limits.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub operations: Vec<Operation>,
    pub limits: Vec<Limit>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    /// The path key, e.g. `/orders/{id}`.
    pub template: String,
    /// Upper case, e.g. `GET`.
    pub method: String,
    /// `operationId`, or `METHOD template` when the document has none.
    pub operation_id: String,
    pub security: Security,
    /// `None` only for documents the control plane would have refused.
    pub backend: Option<Backend>,
    /// `x-google-quota.metricCosts`, by metric.
    pub costs: Vec<(String, i64)>,
}

/// What a caller must present, from the `security` in force (the operation's, else the
/// document's). As ESPv2 does, API keys and JWTs are separate checks: a key is required when
/// any alternative names an `apiKey` definition, and a JWT when any names an oauth2 provider
/// (one valid token from any of them is enough).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Security {
    pub api_keys: Vec<KeyLocation>,
    pub jwt: Vec<JwtProvider>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyLocation {
    pub name: String,
    pub in_header: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtProvider {
    pub issuer: String,
    pub jwks_uri: String,
    /// `x-google-audiences`, split at commas; empty when not set.
    pub audiences: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    pub address: String,
    pub translation: Translation,
    pub deadline: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Translation {
    AppendPathToAddress,
    ConstantAddress,
}

/// One `quota.limits` entry: at most `per_minute` units of `metric` per consumer and minute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limit {
    pub name: String,
    pub metric: String,
    pub per_minute: i64,
}

/// Path parameters bound by a template, in template order.
pub type Params = Vec<(String, String)>;

/// What a request is matched to.
#[derive(Debug, PartialEq)]
pub enum Match<'a> {
    /// The operation and the path parameters it binds, in template order.
    Found(&'a Operation, Vec<(String, String)>),
    /// A template matches the path but no operation has this method.
    WrongMethod(&'a str),
    NotFound,
}

impl Plan {
    /// Reads the documents of a config (later documents add operations; the first limit
    /// declared for a name wins).
    pub fn of(documents: &[Value]) -> Self {
        let mut plan = Self::default();
        for document in documents {
            read_document(document, &mut plan);
        }
        plan
    }

    /// The operation `method path` calls. Literal segments beat `{param}` segments, so
    /// `/orders/new` goes to its own operation before `/orders/{id}`; a trailing slash is
    /// ignored, as ESPv2 matches both forms.
    pub fn find(&self, method: &str, path: &str) -> Match<'_> {
        let mut best: Option<(usize, &Operation, Params)> = None;
        let mut wrong_method = None;
        for operation in &self.operations {
            let Some((literals, params)) = bind(&operation.template, path) else { continue };
            if !operation.method.eq_ignore_ascii_case(method) {
                wrong_method.get_or_insert(operation.template.as_str());
                continue;
            }
            if best.as_ref().is_none_or(|(most, _, _)| literals > *most) {
                best = Some((literals, operation, params));
            }
        }
        match (best, wrong_method) {
            (Some((_, operation, params)), _) => Match::Found(operation, params),
            (None, Some(template)) => Match::WrongMethod(template),
            (None, None) => Match::NotFound,
        }
    }
}

/// The number of literal segments matched and the parameters bound, when `path` fits.
fn bind(template: &str, path: &str) -> Option<(usize, Params)> {
    let trim = |p: &str| p.strip_suffix('/').filter(|p| !p.is_empty()).map(str::to_owned).unwrap_or(p.to_owned());
    let (template, path) = (trim(template), trim(path));
    let (wanted, given): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    if wanted.len() != given.len() {
        return None;
    }
    let mut literals = 0;
    let mut params = Vec::new();
    for (want, got) in wanted.iter().zip(&given) {
        match want.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
            Some(name) if !got.is_empty() => params.push((name.to_owned(), (*got).to_owned())),
            Some(_) => return None,
            None if want == got => literals += 1,
            None => return None,
        }
    }
    Some((literals, params))
}

fn read_document(document: &Value, plan: &mut Plan) {
    let definitions = document.get("securityDefinitions");
    let default_security = document.get("security");
    // Google documents different defaults: top-level backends append the path, an
    // operation's own backend is a constant address.
    let default_backend = backend(document.get("x-google-backend"), Translation::AppendPathToAddress);
    let paths = document.get("paths").and_then(Value::as_object).into_iter().flatten();
    for (template, item) in paths {
        for method in METHODS {
            let Some(operation) = item.get(method) else { continue };
            let upper = method.to_ascii_uppercase();
            let operation_id = operation
                .get("operationId")
                .and_then(Value::as_str)
                .map_or_else(|| format!("{upper} {template}"), str::to_owned);
            let in_force = operation.get("security").or(default_security);
            let own_backend = backend(operation.get("x-google-backend"), Translation::ConstantAddress);
            plan.operations.push(Operation {
                template: template.clone(),
                method: upper,
                operation_id,
                security: security(in_force, definitions),
                backend: own_backend.or_else(|| default_backend.clone()),
                costs: costs(operation.pointer("/x-google-quota/metricCosts")),
            });
        }
    }
    let limits = document.pointer("/x-google-management/quota/limits").and_then(Value::as_array);
    for limit in limits.into_iter().flatten() {
        let text = |field: &str| limit.get(field).and_then(Value::as_str).map(str::to_owned);
        let per_minute = limit.pointer("/values/STANDARD").and_then(integer);
        let (Some(metric), Some(per_minute)) = (text("metric"), per_minute) else { continue };
        let name = text("name").unwrap_or_else(|| metric.clone());
        if !plan.limits.iter().any(|l| l.metric == metric) {
            plan.limits.push(Limit { name, metric, per_minute });
        }
    }
}

fn security(in_force: Option<&Value>, definitions: Option<&Value>) -> Security {
    let mut security = Security::default();
    let alternatives = in_force.and_then(Value::as_array).into_iter().flatten();
    for name in alternatives.filter_map(Value::as_object).flat_map(|alternative| alternative.keys()) {
        let Some(definition) = definitions.and_then(|d| d.get(name)) else { continue };
        let field = |key: &str| definition.get(key).and_then(Value::as_str);
        match field("type") {
            Some("apiKey") => {
                let location = KeyLocation {
                    name: field("name").unwrap_or("key").to_owned(),
                    in_header: field("in") == Some("header"),
                };
                if !security.api_keys.contains(&location) {
                    security.api_keys.push(location);
                }
            }
            Some("oauth2") => {
                let (Some(issuer), Some(jwks_uri)) = (field("x-google-issuer"), field("x-google-jwks_uri")) else {
                    continue;
                };
                let audiences = field("x-google-audiences").unwrap_or_default();
                let audiences = audiences.split(',').map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned);
                let provider = JwtProvider {
                    issuer: issuer.to_owned(),
                    jwks_uri: jwks_uri.to_owned(),
                    audiences: audiences.collect(),
                };
                if !security.jwt.contains(&provider) {
                    security.jwt.push(provider);
                }
            }
            _ => {}
        }
    }
    security
}

fn backend(value: Option<&Value>, default_translation: Translation) -> Option<Backend> {
    let value = value?;
    let address = value.get("address").and_then(Value::as_str)?.to_owned();
    let translation = match value.get("path_translation").and_then(Value::as_str) {
        Some("APPEND_PATH_TO_ADDRESS") => Translation::AppendPathToAddress,
        Some("CONSTANT_ADDRESS") => Translation::ConstantAddress,
        _ => default_translation,
    };
    let deadline = value
        .get("deadline")
        .and_then(Value::as_f64)
        .filter(|d| d.is_finite() && *d > 0.0)
        .map_or(DEFAULT_DEADLINE, Duration::from_secs_f64);
    Some(Backend { address, translation, deadline })
}

fn costs(value: Option<&Value>) -> Vec<(String, i64)> {
    let costs = value.and_then(Value::as_object).into_iter().flatten();
    costs.filter_map(|(metric, cost)| integer(cost).map(|cost| (metric.clone(), cost))).collect()
}

/// An integer written as a number or, as proto3 JSON writes int64, a string.
fn integer(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn document() -> Value {
        json!({
            "swagger": "2.0",
            "x-google-backend": {"address": "http://127.0.0.1:9000", "deadline": 2.5},
            "securityDefinitions": {
                "api_key": {"type": "apiKey", "name": "key", "in": "query"},
                "google": {"type": "oauth2", "x-google-issuer": "https://issuer", "x-google-jwks_uri": "http://127.0.0.1/jwks",
                    "x-google-audiences": "a1, a2"},
            },
            "security": [{"api_key": []}],
            "x-google-management": {"quota": {"limits": [
                {"name": "reads-limit", "metric": "reads", "unit": "1/min/{project}", "values": {"STANDARD": "5"}}]}},
            "paths": {
                "/health": {"get": {"operationId": "healthCheck", "security": []}},
                "/orders/{id}": {
                    "get": {"operationId": "getOrder", "x-google-quota": {"metricCosts": {"reads": 2}}},
                    "delete": {"operationId": "deleteOrder", "security": [{"google": []}],
                        "x-google-backend": {"address": "http://127.0.0.1:9001/admin"}},
                },
                "/orders/new": {"get": {"operationId": "newOrder"}},
            },
        })
    }

    fn found(plan: &Plan, method: &str, path: &str) -> Option<(String, Vec<(String, String)>)> {
        match plan.find(method, path) {
            Match::Found(operation, params) => Some((operation.operation_id.clone(), params)),
            _ => None,
        }
    }

    #[test]
    fn templates_bind_parameters_and_literal_segments_win() {
        let plan = Plan::of(&[document()]);
        assert_eq!(found(&plan, "GET", "/orders/7"), Some(("getOrder".into(), vec![("id".into(), "7".into())])));
        assert_eq!(found(&plan, "GET", "/orders/new"), Some(("newOrder".into(), vec![])));
        assert_eq!(found(&plan, "get", "/health/"), Some(("healthCheck".into(), vec![])));
        assert_eq!(plan.find("GET", "/orders"), Match::NotFound);
        assert_eq!(plan.find("GET", "/orders/7/items"), Match::NotFound);
        assert_eq!(plan.find("POST", "/orders/7"), Match::WrongMethod("/orders/{id}"));
    }

    #[test]
    fn security_is_the_operations_or_else_the_documents() {
        let plan = Plan::of(&[document()]);
        let of = |id: &str| plan.operations.iter().find(|o| o.operation_id == id).map(|o| o.security.clone());
        let key = KeyLocation { name: "key".into(), in_header: false };
        assert_eq!(of("healthCheck"), Some(Security::default()));
        assert_eq!(of("getOrder"), Some(Security { api_keys: vec![key], jwt: vec![] }));
        let provider = JwtProvider {
            issuer: "https://issuer".into(),
            jwks_uri: "http://127.0.0.1/jwks".into(),
            audiences: vec!["a1".into(), "a2".into()],
        };
        assert_eq!(of("deleteOrder"), Some(Security { api_keys: vec![], jwt: vec![provider] }));
    }

    #[test]
    fn backends_default_by_where_they_are_declared_and_costs_and_limits_are_read() {
        let plan = Plan::of(&[document()]);
        let of = |id: &str| plan.operations.iter().find(|o| o.operation_id == id).cloned();
        let get = of("getOrder").and_then(|o| o.backend.map(|b| (b.translation, b.deadline)));
        assert_eq!(get, Some((Translation::AppendPathToAddress, Duration::from_millis(2500))));
        let delete = of("deleteOrder").and_then(|o| o.backend.map(|b| (b.address, b.translation, b.deadline)));
        assert_eq!(
            delete,
            Some(("http://127.0.0.1:9001/admin".into(), Translation::ConstantAddress, DEFAULT_DEADLINE))
        );
        assert_eq!(of("getOrder").map(|o| o.costs), Some(vec![("reads".into(), 2)]));
        let limit = Limit { name: "reads-limit".into(), metric: "reads".into(), per_minute: 5 };
        assert_eq!(plan.limits, vec![limit]);
    }
}
