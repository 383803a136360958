//! Field errors of CRD schema validation, worded like kube-apiserver (`field.Error` fed by kube-openapi),
//! and the checks of single values (strings, numbers, enums, list uniqueness) that produce them.
//! `schema.rs` walks objects and schemas; the apiserver's wording lives here.

use std::fmt;

use regex::Regex;
use serde_json::{Number, Value, json};

/// One validation failure, kube-apiserver style.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// Field path: dotted names, list indices as `[i]` (`spec.keys[1]`); a map value is named like a
    /// property (`spec.quota.requests`), but as `[key]` in a CEL rule's path.
    pub path: String,
    /// What kind of failure this is; decides the words and the `details.causes` reason.
    pub kind: FieldErrorKind,
    /// Everything after `<Kind words>: `, bad value included (`"xml": supported values: ...`); empty for Required.
    pub detail: String,
}

/// The `field.ErrorType`s schema validation produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// A required field is absent.
    Required,
    /// The value breaks a constraint (pattern, bounds, ...).
    Invalid,
    /// The value is not one of the enum values.
    Unsupported,
    /// A string exceeds maxLength.
    TooLong,
    /// A list or map exceeds maxItems / maxProperties.
    TooMany,
    /// A list-type set item or list-type map key repeats.
    Duplicate,
    /// The value has the wrong JSON type or format.
    TypeMismatch,
    /// A CEL rule with `reason: FieldValueForbidden` failed.
    Forbidden,
}

impl FieldErrorKind {
    /// The words the apiserver prints for this kind (`field.ErrorType.String()`).
    pub fn words(self) -> &'static str {
        match self {
            Self::Required => "Required value",
            Self::Invalid | Self::TypeMismatch => "Invalid value",
            Self::Unsupported => "Unsupported value",
            Self::TooLong => "Too long",
            Self::TooMany => "Too many",
            Self::Duplicate => "Duplicate value",
            Self::Forbidden => "Forbidden",
        }
    }

    /// The `details.causes[].reason` of this kind (`metav1.CauseType`).
    pub fn reason(self) -> &'static str {
        match self {
            Self::Required => "FieldValueRequired",
            Self::Invalid => "FieldValueInvalid",
            Self::Unsupported => "FieldValueNotSupported",
            Self::TooLong => "FieldValueTooLong",
            Self::TooMany => "FieldValueTooMany",
            Self::Duplicate => "FieldValueDuplicate",
            Self::TypeMismatch => "FieldValueTypeInvalid",
            Self::Forbidden => "FieldValueForbidden",
        }
    }
}

impl FieldError {
    pub(super) fn new(path: &str, kind: FieldErrorKind, detail: impl Into<String>) -> Self {
        Self { path: path.to_owned(), kind, detail: detail.into() }
    }

    pub(super) fn required(path: &str) -> Self {
        Self::new(path, FieldErrorKind::Required, "")
    }

    /// `Invalid value: <value>: <message>`; `shown` is the already rendered bad value.
    pub(super) fn invalid(path: &str, shown: &str, message: &str) -> Self {
        Self::new(path, FieldErrorKind::Invalid, format!("{shown}: {message}"))
    }

    /// kube-openapi's type failure; `actual` is the value's type name, or the string that breaks a format.
    pub(super) fn type_mismatch(path: &str, expected: &str, actual: &str) -> Self {
        let shown = quote(actual);
        Self::new(
            path,
            FieldErrorKind::TypeMismatch,
            format!("{shown}: {path} in body must be of type {expected}: {shown}"),
        )
    }

    pub(super) fn unsupported(path: &str, value: &Value, allowed: &[Value]) -> Self {
        let quoted: Vec<String> = allowed
            .iter()
            .map(|v| match v {
                Value::String(s) => quote(s),
                other => quote(&other.to_string()),
            })
            .collect();
        let detail = format!("{}: supported values: {}", render_value(value), quoted.join(", "));
        Self::new(path, FieldErrorKind::Unsupported, detail)
    }

    pub(super) fn too_long(path: &str, max: u64) -> Self {
        Self::new(path, FieldErrorKind::TooLong, format!("may not be more than {max} {}", plural(max, "byte")))
    }

