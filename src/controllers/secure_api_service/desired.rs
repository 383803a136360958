//! The revision a SecureApiService wants and the objects it runs on (pure: built by
//! `crate::workload` from checked inputs). A revision that was rolled back stays held: its
//! Deployment is not applied again until the spec or a secret version changes.

use super::canary::{self, Plan};
use super::revision::{remember_previous, revision_of};
use crate::api::secure_api_service::RevisionRecord;
use crate::api::secure_api_service::{RolloutStrategy, TrafficSplit};
use crate::api::{SecureApiService, SecureApiServiceStatus};
use crate::hash_key::HashKey;
use crate::workload::http_route::HTTPRoute;
use crate::workload::{self, Inputs};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;

/// What one reconcile applies.
pub struct Desired {
    /// The revision, its secret versions and snapshots (for status history): the latest, or
    /// the one `spec.traffic` gives the larger share.
    pub record: RevisionRecord,
    /// The latest revision: the one the spec and the current secret versions make.
    pub latest: String,
    /// The revision that stalled and was rolled back, while it is still the one built.
    pub failed_revision: Option<String>,
    pub snapshots: Vec<Secret>,
    /// `None` while the revision is held after a rollback (the live one stays).
    pub deployment: Option<Deployment>,
    /// The latest revision's Deployment as built, held or not: what `spec.traffic` builds the
    /// others on.
    pub built: Deployment,
    pub service: Service,
    pub autoscaler: Option<HorizontalPodAutoscaler>,
    pub disruption_budget: Option<PodDisruptionBudget>,
    /// What becomes of the canary Deployment.
    pub canary: CanaryChange,
    /// The service's HTTPRoute, when it names a Gateway and the cluster serves HTTPRoutes.
    pub route: Option<HTTPRoute>,
    /// The Service of the canary's pods, while an HTTPRoute sends them a share (or, blue/green,
    /// while they run: the preview's address).
    pub canary_service: Option<Service>,
    /// The Services of `spec.traffic`'s tags.
    pub tag_services: Vec<Service>,
    /// Revisions that serve beside `record` (`spec.traffic`'s second one): kept in history.
    pub serving: Vec<RevisionRecord>,
}

/// What becomes of the canary Deployment.
#[derive(Clone, Debug, PartialEq)]
pub enum CanaryChange {
    /// Applied as built: the trial's step, or its abort.
    Apply(Box<Deployment>),
    /// Deleted, if there is one, once the stable Deployment runs the revision on every replica.
    RetireOnceStableRuns,
    /// Left as it is: blue/green's new revision serves all the traffic while the stable
    /// Deployment rolls to it.
    Keep,
}

/// Shapes `desired` for the canary plan: a trial leaves the stable Deployment as it is and runs
/// the revision on the canary Deployment instead, with the step's replicas (none once aborted);
/// split by an HTTPRoute, the route sends the canary's Service the step's weight. Blue/green's
/// new revision runs out of the stable Service until it takes all the traffic: through the
/// route, or by the Service selecting its pods; `green_holds`: it keeps it while the stable
/// Deployment rolls to the promoted revision.
pub fn follow(
    desired: &mut Desired,
    plan: &Plan,
    service: &SecureApiService,
    stable: Option<&Deployment>,
    split: TrafficSplit,
    green_holds: bool,
) {
    let rollout = &service.spec.rollout;
    let blue_green = rollout.strategy == RolloutStrategy::BlueGreen;
    let routed = split == TrafficSplit::HTTPRoute;
    let weight = match plan {
        Plan::Step(trial) => canary::weight(trial, rollout),
        Plan::Direct if green_holds => 100,
        Plan::Direct | Plan::Abort(_) => 0,
    };
    let port = service.spec.expose.port.unwrap_or(workload::service::DEFAULT_SERVICE_PORT);
    let gateway = service.spec.expose.gateway.as_ref().filter(|_| routed);
    desired.route = gateway.map(|gateway| workload::http_route::http_route(service, gateway, port, weight));
    let previewed = blue_green && !matches!(plan, Plan::Abort(_)) && (green_holds || matches!(plan, Plan::Step(_)));
    desired.canary_service = ((routed && weight > 0) || previewed).then(|| workload::canary::canary_service(service));
    if blue_green && !routed && weight == 100 {
        // All at once: the one Service selects the new revision's pods only.
        let selector = workload::canary::canary_service(service).spec.and_then(|spec| spec.selector);
        if let Some(spec) = desired.service.spec.as_mut() {
            spec.selector = selector;
        }
    }
    let trial = match plan {
        Plan::Direct if green_holds => {
            desired.canary = CanaryChange::Keep;
            return;
        }
        Plan::Direct => {
            desired.canary = CanaryChange::RetireOnceStableRuns;
            return;
        }
        Plan::Step(trial) | Plan::Abort(trial) => trial,
    };
    let Some(revision) = desired.deployment.take() else { return };
    let replicas = canary::replicas(trial, rollout, stable.map_or(1, canary::stable_replicas), split);
    let out_of_service = routed || blue_green;
    let canary = workload::canary::canary_deployment(
        &service.name_any(),
        &revision,
        replicas,
        trial.annotations(),
        out_of_service,
    );
    desired.canary = CanaryChange::Apply(Box::new(canary));
}

