//! In-memory Google Cloud emulators behind one HTTP front door: [`GcpEmulator`] serves
//! `/v1/...` and routes each request to the service that owns it (Secret Manager, Pub/Sub, API
//! Gateway, Service Usage, and the identity APIs: STS, IAM Credentials, IAM, Resource Manager),
//! and `/v2/...` to API Keys, chosen by the `Host` header (`secretmanager.googleapis.com`,
//! `pubsub.googleapis.com`, `apigateway.googleapis.com`, `serviceusage.googleapis.com`,
//! `sts.googleapis.com`, …) or by the path (`.../secrets/...`;
//! `projects/P/topics|subscriptions/...`; `.../locations/L/apis|gateways|operations/...`;
//! `projects/P/services/...` and `operations/...`; `token`; `.../serviceAccounts/...`;
//! `projects/P[:getIamPolicy]`; anything under `/v2/`, and Service Usage's `/v1beta1/`). Same
//! JSON shapes, states and
//! `google.rpc.Status` errors as the real APIs, IAM enforced for the tokens the emulator issued
//! (see [`iam`]; any other caller is the project owner), Secret Manager's event notifications
//! published to Pub/Sub (see [`notifications`]), plus test hooks: per-method counters, injected
//! faults, delivery faults, a clock to move forward, direct seeding and inspection helpers.

mod access;
mod api_gateway;
mod api_keys;
mod clock;
mod hooks;
mod iam;
mod identity;
mod notifications;
mod pubsub;
mod rest;
mod routing;
pub mod rpc;
mod secret_manager;
mod service_usage;

pub use api_keys::{ApiTarget, KeyInfo, KeyRejection};
pub use hooks::GcpFault;
pub use iam::Denial;
pub use notifications::PublishedMessage;
pub use pubsub::DeliveryFaults;
pub use secret_manager::VersionState;

use crate::listener::{Listener, listen};
use bytes::Bytes;
use hooks::{Hooks, lock};
use http_body_util::Full;
use hyper::{HeaderMap, Method, Request, Response, StatusCode, Uri, header};
use routing::{Routed, percent_decode, route};
use rpc::RpcError;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The body of every answer: one JSON document.
pub type Body = Full<Bytes>;

/// The GCP emulators. Cheap to clone: clones share state, counters and faults.
#[derive(Clone, Debug, Default)]
pub struct GcpEmulator {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    hooks: Hooks,
    // Locked only around synchronous store work, never across an await; the Secret Manager
    // store is unlocked before its notifications are delivered to the Pub/Sub store.
    secret_manager: Mutex<secret_manager::Store>,
    pubsub: Mutex<pubsub::Store>,
    api_gateway: Mutex<api_gateway::Store>,
    /// The gateways' data plane: quota usage and registered JWKS.
    serving: api_gateway::Serving,
    api_keys: Mutex<api_keys::Store>,
    service_usage: Mutex<service_usage::Store>,
    iam: Mutex<iam::Store>,
    /// Locks itself, never across a JWKS fetch.
    trust: iam::Trust,
    clock: clock::Clock,
    /// Secret Manager's notifications so far, for `published`.
    published: Mutex<std::collections::VecDeque<PublishedMessage>>,
    /// Set by `publish_to`: notifications go to another Pub/Sub.
    external: Mutex<Option<notifications::External>>,
    rotation_timer: AtomicBool,
}

impl GcpEmulator {
    /// An emulator with no resources, counters or faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds `addr` (port 0 picks a free port) and serves HTTP/1.1 until the listener is shut
    /// down or dropped. Also starts the timer that sends due rotation notifications (every
    /// second, until the emulator is dropped).
    pub async fn listen(&self, addr: SocketAddr) -> std::io::Result<Listener> {
        self.start_rotation_timer();
        let emulator = self.clone();
        listen(addr, move |request: Request<Bytes>| {
            let emulator = emulator.clone();
            async move {
                let (parts, body) = request.into_parts();
                emulator.respond(&parts.method, &parts.uri, &parts.headers, body).await
            }
        })
        .await
    }

