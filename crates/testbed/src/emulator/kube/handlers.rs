//! The verbs on resources: get, list, create, update, patch (merge, JSON, strategic, apply),
//! delete and deletecollection. Each runs under the store lock, so it sees and leaves a
//! consistent state. Lists are paged by `list` and encoded after the lock; watches are opened
//! here and streamed by `watch`.

use super::apply::{ApplyRequest, apply, conflict_message};
use super::lifecycle::Propagation;
use super::list::{ListOptions, ListReply, list, matching};
use super::objects::WriteContext;
use super::patch::{json_patch, merge_patch, strategic_merge_patch};
use super::protobuf;
use super::quota;
use super::request::{Query, ResourcePath};
use super::resources::{ResourceType, StorageKey};
use super::served::view;
use super::status::{ApiError, success_status};
use super::store::State;
use super::table::IncludeObject;
use super::watch::{WatchPlan, open_watch};
use serde_json::{Value, json};
use std::sync::Arc;

/// What a resource request produced.
pub enum Reply {
    Object(u16, Value),
    /// A list page, to encode once the store lock is released.
    List(ListReply),
    Watch(WatchPlan),
}

/// A request to a resource endpoint, decoded.
pub struct ResourceRequest<'a> {
    pub method: &'a str,
    pub path: &'a ResourcePath,
    pub query: &'a Query,
    pub body: &'a [u8],
    pub content_type: &'a str,
    /// The client asked for a `meta.k8s.io/v1` Table (kubectl get).
    pub wants_table: bool,
    /// Field manager when the request names none (from the User-Agent, like the apiserver).
    pub default_manager: &'a str,
    pub now: &'a str,
}

/// Serves one resource request.
pub fn handle(state: &mut State, request: &ResourceRequest<'_>) -> Result<Reply, ApiError> {
    let path = request.path;
    let rt = state.registry.find(&path.group, &path.version, &path.plural).ok_or_else(ApiError::no_route)?;
    check_scope(&rt, path)?;
    let ok = |value: Value| Ok(Reply::Object(200, value));
    match (request.method, &path.name) {
        ("GET", Some(name)) => ok(table_or(request, &rt, vec![get(state, &rt, path, name)?], json!({}))),
        ("GET", None) if path.legacy_watch || request.query.flag("watch") => {
            open_watch(state, rt, path, request.query, request.wants_table).map(Reply::Watch)
        }
        ("GET", None) => {
            let options =
                ListOptions { path, query: request.query, wants_table: request.wants_table, now: request.now };
            list(state, &rt, &options).map(Reply::List)
        }
        ("POST", None) => create(state, &rt, request).map(|o| Reply::Object(201, o)),
        ("PUT", Some(name)) => update(state, &rt, request, name).and_then(ok),
        ("PATCH", Some(name)) => patch(state, &rt, request, name),
        ("DELETE", Some(name)) => delete(state, &rt, request, name).and_then(ok),
        ("DELETE", None) => delete_collection(state, &rt, request).and_then(ok),
        (method, _) => Err(ApiError::method_not_allowed(format!("{method} is not supported on this path"))),
    }
}

fn check_scope(rt: &ResourceType, path: &ResourcePath) -> Result<(), ApiError> {
    let misplaced = match (rt.namespaced, &path.namespace) {
        (false, Some(_)) => true,
        (true, None) => path.name.is_some(),
        _ => false,
    };
    let bad_subresource = match path.subresource.as_deref() {
        None => false,
        Some("status") => !rt.status_subresource,
        Some(_) => true,
    };
    if misplaced || bad_subresource || (path.subresource.is_some() && path.name.is_none()) {
        return Err(ApiError::no_route());
    }
    Ok(())
}

pub fn parse_body(request: &ResourceRequest<'_>) -> Result<Value, ApiError> {
    if protobuf::is_protobuf(request.content_type) {
        return protobuf::decode(request.body).map_err(ApiError::from);
    }
    if let Ok(value) = serde_json::from_slice::<Value>(request.body) {
        return Ok(value);
    }
    let text = std::str::from_utf8(request.body).map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
    serde_saphyr::from_str::<Value>(text).map_err(|e| ApiError::bad_request(format!("cannot decode the body: {e}")))
}

