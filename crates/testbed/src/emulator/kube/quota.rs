//! ResourceQuota for object counts, as kube-apiserver's quota admission and
//! kube-controller-manager's quota controller handle `count/<resource>.<group>` (or a core
//! resource's short name: `secrets`, `services`, `configmaps`, ...).
//!
//! Admission enforces only what a quota's `status.hard` holds, as kube-apiserver does: until the
//! quota controller has filled status in, creates are admitted. The simulated controller
//! ([`run`], started by [`super::KubeEmulator::start_quota_controller`]) looks at every quota each
//! [`RESYNC`] and writes `status.hard` (a copy of `spec.hard`) and `status.used` (the counts) when
//! they differ, so a new quota or a changed spec takes effect within one period and `used`
//! follows creates and deletes. A test waits for `status.hard` before counting on a refusal.
//!
//! Limitations: only object counts are enforced (no compute resources, scopes or scope
//! selectors; their `used` is written as `0`), and admission counts usage from the store rather
//! than from `status.used`.

use std::sync::{Mutex, Weak};
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::resources::{ResourceType, StorageKey};
use super::status::ApiError;
use super::store::{State, lock};

/// How often the simulated quota controller brings every quota's status up to date.
pub const RESYNC: Duration = Duration::from_millis(100);

/// Core resources whose count has a short quota name besides `count/<plural>`.
const CORE_SHORT_NAMES: [&str; 7] =
    ["pods", "services", "secrets", "configmaps", "persistentvolumeclaims", "replicationcontrollers", "resourcequotas"];

fn quotas() -> StorageKey {
    StorageKey { group: String::new(), plural: "resourcequotas".into() }
}

/// Refuses the creation of one more object of `rt` in `namespace` if a quota's `status.hard`
/// there forbids it.
pub fn admit_create(state: &State, rt: &ResourceType, namespace: &str, name: &str) -> Result<(), ApiError> {
    if !rt.namespaced {
        return Ok(());
    }
    let names = quota_names(rt);
    for quota in state.list(&quotas(), Some(namespace)) {
        for resource in &names {
            let Some(limit) = quota["status"]["hard"][resource.as_str()].as_str().and_then(|hard| hard.parse().ok())
            else {
                continue;
            };
            let used = state.list(&rt.storage_key(), Some(namespace)).len() as u64;
            if used + 1 > limit {
                return Err(exceeded(rt, name, quota, resource, used, limit));
            }
        }
    }
    Ok(())
}

/// The names a quota may count this resource by.
fn quota_names(rt: &ResourceType) -> Vec<String> {
    if rt.group.is_empty() {
        let mut names = vec![format!("count/{}", rt.plural)];
        if CORE_SHORT_NAMES.contains(&rt.plural.as_str()) {
            names.push(rt.plural.clone());
        }
        names
    } else {
        vec![format!("count/{}.{}", rt.plural, rt.group)]
    }
}

/// `deployments.apps "web" is forbidden: exceeded quota: q, requested: …, used: …, limited: …`
fn exceeded(rt: &ResourceType, name: &str, quota: &Value, resource: &str, used: u64, limit: u64) -> ApiError {
    let qualified = if rt.group.is_empty() { rt.plural.clone() } else { format!("{}.{}", rt.plural, rt.group) };
    let quota_name = quota["metadata"]["name"].as_str().unwrap_or_default();
    let message = format!(
        "{qualified} \"{name}\" is forbidden: exceeded quota: {quota_name}, requested: {resource}=1, \
         used: {resource}={used}, limited: {resource}={limit}"
    );
    ApiError::forbidden(message, name, &rt.group, &rt.plural)
}

/// What a quota resource name counts: `count/<plural>[.<group>]` or a core short name; None for
/// what the emulator does not count (compute resources).
fn counted(resource: &str) -> Option<StorageKey> {
    if let Some(counted) = resource.strip_prefix("count/") {
        let (plural, group) = counted.split_once('.').unwrap_or((counted, ""));
        return Some(StorageKey { group: group.to_owned(), plural: plural.to_owned() });
    }
    CORE_SHORT_NAMES.contains(&resource).then(|| StorageKey { group: String::new(), plural: resource.to_owned() })
}

