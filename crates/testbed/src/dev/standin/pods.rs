//! The pods of the stand-in's service as the Service behind the gateway sees them, followed in
//! the background. Per Deployment — the stable `<service>` and the canary `<service>-canary` —
//! the revision it runs and how many of its pods are Ready; per revision, its process (resolved
//! once from its pod template and snapshot Secrets, which never change for a revision) and what
//! its readiness probe answers: the stand-in's `/health` with that process. Requests are split
//! between the Ready pods' revisions ([`Split`]); the emulator's Deployment controller asks
//! [`Pods::ready`] whether a Deployment's pods are Ready. It also counts the requests each
//! revision answered by status class ([`Requests`]), from the moment the revision is read.
//!
//! One task follows the Deployments: it reads only the revisions they name, one at a time and
//! with a deadline, and keeps the answers in maps. The readiness hook only reads a map: the
//! emulator asks it under its store's lock.

use super::api::{self, Answer};
use super::metrics::Requests;
use super::process::{self, Process};
use super::split::Split;
use crate::emulator::kube::KubeEmulator;
use futures::StreamExt;
use hyper::{HeaderMap, Method, StatusCode};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PodTemplateSpec, Secret};
use kube::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use secure_api_operator::controllers::secure_api_service::revision::{REVISION_ANNOTATION, revision_of};
use secure_api_operator::workload::canary::canary_name;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long reading one revision's Secrets may take; a later look tries again.
const READ_DEADLINE: Duration = Duration::from_secs(5);
/// How often the follower looks without a change: for a revision it could not read yet.
const LOOK_AGAIN: Duration = Duration::from_millis(250);

/// What one Deployment's Ready pods serve.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Endpoint {
    revision: String,
    pods: u32,
}

/// A revision a Deployment runs.
struct Revision {
    /// Its process, or why its container cannot start (a Secret or key missing).
    process: Result<Arc<Process>, String>,
    /// What its readiness probe answers.
    probe: Answer,
}

struct State {
    revisions: BTreeMap<String, Revision>,
    /// By Deployment name.
    endpoints: BTreeMap<String, Endpoint>,
    split: Split,
    /// Requests each revision answered.
    served: BTreeMap<String, u64>,
    /// The same by status class, for the metrics endpoint; revisions stay after they leave.
    requests: Requests,
    /// Why no pod serves (the 503's message).
    why: String,
}

