//! Security Token Service `v1/token` (RFC 8693 token exchange): the request, the two audience
//! forms (GKE's `identitynamespace:…` and a workload identity pool provider), the checks of the
//! subject token's claims against the audience, the federated principal, and OAuth-style errors.
//! Pure: verifying the signature and minting the token happen elsewhere.

use super::jwt::Claims;
use super::principals::{gke_pool, gke_principal, kubernetes_subject, pool_path, pool_principal};
use serde_json::{Value, json};
use std::fmt;

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// An OAuth error answer (HTTP 400): `{"error":"invalid_grant","error_description":"..."}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    /// A missing or wrong parameter.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self { error: "invalid_request", description: description.into() }
    }

    /// A subject token that is bad, expired, unverifiable or for another audience.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self { error: "invalid_grant", description: description.into() }
    }

    /// An audience of no known form.
    pub fn invalid_target(description: impl Into<String>) -> Self {
        Self { error: "invalid_target", description: description.into() }
    }

    pub fn to_json(&self) -> Value {
        json!({ "error": self.error, "error_description": self.description })
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error, self.description)
    }
}

/// A checked exchange request. No `Debug`: it holds the subject token.
pub struct Exchange {
    pub audience: Audience,
    pub subject_token: String,
}

/// Parses the form-encoded (or JSON) body and checks the fixed parameters.
pub fn parse_request(body: &[u8]) -> Result<Exchange, OAuthError> {
    let params = parameters(body)?;
    let get = |name: &str| params.iter().rev().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
    let required = |name: &'static str| {
        get(name).filter(|v| !v.is_empty()).ok_or_else(|| OAuthError::invalid_request(format!("Missing {name}.")))
    };
    let expect = |name: &'static str, allowed: &[&str]| -> Result<(), OAuthError> {
        let value = required(name)?;
        if allowed.contains(&value) {
            Ok(())
        } else {
            Err(OAuthError::invalid_request(format!("Invalid value for {name}; expected {}.", allowed.join(" or "))))
        }
    };
    expect("grant_type", &[TOKEN_EXCHANGE])?;
    expect("requested_token_type", &[ACCESS_TOKEN])?;
    expect("subject_token_type", &[JWT, ID_TOKEN])?;
    let audience = Audience::parse(required("audience")?)?;
    let subject_token = required("subject_token")?.to_owned();
    Ok(Exchange { audience, subject_token })
}

/// Form encoding, as Google's client libraries send it, or a JSON object.
fn parameters(body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        let object: serde_json::Map<String, Value> = serde_json::from_slice(body)
            .map_err(|_| OAuthError::invalid_request("The request body is not a JSON object."))?;
        let text = |(key, value): (String, Value)| match value {
            Value::String(text) => Some((key, text)),
            _ => None,
        };
        return Ok(object.into_iter().filter_map(text).collect());
    }
    Ok(form_urlencoded::parse(body).into_owned().collect())
}

/// Who the subject token must be for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audience {
    /// `identitynamespace:PROJECT.svc.id.goog:ISSUER_URL`, as GKE's metadata server sends it.
    Gke { project: String, issuer: String },
    /// `//iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER`.
    Pool { number: String, pool: String, provider: String },
}

impl Audience {
    pub fn parse(audience: &str) -> Result<Self, OAuthError> {
        let unknown = || {
            OAuthError::invalid_target(
                "The audience is neither an identity namespace nor a workload identity pool provider.",
            )
        };
        if let Some(rest) = audience.strip_prefix("identitynamespace:") {
            let (namespace, issuer) = rest.split_once(':').ok_or_else(unknown)?;
            let project = namespace.strip_suffix(".svc.id.goog").filter(|p| !p.is_empty()).ok_or_else(unknown)?;
            if issuer.is_empty() {
                return Err(unknown());
            }
            return Ok(Self::Gke { project: project.to_owned(), issuer: issuer.to_owned() });
        }
        let path = audience.strip_prefix("//").or_else(|| audience.strip_prefix("https://")).ok_or_else(unknown)?;
        let segments: Vec<&str> = path.split('/').collect();
        match segments.as_slice() {
            [
                "iam.googleapis.com",
                "projects",
                number,
                "locations",
                "global",
                "workloadIdentityPools",
                pool,
                "providers",
                provider,
            ] if !number.is_empty()
                && number.bytes().all(|b| b.is_ascii_digit())
                && !pool.is_empty()
                && !provider.is_empty() =>
            {
                Ok(Self::Pool {
                    number: (*number).to_owned(),
                    pool: (*pool).to_owned(),
                    provider: (*provider).to_owned(),
                })
            }
            _ => Err(unknown()),
        }
    }

    /// Checks the verified claims against the audience: GKE wants `aud` to hold the identity
    /// namespace and `iss` to be the cluster's issuer; a pool provider wants `aud` to hold the
    /// provider's name (its default allowed audience, with `https:` or without).
    pub fn check(&self, claims: &Claims) -> Result<(), OAuthError> {
        match self {
            Self::Gke { project, issuer } => {
                let namespace = gke_pool(project);
                if !claims.aud.contains(&namespace) {
                    return Err(OAuthError::invalid_grant(format!(
                        "The audience of the subject token does not include {namespace}."
                    )));
                }
                if claims.iss != *issuer {
                    return Err(OAuthError::invalid_grant(
                        "The issuer of the subject token is not the issuer named in the audience.",
                    ));
                }
                Ok(())
            }
            Self::Pool { number, pool, provider } => {
                let name = format!("{}/providers/{provider}", pool_path(number, pool));
                let allowed = [format!("https://{name}"), format!("//{name}")];
                if claims.aud.iter().any(|aud| allowed.contains(aud)) {
                    Ok(())
                } else {
                    Err(OAuthError::invalid_grant(format!(
                        "The audience of the subject token does not include https://{name}."
                    )))
                }
            }
        }
    }

