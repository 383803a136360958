//! Test hooks shared by every emulated service: request counters keyed by the REST method id, and
//! injected faults (an error status, latency, a corrupted checksum or a failed long-running
//! operation for matching requests).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// A fault to inject. Empty matchers match every request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcpFault {
    /// REST method id to match, e.g. `secretmanager.versions.access`.
    pub method: Option<String>,
    /// Match requests whose resource name contains this text, e.g. `secrets/db-password`.
    pub resource_contains: Option<String>,
    /// Answer with this HTTP status and the matching `google.rpc` code instead of serving.
    pub status: Option<u16>,
    /// Wait this long before answering (or failing).
    pub delay: Option<Duration>,
    /// Answer `access` with a `dataCrc32c` that does not match the data.
    pub wrong_checksum: bool,
    /// Serve the call, but make the long-running operation it starts complete with this error
    /// message and code 13 `INTERNAL` (a failure of the service, not of the request; a create
    /// then leaves its resource `FAILED`, an update or delete leaves it as it was). A fault with
    /// this set only matches calls that start an operation (API Gateway creates, patches and
    /// deletes), so reads in between do not use it up.
    pub fail_operation: Option<String>,
    /// How many matching requests to affect; `None` for all until cleared. Every request the
    /// fault matches uses one, whatever the fault does to it.
    pub times: Option<usize>,
}

impl GcpFault {
    /// Fails every request of `method` with `status`.
    pub fn status(method: &str, status: u16) -> Self {
        Self { method: Some(method.to_owned()), status: Some(status), ..Self::default() }
    }

    /// Delays every request of `method` by `delay`.
    pub fn delay(method: &str, delay: Duration) -> Self {
        Self { method: Some(method.to_owned()), delay: Some(delay), ..Self::default() }
    }

    /// Makes the operation of every call of `method` (e.g. `apigateway.apiConfigs.create`) fail
    /// with `message`; combine with [`GcpFault::times`] for the next one only.
    pub fn fail_operation(method: &str, message: &str) -> Self {
        Self { method: Some(method.to_owned()), fail_operation: Some(message.to_owned()), ..Self::default() }
    }

    /// Only requests whose resource name contains `text`.
    pub fn on_resource(mut self, text: &str) -> Self {
        self.resource_contains = Some(text.to_owned());
        self
    }

    /// Only the next `times` matching requests.
    pub fn times(mut self, times: usize) -> Self {
        self.times = Some(times);
        self
    }

    fn matches(&self, method: &str, resource: &str, starts_operation: bool) -> bool {
        (starts_operation || self.fail_operation.is_none())
            && self.method.as_deref().is_none_or(|m| m == method)
            && self.resource_contains.as_deref().is_none_or(|text| resource.contains(text))
    }
}

/// What the faults do to one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Injected {
    pub status: Option<u16>,
    pub delay: Option<Duration>,
    pub wrong_checksum: bool,
    pub fail_operation: Option<String>,
}

/// Counters and faults of one emulator.
#[derive(Debug, Default)]
pub(super) struct Hooks {
    counts: Mutex<BTreeMap<String, u64>>,
    /// Requests by (method, resource name), for tests that watch one secret among many.
    by_resource: Mutex<BTreeMap<(String, String), u64>>,
    faults: Mutex<Vec<GcpFault>>,
}

impl Hooks {
    /// Counts a request and returns what the faults do to it; the first matching fault wins
    /// for status, delay and operation failure. `starts_operation` tells whether the call
    /// starts a long-running operation.
    pub fn on_request(&self, method: &str, resource: &str, starts_operation: bool) -> Injected {
        *lock(&self.counts).entry(method.to_owned()).or_default() += 1;
        *lock(&self.by_resource).entry((method.to_owned(), resource.to_owned())).or_default() += 1;
        let mut faults = lock(&self.faults);
        let mut injected = Injected::default();
        for fault in faults.iter_mut().filter(|f| f.matches(method, resource, starts_operation)) {
            injected.status = injected.status.or(fault.status);
            injected.delay = injected.delay.or(fault.delay);
            injected.wrong_checksum |= fault.wrong_checksum;
            injected.fail_operation = injected.fail_operation.take().or_else(|| fault.fail_operation.clone());
            if let Some(times) = fault.times.as_mut() {
                *times = times.saturating_sub(1);
            }
        }
        faults.retain(|fault| fault.times != Some(0));
        injected
    }

