//! Provisioning in Google Cloud, one step per reconcile: create the API if missing → create the
//! config (immutable, one at a time) → wait until ACTIVE → create the gateway or move it to the
//! config → delete our older configs except the previous one. Deletion runs the same way in
//! reverse: gateway, then configs, then the API. Each mutating call returns an operation that
//! later reconciles poll, so no worker blocks.

use super::error::Error;
use super::plan::{self, Names, Plan};
use crate::api::GatewayConfigStatus;
use crate::api::conditions::reasons;
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

/// Takes the next provisioning step that GCP's state calls for (at most one mutating call).
pub async fn advance(client: &ApiGateway, plan: &Plan, next: &mut GatewayConfigStatus) -> Result<Step, Error> {
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
pub async fn prune_configs(client: &ApiGateway, plan: &Plan, status: &GatewayConfigStatus) -> Result<(), Error> {
    for config in client.list_configs(&plan.project, &plan.api_id).await? {
        let id = config.id().to_owned();
        let keep = id == plan.config_id || Some(&id) == status.previous_api_config_id.as_ref();
        if !keep && plan::is_ours(&config.labels, &plan.owner) && config.state != "DELETING" {
            client.delete_config(&plan.project, &plan.api_id, &id).await?;
        }
    }
    Ok(())
}

/// Starts the next deletion step (gateway, then a config, then the API) and returns its
/// operation, or `None` once everything is gone.
pub async fn delete_step(client: &ApiGateway, names: &Names) -> Result<Option<Operation>, Error> {
    let operation = if client.get_gateway(&names.project, &names.location, &names.gateway_id).await?.is_some() {
        Some(client.delete_gateway(&names.project, &names.location, &names.gateway_id).await?)
    } else if let Some(config) = client.list_configs(&names.project, &names.api_id).await?.into_iter().next() {
        Some(client.delete_config(&names.project, &names.api_id, config.id()).await?)
    } else if client.get_api(&names.project, &names.api_id).await?.is_some() {
        Some(client.delete_api(&names.project, &names.api_id).await?)
    } else {
        None
    };
    Ok(operation)
}
