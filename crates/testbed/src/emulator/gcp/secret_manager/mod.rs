//! Google Cloud Secret Manager v1 over REST: secrets, versions, aliases, `latest`, payload
//! CRC32C, states and etags, Pub/Sub topics and rotation schedules, for global
//! (`projects/P/secrets/S`) and regional (`projects/P/locations/L/secrets/S`) secrets alike.
//!
//! - [`names`]: resource names and which REST method a request calls;
//! - [`store`]: the resource model and the rules of the real API;
//! - [`rotation`]: rotation schedules and their rules;
//! - [`events`]: the notifications each change sends to the secret's topics;
//! - [`wire`]: the JSON of requests and resources;
//! - [`routes`]: one handler per method, `getIamPolicy` and `setIamPolicy` included (a secret
//!   keeps its own IAM policy and loses it when deleted).
//!
//! Nothing here logs or prints: payloads only leave as the base64 of an `:access` answer, never
//! in a notification.

mod events;
mod names;
mod rotation;
mod routes;
mod store;
mod wire;

use super::iam::Policy;
use super::rest::{self, Query};
use super::rpc::{self, RpcError};
use hyper::Method;
use serde_json::Value;

pub(super) use events::Notification;
pub(super) use names::Call;
pub(super) use store::Store;
pub use store::VersionState;

use names::SecretName;
use rotation::Rotation;
use store::{Payload, Replication, SecretFields, SecretUpdate};

/// Serves one call on the store at the emulator's time `now`.
pub(super) fn handle(
    store: &mut Store,
    call: &Call,
    query: &Query,
    body: &[u8],
    now: jiff::Timestamp,
) -> Result<Value, RpcError> {
    routes::handle(store, call, query, body, now)
}

/// The notifications the calls since the last time owe the secrets' topics, stamped `now`.
pub(super) fn take_notifications(store: &mut Store, now: jiff::Timestamp) -> Vec<Notification> {
    events::notifications(store, now)
}

/// Applies the `wrong_checksum` fault to an answer (only `:access` answers carry a checksum).
pub(super) fn corrupt_checksum(answer: &mut Value) {
    wire::corrupt_checksum(answer);
}

/// Creates a global secret with automatic replication, as `secrets.create` would.
pub(super) fn create_secret(store: &mut Store, project: &str, id: &str) -> Result<(), RpcError> {
    let name = SecretName::global(project, id);
    let created =
        store.create_secret(name, Some(Replication::automatic()), SecretFields::default(), jiff::Timestamp::now());
    created.map(|_| ())
}

/// Adds an enabled version, creating the secret (automatic replication) when it is missing. No
/// API validation: tests may seed any id and payload size.
pub(super) fn add_version(store: &mut Store, project: &str, id: &str, data: &[u8]) -> u64 {
    store.seed_version(SecretName::global(project, id), Payload::new(data.to_vec()))
}

/// Moves a version to `state` with the rules of `:enable`, `:disable` and `:destroy`.
pub(super) fn set_version_state(
    store: &mut Store,
    project: &str,
    id: &str,
    version: u64,
    state: VersionState,
) -> Result<(), RpcError> {
    let transition = match state {
        VersionState::Enabled => names::Transition::Enable,
        VersionState::Disabled => names::Transition::Disable,
        VersionState::Destroyed => names::Transition::Destroy,
    };
    let name = SecretName::global(project, id).version(version);
    store.change_version(&name, transition, None).map(|_| ())
}

/// Points `alias` at `version`, as a `versionAliases` patch would.
pub(super) fn set_alias(store: &mut Store, project: &str, id: &str, alias: &str, version: u64) -> Result<(), RpcError> {
    store.set_alias(&SecretName::global(project, id), alias, version)
}

/// Sets the topics of a global secret (creating it when missing), as a `topics` patch would:
/// added topics get their test message, then every topic hears of the update. At most 10 names
/// of the form `projects/P/topics/T`.
pub(super) fn set_topics(store: &mut Store, project: &str, id: &str, topics: &[&str]) -> Result<(), RpcError> {
    let name = SecretName::global(project, id);
    store.insert_secret(name.clone(), Some(Replication::automatic()), SecretFields::default());
    let topics = topics.iter().map(|topic| (*topic).to_owned()).collect();
    let update = SecretUpdate { topics: Some(topics), ..SecretUpdate::default() };
    store.update_secret(&name, update, None, jiff::Timestamp::now()).map(|_| ())
}

/// Sets the rotation schedule of a global secret without the API's checks (any time, even a past
/// one; no topic needed), as a `rotation` patch would: the topics hear of the update.
pub(super) fn set_rotation(
    store: &mut Store,
    project: &str,
    id: &str,
    next_rotation_time: jiff::Timestamp,
    rotation_period: Option<u64>,
) -> Result<(), RpcError> {
    let rotation = Rotation { next_rotation_time: Some(next_rotation_time), rotation_period };
    store.set_rotation(&SecretName::global(project, id), Some(rotation))
}

/// Tells the secrets whose next rotation time has come at `now` to rotate; answers how many.
pub(super) fn fire_due_rotations(store: &mut Store, now: jiff::Timestamp) -> usize {
    store.fire_due_rotations(now)
}

/// The name of the secret `name` is, if it is one (`projects/P[/locations/L]/secrets/S`).
fn secret_name(name: &str) -> Option<SecretName> {
    match Call::parse(&Method::GET, name)? {
        Call::GetSecret(name) => Some(name),
        _ => None,
    }
}

/// Whether the policy of secret `name` grants `permission` to `principal`; `None` when `name` is
/// not a secret that exists.
pub(super) fn policy_allows(store: &Store, name: &str, principal: &str, permission: &str) -> Option<bool> {
    let secret = store.secret(&secret_name(name)?).ok()?;
    Some(secret.policy.allows(principal, permission))
}

/// Grants `role` to `member` on secret `name`, creating the secret (automatic replication) when
/// it is missing; `false` when `name` is not a secret's name.
pub(super) fn add_iam_binding(store: &mut Store, name: &str, role: &str, member: &str) -> bool {
    let Some(name) = secret_name(name) else { return false };
    let replication = (!name.parent.is_regional()).then(Replication::automatic);
    store.insert_secret(name, replication, SecretFields::default()).policy.add(role, member);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeding_a_version_creates_the_secret_and_numbers_from_one() {
        let mut store = Store::default();
        assert_eq!(add_version(&mut store, "p", "db", b"one"), 1);
        assert_eq!(add_version(&mut store, "p", "db", b"two"), 2);
        assert_eq!(create_secret(&mut store, "p", "db").map_err(|e| e.code), Err(rpc::Code::AlreadyExists));
    }

    #[test]
    fn seeded_state_and_alias_follow_the_api_rules() {
        let mut store = Store::default();
        add_version(&mut store, "p", "db", b"one");
        assert_eq!(set_alias(&mut store, "p", "db", "current", 1), Ok(()));
        assert_eq!(set_version_state(&mut store, "p", "db", 1, VersionState::Destroyed), Ok(()));
        let enable = set_version_state(&mut store, "p", "db", 1, VersionState::Enabled);
        assert_eq!(enable.map_err(|e| e.code), Err(rpc::Code::FailedPrecondition));
        assert_eq!(set_alias(&mut store, "p", "db", "next", 2).map_err(|e| e.code), Err(rpc::Code::InvalidArgument));
    }
}
