//! Where a canary stands and what it does next (pure).
//!
//! A trial is recorded on the canary Deployment itself (revision, step, when the step began,
//! why it was aborted), written in the same request that sets its replicas: after a restart
//! the operator goes on from what the cluster holds, never from memory. Each step's gate asks
//! the canary Deployment whether all its pods are Ready; a step that is not healthy once its
//! `analysis.interval` has passed aborts the trial. A step passes once its pause has passed
//! too; after the last one the revision is promoted: the stable Deployment rolls to it, as
//! with `RollingUpdate`, and the canary is removed once that rollout is complete.

use super::revision::{REVISION_ANNOTATION, revision_of};
use super::status::{Rollout as RolloutState, rollout as rollout_state};
use crate::api::secure_api_service::{
    CanaryStatus, RejectedRevision, RevisionRecord, Rollout, RolloutStrategy, TrafficSplit,
};
use crate::runtime::error::InvalidField;
use crate::workload::canary::{canary_replicas, effective_weight, routed_canary_replicas};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use std::collections::BTreeMap;
use std::time::Duration;

/// Canary Deployment annotations: the step (from 0), when it began, and why the trial was aborted.
const STEP_ANNOTATION: &str = "secureapi.dev/canary-step";
const STEP_STARTED_ANNOTATION: &str = "secureapi.dev/canary-step-started";
const ABORTED_ANNOTATION: &str = "secureapi.dev/canary-aborted";
/// At most this many rejected revisions are remembered in status.
pub const REJECTED_KEPT: usize = 10;

/// A revision on trial, as its canary Deployment records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trial {
    pub revision: String,
    /// The step it is on, from 0.
    pub step: usize,
    pub started: Timestamp,
    /// Why its gate failed, once it did.
    pub aborted: Option<String>,
}

impl Trial {
    fn new(revision: &str, now: Timestamp) -> Self {
        Self { revision: revision.to_owned(), step: 0, started: now, aborted: None }
    }

    /// The trial the canary Deployment records; `None` for one that records none.
    pub fn of(canary: &Deployment) -> Option<Self> {
        let annotations = canary.annotations();
        Some(Self {
            revision: revision_of(canary)?,
            step: annotations.get(STEP_ANNOTATION)?.parse().ok()?,
            started: annotations.get(STEP_STARTED_ANNOTATION)?.parse().ok()?,
            aborted: annotations.get(ABORTED_ANNOTATION).cloned(),
        })
    }

    /// The annotations that record it on the canary Deployment.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        let mut annotations = BTreeMap::from([
            (REVISION_ANNOTATION.to_owned(), self.revision.clone()),
            (STEP_ANNOTATION.to_owned(), self.step.to_string()),
            (STEP_STARTED_ANNOTATION.to_owned(), self.started.to_string()),
        ]);
        if let Some(aborted) = &self.aborted {
            annotations.insert(ABORTED_ANNOTATION.to_owned(), aborted.clone());
        }
        annotations
    }
}

/// What the reconcile does with the new revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// No trial: the stable Deployment gets the revision (strategy `RollingUpdate`, the first
    /// revision, a held one, or a canary that passed its last step); a canary left over is
    /// removed once the stable Deployment runs the revision on every replica.
    Direct,
    /// The revision is on trial at this step; the stable Deployment is left as it is.
    Step(Trial),
    /// The trial failed: the canary has no pods, the stable revision keeps all the traffic, and
    /// the revision is rejected until a new secret version or spec makes another one.
    Abort(Trial),
}

/// What the plan is made from.
pub struct Situation<'a> {
    pub rollout: &'a Rollout,
    /// The revision the spec and the secret versions make.
    pub desired: &'a RevisionRecord,
    /// It is held after a stalled rollout was rolled back.
    pub held: bool,
    pub stable: Option<&'a Deployment>,
    /// Our canary Deployment of this service, if any.
    pub canary: Option<&'a Deployment>,
    pub rejected: &'a [RejectedRevision],
    /// What `analysis.prometheus` answered for the trial's revision, when it was asked.
    pub reading: Option<Reading>,
    pub now: Timestamp,
}

/// A Prometheus query's value (`None`: an empty result), or why there is none.
pub type Reading = Result<Option<f64>, String>;

