//! `metadata.managedFields`: the entries that record which manager owns which fields.

use serde_json::{Map, Value};

use super::fieldset::FieldSet;

/// Who writes: kube-apiserver's manager identifier (manager, operation, subresource, and the apiVersion
/// for Update operations only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity<'a> {
    /// The field manager name.
    pub manager: &'a str,
    /// `"Apply"` or `"Update"`.
    pub operation: &'a str,
    /// The apiVersion the manager wrote with.
    pub api_version: &'a str,
    /// The subresource written (`Some("status")`), or None for the main resource.
    pub subresource: Option<&'a str>,
}

/// The operation of server-side apply entries.
pub const APPLY: &str = "Apply";
/// The operation of create/update/patch entries.
pub const UPDATE: &str = "Update";

/// One managedFields entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The field manager name.
    pub manager: String,
    /// `"Apply"` or `"Update"`.
    pub operation: String,
    /// The apiVersion the fields were written with.
    pub api_version: String,
    /// When the manager last changed the object (RFC 3339).
    pub time: Option<String>,
    /// The subresource written, if any.
    pub subresource: Option<String>,
    /// The fields owned.
    pub fields: FieldSet,
    /// The entry as read, emitted again verbatim while nothing in it changes (keeps no-ops byte-identical).
    raw: Option<Value>,
}

impl Entry {
    fn read(raw: &Value) -> Self {
        let text = |key: &str| raw.get(key).and_then(Value::as_str).map(str::to_string);
        Entry {
            manager: text("manager").unwrap_or_default(),
            operation: text("operation").unwrap_or_default(),
            api_version: text("apiVersion").unwrap_or_default(),
            time: text("time"),
            subresource: text("subresource").filter(|subresource| !subresource.is_empty()),
            fields: raw.get("fieldsV1").map(FieldSet::from_fields_v1).unwrap_or_default(),
            raw: Some(raw.clone()),
        }
    }

    fn new(identity: &Identity<'_>, fields: FieldSet, now: &str) -> Self {
        Entry {
            manager: identity.manager.to_string(),
            operation: identity.operation.to_string(),
            api_version: identity.api_version.to_string(),
            time: Some(now.to_string()),
            subresource: identity.subresource.map(str::to_string),
            fields,
            raw: None,
        }
    }

    /// Whether this entry belongs to `identity`.
    pub fn is(&self, identity: &Identity<'_>) -> bool {
        self.manager == identity.manager
            && self.operation == identity.operation
            && self.subresource.as_deref() == identity.subresource
            // Appliers keep one entry across apiVersions; updaters get one per apiVersion.
            && (self.operation == APPLY || self.api_version == identity.api_version)
    }

    /// How kube-apiserver names this owner in conflict messages: `"mgr"`, `"mgr" with subresource "status"`,
    /// and ` using <apiVersion>` for Update entries.
    pub fn owner(&self) -> String {
        let mut owner = format!("{:?}", self.manager);
        if let Some(subresource) = &self.subresource {
            owner.push_str(&format!(" with subresource {subresource:?}"));
        }
        if self.operation == UPDATE {
            owner.push_str(&format!(" using {}", self.api_version));
        }
        owner
    }

    fn set_fields(&mut self, fields: FieldSet) {
        if self.fields != fields {
            self.fields = fields;
            self.raw = None;
        }
    }

    fn touch(&mut self, api_version: &str, now: &str) {
        self.api_version = api_version.to_string();
        self.time = Some(now.to_string());
        self.raw = None;
    }

    fn encode(&self) -> Value {
        if let Some(raw) = &self.raw {
            return raw.clone();
        }
        let mut entry = Map::new();
        entry.insert("manager".to_string(), Value::from(self.manager.as_str()));
        entry.insert("operation".to_string(), Value::from(self.operation.as_str()));
        entry.insert("apiVersion".to_string(), Value::from(self.api_version.as_str()));
        if let Some(time) = &self.time {
            entry.insert("time".to_string(), Value::from(time.as_str()));
        }
        entry.insert("fieldsType".to_string(), Value::from("FieldsV1"));
        entry.insert("fieldsV1".to_string(), self.fields.to_fields_v1());
        if let Some(subresource) = &self.subresource {
            entry.insert("subresource".to_string(), Value::from(subresource.as_str()));
        }
        Value::Object(entry)
    }

    /// kube-apiserver's order: operation, time (in seconds), manager, apiVersion, subresource.
    fn sort_key(&self) -> (&str, i64, &str, &str, &str) {
        let seconds = self.time.as_deref().and_then(|time| time.parse::<jiff::Timestamp>().ok());
        let subresource = self.subresource.as_deref().unwrap_or_default();
        (&self.operation, seconds.map_or(0, |time| time.as_second()), &self.manager, &self.api_version, subresource)
    }
}

/// The managedFields entries of an object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ManagedFields {
    entries: Vec<Entry>,
}

impl ManagedFields {
    /// Reads `metadata.managedFields` (missing or malformed: no entries).
    pub fn read(object: &Value) -> Self {
        let entries = list_of(object).into_iter().flatten().map(Entry::read).collect();
        ManagedFields { entries }
    }

    /// The entries.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The fields `identity` owns.
    pub fn fields_of(&self, identity: &Identity<'_>) -> FieldSet {
        self.entries.iter().find(|entry| entry.is(identity)).map(|entry| entry.fields.clone()).unwrap_or_default()
    }

