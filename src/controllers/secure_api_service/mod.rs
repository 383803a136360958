//! The SecureApiService controller.
//!
//! resolve (the SecretRefs it uses, in its namespace) → build (pure: snapshots, ServiceAccount,
//! Deployment, Service, HPA, PDB) → apply what changed (immutable snapshots first, then the rest)
//! → watch the rollout (and roll back a stalled one when asked) → prune snapshots no retained
//! revision uses → status. While a SecretRef is not Ready, the current revision stays.

pub mod resolve;
pub mod status;

use super::children::{apply_if_changed, delete_if_ours, names};
use super::{Context, drive, now, object_key, referencing};
use crate::api::conditions::reasons;
use crate::api::secure_api_service::RevisionRecord;
use crate::api::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, SecretRef, SecureApiService, field_manager, owner_label_key};
use crate::metrics::Controller as ControllerKind;
use crate::workload::{self, Inputs, ResolvedSecret};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{PodTemplateSpec, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const CONTROLLER: &str = "secureapiservice";
/// Deployment annotations that remember the revision and the one before it (for rollback).
const REVISION_ANNOTATION: &str = "secureapi.dev/revision";
const PREVIOUS_REVISION_ANNOTATION: &str = "secureapi.dev/previous-revision";
const PREVIOUS_TEMPLATE_ANNOTATION: &str = "secureapi.dev/previous-template";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
}

impl Error {
    pub fn category(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kubernetes",
            Self::InvalidSpec(_) => "invalid_spec",
        }
    }
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken) {
    let owned = || watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"));
    let controller = Controller::new(ctx.scoped::<SecureApiService>(), watcher::Config::default());
    let services = controller.store();
    let store = services.clone();
    let stream = controller
        .owns(ctx.scoped::<Deployment>(), owned())
        .owns(ctx.scoped::<Service>(), owned())
        // A SecretRef's new version rolls every SecureApiService of its namespace that uses it.
        .watches(ctx.scoped::<SecretRef>(), watcher::Config::default(), move |secret_ref| {
            let name = secret_ref.name_any();
            referencing(&services, secret_ref.namespace(), |s| {
                workload::snapshot::referenced_secret_refs(&s.spec).contains(&name)
            })
        })
        .with_config(kube::runtime::controller::Config::default().concurrency(ctx.settings.concurrency))
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "secureapiservice controller event");
            }
        });
    drive(stream, store, shutdown).await;
}

fn error_policy(service: Arc<SecureApiService>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::debug!(service = %object_key(service.as_ref()), %error, "retrying");
    ctx.retry_after_failure(&object_key(service.as_ref()))
}

async fn reconcile(service: Arc<SecureApiService>, ctx: Arc<Context>) -> Result<Action, Error> {
    let timer = ctx.metrics.reconcile(ControllerKind::SecureApiService);
    let result = sync(&service, &ctx).await;
    match &result {
        Ok(_) => {
            ctx.clear_failures(&object_key(service.as_ref()));
            timer.finish(None);
        }
        Err(error) => {
            tracing::warn!(service = %object_key(service.as_ref()), %error, "reconcile failed");
            timer.finish(Some(error.category()));
        }
    }
    result
}

fn api<K>(ctx: &Context, service: &SecureApiService) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as Resource>::DynamicType: Default,
{
    Api::namespaced(ctx.client.clone(), &service.namespace().unwrap_or_default())
}

/// The annotation value of a Deployment.
fn annotation(deployment: &Deployment, key: &str) -> Option<String> {
    deployment.annotations().get(key).cloned()
}

