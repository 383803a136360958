//! Notifications are hints, never orders: anyone who may publish to the topic can send them, so
//! one may make the operator read what it would read anyway, and no more.
//!
//! - A new version a read has already looked for (synced, or found missing: a made-up id) asks
//!   for nothing: a flood naming one version costs one read.
//! - While a read a notification asked for is queued, more notifications join it.
//! - After such a read, a SecretRef reads again for a notification at most once per
//!   [`INTERVAL`]: a notification inside it is folded into one read at its end (a real change
//!   is late by at most that, never lost).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The least time between two reads of one SecretRef that notifications ask for.
pub const INTERVAL: Duration = Duration::from_secs(2);

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
}
