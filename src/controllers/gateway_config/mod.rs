//! The GatewayConfig controller: routes in Kubernetes, Google Cloud API Gateway kept in line.
//!
//! resolve backends → render the Swagger 2.0 document (pure) → config id `<apiId>-<hash>` →
//! create the API if missing → create the config (immutable, one at a time) → wait until ACTIVE →
//! create the gateway or move it to the config → delete our older configs except the previous
//! one → status. Long-running operations are remembered in status and polled on later
//! reconciles, so no worker blocks. Deletion (finalizer): gateway, then configs, then the API,
//! unless `deletionPolicy: Retain`.

pub mod plan;

use super::{Context, drive, now, object_key, referencing};
use crate::api::conditions::{Condition, ConditionStatus, find_condition, reasons, set_condition, types};
use crate::api::secret_ref::DeletionPolicy;
use crate::api::{FINALIZER, GatewayConfig, GatewayConfigStatus, SecureApiService};
use crate::gcp::{ApiGateway, GcpError, Operation};
use crate::metrics::Controller as ControllerKind;
use futures::StreamExt;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalized, finalizer};
use kube::runtime::watcher;
use plan::Plan;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a pending operation is polled.
const POLL: Duration = Duration::from_secs(1);
/// The safety-net re-check of a Ready gateway.
const RECHECK: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    #[error("{0}")]
    Gcp(#[from] GcpError),
    #[error("operation {name} failed: {message}")]
    OperationFailed { name: String, message: String },
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(String),
    #[error("API Gateway is not configured (--api-gateway-endpoint or credentials)")]
    NoClient,
    /// Not a failure: a deletion step is still running.
    #[error("waiting for {0}")]
    Waiting(String),
}

impl Error {
    pub fn category(&self) -> &'static str {
        match self {
            Self::InvalidSpec(_) => "invalid_spec",
            Self::Gcp(e) if e.is_transient() => "gcp_unavailable",
            Self::Gcp(_) => "gcp_error",
            Self::OperationFailed { .. } => "operation_failed",
            Self::Kube(_) | Self::Finalizer(_) => "kubernetes",
            Self::NoClient => "invalid_setting",
            Self::Waiting(_) => "waiting",
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::InvalidSpec(_) | Self::NoClient => reasons::INVALID_SPEC,
            Self::Gcp(e) if e.status == crate::gcp::Code::PermissionDenied => reasons::PERMISSION_DENIED,
            Self::Gcp(e) if e.status == crate::gcp::Code::ResourceExhausted => reasons::QUOTA_EXCEEDED,
            Self::Gcp(_) => reasons::GCP_UNAVAILABLE,
            Self::OperationFailed { .. } => reasons::OPERATION_FAILED,
            Self::Kube(_) | Self::Finalizer(_) => reasons::KUBERNETES_ERROR,
            Self::Waiting(_) => reasons::RECONCILING,
        }
    }
}

impl From<kube::runtime::finalizer::Error<Error>> for Error {
    fn from(error: kube::runtime::finalizer::Error<Error>) -> Self {
        super::flatten_finalizer(error, Self::Kube, Self::Finalizer)
    }
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken) {
    let controller = Controller::new(ctx.scoped::<GatewayConfig>(), watcher::Config::default());
    let gateways = controller.store();
    let store = gateways.clone();
    let stream = controller
        // A backend service's URL appearing or changing re-renders the gateways that use it.
        .watches(ctx.scoped::<SecureApiService>(), watcher::Config::default(), move |service| {
            let name = service.name_any();
            referencing(&gateways, service.namespace(), |g| {
                g.spec.routes.iter().any(|r| r.backend.service.as_deref() == Some(name.as_str()))
            })
        })
        .with_config(kube::runtime::controller::Config::default().concurrency(ctx.settings.concurrency))
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "gatewayconfig controller event");
            }
        });
    drive(stream, store, shutdown).await;
}

fn error_policy(gateway: Arc<GatewayConfig>, error: &Error, ctx: Arc<Context>) -> Action {
    if matches!(error, Error::Waiting(_)) {
        return Action::requeue(POLL);
    }
    ctx.retry_after_failure(&object_key(gateway.as_ref()))
}

