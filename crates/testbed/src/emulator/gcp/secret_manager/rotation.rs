//! Rotation schedules: when Secret Manager next tells a secret's topics to rotate it
//! (`SECRET_ROTATE`), how often after that, the rules the API checks, and what an update mask
//! changes.

use super::rest::proto_timestamp;
use super::rpc::RpcError;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The shortest rotation period: one hour.
pub const MIN_PERIOD_SECONDS: u64 = 3600;

/// The longest rotation period, and how far ahead a next rotation time may be: 100 years.
pub const MAX_SECONDS: u64 = 3_153_600_000;

/// How far ahead a next rotation time must be when a request sets it: 5 minutes.
pub const MIN_LEAD_SECONDS: i64 = 300;

/// A secret's rotation policy; at least one field is set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rotation {
    pub next_rotation_time: Option<Timestamp>,
    /// Whole seconds.
    pub rotation_period: Option<u64>,
}

impl Rotation {
    /// `None` for a policy with no field set: the API then leaves `rotation` out.
    fn non_empty(self) -> Option<Self> {
        (self.next_rotation_time.is_some() || self.rotation_period.is_some()).then_some(self)
    }

    /// `{"nextRotationTime":"...","rotationPeriod":"3600s"}`.
    pub fn to_json(self) -> Value {
        let mut object = Map::new();
        if let Some(next) = self.next_rotation_time {
            object.insert("nextRotationTime".into(), json!(proto_timestamp(next)));
        }
        if let Some(period) = self.rotation_period {
            object.insert("rotationPeriod".into(), json!(format!("{period}s")));
        }
        Value::Object(object)
    }

    /// Whether its next rotation time has come at `now`.
    pub fn is_due(self, now: Timestamp) -> bool {
        self.next_rotation_time.is_some_and(|next| next <= now)
    }

    /// The policy after a rotation notification: the next time moved on by the period, or
    /// without a period nothing left.
    pub fn advanced(self) -> Option<Self> {
        let period = SignedDuration::from_secs(i64::try_from(self.rotation_period?).ok()?);
        let next = self.next_rotation_time?.checked_add(period).ok()?;
        Some(Self { next_rotation_time: Some(next), ..self })
    }
}

/// `rotation` as sent to create and patch.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotationBody {
    next_rotation_time: Option<String>,
    rotation_period: Option<String>,
}

impl RotationBody {
    pub fn next_rotation_time(&self) -> Result<Option<Timestamp>, RpcError> {
        let Some(text) = self.next_rotation_time.as_deref() else { return Ok(None) };
        text.parse().map(Some).map_err(|_| {
            RpcError::invalid_argument(format!(
                "Invalid value at 'secret.rotation.next_rotation_time' (type.googleapis.com/google.protobuf.Timestamp), {text}"
            ))
        })
    }

    /// A proto Duration in whole seconds (`"7200s"`, `"7200.000s"`).
    pub fn rotation_period(&self) -> Result<Option<u64>, RpcError> {
        let Some(text) = self.rotation_period.as_deref() else { return Ok(None) };
        let invalid = || {
            RpcError::invalid_argument(format!(
                "Invalid value at 'secret.rotation.rotation_period' (type.googleapis.com/google.protobuf.Duration), {text}"
            ))
        };
        let seconds = text.trim().strip_suffix('s').ok_or_else(invalid)?;
        let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
        let whole: u64 = whole.parse().map_err(|_| invalid())?;
        if !fraction.bytes().all(|b| b == b'0') {
            return Err(RpcError::invalid_argument("Secret.rotation.rotation_period must be in whole seconds."));
        }
        Ok(Some(whole))
    }

    /// The policy it sets; `None` when it sets no field.
    pub fn rotation(&self) -> Result<Option<Rotation>, RpcError> {
        let rotation =
            Rotation { next_rotation_time: self.next_rotation_time()?, rotation_period: self.rotation_period()? };
        Ok(rotation.non_empty())
    }
}

