//! Every API, config, gateway and operation, and the rules that tie them: one operation at a
//! time per resource, no deleting what something still uses, and state changes when an
//! operation completes.

use super::model::{Api, ApiConfig, Gateway, Meta, Patch, State, View, api_json, config_json, gateway_json};
use super::operations::{Now, Operation, Plan, Target, Verb, empty, typed};
use super::rpc::RpcError;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long an operation runs unless [`Store::set_delay`] says otherwise.
pub const DEFAULT_OPERATION_DELAY: Duration = Duration::from_millis(100);

/// A resource to create.
#[derive(Clone, Debug, PartialEq)]
pub enum Resource {
    Api(Api),
    Config(ApiConfig),
    Gateway(Gateway),
}

/// The emulator's API Gateway state. Maps are keyed by full resource name.
#[derive(Debug)]
pub struct Store {
    apis: BTreeMap<String, Api>,
    configs: BTreeMap<String, ApiConfig>,
    gateways: BTreeMap<String, Gateway>,
    /// Operation `operation-N` is at index N - 1; done ones are kept so clients can read them.
    operations: Vec<Operation>,
    /// Names of removed resources, in the order their delete operations completed.
    deletions: Vec<String>,
    delay: Duration,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            apis: BTreeMap::new(),
            configs: BTreeMap::new(),
            gateways: BTreeMap::new(),
            operations: Vec::new(),
            deletions: Vec::new(),
            delay: DEFAULT_OPERATION_DELAY,
        }
    }
}

impl Store {
    /// How long operations started from now on run.
    pub fn set_delay(&mut self, delay: Duration) {
        self.delay = delay;
    }

    /// Completes every operation due at `now`, earliest first (ties in start order), so what
    /// a request sees is as if they had completed on time.
    pub fn settle(&mut self, now: Now) {
        let mut due: Vec<usize> = (0..self.operations.len()).filter(|&i| self.operations[i].is_due(now)).collect();
        due.sort_by_key(|&i| (self.operations[i].due.instant, i));
        for index in due {
            self.complete(index);
        }
    }

    /// The API `name`, or `NOT_FOUND`.
    pub fn api(&self, name: &str) -> Result<&Api, RpcError> {
        self.apis.get(name).ok_or_else(|| not_found(name))
    }

    /// The config `name`, or `NOT_FOUND`.
    pub fn config(&self, name: &str) -> Result<&ApiConfig, RpcError> {
        self.configs.get(name).ok_or_else(|| not_found(name))
    }

    /// The gateway `name`, or `NOT_FOUND`.
    pub fn gateway(&self, name: &str) -> Result<&Gateway, RpcError> {
        self.gateways.get(name).ok_or_else(|| not_found(name))
    }

    /// The operation `name`, or `NOT_FOUND`.
    pub fn operation(&self, name: &str) -> Result<&Operation, RpcError> {
        self.operations.iter().find(|op| op.name == name).ok_or_else(|| not_found(name))
    }

    /// The APIs whose names start with `prefix`, by name.
    pub fn apis(&self, prefix: &str) -> Vec<&Api> {
        with_prefix(&self.apis, prefix)
    }

    /// The configs whose names start with `prefix`, by name.
    pub fn configs(&self, prefix: &str) -> Vec<&ApiConfig> {
        with_prefix(&self.configs, prefix)
    }

    /// The gateways whose names start with `prefix`, by name.
    pub fn gateways(&self, prefix: &str) -> Vec<&Gateway> {
        with_prefix(&self.gateways, prefix)
    }

    /// The operations whose names start with `prefix`, oldest first.
    pub fn operations(&self, prefix: &str) -> Vec<&Operation> {
        self.operations.iter().filter(|op| op.name.starts_with(prefix)).collect()
    }

    /// Names of the resources removed so far, in order.
    pub fn deletions(&self) -> &[String] {
        &self.deletions
    }

    /// Adds a `CREATING` resource and starts its create operation; `ALREADY_EXISTS` when the
    /// name is taken (whatever the state of the resource that has it).
    pub fn create(&mut self, resource: Resource, failure: Option<RpcError>, now: Now) -> Result<Value, RpcError> {
        let target = match &resource {
            Resource::Api(api) => Target::Api(api.meta.name.clone()),
            Resource::Config(config) => Target::Config(config.meta.name.clone()),
            Resource::Gateway(gateway) => Target::Gateway(gateway.meta.name.clone()),
        };
        if self.meta(&target).is_some() {
            return Err(RpcError::already_exists(format!("Resource '{}' already exists", target.name())));
        }
        let name = target.name().to_owned();
        match resource {
            Resource::Api(api) => {
                self.apis.insert(name, api);
            }
            Resource::Config(config) => {
                self.configs.insert(name, config);
            }
            Resource::Gateway(gateway) => {
                self.gateways.insert(name, gateway);
            }
        }
        let plan = Plan { failure, previous: State::Creating, patch: Patch::default() };
        Ok(self.start(target, Verb::Create, plan, now))
    }

