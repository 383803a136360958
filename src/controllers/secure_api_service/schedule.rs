//! When a rotation's revision may roll out (pure): `rollout.batchSeconds` after the first
//! rotation it gathers, and inside `rollout.window`. Only a rotation waits — a revision whose
//! secret versions differ from the live one's; a spec change rolls out at once, and a rollout
//! that started is never interrupted by a window that closes.

use crate::api::secure_api_service::{PendingRevision, RevisionRecord, Rollout, RolloutWindow, Weekday};
use crate::runtime::error::InvalidField;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::civil::{Date, Time as TimeOfDay};
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{Span, Timestamp, ToSpan};
use std::time::Duration;

/// The revision `desired` waits as, or `None` when it may roll out now. `live` is the revision
/// the Deployment runs, `pending` the wait already recorded in status.
pub fn defer(
    rollout: &Rollout,
    live: Option<&RevisionRecord>,
    desired: &RevisionRecord,
    pending: Option<&PendingRevision>,
    now: Timestamp,
) -> Result<Option<PendingRevision>, InvalidField> {
    if rollout.window.is_none() && rollout.batch_seconds <= 0 {
        return Ok(None);
    }
    let Some(live) = live.filter(|live| live.revision != desired.revision) else { return Ok(None) };
    if live.secret_versions == desired.secret_versions {
        return Ok(None);
    }
    // The batch runs from the first rotation it gathers, whichever revision it has come to.
    let since = pending.map_or(now, |pending| pending.since.0);
    let batched = since + Duration::from_secs(u64::try_from(rollout.batch_seconds).unwrap_or(0));
    let starts_at = match &rollout.window {
        Some(window) => window_opens(window, batched)?,
        None => batched,
    };
    if starts_at <= now {
        return Ok(None);
    }
    Ok(Some(PendingRevision {
        revision: desired.revision.clone(),
        secret_versions: desired.secret_versions.clone(),
        since: Time(since),
        starts_at: Time(starts_at),
    }))
}

/// What the schema cannot check of a window: its time zone and times, and that it opens.
pub fn check(rollout: &Rollout, now: Timestamp) -> Result<(), InvalidField> {
    rollout.window.as_ref().map_or(Ok(()), |window| window_opens(window, now).map(drop))
}

/// How long until `pending` starts (a little after, so that the look finds it due).
pub fn until(pending: &PendingRevision, now: Timestamp) -> Duration {
    let left = Duration::try_from(pending.starts_at.0.duration_since(now)).unwrap_or_default();
    left + Duration::from_millis(20)
}

/// The first instant at or after `at` when `window` is open.
pub fn window_opens(window: &RolloutWindow, at: Timestamp) -> Result<Timestamp, InvalidField> {
    let invalid = |field: &str, problem: String| InvalidField::new(format!("spec.rollout.window.{field}"), problem);
    let zone = TimeZone::get(&window.time_zone)
        .map_err(|_| invalid("timeZone", format!("{:?} is not a time zone this operator knows", window.time_zone)))?;
    let start = time_of_day(&window.start).ok_or_else(|| invalid("start", format!("{:?} is no time", window.start)))?;
    let end = time_of_day(&window.end).ok_or_else(|| invalid("end", format!("{:?} is no time", window.end)))?;
    let today = at.to_zoned(zone.clone()).date();
    // A window that opened yesterday may run past midnight; a week and a day covers every day.
    for offset in -1..=8 {
        let Ok(day) = today.checked_add(offset.days()) else { continue };
        if !opens_on(window, day) {
            continue;
        }
        let (Ok(open), Ok(close)) = (instant(day, start, &zone), closing(day, start, end, &zone)) else { continue };
        if open <= at && at < close {
            return Ok(at);
        }
        if at < open {
            return Ok(open);
        }
    }
    Err(invalid("days", "the window never opens".into()))
}

fn opens_on(window: &RolloutWindow, day: Date) -> bool {
    use k8s_openapi::jiff::civil::Weekday as Civil;
    let weekday = match day.weekday() {
        Civil::Monday => Weekday::Mon,
        Civil::Tuesday => Weekday::Tue,
        Civil::Wednesday => Weekday::Wed,
        Civil::Thursday => Weekday::Thu,
        Civil::Friday => Weekday::Fri,
        Civil::Saturday => Weekday::Sat,
        Civil::Sunday => Weekday::Sun,
    };
    window.days.is_empty() || window.days.contains(&weekday)
}

/// When the window that opens on `day` closes: `end` that day, or the next when it is not after
/// `start` (equal: a whole day).
fn closing(day: Date, start: TimeOfDay, end: TimeOfDay, zone: &TimeZone) -> Result<Timestamp, ()> {
    let close_day = if end > start { day } else { day.checked_add(Span::new().days(1)).map_err(drop)? };
    instant(close_day, end, zone)
}