    /// The fields owned by anyone but `identity`.
    pub fn fields_of_others(&self, identity: &Identity<'_>) -> FieldSet {
        let others = self.entries.iter().filter(|entry| !entry.is(identity));
        others.fold(FieldSet::default(), |owned, entry| owned.union(&entry.fields))
    }

    /// Removes `fields` from every entry but `keep`'s.
    pub fn release(&mut self, fields: &FieldSet, keep: Option<&Identity<'_>>) {
        for entry in self.entries.iter_mut().filter(|entry| keep.is_none_or(|keep| !entry.is(keep))) {
            let remaining = entry.fields.difference(fields);
            entry.set_fields(remaining);
        }
    }

    /// Sets the fields of `identity`'s entry, creating it if needed; `touched` refreshes its time and apiVersion.
    pub fn assign(&mut self, identity: &Identity<'_>, fields: FieldSet, now: &str, touched: bool) {
        match self.entries.iter_mut().find(|entry| entry.is(identity)) {
            Some(entry) => {
                if touched || entry.fields != fields {
                    entry.touch(identity.api_version, now);
                }
                entry.set_fields(fields);
            }
            None => self.entries.push(Entry::new(identity, fields, now)),
        }
    }

    /// Writes the entries to `metadata.managedFields` in kube-apiserver's order, dropping empty ones.
    pub fn write(mut self, object: &mut Value) {
        self.entries.retain(|entry| !entry.fields.is_empty());
        self.entries.sort_by(|left, right| left.sort_key().cmp(&right.sort_key()));
        let Value::Object(root) = object else {
            return;
        };
        let entries: Vec<Value> = self.entries.iter().map(Entry::encode).collect();
        match root.get_mut("metadata") {
            Some(Value::Object(metadata)) if entries.is_empty() => metadata.retain(|key, _| key != "managedFields"),
            Some(Value::Object(metadata)) => {
                metadata.insert("managedFields".to_string(), Value::Array(entries));
            }
            _ if entries.is_empty() => {}
            _ => {
                let metadata = Map::from_iter([("managedFields".to_string(), Value::Array(entries))]);
                root.insert("metadata".to_string(), Value::Object(metadata));
            }
        }
    }
}

/// The raw `metadata.managedFields` list, if any.
pub fn list_of(object: &Value) -> Option<&Vec<Value>> {
    object.get("metadata")?.get("managedFields")?.as_array()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn identity<'a>(manager: &'a str, operation: &'a str) -> Identity<'a> {
        Identity { manager, operation, api_version: "v1", subresource: None }
    }

    fn object() -> Value {
        json!({"metadata": {"managedFields": [
            {"manager": "b", "operation": "Update", "apiVersion": "v1", "time": "2024-01-01T00:00:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:x": {}}}},
            {"manager": "a", "operation": "Apply", "apiVersion": "v1", "time": "2024-01-02T00:00:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:y": {}}}}
        ]}})
    }

    #[test]
    fn unchanged_entries_are_written_verbatim_in_kube_order() {
        let mut written = object();
        ManagedFields::read(&written).write(&mut written);
        let original = object();
        let entries = list_of(&original).cloned().unwrap_or_default();
        assert_eq!(list_of(&written), Some(&entries.into_iter().rev().collect()));
    }

    #[test]
    fn release_drops_fields_and_write_drops_empty_entries() {
        let mut object = object();
        let mut managed = ManagedFields::read(&object);
        let x = FieldSet::from_fields_v1(&json!({"f:spec": {"f:x": {}}}));
        managed.release(&x, Some(&identity("a", APPLY)));
        managed.write(&mut object);
        let managers: Vec<&Value> = list_of(&object).into_iter().flatten().map(|entry| &entry["manager"]).collect();
        assert_eq!(managers, vec![&json!("a")]);
    }

    #[test]
    fn update_identity_includes_api_version_but_apply_does_not() {
        let managed = ManagedFields::read(&object());
        let other_version = |operation| Identity {
            api_version: "v2",
            ..identity(if operation == APPLY { "a" } else { "b" }, operation)
        };
        assert!(!managed.fields_of(&other_version(APPLY)).is_empty());
        assert!(managed.fields_of(&other_version(UPDATE)).is_empty());
    }

    #[test]
    fn owner_names_update_entries_with_their_api_version() {
        let managed = ManagedFields::read(&object());
        let owners: Vec<String> = managed.entries().iter().map(Entry::owner).collect();
        assert_eq!(owners, vec!["\"b\" using v1".to_string(), "\"a\"".to_string()]);
    }

    #[test]
    fn assign_refreshes_time_only_when_touched_or_changed() {
        let mut managed = ManagedFields::read(&object());
        let owned = managed.fields_of(&identity("a", APPLY));
        managed.assign(&identity("a", APPLY), owned.clone(), "2030-01-01T00:00:00Z", false);
        assert_eq!(managed, ManagedFields::read(&object()));
        managed.assign(&identity("a", APPLY), owned, "2030-01-01T00:00:00Z", true);
        let times: Vec<Option<&str>> = managed.entries().iter().map(|entry| entry.time.as_deref()).collect();
        assert_eq!(times, vec![Some("2024-01-01T00:00:00Z"), Some("2030-01-01T00:00:00Z")]);
    }
}
