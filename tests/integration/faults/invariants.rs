//! The invariants of a fault schedule, each with a name: checked continuously on every change the
//! watches deliver (and on the gateway every 25 ms), and once more at the end. A broken one is
//! recorded, never panicked on, so a run reports everything it broke.

use super::schedule::SECRETS;
use super::world::sentinel;
use crate::support::PROJECT;
use crate::support::cluster::TestCluster;
use crate::support::wait::within;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use secure_api_operator::api::conditions::{Condition, find_condition, types};
use secure_api_operator::api::{GatewayConfig, SecretRef, SecureApiService};
use secure_api_operator::hash_key::HashKey;
use secure_api_operator::hash_key::store::load_or_create;
use secure_api_operator::secret_data::{SecretData, live_data};
use secure_api_operator::workload::service_label;
use secure_api_operator::workload::snapshot::{VERSION_ANNOTATION, secretref_label};
use secure_api_testbed::emulator::gcp::GcpEmulator;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::task::JoinHandle;

const SERVICE: &str = "secure-api";
/// The service's canary Deployment.
const CANARY: &str = "secure-api-canary";
const REGION: &str = "us-central1";
/// The harness's `revisionHistoryLimit`: revisions kept besides the current one.
const HISTORY_LIMIT: usize = 2;

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub name: &'static str,
    pub detail: String,
}

/// The state a schedule must end in.
#[derive(Clone, Debug)]
pub struct Expected {
    pub versions: BTreeMap<String, u64>,
    pub image: String,
}

impl Expected {
    /// The pod-template annotation's value, `config=1,db=2,keys=1`.
    pub fn summary(&self) -> String {
        self.versions.iter().map(|(r, v)| format!("{r}={v}")).collect::<Vec<_>>().join(",")
    }
}

/// The templates the Deployment has had, in order.
#[derive(Default)]
struct Templates {
    seen: Vec<Value>,
    /// (secret versions, image) → the one template it may produce.
    by_inputs: BTreeMap<(String, String), Value>,
}

#[derive(Default)]
struct Shared {
    /// The payload of every version ever added, by SecretRef and version.
    versions: Mutex<BTreeMap<String, BTreeMap<u64, SecretData>>>,
    violations: Mutex<Vec<Violation>>,
    templates: Mutex<Templates>,
    payloads: AtomicU64,
    sentinel: String,
    /// The operator's hash key, read from the namespace it shares with the test.
    hash_key: Option<HashKey>,
    /// Revisions whose canary was aborted: no pod of theirs may take traffic again.
    rejected: Mutex<std::collections::BTreeSet<String>>,
    /// The canary's templates seen with pods, in order.
    canary_templates: Mutex<Vec<Value>>,
    /// Times the canary was seen with pods.
    canary_sightings: AtomicU64,
}

impl Shared {
    /// Whether `recorded` is the operator's hash of `data` (both absent counts as a match).
    fn hash_matches(&self, data: Option<&SecretData>, recorded: Option<&str>) -> bool {
        match (data, recorded, &self.hash_key) {
            (Some(data), Some(recorded), Some(key)) => key.matches(data, recorded),
            (None, None, _) => true,
            _ => false,
        }
    }

    fn violate(&self, name: &'static str, detail: String) {
        let violation = Violation { name, detail };
        let mut violations = lock(&self.violations);
        if !violations.contains(&violation) {
            violations.push(violation);
        }
    }

    fn check_no_sentinel(&self, name: &'static str, what: &str, text: &str) {
        if text.contains(&self.sentinel) {
            self.violate(name, format!("{what} holds a payload value"));
        }
    }

