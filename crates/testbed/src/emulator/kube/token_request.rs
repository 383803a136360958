//! `POST /api/v1/namespaces/NS/serviceaccounts/NAME/token`: a TokenRequest
//! (authentication.k8s.io/v1) answered with a signed service-account token, in kube-apiserver's
//! order of checks (body, namespace, name, service account, expiry). Nothing is stored: no
//! object, no watch event, no new resourceVersion. `spec.boundObjectRef` is echoed but not bound.

use super::handlers::{ResourceRequest, check_namespace, parse_body};
use super::request::ResourcePath;
use super::schema_errors::{FieldError, causes, invalid_message};
use super::status::ApiError;
use super::store::State;
use super::tokens;
use serde_json::{Map, Value, json};

const GROUP: &str = "authentication.k8s.io";
const KIND: &str = "TokenRequest";
const API_VERSION: &str = "authentication.k8s.io/v1";

/// kube-apiserver's default `spec.expirationSeconds` (authentication/v1 defaulting).
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// Bounds of `ValidateTokenRequest`.
const MIN_EXPIRATION_SECONDS: i64 = 10 * 60;
const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;

/// Whether a path is the `token` subresource of a ServiceAccount.
pub fn addresses(path: &ResourcePath) -> bool {
    path.group.is_empty()
        && path.version == "v1"
        && path.plural == "serviceaccounts"
        && path.subresource.as_deref() == Some("token")
}

/// The decoded spec, defaults applied (audiences stay empty here: the default depends on the issuer).
#[derive(Clone, Debug, PartialEq)]
struct Spec {
    audiences: Vec<String>,
    expiration_seconds: i64,
    bound_object_ref: Value,
}

/// The service account a token is for.
struct Account<'a> {
    namespace: &'a str,
    name: &'a str,
    uid: &'a str,
}

/// Serves one request to the `token` subresource: the TokenRequest, with `status.token`.
pub fn handle(state: &mut State, issuer: &str, request: &ResourceRequest<'_>) -> Result<Value, ApiError> {
    if request.method != "POST" {
        return Err(ApiError::method_not_allowed("the server does not allow this method on the requested resource"));
    }
    let path = request.path;
    let (Some(namespace), Some(name)) = (path.namespace.as_deref(), path.name.as_deref()) else {
        return Err(ApiError::no_route());
    };
    let rt = state.registry.find("", "v1", "serviceaccounts").ok_or_else(ApiError::no_route)?;
    // --- decode (the apiserver decodes and defaults before admission)
    let body = typed(parse_body(request)?, namespace)?;
    let mut spec = decode_spec(&body["spec"])?;
    if spec.audiences.is_empty() {
        // kube-apiserver's `--api-audiences` defaults to the issuer.
        spec.audiences = vec![issuer.to_owned()];
    }
    // --- admission, then the checks of the token subresource
    check_namespace(state, &rt, Some(namespace))?;
    check_name(&body, name)?;
    let sa = state
        .get(&rt.storage_key(), namespace, name)
        .ok_or_else(|| ApiError::not_found(&rt.plural, &rt.group, name))?;
    let uid = sa["metadata"]["uid"].as_str().unwrap_or_default().to_owned();
    validate(&spec)?;
    // --- build and sign
    let now: jiff::Timestamp = request.now.parse().map_err(|e| ApiError::internal(format!("server clock: {e}")))?;
    let jti = state.new_uid();
    let account = Account { namespace, name, uid: &uid };
    let claims = claims(issuer, &account, &spec, now.as_second(), &jti);
    let token = tokens::sign(&claims).map_err(|e| ApiError::internal(format!("failed to generate token: {e}")))?;
    let expires = timestamp(now.as_second() + spec.expiration_seconds)?;
    let server = ServerFields { name, namespace, now: request.now };
    Ok(response(body, &spec, &server, token, &expires))
}

