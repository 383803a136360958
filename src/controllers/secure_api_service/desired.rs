//! The revision a SecureApiService wants and the objects it runs on (pure: built by
//! `crate::workload` from checked inputs). A revision that was rolled back stays held: its
//! Deployment is not applied again until the spec or a secret version changes.

use super::revision::remember_previous;
use crate::api::SecureApiServiceStatus;
use crate::api::secure_api_service::RevisionRecord;
use crate::workload::{self, Inputs};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;

/// What one reconcile applies.
pub struct Desired {
    /// The revision, its secret versions and snapshots (for status history).
    pub record: RevisionRecord,
    /// The revision that stalled and was rolled back, while it is still the one built.
    pub failed_revision: Option<String>,
    pub snapshots: Vec<Secret>,
    /// `None` while the revision is held after a rollback (the live one stays).
    pub deployment: Option<Deployment>,
    pub service: Service,
    pub autoscaler: Option<HorizontalPodAutoscaler>,
    pub disruption_budget: Option<PodDisruptionBudget>,
}

/// Builds everything for `inputs`, stamping the Deployment with what a rollback would restore.
pub fn build(inputs: &Inputs<'_>, live: Option<&Deployment>, current: &SecureApiServiceStatus) -> Desired {
    let service = inputs.service();
    let mut deployment = workload::deployment::deployment(inputs);
    let template_hash = workload::deployment::template_hash(&deployment);
    let revision = workload::deployment::revision_name(&service.name_any(), &template_hash);
    let snapshots = workload::snapshot::snapshot_secrets(inputs);
    let record = RevisionRecord {
        revision: revision.clone(),
        secret_versions: inputs.secrets().iter().map(|(k, v)| (k.clone(), v.version.clone())).collect(),
        snapshots: snapshots.iter().map(|s| s.name_any()).collect(),
    };
    let held = current.failed_revision.as_deref() == Some(revision.as_str());
    remember_previous(&mut deployment, live, &revision);
    Desired {
        record,
        failed_revision: held.then(|| revision.clone()),
        snapshots,
        deployment: (!held).then_some(deployment),
        service: workload::service::service(inputs),
        autoscaler: workload::service::horizontal_pod_autoscaler(inputs),
        disruption_budget: workload::service::pod_disruption_budget(inputs),
    }
}
