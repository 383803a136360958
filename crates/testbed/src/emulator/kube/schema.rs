//! Custom resources against their CRD's structural `openAPIV3Schema`, like kube-apiserver:
//! defaulting, pruning of unknown fields and validation with the apiserver's error texts, then the
//! `x-kubernetes-validations` (CEL) rules (`cel`), which see the old object on update.

use std::collections::HashMap;

use regex::Regex;
use serde_json::{Map, Value};

use super::cel::CelRules;
pub use super::schema_errors::{FieldError, FieldErrorKind, causes, invalid_message};
use super::schema_errors::{
    duplicates, enum_error, flag, list_type_errors, number_errors, property_count_error, render_value, schema_list,
    string_errors, uint,
};

/// Root fields owned by the server: kept by pruning, never validated against the schema.
const ROOT_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];
const PRESERVE_UNKNOWN: &str = "x-kubernetes-preserve-unknown-fields";
const INT_OR_STRING: &str = "x-kubernetes-int-or-string";

/// A CRD version's openAPIV3Schema, ready to default, prune and validate objects.
pub struct CrdSchema {
    root: Value,
    /// Every `pattern` compiled once, keyed by its source: validation runs on every write.
    regexes: HashMap<String, Regex>,
    /// Every CEL rule compiled once, for the same reason.
    rules: CelRules,
}

/// Errors found so far; list-type errors come after schema errors, as in the apiserver.
#[derive(Default)]
struct Found {
    schema: Vec<FieldError>,
    lists: Vec<FieldError>,
}

impl Found {
    fn len(&self) -> usize {
        self.schema.len() + self.lists.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn absorb(&mut self, other: Found) {
        self.schema.extend(other.schema);
        self.lists.extend(other.lists);
    }
}

impl CrdSchema {
    /// Takes the schema and compiles its patterns and CEL rules; an unparseable pattern or a rule
    /// that does not compile is an error (the CRD gets a 422).
    pub fn new(open_api_v3_schema: Value) -> Result<Self, String> {
        if !open_api_v3_schema.is_object() {
            return Err("openAPIV3Schema: Invalid value: must be an object".to_owned());
        }
        let mut regexes = HashMap::new();
        compile_patterns(&open_api_v3_schema, "openAPIV3Schema", &mut regexes)?;
        let rules = CelRules::compile(&open_api_v3_schema)?;
        Ok(Self { root: open_api_v3_schema, regexes, rules })
    }

    /// The schema as the CRD gives it (what OpenAPI publishes).
    pub fn document(&self) -> &Value {
        &self.root
    }

    /// Fills absent fields that have a `default`, recursively (list items and map values too; an
    /// inserted default is defaulted further). A null stays for nullable fields; otherwise it takes
    /// the default, or is dropped when there is none (apiserver's PruneNonNullableNullsWithoutDefaults).
    pub fn apply_defaults(&self, object: &mut Value) {
        default_node(&self.root, object);
    }

    /// Drops undeclared fields recursively, except under `x-kubernetes-preserve-unknown-fields` or an
    /// `additionalProperties` schema / `true`. Root `apiVersion`, `kind` and `metadata` (untouched inside) stay.
    pub fn prune(&self, object: &mut Value) {
        prune_node(&self.root, object, true);
    }

    /// Validates against the structural-schema subset Kubernetes uses; root `apiVersion`, `kind` and
    /// `metadata` are skipped. Schema errors first, then list-type ones, then CEL rule failures;
    /// `old` is the stored object on update (transition rules, ratcheting). As in the apiserver, a
    /// blocking error (required, type, enum, too long / many) replaces the rules by a fieldless note.
    pub fn validate(&self, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let mut found = Found::default();
        self.check(&self.root, object, "", &mut found);
        let mut errors = found.schema;
        errors.extend(found.lists);
        if self.rules.is_empty() {
            return errors;
        }
        if errors.iter().any(FieldError::blocks_rules) {
            errors.push(FieldError::rules_not_checked());
        } else {
            errors.extend(self.rules.validate(&self.root, object, old));
        }
        errors
    }