/// The Deployment `inputs` make, and its revision's name (the pod template's hash).
pub fn built(inputs: &Inputs<'_>) -> (Deployment, String) {
    let deployment = workload::deployment::deployment(inputs);
    let template_hash = workload::deployment::template_hash(&deployment);
    let revision = workload::deployment::revision_name(&inputs.service().name_any(), &template_hash);
    (deployment, revision)
}

/// Builds everything for `inputs`, stamping the Deployment with what a rollback would restore.
pub fn build(
    inputs: &Inputs<'_>,
    live: Option<&Deployment>,
    current: &SecureApiServiceStatus,
    key: &HashKey,
) -> Desired {
    let (mut deployment, revision) = deployment_keeping_live(inputs, live);
    let snapshots = workload::snapshot::snapshot_secrets(inputs);
    let record = RevisionRecord {
        revision: revision.clone(),
        secret_versions: inputs.secrets().iter().map(|(k, v)| (k.clone(), v.version.clone())).collect(),
        snapshots: snapshots.iter().map(|s| s.name_any()).collect(),
    };
    let held = current.failed_revision.as_deref() == Some(revision.as_str());
    remember_previous(&mut deployment, live, &revision, key);
    Desired {
        latest: record.revision.clone(),
        record,
        failed_revision: held.then(|| revision.clone()),
        snapshots,
        deployment: (!held).then(|| deployment.clone()),
        built: deployment,
        service: workload::service::service(inputs),
        autoscaler: workload::service::horizontal_pod_autoscaler(inputs),
        disruption_budget: workload::service::pod_disruption_budget(inputs),
        canary: CanaryChange::RetireOnceStableRuns,
        route: None,
        canary_service: None,
        tag_services: vec![],
        serving: vec![],
    }
}