async fn sync(service: &SecureApiService, ctx: &Context) -> Result<Action, Error> {
    let manager = field_manager(CONTROLLER);
    let deployments: Api<Deployment> = api(ctx, service);
    let name = service.name_any();
    let live = deployments.get_opt(&name).await?;
    let current = service.status.clone().unwrap_or_default();
    let live_revision = live.as_ref().and_then(|d| annotation(d, REVISION_ANNOTATION));
    let record_of =
        |revision: &Option<String>| current.history.iter().find(|r| Some(&r.revision) == revision.as_ref()).cloned();

    let resolved = resolve::resolve(&ctx.client, service).await?;
    let (desired_record, unresolved, mut rolled_back, mut failed_revision) = match resolved {
        Err(unresolved) => {
            (None, Some((unresolved.reason, unresolved.message)), false, current.failed_revision.clone())
        }
        Ok(secrets) => {
            let outcome = apply_revision(service, ctx, &secrets, live.as_ref(), &current, &manager).await?;
            (Some(outcome.record), None, false, outcome.failed_revision)
        }
    };

    let live = deployments.get_opt(&name).await?;
    let mut live_revision_now = live.as_ref().and_then(|d| annotation(d, REVISION_ANNOTATION)).or(live_revision);
    if let (Some(deployment), Some(desired)) = (&live, &desired_record)
        && service.spec.rollout.auto_rollback
        && live_revision_now.as_deref() == Some(desired.revision.as_str())
        && status::rollout(deployment) == status::Rollout::Stalled
        && let Some(previous) = roll_back(ctx, service, deployment, &manager).await?
    {
        rolled_back = true;
        failed_revision = Some(desired.revision.clone());
        live_revision_now = Some(previous);
        let note =
            format!("revision {} exceeded its progress deadline; the previous revision was restored", desired.revision);
        ctx.publish(service, EventType::Warning, reasons::ROLLED_BACK, "Rollout", note).await;
    }
    let rolled_back = rolled_back || (failed_revision.is_some() && failed_revision != live_revision_now);

    let history_limit = usize::try_from(service.spec.revision_history_limit).unwrap_or(0);
    let live_record = desired_record
        .clone()
        .filter(|d| Some(&d.revision) == live_revision_now.as_ref())
        .or_else(|| record_of(&live_revision_now));
    let live_service = api::<Service>(ctx, service).get_opt(&name).await?;
    let inputs_url = workload::service::in_cluster_url(&Inputs { service, secrets: &BTreeMap::new() });
    let facts = status::Facts {
        url: inputs_url,
        external_url: status::external_url(service, live_service.as_ref()),
        live: live_record.as_ref(),
        desired: desired_record.as_ref(),
        deployment: live.as_ref(),
        history_limit,
        failed_revision,
        unresolved,
        rolled_back,
    };
    let next = status::next(service, &facts, now());
    let after = api::<Deployment>(ctx, service).get_opt(&name).await?;
    prune_snapshots(ctx, service, &next.history, after.as_ref()).await?;
    if next != current {
        let patch = super::status_patch(&current, &next);
        api::<SecureApiService>(ctx, service)
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    Ok(Action::requeue(Duration::from_secs(300)))
}

struct Applied {
    record: RevisionRecord,
    failed_revision: Option<String>,
}

/// Applies snapshots, ServiceAccount, Deployment, Service, HPA and PDB for the resolved secrets.
/// A revision that was rolled back is not applied again (the live one stays).
async fn apply_revision(
    service: &SecureApiService,
    ctx: &Context,
    secrets: &BTreeMap<String, ResolvedSecret>,
    live: Option<&Deployment>,
    current: &crate::api::SecureApiServiceStatus,
    manager: &str,
) -> Result<Applied, Error> {
    let inputs = Inputs { service, secrets };
    let mut deployment = workload::deployment::deployment(&inputs).map_err(|e| Error::InvalidSpec(e.to_string()))?;
    let revision =
        workload::deployment::revision_name(&service.name_any(), &workload::deployment::template_hash(&deployment));
    let snapshots: Vec<Secret> =
        secrets.keys().filter_map(|r| workload::snapshot::snapshot_secret(&inputs, r)).collect();
    let record = RevisionRecord {
        revision: revision.clone(),
        secret_versions: secrets.iter().map(|(k, v)| (k.clone(), v.version.clone())).collect(),
        snapshots: snapshots.iter().map(|s| s.name_any()).collect(),
    };
    let held = current.failed_revision.as_deref() == Some(revision.as_str());
    let failed_revision = if held { current.failed_revision.clone() } else { None };

    let secret_api: Api<Secret> = api(ctx, service);
    for snapshot in snapshots {
        apply_if_changed(&secret_api, snapshot, manager).await?;
    }
    apply_if_changed(&api::<ServiceAccount>(ctx, service), workload::service::service_account(&inputs), manager)
        .await?;
    if !held {
        remember_previous(&mut deployment, live, &revision);
        apply_if_changed(&api::<Deployment>(ctx, service), deployment, manager).await?;
    }
    apply_if_changed(&api::<Service>(ctx, service), workload::service::service(&inputs), manager).await?;
    let name = service.name_any();
    let hpa: Api<HorizontalPodAutoscaler> = api(ctx, service);
    match workload::service::horizontal_pod_autoscaler(&inputs) {
        Some(desired) => drop(apply_if_changed(&hpa, desired, manager).await?),
        None => drop(delete_if_ours(&hpa, &name).await?),
    }
    let pdb: Api<PodDisruptionBudget> = api(ctx, service);
    match workload::service::pod_disruption_budget(&inputs) {
        Some(desired) => drop(apply_if_changed(&pdb, desired, manager).await?),
        None => drop(delete_if_ours(&pdb, &name).await?),
    }
    Ok(Applied { record, failed_revision })
}

/// Stamps the Deployment with its revision and, when it replaces another revision, that one's
/// name and pod template (what a rollback restores).
fn remember_previous(deployment: &mut Deployment, live: Option<&Deployment>, revision: &str) {
    let annotations = deployment.annotations_mut();
    annotations.insert(REVISION_ANNOTATION.into(), revision.into());
    let Some(live) = live else { return };
    let live_revision = annotation(live, REVISION_ANNOTATION);
    let (previous, template) = if live_revision.as_deref() == Some(revision) {
        (annotation(live, PREVIOUS_REVISION_ANNOTATION), annotation(live, PREVIOUS_TEMPLATE_ANNOTATION))
    } else {
        let template = live.spec.as_ref().and_then(|s| serde_json::to_string(&s.template).ok());
        (live_revision, template)
    };
    if let (Some(previous), Some(template)) = (previous, template) {
        annotations.insert(PREVIOUS_REVISION_ANNOTATION.into(), previous);
        annotations.insert(PREVIOUS_TEMPLATE_ANNOTATION.into(), template);
    }
}

/// Puts the previous pod template back. Returns the restored revision, or `None` when there is
/// no previous revision to go back to.
async fn roll_back(
    ctx: &Context,
    service: &SecureApiService,
    live: &Deployment,
    manager: &str,
) -> Result<Option<String>, Error> {
    let (Some(previous), Some(template)) =
        (annotation(live, PREVIOUS_REVISION_ANNOTATION), annotation(live, PREVIOUS_TEMPLATE_ANNOTATION))
    else {
        return Ok(None);
    };
    let Ok(template) = serde_json::from_str::<PodTemplateSpec>(&template) else { return Ok(None) };
    let patch = serde_json::json!({
        "metadata": { "annotations": { REVISION_ANNOTATION: previous } },
        "spec": { "template": template },
    });
    let params = PatchParams { field_manager: Some(manager.to_owned()), ..PatchParams::default() };
    api::<Deployment>(ctx, service).patch(&service.name_any(), &params, &Patch::Merge(&patch)).await?;
    Ok(Some(previous))
}

/// Secret names a pod template mounts or reads env from.
fn secrets_used_by(template: &PodTemplateSpec) -> Vec<String> {
    let Some(pod) = &template.spec else { return vec![] };
    let volumes = pod.volumes.iter().flatten().filter_map(|v| v.secret.as_ref()?.secret_name.clone());
    let env = pod
        .containers
        .iter()
        .flat_map(|c| c.env.iter().flatten())
        .filter_map(|e| e.value_from.as_ref()?.secret_key_ref.as_ref().map(|r| r.name.clone()));
    volumes.chain(env).collect()
}

/// Deletes our snapshot Secrets that no retained revision uses — never one that the live
/// Deployment's template or its remembered previous template still uses.
async fn prune_snapshots(
    ctx: &Context,
    service: &SecureApiService,
    history: &[RevisionRecord],
    live: Option<&Deployment>,
) -> Result<(), Error> {
    let mut keep: Vec<String> = history.iter().flat_map(|r| r.snapshots.iter().cloned()).collect();
    if let Some(live) = live {
        keep.extend(live.spec.iter().flat_map(|s| secrets_used_by(&s.template)));
        let previous = annotation(live, PREVIOUS_TEMPLATE_ANNOTATION).and_then(|t| serde_json::from_str(&t).ok());
        keep.extend(previous.iter().flat_map(secrets_used_by));
    }
    let secrets: Api<Secret> = api(ctx, service);
    let selector =
        format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},{}={}", owner_label_key("SecureApiService"), service.name_any());
    for name in names(&secrets, &selector).await? {
        if !keep.contains(&name) {
            delete_if_ours(&secrets, &name).await?;
        }
    }
    Ok(())
}