    /// A Secret we wrote (synced or snapshot) holds exactly the payload of the version it names.
    fn check_secret(&self, secret: &Secret) {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let namespace = secret.metadata.namespace.as_deref().unwrap_or_default();
        tracing::info!(namespace, name, rv = secret.metadata.resource_version, "fault harness: Secret written");
        let labels = secret.metadata.labels.clone().unwrap_or_default();
        let secret_ref = match labels.get(&secretref_label()) {
            Some(secret_ref) if labels.contains_key(&service_label()) => secret_ref.clone(),
            _ if SECRETS.contains(&name.as_str()) => name.clone(),
            _ => return,
        };
        let data = live_data(secret);
        let annotations = secret.metadata.annotations.clone().unwrap_or_default();
        let version = annotations.get(VERSION_ANNOTATION).and_then(|v| v.parse::<u64>().ok());
        let versions = lock(&self.versions);
        let known = versions.get(&secret_ref).and_then(|by_version| by_version.get(&version?));
        match known {
            Some(payload) if *payload == data => {}
            Some(_) if data.is_empty() => self.violate("secret-empty", format!("Secret {name}")),
            Some(_) => self.violate("secret-not-its-version", format!("Secret {name} at version {version:?}")),
            None => self.violate("secret-of-unknown-version", format!("Secret {name} names version {version:?}")),
        }
    }

    /// The canary: once a revision's trial is aborted, none of its pods again; a canary with pods
    /// never runs older secret versions than the one before it.
    fn check_canary(&self, canary: &Deployment) {
        let annotations = canary.metadata.annotations.clone().unwrap_or_default();
        let Some(revision) = annotations.get("secureapi.dev/revision").cloned() else { return };
        let mut rejected = lock(&self.rejected);
        if annotations.contains_key("secureapi.dev/canary-aborted") {
            rejected.insert(revision.clone());
        }
        let Some(spec) = canary.spec.as_ref().filter(|spec| spec.replicas.unwrap_or(1) > 0) else { return };
        if rejected.contains(&revision) && !annotations.contains_key("secureapi.dev/canary-aborted") {
            self.violate("traffic-to-rejected-revision", format!("canary {revision} has pods again"));
        }
        if annotations.contains_key("secureapi.dev/canary-aborted") {
            self.violate("aborted-canary-has-pods", format!("canary {revision}"));
        }
        self.canary_sightings.fetch_add(1, Ordering::Relaxed);
        let template = serde_json::to_value(&spec.template).unwrap_or_default();
        let mut seen = lock(&self.canary_templates);
        if seen.last() == Some(&template) {
            return;
        }
        let versions =
            |t: &Value| parse_versions(t["metadata"]["annotations"]["secureapi.dev/secret-versions"].as_str());
        if let Some(last) = seen.last() {
            let previous = versions(last);
            for (secret_ref, version) in versions(&template) {
                if previous.get(&secret_ref).is_some_and(|before| version < *before) {
                    self.violate("canary-went-backward", format!("{secret_ref} {version} after {previous:?}"));
                }
            }
        }
        seen.push(template);
    }

    /// Each new template: never older secret versions than the one before it, never an earlier
    /// template again, one template per (secret versions, image), and never a rejected revision.
    fn check_template(&self, deployment: &Deployment) {
        let Some(spec) = &deployment.spec else { return };
        let revision = deployment.metadata.annotations.as_ref().and_then(|a| a.get("secureapi.dev/revision"));
        if let Some(revision) = revision.filter(|r| lock(&self.rejected).contains(*r)) {
            self.violate("rejected-revision-promoted", revision.clone());
        }
        let template = serde_json::to_value(&spec.template).unwrap_or_default();
        let versions =
            template["metadata"]["annotations"]["secureapi.dev/secret-versions"].as_str().unwrap_or_default();
        let image = template["spec"]["containers"][0]["image"].as_str().unwrap_or_default().to_owned();
        let mut templates = lock(&self.templates);
        if templates.seen.last() == Some(&template) {
            return;
        }
        if let Some(last) = templates.seen.last() {
            let previous = parse_versions(last["metadata"]["annotations"]["secureapi.dev/secret-versions"].as_str());
            for (secret_ref, version) in parse_versions(Some(versions)) {
                if previous.get(&secret_ref).is_some_and(|before| version < *before) {
                    self.violate("rollout-went-backward", format!("{secret_ref} {version} after {previous:?}"));
                }
            }
        }
        if templates.seen.contains(&template) {
            self.violate("earlier-template-again", format!("versions {versions}, image {image}"));
        }
        let inputs = (versions.to_owned(), image.clone());
        match templates.by_inputs.get(&inputs) {
            Some(first) if *first != template => {
                self.violate("second-template-for-one-version-set", format!("versions {versions}, image {image}"));
            }
            _ => {
                templates.by_inputs.insert(inputs, template.clone());
            }
        }
        templates.seen.push(template);
    }
}