/// What the schema cannot check of a canary: its step weights grow from step to step.
pub fn check(rollout: &Rollout) -> Result<(), InvalidField> {
    if rollout.strategy != RolloutStrategy::Canary {
        return Ok(());
    }
    let steps = rollout.steps();
    let shrinking = steps.windows(2).position(|pair| pair[1].weight <= pair[0].weight);
    if let Some(index) = shrinking {
        let (before, after) = (steps[index].weight, steps[index + 1].weight);
        return Err(InvalidField::new(
            format!("spec.rollout.canary.steps[{}].weight", index + 1),
            format!("{after} does not exceed the step before ({before}): weights must grow from step to step"),
        ));
    }
    Ok(())
}

/// The next move of the trial of `situation.desired`.
pub fn plan(situation: &Situation<'_>) -> Plan {
    let Situation { rollout, desired, stable, canary, now, .. } = situation;
    let Some(stable) = stable.filter(|_| rollout.is_progressive() && !situation.held) else {
        return Plan::Direct;
    };
    // Nothing runs yet (or nothing to protect): the first revision goes straight in.
    let stable_revision = revision_of(stable);
    if stable_revision.is_none()
        || stable_revision.as_deref() == Some(&desired.revision)
        || stable_replicas(stable) == 0
    {
        return Plan::Direct;
    }
    let trial = canary.and_then(Trial::of).filter(|trial| trial.revision == desired.revision);
    if let Some(rejected) = situation.rejected.iter().find(|r| r.revision == desired.revision) {
        let mut trial = trial.unwrap_or_else(|| Trial::new(&desired.revision, *now));
        trial.aborted.get_or_insert_with(|| rejected.message.clone());
        return Plan::Abort(trial);
    }
    let (Some(trial), Some(canary)) = (trial, canary) else {
        return Plan::Step(Trial::new(&desired.revision, *now));
    };
    if trial.aborted.is_some() {
        return Plan::Abort(trial);
    }
    let steps = rollout.steps();
    let step = trial.step.min(steps.len().saturating_sub(1));
    let elapsed = elapsed(trial.started, *now);
    let pause = steps.get(step).map_or(Duration::ZERO, |s| Duration::from(s.pause));
    let max = rollout.analysis.as_ref().and_then(|a| a.prometheus.as_ref()).map(|p| p.max);
    let reading = situation.reading.as_ref().zip(max);
    match gate(canary, elapsed, rollout.analysis_interval(), reading) {
        Gate::Fail(why) => Plan::Abort(Trial { aborted: Some(why), ..trial }),
        Gate::Pass if elapsed >= pause && step + 1 < steps.len() => {
            Plan::Step(Trial { step: step + 1, started: *now, ..trial })
        }
        Gate::Pass if elapsed >= pause => Plan::Direct,
        Gate::Pass | Gate::Pending => Plan::Step(Trial { step, ..trial }),
    }
}

fn elapsed(since: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(since)).unwrap_or_default()
}

/// What a step's gate says of the canary's pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    Pass,
    /// Not all Ready, within the interval.
    Pending,
    Fail(String),
}

/// The gate of a step that began `elapsed` ago: every pod of the canary's current generation
/// Ready, and none unready once `interval` has passed; the Prometheus `reading`, when asked, at
/// or under its max (above it fails at once; a query that fails is no pass, and fails once
/// `interval` has passed).
pub fn gate(canary: &Deployment, elapsed: Duration, interval: Duration, reading: Option<(&Reading, f64)>) -> Gate {
    if let Some((Ok(Some(value)), max)) = reading
        && *value > max
    {
        return Gate::Fail(format!("the Prometheus query gave {value}, above its max {max}"));
    }
    match (pods_gate(canary, elapsed, interval), reading) {
        (Gate::Pass, Some((Err(why), _))) if elapsed >= interval => {
            Gate::Fail(format!("the Prometheus query failed for {interval:?}: {why}"))
        }
        (Gate::Pass, Some((Err(_), _))) => Gate::Pending,
        (pods, _) => pods,
    }
}

