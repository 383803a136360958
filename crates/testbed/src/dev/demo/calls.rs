//! The demo's calls through the example's gateway, as the example's validation makes them from outside:
//! requests to the gateway's `defaultHostname` on the GCP emulator's listener, answered by the
//! playground's stand-in for the API behind it. Then the gateway's API key is rotated: both keys
//! work during the overlap (shortened here), and the old one is refused after it.
//!
//! Key strings and the Bearer token travel in requests only: a line shows who called with what
//! kind of credential, the status and the answer (which the stand-in keeps free of secrets).

use super::{Demo, GATEWAY, SERVICE};
use crate::dev::standin::REVISION_HEADER;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use secrecy::{ExposeSecret, SecretString};
use secure_api_operator::api::GatewayConfig;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The overlap the demo rotates the API key with (the default is 24h).
const KEY_OVERLAP: std::time::Duration = std::time::Duration::from_secs(5);
/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// What the calls carry from step to step.
#[derive(Default)]
pub(super) struct Calls {
    caller: Option<Caller>,
    /// The seed's `external_api_key`: the backend's Bearer token for `/api/data`.
    pub(super) bearer: Option<SecretString>,
    /// The API key before its rotation: id and string.
    retired: Option<(String, SecretString)>,
}

/// Calls the gateway's hostname on the GCP emulator's listener, as `curl --resolve` would.
pub(super) struct Caller {
    client: reqwest::Client,
    base: String,
}

/// A status, the JSON it came with, and the revision that answered (the stand-in's header).
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) body: Value,
    pub(super) revision: Option<String>,
}

impl Caller {
    fn new(gateway_url: &str, addr: SocketAddr) -> Result<Self, String> {
        let host = gateway_url.trim_start_matches("https://").trim_end_matches('/');
        let client = reqwest::Client::builder()
            .no_proxy()
            .resolve(host, addr)
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| format!("an HTTP client: {e}"))?;
        Ok(Self { client, base: format!("http://{host}:{}", addr.port()) })
    }

    /// `curl --resolve` for `path` (no credentials: those are the reader's to add).
    fn curl(&self, path: &str) -> String {
        let authority = self.base.trim_start_matches("http://");
        format!("curl --resolve {authority}:127.0.0.1 {}{path}", self.base)
    }

    pub(super) async fn get(
        &self,
        path: &str,
        key: Option<&SecretString>,
        bearer: Option<&SecretString>,
    ) -> Result<Answer, String> {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.query(&[("key", key.expose_secret())]);
        }
        if let Some(token) = bearer {
            request = request.bearer_auth(token.expose_secret());
        }
        // The URL carries the key: errors are shown without it.
        let response = request.send().await.map_err(|e| format!("GET {path}: {}", e.without_url()))?;
        let status = response.status().as_u16();
        let revision = response.headers().get(REVISION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = response.bytes().await.map_err(|e| format!("GET {path}: {}", e.without_url()))?;
        Ok(Answer { status, body: serde_json::from_slice(&body).unwrap_or(Value::Null), revision })
    }
}

impl Answer {
    /// `200 {...}` for an answer, `401 <message>` for a refusal (the gateway's `message`, or the
    /// stand-in's `error`).
    pub(super) fn summary(&self) -> String {
        let refusal = self.body.get("message").or_else(|| self.body.get("error")).and_then(Value::as_str);
        match refusal {
            Some(message) if self.status >= 400 => format!("{} {message}", self.status),
            _ => format!("{} {}", self.status, self.body),
        }
    }
}

/// One call's line: `GET /config   with the API key   200 {...}`.
pub(super) fn line(path: &str, credentials: &str, answer: &Answer) -> String {
    format!("GET {path:<17} {credentials:<28} {}", answer.summary())
}

/// `Ok(line)` when the call answered `wanted`, else what it answered.
fn expect(path: &str, credentials: &str, answer: &Answer, wanted: u16) -> Result<String, String> {
    let line = line(path, credentials, answer);
    if answer.status == wanted { Ok(line) } else { Err(format!("expected {wanted}: {line}")) }
}

