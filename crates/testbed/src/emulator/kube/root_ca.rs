//! A simulated root-CA publisher, the kube-controller-manager controller that gives every
//! namespace a ConfigMap `kube-root-ca.crt` with the cluster's CA bundle (`ca.crt`) and puts it
//! back whenever it is deleted or changed. Off unless switched on
//! ([`super::KubeEmulator::start_root_ca_publisher`]); on in the playground, the `emulator` command
//! and the integration tests, so that no test counts on a new namespace being empty, as none can
//! on a real cluster.

use super::resources::StorageKey;
use super::service::now;
use super::store::{EventType, State, lock, subscribe};
use serde_json::{Value, json};
use std::sync::{Mutex, Weak};

pub const NAME: &str = "kube-root-ca.crt";
/// The emulated cluster's CA: a fixed self-signed certificate (`CN=kubernetes`) whose key was
/// thrown away. The emulator serves plain HTTP; this is what a pod would find, nothing checks it.
const CA_BUNDLE: &str = include_str!("root_ca.crt");
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal \
     endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across \
     distributions of Kubernetes clusters.";

fn namespaces() -> StorageKey {
    StorageKey { group: String::new(), plural: "namespaces".into() }
}

fn config_maps() -> StorageKey {
    StorageKey { group: String::new(), plural: "configmaps".into() }
}

/// The ConfigMap as the publisher writes it, given the one stored (if any) for its identity.
fn published(namespace: &str, stored: Option<&Value>, uid: impl FnOnce() -> String) -> Value {
    let kept = |field: &str| stored.map(|s| s["metadata"][field].clone()).filter(|v| !v.is_null());
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": NAME,
            "namespace": namespace,
            "uid": kept("uid").unwrap_or_else(|| json!(uid())),
            "creationTimestamp": kept("creationTimestamp").unwrap_or_else(|| json!(now())),
            "annotations": { "kubernetes.io/description": DESCRIPTION },
        },
        "data": { "ca.crt": CA_BUNDLE },
    })
}

/// Whether `namespace` takes new content: it exists and is not being deleted.
fn active(state: &State, namespace: &str) -> bool {
    state.get(&namespaces(), "", namespace).is_some_and(|ns| {
        ns["metadata"]["deletionTimestamp"].is_null() && ns["status"]["phase"].as_str() != Some("Terminating")
    })
}

/// Creates or restores the ConfigMap of `namespace` when it is missing or differs.
fn publish(state: &mut State, namespace: &str) {
    if !active(state, namespace) {
        return;
    }
    let stored = state.get(&config_maps(), namespace, NAME).cloned();
    let wanted = published(namespace, stored.as_ref(), || state.new_uid());
    let same = stored.as_ref().is_some_and(|s| {
        s["data"] == wanted["data"] && s["metadata"]["annotations"] == wanted["metadata"]["annotations"]
    });
    match stored {
        None => {
            state.insert(&config_maps(), namespace, NAME, wanted);
        }
        Some(_) if !same => {
            state.replace(&config_maps(), namespace, NAME, wanted);
        }
        Some(_) => {}
    }
}

fn publish_all(state: &mut State) {
    let names: Vec<String> = state
        .list(&namespaces(), None)
        .iter()
        .filter_map(|ns| ns["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    for namespace in names {
        publish(state, &namespace);
    }
}

/// Runs the publisher until the emulator is dropped.
pub async fn run(state: Weak<Mutex<State>>) {
    loop {
        let (Some(mut namespace_events), Some(mut config_map_events)) =
            (subscribe(&state, namespaces()), subscribe(&state, config_maps()))
        else {
            return;
        };
        let Some(strong) = state.upgrade() else { return };
        publish_all(&mut lock(&strong));
        drop(strong);
        loop {
            let event = tokio::select! {
                event = namespace_events.recv() => event.map(|e| e.object["metadata"]["name"].as_str().map(str::to_owned)),
                event = config_map_events.recv() => event.map(|e| {
                    let ours = e.object["metadata"]["name"] == NAME && e.type_ != EventType::Added;
                    ours.then(|| e.namespace.clone())
                }),
            };
            let namespace = match event {
                Some(namespace) => namespace,
                // A watch fell behind and was dropped: subscribe again and look at everything.
                None => break,
            };
            let Some(strong) = state.upgrade() else { return };
            if let Some(namespace) = namespace {
                publish(&mut lock(&strong), &namespace);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_config_map_holds_the_bundle_and_keeps_its_identity() {
        let first = published("team-a", None, || "uid-1".into());
        assert_eq!(first["metadata"]["uid"], "uid-1");
        assert!(first["data"]["ca.crt"].as_str().is_some_and(|pem| pem.starts_with("-----BEGIN CERTIFICATE-----")));
        let mut edited = first.clone();
        edited["data"]["ca.crt"] = json!("tampered");
        let restored = published("team-a", Some(&edited), || "uid-2".into());
        assert_eq!(restored["metadata"]["uid"], "uid-1", "a restore keeps the object");
        assert_eq!(restored["data"], first["data"]);
    }
}