/// `time` on `day` in `zone` (a time a clock change skips is taken as after the change).
fn instant(day: Date, time: TimeOfDay, zone: &TimeZone) -> Result<Timestamp, ()> {
    day.to_datetime(time).to_zoned(zone.clone()).map(|zoned| zoned.timestamp()).map_err(drop)
}

/// `HH:MM` or `HH:MM:SS`.
fn time_of_day(text: &str) -> Option<TimeOfDay> {
    let mut parts = text.split(':').map(|part| part.parse::<i8>().ok());
    let (hour, minute) = (parts.next()??, parts.next()??);
    let second = match parts.next() {
        Some(second) => second?,
        None => 0,
    };
    if parts.next().is_some() {
        return None;
    }
    TimeOfDay::new(hour, minute, second, 0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn window(value: serde_json::Value) -> RolloutWindow {
        serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"))
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn a_window_is_open_inside_its_hours_and_opens_next_at_its_start() {
        // 2026-12-07 is a Monday.
        let office = window(json!({ "days": ["Mon", "Tue"], "start": "09:00", "end": "17:00" }));
        assert_eq!(window_opens(&office, at("2026-12-07T10:00:00Z")), Ok(at("2026-12-07T10:00:00Z")));
        assert_eq!(window_opens(&office, at("2026-12-07T08:00:00Z")), Ok(at("2026-12-07T09:00:00Z")));
        assert_eq!(window_opens(&office, at("2026-12-07T17:00:00Z")), Ok(at("2026-12-08T09:00:00Z")));
        assert_eq!(window_opens(&office, at("2026-12-08T18:00:00Z")), Ok(at("2026-12-14T09:00:00Z")), "next Monday");
    }

    #[test]
    fn a_window_past_midnight_stays_open_into_the_next_day_in_its_time_zone() {
        let night = window(json!({ "days": ["Sun"], "start": "22:00", "end": "02:00", "timeZone": "Europe/Paris" }));
        // Sunday 2026-12-06 23:30 in Paris is 22:30 UTC; Monday 01:30 Paris is still open.
        assert_eq!(window_opens(&night, at("2026-12-06T22:30:00Z")), Ok(at("2026-12-06T22:30:00Z")));
        assert_eq!(window_opens(&night, at("2026-12-07T00:30:00Z")), Ok(at("2026-12-07T00:30:00Z")));
        assert_eq!(window_opens(&night, at("2026-12-07T01:30:00Z")), Ok(at("2026-12-13T21:00:00Z")));
    }

    #[test]
    fn an_unknown_time_zone_names_its_field() {
        let bad = window(json!({ "start": "09:00", "end": "17:00", "timeZone": "Mars/Olympus" }));
        let error = window_opens(&bad, at("2026-12-07T10:00:00Z")).err().map(|e| e.field);
        assert_eq!(error.as_deref(), Some("spec.rollout.window.timeZone"));
    }

    fn record(revision: &str, db: &str) -> RevisionRecord {
        RevisionRecord {
            revision: revision.into(),
            secret_versions: [("db".to_owned(), db.to_owned())].into(),
            ..Default::default()
        }
    }

    fn rollout(value: serde_json::Value) -> Rollout {
        serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_rotation_waits_for_its_batch_from_the_first_rotation_it_gathers() {
        let batched = rollout(json!({ "batchSeconds": 30 }));
        let (live, first, second) = (record("api-1", "1"), record("api-2", "2"), record("api-3", "3"));
        let now = at("2026-12-07T10:00:00Z");
        let pending = defer(&batched, Some(&live), &first, None, now).ok().flatten();
        let pending = pending.unwrap_or_else(|| panic!("waits"));
        assert_eq!(pending.starts_at.0, at("2026-12-07T10:00:30Z"));
        // Another rotation ten seconds later joins the same batch.
        let later = defer(&batched, Some(&live), &second, Some(&pending), at("2026-12-07T10:00:10Z")).ok().flatten();
        assert_eq!(later.map(|p| (p.revision, p.starts_at.0)), Some(("api-3".into(), at("2026-12-07T10:00:30Z"))));
        assert_eq!(defer(&batched, Some(&live), &second, Some(&pending), at("2026-12-07T10:00:30Z")), Ok(None));
    }

    #[test]
    fn a_spec_change_the_first_revision_and_no_schedule_roll_at_once() {
        let now = at("2026-12-07T03:00:00Z");
        let windowed = rollout(json!({ "window": { "start": "09:00", "end": "17:00" } }));
        let live = record("api-1", "1");
        assert_eq!(defer(&windowed, Some(&live), &record("api-2", "1"), None, now), Ok(None), "same versions");
        assert_eq!(defer(&windowed, None, &record("api-2", "2"), None, now), Ok(None), "nothing runs yet");
        assert_eq!(defer(&Rollout::default(), Some(&live), &record("api-2", "2"), None, now), Ok(None));
        let waits = defer(&windowed, Some(&live), &record("api-2", "2"), None, now).ok().flatten();
        assert_eq!(waits.map(|p| p.starts_at.0), Some(at("2026-12-07T09:00:00Z")));
    }
}
