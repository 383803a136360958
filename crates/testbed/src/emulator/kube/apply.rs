//! Server-side apply (`application/apply-patch+yaml`) and the `metadata.managedFields` bookkeeping of
//! other writes, modelled on Kubernetes structured-merge-diff.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::fieldset::{Element, FieldSet, Path, display_path, fields_of, item_element, item_elements};
use super::managed::{APPLY, Identity, ManagedFields, UPDATE, list_of};
use super::patch::{ListType, ListTypes};

/// Which part of the object a request may touch: the whole object (no status subresource), everything but
/// `status` (main endpoint of a kind with a status subresource), or only `status` (the /status endpoint).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The whole object.
    Whole,
    /// Everything but `status`.
    MainOnly,
    /// Only `status`.
    StatusOnly,
}

impl Scope {
    fn subresource(self) -> Option<&'static str> {
        (self == Scope::StatusOnly).then_some("status")
    }

    fn covers(self, field: &str) -> bool {
        match self {
            Scope::Whole => true,
            Scope::MainOnly => field != "status",
            Scope::StatusOnly => field == "status",
        }
    }

    fn covers_path(self, path: &Path) -> bool {
        path.first().and_then(|element| element.strip_prefix("f:")).is_some_and(|field| self.covers(field))
    }
}

/// A field another manager owns with a different value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The owning manager's name.
    pub manager: String,
    /// The field, like `.spec.replicas` or `.spec.containers[name="app"].image`.
    pub field: String,
    /// The owner as kube-apiserver prints it: `"mgr"`, `"mgr" using apps/v1` (an Update entry),
    /// `"mgr" with subresource "status"`; a 409 cause's message is `conflict with <owner>`.
    pub owner: String,
}

/// A server-side apply request; the body is already parsed to JSON.
pub struct ApplyRequest<'a> {
    /// The stored object, or None to create it.
    pub live: Option<&'a Value>,
    /// The applied configuration.
    pub config: &'a Value,
    /// The field manager (`fieldManager` query parameter).
    pub manager: &'a str,
    /// Take over conflicting fields (`force=true`).
    pub force: bool,
    /// The apiVersion of the request.
    pub api_version: &'a str,
    /// The current time (RFC 3339), recorded in managedFields.
    pub now: &'a str,
    /// Which part of the object the endpoint may touch.
    pub scope: Scope,
    /// List merge strategies of the kind.
    pub types: &'a dyn ListTypes,
}

/// Applies `config` for `manager`: conflicts with other owners of changed fields (unless `force`, which takes
/// them over), removes fields the manager applied before but no longer applies and nobody else owns, merges
/// config into live and records the manager's Apply entry. Fields outside the scope are left untouched.
/// Returns the new object (metadata.managedFields included) or the conflicts.
pub fn apply(request: ApplyRequest<'_>) -> Result<Value, Vec<Conflict>> {
    let ApplyRequest { live, config, manager, force, api_version, now, scope, types } = request;
    let identity = Identity { manager, operation: APPLY, api_version, subresource: scope.subresource() };
    let empty = Value::Object(Map::new());
    let before = live.unwrap_or(&empty);
    let mut managed = ManagedFields::read(before);
    let tracked_config = tracked(config, scope);
    let applied = FieldSet::of(&fields_of(&tracked_config, types));
    let mut object = live.cloned().unwrap_or_else(|| skeleton(config));
    merge_value(&mut object, &tracked_config, &mut Vec::new(), types);
    prune(&mut object, &managed, &identity, &applied, scope, types);
    let changes = Changes::between(before, &object, scope, types);
    let conflicts = conflicts(&managed, &identity, &changes.changed);
    if !force && !conflicts.is_empty() {
        return Err(conflicts);
    }
    managed.release(&changes.changed.union(&changes.removed), Some(&identity));
    managed.assign(&identity, applied, now, object != *before);
    managed.write(&mut object);
    Ok(object)
}

