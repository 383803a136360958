//! A missing ServiceAccount that is expected to appear is progress, not a failure.
//!
//! The decision: an object that names a ServiceAccount which does not exist reports
//! `Ready=False ServiceAccountNotFound` in status at once, with a message saying it waits for it,
//! but no Warning Event while
//! - it has never synced (a SecretRef without a synced version, a GatewayConfig that never
//!   provisioned): a missing ServiceAccount of an object that worked before is a real failure;
//! - and it has not been not-Ready for longer than the grace (`Settings::service_account_grace`,
//!   2 minutes), counted from its Ready condition's last transition (or the first report).
//!
//! The example applies SecretRefs that read as the ServiceAccount their SecureApiService creates
//! a moment later: that ordering is normal, and a Warning for it would teach people to ignore
//! Warnings. A ServiceAccount still missing after the grace (a typo, a service never applied) gets
//! its Warning then, once: the message changes, so the skeleton's one-Warning-per-failure rule sees
//! a new failure. A SecureApiService waiting on such a SecretRef treats it as a first sync too.

use crate::api::conditions::{Condition, ConditionStatus, reasons};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::fmt::Display;
use std::time::Duration;

/// Whether a failure with `reason` is still awaited at `now`: a missing ServiceAccount, for an
/// object that never synced (`synced_before` false) and whose `ready` condition (if any) has not
/// been False for `grace`.
pub fn service_account(
    reason: &str,
    ready: Option<&Condition>,
    synced_before: bool,
    grace: Duration,
    now: &Time,
) -> bool {
    if reason != reasons::SERVICE_ACCOUNT_NOT_FOUND || synced_before {
        return false;
    }
    let Some(ready) = ready else { return true };
    let since = now.0.duration_since(ready.last_transition_time.0);
    ready.status != ConditionStatus::True && Duration::try_from(since).is_ok_and(|waited| waited < grace)
}

/// The status message while `error` (with its condition `reason`) is a ServiceAccount still
/// awaited at `now` (see [`service_account`]) by an object whose Ready condition among
/// `conditions` is that, and which has `synced_before` or not.
pub fn awaited_message(
    error: &impl Display,
    reason: &str,
    conditions: &[Condition],
    synced_before: bool,
    grace: Duration,
    now: &Time,
) -> Option<String> {
    let ready = conditions.iter().find(|condition| condition.type_ == crate::api::conditions::types::READY);
    service_account(reason, ready, synced_before, grace, now).then(|| message(error, grace))
}

/// The status message while the ServiceAccount is awaited (`missing`: the error's own text).
fn message(missing: &impl Display, grace: Duration) -> String {
    format!(
        "{missing} yet: waiting for it to be created (a SecureApiService creates the one it names); a Warning follows if it is still missing after {}s",
        grace.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::conditions::types;

    fn at(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap_or_default())
    }

    fn ready(status: ConditionStatus, since: i64) -> Condition {
        Condition::new(types::READY, status, reasons::SERVICE_ACCOUNT_NOT_FOUND, "", None, at(since))
    }

    const GRACE: Duration = Duration::from_secs(120);
    const MISSING: &str = reasons::SERVICE_ACCOUNT_NOT_FOUND;

    #[test]
    fn a_first_sync_waits_for_its_service_account_within_the_grace() {
        assert!(service_account(MISSING, None, false, GRACE, &at(1000)));
        assert!(service_account(MISSING, Some(&ready(ConditionStatus::False, 1000)), false, GRACE, &at(1119)));
    }

    #[test]
    fn a_service_account_still_missing_after_the_grace_is_a_failure() {
        assert!(!service_account(MISSING, Some(&ready(ConditionStatus::False, 1000)), false, GRACE, &at(1120)));
    }

    #[test]
    fn an_object_that_synced_before_or_another_failure_is_never_awaited() {
        assert!(!service_account(MISSING, None, true, GRACE, &at(1000)));
        assert!(!service_account(reasons::PERMISSION_DENIED, None, false, GRACE, &at(1000)));
        assert!(!service_account(MISSING, Some(&ready(ConditionStatus::True, 1000)), false, GRACE, &at(1001)));
    }

    #[test]
    fn the_message_says_it_waits_and_until_when() {
        let text = message(&"ServiceAccount team-a/api not found", GRACE);
        assert!(text.starts_with("ServiceAccount team-a/api not found yet: waiting for it"), "{text}");
        assert!(text.ends_with("still missing after 120s"), "{text}");
    }
}
