//! PATCH bodies (JSON merge patch, JSON patch, strategic merge patch) and the list merge
//! strategies they share with server-side apply.

use serde_json::{Map, Value};

/// How a list merges: replaced whole, merged as a set of scalars, or merged as a map keyed by item fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListType {
    /// The list is one value: a patch or apply replaces it whole.
    Atomic,
    /// The list is a set of scalars: merges are unions.
    Set,
    /// The list is a map of objects keyed by these fields: items merge by key.
    Map(Vec<String>),
}

/// Tells the list type of the list found at a field path (object keys from the root, list indices omitted),
/// e.g. `["spec","template","spec","containers"]`.
pub trait ListTypes {
    /// The list type of the list at `path`.
    fn list_type(&self, path: &[&str]) -> ListType;
}

/// List types of built-in kinds (core, apps, ...): the merge keys of k8s.io/api, told by the field's name.
pub struct BuiltinListTypes;

/// Lists of containers, whose `ports` are keyed by `containerPort`.
const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// Lists keyed by `name` wherever they appear.
const NAME_KEYED: [&str; 8] = [
    "containers",
    "initContainers",
    "ephemeralContainers",
    "volumes",
    "imagePullSecrets",
    "env",
    "resourceClaims",
    "schedulingGates",
];

impl ListTypes for BuiltinListTypes {
    fn list_type(&self, path: &[&str]) -> ListType {
        let Some((last, parents)) = path.split_last() else {
            return ListType::Atomic;
        };
        match *last {
            name if NAME_KEYED.contains(&name) => keyed(&["name"]),
            "hostAliases" => keyed(&["ip"]),
            "volumeMounts" => keyed(&["mountPath"]),
            "volumeDevices" => keyed(&["devicePath"]),
            "topologySpreadConstraints" => keyed(&["topologyKey", "whenUnsatisfiable"]),
            "ports" => ports_list_type(parents),
            "conditions" => keyed(&["type"]),
            "ownerReferences" => keyed(&["uid"]),
            "finalizers" => ListType::Set,
            _ => ListType::Atomic,
        }
    }
}

/// `ports` of a container are keyed by containerPort, a Service's `spec.ports` by port; others are atomic.
fn ports_list_type(parents: &[&str]) -> ListType {
    match parents {
        [.., parent] if CONTAINER_LISTS.contains(parent) => keyed(&["containerPort", "protocol"]),
        ["spec"] => keyed(&["port", "protocol"]),
        _ => ListType::Atomic,
    }
}

fn keyed(keys: &[&str]) -> ListType {
    ListType::Map(keys.iter().map(|key| key.to_string()).collect())
}

/// List types of a custom resource, read from its CRD's `openAPIV3Schema`
/// (`x-kubernetes-list-type` / `x-kubernetes-list-map-keys`), plus the metadata lists the schema leaves out.
pub struct SchemaListTypes {
    schema: Value,
}

impl SchemaListTypes {
    /// List types from an `openAPIV3Schema` value.
    pub fn new(schema: Value) -> Self {
        Self { schema }
    }
}

impl ListTypes for SchemaListTypes {
    fn list_type(&self, path: &[&str]) -> ListType {
        if path.first() == Some(&"metadata") {
            return metadata_list_type(path);
        }
        schema_at(&self.schema, path).map_or(ListType::Atomic, schema_list_type)
    }
}

/// CRD schemas do not describe metadata, so its lists are typed as in ObjectMeta.
fn metadata_list_type(path: &[&str]) -> ListType {
    match path {
        ["metadata", "finalizers"] => ListType::Set,
        ["metadata", "ownerReferences"] => keyed(&["uid"]),
        _ => ListType::Atomic,
    }
}

/// The schema of the field at `path`, stepping through list `items` since paths omit indices.
fn schema_at<'s>(schema: &'s Value, path: &[&str]) -> Option<&'s Value> {
    path.iter().try_fold(schema, |node, field| child_schema(items_of(node), field))
}

fn items_of(node: &Value) -> &Value {
    node.get("items").filter(|items| items.is_object()).unwrap_or(node)
}

fn child_schema<'s>(node: &'s Value, field: &str) -> Option<&'s Value> {
    let property = node.get("properties").and_then(|properties| properties.get(field));
    property.or_else(|| node.get("additionalProperties").filter(|schema| schema.is_object()))
}

