//! Where rules run: the walk over schema, object and old object of kube-apiserver's CEL validator
//! (apiextensions-apiserver `schema/cel/validation.go`), with its error texts.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::errors::NO_OVERLOAD;
use super::program::{Activation, Program};
use crate::emulator::kube::schema_errors::{FieldError, FieldErrorKind};

const VALIDATIONS: &str = "x-kubernetes-validations";
/// The metadata fields kube-apiserver shows to root-level rules.
const VISIBLE_METADATA: [&str; 2] = ["name", "generateName"];
/// Root fields owned by the server: no rules are looked for under them.
const ROOT_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Every rule and `messageExpression` of a CRD version's schema, compiled once, keyed by source.
#[derive(Debug, Default)]
pub struct CelRules {
    programs: HashMap<String, Program>,
}

/// One node of the walk: its schema, new value, correlated old value and field path.
struct Node<'a> {
    schema: &'a Value,
    value: &'a Value,
    old: Option<&'a Value>,
    path: String,
}

impl CelRules {
    /// Compiles the rules under `schema`; the error names the rule like kube-apiserver's CRD validation.
    pub fn compile(schema: &Value) -> Result<Self, String> {
        let mut rules = Self::default();
        rules.compile_node(schema, "openAPIV3Schema")?;
        Ok(rules)
    }

    pub fn is_empty(&self) -> bool {
        self.programs.is_empty()
    }

    fn compile_node(&mut self, schema: &Value, path: &str) -> Result<(), String> {
        let declared = schema.get(VALIDATIONS).and_then(Value::as_array).into_iter().flatten();
        for (i, rule) in declared.enumerate() {
            for field in ["rule", "messageExpression"] {
                if let Some(source) = rule.get(field).and_then(Value::as_str) {
                    self.compile_source(source, &format!("{path}.{VALIDATIONS}[{i}].{field}"))?;
                }
            }
        }
        for (key, property) in schema.get("properties").and_then(Value::as_object).into_iter().flatten() {
            self.compile_node(property, &format!("{path}.properties[{key}]"))?;
        }
        for key in ["items", "additionalProperties"] {
            if let Some(sub) = schema.get(key).filter(|s| s.is_object()) {
                self.compile_node(sub, &format!("{path}.{key}"))?;
            }
        }
        Ok(())
    }

    fn compile_source(&mut self, source: &str, path: &str) -> Result<(), String> {
        if self.programs.contains_key(source) {
            return Ok(());
        }
        let program = Program::compile(source)
            .map_err(|e| format!("{path}: Invalid value: {}: compilation failed: {e}", Value::from(source)))?;
        self.programs.insert(source.to_owned(), program);
        Ok(())
    }

    /// The rule failures of `object` (`old`: the stored object on update), parents before children.
    pub fn validate(&self, schema: &Value, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.is_empty() {
            return errors;
        }
        if schema.get(VALIDATIONS).is_some() {
            let (visible, old_visible) = (root_view(object), old.map(root_view));
            // Ratcheting compares whole objects at the root, not the trimmed view.
            let unchanged = old == Some(object);
            self.check_rules(schema, &visible, old_visible.as_ref(), unchanged, "", &mut errors);
        }
        self.walk_children(&Node { schema, value: object, old, path: String::new() }, &mut errors);
        errors
    }

    fn walk(&self, node: &Node<'_>, errors: &mut Vec<FieldError>) {
        // Rules validate non-null values only, as in the apiserver.
        if node.value.is_null() {
            return;
        }
        let unchanged = node.old == Some(node.value);
        self.check_rules(node.schema, node.value, node.old, unchanged, &node.path, errors);
        self.walk_children(node, errors);
    }

    fn walk_children(&self, node: &Node<'_>, errors: &mut Vec<FieldError>) {
        match node.value {
            Value::Array(items) => self.walk_items(node, items, errors),
            Value::Object(map) => self.walk_fields(node, map, errors),
            _ => {}
        }
    }

    fn walk_items(&self, node: &Node<'_>, items: &[Value], errors: &mut Vec<FieldError>) {
        let Some(item_schema) = node.schema.get("items").filter(|s| s.is_object()) else { return };
        let old_items = node.old.and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
        for (i, item) in items.iter().enumerate() {
            let old = correlated_item(node.schema, item, old_items);
            self.walk(&Node { schema: item_schema, value: item, old, path: format!("{}[{i}]", node.path) }, errors);
        }
    }

    fn walk_fields(&self, node: &Node<'_>, map: &Map<String, Value>, errors: &mut Vec<FieldError>) {
        let properties = node.schema.get("properties").and_then(Value::as_object);
        let additional = node.schema.get("additionalProperties").filter(|s| s.is_object());
        for (key, value) in map {
            if node.path.is_empty() && ROOT_FIELDS.contains(&key.as_str()) {
                continue;
            }
            let (schema, path) = match properties.and_then(|p| p.get(key)) {
                Some(property) => (property, child_path(&node.path, key)),
                None => match additional {
                    Some(value_schema) => (value_schema, format!("{}[{key}]", node.path)),
                    None => continue,
                },
            };
            let old = node.old.and_then(|o| o.get(key));
            self.walk(&Node { schema, value, old, path }, errors);
        }
    }