/// The body as a TokenRequest in the request's namespace; 400 for another kind or namespace.
fn typed(mut body: Value, namespace: &str) -> Result<Value, ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request("the request body is not a JSON object"));
    }
    if let Some(api_version) = body["apiVersion"].as_str().filter(|v| *v != API_VERSION) {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({API_VERSION})"
        )));
    }
    if let Some(kind) = body["kind"].as_str().filter(|k| *k != KIND) {
        return Err(ApiError::bad_request(format!(
            "the kind of the object ({kind}) does not match the resource ({KIND})"
        )));
    }
    match body["metadata"]["namespace"].as_str() {
        Some(ns) if !ns.is_empty() && ns != namespace => {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        _ => {}
    }
    body["apiVersion"] = json!(API_VERSION);
    body["kind"] = json!(KIND);
    Ok(body)
}

/// `spec` as the apiserver's decoder reads it: wrong JSON types are a 400, absent fields defaulted.
fn decode_spec(spec: &Value) -> Result<Spec, ApiError> {
    let spec = match spec {
        Value::Null => &Value::Object(Map::new()),
        Value::Object(_) => spec,
        other => return Err(undecodable(other, "TokenRequest.spec", "v1.TokenRequestSpec")),
    };
    let audiences = match &spec["audiences"] {
        Value::Null => vec![],
        Value::Array(items) => items
            .iter()
            .map(|a| {
                a.as_str().map(str::to_owned).ok_or_else(|| undecodable(a, "TokenRequestSpec.spec.audiences", "string"))
            })
            .collect::<Result<_, _>>()?,
        other => return Err(undecodable(other, "TokenRequestSpec.spec.audiences", "[]string")),
    };
    let expiration_seconds = match &spec["expirationSeconds"] {
        Value::Null => DEFAULT_EXPIRATION_SECONDS,
        other => {
            other.as_i64().ok_or_else(|| undecodable(other, "TokenRequestSpec.spec.expirationSeconds", "int64"))?
        }
    };
    Ok(Spec { audiences, expiration_seconds, bound_object_ref: spec["boundObjectRef"].clone() })
}

/// The 400 kube-apiserver gives a body its JSON decoder cannot read.
fn undecodable(value: &Value, field: &str, go_type: &str) -> ApiError {
    let found = match value {
        Value::Bool(_) => "bool".to_owned(),
        Value::Number(n) => format!("number {n}"),
        Value::String(_) => "string".to_owned(),
        Value::Array(_) => "array".to_owned(),
        Value::Object(_) => "object".to_owned(),
        Value::Null => "null".to_owned(),
    };
    ApiError::bad_request(format!(
        "{KIND} in version \"v1\" cannot be handled as a {KIND}: json: cannot unmarshal {found} into Go struct field {field} of type {go_type}"
    ))
}

/// A name in the body must be the service account's.
fn check_name(body: &Value, name: &str) -> Result<(), ApiError> {
    match body["metadata"]["name"].as_str() {
        Some(given) if !given.is_empty() && given != name => {
            let errors = [FieldError::invalid(
                "metadata.name",
                &json!(given).to_string(),
                "must match the service account name if specified",
            )];
            Err(ApiError::invalid(KIND, GROUP, name, invalid_message(KIND, GROUP, name, &errors), causes(&errors)))
        }
        _ => Ok(()),
    }
}

/// `ValidateTokenRequest`: 10 minutes to 2^32 seconds. The apiserver names no object here.
fn validate(spec: &Spec) -> Result<(), ApiError> {
    let seconds = spec.expiration_seconds;
    let problem = if seconds < MIN_EXPIRATION_SECONDS {
        "may not specify a duration less than 10 minutes"
    } else if seconds > MAX_EXPIRATION_SECONDS {
        "may not specify a duration larger than 2^32 seconds"
    } else {
        return Ok(());
    };
    let errors = [FieldError::invalid("spec.expirationSeconds", &seconds.to_string(), problem)];
    Err(ApiError::invalid(KIND, GROUP, "", invalid_message(KIND, GROUP, "", &errors), causes(&errors)))
}

