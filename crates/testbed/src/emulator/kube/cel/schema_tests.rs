//! CEL rules through `CrdSchema::validate`: placement, error texts, transition rules, ratcheting.

use serde_json::{Value, json};

use crate::emulator::kube::schema::{CrdSchema, FieldError};

/// The rules of crds/secureapiservices.secureapi.dev.yaml, on a trimmed spec.
fn service_schema() -> CrdSchema {
    let int = json!({"type": "integer", "format": "int32", "nullable": true});
    schema(json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["image"],
        "x-kubernetes-validations": [{"message": "set either replicas or autoscaling, not both",
            "rule": "!(has(self.replicas) && has(self.autoscaling))"}],
        "properties": {
            "image": {"type": "string", "minLength": 1},
            "replicas": int,
            "autoscaling": {"type": "object", "nullable": true, "required": ["maxReplicas"],
                "properties": {"minReplicas": int, "maxReplicas": int},
                "x-kubernetes-validations": [{"message": "minReplicas must not exceed maxReplicas",
                    "rule": "self.minReplicas <= self.maxReplicas"}]}}}}}))
}

/// GatewayConfig's `apiId` transition rule and its per-route backend rule (an atomic list).
fn gateway_schema() -> CrdSchema {
    let name = json!({"type": "string", "nullable": true});
    let backend = json!({"type": "object", "properties": {"service": name, "address": name},
        "x-kubernetes-validations": [{"message": "set exactly one of backend.service and backend.address",
            "rule": "has(self.service) != has(self.address)"}]});
    schema(json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "apiId": {"type": "string", "x-kubernetes-validations": [{"message": "apiId is immutable", "rule": "self == oldSelf"}]},
        "routes": {"type": "array", "x-kubernetes-list-type": "atomic",
            "items": {"type": "object", "properties": {"path": {"type": "string"}, "backend": backend}}}}}}}))
}

fn schema(open_api: Value) -> CrdSchema {
    CrdSchema::new(open_api).unwrap_or_else(|e| panic!("{e}"))
}

fn errors(schema: &CrdSchema, object: &Value, old: Option<&Value>) -> Vec<String> {
    schema.validate(object, old).iter().map(FieldError::to_string).collect()
}

fn with_spec(spec: Value) -> Value {
    json!({"apiVersion": "secureapi.dev/v1alpha1", "kind": "K", "metadata": {"name": "app"}, "spec": spec})
}

