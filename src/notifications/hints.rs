//! Notifications are hints, never orders: anyone who may publish to the topic can send them, so
//! one may make the operator read what it would read anyway, and no more.
//!
//! - A new version a read has already looked for (synced, or found missing: a made-up id) asks
//!   for nothing: a flood naming one version costs one read.
//! - While a read a notification asked for is queued, more notifications join it.
//! - After such a read, a SecretRef reads again for a notification at most once per
//!   [`INTERVAL`]: a notification inside it is folded into one read at its end (a real change
//!   is late by at most that, never lost).
//! - A version a notification says was disabled, destroyed or enabled is checked (one access,
//!   [`Hints::admit_check`]): the versions wait here until a reconcile takes them, at most
//!   [`MAX_CHECKS`] (the newest), and checks are paced per SecretRef by the same [`INTERVAL`].
//!   Only the access's answer is recorded, so a hint lost at a restart loses nothing recorded.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The least time between two reads of one SecretRef that notifications ask for.
pub const INTERVAL: Duration = Duration::from_secs(2);
/// Most versions waiting to be checked per SecretRef (the newest): as many as its status lists.
pub const MAX_CHECKS: usize = crate::api::secret_ref::MAX_UNUSABLE_VERSIONS;

/// What a notification gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admitted {
    /// Queue the SecretRef with a forced read now.
    Now,
    /// Queue it with a forced read after this long (once, for every notification until then).
    Later(Duration),
    /// Nothing: a read is queued already, or the version was looked for.
    No,
}

#[derive(Debug, Default)]
struct Hint {
    /// A forced read is queued and not taken yet.
    asked: bool,
    /// A read is planned for the end of the interval.
    trailing: bool,
    /// The newest version number a notification named.
    newest: Option<u64>,
    /// The newest version number a read started after its notification (so it found it, or
    /// found that it does not exist).
    looked_for: Option<u64>,
    /// When the last forced read was taken.
    read_at: Option<Instant>,
    /// Versions to check, not taken yet: while there are any, a reconcile is queued for them.
    checks: BTreeSet<u64>,
    /// When checks were last taken.
    checked_at: Option<Instant>,
}

/// Per SecretRef (`namespace/name`), what notifications asked and what reads covered.
#[derive(Debug, Default)]
pub struct Hints {
    hints: Mutex<HashMap<String, Hint>>,
}

impl Hints {
    fn hints(&self) -> MutexGuard<'_, HashMap<String, Hint>> {
        self.hints.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A notification asks SecretRef `key` (which has synced `synced`) to read again; it names
    /// `version` when it announces one.
    pub fn admit(&self, key: &str, version: Option<u64>, synced: Option<u64>, now: Instant) -> Admitted {
        let mut hints = self.hints();
        let hint = hints.entry(key.to_owned()).or_default();
        if let Some(version) = version {
            let covered = |seen: Option<u64>| seen.is_some_and(|seen| version <= seen);
            if covered(synced) || covered(hint.looked_for) {
                return Admitted::No;
            }
            hint.newest = hint.newest.max(Some(version));
        }
        if hint.asked || hint.trailing {
            return Admitted::No;
        }
        match hint.read_at.map(|at| at + INTERVAL) {
            Some(open) if now < open => {
                hint.trailing = true;
                Admitted::Later(open - now)
            }
            _ => {
                hint.asked = true;
                Admitted::Now
            }
        }
    }

    /// The read planned for the end of the interval is due: it is queued now.
    pub fn trailing_due(&self, key: &str) {
        if let Some(hint) = self.hints().get_mut(key) {
            hint.trailing = false;
            hint.asked = true;
        }
    }

    /// The reconcile of `key` starts: whether a notification asked it to read (it then covers
    /// every version named so far).
    pub fn take(&self, key: &str, now: Instant) -> bool {
        let mut hints = self.hints();
        let Some(hint) = hints.get_mut(key).filter(|hint| hint.asked) else { return false };
        hint.asked = false;
        hint.read_at = Some(now);
        hint.looked_for = hint.looked_for.max(hint.newest);
        true
    }

    /// A notification asks SecretRef `key` to check `version`: queue it now, later (at the end of
    /// the interval since the last checks), or not at all (a reconcile is queued for checks already).
    pub fn admit_check(&self, key: &str, version: u64, now: Instant) -> Admitted {
        let mut hints = self.hints();
        let hint = hints.entry(key.to_owned()).or_default();
        let queued = !hint.checks.is_empty();
        hint.checks.insert(version);
        while hint.checks.len() > MAX_CHECKS {
            hint.checks.pop_first();
        }
        if queued {
            return Admitted::No;
        }
        match hint.checked_at.map(|at| at + INTERVAL) {
            Some(open) if now < open => Admitted::Later(open - now),
            _ => Admitted::Now,
        }
    }

