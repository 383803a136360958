//! RS256 JWTs checked against a JWKS, as STS checks the subject tokens it exchanges (Kubernetes
//! ServiceAccount tokens): signature, `kid`, `exp`, `nbf` and `iat`. Pure: the keys and the time
//! come in. Errors describe what is wrong and never carry the token or its claims.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde_json::Value;
use std::fmt;

/// How far in the future `nbf` and `iat` may be, for clocks that disagree a little.
const LEEWAY_SECONDS: u64 = 60;

/// One RSA signing key of a JWKS.
#[derive(Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: Option<String>,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Jwk(kid={:?}, {} bit)", self.kid, self.n.len() * 8)
    }
}

/// The RSA signing keys of a JWKS document (`{"keys":[{"kty":"RSA","kid","n","e"}]}`); keys of
/// other types or algorithms, or for encryption, are skipped.
pub fn parse_jwks(document: &Value) -> Vec<Jwk> {
    let keys = document.get("keys").and_then(Value::as_array).into_iter().flatten();
    keys.filter_map(|key| {
        let field = |name: &str| key.get(name).and_then(Value::as_str);
        let usable = field("kty") == Some("RSA")
            && field("alg").is_none_or(|alg| alg == "RS256")
            && field("use").is_none_or(|usage| usage == "sig");
        if !usable {
            return None;
        }
        let n = decode_part(field("n")?)?;
        let e = decode_part(field("e")?)?;
        Some(Jwk { kid: field("kid").map(str::to_owned), n: strip_leading_zeros(n), e: strip_leading_zeros(e) })
    })
    .collect()
}

/// The claims STS reads from a verified token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub exp: u64,
}

/// Why a token is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwtError {
    Malformed,
    Algorithm,
    UnknownKey,
    Signature,
    MissingClaim(&'static str),
    Expired,
    NotYetValid,
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => write!(f, "The subject token is not a well-formed JWT."),
            Self::Algorithm => write!(f, "The subject token must be signed with RS256."),
            Self::UnknownKey => write!(f, "The subject token is signed by a key that is not trusted."),
            Self::Signature => write!(f, "The subject token's signature could not be verified."),
            Self::MissingClaim(claim) => write!(f, "The subject token has no valid '{claim}' claim."),
            Self::Expired => write!(f, "The subject token has expired."),
            Self::NotYetValid => write!(f, "The subject token is not valid yet ('nbf' or 'iat' is in the future)."),
        }
    }
}

/// A token split and decoded, not yet verified. No `Debug`: it holds the credential.
pub struct Unverified<'a> {
    signed: &'a str,
    signature: Vec<u8>,
    kid: Option<String>,
    claims: Value,
}

/// Splits `header.payload.signature` and decodes the parts; the header must name RS256.
pub fn decode(token: &str) -> Result<Unverified<'_>, JwtError> {
    let token = token.trim();
    let (signed, signature) = token.rsplit_once('.').ok_or(JwtError::Malformed)?;
    let (header, payload) = signed.split_once('.').ok_or(JwtError::Malformed)?;
    if payload.contains('.') {
        return Err(JwtError::Malformed);
    }
    let json = |part: &str| decode_part(part).and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
    let header = json(header).ok_or(JwtError::Malformed)?;
    let claims = json(payload).filter(Value::is_object).ok_or(JwtError::Malformed)?;
    let signature = decode_part(signature).ok_or(JwtError::Malformed)?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(JwtError::Algorithm);
    }
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
    Ok(Unverified { signed, signature, kid, claims })
}

impl Unverified<'_> {
    /// The `kid` of the header, which picks the key.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Checks the signature with the key the `kid` names (any key when there is no `kid`), then
    /// the times against `now` (seconds since the epoch), and returns the claims.
    pub fn verify(self, keys: &[Jwk], now: u64) -> Result<Claims, JwtError> {
        let candidates: Vec<&Jwk> =
            keys.iter().filter(|key| self.kid.is_none() || key.kid.as_deref() == self.kid.as_deref()).collect();
        if candidates.is_empty() {
            return Err(JwtError::UnknownKey);
        }
        let verified = candidates.iter().any(|key| {
            let public = RsaPublicKeyComponents { n: &key.n, e: &key.e };
            public.verify(&RSA_PKCS1_2048_8192_SHA256, self.signed.as_bytes(), &self.signature).is_ok()
        });
        if !verified {
            return Err(JwtError::Signature);
        }
        claims(&self.claims, now)
    }
}

fn claims(claims: &Value, now: u64) -> Result<Claims, JwtError> {
    let text = |name: &'static str| {
        claims.get(name).and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or(JwtError::MissingClaim(name))
    };
    let time = |name: &str| claims.get(name).and_then(Value::as_f64).map(|t| t.max(0.0) as u64);
    let exp = time("exp").ok_or(JwtError::MissingClaim("exp"))?;
    if exp <= now {
        return Err(JwtError::Expired);
    }
    let future = |t: Option<u64>| t.is_some_and(|t| t > now + LEEWAY_SECONDS);
    if future(time("nbf")) || future(time("iat")) {
        return Err(JwtError::NotYetValid);
    }
    let aud = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    if aud.is_empty() {
        return Err(JwtError::MissingClaim("aud"));
    }
    Ok(Claims { iss: text("iss")?.to_owned(), sub: text("sub")?.to_owned(), aud, exp })
}