#[test]
fn a_failing_rule_reports_the_type_and_message_at_its_node() {
    let autoscaling = json!({"minReplicas": 1, "maxReplicas": 3});
    let object = with_spec(json!({"image": "app:1", "replicas": 2, "autoscaling": autoscaling}));
    assert_eq!(
        errors(&service_schema(), &object, None),
        [r#"spec: Invalid value: "object": set either replicas or autoscaling, not both"#]
    );
    let object = with_spec(json!({"image": "app:1", "autoscaling": {"minReplicas": 4, "maxReplicas": 3}}));
    assert_eq!(
        errors(&service_schema(), &object, None),
        [r#"spec.autoscaling: Invalid value: "object": minReplicas must not exceed maxReplicas"#]
    );
}

#[test]
fn a_valid_object_has_no_errors() {
    let object = with_spec(json!({"image": "app:1", "autoscaling": {"minReplicas": 1, "maxReplicas": 3}}));
    assert_eq!(errors(&service_schema(), &object, None), Vec::<String>::new());
}

#[test]
fn an_evaluation_error_is_reported_with_the_rule_message() {
    let object = with_spec(json!({"image": "app:1", "autoscaling": {"maxReplicas": 3}}));
    assert_eq!(
        errors(&service_schema(), &object, None),
        [
            r#"spec.autoscaling: Invalid value: "object": no such key: minReplicas evaluating rule: minReplicas must not exceed maxReplicas"#
        ]
    );
}

#[test]
fn blocking_schema_errors_replace_the_rules_by_a_fieldless_note() {
    let object = with_spec(json!({"replicas": 2, "autoscaling": {"maxReplicas": 3}}));
    assert_eq!(
        errors(&service_schema(), &object, None),
        [
            "spec.image: Required value",
            "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
        ]
    );
}

#[test]
fn rules_on_list_items_run_for_each_item() {
    let routes = json!([{"path": "/a", "backend": {"service": "s"}}, {"path": "/b", "backend": {}}]);
    assert_eq!(
        errors(&gateway_schema(), &with_spec(json!({"routes": routes})), None),
        [r#"spec.routes[1].backend: Invalid value: "object": set exactly one of backend.service and backend.address"#]
    );
}

#[test]
fn a_transition_rule_is_ignored_on_create_and_refuses_a_change_on_update() {
    let schema = gateway_schema();
    let old = with_spec(json!({"apiId": "shop"}));
    assert!(errors(&schema, &old, None).is_empty());
    assert!(errors(&schema, &old, Some(&old)).is_empty());
    assert_eq!(
        errors(&schema, &with_spec(json!({"apiId": "store"})), Some(&old)),
        [r#"spec.apiId: Invalid value: "string": apiId is immutable"#]
    );
    // No old value at that path: nothing to compare with.
    assert!(errors(&schema, &with_spec(json!({"apiId": "store"})), Some(&with_spec(json!({})))).is_empty());
}

#[test]
fn ratcheting_leaves_an_unchanged_invalid_value_alone() {
    let schema = service_schema();
    let stored = with_spec(json!({"image": "app:1", "autoscaling": {"minReplicas": 5, "maxReplicas": 3}}));
    let other_change = with_spec(json!({"image": "app:2", "autoscaling": {"minReplicas": 5, "maxReplicas": 3}}));
    assert!(errors(&schema, &other_change, Some(&stored)).is_empty());
    let still_invalid = with_spec(json!({"image": "app:1", "autoscaling": {"minReplicas": 6, "maxReplicas": 3}}));
    assert_eq!(
        errors(&schema, &still_invalid, Some(&stored)),
        [r#"spec.autoscaling: Invalid value: "object": minReplicas must not exceed maxReplicas"#]
    );
}

#[test]
fn list_map_items_correlate_by_key_for_transition_rules() {
    let schema = schema(json!({"type": "object", "properties": {"keys": {"type": "array",
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["key"],
        "items": {"type": "object", "properties": {"key": {"type": "string"}, "property": {"type": "string"}},
            "x-kubernetes-validations": [{"rule": "self.property == oldSelf.property"}]}}}}));
    let old = json!({"keys": [{"key": "a", "property": "x"}, {"key": "b", "property": "y"}]});
    let reordered =
        json!({"keys": [{"key": "b", "property": "y"}, {"key": "c", "property": "z"}, {"key": "a", "property": "w"}]});
    assert_eq!(
        errors(&schema, &reordered, Some(&old)),
        [r#"keys[2]: Invalid value: "object": failed rule: self.property == oldSelf.property"#]
    );
}

#[test]
fn root_rules_see_only_name_and_generate_name_of_metadata() {
    let schema = schema(json!({"type": "object", "x-kubernetes-validations": [
        {"rule": "size(self.metadata.name) <= 5", "message": "name too long"},
        {"rule": "self.metadata.name.matches('^[a-z]') && !has(self.metadata.labels)"}]}));
    let object = json!({"metadata": {"name": "9-long-name", "labels": {"a": "b"}}});
    assert_eq!(
        errors(&schema, &object, None),
        [
            r#"<nil>: Invalid value: "object": name too long"#,
            r#"<nil>: Invalid value: "object": failed rule: self.metadata.name.matches('^[a-z]') && !has(self.metadata.labels)"#,
        ]
    );
    assert!(errors(&schema, &json!({"metadata": {"name": "ok", "labels": {"a": "b"}}}), None).is_empty());
}

#[test]
fn field_path_reason_and_message_expression_are_honoured() {
    let schema = schema(json!({"type": "object", "properties": {"spec": {"type": "object",
        "properties": {"a": {"type": "integer"}, "m": {"type": "object", "additionalProperties": {"type": "string"}}},
        "x-kubernetes-validations": [
            {"rule": "self.a > 0", "fieldPath": ".a", "reason": "FieldValueForbidden", "message": "must be positive"},
            {"rule": "self.a > 1", "fieldPath": ".m['k']", "messageExpression": "'a is ' + string(self.a)"},
            {"rule": "self.a > 2", "reason": "FieldValueDuplicate"}]}}}));
    assert_eq!(
        errors(&schema, &json!({"spec": {"a": 0, "m": {}}}), None),
        [
            "spec.a: Forbidden: must be positive",
            r#"spec.m[k]: Invalid value: "object": a is 0"#,
            r#"spec: Duplicate value: "object""#,
        ]
    );
}

#[test]
fn a_rule_that_does_not_compile_refuses_the_schema() {
    let result = CrdSchema::new(json!({"type": "object", "properties": {"spec": {"type": "object",
        "x-kubernetes-validations": [{"rule": "self.a =="}]}}}));
    let message = result.err().unwrap_or_default();
    assert_eq!(
        message,
        r#"openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: "self.a ==": compilation failed: ERROR: <input>:1:10: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}
 | self.a ==
 | .........^"#
    );
}

#[test]
fn our_crds_accept_their_own_schemas_with_rules() {
    for crd in secure_api_operator::crdgen::all() {
        let crd = serde_json::to_value(&crd).unwrap_or_else(|e| panic!("{e}"));
        for version in crd["spec"]["versions"].as_array().into_iter().flatten() {
            let open_api = version["schema"]["openAPIV3Schema"].clone();
            if let Err(e) = CrdSchema::new(open_api) {
                panic!("{}: {e}", crd["metadata"]["name"]);
            }
        }
    }
}