    pub(super) fn too_many(path: &str, actual: u64, max: u64) -> Self {
        Self::new(path, FieldErrorKind::TooMany, format!("{actual}: must have at most {max} {}", plural(max, "item")))
    }

    pub(super) fn duplicate(path: &str, value: &Value) -> Self {
        Self::new(path, FieldErrorKind::Duplicate, render_value(value))
    }

    /// Errors after which kube-apiserver does not run CEL rules (`hasBlockingErr`).
    pub(super) fn blocks_rules(&self) -> bool {
        use FieldErrorKind::{Required, TooLong, TooMany, TypeMismatch, Unsupported};
        matches!(self.kind, Required | TooLong | TooMany | TypeMismatch | Unsupported)
    }

    /// The fieldless note kube-apiserver adds when blocking errors kept CEL rules from running.
    pub(super) fn rules_not_checked() -> Self {
        let message = "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";
        // `field.Invalid(nil, nil, ...)`: a nil path prints `<nil>`, a nil value `null` unquoted (current apimachinery).
        Self::invalid("<nil>", "null", message)
    }

    /// The error without its path (`field.Error.ErrorBody()`), as in `details.causes[].message`.
    fn body(&self) -> String {
        if self.detail.is_empty() {
            self.kind.words().to_owned()
        } else {
            format!("{}: {}", self.kind.words(), self.detail)
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.body())
    }
}

/// The 422 message: `<Kind>.<group> "<name>" is invalid: <error>` for one error,
/// `... is invalid: [<e1>, <e2>]` for several (repeated texts once, like the apiserver's aggregate).
pub fn invalid_message(kind: &str, group: &str, name: &str, errors: &[FieldError]) -> String {
    let qualified = if group.is_empty() { kind.to_owned() } else { format!("{kind}.{group}") };
    // Like utilerrors.Aggregate, repeated messages are printed once.
    let mut messages: Vec<String> = Vec::new();
    for message in errors.iter().map(FieldError::to_string) {
        if !messages.contains(&message) {
            messages.push(message);
        }
    }
    let listed = match messages.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    format!("{qualified} {} is invalid: {listed}", quote(name))
}

/// `details.causes` entries: `{"reason": "FieldValue...", "message": <error text without the path>, "field": <path>}`.
pub fn causes(errors: &[FieldError]) -> Vec<Value> {
    errors.iter().map(|e| json!({"reason": e.kind.reason(), "message": e.body(), "field": e.path})).collect()
}

/// maxLength, minLength, pattern (first failure only, like kube-openapi), then the `date-time` format.
pub(super) fn string_errors(schema: &Value, text: &str, regex: Option<&Regex>, path: &str) -> Vec<FieldError> {
    let chars = text.chars().count() as u64;
    let shown = quote(text);
    let mut errors = Vec::new();
    if let Some(max) = uint(schema, "maxLength").filter(|max| chars > *max) {
        errors.push(FieldError::too_long(path, max));
    } else if let Some(min) = uint(schema, "minLength").filter(|min| chars < *min) {
        errors.push(FieldError::invalid(path, &shown, &format!("{path} in body should be at least {min} chars long")));
    } else if let Some(regex) = regex.filter(|r| !r.is_match(text)) {
        errors.push(FieldError::invalid(path, &shown, &format!("{path} in body should match '{}'", regex.as_str())));
    }
    if schema.get("format").and_then(Value::as_str) == Some("date-time") && text.parse::<jiff::Timestamp>().is_err() {
        errors.push(FieldError::type_mismatch(path, "date-time", text));
    }
    errors
}

