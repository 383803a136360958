//! Google tokens for Kubernetes ServiceAccounts: TokenRequest → STS → (optionally) IAM
//! Credentials, cached per ServiceAccount in memory until shortly before expiry. Concurrent
//! callers for one ServiceAccount share one refresh.

use super::audience::{Audiences, issuer};
use super::error::IdentityError;
use crate::api::GCP_SERVICE_ACCOUNT_ANNOTATION;
use crate::gcp::{Caller, TokenExchange};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Client;
use kube::api::{Api, PostParams};
use secrecy::{ExposeSecret as _, SecretString};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Kubernetes tokens are used at once for the exchange: the shortest lifetime the API server issues.
const SUBJECT_TOKEN_SECONDS: i64 = 600;
/// Lifetime asked for a Google service account's token (Google's default and maximum without
/// an org policy).
const IMPERSONATED_LIFETIME: Duration = Duration::from_secs(3600);
/// Longest lifetime believed (Google issues at most 12 hours).
const MAX_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Refresh this long before expiry at most (a quarter of the lifetime for short-lived tokens).
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Tokens per ServiceAccount.
pub struct TokenBroker {
    client: Client,
    exchange: TokenExchange,
    audiences: Audiences,
    /// One slot per `namespace/name`; its lock is held during a refresh, so callers for the same
    /// ServiceAccount wait for that one instead of starting their own.
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
}

struct Cached {
    caller: Caller,
    refresh_at: Instant,
    expires_at: Instant,
}

impl TokenBroker {
    pub fn new(client: Client, exchange: TokenExchange, audiences: Audiences) -> Self {
        Self { client, exchange, audiences, slots: Mutex::default() }
    }

    /// A caller for ServiceAccount `name` of `namespace`: cached, or freshly exchanged.
    pub async fn caller(&self, namespace: &str, name: &str) -> Result<Caller, IdentityError> {
        let slot = self.slot(&format!("{namespace}/{name}"));
        let mut cached = slot.lock().await;
        let now = Instant::now();
        if let Some(current) = cached.as_ref().filter(|c| now < c.refresh_at) {
            return Ok(current.caller.clone());
        }
        match self.exchange_for(namespace, name).await {
            Ok(fresh) => {
                let caller = fresh.caller.clone();
                *cached = Some(fresh);
                Ok(caller)
            }
            // Google's passing trouble during an early refresh: the current token still works.
            Err(error) if error.is_transient() && !matches!(error, IdentityError::ServiceAccountNotFound { .. }) => {
                match cached.as_ref().filter(|c| now < c.expires_at) {
                    Some(current) => Ok(current.caller.clone()),
                    None => Err(error),
                }
            }
            Err(error) => {
                *cached = None;
                Err(error)
            }
        }
    }

    fn slot(&self, key: &str) -> Arc<tokio::sync::Mutex<Option<Cached>>> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(slots.entry(key.to_owned()).or_default())
    }

    /// The whole exchange for one ServiceAccount.
    async fn exchange_for(&self, namespace: &str, name: &str) -> Result<Cached, IdentityError> {
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let who = format!("{namespace}/{name}");
        let not_found = || IdentityError::ServiceAccountNotFound { account: who.clone() };
        let kube_error = |error: kube::Error| match &error {
            kube::Error::Api(status) if status.code == 404 => not_found(),
            _ => IdentityError::token_request(&who, &error),
        };
        let account = accounts.get_opt(name).await.map_err(kube_error)?.ok_or_else(not_found)?;
        let token_audience = self.audiences.token_audience().map_err(IdentityError::NotConfigured)?;
        let subject =
            subject_token(&accounts, name, token_audience).await.map_err(kube_error)?.ok_or_else(not_found)?;
        let sts_audience = self
            .audiences
            .sts_audience(issuer(subject.expose_secret()).as_deref())
            .map_err(IdentityError::NotConfigured)?;
        let started = Instant::now();
        let exchange_error = |source| IdentityError::Exchange { account: who.clone(), source };
        let federated = self.exchange.federate(&subject, &sts_audience).await.map_err(exchange_error)?;
        let federated_caller = Caller::delegated(who.as_str(), federated.token);
        let (caller, lifetime) = match google_service_account(&account) {
            None => (federated_caller, federated.lifetime),
            Some(service_account) => {
                let impersonated = self
                    .exchange
                    .impersonate(&federated_caller, service_account, IMPERSONATED_LIFETIME)
                    .await
                    .map_err(|source| IdentityError::Impersonation {
                        account: who.clone(),
                        service_account: service_account.into(),
                        source,
                    })?;
                (Caller::delegated(who.as_str(), impersonated.token), impersonated.lifetime)
            }
        };
        // A lifetime from the server is input: bounded, so the arithmetic below cannot overflow.
        let lifetime = lifetime.min(MAX_LIFETIME);
        Ok(Cached { caller, refresh_at: started + lifetime - refresh_margin(lifetime), expires_at: started + lifetime })
    }
}

/// A short-lived Kubernetes token of the ServiceAccount for `audience` (`None`: the answer
/// carried none, which the API server never does).
async fn subject_token(
    accounts: &Api<ServiceAccount>,
    name: &str,
    audience: String,
) -> Result<Option<SecretString>, kube::Error> {
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![audience],
            expiration_seconds: Some(SUBJECT_TOKEN_SECONDS),
            bound_object_ref: None,
        },
        ..TokenRequest::default()
    };
    let issued = accounts.create_token_request(name, &PostParams::default(), &request).await?;
    Ok(issued.status.map(|status| SecretString::from(status.token)))
}

/// The Google service account a ServiceAccount asks to act as, if any.
fn google_service_account(account: &ServiceAccount) -> Option<&str> {
    let annotations = account.metadata.annotations.as_ref()?;
    annotations.get(GCP_SERVICE_ACCOUNT_ANNOTATION).map(String::as_str).filter(|gsa| !gsa.is_empty())
}

/// How long before expiry a token is replaced: five minutes, or a quarter of a short lifetime.
fn refresh_margin(lifetime: Duration) -> Duration {
    MAX_REFRESH_MARGIN.min(lifetime / 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_replaced_well_before_they_expire() {
        assert_eq!(refresh_margin(Duration::from_secs(3600)), Duration::from_secs(300));
        assert_eq!(refresh_margin(Duration::from_secs(600)), Duration::from_secs(150));
        assert_eq!(refresh_margin(Duration::from_secs(4)), Duration::from_secs(1));
    }

    #[test]
    fn the_annotation_names_the_google_service_account() {
        let mut account = ServiceAccount::default();
        assert_eq!(google_service_account(&account), None);
        account.metadata.annotations =
            Some([(GCP_SERVICE_ACCOUNT_ANNOTATION.to_owned(), "sa@p.iam.gserviceaccount.com".to_owned())].into());
        assert_eq!(google_service_account(&account), Some("sa@p.iam.gserviceaccount.com"));
    }
}
