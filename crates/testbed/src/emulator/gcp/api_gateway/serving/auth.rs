//! The caller checks a gateway makes, as ESPv2 words them: where the API key is read from,
//! how a key's rejection is answered, and a JWT's issuer, signature, times and audience.
//! Pure: keys, validation results and the time come in. Neither a key nor a token is ever
//! put in an answer.

use super::super::super::api_keys::KeyRejection;
use super::super::super::iam::jwt::{self, Jwk, JwtError};
use super::Refusal;
use super::routing::{JwtProvider, KeyLocation};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper::HeaderMap;
use serde_json::Value;

/// ESPv2's answer to a call without a key (Service Control's check, passed through).
pub const NO_KEY: &str = "UNAUTHENTICATED: Method doesn't allow unregistered callers (callers without established identity). \
     Please use API Key or other form of API consumer identity to call this API.";

/// The key the caller sent in one of `locations` (the first found), if any.
pub fn api_key(locations: &[KeyLocation], query: &[(String, String)], headers: &HeaderMap) -> Option<String> {
    locations.iter().find_map(|location| {
        let found = if location.in_header {
            headers.get(location.name.as_str()).and_then(|v| v.to_str().ok()).map(str::to_owned)
        } else {
            query.iter().find(|(name, _)| name == &location.name).map(|(_, value)| value.clone())
        };
        found.filter(|key| !key.is_empty())
    })
}

/// How ESPv2 answers a key Service Control refuses: unknown and deleted keys are
/// `INVALID_ARGUMENT` (400), a service the key's project has not enabled and a key restricted
/// to other services or methods are `PERMISSION_DENIED` (403).
pub fn key_refusal(rejection: KeyRejection, service: &str, method: &str) -> Refusal {
    match rejection {
        KeyRejection::Unknown => Refusal::new(400, "INVALID_ARGUMENT: API key not valid. Please pass a valid API key."),
        KeyRejection::Deleted => Refusal::new(400, "INVALID_ARGUMENT: API key not found. Please pass a valid API key."),
        KeyRejection::ServiceNotEnabled => {
            Refusal::new(403, format!("PERMISSION_DENIED: API {service} is not enabled for the project."))
        }
        KeyRejection::ServiceNotAllowed | KeyRejection::MethodNotAllowed => {
            Refusal::new(403, format!("PERMISSION_DENIED: Requests to this API {service} method {method} are blocked."))
        }
    }
}

/// The token of `Authorization: Bearer TOKEN`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(hyper::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// The provider whose issuer signed `token`, read from the unverified payload (ESPv2 picks the
/// provider by `iss` before it checks anything else).
pub fn provider_for<'a>(token: &str, providers: &'a [JwtProvider]) -> Result<&'a JwtProvider, Refusal> {
    let payload = token.split('.').nth(1).ok_or_else(malformed)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).map_err(|_| malformed())?;
    let claims: Value = serde_json::from_slice(&bytes).map_err(|_| malformed())?;
    let issuer = claims.get("iss").and_then(Value::as_str).unwrap_or_default();
    providers
        .iter()
        .find(|provider| provider.issuer == issuer)
        .ok_or_else(|| Refusal::new(401, "Jwt issuer is not configured"))
}

/// Verifies `token` for `provider` with `keys` at `now` (seconds since the epoch). Without
/// `x-google-audiences`, the audience must be the service name, bare or as `https://NAME`
/// (Endpoints' default).
pub fn verify(token: &str, provider: &JwtProvider, keys: &[Jwk], service: &str, now: u64) -> Result<(), Refusal> {
    let claims = jwt::decode(token).and_then(|unverified| unverified.verify(keys, now)).map_err(jwt_refusal)?;
    let defaults = [service.to_owned(), format!("https://{service}")];
    let allowed: &[String] = if provider.audiences.is_empty() { &defaults } else { &provider.audiences };
    if !claims.aud.iter().any(|aud| allowed.contains(aud)) {
        return Err(audience_refusal());
    }
    Ok(())
}

fn jwt_refusal(error: JwtError) -> Refusal {
    match error {
        JwtError::Expired => Refusal::new(401, "Jwt is expired"),
        JwtError::NotYetValid => Refusal::new(401, "Jwt not yet valid"),
        // Envoy answers a token without an allowed audience 403, whatever the reason.
        JwtError::MissingClaim("aud") => audience_refusal(),
        JwtError::Malformed => malformed(),
        JwtError::Algorithm | JwtError::UnknownKey | JwtError::Signature | JwtError::MissingClaim(_) => {
            Refusal::new(401, "Jwt verification fails")
        }
    }
}

fn audience_refusal() -> Refusal {
    Refusal::new(403, "Audiences in Jwt are not allowed")
}

fn malformed() -> Refusal {
    Refusal::new(401, "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::{AUTHORIZATION, HeaderValue};

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn keys_are_read_where_the_definition_says() {
        let in_query = [KeyLocation { name: "key".into(), in_header: false }];
        let in_header = [KeyLocation { name: "x-api-key".into(), in_header: true }];
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("h"));
        assert_eq!(api_key(&in_query, &query(&[("a", "1"), ("key", "q")]), &headers), Some("q".into()));
        assert_eq!(api_key(&in_query, &query(&[("key", "")]), &headers), None);
        assert_eq!(api_key(&in_header, &query(&[("key", "q")]), &headers), Some("h".into()));
        assert_eq!(api_key(&in_header, &[], &HeaderMap::new()), None);
    }

    #[test]
    fn rejections_answer_espv2s_codes_without_the_key() {
        let answer = |r| {
            let refusal = key_refusal(r, "s.apigateway.p.cloud.goog", "getConfig");
            (refusal.status, refusal.message)
        };
        assert_eq!(answer(KeyRejection::Unknown).0, 400);
        assert_eq!(answer(KeyRejection::Deleted).0, 400);
        let (status, message) = answer(KeyRejection::ServiceNotEnabled);
        assert_eq!(
            (status, message.as_str()),
            (403, "PERMISSION_DENIED: API s.apigateway.p.cloud.goog is not enabled for the project.")
        );
        let (status, message) = answer(KeyRejection::MethodNotAllowed);
        assert_eq!(status, 403);
        assert!(message.contains("method getConfig are blocked"), "{message}");
    }

    #[test]
    fn bearer_tokens_and_issuers_are_read_from_the_request() {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer a.b.c"));
        assert_eq!(bearer(&headers), Some("a.b.c"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic eA=="));
        assert_eq!(bearer(&headers), None);
        let provider = |issuer: &str| JwtProvider { issuer: issuer.into(), jwks_uri: "u".into(), audiences: vec![] };
        let providers = [provider("https://a"), provider("https://b")];
        let payload = URL_SAFE_NO_PAD.encode(r#"{"iss":"https://b"}"#);
        let token = format!("e30.{payload}.sig");
        assert_eq!(provider_for(&token, &providers).map(|p| p.issuer.as_str()), Ok("https://b"));
        let other = format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(r#"{"iss":"https://c"}"#));
        assert_eq!(provider_for(&other, &providers).map_err(|r| r.message), Err("Jwt issuer is not configured".into()));
        assert_eq!(provider_for("garbage", &providers).map_err(|r| r.status), Err(401));
    }
}
