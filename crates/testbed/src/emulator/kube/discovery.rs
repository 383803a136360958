//! Discovery documents: `/version`, `/api`, `/apis`, `/apis/{group}` and the resource lists of
//! each group version, built from the registry so custom resources appear with their CRD.

use super::resources::{Registry, ResourceType};
use super::status::ApiError;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The Kubernetes version the emulator reports (the operator's oldest supported minor).
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-secureapi-emulator",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`.
pub fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1" }],
    })
}

/// Versions of every named group, in order of first registration.
fn groups(registry: &Registry) -> BTreeMap<&str, Vec<&str>> {
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for t in registry.all().iter().filter(|t| !t.group.is_empty()) {
        let versions = groups.entry(t.group.as_str()).or_default();
        if !versions.contains(&t.version.as_str()) {
            versions.push(t.version.as_str());
        }
    }
    groups
}

fn group_document(name: &str, versions: &[&str]) -> Value {
    let entries: Vec<Value> =
        versions.iter().map(|v| json!({ "groupVersion": format!("{name}/{v}"), "version": v })).collect();
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": name,
        "versions": entries,
        "preferredVersion": entries.first().cloned().unwrap_or(Value::Null),
    })
}

/// `/apis`.
pub fn group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = groups(registry)
        .iter()
        .map(|(name, versions)| {
            let mut group = group_document(name, versions);
            if let Some(object) = group.as_object_mut() {
                object.remove("kind");
                object.remove("apiVersion");
            }
            group
        })
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

/// `/apis/{group}`.
pub fn group(registry: &Registry, name: &str) -> Result<Value, ApiError> {
    groups(registry).get(name).map(|versions| group_document(name, versions)).ok_or_else(ApiError::no_route)
}

/// `/api/v1` or `/apis/{group}/{version}`.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Result<Value, ApiError> {
    let types: Vec<_> = registry.all().iter().filter(|t| t.group == group && t.version == version).collect();
    if types.is_empty() {
        return Err(ApiError::no_route());
    }
    let mut resources = vec![];
    for t in types {
        resources.push(resource_entry(t));
        if t.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if t.group.is_empty() && t.plural == "serviceaccounts" {
            resources.push(token_subresource());
        }
    }
    let group_version = if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") };
    Ok(json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources }))
}

/// `serviceaccounts/token`, which takes an authentication.k8s.io/v1 TokenRequest.
fn token_subresource() -> Value {
    json!({
        "name": "serviceaccounts/token",
        "singularName": "",
        "namespaced": true,
        "group": "authentication.k8s.io",
        "version": "v1",
        "kind": "TokenRequest",
        "verbs": ["create"],
    })
}

fn resource_entry(t: &ResourceType) -> Value {
    let mut entry = json!({
        "name": t.plural,
        "singularName": t.singular,
        "namespaced": t.namespaced,
        "kind": t.kind,
        "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
    });
    if !t.short_names.is_empty() {
        entry["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        entry["categories"] = json!(t.categories);
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_core_group_lists_secrets_and_namespace_status() {
        let registry = Registry::builtin();
        let list = resource_list(&registry, "", "v1").unwrap_or_default();
        let names: Vec<&str> =
            list["resources"].as_array().into_iter().flatten().filter_map(|r| r["name"].as_str()).collect();
        assert!(names.contains(&"secrets"));
        assert!(names.contains(&"namespaces/status"));
        assert!(names.contains(&"serviceaccounts/token"));
        assert_eq!(list["groupVersion"], "v1");
    }

    #[test]
    fn unknown_group_versions_are_not_found() {
        let registry = Registry::builtin();
        assert!(resource_list(&registry, "secureapi.dev", "v1alpha1").is_err_and(|e| e.code == 404));
        assert!(group(&registry, "apps").is_ok_and(|g| g["preferredVersion"]["version"] == "v1"));
    }
}
