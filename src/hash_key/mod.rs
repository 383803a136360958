//! The operator's hash key: every hash it records or names an object after is an HMAC-SHA256
//! under this key, so a hash in a status or a Secret's name reveals nothing about the data (a
//! plain SHA-256 of a 4-digit PIN is reversed in milliseconds). The key is 32 random bytes in a
//! Secret of the operator's own namespace ([`store`]), shared by its replicas and shards.

pub mod store;

use crate::secret_data::SecretData;
use ring::digest::{SHA256, digest};
use ring::hmac;
use std::fmt::{self, Write};

/// Bytes of a key the operator creates, and the fewest it accepts.
pub const KEY_LEN: usize = 32;

/// The HMAC key. Its Debug output never shows the key.
#[derive(Clone)]
pub struct HashKey(hmac::Key);

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashKey(..)")
    }
}

impl HashKey {
    /// A key of these bytes: `None` when there are fewer than [`KEY_LEN`].
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        (bytes.len() >= KEY_LEN).then(|| Self(hmac::Key::new(hmac::HMAC_SHA256, bytes)))
    }

    /// HMAC-SHA256 of the data (keys and values, length-prefixed so boundaries are unambiguous),
    /// as 64 lowercase hex characters. Recorded in status instead of the data.
    pub fn content_hash(&self, data: &SecretData) -> String {
        hex(hmac::sign(&self.0, &framed(data)).as_ref())
    }

    /// Whether `recorded` is the hash of `data`: this key's, or the plain SHA-256 that versions
    /// before the key recorded. Those stay valid until the content changes, so an upgrade alone
    /// renames no snapshot and rolls no workload.
    pub fn matches(&self, data: &SecretData, recorded: &str) -> bool {
        let bytes = framed(data);
        recorded == hex(hmac::sign(&self.0, &bytes).as_ref()) || recorded == hex(digest(&SHA256, &bytes).as_ref())
    }

    /// The hash to record for `data`: `recorded` while it still matches the data, else this key's.
    pub fn keep_or_hash(&self, data: &SecretData, recorded: Option<&str>) -> String {
        match recorded {
            Some(recorded) if self.matches(data, recorded) => recorded.to_owned(),
            _ => self.content_hash(data),
        }
    }

    /// HMAC-SHA256 of `bytes` as hex: a seal only the operator can make.
    pub fn seal(&self, bytes: &[u8]) -> String {
        hex(hmac::sign(&self.0, bytes).as_ref())
    }

    /// Whether `seal` is this key's seal of `bytes` (compared in constant time).
    pub fn verify(&self, bytes: &[u8], seal: &str) -> bool {
        let Some(tag) = unhex(seal) else { return false };
        hmac::verify(&self.0, bytes, &tag).is_ok()
    }
}

/// Keys and values, each preceded by its length.
fn framed(data: &SecretData) -> Vec<u8> {
    let mut bytes = vec![];
    for (key, value) in data {
        bytes.extend_from_slice(&(key.len() as u64).to_be_bytes());
        bytes.extend_from_slice(key.as_bytes());
        bytes.extend_from_slice(&(value.len() as u64).to_be_bytes());
        bytes.extend_from_slice(value);
    }
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(2 * bytes.len()), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A fixed key for tests.
    pub fn test_key() -> HashKey {
        HashKey::from_bytes(&[7; KEY_LEN]).unwrap_or_else(|| panic!("32 bytes make a key"))
    }

    fn data(value: &str) -> SecretData {
        BTreeMap::from([("pin".to_string(), value.as_bytes().to_vec())])
    }

    /// SHA-256 as versions before the key recorded it.
    fn legacy(data: &SecretData) -> String {
        hex(digest(&SHA256, &framed(data)).as_ref())
    }

    #[test]
    fn the_hash_depends_on_the_key_keys_and_values() {
        let key = test_key();
        let hash = key.content_hash(&data("1234"));
        assert_eq!(hash.len(), 64);
        assert_eq!(hash, key.content_hash(&data("1234")));
        assert_ne!(hash, legacy(&data("1234")), "not the plain SHA-256");
        let other = HashKey::from_bytes(&[8; KEY_LEN]).unwrap_or_else(|| panic!("a key"));
        assert_ne!(hash, other.content_hash(&data("1234")));
        let moved = BTreeMap::from([("pi".to_string(), b"n1234".to_vec())]);
        assert_ne!(hash, key.content_hash(&moved), "length prefixes keep key/value boundaries");
    }

    #[test]
    fn a_pin_cannot_be_found_from_its_hash_without_the_key() {
        let secret = key_hash_of("4821");
        // What an attacker can compute: SHA-256 of every candidate, or HMAC under a guessed key.
        let guessed = HashKey::from_bytes(&[0; KEY_LEN]).unwrap_or_else(|| panic!("a key"));
        let found = (0..10_000).map(|pin| format!("{pin:04}")).find(|pin| {
            let candidate = data(pin);
            legacy(&candidate) == secret || guessed.content_hash(&candidate) == secret
        });
        assert_eq!(found, None);
    }

    fn key_hash_of(pin: &str) -> String {
        test_key().content_hash(&data(pin))
    }

    #[test]
    fn a_recorded_legacy_hash_matches_and_is_kept_until_the_content_changes() {
        let key = test_key();
        let old = legacy(&data("pw1"));
        assert!(key.matches(&data("pw1"), &old));
        assert!(key.matches(&data("pw1"), &key.content_hash(&data("pw1"))));
        assert!(!key.matches(&data("pw2"), &old));
        assert_eq!(key.keep_or_hash(&data("pw1"), Some(&old)), old);
        assert_eq!(key.keep_or_hash(&data("pw2"), Some(&old)), key.content_hash(&data("pw2")));
        assert_eq!(key.keep_or_hash(&data("pw1"), None), key.content_hash(&data("pw1")));
    }

    #[test]
    fn a_seal_verifies_only_for_its_bytes_and_key() {
        let key = test_key();
        let seal = key.seal(b"template");
        assert!(key.verify(b"template", &seal));
        assert!(!key.verify(b"templatf", &seal));
        assert!(!key.verify(b"template", "zz"));
        assert!(!key.verify(b"template", &legacy(&data("template"))));
        let other = HashKey::from_bytes(&[8; KEY_LEN]).unwrap_or_else(|| panic!("a key"));
        assert!(!other.verify(b"template", &seal));
    }

    #[test]
    fn short_keys_are_refused_and_debug_hides_the_key() {
        assert!(HashKey::from_bytes(&[1; KEY_LEN - 1]).is_none());
        assert_eq!(format!("{:?}", test_key()), "HashKey(..)");
    }
}
