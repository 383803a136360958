//! The two races the issue names, each played once on purpose (a crash between a Secret write
//! and its status write, and two rotations 10 ms apart), leader hand-overs alone, and the
//! regressions the schedules found.

use super::world::World;
use crate::support::wait::{DEADLINE, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use secure_api_testbed::emulator::kube::Fault;
use std::time::Duration;

async fn generation(world: &World) -> i64 {
    let api: Api<Deployment> = world.cluster.api();
    wait_for("the Deployment", DEADLINE, || async { api.get("secure-api").await.ok()?.metadata.generation }).await
}

#[tokio::test]
async fn a_crash_between_the_secret_write_and_the_status_write_writes_neither_twice_with_emulator_hooks() {
    let Some(mut world) = World::start("crash-status", 0, false, false, false).await else { return };
    let before = generation(&world).await;
    let status_patches = world.kube.count("patch", "secretrefs/status");
    // db's next status write hangs, then fails: the operator is crashed while it waits.
    world.kube.inject_fault(Fault {
        verb: Some("patch".into()),
        resource: Some("secretrefs/status".into()),
        name: Some("db".into()),
        status: Some(503),
        delay: Some(Duration::from_secs(3)),
        times: Some(1),
        ..Fault::default()
    });
    let version = world.rotate("db").to_string();
    let secrets: Api<Secret> = world.cluster.api();
    let written = wait_for("db's Secret at the new version", DEADLINE, || async {
        let secret = secrets.get("db").await.ok()?;
        let annotations = secret.metadata.annotations.clone()?;
        (annotations.get("secureapi.dev/version") == Some(&version)).then_some(secret.metadata.resource_version)
    })
    .await;
    wait_for("db's status write in flight", DEADLINE, || async {
        (world.kube.count("patch", "secretrefs/status") > status_patches).then_some(())
    })
    .await;
    world.crash().await;
    world.kube.clear_faults();

    let settled = world.settle(Duration::from_secs(30)).await;
    assert!(settled.is_ok(), "{settled:?}");
    let secret = secrets.get("db").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(secret.metadata.resource_version, written, "the restarted operator wrote the Secret again");
    assert_eq!(generation(&world).await, before + 1, "exactly one rollout");
    assert_eq!(world.observer.violations(), vec![]);
}

#[tokio::test]
async fn two_rotations_10_ms_apart_roll_out_at_most_two_templates_ending_on_the_newest_with_emulator_hooks() {
    let Some(mut world) = World::start("two-rotations", 0, false, false, false).await else { return };
    let (before, seen_before) = (generation(&world).await, world.observer.template_versions().len());
    let second = world.rotate("db");
    // The gap between the rotations is the scenario itself.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let third = world.rotate("db");
    let settled = world.settle(Duration::from_secs(30)).await;
    assert!(settled.is_ok(), "{settled:?}");

    let sets = [format!("config=1,db={second},keys=1"), format!("config=1,db={third},keys=1")];
    let templates = world.observer.template_versions().split_off(seen_before);
    assert!(templates.iter().all(|t| sets.contains(t)), "a template outside the two sets: {templates:?}");
    assert_eq!(templates.last(), Some(&sets[1]), "the newest set last");
    assert!((1..=2).contains(&templates.len()), "{templates:?}");
    assert_eq!(generation(&world).await - before, templates.len() as i64, "every template change was seen");
    assert_eq!(world.observer.violations(), vec![]);
}

/// Found by seeds 318, 379 and 389: a snapshot whose write landed after the prune that would have
/// taken it stayed until the service's five-minute re-check.
#[tokio::test]
async fn a_snapshot_that_no_revision_retains_is_pruned_as_soon_as_it_appears_with_emulator_hooks() {
    let Some(world) = World::start("stray-snapshot", 0, false, false, false).await else { return };
    let secrets: Api<Secret> = world.cluster.api();
    let selector = format!("{}=secure-api", secure_api_operator::workload::service_label());
    let listed = secrets.list(&kube::api::ListParams::default().labels(&selector)).await;
    let mut stray =
        listed.unwrap_or_else(|e| panic!("{e}")).items.into_iter().next().unwrap_or_else(|| panic!("no snapshot"));
    stray.metadata = kube::api::ObjectMeta {
        name: Some("secure-api-db-0123456789".into()),
        labels: stray.metadata.labels.clone(),
        annotations: stray.metadata.annotations.clone(),
        owner_references: stray.metadata.owner_references.clone(),
        ..kube::api::ObjectMeta::default()
    };
    secrets.create(&kube::api::PostParams::default(), &stray).await.unwrap_or_else(|e| panic!("{e}"));
    wait_for("the stray snapshot pruned", DEADLINE, || async {
        secrets.get_opt("secure-api-db-0123456789").await.ok()?.is_none().then_some(())
    })
    .await;
    assert_eq!(world.observer.violations(), vec![]);
}

/// A hand-over alone, graceful or by a crashed leader's Lease expiring, changes nothing: the new
/// leader starts from fresh memory and finds every object already as it wants it.
#[tokio::test]
async fn a_leader_hand_over_alone_writes_nothing_and_keeps_every_template_with_emulator_hooks() {
    let Some(mut world) = World::start("hand-over", 0, false, true, false).await else { return };
    let (before, templates) = (generation(&world).await, world.observer.template_versions().len());
    for graceful in [true, false] {
        world.kube.reset_counts();
        match graceful {
            true => world.hand_over().await,
            false => world.crash().await,
        }
        let settled = world.settle(Duration::from_secs(30)).await;
        assert!(settled.is_ok(), "graceful {graceful}: {settled:?}");
        const WRITES: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];
        let writes: Vec<_> = (world.kube.counts().into_iter())
            .filter(|((verb, resource), _)| WRITES.contains(&verb.as_str()) && resource != "leases")
            .collect();
        assert_eq!(writes, vec![], "graceful {graceful}: the new leader wrote");
    }
    assert_eq!(generation(&world).await, before, "no rollout");
    assert_eq!(world.observer.template_versions().len(), templates);
    assert_eq!(world.observer.violations(), vec![]);
}

/// Found by seeds 29, 46, 230, 297, 379, 396, 457 and 465 of the second 500-schedule run
/// (`end-snapshot-beyond-history`): a revision went live while its status write failed, and the
/// next one replaced it. Its snapshots were kept (the Deployment remembers its template for a
/// rollback) but no history named them.
#[tokio::test]
async fn a_revision_that_went_live_without_its_status_is_recorded_in_the_history_with_emulator_hooks() {
    let Some(mut world) = World::start("unrecorded-revision", 0, false, false, false).await else { return };
    // Every status write of the service fails until the second rotation is live.
    world.kube.inject_fault(Fault::status("patch", "secureapiservices/status", 503).times(10_000));
    for _ in 0..2 {
        let version = world.rotate("db");
        wait_for("the rotation live", DEADLINE, || async {
            let last = world.observer.template_versions().pop()?;
            last.contains(&format!("db={version},")).then_some(())
        })
        .await;
    }
    world.kube.clear_faults();
    let settled = world.settle(Duration::from_secs(30)).await;
    assert!(settled.is_ok(), "{settled:?}");
    world.observer.check_end(&world.expected(), "", None).await;
    assert_eq!(world.observer.violations(), vec![]);
}