/// What an update mask does to the rotation: `rotation` replaces it whole, and
/// `rotation.next_rotation_time` / `rotation.rotation_period` set (or clear) one field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RotationUpdate {
    pub whole: Option<Option<Rotation>>,
    pub next_rotation_time: Option<Option<Timestamp>>,
    pub rotation_period: Option<Option<u64>>,
}

impl RotationUpdate {
    pub fn apply(&self, current: Option<Rotation>) -> Option<Rotation> {
        let mut rotation = self.whole.unwrap_or(current).unwrap_or_default();
        if let Some(next) = self.next_rotation_time {
            rotation.next_rotation_time = next;
        }
        if let Some(period) = self.rotation_period {
            rotation.rotation_period = period;
        }
        rotation.non_empty()
    }

    /// Whether the request gives a next rotation time (only then must it be 5 minutes ahead: a
    /// patch of other fields does not fail for a time that has since come closer).
    pub fn sets_next_time(&self) -> bool {
        matches!(self.whole, Some(Some(Rotation { next_rotation_time: Some(_), .. })))
            || matches!(self.next_rotation_time, Some(Some(_)))
    }
}

/// The API's rules for a secret's rotation, checked on the secret as a create or patch leaves it:
/// at least one topic, a period of 1 hour to 100 years that comes with a next time, and a next
/// time the request sets at least 5 minutes and at most 100 years ahead of `now`.
pub fn validate(
    rotation: Option<&Rotation>,
    topics: &[String],
    sets_next_time: bool,
    now: Timestamp,
) -> Result<(), RpcError> {
    let Some(rotation) = rotation else { return Ok(()) };
    if topics.is_empty() {
        return Err(RpcError::invalid_argument("Secret.topics must be set to configure Secret.rotation."));
    }
    if let Some(period) = rotation.rotation_period {
        if rotation.next_rotation_time.is_none() {
            return Err(RpcError::invalid_argument(
                "Secret.rotation.next_rotation_time must be set if Secret.rotation.rotation_period is set.",
            ));
        }
        if !(MIN_PERIOD_SECONDS..=MAX_SECONDS).contains(&period) {
            return Err(RpcError::invalid_argument(format!(
                "Secret.rotation.rotation_period must be at least {MIN_PERIOD_SECONDS}s and at most {MAX_SECONDS}s."
            )));
        }
    }
    let Some(next) = rotation.next_rotation_time.filter(|_| sets_next_time) else { return Ok(()) };
    let ahead = next.duration_since(now);
    if ahead < SignedDuration::from_secs(MIN_LEAD_SECONDS) {
        return Err(RpcError::invalid_argument(format!(
            "Secret.rotation.next_rotation_time must be at least {MIN_LEAD_SECONDS}s in the future."
        )));
    }
    if ahead > SignedDuration::from_secs(i64::try_from(MAX_SECONDS).unwrap_or(i64::MAX)) {
        return Err(RpcError::invalid_argument(format!(
            "Secret.rotation.next_rotation_time must be at most {MAX_SECONDS}s in the future."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::rest::parse_body;
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn body(json: &str) -> RotationBody {
        parse_body(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    const NOW: &str = "2030-01-01T00:00:00Z";
    const TOPICS: &[String] = &[];

    fn topics() -> Vec<String> {
        vec!["projects/p/topics/events".to_owned()]
    }

    #[test]
    fn a_policy_reads_and_writes_back_in_proto3_json() {
        let rotation = body(r#"{"nextRotationTime":"2030-01-01T15:30:00-05:00","rotationPeriod":"7200s"}"#).rotation();
        let expected = Rotation { next_rotation_time: Some(at("2030-01-01T20:30:00Z")), rotation_period: Some(7200) };
        assert_eq!(rotation, Ok(Some(expected)));
        assert_eq!(expected.to_json(), json!({"nextRotationTime": "2030-01-01T20:30:00Z", "rotationPeriod": "7200s"}));
        assert_eq!(body("{}").rotation(), Ok(None));
        assert!(body(r#"{"rotationPeriod":"1.5s"}"#).rotation().is_err());
        assert!(body(r#"{"rotationPeriod":"an hour"}"#).rotation().is_err());
        assert!(body(r#"{"nextRotationTime":"tomorrow"}"#).rotation().is_err());
    }

    #[test]
    fn rotation_needs_a_topic_and_a_next_time_with_a_period_in_range() {
        let now = at(NOW);
        let next = Some(at("2030-01-02T00:00:00Z"));
        let ok = Rotation { next_rotation_time: next, rotation_period: Some(3600) };
        assert_eq!(validate(Some(&ok), &topics(), true, now), Ok(()));
        assert!(validate(Some(&ok), TOPICS, true, now).is_err_and(|e| e.message.contains("topics")));
        let short = Rotation { rotation_period: Some(3599), ..ok };
        assert!(validate(Some(&short), &topics(), true, now).is_err());
        let long = Rotation { rotation_period: Some(MAX_SECONDS + 1), ..ok };
        assert!(validate(Some(&long), &topics(), true, now).is_err());
        let period_only = Rotation { next_rotation_time: None, rotation_period: Some(3600) };
        assert!(validate(Some(&period_only), &topics(), false, now).is_err());
        assert_eq!(validate(None, TOPICS, false, now), Ok(()));
    }

    #[test]
    fn a_next_time_set_now_must_be_5_minutes_to_100_years_ahead() {
        let now = at(NOW);
        let soon = Rotation { next_rotation_time: Some(at("2030-01-01T00:04:59Z")), rotation_period: None };
        assert!(validate(Some(&soon), &topics(), true, now).is_err());
        // The same time already stored does not fail a patch of something else.
        assert_eq!(validate(Some(&soon), &topics(), false, now), Ok(()));
        let five = Rotation { next_rotation_time: Some(at("2030-01-01T00:05:00Z")), rotation_period: None };
        assert_eq!(validate(Some(&five), &topics(), true, now), Ok(()));
        let far = Rotation { next_rotation_time: Some(at("2131-01-01T00:00:00Z")), rotation_period: None };
        assert!(validate(Some(&far), &topics(), true, now).is_err());
    }

    #[test]
    fn a_rotation_advances_by_its_period_or_ends() {
        let with_period = Rotation { next_rotation_time: Some(at(NOW)), rotation_period: Some(3600) };
        assert!(with_period.is_due(at(NOW)) && !with_period.is_due(at("2029-12-31T23:59:59Z")));
        let advanced = with_period.advanced();
        assert_eq!(advanced.and_then(|r| r.next_rotation_time), Some(at("2030-01-01T01:00:00Z")));
        let once = Rotation { rotation_period: None, ..with_period };
        assert_eq!(once.advanced(), None);
    }

    #[test]
    fn masks_replace_the_policy_or_set_one_field() {
        let current = Some(Rotation { next_rotation_time: Some(at(NOW)), rotation_period: Some(3600) });
        let period = RotationUpdate { rotation_period: Some(Some(7200)), ..RotationUpdate::default() };
        assert_eq!(period.apply(current).and_then(|r| r.rotation_period), Some(7200));
        assert!(!period.sets_next_time());
        let clear = RotationUpdate { whole: Some(None), ..RotationUpdate::default() };
        assert_eq!(clear.apply(current), None);
        let clear_both =
            RotationUpdate { next_rotation_time: Some(None), rotation_period: Some(None), ..RotationUpdate::default() };
        assert_eq!(clear_both.apply(current), None);
        let next = RotationUpdate { next_rotation_time: Some(Some(at(NOW))), ..RotationUpdate::default() };
        assert!(next.sets_next_time());
        assert_eq!(RotationUpdate::default().apply(current), current);
    }
}
