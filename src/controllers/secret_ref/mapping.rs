//! From a secret payload to the keys of a Kubernetes Secret: `raw` (the bytes under one key),
//! `json` (an object's properties, or dotted paths into it) and `dotenv` (`KEY=value` lines).
//!
//! Errors name the spec's keys and properties, line numbers and the places of payload keys —
//! never a value, nor a key of the payload (it may be secret data too).

use crate::api::secret_ref::{DEFAULT_RAW_KEY, KeyMapping, PayloadFormat};
use serde_json::Value;
use std::collections::BTreeMap;

use crate::secret_data::SecretData;

/// Why a payload cannot be mapped as the spec asks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("the payload is not UTF-8 text, which format {0} needs")]
    NotText(&'static str),
    #[error("the payload is not valid JSON (line {line}, column {column})")]
    InvalidJson { line: usize, column: usize },
    #[error("the JSON payload is not an object")]
    NotAnObject,
    #[error("property {0:?} is not in the payload")]
    PropertyMissing(String),
    #[error("dotenv line {0} is not KEY=value")]
    DotenvSyntax(usize),
    /// A key of the payload itself is named by its place only: a key can be secret data too.
    #[error(
        "the payload's key #{position} of {count}, in sorted order, is not a valid Secret key (letters, digits, '-', '_' and '.', at most 253, not starting with '..'); it is not shown, as it may be secret data"
    )]
    InvalidKey { position: usize, count: usize },
    #[error("the mapping yields no keys")]
    Empty,
}

/// Whether `key` is a valid key of a Secret's data, as kube-apiserver decides it.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key != "."
        && !key.starts_with("..")
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Maps `payload` to Secret data according to `format` and `keys`.
pub fn map_payload(payload: &[u8], format: PayloadFormat, keys: &[KeyMapping]) -> Result<SecretData, MappingError> {
    let data = match format {
        PayloadFormat::Raw => raw(payload, keys),
        PayloadFormat::Json => json(payload, keys)?,
        PayloadFormat::Dotenv => dotenv(payload, keys)?,
    };
    if let Some(index) = data.keys().position(|k| !is_valid_key(k)) {
        return Err(MappingError::InvalidKey { position: index + 1, count: data.len() });
    }
    if data.is_empty() {
        return Err(MappingError::Empty);
    }
    Ok(data)
}

fn raw(payload: &[u8], keys: &[KeyMapping]) -> SecretData {
    let key = keys.first().map_or(DEFAULT_RAW_KEY, |k| k.key.as_str());
    BTreeMap::from([(key.to_owned(), payload.to_vec())])
}

fn text<'a>(payload: &'a [u8], format: &'static str) -> Result<&'a str, MappingError> {
    std::str::from_utf8(payload).map_err(|_| MappingError::NotText(format))
}

fn json(payload: &[u8], keys: &[KeyMapping]) -> Result<SecretData, MappingError> {
    let document: Value = serde_json::from_str(text(payload, "json")?)
        .map_err(|e| MappingError::InvalidJson { line: e.line(), column: e.column() })?;
    let object = document.as_object().ok_or(MappingError::NotAnObject)?;
    if keys.is_empty() {
        return Ok(object.iter().map(|(k, v)| (k.clone(), json_bytes(v))).collect());
    }
    keys.iter()
        .map(|mapping| {
            let property = mapping.property.as_deref().unwrap_or(&mapping.key);
            let value =
                lookup(&document, property).ok_or_else(|| MappingError::PropertyMissing(property.to_owned()))?;
            Ok((mapping.key.clone(), json_bytes(value)))
        })
        .collect()
}

/// Follows a dotted path (`db.password`, `hosts.0`); a key that itself contains dots wins over
/// the path reading of it.
fn lookup<'a>(document: &'a Value, property: &str) -> Option<&'a Value> {
    if let Some(direct) = document.get(property) {
        return Some(direct);
    }
    property.split('.').try_fold(document, |node, step| match node {
        Value::Object(map) => map.get(step),
        Value::Array(items) => step.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// Strings are written as their text; everything else as compact JSON (`5432`, `false`, `{...}`).
fn json_bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Null => vec![],
        other => other.to_string().into_bytes(),
    }
}

fn dotenv(payload: &[u8], keys: &[KeyMapping]) -> Result<SecretData, MappingError> {
    let variables = parse_dotenv(text(payload, "dotenv")?)?;
    if keys.is_empty() {
        return Ok(variables.into_iter().map(|(k, v)| (k, v.into_bytes())).collect());
    }
    keys.iter()
        .map(|mapping| {
            let name = mapping.property.as_deref().unwrap_or(&mapping.key);
            let value = variables.get(name).ok_or_else(|| MappingError::PropertyMissing(name.to_owned()))?;
            Ok((mapping.key.clone(), value.clone().into_bytes()))
        })
        .collect()
}

/// `KEY=value` lines; blank lines and `#` comments are skipped, `export ` is allowed, values may
/// be single-quoted (literal) or double-quoted (`\n`, `\"`, `\\` escapes).
fn parse_dotenv(text: &str) -> Result<BTreeMap<String, String>, MappingError> {
    let mut variables = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (name, value) = line.split_once('=').ok_or(MappingError::DotenvSyntax(index + 1))?;
        let name = name.trim();
        let valid_name =
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid_name {
            return Err(MappingError::DotenvSyntax(index + 1));
        }
        let value = unquote(value.trim()).ok_or(MappingError::DotenvSyntax(index + 1))?;
        variables.insert(name.to_owned(), value);
    }
    Ok(variables)
}

