//! The rollout decision of one reconcile, between build and apply: whether a rotation waits for
//! its batch or window (`schedule`), how a canary or blue/green trial moves (`canary`), and how
//! the traffic is split; then `desired` is shaped to it, and the status learns of it.

use super::canary::{self, Plan, Trial};
use super::desired::{self, Desired};
use super::error::Error;
use super::resolve;
use super::schedule;
use super::status::Facts;
use super::traffic;
use crate::api::secure_api_service::{
    PendingRevision, RejectedRevision, RevisionRecord, RolloutStrategy, TrafficSplit, TrafficTargetStatus,
};
use crate::api::{SecureApiService, SecureApiServiceStatus};
use crate::controllers::Context;
use crate::runtime::children::{get_child, is_child_of};
use crate::runtime::error::InvalidField;
use crate::runtime::now;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use std::time::Duration;

/// What this reconcile does with the revision it built.
pub struct Decision {
    /// A rotation's revision that waits (nothing of it is applied).
    pub pending: Option<PendingRevision>,
    /// The trial's next move; `None` while the revision waits or the secrets are unresolved.
    pub plan: Option<Plan>,
    pub split: TrafficSplit,
    /// The trial the canary Deployment recorded when the reconcile started.
    pub before: Option<Trial>,
    /// The shares `spec.traffic` asks for, as served.
    pub traffic: Vec<TrafficTargetStatus>,
    /// The revision that serves, when Secret Manager now refuses some of its secret versions,
    /// and those (`db=1 (Disabled)`): a rotation away from them does not wait for its batch or
    /// window.
    pub unusable: Option<(String, Vec<String>)>,
    stable_replicas: i32,
}

/// What the schema cannot check of the rollout: canary weights that grow, a window that opens,
/// and a Prometheus address the operator may query.
pub fn check(ctx: &Context, service: &SecureApiService) -> Result<(), InvalidField> {
    canary::check(&service.spec.rollout)?;
    schedule::check(&service.spec.rollout, now().0)?;
    let prometheus = service.spec.rollout.analysis.as_ref().and_then(|a| a.prometheus.as_ref());
    match prometheus {
        Some(prometheus) if !ctx.prometheus.allows(&prometheus.address) => Err(InvalidField::new(
            "spec.rollout.analysis.prometheus.address",
            format!(
                "{} is not under an address this operator may query (--prometheus-allowed-url-prefixes)",
                prometheus.address
            ),
        )),
        _ => Ok(()),
    }
}

/// Decides, and shapes `desired` to the decision. `stable` is the live Deployment of the
/// service's name, `canary` our canary Deployment. Only our own stable Deployment is a revision
/// to protect: someone else's of that name gets no trial beside it (the write over it is refused
/// with `OwnershipConflict`).
pub async fn decide(
    ctx: &Context,
    service: &SecureApiService,
    current: &SecureApiServiceStatus,
    desired: Option<&mut Desired>,
    stable: Option<&Deployment>,
    canary: Option<&Deployment>,
) -> Result<Decision, Error> {
    let rollout = &service.spec.rollout;
    let stable = stable.filter(|stable| is_child_of(*stable, service.uid().as_deref()));
    let before = canary.and_then(Trial::of);
    let split = match &service.spec.expose.gateway {
        Some(_) if ctx.http_routes.served(&ctx.client).await => TrafficSplit::HTTPRoute,
        _ => TrafficSplit::ReplicaRatio,
    };
    let stable_replicas = stable.map_or(1, canary::stable_replicas);
    let live = stable.and_then(super::revision::record_of);
    let unusable = live
        .as_ref()
        .map(|live| (resolve::unusable_versions(ctx, service, live), live.revision.clone()))
        .filter(|(versions, _)| !versions.is_empty())
        .map(|(versions, revision)| (revision, versions));
    let mut decision =
        Decision { pending: None, plan: None, split, before, traffic: vec![], unusable, stable_replicas };
    let Some(desired) = desired else { return Ok(decision) };
    // Traffic pinned by the spec: no trial and no wait, the shares it names.
    if !service.spec.traffic.is_empty() {
        let history = &current.history;
        let key = &ctx.hash_key;
        let mut found = traffic::Found { service, history, stable, canary, snapshots: &[], key, split };
        let snapshots = read_snapshots(ctx, service, &traffic::to_rebuild(&found, &desired.latest)).await?;
        found.snapshots = &snapshots;
        decision.traffic = traffic::follow(desired, &found)?;
        return Ok(decision);
    }
    // A rotation waits for its batch and the rollout window; a trial that started goes on, and
    // one away from versions Secret Manager refuses goes at once (the old value no longer works).
    let on_trial = decision.before.as_ref().is_some_and(|t| t.revision == desired.record.revision);
    if !on_trial && decision.unusable.is_none() {
        let waiting = current.pending_revision.as_ref();
        decision.pending = schedule::defer(rollout, live.as_ref(), &desired.record, waiting, now().0)?;
    }
    if decision.pending.is_some() {
        desired.deployment = None;
        desired.snapshots.clear();
        return Ok(decision);
    }
    let reading = read_analysis(ctx, service, &desired.record.revision, decision.before.as_ref()).await;
    let plan = canary::plan(&canary::Situation {
        rollout,
        desired: &desired.record,
        held: desired.failed_revision.is_some(),
        stable,
        canary,
        rejected: &current.rejected_revisions,
        reading,
        now: now().0,
    });
    // Blue/green's new revision keeps all the traffic until the stable Deployment runs it on
    // every replica.
    let promoted =
        decision.before.as_ref().is_some_and(|t| t.revision == desired.record.revision && t.aborted.is_none());
    let green_holds = rollout.strategy == RolloutStrategy::BlueGreen
        && promoted
        && !canary::retirable(stable, &desired.record.revision);
    desired::follow(desired, &plan, service, stable, split, green_holds);
    decision.plan = Some(plan);
    Ok(decision)
}