/// After a non-apply write (create/update/patch) by `manager`: fields that changed or appeared move into the
/// manager's Update entry (for this scope) and out of other entries; deleted fields leave every entry.
/// On create (`old` = None) every tracked field of `new` goes to the manager. Mutates new's metadata.managedFields.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    now: &str,
    scope: Scope,
    types: &dyn ListTypes,
) {
    let identity = Identity { manager, operation: UPDATE, api_version, subresource: scope.subresource() };
    let empty = Value::Object(Map::new());
    let before = old.unwrap_or(&empty);
    let mut managed = base_managed_fields(before, new, scope);
    let changes = Changes::between(before, new, scope, types);
    managed.release(&changes.changed.union(&changes.removed), None);
    if !changes.changed.is_empty() {
        let owned = managed.fields_of(&identity).union(&changes.changed);
        managed.assign(&identity, owned, now, true);
    }
    managed.write(new);
}

/// A kube-apiserver style message for a 409: `Apply failed with 1 conflict: conflict with "mgr": .spec.x`, or
/// for several `Apply failed with 2 conflicts: conflicts with "mgr" using v1:\n- .spec.x\n- .spec.y`.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!("Apply failed with 1 conflict: conflict with {}: {}", only.owner, only.field);
    }
    let owners: BTreeSet<(&str, &str)> =
        conflicts.iter().map(|conflict| (conflict.manager.as_str(), conflict.owner.as_str())).collect();
    let mut lines = Vec::new();
    for (_, owner) in owners {
        lines.push(format!("conflicts with {owner}:"));
        let fields = conflicts.iter().filter(|conflict| conflict.owner == owner);
        lines.extend(fields.map(|conflict| format!("- {}", conflict.field)));
    }
    format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
}

/// Root fields never tracked.
const UNTRACKED: [&str; 2] = ["apiVersion", "kind"];
/// The only tracked metadata fields; the rest belongs to the server.
const TRACKED_METADATA: [&str; 4] = ["labels", "annotations", "finalizers", "ownerReferences"];

/// The part of an object that field ownership tracks within `scope`.
fn tracked(object: &Value, scope: Scope) -> Value {
    let Value::Object(fields) = object else {
        return Value::Object(Map::new());
    };
    let in_scope = fields.iter().filter(|(key, _)| scope.covers(key) && !UNTRACKED.contains(&key.as_str()));
    let kept = in_scope.filter_map(|(key, value)| {
        let value = if key == "metadata" { tracked_metadata(value)? } else { value.clone() };
        Some((key.clone(), value))
    });
    Value::Object(kept.collect())
}

fn tracked_metadata(metadata: &Value) -> Option<Value> {
    let fields = metadata.as_object()?;
    let kept: Map<String, Value> = fields
        .iter()
        .filter(|(key, _)| TRACKED_METADATA.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    (!kept.is_empty()).then_some(Value::Object(kept))
}

/// The identity of a new object, taken from the applied config.
fn skeleton(config: &Value) -> Value {
    let mut object = Map::new();
    copy_fields(config, &mut object, &UNTRACKED);
    let mut metadata = Map::new();
    if let Some(source) = config.get("metadata") {
        copy_fields(source, &mut metadata, &["name", "namespace", "generateName"]);
    }
    object.insert("metadata".to_string(), Value::Object(metadata));
    Value::Object(object)
}

fn copy_fields(from: &Value, to: &mut Map<String, Value>, keys: &[&str]) {
    for key in keys {
        if let Some(value) = from.get(*key) {
            to.insert(key.to_string(), value.clone());
        }
    }
}

/// Where a non-apply write's ownership starts from, like kube-apiserver: the request's managedFields when it
/// sets some (`[{}]` resets them), else the stored ones; the status endpoint always keeps the stored ones.
fn base_managed_fields(old: &Value, new: &Value, scope: Scope) -> ManagedFields {
    if scope == Scope::StatusOnly {
        return ManagedFields::read(old);
    }
    match list_of(new).map(Vec::as_slice) {
        Some([Value::Object(reset)]) if reset.is_empty() => ManagedFields::default(),
        Some(entries) if !entries.is_empty() => ManagedFields::read(new),
        _ => ManagedFields::read(old),
    }
}

/// Merges an apply config into an object: maps recursively, map lists by key, set lists as unions, atomic
/// lists and scalars replaced; a null removes the field.
fn merge_value<'c>(target: &mut Value, config: &'c Value, names: &mut Vec<&'c str>, types: &dyn ListTypes) {
    match (target, config) {
        (Value::Object(live), Value::Object(fields)) => merge_fields(live, fields, names, types),
        (Value::Array(live), Value::Array(items)) => merge_items(live, items, names, types),
        // A new map or list starts empty, so nulls and list identities in config are handled alike.
        (target, Value::Object(_)) => {
            *target = Value::Object(Map::new());
            merge_value(target, config, names, types);
        }
        (target, Value::Array(_)) => {
            *target = Value::Array(Vec::new());
            merge_value(target, config, names, types);
        }
        (target, config) => *target = config.clone(),
    }
}