    /// The reconcile of `key` starts: the versions it must check, newest first (taken).
    pub fn take_checks(&self, key: &str, now: Instant) -> Vec<u64> {
        let mut hints = self.hints();
        let Some(hint) = hints.get_mut(key).filter(|hint| !hint.checks.is_empty()) else { return Vec::new() };
        hint.checked_at = Some(now);
        std::mem::take(&mut hint.checks).into_iter().rev().collect()
    }

    /// `key` is gone: nothing of it is kept.
    pub fn forget(&self, key: &str) {
        self.hints().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_naming_one_version_costs_one_read() {
        let hints = Hints::default();
        let start = Instant::now();
        assert_eq!(hints.admit("ns/db", Some(99), Some(3), start), Admitted::Now);
        for _ in 0..100 {
            assert_eq!(hints.admit("ns/db", Some(99), Some(3), start), Admitted::No, "joins the queued read");
        }
        assert!(hints.take("ns/db", start));
        let later = start + INTERVAL * 10;
        assert_eq!(hints.admit("ns/db", Some(99), Some(3), later), Admitted::No, "looked for already");
        assert_eq!(hints.admit("ns/db", Some(2), Some(3), later), Admitted::No, "synced already");
        assert!(!hints.take("ns/db", later), "no read was asked");
    }

    #[test]
    fn a_newer_version_right_after_a_read_is_read_at_the_end_of_the_interval_once() {
        let hints = Hints::default();
        let start = Instant::now();
        assert_eq!(hints.admit("ns/db", Some(4), Some(3), start), Admitted::Now);
        assert!(hints.take("ns/db", start));
        let soon = start + INTERVAL / 4;
        assert_eq!(hints.admit("ns/db", Some(5), Some(4), soon), Admitted::Later(INTERVAL - INTERVAL / 4));
        assert_eq!(hints.admit("ns/db", Some(6), Some(4), soon), Admitted::No, "folded into that read");
        assert_eq!(hints.admit("ns/db", None, Some(4), soon), Admitted::No);
        hints.trailing_due("ns/db");
        assert!(hints.take("ns/db", start + INTERVAL));
        assert_eq!(hints.admit("ns/db", Some(6), Some(6), start + INTERVAL * 3), Admitted::No, "covered");
        assert_eq!(hints.admit("ns/db", Some(7), Some(6), start + INTERVAL * 3), Admitted::Now);
    }

    #[test]
    fn notifications_without_a_version_are_paced_too() {
        let hints = Hints::default();
        let start = Instant::now();
        assert_eq!(hints.admit("ns/db", None, Some(3), start), Admitted::Now);
        assert!(hints.take("ns/db", start));
        assert!(matches!(hints.admit("ns/db", None, Some(3), start), Admitted::Later(_)));
        hints.forget("ns/db");
        assert_eq!(hints.admit("ns/db", None, Some(3), start), Admitted::Now, "a new SecretRef of that name");
    }

    #[test]
    fn checks_wait_together_newest_first_and_are_paced() {
        let hints = Hints::default();
        let start = Instant::now();
        assert_eq!(hints.admit_check("ns/db", 1, start), Admitted::Now);
        assert_eq!(hints.admit_check("ns/db", 3, start), Admitted::No, "joins the queued check");
        assert_eq!(hints.admit_check("ns/db", 1, start), Admitted::No);
        assert!(!hints.take("ns/db", start), "a check forces no read");
        assert_eq!(hints.take_checks("ns/db", start), [3, 1]);
        assert_eq!(hints.take_checks("ns/db", start), Vec::<u64>::new(), "taken once");
        let soon = start + INTERVAL / 4;
        assert_eq!(hints.admit_check("ns/db", 1, soon), Admitted::Later(INTERVAL - INTERVAL / 4));
        assert_eq!(hints.admit_check("ns/db", 2, soon), Admitted::No, "folded into that check");
        assert_eq!(hints.take_checks("ns/db", start + INTERVAL), [2, 1]);
        assert_eq!(hints.admit_check("ns/db", 1, start + INTERVAL * 3), Admitted::Now);
        hints.forget("ns/db");
        assert_eq!(hints.take_checks("ns/db", start), Vec::<u64>::new(), "forgotten with the SecretRef");
    }

    #[test]
    fn a_flood_of_versions_keeps_the_newest_checks_and_leaves_forced_reads_alone() {
        let hints = Hints::default();
        let start = Instant::now();
        for version in 1..=100 {
            hints.admit_check("ns/db", version, start);
        }
        assert_eq!(hints.admit("ns/db", None, Some(100), start), Admitted::Now, "reads are paced on their own");
        let taken = hints.take_checks("ns/db", start);
        assert_eq!(taken, (91..=100).rev().collect::<Vec<u64>>());
    }
}
