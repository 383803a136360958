//! SecureApiService status from what was applied and what the Deployment reports (pure).

use super::apply::Applied;
use super::desired::Desired;
use super::resolve::Unresolved;
use super::revision::revision_of;
use crate::api::conditions::{Condition, ConditionStatus, find_condition, reasons, set_condition, types};
use crate::api::secure_api_service::{
    CanaryStatus, PendingRevision, RejectedRevision, RevisionRecord, RolloutStrategy, TrafficSplit, TrafficTargetStatus,
};
use crate::api::{SecureApiService, SecureApiServiceStatus};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::BTreeMap;

/// Where the Deployment's rollout stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rollout {
    Complete,
    InProgress,
    /// `Progressing=False` with `ProgressDeadlineExceeded` for the current generation.
    Stalled,
}

/// Reads the rollout state the way `kubectl rollout status` does.
pub fn rollout(deployment: &Deployment) -> Rollout {
    let Some(status) = &deployment.status else { return Rollout::InProgress };
    let current = status.observed_generation == deployment.metadata.generation;
    let stalled = status.conditions.iter().flatten().any(|c| {
        c.type_ == "Progressing" && c.status == "False" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if current && stalled {
        return Rollout::Stalled;
    }
    let wanted = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let done = current
        && status.updated_replicas.unwrap_or(0) >= wanted
        && status.ready_replicas.unwrap_or(0) >= wanted
        && status.available_replicas.unwrap_or(0) >= wanted
        && status.replicas.unwrap_or(0) <= wanted;
    if done { Rollout::Complete } else { Rollout::InProgress }
}

/// Public URL: `expose.externalUrl`, else the LoadBalancer's first ingress address.
pub fn external_url(service: &SecureApiService, live: Option<&Service>) -> Option<String> {
    if let Some(url) = &service.spec.expose.external_url {
        return Some(url.clone());
    }
    let ingress = live?.status.as_ref()?.load_balancer.as_ref()?.ingress.as_ref()?.first()?.clone();
    let host = ingress.hostname.or(ingress.ip)?;
    let port = service.spec.expose.port.unwrap_or(80);
    Some(if port == 80 { format!("http://{host}") } else { format!("http://{host}:{port}") })
}

/// What one reconcile learned, for the status.
pub struct Facts<'a> {
    pub url: String,
    pub external_url: Option<String>,
    /// The revision now on the Deployment, with its secret versions and snapshots.
    pub live: Option<&'a RevisionRecord>,
    /// The revision that should be live (newest first in history once applied).
    pub desired: Option<&'a RevisionRecord>,
    pub deployment: Option<&'a Deployment>,
    pub history_limit: usize,
    pub failed_revision: Option<String>,
    /// SecretsResolved: `None` when resolved, else (reason, message).
    pub unresolved: Option<(String, String)>,
    pub rolled_back: bool,
    /// The revision a rollback did not restore: its record is not sealed by this operator.
    pub unsealed: Option<String>,
    /// The revision the Deployment ran when the reconcile started, and the one it remembered as
    /// the one before.
    pub live_before: Option<RevisionRecord>,
    pub previous_before: Option<RevisionRecord>,
    /// Snapshot Secrets that exist (as the cache has them).
    pub existing_snapshots: Vec<String>,
    /// The canary trial in progress.
    pub canary: Option<CanaryStatus>,
    /// The revision whose trial is aborted, and why.
    pub aborted: Option<RejectedRevision>,
    /// A rotation's revision that waits for its batch or the rollout window.
    pub pending: Option<PendingRevision>,
    /// The HTTPRoute applied for `expose.gateway`.
    pub route: Option<String>,
    /// `expose.gateway` is set, but the cluster serves no HTTPRoute: the split is by replicas.
    pub unrouted: bool,
    /// The shares `spec.traffic` asks for, as served.
    pub traffic: Vec<TrafficTargetStatus>,
    /// Revisions that serve beside the desired one (`spec.traffic`'s second).
    pub serving: &'a [RevisionRecord],
    /// The latest revision, when it was built.
    pub latest: Option<&'a str>,
    /// The serving revision and its secret versions that Secret Manager now refuses.
    pub unusable: Option<(String, Vec<String>)>,
}

/// Whether the revision just built is live and stalled, and the spec asks for a rollback.
pub fn must_roll_back(service: &SecureApiService, desired: &Desired, applied: &Applied) -> bool {
    let Some(deployment) = &applied.deployment else { return false };
    service.spec.rollout.auto_rollback
        && revision_of(deployment).as_deref() == Some(desired.record.revision.as_str())
        && rollout(deployment) == Rollout::Stalled
}

/// What a reconcile found before it applied anything: the revision the Deployment ran, and the
/// snapshot Secrets that exist.
pub struct Before {
    pub live: Option<RevisionRecord>,
    pub previous: Option<RevisionRecord>,
    pub snapshots: Vec<String>,
}

/// The facts of one reconcile: what was found `before`, resolved, built and applied.
pub fn facts<'a>(
    service: &SecureApiService,
    current: &'a SecureApiServiceStatus,
    unresolved: Option<&Unresolved>,
    desired: Option<&'a Desired>,
    applied: &'a Applied,
    before: Before,
) -> Facts<'a> {
    let revision_before = before.live.as_ref().map(|r| r.revision.clone());
    let mut live_revision = applied.deployment.as_ref().and_then(revision_of).or(revision_before);
    let mut failed_revision = match desired {
        Some(desired) => desired.failed_revision.clone(),
        None => current.failed_revision.clone(),
    };
    if let (Some(restored), Some(desired)) = (&applied.restored, desired) {
        failed_revision = Some(desired.record.revision.clone());
        live_revision = Some(restored.clone());
    }
    let rolled_back = applied.restored.is_some() || (failed_revision.is_some() && failed_revision != live_revision);
    let desired_record = desired.map(|d| &d.record);
    let live = desired_record
        .filter(|d| Some(&d.revision) == live_revision.as_ref())
        .or_else(|| current.history.iter().find(|r| Some(&r.revision) == live_revision.as_ref()));
    Facts {
        url: crate::workload::service::in_cluster_url(service),
        external_url: external_url(service, applied.service.as_ref()),
        live,
        desired: desired_record,
        deployment: applied.deployment.as_ref(),
        history_limit: usize::try_from(service.spec.revision_history_limit).unwrap_or(0),
        failed_revision,
        unresolved: unresolved.map(|u| (u.reason.clone(), u.message.clone())),
        rolled_back,
        unsealed: applied.unsealed.clone(),
        live_before: before.live,
        previous_before: before.previous,
        existing_snapshots: before.snapshots,
        canary: None,
        aborted: None,
        pending: None,
        route: None,
        unrouted: false,
        traffic: vec![],
        serving: desired.map_or(&[], |d| d.serving.as_slice()),
        latest: desired.map(|d| d.latest.as_str()),
        unusable: None,
    }
}

