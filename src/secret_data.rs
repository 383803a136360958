//! Secret data as the controllers compare it: key → bytes, and the data of a live Secret in the
//! same shape. SecretRef records the hash of what it wrote ([`crate::hash_key`]); SecureApiService
//! checks a Secret still holds exactly that before it snapshots it.

use k8s_openapi::api::core::v1::Secret;
use std::collections::BTreeMap;

/// Rendered Secret data: key → bytes, in key order.
pub type SecretData = BTreeMap<String, Vec<u8>>;

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
    fn live_data_reads_back_what_was_written() {
        let secret = Secret {
            data: Some(data().into_iter().map(|(k, v)| (k, k8s_openapi::ByteString(v))).collect()),
            ..Secret::default()
        };
        assert_eq!(live_data(&secret), data());
    }
}
