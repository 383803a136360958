//! Google Cloud client layer: authentication, a bounded and observable HTTP executor, and the
//! Secret Manager and API Gateway clients.
//!
//! Nothing here ever logs or formats a secret payload or a server's free-text error message:
//! payloads live in [`SecretBytes`] and errors are reduced to [`GcpError`].

mod api_gateway;
mod api_keys;
mod auth;
mod caller;
mod error;
mod http;
mod payload;
mod pubsub;
mod rate;
mod retry;
mod secret_manager;
mod secret_name;
mod token_exchange;

use std::time::Duration;

use secrecy::SecretString;

pub use api_gateway::{Api, ApiConfig, ApiGateway, Gateway, Operation, OperationError};
pub use api_keys::{ApiKey, ApiKeys, KeyApi};
pub use caller::Caller;
pub use error::{Code, Detail, GcpError};
pub use http::CallObserver;
pub use payload::SecretBytes;
pub use pubsub::{ReceivedMessage, Subscriber};
pub use secret_manager::{AccessedVersion, SecretManager};
pub use secret_name::SecretName;
pub use token_exchange::{ExchangeEndpoints, IssuedToken, TokenExchange};

/// Default `User-Agent` sent with every request.
pub const DEFAULT_USER_AGENT: &str = concat!("secure-api-operator/", env!("CARGO_PKG_VERSION"));

/// Settings of the GCP clients (the operator fills them from its command line).
#[derive(Clone, Debug)]
pub struct GcpConfig {
    /// Project used for bare secret ids.
    pub default_project: Option<String>,
    /// Override of the Secret Manager endpoint (emulators), e.g. "http://127.0.0.1:9000".
    /// `None`: `https://secretmanager.googleapis.com`, and for regional secrets
    /// `https://secretmanager.LOCATION.rep.googleapis.com`. An override receives regional requests too.
    pub secret_manager_endpoint: Option<String>,
    /// Override of the API Gateway endpoint (emulators), e.g. "http://127.0.0.1:9000".
    /// `None`: `https://apigateway.googleapis.com`.
    pub api_gateway_endpoint: Option<String>,
    /// Override of the API Keys endpoint (emulators). `None`: `https://apikeys.googleapis.com`.
    pub api_keys_endpoint: Option<String>,
    /// Override of the Service Usage endpoint (emulators). `None`: `https://serviceusage.googleapis.com`.
    pub service_usage_endpoint: Option<String>,
    /// No authentication (emulators): no `Authorization` header, no token source initialised.
    pub no_auth: bool,
    /// A fixed bearer token (like gcloud's `CLOUDSDK_AUTH_ACCESS_TOKEN`) used instead of the
    /// application-default credentials; ignored when `no_auth` is set.
    pub access_token: Option<SecretString>,
    /// Timeout of one attempt (sending, waiting and reading the body).
    pub request_timeout: Duration,
    /// Attempts per call including the first (1 = no retry; 0 is treated as 1).
    pub max_attempts: u32,
    /// First retry delay ceiling; doubles per retry, with full jitter.
    pub initial_backoff: Duration,
    /// Upper bound of a retry delay, also of an honoured `Retry-After`.
    pub max_backoff: Duration,
    /// Requests in flight at once (0 is treated as 1).
    pub max_concurrency: usize,
    /// Token-bucket rate per project, with a burst of the same size; not finite or ≤ 0 disables
    /// the limit. The default stays under Secret Manager's 90,000 access calls per minute.
    pub requests_per_second: f64,
    /// `User-Agent` header value.
    pub user_agent: String,
}

impl Default for GcpConfig {
    fn default() -> Self {
        Self {
            default_project: None,
            secret_manager_endpoint: None,
            api_gateway_endpoint: None,
            api_keys_endpoint: None,
            service_usage_endpoint: None,
            no_auth: false,
            access_token: None,
            request_timeout: Duration::from_secs(10),
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_concurrency: 16,
            requests_per_second: 1400.0,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
        }
    }
}
