//! The Normal Events of a GatewayConfig, from what its status write changed (only transitions:
//! a re-reconcile that finds everything in place writes nothing new and says nothing): the
//! gateway created, a new API config served, an API key created, an API key retired.

use crate::api::conditions::reasons;
use crate::api::{GatewayConfig, GatewayConfigStatus};
use crate::controllers::Context;

/// One Event: its reason, what it is about (a URL, a config id, a key id) and its note.
#[derive(Debug, PartialEq, Eq)]
pub struct Transition {
    pub reason: &'static str,
    pub subject: String,
    pub note: String,
}

/// Announces what changed from `current` to `next` (the status just written).
pub async fn transitions(
    ctx: &Context,
    gateway: &GatewayConfig,
    current: &GatewayConfigStatus,
    next: &GatewayConfigStatus,
) {
    for Transition { reason, subject, note } in changes(current, next) {
        ctx.announce(gateway, reason, &subject, "Provision", note).await;
    }
}

/// The transitions from `current` to `next` (pure).
pub fn changes(current: &GatewayConfigStatus, next: &GatewayConfigStatus) -> Vec<Transition> {
    let mut changes = Vec::new();
    let gateway_id = next.gateway_id.as_deref().unwrap_or("-");
    if let (None, Some(url)) = (&current.gateway_url, &next.gateway_url) {
        let note = format!("gateway {gateway_id} created; it serves at {url}");
        changes.push(Transition { reason: reasons::GATEWAY_CREATED, subject: url.clone(), note });
    }
    if let Some(config) = next.api_config_id.as_ref().filter(|c| current.api_config_id.as_ref() != Some(*c)) {
        let mut note = format!("gateway {gateway_id} serves API config {config}");
        if let Some(previous) = &current.api_config_id {
            note.push_str(&format!(" instead of {previous}"));
        }
        changes.push(Transition { reason: reasons::CONFIG_ACTIVATED, subject: config.clone(), note });
    }
    for key in next.api_keys.iter().filter(|k| current.api_keys.iter().all(|c| c.key_id != k.key_id)) {
        let note =
            format!("API key {} ({}) created; its string is in Secret {}", key.name, key.key_id, key.secret_name);
        changes.push(Transition { reason: reasons::API_KEY_CREATED, subject: key.key_id.clone(), note });
    }
    for key in next.retired_api_keys.iter().filter(|k| current.retired_api_keys.iter().all(|c| c.key_id != k.key_id)) {
        let note = format!("API key {} retired; it works until {}, then it is deleted", key.key_id, key.delete_after.0);
        changes.push(Transition { reason: reasons::API_KEY_RETIRED, subject: key.key_id.clone(), note });
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::gateway_config::{ApiKeyStatus, RetiredApiKey};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn key(id: &str) -> ApiKeyStatus {
        ApiKeyStatus {
            name: "client".into(),
            key_id: id.into(),
            secret_name: "api-key".into(),
            next_rotation_time: None,
        }
    }

    fn serving(config: &str, keys: &[&str]) -> GatewayConfigStatus {
        GatewayConfigStatus {
            gateway_id: Some("gw".into()),
            gateway_url: Some("https://gw.example".into()),
            api_config_id: Some(config.into()),
            api_keys: keys.iter().map(|id| key(id)).collect(),
            ..GatewayConfigStatus::default()
        }
    }

    fn reasons_of(changes: &[Transition]) -> Vec<&str> {
        changes.iter().map(|c| c.reason).collect()
    }

    #[test]
    fn the_first_serving_status_creates_the_gateway_activates_its_config_and_a_key() {
        let changes = changes(&GatewayConfigStatus::default(), &serving("c1", &["k1"]));
        assert_eq!(reasons_of(&changes), ["GatewayCreated", "ConfigActivated", "ApiKeyCreated"]);
        assert_eq!(changes[1].note, "gateway gw serves API config c1");
    }

    #[test]
    fn a_new_config_and_a_rotated_key_are_announced_and_nothing_else() {
        let mut next = serving("c2", &["k2"]);
        let delete_after = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        next.retired_api_keys = vec![RetiredApiKey { key_id: "k1".into(), delete_after, secret_name: None }];
        let changes = changes(&serving("c1", &["k1"]), &next);
        assert_eq!(reasons_of(&changes), ["ConfigActivated", "ApiKeyCreated", "ApiKeyRetired"]);
        assert!(changes[0].note.ends_with("serves API config c2 instead of c1"));
        assert!(changes[2].note.starts_with("API key k1 retired; it works until 1970-01-01T00:00:00Z"));
    }

    #[test]
    fn an_unchanged_status_says_nothing() {
        assert!(changes(&serving("c1", &["k1"]), &serving("c1", &["k1"])).is_empty());
    }
}
