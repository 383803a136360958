//! Optional stand-ins for the controllers a cluster runs: the Deployment controller reports
//! rollouts as complete (or as stalled), and a cloud load-balancer controller gives each
//! `LoadBalancer` Service an address, so status-driven logic can be tested without pods or a cloud.
//! Off by default.

use super::resources::StorageKey;
use super::store::{State, lock, subscribe};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::watch;

/// How the simulated controllers behave. Whenever the mode is not `Off`, `LoadBalancer` Services
/// also get an ingress address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeploymentSimulation {
    /// Nothing writes Deployment status (like a cluster without controllers).
    #[default]
    Off,
    /// Every rollout completes at once: all replicas updated, ready and available.
    Complete,
    /// Rollouts never progress: the new template gets no ready replica and the Deployment reports
    /// `Progressing=False` with reason `ProgressDeadlineExceeded`.
    Stall,
}

/// Whether the pods of a Deployment's template pass their readiness probe, asked of the
/// Deployment as stored: a test's hook, or the playground's stand-in. Without one, every pod is
/// Ready.
pub type Readiness = Arc<dyn Fn(&Value) -> bool + Send + Sync>;

/// The simulated controllers' settings.
#[derive(Clone, Default)]
pub struct Simulation {
    pub mode: DeploymentSimulation,
    pub readiness: Option<Readiness>,
}

fn deployments() -> StorageKey {
    StorageKey { group: "apps".into(), plural: "deployments".into() }
}

fn services() -> StorageKey {
    StorageKey { group: String::new(), plural: "services".into() }
}

/// The status a cloud controller would write for a `LoadBalancer` Service without an address, or
/// `None`. Addresses come from 203.0.113.0/24 (TEST-NET-3, never routed), stable per Service.
pub fn simulated_load_balancer(service: &Value) -> Option<Value> {
    if service["spec"]["type"] != "LoadBalancer" || service["status"]["loadBalancer"]["ingress"].is_array() {
        return None;
    }
    let uid = service["metadata"]["uid"].as_str().unwrap_or_default();
    let host = 1 + crc32c::crc32c(uid.as_bytes()) % 254;
    Some(json!({ "loadBalancer": { "ingress": [{ "ip": format!("203.0.113.{host}"), "ipMode": "VIP" }] } }))
}

/// The status the controller would write for `deployment`, or `None` when it is already there.
/// In `Complete` mode, pods that are not `ready` are all created (updated), none is Ready, and
/// the rollout goes on progressing.
pub fn simulated_status(deployment: &Value, mode: DeploymentSimulation, ready: bool) -> Option<Value> {
    let generation = deployment["metadata"]["generation"].as_i64().unwrap_or(1);
    let replicas = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
    let name = deployment["metadata"]["name"].as_str().unwrap_or_default();
    let now = deployment["metadata"]["creationTimestamp"].clone();
    let condition = |type_: &str, status: &str, reason: &str, message: String| {
        json!({ "type": type_, "status": status, "reason": reason, "message": message,
                "lastUpdateTime": now, "lastTransitionTime": now })
    };
    let status = match mode {
        DeploymentSimulation::Off => return None,
        DeploymentSimulation::Complete if !ready => json!({
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": 0,
            "availableReplicas": 0,
            "unavailableReplicas": replicas,
            "conditions": [
                condition("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.".into()),
                condition("Progressing", "True", "ReplicaSetUpdated", format!("ReplicaSet \"{name}\" is progressing.")),
            ],
        }),
        DeploymentSimulation::Complete => json!({
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.".into()),
                condition("Progressing", "True", "NewReplicaSetAvailable", format!("ReplicaSet \"{name}\" has successfully progressed.")),
            ],
        }),
        DeploymentSimulation::Stall => {
            // The old pods keep serving; none of the new template becomes ready.
            let ready = deployment["status"]["readyReplicas"].as_i64().unwrap_or(0);
            json!({
                "observedGeneration": generation,
                "replicas": replicas,
                "updatedReplicas": 0,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "unavailableReplicas": (replicas - ready).max(0),
                "conditions": [
                    condition("Available", if ready > 0 { "True" } else { "False" }, "MinimumReplicasAvailable", "Deployment has minimum availability.".into()),
                    condition("Progressing", "False", "ProgressDeadlineExceeded", format!("ReplicaSet \"{name}\" has timed out progressing.")),
                ],
            })
        }
    };
    (deployment["status"] != status).then_some(status)
}

/// Writes the simulated status of one object, if it differs.
fn settle(state: &mut State, key: &StorageKey, namespace: &str, name: &str, simulation: &Simulation) {
    let mode = simulation.mode;
    if mode == DeploymentSimulation::Off {
        return;
    }
    let Some(object) = state.get(key, namespace, name) else { return };
    if object["metadata"]["deletionTimestamp"].is_string() {
        return;
    }
    let status = if *key == deployments() {
        let ready = simulation.readiness.as_ref().is_none_or(|ready| ready(object));
        simulated_status(object, mode, ready)
    } else {
        simulated_load_balancer(object)
    };
    if let Some(status) = status {
        let mut updated = object.clone();
        updated["status"] = status;
        state.replace(key, namespace, name, updated);
    }
}

