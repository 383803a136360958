//! kube-apiserver's printer for Events (`printEvent` in k8s.io/kubernetes
//! `pkg/printers/internalversion`): what `kubectl get events` shows, for either Event API.

use super::events::to_core;
use super::table::{IncludeObject, human_age, row, table};
use jiff::Timestamp;
use serde_json::{Value, json};

/// (name, priority, format, description): the server sends every column, kubectl shows priority
/// 0 and adds the rest with `-o wide`.
const COLUMNS: [(&str, i64, &str, &str); 10] = [
    ("Last Seen", 0, "", "The time at which the most recent occurrence of this event was recorded."),
    ("Type", 0, "", "Type of this event (Normal, Warning), new types could be added in the future"),
    ("Reason", 0, "", "A short, machine understandable string that gives the reason for this event."),
    ("Object", 0, "", "The object that this event is about."),
    (
        "Subobject",
        1,
        "",
        "If referring to a piece of an object instead of an entire object, the field path of that piece.",
    ),
    ("Source", 1, "", "The component reporting this event."),
    ("Message", 0, "", "A human-readable description of the status of this operation."),
    ("First Seen", 1, "", "The time at which the event was first recorded."),
    ("Count", 1, "", "The number of times this event has occurred."),
    ("Name", 1, "name", "Name must be unique within a namespace."),
];

/// A Table of Events. `objects` are as served; `stored_shape` says they are core/v1 Events
/// (otherwise events.k8s.io/v1 ones, converted to read them).
pub fn event_table(
    objects: &[Value],
    stored_shape: bool,
    include: IncludeObject,
    list_metadata: Value,
    now: Timestamp,
) -> Value {
    let definitions = COLUMNS
        .iter()
        .map(|(name, priority, format, description)| {
            json!({"name": name, "type": "string", "format": format, "description": description, "priority": priority})
        })
        .collect();
    let rows = objects
        .iter()
        .map(|object| {
            let cells = if stored_shape { cells(object, now) } else { cells(&to_core(object), now) };
            row(cells, object, include)
        })
        .collect();
    table(definitions, rows, list_metadata)
}

/// One core/v1 Event's cells, in [`COLUMNS`] order.
fn cells(event: &Value, now: Timestamp) -> Vec<Value> {
    let text = |path: &str| event.pointer(path).and_then(Value::as_str).unwrap_or_default();
    let since = |path: &str| event.pointer(path).and_then(Value::as_str).and_then(|t| t.parse::<Timestamp>().ok());
    let age = |at: Option<Timestamp>| at.map_or_else(|| "<unknown>".to_owned(), |at| human_age(at, now));
    let first_seen = age(since("/firstTimestamp").or_else(|| since("/eventTime")));
    let (last_seen, count) = match event.get("series").filter(|s| s.is_object()) {
        Some(series) => (age(since("/series/lastObservedTime")), series["count"].as_i64().unwrap_or(0)),
        None => {
            let last = since("/lastTimestamp").map_or_else(|| first_seen.clone(), |at| human_age(at, now));
            (last, event["count"].as_i64().filter(|c| *c != 0).unwrap_or(1))
        }
    };
    let kind = text("/involvedObject/kind").to_ascii_lowercase();
    let object = match text("/involvedObject/name") {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    let or =
        |first: &'static str, second: &'static str| Some(text(first)).filter(|t| !t.is_empty()).unwrap_or(text(second));
    let (component, instance) =
        (or("/source/component", "/reportingComponent"), or("/source/host", "/reportingInstance"));
    let source = if instance.is_empty() { component.to_owned() } else { format!("{component}, {instance}") };
    vec![
        json!(last_seen),
        json!(text("/type")),
        json!(text("/reason")),
        json!(object),
        json!(text("/involvedObject/fieldPath")),
        json!(source),
        json!(text("/message").trim()),
        json!(first_seen),
        json!(count),
        json!(text("/metadata/name")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::kube::events::to_events_v1;

    fn now() -> Result<Timestamp, String> {
        "2026-01-01T00:10:00Z".parse().map_err(|e| format!("{e}"))
    }

    fn recorded() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": { "name": "db.1", "namespace": "default" },
            "involvedObject": { "kind": "SecretRef", "name": "db" },
            "message": " synced version 7\n", "reason": "Synced", "type": "Normal",
            "reportingComponent": "secure-api-operator", "reportingInstance": "pod-1",
            "eventTime": "2026-01-01T00:00:00.000001Z",
        })
    }

    fn first_row(table: &Value) -> Vec<Value> {
        table["rows"][0]["cells"].as_array().cloned().unwrap_or_default()
    }

    #[test]
    fn a_recorded_event_prints_like_kube_apiserver() -> Result<(), String> {
        let table = event_table(&[recorded()], true, IncludeObject::None, json!({}), now()?);
        let headers: Vec<&str> = table["columnDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["priority"] == 0)
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(headers, ["Last Seen", "Type", "Reason", "Object", "Message"]);
        assert_eq!(
            first_row(&table),
            [
                json!("9m59s"),
                json!("Normal"),
                json!("Synced"),
                json!("secretref/db"),
                json!(""),
                json!("secure-api-operator, pod-1"),
                json!("synced version 7"),
                json!("9m59s"),
                json!(1),
                json!("db.1"),
            ]
        );
        Ok(())
    }

    #[test]
    fn a_series_or_a_count_sets_last_seen_and_count() -> Result<(), String> {
        let mut event = recorded();
        event["series"] = json!({ "count": 4, "lastObservedTime": "2026-01-01T00:09:00.000000Z" });
        let cells = first_row(&event_table(&[event], true, IncludeObject::None, json!({}), now()?));
        assert_eq!((&cells[0], &cells[8]), (&json!("60s"), &json!(4)));

        let legacy = json!({
            "involvedObject": { "kind": "Node" }, "count": 2, "source": { "component": "kubelet" },
            "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:08:00Z",
        });
        let cells = first_row(&event_table(&[legacy], true, IncludeObject::None, json!({}), now()?));
        assert_eq!(
            (&cells[0], &cells[3], &cells[5], &cells[7], &cells[8]),
            (&json!("2m"), &json!("node"), &json!("kubelet"), &json!("10m"), &json!(2))
        );
        Ok(())
    }

    #[test]
    fn events_v1_objects_print_the_same_and_embed_as_served() -> Result<(), String> {
        let served = to_events_v1(&recorded());
        let table = event_table(std::slice::from_ref(&served), false, IncludeObject::Object, json!({}), now()?);
        let core = event_table(&[recorded()], true, IncludeObject::None, json!({}), now()?);
        assert_eq!(first_row(&table), first_row(&core));
        assert_eq!(table["rows"][0]["object"], served);
        Ok(())
    }

    #[test]
    fn an_event_without_times_is_unknown() -> Result<(), String> {
        let cells = first_row(&event_table(&[json!({})], true, IncludeObject::None, json!({}), now()?));
        assert_eq!((&cells[0], &cells[7]), (&json!("<unknown>"), &json!("<unknown>")));
        Ok(())
    }
}
