//! A Markdown field reference of the CRDs, rendered from their OpenAPI schemas, so the reference
//! can never disagree with what the API server validates.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

/// The reference of every CRD: a section per kind with a table of every field.
pub fn markdown(crds: &[CustomResourceDefinition]) -> String {
    let mut text = String::from(
        "# CRD reference\n\n\
         Generated from the CRDs' schemas by `secure-api-operator crds --reference`; a test fails when\n\
         it drifts. Every field, with its type, default and the description the API server serves\n\
         (`kubectl explain` shows the same text on a real cluster).\n",
    );
    for crd in crds {
        text.push_str(&section(crd));
    }
    text
}

fn section(crd: &CustomResourceDefinition) -> String {
    let names = &crd.spec.names;
    let version = crd.spec.versions.iter().find(|v| v.served).or(crd.spec.versions.first());
    let schema = version
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or_default();
    let short = names.short_names.as_deref().unwrap_or_default().join("`, `");
    let mut text = format!(
        "\n## {}\n\n`{}/{}`, plural `{}`, short name `{short}`, {}.\n\n{}\n\n| Field | Type | Description |\n|---|---|---|\n",
        names.kind,
        crd.spec.group,
        version.map(|v| v.name.as_str()).unwrap_or_default(),
        names.plural,
        if crd.spec.scope == "Namespaced" { "namespaced" } else { "cluster-scoped" },
        one_line(schema["description"].as_str().unwrap_or_default()),
    );
    for part in ["spec", "status"] {
        let required = is_required(&schema, part);
        rows(&mut text, part, &schema["properties"][part], required);
    }
    text
}

fn is_required(schema: &Value, field: &str) -> bool {
    schema["required"].as_array().is_some_and(|r| r.iter().any(|f| f == field))
}

/// One row for `field`, then rows for what it contains.
fn rows(text: &mut String, path: &str, schema: &Value, required: bool) {
    if schema.is_null() {
        return;
    }
    let name = if required { format!("`{path}` (required)") } else { format!("`{path}`") };
    text.push_str(&format!("| {name} | {} | {} |\n", type_of(schema), describe(schema)));
    if let Some(properties) = schema["properties"].as_object() {
        for (field, child) in properties {
            rows(text, &format!("{path}.{field}"), child, is_required(schema, field));
        }
    }
    if schema["type"] == "array" && schema["items"]["properties"].is_object() {
        let items = &schema["items"];
        for (field, child) in items["properties"].as_object().into_iter().flatten() {
            rows(text, &format!("{path}[].{field}"), child, is_required(items, field));
        }
    }
}

fn type_of(schema: &Value) -> String {
    if schema["x-kubernetes-int-or-string"] == true {
        return "int or string".into();
    }
    match schema["type"].as_str().unwrap_or("object") {
        "array" => format!("[]{}", type_of(&schema["items"])),
        "object" if schema["additionalProperties"].is_object() => {
            format!("map[string]{}", type_of(&schema["additionalProperties"]))
        }
        other => other.to_owned(),
    }
}

/// The description, then the enum values and the default.
fn describe(schema: &Value) -> String {
    let mut text = one_line(schema["description"].as_str().unwrap_or_default());
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values.iter().map(|v| format!("`{}`", literal(v))).collect();
        text.push_str(&format!(" One of {}.", values.join(", ")));
    }
    if !schema["default"].is_null() {
        text.push_str(&format!(" Default `{}`.", literal(&schema["default"])));
    }
    text.trim().replace('|', "\\|")
}

fn literal(value: &Value) -> String {
    value.as_str().map(str::to_owned).unwrap_or_else(|| value.to_string())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_field_of_every_kind_has_a_row() {
        let text = markdown(&crate::crdgen::all());
        for row in [
            "| `spec.secret` (required) | string |",
            "| `spec.secretEnv[].secretRef` (required) | string |",
            "| `spec.routes[].backend.service` | string |",
            "| `status.conditions[].reason` (required) | string |",
            "| `spec.target.labels` | map[string]string |",
        ] {
            assert!(text.contains(row), "no {row} in the reference");
        }
        assert!(text.contains("## SecretRef\n") && text.contains("## SecureApiService\n"));
        assert!(text.contains("## GatewayConfig\n"));
    }
}
