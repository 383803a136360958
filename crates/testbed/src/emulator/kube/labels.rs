//! Label keys and values as kube-apiserver validates them (apimachinery's `ValidateLabels`): a
//! value of at most 63 bytes, alphanumeric at both ends with `-`, `_` and `.` between; a
//! key of the same shape, optionally behind a DNS-subdomain prefix and `/`. A Secret labelled
//! with a 64-character name is refused by a real server, and so here. Annotations
//! (`ValidateAnnotations`): keys of the same shape as label keys, after lowercasing, and at most
//! 256 KiB of keys and values together.

use super::schema_errors::{FieldError, FieldErrorKind};
use serde_json::{Value, json};

const PATH: &str = "metadata.labels";
const ANNOTATIONS_PATH: &str = "metadata.annotations";
/// apimachinery's `TotalAnnotationSizeLimitB`.
const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;
const MAX_VALUE: usize = 63;
const MAX_PREFIX: usize = 253;
const VALUE_FORMAT: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const NAME_FORMAT: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const PREFIX_FORMAT: &str = "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// `(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?` without the length.
fn qualified_shape(text: &str) -> bool {
    let inner_ok = text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    text.is_empty() || (inner_ok && ends_ok(text.chars().next()) && ends_ok(text.chars().last()))
}

fn subdomain_shape(text: &str) -> bool {
    let label = |part: &str| {
        !part.is_empty()
            && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !part.starts_with('-')
            && !part.ends_with('-')
    };
    text.split('.').all(label)
}

/// What is wrong with `key` as a qualified name, each problem prefixed with `shown` as the
/// apiserver quotes the value.
fn key_errors(key: &str) -> Vec<String> {
    key_problems(key, &json!(key).to_string())
}

fn key_problems(key: &str, shown: &str) -> Vec<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let mut problems = Vec::new();
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            problems.push("prefix part must be non-empty".to_owned());
        } else {
            if prefix.len() > MAX_PREFIX {
                problems.push(format!("prefix part must be no more than {MAX_PREFIX} bytes"));
            }
            if !subdomain_shape(prefix) {
                problems.push(PREFIX_FORMAT.to_owned());
            }
        }
    }
    if name.is_empty() {
        problems.push("name part must be non-empty".to_owned());
    } else {
        if name.len() > MAX_VALUE {
            problems.push(format!("name part must be no more than {MAX_VALUE} bytes"));
        }
        if !qualified_shape(name) {
            problems.push(NAME_FORMAT.to_owned());
        }
    }
    problems.into_iter().map(|problem| format!("{shown}: {problem}")).collect()
}

fn value_errors(value: &str) -> Vec<String> {
    let shown = json!(value).to_string();
    let mut problems = Vec::new();
    if value.len() > MAX_VALUE {
        problems.push(format!("must be no more than {MAX_VALUE} bytes"));
    }
    if !qualified_shape(value) {
        problems.push(VALUE_FORMAT.to_owned());
    }
    problems.into_iter().map(|problem| format!("{shown}: {problem}")).collect()
}

/// What is wrong with an object's annotations: every key that is not a qualified name once
/// lowercased (quoted as written), then the total size.
pub fn annotation_errors(object: &Value) -> Vec<FieldError> {
    let Some(annotations) = object["metadata"]["annotations"].as_object() else { return vec![] };
    let mut errors = Vec::new();
    for key in annotations.keys() {
        for detail in key_problems(&key.to_lowercase(), &json!(key).to_string()) {
            errors.push(FieldError::new(ANNOTATIONS_PATH, FieldErrorKind::Invalid, detail));
        }
    }
    let size: usize = annotations.iter().map(|(k, v)| k.len() + v.as_str().map_or(0, str::len)).sum();
    if size > MAX_ANNOTATIONS_BYTES {
        let detail = format!("may not be more than {MAX_ANNOTATIONS_BYTES} bytes");
        errors.push(FieldError::new(ANNOTATIONS_PATH, FieldErrorKind::TooLong, detail));
    }
    errors
}

/// What is wrong with an object's labels, in key order; none for valid (or absent) labels.
pub fn label_errors(object: &Value) -> Vec<FieldError> {
    let Some(labels) = object["metadata"]["labels"].as_object() else { return vec![] };
    let mut errors = Vec::new();
    for (key, value) in labels {
        let value = value.as_str().unwrap_or_default();
        for detail in key_errors(key).into_iter().chain(value_errors(value)) {
            errors.push(FieldError::new(PATH, FieldErrorKind::Invalid, detail));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(labels: Value) -> Vec<String> {
        label_errors(&json!({ "metadata": { "labels": labels } })).iter().map(FieldError::to_string).collect()
    }

    #[test]
    fn valid_labels_pass() {
        let labels = json!({ "app.kubernetes.io/managed-by": "secure-api-operator", "x": "", "a_b.c-d": "V_1.2-3" });
        assert!(messages(labels).is_empty());
    }

    #[test]
    fn a_value_over_63_bytes_is_refused_as_kube_apiserver_words_it() {
        let long = "a".repeat(64);
        assert_eq!(
            messages(json!({ "secureapi.dev/secretref": long })),
            [format!("metadata.labels: Invalid value: \"{long}\": must be no more than 63 bytes")]
        );
        assert_eq!(messages(json!({ "k": "a".repeat(63) })), Vec::<String>::new());
    }

    fn annotation_messages(annotations: Value) -> Vec<String> {
        annotation_errors(&json!({ "metadata": { "annotations": annotations } }))
            .iter()
            .map(FieldError::to_string)
            .collect()
    }

    #[test]
    fn annotation_keys_are_qualified_names_once_lowercased_and_values_are_free() {
        let fine = json!({ "Example.com/Some_Key": "any value: / !", "kubectl.kubernetes.io/last-applied-configuration": "{}" });
        assert!(annotation_messages(fine).is_empty());
        let refused = annotation_messages(json!({ "bad key": "v" }));
        assert_eq!(refused.len(), 1);
        assert!(
            refused[0].starts_with("metadata.annotations: Invalid value: \"bad key\": name part must consist of"),
            "{refused:?}"
        );
    }

    #[test]
    fn annotations_over_256_kib_in_all_are_too_long() {
        let big = "v".repeat(MAX_ANNOTATIONS_BYTES);
        assert_eq!(
            annotation_messages(json!({ "k": big })),
            ["metadata.annotations: Too long: may not be more than 262144 bytes"]
        );
    }

    #[test]
    fn a_key_over_its_lengths_is_refused_in_bytes_as_kube_apiserver_words_it() {
        let name = "n".repeat(64);
        let prefix = format!("{}.io", "p".repeat(251));
        let shown = |key: &str| json!(key).to_string();
        assert_eq!(
            messages(json!({ name.clone(): "v" })),
            [format!("metadata.labels: Invalid value: {}: name part must be no more than 63 bytes", shown(&name))]
        );
        let key = format!("{prefix}/k");
        assert_eq!(
            messages(json!({ key.clone(): "v" })),
            [format!("metadata.labels: Invalid value: {}: prefix part must be no more than 253 bytes", shown(&key))]
        );
    }

    #[test]
    fn bad_shapes_of_keys_and_values_are_refused() {
        assert_eq!(messages(json!({ "k": "-x" })).len(), 1);
        assert_eq!(messages(json!({ "Bad_Prefix/k": "v" })).len(), 1);
        assert_eq!(messages(json!({ "/k": "v" })).len(), 1);
        assert_eq!(messages(json!({ format!("p/{}", "n".repeat(64)): "v" })).len(), 1);
    }
}