/// The token's claims, as kube-apiserver's `serviceaccount.Claims` plus the issuer.
fn claims(issuer: &str, account: &Account<'_>, spec: &Spec, issued_at: i64, jti: &str) -> Value {
    json!({
        "aud": spec.audiences,
        "exp": issued_at + spec.expiration_seconds,
        "iat": issued_at,
        "iss": issuer,
        "jti": jti,
        "kubernetes.io": {
            "namespace": account.namespace,
            "serviceaccount": { "name": account.name, "uid": account.uid },
        },
        "nbf": issued_at,
        "sub": format!("system:serviceaccount:{}:{}", account.namespace, account.name),
    })
}

/// What the server sets in the echoed TokenRequest's metadata.
struct ServerFields<'a> {
    name: &'a str,
    namespace: &'a str,
    now: &'a str,
}

/// The request echoed back with the defaults, the server's metadata and the token.
fn response(mut body: Value, spec: &Spec, server: &ServerFields<'_>, token: String, expires: &str) -> Value {
    // Like any subresource create, the body cannot set the server's own metadata fields.
    let mut metadata = body["metadata"].as_object().cloned().unwrap_or_default();
    for field in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"] {
        metadata.remove(field);
    }
    metadata.insert("name".into(), json!(server.name));
    metadata.insert("namespace".into(), json!(server.namespace));
    metadata.insert("creationTimestamp".into(), json!(server.now));
    body["metadata"] = Value::Object(metadata);
    body["spec"] = json!({
        "audiences": spec.audiences,
        "expirationSeconds": spec.expiration_seconds,
        "boundObjectRef": spec.bound_object_ref,
    });
    body["status"] = json!({ "token": token, "expirationTimestamp": expires });
    body
}

