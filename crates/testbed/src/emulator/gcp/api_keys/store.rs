//! Every key and operation, and the rules between them. Pure: callers pass the time and the
//! generated key strings. A change is checked when it is asked for and applied when its
//! operation completes (checked again then), so a failed operation changes nothing.

use super::clock::Now;
use super::model::{Key, Restrictions};
use super::rpc::{self, RpcError};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a deleted key can be undeleted before it is purged.
pub const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// The fields a patch changes; `None` leaves a field alone.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Patch {
    pub display_name: Option<Option<String>>,
    pub restrictions: Option<Restrictions>,
    pub annotations: Option<Map<String, Value>>,
}

/// What completing an operation does.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Create(Box<Key>),
    Update(String, Patch),
    Delete(String),
    Undelete(String),
}

impl Action {
    fn target(&self) -> &str {
        match self {
            Self::Create(key) => &key.name,
            Self::Update(name, _) | Self::Delete(name) | Self::Undelete(name) => name,
        }
    }
}

/// One long-running operation, `operations/akmf.p7-N-UID` as Google names them.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    pub name: String,
    pub due: std::time::Instant,
    pub action: Action,
    /// An injected failure it completes with instead of applying its action.
    pub failure: Option<RpcError>,
    /// The key (typed) or the error, once done.
    pub result: Option<Result<Value, RpcError>>,
}

impl Operation {
    pub fn to_json(&self) -> Value {
        rpc::operation_json(&self.name, None, self.result.as_ref())
    }
}

/// The emulator's API Keys state, keys by full name.
#[derive(Debug)]
pub struct Store {
    keys: BTreeMap<String, Key>,
    operations: Vec<Operation>,
    delay: Duration,
}

impl Default for Store {
    fn default() -> Self {
        Self { keys: BTreeMap::new(), operations: Vec::new(), delay: Duration::from_millis(100) }
    }
}

impl Store {
    pub fn set_delay(&mut self, delay: Duration) {
        self.delay = delay;
    }

    /// Completes the operations due at `now` in start order, and purges keys deleted longer
    /// ago than [`RETENTION`].
    pub fn settle(&mut self, now: Now) {
        for index in 0..self.operations.len() {
            if self.operations[index].result.is_none() && self.operations[index].due <= now.instant {
                let operation = &self.operations[index];
                let result = match operation.failure.clone() {
                    Some(failure) => Err(failure),
                    None => apply(&mut self.keys, operation.action.clone(), now.wall),
                };
                self.operations[index].result = Some(result);
            }
        }
        let retention = jiff::SignedDuration::try_from(RETENTION).unwrap_or_default();
        self.keys.retain(|_, key| {
            key.delete_time.is_none_or(|deleted| deleted.checked_add(retention).is_ok_and(|end| end > now.wall))
        });
    }

    /// A key, deleted or not, or `NOT_FOUND`.
    pub fn key(&self, name: &str) -> Result<&Key, RpcError> {
        self.keys.get(name).ok_or_else(|| not_found(name))
    }

    /// The keys whose names start with `prefix`, by name.
    pub fn keys(&self, prefix: &str) -> Vec<&Key> {
        self.keys.range(prefix.to_owned()..).take_while(|(name, _)| name.starts_with(prefix)).map(|(_, k)| k).collect()
    }

    /// The key holding `key_string`, deleted or not.
    pub fn find_by_string(&self, key_string: &str) -> Option<&Key> {
        self.keys.values().find(|key| key.key_string.0 == key_string)
    }

    pub fn operation(&self, name: &str) -> Result<&Operation, RpcError> {
        let found = self.operations.iter().find(|op| op.name == name);
        found.ok_or_else(|| RpcError::not_found(format!("Operation '{name}' not found.")))
    }

    /// Checks `action` against the keys as they are and as running operations will leave them,
    /// then starts its operation and answers it.
    pub fn start(&mut self, action: Action, failure: Option<RpcError>, now: Now) -> Result<Value, RpcError> {
        let busy = self.operations.iter().any(|op| op.result.is_none() && op.action.target() == action.target());
        match (&action, busy) {
            (Action::Create(key), true) => return Err(already_exists(&key.name)),
            (_, true) => return Err(RpcError::aborted("Another operation on this key is in progress.")),
            (action, false) => check(&self.keys, action)?,
        }
        let name = format!("operations/akmf.p7-{}-{}", self.operations.len() + 1, now.wall.as_millisecond());
        let due = now.instant + self.delay;
        self.operations.push(Operation { name, due, action, failure, result: None });
        self.settle(now);
        Ok(self.operations.last().map(Operation::to_json).unwrap_or_default())
    }
}

/// Whether `action` may apply to `keys` now.
fn check(keys: &BTreeMap<String, Key>, action: &Action) -> Result<(), RpcError> {
    match action {
        Action::Create(key) if keys.contains_key(&key.name) => Err(already_exists(&key.name)),
        Action::Create(_) => Ok(()),
        Action::Update(name, _) | Action::Delete(name) => match keys.get(name) {
            None => Err(not_found(name)),
            Some(key) if key.delete_time.is_some() => {
                Err(RpcError::failed_precondition(format!("API key '{name}' is deleted.")))
            }
            Some(_) => Ok(()),
        },
        Action::Undelete(name) => match keys.get(name) {
            None => Err(not_found(name)),
            Some(key) if key.delete_time.is_none() => {
                Err(RpcError::failed_precondition(format!("API key '{name}' is not deleted.")))
            }
            Some(_) => Ok(()),
        },
    }
}

/// Applies a completed operation's action and answers the key it leaves.
fn apply(keys: &mut BTreeMap<String, Key>, action: Action, now: jiff::Timestamp) -> Result<Value, RpcError> {
    check(keys, &action)?;
    let key = match action {
        Action::Create(key) => {
            let mut key = *key;
            (key.create_time, key.update_time) = (now, now);
            keys.entry(key.name.clone()).or_insert(key)
        }
        Action::Update(name, patch) => {
            let key = keys.get_mut(&name).ok_or_else(|| not_found(&name))?;
            if let Some(display_name) = patch.display_name {
                key.display_name = display_name;
            }
            if let Some(restrictions) = patch.restrictions {
                key.restrictions = restrictions;
            }
            if let Some(annotations) = patch.annotations {
                key.annotations = annotations;
            }
            touch(key, now)
        }
        Action::Delete(name) => {
            let key = keys.get_mut(&name).ok_or_else(|| not_found(&name))?;
            key.delete_time = Some(now);
            touch(key, now)
        }
        Action::Undelete(name) => {
            let key = keys.get_mut(&name).ok_or_else(|| not_found(&name))?;
            key.delete_time = None;
            touch(key, now)
        }
    };
    Ok(key.to_typed_json())
}

fn touch(key: &mut Key, now: jiff::Timestamp) -> &mut Key {
    key.update_time = now;
    key.generation += 1;
    key
}

fn not_found(name: &str) -> RpcError {
    RpcError::not_found(format!("API key '{name}' not found."))
}

fn already_exists(name: &str) -> RpcError {
    RpcError::already_exists(format!("API key '{name}' already exists."))
}
