//! The handlers: one REST call, its query and body, applied to the store and answered as JSON.

use super::names::{Call, Parent, SecretName, Transition, VersionName};
use super::rest::{Query, list_page, parse_body};
use super::rpc::RpcError;
use super::store::{SecretUpdate, Store, VersionState};
use super::wire::{self, ChangeVersionBody, SecretBody};
use serde_json::{Value, json};

/// Serves one call; `now` is the emulator's clock (rotation times are checked against it).
pub fn handle(
    store: &mut Store,
    call: &Call,
    query: &Query,
    body: &[u8],
    now: jiff::Timestamp,
) -> Result<Value, RpcError> {
    match call {
        Call::CreateSecret(parent) => create_secret(store, parent, query, body, now),
        Call::ListSecrets(parent) => list_secrets(store, parent, query),
        Call::GetSecret(name) => store.secret(name).map(wire::secret_json),
        Call::PatchSecret(name) => patch_secret(store, name, query, body, now),
        Call::DeleteSecret(name) => store.delete_secret(name, query.get("etag")).map(|()| json!({})),
        Call::AddVersion(name) => add_version(store, name, body),
        Call::ListVersions(name) => list_versions(store, name, query),
        Call::GetVersion(name) => store.version(name).map(wire::version_json),
        Call::AccessVersion(name) => store.access(name).map(|(version, payload)| wire::access_json(version, payload)),
        Call::ChangeVersion(name, transition) => change_version(store, name, *transition, body),
        // `options.requestedPolicyVersion` is accepted: policies here are version 1 or 3 as
        // their bindings need.
        Call::GetIamPolicy(name) => store.secret(name).map(|secret| secret.policy.to_json()),
        Call::SetIamPolicy(name) => store.policy_mut(name)?.set(body),
    }
}

fn create_secret(
    store: &mut Store,
    parent: &Parent,
    query: &Query,
    body: &[u8],
    now: jiff::Timestamp,
) -> Result<Value, RpcError> {
    let id = query.get("secretId").filter(|id| !id.is_empty());
    let id = id.ok_or_else(|| RpcError::invalid_argument("secret_id is required."))?;
    let mut secret: SecretBody = parse_body(body)?;
    let replication = secret.replication.take();
    let name = SecretName { parent: parent.clone(), secret: id.to_owned() };
    store.create_secret(name, replication, secret.into_fields()?, now).map(wire::secret_json)
}

fn list_secrets(store: &Store, parent: &Parent, query: &Query) -> Result<Value, RpcError> {
    // `filter` is accepted and not applied: the operator never filters secrets.
    let secrets: Vec<Value> = store.secrets(parent).into_iter().map(wire::secret_json).collect();
    list_json("secrets", secrets, query)
}

fn patch_secret(
    store: &mut Store,
    name: &SecretName,
    query: &Query,
    body: &[u8],
    now: jiff::Timestamp,
) -> Result<Value, RpcError> {
    let secret: SecretBody = parse_body(body)?;
    let update = build_update(query.update_mask(), &secret)?;
    store.update_secret(name, update, secret.etag.as_deref(), now).map(wire::secret_json)
}

/// The change an update mask (paths in their JSON spelling) asks for, read from the body.
fn build_update(paths: Vec<String>, body: &SecretBody) -> Result<SecretUpdate, RpcError> {
    if paths.is_empty() {
        return Err(RpcError::invalid_argument("update_mask is required."));
    }
    let mut update = SecretUpdate::default();
    let rotation = body.rotation.clone().unwrap_or_default();
    for path in paths {
        match path.as_str() {
            "labels" => update.labels = Some(body.labels.clone().unwrap_or_default()),
            "annotations" => update.annotations = Some(body.annotations.clone().unwrap_or_default()),
            "topics" => update.topics = Some(body.topic_names()),
            "versionAliases" => update.version_aliases = Some(body.aliases()?),
            "replication" => update.replication = Some(body.replication.clone().unwrap_or_default()),
            "rotation" => update.rotation.whole = Some(rotation.rotation()?),
            "rotation.nextRotationTime" => update.rotation.next_rotation_time = Some(rotation.next_rotation_time()?),
            "rotation.rotationPeriod" => update.rotation.rotation_period = Some(rotation.rotation_period()?),
            "expireTime" => update.echoed.push((path, body.expire_time.clone())),
            "versionDestroyTtl" => update.echoed.push((path, body.version_destroy_ttl.clone())),
            "customerManagedEncryption" => update.echoed.push((path, body.customer_managed_encryption.clone())),
            "ttl" => {
                let expire = body.ttl.as_deref().map(wire::expire_time_after).transpose()?;
                update.echoed.push(("expireTime".to_owned(), expire.map(Value::String)));
            }
            other => return Err(RpcError::invalid_argument(format!("Invalid update_mask path: {other}."))),
        }
    }
    Ok(update)
}