    /// Serves one request: routes it, counts it, applies faults, and answers JSON.
    pub async fn respond(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: Bytes) -> Response<Body> {
        // A gateway's `defaultHostname` is its data plane, not an API of the emulator.
        if let Some(response) = self.serve_gateway(method, uri, headers, &body).await {
            return response;
        }
        let query = rest::Query::parse(uri.query());
        let routed = match route(method, uri, headers) {
            Ok(routed) => self.resolve(routed, &query),
            Err(error) => return error_response(&error),
        };
        let injected = self.inner.hooks.on_request(routed.method_id(), &routed.resource(), routed.starts_operation());
        if let Some(delay) = injected.delay {
            tokio::time::sleep(delay).await;
        }
        if let Some(status) = injected.status {
            return error_response(&injected_error(status, &routed));
        }
        if let Err(error) = self.check_access(&routed, headers) {
            return error_response(&error);
        }
        let fail_operation = injected.fail_operation.as_deref();
        let answer = match &routed {
            Routed::SecretManager(call) => {
                self.with_secret_manager(|store, now| secret_manager::handle(store, call, &query, &body, now))
            }
            Routed::PubSub(call) => {
                pubsub::handle(&mut lock(&self.inner.pubsub), call, &query, &body, self.inner.clock.now())
            }
            Routed::ApiGateway(call) => {
                api_gateway::handle(&mut lock(&self.inner.api_gateway), call, &query, &body, fail_operation)
            }
            Routed::ApiKeys(call) => {
                let now = self.inner.clock.now();
                api_keys::handle(&mut lock(&self.inner.api_keys), call, &query, &body, fail_operation, now)
            }
            Routed::ServiceUsage(call) => {
                let now = self.inner.clock.now();
                service_usage::handle(&mut lock(&self.inner.service_usage), call, &query, &body, fail_operation, now)
            }
            Routed::Iam(iam::Call::Token) => {
                return match iam::exchange(&self.inner.iam, &self.inner.trust, &body).await {
                    Ok(value) => json_response(StatusCode::OK, &value),
                    Err(error) => json_response(StatusCode::BAD_REQUEST, &error.to_json()),
                };
            }
            Routed::Iam(call) => iam::handle(&mut lock(&self.inner.iam), call, &body),
        };
        match answer {
            Ok(mut value) => {
                if injected.wrong_checksum {
                    secret_manager::corrupt_checksum(&mut value);
                }
                json_response(StatusCode::OK, &value)
            }
            Err(error) => error_response(&error),
        }
    }

    /// How many requests of `method` (e.g. `secretmanager.versions.access`) arrived.
    pub fn count(&self, method: &str) -> u64 {
        self.inner.hooks.count(method)
    }

    /// Requests of `method` on resources whose name contains `resource`
    /// (e.g. `projects/p/secrets/db/`).
    pub fn count_for(&self, method: &str, resource: &str) -> u64 {
        self.inner.hooks.count_for(method, resource)
    }