    /// Moves a resource to `UPDATING` and starts an operation that applies `patch`.
    pub fn update(
        &mut self,
        target: Target,
        patch: Patch,
        failure: Option<RpcError>,
        now: Now,
    ) -> Result<Value, RpcError> {
        let previous = self.claim(&target, State::Updating)?;
        Ok(self.start(target, Verb::Update, Plan { failure, previous, patch }, now))
    }

    /// Moves a resource to `DELETING` and starts the operation that removes it; an API with
    /// configs and a config that a gateway uses (or is being moved to) cannot be deleted.
    pub fn delete(&mut self, target: Target, failure: Option<RpcError>, now: Now) -> Result<Value, RpcError> {
        let name = target.name();
        let meta = self.meta(&target).ok_or_else(|| not_found(name))?;
        check_idle(meta)?;
        if let Some(user) = self.users(&target).first() {
            let what = match target {
                Target::Api(_) => "it still has API configs",
                _ => "a gateway uses it",
            };
            return Err(RpcError::failed_precondition(format!(
                "Resource '{name}' cannot be deleted: {what} ('{user}'). Delete them first."
            )));
        }
        let previous = self.claim(&target, State::Deleting)?;
        Ok(self.start(target, Verb::Delete, Plan { failure, previous, patch: Patch::default() }, now))
    }

    /// What keeps `target` from being deleted: an API's configs, or the gateways that serve a
    /// config or are being updated to it.
    fn users(&self, target: &Target) -> Vec<String> {
        match target {
            Target::Api(name) => self.configs(&format!("{name}/")).iter().map(|c| c.meta.name.clone()).collect(),
            Target::Config(name) => {
                let serving = self.gateways.values().filter(|g| &g.api_config == name).map(|g| g.meta.name.clone());
                let moving = self
                    .operations
                    .iter()
                    .filter(|op| op.result.is_none() && op.plan.patch.api_config.as_ref() == Some(name));
                serving.chain(moving.map(|op| op.target.name().to_owned())).collect()
            }
            Target::Gateway(_) => Vec::new(),
        }
    }

    /// Sets the state of an idle resource and returns the one it had.
    fn claim(&mut self, target: &Target, state: State) -> Result<State, RpcError> {
        let meta = self.meta_mut(target).ok_or_else(|| not_found(target.name()))?;
        check_idle(meta)?;
        Ok(std::mem::replace(&mut meta.state, state))
    }

    fn start(&mut self, target: Target, verb: Verb, plan: Plan, now: Now) -> Value {
        let operation = Operation::start(self.operations.len() + 1, target, verb, plan, now, self.delay);
        let answer = operation.to_json();
        self.operations.push(operation);
        answer
    }

    /// Applies a due operation's plan and records its result.
    fn complete(&mut self, index: usize) {
        let Some(operation) = self.operations.get(index) else { return };
        let (target, verb, plan, end) =
            (operation.target.clone(), operation.verb, operation.plan.clone(), operation.due.wall);
        let result = match (verb, plan.failure) {
            (Verb::Delete, None) => {
                self.remove(&target);
                self.deletions.push(target.name().to_owned());
                Ok(empty())
            }
            (_, Some(error)) => {
                self.finish(&target, if verb == Verb::Create { State::Failed } else { plan.previous }, end);
                Err(error)
            }
            (_, None) => {
                self.apply(&target, &plan.patch);
                // A gateway moved to a working config serves again, whatever it did before.
                let state = match verb {
                    Verb::Update if plan.patch.api_config.is_none() => plan.previous,
                    _ => State::Active,
                };
                self.finish(&target, state, end);
                self.resource_json(&target).map(|resource| typed(&target, resource)).ok_or_else(|| {
                    RpcError::internal(format!("Resource '{}' disappeared during its operation", target.name()))
                })
            }
        };
        if let Some(operation) = self.operations.get_mut(index) {
            operation.result = Some(result);
        }
    }

    fn finish(&mut self, target: &Target, state: State, at: jiff::Timestamp) {
        if let Some(meta) = self.meta_mut(target) {
            meta.state = state;
            meta.update_time = at;
        }
    }

    fn apply(&mut self, target: &Target, patch: &Patch) {
        if let (Target::Gateway(name), Some(config)) = (target, &patch.api_config)
            && let Some(gateway) = self.gateways.get_mut(name)
        {
            gateway.api_config.clone_from(config);
        }
        if let Some(meta) = self.meta_mut(target) {
            patch.apply(meta);
        }
    }

    fn remove(&mut self, target: &Target) {
        match target {
            Target::Api(name) => {
                self.apis.remove(name);
            }
            Target::Config(name) => {
                self.configs.remove(name);
            }
            Target::Gateway(name) => {
                self.gateways.remove(name);
            }
        }
    }