fn schema_list_type(node: &Value) -> ListType {
    match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => ListType::Set,
        Some("map") => {
            let keys = node.get("x-kubernetes-list-map-keys").and_then(Value::as_array);
            let keys: Vec<String> = keys.into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect();
            if keys.is_empty() { ListType::Atomic } else { ListType::Map(keys) }
        }
        _ => ListType::Atomic,
    }
}

/// The key of a map-list item: its key fields that are present, or None when the item is not an object
/// or lacks the first key field. A missing `protocol` counts as `"TCP"`, the API server's default.
pub fn merge_key(item: &Value, keys: &[String]) -> Option<Vec<(String, Value)>> {
    let fields = item.as_object()?;
    fields.get(keys.first()?)?;
    Some(keys.iter().filter_map(|name| key_field(fields, name).map(|value| (name.clone(), value))).collect())
}

fn key_field(fields: &Map<String, Value>, name: &str) -> Option<Value> {
    match fields.get(name) {
        Some(value) => Some(value.clone()),
        None if name == "protocol" => Some(Value::from("TCP")),
        None => None,
    }
}

/// Why a PATCH body could not be applied.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchError {
    /// The patch document is malformed (HTTP 400 BadRequest).
    BadRequest(String),
    /// A JSON-patch `test` failed or a path does not exist (HTTP 422 Invalid, like kube-apiserver).
    Unprocessable(String),
}

impl std::fmt::Display for PatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PatchError::BadRequest(message) | PatchError::Unprocessable(message) => f.write_str(message),
        }
    }
}

/// RFC 7386 JSON merge patch (`application/merge-patch+json`): null deletes.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let mut document = target.clone();
    json_patch::merge(&mut document, patch);
    document
}

/// RFC 6902 JSON patch (`application/json-patch+json`): the body must be an array of operations
/// (add/remove/replace/move/copy/test).
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    if !patch.is_array() {
        return Err(PatchError::BadRequest("json patch must be an array of operations".to_string()));
    }
    let operations: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|error| PatchError::BadRequest(format!("invalid json patch: {error}")))?;
    let mut document = target.clone();
    for operation in operations.0 {
        // As in kube-apiserver (evanphx/json-patch), testing a missing path for null succeeds:
        // kube-rs's finalizer helper relies on it when an object has no finalizers yet.
        if let json_patch::PatchOperation::Test(test) = &operation
            && test.value.is_null()
            && document.pointer(test.path.as_str()).is_none()
        {
            continue;
        }
        json_patch::patch(&mut document, &[operation]).map_err(|error| PatchError::Unprocessable(error.to_string()))?;
    }
    Ok(document)
}

const PATCH_DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";

/// Strategic merge patch (`application/strategic-merge-patch+json`) for built-in kinds: maps merge
/// recursively, null deletes a key, lists merge per `types` (map lists by key, sets union; both
/// in kube-apiserver's order, see [`normalize_order`]; atomic lists replace), with the directives
/// `$patch: replace|delete`,
/// `$deleteFromPrimitiveList/<field>`, `$setElementOrder/<field>` and `$retainKeys`.
/// Directive keys never appear in the result.
pub fn strategic_merge_patch(target: &Value, patch: &Value, types: &dyn ListTypes) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::BadRequest("strategic merge patch must be a JSON object".to_string()));
    };
    let original = target.as_object().cloned().unwrap_or_default();
    merge_map(original, patch, &[], types).map(Value::Object)
}

fn is_directive(key: &str) -> bool {
    key == PATCH_DIRECTIVE
        || key == RETAIN_KEYS
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
        || key.starts_with(SET_ELEMENT_ORDER)
}