/// multipleOf, maximum, minimum (a whole number and its bounds shown as integers, others as Go
/// floats, like kube-openapi), then int32/int64 ranges.
pub(super) fn number_errors(schema: &Value, value: &Value, number: &Number, path: &str) -> Vec<FieldError> {
    let Some(x) = number.as_f64() else { return Vec::new() };
    let mut failed: Vec<String> = Vec::new();
    if let Some(factor) = float(schema, "multipleOf").filter(|f| !is_multiple(x, *f)) {
        failed.push(format!("a multiple of {}", render_float(factor)));
    }
    // kube-openapi compares a whole JSON number (Go's int64) with the bound truncated to an
    // integer, `int64(bound)`: `0` and `-0` pass `minimum: 0.001`, `0.0` does not. serde_json
    // reads `-0` as a float; negative zero counts as whole here (`-0.0`, rarer, as well).
    let whole = !number.is_f64() || (x == 0.0 && x.is_sign_negative());
    let bound = |key: &str| float(schema, key).map(|b| if whole { b.trunc() } else { b });
    // Both int64s then, printed as integers (`1000000`, where a float prints `1e+06`).
    let render_bound = |b: f64| if whole { format!("{}", b as i64) } else { render_float(b) };
    let shown = match (number.is_f64(), whole) {
        (false, _) => number.to_string(),
        (true, true) => "0".to_owned(),
        (true, false) => render_float(x),
    };
    if let Some(max) = bound("maximum") {
        let exclusive = flag(schema, "exclusiveMaximum");
        if x > max || (exclusive && x >= max) {
            failed.push(format!("less than {}{}", if exclusive { "" } else { "or equal to " }, render_bound(max)));
        }
    }
    if let Some(min) = bound("minimum") {
        let exclusive = flag(schema, "exclusiveMinimum");
        if x < min || (exclusive && x <= min) {
            failed.push(format!("greater than {}{}", if exclusive { "" } else { "or equal to " }, render_bound(min)));
        }
    }
    let mut errors: Vec<FieldError> = failed
        .iter()
        .map(|rule| FieldError::invalid(path, &shown, &format!("{path} in body should be {rule}")))
        .collect();
    let format = schema.get("format").and_then(Value::as_str);
    let fits = match format {
        Some("int32") => number.is_f64() || number.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
        Some("int64") => number.is_f64() || number.is_i64(),
        _ => true,
    };
    if let (false, Some(format)) = (fits, format) {
        let message = format!("{}: {path} in body must be of type {format}", render_value(value));
        errors.push(FieldError::new(path, FieldErrorKind::TypeMismatch, message));
    }
    errors
}

/// kube-openapi's check: the quotient (or its inverse for factors below one) must be whole.
fn is_multiple(x: f64, factor: f64) -> bool {
    if factor <= 0.0 {
        return true;
    }
    let quotient = if factor < 1.0 { 1.0 / factor * x } else { x / factor };
    quotient.fract() == 0.0
}

pub(super) fn enum_error(schema: &Value, value: &Value, path: &str) -> Option<FieldError> {
    let allowed = schema.get("enum").and_then(Value::as_array)?;
    // Numbers compare by value (1 == 1.0), as kube-openapi converts before comparing.
    let same = |a: &Value| match (a.as_f64(), value.as_f64()) {
        (Some(x), Some(y)) => x.total_cmp(&y).is_eq(),
        _ => a == value,
    };
    (!allowed.iter().any(same)).then(|| FieldError::unsupported(path, value, allowed))
}

pub(super) fn property_count_error(schema: &Value, count: u64, path: &str) -> Option<FieldError> {
    if let Some(min) = uint(schema, "minProperties").filter(|min| count < *min) {
        let message = format!("{path} in body should have at least {min} properties");
        return Some(FieldError::invalid(path, &count.to_string(), &message));
    }
    let max = uint(schema, "maxProperties")?;
    (count > max).then(|| FieldError::too_many(path, count, max))
}

/// `x-kubernetes-list-type`: `set` items and `map` key tuples must be unique.
pub(super) fn list_type_errors(schema: &Value, items: &[Value], path: &str) -> Vec<FieldError> {
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => duplicates(path, items),
        Some("map") => list_map_errors(schema, items, path),
        _ => Vec::new(),
    }
}

