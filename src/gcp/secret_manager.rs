//! The Secret Manager client: access a secret version, with identical concurrent reads coalesced.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use base64::Engine as _;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared, WeakShared};
use secrecy::zeroize::{Zeroize as _, Zeroizing};
use serde::{Deserialize, Deserializer};

use super::GcpConfig;
use super::caller::Caller;
use super::error::{Code, Detail, GcpError};
use super::http::{Call, CallObserver, Executor, check_endpoint};
use super::payload::SecretBytes;
use super::secret_name::{SecretName, is_version};

const SERVICE: &str = "secretmanager";
const METHOD_ACCESS: &str = "secretmanager.versions.access";
const GLOBAL_ENDPOINT: &str = "https://secretmanager.googleapis.com";

/// Proto3 JSON bytes are standard base64; padding is accepted with or without.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One accessed secret version.
#[derive(Clone, Debug)]
pub struct AccessedVersion {
    /// Resource name from the response (Google answers with the project *number*).
    pub name: String,
    /// The resolved version number, also when `latest` or an alias was asked.
    pub version: String,
    /// The payload.
    pub data: Arc<SecretBytes>,
    /// CRC32C claimed by the server (`dataCrc32c`); checked by the caller with [`Self::crc32c_matches`].
    pub data_crc32c: Option<u32>,
}

impl AccessedVersion {
    /// Whether the payload matches the server's CRC32C. Without a checksum this returns `true`
    /// (the real API always sends one; old emulators may not).
    pub fn crc32c_matches(&self) -> bool {
        self.data_crc32c.is_none_or(|expected| crc32c::crc32c(self.data.expose()) == expected)
    }
}

type AccessFuture = BoxFuture<'static, Result<AccessedVersion, GcpError>>;

/// The Secret Manager client. Cheap to clone (shares one connection pool and one set of limits).
#[derive(Clone)]
pub struct SecretManager {
    inner: Arc<Inner>,
    caller: Caller,
}

struct Inner {
    executor: Executor,
    endpoint: Option<String>,
    default_project: Option<String>,
    /// In-flight accesses by caller and full version name (callers share a read only with the
    /// same identity). Weak, so abandoned calls do not linger.
    inflight: Mutex<InFlightMap>,
    next_id: AtomicU64,
}

/// In-flight accesses keyed by (caller, full version name).
type InFlightMap = HashMap<(String, String), InFlight>;

struct InFlight {
    id: u64,
    future: WeakShared<AccessFuture>,
}

impl SecretManager {
    /// Builds the client; initialises authentication unless `config.no_auth` (or a fixed token) is set.
    ///
    /// # Errors
    /// An invalid endpoint override (INVALID_ARGUMENT) or no usable Google credentials (UNAUTHENTICATED).
    pub async fn new(config: GcpConfig, observer: Option<Arc<dyn CallObserver>>) -> Result<Self, GcpError> {
        let endpoint = config
            .secret_manager_endpoint
            .as_deref()
            .map(|endpoint| check_endpoint(endpoint, "secret_manager_endpoint"))
            .transpose()?;
        let executor = Executor::from_config(&config, observer).await?;
        let inner = Inner {
            executor,
            endpoint,
            default_project: config.default_project,
            inflight: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        };
        Ok(Self { inner: Arc::new(inner), caller: Caller::Operator })
    }

    /// The same client, calling as `caller` (the same connection pool, limits and coalescing).
    pub fn acting_as(&self, caller: Caller) -> Self {
        Self { inner: Arc::clone(&self.inner), caller }
    }

    /// The project used for bare secret ids (pass it to [`SecretName::parse`]).
    pub fn default_project(&self) -> Option<&str> {
        self.inner.default_project.as_deref()
    }

    /// `GET v1/{name}/versions/{version}:access`. Identical concurrent calls (same full version
    /// name) share one HTTP request.
    ///
    /// # Errors
    /// The final error after retries; a malformed success answer is `Code::Unknown` with
    /// `Detail::MalformedResponse`. A checksum mismatch is NOT an error: see [`AccessedVersion::crc32c_matches`].
    pub async fn access(&self, secret: &SecretName, version: &str) -> Result<AccessedVersion, GcpError> {
        let name = secret.version(version);
        if !is_version(version) {
            return Err(GcpError::new(METHOD_ACCESS, name, Code::InvalidArgument, Some(Detail::InvalidRequest)));
        }
        let url = format!("{}/v1/{name}:access", self.inner.base_url(secret));
        self.shared_access(name, url).await
    }