fn parse_versions(summary: Option<&str>) -> BTreeMap<String, u64> {
    summary
        .unwrap_or_default()
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .filter_map(|(r, v)| Some((r.to_owned(), v.parse().ok()?)))
        .collect()
}

/// Watches the scenario and records what breaks.
pub struct Observer {
    shared: Arc<Shared>,
    client: kube::Client,
    namespace: String,
    gcp: GcpEmulator,
    tasks: Vec<JoinHandle<()>>,
}

impl Observer {
    pub async fn start(cluster: &TestCluster, gcp: &GcpEmulator, seed: u64) -> Self {
        let hash_key = within(load_or_create(cluster.client.clone(), &cluster.namespace)).await.ok();
        let shared = Arc::new(Shared { sentinel: sentinel(seed), hash_key, ..Shared::default() });
        let mut observer = Self {
            shared,
            client: cluster.client.clone(),
            namespace: cluster.namespace.clone(),
            gcp: gcp.clone(),
            tasks: Vec::new(),
        };
        observer.watch::<Secret>(|shared, _, secret| shared.check_secret(secret));
        observer.watch::<Deployment>(|shared, _, deployment| match deployment.metadata.name.as_deref() {
            Some(SERVICE) => shared.check_template(deployment),
            Some(CANARY) => shared.check_canary(deployment),
            _ => {}
        });
        observer.watch::<SecretRef>(|shared, api, secret_ref| {
            shared.check_no_sentinel("secret-in-status", "a SecretRef's status", &json_text(&secret_ref.status));
            check_secret_ref_status(shared, api, secret_ref.clone());
        });
        observer.watch::<SecureApiService>(|shared, _, service| {
            shared.check_no_sentinel("secret-in-status", "the service's status", &json_text(&service.status));
            let rejected = service.status.iter().flat_map(|s| &s.rejected_revisions).map(|r| r.revision.clone());
            lock(&shared.rejected).extend(rejected);
        });
        observer.watch::<GatewayConfig>(|shared, _, gateway| {
            shared.check_no_sentinel("secret-in-status", "the gateway's status", &json_text(&gateway.status));
        });
        let (shared, gcp) = (observer.shared.clone(), observer.gcp.clone());
        observer.tasks.push(tokio::spawn(async move {
            loop {
                check_gateway(&shared, &gcp);
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }));
        observer
    }

    /// Runs `check` on every object of kind `K` the namespace's watch delivers.
    fn watch<K>(&mut self, check: impl Fn(&Arc<Shared>, &Api<Secret>, &K) + Send + 'static)
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned
            + Send
            + 'static,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.namespace);
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let shared = self.shared.clone();
        self.tasks.push(tokio::spawn(async move {
            let stream = watcher(api, watcher::Config::default()).default_backoff().applied_objects();
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                if let Ok(object) = event {
                    check(&shared, &secrets, &object);
                }
            }
        }));
    }

    pub fn stop(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }

    pub fn violate(&self, name: &'static str, detail: String) {
        self.shared.violate(name, detail);
    }

    pub fn violations(&self) -> Vec<Violation> {
        lock(&self.shared.violations).clone()
    }

    /// The secret versions of every template the Deployment has had, in order.
    pub fn template_versions(&self) -> Vec<String> {
        let templates = lock(&self.shared.templates);
        let versions = templates.seen.iter().map(|t| &t["metadata"]["annotations"]["secureapi.dev/secret-versions"]);
        versions.map(|v| v.as_str().unwrap_or_default().to_owned()).collect()
    }

    /// Times the canary was seen with pods so far.
    pub fn canary_sightings(&self) -> u64 {
        self.shared.canary_sightings.load(Ordering::Relaxed)
    }

    /// A number for a fresh payload.
    pub fn next_payload_number(&self) -> u64 {
        self.shared.payloads.fetch_add(1, Ordering::Relaxed)
    }