/// base64url, padded or not.
fn decode_part(part: &str) -> Option<Vec<u8>> {
    let config = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    GeneralPurpose::new(&base64::alphabet::URL_SAFE, config).decode(part).ok()
}

/// Some encoders write `n` with a sign byte; ring wants the bare big-endian number.
fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros.min(bytes.len().saturating_sub(1)));
    bytes
}

#[cfg(test)]
pub(super) mod testing {
    //! A signing key and a token builder for the tests of this module and its neighbours.

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ring::rand::SystemRandom;
    use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents};
    use serde_json::{Value, json};

    /// A 2048-bit RSA key in PKCS#1 DER (what `openssl genpkey -outform DER` writes).
    const KEY: &[u8] = include_bytes!("testdata/jwt-signing-key.der");

    pub fn key() -> RsaKeyPair {
        RsaKeyPair::from_der(KEY).unwrap_or_else(|e| panic!("test key: {e}"))
    }

    /// The JWKS of the test key, under `kid`.
    pub fn jwks(kid: &str) -> Value {
        let public = RsaPublicKeyComponents::<Vec<u8>>::from(key().public());
        json!({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(&public.n), "e": URL_SAFE_NO_PAD.encode(&public.e)}]})
    }

    /// `claims` signed with the test key under `kid`.
    pub fn sign(kid: &str, claims: &Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "typ": "JWT", "kid": kid}).to_string());
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{payload}");
        let key = key();
        let mut signature = vec![0; key.public().modulus_len()];
        key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signed.as_bytes(), &mut signature)
            .unwrap_or_else(|e| panic!("signing: {e}"));
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{jwks, sign};
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_700_000_000;

    fn claims(exp: u64) -> Value {
        json!({"iss": "https://issuer", "sub": "system:serviceaccount:a:b", "aud": ["p.svc.id.goog"], "exp": exp, "iat": NOW - 10})
    }

    fn verify(token: &str, keys: &[Jwk]) -> Result<Claims, JwtError> {
        decode(token)?.verify(keys, NOW)
    }

    #[test]
    fn a_token_signed_by_a_trusted_key_yields_its_claims() {
        let keys = parse_jwks(&jwks("k1"));
        let token = sign("k1", &claims(NOW + 600));
        assert_eq!(decode(&token).ok().and_then(|t| t.kid().map(str::to_owned)).as_deref(), Some("k1"));
        let verified = verify(&token, &keys);
        assert_eq!(
            verified.map(|c| (c.iss, c.sub, c.aud, c.exp)),
            Ok((
                "https://issuer".to_owned(),
                "system:serviceaccount:a:b".to_owned(),
                vec!["p.svc.id.goog".to_owned()],
                NOW + 600
            ))
        );
    }

    #[test]
    fn an_unknown_kid_or_no_keys_is_an_unknown_key() {
        let token = sign("k1", &claims(NOW + 600));
        assert_eq!(verify(&token, &parse_jwks(&jwks("k2"))), Err(JwtError::UnknownKey));
        assert_eq!(verify(&token, &[]), Err(JwtError::UnknownKey));
    }

    #[test]
    fn a_changed_payload_fails_the_signature() {
        let token = sign("k1", &claims(NOW + 600));
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims(NOW + 9999).to_string());
        assert_eq!(verify(&parts.join("."), &parse_jwks(&jwks("k1"))), Err(JwtError::Signature));
    }

    #[test]
    fn expired_and_future_tokens_are_refused() {
        let keys = parse_jwks(&jwks("k1"));
        assert_eq!(verify(&sign("k1", &claims(NOW)), &keys), Err(JwtError::Expired));
        let mut future = claims(NOW + 600);
        future["nbf"] = json!(NOW + 300);
        assert_eq!(verify(&sign("k1", &future), &keys), Err(JwtError::NotYetValid));
        let mut no_exp = claims(NOW + 600);
        no_exp.as_object_mut().map(|c| c.remove("exp"));
        assert_eq!(verify(&sign("k1", &no_exp), &keys), Err(JwtError::MissingClaim("exp")));
    }

    #[test]
    fn malformed_tokens_and_other_algorithms_are_refused_without_echo() {
        assert_eq!(decode("not-a-jwt").err(), Some(JwtError::Malformed));
        assert_eq!(decode("a.b.c.d").err(), Some(JwtError::Malformed));
        let hs256 = format!(
            "{}.{}.c2ln",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("{}")
        );
        assert_eq!(decode(&hs256).err(), Some(JwtError::Algorithm));
        assert!(!JwtError::Signature.to_string().contains("eyJ"));
    }

    #[test]
    fn jwks_keep_rsa_signing_keys_only() {
        let mut document = jwks("k1");
        if let Some(keys) = document["keys"].as_array_mut() {
            keys.push(json!({"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"}));
            keys.push(json!({"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"}));
        }
        let keys = parse_jwks(&document);
        assert_eq!(keys.iter().map(|k| k.kid.as_deref()).collect::<Vec<_>>(), [Some("k1")]);
    }
}