impl Demo<'_> {
    pub(super) fn caller(&self) -> Result<&Caller, String> {
        self.calls.caller.as_ref().ok_or_else(|| "the gateway was not called yet".to_owned())
    }

    /// The gateway's API key: id and string.
    async fn api_key(&self) -> Result<(String, SecretString), String> {
        let gateway = self.api::<GatewayConfig>().get(GATEWAY).await.map_err(|e| format!("GatewayConfig: {e}"))?;
        self.key_of(gateway).await
    }

    /// The id `gateway` reports for its API key, and the key's string from the Secret the operator
    /// writes it into.
    async fn key_of(&self, gateway: GatewayConfig) -> Result<(String, SecretString), String> {
        let spec = gateway.spec.api_keys.first().ok_or("the GatewayConfig declares no API key")?;
        let key_id = gateway.status.and_then(|s| s.api_keys.first().map(|k| k.key_id.clone()));
        let key_id = key_id.ok_or("the GatewayConfig reports no API key")?;
        let secret = self.api::<Secret>().get(&spec.secret_name).await;
        let secret = secret.map_err(|e| format!("Secret {}: {e}", spec.secret_name))?;
        let value = secret.data.and_then(|mut data| data.remove(&spec.secret_key));
        let value = value.ok_or_else(|| format!("Secret {} holds no {}", spec.secret_name, spec.secret_key))?;
        let value = String::from_utf8(value.0).map_err(|_| format!("Secret {} is not text", spec.secret_name))?;
        Ok((key_id, SecretString::from(value)))
    }

    /// The seed's validation: `/health` without a key, `/config` refused without one and answered
    /// with the provisioned key, `/database/status` with the secret's host, and `/api/data`
    /// behind the backend's own Bearer check.
    pub(super) async fn gateway_answers(&mut self) -> Result<Vec<String>, String> {
        let backend = self.playground.backend_routed(self.options.step_deadline).await?;
        let caller = Caller::new(&self.before.gateway_url, self.playground.gcp_addr())?;
        let health = self
            .wait(|| async {
                let answer = caller.get("/health", None, None).await?;
                if answer.status == 200 { Ok(answer) } else { Err(line("/health", "without a key", &answer)) }
            })
            .await?;
        let (_, key) = self.api_key().await?;
        let bearer = self.calls.bearer.clone().ok_or("the example's external_api_key was not made")?;
        let mut lines = vec![
            format!("gateway           {}   ({})", self.before.gateway_url, caller.curl("/health")),
            format!("backend           {backend}   (the stand-in for the example's API)"),
            line("/health", "without a key", &health),
        ];
        lines.push(expect("/config", "without a key", &caller.get("/config", None, None).await?, 401)?);
        lines.push(expect("/config", "with the API key", &caller.get("/config", Some(&key), None).await?, 200)?);
        let database = caller.get("/database/status", Some(&key), None).await?;
        lines.push(expect("/database/status", "with the API key", &database, 200)?);
        if database.body["host"] != "db.example.com" {
            return Err(format!("/database/status shows host {} (api-config-db has db.example.com)", database.body));
        }
        let unauthorised = caller.get("/api/data", Some(&key), None).await?;
        lines.push(expect("/api/data", "API key, no Bearer token", &unauthorised, 401)?);
        let data = caller.get("/api/data", Some(&key), Some(&bearer)).await?;
        lines.push(expect("/api/data", "API key + external_api_key", &data, 200)?);
        self.calls.caller = Some(caller);
        Ok(lines)
    }

    /// After the rotation of api-config-db, the gateway reaches the new revision.
    pub(super) async fn new_revision_answers(&mut self) -> Result<Vec<String>, String> {
        let revision = self.service().await?.status.and_then(|s| s.revision).unwrap_or_default();
        let (_, key) = self.api_key().await?;
        let caller = self.caller()?;
        let database = self
            .wait(|| async {
                let answer = caller.get("/database/status", Some(&key), None).await?;
                if answer.status == 200 && answer.body["revision"] == revision.as_str() {
                    Ok(answer)
                } else {
                    Err(format!("not revision {revision}: {}", line("/database/status", "with the API key", &answer)))
                }
            })
            .await?;
        Ok(vec![
            format!("revision          {} -> {revision}   (SecureApiService {SERVICE})", self.before.revision),
            line("/database/status", "with the API key", &database),
            line("/health", "without a key", &caller.get("/health", None, None).await?),
        ])
    }

    /// Bumps `spec.apiKeys[0].rotation` (with the demo's short overlap): one new key, written to
    /// its Secret, and the old one still valid.
    pub(super) async fn rotate_api_key(&mut self) -> Result<Vec<String>, String> {
        let gateways: Api<GatewayConfig> = self.api();
        let gateway = gateways.get(GATEWAY).await.map_err(|e| format!("GatewayConfig {GATEWAY}: {e}"))?;
        let mut keys = gateway.spec.api_keys.clone();
        let (old_id, old_key) = self.key_of(gateway).await?;
        let first = keys.first_mut().ok_or("the GatewayConfig declares no API key")?;
        let from = first.rotation.clone().unwrap_or_else(|| "none".into());
        let to = next_rotation(first.rotation.as_deref());
        first.rotation = Some(to.clone());
        first.overlap = KEY_OVERLAP.into();
        let patch = Patch::Merge(json!({"spec": {"apiKeys": keys}}));
        gateways.patch(GATEWAY, &PatchParams::default(), &patch).await.map_err(|e| format!("GatewayConfig: {e}"))?;
        let rotated = Instant::now();
        let (new_id, new_key) = self
            .wait(|| async {
                let gateway = self.gateway().await?;
                let retired = gateway.status.as_ref().map(|s| s.retired_api_keys.as_slice()).unwrap_or_default();
                if !retired.iter().any(|k| k.key_id == old_id) {
                    return Err(format!("the API key {old_id} is not retired yet"));
                }
                let (id, key) = self.key_of(gateway).await?;
                if id == old_id || key.expose_secret() == old_key.expose_secret() {
                    return Err(format!("the Secret still holds the API key {old_id}"));
                }
                Ok((id, key))
            })
            .await?;
        let took = rotated.elapsed().as_millis();
        let caller = self.caller()?;
        let lines = vec![
            format!(
                "spec.apiKeys[0]   rotation {from} -> {to}, overlap {}s (the default is 24h)",
                KEY_OVERLAP.as_secs()
            ),
            format!(
                "API key           {old_id} -> {new_id}   (the new string in its Secret {took} ms after the patch)"
            ),
            expect("/config", "with the new API key", &caller.get("/config", Some(&new_key), None).await?, 200)?,
            expect("/config", "with the old one (overlap)", &caller.get("/config", Some(&old_key), None).await?, 200)?,
        ];
        self.calls.retired = Some((old_id, old_key));
        Ok(lines)
    }

    /// Once the overlap ended, the operator deleted the old key: the gateway refuses it.
    pub(super) async fn old_api_key_refused(&mut self) -> Result<Vec<String>, String> {
        let (old_id, old_key) = self.calls.retired.take().ok_or("no API key was rotated")?;
        let (_, new_key) = self.api_key().await?;
        let caller = self.caller()?;
        let waited = Instant::now();
        let refused = self
            .wait(|| async {
                let status = self.gateway().await?.status.unwrap_or_default();
                if status.retired_api_keys.iter().any(|k| k.key_id == old_id) {
                    return Err(format!("the API key {old_id} is still retired, not deleted"));
                }
                let answer = caller.get("/config", Some(&old_key), None).await?;
                if answer.status == 400 { Ok(answer) } else { Err(line("/config", "with the old API key", &answer)) }
            })
            .await?;
        let keys = self.playground.gcp.api_keys(&self.playground.gcp_project);
        let deleted = keys.iter().any(|k| k.id == old_id && k.deleted);
        if !deleted {
            return Err(format!("the API key {old_id} is not deleted in Google Cloud"));
        }
        Ok(vec![
            format!(
                "API key           {old_id} deleted {} ms later   (restorable for 30 days: gcloud services api-keys undelete)",
                waited.elapsed().as_millis()
            ),
            line("/config", "with the old API key", &refused),
            expect("/config", "with the new API key", &caller.get("/config", Some(&new_key), None).await?, 200)?,
        ])
    }
}

