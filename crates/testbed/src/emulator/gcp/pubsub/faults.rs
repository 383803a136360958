//! Delivery faults: the ways real Pub/Sub's at-least-once delivery surprises subscribers, on
//! demand, so a consumer's idempotency and ack handling can be tested.

use std::time::Duration;

/// What the emulator's Pub/Sub does wrong, on purpose, from the moment it is set
/// ([`crate::emulator::gcp::GcpEmulator::set_delivery_faults`]). The default does nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryFaults {
    /// Extra copies of each message published from now on, per subscription: every copy is a
    /// delivery of its own (same `messageId`, its own ack id) and must be acknowledged on its own.
    pub duplicate: u32,
    /// How long a message published from now on stays invisible to pulls.
    pub delay: Option<Duration>,
    /// Every pull answers its batch in reverse order (oldest last).
    pub reorder: bool,
    /// The next this-many acknowledgements (counted per ack id) are answered with success and
    /// ignored, so those messages are delivered again once their ack deadline passes.
    pub drop_acks: u32,
    /// The next this-many messages published are accepted (they get a message id) and never
    /// delivered to any subscription, as a message lost between Secret Manager and Pub/Sub.
    pub lose: u32,
}

impl DeliveryFaults {
    /// Uses up one lost message; `true` when this one is to be lost.
    pub fn lose_one(&mut self) -> bool {
        use_up(&mut self.lose)
    }

    /// Uses up one dropped acknowledgement; `true` when this one is to be ignored.
    pub fn drop_ack(&mut self) -> bool {
        use_up(&mut self.drop_acks)
    }
}

/// Counts one down; `false` once it is zero.
fn use_up(left: &mut u32) -> bool {
    match left.checked_sub(1) {
        Some(rest) => {
            *left = rest;
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_acks_are_used_up_one_by_one() {
        let mut faults = DeliveryFaults { drop_acks: 2, ..DeliveryFaults::default() };
        assert!(faults.drop_ack());
        assert!(faults.drop_ack());
        assert!(!faults.drop_ack());
        assert_eq!(faults, DeliveryFaults::default());
    }

    #[test]
    fn lost_messages_are_used_up_one_by_one() {
        let mut faults = DeliveryFaults { lose: 1, ..DeliveryFaults::default() };
        assert!(faults.lose_one());
        assert!(!faults.lose_one());
    }
}
