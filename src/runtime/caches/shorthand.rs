//! A lossless shorthand for the JSON the caches hold. Compact JSON as serde_json writes it never
//! holds a byte below 0x20 (no whitespace, and control characters inside strings are escaped),
//! so each of those 31 bytes can stand for one of the pieces every cached child repeats: the
//! field names of Kubernetes objects, and the operator's own labels and annotations. That takes
//! two thirds off a small synced Secret (572 bytes to 186), and the caches hold tens of thousands.

use std::sync::LazyLock;

/// The pieces, by the byte that stands for each (index + 1). Changing the list changes nothing
/// but what is held in memory: every process encodes and decodes with its own.
const PIECES: [&str; 31] = [
    r#"{"apiVersion":"v1","kind":"Secret","data":{""#,
    r#"{"apiVersion":"v1","kind":"Secret","immutable":true,"metadata":{"annotations":{"secureapi.dev/applied-hash":""#,
    r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{"secureapi.dev/applied-hash":""#,
    r#"{"apiVersion":"v1","kind":"Service","metadata":{"annotations":{"secureapi.dev/applied-hash":""#,
    r#""},"metadata":{"annotations":{"secureapi.dev/version":""#,
    r#"","secureapi.dev/content-hash":""#,
    r#"","secureapi.dev/version":""#,
    r#""},"labels":{"app.kubernetes.io/managed-by":"secure-api-operator",""#,
    r#"","labels":{"app.kubernetes.io/managed-by":"secure-api-operator",""#,
    r#"secureapi.dev/secretref":""#,
    r#"","secureapi.dev/secureapiservice":""#,
    r#""},"name":""#,
    r#"","namespace":""#,
    r#"","ownerReferences":[{"apiVersion":"secureapi.dev/v1alpha1","blockOwnerDeletion":true,"controller":true,"kind":"SecureApiService","name":""#,
    r#"","ownerReferences":[{"apiVersion":"secureapi.dev/v1alpha1","controller":true,"kind":"SecretRef","name":""#,
    r#"","uid":""#,
    r#""}],"resourceVersion":""#,
    r#""},"type":"Opaque"}"#,
    r#"app.kubernetes.io/name":""#,
    r#""valueFrom":{"secretKeyRef":{"key":""#,
    r#"{"name":""#,
    r#""secretName":""#,
    r#""mountPath":""#,
    r#"","readOnly":true}"#,
    r#""securityContext":{""#,
    r#""seccompProfile":{"type":"RuntimeDefault"}"#,
    r#""lastTransitionTime":""#,
    r#""lastUpdateTime":""#,
    r#"",""#,
    r#"":""#,
    r#""},"spec":{""#,
];

/// A piece: the byte that stands for it, and its bytes.
type Piece = (u8, &'static [u8]);

/// For each first byte, the pieces starting with it, longest first.
static BY_FIRST_BYTE: LazyLock<Vec<Vec<Piece>>> = LazyLock::new(|| {
    let mut table = vec![Vec::new(); 256];
    for (index, piece) in PIECES.iter().enumerate() {
        let (Ok(code), Some(&first)) = (u8::try_from(index + 1), piece.as_bytes().first()) else { continue };
        table[usize::from(first)].push((code, piece.as_bytes()));
    }
    for pieces in &mut table {
        pieces.sort_by_key(|(_, piece)| std::cmp::Reverse(piece.len()));
    }
    table
});

/// `json` with each piece replaced by its byte; `None` for input that holds a byte below 0x20
/// (not serde_json's compact output), which the shorthand cannot carry.
pub fn shorten(json: &[u8]) -> Option<Vec<u8>> {
    if json.iter().any(|&b| b < 0x20) {
        return None;
    }
    let mut short = Vec::with_capacity(json.len());
    let mut rest = json;
    while let Some(&first) = rest.first() {
        let piece = BY_FIRST_BYTE[usize::from(first)].iter().find(|(_, piece)| rest.starts_with(piece));
        match piece {
            Some(&(code, piece)) => {
                short.push(code);
                rest = &rest[piece.len()..];
            }
            None => {
                short.push(first);
                rest = &rest[1..];
            }
        }
    }
    Some(short)
}

/// The JSON `short` was made from.
pub fn expand(short: &[u8]) -> Vec<u8> {
    let mut json = Vec::with_capacity(short.len() * 2);
    for &byte in short {
        match byte {
            1..0x20 => json.extend_from_slice(PIECES[usize::from(byte - 1)].as_bytes()),
            _ => json.push(byte),
        }
    }
    json
}

#[cfg(test)]
mod tests {
    use super::{PIECES, expand, shorten};

    #[test]
    fn every_piece_is_distinct_and_free_of_control_bytes() {
        for (i, piece) in PIECES.iter().enumerate() {
            assert!(!piece.is_empty() && piece.bytes().all(|b| b >= 0x20), "piece {i}");
            assert!(!PIECES[..i].contains(piece), "piece {i} twice");
        }
    }

    #[test]
    fn a_secret_reads_back_exactly_and_shorter() {
        let json = concat!(
            r#"{"apiVersion":"v1","kind":"Secret","data":{"host":"ZGIuZXhhbXBsZS5jb20=","password":"cHc"#,
            r#"tMQ==","port":"NTQzMg==","username":"YXBpX3VzZXI="},"metadata":{"annotations":{"secureap"#,
            r#"i.dev/version":"1"},"labels":{"app.kubernetes"#,
            r#".io/managed-by":"secure-api-operator","secureapi.dev/secretref":"db"},"name":"db","names"#,
            r#"pace":"t-sasdump-324-0","ownerReferences":[{"apiVersion":"secureapi.dev/v1alpha1","contr"#,
            r#"oller":true,"kind":"SecretRef","name":"db","uid":"389c4922-08ec-4be3-a000-000000000009"}"#,
            r#"],"resourceVersion":"16","uid":"a2f69fd0-cc47-4369-a000-00000000000f"},"type":"Opaque"}"#,
        );
        let short = shorten(json.as_bytes()).unwrap_or_else(|| panic!("compact JSON"));
        assert_eq!(expand(&short), json.as_bytes());
        assert!(short.len() * 2 < json.len(), "{} of {} bytes", short.len(), json.len());
    }

    #[test]
    fn anything_without_control_bytes_reads_back_exactly() {
        for json in [r#""""#, r#"{"a":"b","c":"d"}"#, r#"",":"",""#, "/secrets//versions/", "plain"] {
            let short = shorten(json.as_bytes()).unwrap_or_else(|| panic!("{json}"));
            assert_eq!(expand(&short), json.as_bytes(), "{json}");
        }
        assert_eq!(shorten(b"{\n}"), None, "a control byte cannot be carried");
    }
}