fn namespace_of(path: &ResourcePath) -> &str {
    path.namespace.as_deref().unwrap_or_default()
}

/// An object as the requested resource serves it. Writes start from this too: they work in the
/// request's shape, and only what they store is converted to the stored shape.
fn get(state: &State, rt: &ResourceType, path: &ResourcePath, name: &str) -> Result<Value, ApiError> {
    state
        .get(&rt.storage_key(), namespace_of(path), name)
        .map(|o| view(rt, o))
        .ok_or_else(|| ApiError::not_found(&rt.plural, &rt.group, name))
}

fn table_or(request: &ResourceRequest<'_>, rt: &ResourceType, objects: Vec<Value>, list_metadata: Value) -> Value {
    if !request.wants_table {
        return objects.into_iter().next().unwrap_or(Value::Null);
    }
    table(request, rt, &objects, list_metadata)
}

fn table(request: &ResourceRequest<'_>, rt: &ResourceType, objects: &[Value], list_metadata: Value) -> Value {
    let include = IncludeObject::parse(request.query.get("includeObject")).unwrap_or(IncludeObject::Metadata);
    let now = request.now.parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    rt.table(objects, include, list_metadata, now)
}

fn object_key(object: &Value) -> (String, String) {
    let meta = &object["metadata"];
    (meta["namespace"].as_str().unwrap_or_default().to_owned(), meta["name"].as_str().unwrap_or_default().to_owned())
}

fn manager<'a>(request: &'a ResourceRequest<'_>) -> &'a str {
    request.query.get("fieldManager").unwrap_or(request.default_manager)
}

fn context<'a>(rt: &'a ResourceType, request: &'a ResourceRequest<'_>) -> WriteContext<'a> {
    WriteContext {
        rt,
        subresource: request.path.subresource.as_deref(),
        manager: manager(request),
        now: request.now,
        strict: request.query.get("fieldValidation") == Some("Strict"),
    }
}

/// Namespaced objects need an existing namespace that is not being deleted.
pub fn check_namespace(state: &State, rt: &ResourceType, namespace: Option<&str>) -> Result<(), ApiError> {
    let Some(ns) = namespace.filter(|_| rt.namespaced) else { return Ok(()) };
    let key = StorageKey { group: String::new(), plural: "namespaces".into() };
    match state.get(&key, "", ns) {
        None => Err(ApiError::not_found("namespaces", "", ns)),
        Some(namespace) if namespace["metadata"]["deletionTimestamp"].is_string() => Err(ApiError {
            code: 403,
            reason: "Forbidden",
            message: format!("unable to create new content in namespace {ns} because it is being terminated"),
            details: None,
        }),
        Some(_) => Ok(()),
    }
}

fn create(state: &mut State, rt: &Arc<ResourceType>, request: &ResourceRequest<'_>) -> Result<Value, ApiError> {
    let body = parse_body(request)?;
    let namespace = request.path.namespace.as_deref();
    check_namespace(state, rt, namespace)?;
    let uid = state.new_uid();
    let object = context(rt, request).prepare_create(namespace, body, uid, true)?;
    store_new(state, rt, request, object)
}

fn store_new(
    state: &mut State,
    rt: &ResourceType,
    request: &ResourceRequest<'_>,
    object: Value,
) -> Result<Value, ApiError> {
    let (namespace, name) = object_key(&object);
    if state.get(&rt.storage_key(), &namespace, &name).is_some() {
        return Err(ApiError::already_exists(&rt.plural, &rt.group, &name));
    }
    quota::admit_create(state, rt, &namespace, &name)?;
    if request.query.dry_run() {
        return Ok(object);
    }
    let stored = state.insert(&rt.storage_key(), &namespace, &name, rt.to_stored(object));
    register_if_crd(state, rt, &stored)?;
    state.collect_if_dangling(&rt.storage_key(), &namespace, &name, request.now);
    Ok(view(rt, &stored))
}

