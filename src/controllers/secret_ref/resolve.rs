//! What a sync starts from: the checked spec, the live target Secret, and whether the store must
//! be read at all (Secret Manager's access calls are billed; a steady SecretRef makes none).
//!
//! The operator's own writes reach its caches a little later than it makes them. Until the cache
//! shows the status it wrote, a reconcile trusts what it remembers having synced ([`LastSync`]);
//! otherwise every write would be followed by a second, needless read of the store.

use super::desired::{has_our_labels, is_ours, secretref_label, target_name};
use super::error::Error;
use super::mapping;
use super::status;
use crate::api::conditions::{find_condition, types};
use crate::api::secret_ref::{RESERVED_KEYS_MESSAGE, SECRET_TYPES, SecretTarget, is_reserved_key};
use crate::api::{MAX_LABEL_VALUE, SecretRef};
use crate::controllers::Context;
use crate::hash_key::HashKey;
use crate::runtime::children::get_child;
use crate::runtime::error::InvalidField;
use crate::secret_data::live_data;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use std::time::{Duration, Instant};

/// The parts of the spec a sync needs, checked (pure).
pub struct Plan {
    pub target: String,
    pub refresh: Duration,
    /// A version number: never read again unless the spec or the target Secret changed.
    pub pinned: bool,
}

/// Checks what the schema cannot (pure).
pub fn plan(secret_ref: &SecretRef) -> Result<Plan, InvalidField> {
    let spec = &secret_ref.spec;
    let name = secret_ref.name_any();
    if name.len() > MAX_LABEL_VALUE {
        // The API server would refuse the Secret (and snapshots) labelled with it, after the read.
        return Err(InvalidField::new(
            "metadata.name",
            format!(
                "{} characters long; it is the value of label {} on its Secret, which allows at most {MAX_LABEL_VALUE}",
                name.len(),
                secretref_label()
            ),
        ));
    }
    let refresh = Duration::from(spec.refresh_interval);
    if spec.refresh_interval.is_negative() || refresh < Duration::from_secs(1) {
        return Err(InvalidField::new("spec.refreshInterval", "must be at least 1s"));
    }
    if let Some((index, bad)) = spec.keys.iter().enumerate().find(|(_, k)| !mapping::is_valid_key(&k.key)) {
        return Err(InvalidField::new(
            format!("spec.keys[{index}].key"),
            format!("{:?} is not a valid Secret key", bad.key),
        ));
    }
    check_target(&spec.target)?;
    Ok(Plan { target: target_name(secret_ref), refresh, pinned: spec.version.chars().all(|c| c.is_ascii_digit()) })
}

/// The schema's allow-list of types and its reserved label and annotation keys, again: a
/// SecretRef written under an older CRD, or one without these rules, must not make the operator
/// write a Secret that Kubernetes acts upon (a ServiceAccount token, for one).
fn check_target(target: &SecretTarget) -> Result<(), InvalidField> {
    if let Some(type_) = target.type_.as_deref().filter(|t| !SECRET_TYPES.contains(t)) {
        return Err(InvalidField::new(
            "spec.target.type",
            format!("{type_:?} is not allowed; use one of {}", SECRET_TYPES.join(", ")),
        ));
    }
    for (field, keys) in [("spec.target.labels", &target.labels), ("spec.target.annotations", &target.annotations)] {
        if let Some(key) = keys.keys().find(|k| is_reserved_key(k)) {
            return Err(InvalidField::new(field, format!("{key:?}: {RESERVED_KEYS_MESSAGE}")));
        }
    }
    Ok(())
}

/// What this process last synced for a SecretRef.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastSync {
    pub generation: Option<i64>,
    pub target: String,
    pub content_hash: String,
    pub observed_refresh: Option<String>,
    pub ready: bool,
}

/// What is known to be synced: the remembered sync when it is about this spec and target (the
/// cached status may not show it yet), else the status.
#[derive(Debug, PartialEq, Eq)]
pub struct Known {
    pub content_hash: Option<String>,
    pub spec_synced: bool,
    pub refresh_synced: bool,
    pub ready: bool,
}

impl Known {
    pub fn of(secret_ref: &SecretRef, plan: &Plan, last: Option<&LastSync>) -> Self {
        if let Some(last) = last.filter(|l| l.generation == secret_ref.metadata.generation && l.target == plan.target) {
            return Self {
                content_hash: Some(last.content_hash.clone()),
                spec_synced: true,
                refresh_synced: status::refresh_value(secret_ref).is_none_or(|r| Some(r) == last.observed_refresh),
                ready: last.ready,
            };
        }
        let current = secret_ref.status.clone().unwrap_or_default();
        Self {
            content_hash: current.content_hash.clone(),
            spec_synced: current.observed_generation == secret_ref.metadata.generation,
            refresh_synced: !status::refresh_requested(secret_ref),
            ready: find_condition(&current.conditions, types::READY).is_some_and(|c| c.is_true(types::READY)),
        }
    }

