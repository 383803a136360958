//! Lists: the page a list request selects, taken under the store lock as shared objects (`Arc`s,
//! no copies), and its encoding as a List or a Table, done after the lock is released so that
//! writers never wait for a large list to be copied or serialized.

use super::request::{Query, ResourcePath};
use super::resources::ResourceType;
use super::served::{selected, selectors, view, view_ref};
use super::status::ApiError;
use super::store::State;
use super::table::IncludeObject;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use serde_json::{Value, json};
use std::sync::Arc;

/// A page of a list, ready to encode without the store.
pub struct ListReply {
    rt: Arc<ResourceType>,
    items: Vec<Arc<Value>>,
    metadata: Value,
    /// `Some` when the client asked for a `meta.k8s.io/v1` Table: what rows carry, and the clock.
    table: Option<(IncludeObject, jiff::Timestamp)>,
}

/// How a list request wants its page.
pub struct ListOptions<'a> {
    pub path: &'a ResourcePath,
    pub query: &'a Query,
    pub wants_table: bool,
    pub now: &'a str,
}

/// Stored objects of the request's scope that pass its selectors, in (namespace, name) order.
pub fn matching<'a>(
    state: &'a State,
    rt: &ResourceType,
    path: &'a ResourcePath,
    query: &Query,
) -> Result<Vec<&'a Arc<Value>>, ApiError> {
    let (labels, fields) = selectors(rt, query)?;
    Ok(state
        .scan(&rt.storage_key(), path.namespace.as_deref(), None)
        .map(|(_, object)| object)
        .filter(|o| selected(rt, o, &labels, &fields))
        .collect())
}

/// Selects one page: from just after the continue key, at most `limit` objects. The scan starts
/// at the key, so paging through N objects costs O(N) in all, not O(N) per page.
pub fn list(state: &State, rt: &Arc<ResourceType>, options: &ListOptions<'_>) -> Result<ListReply, ApiError> {
    let query = options.query;
    let limit = query.number("limit")?.filter(|l| *l > 0).map(|l| usize::try_from(l).unwrap_or(usize::MAX));
    let after = query.get("continue").map(decode_continue).transpose()?;
    let (labels, fields) = selectors(rt, query)?;
    let mut rest = state
        .scan(&rt.storage_key(), options.path.namespace.as_deref(), after.as_ref())
        .filter(|(_, o)| selected(rt, o, &labels, &fields));
    let mut items = vec![];
    let mut last = None;
    for (key, object) in rest.by_ref().take(limit.unwrap_or(usize::MAX)) {
        items.push(object.clone());
        last = Some(key);
    }
    let mut metadata = json!({ "resourceVersion": state.resource_version().to_string() });
    if let Some(last) = last
        && rest.next().is_some()
    {
        metadata["continue"] = json!(encode_continue(last));
        // Like kube-apiserver: the count is given only when no selector makes it a guess.
        if labels.is_empty() && fields.is_empty() {
            metadata["remainingItemCount"] = json!(1 + rest.count());
        }
    }
    let table = options.wants_table.then(|| {
        let include = IncludeObject::parse(query.get("includeObject")).unwrap_or(IncludeObject::Metadata);
        (include, options.now.parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH))
    });
    Ok(ListReply { rt: rt.clone(), items, metadata, table })
}

impl ListReply {
    /// The response body. Runs without the store lock: the page is made of shared objects.
    pub fn encode(self) -> Bytes {
        let rt = &self.rt;
        if let Some((include, now)) = self.table {
            let served: Vec<Value> = self.items.iter().map(|o| view(rt, o)).collect();
            return Bytes::from(rt.table(&served, include, self.metadata, now).to_string());
        }
        // The envelope is written by hand so that each item is encoded from the shared object,
        // not from a copy of it.
        let head =
            json!({ "kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": self.metadata });
        let mut out = serde_json::to_vec(&head).unwrap_or_default();
        out.pop(); // the envelope's closing brace
        out.extend_from_slice(b",\"items\":[");
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Encoding a `Value` into memory cannot fail.
            let _ = serde_json::to_writer(&mut out, &*view_ref(rt, item));
        }
        out.extend_from_slice(b"]}");
        Bytes::from(out)
    }
}

fn encode_continue(key: &(String, String)) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}/{}", key.0, key.1))
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    let invalid = || ApiError::bad_request("continue key is not valid");
    let text = URL_SAFE_NO_PAD.decode(token).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(invalid)?;
    let (namespace, name) = text.split_once('/').ok_or_else(invalid)?;
    Ok((namespace.to_owned(), name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_continue_token_round_trips() {
        let key = ("default".to_owned(), "a/b".to_owned());
        assert_eq!(decode_continue(&encode_continue(&key)).ok(), Some(key));
        assert!(decode_continue("not base64!").is_err());
    }
}
