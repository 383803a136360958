//! The resource model: secrets, their numbered versions and aliases, and the rules the real API
//! enforces on them (states, etags, `latest`, topics, rotation), with a log of the changes that
//! the secret's Pub/Sub topics are told about.

use super::Policy;
use super::names::{Parent, SecretName, Transition, VersionName, is_valid_secret_id};
use super::rotation::{self, Rotation, RotationUpdate};
use super::rpc::RpcError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// The largest payload the API accepts.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// The most Pub/Sub topics a secret may have.
pub const MAX_TOPICS: usize = 10;

/// The state of a secret version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VersionState {
    /// Readable with `:access`.
    Enabled,
    /// Kept, but `:access` fails until it is enabled again.
    Disabled,
    /// The payload is gone for good.
    Destroyed,
}

impl VersionState {
    /// The enum name in JSON, e.g. `ENABLED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "ENABLED",
            Self::Disabled => "DISABLED",
            Self::Destroyed => "DESTROYED",
        }
    }

    /// Parses `ENABLED`, `DISABLED` or `DESTROYED` in any case.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Enabled, Self::Disabled, Self::Destroyed]
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(text))
    }
}

/// Secret bytes. `Debug` shows only their length, so a payload never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Payload(Vec<u8>);

impl Payload {
    /// Wraps the bytes of a version.
    pub fn new(data: Vec<u8>) -> Self {
        Self(data)
    }

    /// The bytes, for `:access` answers only.
    pub fn data(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload(<{} bytes redacted>)", self.0.len())
    }
}

/// A replication policy: `{"automatic":{}}` or `{"userManaged":{"replicas":[{"location":...}]}}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Replication {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic: Option<Automatic>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_managed: Option<UserManaged>,
}

/// Google chooses where the secret is stored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Automatic {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_managed_encryption: Option<Value>,
}

/// The caller lists the locations.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserManaged {
    #[serde(default)]
    pub replicas: Vec<Replica>,
}

/// One location of a user-managed policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Replica {
    #[serde(default)]
    pub location: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_managed_encryption: Option<Value>,
}

impl Replication {
    /// The automatic policy gcloud sends by default.
    pub fn automatic() -> Self {
        Self { automatic: Some(Automatic::default()), user_managed: None }
    }

    /// Exactly one policy, and a user-managed one lists at least one location.
    pub fn validate(&self) -> Result<(), RpcError> {
        match (&self.automatic, &self.user_managed) {
            (Some(_), None) => Ok(()),
            (None, Some(managed)) if managed.replicas.is_empty() => {
                Err(RpcError::invalid_argument("Secret.replication.user_managed.replicas must not be empty."))
            }
            (None, Some(managed)) if managed.replicas.iter().any(|r| r.location.is_empty()) => {
                Err(RpcError::invalid_argument("Secret.replication.user_managed.replicas.location is required."))
            }
            (None, Some(_)) => Ok(()),
            _ => {
                Err(RpcError::invalid_argument("Secret.replication must set exactly one of automatic or user_managed."))
            }
        }
    }
}

/// The fields a caller sets on a secret (on create, or through an update mask).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SecretFields {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Pub/Sub topic names, `projects/P/topics/T`.
    pub topics: Vec<String>,
    pub version_aliases: BTreeMap<String, u64>,
    pub rotation: Option<Rotation>,
    /// Fields kept and echoed as given (`expireTime`, `versionDestroyTtl`,
    /// `customerManagedEncryption`), keyed by their JSON name.
    pub echoed: Map<String, Value>,
}

/// A change through an update mask: `Some` for each field named in it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SecretUpdate {
    pub labels: Option<BTreeMap<String, String>>,
    pub annotations: Option<BTreeMap<String, String>>,
    pub topics: Option<Vec<String>>,
    pub version_aliases: Option<BTreeMap<String, u64>>,
    /// A new policy for versions added from now on.
    pub replication: Option<Replication>,
    pub rotation: RotationUpdate,
    /// Echoed fields to set (`Some`) or clear (`None`).
    pub echoed: Vec<(String, Option<Value>)>,
}