fn register_if_crd(state: &mut State, rt: &ResourceType, crd: &Value) -> Result<(), ApiError> {
    if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
        state.registry.register_crd(crd).map_err(ApiError::internal)?;
    }
    Ok(())
}

fn update(state: &mut State, rt: &ResourceType, request: &ResourceRequest<'_>, name: &str) -> Result<Value, ApiError> {
    let old = get(state, rt, request.path, name)?;
    let body = parse_body(request)?;
    let new = context(rt, request).prepare_update(&old, body, true)?;
    store_update(state, rt, request, name, &old, new)
}

/// Stores an updated object unless nothing changed (then nothing is written and no event is sent).
/// `old` and `new` are in the request's shape.
fn store_update(
    state: &mut State,
    rt: &ResourceType,
    request: &ResourceRequest<'_>,
    name: &str,
    old: &Value,
    new: Value,
) -> Result<Value, ApiError> {
    if new == *old || request.query.dry_run() {
        return Ok(new);
    }
    let key = rt.storage_key();
    let namespace = namespace_of(request.path);
    let stored = state.replace(&key, namespace, name, rt.to_stored(new));
    register_if_crd(state, rt, &stored)?;
    let settled = state.settle_deletion(&key, namespace, name, request.now);
    state.collect_if_dangling(&key, namespace, name, request.now);
    Ok(view(rt, settled.as_ref().unwrap_or(&stored)))
}

fn patch(
    state: &mut State,
    rt: &Arc<ResourceType>,
    request: &ResourceRequest<'_>,
    name: &str,
) -> Result<Reply, ApiError> {
    let content_type = request.content_type.split(';').next().unwrap_or_default().trim();
    if content_type == "application/apply-patch+yaml" {
        return server_side_apply(state, rt, request, name);
    }
    let old = get(state, rt, request.path, name)?;
    let body = parse_body(request)?;
    let patched = match content_type {
        "application/merge-patch+json" => merge_patch(&old, &body),
        "application/json-patch+json" => json_patch(&old, &body).map_err(patch_error)?,
        "application/strategic-merge-patch+json" if rt.is_custom() => {
            return Err(ApiError {
                code: 415,
                reason: "UnsupportedMediaType",
                message: "strategic merge patch is not supported for custom resources; use a merge patch".into(),
                details: None,
            });
        }
        "application/strategic-merge-patch+json" => {
            strategic_merge_patch(&old, &body, rt.list_types.as_ref()).map_err(patch_error)?
        }
        other => {
            return Err(ApiError {
                code: 415,
                reason: "UnsupportedMediaType",
                message: format!("the body of the request was in an unknown format ({other})"),
                details: None,
            });
        }
    };
    let new = context(rt, request).prepare_update(&old, patched, true)?;
    store_update(state, rt, request, name, &old, new).map(|o| Reply::Object(200, o))
}

fn patch_error(error: super::patch::PatchError) -> ApiError {
    match error {
        super::patch::PatchError::BadRequest(message) => ApiError::bad_request(message),
        super::patch::PatchError::Unprocessable(message) => {
            ApiError { code: 422, reason: "Invalid", message, details: None }
        }
    }
}

