//! The decision step on fixed clocks: creation, renewal, standing by, expiry edges, released
//! Leases, transitions; and the settings around it.

use super::*;

const D: Duration = Duration::from_secs(4);

fn at(seconds: i64, micros: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + seconds)
        .and_then(|t| t.checked_add(SignedDuration::from_micros(micros)))
        .unwrap_or_else(|e| panic!("timestamp: {e}"))
}

fn lease(spec: LeaseSpec) -> Lease {
    Lease { spec: Some(spec), ..Lease::default() }
}

/// A Lease held by `holder`, renewed at second `renewed`, valid for `duration` seconds.
fn held_by(holder: &str, renewed: i64, duration: i32, transitions: i32) -> Lease {
    lease(LeaseSpec {
        holder_identity: Some(holder.into()),
        acquire_time: Some(MicroTime(at(0, 0))),
        renew_time: Some(MicroTime(at(renewed, 0))),
        lease_duration_seconds: Some(duration),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    })
}

fn spec_of(decision: Decision) -> LeaseSpec {
    match decision {
        Decision::Create(spec) | Decision::Acquire(spec) | Decision::Renew(spec) => spec,
        Decision::StandBy { holder } => panic!("expected a write, got standing by for {holder}"),
    }
}

#[test]
fn no_lease_is_created_held_by_us_with_zero_transitions() {
    let Decision::Create(spec) = decide(None, "a", at(10, 0), D) else { panic!("expected Create") };
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(spec.lease_duration_seconds, Some(4));
    assert_eq!(spec.lease_transitions, Some(0));
    assert_eq!(spec.acquire_time, Some(MicroTime(at(10, 0))));
    assert_eq!(spec.renew_time, Some(MicroTime(at(10, 0))));
}

#[test]
fn our_own_lease_is_renewed_keeping_acquire_time_and_transitions() {
    let ours = held_by("a", 8, 4, 3);
    let Decision::Renew(spec) = decide(Some(&ours), "a", at(10, 0), D) else { panic!("expected Renew") };
    assert_eq!(spec.renew_time, Some(MicroTime(at(10, 0))));
    assert_eq!(spec.acquire_time, Some(MicroTime(at(0, 0))));
    assert_eq!(spec.lease_transitions, Some(3));
}

#[test]
fn our_own_lease_is_renewed_even_when_it_looks_expired() {
    // A restarted replica with a fixed --leader-identity: the old holder was this very replica.
    let ours = held_by("a", 0, 4, 1);
    assert!(matches!(decide(Some(&ours), "a", at(60, 0), D), Decision::Renew(_)));
}

#[test]
fn a_valid_lease_of_another_replica_means_standing_by() {
    let theirs = held_by("b", 8, 4, 0);
    assert_eq!(decide(Some(&theirs), "a", at(10, 0), D), Decision::StandBy { holder: "b".into() });
}

#[test]
fn expiry_is_strictly_after_renew_time_plus_duration() {
    let theirs = held_by("b", 10, 4, 2);
    let standing_by = Decision::StandBy { holder: "b".into() };
    assert_eq!(decide(Some(&theirs), "a", at(13, 999_999), D), standing_by);
    assert_eq!(decide(Some(&theirs), "a", at(14, 0), D), standing_by, "renewTime + duration == now is still valid");
    let Decision::Acquire(spec) = decide(Some(&theirs), "a", at(14, 1), D) else { panic!("expected Acquire") };
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(spec.lease_transitions, Some(3), "a change of holder is one more transition");
    assert_eq!(spec.acquire_time, Some(MicroTime(at(14, 1))), "a new holder has a new acquireTime");
    assert_eq!(spec.lease_duration_seconds, Some(4));
}

#[test]
fn the_duration_written_in_the_lease_wins_over_ours() {
    let theirs = held_by("b", 10, 30, 0);
    assert!(matches!(decide(Some(&theirs), "a", at(20, 0), D), Decision::StandBy { .. }));
    assert!(matches!(decide(Some(&theirs), "a", at(41, 0), D), Decision::Acquire(_)));
    // A missing or non-positive duration falls back to ours.
    for duration in [None, Some(0), Some(-5)] {
        let mut odd = held_by("b", 10, 0, 0);
        if let Some(spec) = odd.spec.as_mut() {
            spec.lease_duration_seconds = duration;
        }
        assert!(matches!(decide(Some(&odd), "a", at(14, 0), D), Decision::StandBy { .. }), "{duration:?}");
        assert!(matches!(decide(Some(&odd), "a", at(15, 0), D), Decision::Acquire(_)), "{duration:?}");
    }
}

