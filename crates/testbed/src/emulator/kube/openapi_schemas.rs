//! `components.schemas` of a group version's OpenAPI v3 document for custom resources, built as
//! kube-apiserver's CRD OpenAPI builder (apiextensions-apiserver `controller/openapi/builder`)
//! builds them: the version's `openAPIV3Schema` named `<reversed group>.<version>.<Kind>`, with
//! `apiVersion`, `kind` and a `metadata` reference to ObjectMeta set, tagged with
//! `x-kubernetes-group-version-kind`; and its `<Kind>List`. `kubectl explain` finds a kind by that
//! tag and follows `properties` (and `$ref`s) down the field path.

use super::resources::ResourceType;
use serde_json::{Map, Value, json};

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

// The descriptions kube-apiserver gives the fields every kind has (`TypeMeta`, `ObjectMeta`).
const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. \
    Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. \
    More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers \
    may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: \
    https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const METADATA_DOC: &str = "Standard object's metadata. More info: \
    https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// `dev.secureapi.v1alpha1.SecretRef` for `secureapi.dev`, `v1alpha1`, `SecretRef`.
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A reference with a description beside it, wrapped in `allOf` as OpenAPI v3 needs.
fn described_reference(name: &str, description: &str) -> Value {
    json!({ "allOf": [reference(name)], "description": description })
}

fn gvk(t: &ResourceType, kind: &str) -> Value {
    json!([{ "group": t.group, "version": t.version, "kind": kind }])
}

/// The schemas of the custom resources among `types`, plus the metadata types they reference;
/// empty when there are none (built-in kinds are not described).
pub fn components<'a>(types: impl IntoIterator<Item = &'a ResourceType>) -> Map<String, Value> {
    let mut schemas = Map::new();
    for t in types {
        let Some(schema) = t.schema.as_ref() else { continue };
        let name = definition_name(&t.group, &t.version, &t.kind);
        schemas.insert(name.clone(), kind_schema(t, schema.document()));
        schemas.insert(format!("{name}List"), list_schema(t, &name));
    }
    if !schemas.is_empty() {
        schemas.insert(OBJECT_META.into(), object_meta());
        schemas.insert(LIST_META.into(), list_meta());
    }
    schemas
}

fn kind_schema(t: &ResourceType, open_api_v3_schema: &Value) -> Value {
    let mut schema = match open_api_v3_schema {
        Value::Object(object) => object.clone(),
        _ => Map::new(),
    };
    let properties = schema.entry("properties").or_insert_with(|| json!({}));
    if let Some(properties) = properties.as_object_mut() {
        properties.insert("apiVersion".into(), json!({ "type": "string", "description": API_VERSION_DOC }));
        properties.insert("kind".into(), json!({ "type": "string", "description": KIND_DOC }));
        properties.insert("metadata".into(), described_reference(OBJECT_META, METADATA_DOC));
    }
    schema.insert("x-kubernetes-group-version-kind".into(), gvk(t, &t.kind));
    Value::Object(schema)
}

fn list_schema(t: &ResourceType, item: &str) -> Value {
    let list_kind = format!("{}List", t.kind);
    let items = format!(
        "List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md",
        t.plural
    );
    json!({
        "description": format!("{list_kind} is a list of {}", t.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": { "type": "string", "description": API_VERSION_DOC },
            "items": { "type": "array", "items": reference(item), "description": items },
            "kind": { "type": "string", "description": KIND_DOC },
            "metadata": described_reference(LIST_META, METADATA_DOC),
        },
        "x-kubernetes-group-version-kind": gvk(t, &list_kind),
    })
}

