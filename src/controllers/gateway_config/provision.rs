//! Provisioning in Google Cloud, one step per reconcile: observe what is there
//! ([`super::observe`]), decide the next step ([`super::decide`], pure: ownership first), act (at
//! most one mutating call). The steps: create the API if missing → create the config
//! (immutable, one at a time) → wait until ACTIVE → create the gateway or move it to the config →
//! delete our older configs except the previous one. Deletion runs the same way in reverse:
//! gateway, then configs, then the API — only what is this GatewayConfig's. Each mutating call
//! returns an operation that later reconciles poll, so no worker blocks.

use super::decide::{self, Action, Decision, Deletion};
use super::error::Error;
use super::observe;
use super::plan::{self, Names, Owner, Plan};
use crate::api::GatewayConfigStatus;
use crate::gcp::{ApiGateway, Operation};

/// Polls the operation in status, if any: `Some(waiting)` while it runs; an error when it failed.
pub async fn poll_pending(client: &ApiGateway, status: &GatewayConfigStatus) -> Result<Option<Operation>, Error> {
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

/// Where provisioning stands after one step.
pub enum Step {
    Waiting { operation: Option<String>, reason: &'static str, message: String, config_active: bool },
    Done { managed_service: String, hostname: String },
}

/// Takes the next provisioning step that Google Cloud's state calls for (at most one mutating
/// call); a resource under our ids that is not this GatewayConfig's is an ownership conflict.
pub async fn advance(client: &ApiGateway, plan: &Plan, next: &mut GatewayConfigStatus) -> Result<Step, Error> {
    let observed = observe::observe(client, plan).await?;
    match decide::decide(plan, &observed) {
        Decision::Conflict { resource } => Err(Error::OwnershipConflict(resource)),
        Decision::Act { action, reason, message, config_active } => {
            if let Action::MoveGateway { previous_config_id } = &action {
                next.previous_api_config_id.clone_from(previous_config_id);
            }
            let operation = act(client, plan, &action).await?;
            Ok(Step::Waiting { operation: Some(operation.name), reason, message, config_active })
        }
        Decision::Wait { reason, message, config_active } => {
            Ok(Step::Waiting { operation: None, reason, message, config_active })
        }
        Decision::Done { managed_service, hostname } => Ok(Step::Done { managed_service, hostname }),
    }
}

/// Makes `action`'s call.
async fn act(client: &ApiGateway, plan: &Plan, action: &Action) -> Result<Operation, Error> {
    let (project, api_id, labels) = (&plan.project, &plan.api_id, plan.owner.labels());
    let operation = match action {
        Action::CreateApi => client.create_api(project, api_id, &plan.display_name, labels).await?,
        Action::CreateConfig => {
            let account = plan.gateway_service_account.as_deref();
            let document = plan.document.as_bytes();
            client
                .create_config(project, api_id, &plan.config_id, plan::DOCUMENT_PATH, document, account, labels)
                .await?
        }
        Action::DeleteFailedConfig => client.delete_config(project, api_id, &plan.config_id).await?,
        Action::CreateGateway => {
            let config = plan.config_name();
            client
                .create_gateway(project, &plan.location, &plan.gateway_id, &config, &plan.display_name, labels)
                .await?
        }
        Action::MoveGateway { .. } => {
            client.update_gateway_config(project, &plan.location, &plan.gateway_id, &plan.config_name()).await?
        }
    };
    Ok(operation)
}

/// Deletes our configs of this API other than the current and the previous one.
pub async fn prune_configs(client: &ApiGateway, plan: &Plan, status: &GatewayConfigStatus) -> Result<(), Error> {
    for config in client.list_configs(&plan.project, &plan.api_id).await? {
        let id = config.id().to_owned();
        let keep = id == plan.config_id || Some(&id) == status.previous_api_config_id.as_ref();
        if !keep && plan.owner.owns(&config.labels) && config.state != "DELETING" {
            client.delete_config(&plan.project, &plan.api_id, &id).await?;
        }
    }
    Ok(())
}

/// Starts the next deletion step of what is `owner`'s (gateway, then a config, then the API) and
/// returns its operation, or `None` once nothing of ours is left. A config of ours being deleted
/// already is waited for.
pub async fn delete_step(client: &ApiGateway, names: &Names, owner: &Owner) -> Result<Option<Operation>, Error> {
    let observed = observe::observe_for_deletion(client, names).await?;
    let (project, api_id) = (&names.project, &names.api_id);
    let operation = match decide::decide_deletion(owner, &observed) {
        Deletion::Gateway => client.delete_gateway(project, &names.location, &names.gateway_id).await?,
        Deletion::Config { id } => client.delete_config(project, api_id, &id).await?,
        Deletion::Api => client.delete_api(project, api_id).await?,
        Deletion::Wait => return Err(Error::Waiting(format!("the deletion of a config of API {api_id}"))),
        Deletion::Done => return Ok(None),
    };
    Ok(Some(operation))
}