/// The service's pods: what serves, and what the readiness hook answers.
pub struct Pods {
    namespace: String,
    stable: String,
    canary: String,
    state: Mutex<State>,
    /// Revision → whether its probe answers 200: all the readiness hook reads.
    healthy: Mutex<BTreeMap<String, bool>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pods {
    pub fn new(namespace: &str, service: &str) -> Self {
        let state = State {
            revisions: BTreeMap::new(),
            endpoints: BTreeMap::new(),
            split: Split::default(),
            served: BTreeMap::new(),
            requests: Requests::default(),
            why: format!("Deployment {service} does not exist"),
        };
        Self {
            namespace: namespace.to_owned(),
            stable: service.to_owned(),
            canary: canary_name(service),
            state: Mutex::new(state),
            healthy: Mutex::new(BTreeMap::new()),
        }
    }

    /// The readiness hook: whether the pods of `deployment`, as the emulator stores it, are
    /// Ready. The service's are once their revision's probe answered 200 (pods start unready);
    /// other Deployments' always are.
    pub fn ready(&self, deployment: &Value) -> bool {
        let metadata = &deployment["metadata"];
        let name = metadata["name"].as_str().unwrap_or_default();
        if metadata["namespace"].as_str() != Some(self.namespace.as_str())
            || (name != self.stable && name != self.canary)
        {
            return true;
        }
        let revision = metadata["annotations"][REVISION_ANNOTATION].as_str().unwrap_or_default();
        lock(&self.healthy).get(revision).copied().unwrap_or(false)
    }

    /// The process of the revision that answers the next request, or why none does.
    pub fn pick(&self) -> Result<Arc<Process>, String> {
        let mut state = lock(&self.state);
        let Some(revision) = state.split.pick().map(str::to_owned) else { return Err(state.why.clone()) };
        let process = state.revisions.get(&revision).and_then(|r| r.process.as_ref().ok().cloned());
        let process = process.ok_or_else(|| format!("revision {revision} cannot run"))?;
        *state.served.entry(revision).or_default() += 1;
        Ok(process)
    }

    /// Ready pods per revision, as requests are split now.
    pub fn endpoints(&self) -> BTreeMap<String, u32> {
        lock(&self.state).split.pods()
    }

    /// Requests each revision answered so far.
    pub fn served(&self) -> BTreeMap<String, u64> {
        lock(&self.state).served.clone()
    }

    /// Counts a request `revision` answered with `status`.
    pub fn record(&self, revision: &str, status: StatusCode) {
        lock(&self.state).requests.record(revision, status);
    }

    /// Requests by revision and status class so far.
    pub fn requests(&self) -> Requests {
        lock(&self.state).requests.clone()
    }

    /// What the readiness probe of a revision the Deployments run answers.
    pub fn probe(&self, revision: &str) -> Option<Answer> {
        lock(&self.state).revisions.get(revision).map(|r| r.probe.clone())
    }

    /// Looks at the Deployments: reads the revisions not read yet, then what their Ready pods
    /// serve. True when a probe's answer changed, so the emulator must ask the hook again.
    async fn look(&self, client: &kube::Client, store: &Store<Deployment>) -> bool {
        let get = |name: &str| store.get(&ObjectRef::new(name).within(&self.namespace));
        let deployments = [get(&self.stable), get(&self.canary)];
        let mut read: Vec<(String, Result<Process, String>)> = Vec::new();
        for deployment in deployments.iter().flatten() {
            let Some(revision) = revision_of(deployment) else { continue };
            let known = lock(&self.state).revisions.get(&revision).is_some_and(|r| r.process.is_ok());
            if known || read.iter().any(|(r, _)| *r == revision) {
                continue;
            }
            let template = deployment.spec.as_ref().map(|s| &s.template);
            let Some(template) = template else { continue };
            match tokio::time::timeout(READ_DEADLINE, read_secrets(client, &self.namespace, template)).await {
                Ok(Ok(secrets)) => read.push((revision.clone(), process::resolve(&revision, template, &secrets))),
                Ok(Err(error)) => tracing::debug!(%revision, %error, "stand-in: cannot read the revision yet"),
                Err(_) => tracing::debug!(%revision, "stand-in: reading the revision timed out"),
            }
        }

        let mut state = lock(&self.state);
        for (revision, process) in read {
            let probe =
                api::answer(&Method::GET, "/health", &HeaderMap::new(), process.as_ref().map_err(String::as_str));
            tracing::debug!(%revision, status = probe.status.as_u16(), "stand-in: readiness probe");
            if process.is_ok() {
                state.requests.register(&revision);
            }
            state.revisions.insert(revision, Revision { process: process.map(Arc::new), probe });
        }
        let mut endpoints = BTreeMap::new();
        for (name, deployment) in [(&self.stable, &deployments[0]), (&self.canary, &deployments[1])] {
            let endpoint = endpoint(deployment.as_deref(), state.endpoints.get(name));
            let runnable = |e: &Endpoint| state.revisions.get(&e.revision).is_some_and(|r| r.process.is_ok());
            if let Some(endpoint) = endpoint.filter(runnable) {
                endpoints.insert(name.clone(), endpoint);
            }
        }
        let named = deployments.iter().flatten().filter_map(|d| revision_of(d));
        let in_use: BTreeSet<String> = named.chain(endpoints.values().map(|e| e.revision.clone())).collect();
        state.revisions.retain(|revision, _| in_use.contains(revision));
        if endpoints != state.endpoints {
            let mut pods = BTreeMap::new();
            for endpoint in endpoints.values() {
                *pods.entry(endpoint.revision.clone()).or_default() += endpoint.pods;
            }
            tracing::debug!(?pods, "stand-in: the Ready pods changed");
            state.split = Split::new(&pods);
            state.endpoints = endpoints;
        }
        state.why = match &deployments[0] {
            None => format!("Deployment {} does not exist", self.stable),
            Some(_) => format!("no pod of Deployment {} is Ready", self.stable),
        };
        let healthy: BTreeMap<String, bool> =
            state.revisions.iter().map(|(r, revision)| (r.clone(), revision.probe.status == StatusCode::OK)).collect();
        drop(state);
        let mut known = lock(&self.healthy);
        let changed = *known != healthy;
        *known = healthy;
        changed
    }
}

/// What `deployment`'s Ready pods serve, given what they served before: while a new revision's
/// pods are not Ready the old ones keep serving, as in a rolling update; scaled to zero, none.
fn endpoint(deployment: Option<&Deployment>, before: Option<&Endpoint>) -> Option<Endpoint> {
    let deployment = deployment?;
    let revision = revision_of(deployment)?;
    let wanted = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    if wanted <= 0 {
        return None;
    }
    let status = deployment.status.as_ref();
    let observed =
        status.and_then(|s| s.observed_generation).is_some_and(|g| Some(g) >= deployment.metadata.generation);
    let ready = status.and_then(|s| s.ready_replicas).unwrap_or(0);
    if observed && ready > 0 {
        return Some(Endpoint { revision, pods: u32::try_from(ready).unwrap_or(0) });
    }
    before.filter(|b| !observed || b.revision != revision).cloned()
}

/// The Secrets a template names that exist (a missing one fails the container in
/// [`process::resolve`]).
async fn read_secrets(
    client: &kube::Client,
    namespace: &str,
    template: &PodTemplateSpec,
) -> Result<BTreeMap<String, Secret>, String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut secrets = BTreeMap::new();
    for name in process::secrets_of(template) {
        let found = api.get_opt(&name).await.map_err(|e| format!("cannot read Secret {name}: {e}"))?;
        secrets.extend(found.map(|found| (name, found)));
    }
    Ok(secrets)
}

