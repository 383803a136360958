//! What the sequence tests run on: a kind of their own (`Probe`), reconciled by the skeleton
//! through a real `kube::Client` whose other end is a scripted API server ([`ApiServer`]). The
//! script asserts each request the skeleton makes, in order; a request it does not expect is
//! never answered, so the reconcile making it fails [`within`] its bound.

use crate::api::conditions::{Condition, ConditionStatus, HasConditions, reasons, set_condition, types};
use crate::hash_key::HashKey;
use crate::metrics::{Controller as ControllerKind, Metrics};
use crate::runtime::caches::Cache;
use crate::runtime::error::{Category, GcpReason, KubeFailure, lift_kube_failures};
use crate::runtime::recheck::Recheck;
use crate::runtime::skeleton::{Failure, Profile, Reconciler, write_status};
use crate::runtime::{Runtime, Settings, now};
use http_body_util::BodyExt;
use hyper::{Method, Request, Response, StatusCode};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::client::Body;
use kube::{Client, CustomResource};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;
use tower_test::mock::{self, Handle};

/// Where the API server serves the probe `team-a/p`, its status, and Events.
pub const OBJECT: &str = "/apis/test.secureapi.dev/v1/namespaces/team-a/probes/p";
pub const STATUS: &str = "/apis/test.secureapi.dev/v1/namespaces/team-a/probes/p/status";
pub const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/team-a/events";

/// A sequence that hangs (a request nobody answers) fails after this long.
const BOUND: Duration = Duration::from_secs(10);

/// What a probe asks of its reconcile.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "test.secureapi.dev",
    version = "v1",
    kind = "Probe",
    namespaced,
    status = "ProbeStatus",
    schema = "disabled"
)]
pub struct ProbeSpec {
    /// The failure `apply` reports, if any: permanent, unless `transient`.
    #[serde(default)]
    pub fail: Option<String>,
    #[serde(default)]
    pub transient: bool,
    /// Whether the probe wants the finalizer.
    #[serde(default)]
    pub finalized: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

impl HasConditions for ProbeStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("broken: {0}")]
    Broken(String),
    #[error("busy: {0}")]
    Busy(String),
    #[error(transparent)]
    Kube(#[from] KubeFailure),
}

lift_kube_failures!(ProbeError);

impl Failure for ProbeError {
    fn category(&self) -> Category {
        match self {
            Self::Broken(_) => Category::InvalidSpec,
            Self::Busy(_) => Category::GcpUnavailable(GcpReason::Unavailable),
            Self::Kube(error) => error.category(),
        }
    }
}

/// The runtime over the scripted API server.
pub struct ProbeContext(Runtime);

impl Deref for ProbeContext {
    type Target = Runtime;

    fn deref(&self) -> &Runtime {
        &self.0
    }
}

impl Reconciler for Probe {
    type Error = ProbeError;
    type Context = ProbeContext;
    // The tests' kind borrows a controller's name: metrics label it as SecretRef's.
    const PROFILE: Profile = Profile::new(ControllerKind::SecretRef, "Probe").finalized();

    fn cache(_runtime: &Runtime) -> &Cache<Self> {
        // The sequences drive `reconcile_owned`, which reads no cache; the runtime has none for
        // this kind.
        unreachable!("the skeleton's sequences read no cache")
    }

    fn needs_finalizer(&self) -> bool {
        self.spec.finalized
    }

    fn failed(&self, error: &ProbeError, message: &str, now: Time) -> ProbeStatus {
        self.status_with(ConditionStatus::False, error.reason(), message, now)
    }

    /// Fails as the spec says, else reports `Ready=True` (written only when it changes).
    async fn apply(&self, ctx: &ProbeContext) -> Result<Recheck, ProbeError> {
        match (&self.spec.fail, self.spec.transient) {
            (Some(problem), false) => return Err(ProbeError::Broken(problem.clone())),
            (Some(problem), true) => return Err(ProbeError::Busy(problem.clone())),
            (None, _) => {}
        }
        let current = self.status.clone().unwrap_or_default();
        let next = self.status_with(ConditionStatus::True, reasons::SYNCED, "in line", now());
        write_status(ctx, self, &current, &next).await?;
        Ok(Recheck::OnChange)
    }
}

impl Probe {
    fn status_with(&self, ready: ConditionStatus, reason: &str, message: &str, now: Time) -> ProbeStatus {
        let generation = self.metadata.generation;
        let mut status = self.status.clone().unwrap_or_default();
        status.observed_generation = generation;
        set_condition(&mut status.conditions, Condition::new(types::READY, ready, reason, message, generation, now));
        status
    }
}

/// The probe `team-a/p` (generation 1, resourceVersion 1) with `spec` and `status`.
pub fn probe(spec: Value, status: Value) -> Probe {
    let object = json!({
        "apiVersion": "test.secureapi.dev/v1", "kind": "Probe",
        "metadata": { "name": "p", "namespace": "team-a", "uid": "u-1", "resourceVersion": "1", "generation": 1 },
        "spec": spec,
        "status": status,
    });
    serde_json::from_value(object).unwrap_or_else(|e| panic!("{e}"))
}

/// `object` as the API server holds it after merge patch `patch`.
pub fn patched(object: &Probe, patch: &Value) -> Probe {
    let mut document = serde_json::to_value(object).unwrap_or_else(|e| panic!("{e}"));
    json_patch::merge(&mut document, patch);
    serde_json::from_value(document).unwrap_or_else(|e| panic!("{e}"))
}

/// The API server's answer to a merge patch of `object`: the object patched.
pub fn merging(object: &Probe) -> impl FnOnce(&Value) -> Value + use<> {
    let object = object.clone();
    move |patch| serde_json::to_value(patched(&object, patch)).unwrap_or_else(|e| panic!("{e}"))
}

/// A context whose client talks to a scripted API server, and that server.
pub fn context() -> (ProbeContext, ApiServer) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let key = HashKey::from_bytes(&[7; 32]).unwrap_or_else(|| panic!("a 32-byte key"));
    let runtime = Runtime::new(client, Arc::new(Metrics::new()), Settings::default(), key);
    (ProbeContext(runtime), ApiServer(handle))
}

/// The API server's end of the client.
pub struct ApiServer(Handle<Request<Body>, Response<Body>>);

impl ApiServer {
    /// The next request must be `method path`: it is answered `answer(body)` (200, JSON), and
    /// its JSON body returned.
    pub async fn expect(&mut self, method: Method, path: &str, answer: impl FnOnce(&Value) -> Value) -> Value {
        let Some((request, respond)) = within(self.0.next_request()).await else {
            panic!("expected {method} {path}; the client is gone")
        };
        assert_eq!((request.method(), request.uri().path()), (&method, path), "the request in this place");
        let bytes = within(request.into_body().collect()).await.map(|b| b.to_bytes()).unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let answer = serde_json::to_vec(&answer(&body)).unwrap_or_else(|e| panic!("{e}"));
        let response = Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(Body::from(answer))
            .unwrap_or_else(|e| panic!("{e}"));
        respond.send_response(response);
        body
    }

    /// Once every client is dropped: nothing was asked after the script.
    pub async fn expect_no_more(mut self) {
        if let Some((request, _)) = within(self.0.next_request()).await {
            panic!("unexpected {} {}", request.method(), request.uri());
        }
    }
}

/// `future`, or a failure once [`BOUND`] has passed: no sequence waits on a fixed sleep.
pub async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(BOUND, future).await.unwrap_or_else(|_| {
        panic!("no progress within {BOUND:?} (a request the script does not expect waits for an answer)")
    })
}
