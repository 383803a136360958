//! The checked-in CRDs match the Rust types, and their schemas are structural, described and
//! validated the way DESIGN.md asks.

use crate::support::operator_bin;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

#[test]
fn crds_command_output_equals_the_checked_in_files() {
    let output = Command::new(operator_bin()).arg("crds").output().unwrap_or_else(|e| panic!("running crds: {e}"));
    assert!(output.status.success(), "crds failed: {}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8(output.stdout).unwrap_or_else(|e| panic!("crds printed non-UTF-8: {e}"));

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    let checked_in: String = files
        .iter()
        .map(|path| std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())))
        .collect();
    assert_eq!(files.len(), 3, "expected one file per CRD in crds/");
    assert!(
        printed == checked_in,
        "crds/ has drifted from the Rust types; regenerate with `cargo run -- crds --output-dir crds`"
    );
}

#[test]
fn the_crd_reference_in_docs_equals_a_fresh_rendering() {
    let output = Command::new(operator_bin())
        .args(["crds", "--reference"])
        .output()
        .unwrap_or_else(|e| panic!("running crds --reference: {e}"));
    assert!(output.status.success(), "crds --reference failed: {}", String::from_utf8_lossy(&output.stderr));
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/crd-reference.md");
    let checked_in = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert!(
        output.stdout == checked_in,
        "docs/crd-reference.md has drifted from the CRDs; regenerate with \
         `cargo run -- crds --reference > docs/crd-reference.md`"
    );
}

fn crd(plural: &str) -> Value {
    let crd = secure_api_operator::crdgen::all()
        .into_iter()
        .find(|crd| crd.spec.names.plural == plural)
        .unwrap_or_else(|| panic!("no CRD {plural}"));
    serde_json::to_value(crd).unwrap_or_else(|e| panic!("serialising {plural}: {e}"))
}

fn schema(plural: &str) -> Value {
    crd(plural)["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// Walks a schema: every node must carry a type (structural), every property a description, and
/// no type may hide in anyOf/oneOf/allOf. Returns the problems found, as paths.
fn structural_problems(node: &Value, path: &str, problems: &mut Vec<String>) {
    let int_or_string = node.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let preserve = node.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if node.get("type").is_none() && !int_or_string && !preserve {
        problems.push(format!("{path}: no type"));
    }
    for combinator in ["anyOf", "oneOf", "allOf"] {
        for (i, branch) in node.get(combinator).and_then(Value::as_array).into_iter().flatten().enumerate() {
            if branch.get("type").is_some() || branch.get("description").is_some() {
                problems.push(format!("{path}.{combinator}[{i}]: type or description in a combinator"));
            }
        }
    }
    if let Some(properties) = node.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            let child_path = format!("{path}.{name}");
            let described = child.get("description").and_then(Value::as_str).is_some_and(|d| d.len() > 3);
            if !described {
                problems.push(format!("{child_path}: no description"));
            }
            structural_problems(child, &child_path, problems);
        }
    }
    if let Some(items) = node.get("items") {
        structural_problems(items, &format!("{path}[]"), problems);
    }
    if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object()) {
        structural_problems(values, &format!("{path}{{}}"), problems);
    }
}

#[test]
fn every_schema_node_has_a_type_and_every_field_a_description() {
    for plural in ["secretrefs", "secureapiservices", "gatewayconfigs"] {
        let mut problems = vec![];
        structural_problems(&schema(plural), plural, &mut problems);
        assert!(problems.is_empty(), "{plural} schema problems:\n{}", problems.join("\n"));
    }
}

/// The schema node at a dotted path of property names; `[]` steps into array items.
fn at<'a>(schema: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(schema, |node, step| match step {
        "[]" => &node["items"],
        name => &node["properties"][name],
    })
}

fn assert_has(schema: &Value, path: &str, keyword: &str) {
    let node = if path.is_empty() { schema } else { at(schema, path) };
    assert!(node.get(keyword).is_some(), "{path}: expected `{keyword}` in {node}");
}