    /// Joins the in-flight access of `name` by the same caller, or starts one that others can join.
    fn shared_access(&self, name: String, url: String) -> Shared<AccessFuture> {
        let key = (self.caller.key().to_owned(), name.clone());
        let mut inflight = lock(&self.inner.inflight);
        if let Some(running) = inflight.get(&key).and_then(|entry| entry.future.upgrade()) {
            return running;
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let forget = Forget { inner: Arc::clone(&self.inner), key: key.clone(), id };
        let inner = Arc::clone(&self.inner);
        let caller = self.caller.clone();
        let future = async move {
            // Dropped on completion (or when every caller gave up): removes the map entry.
            let _forget = forget;
            inner.fetch(&name, &url, &caller).await
        }
        .boxed()
        .shared();
        if let Some(weak) = future.downgrade() {
            inflight.insert(key, InFlight { id, future: weak });
        }
        future
    }
}

impl fmt::Debug for SecretManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretManager")
            .field("endpoint", &self.inner.endpoint.as_deref().unwrap_or(GLOBAL_ENDPOINT))
            .field("default_project", &self.inner.default_project)
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// The override, else the global or the regional endpoint.
    fn base_url(&self, secret: &SecretName) -> String {
        match (&self.endpoint, &secret.location) {
            (Some(endpoint), _) => endpoint.clone(),
            (None, Some(location)) => format!("https://secretmanager.{location}.rep.googleapis.com"),
            (None, None) => GLOBAL_ENDPOINT.to_owned(),
        }
    }

    async fn fetch(&self, name: &str, url: &str, caller: &Caller) -> Result<AccessedVersion, GcpError> {
        let call = Call { service: SERVICE, method: METHOD_ACCESS, resource: name, url, caller };
        let success = self.executor.get(&call).await?;
        decode_access(name, success.http_code, &success.body)
    }
}

/// Removes its in-flight entry when dropped, unless a newer call already replaced it.
struct Forget {
    inner: Arc<Inner>,
    key: (String, String),
    id: u64,
}

impl Drop for Forget {
    fn drop(&mut self) {
        let mut inflight = lock(&self.inner.inflight);
        if inflight.get(&self.key).is_some_and(|entry| entry.id == self.id) {
            inflight.remove(&self.key);
        }
    }
}

fn lock(map: &Mutex<InFlightMap>) -> MutexGuard<'_, InFlightMap> {
    // Map operations cannot leave it half-updated, so a poisoned lock is still usable.
    map.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Deserialize)]
struct AccessResponse {
    #[serde(default)]
    name: String,
    payload: Option<PayloadJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PayloadJson {
    /// Absent for an empty payload (proto3 JSON omits empty bytes).
    #[serde(default)]
    data: Option<Base64Text>,
    #[serde(default)]
    data_crc32c: Option<Int64>,
}

/// The base64 text of a payload, wiped on drop.
struct Base64Text(Zeroizing<String>);

impl<'de> Deserialize<'de> for Base64Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| Self(Zeroizing::new(text)))
    }
}

/// Proto3 JSON writes int64 as a string; numbers are accepted too.
#[derive(Deserialize)]
#[serde(untagged)]
enum Int64 {
    Text(String),
    Number(u64),
}

impl Int64 {
    fn to_u32(&self) -> Option<u32> {
        let value = match self {
            Int64::Text(text) => text.parse::<u64>().ok()?,
            Int64::Number(number) => *number,
        };
        u32::try_from(value).ok()
    }
}

/// Decodes an `:access` answer. Errors never include the body (serde messages can quote it).
fn decode_access(resource: &str, http_code: u16, body: &[u8]) -> Result<AccessedVersion, GcpError> {
    let malformed = || GcpError {
        http_code: Some(http_code),
        ..GcpError::new(METHOD_ACCESS, resource, Code::Unknown, Some(Detail::MalformedResponse))
    };
    let response: AccessResponse = serde_json::from_slice(body).map_err(|_| malformed())?;
    let version = resolved_version(&response.name).ok_or_else(malformed)?.to_owned();
    let payload = response.payload.ok_or_else(malformed)?;
    let data = match &payload.data {
        Some(text) => decode_base64(&text.0).ok_or_else(malformed)?,
        None => SecretBytes::new(Vec::new()),
    };
    let data_crc32c = match &payload.data_crc32c {
        Some(checksum) => Some(checksum.to_u32().ok_or_else(malformed)?),
        None => None,
    };
    Ok(AccessedVersion { name: response.name, version, data: Arc::new(data), data_crc32c })
}

/// The number at the end of `projects/P/.../versions/N`.
fn resolved_version(name: &str) -> Option<&str> {
    let (secret, version) = name.rsplit_once("/versions/")?;
    let numeric = !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit());
    (secret.starts_with("projects/") && numeric).then_some(version)
}

