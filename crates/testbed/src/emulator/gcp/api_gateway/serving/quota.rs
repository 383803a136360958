//! Per-minute quota accounting, per service, consumer and metric, in fixed one-minute windows
//! of the emulator's clock (Service Control's per-minute limits refill at the minute).
//! Consumers are named by a digest of their API key, never by the key itself. Pure: the
//! minute comes in.

use super::routing::Limit;
use std::collections::HashMap;

/// A refused charge: the limit that would be exceeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exceeded {
    pub metric: String,
    pub limit: String,
}

#[derive(Debug, Default)]
pub struct Ledger {
    /// (service, consumer, metric) → (minute, units used in it).
    used: HashMap<(String, String, String), (u64, i64)>,
}

impl Ledger {
    /// Charges `costs` to `consumer` in `minute`, all or nothing: when any metric would go over
    /// its limit, nothing is charged. Metrics without a limit are free.
    pub fn charge(
        &mut self,
        service: &str,
        consumer: &str,
        costs: &[(String, i64)],
        limits: &[Limit],
        minute: u64,
    ) -> Result<(), Exceeded> {
        let mut charges = Vec::new();
        for (metric, cost) in costs {
            let Some(limit) = limits.iter().find(|l| &l.metric == metric) else { continue };
            let slot = (service.to_owned(), consumer.to_owned(), metric.clone());
            let used = match self.used.get(&slot) {
                Some((window, used)) if *window == minute => *used,
                _ => 0,
            };
            if used.saturating_add(*cost) > limit.per_minute {
                return Err(Exceeded { metric: metric.clone(), limit: limit.name.clone() });
            }
            charges.push((slot, used.saturating_add(*cost)));
        }
        for (slot, used) in charges {
            self.used.insert(slot, (minute, used));
        }
        Ok(())
    }
}

/// A stable, non-reversible name for the consumer behind an API key.
pub fn consumer_of(key: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    digest.as_ref().iter().take(12).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Vec<Limit> {
        vec![
            Limit { name: "reads-limit".into(), metric: "reads".into(), per_minute: 3 },
            Limit { name: "writes-limit".into(), metric: "writes".into(), per_minute: 1 },
        ]
    }

    fn cost(metric: &str, units: i64) -> Vec<(String, i64)> {
        vec![(metric.to_owned(), units)]
    }

    #[test]
    fn a_consumer_is_refused_past_its_limit_until_the_next_minute() {
        let mut ledger = Ledger::default();
        for _ in 0..3 {
            assert_eq!(ledger.charge("s", "c1", &cost("reads", 1), &limits(), 10), Ok(()));
        }
        let refused = ledger.charge("s", "c1", &cost("reads", 1), &limits(), 10);
        assert_eq!(refused, Err(Exceeded { metric: "reads".into(), limit: "reads-limit".into() }));
        assert_eq!(ledger.charge("s", "c2", &cost("reads", 1), &limits(), 10), Ok(()), "other consumers are apart");
        assert_eq!(ledger.charge("t", "c1", &cost("reads", 1), &limits(), 10), Ok(()), "other services are apart");
        assert_eq!(ledger.charge("s", "c1", &cost("reads", 3), &limits(), 11), Ok(()));
    }

    #[test]
    fn charges_are_all_or_nothing_and_unlimited_metrics_are_free() {
        let mut ledger = Ledger::default();
        assert_eq!(ledger.charge("s", "c", &cost("writes", 1), &limits(), 0), Ok(()));
        let both = vec![("reads".to_owned(), 1), ("writes".to_owned(), 1)];
        assert!(ledger.charge("s", "c", &both, &limits(), 0).is_err());
        for _ in 0..3 {
            assert_eq!(ledger.charge("s", "c", &cost("reads", 1), &limits(), 0), Ok(()), "reads were not charged");
        }
        assert_eq!(ledger.charge("s", "c", &cost("other", 1000), &limits(), 0), Ok(()));
    }

    #[test]
    fn consumers_are_named_by_a_digest_not_the_key() {
        let name = consumer_of("AIzaSecret");
        assert_eq!(name.len(), 24);
        assert!(!name.contains("AIza"));
        assert_eq!(name, consumer_of("AIzaSecret"));
        assert_ne!(name, consumer_of("AIzaOther"));
    }
}
