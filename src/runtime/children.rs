//! Applying child objects without writing when nothing changed: each desired object carries a
//! hash of itself in an annotation, and a live object with the same hash is left alone. Server
//! defaults on the live object therefore never cause a write.

use super::caches::{Cache, Storage};
use super::refusal::{self, Refusal};
use crate::api::{MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::{Resource, ResourceExt};
use ring::digest::{SHA256, digest};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// Annotation holding the hash of what the operator last applied.
pub const APPLIED_HASH_ANNOTATION: &str = "secureapi.dev/applied-hash";

/// Short hex SHA-256 of an object's JSON form (deterministic: maps are ordered).
pub fn hash_of<T: Serialize>(object: &T) -> String {
    let bytes = serde_json::to_vec(object).unwrap_or_default();
    digest(&SHA256, &bytes).as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a child object was not read, written or deleted.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// The API server refused the call; the message names the object and carries the server's
    /// answer (see [`refusal`]).
    #[error("cannot {action} {kind} {name}: {}", refusal::describe(.source))]
    Refused {
        action: &'static str,
        kind: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// An object of that name exists and is not this object's child: nothing was changed.
    #[error(
        "{kind} {name} exists and is not this object's: the operator leaves it alone (rename the object or remove the other)"
    )]
    NotOurs { kind: String, name: String },
    /// The child of a deleted object of the same name, which the garbage collector is about to
    /// remove: retried soon.
    #[error("{kind} {name} belongs to a deleted object of the same name; waiting for the garbage collector")]
    Leftover { kind: String, name: String },
}

impl ChildError {
    pub fn of<K: Resource<DynamicType = ()>>(action: &'static str, name: &str) -> impl FnOnce(kube::Error) -> Self {
        let (kind, name) = (K::kind(&()).into_owned(), name.to_owned());
        move |source| Self::Refused { action, kind, name, source: Box::new(source) }
    }

    fn not_ours<K: Resource<DynamicType = ()>>(name: &str) -> Self {
        Self::NotOurs { kind: K::kind(&()).into_owned(), name: name.to_owned() }
    }

    fn leftover<K: Resource<DynamicType = ()>>(name: &str) -> Self {
        Self::Leftover { kind: K::kind(&()).into_owned(), name: name.to_owned() }
    }

    /// How the API server answered (see [`Refusal`]); someone else's object is a refusal that
    /// stands until someone renames or removes one, a leftover a conflict that passes.
    pub fn refusal(&self) -> Refusal {
        match self {
            Self::Refused { source, .. } => Refusal::of(source),
            Self::NotOurs { .. } => Refusal::NotOurs,
            Self::Leftover { .. } => Refusal::Conflict,
        }
    }
}

/// How a live object stands to the child the operator wants in its place.
#[derive(Debug, PartialEq, Eq)]
enum Standing {
    /// Ours, and the same owner's.
    Child,
    /// Ours, and the child of an earlier object of the owner's kind and name, since deleted (the
    /// uid differs; two live objects cannot share a name).
    Leftover,
    /// Anything else: never patched, adopted or deleted.
    Foreign,
}

/// The controller owner reference, if any.
fn controller<K: Resource>(object: &K) -> Option<&OwnerReference> {
    object.meta().owner_references.iter().flatten().find(|r| r.controller == Some(true))
}

fn standing<K: Resource>(live: &K, desired: &K) -> Standing {
    let (live_owner, wanted) = (controller(live), controller(desired));
    if !is_ours(live.labels()) {
        return Standing::Foreign;
    }
    match (live_owner, wanted) {
        (None, None) => Standing::Child,
        (Some(live), Some(wanted)) if live.uid == wanted.uid => Standing::Child,
        (Some(live), Some(wanted)) if (&live.kind, &live.name) == (&wanted.kind, &wanted.name) => Standing::Leftover,
        _ => Standing::Foreign,
    }
}

fn controller_uid<K: Resource>(object: &K) -> Option<&str> {
    controller(object).map(|r| r.uid.as_str())
}