/// The failure a status reports, if any: `Ready=False` for any reason but a rollout in progress.
pub fn failure(status: &SecureApiServiceStatus) -> Option<(&str, &str)> {
    let ready = find_condition(&status.conditions, types::READY)?;
    let failed = ready.status == ConditionStatus::False && ready.reason != reasons::ROLLOUT_IN_PROGRESS;
    failed.then_some((ready.reason.as_str(), ready.message.as_str()))
}

/// Status after a failed reconcile: `Ready=False` with the error's reason; the rest stays.
pub fn failed(service: &SecureApiService, reason: &str, message: &str, now: Time) -> SecureApiServiceStatus {
    let mut status = service.status.clone().unwrap_or_default();
    let ready = Condition::new(types::READY, ConditionStatus::False, reason, message, service.metadata.generation, now);
    set_condition(&mut status.conditions, ready);
    status
}

/// The new status: history gains the desired revision, conditions follow the facts.
pub fn next(service: &SecureApiService, facts: &Facts<'_>, now: Time) -> SecureApiServiceStatus {
    let mut status = service.status.clone().unwrap_or_default();
    let generation = service.metadata.generation;
    status.observed_generation = generation;
    status.url = Some(facts.url.clone());
    status.external_url = facts.external_url.clone();
    status.failed_revision = facts.failed_revision.clone();
    if let Some(desired) = facts.desired
        && status.history.first().map(|r| &r.revision) != Some(&desired.revision)
    {
        status.history.retain(|r| r.revision != desired.revision);
        status.history.insert(0, desired.clone());
    }
    // The revisions the Deployment ran or remembers for a rollback, when no status recorded them
    // (a crash or a failed status write in between): their pods ran and a rollback may restore
    // them, so they are history too, right behind the desired one.
    for unrecorded in [&facts.previous_before, &facts.live_before].into_iter().flatten() {
        if status.history.iter().all(|r| r.revision != unrecorded.revision) {
            let behind_desired = usize::from(facts.desired.is_some()).min(status.history.len());
            status.history.insert(behind_desired, unrecorded.clone());
        }
    }
    // An older revision whose snapshots are gone cannot be restored: it is no longer history
    // (a late delete from a process that stopped, or someone's hand).
    let keep = |r: &RevisionRecord| {
        Some(&r.revision) == facts.desired.map(|d| &d.revision)
            || Some(&r.revision) == facts.live.map(|l| &l.revision)
            || r.snapshots.iter().all(|s| facts.existing_snapshots.contains(s))
    };
    status.history.retain(keep);
    // Past the limit, only what `spec.traffic` names stays: its snapshots are kept while named.
    let named = |r: &RevisionRecord| service.spec.traffic.iter().any(|t| t.revision.as_ref() == Some(&r.revision));
    let mut counted = 0;
    status.history.retain(|r| {
        counted += 1;
        counted <= facts.history_limit + 1 || named(r)
    });
    for serving in facts.serving {
        if status.history.iter().all(|r| r.revision != serving.revision) {
            status.history.push(serving.clone());
        }
    }
    // The revision that serves stays on record while a canary of a newer one is tried beside it
    // (or was aborted): it is what the traffic goes back to.
    if let Some(live) = facts.live
        && status.history.iter().all(|r| r.revision != live.revision)
    {
        status.history.push(live.clone());
    }
    if let Some(live) = facts.live {
        status.revision = Some(live.revision.clone());
        status.secret_versions = live.secret_versions.clone();
        let summary = versions_line(&live.secret_versions);
        status.secret_versions_summary = (!summary.is_empty()).then_some(summary);
    }
    status.canary = facts.canary.clone();
    status.traffic = facts.traffic.clone();
    if service.spec.traffic.is_empty() {
        status.latest_revision = None;
    } else if let Some(latest) = facts.latest {
        status.latest_revision = Some(latest.to_owned());
    }
    status.pending_revision = facts.pending.clone();
    status.http_route = facts.route.clone();
    if let Some(aborted) = &facts.aborted {
        super::canary::reject(&mut status.rejected_revisions, aborted.clone());
    }
    let deployment_status = facts.deployment.and_then(|d| d.status.as_ref());
    status.replicas = deployment_status.and_then(|s| s.replicas);
    status.ready_replicas = deployment_status.and_then(|s| s.ready_replicas);
    status.updated_replicas = deployment_status.and_then(|s| s.updated_replicas);

    let secrets = match &facts.unresolved {
        None => draft(true, reasons::SECRETS_READY, "every SecretRef is Ready".into()),
        Some((reason, message)) => draft(false, reason, message.clone()),
    };
    let rollout_state = facts.deployment.map(rollout);
    let revision = facts.live.map(|r| r.revision.as_str()).unwrap_or("-");
    let rolled = match (facts.rolled_back, rollout_state) {
        _ if let Some(aborted) = &facts.aborted => draft(
            false,
            reasons::ROLLOUT_ABORTED,
            format!(
                "revision {} (secret versions {}) was aborted: {}; all traffic stays on revision {revision}{}",
                aborted.revision,
                versions_line(&aborted.secret_versions),
                aborted.message,
                unusable_note(facts.unusable.as_ref()),
            ),
        ),
        _ if let Some(canary) = &facts.canary => draft(
            false,
            reasons::ROLLOUT_IN_PROGRESS,
            format!(
                "{} revision {} at step {} of {}: {}% of the traffic ({}{})",
                match service.spec.rollout.strategy {
                    RolloutStrategy::BlueGreen => "blue/green",
                    _ => "canary",
                },
                canary.revision,
                canary.step,
                canary.steps,
                canary.effective_weight,
                split_name(canary.traffic_split),
                if facts.unrouted { ": the cluster serves no Gateway API HTTPRoute for expose.gateway" } else { "" },
            ),
        ),
        (true, _) => draft(
            false,
            reasons::ROLLED_BACK,
            format!("revision {} stalled; {revision} was restored", facts.failed_revision.as_deref().unwrap_or("-")),
        ),
        (_, Some(Rollout::Complete)) if let Some(pending) = &facts.pending => draft(
            true,
            reasons::ROLLOUT_DEFERRED,
            format!(
                "revision {revision} runs on every replica; revision {} (secret versions {}) waits for the rollout's batch or window until {}",
                pending.revision,
                versions_line(&pending.secret_versions),
                pending.starts_at.0
            ),
        ),
        (_, Some(Rollout::Complete)) => draft(
            true,
            reasons::ROLLOUT_COMPLETE,
            format!(
                "revision {revision} runs on every replica{}{}",
                traffic_line(&facts.traffic, facts),
                unusable_note(facts.unusable.as_ref())
            ),
        ),
        (_, Some(Rollout::Stalled)) => {
            let mut message = format!("revision {revision} exceeded its progress deadline");
            if let Some(unsealed) = &facts.unsealed {
                message.push_str(&format!(
                    "; {unsealed} was not restored: the Deployment's record of it does not carry this operator's seal"
                ));
            }
            draft(false, reasons::PROGRESS_DEADLINE_EXCEEDED, message)
        }
        _ => draft(
            false,
            reasons::ROLLOUT_IN_PROGRESS,
            format!("rolling out revision {revision}{}", unusable_note(facts.unusable.as_ref())),
        ),
    };
    let ready = facts.unresolved.is_none() && rolled.status == ConditionStatus::True;
    let (ready_reason, ready_message) = if ready {
        (rolled.reason.clone(), rolled.message.clone())
    } else if facts.unresolved.is_some() {
        (secrets.reason.clone(), secrets.message.clone())
    } else {
        (rolled.reason.clone(), rolled.message.clone())
    };
    for (type_, ok, reason, message) in [
        (types::READY, ready, ready_reason, ready_message),
        (types::SECRETS_RESOLVED, secrets.status == ConditionStatus::True, secrets.reason, secrets.message),
        (types::ROLLOUT_COMPLETE, rolled.status == ConditionStatus::True, rolled.reason, rolled.message),
    ] {
        let status_value = if ok { ConditionStatus::True } else { ConditionStatus::False };
        set_condition(
            &mut status.conditions,
            Condition::new(type_, status_value, &reason, message, generation, now.clone()),
        );
    }
    status
}

