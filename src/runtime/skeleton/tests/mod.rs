//! The skeleton's pure parts, and sequences of reconciles against a scripted API server
//! ([`sequences`]).

mod probe;
mod sequences;

use super::*;
use crate::api::GatewayConfigStatus;

/// Field managers are persisted in every managedFields entry the operator wrote: renaming
/// one would leave the old manager owning fields the new one no longer sets.
#[test]
fn each_controllers_field_manager_is_the_one_persisted_in_managed_fields() {
    let managers: Vec<String> = ControllerKind::ALL
        .into_iter()
        .map(|controller| {
            let profile = Profile { controller, event_action: "Sync", finalized: false, debounce: Duration::ZERO };
            profile.field_manager()
        })
        .collect();
    assert_eq!(
        managers,
        ["secure-api-operator/secretref", "secure-api-operator/secureapiservice", "secure-api-operator/gatewayconfig"]
    );
}

#[test]
fn a_cleared_status_field_is_nulled_in_the_patch() {
    let current = GatewayConfigStatus { pending_operation: Some("op".into()), ..Default::default() };
    let next = GatewayConfigStatus::default();
    let patch = status_patch(&current, &next);
    assert_eq!(patch["status"]["pendingOperation"], serde_json::Value::Null);
    assert!(patch["status"].as_object().is_some_and(|s| s.contains_key("pendingOperation")));
}

#[test]
fn unchanged_status_fields_stay_out_of_the_patch() {
    let current = GatewayConfigStatus {
        pending_operation: Some("op".into()),
        gateway_url: Some("https://a".into()),
        ..Default::default()
    };
    let next = GatewayConfigStatus { gateway_url: Some("https://b".into()), ..current.clone() };
    let patch = status_patch(&current, &next);
    assert_eq!(patch, serde_json::json!({ "status": { "gatewayUrl": "https://b" } }));
}