/// The Deployment and its revision name. A live revision that today's build would only change by
/// the pod defaults it gained since (see [`workload::PodDefaults`]) is kept as it runs: an
/// operator upgrade alone rolls nothing, and the hardened pod comes with the next real change.
fn deployment_keeping_live(inputs: &Inputs<'_>, live: Option<&Deployment>) -> (Deployment, String) {
    let today = built(inputs);
    let live_revision = live.and_then(revision_of);
    if live_revision.is_none() || live_revision.as_ref() == Some(&today.1) {
        return today;
    }
    match inputs.original().map(|original| built(&original)) {
        Some(original) if live_revision.as_ref() == Some(&original.1) => original,
        _ => today,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash_key::tests::test_key;
    use crate::workload::fixtures::{db, inputs, seed_secrets, seed_service, seed_service_patched};
    use serde_json::json;

    /// The Deployment an operator of before the hardened pod ran for `inputs`.
    fn running_original(inputs: &Inputs<'_>) -> Deployment {
        let original = inputs.original().unwrap_or_else(|| panic!("the seed sets no hardened-only field"));
        let mut deployment = workload::deployment::deployment(&original);
        let hash = workload::deployment::template_hash(&deployment);
        let revision = workload::deployment::revision_name("secure-api", &hash);
        remember_previous(&mut deployment, None, &revision, &test_key());
        deployment
    }

    fn pod_of(desired: &Desired) -> k8s_openapi::api::core::v1::PodSpec {
        let template = desired.deployment.as_ref().and_then(|d| d.spec.as_ref()).map(|s| s.template.clone());
        template.and_then(|t| t.spec).unwrap_or_else(|| panic!("a pod"))
    }

    #[test]
    fn a_revision_running_from_before_the_hardened_pod_is_kept_until_something_changes() {
        let (service, secrets) = (seed_service(), seed_secrets());
        let live = running_original(&inputs(&service, &secrets));
        let status = SecureApiServiceStatus::default();
        let kept = build(&inputs(&service, &secrets), Some(&live), &status, &test_key());
        assert_eq!(Some(kept.record.revision.clone()), revision_of(&live));
        assert_eq!(kept.deployment.as_ref().and_then(|d| d.spec.clone()), live.spec, "not one field of the template");
        assert_eq!(pod_of(&kept).enable_service_links, None);

        // A new secret version: the new revision has the hardened pod.
        let mut rotated = seed_secrets();
        rotated.insert("db".into(), db("8", "pw2"));
        let next = build(&inputs(&service, &rotated), Some(&live), &status, &test_key());
        assert_ne!(Some(next.record.revision.clone()), revision_of(&live));
        assert_eq!(pod_of(&next).enable_service_links, Some(false));
        assert_eq!(pod_of(&next).automount_service_account_token, Some(false));
    }

    #[test]
    fn a_spec_that_asks_for_a_hardened_only_field_gets_it_at_once() {
        let secrets = seed_secrets();
        let live = running_original(&inputs(&seed_service(), &secrets));
        let status = SecureApiServiceStatus::default();
        let account = json!({ "gcpServiceAccount": "secure-api-sa@demo-project.iam.gserviceaccount.com", "automountToken": true });
        for patch in [json!({ "serviceAccount": account }), json!({ "tmpSizeLimit": "64Mi" })] {
            let service = seed_service_patched(patch.clone());
            let desired = build(&inputs(&service, &secrets), Some(&live), &status, &test_key());
            assert_ne!(Some(desired.record.revision.clone()), revision_of(&live), "{patch}");
        }
    }

    fn seed_build(
        secrets: &std::collections::BTreeMap<String, crate::workload::ResolvedSecret>,
        live: Option<&Deployment>,
        status: &SecureApiServiceStatus,
    ) -> Desired {
        let service = seed_service();
        build(&inputs(&service, secrets), live, status, &test_key())
    }

    #[test]
    fn the_revision_is_named_after_the_service_and_its_template_and_moves_with_a_secret_version() {
        let status = SecureApiServiceStatus::default();
        let first = seed_build(&seed_secrets(), None, &status);
        assert!(first.record.revision.starts_with("secure-api-"), "{}", first.record.revision);
        assert_eq!(seed_build(&seed_secrets(), None, &status).record.revision, first.record.revision, "same inputs");
        let mut rotated = seed_secrets();
        rotated.insert("db".into(), db("8", "pw2"));
        let next = seed_build(&rotated, None, &status);
        assert_ne!(next.record.revision, first.record.revision);
        assert_eq!(next.record.secret_versions.get("db").map(String::as_str), Some("8"));
        assert_eq!(next.record.secret_versions.get("keys").map(String::as_str), Some("3"));
    }

    #[test]
    fn the_record_names_each_snapshot_the_revision_mounts() {
        let desired = seed_build(&seed_secrets(), None, &SecureApiServiceStatus::default());
        let built: Vec<String> = desired.snapshots.iter().map(|s| s.name_any()).collect();
        assert_eq!(desired.record.snapshots, built);
        assert_eq!(built.len(), 3, "one per SecretRef used: {built:?}");
        let deployment = desired.deployment.as_ref().unwrap_or_else(|| panic!("a Deployment"));
        let mut used = super::super::revision::secrets_in_use(deployment);
        used.sort();
        used.dedup();
        let mut recorded = desired.record.snapshots.clone();
        recorded.sort();
        assert_eq!(used, recorded, "the pod uses exactly the recorded snapshots");
    }

    #[test]
    fn a_rolled_back_revision_is_held_until_the_spec_or_a_secret_version_changes() {
        let first = seed_build(&seed_secrets(), None, &SecureApiServiceStatus::default());
        let status = SecureApiServiceStatus {
            failed_revision: Some(first.record.revision.clone()),
            ..SecureApiServiceStatus::default()
        };
        let held = seed_build(&seed_secrets(), None, &status);
        assert!(held.deployment.is_none(), "the stalled revision is not applied again");
        assert_eq!(held.failed_revision.as_deref(), Some(first.record.revision.as_str()));
        let mut rotated = seed_secrets();
        rotated.insert("db".into(), db("8", "pw2"));
        let next = seed_build(&rotated, None, &status);
        assert!(next.deployment.is_some() && next.failed_revision.is_none(), "a new version is a new revision");
    }

    #[test]
    fn a_live_revision_of_neither_build_is_replaced_by_todays() {
        let (service, secrets) = (seed_service(), seed_secrets());
        let today = build(&inputs(&service, &secrets), None, &SecureApiServiceStatus::default(), &test_key());
        let mut foreign = running_original(&inputs(&service, &secrets));
        foreign
            .annotations_mut()
            .insert(super::super::revision::REVISION_ANNOTATION.into(), "secure-api-elsewhere".into());
        let next = build(&inputs(&service, &secrets), Some(&foreign), &SecureApiServiceStatus::default(), &test_key());
        assert_eq!(next.record.revision, today.record.revision);
        assert_eq!(pod_of(&next).enable_service_links, Some(false), "the hardened pod");
    }
}