    /// Every method's request count.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.inner.hooks.counts()
    }

    /// Sets every counter back to zero.
    pub fn reset_counts(&self) {
        self.inner.hooks.reset_counts();
    }

    /// Adds a fault; faults apply in the order they were added.
    pub fn inject_fault(&self, fault: GcpFault) {
        self.inner.hooks.inject(fault);
    }

    /// Removes every fault, delivery faults included.
    pub fn clear_faults(&self) {
        self.inner.hooks.clear_faults();
        self.set_delivery_faults(DeliveryFaults::default());
    }

    /// Makes the emulator's Pub/Sub deliver badly from now on (see [`DeliveryFaults`]),
    /// replacing the delivery faults set before.
    pub fn set_delivery_faults(&self, faults: DeliveryFaults) {
        pubsub::set_delivery_faults(&mut lock(&self.inner.pubsub), faults);
    }

    /// Moves the emulator's clock forward: Pub/Sub ack deadlines and delayed deliveries, and
    /// rotation times, see the later time (timestamps the APIs write do not).
    pub fn advance_clock(&self, by: Duration) {
        self.inner.clock.advance(by);
    }

    /// Creates the global secret `projects/{project}/secrets/{id}` with automatic replication.
    /// Fails like `secrets.create` (`ALREADY_EXISTS`, `INVALID_ARGUMENT` for a bad id).
    pub fn create_secret(&self, project: &str, id: &str) -> Result<(), RpcError> {
        self.with_secret_manager(|store, _| secret_manager::create_secret(store, project, id))
    }

    /// Adds an enabled version and returns its number, creating the secret when it is missing.
    /// No API checks (size, id): tests may seed anything. The secret's topics hear of it as of
    /// an `addVersion` (`SECRET_VERSION_ADD`).
    pub fn add_version(&self, project: &str, id: &str, data: &[u8]) -> u64 {
        self.with_secret_manager(|store, _| secret_manager::add_version(store, project, id, data))
    }

    /// Enables, disables or destroys a version, with the API's rules (a destroyed version
    /// stays destroyed) and its notifications.
    pub fn set_version_state(
        &self,
        project: &str,
        id: &str,
        version: u64,
        state: VersionState,
    ) -> Result<(), RpcError> {
        self.with_secret_manager(|store, _| secret_manager::set_version_state(store, project, id, version, state))
    }

    /// Points the alias `alias` of a secret at an existing version (a `SECRET_UPDATE`).
    pub fn set_alias(&self, project: &str, id: &str, alias: &str, version: u64) -> Result<(), RpcError> {
        self.with_secret_manager(|store, _| secret_manager::set_alias(store, project, id, alias, version))
    }

    /// Sets the Pub/Sub topics (full names, `projects/P/topics/T`, at most 10) of the global
    /// secret `id`, creating the secret when it is missing. As a `topics` patch: each added
    /// topic gets a `TOPIC_CONFIGURED` test message, then every topic a `SECRET_UPDATE`.
    pub fn set_secret_topics(&self, project: &str, id: &str, topics: &[&str]) -> Result<(), RpcError> {
        self.with_secret_manager(|store, _| secret_manager::set_topics(store, project, id, topics))
    }

    /// Sets the rotation schedule of a global secret without the API's checks (a time in the
    /// past is due at once; no topic needed); `period` is rounded down to whole seconds. As a
    /// `rotation` patch, the topics get a `SECRET_UPDATE`. `SECRET_ROTATE` follows when the time
    /// comes ([`Self::fire_due_rotations`], or the timer of `listen`).
    pub fn set_rotation(
        &self,
        project: &str,
        id: &str,
        next_rotation_time: SystemTime,
        period: Option<Duration>,
    ) -> Result<(), RpcError> {
        let next = jiff::Timestamp::try_from(next_rotation_time)
            .map_err(|e| RpcError::invalid_argument(format!("Invalid next rotation time: {e}")))?;
        let period = period.map(|p| p.as_secs());
        self.with_secret_manager(|store, _| secret_manager::set_rotation(store, project, id, next, period))
    }

    /// Creates the Pub/Sub topic `projects/{project}/topics/{topic}` when it is missing (no id
    /// checks).
    pub fn create_topic(&self, project: &str, topic: &str) {
        pubsub::create_topic(&mut lock(&self.inner.pubsub), project, topic);
    }

    /// Creates the subscription `projects/{project}/subscriptions/{subscription}` of `topic` (an
    /// id in `project`, or a full name) when it is missing, and the topic too. No id checks, and
    /// any ack deadline, sub-second ones included (the API takes 1 to 600 s).
    pub fn create_subscription(&self, project: &str, subscription: &str, topic: &str, ack_deadline: Duration) {
        pubsub::create_subscription(&mut lock(&self.inner.pubsub), project, subscription, topic, ack_deadline);
    }

    /// How long API Gateway, API Keys and Service Usage operations started from now on take to
    /// complete (100 ms by default; zero completes them at the next request).
    pub fn set_operation_delay(&self, delay: Duration) {
        api_gateway::set_operation_delay(&mut lock(&self.inner.api_gateway), delay);
        api_keys::set_operation_delay(&mut lock(&self.inner.api_keys), delay);
        service_usage::set_operation_delay(&mut lock(&self.inner.service_usage), delay);
    }

    /// The ids of the API Gateway APIs of `project`, in any state, by id.
    pub fn apis(&self, project: &str) -> Vec<String> {
        api_gateway::apis(&mut lock(&self.inner.api_gateway), project)
    }

    /// The configs of an API as (id, state) pairs by id; states are the API's names
    /// (`CREATING`, `ACTIVE`, `FAILED`, `UPDATING`, `DELETING`).
    pub fn configs(&self, project: &str, api: &str) -> Vec<(String, String)> {
        api_gateway::configs(&mut lock(&self.inner.api_gateway), project, api)
    }

    /// A gateway as (`apiConfig` full name, state, `defaultHostname`), `None` when it does not
    /// exist (or is gone).
    pub fn gateway(&self, project: &str, region: &str, id: &str) -> Option<(String, String, String)> {
        api_gateway::gateway(&mut lock(&self.inner.api_gateway), project, region, id)
    }

    /// The full names of the API Gateway resources deleted so far, in the order their delete
    /// operations completed (gateways, configs and APIs alike).
    pub fn deletions(&self) -> Vec<String> {
        api_gateway::deletions(&mut lock(&self.inner.api_gateway))
    }
}