fn add_version(store: &mut Store, name: &SecretName, body: &[u8]) -> Result<Value, RpcError> {
    let (payload, client_checksum) = wire::parse_add_version(body)?;
    store.add_version(name, payload, client_checksum).map(wire::version_json)
}

fn list_versions(store: &Store, name: &SecretName, query: &Query) -> Result<Value, RpcError> {
    let state = state_filter(query.get("filter"))?;
    let secret = store.secret(name)?;
    let newest_first = secret.versions.values().rev();
    let versions: Vec<Value> =
        newest_first.filter(|v| state.is_none_or(|s| v.state == s)).map(wire::version_json).collect();
    list_json("versions", versions, query)
}

/// The state a version list is filtered on: the `state:ENABLED` (or `state=ENABLED`) term of
/// `filter`; other terms are accepted and not applied.
fn state_filter(filter: Option<&str>) -> Result<Option<VersionState>, RpcError> {
    let term = filter.unwrap_or_default().split_whitespace().find_map(|term| {
        let (field, value) = term.split_once(':').or_else(|| term.split_once('='))?;
        field.eq_ignore_ascii_case("state").then(|| value.trim_matches('"'))
    });
    match term {
        None => Ok(None),
        Some(value) => VersionState::parse(value)
            .map(Some)
            .ok_or_else(|| RpcError::invalid_argument(format!("Invalid filter: unknown state [{value}]."))),
    }
}

fn change_version(
    store: &mut Store,
    name: &VersionName,
    transition: Transition,
    body: &[u8],
) -> Result<Value, RpcError> {
    let request: ChangeVersionBody = parse_body(body)?;
    store.change_version(name, transition, request.etag.as_deref()).map(wire::version_json)
}