    /// Records the payload of the next version of `secret_ref`'s secret; returns its number.
    pub fn expect_version(&self, secret_ref: &str, data: SecretData) -> u64 {
        let mut versions = lock(&self.shared.versions);
        let by_version = versions.entry(secret_ref.to_owned()).or_default();
        let version = by_version.len() as u64 + 1;
        by_version.insert(version, data);
        version
    }

    pub fn latest_version(&self, secret_ref: &str) -> u64 {
        lock(&self.shared.versions).get(secret_ref).map_or(0, |v| v.len() as u64)
    }

    fn payload(&self, secret_ref: &str, version: u64) -> Option<SecretData> {
        lock(&self.shared.versions).get(secret_ref)?.get(&version).cloned()
    }

    /// What is not yet as `expected` wants it (`None`: everything is Ready there).
    pub async fn not_settled(&self, expected: &Expected) -> Option<String> {
        let refs: Api<SecretRef> = Api::namespaced(self.client.clone(), &self.namespace);
        for (name, version) in &expected.versions {
            let Ok(object) = refs.get(name).await else { return Some(format!("SecretRef {name} unreadable")) };
            let status = object.status.clone().unwrap_or_default();
            if !ready(&status.conditions, None) || status.synced_version != Some(version.to_string()) {
                return Some(format!("SecretRef {name}: {}", json_text(&status)));
            }
        }
        let services: Api<SecureApiService> = Api::namespaced(self.client.clone(), &self.namespace);
        let Ok(service) = services.get(SERVICE).await else { return Some("service unreadable".into()) };
        let status = service.status.clone().unwrap_or_default();
        if !ready(&status.conditions, Some("RolloutComplete"))
            || status.secret_versions_summary.as_deref() != Some(&expected.summary())
            || status.observed_generation != service.metadata.generation
        {
            return Some(format!("service: {}", json_text(&status)));
        }
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
        let Ok(deployment) = deployments.get(SERVICE).await else { return Some("Deployment unreadable".into()) };
        let template = serde_json::to_value(deployment.spec.map(|s| s.template)).unwrap_or_default();
        if template["spec"]["containers"][0]["image"].as_str() != Some(&expected.image) {
            return Some(format!("Deployment image {}", template["spec"]["containers"][0]["image"]));
        }
        if let Ok(Some(canary)) = deployments.get_opt(CANARY).await {
            let revision = canary.metadata.annotations.unwrap_or_default().remove("secureapi.dev/revision");
            return Some(format!("the canary of {revision:?} is not retired"));
        }
        let gateways: Api<GatewayConfig> = Api::namespaced(self.client.clone(), &self.namespace);
        let Ok(gateway) = gateways.get(SERVICE).await else { return Some("gateway unreadable".into()) };
        let status = gateway.status.clone().unwrap_or_default();
        if !ready(&status.conditions, Some("GatewayActive"))
            || status.observed_generation != gateway.metadata.generation
            || status.pending_operation.is_some()
        {
            return Some(format!("gateway: {}", json_text(&status)));
        }
        None
    }

    /// The end checks, once everything settled: every Secret at the newest version and its
    /// status matching, the gateway's configs, the snapshots against the history, and no payload
    /// value in Events, metrics or `logs`.
    pub async fn check_end(&self, expected: &Expected, metrics: &str, logs: Option<&str>) {
        let shared = &self.shared;
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let refs: Api<SecretRef> = Api::namespaced(self.client.clone(), &self.namespace);
        for (name, version) in &expected.versions {
            let secret = secrets.get(name).await.ok();
            let data = secret.as_ref().map(live_data);
            if data != self.payload(name, *version) {
                shared.violate("end-secret-not-newest", format!("Secret {name} is not version {version}"));
            }
            let status = refs.get(name).await.ok().and_then(|r| r.status).unwrap_or_default();
            if !shared.hash_matches(data.as_ref(), status.content_hash.as_deref()) {
                shared.violate("end-status-does-not-match-secret", format!("SecretRef {name}"));
            }
        }
        for api in self.gcp.apis(PROJECT) {
            let configs = self.gcp.configs(PROJECT, &api);
            if configs.len() > 2 {
                shared.violate("end-more-than-two-configs", format!("API {api}: {configs:?}"));
            }
        }
        self.check_snapshots().await;
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        let events = events.list(&ListParams::default()).await.map(|l| json_text(&l.items)).unwrap_or_default();
        shared.check_no_sentinel("secret-in-event", "an Event", &events);
        shared.check_no_sentinel("secret-in-metrics", "the metrics", metrics);
        if let Some(logs) = logs {
            shared.check_no_sentinel("secret-in-logs", "a log line", logs);
        }
    }

