//! The seed scenario as a fault schedule plays it: the three secrets, their SecretRefs, the
//! service and the gateway on the emulators, one operator (or, with leader election, a leader
//! and a standby) crashed, handed over and started again with fresh memory, and what each step
//! of a schedule does to them.

use super::invariants::{Expected, Observer};
use super::schedule::{Action, CrashPoint, Fault, SECRETS, Schedule, Step};
use crate::support::PROJECT;
use crate::support::cluster::TestCluster;
use crate::support::operator::{NotificationOptions, Operator, OperatorOptions, topic_name};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, Patch, PatchParams, PostParams};
use secure_api_operator::api::{GatewayConfig, SecretRef, SecureApiService};
use secure_api_operator::leader;
use secure_api_operator::secret_data::SecretData;
use secure_api_testbed::emulator::gcp::{DeliveryFaults, GcpEmulator, GcpFault, VersionState};
use secure_api_testbed::emulator::kube::{DeploymentSimulation, Fault as KubeFault, KubeEmulator};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub const ACCESS: &str = "secretmanager.versions.access";
/// How long one GCP call attempt may take before the operator gives up on it.
const GCP_TIMEOUT: Duration = Duration::from_millis(500);
/// API Gateway operations take this long unless a step holds one open.
const OPERATION_DELAY: Duration = Duration::from_millis(100);
/// How long a crash point waits for the moment it crashes at; after that it crashes anyway.
const CRASH_POINT_PATIENCE: Duration = Duration::from_secs(5);
/// The Lease the replicas elect their leader on, and its timings: short, so a crashed leader's
/// Lease expires within a schedule's patience.
const LEASE: &str = "secure-api-operator";
const LEASE_DURATION: Duration = Duration::from_secs(2);
const LEASE_RETRY: Duration = Duration::from_millis(200);
/// Lease writes refused by [`Fault::LeaseWritesFail`]: more than the leader's renew deadline
/// has retries (2/3 of the duration, one try per retry period).
const REFUSED_LEASE_WRITES: usize = 12;

/// The Secret Manager secret behind a SecretRef.
pub fn secret_id(secret_ref: &str) -> String {
    format!("api-config-{secret_ref}")
}

/// The keys of each secret's payload; every value carries the seed's sentinel.
fn keys_of(secret_ref: &str) -> &'static [&'static str] {
    match secret_ref {
        "db" => &["host", "port", "username", "password"],
        "keys" => &["external_api_key", "jwt_secret", "encryption_key"],
        _ => &["debug_mode", "rate_limit", "cache_ttl", "log_level"],
    }
}

/// The text planted in every payload value of `seed`; it must never leave a Secret.
pub fn sentinel(seed: u64) -> String {
    format!("SENTINEL-{seed}-")
}

/// The seed scenario on the emulators.
pub struct World {
    pub seed: u64,
    /// The running operators: one, or with leader election a leader and a standby. Before the
    /// cluster, so that they stop before it goes (fields drop in order).
    operators: Vec<Replica>,
    pub observer: Observer,
    pub cluster: TestCluster,
    pub kube: KubeEmulator,
    pub gcp: GcpEmulator,
    notifications: bool,
    leader_election: bool,
    /// Replicas started so far: the next one's identity.
    started: usize,
    /// Versions disabled by the schedule and not enabled again yet.
    disabled: Vec<(&'static str, u64)>,
    image_tag: u32,
    replicas: i32,
    /// The service rolls out by canary.
    canary: bool,
    /// Versions whose pods never become Ready, by SecretRef: the readiness hook reads them.
    bad: Arc<Mutex<BTreeSet<(String, u64)>>>,
    extra_route: bool,
    /// Faults injected so far, by kind.
    pub injected: BTreeMap<&'static str, u64>,
    /// Watches open once the scenario first settled: every cache of the operator and the
    /// observer's watches. Fewer means some watch is still reconnecting.
    watches: usize,
}

impl World {
    /// The seed scenario, synced and Ready, with the observer watching; `None` on a real
    /// cluster (the faults need the emulator's hooks).
    /// `canary`: the service rolls out by canary.
    pub async fn start(
        test: &str,
        seed: u64,
        notifications: bool,
        leader_election: bool,
        canary: bool,
    ) -> Option<Self> {
        let cluster = TestCluster::start(test).await;
        let kube = cluster.hooks().cloned()?;
        cluster.install_crds().await;
        kube.set_deployment_simulation(DeploymentSimulation::Complete);
        let bad: Arc<Mutex<BTreeSet<(String, u64)>>> = Arc::default();
        let unready = bad.clone();
        kube.set_pod_readiness(Some(Arc::new(move |deployment: &Value| {
            let versions = &deployment["spec"]["template"]["metadata"]["annotations"]["secureapi.dev/secret-versions"];
            let bad = unready.lock().unwrap_or_else(PoisonError::into_inner);
            !versions.as_str().unwrap_or_default().split(',').filter_map(|pair| pair.split_once('=')).any(
                |(secret_ref, version)| {
                    version.parse().is_ok_and(|version: u64| bad.contains(&(secret_ref.to_owned(), version)))
                },
            )
        })));
        let gcp = GcpEmulator::new();
        gcp.set_operation_delay(OPERATION_DELAY);
        let observer = Observer::start(&cluster, &gcp, seed).await;
        let mut world = Self {
            seed,
            cluster,
            kube,
            gcp,
            observer,
            operators: Vec::new(),
            notifications,
            leader_election,
            started: 0,
            disabled: Vec::new(),
            image_tag: 0,
            replicas: 2,
            canary,
            bad,
            extra_route: false,
            injected: BTreeMap::new(),
            watches: 0,
        };
        for secret_ref in SECRETS {
            world.rotate(secret_ref);
        }
        world.start_replica().await;
        if leader_election {
            world.start_replica().await;
        }
        world.create_objects().await;
        let settled = world.settle(Duration::from_secs(30)).await;
        assert!(settled.is_ok(), "seed {seed}: the scenario never became Ready before any fault: {settled:?}");
        world.watches = world.kube.open_watches();
        Some(world)
    }