    /// The federated principal the token stands for.
    pub fn principal(&self, claims: &Claims) -> Result<String, OAuthError> {
        match self {
            Self::Gke { project, .. } => {
                let (namespace, name) = kubernetes_subject(&claims.sub).ok_or_else(|| {
                    OAuthError::invalid_grant("The subject of the subject token is not a Kubernetes ServiceAccount.")
                })?;
                Ok(gke_principal(project, namespace, name))
            }
            Self::Pool { number, pool, .. } => Ok(pool_principal(number, pool, &claims.sub)),
        }
    }
}

/// The answer: the federated token and how many seconds it lives.
pub fn answer(access_token: &str, expires_in: u64) -> Value {
    json!({
        "access_token": access_token,
        "issued_token_type": ACCESS_TOKEN,
        "token_type": "Bearer",
        "expires_in": expires_in,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://container.googleapis.com/v1/projects/p/locations/l/clusters/c";

    fn form(audience: &str) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", TOKEN_EXCHANGE)
            .append_pair("subject_token_type", JWT)
            .append_pair("requested_token_type", ACCESS_TOKEN)
            .append_pair("scope", "https://www.googleapis.com/auth/cloud-platform")
            .append_pair("audience", audience)
            .append_pair("subject_token", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
            .finish()
    }

    fn claims(iss: &str, aud: &str, sub: &str) -> Claims {
        Claims { iss: iss.to_owned(), sub: sub.to_owned(), aud: vec![aud.to_owned()], exp: 0 }
    }

    #[test]
    fn the_gke_audience_names_the_project_and_issuer() {
        let parsed = parse_request(form(&format!("identitynamespace:p.svc.id.goog:{ISSUER}")).as_bytes());
        let Ok(exchange) = parsed else { panic!("not parsed") };
        assert_eq!(exchange.audience, Audience::Gke { project: "p".into(), issuer: ISSUER.into() });
        assert_eq!(exchange.subject_token, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln");
    }

    #[test]
    fn the_pool_audience_names_number_pool_and_provider() {
        let audience = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/k8s";
        assert_eq!(
            Audience::parse(audience),
            Ok(Audience::Pool { number: "123".into(), pool: "pool".into(), provider: "k8s".into() })
        );
        let unknown = ["https://example.com", "identitynamespace:p:https://x", "//iam.googleapis.com/projects/p/x"];
        for audience in unknown {
            assert_eq!(Audience::parse(audience).map_err(|e| e.error), Err("invalid_target"), "{audience}");
        }
    }

    #[test]
    fn missing_and_wrong_parameters_are_invalid_requests() {
        let body = form("identitynamespace:p.svc.id.goog:https://i").replace("token-exchange", "jwt-bearer");
        assert_eq!(parse_request(body.as_bytes()).err().map(|e| e.error), Some("invalid_request"));
        assert_eq!(parse_request(b"grant_type=x").err().map(|e| e.error), Some("invalid_request"));
        let json = r#"{"grant_type":"urn:ietf:params:oauth:grant-type:token-exchange"}"#;
        assert_eq!(
            parse_request(json.as_bytes()).err().map(|e| e.description),
            Some("Missing requested_token_type.".into())
        );
    }

    #[test]
    fn gke_checks_audience_and_issuer_and_needs_a_kubernetes_subject() {
        let audience = Audience::Gke { project: "p".into(), issuer: ISSUER.into() };
        let good = claims(ISSUER, "p.svc.id.goog", "system:serviceaccount:apps:reader");
        assert_eq!(audience.check(&good), Ok(()));
        assert_eq!(audience.principal(&good), Ok(gke_principal("p", "apps", "reader")));
        let other_aud = claims(ISSUER, "q.svc.id.goog", "system:serviceaccount:apps:reader");
        assert_eq!(audience.check(&other_aud).map_err(|e| e.error), Err("invalid_grant"));
        let other_iss = claims("https://other", "p.svc.id.goog", "system:serviceaccount:apps:reader");
        assert_eq!(audience.check(&other_iss).map_err(|e| e.error), Err("invalid_grant"));
        let user = claims(ISSUER, "p.svc.id.goog", "alice");
        assert_eq!(audience.principal(&user).map_err(|e| e.error), Err("invalid_grant"));
    }

    #[test]
    fn a_pool_accepts_the_providers_name_with_or_without_https() {
        let audience = Audience::Pool { number: "123".into(), pool: "pool".into(), provider: "k8s".into() };
        let name = "iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/k8s";
        for aud in [format!("https://{name}"), format!("//{name}")] {
            assert_eq!(audience.check(&claims("https://any", &aud, "system:serviceaccount:a:b")), Ok(()));
        }
        let wrong = claims("https://any", "p.svc.id.goog", "system:serviceaccount:a:b");
        assert_eq!(audience.check(&wrong).map_err(|e| e.error), Err("invalid_grant"));
        assert_eq!(
            audience.principal(&wrong),
            Ok("principal://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/subject/system:serviceaccount:a:b".into())
        );
    }

    #[test]
    fn the_answer_is_a_bearer_access_token() {
        assert_eq!(
            answer("t", 60),
            json!({"access_token": "t", "issued_token_type": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 60})
        );
    }
}