fn merge_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    path: &[&str],
    types: &dyn ListTypes,
) -> Result<Map<String, Value>, PatchError> {
    match patch.get(PATCH_DIRECTIVE).map(|directive| (directive.as_str(), directive)) {
        None | Some((Some("merge"), _)) => {}
        Some((Some("replace"), _)) => original = Map::new(),
        Some((Some("delete"), _)) => return Ok(Map::new()),
        Some((_, other)) => return Err(PatchError::BadRequest(format!("unknown patch type: {other} in map"))),
    }
    retain_keys(&mut original, patch.get(RETAIN_KEYS))?;
    for (key, values) in patch {
        if let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            delete_from_primitive_list(&mut original, field, values)?;
        }
    }
    // `$setElementOrder` orders a list against the list as it was before this patch.
    let before: Vec<(&str, Vec<Value>)> = patch
        .keys()
        .filter_map(|key| key.strip_prefix(SET_ELEMENT_ORDER))
        .map(|field| (field, original.get(field).and_then(Value::as_array).cloned().unwrap_or_default()))
        .collect();
    for (key, value) in patch.iter().filter(|(key, _)| !is_directive(key)) {
        merge_field(&mut original, key, value, path, types)?;
    }
    for (field, before) in before {
        let order = directive_list(&patch[&format!("{SET_ELEMENT_ORDER}{field}")], SET_ELEMENT_ORDER)?;
        let list_type = types.list_type(&[path, &[field]].concat());
        if let Some(Value::Array(items)) = original.get_mut(field) {
            *items = normalize_order(std::mem::take(items), order, &before, &list_type);
        }
    }
    Ok(original)
}

fn merge_field(
    original: &mut Map<String, Value>,
    key: &str,
    value: &Value,
    path: &[&str],
    types: &dyn ListTypes,
) -> Result<(), PatchError> {
    if value.is_null() {
        // retain keeps the other keys in place (a plain remove may swap them with preserve_order).
        original.retain(|existing, _| existing != key);
        return Ok(());
    }
    let field_path = [path, &[key]].concat();
    let slot = original.entry(key).or_insert(Value::Null);
    *slot = match (std::mem::take(slot), value) {
        (Value::Object(current), Value::Object(patch)) => Value::Object(merge_map(current, patch, &field_path, types)?),
        (_, Value::Object(patch)) => Value::Object(merge_map(Map::new(), patch, &field_path, types)?),
        (Value::Array(current), Value::Array(patch)) => Value::Array(merge_list(current, patch, &field_path, types)?),
        (_, Value::Array(patch)) => Value::Array(merge_list(Vec::new(), patch, &field_path, types)?),
        (_, scalar) => scalar.clone(),
    };
    Ok(())
}

fn item_directive(item: &Value) -> Option<&str> {
    item.get(PATCH_DIRECTIVE).and_then(Value::as_str)
}

fn merge_list(
    original: Vec<Value>,
    patch: &[Value],
    path: &[&str],
    types: &dyn ListTypes,
) -> Result<Vec<Value>, PatchError> {
    // Any `$patch: replace` item replaces the whole list with the other, directive-free items.
    if patch.iter().any(|item| item_directive(item) == Some("replace")) {
        return Ok(patch.iter().filter(|item| item_directive(item).is_none()).cloned().collect());
    }
    let list_type = types.list_type(path);
    let merged = match &list_type {
        ListType::Atomic => return Ok(patch.to_vec()),
        ListType::Set => union(original.clone(), patch),
        ListType::Map(keys) => merge_keyed_list(original.clone(), patch, keys, path, types)?,
    };
    Ok(normalize_order(merged, patch, &original, &list_type))
}

/// A merged list in kube-apiserver's order (apimachinery's `normalizeElementOrder`): the items
/// `order` names (the patch's, or its `$setElementOrder`) in that order, and the server's other
/// items in theirs, the two interleaved by their places in `original`. An item that `original`
/// has not (new from the patch) goes before the server's items still to place: a patch adding
/// one `env` entry puts it first.
fn normalize_order(merged: Vec<Value>, order: &[Value], original: &[Value], list_type: &ListType) -> Vec<Value> {
    let place = |list: &[Value], item: &Value| list.iter().position(|listed| same_item(listed, item, list_type));
    let (mut named, server_only): (Vec<Value>, Vec<Value>) =
        merged.into_iter().partition(|item| place(order, item).is_some());
    named.sort_by_key(|item| place(order, item));
    let mut result = Vec::with_capacity(named.len() + server_only.len());
    let (mut server_only, mut named) = (server_only.into_iter().peekable(), named.into_iter().peekable());
    loop {
        let server_first = match (server_only.peek(), named.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(left), Some(right)) => {
                matches!((place(original, left), place(original, right)), (Some(l), Some(r)) if l < r)
            }
        };
        result.extend(if server_first { server_only.next() } else { named.next() });
    }
    result
}

