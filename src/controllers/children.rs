//! Applying child objects without writing when nothing changed: each desired object carries a
//! hash of itself in an annotation, and a live object with the same hash is left alone. Server
//! defaults on the live object therefore never cause a write.

use super::refusal;
use crate::api::{MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
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

/// A child object the API server would not read, write or delete, with what was being done: the
/// message names the object and carries the server's answer (see [`refusal`]).
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {kind} {name}: {}", refusal::describe(.source))]
pub struct ChildError {
    pub action: &'static str,
    pub kind: String,
    pub name: String,
    #[source]
    pub source: Box<kube::Error>,
}

impl ChildError {
    pub fn of<K: Resource<DynamicType = ()>>(action: &'static str, name: &str) -> impl FnOnce(kube::Error) -> Self {
        let (kind, name) = (K::kind(&()).into_owned(), name.to_owned());
        move |source| Self { action, kind, name, source: Box::new(source) }
    }

    /// The condition reason: what the API server said (see [`refusal::reason`]).
    pub fn reason(&self) -> &'static str {
        refusal::reason(&self.source)
    }

    pub fn is_transient(&self) -> bool {
        refusal::is_transient(&self.source)
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
/// its hash.
pub async fn apply_over<K>(
    api: &Api<K>,
    live: Option<&K>,
    mut desired: K,
    field_manager: &str,
) -> Result<Applied<K>, ChildError>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
{
    let hash = hash_of(&desired);
    desired.annotations_mut().insert(APPLIED_HASH_ANNOTATION.into(), hash.clone());
    if let Some(live) = live
        && live.annotations().get(APPLIED_HASH_ANNOTATION) == Some(&hash)
    {
        return Ok(Applied { object: live.clone(), written: false });
    }
    let name = desired.name_any();
    let params = PatchParams::apply(field_manager).force();
    let object =
        api.patch(&name, &params, &Patch::Apply(&desired)).await.map_err(ChildError::of::<K>("apply", &name))?;
    Ok(Applied { object, written: true })
}

/// Deletes the object if it exists and is ours (by the managed-by label). Returns whether it did.
pub async fn delete_if_ours<K>(api: &Api<K>, name: &str) -> Result<bool, ChildError>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
{
    let Some(live) = get_child(api, name).await? else { return Ok(false) };
    if !is_ours(live.labels()) {
        return Ok(false);
    }
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(error) => Err(ChildError::of::<K>("delete", name)(error)),
    }
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