    /// Every snapshot of a retained revision exists, and no other snapshot does.
    async fn check_snapshots(&self) {
        let services: Api<SecureApiService> = Api::namespaced(self.client.clone(), &self.namespace);
        let history = services.get(SERVICE).await.ok().and_then(|s| s.status).unwrap_or_default().history;
        if history.len() > HISTORY_LIMIT + 1 {
            self.shared.violate("end-history-beyond-limit", format!("{} revisions", history.len()));
        }
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let selector = format!("{}={SERVICE}", service_label());
        let listed = secrets.list(&ListParams::default().labels(&selector)).await;
        let Ok(listed) = listed else { return self.shared.violate("end-snapshots-unreadable", String::new()) };
        let existing: Vec<String> = listed.items.iter().filter_map(|s| s.metadata.name.clone()).collect();
        let retained: Vec<&String> = history.iter().flat_map(|r| &r.snapshots).collect();
        for name in &retained {
            if !existing.contains(name) {
                self.shared.violate("end-snapshot-missing", format!("{name} of a retained revision"));
            }
        }
        for name in &existing {
            if !retained.contains(&name) {
                self.shared.violate("end-snapshot-beyond-history", name.clone());
            }
        }
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Ready=True means the Secret holds what status says — or a newer version already, since the
/// Secret is written before the status.
fn check_secret_ref_status(shared: &Arc<Shared>, secrets: &Api<Secret>, secret_ref: SecretRef) {
    let Some(status) = secret_ref.status.clone() else { return };
    let Some(synced) = status.synced_version.as_deref().and_then(|v| v.parse::<u64>().ok()) else { return };
    if !ready(&status.conditions, None) {
        return;
    }
    let (shared, secrets) = (shared.clone(), secrets.clone());
    let name = secret_ref.metadata.name.clone().unwrap_or_default();
    tokio::spawn(async move {
        let Ok(secret) = secrets.get(&name).await else { return };
        let annotations = secret.metadata.annotations.clone().unwrap_or_default();
        let version = annotations.get(VERSION_ANNOTATION).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        if version < synced {
            shared.violate("status-ahead-of-secret", format!("SecretRef {name} says {synced}, Secret is at {version}"));
        } else if version == synced && !shared.hash_matches(Some(&live_data(&secret)), status.content_hash.as_deref()) {
            shared.violate("status-hash-does-not-match-secret", format!("SecretRef {name} at {synced}"));
        }
    });
}

/// The gateway points at a config that exists and is ACTIVE.
fn check_gateway(shared: &Shared, gcp: &GcpEmulator) {
    let Some((config, state, _)) = gcp.gateway(PROJECT, REGION, SERVICE) else { return };
    let Some((api, id)) = config.split_once("/apis/").and_then(|(_, rest)| rest.split_once("/configs/")) else {
        return shared.violate("gateway-config-unnamed", format!("{config} ({state})"));
    };
    let configs = gcp.configs(PROJECT, api);
    match configs.iter().find(|(c, _)| c == id) {
        Some((_, config_state)) if config_state == "ACTIVE" => {}
        other => shared.violate("gateway-config-not-active", format!("gateway ({state}) points at {id}: {other:?}")),
    }
}

/// `Ready=True`, with `reason` when given.
fn ready(conditions: &[Condition], reason: Option<&str>) -> bool {
    find_condition(conditions, types::READY)
        .is_some_and(|c| c.is_true(types::READY) && reason.is_none_or(|r| c.reason == r))
}

fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
