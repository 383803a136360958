//! Sequences of reconciles of one object, each request of the skeleton asserted in order: the
//! finalizer is added once, the status is written only when it changes, and each distinct
//! failure makes one Warning Event.

use super::super::reconcile_owned;
use super::probe::{
    ApiServer, EVENTS, OBJECT, Probe, ProbeContext, ProbeError, STATUS, context, merging, patched, probe, within,
};
use crate::api::FINALIZER;
use crate::runtime::recheck::Recheck;
use hyper::Method;
use serde_json::{Value, json};
use std::sync::Arc;

/// A Ready condition as the probe's status holds it.
fn ready(status: &str, reason: &str, message: &str) -> Value {
    json!({ "observedGeneration": 1, "conditions": [{
        "type": "Ready", "status": status, "reason": reason, "message": message,
        "lastTransitionTime": "2025-01-01T00:00:00Z", "observedGeneration": 1,
    }] })
}

/// How many failed reconciles the metrics counted in `category`.
fn failures(ctx: &ProbeContext, category: &str) -> usize {
    let series = format!(r#"secureapi_reconcile_errors_total{{controller="secretref",category="{category}"}} "#);
    let text = ctx.metrics.encode();
    let line = text.lines().find(|line| line.starts_with(&series));
    line.and_then(|line| line.rsplit(' ').next()?.parse().ok()).unwrap_or(0)
}

/// A failure of `object` reported: the Warning Event, then the status (its patch is returned).
async fn reported(server: &mut ApiServer, object: &Probe) -> (Value, Value) {
    let event = server.expect(Method::POST, EVENTS, Clone::clone).await;
    let patch = server.expect(Method::PATCH, STATUS, merging(object)).await;
    (event, patch)
}

#[tokio::test]
async fn the_finalizer_is_added_once_and_a_reconcile_of_the_same_object_adds_none() {
    let (ctx, mut server) = context();
    let stale = probe(json!({ "finalized": true }), ready("True", "Synced", "in line"));
    let (first, patch) = within(async {
        tokio::join!(
            reconcile_owned(Arc::new(stale.clone()), &ctx),
            server.expect(Method::PATCH, OBJECT, merging(&stale))
        )
    })
    .await;
    assert!(matches!(first, Ok(Recheck::OnChange)), "{first:?}");
    assert_eq!(
        patch,
        json!({ "metadata": { "finalizers": [FINALIZER], "resourceVersion": "1" } }),
        "a merge patch pinned to the version it was made from"
    );
    // The cache has not caught up: the same object comes again, then the one with the finalizer.
    let again = within(reconcile_owned(Arc::new(stale.clone()), &ctx)).await;
    assert!(matches!(again, Ok(Recheck::OnChange)), "{again:?}");
    let caught_up = patched(&stale, &patch);
    let result = within(reconcile_owned(Arc::new(caught_up), &ctx)).await;
    assert!(matches!(result, Ok(Recheck::OnChange)), "{result:?}");
    drop(ctx);
    server.expect_no_more().await;
}

#[tokio::test]
async fn an_object_that_does_not_need_the_finalizer_is_reconciled_without_it() {
    let (ctx, server) = context();
    let unfinalized = probe(json!({ "finalized": false }), ready("True", "Synced", "in line"));
    let result = within(reconcile_owned(Arc::new(unfinalized), &ctx)).await;
    assert!(matches!(result, Ok(Recheck::OnChange)), "{result:?}");
    drop(ctx);
    server.expect_no_more().await;
}

#[tokio::test]
async fn the_status_is_written_only_when_it_changes_and_then_only_what_changed() {
    let (ctx, mut server) = context();
    let fresh = probe(json!({}), Value::Null);
    let (result, patch) = within(async {
        tokio::join!(
            reconcile_owned(Arc::new(fresh.clone()), &ctx),
            server.expect(Method::PATCH, STATUS, merging(&fresh))
        )
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(patch["status"]["conditions"][0]["reason"], "Synced", "{patch}");
    let written = patched(&fresh, &patch);

    // The same status again: nothing to write.
    within(reconcile_owned(Arc::new(written.clone()), &ctx)).await.unwrap_or_else(|e| panic!("{e}"));

    // A new generation: the status says it observed it, and the patch holds only that.
    let mut edited = written;
    edited.metadata.generation = Some(2);
    let (result, patch) = within(async {
        tokio::join!(
            reconcile_owned(Arc::new(edited.clone()), &ctx),
            server.expect(Method::PATCH, STATUS, merging(&edited))
        )
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    let fields: Vec<&String> = patch["status"].as_object().map(|s| s.keys().collect()).unwrap_or_default();
    assert_eq!(fields, ["conditions", "observedGeneration"], "{patch}");
    assert_eq!(patch["status"]["observedGeneration"], 2);
    drop(ctx);
    server.expect_no_more().await;
}

#[tokio::test]
async fn one_warning_event_per_distinct_failure() {
    let (ctx, mut server) = context();
    let bent = probe(json!({ "fail": "the probe is bent" }), Value::Null);
    let (result, (event, patch)) =
        within(async { tokio::join!(reconcile_owned(Arc::new(bent.clone()), &ctx), reported(&mut server, &bent)) })
            .await;
    assert!(matches!(result, Ok(Recheck::After(_))), "a permanent failure waits for the slow retry: {result:?}");
    assert_eq!(
        (&event["type"], &event["reason"], &event["note"], &event["action"], &event["regarding"]["name"]),
        (&json!("Warning"), &json!("InvalidSpec"), &json!("broken: the probe is bent"), &json!("Probe"), &json!("p"))
    );
    let condition = &patch["status"]["conditions"][0];
    assert_eq!((&condition["status"], &condition["reason"]), (&json!("False"), &json!("InvalidSpec")));
    let bent = patched(&bent, &patch);

    // The same failure again: no Event, and the status already says it.
    within(reconcile_owned(Arc::new(bent.clone()), &ctx)).await.unwrap_or_else(|e| panic!("{e}"));

    // Another failure: its own Event and status.
    let mut cracked = bent;
    cracked.spec.fail = Some("the probe is cracked".into());
    let (result, (event, _)) = within(async {
        tokio::join!(reconcile_owned(Arc::new(cracked.clone()), &ctx), reported(&mut server, &cracked))
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(event["note"], "broken: the probe is cracked");
    assert_eq!(failures(&ctx, "invalid_spec"), 3, "every failed reconcile counts, reported or not");
    drop(ctx);
    server.expect_no_more().await;
}

#[tokio::test]
async fn a_failure_reported_before_a_restart_is_not_reported_again() {
    let (ctx, server) = context();
    let reported =
        probe(json!({ "fail": "the probe is bent" }), ready("False", "InvalidSpec", "broken: the probe is bent"));
    // A new process remembers nothing: the status says this failure was reported.
    let result = within(reconcile_owned(Arc::new(reported), &ctx)).await;
    assert!(matches!(result, Ok(Recheck::After(_))), "{result:?}");
    drop(ctx);
    server.expect_no_more().await;
}

#[tokio::test]
async fn a_transient_failure_is_handed_back_for_backoff_and_reported_again_after_a_recovery() {
    let (ctx, mut server) = context();
    let busy = probe(json!({ "fail": "the store is busy", "transient": true }), Value::Null);
    let (result, (_, patch)) =
        within(async { tokio::join!(reconcile_owned(Arc::new(busy.clone()), &ctx), reported(&mut server, &busy)) })
            .await;
    assert!(matches!(result, Err(ProbeError::Busy(_))), "{result:?}");

    // Recovered: Ready=True closes the failure episode.
    let mut recovered = patched(&busy, &patch);
    recovered.spec.fail = None;
    let (result, patch) = within(async {
        let answer = merging(&recovered);
        tokio::join!(reconcile_owned(Arc::new(recovered.clone()), &ctx), server.expect(Method::PATCH, STATUS, answer))
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(patch["status"]["conditions"][0]["status"], "True", "{patch}");

    // The same trouble again is a new episode: reported again.
    let mut again = patched(&recovered, &patch);
    again.spec = busy.spec.clone();
    let (result, (event, _)) =
        within(async { tokio::join!(reconcile_owned(Arc::new(again.clone()), &ctx), reported(&mut server, &again)) })
            .await;
    assert!(matches!(result, Err(ProbeError::Busy(_))), "{result:?}");
    assert_eq!(event["reason"], "GcpUnavailable");
    assert_eq!(failures(&ctx, "gcp_unavailable"), 2);
    drop(ctx);
    server.expect_no_more().await;
}