    async fn start_replica(&mut self) {
        let identity = format!("replica-{}", self.started);
        self.started += 1;
        let election = self.leader_election.then(|| leader::Config {
            namespace: self.cluster.namespace.clone(),
            name: LEASE.to_owned(),
            identity: identity.clone(),
            lease_duration: LEASE_DURATION,
            retry_period: LEASE_RETRY,
        });
        let options = OperatorOptions {
            gcp: Some(self.gcp.clone()),
            notifications: self.notifications.then(NotificationOptions::default),
            gcp_request_timeout: Some(GCP_TIMEOUT),
            leader_election: election,
            ..OperatorOptions::default()
        };
        let operator = Operator::start_with(&self.cluster, options).await;
        if self.notifications {
            for secret_ref in SECRETS {
                let topic = topic_name();
                let set = self.gcp.set_secret_topics(PROJECT, &secret_id(secret_ref), &[&topic]);
                set.unwrap_or_else(|e| panic!("topics of {secret_ref}: {e}"));
            }
        }
        self.operators.push(Replica { identity, operator });
    }

    /// The metrics of every running replica, one text after the other.
    pub fn metrics(&self) -> String {
        self.operators.iter().map(|r| r.operator.metrics.encode()).collect()
    }

    /// The replica that reconciles: the Lease's holder, or the only one.
    async fn leader(&self) -> Option<usize> {
        if !self.leader_election {
            return (!self.operators.is_empty()).then_some(0);
        }
        let leases: Api<Lease> = self.cluster.api();
        let lease = leases.get_opt(LEASE).await.ok()??;
        let holder = lease.spec.and_then(|spec| spec.holder_identity)?;
        self.operators.iter().position(|r| r.identity == holder && !r.operator.exited())
    }

    /// The replica that reconciles, taken out; with leader election and no holder yet, the first.
    async fn take_leader(&mut self) -> Option<Replica> {
        let index = self.leader().await.unwrap_or(0);
        (index < self.operators.len()).then(|| self.operators.remove(index))
    }

    /// Aborts the leader, and starts a new replica with fresh memory (with leader election the
    /// standby takes over once the crashed leader's Lease expires).
    pub async fn crash(&mut self) {
        if let Some(replica) = self.take_leader().await {
            replica.operator.crash().await;
        }
        self.start_replica().await;
    }

    /// Shuts the leader down gracefully (it releases the Lease, so the standby takes over at its
    /// next try), and starts a new standby.
    pub async fn hand_over(&mut self) {
        if let Some(replica) = self.take_leader().await {
            replica.operator.stop().await;
        }
        self.start_replica().await;
    }

    /// Starts again every replica whose process ended on its own (a lost Lease), as Kubernetes
    /// restarts a container that exited.
    async fn restart_exited(&mut self) {
        let before = self.operators.len();
        self.operators.retain(|r| !r.operator.exited());
        for _ in self.operators.len()..before {
            self.start_replica().await;
        }
    }