fn list_map_errors(schema: &Value, items: &[Value], path: &str) -> Vec<FieldError> {
    if let Some((i, item)) = items.iter().enumerate().find(|(_, item)| !item.is_object() && !item.is_null()) {
        let message = "must be an object for an array of list-type map";
        return vec![FieldError::invalid(&format!("{path}[{i}]"), &render_value(item), message)];
    }
    let keys: Vec<&str> = schema_list(schema, "x-kubernetes-list-map-keys").iter().filter_map(Value::as_str).collect();
    // Each item's key tuple, absent keys left out, is what the apiserver compares and reports.
    let tuples: Vec<Value> = items
        .iter()
        .map(|item| keys.iter().filter_map(|k| item.get(*k).map(|v| ((*k).to_owned(), v.clone()))).collect())
        .collect();
    duplicates(path, &tuples)
}

/// A Duplicate error at the second occurrence of every repeated value.
pub(super) fn duplicates(path: &str, values: &[Value]) -> Vec<FieldError> {
    // Value equality ignores map key order, whatever serde_json's map flavour is.
    let mut seen: Vec<(&Value, usize)> = Vec::new();
    let mut errors = Vec::new();
    for (i, value) in values.iter().enumerate() {
        match seen.iter_mut().find(|(earlier, _)| *earlier == value) {
            Some((_, count)) => {
                *count += 1;
                if *count == 2 {
                    errors.push(FieldError::duplicate(&format!("{path}[{i}]"), value));
                }
            }
            None => seen.push((value, 1)),
        }
    }
    errors
}

pub(super) fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool).unwrap_or(false)
}

pub(super) fn uint(schema: &Value, key: &str) -> Option<u64> {
    schema.get(key).and_then(Value::as_u64)
}

fn float(schema: &Value, key: &str) -> Option<f64> {
    schema.get(key).and_then(Value::as_f64)
}

pub(super) fn schema_list<'a>(schema: &'a Value, key: &str) -> &'a [Value] {
    schema.get(key).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// A bad value as the apiserver prints it: strings quoted, numbers Go-style, `"null"` for null, JSON otherwise.
pub(super) fn render_value(value: &Value) -> String {
    match value {
        Value::Null => quote("null"),
        Value::Number(n) if n.is_f64() => n.as_f64().map_or_else(|| n.to_string(), render_float),
        other => other.to_string(),
    }
}

/// A float as Go's `%v` prints it: shortest digits, exponent form (`1e+06`, `2.5e-05`) when the exponent
/// reaches the precision or drops below -4.
pub(super) fn render_float(x: f64) -> String {
    let scientific = format!("{x:e}");
    let Some((mantissa, exponent)) = scientific.split_once('e') else { return x.to_string() };
    let Ok(exponent) = exponent.parse::<i32>() else { return x.to_string() };
    let digits = i32::try_from(mantissa.chars().filter(char::is_ascii_digit).count()).unwrap_or(i32::MAX);
    // strconv.FormatFloat(x, 'g', -1, 64): precision 6, lowered to the digit count unless zeros would pad the integer.
    let precision = if digits < 6 && digits > exponent { digits } else { 6 };
    if exponent < -4 || exponent >= precision {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
    } else {
        x.to_string()
    }
}

fn quote(text: &str) -> String {
    Value::from(text).to_string()
}