/// ObjectMeta with the fields people set or read, shortened from kube-apiserver's descriptions.
fn object_meta() -> Value {
    let string = |description: &str| json!({ "type": "string", "description": description });
    let time = |description: &str| json!({ "type": "string", "format": "date-time", "description": description });
    let strings = |description: &str| json!({ "type": "object", "additionalProperties": { "type": "string", "default": "" }, "description": description });
    json!({
        "description": "ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.",
        "type": "object",
        "properties": {
            "annotations": strings("Annotations is an unstructured key value map stored with a resource that may be set by external tools to store and retrieve arbitrary metadata."),
            "creationTimestamp": time("CreationTimestamp is a timestamp representing the server time when this object was created."),
            "deletionTimestamp": time("DeletionTimestamp is RFC 3339 date and time at which this resource will be deleted."),
            "finalizers": {
                "type": "array",
                "items": { "type": "string", "default": "" },
                "x-kubernetes-list-type": "set",
                "description": "Must be empty before the object is deleted from the registry.",
            },
            "generateName": string("GenerateName is an optional prefix, used by the server, to generate a unique name ONLY IF the Name field has not been provided."),
            "generation": { "type": "integer", "format": "int64", "description": "A sequence number representing a specific generation of the desired state." },
            "labels": strings("Map of string keys and values that can be used to organize and categorize (scope and select) objects."),
            "name": string("Name must be unique within a namespace."),
            "namespace": string("Namespace defines the space within which each name must be unique."),
            "resourceVersion": string("An opaque value that represents the internal version of this object."),
            "uid": string("UID is the unique in time and space value for this object."),
        },
    })
}

fn list_meta() -> Value {
    json!({
        "description": "ListMeta describes metadata that synthetic resources must have, including lists and various status objects.",
        "type": "object",
        "properties": {
            "continue": { "type": "string", "description": "continue may be set if the user set a limit on the number of items returned." },
            "remainingItemCount": { "type": "integer", "format": "int64", "description": "The number of subsequent items in the list which are not included in this list response." },
            "resourceVersion": { "type": "string", "description": "String that identifies the server's internal version of this object." },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::kube::resources::parse_crd;

    fn widget() -> Result<std::sync::Arc<ResourceType>, String> {
        let crd = json!({
            "metadata": { "name": "widgets.secureapi.dev" },
            "spec": {
                "group": "secureapi.dev", "scope": "Namespaced",
                "names": { "plural": "widgets", "kind": "Widget" },
                "versions": [{
                    "name": "v1alpha1", "served": true, "storage": true,
                    "schema": { "openAPIV3Schema": { "type": "object", "description": "A widget.", "properties": {
                        "spec": { "type": "object", "properties": { "size": { "type": "integer", "description": "How big." } } },
                    } } },
                }],
            },
        });
        parse_crd(&crd)?.1.into_iter().next().ok_or_else(|| "no version".to_owned())
    }

    #[test]
    fn names_reverse_the_group() {
        assert_eq!(definition_name("secureapi.dev", "v1alpha1", "SecretRef"), "dev.secureapi.v1alpha1.SecretRef");
        assert_eq!(definition_name("apps", "v1", "Deployment"), "apps.v1.Deployment");
    }

    #[test]
    fn a_custom_kind_is_its_schema_tagged_with_its_gvk_and_metadata() -> Result<(), String> {
        let widget = widget()?;
        let schemas = components([widget.as_ref()]);
        let kind = &schemas["dev.secureapi.v1alpha1.Widget"];
        assert_eq!(
            kind["x-kubernetes-group-version-kind"][0],
            json!({ "group": "secureapi.dev", "version": "v1alpha1", "kind": "Widget" })
        );
        assert_eq!(kind["properties"]["spec"]["properties"]["size"]["description"], "How big.");
        assert_eq!(kind["properties"]["metadata"]["allOf"][0]["$ref"], format!("#/components/schemas/{OBJECT_META}"));
        assert_eq!(kind["properties"]["kind"]["type"], "string");
        let list = &schemas["dev.secureapi.v1alpha1.WidgetList"];
        assert_eq!(list["x-kubernetes-group-version-kind"][0]["kind"], "WidgetList");
        assert!(schemas.contains_key(OBJECT_META) && schemas.contains_key(LIST_META));
        Ok(())
    }

    #[test]
    fn built_in_kinds_have_no_schemas() {
        let registry = crate::emulator::kube::resources::Registry::builtin();
        assert!(components(registry.all().iter().map(|t| t.as_ref())).is_empty());
    }
}