fn server_side_apply(
    state: &mut State,
    rt: &Arc<ResourceType>,
    request: &ResourceRequest<'_>,
    name: &str,
) -> Result<Reply, ApiError> {
    let Some(manager) = request.query.get("fieldManager") else {
        return Err(ApiError::bad_request(
            "PATCH, application/apply-patch+yaml: fieldManager is required for apply requests",
        ));
    };
    let config = parse_body(request)?;
    let old = state.get(&rt.storage_key(), namespace_of(request.path), name).map(|o| view(rt, o));
    let ctx = context(rt, request);
    let api_version = rt.api_version();
    let applied = apply(ApplyRequest {
        live: old.as_ref(),
        config: &config,
        manager,
        force: request.query.flag("force"),
        api_version: &api_version,
        now: request.now,
        scope: ctx.scope(),
        types: rt.list_types.as_ref(),
    })
    .map_err(|conflicts| {
        let causes = conflicts
            .iter()
            .map(|c| json!({ "type": "FieldManagerConflict", "message": format!("conflict with \"{}\"", c.manager), "field": c.field }))
            .collect();
        ApiError::apply_conflict(conflict_message(&conflicts), causes)
    })?;
    match old {
        Some(old) => {
            let new = ctx.prepare_update(&old, applied, false)?;
            store_update(state, rt, request, name, &old, new).map(|o| Reply::Object(200, o))
        }
        None if request.path.subresource.is_some() => Err(ApiError::not_found(&rt.plural, &rt.group, name)),
        None => {
            let namespace = request.path.namespace.as_deref();
            check_namespace(state, rt, namespace)?;
            let mut applied = applied;
            applied["metadata"]["name"] = json!(name);
            let uid = state.new_uid();
            let object = ctx.prepare_create(namespace, applied, uid, false)?;
            store_new(state, rt, request, object).map(|o| Reply::Object(201, o))
        }
    }
}

/// `DeleteOptions` from the body, with query parameters as fallback.
struct DeleteOptions {
    propagation: Propagation,
    uid: Option<String>,
    resource_version: Option<String>,
}

fn delete_options(request: &ResourceRequest<'_>) -> Result<DeleteOptions, ApiError> {
    let body: Value = if request.body.is_empty() { json!({}) } else { parse_body(request)? };
    let policy = body["propagationPolicy"].as_str().or(request.query.get("propagationPolicy"));
    let orphan = body["orphanDependents"].as_bool() == Some(true);
    let propagation = if orphan { Propagation::Orphan } else { Propagation::parse(policy)? };
    let preconditions = &body["preconditions"];
    Ok(DeleteOptions {
        propagation,
        uid: preconditions["uid"].as_str().map(str::to_owned),
        resource_version: preconditions["resourceVersion"].as_str().map(str::to_owned),
    })
}

fn delete(state: &mut State, rt: &ResourceType, request: &ResourceRequest<'_>, name: &str) -> Result<Value, ApiError> {
    let options = delete_options(request)?;
    let old = get(state, rt, request.path, name)?;
    for (field, expected) in [("uid", &options.uid), ("resourceVersion", &options.resource_version)] {
        if let Some(expected) = expected
            && old["metadata"][field].as_str() != Some(expected.as_str())
        {
            let actual = old["metadata"][field].as_str().unwrap_or_default();
            let why =
                format!("Precondition failed: {field} in precondition: {expected}, {field} in object meta: {actual}");
            return Err(ApiError::conflict(&rt.plural, &rt.group, name, &why));
        }
    }
    if request.query.dry_run() {
        return Ok(old);
    }
    let key = rt.storage_key();
    let after = state.delete_object(&key, namespace_of(request.path), name, options.propagation, request.now);
    Ok(after.map(|o| view(rt, &o)).unwrap_or_else(|| success_status(&rt.plural, &rt.group, name)))
}

fn delete_collection(state: &mut State, rt: &ResourceType, request: &ResourceRequest<'_>) -> Result<Value, ApiError> {
    let options = delete_options(request)?;
    let targets: Vec<(String, String)> =
        matching(state, rt, request.path, request.query)?.into_iter().map(|o| object_key(o)).collect();
    let mut deleted = vec![];
    if !request.query.dry_run() {
        for (namespace, name) in targets {
            if let Some(object) =
                state.delete_object(&rt.storage_key(), &namespace, &name, options.propagation, request.now)
            {
                deleted.push(view(rt, &object));
            }
        }
    }
    Ok(json!({
        "kind": format!("{}List", rt.kind),
        "apiVersion": rt.api_version(),
        "metadata": { "resourceVersion": state.resource_version().to_string() },
        "items": Value::Array(deleted),
    }))
}
