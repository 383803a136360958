//! Secret data as the controllers compare it: key → bytes, its content hash, and the data of a
//! live Secret in the same shape. SecretRef records the hash of what it wrote; SecureApiService
//! checks a Secret still holds exactly that before it snapshots it.

use k8s_openapi::api::core::v1::Secret;
use ring::digest::{SHA256, digest};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Rendered Secret data: key → bytes, in key order.
pub type SecretData = BTreeMap<String, Vec<u8>>;

/// SHA-256 of the data (keys and values, length-prefixed so boundaries are unambiguous), as
/// lowercase hex. Recorded in status instead of the data.
pub fn content_hash(data: &SecretData) -> String {
    let mut bytes = vec![];
    for (key, value) in data {
        bytes.extend_from_slice(&(key.len() as u64).to_be_bytes());
        bytes.extend_from_slice(key.as_bytes());
        bytes.extend_from_slice(&(value.len() as u64).to_be_bytes());
        bytes.extend_from_slice(value);
    }
    digest(&SHA256, &bytes).as_ref().iter().fold(String::with_capacity(64), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

/// The data of a live Secret, in the same shape as rendered data.
pub fn live_data(secret: &Secret) -> SecretData {
    secret.data.iter().flatten().map(|(k, v)| (k.clone(), v.0.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> SecretData {
        BTreeMap::from([("password".to_string(), b"pw".to_vec())])
    }

    #[test]
    fn the_content_hash_depends_on_keys_and_values_only() {
        let a = content_hash(&data());
        assert_eq!(a.len(), 64);
        assert_eq!(a, content_hash(&data()));
        let moved = BTreeMap::from([("passwor".to_string(), b"dpw".to_vec())]);
        assert_ne!(a, content_hash(&moved), "length prefixes keep key/value boundaries");
    }

    #[test]
    fn live_data_reads_back_what_was_written() {
        let secret = Secret {
            data: Some(data().into_iter().map(|(k, v)| (k, k8s_openapi::ByteString(v))).collect()),
            ..Secret::default()
        };
        assert_eq!(live_data(&secret), data());
    }
}