async fn reconcile(gateway: Arc<GatewayConfig>, ctx: Arc<Context>) -> Result<Action, Error> {
    let timer = ctx.metrics.reconcile(ControllerKind::GatewayConfig);
    let namespace = gateway.namespace().unwrap_or_default();
    let api: Api<GatewayConfig> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = finalizer(&api, FINALIZER, gateway.clone(), |event| async {
        match event {
            Finalized::Apply(gateway) => sync(&gateway, &ctx).await,
            Finalized::Cleanup(gateway) => cleanup(&gateway, &ctx).await,
        }
    })
    .await
    .map_err(Error::from);
    match result {
        Ok(action) => {
            ctx.clear_failures(&object_key(gateway.as_ref()));
            timer.finish(None);
            Ok(action)
        }
        Err(Error::Waiting(what)) => {
            timer.finish(None);
            Err(Error::Waiting(what))
        }
        Err(error) => {
            timer.finish(Some(error.category()));
            report_failure(&gateway, &ctx, &error).await;
            Err(error)
        }
    }
}

fn client(ctx: &Context) -> Result<&ApiGateway, Error> {
    ctx.api_gateway.as_ref().ok_or(Error::NoClient)
}

/// Polls the operation in status, if any: `Some(waiting)` while it runs; an error when it failed.
async fn poll_pending(client: &ApiGateway, status: &GatewayConfigStatus) -> Result<Option<Operation>, Error> {
    let Some(name) = &status.pending_operation else { return Ok(None) };
    let operation = client.get_operation(name).await?;
    if !operation.done {
        return Ok(Some(operation));
    }
    match operation.error {
        Some(error) => Err(Error::OperationFailed { name: name.clone(), message: error.message }),
        None => Ok(None),
    }
}

async fn sync(gateway: &GatewayConfig, ctx: &Context) -> Result<Action, Error> {
    let client = client(ctx)?;
    let current = gateway.status.clone().unwrap_or_default();
    let plan = match plan::plan(gateway, ctx).await? {
        Ok(plan) => plan,
        Err(unresolved) => {
            let mut next = current.clone();
            next.observed_generation = gateway.metadata.generation;
            conditions(
                &mut next,
                gateway,
                &[(types::BACKENDS_RESOLVED, false, reasons::BACKEND_NOT_READY, unresolved)],
            );
            write_status(ctx, gateway, &current, next).await?;
            return Ok(Action::requeue(Duration::from_secs(30)));
        }
    };
    let mut next = current.clone();
    next.observed_generation = gateway.metadata.generation;
    match poll_pending(client, &current).await {
        Ok(Some(_)) => return Ok(Action::requeue(POLL)),
        Ok(None) => next.pending_operation = None,
        Err(error) => {
            // The failed operation is reported; the next reconcile starts over from GCP's state.
            next.pending_operation = None;
            write_status(ctx, gateway, &current, next).await?;
            return Err(error);
        }
    }
    let step = advance(client, &plan, &mut next).await?;
    let backends = (types::BACKENDS_RESOLVED, true, reasons::BACKENDS_READY, "every backend has a URL".to_owned());
    let action = match step {
        Step::Waiting { operation, reason, message, config_active } => {
            next.pending_operation = operation;
            let config = if config_active {
                (types::CONFIG_ACTIVE, true, reasons::CONFIG_ACTIVE, format!("API config {} is ACTIVE", plan.config_id))
            } else {
                (
                    types::CONFIG_ACTIVE,
                    false,
                    reasons::CONFIG_CREATING,
                    format!("API config {} is being created", plan.config_id),
                )
            };
            let gateway_condition = (types::GATEWAY_READY, false, reason, message.clone());
            let ready = (types::READY, false, reason, message);
            // A failed operation stays reported (with its message) until a config is ACTIVE again.
            let failure_reported = find_condition(&current.conditions, types::CONFIG_ACTIVE)
                .is_some_and(|c| c.reason == reasons::OPERATION_FAILED);
            if failure_reported && !config_active {
                conditions(&mut next, gateway, &[ready, backends, gateway_condition]);
            } else {
                conditions(&mut next, gateway, &[ready, backends, config, gateway_condition]);
            }
            Action::requeue(POLL)
        }
        Step::Done { managed_service, hostname } => {
            next.api_config_id = Some(plan.config_id.clone());
            next.gateway_url = Some(format!("https://{hostname}"));
            next.managed_service = Some(managed_service);
            let message = format!("gateway {} serves API config {}", plan.gateway_id, plan.config_id);
            conditions(
                &mut next,
                gateway,
                &[
                    (types::READY, true, reasons::GATEWAY_ACTIVE, message.clone()),
                    backends,
                    (
                        types::CONFIG_ACTIVE,
                        true,
                        reasons::CONFIG_ACTIVE,
                        format!("API config {} is ACTIVE", plan.config_id),
                    ),
                    (types::GATEWAY_READY, true, reasons::GATEWAY_ACTIVE, message),
                ],
            );
            prune_configs(client, &plan, &next).await?;
            Action::requeue(RECHECK)
        }
    };
    write_status(ctx, gateway, &current, next).await?;
    Ok(action)
}

