//! Schema pieces shared by the three kinds: value types whose wire form Kubernetes knows as
//! int-or-string, and the patterns that several fields reuse.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;

/// Go-style duration as Kubernetes users write it: `30s`, `5m`, `1h30m`, `250ms`; `ns` and `us`
/// too, as Go reads them and as `kube::core::Duration` writes a zero (`0ns`).
pub(crate) const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$";
/// A Google Cloud project id.
pub(crate) const PROJECT_ID_PATTERN: &str = r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$";
/// A Google service account e-mail.
pub(crate) const GCP_SERVICE_ACCOUNT_PATTERN: &str =
    r"^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.-]+\.gserviceaccount\.com$";
/// A Kubernetes object name (RFC 1123 DNS subdomain).
pub(crate) const DNS_SUBDOMAIN_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A key of a Secret's `data`.
pub(crate) const SECRET_KEY_PATTERN: &str = r"^[-._a-zA-Z0-9]+$";
/// An environment variable name as Kubernetes accepts it.
pub(crate) const ENV_NAME_PATTERN: &str = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$";

/// A value that is either a whole number or a string, like Kubernetes' `IntOrString`.
/// Used for resource quantities (`1`, `500m`, `512Mi`) and surge/unavailable counts
/// (`1`, `25%`). Serialised back in the form it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntOrString {
    Int(i64),
    String(String),
}

impl Serialize for IntOrString {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Int(n) => serializer.serialize_i64(*n),
            Self::String(s) => serializer.serialize_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for IntOrString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Int(i64),
            String(String),
        }
        Ok(match Wire::deserialize(deserializer)? {
            Wire::Int(n) => Self::Int(n),
            Wire::String(s) => Self::String(s),
        })
    }
}

impl std::fmt::Display for IntOrString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Int(n) => write!(f, "{n}"),
            Self::String(s) => f.write_str(s),
        }
    }
}

impl JsonSchema for IntOrString {
    fn schema_name() -> Cow<'static, str> {
        "IntOrString".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "x-kubernetes-int-or-string": true })
    }
}

// Kubernetes applies `pattern` to string values only and `minimum` to numbers only, which is
// exactly the check an int-or-string field needs. (Types inside `anyOf` are not allowed.)

/// A resource quantity such as `1`, `250m`, `512Mi` or `1.5Gi`.
pub(crate) fn quantity(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-int-or-string": true,
        "minimum": 0,
        "pattern": r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$",
    })
}

/// A count of pods or a percentage of them: `1` or `25%`.
pub(crate) fn int_or_percent(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-int-or-string": true,
        "minimum": 0,
        "pattern": r"^[0-9]+%$",
    })
}

#[cfg(test)]
mod duration_tests {
    use super::DURATION_PATTERN;
    use std::time::Duration;

    /// A duration field's value as the operator gets it: the schema's pattern (enforced by the
    /// API server), then `kube::core::Duration`, the one parser.
    fn duration(text: &str) -> Result<Duration, String> {
        let pattern = regex::Regex::new(DURATION_PATTERN).map_err(|e| e.to_string())?;
        if !pattern.is_match(text) {
            return Err(format!("{text:?} does not match the schema's pattern"));
        }
        let parsed: kube::core::Duration =
            serde_json::from_value(serde_json::json!(text)).map_err(|e| e.to_string())?;
        Ok(parsed.into())
    }

    #[test]
    fn durations_parse_like_kubernetes_users_write_them() {
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(duration("10").is_err());
        assert!(duration("5 minutes").is_err());
        assert!(duration("").is_err());
    }

    #[test]
    fn every_duration_the_pattern_accepts_parses() {
        // What the operator's own types write reads back: a zero pause is `0ns`.
        let zero = kube::core::Duration::from(Duration::ZERO).to_string();
        assert_eq!(duration(&zero), Ok(Duration::ZERO), "{zero}");
        for text in ["1s", "0.5s", "90m", "168h", "1h0m0s", "2h45m30.5s", "100ms", "007s", "0ns", "5us"] {
            assert!(duration(text).is_ok(), "{text}: {:?}", duration(text));
        }
    }
}