fn unquote(value: &str) -> Option<String> {
    if let Some(inner) = value.strip_prefix('\'') {
        return inner.strip_suffix('\'').map(str::to_owned);
    }
    let Some(inner) = value.strip_prefix('"') else { return Some(value.to_owned()) };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            other => out.push(other),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(key: &str, property: Option<&str>) -> KeyMapping {
        KeyMapping { key: key.into(), property: property.map(Into::into) }
    }

    fn text_of(data: &SecretData, key: &str) -> Option<String> {
        data.get(key).map(|v| String::from_utf8_lossy(v).into_owned())
    }

    #[test]
    fn raw_puts_the_whole_payload_under_value_or_the_named_key() {
        let data = map_payload(b"s3cr3t", PayloadFormat::Raw, &[]);
        assert_eq!(data.as_ref().ok().and_then(|d| text_of(d, "value")).as_deref(), Some("s3cr3t"));
        let named = map_payload(b"s3cr3t", PayloadFormat::Raw, &[key("password", None)]);
        assert_eq!(named.ok().and_then(|d| text_of(&d, "password")).as_deref(), Some("s3cr3t"));
    }

    #[test]
    fn json_without_keys_writes_every_top_level_property() {
        let payload = br#"{"host":"db.example.com","port":5432,"debug":false,"nested":{"a":1}}"#;
        let data = map_payload(payload, PayloadFormat::Json, &[]).unwrap_or_default();
        assert_eq!(text_of(&data, "host").as_deref(), Some("db.example.com"));
        assert_eq!(text_of(&data, "port").as_deref(), Some("5432"));
        assert_eq!(text_of(&data, "debug").as_deref(), Some("false"));
        assert_eq!(text_of(&data, "nested").as_deref(), Some(r#"{"a":1}"#));
    }

    #[test]
    fn json_keys_follow_dotted_property_paths() {
        let payload = br#"{"db":{"password":"pw","hosts":["a","b"]},"odd.key":"x"}"#;
        let keys = [key("DB_PASSWORD", Some("db.password")), key("SECOND", Some("db.hosts.1")), key("odd.key", None)];
        let data = map_payload(payload, PayloadFormat::Json, &keys).unwrap_or_default();
        assert_eq!(text_of(&data, "DB_PASSWORD").as_deref(), Some("pw"));
        assert_eq!(text_of(&data, "SECOND").as_deref(), Some("b"));
        assert_eq!(text_of(&data, "odd.key").as_deref(), Some("x"));
        assert_eq!(data.len(), 3);
    }

    #[test]
    fn a_missing_property_is_named_but_no_value_is_shown() {
        let payload = br#"{"password":"SENTINEL-VALUE"}"#;
        let error = map_payload(payload, PayloadFormat::Json, &[key("user", Some("username"))]).err();
        let text = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("username") && !text.contains("SENTINEL"), "{text}");
    }

    #[test]
    fn invalid_json_reports_the_position_only() {
        let error = map_payload(b"{\"a\": SENTINEL}", PayloadFormat::Json, &[]).err();
        assert!(matches!(error, Some(MappingError::InvalidJson { line: 1, .. })));
        assert!(!error.map(|e| e.to_string()).unwrap_or_default().contains("SENTINEL"));
    }

    #[test]
    fn dotenv_reads_quoted_exported_and_commented_lines() {
        let payload = b"# comment\nexport DB_HOST=db.example.com\nDB_PASS=\"p\\\"w\\n\"\nLITERAL='a\\nb'\n\n";
        let data = map_payload(payload, PayloadFormat::Dotenv, &[]).unwrap_or_default();
        assert_eq!(text_of(&data, "DB_HOST").as_deref(), Some("db.example.com"));
        assert_eq!(text_of(&data, "DB_PASS").as_deref(), Some("p\"w\n"));
        assert_eq!(text_of(&data, "LITERAL").as_deref(), Some("a\\nb"));
    }

    #[test]
    fn dotenv_syntax_errors_name_the_line() {
        let error = map_payload(b"A=1\nnot a pair\n", PayloadFormat::Dotenv, &[]).err();
        assert_eq!(error, Some(MappingError::DotenvSyntax(2)));
    }

    #[test]
    fn keys_that_kubernetes_rejects_are_refused() {
        let error = map_payload(br#"{"has space":"x"}"#, PayloadFormat::Json, &[]).err();
        assert_eq!(error, Some(MappingError::InvalidKey { position: 1, count: 1 }));
        for bad in ["", ".", "..", "..data", "a/b", "a b", &"k".repeat(254)] {
            assert!(!is_valid_key(bad), "{bad:?}");
        }
        for good in ["tls.crt", ".dockerconfigjson", "a..b", "KEY_1-x"] {
            assert!(is_valid_key(good), "{good:?}");
        }
    }

    /// A payload's key may itself be secret (`{"<token>": true}`): it is named by its place.
    #[test]
    fn an_invalid_payload_key_is_named_by_its_place_never_shown() {
        let payload = br#"{"a":1,"b":2,"c SENTINEL/x":3,"d":4,"e":5}"#;
        let error = map_payload(payload, PayloadFormat::Json, &[]).err();
        assert_eq!(error, Some(MappingError::InvalidKey { position: 3, count: 5 }));
        let text = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.starts_with("the payload's key #3 of 5, in sorted order,"), "{text}");
        assert!(!text.contains("SENTINEL"), "{text}");
        let dotenv = map_payload(
            b"A=1
..SENTINEL=2
",
            PayloadFormat::Dotenv,
            &[],
        )
        .err();
        assert_eq!(dotenv, Some(MappingError::InvalidKey { position: 1, count: 2 }));
    }
}
