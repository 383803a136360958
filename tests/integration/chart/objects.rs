//! Looks into rendered objects: one object by kind and name, the operator's Deployment, pod,
//! container and environment, and the leader-election Role.

use super::RELEASE;
use serde_json::Value;
use std::collections::BTreeMap;

pub(super) fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} among {:?}", kinds(docs)))
}

fn kinds(docs: &[Value]) -> Vec<String> {
    docs.iter().map(|d| format!("{}/{}", d["kind"].as_str().unwrap_or("?"), d["metadata"]["name"])).collect()
}

/// Whether any object is of that kind.
pub(super) fn has_kind(docs: &[Value], kind: &str) -> bool {
    docs.iter().any(|d| d["kind"] == kind)
}

pub(super) fn deployment(docs: &[Value]) -> &Value {
    find(docs, "Deployment", RELEASE)
}

/// The Deployment's pod spec.
pub(super) fn pod(docs: &[Value]) -> &Value {
    &deployment(docs)["spec"]["template"]["spec"]
}

pub(super) fn container(docs: &[Value]) -> &Value {
    &pod(docs)["containers"][0]
}

/// The Role for the leader-election Lease.
pub(super) fn lease_role(docs: &[Value]) -> &Value {
    find(docs, "Role", &format!("{RELEASE}-leader-election"))
}

/// The strings of a JSON array (nothing for anything else).
pub(super) fn strings(value: &Value) -> Vec<String> {
    value.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect()
}

/// The container's environment: literal values, and `fieldRef:<path>` for downward-API ones.
pub(super) fn env(docs: &[Value]) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for var in container(docs)["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().unwrap_or_default().to_owned();
        let value = match var["value"].as_str() {
            Some(value) => value.to_owned(),
            None => format!("fieldRef:{}", var["valueFrom"]["fieldRef"]["fieldPath"].as_str().unwrap_or("?")),
        };
        assert!(env.insert(name.clone(), value).is_none(), "env {name} is set twice");
    }
    env
}

pub(super) fn env_of(docs: &[Value], name: &str) -> Option<String> {
    env(docs).get(name).cloned()
}
