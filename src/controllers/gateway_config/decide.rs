//! What to do next in Google Cloud, from what the plan asks and what was observed (pure).
//!
//! Ownership comes first: while any resource under the GatewayConfig's ids carries labels that
//! are not this GatewayConfig's (another namespace's API or gateway, say), nothing is created,
//! moved or deleted, and the object reports `OwnershipConflict` naming that resource. Then one
//! step at a time: the API, the config (immutable; a FAILED one is deleted so its id can be used
//! again), the gateway on that config.

use super::observe::{Observed, ObservedForDeletion};
use super::plan::{Owner, Plan};
use crate::api::conditions::reasons;

/// One mutating call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    CreateApi,
    CreateConfig,
    /// The config's creation failed: delete it, so the next attempt can use its id again.
    DeleteFailedConfig,
    CreateGateway,
    /// Move the gateway to the planned config; the one it served is kept for rollback.
    MoveGateway {
        previous_config_id: Option<String>,
    },
}

/// The decision of one provisioning pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// `resource` (kind and full name) is not this GatewayConfig's: nothing is touched.
    Conflict { resource: String },
    /// Make `action`'s call; status says `reason` and `message` until its operation is done.
    Act { action: Action, reason: &'static str, message: String, config_active: bool },
    /// Google Cloud is still working on its own (a config activating, a gateway updating).
    Wait { reason: &'static str, message: String, config_active: bool },
    /// The gateway serves the planned config.
    Done { managed_service: String, hostname: String },
}

/// The next provisioning step.
pub fn decide(plan: &Plan, observed: &Observed) -> Decision {
    if let Some(resource) = foreign(plan, observed) {
        return Decision::Conflict { resource };
    }
    let act = |action, reason, message, config_active| Decision::Act { action, reason, message, config_active };
    let Some(api) = &observed.api else {
        return act(Action::CreateApi, reasons::CONFIG_CREATING, format!("creating API {}", plan.api_id), false);
    };
    match &observed.config {
        None => {
            let message = format!("creating API config {}", plan.config_id);
            return act(Action::CreateConfig, reasons::CONFIG_CREATING, message, false);
        }
        Some(config) if config.state == "FAILED" => {
            let message = format!("retrying API config {}", plan.config_id);
            return act(Action::DeleteFailedConfig, reasons::CONFIG_CREATING, message, false);
        }
        Some(config) if config.state != "ACTIVE" => {
            let message = format!("API config {} is {}", plan.config_id, config.state);
            return Decision::Wait { reason: reasons::CONFIG_CREATING, message, config_active: false };
        }
        Some(_) => {}
    }
    let config_name = plan.config_name();
    match &observed.gateway {
        None => {
            let message = format!("creating gateway {}", plan.gateway_id);
            act(Action::CreateGateway, reasons::GATEWAY_UPDATING, message, true)
        }
        Some(live) if live.api_config != config_name => {
            let previous_config_id = live.api_config.rsplit('/').next().filter(|id| !id.is_empty()).map(str::to_owned);
            let message = format!("moving gateway {} to {}", plan.gateway_id, plan.config_id);
            act(Action::MoveGateway { previous_config_id }, reasons::GATEWAY_UPDATING, message, true)
        }
        Some(live) if live.state != "ACTIVE" => {
            let message = format!("gateway {} is {}", plan.gateway_id, live.state);
            Decision::Wait { reason: reasons::GATEWAY_UPDATING, message, config_active: true }
        }
        Some(live) => {
            Decision::Done { managed_service: api.managed_service.clone(), hostname: live.default_hostname.clone() }
        }
    }
}

/// The first observed resource whose labels are not this GatewayConfig's.
fn foreign(plan: &Plan, observed: &Observed) -> Option<String> {
    let api = observed.api.as_ref().filter(|api| !plan.owner.owns(&api.labels)).map(|api| format!("API {}", api.name));
    let config = || {
        let config = observed.config.as_ref().filter(|config| !plan.owner.owns(&config.labels));
        config.map(|config| format!("API config {}", config.name))
    };
    let gateway = || {
        let gateway = observed.gateway.as_ref().filter(|gateway| !plan.owner.owns(&gateway.labels));
        gateway.map(|gateway| format!("gateway {}", gateway.name))
    };
    api.or_else(config).or_else(gateway)
}

/// One deletion call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deletion {
    Gateway,
    Config {
        id: String,
    },
    Api,
    /// A config of ours is being deleted already: wait for it.
    Wait,
    /// Nothing of ours is left. Someone else's resources under our ids stay, and so does our
    /// API while it holds someone else's configs.
    Done,
}

