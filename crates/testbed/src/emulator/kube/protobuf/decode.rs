//! Turns one protobuf message into JSON by its schema, as Go's JSON encoding would write the
//! same object: zero values of plain fields left out, unknown field numbers refused.

use super::ProtoError;
use super::message::{Field, Kind, Message, one};
use super::wire::{Payload, Reader};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

/// Deeper than any schema here: a guard against crafted input, not a real limit.
const MAX_DEPTH: usize = 32;

static TIME: Message =
    Message { name: "Time", fields: &[one(1, "seconds", Kind::Int64), one(2, "nanos", Kind::Int32)] };

static INT_OR_STRING: Message = Message {
    name: "IntOrString",
    fields: &[one(1, "type", Kind::Int64), one(2, "intVal", Kind::Int32), one(3, "strVal", Kind::String)],
};

static QUANTITY: Message = Message { name: "Quantity", fields: &[one(1, "string", Kind::String)] };

/// Decodes `bytes` as a `schema` message.
pub fn message(schema: &'static Message, bytes: &[u8]) -> Result<Map<String, Value>, ProtoError> {
    decode_message(schema, bytes, 0)
}

fn decode_message(schema: &'static Message, bytes: &[u8], depth: usize) -> Result<Map<String, Value>, ProtoError> {
    if depth > MAX_DEPTH {
        return Err(ProtoError::Malformed(format!("{}: messages are nested too deeply", schema.name)));
    }
    let mut out = Map::new();
    let mut reader = Reader::new(bytes);
    while let Some((number, payload)) =
        reader.next_field().map_err(|e| ProtoError::Malformed(format!("{}: {e}", schema.name)))?
    {
        let field = schema.field(number).ok_or_else(|| {
            ProtoError::Unsupported(format!("{} field {number} is not in the emulator's protobuf schema", schema.name))
        })?;
        let at = || format!("{}.{} (field {number})", schema.name, field.name);
        if let Kind::Map(value_kind) = &field.kind {
            let (key, value) = map_entry(value_kind, payload, depth, &at)?;
            let entries = out.entry(field.name).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(entries) = entries {
                entries.insert(key, value);
            }
            continue;
        }
        let value = scalar(&field.kind, payload, depth, &at)?;
        insert(&mut out, field, value);
    }
    Ok(out)
}

fn insert(out: &mut Map<String, Value>, field: &Field, value: Value) {
    if field.repeated {
        let items = out.entry(field.name).or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = items {
            items.push(value);
        }
    } else if field.presence || !is_zero(&value) {
        out.insert(field.name.to_owned(), value);
    } else {
        out.remove(field.name);
    }
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0),
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => fields.is_empty(),
    }
}

fn scalar<'a>(kind: &Kind, payload: Payload<'a>, depth: usize, at: &dyn Fn() -> String) -> Result<Value, ProtoError> {
    let mismatch = |expected: &str| {
        ProtoError::Malformed(format!("{}: expected a {expected} value, got {}", at(), payload.wire_name()))
    };
    let bytes = |payload: Payload<'a>| -> Result<&'a [u8], ProtoError> {
        match payload {
            Payload::Bytes(bytes) => Ok(bytes),
            _ => Err(mismatch("length-delimited")),
        }
    };
    let varint = |payload: Payload<'a>| match payload {
        Payload::Varint(value) => Ok(value),
        _ => Err(mismatch("varint")),
    };
    Ok(match kind {
        Kind::String => {
            let text = std::str::from_utf8(bytes(payload)?)
                .map_err(|_| ProtoError::Malformed(format!("{}: the string is not UTF-8", at())))?;
            Value::String(text.to_owned())
        }
        Kind::Bytes => Value::String(STANDARD.encode(bytes(payload)?)),
        // An int32 is sign-extended to 64 bits on the wire: its low 32 bits are the value.
        Kind::Int32 => Value::from(varint(payload)? as u32 as i32),
        Kind::Int64 => Value::from(varint(payload)? as i64),
        Kind::Bool => Value::Bool(varint(payload)? != 0),
        Kind::Message(schema) => Value::Object(decode_message(schema, bytes(payload)?, depth + 1)?),
        Kind::Time => time(&decode_message(&TIME, bytes(payload)?, depth + 1)?, at)?,
        Kind::IntOrString => {
            let fields = decode_message(&INT_OR_STRING, bytes(payload)?, depth + 1)?;
            match fields.get("type").and_then(Value::as_i64).unwrap_or(0) {
                0 => fields.get("intVal").cloned().unwrap_or(Value::from(0)),
                1 => fields.get("strVal").cloned().unwrap_or(Value::String(String::new())),
                other => return Err(ProtoError::Malformed(format!("{}: IntOrString type {other}", at()))),
            }
        }
        Kind::Quantity => {
            let fields = decode_message(&QUANTITY, bytes(payload)?, depth + 1)?;
            fields.get("string").cloned().unwrap_or(Value::String(String::new()))
        }
        Kind::Map(_) => return Err(ProtoError::Malformed(format!("{}: a map inside a map", at()))),
    })
}

/// `metav1.Time` as JSON: RFC 3339 to the second, and `null` for the zero time.
fn time(fields: &Map<String, Value>, at: &dyn Fn() -> String) -> Result<Value, ProtoError> {
    let seconds = fields.get("seconds").and_then(Value::as_i64).unwrap_or(0);
    if seconds == 0 && fields.get("nanos").is_none() {
        return Ok(Value::Null);
    }
    let timestamp = jiff::Timestamp::from_second(seconds)
        .map_err(|e| ProtoError::Malformed(format!("{}: time out of range: {e}", at())))?;
    Ok(Value::String(timestamp.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
}

fn map_entry(
    value_kind: &Kind,
    payload: Payload<'_>,
    depth: usize,
    at: &dyn Fn() -> String,
) -> Result<(String, Value), ProtoError> {
    let Payload::Bytes(entry) = payload else {
        return Err(ProtoError::Malformed(format!("{}: a map entry must be length-delimited", at())));
    };
    let (mut key, mut value) = (String::new(), None);
    let mut reader = Reader::new(entry);
    while let Some((number, payload)) =
        reader.next_field().map_err(|e| ProtoError::Malformed(format!("{}: {e}", at())))?
    {
        match number {
            1 => {
                if let Value::String(text) = scalar(&Kind::String, payload, depth, at)? {
                    key = text;
                }
            }
            2 => value = Some(scalar(value_kind, payload, depth + 1, at)?),
            other => return Err(ProtoError::Malformed(format!("{}: a map entry has field {other}", at()))),
        }
    }
    // A missing value is the zero value, as in Go.
    let value = value.unwrap_or_else(|| match value_kind {
        Kind::Int32 | Kind::Int64 => Value::from(0),
        Kind::Bool => Value::Bool(false),
        Kind::Message(_) => Value::Object(Map::new()),
        _ => Value::String(String::new()),
    });
    Ok((key, value))
}