    /// Stops the replicas, waiting for them to drain, and the observer, for a runtime that goes
    /// on with other worlds; dropping the world stops them without waiting, and the cluster's
    /// guard cleans up either way.
    pub async fn stop(mut self) {
        for replica in std::mem::take(&mut self.operators) {
            replica.operator.stop().await;
        }
        self.observer.stop();
    }

    async fn create_objects(&self) {
        let refs: Api<SecretRef> = self.cluster.api();
        for secret_ref in SECRETS {
            let object: SecretRef = parse(json!({
                "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": secret_ref },
                "spec": { "secret": secret_id(secret_ref), "format": "json", "refreshInterval": "1s" },
            }));
            refs.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("{secret_ref}: {e}"));
        }
        let service: SecureApiService = parse(json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecureApiService", "metadata": { "name": "secure-api" },
            "spec": {
                "image": self.image(), "port": 8080, "replicas": self.replicas, "revisionHistoryLimit": 2,
                "rollout": self.rollout(),
                "healthCheck": { "path": "/health" },
                "expose": { "externalUrl": "https://secure-api.example.com" },
                "secretEnv": [
                    { "name": "DB_HOST", "secretRef": "db", "key": "host" },
                    { "name": "DB_PASSWORD", "secretRef": "db", "key": "password" },
                ],
                "secretFiles": [
                    { "secretRef": "keys", "mountPath": "/secrets/keys" },
                    { "secretRef": "config", "mountPath": "/etc/secure-api/config" },
                ],
            },
        }));
        let services: Api<SecureApiService> = self.cluster.api();
        services.create(&PostParams::default(), &service).await.unwrap_or_else(|e| panic!("service: {e}"));
        let gateway: GatewayConfig = parse(json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "GatewayConfig", "metadata": { "name": "secure-api" },
            "spec": {
                "projectId": PROJECT, "location": "us-central1",
                "auth": { "apiKey": { "in": "query", "name": "key" } },
                "routes": self.routes(),
            },
        }));
        let gateways: Api<GatewayConfig> = self.cluster.api();
        gateways.create(&PostParams::default(), &gateway).await.unwrap_or_else(|e| panic!("gateway: {e}"));
    }

    /// A canary of two steps without pauses (blue/green without a delay, for even seeds),
    /// whose pods have 3 s to be Ready; or the default.
    fn rollout(&self) -> Value {
        match (self.canary, self.seed.is_multiple_of(2)) {
            (true, false) => json!({
                "strategy": "Canary",
                "canary": { "steps": [{ "weight": 34, "pause": "0s" }, { "weight": 67, "pause": "0s" }] },
                "analysis": { "interval": "3s" },
            }),
            (true, true) => json!({
                "strategy": "BlueGreen",
                "blueGreen": { "scaleDownDelay": "0s" },
                "analysis": { "interval": "3s" },
            }),
            (false, _) => json!({}),
        }
    }

    fn image(&self) -> String {
        format!("example.com/secure-api:1.{}", self.image_tag)
    }

    fn routes(&self) -> Value {
        let route = |path: &str, id: &str, auth: &str| json!({ "path": path, "methods": ["GET"], "operationId": id, "auth": auth, "backend": { "service": "secure-api" } });
        let mut routes = vec![route("/health", "healthCheck", "none"), route("/config", "getConfig", "apiKey")];
        if self.extra_route {
            routes.push(route("/api/data", "getSecureData", "apiKey"));
        }
        Value::Array(routes)
    }

    /// Adds a version of `secret_ref`'s secret with a fresh payload.
    pub fn rotate(&mut self, secret_ref: &'static str) -> u64 {
        let n = self.observer.next_payload_number();
        let sentinel = sentinel(self.seed);
        let data: SecretData = keys_of(secret_ref)
            .iter()
            .map(|key| (key.to_string(), format!("{key}-{sentinel}{n}").into_bytes()))
            .collect();
        let payload: serde_json::Map<String, Value> =
            data.iter().map(|(k, v)| (k.clone(), Value::String(String::from_utf8_lossy(v).into_owned()))).collect();
        // Known before it exists, so no observer can see it first.
        let version = self.observer.expect_version(secret_ref, data);
        let added =
            self.gcp.add_version(PROJECT, &secret_id(secret_ref), Value::Object(payload).to_string().as_bytes());
        assert_eq!(added, version, "the emulator numbers versions one after another");
        version
    }

    fn disable(&mut self, secret_ref: &'static str, version: u64) {
        if self.disabled.contains(&(secret_ref, version)) {
            return;
        }
        let set = self.gcp.set_version_state(PROJECT, &secret_id(secret_ref), version, VersionState::Disabled);
        set.unwrap_or_else(|e| panic!("disabling {secret_ref} {version}: {e}"));
        self.disabled.push((secret_ref, version));
    }

    fn enable_all(&mut self) {
        for (secret_ref, version) in std::mem::take(&mut self.disabled) {
            let set = self.gcp.set_version_state(PROJECT, &secret_id(secret_ref), version, VersionState::Enabled);
            set.unwrap_or_else(|e| panic!("enabling {secret_ref} {version}: {e}"));
        }
    }

    /// Plays every step of `schedule`, then lifts every fault; a secret whose newest version is
    /// a bad one gets a good one after it, so the schedule ends on versions that can roll out.
    pub async fn play(&mut self, schedule: &Schedule) {
        for step in &schedule.steps {
            self.play_step(step).await;
        }
        self.kube.clear_faults();
        self.gcp.clear_faults();
        self.gcp.set_operation_delay(OPERATION_DELAY);
        self.enable_all();
        for secret_ref in SECRETS {
            let latest = (secret_ref.to_owned(), self.observer.latest_version(secret_ref));
            if lock(&self.bad).contains(&latest) {
                self.rotate(secret_ref);
            }
        }
    }

    async fn play_step(&mut self, step: &Step) {
        self.restart_exited().await;
        let mut crash = None;
        for fault in &step.faults {
            *self.injected.entry(fault.kind()).or_default() += 1;
            match fault {
                Fault::Crash(point) => crash = Some(*point),
                Fault::HandOver => self.hand_over().await,
                other => self.inject(*other),
            }
        }
        let before = self.crash_point_counts();
        match crash {
            Some(CrashPoint::AfterAccess) => self.kube.inject_fault(delay_once("patch", "secrets", 300)),
            Some(CrashPoint::BeforeDeployment) => self.kube.inject_fault(delay_once("patch", "deployments", 300)),
            Some(CrashPoint::GatewayPending) => self.gcp.set_operation_delay(Duration::from_millis(600)),
            _ => {}
        }
        if let (true, Action::Rotate(secret_ref)) = (step.bad_version, step.action) {
            // Known bad before the version exists, so no pod of it is ever Ready.
            lock(&self.bad).insert((secret_ref.to_owned(), self.observer.latest_version(secret_ref) + 1));
        }
        self.act(step.action).await;
        if let Some(point) = crash {
            self.wait_for_crash_point(point, before, step.pause_millis).await;
            self.crash().await;
            self.gcp.set_operation_delay(OPERATION_DELAY);
        }
        tokio::time::sleep(Duration::from_millis(step.pause_millis)).await;
    }

    fn crash_point_counts(&self) -> [u64; 4] {
        [
            self.gcp.count(ACCESS),
            self.kube.count("patch", "deployments"),
            self.gcp.count("apigateway.apiConfigs.create"),
            self.observer.canary_sightings(),
        ]
    }

    /// Waits (bounded) until the operator stands at `point`.
    async fn wait_for_crash_point(&self, point: CrashPoint, before: [u64; 4], pause_millis: u64) {
        let reached = || {
            let now = self.crash_point_counts();
            match point {
                CrashPoint::Anytime => true,
                CrashPoint::AfterAccess => now[0] > before[0],
                CrashPoint::BeforeDeployment => now[1] > before[1],
                CrashPoint::GatewayPending => now[2] > before[2],
                CrashPoint::DuringTrial => now[3] > before[3],
            }
        };
        if point == CrashPoint::Anytime {
            tokio::time::sleep(Duration::from_millis(pause_millis % 300)).await;
            return;
        }
        let give_up = Instant::now() + CRASH_POINT_PATIENCE;
        while !reached() && Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // The write (or operation) is now in flight: a few ms more lets it reach the server.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    fn inject(&mut self, fault: Fault) {
        match fault {
            Fault::Crash(_) | Fault::HandOver => {}
            Fault::KubeStatus { verb, resource, status, times } => {
                self.kube.inject_fault(KubeFault::status(verb, resource, status).times(times));
            }
            Fault::KubeLatency { resource, millis, times } => self.kube.inject_fault(KubeFault {
                resource: Some(resource.into()),
                delay: Some(Duration::from_millis(millis)),
                times: Some(times),
                ..KubeFault::default()
            }),
            Fault::DropWatches => self.kube.drop_watches(),
            Fault::CompactHistory => {
                self.kube.compact_history();
                self.kube.drop_watches();
            }
            Fault::AccessStatus { status, times } => {
                self.gcp.inject_fault(GcpFault::status(ACCESS, status).times(times))
            }
            Fault::AccessTimeout => {
                self.gcp.inject_fault(GcpFault::delay(ACCESS, GCP_TIMEOUT + Duration::from_millis(300)).times(1));
            }
            Fault::WrongChecksum { times } => self.gcp.inject_fault(GcpFault {
                method: Some(ACCESS.into()),
                wrong_checksum: true,
                times: Some(times),
                ..GcpFault::default()
            }),
            Fault::DisabledMidFlight(secret_ref) => {
                let version = self.rotate(secret_ref);
                self.disable(secret_ref, version);
            }
            Fault::GatewayOperationFails => {
                self.gcp.inject_fault(GcpFault::fail_operation("apigateway.apiConfigs.create", "injected").times(1));
            }
            Fault::GatewayUnavailable { method, times } => {
                self.gcp.inject_fault(GcpFault::status(method, 503).times(times));
            }
            Fault::Deliveries { duplicate, delay_millis, reorder, drop_acks } => {
                let delay = (delay_millis > 0).then(|| Duration::from_millis(delay_millis));
                self.gcp.set_delivery_faults(DeliveryFaults { duplicate, delay, reorder, drop_acks, lose: 0 });
            }
            Fault::LostNotifications { count } => {
                self.gcp.set_delivery_faults(DeliveryFaults { lose: count, ..DeliveryFaults::default() });
            }
            Fault::LeaseWritesFail => {
                self.kube.inject_fault(KubeFault::status("update", "leases", 503).times(REFUSED_LEASE_WRITES));
            }
        }
    }

    async fn act(&mut self, action: Action) {
        match action {
            Action::Rotate(secret_ref) => {
                self.rotate(secret_ref);
            }
            Action::DisableLatest(secret_ref) => {
                let latest = self.observer.latest_version(secret_ref);
                self.disable(secret_ref, latest);
            }
            Action::EnableAll => self.enable_all(),
            Action::EditImage => {
                self.image_tag += 1;
                self.patch_service(json!({ "spec": { "image": self.image() } })).await;
            }
            Action::EditReplicas => {
                self.replicas = if self.replicas == 2 { 3 } else { 2 };
                self.patch_service(json!({ "spec": { "replicas": self.replicas } })).await;
            }
            Action::EditRoutes => {
                self.extra_route = !self.extra_route;
                let api: Api<GatewayConfig> = self.cluster.api();
                let patch = json!({ "spec": { "routes": self.routes() } });
                let patched = api.patch("secure-api", &PatchParams::default(), &Patch::Merge(&patch)).await;
                patched.unwrap_or_else(|e| panic!("routes: {e}"));
            }
            Action::Wait => {}
        }
    }

    async fn patch_service(&self, patch: Value) {
        let api: Api<SecureApiService> = self.cluster.api();
        let patched = api.patch("secure-api", &PatchParams::default(), &Patch::Merge(&patch)).await;
        patched.unwrap_or_else(|e| panic!("service: {e}"));
    }

    /// What the end state must be: the newest version of every secret, the current image, and
    /// the gateway at its current generation.
    pub fn expected(&self) -> Expected {
        let versions = SECRETS.iter().map(|r| (r.to_string(), self.observer.latest_version(r))).collect();
        Expected { versions, image: self.image() }
    }

    /// Waits until everything is Ready at [`Self::expected`], a replica leads and every watch
    /// is open again; the error says what was not.
    pub async fn settle(&mut self, deadline: Duration) -> Result<Duration, String> {
        let started = Instant::now();
        let expected = self.expected();
        let give_up = started + deadline;
        loop {
            self.restart_exited().await;
            let open = self.kube.open_watches();
            let missing = match self.observer.not_settled(&expected).await {
                None if self.leader().await.is_none() => Some("no replica holds the Lease".to_owned()),
                None if open < self.watches => Some(format!("{open} of {} watches open", self.watches)),
                missing => missing,
            };
            match missing {
                None => return Ok(started.elapsed()),
                Some(what) if Instant::now() >= give_up => return Err(what),
                Some(_) => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        }
    }
}

/// One operator process, known by its leader-election identity.
struct Replica {
    identity: String,
    operator: Operator,
}

fn delay_once(verb: &str, resource: &str, millis: u64) -> KubeFault {
    KubeFault {
        verb: Some(verb.into()),
        resource: Some(resource.into()),
        delay: Some(Duration::from_millis(millis)),
        times: Some(1),
        ..KubeFault::default()
    }
}

fn parse<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