/// The next deletion step: our gateway, then our configs, then our API (once it holds no config).
pub fn decide_deletion(owner: &Owner, observed: &ObservedForDeletion) -> Deletion {
    if observed.gateway.as_ref().is_some_and(|gateway| owner.owns(&gateway.labels)) {
        return Deletion::Gateway;
    }
    let ours: Vec<_> = observed.configs.iter().filter(|config| owner.owns(&config.labels)).collect();
    if let Some(config) = ours.iter().find(|config| config.state != "DELETING") {
        return Deletion::Config { id: config.id().to_owned() };
    }
    if !ours.is_empty() {
        return Deletion::Wait;
    }
    match &observed.api {
        Some(api) if owner.owns(&api.labels) && observed.configs.is_empty() => Deletion::Api,
        _ => Deletion::Done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::GatewayConfig;
    use crate::gcp::{Api, ApiConfig, Gateway};
    use std::collections::BTreeMap;

    fn gateway_config(namespace: &str) -> GatewayConfig {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "GatewayConfig",
            "metadata": { "name": "orders", "namespace": namespace },
            "spec": { "projectId": "p", "routes": [{ "path": "/a", "backend": { "address": "https://a.example.com" } }] },
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn plan() -> Plan {
        super::super::plan::plan(&gateway_config("team-b"), None, &BTreeMap::new()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Labels of a resource made for the GatewayConfig `orders` of `namespace`.
    fn labels_of(namespace: &str) -> BTreeMap<String, String> {
        Owner::of(&gateway_config(namespace)).labels().clone()
    }

    fn api(labels: BTreeMap<String, String>) -> Api {
        Api {
            name: "projects/p/locations/global/apis/x".into(),
            display_name: String::new(),
            managed_service: "x.apigateway.p.cloud.goog".into(),
            state: "ACTIVE".into(),
            labels,
        }
    }

    fn config(plan: &Plan, state: &str, labels: BTreeMap<String, String>) -> ApiConfig {
        ApiConfig {
            name: plan.config_name(),
            state: state.into(),
            display_name: String::new(),
            gateway_service_account: None,
            labels,
        }
    }

    fn gateway(api_config: &str, state: &str, labels: BTreeMap<String, String>) -> Gateway {
        Gateway {
            name: "projects/p/locations/us-central1/gateways/x".into(),
            api_config: api_config.into(),
            state: state.into(),
            default_hostname: "x.gateway.dev".into(),
            labels,
        }
    }

    fn ours() -> BTreeMap<String, String> {
        labels_of("team-b")
    }

    #[test]
    fn nothing_there_creates_the_api() {
        let decision = decide(&plan(), &Observed::default());
        assert!(
            matches!(decision, Decision::Act { action: Action::CreateApi, config_active: false, .. }),
            "{decision:?}"
        );
    }

    #[test]
    fn each_step_follows_from_what_is_there() {
        let plan = plan();
        let active = plan.config_name();
        let observed =
            |config: Option<ApiConfig>, gateway: Option<Gateway>| Observed { api: Some(api(ours())), config, gateway };
        let step = |o: &Observed| decide(&plan, o);
        assert!(matches!(step(&observed(None, None)), Decision::Act { action: Action::CreateConfig, .. }));
        let failed = observed(Some(config(&plan, "FAILED", ours())), None);
        assert!(matches!(step(&failed), Decision::Act { action: Action::DeleteFailedConfig, .. }));
        let creating = observed(Some(config(&plan, "CREATING", ours())), None);
        assert!(matches!(step(&creating), Decision::Wait { config_active: false, .. }));
        let ready = || Some(config(&plan, "ACTIVE", ours()));
        assert!(matches!(
            step(&observed(ready(), None)),
            Decision::Act { action: Action::CreateGateway, config_active: true, .. }
        ));
        let elsewhere =
            observed(ready(), Some(gateway("projects/p/locations/global/apis/x/configs/old", "ACTIVE", ours())));
        assert_eq!(
            step(&elsewhere),
            Decision::Act {
                action: Action::MoveGateway { previous_config_id: Some("old".into()) },
                reason: reasons::GATEWAY_UPDATING,
                message: format!("moving gateway {} to {}", plan.gateway_id, plan.config_id),
                config_active: true,
            }
        );
        let updating = observed(ready(), Some(gateway(&active, "UPDATING", ours())));
        assert!(matches!(step(&updating), Decision::Wait { config_active: true, .. }));
        let serving = observed(ready(), Some(gateway(&active, "ACTIVE", ours())));
        assert_eq!(
            step(&serving),
            Decision::Done { managed_service: "x.apigateway.p.cloud.goog".into(), hostname: "x.gateway.dev".into() }
        );
    }

    #[test]
    fn another_namespaces_api_config_or_gateway_is_a_conflict_and_nothing_is_done() {
        let plan = plan();
        let theirs = labels_of("team-a");
        let active = plan.config_name();
        let cases = [
            (
                Observed { api: Some(api(theirs.clone())), ..Observed::default() },
                "API projects/p/locations/global/apis/x",
            ),
            (
                Observed {
                    api: Some(api(ours())),
                    config: Some(config(&plan, "ACTIVE", theirs.clone())),
                    gateway: None,
                },
                "API config ",
            ),
            (
                Observed { gateway: Some(gateway(&active, "ACTIVE", theirs.clone())), ..Observed::default() },
                "gateway projects/p/locations/us-central1/gateways/x",
            ),
            (
                Observed {
                    api: Some(api(ours())),
                    config: Some(config(&plan, "ACTIVE", ours())),
                    gateway: Some(gateway(&active, "ACTIVE", BTreeMap::new())),
                },
                "gateway ",
            ),
        ];
        for (observed, resource) in cases {
            match decide(&plan, &observed) {
                Decision::Conflict { resource: found } => assert!(found.starts_with(resource), "{found}"),
                other => panic!("{resource}: expected a conflict, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_label_set_without_ours_or_with_another_name_is_not_ours() {
        let owner = Owner::of(&gateway_config("team-b"));
        assert!(owner.owns(&ours()));
        let mut extra = ours();
        extra.insert("team".into(), "b".into());
        assert!(owner.owns(&extra), "labels of someone's own beside ours are fine");
        let mut renamed = ours();
        renamed.insert("gatewayconfig".into(), "payments".into());
        assert!(!owner.owns(&renamed));
        let mut unmanaged = ours();
        unmanaged.remove("managed-by");
        assert!(!owner.owns(&unmanaged));
    }

    #[test]
    fn deletion_touches_only_what_is_ours_gateway_first_then_configs_then_the_api() {
        let owner = Owner::of(&gateway_config("team-b"));
        let plan = plan();
        let named = |id: &str, labels: BTreeMap<String, String>, state: &str| ApiConfig {
            name: format!("projects/p/locations/global/apis/x/configs/{id}"),
            ..config(&plan, state, labels)
        };
        let everything = ObservedForDeletion {
            gateway: Some(gateway("c", "ACTIVE", ours())),
            api: Some(api(ours())),
            configs: vec![named("one", ours(), "ACTIVE")],
        };
        assert_eq!(decide_deletion(&owner, &everything), Deletion::Gateway);
        let no_gateway = ObservedForDeletion { gateway: None, ..everything.clone() };
        assert_eq!(decide_deletion(&owner, &no_gateway), Deletion::Config { id: "one".into() });
        let deleting = ObservedForDeletion { configs: vec![named("one", ours(), "DELETING")], ..no_gateway.clone() };
        assert_eq!(decide_deletion(&owner, &deleting), Deletion::Wait);
        let only_api = ObservedForDeletion { configs: vec![], ..no_gateway.clone() };
        assert_eq!(decide_deletion(&owner, &only_api), Deletion::Api);
        assert_eq!(decide_deletion(&owner, &ObservedForDeletion::default()), Deletion::Done);

        let theirs = labels_of("team-a");
        let foreign = ObservedForDeletion {
            gateway: Some(gateway("c", "ACTIVE", theirs.clone())),
            api: Some(api(theirs.clone())),
            configs: vec![named("theirs", theirs.clone(), "ACTIVE")],
        };
        assert_eq!(decide_deletion(&owner, &foreign), Deletion::Done, "someone else's gateway, configs and API stay");
        let ours_with_theirs = ObservedForDeletion {
            gateway: None,
            api: Some(api(ours())),
            configs: vec![named("theirs", theirs, "ACTIVE")],
        };
        assert_eq!(decide_deletion(&owner, &ours_with_theirs), Deletion::Done, "our API stays while it holds theirs");
    }

    #[test]
    fn a_gateway_on_no_config_moves_with_nothing_to_keep_for_rollback() {
        let plan = plan();
        let observed = Observed {
            api: Some(api(ours())),
            config: Some(config(&plan, "ACTIVE", ours())),
            gateway: Some(gateway("", "ACTIVE", ours())),
        };
        assert!(matches!(
            decide(&plan, &observed),
            Decision::Act { action: Action::MoveGateway { previous_config_id: None }, .. }
        ));
    }

    #[test]
    fn ownership_is_checked_before_any_step_even_a_finished_one() {
        let plan = plan();
        let active = plan.config_name();
        let mut served = Observed {
            api: Some(api(ours())),
            config: Some(config(&plan, "ACTIVE", ours())),
            gateway: Some(gateway(&active, "ACTIVE", ours())),
        };
        assert!(matches!(decide(&plan, &served), Decision::Done { .. }));
        if let Some(api) = served.api.as_mut() {
            api.labels = labels_of("team-a");
        }
        assert_eq!(
            decide(&plan, &served),
            Decision::Conflict { resource: "API projects/p/locations/global/apis/x".into() },
            "someone relabelled the API: the operator stops touching anything"
        );
    }

    #[test]
    fn someone_elses_gateway_under_our_id_stays_and_our_configs_still_go() {
        let owner = Owner::of(&gateway_config("team-b"));
        let plan = plan();
        let ours_config = ApiConfig {
            name: "projects/p/locations/global/apis/x/configs/mine".into(),
            ..config(&plan, "ACTIVE", ours())
        };
        let observed = ObservedForDeletion {
            gateway: Some(gateway("c", "ACTIVE", labels_of("team-a"))),
            api: Some(api(ours())),
            configs: vec![ours_config],
        };
        assert_eq!(decide_deletion(&owner, &observed), Deletion::Config { id: "mine".into() });
    }
}
