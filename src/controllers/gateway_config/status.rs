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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn gateway(status: serde_json::Value) -> GatewayConfig {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "GatewayConfig",
            "metadata": { "name": "orders", "namespace": "team-a", "generation": 4 },
            "spec": { "projectId": "p", "routes": [{ "path": "/a", "backend": { "address": "https://a.example.com" } }] },
            "status": status,
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn plan_of(gateway: &GatewayConfig) -> Plan {
        super::super::plan::plan(gateway, None, &BTreeMap::new()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn at(second: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(second).unwrap_or_default())
    }

    fn condition_of<'a>(status: &'a GatewayConfigStatus, type_: &str) -> (ConditionStatus, &'a str, &'a str) {
        let found = find_condition(&status.conditions, type_).unwrap_or_else(|| panic!("no {type_}"));
        (found.status, found.reason.as_str(), found.message.as_str())
    }

    fn creating() -> Step {
        Step::Waiting {
            operation: Some("operations/op-1".into()),
            reason: reasons::CONFIG_CREATING,
            message: "creating API config".into(),
            config_active: false,
        }
    }

    #[test]
    fn a_step_that_waits_records_its_operation_and_the_ids_and_is_not_ready() {
        let object = gateway(serde_json::json!({}));
        let plan = plan_of(&object);
        let next = after_step(&object, &GatewayConfigStatus::default(), &plan, &creating(), &at(10));
        assert_eq!(next.pending_operation.as_deref(), Some("operations/op-1"));
        assert_eq!(
            (next.api_id.as_deref(), next.gateway_id.as_deref()),
            (Some("team-a-orders"), Some("team-a-orders"))
        );
        assert_eq!(
            condition_of(&next, types::READY),
            (ConditionStatus::False, reasons::CONFIG_CREATING, "creating API config")
        );
        assert_eq!(condition_of(&next, types::CONFIG_ACTIVE).1, reasons::CONFIG_CREATING);
        assert_eq!(condition_of(&next, types::GATEWAY_READY).0, ConditionStatus::False);
        assert_eq!(next.observed_generation, Some(4));
    }

    #[test]
    fn a_serving_gateway_is_ready_with_its_url_and_config() {
        let object = gateway(serde_json::json!({}));
        let plan = plan_of(&object);
        let done = Step::Done {
            managed_service: "orders.apigateway.p.cloud.goog".into(),
            hostname: "gw-1.uc.gateway.dev".into(),
        };
        let next = after_step(&object, &GatewayConfigStatus::default(), &plan, &done, &at(10));
        assert_eq!(next.gateway_url.as_deref(), Some("https://gw-1.uc.gateway.dev"));
        assert_eq!(next.api_config_id.as_deref(), Some(plan.config_id.as_str()));
        assert_eq!(next.managed_service.as_deref(), Some("orders.apigateway.p.cloud.goog"));
        for type_ in [types::READY, types::BACKENDS_RESOLVED, types::CONFIG_ACTIVE, types::GATEWAY_READY] {
            assert_eq!(condition_of(&next, type_).0, ConditionStatus::True, "{type_}");
        }
        assert_eq!(next.conditions[0].type_, types::READY, "Ready first");
    }

    #[test]
    fn a_failed_operation_stays_reported_until_a_config_is_active_again() {
        let object = gateway(serde_json::json!({}));
        let plan = plan_of(&object);
        let failure = Failed {
            reason: reasons::OPERATION_FAILED,
            message: "operation op-1 failed: invalid document",
            operation_failed: true,
            keys_failed: false,
            key_operation_failed: false,
        };
        let mut pending = object.clone();
        pending.status =
            Some(GatewayConfigStatus { pending_operation: Some("operations/op-1".into()), ..Default::default() });
        let failed = failed(&pending, &failure, &at(10));
        assert_eq!(failed.pending_operation, None, "the next pass starts afresh");
        assert_eq!(condition_of(&failed, types::CONFIG_ACTIVE).1, reasons::OPERATION_FAILED);
        let retrying = after_step(&object, &failed, &plan, &creating(), &at(20));
        let (_, reason, message) = condition_of(&retrying, types::CONFIG_ACTIVE);
        assert_eq!((reason, message), (reasons::OPERATION_FAILED, "operation op-1 failed: invalid document"));
        let gateway_step = Step::Waiting {
            operation: Some("operations/op-2".into()),
            reason: reasons::GATEWAY_UPDATING,
            message: "creating gateway".into(),
            config_active: true,
        };
        let active = after_step(&object, &retrying, &plan, &gateway_step, &at(30));
        assert_eq!(condition_of(&active, types::CONFIG_ACTIVE).0, ConditionStatus::True);
    }

    #[test]
    fn a_key_failure_turns_api_keys_ready_false_and_forgets_only_a_failed_key_operation() {
        let mut object = gateway(serde_json::json!({}));
        object.status = Some(GatewayConfigStatus {
            pending_operation: Some("operations/gateway".into()),
            pending_key_operation: Some("//apikeys.googleapis.com/operations/k".into()),
            ..Default::default()
        });
        let conflict = Failed {
            reason: reasons::API_KEY_SECRET_CONFLICT,
            message: "Secret client-key exists",
            operation_failed: false,
            keys_failed: true,
            key_operation_failed: false,
        };
        let status = failed(&object, &conflict, &at(10));
        assert_eq!(condition_of(&status, types::API_KEYS_READY).1, reasons::API_KEY_SECRET_CONFLICT);
        assert!(status.pending_key_operation.is_some() && status.pending_operation.is_some(), "nothing to forget");
        assert!(find_condition(&status.conditions, types::CONFIG_ACTIVE).is_none());
        let key_operation = Failed { key_operation_failed: true, reason: reasons::OPERATION_FAILED, ..conflict };
        let status = failed(&object, &key_operation, &at(10));
        assert_eq!(status.pending_key_operation, None);
        assert_eq!(status.pending_operation.as_deref(), Some("operations/gateway"), "the gateway's stays");
    }

    #[test]
    fn a_backend_without_url_is_not_ready_and_says_what_the_gateway_still_serves() {
        let object = gateway(serde_json::json!({}));
        let serving = GatewayConfigStatus { api_config_id: Some("orders-0123456789".into()), ..Default::default() };
        let why = "route /a: backend.service \"api\" has no URL yet".to_owned();
        let status = backends_unresolved(&object, &serving, why.clone(), &at(10));
        let (ready, reason, message) = condition_of(&status, types::READY);
        assert_eq!((ready, reason), (ConditionStatus::False, reasons::BACKEND_NOT_READY));
        assert_eq!(message, format!("{why}; the gateway keeps serving API config orders-0123456789"));
        assert_eq!(condition_of(&status, types::BACKENDS_RESOLVED).2, why);
        let never = backends_unresolved(&object, &GatewayConfigStatus::default(), why.clone(), &at(10));
        assert_eq!(condition_of(&never, types::READY).2, why);
    }

    #[test]
    fn keys_waiting_hold_ready_false_and_keys_in_place_leave_it_to_the_gateway() {
        let object = gateway(serde_json::json!({}));
        let plan = plan_of(&object);
        let done = Step::Done { managed_service: "s".into(), hostname: "h".into() };
        let serving = after_step(&object, &GatewayConfigStatus::default(), &plan, &done, &at(10));
        let waiting =
            KeysStep::Waiting { reason: reasons::API_KEY_CREATING, message: "creating API key client".into() };
        let status = with_keys(&object, serving.clone(), &waiting, &at(11));
        assert_eq!(condition_of(&status, types::READY).1, reasons::API_KEY_CREATING);
        assert_eq!(condition_of(&status, types::API_KEYS_READY).0, ConditionStatus::False);
        let ready = KeysStep::Ready { message: "API keys k are in their Secrets".into(), next_change: None };
        let status = with_keys(&object, serving.clone(), &ready, &at(12));
        assert_eq!(condition_of(&status, types::READY).0, ConditionStatus::True);
        assert_eq!(condition_of(&status, types::API_KEYS_READY).0, ConditionStatus::True);
        let without = with_keys(&object, status, &KeysStep::None, &at(13));
        assert!(find_condition(&without.conditions, types::API_KEYS_READY).is_none(), "no keys, no ApiKeysReady");
    }
}