/// Whether `live` is ours and the child of the object with uid `owner`: our managed-by label and
/// a controller owner reference to that object. Anything else — someone else's object of the same
/// name, or another of our objects' child — is never patched, adopted or deleted.
pub fn is_child_of<K: Resource>(live: &K, owner: Option<&str>) -> bool {
    is_ours(live.labels()) && controller_uid(live) == owner
}

/// A child of ours in `api`'s namespace: the cached copy, or a read when the cache has none (before
/// the first apply, or someone else's object of that name, which the cache never holds).
pub async fn cached_or_read<K, S>(cache: &Cache<K, S>, api: &Api<K>, name: &str) -> Result<Option<K>, ChildError>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug + Send + Sync + 'static,
    S: Storage<K>,
{
    match api.namespace().and_then(|namespace| cache.get(namespace, name)) {
        Some(cached) => Ok(Some(cached.as_ref().clone())),
        None => get_child(api, name).await,
    }
}

/// Reads child `name`, if it exists.
pub async fn get_child<K>(api: &Api<K>, name: &str) -> Result<Option<K>, ChildError>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
{
    api.get_opt(name).await.map_err(ChildError::of::<K>("read", name))
}

/// Server-side applies `desired` unless the live object already carries its hash. Returns
/// whether a write was made.
pub async fn apply_if_changed<K>(api: &Api<K>, desired: K, field_manager: &str) -> Result<bool, ChildError>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
{
    let live = get_child(api, &desired.name_any()).await?;
    let applied = apply_over(api, live.as_ref(), desired, field_manager).await?;
    Ok(applied.written)
}

/// What [`apply_over`] left on the server.
pub struct Applied<K> {
    /// The object as the server now holds it.
    pub object: K,
    pub written: bool,
}

/// Server-side applies `desired` over `live` (read by the caller) unless `live` already carries
/// its hash. A `live` object that is not the child `desired` describes (same controller owner,
/// our label) is left alone: [`ChildError::NotOurs`]. The apply takes fields over from other
/// managers (`force`) only on an object known to be ours; a new one is applied without force, so
/// an object someone else created meanwhile conflicts instead of being adopted.
pub async fn apply_over<K>(
    api: &Api<K>,
    live: Option<&K>,
    mut desired: K,
    field_manager: &str,
) -> Result<Applied<K>, ChildError>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
{
    let name = desired.name_any();
    match live.map(|live| standing(live, &desired)) {
        Some(Standing::Foreign) => return Err(ChildError::not_ours::<K>(&name)),
        Some(Standing::Leftover) => return Err(ChildError::leftover::<K>(&name)),
        Some(Standing::Child) | None => {}
    }
    let hash = hash_of(&desired);
    desired.annotations_mut().insert(APPLIED_HASH_ANNOTATION.into(), hash.clone());
    if let Some(live) = live
        && live.annotations().get(APPLIED_HASH_ANNOTATION) == Some(&hash)
    {
        return Ok(Applied { object: live.clone(), written: false });
    }
    let params =
        if live.is_some() { PatchParams::apply(field_manager).force() } else { PatchParams::apply(field_manager) };
    match api.patch(&name, &params, &Patch::Apply(&desired)).await {
        Ok(object) => Ok(Applied { object, written: true }),
        // Not there when read, there now: whose is it?
        Err(kube::Error::Api(status)) if status.code == 409 && live.is_none() => {
            let found = get_child(api, &name).await?;
            match found.map(|found| standing(&found, &desired)) {
                Some(Standing::Foreign) => Err(ChildError::not_ours::<K>(&name)),
                Some(Standing::Leftover) => Err(ChildError::leftover::<K>(&name)),
                _ => Err(ChildError::of::<K>("apply", &name)(kube::Error::Api(status))),
            }
        }
        Err(error) => Err(ChildError::of::<K>("apply", &name)(error)),
    }
}

/// Deletes the object if it exists and is ours and the child of the object with uid `owner`.
/// Returns whether it did.
pub async fn delete_if_ours<K>(api: &Api<K>, name: &str, owner: &str) -> Result<bool, ChildError>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
{
    let Some(live) = get_child(api, name).await? else { return Ok(false) };
    if !is_child_of(&live, Some(owner)) {
        return Ok(false);
    }
    let precondition = DeleteParams { preconditions: live.uid().map(uid_precondition), ..DeleteParams::default() };
    match api.delete(name, &precondition).await {
        Ok(_) => Ok(true),
        // Gone, or replaced by another object of the same name since the read.
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(false),
        Err(error) => Err(ChildError::of::<K>("delete", name)(error)),
    }
}