    /// The rules declared on one node, against `value` (`self`) and `old` (`oldSelf`).
    fn check_rules(
        &self,
        schema: &Value,
        value: &Value,
        old: Option<&Value>,
        unchanged: bool,
        path: &str,
        errors: &mut Vec<FieldError>,
    ) {
        let declared = schema.get(VALIDATIONS).and_then(Value::as_array).into_iter().flatten();
        // `self` and `oldSelf` are converted once, for the first rule that runs.
        let mut activation = None;
        for rule in declared {
            let Some(program) = rule.get("rule").and_then(Value::as_str).and_then(|s| self.programs.get(s)) else {
                continue;
            };
            // Transition rules need an old value; other rules are ratcheted on unchanged values.
            let skipped = if program.uses_old_self() { old.is_none() } else { unchanged };
            if skipped {
                continue;
            }
            let activation = activation.get_or_insert_with(|| Activation::new(value, old));
            let shown_type = schema.get("type").and_then(Value::as_str).unwrap_or_default();
            match program.holds(activation) {
                Ok(true) => {}
                Ok(false) => errors.push(self.failure(rule, activation, path, shown_type)),
                Err(error) => errors.push(evaluation_error(rule, &error, path, shown_type)),
            }
        }
    }

    /// A failed rule: `messageExpression`, else `message`, else `failed rule: <rule>`, at `fieldPath`.
    fn failure(&self, rule: &Value, activation: &Activation, path: &str, shown_type: &str) -> FieldError {
        let from_expression = rule
            .get("messageExpression")
            .and_then(Value::as_str)
            .and_then(|source| self.programs.get(source))
            .and_then(|program| program.message(activation));
        let message = from_expression.unwrap_or_else(|| match rule_message(rule) {
            Some(message) => message.to_owned(),
            None => format!("failed rule: {}", rule_text(rule)),
        });
        let path = match rule.get("fieldPath").and_then(Value::as_str) {
            Some(field_path) => join_field_path(path, field_path),
            None => path.to_owned(),
        };
        let path = shown_path(&path);
        let shown = Value::from(shown_type).to_string();
        match rule.get("reason").and_then(Value::as_str) {
            Some("FieldValueForbidden") => FieldError::new(path, FieldErrorKind::Forbidden, message),
            Some("FieldValueRequired") => FieldError::new(path, FieldErrorKind::Required, message),
            Some("FieldValueDuplicate") => FieldError::new(path, FieldErrorKind::Duplicate, shown),
            _ => FieldError::invalid(path, &shown, &message),
        }
    }
}

/// An evaluation error (`no such key: x`, overflow, ...), worded like the apiserver's.
fn evaluation_error(rule: &Value, error: &str, path: &str, shown_type: &str) -> FieldError {
    let rule_text = rule_message(rule).unwrap_or_else(|| rule_text(rule));
    let message = if error.starts_with(NO_OVERLOAD) {
        format!(
            "'{error}': call arguments did not match a supported operator, function or macro signature for rule: {rule_text}"
        )
    } else {
        format!("{error} evaluating rule: {rule_text}")
    };
    FieldError::invalid(shown_path(path), &Value::from(shown_type).to_string(), &message)
}

/// The root's path is nil in the apiserver's validator, printed `<nil>`.
fn shown_path(path: &str) -> &str {
    if path.is_empty() { "<nil>" } else { path }
}

fn rule_message(rule: &Value) -> Option<&str> {
    rule.get("message").and_then(Value::as_str).map(str::trim).filter(|m| !m.is_empty())
}

fn rule_text(rule: &Value) -> &str {
    rule.get("rule").and_then(Value::as_str).map(str::trim).unwrap_or_default()
}

/// The root as root-level rules see it: `metadata` cut down to `name` and `generateName`.
fn root_view(object: &Value) -> Value {
    let mut view = object.clone();
    if let Some(metadata) = view.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.retain(|key, _| VISIBLE_METADATA.contains(&key.as_str()));
    }
    view
}

/// The old item with the same keys, for `x-kubernetes-list-type: map`; other lists do not correlate.
fn correlated_item<'a>(schema: &Value, item: &Value, old_items: &'a [Value]) -> Option<&'a Value> {
    if schema.get("x-kubernetes-list-type").and_then(Value::as_str) != Some("map") {
        return None;
    }
    let keys: Vec<&str> =
        schema.get("x-kubernetes-list-map-keys").and_then(Value::as_array)?.iter().filter_map(Value::as_str).collect();
    old_items.iter().find(|old| keys.iter().all(|key| old.get(*key) == item.get(*key)))
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

/// `path` extended by a rule's `fieldPath`: `.a.b` steps and `['key']` map steps.
fn join_field_path(path: &str, field_path: &str) -> String {
    let mut joined = path.to_owned();
    let mut rest = field_path.trim();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("['")
            && let Some((key, tail)) = after.split_once("']")
        {
            joined = format!("{joined}[{key}]");
            rest = tail;
            continue;
        }
        let step = rest.strip_prefix('.').unwrap_or(rest);
        let end = step.find(['.', '[']).unwrap_or(step.len());
        joined = child_path(&joined, &step[..end]);
        if end == 0 {
            // Not a step we understand: keep the rest as written rather than loop.
            joined.push_str(step);
            break;
        }
        rest = &step[end..];
    }
    joined
}
