//! Where the hash key lives: the Secret `secure-api-operator-hash-key` in the operator's own
//! namespace. The first process to start creates it (immutable, 32 random bytes); every replica
//! and shard after it reads the same one, so they record the same hashes.

use super::{HashKey, KEY_LEN};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::BTreeMap;
use std::time::Duration;

/// Name of the Secret that holds the key.
pub const SECRET_NAME: &str = "secure-api-operator-hash-key";
/// Its data key.
const DATA_KEY: &str = "key";
/// The pauses between two rounds against a busy API server.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// Why the key could not be had. Never carries key material.
#[derive(Debug, thiserror::Error)]
#[error("the hash key Secret {namespace}/{SECRET_NAME}: {reason}")]
pub struct KeyError {
    namespace: String,
    reason: String,
}

/// Reads the key Secret of `namespace`, or creates it when there is none. Two processes creating
/// it at once both end with the one that was created first. A busy or unreachable API server is
/// asked again, for ever: the caller bounds the wait.
pub async fn load_or_create(client: Client, namespace: &str) -> Result<HashKey, KeyError> {
    let secrets: Api<Secret> = Api::namespaced(client, namespace);
    let mut pause = FIRST_PAUSE;
    loop {
        match attempt(&secrets, namespace).await {
            Ok(key) => return Ok(key),
            Err(Round::Again) => {
                tracing::debug!(namespace, "the hash key Secret is not readable yet; asking again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
            Err(Round::Failed(reason)) => return Err(KeyError { namespace: namespace.to_owned(), reason }),
        }
    }
}

/// Why a round did not end with the key.
enum Round {
    /// The server was busy, or another process created the key meanwhile: read again.
    Again,
    Failed(String),
}

/// One round: read the Secret, create it when there is none.
async fn attempt(secrets: &Api<Secret>, namespace: &str) -> Result<HashKey, Round> {
    let refused = |what: &'static str| {
        move |error: kube::Error| match is_transient(&error) {
            true => Round::Again,
            false => Round::Failed(format!("cannot {what} it: {error}")),
        }
    };
    if let Some(secret) = secrets.get_opt(SECRET_NAME).await.map_err(refused("read"))? {
        return key_of(&secret).map_err(Round::Failed);
    }
    let mut bytes = [0u8; KEY_LEN];
    SystemRandom::new().fill(&mut bytes).map_err(|_| Round::Failed("no randomness to create it".into()))?;
    match secrets.create(&PostParams::default(), &new_secret(namespace, &bytes)).await {
        Ok(_) => HashKey::from_bytes(&bytes).ok_or_else(|| Round::Failed("a new key is too short".into())),
        // Another replica created it first: the next round reads theirs.
        Err(kube::Error::Api(status)) if status.code == 409 => Err(Round::Again),
        Err(error) => Err(refused("create")(error)),
    }
}

/// The server was busy or unreachable: asking again may succeed.
fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        _ => true,
    }
}

/// The key a Secret holds, or why it holds none.
fn key_of(secret: &Secret) -> Result<HashKey, String> {
    let bytes = secret.data.as_ref().and_then(|data| data.get(DATA_KEY)).map(|b| b.0.as_slice());
    let bytes = bytes.ok_or_else(|| format!("it has no data key {DATA_KEY:?}"))?;
    HashKey::from_bytes(bytes)
        .ok_or_else(|| format!("its key has {} bytes; at least {KEY_LEN} are needed", bytes.len()))
}

/// The key Secret. Without our managed-by label: no cache of the operator holds it.
fn new_secret(namespace: &str, bytes: &[u8]) -> Secret {
    let mut secret = Secret {
        metadata: ObjectMeta {
            name: Some(SECRET_NAME.into()),
            namespace: Some(namespace.into()),
            labels: Some(BTreeMap::from([
                ("app.kubernetes.io/name".to_string(), "secure-api-operator".to_string()),
                ("app.kubernetes.io/component".to_string(), "hash-key".to_string()),
            ])),
            ..ObjectMeta::default()
        },
        immutable: Some(true),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(DATA_KEY.to_string(), ByteString(bytes.to_vec()))])),
        ..Secret::default()
    };
    secret.annotations_mut().insert(
        "secureapi.dev/purpose".into(),
        "HMAC key of the operator's content hashes. Deleting it makes every SecretRef record a new hash and \
         every SecureApiService roll once."
            .into(),
    );
    secret
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_secret_reads_back_as_its_key() {
        let secret = new_secret("ops", &[3; KEY_LEN]);
        assert_eq!(secret.immutable, Some(true));
        assert!(!secret.labels().contains_key(crate::api::MANAGED_BY_LABEL), "no cache holds it");
        let key = key_of(&secret).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(key.seal(b"x"), HashKey::from_bytes(&[3; KEY_LEN]).map(|k| k.seal(b"x")).unwrap_or_default());
    }

    #[test]
    fn a_secret_without_a_usable_key_is_an_error_that_shows_no_bytes() {
        let mut secret = new_secret("ops", &[3; KEY_LEN]);
        secret.data = Some(BTreeMap::from([(DATA_KEY.to_string(), ByteString(b"short-secret".to_vec()))]));
        let error = key_of(&secret).err().unwrap_or_default();
        assert!(error.contains("12 bytes") && !error.contains("short-secret"), "{error}");
        secret.data = None;
        assert!(key_of(&secret).is_err_and(|e| e.contains("no data key")));
    }
}