/// Follows the Deployments of `pods`' service until `stop`, asking the emulator to look at pod
/// readiness again whenever a probe's answer changed.
pub async fn follow(pods: Arc<Pods>, kube: KubeEmulator, stop: CancellationToken) {
    let client = kube.client();
    let api: Api<Deployment> = Api::namespaced(client.clone(), &pods.namespace);
    let (store, writer) = reflector::store();
    let mut changes = reflector::reflector(writer, watcher(api, watcher::Config::default())).default_backoff().boxed();
    let mut look_again = tokio::time::interval(LOOK_AGAIN);
    look_again.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            change = changes.next() => match change {
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    tracing::debug!(%error, "stand-in: watching the Deployments failed; retrying");
                    continue;
                }
                None => return,
            },
            _ = look_again.tick() => {}
        }
        if pods.look(&client, &store).await {
            kube.recheck_pod_readiness();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(revision: &str, replicas: i32, generation: i64, observed: i64, ready: i32) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "api", "generation": generation, "annotations": {REVISION_ANNOTATION: revision}},
            "spec": {"replicas": replicas, "selector": {}, "template": {}},
            "status": {"observedGeneration": observed, "readyReplicas": ready},
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn serving(revision: &str, pods: u32) -> Endpoint {
        Endpoint { revision: revision.into(), pods }
    }

    #[test]
    fn ready_pods_serve_their_revision() {
        assert_eq!(endpoint(Some(&deployment("r1", 9, 2, 2, 9)), None), Some(serving("r1", 9)));
        assert_eq!(endpoint(Some(&deployment("r1", 9, 2, 2, 0)), None), None, "not Ready yet");
        assert_eq!(endpoint(None, Some(&serving("r1", 9))), None, "deleted");
    }

    #[test]
    fn old_pods_serve_until_the_new_ones_are_ready_and_none_after_a_scale_to_zero() {
        let before = serving("r1", 2);
        assert_eq!(endpoint(Some(&deployment("r2", 2, 3, 3, 0)), Some(&before)), Some(before.clone()), "rolling");
        assert_eq!(endpoint(Some(&deployment("r1", 9, 3, 2, 2)), Some(&before)), Some(before.clone()), "scaling");
        assert_eq!(endpoint(Some(&deployment("r1", 2, 3, 3, 0)), Some(&before)), None, "its pods turned unready");
        assert_eq!(endpoint(Some(&deployment("r2", 0, 3, 3, 0)), Some(&before)), None, "scaled to zero");
    }

    #[test]
    fn the_hook_answers_for_the_services_deployments_only() {
        let pods = Pods::new("default", "api");
        lock(&pods.healthy).extend([("r1".to_owned(), true), ("r2".to_owned(), false)]);
        let stored = |namespace: &str, name: &str, revision: &str| json!({"metadata": {"namespace": namespace, "name": name, "annotations": {REVISION_ANNOTATION: revision}}});
        assert!(pods.ready(&stored("default", "api", "r1")));
        assert!(!pods.ready(&stored("default", "api-canary", "r2")), "its probe fails");
        assert!(!pods.ready(&stored("default", "api-canary", "r3")), "not probed yet");
        assert!(pods.ready(&stored("default", "other", "r3")), "not the service's");
        assert!(pods.ready(&stored("team-b", "api", "r3")), "not the service's");
        assert_eq!(pods.pick().err().as_deref(), Some("Deployment api does not exist"));
    }
}
