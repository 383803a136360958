//! Field sets of server-side apply (structured-merge-diff's `fieldpath.Set`), the paths of an object's
//! fields, and their `FieldsV1` encoding in `metadata.managedFields`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::patch::{ListType, ListTypes, merge_key};

/// One step of a field path in `FieldsV1` form: `f:<field>`, `k:<key json>` (map-list item) or `v:<value json>` (set item).
pub type Element = String;

/// A field path from the object root.
pub type Path = Vec<Element>;

/// The fields of an object by path, each with its leaf value (None for a map-list item, which has fields of its own).
pub type Fields<'v> = BTreeMap<Path, Option<&'v Value>>;

/// A set of field paths; each path is a member, its ancestors are only containers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet(BTreeSet<Path>);

impl FromIterator<Path> for FieldSet {
    fn from_iter<I: IntoIterator<Item = Path>>(paths: I) -> Self {
        FieldSet(paths.into_iter().collect())
    }
}

impl FieldSet {
    /// The set of the paths of `fields`.
    pub fn of(fields: &Fields<'_>) -> Self {
        fields.keys().cloned().collect()
    }

    /// Whether the set has no path.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The member paths, in order (a path comes right before its descendants).
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.0.iter()
    }

    /// Whether `path` itself is a member.
    pub fn contains(&self, path: &[Element]) -> bool {
        self.0.contains(path)
    }

    /// Whether `path` or one of its descendants is a member.
    pub fn covers(&self, path: &[Element]) -> bool {
        // Paths sharing a prefix sort contiguously right after the prefix itself.
        self.0.range(path.to_vec()..).next().is_some_and(|member| member.starts_with(path))
    }

    /// Paths in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        self.0.union(&other.0).cloned().collect()
    }

    /// Paths of this set that are not in `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        self.0.difference(&other.0).cloned().collect()
    }

    /// Paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        self.0.intersection(&other.0).cloned().collect()
    }

    /// The paths for which `keep` holds.
    pub fn filter(&self, keep: impl Fn(&Path) -> bool) -> FieldSet {
        self.0.iter().filter(|path| keep(path)).cloned().collect()
    }

    /// Decodes a `fieldsV1` value: `{}` or a `"."` key marks a member.
    pub fn from_fields_v1(value: &Value) -> Self {
        let mut set = FieldSet::default();
        decode_node(value, &mut Vec::new(), &mut set);
        set
    }

    /// Encodes the set as a `fieldsV1` value.
    pub fn to_fields_v1(&self) -> Value {
        let mut root = Node::default();
        for path in &self.0 {
            path.iter().fold(&mut root, |node, element| node.children.entry(element.clone()).or_default()).member =
                true;
        }
        root.encode()
    }
}

fn decode_node(node: &Value, path: &mut Path, set: &mut FieldSet) {
    let Value::Object(children) = node else {
        return;
    };
    if !path.is_empty() && (children.is_empty() || children.contains_key(".")) {
        set.0.insert(path.clone());
    }
    for (element, child) in children.iter().filter(|(element, _)| element.as_str() != ".") {
        path.push(element.clone());
        decode_node(child, path, set);
        path.pop();
    }
}

/// A `fieldsV1` tree under construction.
#[derive(Default)]
struct Node {
    member: bool,
    children: BTreeMap<Element, Node>,
}

impl Node {
    fn encode(&self) -> Value {
        let mut fields = Map::new();
        if self.member && !self.children.is_empty() {
            fields.insert(".".to_string(), Value::Object(Map::new()));
        }
        for (element, child) in &self.children {
            fields.insert(element.clone(), child.encode());
        }
        Value::Object(fields)
    }
}

/// The path element of an object field.
fn field_element(name: &str) -> Element {
    format!("f:{name}")
}

/// The path element of a list item: `v:` for a set item, `k:` with the sorted compact key JSON for a
/// map-list item; None for an atomic list or an item without its key.
pub fn item_element(item: &Value, list_type: &ListType) -> Option<Element> {
    match list_type {
        ListType::Atomic => None,
        ListType::Set => Some(format!("v:{item}")),
        ListType::Map(keys) => merge_key(item, keys).map(|key| format!("k:{}", key_json(key))),
    }
}

fn key_json(mut key: Vec<(String, Value)>) -> String {
    key.sort_by(|left, right| left.0.cmp(&right.0));
    let fields: Vec<String> =
        key.iter().map(|(name, value)| format!("{}:{value}", Value::from(name.as_str()))).collect();
    format!("{{{}}}", fields.join(","))
}

/// The path elements of a list's items, or None when the list is atomic (or an item has no key).
pub fn item_elements(items: &[Value], list_type: &ListType) -> Option<Vec<Element>> {
    items.iter().map(|item| item_element(item, list_type)).collect()
}

/// A path as kube-apiserver prints it: `.spec.containers[name="app"].image`, `.metadata.finalizers[="x"]`.
pub fn display_path(path: &[Element]) -> String {
    path.iter().map(|element| display_element(element)).collect()
}

fn display_element(element: &str) -> String {
    if let Some(name) = element.strip_prefix("f:") {
        format!(".{name}")
    } else if let Some(value) = element.strip_prefix("v:") {
        format!("[={value}]")
    } else if let Some(key) = element.strip_prefix("k:") {
        display_key(key)
    } else {
        format!("[{element}]")
    }
}

