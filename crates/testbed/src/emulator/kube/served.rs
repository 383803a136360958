//! What a read serves, shared by lists (`handlers`) and watches (`watch`): the selectors of a
//! request, whether a stored object passes them, and the shape the requested resource serves it in.

use super::request::Query;
use super::resources::ResourceType;
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use serde_json::Value;
use std::borrow::Cow;

/// A stored object as the requested resource serves it (another version's apiVersion; an
/// events.k8s.io/v1 Event converted from its stored core/v1 shape).
pub fn view(rt: &ResourceType, object: &Value) -> Value {
    rt.to_served(object)
}

/// [`view`] without a copy when the stored object already has the served shape (to encode it).
pub fn view_ref<'a>(rt: &ResourceType, object: &'a Value) -> Cow<'a, Value> {
    rt.to_served_ref(object)
}

/// Label and field selectors of a list, watch or deletecollection.
pub fn selectors(rt: &ResourceType, query: &Query) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or_default())
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let supported: Vec<&str> = rt.field_selectors.iter().map(String::as_str).collect();
    let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or_default(), &supported)
        .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

/// Whether a stored object passes a watch's or list's selectors.
pub fn selected(rt: &ResourceType, object: &Value, labels: &LabelSelector, fields: &FieldSelector) -> bool {
    // Most reads select nothing: they skip the lookups into every object.
    (labels.is_empty() || labels.matches(object["metadata"]["labels"].as_object()))
        && (fields.is_empty() || fields.matches_fields(|path| rt.selectable_field(object, path)))
}