fn union(mut original: Vec<Value>, patch: &[Value]) -> Vec<Value> {
    for value in patch {
        if !original.contains(value) {
            original.push(value.clone());
        }
    }
    original
}

fn merge_keyed_list(
    mut result: Vec<Value>,
    patch: &[Value],
    keys: &[String],
    path: &[&str],
    types: &dyn ListTypes,
) -> Result<Vec<Value>, PatchError> {
    for item in patch {
        let (Value::Object(fields), Some(key)) = (item, merge_key(item, keys)) else {
            let first_key = keys.first().map_or("", String::as_str);
            return Err(PatchError::BadRequest(format!(
                "map: {item} does not contain declared merge key: {first_key}"
            )));
        };
        let position = result.iter().position(|existing| merge_key(existing, keys).as_ref() == Some(&key));
        match (item_directive(item), position) {
            (Some("delete"), _) => result.retain(|existing| merge_key(existing, keys).as_ref() != Some(&key)),
            (_, Some(index)) => {
                let current = std::mem::take(&mut result[index]).as_object().cloned().unwrap_or_default();
                result[index] = Value::Object(merge_map(current, fields, path, types)?);
            }
            (_, None) => result.push(Value::Object(merge_map(Map::new(), fields, path, types)?)),
        }
    }
    Ok(result)
}

fn directive_list<'p>(value: &'p Value, directive: &str) -> Result<&'p Vec<Value>, PatchError> {
    value.as_array().ok_or_else(|| PatchError::BadRequest(format!("{directive} must be a list, got {value}")))
}

fn retain_keys(original: &mut Map<String, Value>, keys: Option<&Value>) -> Result<(), PatchError> {
    let Some(keys) = keys else {
        return Ok(());
    };
    let keys = directive_list(keys, RETAIN_KEYS)?;
    original.retain(|key, _| keys.iter().any(|kept| kept.as_str() == Some(key)));
    Ok(())
}

fn delete_from_primitive_list(
    original: &mut Map<String, Value>,
    field: &str,
    values: &Value,
) -> Result<(), PatchError> {
    let values = directive_list(values, DELETE_FROM_PRIMITIVE_LIST)?;
    if let Some(Value::Array(items)) = original.get_mut(field) {
        items.retain(|item| !values.contains(item));
    }
    Ok(())
}