/// The rotation value after `current`: a number counts up, anything else starts at 2 (the key
/// made without a rotation value is the first).
fn next_rotation(current: Option<&str>) -> String {
    match current.map(str::parse::<u64>) {
        Some(Ok(n)) => n.saturating_add(1).to_string(),
        _ => "2".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotations_count_up() {
        assert_eq!(next_rotation(None), "2");
        assert_eq!(next_rotation(Some("2")), "3");
        assert_eq!(next_rotation(Some("2026-12")), "2");
    }

    #[test]
    fn answers_show_the_body_and_refusals_their_message() {
        let ok = Answer { status: 200, body: json!({"status": "healthy"}), revision: None };
        assert_eq!(
            line("/health", "without a key", &ok),
            format!("GET {:<17} {:<28} 200 {{\"status\":\"healthy\"}}", "/health", "without a key")
        );
        let refused =
            Answer { status: 400, body: json!({"code": 400, "message": "API key not found."}), revision: None };
        assert_eq!(refused.summary(), "400 API key not found.");
        let standin =
            Answer { status: 401, body: json!({"error": "a valid Bearer token is required"}), revision: None };
        assert_eq!(standin.summary(), "401 a valid Bearer token is required");
        assert!(expect("/config", "x", &refused, 200).is_err_and(|e| e.starts_with("expected 200: GET /config")));
    }

    #[test]
    fn the_curl_line_resolves_the_gateway_host_to_the_listener() {
        let caller = Caller::new("https://secure-api-gw-1.uc.gateway.dev", ([127, 0, 0, 1], 4444).into());
        let caller = caller.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            caller.curl("/health"),
            "curl --resolve secure-api-gw-1.uc.gateway.dev:4444:127.0.0.1 http://secure-api-gw-1.uc.gateway.dev:4444/health"
        );
    }
}
