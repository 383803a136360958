//! GatewayConfig status, from what provisioning found and did (pure). Each condition has a named
//! builder; `lastTransitionTime` moves only when a condition's status flips.

use super::api_keys::KeysStep;
use super::plan::Plan;
use super::provision::Step;
use crate::api::conditions::{Condition, ConditionStatus, find_condition, reasons, set_condition, types};
use crate::api::{GatewayConfig, GatewayConfigStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

fn condition(gateway: &GatewayConfig, type_: &str, ok: bool, reason: &str, message: String, now: &Time) -> Condition {
    let status = if ok { ConditionStatus::True } else { ConditionStatus::False };
    Condition::new(type_, status, reason, message, gateway.metadata.generation, now.clone())
}

fn backends_ready(gateway: &GatewayConfig, now: &Time) -> Condition {
    let message = "every backend has a URL".to_owned();
    condition(gateway, types::BACKENDS_RESOLVED, true, reasons::BACKENDS_READY, message, now)
}

fn config_active(gateway: &GatewayConfig, plan: &Plan, now: &Time) -> Condition {
    let message = format!("API config {} is ACTIVE", plan.config_id);
    condition(gateway, types::CONFIG_ACTIVE, true, reasons::CONFIG_ACTIVE, message, now)
}

fn config_creating(gateway: &GatewayConfig, plan: &Plan, now: &Time) -> Condition {
    let message = format!("API config {} is being created", plan.config_id);
    condition(gateway, types::CONFIG_ACTIVE, false, reasons::CONFIG_CREATING, message, now)
}

/// The status with `conditions` set and the generation observed.
fn with(gateway: &GatewayConfig, mut status: GatewayConfigStatus, conditions: Vec<Condition>) -> GatewayConfigStatus {
    status.observed_generation = gateway.metadata.generation;
    for next in conditions {
        set_condition(&mut status.conditions, next);
    }
    status
}

/// A route's backend has no URL yet (`why` says which). Ready turns False for this generation
/// too (so `kubectl wait` does not pass on a stale True); GatewayReady keeps saying what the
/// gateway still serves.
pub fn backends_unresolved(
    gateway: &GatewayConfig,
    current: &GatewayConfigStatus,
    why: String,
    now: &Time,
) -> GatewayConfigStatus {
    let ready_message = match &current.api_config_id {
        Some(config) => format!("{why}; the gateway keeps serving API config {config}"),
        None => why.clone(),
    };
    let ready = condition(gateway, types::READY, false, reasons::BACKEND_NOT_READY, ready_message, now);
    let backends = condition(gateway, types::BACKENDS_RESOLVED, false, reasons::BACKEND_NOT_READY, why, now);
    with(gateway, current.clone(), vec![ready, backends])
}

/// The last pending operation finished; provisioning goes on from Google Cloud's state.
pub fn operation_done(current: &GatewayConfigStatus) -> GatewayConfigStatus {
    GatewayConfigStatus { pending_operation: None, ..current.clone() }
}

/// After one provisioning step.
pub fn after_step(
    gateway: &GatewayConfig,
    current: &GatewayConfigStatus,
    plan: &Plan,
    step: &Step,
    now: &Time,
) -> GatewayConfigStatus {
    let mut next = current.clone();
    // The ids stay this object's from its first step on, whatever later defaults say.
    next.api_id = Some(plan.api_id.clone());
    next.gateway_id = Some(plan.gateway_id.clone());
    match step {
        Step::Waiting { operation, reason, message, config_active: active } => {
            next.pending_operation = operation.clone();
            let gateway_ready = condition(gateway, types::GATEWAY_READY, false, reason, message.clone(), now);
            let ready = condition(gateway, types::READY, false, reason, message.clone(), now);
            let mut conditions = vec![ready, backends_ready(gateway, now)];
            // A failed operation stays reported (with its message) until a config is ACTIVE again.
            let failure_reported = find_condition(&current.conditions, types::CONFIG_ACTIVE)
                .is_some_and(|c| c.reason == reasons::OPERATION_FAILED);
            if *active {
                conditions.push(config_active(gateway, plan, now));
            } else if !failure_reported {
                conditions.push(config_creating(gateway, plan, now));
            }
            conditions.push(gateway_ready);
            with(gateway, next, conditions)
        }
        Step::Done { managed_service, hostname } => {
            next.api_config_id = Some(plan.config_id.clone());
            next.gateway_url = Some(format!("https://{hostname}"));
            next.managed_service = Some(managed_service.clone());
            let message = format!("gateway {} serves API config {}", plan.gateway_id, plan.config_id);
            let conditions = vec![
                condition(gateway, types::READY, true, reasons::GATEWAY_ACTIVE, message.clone(), now),
                backends_ready(gateway, now),
                config_active(gateway, plan, now),
                condition(gateway, types::GATEWAY_READY, true, reasons::GATEWAY_ACTIVE, message, now),
            ];
            with(gateway, next, conditions)
        }
    }
}

/// After the API keys' step of a gateway that serves: ApiKeysReady says where the keys stand,
/// and Ready is True only when they are in their Secrets too. No keys: no ApiKeysReady.
pub fn with_keys(
    gateway: &GatewayConfig,
    mut status: GatewayConfigStatus,
    step: &KeysStep,
    now: &Time,
) -> GatewayConfigStatus {
    match step {
        KeysStep::None => {
            status.conditions.retain(|c| c.type_ != types::API_KEYS_READY);
            status
        }
        KeysStep::Waiting { reason, message } => {
            let keys = condition(gateway, types::API_KEYS_READY, false, reason, message.clone(), now);
            let ready = condition(gateway, types::READY, false, reason, message.clone(), now);
            with(gateway, status, vec![ready, keys])
        }
        KeysStep::Ready { message, .. } => {
            let keys = condition(gateway, types::API_KEYS_READY, true, reasons::API_KEYS_READY, message.clone(), now);
            with(gateway, status, vec![keys])
        }
    }
}

/// What failed, for the status: its reason and message, and whether it was an operation of
/// API Gateway (ConfigActive False) or about the API keys (ApiKeysReady False).
pub struct Failed<'a> {
    pub reason: &'a str,
    pub message: &'a str,
    pub operation_failed: bool,
    pub keys_failed: bool,
    /// A key operation failed: it is forgotten like an API Gateway one (a transient error of a
    /// key call keeps the operation, to be polled again).
    pub key_operation_failed: bool,
}

/// After a failure: `Ready=False` with its reason; a failed operation also turns ConfigActive
/// False with the operation's message, and is forgotten so the next pass starts afresh; a
/// failure about API keys turns ApiKeysReady False (a failed key operation is forgotten too).
pub fn failed(gateway: &GatewayConfig, failure: &Failed<'_>, now: &Time) -> GatewayConfigStatus {
    let Failed { reason, message, operation_failed, keys_failed, key_operation_failed } = *failure;
    let mut status = gateway.status.clone().unwrap_or_default();
    let mut conditions = vec![condition(gateway, types::READY, false, reason, message.to_owned(), now)];
    if key_operation_failed {
        status.pending_key_operation = None;
    }
    if keys_failed {
        conditions.push(condition(gateway, types::API_KEYS_READY, false, reason, message.to_owned(), now));
    }
    if operation_failed {
        status.pending_operation = None;
        conditions.push(condition(
            gateway,
            types::CONFIG_ACTIVE,
            false,
            reasons::OPERATION_FAILED,
            message.to_owned(),
            now,
        ));
    }
    for next in conditions {
        set_condition(&mut status.conditions, next);
    }
    status
}
