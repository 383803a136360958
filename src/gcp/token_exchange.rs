//! Workload Identity Federation: a Kubernetes ServiceAccount token becomes a federated Google
//! token at STS, which may then become a Google service account's token through IAM Credentials.
//! Tokens are `SecretString`s end to end; errors name the method, never a token.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use secrecy::SecretString;
use serde::Deserialize;

use super::GcpConfig;
use super::auth::{Auth, CLOUD_PLATFORM_SCOPE};
use super::caller::Caller;
use super::error::{Code, Detail, GcpError};
use super::http::{Call, CallObserver, Executor, Request, Verb, check_endpoint};

const STS_SERVICE: &str = "sts";
const IAM_CREDENTIALS_SERVICE: &str = "iamcredentials";
const METHOD_EXCHANGE: &str = "sts.token";
const METHOD_GENERATE: &str = "iamcredentials.serviceAccounts.generateAccessToken";
const STS_ENDPOINT: &str = "https://sts.googleapis.com";
const IAM_CREDENTIALS_ENDPOINT: &str = "https://iamcredentials.googleapis.com";

/// A Google access token and how long it stays valid from when it was received.
pub struct IssuedToken {
    pub token: SecretString,
    pub lifetime: Duration,
}

/// Endpoints of the exchange (overrides for emulators).
#[derive(Clone, Debug, Default)]
pub struct ExchangeEndpoints {
    pub sts: Option<String>,
    pub iam_credentials: Option<String>,
}

/// The STS and IAM Credentials client. Cheap to clone.
#[derive(Clone)]
pub struct TokenExchange {
    inner: Arc<Inner>,
}

struct Inner {
    /// Sends no credentials of the operator's own: STS authenticates the subject token, and
    /// IAM Credentials calls carry the federated token.
    executor: Executor,
    sts: String,
    iam_credentials: String,
}

impl TokenExchange {
    /// # Errors
    /// An invalid endpoint override (INVALID_ARGUMENT).
    pub fn new(
        config: &GcpConfig,
        endpoints: &ExchangeEndpoints,
        observer: Option<Arc<dyn CallObserver>>,
    ) -> Result<Self, GcpError> {
        let sts = endpoint(endpoints.sts.as_deref(), "sts_endpoint", STS_ENDPOINT)?;
        let iam_credentials =
            endpoint(endpoints.iam_credentials.as_deref(), "iam_credentials_endpoint", IAM_CREDENTIALS_ENDPOINT)?;
        let executor = Executor::new(config, Auth::None, observer)?;
        Ok(Self { inner: Arc::new(Inner { executor, sts, iam_credentials }) })
    }

    /// `POST v1/token`: exchanges a Kubernetes ServiceAccount token for a federated access token.
    ///
    /// # Errors
    /// STS's refusal (`Detail::OAuth` carries its error code), or the final error after retries.
    pub async fn federate(&self, subject_token: &SecretString, audience: &str) -> Result<IssuedToken, GcpError> {
        use secrecy::ExposeSecret as _;
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange")
            .append_pair("subject_token_type", "urn:ietf:params:oauth:token-type:jwt")
            .append_pair("requested_token_type", "urn:ietf:params:oauth:token-type:access_token")
            .append_pair("scope", CLOUD_PLATFORM_SCOPE)
            .append_pair("audience", audience)
            .append_pair("subject_token", subject_token.expose_secret())
            .finish();
        let url = format!("{}/v1/token", self.inner.sts);
        let call = Call {
            service: STS_SERVICE,
            method: METHOD_EXCHANGE,
            resource: audience,
            url: &url,
            caller: &Caller::Operator,
        };
        // The exchange changes nothing on the server: safe to retry like a read.
        let request = Request { verb: Verb::Post, json: Some(Bytes::from(form)), form: true };
        let success = self.inner.executor.execute_idempotent(&call, &request).await?;
        let answer: StsAnswer =
            serde_json::from_slice(&success.body).map_err(|_| malformed(METHOD_EXCHANGE, audience))?;
        Ok(IssuedToken { token: answer.access_token, lifetime: Duration::from_secs(answer.expires_in) })
    }

    /// `POST v1/projects/-/serviceAccounts/GSA:generateAccessToken` as `federated`.
    ///
    /// # Errors
    /// PERMISSION_DENIED without `roles/iam.workloadIdentityUser` on the account, or the final
    /// error after retries.
    pub async fn impersonate(
        &self,
        federated: &Caller,
        service_account: &str,
        lifetime: Duration,
    ) -> Result<IssuedToken, GcpError> {
        let resource = format!("projects/-/serviceAccounts/{service_account}");
        if !is_service_account_email(service_account) {
            return Err(GcpError::new(METHOD_GENERATE, resource, Code::InvalidArgument, Some(Detail::InvalidRequest)));
        }
        let url = format!("{}/v1/{resource}:generateAccessToken", self.inner.iam_credentials);
        let body =
            serde_json::json!({ "scope": [CLOUD_PLATFORM_SCOPE], "lifetime": format!("{}s", lifetime.as_secs()) });
        let call = Call {
            service: IAM_CREDENTIALS_SERVICE,
            method: METHOD_GENERATE,
            resource: &resource,
            url: &url,
            caller: federated,
        };
        let request = Request::json(Verb::Post, Bytes::from(body.to_string()));
        let success = self.inner.executor.execute_idempotent(&call, &request).await?;
        let answer: GenerateAnswer =
            serde_json::from_slice(&success.body).map_err(|_| malformed(METHOD_GENERATE, &resource))?;
        let expires =
            answer.expire_time.parse::<jiff::Timestamp>().map_err(|_| malformed(METHOD_GENERATE, &resource))?;
        let left = expires.duration_since(jiff::Timestamp::now());
        let lifetime = Duration::try_from(left).unwrap_or_default();
        Ok(IssuedToken { token: answer.access_token, lifetime })
    }
}

#[derive(Deserialize)]
struct StsAnswer {
    access_token: SecretString,
    expires_in: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateAnswer {
    access_token: SecretString,
    expire_time: String,
}

fn endpoint(configured: Option<&str>, setting: &'static str, default: &str) -> Result<String, GcpError> {
    configured.map_or_else(|| Ok(default.to_owned()), |url| check_endpoint(url, setting))
}

fn malformed(method: &'static str, resource: &str) -> GcpError {
    GcpError::new(method, resource, Code::Unknown, Some(Detail::MalformedResponse))
}

/// `name@project.iam.gserviceaccount.com`-like: one `@`, no path characters.
fn is_service_account_email(email: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '-' | '_');
    email.len() <= 254 && email.matches('@').count() == 1 && email.chars().all(allowed)
}

#[cfg(test)]
mod tests {
    use super::is_service_account_email;

    #[test]
    fn only_plain_emails_reach_the_url() {
        assert!(is_service_account_email("secure-api-sa@demo-project.iam.gserviceaccount.com"));
        assert!(!is_service_account_email("a@b/../c"));
        assert!(!is_service_account_email("no-at-sign"));
        assert!(!is_service_account_email("a@b:generateIdToken?x"));
    }
}
