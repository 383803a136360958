use super::*;
use crate::api::secure_api_service::Rollout;
use serde_json::json;

fn rollout(steps: serde_json::Value, interval: &str) -> Rollout {
    serde_json::from_value(
        json!({ "strategy": "Canary", "canary": { "steps": steps }, "analysis": { "interval": interval } }),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn two_steps() -> Rollout {
    rollout(json!([{ "weight": 10, "pause": "1m" }, { "weight": 50, "pause": "0s" }]), "10s")
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap_or_default()
}

fn record(revision: &str) -> RevisionRecord {
    RevisionRecord { revision: revision.into(), ..RevisionRecord::default() }
}

fn stable(revision: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "metadata": { "name": "api", "generation": 1, "annotations": { REVISION_ANNOTATION: revision } },
        "spec": { "replicas": replicas, "selector": {}, "template": {} },
        "status": { "observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas },
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The canary Deployment of `trial` at generation 2 with `ready` of `replicas` pods Ready.
fn canary(trial: &Trial, replicas: i32, ready: i32) -> Deployment {
    serde_json::from_value(json!({
        "metadata": { "name": "api-canary", "generation": 2, "annotations": trial.annotations() },
        "spec": { "replicas": replicas, "selector": {}, "template": {} },
        "status": { "observedGeneration": 2, "replicas": replicas, "updatedReplicas": replicas, "readyReplicas": ready },
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

fn trial(step: usize, started: i64) -> Trial {
    Trial { revision: "api-new".into(), step, started: at(started), aborted: None }
}

fn plan_at(rollout: &Rollout, canary: Option<&Deployment>, rejected: &[RejectedRevision], now: i64) -> Plan {
    let stable = stable("api-old", 9);
    let desired = record("api-new");
    let situation = Situation {
        rollout,
        desired: &desired,
        held: false,
        stable: Some(&stable),
        canary,
        rejected,
        reading: None,
        now: at(now),
    };
    plan(&situation)
}

#[test]
fn a_trial_reads_back_from_its_annotations() {
    let aborted = Trial { aborted: Some("0 of 1 pods were Ready".into()), ..trial(1, 5) };
    for trial in [trial(0, 0), aborted] {
        assert_eq!(Trial::of(&canary(&trial, 1, 1)), Some(trial));
    }
    let unmarked = stable("api-old", 1);
    assert_eq!(Trial::of(&unmarked), None, "a Deployment without a step records no trial");
}

#[test]
fn rolling_update_the_first_revision_and_the_stable_one_go_straight_to_the_stable_deployment() {
    fn direct(rollout: &Rollout, stable: Option<&Deployment>) -> Plan {
        let desired = record("api-new");
        plan(&Situation {
            rollout,
            desired: &desired,
            held: false,
            stable,
            canary: None,
            rejected: &[],
            reading: None,
            now: at(0),
        })
    }
    assert_eq!(direct(&Rollout::default(), Some(&stable("api-old", 2))), Plan::Direct);
    assert_eq!(direct(&two_steps(), None), Plan::Direct, "nothing runs yet");
    assert_eq!(direct(&two_steps(), Some(&stable("api-new", 2))), Plan::Direct);
    assert_eq!(direct(&two_steps(), Some(&stable("api-old", 0))), Plan::Direct, "no traffic to protect");
}

#[test]
fn a_new_revision_starts_at_the_first_step() {
    assert_eq!(plan_at(&two_steps(), None, &[], 0), Plan::Step(trial(0, 0)));
    // A canary of another revision (an older rotation) is replaced by this one's trial.
    let older = Trial { revision: "api-older".into(), ..trial(1, 0) };
    assert_eq!(plan_at(&two_steps(), Some(&canary(&older, 5, 5)), &[], 30), Plan::Step(trial(0, 30)));
}

#[test]
fn a_step_waits_for_its_pods_and_its_pause_then_moves_on_and_promotes_after_the_last() {
    let rollout = two_steps();
    let first = trial(0, 0);
    assert_eq!(
        plan_at(&rollout, Some(&canary(&first, 1, 0)), &[], 5),
        Plan::Step(first.clone()),
        "within the interval"
    );
    assert_eq!(plan_at(&rollout, Some(&canary(&first, 1, 1)), &[], 30), Plan::Step(first.clone()), "the pause runs");
    assert_eq!(plan_at(&rollout, Some(&canary(&first, 1, 1)), &[], 60), Plan::Step(trial(1, 60)));
    let second = trial(1, 60);
    assert_eq!(plan_at(&rollout, Some(&canary(&second, 9, 9)), &[], 61), Plan::Direct, "no pause: promoted");
}

#[test]
fn pods_not_ready_after_the_interval_abort_the_trial() {
    let rollout = two_steps();
    let first = trial(0, 0);
    let Plan::Abort(aborted) = plan_at(&rollout, Some(&canary(&first, 1, 0)), &[], 10) else {
        panic!("aborted after the interval");
    };
    assert_eq!(aborted.aborted.as_deref(), Some("0 of 1 pods were Ready 10s after the step began"));
    assert_eq!(replicas(&aborted, &rollout, 9, TrafficSplit::ReplicaRatio), 0, "the canary loses its pods");
    // An aborted trial stays aborted, whatever its pods do.
    assert_eq!(plan_at(&rollout, Some(&canary(&aborted, 0, 0)), &[], 500), Plan::Abort(aborted));
}

#[test]
fn a_status_that_has_not_caught_up_with_the_step_is_not_a_pass() {
    let rollout = two_steps();
    let first = trial(0, 0);
    let mut lagging = canary(&first, 1, 1);
    lagging.metadata.generation = Some(3);
    assert_eq!(gate(&lagging, Duration::from_secs(1), Duration::from_secs(10), None), Gate::Pending);
    assert!(matches!(plan_at(&rollout, Some(&lagging), &[], 11), Plan::Abort(_)));
}

#[test]
fn a_rejected_revision_is_not_tried_again() {
    let rejected = [RejectedRevision {
        revision: "api-new".into(),
        message: "0 of 1 pods were Ready".into(),
        ..RejectedRevision::default()
    }];
    let Plan::Abort(trial) = plan_at(&two_steps(), None, &rejected, 0) else { panic!("held as rejected") };
    assert_eq!(trial.aborted.as_deref(), Some("0 of 1 pods were Ready"));
    let desired = record("api-new");
    let (old, rollout) = (stable("api-old", 2), two_steps());
    let held = Situation {
        rollout: &rollout,
        desired: &desired,
        held: true,
        stable: Some(&old),
        canary: None,
        rejected: &[],
        reading: None,
        now: at(0),
    };
    assert_eq!(plan(&held), Plan::Direct, "a revision held after a rollback is the rollback's to hold");
}

#[test]
fn the_next_look_is_at_the_end_of_the_interval_or_the_pause() {
    let rollout = two_steps();
    let look = |step, now| next_look(&trial(step, 0), &rollout, at(now)).as_secs();
    assert_eq!(look(0, 0), 10, "the interval first");
    assert_eq!(look(0, 20), 10, "then every interval until the pause ends");
    assert_eq!(look(0, 55), 5, "the end of the pause");
    assert_eq!(look(1, 0), 10, "a step without a pause: its interval");
    assert_eq!(look(1, 30), 10, "past both: every interval");
}

#[test]
fn rejections_are_kept_newest_first_once_each_and_bounded() {
    let mut rejected = vec![];
    for n in 0..12 {
        reject(&mut rejected, RejectedRevision { revision: format!("api-{n}"), ..RejectedRevision::default() });
    }
    reject(&mut rejected, RejectedRevision { revision: "api-5".into(), ..RejectedRevision::default() });
    let names: Vec<&str> = rejected.iter().map(|r| r.revision.as_str()).collect();
    assert_eq!(names.len(), REJECTED_KEPT);
    assert_eq!(names[..3], ["api-5", "api-11", "api-10"]);
}

#[test]
fn the_status_names_the_step_and_the_weight_the_pods_give() {
    let status = status(&trial(0, 0), &two_steps(), &record("api-new"), 9, TrafficSplit::ReplicaRatio);
    assert_eq!((status.step, status.steps, status.weight, status.effective_weight), (1, 2, 10, 10));
    let one_pod = super::status(&trial(0, 0), &two_steps(), &record("api-new"), 1, TrafficSplit::ReplicaRatio);
    assert_eq!(one_pod.effective_weight, 50, "one stable pod: the smallest canary is half");
    let routed = super::status(&trial(0, 0), &two_steps(), &record("api-new"), 1, TrafficSplit::HTTPRoute);
    assert_eq!(
        (routed.effective_weight, routed.traffic_split),
        (10, TrafficSplit::HTTPRoute),
        "the route's weight, exactly"
    );
}

#[test]
fn step_weights_must_grow() {
    assert_eq!(check(&two_steps()), Ok(()));
    let shrinking = rollout(json!([{ "weight": 50 }, { "weight": 50 }]), "10s");
    let refused = check(&shrinking).err().map(|e| e.to_string());
    assert_eq!(
        refused.as_deref(),
        Some(
            "invalid spec: spec.rollout.canary.steps[1].weight: 50 does not exceed the step before (50): weights must grow from step to step"
        )
    );
}

#[test]
fn a_prometheus_reading_above_its_max_fails_at_once_and_a_failing_query_holds_then_fails() {
    let ready = canary(&trial(0, 0), 1, 1);
    let (second, interval) = (Duration::from_secs(1), Duration::from_secs(10));
    let over: Reading = Ok(Some(3.0));
    assert_eq!(
        gate(&ready, second, interval, Some((&over, 0.0))),
        Gate::Fail("the Prometheus query gave 3, above its max 0".into())
    );
    for fine in [Ok(Some(0.0)), Ok(None)] {
        assert_eq!(gate(&ready, second, interval, Some((&fine, 0.0))), Gate::Pass, "{fine:?}");
    }
    let failing: Reading = Err("http://prom:9090 did not answer: connection failed".into());
    assert_eq!(gate(&ready, second, interval, Some((&failing, 0.0))), Gate::Pending);
    let Gate::Fail(why) = gate(&ready, interval, interval, Some((&failing, 0.0))) else {
        panic!("fails after the interval")
    };
    assert!(why.contains("connection failed"), "{why}");
    let unready = canary(&trial(0, 0), 1, 0);
    assert_eq!(gate(&unready, second, interval, Some((&over, 5.0))), Gate::Pending, "under its max, pods pending");
}