    fn meta(&self, target: &Target) -> Option<&Meta> {
        match target {
            Target::Api(name) => self.apis.get(name).map(|r| &r.meta),
            Target::Config(name) => self.configs.get(name).map(|r| &r.meta),
            Target::Gateway(name) => self.gateways.get(name).map(|r| &r.meta),
        }
    }

    fn meta_mut(&mut self, target: &Target) -> Option<&mut Meta> {
        match target {
            Target::Api(name) => self.apis.get_mut(name).map(|r| &mut r.meta),
            Target::Config(name) => self.configs.get_mut(name).map(|r| &mut r.meta),
            Target::Gateway(name) => self.gateways.get_mut(name).map(|r| &mut r.meta),
        }
    }

    fn resource_json(&self, target: &Target) -> Option<Value> {
        match target {
            Target::Api(name) => self.apis.get(name).map(api_json),
            Target::Config(name) => self.configs.get(name).map(|c| config_json(c, View::Basic)),
            Target::Gateway(name) => self.gateways.get(name).map(gateway_json),
        }
    }
}

/// A resource whose operation is still running takes no other.
fn check_idle(meta: &Meta) -> Result<(), RpcError> {
    if meta.state.is_pending() {
        return Err(RpcError::failed_precondition(format!(
            "Resource '{}' is {}: wait for its operation to finish.",
            meta.name,
            meta.state.as_str()
        )));
    }
    Ok(())
}

fn with_prefix<'a, T>(map: &'a BTreeMap<String, T>, prefix: &str) -> Vec<&'a T> {
    map.range(prefix.to_owned()..).take_while(|(name, _)| name.starts_with(prefix)).map(|(_, r)| r).collect()
}

/// The real API's wording for a missing resource.
pub fn not_found(name: &str) -> RpcError {
    RpcError::not_found(format!("Resource '{name}' was not found"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: &str = "projects/p/locations/global/apis/a";

    fn api(name: &str, now: Now) -> Resource {
        Resource::Api(Api { meta: Meta::new(name.to_owned(), now.wall), managed_service: "s".into() })
    }

    fn gateway(config: &str, now: Now) -> Resource {
        let meta = Meta::new("projects/p/locations/us-east1/gateways/g".into(), now.wall);
        Resource::Gateway(Gateway { meta, api_config: config.into(), default_hostname: "h".into() })
    }

    #[test]
    fn operations_complete_in_the_order_they_are_due_not_the_order_they_started() {
        let now = Now::current();
        let mut store = Store::default();
        store.set_delay(Duration::from_secs(2));
        assert!(store.create(api(API, now), None, now).is_ok());
        store.set_delay(Duration::from_secs(1));
        assert!(store.create(api("projects/p/locations/global/apis/b", now), None, now).is_ok());
        store.settle(now.after(Duration::from_secs(1)));
        let states: Vec<&str> = store.apis("projects/p/").iter().map(|a| a.meta.state.as_str()).collect();
        assert_eq!(states, ["CREATING", "ACTIVE"]);
        store.settle(now.after(Duration::from_secs(2)));
        assert!(store.apis("projects/p/").iter().all(|a| a.meta.state == State::Active));
        assert!(store.operations("projects/p/locations/global/").iter().all(|op| op.result.is_some()));
    }

    #[test]
    fn a_config_a_gateway_is_being_moved_to_cannot_be_deleted() {
        let now = Now::current();
        let mut store = Store::default();
        let (v1, v2) = (format!("{API}/configs/v1"), format!("{API}/configs/v2"));
        for name in [&v1, &v2] {
            let meta = Meta::new(name.clone(), now.wall);
            let config =
                ApiConfig { meta, gateway_service_account: None, documents: Vec::new(), service_config_id: "x".into() };
            assert!(store.create(Resource::Config(config), None, now).is_ok());
        }
        assert!(store.create(gateway(&v1, now), None, now).is_ok());
        let later = now.after(DEFAULT_OPERATION_DELAY);
        store.settle(later);
        let gateway = Target::Gateway("projects/p/locations/us-east1/gateways/g".into());
        let patch = Patch { api_config: Some(v2.clone()), ..Patch::default() };
        assert!(store.update(gateway, patch, None, later).is_ok());
        for name in [v1, v2] {
            let refused = store.delete(Target::Config(name), None, later).map_err(|e| e.code.name());
            assert_eq!(refused, Err("FAILED_PRECONDITION"));
        }
    }

    #[test]
    fn a_missing_resource_is_not_found_for_every_verb() {
        let now = Now::current();
        let mut store = Store::default();
        let target = Target::Api(API.into());
        assert_eq!(store.delete(target.clone(), None, now).map_err(|e| e.http_status), Err(404));
        assert_eq!(store.update(target, Patch::default(), None, now).map_err(|e| e.http_status), Err(404));
        assert_eq!(store.api(API).map_err(|e| e.message.clone()), Err(format!("Resource '{API}' was not found")));
        assert!(store.operation("projects/p/locations/global/operations/operation-1").is_err());
    }
}
