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

    // --- whether the store is read (Secret Manager's access calls are billed)

    fn versioned(version: &str) -> SecretRef {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef",
            "metadata": { "name": "db", "namespace": "prod", "uid": "u-1", "generation": 3 },
            "spec": { "secret": "api-config-db", "version": version },
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn synced_data() -> crate::secret_data::SecretData {
        std::collections::BTreeMap::from([("password".to_string(), b"pw".to_vec())])
    }

    /// The target as the last sync wrote it.
    fn written(secret_ref: &SecretRef) -> Secret {
        super::super::desired::desired_secret(secret_ref, &synced_data(), "7")
    }

    /// Everything known to be synced: this spec, this content, Ready.
    fn settled(key: &HashKey) -> Known {
        Known {
            content_hash: Some(key.content_hash(&synced_data())),
            spec_synced: true,
            refresh_synced: true,
            ready: true,
        }
    }

    fn planned(secret_ref: &SecretRef) -> Plan {
        plan(secret_ref).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_pinned_version_is_not_read_again_when_nothing_changed() {
        let key = crate::hash_key::tests::test_key();
        let pinned = versioned("7");
        let live = written(&pinned);
        let plan = planned(&pinned);
        assert!(plan.pinned);
        assert!(!must_read(&pinned, &plan, &settled(&key), Some(&live), None, false, &key));
        let long_ago = Instant::now().checked_sub(Duration::from_secs(3600));
        assert!(!must_read(&pinned, &plan, &settled(&key), Some(&live), long_ago, false, &key), "no refresh is due");
    }

    #[test]
    fn a_floating_version_is_read_again_once_its_check_is_due_and_not_before() {
        let key = crate::hash_key::tests::test_key();
        let latest = versioned("latest");
        let (live, plan) = (written(&latest), planned(&latest));
        assert!(!plan.pinned);
        let later = Instant::now() + Duration::from_secs(600);
        assert!(!must_read(&latest, &plan, &settled(&key), Some(&live), Some(later), false, &key));
        let due = Instant::now().checked_sub(Duration::from_millis(1));
        assert!(must_read(&latest, &plan, &settled(&key), Some(&live), due, false, &key));
        assert!(must_read(&latest, &plan, &settled(&key), Some(&live), None, false, &key), "never checked");
    }

    #[test]
    fn a_target_someone_edited_relabelled_or_deleted_is_read_again() {
        let key = crate::hash_key::tests::test_key();
        let pinned = versioned("7");
        let plan = planned(&pinned);
        let known = settled(&key);
        assert!(must_read(&pinned, &plan, &known, None, None, false, &key), "deleted");
        let mut edited = written(&pinned);
        edited.data = Some(std::collections::BTreeMap::from([(
            "password".to_string(),
            k8s_openapi::ByteString(b"edited".to_vec()),
        )]));
        assert!(must_read(&pinned, &plan, &known, Some(&edited), None, false, &key), "edited");
        let mut relabelled = written(&pinned);
        relabelled.metadata.labels = None;
        assert!(must_read(&pinned, &plan, &known, Some(&relabelled), None, false, &key), "our labels removed");
    }

    #[test]
    fn a_changed_spec_a_refresh_request_a_notification_or_a_failed_sync_reads_the_store() {
        let key = crate::hash_key::tests::test_key();
        let pinned = versioned("7");
        let (live, plan) = (written(&pinned), planned(&pinned));
        let read = |known: &Known, forced| must_read(&pinned, &plan, known, Some(&live), None, forced, &key);
        assert!(read(&Known { spec_synced: false, ..settled(&key) }, false), "the spec changed");
        assert!(read(&Known { refresh_synced: false, ..settled(&key) }, false), "the refresh annotation changed");
        assert!(read(&Known { ready: false, ..settled(&key) }, false), "the last sync failed");
        assert!(read(&settled(&key), true), "a notification asked for a read");
    }

    // --- what is known to be synced

    fn last(generation: i64, target: &str) -> LastSync {
        LastSync {
            generation: Some(generation),
            target: target.into(),
            content_hash: "remembered".into(),
            observed_refresh: None,
            ready: true,
        }
    }

    #[test]
    fn a_remembered_sync_counts_only_for_the_same_generation_and_target() {
        let mut secret_ref = versioned("7");
        secret_ref.status = Some(crate::api::SecretRefStatus {
            content_hash: Some("from-status".into()),
            observed_generation: Some(2),
            ..Default::default()
        });
        let plan = planned(&secret_ref);
        let remembered = Known::of(&secret_ref, &plan, Some(&last(3, "db")));
        assert_eq!(remembered.content_hash.as_deref(), Some("remembered"));
        assert!(remembered.spec_synced && remembered.ready);
        for stale in [last(2, "db"), last(3, "db-old")] {
            let known = Known::of(&secret_ref, &plan, Some(&stale));
            assert_eq!(known.content_hash.as_deref(), Some("from-status"), "{stale:?}");
            assert!(!known.spec_synced, "the status observed generation 2, the object is at 3");
            assert!(!known.ready, "the status has no Ready condition");
        }
    }

    #[test]
    fn a_refresh_request_is_synced_once_the_sync_observed_its_value() {
        let mut secret_ref = versioned("7");
        secret_ref.metadata.annotations = Some([(crate::api::REFRESH_ANNOTATION.to_string(), "r2".to_string())].into());
        let plan = planned(&secret_ref);
        let observed = |value: Option<&str>| LastSync { observed_refresh: value.map(str::to_owned), ..last(3, "db") };
        assert!(!Known::of(&secret_ref, &plan, Some(&observed(Some("r1")))).refresh_synced);
        assert!(Known::of(&secret_ref, &plan, Some(&observed(Some("r2")))).refresh_synced);
        assert!(!Known::of(&secret_ref, &plan, None).refresh_synced, "the status has not observed r2 either");
    }

    // --- what the spec allows

    #[test]
    fn a_version_number_is_pinned_and_latest_or_an_alias_floats() {
        assert!(planned(&versioned("12")).pinned);
        assert!(!planned(&versioned("latest")).pinned);
        assert!(!planned(&versioned("stable")).pinned);
    }

    #[test]
    fn a_refresh_interval_under_a_second_is_refused_before_any_read() {
        for interval in ["500ms", "0s", "-1m"] {
            let mut short = versioned("latest");
            short.spec.refresh_interval = interval.parse().unwrap_or_else(|e| panic!("{interval}: {e:?}"));
            let refused = plan(&short).err().map(|e| e.to_string());
            assert_eq!(
                refused.as_deref(),
                Some("invalid spec: spec.refreshInterval: must be at least 1s"),
                "{interval}"
            );
        }
        let mut second = versioned("latest");
        second.spec.refresh_interval = "1s".parse().unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(planned(&second).refresh, Duration::from_secs(1));
    }

    #[test]
    fn a_key_kubernetes_would_refuse_is_named_by_its_place_in_spec_keys() {
        let mut object = versioned("7");
        object.spec.keys = serde_json::from_value(serde_json::json!([{ "key": "host" }, { "key": "db password" }]))
            .unwrap_or_else(|e| panic!("{e}"));
        let refused = plan(&object).err().unwrap_or_else(|| panic!("refused"));
        assert_eq!(refused.field, "spec.keys[1].key");
        assert_eq!(refused.to_string(), "invalid spec: spec.keys[1].key: \"db password\" is not a valid Secret key");
    }

    #[test]
    fn the_target_is_the_object_name_unless_the_spec_names_another() {
        assert_eq!(planned(&versioned("7")).target, "db");
        let mut renamed = versioned("7");
        renamed.spec.target.name = Some("db-credentials".into());
        assert_eq!(planned(&renamed).target, "db-credentials");
    }
}