/// `db=7,keys=3`.
fn versions_line(versions: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = versions.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join(",")
}

/// `; revision api-1a ran secret versions db=1 (Disabled), which Secret Manager now refuses: …`.
fn unusable_note(unusable: Option<&(String, Vec<String>)>) -> String {
    let Some((revision, versions)) = unusable else { return String::new() };
    format!(
        "; revision {revision} ran secret versions {}, which Secret Manager now refuses: its pods may fail",
        versions.join(", ")
    )
}

/// `; traffic: api-1a 90%, api-2b 10% (tag next), split by replica ratio` when `spec.traffic` is set.
fn traffic_line(traffic: &[TrafficTargetStatus], facts: &Facts<'_>) -> String {
    if traffic.is_empty() {
        return String::new();
    }
    let shares: Vec<String> = traffic
        .iter()
        .map(|share| match &share.tag {
            Some(tag) => format!("{} {}% (tag {tag})", share.revision, share.percent),
            None => format!("{} {}%", share.revision, share.percent),
        })
        .collect();
    let split = if facts.route.is_some() { TrafficSplit::HTTPRoute } else { TrafficSplit::ReplicaRatio };
    format!("; traffic: {}, {}", shares.join(", "), split_name(split))
}

fn split_name(split: TrafficSplit) -> &'static str {
    match split {
        TrafficSplit::ReplicaRatio => "split by replica ratio",
        TrafficSplit::HTTPRoute => "split by the HTTPRoute's weights",
    }
}

