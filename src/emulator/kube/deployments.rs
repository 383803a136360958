//! An optional stand-in for the Deployment controller: it reports rollouts as complete (or as
//! stalled), so status-driven logic can be tested without pods. Off by default.

use super::resources::StorageKey;
use super::store::{Event, State, WatchScope};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::{mpsc, watch};

/// How the simulated Deployment controller behaves.
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

fn deployments() -> StorageKey {
    StorageKey { group: "apps".into(), plural: "deployments".into() }
}

/// The status the controller would write for `deployment`, or `None` when it is already there.
pub fn simulated_status(deployment: &Value, mode: DeploymentSimulation) -> Option<Value> {
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

/// Writes the simulated status of one Deployment, if it differs.
fn settle(state: &mut State, namespace: &str, name: &str, mode: DeploymentSimulation) {
    let Some(deployment) = state.get(&deployments(), namespace, name) else { return };
    if deployment["metadata"]["deletionTimestamp"].is_string() {
        return;
    }
    if let Some(status) = simulated_status(deployment, mode) {
        let mut updated = deployment.clone();
        updated["status"] = status;
        state.replace(&deployments(), namespace, name, updated);
    }
}

fn settle_all(state: &mut State, mode: DeploymentSimulation) {
    let names: Vec<(String, String)> = state
        .list(&deployments(), None)
        .iter()
        .map(|d| {
            let meta = &d["metadata"];
            (meta["namespace"].as_str().unwrap_or_default().into(), meta["name"].as_str().unwrap_or_default().into())
        })
        .collect();
    for (namespace, name) in names {
        settle(state, &namespace, &name, mode);
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn subscribe(state: &Weak<Mutex<State>>) -> Option<mpsc::Receiver<Arc<Event>>> {
    let strong = state.upgrade()?;
    let mut guard = lock(&strong);
    guard.watch(WatchScope { key: deployments(), namespace: None }, None).ok().map(|(_, rx)| rx)
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

/// Runs the simulated controller until the emulator is dropped. Mode changes arrive on `mode`.
pub async fn run(state: Weak<Mutex<State>>, mut mode: watch::Receiver<DeploymentSimulation>) {
    let Some(mut events) = subscribe(&state) else { return };
    let mut current = *mode.borrow_and_update();
    with_state(&state, |s| settle_all(s, current));
    loop {
        let alive = tokio::select! {
            changed = mode.changed() => {
                if changed.is_err() { return; }
                current = *mode.borrow_and_update();
                with_state(&state, |s| settle_all(s, current))
            }
            event = events.recv() => match event {
                Some(event) => {
                    let name = event.object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
                    with_state(&state, |s| settle(s, &event.namespace, &name, current))
                }
                // The store dropped this watch (it fell behind): resubscribe and settle everything.
                None => match subscribe(&state) {
                    Some(rx) => {
                        events = rx;
                        with_state(&state, |s| settle_all(s, current))
                    }
                    None => false,
                },
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
        let status = simulated_status(&deployment(3, 2), DeploymentSimulation::Complete).unwrap_or_default();
        assert_eq!(status["observedGeneration"], 3);
        assert_eq!(status["updatedReplicas"], 2);
        assert_eq!(status["availableReplicas"], 2);
    }

    #[test]
    fn stall_reports_the_progress_deadline_exceeded() {
        let status = simulated_status(&deployment(2, 2), DeploymentSimulation::Stall).unwrap_or_default();
        assert_eq!(status["updatedReplicas"], 0);
        assert_eq!(status["conditions"][1]["reason"], "ProgressDeadlineExceeded");
    }

    #[test]
    fn a_settled_deployment_needs_no_write() {
        let mut settled = deployment(1, 1);
        settled["status"] = simulated_status(&settled, DeploymentSimulation::Complete).unwrap_or_default();
        assert!(simulated_status(&settled, DeploymentSimulation::Complete).is_none());
        assert!(simulated_status(&settled, DeploymentSimulation::Off).is_none());
    }
}
