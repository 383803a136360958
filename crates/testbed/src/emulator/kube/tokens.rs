//! The service-account token issuer: one fixed RSA key that signs JWTs (RS256), and the two
//! documents kube-apiserver publishes for it, the OpenID discovery document and the JWKS.
//!
//! The key in `service_account_key.der` (PKCS#8 DER, 2048 bits) is a fixed test-bed key, not a
//! secret: it is committed on purpose so tokens verify across runs, and the emulator is test-only
//! (in the test bed's crate). Never trust a token it signed outside tests.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::rsa::PublicKeyComponents;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::{Value, json};
use std::sync::LazyLock;

/// kube-apiserver's usual `--service-account-issuer` (kubeadm, kind, minikube).
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Where kube-apiserver serves the key set (routed in `request.rs`).
const JWKS_PATH: &str = "/openid/v1/jwks";

/// The JWKS content type (RFC 7517 section 8.5.1), as kube-apiserver sends it.
pub const JWKS_CONTENT_TYPE: &str = "application/jwk-set+json";

/// kube-apiserver lets both documents be cached for an hour.
pub const CACHE_CONTROL: &str = "public, max-age=3600";

const EMBEDDED_KEY: &[u8] = include_bytes!("service_account_key.der");

/// The signing key with what is derived from it once.
struct SigningKey {
    pair: RsaKeyPair,
    kid: String,
    jwk: Value,
}

impl SigningKey {
    fn parse(pkcs8: &[u8]) -> Result<Self, String> {
        let pair = RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| format!("the signing key was rejected: {e}"))?;
        let public = pair.public();
        let kid = key_id(&subject_public_key_info(public.as_ref()));
        let components = PublicKeyComponents::<Vec<u8>>::from(public);
        let jwk = jwk(&kid, &components.n, &components.e);
        Ok(Self { pair, kid, jwk })
    }
}

// Parsed once per process: the key never changes, and every emulator instance shares it.
static KEY: LazyLock<Result<SigningKey, String>> = LazyLock::new(|| SigningKey::parse(EMBEDDED_KEY));

/// Signs `claims` as a compact JWS: `{"alg":"RS256","kid":KID}`, the claims, the signature.
pub fn sign(claims: &Value) -> Result<String, String> {
    let key = KEY.as_ref().map_err(Clone::clone)?;
    let input = signing_input(&key.kid, claims);
    let mut signature = vec![0; key.pair.public().modulus_len()];
    key.pair
        .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut signature)
        .map_err(|_| "signing failed".to_owned())?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// `GET /openid/v1/jwks`: the public keys tokens verify against (none if the key was rejected,
/// which a unit test rules out).
pub fn jwks() -> Value {
    let keys: Vec<Value> = KEY.as_ref().map(|key| key.jwk.clone()).into_iter().collect();
    json!({ "keys": keys })
}

/// `GET /.well-known/openid-configuration`. kube-apiserver builds `jwks_uri` from its external
/// address; the emulator has no fixed one, so the issuer's own URL stands in.
pub fn openid_configuration(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "jwks_uri": format!("{}{JWKS_PATH}", issuer.trim_end_matches('/')),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    })
}

/// `BASE64URL(header).BASE64URL(claims)`, the part the signature covers.
fn signing_input(kid: &str, claims: &Value) -> String {
    let header = json!({ "alg": "RS256", "kid": kid });
    format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()))
}

/// One RSA signing key as a JWK; `n` and `e` are big-endian without leading zeros.
fn jwk(kid: &str, n: &[u8], e: &[u8]) -> Value {
    json!({
        "use": "sig",
        "kty": "RSA",
        "kid": kid,
        "alg": "RS256",
        "n": URL_SAFE_NO_PAD.encode(n),
        "e": URL_SAFE_NO_PAD.encode(e),
    })
}

/// kube-apiserver's key id: base64url of the SHA-256 of the DER SubjectPublicKeyInfo.
fn key_id(spki: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, spki))
}

/// Wraps a PKCS#1 `RSAPublicKey` (what ring hands out) in a SubjectPublicKeyInfo (what Go's
/// `x509.MarshalPKIXPublicKey` hashes for the key id).
fn subject_public_key_info(pkcs1: &[u8]) -> Vec<u8> {
    // SEQUENCE { OID 1.2.840.113549.1.1.1 (rsaEncryption), NULL }
    const RSA_ALGORITHM: [u8; 15] =
        [0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];
    let mut bits = vec![0x00]; // no unused bits
    bits.extend_from_slice(pkcs1);
    let mut body = RSA_ALGORITHM.to_vec();
    body.extend(der(0x03, &bits));
    der(0x30, &body)
}

/// One DER tag-length-value.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};

    fn embedded() -> &'static SigningKey {
        KEY.as_ref().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_key_id_is_the_hash_of_the_public_key_info() {
        // `openssl pkey -inform DER -in service_account_key.der -pubout -outform DER |
        //  openssl dgst -sha256 -binary | basenc --base64url`, padding dropped.
        assert_eq!(embedded().kid, "f59BJJjbbCJhwyTPQVpHCIhj4yCIvrgEJx2wTbBGd4U");
    }

    #[test]
    fn the_jwks_holds_the_rsa_public_key() {
        let keys = jwks();
        let key = &keys["keys"][0];
        assert_eq!(keys["keys"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            (&key["kty"], &key["alg"], &key["use"], &key["e"]),
            (&json!("RSA"), &json!("RS256"), &json!("sig"), &json!("AQAB"))
        );
        let n = key["n"].as_str().and_then(|n| URL_SAFE_NO_PAD.decode(n).ok()).unwrap_or_default();
        assert_eq!(n.len(), 256, "a 2048-bit modulus without a leading zero");
    }

    #[test]
    fn a_signed_token_verifies_with_the_published_key() {
        let claims = json!({ "sub": "system:serviceaccount:default:robot" });
        let token = sign(&claims).unwrap_or_else(|e| panic!("{e}"));
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value =
            URL_SAFE_NO_PAD.decode(parts[0]).ok().and_then(|h| serde_json::from_slice(&h).ok()).unwrap_or_default();
        assert_eq!(header, json!({ "alg": "RS256", "kid": embedded().kid }));
        let jwk = &jwks()["keys"][0];
        let decode = |field: &str| jwk[field].as_str().and_then(|v| URL_SAFE_NO_PAD.decode(v).ok()).unwrap_or_default();
        let public = RsaPublicKeyComponents { n: decode("n"), e: decode("e") };
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap_or_default();
        let signed = format!("{}.{}", parts[0], parts[1]);
        assert!(public.verify(&RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &signature).is_ok());
    }

    #[test]
    fn the_discovery_document_points_at_the_key_set() {
        let doc = openid_configuration("https://issuer.example/");
        assert_eq!(doc["issuer"], "https://issuer.example/");
        assert_eq!(doc["jwks_uri"], "https://issuer.example/openid/v1/jwks");
        assert_eq!(doc["id_token_signing_alg_values_supported"], json!(["RS256"]));
    }

    #[test]
    fn der_lengths_use_the_long_form_past_127_bytes() {
        assert_eq!(der(0x04, &[1, 2]), [0x04, 2, 1, 2]);
        assert_eq!(&der(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(&der(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
    }
}