fn merge_fields<'c>(
    live: &mut Map<String, Value>,
    config: &'c Map<String, Value>,
    names: &mut Vec<&'c str>,
    types: &dyn ListTypes,
) {
    for (key, value) in config {
        if value.is_null() {
            // The API server drops nulls, so an applied null removes the field.
            live.retain(|existing, _| existing != key);
            continue;
        }
        names.push(key);
        merge_value(live.entry(key).or_insert(Value::Null), value, names, types);
        names.pop();
    }
}

/// Merges list items by identity: shared items follow the config's order, live-only items keep their place.
fn merge_items<'c>(live: &mut Vec<Value>, config: &'c [Value], names: &mut Vec<&'c str>, types: &dyn ListTypes) {
    let list_type = types.list_type(names);
    let (Some(live_ids), Some(config_ids)) = (item_elements(live, &list_type), item_elements(config, &list_type))
    else {
        *live = config.to_vec();
        return;
    };
    let mut pending: Vec<Option<Value>> = std::mem::take(live).into_iter().map(Some).collect();
    let mut emitted: BTreeSet<&Element> = BTreeSet::new();
    let (mut next_live, mut next_config) = (0, 0);
    while next_live < live_ids.len() || next_config < config_ids.len() {
        if let Some(id) = live_ids.get(next_live) {
            let shared = config_ids.contains(id);
            if !shared || emitted.contains(id) {
                if !shared {
                    live.extend(pending[next_live].take());
                }
                next_live += 1;
                continue;
            }
        }
        let Some(id) = config_ids.get(next_config) else {
            next_live += 1;
            continue;
        };
        let position = live_ids.iter().position(|live_id| live_id == id);
        let mut item = position.and_then(|index| pending[index].take()).unwrap_or(Value::Null);
        merge_value(&mut item, &config[next_config], names, types);
        live.push(item);
        emitted.insert(id);
        next_config += 1;
    }
}

/// Removes the fields `identity` applied before but no longer applies, unless someone (the new config included)
/// still owns them or something under them.
fn prune(
    object: &mut Value,
    managed: &ManagedFields,
    identity: &Identity<'_>,
    applied: &FieldSet,
    scope: Scope,
    types: &dyn ListTypes,
) {
    let stale = managed.fields_of(identity).difference(applied).filter(|path| scope.covers_path(path));
    let owned = applied.union(&managed.fields_of_others(identity));
    let remover = Remover { owned: &owned, types };
    for path in stale.paths().filter(|path| !owned.covers(path)) {
        remover.remove(object, path, 0, &[], &mut Vec::new());
    }
}

/// Removes stale fields. A map or list that a removal leaves empty goes too (unless someone owns it as a
/// field of its own): kube-apiserver leaves neither `{}`/`[]` nor a `null` where a dropped field was.
struct Remover<'a> {
    owned: &'a FieldSet,
    types: &'a dyn ListTypes,
}

