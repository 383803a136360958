//! Google tokens for Kubernetes ServiceAccounts: TokenRequest → STS → (optionally) IAM
//! Credentials, cached per ServiceAccount in memory until shortly before expiry. Concurrent
//! callers for one ServiceAccount share one refresh.
//!
//! Opt-in without a request per call: the ServiceAccount is read before every TokenRequest, and
//! what the token depends on (its `secureapi.dev/usable-by` kinds and Google service account) is
//! cached with it, so each call checks its kind against that at no cost. A watch of
//! ServiceAccounts ([`TokenBroker::watch_accounts`]) tells the cache when one of them changes or
//! goes: its token is then dropped and the next call reads the ServiceAccount again, so a
//! withdrawn opt-in stops serving within the watch's delay, not at the token's expiry. The watch
//! keeps nothing but what it saw of ServiceAccounts that have a token here. While it is down,
//! a token is trusted until its refresh, as before.

use super::audience::{Audiences, issuer, principal};
use super::error::IdentityError;
use super::opt_in::UsableBy;
use crate::api::GCP_SERVICE_ACCOUNT_ANNOTATION;
use crate::gcp::{Caller, TokenExchange};
use crate::runtime::caches::{Step, Watched, in_namespace};
use futures::StreamExt as _;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt as _};
use secrecy::{ExposeSecret as _, SecretString};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

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
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

#[derive(Default)]
struct Slot {
    cached: tokio::sync::Mutex<Option<Cached>>,
    seen: Mutex<Seen>,
}

/// What the watch reported of a slot's ServiceAccount.
#[derive(Default)]
struct Seen {
    /// How many reports there were: a token read its ServiceAccount after the last one it counted,
    /// so only later reports can tell it something new.
    reports: u64,
    /// The last report: `None` when there was none or the watch failed since, `Some(None)` when
    /// the ServiceAccount was deleted.
    latest: Option<Option<Grant>>,
}

/// What of a ServiceAccount a token was exchanged under.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Grant {
    usable_by: UsableBy,
    google_service_account: Option<String>,
}

struct Cached {
    caller: Caller,
    grant: Grant,
    /// [`Seen::reports`] before its ServiceAccount was read.
    reports: u64,
    refresh_at: Instant,
    expires_at: Instant,
}

impl TokenBroker {
    pub fn new(client: Client, exchange: TokenExchange, audiences: Audiences) -> Self {
        Self { client, exchange, audiences, slots: Mutex::default() }
    }

    /// A caller for ServiceAccount `name` of `namespace`, for an object of `kind`: cached, or
    /// freshly exchanged. Refused without a TokenRequest unless the ServiceAccount opted in for
    /// `kind`.
    pub async fn caller(&self, namespace: &str, name: &str, kind: &str) -> Result<Caller, IdentityError> {
        let who = format!("{namespace}/{name}");
        let slot = self.slot(&who);
        let mut cached = slot.cached.lock().await;
        let now = Instant::now();
        if let Some(current) = cached.as_ref().filter(|c| now < c.refresh_at && slot.trusts(c)) {
            return current.serving(&who, kind);
        }
        match self.exchange_for(namespace, name, kind, slot.reports()).await {
            Ok(fresh) => {
                let caller = fresh.caller.clone();
                *cached = Some(fresh);
                Ok(caller)
            }
            // Google's passing trouble during an early refresh: the current token still works
            // (unless the watch says its ServiceAccount changed since).
            Err(error) if error.is_transient() && !matches!(error, IdentityError::ServiceAccountNotFound { .. }) => {
                match cached.as_ref().filter(|c| now < c.expires_at && slot.trusts(c)) {
                    Some(current) => current.serving(&who, kind),
                    None => Err(error),
                }
            }
            Err(error) => {
                *cached = None;
                Err(error)
            }
        }
    }

    fn slot(&self, key: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(slots.entry(key.to_owned()).or_default())
    }