    fn check(&self, schema: &Value, value: &Value, path: &str, found: &mut Found) {
        if value.is_null() {
            if let Some(expected) = schema.get("type").and_then(Value::as_str)
                && !flag(schema, "nullable")
            {
                found.schema.push(FieldError::type_mismatch(path, expected, "null"));
            }
            return;
        }
        match type_mismatch(schema, value) {
            Some(expected) => found.schema.push(FieldError::type_mismatch(path, expected, json_type(value))),
            None => self.check_compositions(schema, value, path, found),
        }
        match value {
            Value::String(text) => found.schema.extend(string_errors(schema, text, self.regex_of(schema), path)),
            Value::Number(number) => found.schema.extend(number_errors(schema, value, number, path)),
            Value::Array(items) => self.check_array(schema, items, path, found),
            _ => {}
        }
        found.schema.extend(enum_error(schema, value, path));
        if let Value::Object(map) = value {
            self.check_object(schema, map, path, found);
        }
    }

    fn regex_of(&self, schema: &Value) -> Option<&Regex> {
        schema.get("pattern").and_then(Value::as_str).and_then(|pattern| self.regexes.get(pattern))
    }

    /// Runs `check` on the side, for anyOf / oneOf / not.
    fn trial(&self, schema: &Value, value: &Value, path: &str) -> Found {
        let mut found = Found::default();
        self.check(schema, value, path, &mut found);
        found
    }

    /// allOf / anyOf / oneOf / not, best effort with kube-openapi's messages.
    fn check_compositions(&self, schema: &Value, value: &Value, path: &str, found: &mut Found) {
        for sub in schema_list(schema, "allOf") {
            self.check(sub, value, path, found);
        }
        let any_of = schema_list(schema, "anyOf");
        let tried: Vec<Found> = any_of.iter().map(|sub| self.trial(sub, value, path)).collect();
        if tried.iter().all(|t| !t.is_empty())
            && let Some(closest) = tried.into_iter().min_by_key(Found::len)
        {
            let message = format!("{path} must validate at least one schema (anyOf)");
            found.schema.push(FieldError::invalid(path, &render_value(value), &message));
            found.absorb(closest);
        }
        let one_of = schema_list(schema, "oneOf");
        let valid = one_of.iter().filter(|sub| self.trial(sub, value, path).is_empty()).count();
        if !one_of.is_empty() && valid != 1 {
            let count =
                if valid == 0 { "Found none valid".to_owned() } else { format!("Found {valid} valid alternatives") };
            let message = format!("{path} must validate one and only one schema (oneOf). {count}");
            found.schema.push(FieldError::invalid(path, &render_value(value), &message));
        }
        if let Some(not) = schema.get("not")
            && self.trial(not, value, path).is_empty()
        {
            let message = format!("{path} must not validate the schema (not)");
            found.schema.push(FieldError::invalid(path, &render_value(value), &message));
        }
    }