impl Remover<'_> {
    /// Removes the field at `path` below `path[..depth]`, which is `node`; `key_fields` are the key fields of
    /// the list item `node` is, which stay.
    fn remove<'p>(
        &self,
        node: &mut Value,
        path: &'p [Element],
        depth: usize,
        key_fields: &[String],
        names: &mut Vec<&'p str>,
    ) {
        let Some(element) = path.get(depth) else {
            return;
        };
        let last = depth + 1 == path.len();
        match (node, element.strip_prefix("f:")) {
            // A list item that stays keeps its key fields.
            (Value::Object(_), Some(name)) if last && key_fields.iter().any(|key| key == name) => {}
            (Value::Object(fields), Some(name)) if last => {
                fields.remove(name);
            }
            (Value::Object(fields), Some(name)) => {
                names.push(name);
                if let Some(child) = fields.get_mut(name) {
                    let had_content = !is_empty_container(child);
                    self.remove(child, path, depth + 1, &[], names);
                    if had_content && is_empty_container(child) && !self.owned.contains(&path[..=depth]) {
                        fields.remove(name);
                    }
                }
                names.pop();
            }
            (Value::Array(items), None) => self.remove_item(items, element, path, depth, names),
            _ => {}
        }
    }

    fn remove_item<'p>(
        &self,
        items: &mut Vec<Value>,
        element: &Element,
        path: &'p [Element],
        depth: usize,
        names: &mut Vec<&'p str>,
    ) {
        let list_type = self.types.list_type(names);
        let Some(index) = items.iter().position(|item| item_element(item, &list_type).as_ref() == Some(element)) else {
            return;
        };
        match (depth + 1 == path.len(), &list_type) {
            (true, _) => {
                items.remove(index);
            }
            (false, ListType::Map(keys)) => self.remove(&mut items[index], path, depth + 1, keys, names),
            (false, _) => self.remove(&mut items[index], path, depth + 1, &[], names),
        }
    }
}

fn is_empty_container(value: &Value) -> bool {
    match value {
        Value::Object(fields) => fields.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// How the tracked fields of an object changed.
struct Changes {
    /// Fields that appeared or got a different value.
    changed: FieldSet,
    /// Fields that disappeared.
    removed: FieldSet,
}

impl Changes {
    fn between(before: &Value, after: &Value, scope: Scope, types: &dyn ListTypes) -> Self {
        let (before, after) = (tracked(before, scope), tracked(after, scope));
        let (old, new) = (fields_of(&before, types), fields_of(&after, types));
        let changed = new
            .iter()
            .filter(|(path, leaf)| !old.get(*path).is_some_and(|before| same_leaf(*before, **leaf)))
            .map(|(path, _)| path.clone());
        let removed = old.keys().filter(|path| !new.contains_key(*path)).cloned();
        Changes { changed: changed.collect(), removed: removed.collect() }
    }
}

/// Whether two values are the same for server-side apply: numbers compare by value, an integer
/// equal to a float (`600` and `600.0`), as structured-merge-diff compares them; anything else as
/// JSON.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => x.as_f64() == y.as_f64(),
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same_value(x, y))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len() && xs.iter().all(|(key, x)| ys.get(key).is_some_and(|y| same_value(x, y)))
        }
        _ => a == b,
    }
}

fn same_leaf(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same_value(a, b),
        (a, b) => a == b,
    }
}

fn conflicts(managed: &ManagedFields, identity: &Identity<'_>, changed: &FieldSet) -> Vec<Conflict> {
    let others = managed.entries().iter().filter(|entry| !entry.is(identity));
    let conflicts = others.flat_map(|entry| {
        let owned = entry.fields.intersection(changed);
        let owner = entry.owner();
        let fields: Vec<String> = owned.paths().map(|path| display_path(path)).collect();
        fields.into_iter().map(move |field| Conflict { manager: entry.manager.clone(), field, owner: owner.clone() })
    });
    conflicts.collect()
}

