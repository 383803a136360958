//! Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`), as
//! client-go's typed clients send them (`kubectl create namespace|configmap|secret|...`): the
//! `k8s\0` + `runtime.Unknown` envelope, then the object decoded to JSON by its schema.

mod authentication;
mod decode;
mod message;
mod schema;
#[cfg(test)]
mod tests;
mod wire;
mod workloads;

use super::status::ApiError;
use message::Message;
use serde_json::Value;
use wire::{Payload, Reader};

/// Kubernetes' protobuf media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\0";

/// Why a protobuf body could not be decoded.
#[derive(Clone, Debug, PartialEq)]
pub enum ProtoError {
    /// Not well-formed: 400.
    Malformed(String),
    /// Well-formed, but a kind or field the emulator has no schema for: 415.
    Unsupported(String),
}

impl From<ProtoError> for ApiError {
    fn from(error: ProtoError) -> Self {
        match error {
            ProtoError::Malformed(why) => ApiError::bad_request(format!("cannot decode the protobuf body: {why}")),
            ProtoError::Unsupported(why) => ApiError::unsupported_media_type(format!(
                "the emulator cannot decode this protobuf body ({why}); send the object as JSON or YAML \
                 instead, e.g. with `kubectl apply -f`"
            )),
        }
    }
}

/// Whether a Content-Type header names the protobuf encoding.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type.split(';').next().is_some_and(|media| media.trim().eq_ignore_ascii_case(MEDIA_TYPE))
}

/// Decodes a protobuf request body to the JSON object it encodes, `apiVersion` and `kind` included.
pub fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| ProtoError::Malformed("the body does not start with the magic bytes `k8s\\0`".to_owned()))?;
    let unknown = Unknown::parse(envelope)?;
    if !unknown.content_encoding.is_empty() {
        let why = format!("content encoding {:?}", unknown.content_encoding);
        return Err(ProtoError::Unsupported(why));
    }
    if !unknown.content_type.is_empty() && !is_protobuf(&unknown.content_type) {
        return Err(ProtoError::Unsupported(format!("content type {:?}", unknown.content_type)));
    }
    let (api_version, kind) = (unknown.api_version, unknown.kind);
    if api_version.is_empty() || kind.is_empty() {
        return Err(ProtoError::Malformed("the envelope names no apiVersion and kind".to_owned()));
    }
    let schema = object_schema(&api_version, &kind).ok_or_else(|| {
        ProtoError::Unsupported(format!("{kind} ({api_version}) is not in the emulator's protobuf schema"))
    })?;
    let mut object = serde_json::Map::new();
    object.insert("apiVersion".to_owned(), Value::String(api_version));
    object.insert("kind".to_owned(), Value::String(kind));
    object.extend(decode::message(schema, unknown.raw)?);
    Ok(Value::Object(object))
}

/// The schema of a top-level object, by its typeMeta: every kind the emulator decodes, from
/// `schema` (core), `workloads` and `authentication`.
fn object_schema(api_version: &str, kind: &str) -> Option<&'static Message> {
    Some(match (api_version, kind) {
        ("v1", "Namespace") => &schema::NAMESPACE,
        ("v1", "ConfigMap") => &schema::CONFIG_MAP,
        ("v1", "Secret") => &schema::SECRET,
        ("v1", "ServiceAccount") => &schema::SERVICE_ACCOUNT,
        ("v1", "Service") => &schema::SERVICE,
        ("apps/v1", "Deployment") => &workloads::DEPLOYMENT,
        ("policy/v1", "PodDisruptionBudget") => &workloads::POD_DISRUPTION_BUDGET,
        ("authentication.k8s.io/v1", "TokenRequest") => &authentication::TOKEN_REQUEST,
        _ => return None,
    })
}

/// `runtime.Unknown`: typeMeta {apiVersion = 1, kind = 2} = 1, raw = 2, contentEncoding = 3,
/// contentType = 4.
#[derive(Default)]
struct Unknown<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
    content_type: String,
}

impl<'a> Unknown<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, ProtoError> {
        let mut unknown = Unknown::default();
        let mut reader = Reader::new(bytes);
        while let Some((number, payload)) = next(&mut reader, "Unknown")? {
            match number {
                1 => {
                    let mut type_meta = Reader::new(length_delimited(payload, "Unknown.typeMeta")?);
                    while let Some((number, payload)) = next(&mut type_meta, "TypeMeta")? {
                        match number {
                            1 => unknown.api_version = text(payload, "TypeMeta.apiVersion")?,
                            2 => unknown.kind = text(payload, "TypeMeta.kind")?,
                            other => return Err(unexpected("TypeMeta", other)),
                        }
                    }
                }
                2 => unknown.raw = length_delimited(payload, "Unknown.raw")?,
                3 => unknown.content_encoding = text(payload, "Unknown.contentEncoding")?,
                4 => unknown.content_type = text(payload, "Unknown.contentType")?,
                other => return Err(unexpected("Unknown", other)),
            }
        }
        Ok(unknown)
    }
}

fn next<'a>(reader: &mut Reader<'a>, message: &str) -> Result<Option<(u32, Payload<'a>)>, ProtoError> {
    reader.next_field().map_err(|e| ProtoError::Malformed(format!("{message}: {e}")))
}

fn unexpected(message: &str, number: u32) -> ProtoError {
    ProtoError::Malformed(format!("{message} has no field {number}"))
}

fn length_delimited<'a>(payload: Payload<'a>, at: &str) -> Result<&'a [u8], ProtoError> {
    match payload {
        Payload::Bytes(bytes) => Ok(bytes),
        other => Err(ProtoError::Malformed(format!("{at}: expected length-delimited, got {}", other.wire_name()))),
    }
}

fn text(payload: Payload<'_>, at: &str) -> Result<String, ProtoError> {
    let bytes = length_delimited(payload, at)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtoError::Malformed(format!("{at} is not UTF-8")))
}