    /// Items, minItems, maxItems, uniqueItems; list-type duplicates go to the later list errors.
    fn check_array(&self, schema: &Value, items: &[Value], path: &str, found: &mut Found) {
        if let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) {
            for (i, item) in items.iter().enumerate() {
                self.check(item_schema, item, &format!("{path}[{i}]"), found);
            }
        }
        let count = items.len() as u64;
        if let Some(min) = uint(schema, "minItems").filter(|min| count < *min) {
            let message = format!("{path} in body should have at least {min} items");
            found.schema.push(FieldError::invalid(path, &count.to_string(), &message));
        }
        if let Some(max) = uint(schema, "maxItems").filter(|max| count > *max) {
            found.schema.push(FieldError::too_many(path, count, max));
        }
        if flag(schema, "uniqueItems") && !duplicates(path, items).is_empty() {
            let message = format!("{path} in body shouldn't contain duplicates");
            found.schema.push(FieldError::invalid(path, r#""""#, &message));
        }
        found.lists.extend(list_type_errors(schema, items, path));
    }

    /// min/maxProperties (which end the object's checks, like kube-openapi), map values, properties, required.
    fn check_object(&self, schema: &Value, map: &Map<String, Value>, path: &str, found: &mut Found) {
        if let Some(error) = property_count_error(schema, map.len() as u64, path) {
            found.schema.push(error);
            return;
        }
        let properties = properties(schema);
        let server_owned = |key: &str| path.is_empty() && ROOT_FIELDS.contains(&key);
        if let Some(value_schema) = additional_schema(schema) {
            let undeclared = map.iter().filter(|(k, _)| !properties.is_some_and(|p| p.contains_key(*k)));
            // kube-apiserver names a map value like a property: `spec.quota.requests`.
            for (key, value) in undeclared.filter(|(k, _)| !server_owned(k)) {
                self.check(value_schema, value, &child_path(path, key), found);
            }
        }
        for (key, property) in properties.into_iter().flatten().filter(|(k, _)| !server_owned(k)) {
            if let Some(value) = map.get(key) {
                self.check(property, value, &child_path(path, key), found);
            }
        }
        let required = schema.get("required").and_then(Value::as_array).into_iter().flatten();
        for key in required.filter_map(Value::as_str).filter(|k| !server_owned(k) && !map.contains_key(*k)) {
            found.schema.push(FieldError::required(&child_path(path, key)));
        }
    }
}

fn compile_patterns(schema: &Value, path: &str, regexes: &mut HashMap<String, Regex>) -> Result<(), String> {
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
        && !regexes.contains_key(pattern)
    {
        let regex = Regex::new(pattern).map_err(|e| {
            let reason = e.to_string().lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default().trim().to_owned();
            let shown = Value::from(pattern);
            format!("{path}.pattern: Invalid value: {shown}: must be a valid regular expression, but isn't: {reason}")
        })?;
        regexes.insert(pattern.to_owned(), regex);
    }
    if let Some(properties) = properties(schema) {
        for (key, property) in properties {
            compile_patterns(property, &format!("{path}.properties[{key}]"), regexes)?;
        }
    }
    for key in ["items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"] {
        match schema.get(key) {
            Some(sub @ Value::Object(_)) => compile_patterns(sub, &format!("{path}.{key}"), regexes)?,
            Some(Value::Array(subs)) => {
                for (i, sub) in subs.iter().enumerate() {
                    compile_patterns(sub, &format!("{path}.{key}[{i}]"), regexes)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn default_node(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => default_object(schema, map),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) {
                items.iter_mut().for_each(|item| default_present(item_schema, item));
            }
        }
        _ => {}
    }
}

fn default_object(schema: &Value, map: &mut Map<String, Value>) {
    for (key, property) in properties(schema).into_iter().flatten() {
        if let Some(default) = property.get("default")
            && !map.contains_key(key)
        {
            map.insert(key.clone(), default.clone());
        }
    }
    let droppable = |s: &Value| !flag(s, "nullable") && s.get("default").is_none();
    map.retain(|key, value| !(value.is_null() && field_schema(schema, key).is_some_and(droppable)));
    for (key, value) in map.iter_mut() {
        if let Some(sub) = field_schema(schema, key) {
            default_present(sub, value);
        }
    }
}

/// Defaults a value that is present: a non-nullable null takes the default, then its own fields are defaulted.
fn default_present(schema: &Value, value: &mut Value) {
    if value.is_null()
        && !flag(schema, "nullable")
        && let Some(default) = schema.get("default")
    {
        *value = default.clone();
    }
    default_node(schema, value);
}

/// `keeps_meta`: the resource root (or an embedded resource), whose apiVersion/kind/metadata always stay.
fn prune_node(schema: &Value, value: &mut Value, keeps_meta: bool) {
    match value {
        Value::Object(map) => prune_object(schema, map, keeps_meta || flag(schema, "x-kubernetes-embedded-resource")),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) {
                items.iter_mut().for_each(|item| prune_node(item_schema, item, false));
            }
        }
        _ => {}
    }
}

fn prune_object(schema: &Value, map: &mut Map<String, Value>, keeps_meta: bool) {
    let keeps_unknown = flag(schema, PRESERVE_UNKNOWN)
        || schema.get("additionalProperties").is_some_and(|a| a.is_object() || a.as_bool() == Some(true));
    let server_owned = |key: &str| keeps_meta && ROOT_FIELDS.contains(&key);
    let declared = |key: &str| properties(schema).is_some_and(|p| p.contains_key(key));
    map.retain(|key, _| keeps_unknown || server_owned(key) || declared(key));
    for (key, value) in map.iter_mut() {
        // Metadata is the server's business: nothing inside it is pruned.
        if key == "metadata" && server_owned(key) {
            continue;
        }
        if let Some(sub) = field_schema(schema, key) {
            prune_node(sub, value, false);
        }
    }
}

/// The expected type words when `value` does not have the schema's type.
fn type_mismatch<'a>(schema: &'a Value, value: &Value) -> Option<&'a str> {
    let actual = json_type(value);
    if flag(schema, INT_OR_STRING) {
        return (!matches!(actual, "integer" | "string")).then_some("integer,string");
    }
    let expected = schema.get("type").and_then(Value::as_str)?;
    let matches = expected == actual || (expected == "number" && actual == "integer");
    (!matches).then_some(expected)
}

