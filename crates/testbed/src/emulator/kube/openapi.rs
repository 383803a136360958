//! The OpenAPI v3 that kubectl reads: the `/openapi/v3` index of group versions, and per group
//! version the PATCH operations with their `fieldValidation` parameter and the schemas of its
//! custom resources (`openapi_schemas`). Finding that parameter, kubectl leaves validation to the
//! server (`fieldValidation=Strict`); the schemas serve `kubectl explain`. Built-in kinds have no
//! schemas, and `/openapi/v2` is not served (kubectl prefers v3).

use super::openapi_schemas::components;
use super::resources::{Registry, ResourceType};
use super::status::ApiError;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::hash::{DefaultHasher, Hash, Hasher};

/// `api/v1` or `apis/{group}/{version}`: the key kubectl uses for a group version.
fn gv_path(t: &ResourceType) -> String {
    if t.group.is_empty() { format!("api/{}", t.version) } else { format!("apis/{}/{}", t.group, t.version) }
}

/// Serves `/openapi/v3` (`rest` = "v3") and `/openapi/v3/{gv path}`; anything else is 404.
pub fn document(registry: &Registry, rest: &str) -> Result<Value, ApiError> {
    match rest.strip_prefix("v3") {
        Some("") => Ok(index(registry)),
        Some(gv) => group_version(registry, gv.trim_start_matches('/')),
        None => Err(ApiError::no_route()),
    }
}

fn index(registry: &Registry) -> Value {
    let paths: BTreeSet<String> = registry.all().iter().map(|t| gv_path(t)).collect();
    let entries: Map<String, Value> = paths
        .into_iter()
        .map(|path| {
            let hash = group_version(registry, &path).map(|doc| fingerprint(&doc)).unwrap_or_default();
            let url = format!("/openapi/v3/{path}?hash={hash}");
            (path, json!({ "serverRelativeURL": url }))
        })
        .collect();
    json!({ "paths": entries })
}

/// The document's content hash, as kube-apiserver puts in the URL: kubectl caches each URL on
/// disk for good, so a changed schema (a CRD update) must get a new one.
fn fingerprint(document: &Value) -> String {
    let mut hasher = DefaultHasher::new();
    document.to_string().hash(&mut hasher);
    format!("{:016X}", hasher.finish())
}

fn group_version(registry: &Registry, path: &str) -> Result<Value, ApiError> {
    let types: Vec<_> = registry.all().iter().filter(|t| gv_path(t) == path).collect();
    if types.is_empty() {
        return Err(ApiError::no_route());
    }
    let mut paths = Map::new();
    for t in &types {
        let collection = if t.namespaced {
            format!("/{}/namespaces/{{namespace}}/{}", gv_path(t), t.plural)
        } else {
            format!("/{}/{}", gv_path(t), t.plural)
        };
        let gvk = json!({ "group": t.group, "version": t.version, "kind": t.kind });
        let operation = json!({
            "x-kubernetes-group-version-kind": gvk,
            "parameters": [
                { "name": "fieldValidation", "in": "query", "schema": { "type": "string", "uniqueItems": true } },
                { "name": "fieldManager", "in": "query", "schema": { "type": "string", "uniqueItems": true } },
                { "name": "force", "in": "query", "schema": { "type": "boolean", "uniqueItems": true } },
            ],
            "responses": { "200": { "description": "OK" } },
        });
        paths.insert(format!("{collection}/{{name}}"), json!({ "patch": operation, "put": operation }));
        paths.insert(collection, json!({ "post": operation }));
    }
    Ok(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "v1.33.0" },
        "paths": paths,
        "components": { "schemas": components(types.iter().map(|t| t.as_ref())) },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_points_at_every_group_version() {
        let doc = index(&Registry::builtin());
        assert!(
            doc["paths"]["api/v1"]["serverRelativeURL"]
                .as_str()
                .is_some_and(|u| u.starts_with("/openapi/v3/api/v1?hash="))
        );
        assert!(doc["paths"]["apis/apps/v1"].is_object());
    }

    #[test]
    fn patch_operations_declare_field_validation() {
        let doc = group_version(&Registry::builtin(), "apis/apps/v1").unwrap_or_default();
        let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        assert_eq!(patch["parameters"][0]["name"], "fieldValidation");
    }

    #[test]
    fn a_crd_group_version_describes_its_kinds_and_its_url_changes_with_the_schema() {
        let mut registry = Registry::builtin();
        let mut crd = json!({
            "metadata": { "name": "widgets.example.com" },
            "spec": {
                "group": "example.com", "scope": "Namespaced",
                "names": { "plural": "widgets", "kind": "Widget" },
                "versions": [{ "name": "v1", "served": true, "storage": true,
                               "schema": { "openAPIV3Schema": { "type": "object", "description": "one" } } }],
            },
        });
        assert!(registry.register_crd(&crd).is_ok());
        let doc = group_version(&registry, "apis/example.com/v1").unwrap_or_default();
        assert_eq!(doc["components"]["schemas"]["com.example.v1.Widget"]["description"], "one");
        let url = |registry: &Registry| index(registry)["paths"]["apis/example.com/v1"]["serverRelativeURL"].clone();
        let before = url(&registry);
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] = json!("two");
        assert!(registry.register_crd(&crd).is_ok());
        assert_ne!(url(&registry), before);
    }
}
