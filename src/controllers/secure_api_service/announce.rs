//! The Normal Event of a SecureApiService: a new revision on its Deployment. Published when this
//! reconcile's write put it there (the Deployment ran another revision, or none, when the
//! reconcile started), so re-reconciles of the same revision say nothing.

use super::apply::Applied;
use super::canary::Trial;
use super::desired::Desired;
use super::revision::revision_of;
use crate::api::SecureApiService;
use crate::api::conditions::reasons;
use crate::api::secure_api_service::RevisionRecord;
use crate::controllers::Context;

/// Announces the rollout `applied` started, if it did (`live_before`: the revision the
/// Deployment ran when the reconcile started).
pub async fn rollout(
    ctx: &Context,
    service: &SecureApiService,
    desired: Option<&Desired>,
    applied: &Applied,
    live_before: Option<&str>,
) {
    let Some(desired) = desired.filter(|_| applied.restored.is_none()) else { return };
    let live = applied.deployment.as_ref().and_then(revision_of);
    if let Some(note) = rollout_note(&desired.record, live.as_deref(), live_before) {
        ctx.announce(service, reasons::ROLLOUT_STARTED, &desired.record.revision, "Rollout", note).await;
    }
}

/// Announces a canary's step when this reconcile moved it there (`before`: the trial the canary
/// Deployment recorded when the reconcile started).
pub async fn canary_step(ctx: &Context, service: &SecureApiService, trial: &Trial, before: Option<&Trial>) {
    let moved = before.is_none_or(|before| before.revision != trial.revision || before.step != trial.step);
    if !moved {
        return;
    }
    let steps = service.spec.rollout.steps();
    let weight = steps.get(trial.step).map_or(0, |step| step.weight);
    let note = format!(
        "canary revision {} takes {weight}% of the traffic: step {} of {}",
        trial.revision,
        trial.step + 1,
        steps.len()
    );
    let subject = format!("{}/{}", trial.revision, trial.step);
    ctx.announce(service, reasons::CANARY_STEP, &subject, "Rollout", note).await;
}

/// What the Event says, when the Deployment now runs `desired` and did not before (pure).
fn rollout_note(desired: &RevisionRecord, live: Option<&str>, live_before: Option<&str>) -> Option<String> {
    let revision = desired.revision.as_str();
    if live != Some(revision) || live_before == Some(revision) {
        return None;
    }
    let versions: Vec<String> = desired.secret_versions.iter().map(|(name, v)| format!("{name}={v}")).collect();
    let mut note = format!("rolling out revision {revision}");
    if !versions.is_empty() {
        note.push_str(&format!(" with secret versions {}", versions.join(",")));
    }
    match live_before {
        Some(previous) => note.push_str(&format!("; it replaces {previous}")),
        None => note.push_str("; the first revision"),
    }
    Some(note)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(revision: &str) -> RevisionRecord {
        let versions = [("config", "1"), ("db", "2")].map(|(k, v)| (k.to_owned(), v.to_owned())).into();
        RevisionRecord { revision: revision.into(), secret_versions: versions, snapshots: vec![] }
    }

    #[test]
    fn a_new_revision_on_the_deployment_is_announced_with_its_versions() {
        let note = rollout_note(&record("api-b"), Some("api-b"), Some("api-a"));
        assert_eq!(
            note.as_deref(),
            Some("rolling out revision api-b with secret versions config=1,db=2; it replaces api-a")
        );
        let first = rollout_note(&record("api-a"), Some("api-a"), None);
        assert!(first.is_some_and(|n| n.ends_with("; the first revision")));
    }

    #[test]
    fn the_same_revision_again_or_a_write_that_did_not_land_says_nothing() {
        assert_eq!(rollout_note(&record("api-b"), Some("api-b"), Some("api-b")), None);
        assert_eq!(rollout_note(&record("api-b"), Some("api-a"), Some("api-a")), None);
        assert_eq!(rollout_note(&record("api-b"), None, None), None);
    }
}