/// What a call changed, in order, with the resources as the change left them: the secret's
/// topics are told (see `events`). Kept only for secrets with topics, and drained after every
/// call.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A topic was added to a secret (its test message).
    TopicConfigured(String),
    /// The secret, without its versions and policy.
    Secret(SecretChange, Box<Secret>),
    /// The secret as above, and the version without its payload.
    Version(VersionChange, Box<Secret>, Box<Version>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretChange {
    Created,
    Updated,
    Deleted,
    /// Its next rotation time came (the snapshot already has the next one).
    Rotated,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionChange {
    Added,
    /// Moved to this state.
    Moved(VersionState),
}

impl Change {
    fn of_secret(change: SecretChange, secret: &Secret) -> Self {
        Self::Secret(change, Box::new(snapshot(secret)))
    }

    fn of_version(change: VersionChange, secret: &Secret, version: &Version) -> Self {
        let version = Version { payload: None, ..version.clone() };
        Self::Version(change, Box::new(snapshot(secret)), Box::new(version))
    }
}

/// A secret's fields, without what notifications never carry (versions, policy).
fn snapshot(secret: &Secret) -> Secret {
    Secret {
        name: secret.name.clone(),
        replication: secret.replication.clone(),
        create_time: secret.create_time.clone(),
        etag: secret.etag.clone(),
        fields: secret.fields.clone(),
        versions: BTreeMap::new(),
        policy: Policy::default(),
    }
}

/// One secret version.
#[derive(Clone, Debug, PartialEq)]
pub struct Version {
    pub number: u64,
    /// The full name with the number, `.../versions/N`.
    pub name: String,
    pub create_time: String,
    pub state: VersionState,
    pub destroy_time: Option<String>,
    pub etag: String,
    /// `None` once destroyed.
    pub payload: Option<Payload>,
    /// Whether the version was added with a `dataCrc32c`.
    pub client_checksum: bool,
    /// The secret's policy when the version was added (none for regional secrets).
    pub replication: Option<Replication>,
}

/// One secret with its versions.
#[derive(Clone, Debug, PartialEq)]
pub struct Secret {
    pub name: SecretName,
    pub replication: Option<Replication>,
    pub create_time: String,
    pub etag: String,
    pub fields: SecretFields,
    pub versions: BTreeMap<u64, Version>,
    /// Who may do what with the secret; deleted with it.
    pub policy: Policy,
}

impl Secret {
    /// The number that `version` names: a number, `latest` (the most recently created version,
    /// whatever its state) or one of the secret's aliases.
    pub fn resolve(&self, version: &str) -> Option<u64> {
        let number = match version {
            "latest" => return self.versions.keys().next_back().copied(),
            _ if version.bytes().all(|b| b.is_ascii_digit()) => version.parse().ok()?,
            alias => *self.fields.version_aliases.get(alias)?,
        };
        self.versions.contains_key(&number).then_some(number)
    }
}

/// Every secret of the emulator.
#[derive(Debug, Default)]
pub struct Store {
    secrets: BTreeMap<SecretName, Secret>,
    etags: EtagClock,
    changes: Vec<Change>,
}

impl Store {
    /// Creates a secret, checking the id, the replication policy, topics and rotation (at `now`)
    /// and that it is new.
    pub fn create_secret(
        &mut self,
        name: SecretName,
        replication: Option<Replication>,
        fields: SecretFields,
        now: jiff::Timestamp,
    ) -> Result<&Secret, RpcError> {
        if !is_valid_secret_id(&name.secret) {
            return Err(RpcError::invalid_argument(format!(
                "Secret id [{}] is invalid: it must be 1 to 255 characters from [a-zA-Z0-9_-].",
                name.secret
            )));
        }
        validate_replication(&name.parent, replication.as_ref())?;
        if !fields.version_aliases.is_empty() {
            return Err(RpcError::invalid_argument("Secret.version_aliases cannot name versions of a new secret."));
        }
        validate_topics(&fields.topics)?;
        let sets_next_time = fields.rotation.is_some_and(|r| r.next_rotation_time.is_some());
        rotation::validate(fields.rotation.as_ref(), &fields.topics, sets_next_time, now)?;
        if self.secrets.contains_key(&name) {
            return Err(RpcError::already_exists(format!("Secret [{name}] already exists.")));
        }
        // Google tries each topic with a test message before it creates the secret.
        self.changes.extend(fields.topics.iter().cloned().map(Change::TopicConfigured));
        self.insert_secret(name.clone(), replication, fields);
        let secret = self.secrets.get(&name).ok_or_else(|| secret_not_found(&name))?;
        record(&mut self.changes, secret, |secret| Change::of_secret(SecretChange::Created, secret));
        Ok(secret)
    }

    /// Inserts a secret without checks (the direct helpers seed state with it).
    pub fn insert_secret(
        &mut self,
        name: SecretName,
        replication: Option<Replication>,
        fields: SecretFields,
    ) -> &mut Secret {
        let secret = Secret {
            name: name.clone(),
            replication,
            create_time: now(),
            etag: self.etags.next(),
            fields,
            versions: BTreeMap::new(),
            policy: Policy::default(),
        };
        self.secrets.entry(name).or_insert(secret)
    }

    /// The secret `name`, or `NOT_FOUND`.
    pub fn secret(&self, name: &SecretName) -> Result<&Secret, RpcError> {
        self.secrets.get(name).ok_or_else(|| secret_not_found(name))
    }

    /// The policy of secret `name`, to change it, or `NOT_FOUND`.
    pub fn policy_mut(&mut self, name: &SecretName) -> Result<&mut Policy, RpcError> {
        self.secrets.get_mut(name).map(|secret| &mut secret.policy).ok_or_else(|| secret_not_found(name))
    }

    /// The secrets of `parent`, ordered by name.
    pub fn secrets(&self, parent: &Parent) -> Vec<&Secret> {
        self.secrets.values().filter(|secret| &secret.name.parent == parent).collect()
    }

    /// Applies the fields of an update mask, after the etag precondition; topics and rotation
    /// are checked on the secret as the update leaves it, at `now`.
    pub fn update_secret(
        &mut self,
        name: &SecretName,
        mut update: SecretUpdate,
        etag: Option<&str>,
        now: jiff::Timestamp,
    ) -> Result<&Secret, RpcError> {
        let secret = self.secrets.get_mut(name).ok_or_else(|| secret_not_found(name))?;
        check_etag(etag, &secret.etag)?;
        if let Some(aliases) = &update.version_aliases {
            validate_aliases(secret, aliases)?;
        }
        let topics = update.topics.as_ref().unwrap_or(&secret.fields.topics);
        validate_topics(topics)?;
        let rotation = update.rotation.apply(secret.fields.rotation);
        rotation::validate(rotation.as_ref(), topics, update.rotation.sets_next_time(), now)?;
        if let Some(replication) = &update.replication {
            validate_replication(&name.parent, Some(replication))?;
        }
        let added: Vec<String> = topics.iter().filter(|topic| !secret.fields.topics.contains(topic)).cloned().collect();
        if let Some(replication) = update.replication.take() {
            secret.replication = Some(replication);
        }
        apply_update(&mut secret.fields, update);
        secret.fields.rotation = rotation;
        secret.etag = self.etags.next();
        self.changes.extend(added.into_iter().map(Change::TopicConfigured));
        record(&mut self.changes, secret, |secret| Change::of_secret(SecretChange::Updated, secret));
        Ok(secret)
    }

    /// Sets a secret's rotation policy without checks (the direct helpers seed state with it),
    /// as a patch of `rotation` would.
    pub fn set_rotation(&mut self, name: &SecretName, rotation: Option<Rotation>) -> Result<(), RpcError> {
        let secret = self.secrets.get_mut(name).ok_or_else(|| secret_not_found(name))?;
        secret.fields.rotation = rotation;
        secret.etag = self.etags.next();
        record(&mut self.changes, secret, |secret| Change::of_secret(SecretChange::Updated, secret));
        Ok(())
    }

    /// Tells every secret whose next rotation time has come at `now` to rotate, and moves its
    /// schedule on by its period (or ends it). One notification per secret and call: a secret
    /// several periods behind catches up one period per call. Answers how many rotated.
    pub fn fire_due_rotations(&mut self, now: jiff::Timestamp) -> usize {
        let mut rotated = 0;
        for secret in self.secrets.values_mut() {
            let Some(rotation) = secret.fields.rotation.filter(|r| r.is_due(now)) else { continue };
            secret.fields.rotation = rotation.advanced();
            secret.etag = self.etags.next();
            record(&mut self.changes, secret, |secret| Change::of_secret(SecretChange::Rotated, secret));
            rotated += 1;
        }
        rotated
    }

    /// Deletes a secret and all its versions, after the etag precondition.
    pub fn delete_secret(&mut self, name: &SecretName, etag: Option<&str>) -> Result<(), RpcError> {
        let secret = self.secret(name)?;
        check_etag(etag, &secret.etag)?;
        if let Some(secret) = self.secrets.remove(name) {
            record(&mut self.changes, &secret, |secret| Change::of_secret(SecretChange::Deleted, secret));
        }
        Ok(())
    }

    /// The changes since the last call, oldest first.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// Adds an enabled version with the next number.
    pub fn add_version(
        &mut self,
        name: &SecretName,
        payload: Payload,
        client_checksum: bool,
    ) -> Result<&Version, RpcError> {
        let secret = self.secrets.get_mut(name).ok_or_else(|| secret_not_found(name))?;
        let number = push_version(secret, self.etags.next(), payload, client_checksum).number;
        let version = secret.versions.get(&number).ok_or_else(|| version_not_found(&name.version(number)))?;
        record(&mut self.changes, secret, |secret| Change::of_version(VersionChange::Added, secret, version));
        Ok(version)
    }

    /// Adds an enabled version, creating the secret (automatic replication) when it is missing;
    /// no checks (the direct helpers seed state with it), but the topics are told as for
    /// `addVersion`. Returns the version number.
    pub fn seed_version(&mut self, name: SecretName, payload: Payload) -> u64 {
        let etag = self.etags.next();
        let secret = self.insert_secret(name.clone(), Some(Replication::automatic()), SecretFields::default());
        let number = push_version(secret, etag, payload, false).number;
        if let Some((secret, version)) = self.secrets.get(&name).and_then(|s| Some((s, s.versions.get(&number)?))) {
            record(&mut self.changes, secret, |secret| Change::of_version(VersionChange::Added, secret, version));
        }
        number
    }

    /// The version `name` resolves to, in any state.
    pub fn version(&self, name: &VersionName) -> Result<&Version, RpcError> {
        let secret = self.secrets.get(&name.secret).ok_or_else(|| no_versions(&name.secret))?;
        let number = resolve_or_not_found(secret, name)?;
        secret.versions.get(&number).ok_or_else(|| version_not_found(name))
    }

    /// The payload of the version `name` resolves to; only an enabled version can be read.
    pub fn access(&self, name: &VersionName) -> Result<(&Version, &Payload), RpcError> {
        let version = self.version(name)?;
        match (&version.state, &version.payload) {
            (VersionState::Enabled, Some(payload)) => Ok((version, payload)),
            _ => Err(wrong_state(version)),
        }
    }

    /// Enables, disables or destroys a version, after the etag precondition. A destroyed
    /// version cannot change any more.
    pub fn change_version(
        &mut self,
        name: &VersionName,
        transition: Transition,
        etag: Option<&str>,
    ) -> Result<&Version, RpcError> {
        let secret = self.secrets.get_mut(&name.secret).ok_or_else(|| no_versions(&name.secret))?;
        let number = resolve_or_not_found(secret, name)?;
        let version = secret.versions.get_mut(&number).ok_or_else(|| version_not_found(name))?;
        check_etag(etag, &version.etag)?;
        if version.state == VersionState::Destroyed {
            return Err(wrong_state(version));
        }
        let target = match transition {
            Transition::Enable => VersionState::Enabled,
            Transition::Disable => VersionState::Disabled,
            Transition::Destroy => VersionState::Destroyed,
        };
        let moved = version.state != target;
        if moved {
            set_state(version, target);
            version.etag = self.etags.next();
        }
        let version = secret.versions.get(&number).ok_or_else(|| version_not_found(name))?;
        if moved {
            let change = VersionChange::Moved(target);
            record(&mut self.changes, secret, |secret| Change::of_version(change, secret, version));
        }
        Ok(version)
    }

    /// Points `alias` at an existing version.
    pub fn set_alias(&mut self, name: &SecretName, alias: &str, number: u64) -> Result<(), RpcError> {
        let secret = self.secrets.get_mut(name).ok_or_else(|| secret_not_found(name))?;
        let aliases = BTreeMap::from([(alias.to_owned(), number)]);
        validate_aliases(secret, &aliases)?;
        secret.fields.version_aliases.extend(aliases);
        secret.etag = self.etags.next();
        record(&mut self.changes, secret, |secret| Change::of_secret(SecretChange::Updated, secret));
        Ok(())
    }
}

/// Logs a change of `secret` when it has topics to tell.
fn record(changes: &mut Vec<Change>, secret: &Secret, change: impl FnOnce(&Secret) -> Change) {
    if !secret.fields.topics.is_empty() {
        changes.push(change(secret));
    }
}

/// At most [`MAX_TOPICS`] topics, each named `projects/P/topics/T`. Whether they exist is not
/// checked: notifications to a missing topic are dropped (and logged).
fn validate_topics(topics: &[String]) -> Result<(), RpcError> {
    if topics.len() > MAX_TOPICS {
        return Err(RpcError::invalid_argument(format!(
            "Secret.topics may list at most {MAX_TOPICS} topics; it lists {}.",
            topics.len()
        )));
    }
    for topic in topics {
        let well_formed = matches!(
            topic.split('/').collect::<Vec<_>>().as_slice(),
            ["projects", project, "topics", id] if !project.is_empty() && !id.is_empty()
        );
        if !well_formed {
            return Err(RpcError::invalid_argument(format!(
                "Invalid Pub/Sub topic [{topic}]: a topic is named projects/*/topics/*."
            )));
        }
    }
    Ok(())
}

/// Adds an enabled version with the next number: numbers are never reused, and versions are
/// never removed.
fn push_version(secret: &mut Secret, etag: String, payload: Payload, client_checksum: bool) -> &Version {
    let number = secret.versions.keys().next_back().map_or(1, |last| last + 1);
    let version = Version {
        number,
        name: secret.name.version(number).to_string(),
        create_time: now(),
        state: VersionState::Enabled,
        destroy_time: None,
        etag,
        payload: Some(payload),
        client_checksum,
        replication: secret.replication.clone(),
    };
    secret.versions.entry(number).or_insert(version)
}

/// Global secrets need a replication policy; regional ones are stored in their location.
fn validate_replication(parent: &Parent, replication: Option<&Replication>) -> Result<(), RpcError> {
    match replication {
        Some(_) if parent.is_regional() => {
            Err(RpcError::invalid_argument("Secret.replication cannot be set on a regional secret."))
        }
        Some(replication) => replication.validate(),
        None if parent.is_regional() => Ok(()),
        None => Err(RpcError::invalid_argument("Secret.replication is required.")),
    }
}

fn validate_aliases(secret: &Secret, aliases: &BTreeMap<String, u64>) -> Result<(), RpcError> {
    for (alias, number) in aliases {
        let well_formed = !alias.is_empty()
            && alias.len() <= 63
            && alias.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            && !alias.bytes().all(|b| b.is_ascii_digit())
            && alias != "latest";
        if !well_formed {
            return Err(RpcError::invalid_argument(format!("Version alias [{alias}] is invalid.")));
        }
        if !secret.versions.contains_key(number) {
            return Err(RpcError::invalid_argument(format!(
                "Version alias [{alias}] points to Secret Version [{}], which does not exist.",
                secret.name.version(number)
            )));
        }
    }
    Ok(())
}

fn apply_update(fields: &mut SecretFields, update: SecretUpdate) {
    if let Some(labels) = update.labels {
        fields.labels = labels;
    }
    if let Some(annotations) = update.annotations {
        fields.annotations = annotations;
    }
    if let Some(topics) = update.topics {
        fields.topics = topics;
    }
    if let Some(aliases) = update.version_aliases {
        fields.version_aliases = aliases;
    }
    for (field, value) in update.echoed {
        match value {
            Some(value) => fields.echoed.insert(field, value),
            None => fields.echoed.remove(&field),
        };
    }
}

fn set_state(version: &mut Version, state: VersionState) {
    version.state = state;
    if state == VersionState::Destroyed {
        version.payload = None;
        version.destroy_time = Some(now());
    }
}

fn resolve_or_not_found(secret: &Secret, name: &VersionName) -> Result<u64, RpcError> {
    match secret.resolve(&name.version) {
        Some(number) => Ok(number),
        None if name.version == "latest" => Err(no_versions(&name.secret)),
        None => Err(version_not_found(name)),
    }
}

/// A set etag must equal the current one (the surrounding quotes are optional).
fn check_etag(given: Option<&str>, current: &str) -> Result<(), RpcError> {
    match given.filter(|etag| !etag.is_empty()) {
        Some(etag) if etag.trim_matches('"') != current.trim_matches('"') => Err(RpcError::aborted(format!(
            "etag mismatch: the request's etag {etag} does not match the current etag {current}."
        ))),
        _ => Ok(()),
    }
}

fn secret_not_found(name: &SecretName) -> RpcError {
    RpcError::not_found(format!("Secret [{name}] not found."))
}

fn no_versions(name: &SecretName) -> RpcError {
    RpcError::not_found(format!("Secret [{name}] not found or has no versions."))
}

fn version_not_found(name: &VersionName) -> RpcError {
    RpcError::not_found(format!("Secret Version [{name}] not found."))
}

fn wrong_state(version: &Version) -> RpcError {
    RpcError::failed_precondition(format!("Secret Version [{}] is in {} state.", version.name, version.state.as_str()))
}

/// The server clock as the API writes it: RFC 3339 UTC with microseconds.
pub fn now() -> String {
    format!("{:.6}", jiff::Timestamp::now())
}

/// Etags like the real API's (`"\"<hex>\""`), from a clock that never repeats a value.
#[derive(Debug, Default)]
struct EtagClock {
    last: i64,
}

impl EtagClock {
    fn next(&mut self) -> String {
        self.last = jiff::Timestamp::now().as_microsecond().max(self.last + 1);
        format!("\"{:x}\"", self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::super::rpc::Code;
    use super::*;

    fn db() -> SecretName {
        SecretName::global("p", "db")
    }

    fn store_with_versions(count: u64) -> Store {
        let mut store = Store::default();
        store.insert_secret(db(), Some(Replication::automatic()), SecretFields::default());
        for n in 0..count {
            if let Err(error) = store.add_version(&db(), Payload::new(format!("v{n}").into_bytes()), false) {
                panic!("add_version: {error}");
            }
        }
        store
    }

    fn change(store: &mut Store, version: &str, transition: Transition) -> Result<VersionState, RpcError> {
        store.change_version(&db().version(version), transition, None).map(|v| v.state)
    }

    fn version_number(store: &Store, version: &str) -> Result<u64, RpcError> {
        store.version(&db().version(version)).map(|v| v.number)
    }

    #[test]
    fn latest_resolves_to_the_newest_version_whatever_its_state() {
        let mut store = store_with_versions(3);
        assert_eq!(change(&mut store, "3", Transition::Disable), Ok(VersionState::Disabled));
        assert_eq!(version_number(&store, "latest"), Ok(3));
    }

    #[test]
    fn access_of_latest_fails_when_the_newest_version_is_disabled() {
        let mut store = store_with_versions(2);
        assert!(change(&mut store, "2", Transition::Disable).is_ok());
        let error = store.access(&db().version("latest")).err();
        assert_eq!(
            error,
            Some(RpcError::failed_precondition(
                "Secret Version [projects/p/secrets/db/versions/2] is in DISABLED state."
            ))
        );
    }

    #[test]
    fn access_of_a_destroyed_version_fails_with_destroyed_state() {
        let mut store = store_with_versions(1);
        assert_eq!(change(&mut store, "1", Transition::Destroy), Ok(VersionState::Destroyed));
        let error = store.access(&db().version("1")).err().map(|e| (e.code, e.message));
        assert_eq!(
            error,
            Some((
                Code::FailedPrecondition,
                "Secret Version [projects/p/secrets/db/versions/1] is in DESTROYED state.".to_owned()
            ))
        );
    }

    #[test]
    fn an_alias_resolves_to_its_version_number() {
        let mut store = store_with_versions(3);
        assert_eq!(store.set_alias(&db(), "current", 2), Ok(()));
        let accessed = store.access(&db().version("current")).map(|(v, p)| (v.name.clone(), p.data().to_vec()));
        assert_eq!(accessed, Ok(("projects/p/secrets/db/versions/2".to_owned(), b"v1".to_vec())));
    }

    #[test]
    fn an_alias_cannot_point_at_a_missing_version_or_look_like_a_number() {
        let mut store = store_with_versions(1);
        assert_eq!(store.set_alias(&db(), "current", 9).map_err(|e| e.code), Err(Code::InvalidArgument));
        assert_eq!(store.set_alias(&db(), "12", 1).map_err(|e| e.code), Err(Code::InvalidArgument));
        assert_eq!(store.set_alias(&db(), "latest", 1).map_err(|e| e.code), Err(Code::InvalidArgument));
    }

    #[test]
    fn missing_secret_and_missing_version_are_not_found_with_the_real_messages() {
        let store = store_with_versions(1);
        let missing_secret = store.access(&SecretName::global("p", "nope").version("latest")).err();
        assert_eq!(
            missing_secret.map(|e| e.message),
            Some("Secret [projects/p/secrets/nope] not found or has no versions.".into())
        );
        let missing_version = store.access(&db().version("7")).err();
        assert_eq!(
            missing_version.map(|e| e.message),
            Some("Secret Version [projects/p/secrets/db/versions/7] not found.".into())
        );
        let empty = store_with_versions(0);
        assert_eq!(version_number(&empty, "latest").map_err(|e| e.code), Err(Code::NotFound));
    }

    #[test]
    fn version_numbers_start_at_one_and_never_repeat() {
        let mut store = store_with_versions(2);
        assert!(change(&mut store, "2", Transition::Destroy).is_ok());
        let added = store.add_version(&db(), Payload::new(b"x".to_vec()), true).map(|v| v.number);
        assert_eq!(added, Ok(3));
        assert_eq!(version_number(&store, "1"), Ok(1));
    }

    #[test]
    fn destroy_drops_the_payload_and_sets_destroy_time() {
        let mut store = store_with_versions(1);
        assert!(change(&mut store, "1", Transition::Destroy).is_ok());
        let version = store.version(&db().version("1"));
        assert!(matches!(version, Ok(v) if v.payload.is_none() && v.destroy_time.is_some()));
    }

    #[test]
    fn a_destroyed_version_cannot_be_enabled_or_disabled() {
        let mut store = store_with_versions(1);
        assert!(change(&mut store, "1", Transition::Destroy).is_ok());
        assert_eq!(change(&mut store, "1", Transition::Enable).map_err(|e| e.code), Err(Code::FailedPrecondition));
        assert_eq!(change(&mut store, "1", Transition::Disable).map_err(|e| e.code), Err(Code::FailedPrecondition));
    }

    #[test]
    fn etag_changes_on_every_modification_and_a_stale_one_is_aborted() {
        let mut store = store_with_versions(1);
        let first = store.version(&db().version("1")).map(|v| v.etag.clone());
        let disabled = store.change_version(&db().version("1"), Transition::Disable, None).map(|v| v.etag.clone());
        assert_ne!(first, disabled);
        let stale = first.as_deref().ok();
        let error = store.change_version(&db().version("1"), Transition::Enable, stale).err().map(|e| e.code);
        assert_eq!(error, Some(Code::Aborted));
        let current = disabled.as_deref().ok();
        assert!(store.change_version(&db().version("1"), Transition::Enable, current).is_ok());
    }

    #[test]
    fn updating_a_secret_changes_its_etag() {
        let mut store = store_with_versions(0);
        let before = store.secret(&db()).map(|s| s.etag.clone());
        let update = SecretUpdate { labels: Some(BTreeMap::from([("a".into(), "b".into())])), ..Default::default() };
        let after = store
            .update_secret(&db(), update, None, jiff::Timestamp::now())
            .map(|s| (s.etag.clone(), s.fields.labels.len()));
        assert!(matches!((&before, &after), (Ok(b), Ok((a, 1))) if a != b));
    }

    #[test]
    fn etags_are_quoted_and_never_repeat() {
        let mut clock = EtagClock::default();
        let (a, b) = (clock.next(), clock.next());
        assert!(a.starts_with('"') && a.ends_with('"') && a.len() > 2, "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn a_duplicate_or_badly_named_secret_is_rejected() {
        let mut store = store_with_versions(0);
        let again =
            store.create_secret(db(), Some(Replication::automatic()), SecretFields::default(), jiff::Timestamp::now());
        assert_eq!(again.err().map(|e| e.code), Some(Code::AlreadyExists));
        let bad = store.create_secret(
            SecretName::global("p", "a.b"),
            Some(Replication::automatic()),
            SecretFields::default(),
            jiff::Timestamp::now(),
        );
        assert_eq!(bad.err().map(|e| e.code), Some(Code::InvalidArgument));
    }

    #[test]
    fn a_global_secret_needs_replication_and_a_regional_one_does_not() {
        let mut store = Store::default();
        let global =
            store.create_secret(SecretName::global("p", "g"), None, SecretFields::default(), jiff::Timestamp::now());
        assert_eq!(global.err().map(|e| e.code), Some(Code::InvalidArgument));
        let parent = Parent { project: "p".into(), location: Some("us-east1".into()) };
        let regional = SecretName { parent, secret: "r".into() };
        assert!(store.create_secret(regional, None, SecretFields::default(), jiff::Timestamp::now()).is_ok());
    }

    #[test]
    fn replication_must_set_exactly_one_policy_with_locations() {
        assert!(Replication::automatic().validate().is_ok());
        assert!(Replication::default().validate().is_err());
        let empty = Replication { automatic: None, user_managed: Some(UserManaged::default()) };
        assert!(empty.validate().is_err());
    }

    #[test]
    fn payload_debug_never_shows_the_bytes() {
        let text = format!("{:?}", Payload::new(b"hunter2".to_vec()));
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("7 bytes"), "{text}");
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let time = now();
        assert!(time.ends_with('Z') && time.len() == "2024-01-01T00:00:00.000000Z".len(), "{time}");
        assert!(time.parse::<jiff::Timestamp>().is_ok(), "{time}");
    }

    fn with_topic(store: &mut Store) {
        let update = SecretUpdate { topics: Some(vec!["projects/p/topics/events".into()]), ..Default::default() };
        assert!(store.update_secret(&db(), update, None, jiff::Timestamp::now()).is_ok());
    }

    /// Each change as `kind name`, e.g. `Moved(Enabled) projects/p/secrets/db/versions/1`.
    fn summary(changes: &[Change]) -> Vec<String> {
        let line = |change: &Change| match change {
            Change::TopicConfigured(topic) => format!("TopicConfigured {topic}"),
            Change::Secret(kind, secret) => format!("{kind:?} {}", secret.name),
            Change::Version(kind, _, version) => format!("{kind:?} {}", version.name),
        };
        changes.iter().map(line).collect()
    }

    #[test]
    fn changes_are_logged_only_for_secrets_with_topics() {
        let mut store = store_with_versions(1);
        assert!(change(&mut store, "1", Transition::Disable).is_ok());
        assert_eq!(store.take_changes(), []);
        with_topic(&mut store);
        assert_eq!(
            summary(&store.take_changes()),
            ["TopicConfigured projects/p/topics/events", "Updated projects/p/secrets/db"]
        );
        assert!(change(&mut store, "1", Transition::Enable).is_ok());
        assert!(change(&mut store, "1", Transition::Enable).is_ok(), "no change, nothing logged");
        let added = store.add_version(&db(), Payload::new(b"x".to_vec()), false).map(|v| v.number);
        assert_eq!(added, Ok(2));
        assert_eq!(store.seed_version(db(), Payload::new(b"y".to_vec())), 3);
        let changes = store.take_changes();
        assert_eq!(
            summary(&changes),
            [
                "Moved(Enabled) projects/p/secrets/db/versions/1",
                "Added projects/p/secrets/db/versions/2",
                "Added projects/p/secrets/db/versions/3"
            ]
        );
        let snapshots_hold_no_payload = changes.iter().all(|change| match change {
            Change::Version(_, secret, version) => version.payload.is_none() && secret.versions.is_empty(),
            _ => false,
        });
        assert!(snapshots_hold_no_payload);
        assert_eq!(store.delete_secret(&db(), None), Ok(()));
        assert_eq!(summary(&store.take_changes()), ["Deleted projects/p/secrets/db"]);
    }

    #[test]
    fn topics_are_at_most_ten_well_formed_names() {
        let mut store = store_with_versions(0);
        let eleven: Vec<String> = (0..11).map(|n| format!("projects/p/topics/t{n}")).collect();
        let update = SecretUpdate { topics: Some(eleven), ..Default::default() };
        let refused = store.update_secret(&db(), update, None, jiff::Timestamp::now());
        assert_eq!(refused.err().map(|e| e.code), Some(Code::InvalidArgument));
        let update = SecretUpdate { topics: Some(vec!["events".into()]), ..Default::default() };
        let refused = store.update_secret(&db(), update, None, jiff::Timestamp::now());
        assert_eq!(refused.err().map(|e| e.code), Some(Code::InvalidArgument));
        assert_eq!(store.take_changes(), []);
    }

    #[test]
    fn a_due_rotation_is_logged_and_moves_on_by_its_period() {
        let mut store = store_with_versions(0);
        with_topic(&mut store);
        store.take_changes();
        let now = jiff::Timestamp::now();
        let rotation = Rotation { next_rotation_time: Some(now), rotation_period: Some(3600) };
        assert_eq!(store.set_rotation(&db(), Some(rotation)), Ok(()));
        assert_eq!(store.fire_due_rotations(now), 1);
        assert_eq!(store.fire_due_rotations(now), 0, "the next one is an hour away");
        assert_eq!(summary(&store.take_changes()), ["Updated projects/p/secrets/db", "Rotated projects/p/secrets/db"]);
        let next = store.secret(&db()).ok().and_then(|s| s.fields.rotation).and_then(|r| r.next_rotation_time);
        assert_eq!(next.map(|next| next.duration_since(now)), Some(jiff::SignedDuration::from_hours(1)));
    }

    #[test]
    fn rotation_through_an_update_needs_topics_and_a_time_ahead() {
        let mut store = store_with_versions(0);
        let now = jiff::Timestamp::now();
        let soon = now.checked_add(jiff::SignedDuration::from_mins(10)).ok();
        let rotation = RotationUpdate { next_rotation_time: Some(soon), ..RotationUpdate::default() };
        let update = SecretUpdate { rotation: rotation.clone(), ..Default::default() };
        let refused = store.update_secret(&db(), update, None, now);
        assert!(refused.is_err_and(|e| e.message.contains("topics")));
        with_topic(&mut store);
        let update = SecretUpdate { rotation, ..Default::default() };
        let accepted = store.update_secret(&db(), update, None, now).map(|s| s.fields.rotation);
        assert_eq!(accepted, Ok(Some(Rotation { next_rotation_time: soon, rotation_period: None })));
    }
}