fn injected_error(status: u16, routed: &Routed) -> RpcError {
    let code = rpc::Code::from_http_status(status).name();
    RpcError::with_http_status(
        status,
        format!("Injected fault: {code} for {} on [{}].", routed.method_id(), routed.resource()),
    )
}

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    let content_type = header::HeaderValue::from_static("application/json; charset=UTF-8");
    response.headers_mut().insert(header::CONTENT_TYPE, content_type);
    response
}

fn error_response(error: &RpcError) -> Response<Body> {
    let status = StatusCode::from_u16(error.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, &error.to_json())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use serde_json::json;

    fn uri(text: &str) -> Uri {
        text.parse().unwrap_or_else(|e| panic!("bad uri {text}: {e}"))
    }

    async fn call(emulator: &GcpEmulator, method: Method, path: &str, body: &str) -> (StatusCode, Value) {
        let response = emulator.respond(&method, &uri(path), &HeaderMap::new(), Bytes::from(body.to_owned())).await;
        let status = response.status();
        let bytes = match response.into_body().collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(never) => match never {},
        };
        let value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not JSON: {e}"));
        (status, value)
    }

    #[tokio::test]
    async fn unknown_paths_are_404_not_found_status_bodies_and_not_counted() {
        let emulator = GcpEmulator::new();
        let (status, body) = call(&emulator, Method::GET, "/v1/projects/p/widgets", "").await;
        assert_eq!((status, body["error"]["status"].clone()), (StatusCode::NOT_FOUND, json!("NOT_FOUND")));
        let (status, _) = call(&emulator, Method::GET, "/v2/projects/p/secrets", "").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(emulator.counts().is_empty());
    }

    #[tokio::test]
    async fn a_seeded_version_is_accessed_over_respond_and_counted() {
        let emulator = GcpEmulator::new();
        assert_eq!(emulator.add_version("p", "db", b"pw"), 1);
        let (status, body) =
            call(&emulator, Method::GET, "/v1/projects/p/secrets/db/versions/latest:access?alt=json", "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["name"], "projects/p/secrets/db/versions/1");
        assert_eq!(body["payload"]["data"], "cHc=");
        assert_eq!(emulator.count("secretmanager.versions.access"), 1);
    }

    #[tokio::test]
    async fn an_injected_status_answers_the_matching_rpc_code_once() {
        let emulator = GcpEmulator::new();
        emulator.add_version("p", "db", b"pw");
        emulator.inject_fault(GcpFault::status("secretmanager.versions.access", 429).times(1));
        let path = "/v1/projects/p/secrets/db/versions/1:access";
        let (status, body) = call(&emulator, Method::GET, path, "").await;
        assert_eq!((status.as_u16(), body["error"]["status"].clone()), (429, json!("RESOURCE_EXHAUSTED")));
        assert_eq!(call(&emulator, Method::GET, path, "").await.0, StatusCode::OK);
        assert_eq!(emulator.count("secretmanager.versions.access"), 2);
    }

    #[tokio::test]
    async fn the_wrong_checksum_fault_corrupts_only_the_checksum() {
        let emulator = GcpEmulator::new();
        emulator.add_version("p", "db", b"pw");
        emulator.inject_fault(GcpFault { wrong_checksum: true, ..GcpFault::default() });
        let (_, body) = call(&emulator, Method::GET, "/v1/projects/p/secrets/db/versions/1:access", "").await;
        assert_eq!(body["payload"]["data"], "cHc=");
        assert_ne!(body["payload"]["dataCrc32c"], json!(crc32c::crc32c(b"pw").to_string()));
    }

    #[tokio::test]
    async fn regional_secrets_are_served_with_the_same_semantics() {
        let emulator = GcpEmulator::new();
        let (status, created) =
            call(&emulator, Method::POST, "/v1/projects/p/locations/us-east1/secrets?secretId=r", "{}").await;
        assert_eq!(status, StatusCode::OK, "{created}");
        assert!(created.get("replication").is_none());
        let body = r#"{"payload":{"data":"eA=="}}"#;
        let (_, version) =
            call(&emulator, Method::POST, "/v1/projects/p/locations/us-east1/secrets/r:addVersion", body).await;
        assert_eq!(version["name"], "projects/p/locations/us-east1/secrets/r/versions/1");
        assert_eq!(emulator.count("secretmanager.secrets.addVersion"), 1);
    }
}