/// Our snapshot Secrets of `records`, read whole (the cache holds them without data): only while
/// a revision the traffic names runs nowhere yet.
async fn read_snapshots(
    ctx: &Context,
    service: &SecureApiService,
    records: &[&RevisionRecord],
) -> Result<Vec<Secret>, Error> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &service.namespace().unwrap_or_default());
    let mut read = vec![];
    for name in records.iter().flat_map(|record| &record.snapshots) {
        let secret = get_child(&secrets, name).await?;
        read.extend(secret.filter(|secret| is_child_of(secret, service.uid().as_deref())));
    }
    Ok(read)
}

/// What the canary's Prometheus query says of `revision` while its trial runs; `None` when
/// there is no query or no trial of it.
async fn read_analysis(
    ctx: &Context,
    service: &SecureApiService,
    revision: &str,
    trial: Option<&Trial>,
) -> Option<canary::Reading> {
    let prometheus = service.spec.rollout.analysis.as_ref()?.prometheus.as_ref()?;
    trial.filter(|trial| trial.revision == revision && trial.aborted.is_none())?;
    let namespace = service.namespace().unwrap_or_default();
    let query = prometheus.query_for(revision, &service.name_any(), &namespace);
    Some(ctx.prometheus.query(&prometheus.address, &query).await.map_err(|error| error.to_string()))
}

impl Decision {
    /// Tells the status of the decision: the waiting revision (not history yet), the trial in
    /// progress, the one aborted, and a split by replicas where a route was asked for.
    pub fn inform(&self, service: &SecureApiService, desired: Option<&Desired>, facts: &mut Facts<'_>) {
        if self.pending.is_some() {
            facts.desired = None;
        }
        facts.pending = self.pending.clone();
        facts.traffic = self.traffic.clone();
        facts.unusable = self.unusable.clone();
        facts.unrouted = service.spec.expose.gateway.is_some() && self.split == TrafficSplit::ReplicaRatio;
        let (Some(plan), Some(desired)) = (&self.plan, desired) else { return };
        let rollout = &service.spec.rollout;
        match plan {
            Plan::Step(trial) => {
                facts.canary = Some(canary::status(trial, rollout, &desired.record, self.stable_replicas, self.split));
            }
            Plan::Abort(trial) => {
                facts.aborted = Some(RejectedRevision {
                    revision: trial.revision.clone(),
                    secret_versions: desired.record.secret_versions.clone(),
                    message: trial.aborted.clone().unwrap_or_default(),
                });
            }
            Plan::Direct => {}
        }
    }

    /// When to look again if nothing changes: at the trial's next instant, when the waiting
    /// revision starts, else after `otherwise`.
    pub fn next_look(&self, service: &SecureApiService, otherwise: Duration) -> Duration {
        let look = match (&self.plan, &self.pending) {
            (Some(Plan::Step(trial)), _) => canary::next_look(trial, &service.spec.rollout, now().0),
            (_, Some(pending)) => schedule::until(pending, now().0),
            _ => otherwise,
        };
        look.min(otherwise)
    }
}