/// Where provisioning stands after one step.
enum Step {
    Waiting { operation: Option<String>, reason: &'static str, message: String, config_active: bool },
    Done { managed_service: String, hostname: String },
}

/// Takes the next provisioning step that GCP's state calls for (at most one mutating call).
async fn advance(client: &ApiGateway, plan: &Plan, next: &mut GatewayConfigStatus) -> Result<Step, Error> {
    let waiting = |operation: Operation, reason, message: String, config_active| Step::Waiting {
        operation: Some(operation.name),
        reason,
        message,
        config_active,
    };
    let Some(api) = client.get_api(&plan.project, &plan.api_id).await? else {
        let op = client.create_api(&plan.project, &plan.api_id, &plan.display_name, &plan.labels).await?;
        return Ok(waiting(op, reasons::CONFIG_CREATING, format!("creating API {}", plan.api_id), false));
    };
    match client.get_config(&plan.project, &plan.api_id, &plan.config_id).await? {
        None => {
            let op = client
                .create_config(
                    &plan.project,
                    &plan.api_id,
                    &plan.config_id,
                    plan::DOCUMENT_PATH,
                    plan.document.as_bytes(),
                    plan.gateway_service_account.as_deref(),
                    &plan.labels,
                )
                .await?;
            return Ok(waiting(op, reasons::CONFIG_CREATING, format!("creating API config {}", plan.config_id), false));
        }
        Some(config) if config.state == "FAILED" => {
            // A config whose creation failed is deleted so that the next attempt can reuse its id.
            let op = client.delete_config(&plan.project, &plan.api_id, &plan.config_id).await?;
            return Ok(waiting(op, reasons::CONFIG_CREATING, format!("retrying API config {}", plan.config_id), false));
        }
        Some(config) if config.state != "ACTIVE" => {
            let message = format!("API config {} is {}", plan.config_id, config.state);
            return Ok(Step::Waiting {
                operation: None,
                reason: reasons::CONFIG_CREATING,
                message,
                config_active: false,
            });
        }
        Some(_) => {}
    }
    let config_name = plan.config_name();
    match client.get_gateway(&plan.project, &plan.location, &plan.gateway_id).await? {
        None => {
            let op = client
                .create_gateway(
                    &plan.project,
                    &plan.location,
                    &plan.gateway_id,
                    &config_name,
                    &plan.display_name,
                    &plan.labels,
                )
                .await?;
            Ok(waiting(op, reasons::GATEWAY_UPDATING, format!("creating gateway {}", plan.gateway_id), true))
        }
        Some(live) if live.api_config != config_name => {
            next.previous_api_config_id = live.api_config.rsplit('/').next().map(str::to_owned);
            let op =
                client.update_gateway_config(&plan.project, &plan.location, &plan.gateway_id, &config_name).await?;
            Ok(waiting(
                op,
                reasons::GATEWAY_UPDATING,
                format!("moving gateway {} to {}", plan.gateway_id, plan.config_id),
                true,
            ))
        }
        Some(live) if live.state != "ACTIVE" => {
            let message = format!("gateway {} is {}", plan.gateway_id, live.state);
            Ok(Step::Waiting { operation: None, reason: reasons::GATEWAY_UPDATING, message, config_active: true })
        }
        Some(live) => Ok(Step::Done { managed_service: api.managed_service, hostname: live.default_hostname }),
    }
}

/// Deletes our configs of this API other than the current and the previous one.
async fn prune_configs(client: &ApiGateway, plan: &Plan, status: &GatewayConfigStatus) -> Result<(), Error> {
    for config in client.list_configs(&plan.project, &plan.api_id).await? {
        let id = config.id().to_owned();
        let keep = id == plan.config_id || Some(&id) == status.previous_api_config_id.as_ref();
        if !keep && plan::is_ours(&config.labels, &plan.owner) && config.state != "DELETING" {
            client.delete_config(&plan.project, &plan.api_id, &id).await?;
        }
    }
    Ok(())
}

/// Deletes the gateway, then our configs, then the API — each after the previous step's
/// operation finished — unless the policy is Retain.
async fn cleanup(gateway: &GatewayConfig, ctx: &Context) -> Result<Action, Error> {
    ctx.forget(&object_key(gateway));
    if gateway.spec.deletion_policy == DeletionPolicy::Retain {
        return Ok(Action::await_change());
    }
    let client = client(ctx)?;
    let current = gateway.status.clone().unwrap_or_default();
    if poll_pending(client, &current).await?.is_some() {
        return Err(Error::Waiting("a deletion operation".into()));
    }
    let names = plan::names(gateway, ctx)?;
    let pending = if client.get_gateway(&names.project, &names.location, &names.gateway_id).await?.is_some() {
        Some(client.delete_gateway(&names.project, &names.location, &names.gateway_id).await?)
    } else if let Some(config) = client.list_configs(&names.project, &names.api_id).await?.into_iter().next() {
        Some(client.delete_config(&names.project, &names.api_id, config.id()).await?)
    } else if client.get_api(&names.project, &names.api_id).await?.is_some() {
        Some(client.delete_api(&names.project, &names.api_id).await?)
    } else {
        None
    };
    let Some(operation) = pending else { return Ok(Action::await_change()) };
    let mut next = current.clone();
    next.pending_operation = Some(operation.name.clone());
    write_status(ctx, gateway, &current, next).await?;
    Err(Error::Waiting(operation.name))
}

fn conditions(status: &mut GatewayConfigStatus, gateway: &GatewayConfig, entries: &[(&str, bool, &str, String)]) {
    for (type_, ok, reason, message) in entries {
        let value = if *ok { ConditionStatus::True } else { ConditionStatus::False };
        let condition = Condition::new(type_, value, reason, message.clone(), gateway.metadata.generation, now());
        set_condition(&mut status.conditions, condition);
    }
}

/// Writes the status only when it differs.
async fn write_status(
    ctx: &Context,
    gateway: &GatewayConfig,
    current: &GatewayConfigStatus,
    next: GatewayConfigStatus,
) -> Result<(), Error> {
    if *current == next {
        return Ok(());
    }
    let api: Api<GatewayConfig> = Api::namespaced(ctx.client.clone(), &gateway.namespace().unwrap_or_default());
    let patch = super::status_patch(current, &next);
    api.patch_status(&gateway.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}

/// Ready=False with the error's reason and message, and a Warning Event, when that changes.
/// Only the conditions are patched (and a failed operation is forgotten): the object in hand may
/// be older than the status this reconcile already wrote.
async fn report_failure(gateway: &GatewayConfig, ctx: &Context, error: &Error) {
    let current = gateway.status.clone().unwrap_or_default();
    let mut next = current.clone();
    let message = error.to_string();
    conditions(&mut next, gateway, &[(types::READY, false, error.reason(), message.clone())]);
    let failed_operation = matches!(error, Error::OperationFailed { .. });
    if failed_operation {
        conditions(&mut next, gateway, &[(types::CONFIG_ACTIVE, false, reasons::OPERATION_FAILED, message.clone())]);
    }
    if next.conditions == current.conditions {
        return;
    }
    tracing::warn!(gateway = %object_key(gateway), reason = error.reason(), error = %message, "gateway sync failed");
    ctx.publish(gateway, EventType::Warning, error.reason(), "Provision", message).await;
    let mut patch = serde_json::json!({ "status": { "conditions": next.conditions } });
    if failed_operation {
        patch["status"]["pendingOperation"] = serde_json::Value::Null;
    }
    let api: Api<GatewayConfig> = Api::namespaced(ctx.client.clone(), &gateway.namespace().unwrap_or_default());
    if let Err(e) = api.patch_status(&gateway.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
        tracing::debug!(error = %e, "status not written");
    }
}