#[test]
fn a_released_lease_is_taken_at_once_with_one_more_transition() {
    for holder in [None, Some(String::new())] {
        let mut free = held_by("ignored", 10, 4, 5);
        if let Some(spec) = free.spec.as_mut() {
            spec.holder_identity = holder.clone();
        }
        let Decision::Acquire(spec) = decide(Some(&free), "a", at(10, 0), D) else { panic!("{holder:?}: Acquire") };
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.lease_transitions, Some(6));
    }
}

#[test]
fn a_lease_without_spec_or_renew_time_is_free() {
    let empty = Lease::default();
    assert_eq!(spec_of(decide(Some(&empty), "a", at(0, 0), D)).lease_transitions, Some(1));
    let mut never_renewed = held_by("b", 0, 4, 0);
    if let Some(spec) = never_renewed.spec.as_mut() {
        spec.renew_time = None;
    }
    assert!(matches!(decide(Some(&never_renewed), "a", at(0, 0), D), Decision::Acquire(_)));
}

#[test]
fn fields_we_do_not_manage_are_kept() {
    let mut theirs = held_by("a", 8, 4, 0);
    if let Some(spec) = theirs.spec.as_mut() {
        spec.preferred_holder = Some("b".into());
        spec.strategy = Some("OldestEmulationVersion".into());
    }
    let spec = spec_of(decide(Some(&theirs), "a", at(10, 0), D));
    assert_eq!(
        (spec.preferred_holder.as_deref(), spec.strategy.as_deref()),
        (Some("b"), Some("OldestEmulationVersion"))
    );
}

#[test]
fn releasing_clears_the_holder_and_keeps_transitions_only_for_the_holder() {
    let ours = held_by("a", 8, 4, 2).spec.unwrap_or_default();
    let Some(free) = released(&ours, "a", at(9, 0)) else { panic!("ours must be releasable") };
    assert_eq!(holder(&free), None);
    assert_eq!(free.lease_transitions, Some(2));
    assert_eq!(free.lease_duration_seconds, Some(1));
    assert_eq!(free.renew_time, Some(MicroTime(at(9, 0))));
    assert_eq!(released(&ours, "b", at(9, 0)), None, "only the holder releases");
    // A standby takes the released Lease at its next try, long before the old one would expire.
    assert!(matches!(decide(Some(&lease(free)), "b", at(9, 1), D), Decision::Acquire(_)));
}

#[test]
fn the_renew_deadline_leaves_room_for_a_renewal() {
    let config = |duration, retry| Config {
        namespace: "ns".into(),
        name: "lease".into(),
        identity: "a".into(),
        lease_duration: Duration::from_secs(duration),
        retry_period: Duration::from_secs(retry),
    };
    assert_eq!(config(15, 2).renew_deadline(), Duration::from_secs(10));
    assert!(config(15, 2).validate().is_ok());
    assert!(config(4, 1).validate().is_ok());
    assert!(config(2, 1).validate().is_ok());
    for (duration, retry) in [(3, 2), (4, 4), (5, 10)] {
        let error = config(duration, retry).validate().err().unwrap_or_default();
        assert!(error.contains("--lease-retry-period") && !error.contains('\n'), "{duration}/{retry}: {error}");
    }
}

#[test]
fn lost_leadership_is_one_line_naming_the_lease() {
    let lost = LostLeadership { lease: "ns/lease".into(), reason: "b holds it now".into() };
    let text = lost.to_string();
    assert!(text.starts_with("lost leadership of Lease ns/lease: b holds it now"), "{text}");
    assert!(!text.contains('\n'));
}

#[test]
fn the_default_identity_is_the_host_name_with_a_random_suffix() {
    let (one, two) = (default_identity(), default_identity());
    assert_ne!(one, two);
    let (host, suffix) = one.rsplit_once('_').unwrap_or_default();
    assert!(!host.is_empty() && suffix.len() == 8 && suffix.chars().all(|c| c.is_ascii_hexdigit()), "{one}");
}

#[test]
fn the_lease_namespace_flag_wins() {
    assert_eq!(lease_namespace(Some("ops"), Some("apps")), "ops");
    if !std::path::Path::new("/var/run/secrets/kubernetes.io/serviceaccount/namespace").exists() {
        assert_eq!(lease_namespace(None, Some("apps")), "apps");
        assert_eq!(lease_namespace(None, None), "default");
    }
}
