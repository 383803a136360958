//! Waiting for a condition of one of our kinds (SecretRef, SecureApiService, GatewayConfig): the
//! one wait the tests use for "the object says X". A failure names the object and shows the
//! conditions it had last.

use super::wait::{DEADLINE, wait_until};
use kube::api::Api;
use kube::core::object::HasStatus;
use secure_api_operator::api::conditions::{Condition, HasConditions, find_condition, types};
use serde::de::DeserializeOwned;
use std::fmt;

/// A kind of ours: its status carries conditions.
pub trait Conditioned: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + fmt::Debug {
    /// The object's conditions (none before its first status).
    fn conditions(&self) -> &[Condition];

    /// The condition of `type_`; fails the test, naming the object, if it has none.
    fn condition(&self, type_: &str) -> &Condition {
        find_condition(self.conditions(), type_).unwrap_or_else(|| {
            let name = kube::ResourceExt::name_any(self);
            panic!("{} {name} has no {type_} condition: {}", Self::kind(&()), shown(self.conditions()))
        })
    }

    /// The message of the condition of `type_` (see [`condition`](Self::condition)).
    fn message(&self, type_: &str) -> String {
        self.condition(type_).message.clone()
    }
}

impl<K> Conditioned for K
where
    K: kube::Resource<DynamicType = ()> + HasStatus<Status: HasConditions> + Clone + DeserializeOwned + fmt::Debug,
{
    fn conditions(&self) -> &[Condition] {
        self.status().map(HasConditions::conditions).unwrap_or_default()
    }
}

/// What a wait expects of one condition: its type, and its status and reason unless any will do.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    type_: &'a str,
    status: Option<&'a str>,
    reason: Option<&'a str>,
}

/// The condition `type_`, whatever its status and reason (narrow with [`Expected::is`],
/// [`Expected::status`], [`Expected::reason`]).
pub fn condition(type_: &str) -> Expected<'_> {
    Expected { type_, status: None, reason: None }
}

/// The Ready condition, whatever its status and reason.
pub fn ready() -> Expected<'static> {
    condition(types::READY)
}

impl<'a> Expected<'a> {
    /// With `status` (`True`, `False`, `Unknown`) and `reason`.
    pub fn is(self, status: &'a str, reason: &'a str) -> Self {
        self.status(status).reason(reason)
    }

    /// With `status`, whatever the reason.
    pub fn status(self, status: &'a str) -> Self {
        Self { status: Some(status), ..self }
    }

    /// With `reason`, whatever the status.
    pub fn reason(self, reason: &'a str) -> Self {
        Self { reason: Some(reason), ..self }
    }

    fn met_by(&self, condition: &Condition) -> bool {
        condition.type_ == self.type_
            && self.status.is_none_or(|status| status_text(condition) == status)
            && self.reason.is_none_or(|reason| condition.reason == reason)
    }
}

impl fmt::Display for Expected<'_> {
    /// `Ready=True (Synced)`, `Ready (Synced)` for any status, `Ready=False` for any reason.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.type_)?;
        if let Some(status) = self.status {
            write!(f, "={status}")?;
        }
        if let Some(reason) = self.reason {
            write!(f, " ({reason})")?;
        }
        Ok(())
    }
}

/// Waits (up to [`DEADLINE`]) until object `name` of `api` has a condition as `expected`, and
/// returns the object. On a timeout the test fails naming the object and showing its last
/// conditions (or that it did not exist, or could not be read).
pub async fn wait_condition<K: Conditioned>(api: &Api<K>, name: &str, expected: Expected<'_>) -> K {
    let object = match api.namespace() {
        Some(namespace) => format!("{} {namespace}/{name}", K::kind(&())),
        None => format!("{} {name}", K::kind(&())),
    };
    wait_until(&format!("{object} to have {expected}"), DEADLINE, || async {
        match api.get_opt(name).await {
            Ok(Some(found)) if found.conditions().iter().any(|c| expected.met_by(c)) => Ok(found),
            Ok(Some(found)) => Err(shown(found.conditions())),
            Ok(None) => Err("no such object".to_owned()),
            Err(error) => Err(format!("reading it failed: {error}")),
        }
    })
    .await
}

/// `Ready=False (SecretNotFound): <message>; ...`, or that there are none.
fn shown(conditions: &[Condition]) -> String {
    if conditions.is_empty() {
        return "no conditions".to_owned();
    }
    let shown: Vec<String> =
        conditions.iter().map(|c| format!("{}={} ({}): {}", c.type_, status_text(c), c.reason, c.message)).collect();
    shown.join("; ")
}

fn status_text(condition: &Condition) -> String {
    format!("{:?}", condition.status)
}
