//! ResourceQuota admission for object counts, as kube-apiserver's quota plugin answers a create
//! that would exceed `count/<resource>.<group>` (or a core resource's short name: `secrets`,
//! `services`, `configmaps`, ...).
//!
//! Limitations: only object counts are enforced (no compute resources, scopes or scope
//! selectors), usage is counted from the store at admission time rather than by a quota
//! controller, and `status` is left as written.

use serde_json::Value;

use super::resources::{ResourceType, StorageKey};
use super::status::ApiError;
use super::store::State;

/// Core resources whose count has a short quota name besides `count/<plural>`.
const CORE_SHORT_NAMES: [&str; 7] =
    ["pods", "services", "secrets", "configmaps", "persistentvolumeclaims", "replicationcontrollers", "resourcequotas"];

/// Refuses the creation of one more object of `rt` in `namespace` if a quota there forbids it.
pub fn admit_create(state: &State, rt: &ResourceType, namespace: &str, name: &str) -> Result<(), ApiError> {
    if !rt.namespaced {
        return Ok(());
    }
    let quotas = StorageKey { group: String::new(), plural: "resourcequotas".into() };
    let names = quota_names(rt);
    for quota in state.list(&quotas, Some(namespace)) {
        for resource in &names {
            let Some(limit) =
                quota["spec"]["hard"][resource.as_str()].as_str().and_then(|hard| hard.parse::<u64>().ok())
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
}