fn rules(node: &Value) -> Vec<String> {
    node["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|rule| rule["rule"].as_str().map(str::to_owned))
        .collect()
}

fn required(node: &Value) -> Vec<&str> {
    node["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect()
}

#[test]
fn secretref_schema_validates_ids_versions_durations_and_mappings() {
    let s = schema("secretrefs");
    assert_eq!(required(&s["properties"]["spec"]), ["secret"]);
    for (path, keyword) in [
        ("spec.secret", "pattern"),
        ("spec.secret", "maxLength"),
        ("spec.projectId", "pattern"),
        ("spec.version", "pattern"),
        ("spec.version", "default"),
        ("spec.refreshInterval", "pattern"),
        ("spec.refreshInterval", "default"),
        ("spec.format", "enum"),
        ("spec.keys", "maxItems"),
        ("spec.keys.[].key", "pattern"),
        ("spec.target.name", "pattern"),
        ("spec.target.creationPolicy", "enum"),
        ("spec.target.deletionPolicy", "enum"),
        ("spec.rolloutTargets.[].kind", "enum"),
        ("spec.rolloutTargets", "x-kubernetes-list-map-keys"),
    ] {
        assert_has(&s, path, keyword);
    }
    assert!(rules(at(&s, "spec.refreshInterval"))[0].contains("duration(self)"));
    let spec_rules = rules(at(&s, "spec"));
    assert!(spec_rules.iter().any(|r| r.contains("self.format != 'raw'")), "{spec_rules:?}");
    assert!(spec_rules.iter().any(|r| r.contains("self.projectId")), "{spec_rules:?}");
}

#[test]
fn secureapiservice_schema_validates_ports_replicas_and_exclusive_fields() {
    let s = schema("secureapiservices");
    assert_eq!(required(&s["properties"]["spec"]), ["image"]);
    for (path, keyword) in [
        ("spec.port", "minimum"),
        ("spec.port", "maximum"),
        ("spec.replicas", "maximum"),
        ("spec.autoscaling.maxReplicas", "minimum"),
        ("spec.autoscaling.targetCPUUtilizationPercentage", "maximum"),
        ("spec.resources.requests.cpu", "pattern"),
        ("spec.resources.limits.memory", "x-kubernetes-int-or-string"),
        ("spec.env.[].name", "pattern"),
        ("spec.secretEnv.[].secretRef", "pattern"),
        ("spec.secretFiles.[].mountPath", "pattern"),
        ("spec.serviceAccount.gcpServiceAccount", "pattern"),
        ("spec.healthCheck.path", "pattern"),
        ("spec.expose.type", "enum"),
        ("spec.rollout.maxSurge", "pattern"),
        ("spec.revisionHistoryLimit", "maximum"),
    ] {
        assert_has(&s, path, keyword);
    }
    let spec_rules = rules(at(&s, "spec"));
    assert!(spec_rules.iter().any(|r| r.contains("has(self.replicas) && has(self.autoscaling)")));
    assert!(spec_rules.iter().any(|r| r.contains("self.secretEnv.all")));
    assert!(rules(at(&s, "spec.autoscaling"))[0].contains("minReplicas <= self.maxReplicas"));
    assert!(rules(at(&s, "spec.disruptionBudget"))[0].contains("has(self.minAvailable) != has(self.maxUnavailable)"));
}

#[test]
fn gatewayconfig_schema_validates_routes_backends_and_references() {
    let s = schema("gatewayconfigs");
    assert_eq!(required(&s["properties"]["spec"]), ["routes"]);
    for (path, keyword) in [
        ("spec.routes", "minItems"),
        ("spec.routes", "maxItems"),
        ("spec.routes.[].path", "pattern"),
        ("spec.routes.[].methods.[]", "enum"),
        ("spec.routes.[].auth", "pattern"),
        ("spec.routes.[].operationId", "pattern"),
        ("spec.routes.[].backend.address", "pattern"),
        ("spec.routes.[].backend.pathTranslation", "enum"),
        ("spec.routes.[].backend.deadlineSeconds", "maximum"),
        ("spec.routes.[].backend.deadlineSeconds", "exclusiveMinimum"),
        ("spec.routes.[].quota", "maxProperties"),
        ("spec.location", "pattern"),
        ("spec.apiId", "pattern"),
        ("spec.auth.apiKey.in", "enum"),
        ("spec.auth.jwt.[].jwksUri", "pattern"),
        ("spec.quotas.[].limitPerMinute", "minimum"),
        ("spec.deletionPolicy", "enum"),
        ("spec.apiKeys.[].name", "pattern"),
        ("spec.apiKeys.[].overlap", "pattern"),
    ] {
        assert_has(&s, path, keyword);
    }
    assert_eq!(required(at(&s, "spec.routes.[]")), ["backend", "path"]);
    assert_eq!(required(at(&s, "spec.apiKeys.[]")), ["name", "secretName"]);
    assert!(rules(at(&s, "spec.routes.[].backend"))[0].contains("has(self.service) != has(self.address)"));
    assert_eq!(rules(at(&s, "spec.apiId")), ["self == oldSelf"]);
    let spec_rules = rules(at(&s, "spec"));
    assert_eq!(spec_rules.len(), 4, "{spec_rules:?}");
    assert!(spec_rules[3].contains("b.secretName == a.secretName"));
}

#[test]
fn crds_have_names_scope_status_and_printer_columns() {
    for (plural, short, column) in [
        ("secretrefs", "sref", ".status.syncedVersion"),
        ("secureapiservices", "sas", ".status.revision"),
        ("gatewayconfigs", "gwc", ".status.gatewayUrl"),
    ] {
        let crd = crd(plural);
        let spec = &crd["spec"];
        assert_eq!(spec["group"], "secureapi.dev");
        assert_eq!(spec["scope"], "Namespaced");
        assert_eq!(spec["names"]["shortNames"], serde_json::json!([short]));
        assert_eq!(spec["names"]["categories"], serde_json::json!(["secureapi"]));
        let version = &spec["versions"][0];
        assert_eq!(version["name"], "v1alpha1");
        assert!(version["subresources"]["status"].is_object(), "{plural}: no status subresource");
        let columns: Vec<&str> = version["additionalPrinterColumns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["jsonPath"].as_str())
            .collect();
        assert_eq!(columns.first(), Some(&r#".status.conditions[?(@.type=="Ready")].status"#), "{plural}");
        assert!(columns.contains(&column), "{plural}: no {column} column in {columns:?}");
        assert_eq!(columns.last(), Some(&".metadata.creationTimestamp"), "{plural}");
    }
}