/// The pods' part of the gate.
fn pods_gate(canary: &Deployment, elapsed: Duration, interval: Duration) -> Gate {
    let wanted = canary.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = canary.status.clone().unwrap_or_default();
    let current = status.observed_generation.is_some() && status.observed_generation >= canary.metadata.generation;
    if current && rollout_state(canary) == RolloutState::Stalled {
        return Gate::Fail("its pods exceeded the progress deadline".into());
    }
    let ready = if current { status.ready_replicas.unwrap_or(0) } else { 0 };
    let updated = if current { status.updated_replicas.unwrap_or(0) } else { 0 };
    if ready >= wanted && updated >= wanted {
        return Gate::Pass;
    }
    if elapsed < interval {
        return Gate::Pending;
    }
    Gate::Fail(format!("{ready} of {wanted} pods were Ready {interval:?} after the step began"))
}

/// When the trial should be looked at again if nothing it watches changes: at the end of the
/// step's readiness interval or pause, whichever comes next.
pub fn next_look(trial: &Trial, rollout: &Rollout, now: Timestamp) -> Duration {
    let elapsed = elapsed(trial.started, now);
    let interval = rollout.analysis_interval();
    let pause = rollout.steps().get(trial.step).map_or(Duration::ZERO, |s| Duration::from(s.pause));
    let ahead = [interval, pause].into_iter().filter(|at| *at > elapsed).min();
    // At least every interval: the Prometheus query is asked again then.
    // A little after the instant, so that the look finds it passed.
    ahead.map_or(interval, |at| at - elapsed).min(interval) + Duration::from_millis(20)
}

/// Replicas the stable Deployment asks for (its autoscaler's choice, when it has one).
pub fn stable_replicas(stable: &Deployment) -> i32 {
    let spec = stable.spec.as_ref().and_then(|s| s.replicas);
    spec.or_else(|| stable.status.as_ref().and_then(|s| s.replicas)).unwrap_or(1)
}

/// Canary pods for the trial's step beside `stable`, split by `split`; none once it is aborted.
/// Blue/green runs as many as the stable revision from the start.
pub fn replicas(trial: &Trial, rollout: &Rollout, stable: i32, split: TrafficSplit) -> i32 {
    match (trial.aborted.is_some(), split) {
        (true, _) => 0,
        (false, _) if rollout.strategy == RolloutStrategy::BlueGreen => stable.max(1),
        (false, TrafficSplit::ReplicaRatio) => canary_replicas(stable, weight(trial, rollout)),
        (false, TrafficSplit::HTTPRoute) => routed_canary_replicas(stable, weight(trial, rollout)),
    }
}

/// The step's weight: the share of the traffic the trial's revision is meant to get; none once
/// it is aborted.
pub fn weight(trial: &Trial, rollout: &Rollout) -> i32 {
    let step = rollout.steps().get(trial.step).map(|step| step.weight);
    step.filter(|_| trial.aborted.is_none()).unwrap_or(0)
}

/// The status of a trial in progress.
pub fn status(
    trial: &Trial,
    rollout: &Rollout,
    record: &RevisionRecord,
    stable: i32,
    split: TrafficSplit,
) -> CanaryStatus {
    let steps = rollout.steps();
    let weight = weight(trial, rollout);
    let effective_weight = match split {
        _ if rollout.strategy == RolloutStrategy::BlueGreen => weight,
        TrafficSplit::ReplicaRatio => effective_weight(stable, replicas(trial, rollout, stable, split)),
        TrafficSplit::HTTPRoute => weight,
    };
    CanaryStatus {
        revision: trial.revision.clone(),
        secret_versions: record.secret_versions.clone(),
        step: i32::try_from(trial.step + 1).unwrap_or(i32::MAX),
        steps: i32::try_from(steps.len()).unwrap_or(i32::MAX),
        weight,
        effective_weight,
        traffic_split: split,
        step_started_at: Some(Time(trial.started)),
    }
}

/// `rejected` with `revision` first (once), at most [`REJECTED_KEPT`].
pub fn reject(rejected: &mut Vec<RejectedRevision>, revision: RejectedRevision) {
    if rejected.first().is_some_and(|first| first.revision == revision.revision) {
        return;
    }
    rejected.retain(|r| r.revision != revision.revision);
    rejected.insert(0, revision);
    rejected.truncate(REJECTED_KEPT);
}

/// The canary Deployment a retired trial leaves: whether it can go (the stable Deployment runs
/// `desired` on every replica).
pub fn retirable(stable: Option<&Deployment>, desired: &str) -> bool {
    stable.is_some_and(|s| revision_of(s).as_deref() == Some(desired) && rollout_state(s) == RolloutState::Complete)
}

#[cfg(test)]
mod tests;