fn display_key(key: &str) -> String {
    match serde_json::from_str::<Map<String, Value>>(key) {
        Ok(fields) => {
            let fields: Vec<String> = fields.iter().map(|(name, value)| format!("{name}={value}")).collect();
            format!("[{}]", fields.join(","))
        }
        Err(_) => format!("[{key}]"),
    }
}

/// Every field of `value` that can be owned: scalars, atomic lists, empty maps and lists, set items
/// and map-list items (whose own fields follow). Non-empty maps are only containers.
pub fn fields_of<'v>(value: &'v Value, types: &dyn ListTypes) -> Fields<'v> {
    let mut fields = Fields::new();
    if let Value::Object(map) = value {
        Walker { types, path: Vec::new(), names: Vec::new(), fields: &mut fields }.map(map);
    }
    fields
}

/// Walks a value, tracking both the `FieldsV1` path and the field names that select list types.
struct Walker<'w, 'v> {
    types: &'w dyn ListTypes,
    path: Path,
    names: Vec<&'v str>,
    fields: &'w mut Fields<'v>,
}

impl<'v> Walker<'_, 'v> {
    fn map(&mut self, map: &'v Map<String, Value>) {
        for (name, value) in map {
            self.path.push(field_element(name));
            self.names.push(name);
            self.value(value);
            self.names.pop();
            self.path.pop();
        }
    }

    fn value(&mut self, value: &'v Value) {
        match value {
            Value::Object(map) if !map.is_empty() => self.map(map),
            Value::Array(items) if !items.is_empty() => self.list(value, items),
            leaf => self.insert(Some(leaf)),
        }
    }

    fn list(&mut self, list: &'v Value, items: &'v [Value]) {
        let list_type = self.types.list_type(&self.names);
        let Some(elements) = item_elements(items, &list_type) else {
            return self.insert(Some(list));
        };
        for (item, element) in items.iter().zip(elements) {
            self.path.push(element);
            match (&list_type, item) {
                (ListType::Map(_), Value::Object(fields)) => {
                    self.insert(None);
                    self.map(fields);
                }
                _ => self.insert(Some(item)),
            }
            self.path.pop();
        }
    }

    fn insert(&mut self, leaf: Option<&'v Value>) {
        self.fields.insert(self.path.clone(), leaf);
    }
}

#[cfg(test)]
mod tests {
    use super::super::patch::BuiltinListTypes;
    use super::*;
    use serde_json::json;

    fn path(elements: &[&str]) -> Path {
        elements.iter().map(|element| element.to_string()).collect()
    }

    #[test]
    fn fields_v1_round_trips() {
        let encoded = json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:replicas": {}}});
        let set = FieldSet::from_fields_v1(&encoded);
        let expected: FieldSet = [
            path(&["f:metadata", "f:labels"]),
            path(&["f:metadata", "f:labels", "f:app"]),
            path(&["f:spec", "f:replicas"]),
        ]
        .into_iter()
        .collect();
        assert_eq!(set, expected);
        assert_eq!(set.to_fields_v1(), encoded);
    }

    #[test]
    fn map_list_items_use_sorted_compact_key_json() {
        let pod =
            json!({"spec": {"containers": [{"name": "app", "ports": [{"protocol": "UDP", "containerPort": 53}]}]}});
        let set = FieldSet::of(&fields_of(&pod, &BuiltinListTypes));
        let expected = json!({"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:name": {}, "f:ports": {
            "k:{\"containerPort\":53,\"protocol\":\"UDP\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}
        }}}}});
        assert_eq!(set.to_fields_v1(), expected);
    }

    #[test]
    fn set_items_and_atomic_lists_are_leaves() {
        let object = json!({"metadata": {"finalizers": ["a"]}, "spec": {"args": ["x", "y"], "empty": {}}});
        let fields = fields_of(&object, &BuiltinListTypes);
        let expected =
            json!({"f:metadata": {"f:finalizers": {"v:\"a\"": {}}}, "f:spec": {"f:args": {}, "f:empty": {}}});
        assert_eq!(FieldSet::of(&fields).to_fields_v1(), expected);
        assert_eq!(fields.get(&path(&["f:spec", "f:args"])), Some(&Some(&json!(["x", "y"]))));
    }

    #[test]
    fn keyless_map_list_is_atomic() {
        let object = json!({"spec": {"containers": [{"image": "x"}]}});
        let set = FieldSet::of(&fields_of(&object, &BuiltinListTypes));
        assert_eq!(set.to_fields_v1(), json!({"f:spec": {"f:containers": {}}}));
    }

    #[test]
    fn display_path_prints_fields_keys_and_values() {
        let keyed = path(&["f:spec", "f:containers", "k:{\"name\":\"app\"}", "f:image"]);
        assert_eq!(display_path(&keyed), ".spec.containers[name=\"app\"].image");
        let value = path(&["f:metadata", "f:finalizers", "v:\"x\""]);
        assert_eq!(display_path(&value), ".metadata.finalizers[=\"x\"]");
    }

    #[test]
    fn covers_finds_the_path_or_a_descendant() {
        let set: FieldSet = [path(&["f:spec", "f:a", "f:b"])].into_iter().collect();
        assert!(set.covers(&path(&["f:spec", "f:a"])));
        assert!(set.covers(&path(&["f:spec", "f:a", "f:b"])));
        assert!(!set.covers(&path(&["f:spec", "f:b"])));
        assert!(!set.covers(&path(&["f:spec", "f:a", "f:b", "f:c"])));
    }
}
