//! kube-apiserver's checks of a CRD version's `openAPIV3Schema` beyond what objects are validated
//! against: the OpenAPI features a CRD may not use, and that the schema is structural
//! (apiextensions-apiserver's `validation.go` and `schema/validation.go`), with the apiserver's
//! paths and words, so a CRD that a real cluster refuses is refused here too. Left out: defaults
//! checked against their own schema, properties inside junctors that must also be declared
//! outside, and `x-kubernetes-*` extensions inside junctors.

use serde_json::{Value, json};

use super::schema_errors::{FieldError, FieldErrorKind, flag, schema_list};

const JUNCTORS: [&str; 3] = ["allOf", "anyOf", "oneOf"];
const TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];

/// Where a node sits, which words a missing type gets.
#[derive(Clone, Copy, PartialEq)]
enum Level {
    Root,
    Item,
    Field,
}

/// The errors of the schema at `path` (`spec.versions[0].schema.openAPIV3Schema`), none when a
/// real apiserver would accept it.
pub fn schema_errors(schema: &Value, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    openapi_errors(schema, path, &mut errors);
    // kube-apiserver builds no structural schema from one it refuses already, so says no more.
    let convertible = errors.is_empty();
    if flag(schema, "nullable") {
        errors.push(forbidden(&format!("{path}.nullable"), "nullable cannot be true at the root"));
    }
    if convertible {
        structural_errors(schema, Level::Root, path, &mut errors);
        metadata_errors(schema, path, &mut errors);
    }
    errors
}

fn forbidden(path: &str, detail: &str) -> FieldError {
    FieldError::new(path, FieldErrorKind::Forbidden, detail)
}

/// Every subschema of `node` with its path, data (`default`, `enum`) excluded.
fn children<'a>(node: &'a Value, path: &str) -> Vec<(String, &'a Value, Level)> {
    let mut found = Vec::new();
    if let Some(properties) = node.get("properties").and_then(Value::as_object) {
        found.extend(properties.iter().map(|(k, v)| (format!("{path}.properties[{k}]"), v, Level::Field)));
    }
    if let Some(items) = node.get("items").filter(|i| i.is_object()) {
        found.push((format!("{path}.items"), items, Level::Item));
    }
    if let Some(additional) = node.get("additionalProperties").filter(|a| a.is_object()) {
        found.push((format!("{path}.additionalProperties"), additional, Level::Field));
    }
    found
}

/// A junctor branch: allOf/anyOf/oneOf and its index, or `not` (index 0).
struct Branch<'a> {
    junctor: &'static str,
    index: usize,
    path: String,
    schema: &'a Value,
}

/// The junctor branches of `node`.
fn junctor_branches<'a>(node: &'a Value, path: &str) -> Vec<Branch<'a>> {
    let mut found = Vec::new();
    for junctor in JUNCTORS {
        for (index, schema) in schema_list(node, junctor).iter().enumerate() {
            found.push(Branch { junctor, index, path: format!("{path}.{junctor}[{index}]"), schema });
        }
    }
    if let Some(schema) = node.get("not") {
        found.push(Branch { junctor: "not", index: 0, path: format!("{path}.not"), schema });
    }
    found
}

/// What a CRD schema may not use anywhere: `$ref`, type `null` or unknown types, tuple items.
fn openapi_errors(node: &Value, path: &str, errors: &mut Vec<FieldError>) {
    if node.get("$ref").is_some() {
        errors.push(forbidden(&format!("{path}.$ref"), "$ref is not supported"));
    }
    match node.get("type") {
        Some(Value::String(t)) if t == "null" => errors
            .push(forbidden(&format!("{path}.type"), "type cannot be set to null, use nullable as an alternative")),
        Some(t @ Value::String(name)) if !TYPES.contains(&name.as_str()) => {
            let supported: Vec<Value> = TYPES.iter().map(|t| Value::from(*t)).collect();
            errors.push(FieldError::unsupported(&format!("{path}.type"), t, &supported));
        }
        _ => {}
    }
    if node.get("items").is_some_and(Value::is_array) {
        errors.push(forbidden(&format!("{path}.items"), "items must be a schema object and not an array"));
    }
    for (child_path, child, _) in children(node, path) {
        openapi_errors(child, &child_path, errors);
    }
    for branch in junctor_branches(node, path) {
        openapi_errors(branch.schema, &branch.path, errors);
    }
}