/// A list answer, `{"<field>":[...],"totalSize":n,"nextPageToken":"..."}`, with empty fields
/// left out as proto3 JSON does.
/// A list page with Secret Manager's `totalSize` (left out when there is nothing).
fn list_json(field: &str, items: Vec<Value>, query: &Query) -> Result<Value, RpcError> {
    let total = items.len();
    let mut object = list_page(field, items, query)?;
    if total > 0 {
        object["totalSize"] = json!(total);
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::super::store::{Payload, Replication, SecretFields};
    use super::*;
    use hyper::Method;

    fn call(method: Method, path: &str, query: &str, body: &str, store: &mut Store) -> Result<Value, RpcError> {
        let Some(call) = Call::parse(&method, path) else { panic!("no route for {method} {path}") };
        handle(store, &call, &Query::parse(Some(query)), body.as_bytes(), jiff::Timestamp::now())
    }

    fn seeded(versions: u64) -> Store {
        let mut store = Store::default();
        let name = SecretName::global("p", "db");
        store.insert_secret(name.clone(), Some(Replication::automatic()), SecretFields::default());
        for n in 1..=versions {
            assert!(store.add_version(&name, Payload::new(format!("v{n}").into_bytes()), false).is_ok());
        }
        store
    }

    #[test]
    fn create_needs_a_secret_id_and_replication() {
        let mut store = Store::default();
        let body = r#"{"replication":{"automatic":{}}}"#;
        let missing_id = call(Method::POST, "projects/p/secrets", "", body, &mut store);
        assert_eq!(missing_id.map_err(|e| e.code.name()), Err("INVALID_ARGUMENT"));
        let missing_replication = call(Method::POST, "projects/p/secrets", "secretId=s", "{}", &mut store);
        assert_eq!(missing_replication.map_err(|e| e.code.name()), Err("INVALID_ARGUMENT"));
        let created = call(Method::POST, "projects/p/secrets", "secretId=s", body, &mut store);
        assert_eq!(created.map(|s| s["name"].clone()), Ok(json!("projects/p/secrets/s")));
        let again = call(Method::POST, "projects/p/secrets", "secretId=s", body, &mut store);
        assert_eq!(again.map_err(|e| (e.http_status, e.code.name())), Err((409, "ALREADY_EXISTS")));
    }

    #[test]
    fn patch_applies_only_the_fields_in_the_update_mask() {
        let mut store = seeded(1);
        let body = r#"{"labels":{"a":"b"},"annotations":{"x":"y"},"versionAliases":{"current":"1"}}"#;
        let patched =
            call(Method::PATCH, "projects/p/secrets/db", "updateMask=labels,version_aliases", body, &mut store);
        let Ok(patched) = patched else { panic!("{patched:?}") };
        assert_eq!(patched["labels"], json!({"a": "b"}));
        assert_eq!(patched["versionAliases"], json!({"current": "1"}));
        assert!(patched.get("annotations").is_none());
    }

    #[test]
    fn patch_without_a_mask_or_with_an_unknown_path_is_invalid() {
        let mut store = seeded(0);
        let no_mask = call(Method::PATCH, "projects/p/secrets/db", "", "{}", &mut store);
        assert_eq!(no_mask.map_err(|e| e.code.name()), Err("INVALID_ARGUMENT"));
        let unknown = call(Method::PATCH, "projects/p/secrets/db", "updateMask=name", "{}", &mut store);
        assert_eq!(unknown.map_err(|e| e.code.name()), Err("INVALID_ARGUMENT"));
    }

    #[test]
    fn patch_with_a_stale_etag_is_aborted() {
        let mut store = seeded(0);
        let stale =
            call(Method::PATCH, "projects/p/secrets/db", "updateMask=labels", r#"{"etag":"\"1\""}"#, &mut store);
        assert_eq!(stale.map_err(|e| (e.http_status, e.code.name())), Err((409, "ABORTED")));
    }

    #[test]
    fn delete_answers_an_empty_object_and_checks_the_etag_parameter() {
        let mut store = seeded(1);
        let stale = call(Method::DELETE, "projects/p/secrets/db", "etag=%22nope%22", "", &mut store);
        assert_eq!(stale.map_err(|e| e.code.name()), Err("ABORTED"));
        assert_eq!(call(Method::DELETE, "projects/p/secrets/db", "", "", &mut store), Ok(json!({})));
        let gone = call(Method::GET, "projects/p/secrets/db", "", "", &mut store);
        assert_eq!(gone.map_err(|e| e.http_status), Err(404));
    }

    #[test]
    fn versions_are_listed_newest_first_with_total_size() {
        let mut store = seeded(3);
        let Ok(listed) = call(Method::GET, "projects/p/secrets/db/versions", "", "", &mut store) else { panic!() };
        let names: Vec<&str> =
            listed["versions"].as_array().into_iter().flatten().filter_map(|v| v["name"].as_str()).collect();
        assert_eq!(
            names,
            [
                "projects/p/secrets/db/versions/3",
                "projects/p/secrets/db/versions/2",
                "projects/p/secrets/db/versions/1"
            ]
        );
        assert_eq!(listed["totalSize"], json!(3));
        assert!(listed.get("nextPageToken").is_none());
    }

    #[test]
    fn version_list_filters_on_state() {
        let mut store = seeded(2);
        assert!(call(Method::POST, "projects/p/secrets/db/versions/1:disable", "", "{}", &mut store).is_ok());
        let listed = call(Method::GET, "projects/p/secrets/db/versions", "filter=state%3AENABLED", "", &mut store);
        assert_eq!(listed.map(|l| l["totalSize"].clone()), Ok(json!(1)));
    }

    #[test]
    fn an_empty_list_is_an_empty_object() {
        let mut store = Store::default();
        assert_eq!(call(Method::GET, "projects/p/secrets", "", "", &mut store), Ok(json!({})));
    }

    #[test]
    fn enabling_a_destroyed_version_is_a_failed_precondition() {
        let mut store = seeded(1);
        let destroyed = call(Method::POST, "projects/p/secrets/db/versions/1:destroy", "", "", &mut store);
        assert_eq!(
            destroyed.map(|v| (v["state"].clone(), v.get("destroyTime").is_some())),
            Ok((json!("DESTROYED"), true))
        );
        let enabled = call(Method::POST, "projects/p/secrets/db/versions/1:enable", "", "{}", &mut store);
        assert_eq!(enabled.map_err(|e| (e.http_status, e.code.name())), Err((400, "FAILED_PRECONDITION")));
    }

    #[test]
    fn add_version_on_a_missing_secret_is_not_found() {
        let mut store = Store::default();
        let body = r#"{"payload":{"data":"eA=="}}"#;
        let added = call(Method::POST, "projects/p/secrets/nope:addVersion", "", body, &mut store);
        assert_eq!(added.map_err(|e| e.http_status), Err(404));
    }

    #[test]
    fn rotation_is_set_through_the_mask_paths_gcloud_sends() {
        let mut store = seeded(0);
        let topics = r#"{"topics":[{"name":"projects/p/topics/events"}]}"#;
        assert!(call(Method::PATCH, "projects/p/secrets/db", "updateMask=topics", topics, &mut store).is_ok());
        let next = jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_hours(24)).unwrap_or_default();
        let body = json!({"rotation": {"nextRotationTime": next.to_string(), "rotationPeriod": "7200s"}}).to_string();
        let mask = "updateMask=rotation.next_rotation_time,rotation.rotation_period";
        let patched = call(Method::PATCH, "projects/p/secrets/db", mask, &body, &mut store);
        assert_eq!(patched.map(|s| s["rotation"]["rotationPeriod"].clone()), Ok(json!("7200s")));
        let period_only = r#"{"rotation":{"rotationPeriod":"3600s"}}"#;
        let patched = call(Method::PATCH, "projects/p/secrets/db", "updateMask=rotation", period_only, &mut store);
        assert_eq!(patched.map_err(|e| e.code.name()), Err("INVALID_ARGUMENT"), "a period needs a next time");
        let cleared = call(Method::PATCH, "projects/p/secrets/db", "updateMask=rotation", "{}", &mut store);
        assert_eq!(cleared.map(|s| s.get("rotation").is_none()), Ok(true));
    }
}
