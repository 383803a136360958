//! What a sync starts from: the checked spec, the live target Secret, and whether the store must
//! be read at all (Secret Manager's access calls are billed; a steady SecretRef makes none).

use super::desired::{has_our_labels, is_ours, target_name};
use super::error::Error;
use super::mapping;
use super::status;
use crate::api::SecretRef;
use crate::api::conditions::{find_condition, types};
use crate::controllers::children::get_child;
use crate::controllers::timing::parse_duration;
use crate::secret_data::{content_hash, live_data};
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
pub fn plan(secret_ref: &SecretRef) -> Result<Plan, Error> {
    let spec = &secret_ref.spec;
    let refresh = parse_duration(&spec.refresh_interval).map_err(Error::InvalidSpec)?;
    if refresh < Duration::from_secs(1) {
        return Err(Error::InvalidSpec("refreshInterval must be at least 1s".into()));
    }
    if let Some(bad) = spec.keys.iter().find(|k| !mapping::is_valid_key(&k.key)) {
        return Err(Error::InvalidSpec(format!("keys: {:?} is not a valid Secret key", bad.key)));
    }
    Ok(Plan { target: target_name(secret_ref), refresh, pinned: spec.version.chars().all(|c| c.is_ascii_digit()) })
}

/// The live target Secret, if any; someone else's Secret of that name is a conflict.
pub async fn target(secrets: &Api<Secret>, secret_ref: &SecretRef, plan: &Plan) -> Result<Option<Secret>, Error> {
    let live = get_child(secrets, &plan.target).await?;
    match live {
        Some(live) if !is_ours(&live, secret_ref) => Err(Error::TargetConflict(plan.target.clone())),
        live => Ok(live),
    }
}

/// Whether the store must be read: the target is missing or edited, the spec changed, a floating
/// version is due (`next_check`), a refresh was asked for (the annotation, or a notification:
/// `forced`), or the last sync failed.
pub fn must_read(
    secret_ref: &SecretRef,
    plan: &Plan,
    live: Option<&Secret>,
    next_check: Option<Instant>,
    forced: bool,
) -> bool {
    let current = secret_ref.status.clone().unwrap_or_default();
    let intact = live.is_some_and(|l| {
        has_our_labels(l, &secret_ref.name_any()) && Some(content_hash(&live_data(l))) == current.content_hash
    });
    let spec_changed = current.observed_generation != secret_ref.metadata.generation;
    let due = !plan.pinned && next_check.is_none_or(|at| at <= Instant::now());
    let ready = find_condition(&current.conditions, types::READY).is_some_and(|c| c.is_true(types::READY));
    forced || !intact || spec_changed || due || status::refresh_requested(secret_ref) || !ready
}