fn timestamp(seconds: i64) -> Result<String, ApiError> {
    let at = jiff::Timestamp::from_second(seconds).map_err(|e| ApiError::internal(format!("expiration time: {e}")))?;
    Ok(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(body: Value) -> Result<Spec, ApiError> {
        decode_spec(&body)
    }

    #[test]
    fn an_empty_spec_gets_the_default_expiry_and_no_audiences_yet() {
        let decoded = spec(Value::Null).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(decoded, Spec { audiences: vec![], expiration_seconds: 3600, bound_object_ref: Value::Null });
        let given = spec(json!({ "audiences": ["a", "b"], "expirationSeconds": 7200 }));
        assert!(given.is_ok_and(|s| s.audiences == ["a", "b"] && s.expiration_seconds == 7200));
    }

    #[test]
    fn wrong_json_types_are_bad_requests() {
        let text = spec(json!({ "expirationSeconds": "600" })).err().map(|e| (e.code, e.message));
        assert_eq!(
            text,
            Some((
                400,
                "TokenRequest in version \"v1\" cannot be handled as a TokenRequest: json: cannot unmarshal string \
                 into Go struct field TokenRequestSpec.spec.expirationSeconds of type int64"
                    .to_owned()
            ))
        );
        assert!(spec(json!({ "audiences": [1] })).is_err_and(|e| e.code == 400));
        assert!(spec(json!({ "expirationSeconds": 600.5 })).is_err_and(|e| e.code == 400));
    }

    #[test]
    fn expiry_outside_ten_minutes_to_two_to_the_32_seconds_is_invalid() {
        let at = |seconds| Spec { audiences: vec![], expiration_seconds: seconds, bound_object_ref: Value::Null };
        let short = validate(&at(60)).err();
        assert_eq!(
            short.as_ref().map(|e| (e.code, e.message.as_str())),
            Some((
                422,
                "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 60: \
                 may not specify a duration less than 10 minutes"
            ))
        );
        assert_eq!(
            short.and_then(|e| e.details).map(|d| d["causes"][0]["field"].clone()),
            Some(json!("spec.expirationSeconds"))
        );
        let long = validate(&at((1 << 32) + 1)).err().map(|e| e.message);
        assert!(long.is_some_and(|m| {
            m.ends_with("Invalid value: 4294967297: may not specify a duration larger than 2^32 seconds")
        }));
        assert!(validate(&at(600)).is_ok() && validate(&at(1 << 32)).is_ok());
    }

    #[test]
    fn a_name_in_the_body_must_be_the_service_accounts() {
        assert!(check_name(&json!({ "metadata": { "name": "robot" } }), "robot").is_ok());
        assert!(check_name(&json!({ "metadata": {} }), "robot").is_ok());
        let error = check_name(&json!({ "metadata": { "name": "other" } }), "robot").err();
        assert_eq!(
            error.map(|e| (e.code, e.message)),
            Some((
                422,
                "TokenRequest.authentication.k8s.io \"robot\" is invalid: metadata.name: Invalid value: \"other\": \
                 must match the service account name if specified"
                    .to_owned()
            ))
        );
    }

    #[test]
    fn another_kind_or_namespace_in_the_body_is_a_bad_request() {
        assert!(typed(json!({ "kind": "Secret" }), "ns").is_err_and(|e| e.code == 400));
        assert!(typed(json!({ "apiVersion": "v1" }), "ns").is_err_and(|e| e.code == 400));
        assert!(typed(json!({ "metadata": { "namespace": "other" } }), "ns").is_err_and(|e| e.code == 400));
        let body = typed(json!({}), "ns").unwrap_or_default();
        assert_eq!((&body["apiVersion"], &body["kind"]), (&json!("authentication.k8s.io/v1"), &json!("TokenRequest")));
    }

    #[test]
    fn claims_name_the_service_account_like_kube_apiserver() {
        let account = Account { namespace: "prod", name: "robot", uid: "u-1" };
        let spec = Spec { audiences: vec!["sts".into()], expiration_seconds: 600, bound_object_ref: Value::Null };
        let claims = claims("https://issuer", &account, &spec, 1_000, "j-1");
        assert_eq!(
            claims,
            json!({
                "aud": ["sts"],
                "exp": 1_600,
                "iat": 1_000,
                "iss": "https://issuer",
                "jti": "j-1",
                "kubernetes.io": { "namespace": "prod", "serviceaccount": { "name": "robot", "uid": "u-1" } },
                "nbf": 1_000,
                "sub": "system:serviceaccount:prod:robot",
            })
        );
    }

    #[test]
    fn the_response_echoes_the_request_with_server_metadata_and_defaults() {
        let body = json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "metadata": { "labels": { "a": "b" }, "uid": "mine", "creationTimestamp": "1999-01-01T00:00:00Z" },
            "spec": {},
        });
        let spec = Spec { audiences: vec!["x".into()], expiration_seconds: 3600, bound_object_ref: Value::Null };
        let server = ServerFields { name: "robot", namespace: "prod", now: "2026-01-01T00:00:00Z" };
        let out = response(body, &spec, &server, "t".into(), "2026-01-01T01:00:00Z");
        assert_eq!(
            out["metadata"],
            json!({ "name": "robot", "namespace": "prod", "creationTimestamp": "2026-01-01T00:00:00Z", "labels": { "a": "b" } })
        );
        assert_eq!(out["spec"], json!({ "audiences": ["x"], "expirationSeconds": 3600, "boundObjectRef": null }));
        assert_eq!(out["status"], json!({ "token": "t", "expirationTimestamp": "2026-01-01T01:00:00Z" }));
    }

    #[test]
    fn only_the_token_subresource_of_service_accounts_is_addressed() {
        let path = |plural: &str, sub: Option<&str>| ResourcePath {
            group: String::new(),
            version: "v1".into(),
            plural: plural.into(),
            namespace: Some("ns".into()),
            name: Some("robot".into()),
            subresource: sub.map(Into::into),
            legacy_watch: false,
        };
        assert!(addresses(&path("serviceaccounts", Some("token"))));
        assert!(!addresses(&path("serviceaccounts", None)));
        assert!(!addresses(&path("secrets", Some("token"))));
    }
}