/// The status the quota controller writes for `quota` in `namespace`: `spec.hard` and the usage
/// of each resource it names.
fn wanted_status(state: &State, namespace: &str, quota: &Value) -> Value {
    let Some(hard) = quota["spec"]["hard"].as_object().filter(|hard| !hard.is_empty()) else {
        return json!({});
    };
    let used: Map<String, Value> = hard
        .keys()
        .map(|resource| {
            let count = counted(resource).map_or(0, |key| state.list(&key, Some(namespace)).len());
            (resource.clone(), json!(count.to_string()))
        })
        .collect();
    json!({ "hard": hard, "used": used })
}

/// Writes the status of every quota whose status is not what the controller wants.
fn sync_all(state: &mut State) {
    let stale: Vec<(String, String, Value)> = state
        .list(&quotas(), None)
        .into_iter()
        .filter_map(|quota| {
            let namespace = quota["metadata"]["namespace"].as_str()?;
            let wanted = wanted_status(state, namespace, quota);
            let stored = if quota["status"].is_null() { json!({}) } else { quota["status"].clone() };
            (stored != wanted).then(|| {
                let mut updated = quota.clone();
                updated["status"] = wanted;
                (namespace.to_owned(), quota["metadata"]["name"].as_str().unwrap_or_default().to_owned(), updated)
            })
        })
        .collect();
    for (namespace, name, updated) in stale {
        state.replace(&quotas(), &namespace, &name, updated);
    }
}

/// Runs the simulated quota controller until the emulator is dropped.
pub async fn run(state: Weak<Mutex<State>>) {
    let mut resync = tokio::time::interval(RESYNC);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        resync.tick().await;
        let Some(strong) = state.upgrade() else { return };
        sync_all(&mut lock(&strong));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::kube::resources::Registry;

    fn resource(group: &str, plural: &str) -> std::sync::Arc<ResourceType> {
        Registry::builtin().find(group, "v1", plural).unwrap_or_else(|| panic!("{group}/{plural}"))
    }

    #[test]
    fn core_resources_count_by_both_names_and_grouped_ones_by_count_only() {
        assert_eq!(quota_names(&resource("", "secrets")), ["count/secrets", "secrets"]);
        assert_eq!(quota_names(&resource("", "serviceaccounts")), ["count/serviceaccounts"]);
        assert_eq!(quota_names(&resource("apps", "deployments")), ["count/deployments.apps"]);
    }

    fn state_with_quota(hard: Value) -> State {
        let mut state = State::new(crate::emulator::kube::store::StoreLimits::default());
        let quota = json!({ "metadata": { "name": "q", "namespace": "ns" }, "spec": { "hard": hard } });
        state.insert(&quotas(), "ns", "q", quota);
        state
    }

    fn add_config_map(state: &mut State, name: &str) {
        let key = resource("", "configmaps").storage_key();
        state.insert(&key, "ns", name, json!({ "metadata": { "name": name, "namespace": "ns" } }));
    }

    fn status(state: &State) -> Value {
        state.get(&quotas(), "ns", "q").map(|quota| quota["status"].clone()).unwrap_or_default()
    }

    #[test]
    fn a_quota_is_enforced_only_once_its_status_holds_the_hard_limits() {
        let mut state = state_with_quota(json!({ "count/configmaps": "1" }));
        let config_maps = resource("", "configmaps");
        add_config_map(&mut state, "a");
        assert!(admit_create(&state, &config_maps, "ns", "b").is_ok(), "no status yet: admitted");
        sync_all(&mut state);
        assert_eq!(status(&state), json!({ "hard": { "count/configmaps": "1" }, "used": { "count/configmaps": "1" } }));
        let refused = admit_create(&state, &config_maps, "ns", "b").err().map(|e| e.message);
        assert_eq!(
            refused.as_deref(),
            Some(
                "configmaps \"b\" is forbidden: exceeded quota: q, requested: count/configmaps=1, \
                 used: count/configmaps=1, limited: count/configmaps=1"
            )
        );
    }

    #[test]
    fn the_controller_keeps_used_current_and_writes_only_changes() {
        let mut state =
            state_with_quota(json!({ "configmaps": "5", "count/deployments.apps": "2", "requests.cpu": "1" }));
        sync_all(&mut state);
        let version = state.resource_version();
        sync_all(&mut state);
        assert_eq!(state.resource_version(), version, "nothing changed, nothing written");
        add_config_map(&mut state, "a");
        sync_all(&mut state);
        let used = json!({ "configmaps": "1", "count/deployments.apps": "0", "requests.cpu": "0" });
        assert_eq!(status(&state)["used"], used);
    }
}