struct Draft {
    status: ConditionStatus,
    reason: String,
    message: String,
}

fn draft(ok: bool, reason: &str, message: String) -> Draft {
    Draft { status: if ok { ConditionStatus::True } else { ConditionStatus::False }, reason: reason.into(), message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(generation: i64, status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": { "name": "api", "generation": generation },
            "spec": { "replicas": 2, "selector": {}, "template": {} },
            "status": status,
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_rollout_is_complete_when_every_replica_is_updated_ready_and_available() {
        let done = deployment(
            3,
            json!({ "observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2 }),
        );
        assert_eq!(rollout(&done), Rollout::Complete);
        let old_generation = deployment(
            4,
            json!({ "observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2 }),
        );
        assert_eq!(rollout(&old_generation), Rollout::InProgress);
    }

    #[test]
    fn a_progress_deadline_exceeded_for_this_generation_is_a_stall() {
        let stalled = deployment(
            2,
            json!({ "observedGeneration": 2, "conditions": [
            { "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded" }
        ] }),
        );
        assert_eq!(rollout(&stalled), Rollout::Stalled);
    }

    fn record(revision: &str, snapshots: &[&str]) -> RevisionRecord {
        RevisionRecord {
            revision: revision.into(),
            secret_versions: Default::default(),
            snapshots: snapshots.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn service_with_history(history: &[RevisionRecord]) -> SecureApiService {
        let service = json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecureApiService",
            "metadata": { "name": "api", "namespace": "ns", "generation": 2 },
            "spec": { "image": "example.com/api:1", "revisionHistoryLimit": 2 },
            "status": { "history": history },
        });
        serde_json::from_value(service).unwrap_or_else(|e| panic!("{e}"))
    }

    fn facts_for<'a>(desired: &'a RevisionRecord, live_before: Option<RevisionRecord>, existing: &[&str]) -> Facts<'a> {
        Facts {
            url: "http://api.ns.svc".into(),
            external_url: None,
            live: Some(desired),
            desired: Some(desired),
            deployment: None,
            history_limit: 2,
            failed_revision: None,
            unresolved: None,
            rolled_back: false,
            unsealed: None,
            live_before,
            previous_before: None,
            existing_snapshots: existing.iter().map(|s| s.to_string()).collect(),
            canary: None,
            aborted: None,
            pending: None,
            route: None,
            unrouted: false,
            traffic: vec![],
            serving: &[],
            latest: None,
            unusable: None,
        }
    }

    fn revisions(status: &SecureApiServiceStatus) -> Vec<&str> {
        status.history.iter().map(|r| r.revision.as_str()).collect()
    }

    #[test]
    fn a_revision_that_went_live_without_a_status_joins_the_history_behind_the_new_one() {
        let service = service_with_history(&[record("api-a", &["api-db-a"])]);
        let desired = record("api-c", &["api-db-c"]);
        let facts = facts_for(&desired, Some(record("api-b", &["api-db-b"])), &["api-db-a", "api-db-b"]);
        let next = next(&service, &facts, Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(revisions(&next), ["api-c", "api-b", "api-a"]);
    }

    #[test]
    fn an_older_revision_whose_snapshots_are_gone_leaves_the_history() {
        let service = service_with_history(&[record("api-b", &["api-db-b"]), record("api-a", &["api-db-a"])]);
        let desired = record("api-c", &["api-db-c"]);
        // The new revision's snapshot is not cached yet, and stays; the old one is gone.
        let next =
            next(&service, &facts_for(&desired, None, &["api-db-b"]), Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(revisions(&next), ["api-c", "api-b"]);
    }

    fn at_epoch() -> Time {
        Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
    }

    fn ready_of(status: &SecureApiServiceStatus) -> (ConditionStatus, &str, &str) {
        let ready = find_condition(&status.conditions, types::READY).unwrap_or_else(|| panic!("a Ready condition"));
        (ready.status, ready.reason.as_str(), ready.message.as_str())
    }

    #[test]
    fn replicas_of_the_old_revision_still_running_keep_the_rollout_in_progress() {
        let surging = deployment(
            3,
            json!({ "observedGeneration": 3, "replicas": 3, "updatedReplicas": 2, "readyReplicas": 3, "availableReplicas": 3 }),
        );
        assert_eq!(rollout(&surging), Rollout::InProgress);
        let unreported = deployment(3, json!(null));
        assert_eq!(rollout(&unreported), Rollout::InProgress, "no status yet");
        let old_stall = deployment(
            4,
            json!({ "observedGeneration": 3, "conditions": [
                { "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded" }
            ] }),
        );
        assert_eq!(rollout(&old_stall), Rollout::InProgress, "the stall was the previous generation's");
    }

    #[test]
    fn the_external_url_is_the_specs_or_the_load_balancers_with_its_port() {
        let service = |expose: serde_json::Value| -> SecureApiService {
            serde_json::from_value(json!({
                "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecureApiService",
                "metadata": { "name": "api", "namespace": "ns" },
                "spec": { "image": "example.com/api:1", "expose": expose },
            }))
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let balanced: Service = serde_json::from_value(json!({
            "status": { "loadBalancer": { "ingress": [{ "ip": "203.0.113.7" }] } }
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let declared = service(json!({ "externalUrl": "https://api.example.com" }));
        assert_eq!(external_url(&declared, Some(&balanced)).as_deref(), Some("https://api.example.com"));
        assert_eq!(external_url(&service(json!({})), Some(&balanced)).as_deref(), Some("http://203.0.113.7"));
        let on_8443 = service(json!({ "port": 8443 }));
        assert_eq!(external_url(&on_8443, Some(&balanced)).as_deref(), Some("http://203.0.113.7:8443"));
        assert_eq!(external_url(&service(json!({})), None), None, "no address yet");
    }

    #[test]
    fn a_rollout_in_progress_is_not_a_failure_and_any_other_not_ready_is() {
        let service = service_with_history(&[]);
        let desired = record("api-c", &["api-db-c"]);
        let mut facts = facts_for(&desired, None, &[]);
        let progressing = next(&service, &facts, at_epoch());
        assert_eq!(ready_of(&progressing).1, reasons::ROLLOUT_IN_PROGRESS);
        assert_eq!(failure(&progressing), None, "no Warning while a rollout runs");
        facts.unresolved = Some((reasons::SECRET_REF_NOT_READY.into(), "SecretRef db is not Ready".into()));
        let waiting = next(&service, &facts, at_epoch());
        assert_eq!(failure(&waiting), Some((reasons::SECRET_REF_NOT_READY, "SecretRef db is not Ready")));
    }

    #[test]
    fn an_unresolved_secret_ref_makes_ready_false_with_its_reason_while_the_live_revision_runs_on() {
        let service = service_with_history(&[]);
        let live = record("api-b", &["api-db-b"]);
        let complete = deployment(
            2,
            json!({ "observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2 }),
        );
        let mut facts = facts_for(&live, None, &[]);
        facts.desired = None;
        facts.deployment = Some(&complete);
        facts.unresolved = Some((reasons::SECRET_REF_NOT_FOUND.into(), "SecretRef db does not exist".into()));
        let status = next(&service, &facts, at_epoch());
        assert_eq!(
            ready_of(&status),
            (ConditionStatus::False, reasons::SECRET_REF_NOT_FOUND, "SecretRef db does not exist")
        );
        let rolled = find_condition(&status.conditions, types::ROLLOUT_COMPLETE).map(|c| c.status);
        assert_eq!(rolled, Some(ConditionStatus::True), "the live revision still runs on every replica");
        assert_eq!(status.revision.as_deref(), Some("api-b"));
    }

    #[test]
    fn a_rolled_back_revision_says_which_stalled_and_which_was_restored() {
        let service = service_with_history(&[record("api-a", &["api-db-a"])]);
        let stalled = record("api-b", &["api-db-b"]);
        let restored = record("api-a", &["api-db-a"]);
        let mut facts = facts_for(&stalled, None, &["api-db-a", "api-db-b"]);
        facts.live = Some(&restored);
        facts.failed_revision = Some("api-b".into());
        facts.rolled_back = true;
        let status = next(&service, &facts, at_epoch());
        assert_eq!(
            ready_of(&status),
            (ConditionStatus::False, reasons::ROLLED_BACK, "revision api-b stalled; api-a was restored")
        );
        assert_eq!(status.revision.as_deref(), Some("api-a"));
        assert_eq!(status.failed_revision.as_deref(), Some("api-b"));
    }

    #[test]
    fn the_history_keeps_the_limit_plus_the_running_revision() {
        let older: Vec<RevisionRecord> = ["api-c", "api-b", "api-a"].iter().map(|r| record(r, &[])).collect();
        let service = service_with_history(&older);
        let desired = record("api-d", &[]);
        let status = next(&service, &facts_for(&desired, None, &[]), at_epoch());
        assert_eq!(
            revisions(&status),
            ["api-d", "api-c", "api-b"],
            "revisionHistoryLimit 2 keeps two behind the current"
        );
    }

    #[test]
    fn a_revision_the_traffic_names_stays_past_the_limit_and_one_serving_beside_joins() {
        let older: Vec<RevisionRecord> = ["api-c", "api-b", "api-a"].iter().map(|r| record(r, &[])).collect();
        let mut service = service_with_history(&older);
        service.spec.traffic =
            serde_json::from_value(json!([{ "revision": "api-a", "percent": 100 }])).unwrap_or_else(|e| panic!("{e}"));
        let desired = record("api-d", &[]);
        let serving = [record("api-e", &[])];
        let facts = Facts { serving: &serving, ..facts_for(&desired, None, &[]) };
        let status = next(&service, &facts, at_epoch());
        assert_eq!(revisions(&status), ["api-d", "api-c", "api-b", "api-a", "api-e"]);
    }

    #[test]
    fn an_abort_back_to_a_revision_whose_version_secret_manager_refuses_says_so() {
        let service = service_with_history(&[]);
        let desired = record("api-c", &[]);
        let mut facts = facts_for(&desired, None, &[]);
        facts.aborted = Some(RejectedRevision {
            revision: "api-d".into(),
            secret_versions: [("db".to_owned(), "3".to_owned())].into(),
            message: "its pods are not Ready".into(),
        });
        facts.unusable = Some(("api-c".into(), vec!["db=2 (Disabled)".into()]));
        let status = next(&service, &facts, at_epoch());
        let (ready, reason, message) = ready_of(&status);
        assert_eq!((ready, reason), (ConditionStatus::False, reasons::ROLLOUT_ABORTED));
        assert!(
            message.contains("all traffic stays on revision api-c")
                && message
                    .contains("revision api-c ran secret versions db=2 (Disabled), which Secret Manager now refuses"),
            "{message}"
        );
    }

    #[test]
    fn a_stalled_rollout_that_could_not_be_restored_says_why() {
        let service = service_with_history(&[]);
        let desired = record("api-c", &[]);
        let stalled = deployment(
            2,
            json!({ "observedGeneration": 2, "conditions": [
                { "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded" }
            ] }),
        );
        let mut facts = facts_for(&desired, None, &[]);
        facts.deployment = Some(&stalled);
        facts.unsealed = Some("api-b".into());
        let status = next(&service, &facts, at_epoch());
        let (ready, reason, message) = ready_of(&status);
        assert_eq!((ready, reason), (ConditionStatus::False, reasons::PROGRESS_DEADLINE_EXCEEDED));
        assert!(message.contains("api-b was not restored") && message.contains("seal"), "{message}");
    }

    #[test]
    fn only_the_new_revision_stalled_is_rolled_back_and_only_when_the_spec_asks() {
        use super::super::revision::REVISION_ANNOTATION;
        use crate::workload::fixtures::{inputs, seed_secrets, seed_service, seed_service_patched};
        use kube::ResourceExt;
        let secrets = seed_secrets();
        let asks = seed_service_patched(json!({ "rollout": { "autoRollback": true } }));
        let key = crate::hash_key::tests::test_key();
        let desired = super::super::desired::build(&inputs(&asks, &secrets), None, &Default::default(), &key);
        let built = desired.deployment.clone().unwrap_or_else(|| panic!("a Deployment"));
        let mut stalled = built.clone();
        stalled.metadata.generation = Some(2);
        stalled.status = Some(
            serde_json::from_value(json!({ "observedGeneration": 2, "conditions": [
                { "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded" }
            ] }))
            .unwrap_or_else(|e| panic!("{e}")),
        );
        let applied = |deployment| Applied {
            deployment,
            service: None,
            restored: None,
            unsealed: None,
            canary: None,
            route: None,
        };
        assert!(must_roll_back(&asks, &desired, &applied(Some(stalled.clone()))));
        assert!(!must_roll_back(&seed_service(), &desired, &applied(Some(stalled.clone()))), "autoRollback is off");
        let mut older = stalled.clone();
        older.annotations_mut().insert(REVISION_ANNOTATION.into(), "secure-api-older".into());
        assert!(!must_roll_back(&asks, &desired, &applied(Some(older))), "not the revision just built");
        assert!(!must_roll_back(&asks, &desired, &applied(Some(built))), "still progressing");
        assert!(!must_roll_back(&asks, &desired, &applied(None)));
    }
}