fn plural(count: u64, noun: &str) -> String {
    if count == 1 { noun.to_owned() } else { format!("{noun}s") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_prints_path_words_and_detail() {
        assert_eq!(FieldError::required("spec.secret").to_string(), "spec.secret: Required value");
        assert_eq!(
            FieldError::type_mismatch("spec.image", "string", "integer").to_string(),
            r#"spec.image: Invalid value: "integer": spec.image in body must be of type string: "integer""#
        );
        assert_eq!(
            FieldError::too_long("spec.secret", 512).to_string(),
            "spec.secret: Too long: may not be more than 512 bytes"
        );
        assert_eq!(
            FieldError::too_many("spec.keys", 70, 64).to_string(),
            "spec.keys: Too many: 70: must have at most 64 items"
        );
    }

    #[test]
    fn invalid_message_lists_several_errors_once_each() {
        let secret = FieldError::required("spec.secret");
        let kind = FieldError::new("spec.kind", FieldErrorKind::Invalid, r#""": bad"#);
        assert_eq!(
            invalid_message("SecretRef", "secureapi.dev", "db", std::slice::from_ref(&secret)),
            r#"SecretRef.secureapi.dev "db" is invalid: spec.secret: Required value"#
        );
        assert_eq!(
            invalid_message("ConfigMap", "", "x", &[secret.clone(), kind, secret]),
            r#"ConfigMap "x" is invalid: [spec.secret: Required value, spec.kind: Invalid value: "": bad]"#
        );
    }

    #[test]
    fn causes_carry_reason_message_without_path_and_field() {
        let errors = [FieldError::required("spec.secret"), FieldError::duplicate("spec.keys[1]", &json!({"key": "a"}))];
        assert_eq!(
            causes(&errors),
            vec![
                json!({"reason": "FieldValueRequired", "message": "Required value", "field": "spec.secret"}),
                json!({"reason": "FieldValueDuplicate", "message": r#"Duplicate value: {"key":"a"}"#, "field": "spec.keys[1]"}),
            ]
        );
    }

    #[test]
    fn floats_render_like_go() {
        let rendered: Vec<String> =
            [65535.0, 1e6, 0.5, 1_234_567.0, 123_456.0, 0.0, -2.5e-5, 3600.0].into_iter().map(render_float).collect();
        assert_eq!(rendered, ["65535", "1e+06", "0.5", "1.234567e+06", "123456", "0", "-2.5e-05", "3600"]);
    }

    /// `spec.port` of crds/secureapiservices.secureapi.dev.yaml.
    fn port() -> Value {
        json!({"type": "integer", "format": "int32", "default": 8080, "minimum": 1.0, "maximum": 65535.0})
    }

    fn number_texts(schema: &Value, value: Value, path: &str) -> Vec<String> {
        let Value::Number(number) = &value else { return vec!["not a number".to_owned()] };
        number_errors(schema, &value, number, path).iter().map(FieldError::to_string).collect()
    }

    #[test]
    fn bounds_violations_use_apiserver_wording() {
        assert_eq!(
            number_texts(&port(), json!(70000), "spec.port"),
            ["spec.port: Invalid value: 70000: spec.port in body should be less than or equal to 65535"]
        );
        assert_eq!(
            number_texts(&port(), json!(0), "spec.port"),
            ["spec.port: Invalid value: 0: spec.port in body should be greater than or equal to 1"]
        );
        let exclusive = json!({"minimum": 0.5, "exclusiveMinimum": true, "multipleOf": 0.2});
        assert_eq!(
            number_texts(&exclusive, json!(0.5), "w"),
            [
                "w: Invalid value: 0.5: w in body should be a multiple of 0.2",
                "w: Invalid value: 0.5: w in body should be greater than 0.5"
            ]
        );
    }

    #[test]
    fn a_whole_number_is_compared_with_the_bounds_truncated_as_kube_apiserver_does() {
        let deadline = json!({"type": "number", "minimum": 0.001, "maximum": 3600.5});
        assert!(number_texts(&deadline, json!(0), "d").is_empty(), "0 passes minimum 0.001 on kube-apiserver");
        let minus_zero: Value = serde_json::from_str("-0").unwrap_or_else(|e| panic!("{e}"));
        assert!(number_texts(&deadline, minus_zero.clone(), "d").is_empty(), "-0 is a whole number too");
        assert_eq!(
            number_texts(&deadline, json!(3601), "d"),
            ["d: Invalid value: 3601: d in body should be less than or equal to 3600"]
        );
        assert_eq!(
            number_texts(&deadline, json!(3600.7), "d"),
            ["d: Invalid value: 3600.7: d in body should be less than or equal to 3600.5"]
        );
        assert_eq!(
            number_texts(&deadline, json!(0.0), "d"),
            ["d: Invalid value: 0: d in body should be greater than or equal to 0.001"]
        );
        let exclusive = json!({"type": "number", "minimum": 0, "exclusiveMinimum": true});
        assert_eq!(
            number_texts(&exclusive, json!(0), "d"),
            ["d: Invalid value: 0: d in body should be greater than 0"]
        );
        assert_eq!(
            number_texts(&exclusive, json!(0.0), "d"),
            ["d: Invalid value: 0: d in body should be greater than 0"]
        );
    }

    #[test]
    fn whole_numbers_and_their_bounds_print_as_integers_past_a_million() {
        // backendRefs[].weight of Gateway API's HTTPRoute.
        let weight = json!({"type": "integer", "format": "int32", "default": 1, "minimum": 0.0, "maximum": 1000000.0});
        assert_eq!(
            number_texts(&weight, json!(1000001), "w"),
            ["w: Invalid value: 1000001: w in body should be less than or equal to 1000000"]
        );
        assert_eq!(
            number_texts(&json!({"type": "number", "maximum": 1000000.0}), json!(1000000.5), "n"),
            ["n: Invalid value: 1.0000005e+06: n in body should be less than or equal to 1e+06"],
            "a float stays a float"
        );
    }

    #[test]
    fn int32_format_rejects_out_of_range_integers() {
        let errors = number_texts(&port(), json!(3_000_000_000_u64), "spec.port");
        assert_eq!(
            errors.last().map(String::as_str),
            Some("spec.port: Invalid value: 3000000000: spec.port in body must be of type int32")
        );
        assert!(number_texts(&json!({"format": "int64"}), json!(-5), "n").is_empty());
    }

    #[test]
    fn date_time_format_must_be_rfc3339() {
        let schema = json!({"type": "string", "format": "date-time"});
        assert!(string_errors(&schema, "2024-05-01T10:00:00.5+02:00", None, "t").is_empty());
        let errors = string_errors(&schema, "yesterday", None, "status.lastSyncTime");
        assert_eq!(
            errors.iter().map(FieldError::to_string).collect::<Vec<_>>(),
            [
                r#"status.lastSyncTime: Invalid value: "yesterday": status.lastSyncTime in body must be of type date-time: "yesterday""#
            ]
        );
    }

    #[test]
    fn enum_violation_lists_supported_values() {
        // `spec.format` of crds/secretrefs.secureapi.dev.yaml.
        let schema = json!({"type": "string", "default": "raw", "enum": ["raw", "json", "dotenv"]});
        assert_eq!(enum_error(&schema, &json!("json"), "spec.format"), None);
        assert_eq!(
            enum_error(&schema, &json!("xml"), "spec.format").map(|e| e.to_string()),
            Some(r#"spec.format: Unsupported value: "xml": supported values: "raw", "json", "dotenv""#.to_owned())
        );
        assert_eq!(enum_error(&json!({"enum": [1, 2]}), &json!(1.0), "n"), None);
    }

    #[test]
    fn list_set_reports_each_repeated_item_once() {
        let set = json!({"type": "array", "x-kubernetes-list-type": "set"});
        let errors =
            list_type_errors(&set, &[json!("a"), json!("b"), json!("a"), json!("a"), json!(1), json!(1.0)], "tags");
        assert_eq!(errors, [FieldError::duplicate("tags[2]", &json!("a"))]);
    }

    #[test]
    fn list_map_compares_key_tuples_and_needs_objects() {
        // `spec.rolloutTargets` of crds/secretrefs.secureapi.dev.yaml: keyed by kind and name.
        let map = json!({"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["kind", "name"]});
        let items = [
            json!({"kind": "Deployment", "name": "a"}),
            json!({"kind": "StatefulSet", "name": "a"}),
            json!({"name": "a", "kind": "Deployment"}),
        ];
        let errors: Vec<String> =
            list_type_errors(&map, &items, "spec.rolloutTargets").iter().map(FieldError::to_string).collect();
        assert_eq!(errors, [r#"spec.rolloutTargets[2]: Duplicate value: {"kind":"Deployment","name":"a"}"#]);
        let errors = list_type_errors(&map, &[json!({"kind": "Deployment"}), json!("x")], "spec.rolloutTargets");
        assert_eq!(
            errors.iter().map(FieldError::to_string).collect::<Vec<_>>(),
            [r#"spec.rolloutTargets[1]: Invalid value: "x": must be an object for an array of list-type map"#]
        );
    }

    #[test]
    fn unsupported_quotes_every_allowed_value() {
        let error = FieldError::unsupported("spec.n", &json!(3), &[json!("raw"), json!(1)]);
        assert_eq!(error.to_string(), r#"spec.n: Unsupported value: 3: supported values: "raw", "1""#);
    }
}