    /// Requests of `method` so far.
    pub fn count(&self, method: &str) -> u64 {
        lock(&self.counts).get(method).copied().unwrap_or(0)
    }

    /// Requests of `method` on resources whose name contains `resource` so far.
    pub fn count_for(&self, method: &str, resource: &str) -> u64 {
        lock(&self.by_resource).iter().filter(|((m, r), _)| m == method && r.contains(resource)).map(|(_, n)| n).sum()
    }

    /// Requests of every method so far.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        lock(&self.counts).clone()
    }

    /// Starts counting from zero.
    pub fn reset_counts(&self) {
        lock(&self.counts).clear();
        lock(&self.by_resource).clear();
    }

    /// Adds a fault after the existing ones.
    pub fn inject(&self, fault: GcpFault) {
        lock(&self.faults).push(fault);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
    }
}

/// Locks a mutex; a panic elsewhere while holding it leaves plain data that is still usable.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCESS: &str = "secretmanager.versions.access";
    const VERSION: &str = "projects/p/secrets/db/versions/latest";

    #[test]
    fn requests_are_counted_per_method() {
        let hooks = Hooks::default();
        hooks.on_request(ACCESS, VERSION, false);
        hooks.on_request(ACCESS, VERSION, false);
        hooks.on_request("secretmanager.secrets.get", "projects/p/secrets/db", false);
        assert_eq!(hooks.count(ACCESS), 2);
        assert_eq!(hooks.counts().len(), 2);
        hooks.reset_counts();
        assert_eq!(hooks.count(ACCESS), 0);
    }

    #[test]
    fn a_fault_with_times_expires_after_that_many_matches() {
        let hooks = Hooks::default();
        hooks.inject(GcpFault::status(ACCESS, 503).times(2));
        assert_eq!(hooks.on_request(ACCESS, VERSION, false).status, Some(503));
        assert_eq!(hooks.on_request(ACCESS, VERSION, false).status, Some(503));
        assert_eq!(hooks.on_request(ACCESS, VERSION, false).status, None);
    }

    #[test]
    fn a_fault_matches_only_its_method_and_resource() {
        let hooks = Hooks::default();
        hooks.inject(GcpFault::status(ACCESS, 429).on_resource("secrets/db/"));
        assert_eq!(hooks.on_request("secretmanager.secrets.get", "projects/p/secrets/db", false).status, None);
        assert_eq!(hooks.on_request(ACCESS, "projects/p/secrets/other/versions/1", false).status, None);
        assert_eq!(hooks.on_request(ACCESS, VERSION, false).status, Some(429));
    }

    #[test]
    fn faults_combine_and_clear() {
        let hooks = Hooks::default();
        hooks.inject(GcpFault::delay(ACCESS, Duration::from_millis(5)));
        hooks.inject(GcpFault { wrong_checksum: true, ..GcpFault::default() });
        let injected = hooks.on_request(ACCESS, VERSION, false);
        let expected = Injected { delay: Some(Duration::from_millis(5)), wrong_checksum: true, ..Injected::default() };
        assert_eq!(injected, expected);
        hooks.clear_faults();
        assert_eq!(hooks.on_request(ACCESS, VERSION, false), Injected::default());
    }

    #[test]
    fn an_operation_fault_is_used_only_by_calls_that_start_an_operation() {
        const CREATE: &str = "apigateway.apiConfigs.create";
        let hooks = Hooks::default();
        hooks.inject(GcpFault::fail_operation(CREATE, "rollout failed").on_resource("configs/v2").times(1));
        hooks.inject(GcpFault { fail_operation: Some("any".into()), ..GcpFault::default() }.times(1));
        // A read matches neither fault and uses neither up.
        assert_eq!(
            hooks.on_request("apigateway.apiConfigs.get", "projects/p/locations/global/apis/a/configs/v2", false),
            Injected::default()
        );
        let v1 = hooks.on_request(CREATE, "projects/p/locations/global/apis/a/configs/v1", true);
        assert_eq!(v1.fail_operation.as_deref(), Some("any"));
        let v2 = hooks.on_request(CREATE, "projects/p/locations/global/apis/a/configs/v2", true);
        assert_eq!(v2.fail_operation.as_deref(), Some("rollout failed"));
        assert_eq!(
            hooks.on_request(CREATE, "projects/p/locations/global/apis/a/configs/v2", true),
            Injected::default()
        );
    }
}