    /// The whole exchange for one ServiceAccount, after checking it opted in for `kind`;
    /// `reports`: the slot's watch reports so far.
    async fn exchange_for(
        &self,
        namespace: &str,
        name: &str,
        kind: &str,
        reports: u64,
    ) -> Result<Cached, IdentityError> {
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let who = format!("{namespace}/{name}");
        let not_found = || IdentityError::ServiceAccountNotFound { account: who.clone() };
        let kube_error = |error: kube::Error| match &error {
            kube::Error::Api(status) if status.code == 404 => not_found(),
            _ => IdentityError::token_request(&who, &error),
        };
        let account = accounts.get_opt(name).await.map_err(kube_error)?.ok_or_else(not_found)?;
        let grant = Grant::of(&account);
        if !grant.usable_by.allows(kind) {
            return Err(IdentityError::NotOptedIn { account: who, kind: kind.to_owned() });
        }
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
        let federated_caller =
            Caller::delegated(who.as_str(), principal(&sts_audience, namespace, name), federated.token);
        let (caller, lifetime) = match grant.google_service_account.as_deref() {
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
                let principal = format!("serviceAccount:{service_account}");
                (Caller::delegated(who.as_str(), principal, impersonated.token), impersonated.lifetime)
            }
        };
        // A lifetime from the server is input: bounded, so the arithmetic below cannot overflow.
        let lifetime = lifetime.min(MAX_LIFETIME);
        let refresh_at = started + lifetime - refresh_margin(lifetime);
        Ok(Cached { caller, grant, reports, refresh_at, expires_at: started + lifetime })
    }

    /// Watches the ServiceAccounts of `namespaces` (none: all) until `shutdown`, telling the
    /// slots what changed of theirs. Only ServiceAccounts with a slot are looked at; the rest pass.
    pub async fn watch_accounts(&self, namespaces: &[String], shutdown: CancellationToken) {
        let watched = Watched::<ServiceAccount>::new(&self.client, namespaces);
        // Per watch, the slots a relist (after a gap in the watch) has not found yet: gone at its end.
        let mut relists = watched.relists();
        let events = watched.events(watcher::Config::default()).take_until(shutdown.cancelled_owned());
        let mut events = std::pin::pin!(events);
        while let Some((namespace, event)) = events.next().await {
            let event = match event {
                Ok(event) => event,
                Err(error) => {
                    let namespace = namespace.as_deref();
                    tracing::warn!(%error, namespace, "cannot watch ServiceAccounts; tokens are trusted until their refresh");
                    self.forget_seen(namespace);
                    continue;
                }
            };
            match relists.step(namespace.as_deref(), event, || self.slot_keys()) {
                Step::Applied(account) | Step::Relisted(account) => self.saw(&account, Some(Grant::of(&account))),
                Step::Deleted(account) => self.saw(&account, None),
                Step::RelistDone { gone } => self.gone(&gone),
                Step::RelistStarted => {}
            }
        }
    }

    /// Records what the watch saw of `account` if it has a slot.
    fn saw(&self, account: &ServiceAccount, grant: Option<Grant>) {
        let key = format!("{}/{}", account.namespace().unwrap_or_default(), account.name_any());
        if let Some(slot) = self.slots.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
            slot.see(Some(grant));
        }
    }

    /// `namespace/name` of every ServiceAccount with a slot.
    fn slot_keys(&self) -> Vec<String> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner).keys().cloned().collect()
    }

    /// After a relist: the ServiceAccounts with a slot that it did not find are gone.
    fn gone(&self, gone: &[String]) {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        gone.iter().filter_map(|key| slots.get(key)).for_each(|slot| slot.see(Some(None)));
    }

    /// A watch failed: what it saw of its namespace (`None`: of all) may be stale, so those slots
    /// trust their tokens again.
    fn forget_seen(&self, namespace: Option<&str>) {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let of_watch = slots.iter().filter(|(key, _)| in_namespace(key, namespace));
        of_watch.for_each(|(_, slot)| slot.see(None));
    }
}

impl Slot {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn see(&self, latest: Option<Option<Grant>>) {
        let mut seen = self.seen();
        seen.reports += 1;
        seen.latest = latest;
    }

    fn reports(&self) -> u64 {
        self.seen().reports
    }

    /// Whether `cached` still fits its ServiceAccount: nothing was reported since it was read,
    /// or the last report shows the same grant (or the watch failed since).
    fn trusts(&self, cached: &Cached) -> bool {
        let seen = self.seen();
        seen.reports == cached.reports
            || seen.latest.as_ref().is_none_or(|latest| latest.as_ref() == Some(&cached.grant))
    }
}

impl Cached {
    /// The cached caller, for an object of a kind the ServiceAccount opted in for.
    fn serving(&self, account: &str, kind: &str) -> Result<Caller, IdentityError> {
        match self.grant.usable_by.allows(kind) {
            true => Ok(self.caller.clone()),
            false => Err(IdentityError::NotOptedIn { account: account.to_owned(), kind: kind.to_owned() }),
        }
    }
}

impl Grant {
    fn of(account: &ServiceAccount) -> Self {
        Self {
            usable_by: UsableBy::of(account),
            google_service_account: google_service_account(account).map(Into::into),
        }
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