/// Types everywhere (but where int-or-string or preserve-unknown-fields stand in), items for
/// arrays, an object at the root, and junctors that only validate.
fn structural_errors(node: &Value, level: Level, path: &str, errors: &mut Vec<FieldError>) {
    let type_ = node.get("type").and_then(Value::as_str).unwrap_or_default();
    if type_ == "array" && node.get("items").is_none() {
        errors.push(FieldError::new(&format!("{path}.items"), FieldErrorKind::Required, "must be specified"));
    }
    for (child_path, child, child_level) in children(node, path) {
        structural_errors(child, child_level, &child_path, errors);
    }
    if level == Level::Root && !type_.is_empty() && type_ != "object" {
        errors.push(FieldError::invalid(&format!("{path}.type"), &format!("{type_:?}"), "must be object at the root"));
    }
    let typeless_allowed =
        ["x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource"]
            .iter()
            .any(|extension| flag(node, extension));
    if type_.is_empty() && !typeless_allowed {
        let detail = match level {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        errors.push(FieldError::new(&format!("{path}.type"), FieldErrorKind::Required, detail));
    }
    for branch in junctor_branches(node, path) {
        if !int_or_string_branch(node, &branch) {
            junctor_errors(branch.schema, &branch.path, errors);
        }
    }
}

/// int-or-string's two spellings kube-apiserver lets through: `anyOf: [{type: integer}, {type:
/// string}]`, or that anyOf as `allOf[0]`.
fn int_or_string_branch(node: &Value, branch: &Branch) -> bool {
    let pair = [json!({"type": "integer"}), json!({"type": "string"})];
    let is_pattern = |schema: &Value| schema_list(schema, "anyOf") == pair;
    flag(node, "x-kubernetes-int-or-string")
        && match (branch.junctor, branch.index) {
            ("anyOf", _) => is_pattern(node),
            ("allOf", 0) => is_pattern(branch.schema),
            _ => false,
        }
}

/// Inside a junctor a schema may only validate: no type, default, nullable, description, title.
fn junctor_errors(node: &Value, path: &str, errors: &mut Vec<FieldError>) {
    if node.get("type").is_some() {
        errors.push(forbidden(&format!("{path}.type"), "must be empty to be structural"));
    }
    if node.get("default").is_some() {
        errors.push(forbidden(&format!("{path}.default"), "must be undefined to be structural"));
    }
    if flag(node, "nullable") {
        errors.push(forbidden(&format!("{path}.nullable"), "must be false to be structural"));
    }
    for key in ["description", "title"] {
        if node.get(key).is_some_and(|v| v.as_str() != Some("")) {
            errors.push(forbidden(&format!("{path}.{key}"), "must be empty to be structural"));
        }
    }
    for (child_path, child, _) in children(node, path) {
        junctor_errors(child, &child_path, errors);
    }
    for branch in junctor_branches(node, path) {
        junctor_errors(branch.schema, &branch.path, errors);
    }
}

/// Root `metadata` is the server's: an object, restricted at most in `name` and `generateName`.
fn metadata_errors(root: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let Some(metadata) = root.get("properties").and_then(|p| p.get("metadata")) else { return };
    let path = format!("{path}.properties[metadata]");
    if let Some(type_) = metadata.get("type").and_then(Value::as_str).filter(|t| *t != "object") {
        errors.push(FieldError::invalid(&format!("{path}.type"), &format!("{type_:?}"), "must be object"));
    }
    let only_names = |properties: &Value| {
        properties.as_object().is_some_and(|p| p.keys().all(|k| k == "name" || k == "generateName"))
    };
    // Type, description and default are judged elsewhere (or not at all); anything else is not allowed.
    let restricts = metadata.as_object().into_iter().flatten().any(|(key, value)| match key.as_str() {
        "type" | "description" | "default" => false,
        "properties" => !only_names(value),
        _ => true,
    });
    if restricts {
        errors.push(forbidden(
            &path,
            "must not specify anything other than name and generateName, but metadata is implicitly specified",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "spec.versions[0].schema.openAPIV3Schema";

    fn errors(schema: Value) -> Vec<String> {
        schema_errors(&schema, ROOT).iter().map(FieldError::to_string).collect()
    }

    #[test]
    fn a_structural_schema_passes() {
        let schema = json!({"type": "object", "properties": {
            "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}}},
            "spec": {"type": "object", "nullable": true, "properties": {
                "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                "free": {"x-kubernetes-preserve-unknown-fields": true},
                "tags": {"type": "array", "items": {"type": "string"}, "default": ["a"]},
                "size": {"type": "integer", "not": {"enum": [0]}, "oneOf": [{"minimum": 1}, {"maximum": -1}]},
                "labels": {"type": "object", "additionalProperties": {"type": "string", "nullable": true}}}}}});
        assert_eq!(errors(schema), Vec::<String>::new());
    }

    #[test]
    fn ref_and_null_types_are_not_supported() {
        let metadata =
            json!({"oneOf": [{"$ref": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta#"}, {"type": "null"}]});
        assert_eq!(
            errors(json!({"type": "object", "properties": {"metadata": metadata}})),
            [
                format!("{ROOT}.properties[metadata].oneOf[0].$ref: Forbidden: $ref is not supported"),
                format!(
                    "{ROOT}.properties[metadata].oneOf[1].type: Forbidden: type cannot be set to null, use nullable as an alternative"
                ),
            ]
        );
        assert_eq!(
            errors(json!({"type": "object", "properties": {"a": {"type": "date"}}})),
            [format!(
                r#"{ROOT}.properties[a].type: Unsupported value: "date": supported values: "array", "boolean", "integer", "number", "object", "string""#
            )]
        );
    }

    #[test]
    fn nullable_is_refused_at_the_root_and_in_junctors_only() {
        let schema = json!({"type": "object", "nullable": true, "properties": {"a": {"type": "string", "nullable": true,
            "anyOf": [{"nullable": true, "type": "string", "default": "x"}]}}});
        assert_eq!(
            errors(schema),
            [
                format!("{ROOT}.nullable: Forbidden: nullable cannot be true at the root"),
                format!("{ROOT}.properties[a].anyOf[0].type: Forbidden: must be empty to be structural"),
                format!("{ROOT}.properties[a].anyOf[0].default: Forbidden: must be undefined to be structural"),
                format!("{ROOT}.properties[a].anyOf[0].nullable: Forbidden: must be false to be structural"),
            ]
        );
    }

    #[test]
    fn every_field_and_item_needs_a_type() {
        let schema = json!({"properties": {"a": {"properties": {"b": {"minimum": 1}}}, "l": {"type": "array"},
            "m": {"type": "array", "items": {"maxLength": 3}}}});
        assert_eq!(
            errors(schema),
            [
                format!(
                    "{ROOT}.properties[a].properties[b].type: Required value: must not be empty for specified object fields"
                ),
                format!("{ROOT}.properties[a].type: Required value: must not be empty for specified object fields"),
                format!("{ROOT}.properties[l].items: Required value: must be specified"),
                format!("{ROOT}.properties[m].items.type: Required value: must not be empty for specified array items"),
                format!("{ROOT}.type: Required value: must not be empty at the root"),
            ]
        );
        assert_eq!(
            errors(json!({"type": "string"})),
            [format!(r#"{ROOT}.type: Invalid value: "string": must be object at the root"#)]
        );
    }

    #[test]
    fn root_metadata_may_restrict_only_name_and_generate_name() {
        let with = |metadata: Value| errors(json!({"type": "object", "properties": {"metadata": metadata}}));
        assert!(with(json!({"type": "object", "properties": {"name": {"type": "string"}, "generateName": {"type": "string"}}})).is_empty());
        let message = format!(
            "{ROOT}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"
        );
        assert_eq!(with(json!({"type": "object", "nullable": true})), std::slice::from_ref(&message));
        assert_eq!(with(json!({"type": "object", "properties": {"labels": {"type": "object"}}})), [message]);
        assert_eq!(
            with(json!({"type": "string"})),
            [format!(r#"{ROOT}.properties[metadata].type: Invalid value: "string": must be object"#)]
        );
    }
}
