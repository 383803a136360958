//! Test hooks: request counters by verb and resource, and injected faults (an error status or
//! latency for matching requests).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// The verb of a request, as Kubernetes audit logs name it.
pub fn verb(method: &str, named: bool, watch: bool) -> &'static str {
    match (method, named) {
        ("GET", true) => "get",
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "other",
    }
}

/// A fault to inject. Empty matchers match everything.
#[derive(Clone, Debug, Default)]
pub struct Fault {
    /// Verb to match (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, ...).
    pub verb: Option<String>,
    /// Resource to match: a plural (`secrets`) or plural/subresource (`secretrefs/status`).
    pub resource: Option<String>,
    /// Object name to match.
    pub name: Option<String>,
    /// Answer with this HTTP status instead of serving the request.
    pub status: Option<u16>,
    /// The answer's `message` (default: one naming the fault): what a refusal by an admission
    /// webhook, say, would say.
    pub message: Option<String>,
    /// Wait this long before answering (or failing).
    pub delay: Option<Duration>,
    /// How many matching requests to affect; `None` for all until cleared.
    pub times: Option<usize>,
}

impl Fault {
    /// Fails matching requests of `verb` on `resource` with `status`.
    pub fn status(verb: &str, resource: &str, status: u16) -> Self {
        Self { verb: Some(verb.into()), resource: Some(resource.into()), status: Some(status), ..Self::default() }
    }

    /// Answers with `message`, as an admission webhook's denial (or any refusal) words it.
    pub fn saying(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Only the next `times` matching requests.
    pub fn times(mut self, times: usize) -> Self {
        self.times = Some(times);
        self
    }

    fn matches(&self, verb: &str, resource: &str, name: Option<&str>) -> bool {
        self.verb.as_deref().is_none_or(|v| v == verb)
            && self.resource.as_deref().is_none_or(|r| r == resource)
            && self.name.as_deref().is_none_or(|n| Some(n) == name)
    }
}

/// What to do with one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Injected {
    pub status: Option<u16>,
    pub message: Option<String>,
    pub delay: Option<Duration>,
}

/// Counters and faults, shared by both front doors.
#[derive(Default)]
pub struct Hooks {
    faults: Mutex<Vec<Fault>>,
    counts: Mutex<BTreeMap<(String, String), u64>>,
}

impl Hooks {
    /// Counts a request and returns the faults that apply to it.
    pub fn on_request(&self, verb: &str, resource: &str, name: Option<&str>) -> Injected {
        *lock(&self.counts).entry((verb.to_owned(), resource.to_owned())).or_default() += 1;
        let mut faults = lock(&self.faults);
        let mut injected = Injected::default();
        for fault in faults.iter_mut().filter(|f| f.matches(verb, resource, name)) {
            if injected.status.is_none() && fault.status.is_some() {
                injected.status = fault.status;
                injected.message.clone_from(&fault.message);
            }
            injected.delay = injected.delay.or(fault.delay);
            if let Some(times) = fault.times.as_mut() {
                *times = times.saturating_sub(1);
            }
        }
        faults.retain(|f| f.times != Some(0));
        injected
    }

    pub fn inject(&self, fault: Fault) {
        lock(&self.faults).push(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    /// Requests of `verb` on `resource` so far.
    pub fn count(&self, verb: &str, resource: &str) -> u64 {
        lock(&self.counts).get(&(verb.to_owned(), resource.to_owned())).copied().unwrap_or(0)
    }

    /// Mutating requests (create, update, patch, delete, deletecollection) on `resource`.
    pub fn writes(&self, resource: &str) -> u64 {
        ["create", "update", "patch", "delete", "deletecollection"].iter().map(|v| self.count(v, resource)).sum()
    }

    /// Every counter: ((verb, resource), count).
    pub fn counts(&self) -> BTreeMap<(String, String), u64> {
        lock(&self.counts).clone()
    }

    pub fn reset_counts(&self) {
        lock(&self.counts).clear();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking test thread must not wedge the emulator for the others.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_can_say_what_a_webhook_would() {
        let hooks = Hooks::default();
        let denial = r#"admission webhook "policy.example.com" denied the request: no"#;
        hooks.inject(Fault::status("patch", "secrets", 400).saying(denial));
        let injected = hooks.on_request("patch", "secrets", Some("a"));
        assert_eq!((injected.status, injected.message.as_deref()), (Some(400), Some(denial)));
    }

    #[test]
    fn a_fault_with_a_count_expires() {
        let hooks = Hooks::default();
        hooks.inject(Fault::status("update", "secrets", 503).times(1));
        assert_eq!(hooks.on_request("update", "secrets", Some("a")).status, Some(503));
        assert_eq!(hooks.on_request("update", "secrets", Some("a")).status, None);
        assert_eq!(hooks.writes("secrets"), 2);
    }

    #[test]
    fn faults_match_only_their_verb_and_resource() {
        let hooks = Hooks::default();
        hooks.inject(Fault::status("create", "secrets", 500));
        assert_eq!(hooks.on_request("get", "secrets", None).status, None);
        assert_eq!(hooks.on_request("create", "configmaps", None).status, None);
        assert_eq!(hooks.on_request("create", "secrets", None).status, Some(500));
        assert_eq!(hooks.count("get", "secrets"), 1);
    }
}
