//! IAM Service Account Credentials `generateAccessToken`: the request (scopes, lifetime) and the
//! answer. Pure: who may call it and the minting happen elsewhere.

use super::rest::parse_body;
use super::rpc::RpcError;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};

/// The longest lifetime Google grants without an organization policy that extends it.
const MAX_LIFETIME: Duration = Duration::from_secs(3600);

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    #[serde(default)]
    delegates: Vec<String>,
    #[serde(default)]
    scope: Vec<String>,
    #[serde(default)]
    lifetime: Option<String>,
}

/// A checked request: the lifetime asked for, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub lifetime: Option<Duration>,
}

/// Parses the body: at least one scope, no delegation chain (not emulated), a lifetime of at
/// most an hour written as a protobuf duration (`"3600s"`).
pub fn parse_request(body: &[u8]) -> Result<Request, RpcError> {
    let body: Body = parse_body(body)?;
    if body.scope.iter().all(|scope| scope.trim().is_empty()) {
        return Err(RpcError::invalid_argument("Scope required."));
    }
    if !body.delegates.is_empty() {
        return Err(RpcError::invalid_argument("Delegation chains are not supported by this emulator."));
    }
    let lifetime = match body.lifetime.as_deref() {
        None | Some("") => None,
        Some(text) => {
            let invalid = || {
                RpcError::invalid_argument(format!(
                    "Invalid value at 'lifetime' (type.googleapis.com/google.protobuf.Duration), \
                     Illegal duration format; duration must end with 's': {text}"
                ))
            };
            let lifetime = parse_duration(text).ok_or_else(invalid)?;
            if lifetime > MAX_LIFETIME || lifetime.is_zero() {
                return Err(RpcError::invalid_argument(
                    "The lifetime must be more than 0s and at most 3600s \
                     (longer lifetimes need an organization policy).",
                ));
            }
            Some(lifetime)
        }
    };
    Ok(Request { lifetime })
}

/// `"3600s"`, `"1.5s"`: protobuf's JSON form, seconds only (Go's format, which Kubernetes' parser
/// reads, also takes other units: Google refuses those).
fn parse_duration(text: &str) -> Option<Duration> {
    let seconds = text.strip_suffix('s')?;
    if seconds.is_empty() || !seconds.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    text.parse::<kube::core::Duration>().ok().map(Duration::from)
}

/// The answer: the token and when it expires (RFC 3339, whole seconds as Google writes it).
pub fn answer(access_token: &str, expires: SystemTime) -> Value {
    let seconds = expires.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| since.as_secs());
    let at = i64::try_from(seconds).ok().and_then(|s| jiff::Timestamp::from_second(s).ok());
    let expire_time = at.unwrap_or(jiff::Timestamp::UNIX_EPOCH).to_string();
    json!({ "accessToken": access_token, "expireTime": expire_time })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifetime_is_a_duration_of_at_most_an_hour() {
        let body = br#"{"scope":["https://www.googleapis.com/auth/cloud-platform"],"lifetime":"300s"}"#;
        assert_eq!(parse_request(body), Ok(Request { lifetime: Some(Duration::from_secs(300)) }));
        let none = br#"{"scope":["https://www.googleapis.com/auth/cloud-platform"]}"#;
        assert_eq!(parse_request(none), Ok(Request { lifetime: None }));
        for bad in ["7200s", "10m", "0s", "-1s"] {
            let body = format!(r#"{{"scope":["x"],"lifetime":"{bad}"}}"#);
            assert_eq!(parse_request(body.as_bytes()).map_err(|e| e.http_status), Err(400), "{bad}");
        }
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn a_scope_is_required_and_delegates_are_refused() {
        assert_eq!(parse_request(b"{}").map_err(|e| e.message), Err("Scope required.".to_owned()));
        let delegated = br#"{"scope":["x"],"delegates":["projects/-/serviceAccounts/a@b"]}"#;
        assert_eq!(parse_request(delegated).map_err(|e| e.http_status), Err(400));
    }

    #[test]
    fn the_expire_time_is_rfc3339_in_whole_seconds() {
        let expires = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
        assert_eq!(answer("t", expires), json!({"accessToken": "t", "expireTime": "2023-11-14T22:13:20Z"}));
    }
}