    /// What is known of `key`: the remembered sync while the cached status does not show it yet.
    /// Once the status says the same, the memory goes (10,000 SecretRefs remembered for ever are
    /// megabytes), and the status alone decides from then on.
    pub fn settled(ctx: &Context, secret_ref: &SecretRef, plan: &Plan, key: &str) -> Self {
        let from_status = Self::of(secret_ref, plan, None);
        let Some(last) = ctx.secret_refs.last_sync(key) else { return from_status };
        let from_memory = Self::of(secret_ref, plan, Some(&last));
        if from_memory == from_status {
            ctx.secret_refs.forget_sync(key);
        }
        from_memory
    }
}

/// The live target Secret, if any; someone else's Secret of that name is a conflict. The cached
/// copy serves when it holds what is known to be synced; anything else is read again, since the
/// cache may lag behind the operator's own write, or not hold someone else's Secret at all.
pub async fn target(
    ctx: &Context,
    secrets: &Api<Secret>,
    secret_ref: &SecretRef,
    plan: &Plan,
    known: &Known,
) -> Result<Option<Secret>, Error> {
    let namespace = secret_ref.namespace().unwrap_or_default();
    if let Some(cached) = ctx.caches.secrets.get(&namespace, &plan.target)
        && intact(&ctx.hash_key, &cached, secret_ref, known)
    {
        return Ok(Some(cached.as_ref().clone()));
    }
    let live = get_child(secrets, &plan.target).await?;
    match live {
        Some(live) if !is_ours(&live, secret_ref) => Err(Error::TargetConflict(plan.target.clone())),
        live => Ok(live),
    }
}

/// The Secret carries our labels and the content known to be synced.
fn intact(key: &HashKey, live: &Secret, secret_ref: &SecretRef, known: &Known) -> bool {
    has_our_labels(live, &secret_ref.name_any())
        && known.content_hash.as_deref().is_some_and(|hash| key.matches(&live_data(live), hash))
}

/// Whether the store must be read: the target is missing or edited, the spec changed, a floating
/// version is due (`next_check`), a refresh was asked for (the annotation, or a notification:
/// `forced`), or the last sync failed.
pub fn must_read(
    secret_ref: &SecretRef,
    plan: &Plan,
    known: &Known,
    live: Option<&Secret>,
    next_check: Option<Instant>,
    forced: bool,
    key: &HashKey,
) -> bool {
    let intact = live.is_some_and(|l| intact(key, l, secret_ref, known));
    let due = !plan.pinned && next_check.is_none_or(|at| at <= Instant::now());
    forced || !intact || !known.spec_synced || due || !known.refresh_synced || !known.ready
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::conditions::reasons;
    use crate::runtime::skeleton::Failure;

    fn secret_ref(name: &str) -> SecretRef {
        let object = serde_json::json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": name },
            "spec": { "secret": "db" },
        });
        serde_json::from_value(object).unwrap_or_else(|e| panic!("{e}"))
    }

    fn with_target(target: serde_json::Value) -> SecretRef {
        let mut object = secret_ref("db");
        object.spec.target = serde_json::from_value(target).unwrap_or_else(|e| panic!("{e}"));
        object
    }

    fn refusal(object: &SecretRef) -> Option<(String, &'static str)> {
        plan(object).err().map(|e| (e.to_string(), Error::from(e).reason()))
    }

    /// The CRD refuses these; an object written under an older CRD is refused before any read,
    /// so the last synced Secret stays as it was.
    #[test]
    fn only_allowed_secret_types_pass() {
        for allowed in SECRET_TYPES {
            assert!(plan(&with_target(serde_json::json!({ "type": allowed }))).is_ok(), "{allowed}");
        }
        let token = with_target(serde_json::json!({
            "type": "kubernetes.io/service-account-token",
            "annotations": { "kubernetes.io/service-account.name": "deployer" },
        }));
        let (message, reason) = refusal(&token).unwrap_or_default();
        assert_eq!(reason, reasons::INVALID_SPEC);
        assert!(message.contains("\"kubernetes.io/service-account-token\" is not allowed"), "{message}");
        assert!(refusal(&with_target(serde_json::json!({ "type": "" }))).is_some());
    }

    #[test]
    fn label_and_annotation_keys_under_kubernetes_domains_are_refused() {
        for key in ["kubernetes.io/x", "k8s.io/x", "foo.kubernetes.io/x", "a.b.k8s.io/x"] {
            for field in ["labels", "annotations"] {
                let object = with_target(serde_json::json!({ field: { key: "v" } }));
                let (message, reason) = refusal(&object).unwrap_or_default();
                assert_eq!(reason, reasons::INVALID_SPEC, "{field} {key}");
                assert!(message.contains(&format!("target.{field}: {key:?}")), "{message}");
            }
        }
        for key in [
            "team",
            "example.com/owner",
            "notkubernetes.io/x",
            "kubernetes.io",
            "k8s.io.example.com/x",
            "app.kubernetes.io/name",
        ] {
            assert!(plan(&with_target(serde_json::json!({ "labels": { key: "v" } }))).is_ok(), "{key}");
        }
    }

    /// The CRD refuses such names; an object created before that rule existed still gets a
    /// clear condition before any read.
    #[test]
    fn a_name_over_63_characters_is_invalid_spec() {
        assert!(plan(&secret_ref(&"a".repeat(63))).is_ok());
        let refused = plan(&secret_ref(&"a".repeat(64))).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused.contains("64 characters") && refused.contains("at most 63"), "{refused}");
    }
}