/// Decodes into a buffer that is wiped if decoding fails halfway.
fn decode_base64(text: &str) -> Option<SecretBytes> {
    let mut buffer = Vec::with_capacity(base64::decoded_len_estimate(text.len()));
    match BASE64.decode_vec(text, &mut buffer) {
        Ok(()) => Some(SecretBytes::new(buffer)),
        Err(_) => {
            buffer.zeroize();
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{AccessedVersion, Code, Detail, GcpConfig, SecretBytes, SecretManager, SecretName, decode_access};

    const NAME: &str = "projects/p/secrets/db/versions/latest";

    fn access_body(name: &str, payload: serde_json::Value) -> Vec<u8> {
        serde_json::json!({ "name": name, "payload": payload }).to_string().into_bytes()
    }

    fn decoded(body: &[u8]) -> AccessedVersion {
        decode_access(NAME, 200, body).unwrap_or_else(|e| panic!("{e}"))
    }

    fn malformed(body: &[u8]) {
        match decode_access(NAME, 200, body) {
            Ok(version) => panic!("decoded {version:?}"),
            Err(error) => {
                assert_eq!((error.status, error.detail), (Code::Unknown, Some(Detail::MalformedResponse)));
                assert!(!format!("{error} {error:?}").contains("SENTINEL"));
            }
        }
    }

    #[test]
    fn decodes_a_version_with_its_number_and_checksum() {
        let crc = crc32c::crc32c(b"s3cret").to_string();
        let version = decoded(&access_body(
            "projects/123/secrets/db/versions/7",
            serde_json::json!({"data": "czNjcmV0", "dataCrc32c": crc}),
        ));
        assert_eq!((version.name.as_str(), version.version.as_str()), ("projects/123/secrets/db/versions/7", "7"));
        assert_eq!(version.data.expose(), b"s3cret");
        assert!(version.crc32c_matches());
        let unpadded = decoded(&access_body(
            "projects/1/secrets/db/versions/2",
            serde_json::json!({"data": "czNjcmV0Cg", "dataCrc32c": 5}),
        ));
        assert_eq!((unpadded.data.expose(), unpadded.data_crc32c), (&b"s3cret\n"[..], Some(5)));
        assert!(!unpadded.crc32c_matches());
    }

    #[test]
    fn empty_payloads_omit_data() {
        let version = decoded(&access_body("projects/1/secrets/db/versions/2", serde_json::json!({"dataCrc32c": "0"})));
        assert!(version.data.is_empty() && version.crc32c_matches());
    }

    #[test]
    fn rejects_malformed_answers_without_quoting_them() {
        malformed(b"SENTINEL-not-json");
        malformed(&access_body("projects/1/secrets/db/versions/2", serde_json::json!({"data": "SENTINEL-***"})));
        malformed(&access_body("projects/1/secrets/db/versions/latest", serde_json::json!({"data": "AA=="})));
        malformed(&access_body("", serde_json::json!({"data": "AA=="})));
        malformed(&access_body(
            "projects/1/secrets/db/versions/2",
            serde_json::json!({"data": "AA==", "dataCrc32c": "4294967296"}),
        ));
        malformed(&access_body(
            "projects/1/secrets/db/versions/2",
            serde_json::json!({"data": "AA==", "dataCrc32c": "x"}),
        ));
        malformed(br#"{"name":"projects/1/secrets/db/versions/2"}"#);
    }

    #[test]
    fn crc32c_absent_is_accepted() {
        let version = AccessedVersion {
            name: NAME.into(),
            version: "1".into(),
            data: Arc::new(SecretBytes::new(b"x".to_vec())),
            data_crc32c: None,
        };
        assert!(version.crc32c_matches());
        assert!(!format!("{version:?}").contains("data: [") && format!("{version:?}").contains("<redacted>"));
    }

    #[tokio::test]
    async fn invalid_endpoints_are_rejected() {
        let config =
            GcpConfig { no_auth: true, secret_manager_endpoint: Some("ftp://x".into()), ..GcpConfig::default() };
        match SecretManager::new(config, None).await {
            Ok(client) => panic!("accepted {client:?}"),
            Err(error) => {
                assert_eq!(error.to_string(), "config secret_manager_endpoint: INVALID_ARGUMENT (invalid request)")
            }
        }
    }

    async fn client(endpoint: Option<&str>) -> SecretManager {
        let config =
            GcpConfig { no_auth: true, secret_manager_endpoint: endpoint.map(str::to_owned), ..GcpConfig::default() };
        SecretManager::new(config, None).await.unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn routes_global_regional_and_overridden_names() {
        let global = SecretName::parse("projects/p/secrets/s", None).unwrap_or_else(|e| panic!("{e}"));
        let regional =
            SecretName::parse("projects/p/locations/us-east1/secrets/s", None).unwrap_or_else(|e| panic!("{e}"));
        let default = client(None).await;
        assert_eq!(default.inner.base_url(&global), "https://secretmanager.googleapis.com");
        assert_eq!(default.inner.base_url(&regional), "https://secretmanager.us-east1.rep.googleapis.com");
        let emulator = client(Some("http://127.0.0.1:9/")).await;
        assert_eq!(emulator.inner.base_url(&regional), "http://127.0.0.1:9");
    }

    #[tokio::test]
    async fn invalid_versions_are_rejected_before_sending() {
        let secret = SecretName::parse("projects/p/secrets/s", None).unwrap_or_else(|e| panic!("{e}"));
        match client(Some("http://127.0.0.1:9")).await.access(&secret, "../x").await {
            Ok(version) => panic!("accessed {version:?}"),
            Err(error) => {
                assert_eq!((error.status, error.detail), (Code::InvalidArgument, Some(Detail::InvalidRequest)))
            }
        }
    }
}