fn same_item(listed: &Value, item: &Value, list_type: &ListType) -> bool {
    match list_type {
        ListType::Map(keys) => merge_key(listed, keys).is_some_and(|key| merge_key(item, keys) == Some(key)),
        _ => listed == item,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"spec": {"containers": [
            {"name": "app", "image": "app:1", "args": ["a", "b"]},
            {"name": "sidecar", "image": "side:1"}
        ]}, "metadata": {"finalizers": ["a"], "labels": {"x": "1", "y": "2"}}})
    }

    fn smp(target: &Value, patch: Value) -> Result<Value, PatchError> {
        strategic_merge_patch(target, &patch, &BuiltinListTypes)
    }

    #[test]
    fn json_patch_test_of_a_missing_path_for_null_succeeds() {
        let patch = json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["x"]}
        ]);
        let result = json_patch(&json!({"metadata": {}}), &patch);
        assert_eq!(result, Ok(json!({"metadata": {"finalizers": ["x"]}})));
    }

    #[test]
    fn merge_patch_null_deletes_key() {
        let result = merge_patch(&json!({"a": 1, "b": {"c": 2, "d": 3}}), &json!({"a": null, "b": {"c": 5}}));
        assert_eq!(result, json!({"b": {"c": 5, "d": 3}}));
    }

    #[test]
    fn json_patch_applies_operations() -> Result<(), String> {
        let patch = json!([{"op": "replace", "path": "/a", "value": 2}, {"op": "add", "path": "/b/-", "value": 9}]);
        let result = json_patch(&json!({"a": 1, "b": [1]}), &patch).map_err(|e| e.to_string())?;
        assert_eq!(result, json!({"a": 2, "b": [1, 9]}));
        Ok(())
    }

    #[test]
    fn json_patch_rejects_non_array_body() {
        assert!(matches!(json_patch(&json!({}), &json!({"op": "add"})), Err(PatchError::BadRequest(_))));
    }

    #[test]
    fn json_patch_rejects_unknown_operation() {
        let patch = json!([{"op": "frobnicate", "path": "/a"}]);
        assert!(matches!(json_patch(&json!({}), &patch), Err(PatchError::BadRequest(_))));
    }

    #[test]
    fn json_patch_failed_test_is_unprocessable() {
        let patch = json!([{"op": "test", "path": "/a", "value": 2}]);
        assert!(matches!(json_patch(&json!({"a": 1}), &patch), Err(PatchError::Unprocessable(_))));
    }

    #[test]
    fn json_patch_missing_path_is_unprocessable() {
        let patch = json!([{"op": "remove", "path": "/missing"}]);
        assert!(matches!(json_patch(&json!({"a": 1}), &patch), Err(PatchError::Unprocessable(_))));
    }

    #[test]
    fn smp_merges_map_list_items_by_key() -> Result<(), PatchError> {
        let patch =
            json!({"spec": {"containers": [{"name": "sidecar", "image": "side:2"}, {"name": "new", "image": "n"}]}});
        let result = smp(&pod(), patch)?;
        let expected = json!([
            {"name": "app", "image": "app:1", "args": ["a", "b"]},
            {"name": "sidecar", "image": "side:2"},
            {"name": "new", "image": "n"}
        ]);
        assert_eq!(result["spec"]["containers"], expected);
        Ok(())
    }

    #[test]
    fn smp_replaces_atomic_lists() -> Result<(), PatchError> {
        let result = smp(&pod(), json!({"spec": {"containers": [{"name": "app", "args": ["c"]}]}}))?;
        assert_eq!(result["spec"]["containers"][0]["args"], json!(["c"]));
        Ok(())
    }

    #[test]
    fn smp_unions_set_lists() -> Result<(), PatchError> {
        let result = smp(&pod(), json!({"metadata": {"finalizers": ["b", "a"]}}))?;
        assert_eq!(result["metadata"]["finalizers"], json!(["b", "a"]), "the patch's order, as kube-apiserver");
        let result = smp(&pod(), json!({"metadata": {"finalizers": ["c"]}}))?;
        assert_eq!(result["metadata"]["finalizers"], json!(["c", "a"]), "a new value goes first");
        Ok(())
    }

    #[test]
    fn smp_null_deletes_key() -> Result<(), PatchError> {
        let result = smp(&pod(), json!({"metadata": {"labels": {"x": null}}}))?;
        assert_eq!(result["metadata"]["labels"], json!({"y": "2"}));
        Ok(())
    }

    #[test]
    fn smp_delete_directive_removes_list_item() -> Result<(), PatchError> {
        let result = smp(&pod(), json!({"spec": {"containers": [{"name": "app", "$patch": "delete"}]}}))?;
        assert_eq!(result["spec"]["containers"], json!([{"name": "sidecar", "image": "side:1"}]));
        Ok(())
    }

    #[test]
    fn smp_replace_directive_replaces_map() -> Result<(), PatchError> {
        let result = smp(&pod(), json!({"metadata": {"labels": {"$patch": "replace", "z": "3"}}}))?;
        assert_eq!(result["metadata"]["labels"], json!({"z": "3"}));
        Ok(())
    }

    #[test]
    fn smp_replace_directive_replaces_list() -> Result<(), PatchError> {
        let patch = json!({"spec": {"containers": [{"name": "only"}, {"$patch": "replace"}]}});
        let result = smp(&pod(), patch)?;
        assert_eq!(result["spec"]["containers"], json!([{"name": "only"}]));
        Ok(())
    }

    #[test]
    fn smp_delete_from_primitive_list_removes_values() -> Result<(), PatchError> {
        let target = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
        let result = smp(&target, json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}))?;
        assert_eq!(result, json!({"metadata": {"finalizers": ["a", "c"]}}));
        Ok(())
    }

    #[test]
    fn smp_orders_merged_lists_as_kube_apiserver_does() -> Result<(), PatchError> {
        let env = |names: &[&str]| -> Value { names.iter().map(|n| json!({"name": n, "value": n})).collect() };
        let target = json!({"spec": {"containers": [{"name": "app", "env": env(&["X", "A", "Y"])}]}});
        let patched = |patch: Value| -> Result<Vec<String>, PatchError> {
            let patch = json!({"spec": {"containers": [{"name": "app", "env": patch}]}});
            let result = smp(&target, patch)?;
            let items = result["spec"]["containers"][0]["env"].as_array().cloned().unwrap_or_default();
            Ok(items.iter().map(|item| item["name"].as_str().unwrap_or_default().to_owned()).collect())
        };
        // One new entry goes first (a real server does this; appending would be simpler).
        assert_eq!(patched(env(&["N"]))?, ["N", "X", "A", "Y"]);
        // The patch's items keep their order; the server's others keep their places around them.
        assert_eq!(patched(env(&["A", "N"]))?, ["X", "A", "N", "Y"]);
        assert_eq!(patched(env(&["Y", "X"]))?, ["A", "Y", "X"]);
        Ok(())
    }

    #[test]
    fn smp_set_element_order_reorders_merged_list() -> Result<(), PatchError> {
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
            "containers": [{"name": "app", "image": "app:2"}]
        }});
        let result = smp(&pod(), patch)?;
        assert_eq!(result["spec"]["containers"][0]["name"], json!("sidecar"));
        assert_eq!(result["spec"]["containers"][1]["image"], json!("app:2"));
        assert!(result["spec"].get("$setElementOrder/containers").is_none());
        Ok(())
    }

    #[test]
    fn smp_retain_keys_drops_unlisted_keys() -> Result<(), PatchError> {
        let target = json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}});
        let result = smp(&target, json!({"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}))?;
        assert_eq!(result, json!({"strategy": {"type": "Recreate"}}));
        Ok(())
    }

    #[test]
    fn smp_directives_never_appear_in_new_fields() -> Result<(), PatchError> {
        let patch =
            json!({"spec": {"extra": {"$patch": "replace", "a": 1}, "containers": [{"name": "n", "$patch": "merge"}]}});
        let result = smp(&json!({}), patch)?;
        assert_eq!(result, json!({"spec": {"extra": {"a": 1}, "containers": [{"name": "n"}]}}));
        Ok(())
    }

    #[test]
    fn smp_rejects_non_object_patch_and_keyless_items() {
        assert!(matches!(smp(&pod(), json!([1])), Err(PatchError::BadRequest(_))));
        let keyless = json!({"spec": {"containers": [{"image": "x"}]}});
        assert!(matches!(smp(&pod(), keyless), Err(PatchError::BadRequest(_))));
    }

    #[test]
    fn builtin_ports_are_keyed_by_container_or_service_port() {
        let container = BuiltinListTypes.list_type(&["spec", "template", "spec", "containers", "ports"]);
        assert_eq!(container, keyed(&["containerPort", "protocol"]));
        assert_eq!(BuiltinListTypes.list_type(&["spec", "ports"]), keyed(&["port", "protocol"]));
        assert_eq!(BuiltinListTypes.list_type(&["spec", "containers", "args"]), ListType::Atomic);
    }

    #[test]
    fn merge_key_defaults_protocol_to_tcp() {
        let keys = vec!["containerPort".to_string(), "protocol".to_string()];
        let expected = vec![("containerPort".to_string(), json!(80)), ("protocol".to_string(), json!("TCP"))];
        assert_eq!(merge_key(&json!({"containerPort": 80}), &keys), Some(expected));
        assert_eq!(merge_key(&json!({"protocol": "UDP"}), &keys), None);
    }

    #[test]
    fn schema_list_types_read_crd_extensions() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
                "items": {"type": "object", "properties": {"tags": {"type": "array", "x-kubernetes-list-type": "set"}}}},
            "plain": {"type": "array"}
        }}}});
        let types = SchemaListTypes::new(schema);
        assert_eq!(types.list_type(&["spec", "items"]), keyed(&["id"]));
        assert_eq!(types.list_type(&["spec", "items", "tags"]), ListType::Set);
        assert_eq!(types.list_type(&["spec", "plain"]), ListType::Atomic);
        assert_eq!(types.list_type(&["spec", "unknown"]), ListType::Atomic);
    }

    #[test]
    fn schema_list_types_cover_metadata_lists() {
        let types = SchemaListTypes::new(json!({"type": "object"}));
        assert_eq!(types.list_type(&["metadata", "finalizers"]), ListType::Set);
        assert_eq!(types.list_type(&["metadata", "ownerReferences"]), keyed(&["uid"]));
        assert_eq!(types.list_type(&["metadata", "managedFields"]), ListType::Atomic);
    }
}