fn settle_all(state: &mut State, simulation: &Simulation) {
    for key in [deployments(), services()] {
        let names: Vec<(String, String)> = state
            .list(&key, None)
            .iter()
            .map(|o| {
                let meta = &o["metadata"];
                (
                    meta["namespace"].as_str().unwrap_or_default().into(),
                    meta["name"].as_str().unwrap_or_default().into(),
                )
            })
            .collect();
        for (namespace, name) in names {
            settle(state, &key, &namespace, &name, simulation);
        }
    }
}

fn with_state(state: &Weak<Mutex<State>>, f: impl FnOnce(&mut State)) -> bool {
    match state.upgrade() {
        Some(strong) => {
            f(&mut lock(&strong));
            true
        }
        None => false,
    }
}

/// Runs the simulated controllers until the emulator is dropped. Mode changes arrive on `mode`.
pub async fn run(state: Weak<Mutex<State>>, mut mode: watch::Receiver<Simulation>) {
    let (Some(mut deployment_events), Some(mut service_events)) =
        (subscribe(&state, deployments()), subscribe(&state, services()))
    else {
        return;
    };
    let mut current = mode.borrow_and_update().clone();
    with_state(&state, |s| settle_all(s, &current));
    loop {
        let (key, event) = tokio::select! {
            changed = mode.changed() => {
                if changed.is_err() { return; }
                current = mode.borrow_and_update().clone();
                if with_state(&state, |s| settle_all(s, &current)) { continue } else { return }
            }
            event = deployment_events.recv() => (deployments(), event),
            event = service_events.recv() => (services(), event),
        };
        let alive = match event {
            Some(event) => {
                let name = event.object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
                with_state(&state, |s| settle(s, &key, &event.namespace, &name, &current))
            }
            // The store dropped this watch (it fell behind): resubscribe and settle everything.
            None => match subscribe(&state, key.clone()) {
                Some(rx) => {
                    if key == deployments() {
                        deployment_events = rx;
                    } else {
                        service_events = rx;
                    }
                    with_state(&state, |s| settle_all(s, &current))
                }
                None => false,
            },
        };
        if !alive {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(generation: i64, replicas: i64) -> Value {
        json!({"metadata": {"name": "web", "generation": generation}, "spec": {"replicas": replicas}})
    }

    #[test]
    fn complete_reports_every_replica_updated_and_ready() {
        let status = simulated_status(&deployment(3, 2), DeploymentSimulation::Complete, true).unwrap_or_default();
        assert_eq!(status["observedGeneration"], 3);
        assert_eq!(status["updatedReplicas"], 2);
        assert_eq!(status["availableReplicas"], 2);
    }

    #[test]
    fn unready_pods_are_created_but_none_is_ready() {
        let status = simulated_status(&deployment(3, 2), DeploymentSimulation::Complete, false).unwrap_or_default();
        assert_eq!((status["updatedReplicas"].as_i64(), status["readyReplicas"].as_i64()), (Some(2), Some(0)));
        assert_eq!(status["conditions"][1]["status"], "True", "still progressing");
    }

    #[test]
    fn stall_reports_the_progress_deadline_exceeded() {
        let status = simulated_status(&deployment(2, 2), DeploymentSimulation::Stall, true).unwrap_or_default();
        assert_eq!(status["updatedReplicas"], 0);
        assert_eq!(status["conditions"][1]["reason"], "ProgressDeadlineExceeded");
    }

    #[test]
    fn a_load_balancer_service_gets_one_stable_test_net_address() {
        let service = json!({"metadata": {"name": "api", "uid": "u-1"}, "spec": {"type": "LoadBalancer"}});
        let status = simulated_load_balancer(&service).unwrap_or_default();
        let ip = status["loadBalancer"]["ingress"][0]["ip"].as_str().unwrap_or_default().to_owned();
        assert!(ip.starts_with("203.0.113."), "{ip}");
        assert_eq!(simulated_load_balancer(&service), Some(status.clone()));
        let mut settled = service.clone();
        settled["status"] = status;
        assert!(simulated_load_balancer(&settled).is_none());
        let cluster_ip = json!({"metadata": {"name": "api", "uid": "u-1"}, "spec": {"type": "ClusterIP"}});
        assert!(simulated_load_balancer(&cluster_ip).is_none());
    }

    #[test]
    fn a_settled_deployment_needs_no_write() {
        let mut settled = deployment(1, 1);
        settled["status"] = simulated_status(&settled, DeploymentSimulation::Complete, true).unwrap_or_default();
        assert!(simulated_status(&settled, DeploymentSimulation::Complete, true).is_none());
        assert!(simulated_status(&settled, DeploymentSimulation::Off, true).is_none());
    }
}
