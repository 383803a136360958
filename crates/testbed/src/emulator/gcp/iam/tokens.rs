//! The access tokens the emulator issues (STS's federated tokens and IAM Credentials' service
//! account tokens) and who presents them. Tokens are kept by their SHA-256 only, so the store
//! (and its `Debug`) never holds one.

use super::rpc::{Code, RpcError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// Google's answer to a credential it does not accept.
const UNAUTHENTICATED: &str = "Request had invalid authentication credentials. Expected OAuth 2 access token, \
    login cookie or other valid authentication credential. \
    See https://developers.google.com/identity/sign-in/web/devconsole-project.";

/// How long issued tokens live unless a test says otherwise: Google's one hour.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// Who makes a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// No token, or one the emulator did not issue: the owner of every project, as before IAM.
    Owner,
    /// A token the emulator issued, for this principal.
    Principal(String),
}

/// Which API issued a token; Google's prefixes tell them apart (`ya29.d.` for federated ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Federated,
    ServiceAccount,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Issued {
    principal: String,
    expires: SystemTime,
}

/// Every token issued so far, expired ones included (so they answer 401 rather than passing as
/// the owner's).
#[derive(Debug)]
pub struct Tokens {
    by_digest: BTreeMap<String, Issued>,
    lifetime: Duration,
}

impl Default for Tokens {
    fn default() -> Self {
        Self { by_digest: BTreeMap::new(), lifetime: DEFAULT_LIFETIME }
    }
}

impl Tokens {
    /// The lifetime of tokens issued from now on.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    pub fn set_lifetime(&mut self, lifetime: Duration) {
        self.lifetime = lifetime;
    }

    /// A new random token for `principal`, valid for `lifetime` from `now`.
    pub fn mint(
        &mut self,
        kind: Kind,
        principal: &str,
        lifetime: Duration,
        now: SystemTime,
    ) -> Result<String, RpcError> {
        let mut random = [0u8; 32];
        SystemRandom::new().fill(&mut random).map_err(|_| RpcError::internal("No randomness for a token."))?;
        let prefix = match kind {
            Kind::Federated => "ya29.d.",
            Kind::ServiceAccount => "ya29.c.",
        };
        let token = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(random));
        let issued = Issued { principal: principal.to_owned(), expires: now + lifetime };
        self.by_digest.insert(fingerprint(&token), issued);
        Ok(token)
    }

    /// The caller presenting `authorization` (the header's value, if any): an issued token's
    /// principal, the owner for anything else, and 401 for an issued token past its expiry.
    pub fn caller(&self, authorization: Option<&str>, now: SystemTime) -> Result<Caller, RpcError> {
        let Some(token) = authorization.and_then(bearer) else { return Ok(Caller::Owner) };
        match self.by_digest.get(&fingerprint(token)) {
            None => Ok(Caller::Owner),
            Some(issued) if issued.expires <= now => Err(RpcError::new(Code::Unauthenticated, UNAUTHENTICATED)),
            Some(issued) => Ok(Caller::Principal(issued.principal.clone())),
        }
    }
}

/// The token of `Bearer TOKEN` (the scheme in any case).
fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

fn fingerprint(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    #[test]
    fn an_issued_token_is_its_principal_until_it_expires() {
        let mut tokens = Tokens::default();
        let Ok(token) = tokens.mint(Kind::Federated, "principal://x", Duration::from_secs(10), now()) else {
            panic!("mint failed")
        };
        assert!(token.starts_with("ya29.d."));
        let header = format!("Bearer {token}");
        assert_eq!(tokens.caller(Some(&header), now()), Ok(Caller::Principal("principal://x".into())));
        let later = now() + Duration::from_secs(10);
        let expired = tokens.caller(Some(&header), later);
        assert_eq!(expired.as_ref().map_err(|e| e.http_status), Err(401));
        assert!(expired.is_err_and(|e| !e.message.contains(&token)));
    }

    #[test]
    fn no_token_or_a_foreign_one_is_the_owner() {
        let tokens = Tokens::default();
        assert_eq!(tokens.caller(None, now()), Ok(Caller::Owner));
        assert_eq!(tokens.caller(Some("Bearer test-token"), now()), Ok(Caller::Owner));
        assert_eq!(tokens.caller(Some("Basic abc"), now()), Ok(Caller::Owner));
    }

    #[test]
    fn the_store_keeps_no_token_in_clear() {
        let mut tokens = Tokens::default();
        let Ok(token) = tokens.mint(Kind::ServiceAccount, "serviceAccount:a", DEFAULT_LIFETIME, now()) else {
            panic!("mint failed")
        };
        assert!(!format!("{tokens:?}").contains(&token[7..]));
        assert_eq!(tokens.lifetime(), Duration::from_secs(3600));
    }
}
