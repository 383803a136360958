//! Access tokens for Google APIs: none (emulators), a fixed token, or gcp_auth's provider chain
//! (service-account key via GOOGLE_APPLICATION_CREDENTIALS, gcloud ADC file, GKE metadata
//! server / Workload Identity, gcloud CLI). gcp_auth caches tokens until shortly before expiry.

use std::sync::Arc;

use gcp_auth::TokenProvider;
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use tracing::warn;

use super::GcpConfig;
use super::error::{Code, Detail, GcpError};

/// OAuth scope for all Google Cloud APIs (IAM decides the real permissions).
pub(super) const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Where the `Authorization` header comes from.
#[derive(Clone)]
pub(super) enum Auth {
    None,
    Static(SecretString),
    Google(Arc<dyn TokenProvider>),
}

/// Why no header could be produced; transient failures are retried by the executor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TokenFailure {
    Transient,
    Permanent,
}

impl Auth {
    /// Initialises the token source the configuration asks for.
    pub(super) async fn from_config(config: &GcpConfig) -> Result<Self, GcpError> {
        if config.no_auth {
            return Ok(Auth::None);
        }
        if let Some(token) = &config.access_token {
            return Ok(Auth::Static(token.clone()));
        }
        match gcp_auth::provider().await {
            Ok(provider) => Ok(Auth::Google(provider)),
            Err(error) => {
                // gcp_auth's message explains which credential sources were tried; it holds no token.
                warn!(error = %error, "no Google credentials found (set GOOGLE_APPLICATION_CREDENTIALS, use Workload Identity, or run with no_auth against an emulator)");
                Err(GcpError::new(
                    "auth.provider",
                    "application-default-credentials",
                    Code::Unauthenticated,
                    Some(Detail::Token),
                ))
            }
        }
    }

    /// The `Authorization` header value (marked sensitive), or `None` without authentication.
    pub(super) async fn header(&self) -> Result<Option<HeaderValue>, TokenFailure> {
        match self {
            Auth::None => Ok(None),
            Auth::Static(token) => bearer(token.expose_secret()).map(Some),
            Auth::Google(provider) => match provider.token(&[CLOUD_PLATFORM_SCOPE]).await {
                Ok(token) => bearer(token.as_str()).map(Some),
                Err(error) => {
                    warn!(error = %error, "cannot obtain a Google access token");
                    Err(classify(&error))
                }
            },
        }
    }
}

/// Network trouble reaching the token endpoint may pass; anything else needs a fix.
fn classify(error: &gcp_auth::Error) -> TokenFailure {
    match error {
        gcp_auth::Error::Http(..) | gcp_auth::Error::Io(..) => TokenFailure::Transient,
        _ => TokenFailure::Permanent,
    }
}

pub(super) fn bearer(token: &str) -> Result<HeaderValue, TokenFailure> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| TokenFailure::Permanent)?;
    // Keeps the token out of reqwest/hyper debug output.
    value.set_sensitive(true);
    Ok(value)
}

/// The error of a call whose token could not be obtained.
pub(super) fn token_error(method: &'static str, resource: &str, failure: TokenFailure) -> GcpError {
    let status = match failure {
        TokenFailure::Transient => Code::Unavailable,
        TokenFailure::Permanent => Code::Unauthenticated,
    };
    GcpError::new(method, resource, status, Some(Detail::Token))
}

#[cfg(test)]
mod tests {
    use super::super::GcpConfig;
    use super::{Auth, TokenFailure, token_error};

    fn config() -> GcpConfig {
        GcpConfig::default()
    }

    #[tokio::test]
    async fn no_auth_sends_no_header() {
        let mut cfg = config();
        cfg.no_auth = true;
        cfg.access_token = Some("ignored".into());
        let auth = Auth::from_config(&cfg).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(auth.header().await, Ok(None)));
    }

    #[tokio::test]
    async fn static_token_is_a_sensitive_bearer_header() {
        let mut cfg = config();
        cfg.access_token = Some("tok-123".into());
        let auth = Auth::from_config(&cfg).await.unwrap_or_else(|e| panic!("{e}"));
        match auth.header().await {
            Ok(Some(value)) => {
                assert_eq!(value.to_str().ok(), Some("Bearer tok-123"));
                assert!(value.is_sensitive());
                assert!(!format!("{value:?}").contains("tok-123"));
            }
            _ => panic!("expected a header"),
        }
    }

    #[test]
    fn token_errors_are_classified() {
        let transient = token_error("m", "r", TokenFailure::Transient);
        assert!(transient.is_transient());
        let permanent = token_error("m", "r", TokenFailure::Permanent);
        assert!(!permanent.is_transient());
        assert_eq!(permanent.to_string(), "m r: UNAUTHENTICATED (no access token)");
    }
}
