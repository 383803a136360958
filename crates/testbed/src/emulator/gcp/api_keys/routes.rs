//! The handlers: one call, its query and body, checked and handed to the store. Problems with
//! the request are answered at once (400, 404, 409); the change itself waits for the operation.

use super::clock::Now;
use super::model::{Key, KeyString, new_uid};
use super::names::{Call, is_valid_key_id};
use super::rest::{Query, page, parse_body};
use super::rpc::RpcError;
use super::store::{Action, Patch, Store};
use super::wire::{KeyBody, key_string_json, list_json, lookup_json};
use serde_json::Value;

/// Serves one call. `fault` is the error an injected `fail_operation` makes its operation
/// complete with.
pub fn handle(
    store: &mut Store,
    call: &Call,
    query: &Query,
    body: &[u8],
    fault: Option<RpcError>,
    now: Now,
) -> Result<Value, RpcError> {
    match call {
        Call::Create(parent, id) => create(store, parent, id.as_deref(), body, fault, now),
        Call::List(parent) => list(store, parent, query),
        Call::Get(name) => store.key(name).map(Key::to_json),
        Call::GetKeyString(name) => key_string(store, name),
        Call::Patch(name) => patch(store, name, query, body, fault, now),
        Call::Delete(name) => delete(store, name, query, fault, now),
        Call::Undelete(name) => store.start(Action::Undelete(name.clone()), fault, now),
        Call::Lookup(_) => lookup(store, query),
        Call::GetOperation(name) => store.operation(name).map(|op| op.to_json()),
    }
}

fn create(
    store: &mut Store,
    parent: &str,
    id: Option<&str>,
    body: &[u8],
    fault: Option<RpcError>,
    now: Now,
) -> Result<Value, RpcError> {
    global(parent)?;
    let body: KeyBody = parse_body(body)?;
    let uid = new_uid().ok_or_else(no_randomness)?;
    // Without a keyId Google names the key by its uid.
    let id = match id.filter(|id| !id.is_empty()) {
        Some(id) if is_valid_key_id(id) => id.to_owned(),
        Some(id) => {
            return Err(RpcError::invalid_argument(format!(
                "Invalid key_id '{id}': it must match [a-z]([a-z0-9-]{{0,61}}[a-z0-9])?."
            )));
        }
        None => uid.clone(),
    };
    let key = Key {
        name: format!("{parent}/keys/{id}"),
        uid,
        display_name: body.display_name.filter(|d| !d.is_empty()),
        key_string: KeyString::generate().ok_or_else(no_randomness)?,
        restrictions: body.restrictions.unwrap_or_default(),
        annotations: body.annotations.unwrap_or_default(),
        create_time: now.wall,
        update_time: now.wall,
        delete_time: None,
        generation: 1,
    };
    store.start(Action::Create(Box::new(key)), fault, now)
}

fn list(store: &Store, parent: &str, query: &Query) -> Result<Value, RpcError> {
    global(parent)?;
    // apitools writes booleans as `True`.
    let show_deleted = query.get("showDeleted").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let keys = store.keys(&format!("{parent}/keys/"));
    let keys: Vec<Value> =
        keys.into_iter().filter(|key| show_deleted || key.delete_time.is_none()).map(Key::to_json).collect();
    let (page, next) = page(keys, query.get("pageSize"), query.get("pageToken"))?;
    Ok(list_json(page, next))
}

/// A deleted key keeps its string for undelete, but does not hand it out.
fn key_string(store: &Store, name: &str) -> Result<Value, RpcError> {
    let key = store.key(name)?;
    if key.delete_time.is_some() {
        return Err(RpcError::failed_precondition(format!("API key '{name}' is deleted.")));
    }
    Ok(key_string_json(&key.key_string.0))
}

fn patch(
    store: &mut Store,
    name: &str,
    query: &Query,
    body: &[u8],
    fault: Option<RpcError>,
    now: Now,
) -> Result<Value, RpcError> {
    let body: KeyBody = parse_body(body)?;
    let mut mask = query.update_mask();
    if mask.is_empty() {
        // No mask: every mutable field present in the body.
        let present = [body.display_name.is_some(), body.restrictions.is_some(), body.annotations.is_some()];
        let fields = ["displayName", "restrictions", "annotations"];
        mask = fields.iter().zip(present).filter(|(_, p)| *p).map(|(f, _)| (*f).to_owned()).collect();
    }
    let mut patch = Patch::default();
    for path in &mask {
        match path.as_str() {
            "displayName" => patch.display_name = Some(body.display_name.clone().filter(|d| !d.is_empty())),
            // `restrictions.apiTargets` and the like replace the restrictions whole.
            p if p == "restrictions" || p.starts_with("restrictions.") => {
                patch.restrictions = Some(body.restrictions.clone().unwrap_or_default());
            }
            "annotations" => patch.annotations = Some(body.annotations.clone().unwrap_or_default()),
            other => return Err(RpcError::invalid_argument(format!("Invalid update_mask path: '{other}'."))),
        }
    }
    store.start(Action::Update(name.to_owned(), patch), fault, now)
}

fn delete(store: &mut Store, name: &str, query: &Query, fault: Option<RpcError>, now: Now) -> Result<Value, RpcError> {
    if let Some(etag) = query.get("etag").filter(|e| !e.is_empty()) {
        let key = store.key(name)?;
        if key.etag() != etag {
            return Err(RpcError::aborted(format!("The etag of API key '{name}' does not match.")));
        }
    }
    store.start(Action::Delete(name.to_owned()), fault, now)
}

/// The key string is matched but never written into an error.
fn lookup(store: &Store, query: &Query) -> Result<Value, RpcError> {
    let key_string = query.get("keyString").filter(|k| !k.is_empty());
    let key_string = key_string.ok_or_else(|| RpcError::invalid_argument("key_string is required."))?;
    match store.find_by_string(key_string) {
        Some(key) => Ok(lookup_json(&key.name)),
        None => Err(RpcError::not_found("The API key was not found.")),
    }
}

/// Keys are global resources: `global` is the only location.
fn global(parent: &str) -> Result<(), RpcError> {
    match parent.rsplit('/').next() {
        Some("global") => Ok(()),
        location => Err(RpcError::invalid_argument(format!(
            "Keys live in location 'global', not '{}'.",
            location.unwrap_or_default()
        ))),
    }
}

fn no_randomness() -> RpcError {
    RpcError::internal("The system's random source failed.")
}
