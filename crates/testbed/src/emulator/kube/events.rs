//! Events: one store, two APIs. kube-apiserver keeps core/v1 and events.k8s.io/v1 Events in one
//! storage and converts between the two versions (k8s.io/kubernetes `pkg/apis/events/v1`
//! conversion); the emulator stores the core/v1 shape and converts events.k8s.io/v1 requests
//! and responses with the functions here. Field selectors of both APIs are evaluated against
//! the stored core shape (`EventToSelectableFields` and the events.k8s.io field-label mapping).
//! Both are served with the fields Go's encoder always writes, as kube-apiserver serves them.

use super::selector::field_text;
use serde_json::{Map, Value};

/// Fields that carry over, as (core/v1 name, events.k8s.io/v1 name). Object references
/// (`involvedObject`/`regarding`, `related`), sources and series have the same shape in both.
const FIELDS: [(&str, &str); 15] = [
    ("metadata", "metadata"),
    ("involvedObject", "regarding"),
    ("related", "related"),
    ("message", "note"),
    ("reason", "reason"),
    ("type", "type"),
    ("action", "action"),
    ("reportingComponent", "reportingController"),
    ("reportingInstance", "reportingInstance"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

/// Fields of core/v1 Event that kube-apiserver writes even when unset, with their zero values:
/// Go's encoder leaves no struct out (a `metav1.Time` is `null`, an object `{}`), nor strings
/// without `omitempty`. `kubectl get events --sort-by=.lastTimestamp` needs them: it fails when
/// no Event has the key at all, and an Event written through events.k8s.io/v1 has no time there.
const CORE_ZERO_FIELDS: [(&str, ZeroValue); 7] = [
    ("involvedObject", ZeroValue::Object),
    ("source", ZeroValue::Object),
    ("firstTimestamp", ZeroValue::Null),
    ("lastTimestamp", ZeroValue::Null),
    ("eventTime", ZeroValue::Null),
    ("reportingComponent", ZeroValue::String),
    ("reportingInstance", ZeroValue::String),
];

/// The same for events.k8s.io/v1 Event.
const EVENTS_V1_ZERO_FIELDS: [(&str, ZeroValue); 5] = [
    ("eventTime", ZeroValue::Null),
    ("regarding", ZeroValue::Object),
    ("deprecatedSource", ZeroValue::Object),
    ("deprecatedFirstTimestamp", ZeroValue::Null),
    ("deprecatedLastTimestamp", ZeroValue::Null),
];

#[derive(Clone, Copy)]
enum ZeroValue {
    Null,
    Object,
    String,
}

impl ZeroValue {
    fn value(self) -> Value {
        match self {
            Self::Null => Value::Null,
            Self::Object => Value::Object(Map::new()),
            Self::String => Value::String(String::new()),
        }
    }
}

fn with_zero_fields(mut event: Value, fields: &[(&str, ZeroValue)]) -> Value {
    if let Some(object) = event.as_object_mut() {
        for (field, zero) in fields {
            object.entry(*field).or_insert_with(|| zero.value());
        }
    }
    event
}

/// Whether a stored Event already has every field core/v1 serves (then it is served as stored).
pub fn has_core_zero_fields(core: &Value) -> bool {
    CORE_ZERO_FIELDS.iter().all(|(field, _)| core.get(field).is_some())
}

/// A stored Event as core/v1 serves it.
pub fn to_core_served(core: &Value) -> Value {
    with_zero_fields(core.clone(), &CORE_ZERO_FIELDS)
}

/// A stored (core/v1) Event as events.k8s.io/v1 shows it. Fields neither version knows are
/// dropped, as decoding into the typed struct does on a real server.
pub fn to_events_v1(core: &Value) -> Value {
    with_zero_fields(convert(core, "events.k8s.io/v1", FIELDS), &EVENTS_V1_ZERO_FIELDS)
}

/// An events.k8s.io/v1 Event in the core/v1 shape it is stored in.
pub fn to_core(event: &Value) -> Value {
    convert(event, "v1", FIELDS.map(|(core, events_v1)| (events_v1, core)))
}

/// Copies each `(from, to)` field that is set; everything else is left behind.
fn convert(object: &Value, api_version: &str, fields: [(&str, &str); FIELDS.len()]) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    out.insert("kind".into(), Value::String("Event".into()));
    for (from, to) in fields {
        if let Some(value) = object.get(from).filter(|v| !v.is_null()) {
            out.insert(to.into(), value.clone());
        }
    }
    Value::Object(out)
}

/// The value a field selector compares for `path` on a stored Event, through either API:
/// core's `source` is `source.component`, else the reporting controller; events.k8s.io's
/// `regarding.*` and `reportingController` read `involvedObject.*` and `reportingComponent`.
pub fn selectable_field(core: &Value, path: &str) -> String {
    match path {
        "source" => {
            let component = field_text(core, "source.component");
            if component.is_empty() { field_text(core, "reportingComponent") } else { component }
        }
        "reportingController" => field_text(core, "reportingComponent"),
        _ => match path.strip_prefix("regarding.") {
            Some(field) => field_text(&core["involvedObject"], field),
            None => field_text(core, path),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reference(name: &str) -> Value {
        json!({ "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "namespace": "default", "name": name,
                "uid": format!("uid-{name}"), "resourceVersion": "7", "fieldPath": "spec" })
    }

    fn core_event() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": { "name": "db.1", "namespace": "default", "resourceVersion": "9", "labels": { "a": "b" } },
            "involvedObject": reference("db"),
            "related": reference("keys"),
            "message": "synced version 7",
            "reason": "Synced",
            "type": "Normal",
            "action": "Reconcile",
            "reportingComponent": "secure-api-operator",
            "reportingInstance": "pod-1",
            "eventTime": "2026-01-01T00:00:00.000001Z",
            "series": { "count": 3, "lastObservedTime": "2026-01-01T00:05:00.000000Z" },
            "source": { "component": "secure-api-operator", "host": "node-1" },
            "firstTimestamp": "2026-01-01T00:00:00Z",
            "lastTimestamp": "2026-01-01T00:05:00Z",
            "count": 3,
        })
    }

    fn events_v1_event() -> Value {
        json!({
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": { "name": "db.1", "namespace": "default", "resourceVersion": "9", "labels": { "a": "b" } },
            "regarding": reference("db"),
            "related": reference("keys"),
            "note": "synced version 7",
            "reason": "Synced",
            "type": "Normal",
            "action": "Reconcile",
            "reportingController": "secure-api-operator",
            "reportingInstance": "pod-1",
            "eventTime": "2026-01-01T00:00:00.000001Z",
            "series": { "count": 3, "lastObservedTime": "2026-01-01T00:05:00.000000Z" },
            "deprecatedSource": { "component": "secure-api-operator", "host": "node-1" },
            "deprecatedFirstTimestamp": "2026-01-01T00:00:00Z",
            "deprecatedLastTimestamp": "2026-01-01T00:05:00Z",
            "deprecatedCount": 3,
        })
    }

    #[test]
    fn a_core_event_converts_field_by_field_to_events_v1() {
        assert_eq!(to_events_v1(&core_event()), events_v1_event());
    }

    #[test]
    fn an_events_v1_event_converts_field_by_field_to_core() {
        assert_eq!(to_core(&events_v1_event()), core_event());
    }

    #[test]
    fn conversions_round_trip_both_ways() {
        assert_eq!(to_core(&to_events_v1(&core_event())), core_event());
        assert_eq!(to_events_v1(&to_core(&events_v1_event())), events_v1_event());
    }

    #[test]
    fn what_kube_runtime_records_becomes_a_core_event_without_a_source() {
        let recorded = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": { "name": "db.17f", "namespace": "default" },
            "regarding": reference("db"), "note": "n", "reason": "Synced", "type": "Warning", "action": "Sync",
            "reportingController": "secure-api-operator", "reportingInstance": "secure-api-operator",
            "eventTime": "2026-01-01T00:00:00.000001Z",
        });
        let core = to_core(&recorded);
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "db");
        assert_eq!((core["message"].as_str(), core["type"].as_str()), (Some("n"), Some("Warning")));
        assert_eq!(core["reportingComponent"], "secure-api-operator");
        assert!(core.get("source").is_none() && core.get("count").is_none(), "{core}");
        assert_eq!(selectable_field(&core, "source"), "secure-api-operator", "source falls back to the reporter");
    }

    #[test]
    fn unset_fields_are_served_with_the_zero_values_go_encodes() {
        let recorded = to_core(&json!({
            "kind": "Event", "metadata": { "name": "db.1" }, "note": "n", "eventTime": "2026-01-01T00:00:00.000001Z",
        }));
        let core = to_core_served(&recorded);
        assert!(!has_core_zero_fields(&recorded) && has_core_zero_fields(&core));
        assert_eq!((&core["lastTimestamp"], &core["firstTimestamp"]), (&Value::Null, &Value::Null));
        assert_eq!((&core["source"], &core["involvedObject"]), (&json!({}), &json!({})));
        assert_eq!((&core["reportingComponent"], &core["eventTime"]), (&json!(""), &recorded["eventTime"]));
        assert!(core.get("count").is_none() && core.get("series").is_none(), "omitempty fields stay out");
        let events_v1 = to_events_v1(&recorded);
        assert_eq!(events_v1["deprecatedLastTimestamp"], Value::Null);
        assert_eq!((&events_v1["deprecatedSource"], &events_v1["regarding"]), (&json!({}), &json!({})));
        assert!(events_v1.get("reportingController").is_none() && events_v1.get("deprecatedCount").is_none());
        assert!(to_core(&events_v1).get("lastTimestamp").is_none(), "null times are not stored");
    }

    #[test]
    fn unknown_and_null_fields_are_dropped() {
        let core = to_core(&json!({ "kind": "Event", "note": null, "message": "core name", "bogus": 1 }));
        assert_eq!(core, json!({ "apiVersion": "v1", "kind": "Event" }));
    }

    #[test]
    fn selectable_fields_read_the_stored_shape_under_either_api_name() {
        let core = core_event();
        for (path, expected) in [
            ("involvedObject.name", "db"),
            ("regarding.name", "db"),
            ("involvedObject.uid", "uid-db"),
            ("regarding.kind", "SecretRef"),
            ("regarding.fieldPath", "spec"),
            ("reportingComponent", "secure-api-operator"),
            ("reportingController", "secure-api-operator"),
            ("metadata.name", "db.1"),
            ("reason", "Synced"),
            ("type", "Normal"),
        ] {
            assert_eq!(selectable_field(&core, path), expected, "{path}");
        }
        let mut foreign = core;
        foreign["source"]["component"] = json!("kubelet");
        assert_eq!(selectable_field(&foreign, "source"), "kubelet");
    }
}