/// The JSON type name kube-openapi reports for a value.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn properties(schema: &Value) -> Option<&Map<String, Value>> {
    schema.get("properties").and_then(Value::as_object)
}

/// The schema of map values when `additionalProperties` is a schema.
fn additional_schema(schema: &Value) -> Option<&Value> {
    schema.get("additionalProperties").filter(|a| a.is_object())
}

/// The schema of an object's field: its declared property, else the map-value schema.
fn field_schema<'a>(schema: &'a Value, key: &str) -> Option<&'a Value> {
    properties(schema).and_then(|p| p.get(key)).or_else(|| additional_schema(schema))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A trimmed SecretRef v1alpha1 schema from crds/secretrefs.secureapi.dev.yaml.
    fn secret_ref() -> Result<CrdSchema, String> {
        let name = json!({"type": "string", "maxLength": 253, "minLength": 1, "nullable": true});
        CrdSchema::new(json!({"type": "object", "required": ["spec"], "properties": {
            "spec": {"type": "object", "required": ["secret"], "properties": {
                "secret": {"type": "string", "minLength": 1, "maxLength": 512, "pattern": "^([A-Za-z0-9_-]{1,255}|projects/[a-z0-9-]{6,30}/secrets/[A-Za-z0-9_-]{1,255}|projects/[a-z0-9-]{6,30}/locations/[a-z0-9-]+/secrets/[A-Za-z0-9_-]{1,255})$"},
                "version": {"type": "string", "default": "latest", "pattern": "^(latest|[1-9][0-9]{0,18}|[A-Za-z][A-Za-z0-9_-]{0,62})$"},
                "refreshInterval": {"type": "string", "default": "1h", "pattern": "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"},
                "format": {"type": "string", "default": "raw", "enum": ["raw", "json", "dotenv"]},
                "projectId": {"type": "string", "nullable": true, "pattern": "^[a-z][a-z0-9-]{4,28}[a-z0-9]$"},
                "keys": {"type": "array", "maxItems": 64, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["key"],
                    "items": {"type": "object", "required": ["key"], "properties": {
                        "key": {"type": "string", "minLength": 1, "maxLength": 253, "pattern": "^[-._a-zA-Z0-9]+$"},
                        "property": {"type": "string", "minLength": 1, "maxLength": 512, "nullable": true}}}},
                "target": {"type": "object", "default": {"creationPolicy": "Owner"}, "properties": {
                    "creationPolicy": {"type": "string", "default": "Owner", "enum": ["Owner", "Orphan"]},
                    "deletionPolicy": {"type": "string", "default": "Delete", "enum": ["Delete", "Retain"]},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "name": name}}}},
            "status": {"type": "object", "nullable": true, "properties": {
                "lastSyncTime": {"type": "string", "format": "date-time", "nullable": true},
                "observedGeneration": {"type": "integer", "format": "int64", "nullable": true}}}}}))
    }

    /// A trimmed SecureApiService v1alpha1 spec from crds/secureapiservices.secureapi.dev.yaml.
    fn secure_api_service() -> Result<CrdSchema, String> {
        let quantity = json!({"x-kubernetes-int-or-string": true, "nullable": true, "minimum": 0.0,
            "pattern": "^[0-9]+(\\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$"});
        CrdSchema::new(json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "image": {"type": "string", "minLength": 1, "maxLength": 1024, "pattern": "^\\S+$"},
            "port": {"type": "integer", "format": "int32", "default": 8080, "minimum": 1.0, "maximum": 65535.0},
            "resources": {"type": "object", "properties": {"requests": {"type": "object", "nullable": true,
                "properties": {"cpu": quantity}}}},
            "env": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"}, "value": {"type": "string", "default": ""}}}},
            "rollout": {"type": "object", "properties": {
                "maxSurge": {"x-kubernetes-int-or-string": true, "nullable": true, "default": "25%"}}}}}}}))
    }

    fn errors_of(schema: &CrdSchema, object: &Value) -> Vec<String> {
        schema.validate(object, None).iter().map(FieldError::to_string).collect()
    }

    fn spec_errors(schema: &CrdSchema, spec: Value) -> Vec<String> {
        errors_of(schema, &json!({"apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "spec": spec}))
    }

    #[test]
    fn unparseable_pattern_rejects_the_schema() -> Result<(), String> {
        let result = CrdSchema::new(json!({"properties": {"spec": {"type": "string", "pattern": "(latest"}}}));
        let Err(message) = result else { return Err("an unclosed group must be rejected".into()) };
        assert!(message.starts_with(r#"openAPIV3Schema.properties[spec].pattern: Invalid value: "(latest": must be a valid regular expression"#), "{message}");
        Ok(())
    }

    #[test]
    fn absent_fields_get_defaults_and_default_objects_are_defaulted_further() -> Result<(), String> {
        let mut object = json!({"spec": {"secret": "db"}});
        secret_ref()?.apply_defaults(&mut object);
        let target = json!({"creationPolicy": "Owner", "deletionPolicy": "Delete"});
        assert_eq!(
            object["spec"],
            json!({"secret": "db", "version": "latest", "refreshInterval": "1h", "format": "raw", "target": target})
        );
        Ok(())
    }

    #[test]
    fn defaults_reach_list_items_and_map_values() -> Result<(), String> {
        let schema = CrdSchema::new(json!({"properties": {"routes": {"type": "object",
            "additionalProperties": {"type": "object", "properties": {"weight": {"type": "integer", "default": 1}}}}}}))?;
        let mut object = json!({"routes": {"a": {}, "b": {"weight": 5}}});
        schema.apply_defaults(&mut object);
        assert_eq!(object, json!({"routes": {"a": {"weight": 1}, "b": {"weight": 5}}}));
        let mut service = json!({"spec": {"env": [{"name": "A"}, {"name": "B", "value": "x"}]}});
        secure_api_service()?.apply_defaults(&mut service);
        assert_eq!(service["spec"]["env"], json!([{"name": "A", "value": ""}, {"name": "B", "value": "x"}]));
        Ok(())
    }

    #[test]
    fn nullable_null_is_kept_and_not_defaulted() -> Result<(), String> {
        let mut object = json!({"spec": {"rollout": {"maxSurge": null}}});
        secure_api_service()?.apply_defaults(&mut object);
        assert_eq!(object["spec"]["rollout"], json!({"maxSurge": null}));
        Ok(())
    }

    #[test]
    fn non_nullable_null_takes_the_default_or_is_dropped() -> Result<(), String> {
        let schema = secret_ref()?;
        let mut object = json!({"spec": {"secret": null, "version": null, "target": {"labels": {"a": null}}}});
        schema.apply_defaults(&mut object);
        assert_eq!(object["spec"].get("secret"), None);
        assert_eq!(object["spec"]["version"], json!("latest"));
        assert_eq!(object["spec"]["target"]["labels"], json!({}));
        assert_eq!(errors_of(&schema, &object), ["spec.secret: Required value"]);
        Ok(())
    }

    #[test]
    fn prune_drops_undeclared_fields_recursively() -> Result<(), String> {
        let mut object =
            json!({"spec": {"secret": "db", "bogus": 1, "keys": [{"key": "a", "extra": true}]}, "junk": {}});
        secret_ref()?.prune(&mut object);
        assert_eq!(object, json!({"spec": {"secret": "db", "keys": [{"key": "a"}]}}));
        Ok(())
    }

    #[test]
    fn prune_keeps_root_metadata_maps_and_preserved_subtrees() -> Result<(), String> {
        let schema = CrdSchema::new(json!({"type": "object", "properties": {
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"known": {"type": "object"}}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "any": {"type": "object", "additionalProperties": true}}}))?;
        let metadata = json!({"name": "x", "labels": {"a": "b"}, "whatever": {"deep": 1}});
        let mut object = json!({"apiVersion": "v1", "kind": "K", "metadata": metadata, "labels": {"k": "v"},
            "free": {"unknown": {"deep": 1}, "known": {"dropped": 1}}, "any": {"x": {"y": 1}}});
        let mut expected = object.clone();
        expected["free"]["known"] = json!({});
        schema.prune(&mut object);
        assert_eq!(object, expected);
        Ok(())
    }

    #[test]
    fn missing_required_field_is_reported() -> Result<(), String> {
        assert_eq!(spec_errors(&secret_ref()?, json!({})), ["spec.secret: Required value"]);
        assert_eq!(errors_of(&secret_ref()?, &json!({"metadata": {"name": "x"}})), ["spec: Required value"]);
        Ok(())
    }

    #[test]
    fn pattern_mismatch_names_the_field_and_pattern() -> Result<(), String> {
        let errors = spec_errors(&secret_ref()?, json!({"secret": "db", "version": "no way!"}));
        let expected = r#"spec.version: Invalid value: "no way!": spec.version in body should match '^(latest|[1-9][0-9]{0,18}|[A-Za-z][A-Za-z0-9_-]{0,62})$'"#;
        assert_eq!(errors, [expected]);
        Ok(())
    }

    #[test]
    fn wrong_type_reports_the_actual_type() -> Result<(), String> {
        let schema = secure_api_service()?;
        let errors = [spec_errors(&schema, json!({"image": 5})), spec_errors(&schema, json!({"port": 80.5}))].concat();
        assert_eq!(
            errors,
            [
                r#"spec.image: Invalid value: "integer": spec.image in body must be of type string: "integer""#,
                r#"spec.port: Invalid value: "number": spec.port in body must be of type integer: "number""#,
            ]
        );
        Ok(())
    }

    #[test]
    fn max_length_counts_characters_and_says_bytes() -> Result<(), String> {
        let schema = secret_ref()?;
        let property = |p: String| spec_errors(&schema, json!({"secret": "db", "keys": [{"key": "a", "property": p}]}));
        assert!(property("é".repeat(512)).is_empty());
        assert_eq!(property("x".repeat(513)), ["spec.keys[0].property: Too long: may not be more than 512 bytes"]);
        let errors = spec_errors(&schema, json!({"secret": ""}));
        assert_eq!(errors, [r#"spec.secret: Invalid value: "": spec.secret in body should be at least 1 chars long"#]);
        Ok(())
    }

    #[test]
    fn max_items_reports_too_many() -> Result<(), String> {
        let keys: Vec<Value> = (0..70).map(|i| json!({"key": format!("k{i}")})).collect();
        assert_eq!(
            spec_errors(&secret_ref()?, json!({"secret": "db", "keys": keys})),
            ["spec.keys: Too many: 70: must have at most 64 items"]
        );
        Ok(())
    }

    #[test]
    fn list_map_duplicate_key_is_reported_at_the_repeat() -> Result<(), String> {
        let keys = json!([{"key": "a"}, {"key": "a", "property": "p"}, {"key": "b"}, {"key": "a"}]);
        assert_eq!(
            spec_errors(&secret_ref()?, json!({"secret": "db", "keys": keys})),
            [r#"spec.keys[1]: Duplicate value: {"key":"a"}"#]
        );
        Ok(())
    }

    #[test]
    fn int_or_string_checks_pattern_on_strings_and_minimum_on_numbers() -> Result<(), String> {
        let schema = secure_api_service()?;
        let cpu = |v: Value| spec_errors(&schema, json!({"resources": {"requests": {"cpu": v}}}));
        assert!(cpu(json!("500m")).is_empty() && cpu(json!(2)).is_empty() && cpu(json!(null)).is_empty());
        let name = "spec.resources.requests.cpu";
        let pattern = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$";
        assert_eq!(
            cpu(json!("lots")),
            [format!(r#"{name}: Invalid value: "lots": {name} in body should match '{pattern}'"#)]
        );
        assert_eq!(
            cpu(json!(-1)),
            [format!("{name}: Invalid value: -1: {name} in body should be greater than or equal to 0")]
        );
        let mismatch =
            format!(r#"{name}: Invalid value: "boolean": {name} in body must be of type integer,string: "boolean""#);
        assert_eq!(cpu(json!(true)), [mismatch]);
        Ok(())
    }

    #[test]
    fn map_values_are_validated_under_their_key_like_a_property() -> Result<(), String> {
        let errors = spec_errors(&secret_ref()?, json!({"secret": "db", "target": {"labels": {"team": 7}}}));
        let name = "spec.target.labels.team";
        assert_eq!(
            errors,
            [format!(r#"{name}: Invalid value: "integer": {name} in body must be of type string: "integer""#)]
        );
        Ok(())
    }

    #[test]
    fn root_api_version_kind_and_metadata_are_not_validated() -> Result<(), String> {
        let schema = CrdSchema::new(json!({"type": "object", "required": ["metadata"], "properties": {
            "apiVersion": {"type": "integer"}, "metadata": {"type": "object", "required": ["name"]}}}))?;
        assert!(errors_of(&schema, &json!({"apiVersion": "v1", "kind": "K"})).is_empty());
        Ok(())
    }

    #[test]
    fn any_of_and_not_failures_are_reported() -> Result<(), String> {
        let schema = CrdSchema::new(json!({"properties": {"n": {"type": "integer",
            "anyOf": [{"maximum": 1.0}, {"minimum": 10.0}], "not": {"enum": [0]}}}}))?;
        assert_eq!(
            errors_of(&schema, &json!({"n": 0})),
            [r#"n: Invalid value: 0: n must not validate the schema (not)"#]
        );
        assert_eq!(
            errors_of(&schema, &json!({"n": 5})),
            [
                "n: Invalid value: 5: n must validate at least one schema (anyOf)",
                "n: Invalid value: 5: n in body should be less than or equal to 1",
            ]
        );
        Ok(())
    }

    #[test]
    fn defaulted_complete_secret_ref_is_valid() -> Result<(), String> {
        let schema = secret_ref()?;
        let mut object = json!({"apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": {"name": "db"},
            "spec": {"secret": "projects/my-proj/secrets/db", "keys": [{"key": "password", "property": null}]},
            "status": {"observedGeneration": 3, "lastSyncTime": null}});
        schema.prune(&mut object);
        schema.apply_defaults(&mut object);
        assert_eq!(schema.validate(&object, None), Vec::new());
        Ok(())
    }
}