/// Deletes exactly the object read, not one created under the same name since.
fn uid_precondition(uid: String) -> Preconditions {
    Preconditions { uid: Some(uid), resource_version: None }
}

/// Whether the operator's managed-by label is on an object (with our value: another tool's
/// `managed-by: Helm` object of the same name is not ours to delete).
fn is_ours(labels: &std::collections::BTreeMap<String, String>) -> bool {
    labels.get(MANAGED_BY_LABEL).is_some_and(|value| value == MANAGED_BY_VALUE)
}

/// Names of our objects matching a label selector.
pub async fn names<K>(api: &Api<K>, selector: &str) -> Result<Vec<String>, ChildError>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
{
    let list =
        api.list(&ListParams::default().labels(selector)).await.map_err(ChildError::of::<K>("list", selector))?;
    Ok(list.items.into_iter().map(|o| o.name_any()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_objects_labelled_managed_by_us_are_ours() {
        let labels = |value: &str| [(MANAGED_BY_LABEL.to_owned(), value.to_owned())].into_iter().collect();
        assert!(is_ours(&labels(MANAGED_BY_VALUE)));
        assert!(!is_ours(&labels("Helm")));
        assert!(!is_ours(&Default::default()));
    }
    use k8s_openapi::api::core::v1::ConfigMap;

    /// A ConfigMap `x`, with our label or not, whose controller is `owner` (kind, name, uid).
    fn child(ours: bool, owner: Option<(&str, &str, &str)>) -> ConfigMap {
        let mut object = ConfigMap::default();
        object.metadata.name = Some("x".into());
        if ours {
            object.metadata.labels = Some([(MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned())].into());
        }
        object.metadata.owner_references = owner.map(|(kind, name, uid)| {
            vec![OwnerReference {
                kind: kind.into(),
                name: name.into(),
                uid: uid.into(),
                controller: Some(true),
                ..OwnerReference::default()
            }]
        });
        object
    }

    #[test]
    fn a_live_object_is_a_child_only_when_ours_and_the_same_owners() {
        let desired = child(true, Some(("SecureApiService", "api", "uid-1")));
        assert_eq!(standing(&child(true, Some(("SecureApiService", "api", "uid-1"))), &desired), Standing::Child);
        assert_eq!(standing(&child(false, None), &desired), Standing::Foreign, "someone else's object");
        assert_eq!(
            standing(&child(false, Some(("SecureApiService", "api", "uid-1"))), &desired),
            Standing::Foreign,
            "our owner reference without our label (someone copied it)"
        );
        assert_eq!(
            standing(&child(true, Some(("SecureApiService", "other", "uid-2"))), &desired),
            Standing::Foreign,
            "another service's child"
        );
        assert_eq!(standing(&child(true, None), &desired), Standing::Foreign, "ours, but no one's child");
        assert_eq!(
            standing(&child(true, Some(("SecureApiService", "api", "uid-0"))), &desired),
            Standing::Leftover,
            "the child of a deleted service of the same name"
        );
        assert_eq!(standing(&child(true, None), &child(true, None)), Standing::Child, "ownerless, as wanted");
        assert!(is_child_of(&desired, Some("uid-1")));
        assert!(!is_child_of(&desired, Some("uid-2")));
        assert!(!is_child_of(&child(false, Some(("SecureApiService", "api", "uid-1"))), Some("uid-1")));
    }

    #[test]
    fn the_hash_follows_the_content() {
        let mut a = ConfigMap { data: Some([("k".to_string(), "v".to_string())].into()), ..ConfigMap::default() };
        let b = a.clone();
        assert_eq!(hash_of(&a), hash_of(&b));
        a.data = Some([("k".to_string(), "w".to_string())].into());
        assert_ne!(hash_of(&a), hash_of(&b));
        assert_eq!(hash_of(&b).len(), 16);
    }
}
