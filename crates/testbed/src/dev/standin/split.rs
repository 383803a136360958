//! How the stand-in splits requests between the revisions whose pods are Ready (pure): smooth
//! weighted round-robin, as nginx balances its upstreams, weighted by Ready pods. In any run of as
//! many requests as there are pods, each revision answers exactly as many as it has pods, spread
//! evenly: a Service's share of the traffic per pod, without the randomness of kube-proxy, so a
//! count of the answers shows the replica ratio exactly.

use std::collections::BTreeMap;

/// The split between revisions; the same weights give the same sequence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Split {
    entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    revision: String,
    pods: u32,
    current: i64,
}

impl Split {
    /// A split by Ready pods per revision; revisions without a pod take no request.
    pub fn new(pods: &BTreeMap<String, u32>) -> Self {
        let entries = pods.iter().filter(|(_, n)| **n > 0);
        Self {
            entries: entries
                .map(|(revision, pods)| Entry { revision: revision.clone(), pods: *pods, current: 0 })
                .collect(),
        }
    }

    /// Ready pods per revision.
    pub fn pods(&self) -> BTreeMap<String, u32> {
        self.entries.iter().map(|e| (e.revision.clone(), e.pods)).collect()
    }

    /// The revision that answers the next request; `None` when no pod is Ready.
    pub fn pick(&mut self) -> Option<&str> {
        let total: i64 = self.entries.iter().map(|e| i64::from(e.pods)).sum();
        for entry in &mut self.entries {
            entry.current += i64::from(entry.pods);
        }
        // The first of the largest: ties go the same way every time.
        let best = self.entries.iter().enumerate().rev().max_by_key(|(_, e)| e.current).map(|(i, _)| i)?;
        let chosen = self.entries.get_mut(best)?;
        chosen.current -= total;
        Some(chosen.revision.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(pods: &[(&str, u32)]) -> Split {
        Split::new(&pods.iter().map(|(r, n)| ((*r).to_owned(), *n)).collect())
    }

    fn picks(split: &mut Split, n: usize) -> Vec<String> {
        (0..n).filter_map(|_| split.pick().map(str::to_owned)).collect()
    }

    fn count(picks: &[String], revision: &str) -> usize {
        picks.iter().filter(|p| *p == revision).count()
    }

    #[test]
    fn every_run_of_as_many_requests_as_pods_follows_the_replica_ratio() {
        let mut nine_to_one = split(&[("stable", 9), ("canary", 1)]);
        let seen = picks(&mut nine_to_one, 100);
        for window in seen.windows(10) {
            assert_eq!(window.iter().filter(|p| *p == "canary").count(), 1, "{window:?}");
        }
        assert_eq!((count(&seen, "stable"), count(&seen, "canary")), (90, 10));
        let mut even = split(&[("a", 9), ("b", 9)]);
        let seen = picks(&mut even, 50);
        assert_eq!((count(&seen, "a"), count(&seen, "b")), (25, 25));
        assert!(seen.windows(2).all(|pair| pair[0] != pair[1]), "alternating: {seen:?}");
    }

    #[test]
    fn the_same_pods_give_the_same_sequence_and_no_pod_no_answer() {
        let pods = [("stable", 3), ("canary", 1)];
        assert_eq!(picks(&mut split(&pods), 8), picks(&mut split(&pods), 8));
        let mut none = split(&[("stable", 0)]);
        assert_eq!(none.pick(), None);
        assert!(none.pods().is_empty());
        let mut one = split(&[("stable", 2), ("rejected", 0)]);
        assert_eq!(picks(&mut one, 4), ["stable"; 4]);
    }
}
