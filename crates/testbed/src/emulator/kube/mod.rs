//! An in-memory Kubernetes API server: our envtest. One store, two front doors — a tower
//! `Service` handed to `kube::Client::new` (no sockets) and an HTTP/1.1 listener on 127.0.0.1
//! for kubectl — plus test hooks (faults, counters, dropped watches) and an optional simulated
//! Deployment controller.
//!
//! It implements what the operator, kube-rs's runtime and kubectl use, CRD schemas and their CEL
//! rules included; see README ("Kubernetes API emulator") for what is deliberately left out
//! (authentication, pods).

pub mod apply;
mod cel;
mod deployments;
mod discovery;
mod event_printer;
mod events;
mod fieldset;
mod handlers;
mod hooks;
mod index;
mod labels;
mod lifecycle;
mod list;
mod managed;
mod objects;
mod openapi;
mod openapi_schemas;
pub mod patch;
mod protobuf;
mod quota;
mod request;
mod resources;
mod root_ca;
pub mod schema;
mod schema_errors;
pub mod selector;
mod served;
mod service;
mod status;
mod store;
mod strategy;
mod structural;
pub mod table;
mod token_request;
mod tokens;
mod watch;

pub use crate::listener::Listener;
pub use deployments::{DeploymentSimulation, Readiness};
pub use hooks::Fault;
pub use tokens::DEFAULT_ISSUER;

use hooks::Hooks;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{State, StoreLimits};
use tokio::sync::watch as signal;

/// Tunables of an emulator instance.
#[derive(Clone, Debug)]
pub struct EmulatorOptions {
    /// Changes kept for watches to resume from; older versions get 410 Gone.
    pub history: usize,
    /// Events buffered per watch before the watch is closed for falling behind.
    pub watch_buffer: usize,
    /// How often watches that allow bookmarks get one.
    pub bookmark_interval: Duration,
    /// The service-account token issuer (`iss`, the default audience, the discovery document);
    /// `None` for [`DEFAULT_ISSUER`], like kube-apiserver's `--service-account-issuer`.
    pub issuer: Option<String>,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        let limits = StoreLimits::default();
        Self {
            history: limits.history,
            watch_buffer: limits.watch_buffer,
            bookmark_interval: Duration::from_secs(10),
            issuer: None,
        }
    }
}

/// A running emulator. Cheap to clone; every clone is the same server.
#[derive(Clone)]
pub struct KubeEmulator {
    inner: Arc<Inner>,
}

struct Inner {
    state: Arc<Mutex<State>>,
    hooks: Hooks,
    options: EmulatorOptions,
    /// The service-account issuer, `options.issuer` or the default.
    issuer: String,
    deployments: signal::Sender<deployments::Simulation>,
    deployments_started: Mutex<bool>,
    root_ca_started: Mutex<bool>,
    quota_started: Mutex<bool>,
}

impl Default for KubeEmulator {
    fn default() -> Self {
        Self::new()
    }
}

impl KubeEmulator {
    /// An emulator with the default namespaces (`default`, `kube-system`, `kube-public`,
    /// `kube-node-lease`).
    pub fn new() -> Self {
        Self::with_options(EmulatorOptions::default())
    }

    pub fn with_options(options: EmulatorOptions) -> Self {
        let mut state = State::new(StoreLimits { history: options.history, watch_buffer: options.watch_buffer });
        service::create_default_namespaces(&mut state);
        let (deployments, _) = signal::channel(deployments::Simulation::default());
        let issuer = options.issuer.clone().unwrap_or_else(|| DEFAULT_ISSUER.to_owned());
        Self {
            inner: Arc::new(Inner {
                state: Arc::new(Mutex::new(state)),
                hooks: Hooks::default(),
                options,
                issuer,
                deployments,
                deployments_started: Mutex::new(false),
                root_ca_started: Mutex::new(false),
                quota_started: Mutex::new(false),
            }),
        }
    }

    /// A client whose requests are served in-process.
    pub fn client(&self) -> kube::Client {
        service::client(self.clone())
    }

    /// Serves HTTP/1.1 on `addr` (use port 0 for any free port) until the listener is dropped
    /// or shut down.
    pub async fn listen(&self, addr: std::net::SocketAddr) -> std::io::Result<Listener> {
        service::listen(self.clone(), addr).await
    }