#[cfg(test)]
mod tests {
    use super::super::patch::BuiltinListTypes;
    use super::*;
    use serde_json::json;

    const NOW: &str = "2024-01-01T00:00:00Z";
    const LATER: &str = "2024-01-02T00:00:00Z";

    fn deployment(spec: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "ns"}, "spec": spec})
    }

    fn request<'a>(live: Option<&'a Value>, config: &'a Value, manager: &'a str) -> ApplyRequest<'a> {
        ApplyRequest {
            live,
            config,
            manager,
            force: false,
            api_version: "apps/v1",
            now: NOW,
            scope: Scope::Whole,
            types: &BuiltinListTypes,
        }
    }

    fn apply_as(live: Option<&Value>, config: &Value, manager: &str) -> Result<Value, String> {
        apply(request(live, config, manager)).map_err(|conflicts| conflict_message(&conflicts))
    }

    /// The fieldsV1 of `manager`'s entries, in managedFields order.
    fn owned_by(object: &Value, manager: &str) -> Vec<Value> {
        let entries = list_of(object).into_iter().flatten();
        entries.filter(|entry| entry["manager"] == manager).map(|entry| entry["fieldsV1"].clone()).collect()
    }

    fn update_as(old: &Value, new: &mut Value, manager: &str) {
        record_update(Some(old), new, manager, "apps/v1", LATER, Scope::Whole, &BuiltinListTypes);
    }

    #[test]
    fn first_apply_creates_object_with_managed_fields() -> Result<(), String> {
        let config =
            deployment(json!({"replicas": 2, "template": {"spec": {"containers": [{"name": "app", "image": "a:1"}]}}}));
        let object = apply_as(None, &config, "op")?;
        assert_eq!(object["spec"], config["spec"]);
        assert_eq!(object["metadata"]["name"], json!("web"));
        let expected = json!([{"manager": "op", "operation": "Apply", "apiVersion": "apps/v1", "time": NOW,
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}}}]);
        assert_eq!(object["metadata"]["managedFields"], expected);
        Ok(())
    }

    #[test]
    fn reapplying_identical_config_is_byte_identical() -> Result<(), String> {
        let config =
            deployment(json!({"replicas": 2, "template": {"spec": {"containers": [{"name": "app", "image": "a:1"}]}}}));
        let first = apply_as(None, &config, "op")?;
        let second = apply(ApplyRequest { now: LATER, ..request(Some(&first), &config, "op") })
            .map_err(|conflicts| conflict_message(&conflicts))?;
        assert_eq!(serde_json::to_string(&first).ok(), serde_json::to_string(&second).ok());
        Ok(())
    }

    #[test]
    fn changed_apply_refreshes_time() -> Result<(), String> {
        let first = apply_as(None, &deployment(json!({"replicas": 2})), "op")?;
        let config = deployment(json!({"replicas": 3}));
        let second = apply(ApplyRequest { now: LATER, ..request(Some(&first), &config, "op") })
            .map_err(|conflicts| conflict_message(&conflicts))?;
        assert_eq!(second["metadata"]["managedFields"][0]["time"], json!(LATER));
        Ok(())
    }

    #[test]
    fn disjoint_managers_coexist() -> Result<(), String> {
        let first = apply_as(None, &deployment(json!({"replicas": 2})), "a")?;
        let second = apply_as(Some(&first), &deployment(json!({"paused": true})), "b")?;
        assert_eq!(second["spec"], json!({"replicas": 2, "paused": true}));
        assert_eq!(owned_by(&second, "a"), vec![json!({"f:spec": {"f:replicas": {}}})]);
        assert_eq!(owned_by(&second, "b"), vec![json!({"f:spec": {"f:paused": {}}})]);
        Ok(())
    }

    #[test]
    fn same_value_is_shared_without_conflict() -> Result<(), String> {
        let first = apply_as(None, &deployment(json!({"replicas": 2})), "a")?;
        let second = apply_as(Some(&first), &deployment(json!({"replicas": 2})), "b")?;
        assert_eq!(owned_by(&second, "a"), owned_by(&second, "b"));
        assert_eq!(owned_by(&second, "a").len(), 1);
        Ok(())
    }

    #[test]
    fn an_integer_and_an_equal_float_are_the_same_value() -> Result<(), String> {
        // A CRD created with `maximum: 600` and applied from YAML with `maximum: 600.0` (an
        // atomic list holds both): no change, so no conflict with the creator.
        let first = apply_as(None, &deployment(json!({"template": {"items": [{"maximum": 600}]}})), "a")?;
        let same = deployment(json!({"template": {"items": [{"maximum": 600.0}]}}));
        assert!(apply(request(Some(&first), &same, "b")).is_ok());
        let other = deployment(json!({"template": {"items": [{"maximum": 600.5}]}}));
        assert_eq!(apply(request(Some(&first), &other, "b")).map_err(|c| c.len()).err(), Some(1));
        assert!(same_value(&json!([1, {"a": 2.0}]), &json!([1.0, {"a": 2}])));
        assert!(!same_value(&json!({"a": 1}), &json!({"a": 1, "b": 1})));
        assert!(!same_value(&json!("1"), &json!(1)));
        Ok(())
    }

    #[test]
    fn different_value_conflicts() -> Result<(), String> {
        let first = apply_as(None, &deployment(json!({"replicas": 2})), "a")?;
        let config = deployment(json!({"replicas": 3}));
        let conflicts = apply(request(Some(&first), &config, "b")).err();
        let expected = Conflict { manager: "a".into(), field: ".spec.replicas".into(), owner: "\"a\"".into() };
        assert_eq!(conflicts, Some(vec![expected]));
        Ok(())
    }

    #[test]
    fn force_takes_over_conflicting_field() -> Result<(), String> {
        let first = apply_as(None, &deployment(json!({"replicas": 2})), "a")?;
        let config = deployment(json!({"replicas": 3}));
        let second = apply(ApplyRequest { force: true, ..request(Some(&first), &config, "b") })
            .map_err(|conflicts| conflict_message(&conflicts))?;
        assert_eq!(second["spec"]["replicas"], json!(3));
        assert!(owned_by(&second, "a").is_empty());
        assert_eq!(owned_by(&second, "b"), vec![json!({"f:spec": {"f:replicas": {}}})]);
        Ok(())
    }

    #[test]
    fn field_no_longer_applied_is_removed() -> Result<(), String> {
        let first = apply_as(None, &deployment(json!({"replicas": 2, "paused": true})), "a")?;
        let second = apply_as(Some(&first), &deployment(json!({"replicas": 2})), "a")?;
        assert_eq!(second["spec"], json!({"replicas": 2}));
        Ok(())
    }

    #[test]
    fn list_no_longer_applied_is_removed_without_a_null() -> Result<(), String> {
        let with_ports = json!([{"name": "app", "image": "a:1", "ports": [{"containerPort": 80}]}]);
        let template = |containers: Value| deployment(json!({"template": {"spec": {"containers": containers}}}));
        let first = apply_as(None, &template(with_ports), "a")?;
        let without_ports = json!([{"name": "app", "image": "a:1"}]);
        let second = apply_as(Some(&first), &template(without_ports.clone()), "a")?;
        assert_eq!(second["spec"]["template"]["spec"]["containers"], without_ports);
        Ok(())
    }

    #[test]
    fn map_emptied_by_a_removal_is_removed() -> Result<(), String> {
        let config_map = |metadata: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata});
        let first = apply_as(None, &config_map(json!({"name": "x", "labels": {"app": "web"}})), "a")?;
        let second = apply_as(Some(&first), &config_map(json!({"name": "x"})), "a")?;
        assert_eq!(second["metadata"].get("labels"), None);
        Ok(())
    }

    #[test]
    fn field_no_longer_applied_stays_while_another_manager_owns_it() -> Result<(), String> {
        let first = apply_as(None, &deployment(json!({"replicas": 2, "paused": true})), "a")?;
        let second = apply_as(Some(&first), &deployment(json!({"paused": true})), "b")?;
        let third = apply_as(Some(&second), &deployment(json!({"replicas": 2})), "a")?;
        assert_eq!(third["spec"], json!({"replicas": 2, "paused": true}));
        assert_eq!(owned_by(&third, "b"), vec![json!({"f:spec": {"f:paused": {}}})]);
        Ok(())
    }

    #[test]
    fn map_list_items_merge_by_key_and_dropped_items_are_removed() -> Result<(), String> {
        let containers = json!([
            {"name": "app", "image": "a:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "sidecar", "image": "s:1"}
        ]);
        let first = apply_as(None, &deployment(json!({"template": {"spec": {"containers": containers}}})), "a")?;
        let containers = json!([{"name": "app", "image": "a:2", "env": [{"name": "A", "value": "1"}]}]);
        let second =
            apply_as(Some(&first), &deployment(json!({"template": {"spec": {"containers": containers}}})), "a")?;
        assert_eq!(second["spec"]["template"]["spec"]["containers"], containers);
        Ok(())
    }

    #[test]
    fn map_list_items_of_different_managers_coexist() -> Result<(), String> {
        let app = json!({"template": {"spec": {"containers": [{"name": "app", "image": "a:1"}]}}});
        let sidecar = json!({"template": {"spec": {"containers": [{"name": "sidecar", "image": "s:1"}]}}});
        let first = apply_as(None, &deployment(app), "a")?;
        let second = apply_as(Some(&first), &deployment(sidecar), "b")?;
        let names: Vec<&Value> = second["spec"]["template"]["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|container| &container["name"])
            .collect();
        assert_eq!(names, vec![&json!("app"), &json!("sidecar")]);
        Ok(())
    }

    #[test]
    fn list_item_kept_for_another_owner_keeps_its_key_fields() -> Result<(), String> {
        let app = json!({"template": {"spec": {"containers": [{"name": "app", "image": "a:1"}]}}});
        let live = apply_as(None, &deployment(app), "a")?;
        let mut edited = live.clone();
        edited["spec"]["template"]["spec"]["containers"][0]["env"] = json!([{"name": "X", "value": "1"}]);
        update_as(&live, &mut edited, "b");
        let object = apply_as(Some(&edited), &deployment(json!({"replicas": 1})), "a")?;
        let expected = json!([{"name": "app", "env": [{"name": "X", "value": "1"}]}]);
        assert_eq!(object["spec"]["template"]["spec"]["containers"], expected);
        Ok(())
    }

    #[test]
    fn set_list_items_union_and_dropped_values_are_removed() -> Result<(), String> {
        let with = |finalizer: &str| json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x", "finalizers": [finalizer]}});
        let first = apply_as(None, &with("a/x"), "a")?;
        let second = apply_as(Some(&first), &with("b/y"), "b")?;
        assert_eq!(second["metadata"]["finalizers"], json!(["a/x", "b/y"]));
        let third = apply_as(Some(&second), &json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"}}), "a")?;
        assert_eq!(third["metadata"]["finalizers"], json!(["b/y"]));
        Ok(())
    }

    #[test]
    fn status_only_apply_touches_only_status() -> Result<(), String> {
        let live = apply_as(None, &deployment(json!({"replicas": 2})), "a")?;
        let mut config = deployment(json!({"replicas": 9}));
        config["status"] = json!({"readyReplicas": 1});
        let object = apply(ApplyRequest { scope: Scope::StatusOnly, ..request(Some(&live), &config, "ctrl") })
            .map_err(|conflicts| conflict_message(&conflicts))?;
        assert_eq!(object["spec"], json!({"replicas": 2}));
        assert_eq!(object["status"], json!({"readyReplicas": 1}));
        let entries = list_of(&object).cloned().unwrap_or_default();
        let status_entry = entries.iter().find(|entry| entry["manager"] == "ctrl");
        assert_eq!(status_entry.map(|entry| &entry["subresource"]), Some(&json!("status")));
        assert_eq!(owned_by(&object, "ctrl"), vec![json!({"f:status": {"f:readyReplicas": {}}})]);
        Ok(())
    }

    #[test]
    fn main_only_apply_ignores_status() -> Result<(), String> {
        let mut live = deployment(json!({"replicas": 2}));
        live["status"] = json!({"readyReplicas": 1});
        let mut config = deployment(json!({"replicas": 2}));
        config["status"] = json!({"readyReplicas": 5});
        let object = apply(ApplyRequest { scope: Scope::MainOnly, ..request(Some(&live), &config, "a") })
            .map_err(|conflicts| conflict_message(&conflicts))?;
        assert_eq!(object["status"], json!({"readyReplicas": 1}));
        assert_eq!(owned_by(&object, "a"), vec![json!({"f:spec": {"f:replicas": {}}})]);
        Ok(())
    }

    #[test]
    fn record_update_on_create_owns_every_tracked_field() {
        let mut object = deployment(json!({"replicas": 1}));
        object["metadata"]["labels"] = json!({"app": "web"});
        record_update(None, &mut object, "kubectl-create", "apps/v1", NOW, Scope::Whole, &BuiltinListTypes);
        let expected = json!({"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:replicas": {}}});
        assert_eq!(owned_by(&object, "kubectl-create"), vec![expected]);
        assert_eq!(object["metadata"]["managedFields"][0]["operation"], json!("Update"));
    }

    #[test]
    fn record_update_moves_ownership_so_apply_conflicts() -> Result<(), String> {
        let live = apply_as(None, &deployment(json!({"replicas": 2})), "a")?;
        let mut scaled = live.clone();
        scaled["spec"]["replicas"] = json!(5);
        update_as(&live, &mut scaled, "hpa");
        assert!(owned_by(&scaled, "a").is_empty());
        let message = apply_as(Some(&scaled), &deployment(json!({"replicas": 2})), "a").err();
        assert_eq!(
            message.as_deref(),
            Some("Apply failed with 1 conflict: conflict with \"hpa\" using apps/v1: .spec.replicas")
        );
        Ok(())
    }

    #[test]
    fn record_update_removes_deleted_fields_from_every_set() -> Result<(), String> {
        let live = apply_as(None, &deployment(json!({"replicas": 2, "paused": true})), "a")?;
        let mut edited = live.clone();
        edited["spec"] = json!({"replicas": 2});
        update_as(&live, &mut edited, "editor");
        assert_eq!(owned_by(&edited, "a"), vec![json!({"f:spec": {"f:replicas": {}}})]);
        assert!(owned_by(&edited, "editor").is_empty());
        Ok(())
    }

    #[test]
    fn conflict_message_for_one_conflict() {
        let conflict = Conflict { manager: "m".into(), field: ".spec.x".into(), owner: "\"m\"".into() };
        assert_eq!(conflict_message(&[conflict]), "Apply failed with 1 conflict: conflict with \"m\": .spec.x");
    }

    #[test]
    fn conflict_message_groups_conflicts_by_owner() {
        let conflict = |manager: &str, field: &str, owner: &str| Conflict {
            manager: manager.into(),
            field: field.into(),
            owner: owner.into(),
        };
        let conflicts = [
            conflict("z", ".spec.a", "\"z\""),
            conflict("k", ".spec.b", "\"k\" using apps/v1"),
            conflict("z", ".spec.c", "\"z\""),
        ];
        let expected = "Apply failed with 3 conflicts: conflicts with \"k\" using apps/v1:\n- .spec.b\n\
                        conflicts with \"z\":\n- .spec.a\n- .spec.c";
        assert_eq!(conflict_message(&conflicts), expected);
    }
}