    /// A kubeconfig (context `emulator`, no credentials) for a listener at `server`
    /// (`http://127.0.0.1:PORT`).
    pub fn kubeconfig(server: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: emulator\n  cluster:\n    server: {server}\n\
             contexts:\n- name: emulator\n  context:\n    cluster: emulator\n    namespace: default\n    user: emulator\n\
             current-context: emulator\nusers:\n- name: emulator\n  user: {{}}\n"
        )
    }

    /// The issuer of the service-account tokens this emulator signs: their `iss` claim, and what
    /// `/.well-known/openid-configuration` names.
    pub fn service_account_issuer(&self) -> String {
        self.inner.issuer.clone()
    }

    /// The JSON Web Key Set the tokens verify against, as `/openid/v1/jwks` serves it. The key is
    /// a fixed test key, the same for every emulator.
    pub fn service_account_jwks(&self) -> serde_json::Value {
        tokens::jwks()
    }

    /// Injects a fault into matching requests (both front doors).
    pub fn inject_fault(&self, fault: Fault) {
        self.inner.hooks.inject(fault);
    }

    pub fn clear_faults(&self) {
        self.inner.hooks.clear_faults();
    }

    /// Requests of `verb` on `resource` (`secrets`, `secretrefs/status`) so far.
    pub fn count(&self, verb: &str, resource: &str) -> u64 {
        self.inner.hooks.count(verb, resource)
    }

    /// Mutating requests on `resource` so far.
    pub fn writes(&self, resource: &str) -> u64 {
        self.inner.hooks.writes(resource)
    }

    /// Every request counter, by (verb, resource).
    pub fn counts(&self) -> BTreeMap<(String, String), u64> {
        self.inner.hooks.counts()
    }

    pub fn reset_counts(&self) {
        self.inner.hooks.reset_counts();
    }

    /// Closes every open watch; clients must resume from their last resourceVersion.
    pub fn drop_watches(&self) {
        self.state().drop_watches();
    }

    /// Forgets the change history: resuming any earlier watch gets 410 Gone.
    pub fn compact_history(&self) {
        self.state().compact();
    }

    /// Watches currently open.
    pub fn open_watches(&self) -> usize {
        self.state().open_watches()
    }

    /// The store's latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.state().resource_version()
    }

    /// Switches the simulated Deployment and load-balancer controllers. Must be called inside a
    /// tokio runtime.
    pub fn set_deployment_simulation(&self, mode: DeploymentSimulation) {
        self.inner.deployments.send_modify(|simulation| simulation.mode = mode);
        let mut started = self.inner.deployments_started.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !*started && mode != DeploymentSimulation::Off {
            *started = true;
            let state = Arc::downgrade(&self.inner.state);
            tokio::spawn(deployments::run(state, self.inner.deployments.subscribe()));
        }
    }

    /// Decides whether the pods of each Deployment's template are Ready (see [`Readiness`]); in
    /// `Complete` mode, a Deployment whose pods are not gets no Ready replica. `None`: every pod is.
    pub fn set_pod_readiness(&self, readiness: Option<Readiness>) {
        self.inner.deployments.send_modify(|simulation| simulation.readiness = readiness);
    }

    /// Asks the readiness hook again of every Deployment: for a hook whose answers changed (it
    /// reads a health map kept elsewhere) without a write to the Deployments it answers for.
    pub fn recheck_pod_readiness(&self) {
        self.inner.deployments.send_modify(|_| {});
    }

    /// Starts the simulated root-CA publisher: every namespace gets ConfigMap `kube-root-ca.crt`,
    /// as kube-controller-manager gives it on a real cluster (see `root_ca`). It stays on for the
    /// emulator's life. Must be called inside a tokio runtime.
    pub fn start_root_ca_publisher(&self) {
        let mut started = self.inner.root_ca_started.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !*started {
            *started = true;
            tokio::spawn(root_ca::run(Arc::downgrade(&self.inner.state)));
        }
    }

    /// Starts the simulated quota controller: every ResourceQuota gets `status.hard` and
    /// `status.used` shortly after it is created or changed, as kube-controller-manager writes them
    /// on a real cluster; only then is the quota enforced (see `quota`). It stays on for the
    /// emulator's life. Must be called inside a tokio runtime.
    pub fn start_quota_controller(&self) {
        let mut started = self.inner.quota_started.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !*started {
            *started = true;
            tokio::spawn(quota::run(Arc::downgrade(&self.inner.state)));
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panicking test thread must not wedge the emulator for the others.
        self.inner.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
