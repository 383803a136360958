//! Canary rollouts of the seed's service on the emulator, whose simulated Deployment controller
//! takes pod readiness from a hook: a version whose pods never become Ready is aborted by the
//! step's gate while the stable Deployment keeps every pod and its template; a good one goes
//! through every step, is promoted, and the canary and the old revision's snapshots go.

use crate::support::PROJECT;
use crate::support::cluster::TestCluster;
use crate::support::conditions::{Conditioned, ready, wait_condition};
use crate::support::events;
use crate::support::gateway_api::{httproutes, install_gateway_api};
use crate::support::operator::{Operator, OperatorOptions, emulator_with_operator};
use crate::support::prometheus::{MetricsEndpoint, start_prometheus};
use crate::support::wait::{DEADLINE, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::{Api, ListParams, PostParams};
use secure_api_operator::api::secure_api_service::TrafficSplit;
use secure_api_operator::api::{SecretRef, SecureApiService, SecureApiServiceStatus};
use secure_api_testbed::emulator::kube::{DeploymentSimulation, KubeEmulator};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SERVICE: &str = "secure-api";
const CANARY: &str = "secure-api-canary";

fn db(password: &str) -> Vec<u8> {
    json!({ "host": "db.example.com", "port": 5432, "username": "api_user", "password": password })
        .to_string()
        .into_bytes()
}

/// The seed's db secret and SecretRef, and a service of nine replicas with `rollout`; pods whose
/// template reads a db version in `bad` never become Ready. Waits for the first revision.
async fn canary_service(
    test: &str,
    rollout: Value,
    bad: &'static [&'static str],
) -> Option<(TestCluster, KubeEmulator, Operator)> {
    let (cluster, kube, operator) = emulator_with_operator(test).await?;
    seed(&cluster, &kube, &operator, rollout, bad).await;
    Some((cluster, kube, operator))
}

/// The seed's db secret and SecretRef and the service with `rollout` (see [`canary_service`]).
async fn seed(
    cluster: &TestCluster,
    kube: &KubeEmulator,
    operator: &Operator,
    rollout: Value,
    bad: &'static [&'static str],
) {
    seed_with(cluster, kube, operator, rollout, bad, json!({})).await;
}

/// [`seed`] with every pod Ready and `expose`.
async fn seed_exposed(cluster: &TestCluster, kube: &KubeEmulator, operator: &Operator, rollout: Value, expose: Value) {
    seed_with(cluster, kube, operator, rollout, &[], expose).await;
}

async fn seed_with(
    cluster: &TestCluster,
    kube: &KubeEmulator,
    operator: &Operator,
    rollout: Value,
    bad: &'static [&'static str],
    expose: Value,
) {
    kube.set_deployment_simulation(DeploymentSimulation::Complete);
    kube.set_pod_readiness(Some(Arc::new(move |deployment: &Value| {
        let versions = &deployment["spec"]["template"]["metadata"]["annotations"]["secureapi.dev/secret-versions"];
        let versions = versions.as_str().unwrap_or_default();
        !bad.iter().any(|version| versions.split(',').any(|pair| pair == format!("db={version}")))
    })));
    operator.gcp.add_version(PROJECT, "api-config-db", &db("pw-1"));
    let secret_ref: SecretRef = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": "db" },
        "spec": { "secret": "api-config-db", "format": "json", "refreshInterval": "1s" },
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    cluster.api::<SecretRef>().create(&PostParams::default(), &secret_ref).await.unwrap_or_else(|e| panic!("{e}"));
    let service: SecureApiService = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecureApiService", "metadata": { "name": SERVICE },
        "spec": {
            "image": "example.com/secure-api:1.0", "replicas": 9, "revisionHistoryLimit": 0,
            "secretEnv": [{ "name": "DB_PASSWORD", "secretRef": "db", "key": "password" }],
            "rollout": rollout,
            "expose": expose,
        },
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let services: Api<SecureApiService> = cluster.api();
    services.create(&PostParams::default(), &service).await.unwrap_or_else(|e| panic!("{e}"));
    wait_condition(&services, SERVICE, ready().is("True", "RolloutComplete")).await;
}

async fn status(cluster: &TestCluster) -> SecureApiServiceStatus {
    let services: Api<SecureApiService> = cluster.api();
    services.get(SERVICE).await.unwrap_or_else(|e| panic!("{e}")).status.unwrap_or_default()
}

fn template_of(deployment: &Deployment) -> Value {
    serde_json::to_value(deployment.spec.as_ref().map(|s| &s.template)).unwrap_or_default()
}

fn replicas_of(deployment: &Deployment) -> Option<i32> {
    deployment.spec.as_ref()?.replicas
}

fn versions_of(deployment: &Deployment) -> String {
    template_of(deployment)["metadata"]["annotations"]["secureapi.dev/secret-versions"]
        .as_str()
        .unwrap_or_default()
        .into()
}

async fn snapshot_names(cluster: &TestCluster) -> Vec<String> {
    let secrets: Api<Secret> = cluster.api();
    let listed = secrets.list(&ListParams::default().labels("secureapi.dev/secretref")).await;
    let names = listed.unwrap_or_else(|e| panic!("{e}")).items.into_iter().filter_map(|s| s.metadata.name);
    // The service's snapshots, not the SecretRef's own Secret.
    let mut names: Vec<String> = names.filter(|name| name.starts_with("secure-api-db-")).collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_bad_rotation_is_aborted_by_the_canary_gate_and_the_stable_deployment_never_changes_with_emulator_hooks() {
    let rollout = json!({
        "strategy": "Canary",
        "canary": { "steps": [{ "weight": 10, "pause": "10m" }] },
        "analysis": { "interval": "2s" },
    });
    let Some((cluster, _kube, operator)) = canary_service("canary-abort", rollout, &["2"]).await else { return };
    let deployments: Api<Deployment> = cluster.api();
    let stable_before = deployments.get(SERVICE).await.unwrap_or_else(|e| panic!("{e}"));
    let stable_revision = status(&cluster).await.revision.unwrap_or_default();

    operator.gcp.add_version(PROJECT, "api-config-db", &db("pw-2-bad"));
    // The canary comes up beside the stable pods: 1 of 10 pods, 10% of the traffic.
    let canary = wait_for("the canary at its first step", DEADLINE, || async {
        let canary = deployments.get_opt(CANARY).await.ok().flatten()?;
        (replicas_of(&canary) == Some(1)).then_some(canary)
    })
    .await;
    let started = Instant::now();
    assert_eq!(versions_of(&canary), "db=2");
    let trial = status(&cluster).await.canary.unwrap_or_else(|| panic!("status names the canary"));
    assert_eq!((trial.step, trial.weight, trial.effective_weight), (1, 10, 10), "{trial:?}");

    // The gate: its pods are not Ready two seconds after the step began.
    let services: Api<SecureApiService> = cluster.api();
    let aborted = wait_condition(&services, SERVICE, ready().is("False", "RolloutAborted")).await;
    let took = started.elapsed();
    assert!(took <= Duration::from_secs(3), "aborted {took:?} after the canary came up: more than one interval + 1s");
    let message = aborted.message("Ready");
    assert!(message.contains("db=2") && message.contains(&stable_revision), "{message}");

    let canary = deployments.get(CANARY).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(replicas_of(&canary), Some(0), "the aborted canary has no pods");
    let stable = deployments.get(SERVICE).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(template_of(&stable), template_of(&stable_before), "the stable template never changed");
    assert_eq!(replicas_of(&stable), Some(9), "nor its pods");
    let now = status(&cluster).await;
    assert_eq!(now.revision.as_deref(), Some(stable_revision.as_str()));
    assert_eq!(now.canary, None);
    let rejected = now.rejected_revisions.first().unwrap_or_else(|| panic!("a rejected revision: {now:?}"));
    assert_eq!(rejected.secret_versions.get("db").map(String::as_str), Some("2"));
    let warnings = events::of_type(&cluster, "Warning").await;
    assert!(warnings.iter().any(|e| e.reason.as_deref() == Some("RolloutAborted")), "{}", events::describe(&warnings));

    // A good version after it: a new trial, promoted after its step.
    let services_rollout =
        json!({ "spec": { "rollout": { "canary": { "steps": [{ "weight": 10, "pause": "0s" }] } } } });
    let params = kube::api::PatchParams::default();
    services
        .patch(SERVICE, &params, &kube::api::Patch::Merge(&services_rollout))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    operator.gcp.add_version(PROJECT, "api-config-db", &db("pw-3"));
    wait_for("the stable Deployment at db=3", DEADLINE, || async {
        let stable = deployments.get(SERVICE).await.ok()?;
        (versions_of(&stable) == "db=3").then_some(())
    })
    .await;
    wait_condition(&services, SERVICE, ready().is("True", "RolloutComplete")).await;
    let rejected = status(&cluster).await.rejected_revisions;
    assert_eq!(rejected.len(), 1, "the rejected revision stays on record: {rejected:?}");
}

#[tokio::test]
async fn a_good_rotation_goes_through_every_step_is_promoted_and_retires_the_canary_with_emulator_hooks() {
    let rollout = json!({
        "strategy": "Canary",
        "canary": { "steps": [{ "weight": 10, "pause": "0s" }, { "weight": 50, "pause": "0s" }] },
        "analysis": { "interval": "5s" },
    });
    let Some((cluster, _kube, operator)) = canary_service("canary-promote", rollout, &[]).await else { return };
    let before = status(&cluster).await;
    let snapshots_before = snapshot_names(&cluster).await;
    assert_eq!(snapshots_before.len(), 1, "{snapshots_before:?}");

    let services: Api<SecureApiService> = cluster.api();
    let deployments: Api<Deployment> = cluster.api();
    for version in ["2", "3"] {
        operator.gcp.add_version(PROJECT, "api-config-db", &db(&format!("pw-{version}")));
        let versions = format!("db={version}");
        wait_for(&format!("the stable Deployment at {versions}"), DEADLINE, || async {
            let stable = deployments.get(SERVICE).await.ok()?;
            (versions_of(&stable) == versions).then_some(())
        })
        .await;
        wait_condition(&services, SERVICE, ready().is("True", "RolloutComplete")).await;
        let steps = events::normal(&cluster, SERVICE, "CanaryStep").await;
        let notes: Vec<&str> = steps.iter().filter_map(|e| e.note.as_deref()).collect();
        for step in ["takes 10% of the traffic: step 1 of 2", "takes 50% of the traffic: step 2 of 2"] {
            let trial = status(&cluster).await.history[0].revision.clone();
            assert!(notes.iter().any(|n| n.contains(&trial) && n.contains(step)), "{step} of {trial}: {notes:?}");
        }
        events::wait_normal(&cluster, SERVICE, "RolloutStarted", &format!("with secret versions {versions}")).await;
        wait_for("the canary retired", DEADLINE, || async {
            deployments.get_opt(CANARY).await.ok()?.is_none().then_some(())
        })
        .await;
    }

    let after = status(&cluster).await;
    assert_ne!(after.revision, before.revision);
    assert_eq!(after.secret_versions.get("db").map(String::as_str), Some("3"));
    assert_eq!(after.history.len(), 1, "revisionHistoryLimit 0: the new revision only: {:?}", after.history);
    assert!(after.rejected_revisions.is_empty() && after.canary.is_none(), "{after:?}");
    // The first revision's snapshot is gone; the second's stays while the Deployment remembers it
    // as the one a rollback restores, and the third's is in use.
    let snapshots = wait_for("the first snapshot pruned", DEADLINE, || async {
        let names = snapshot_names(&cluster).await;
        (names.len() == 2 && !names.contains(&snapshots_before[0])).then_some(names)
    })
    .await;
    assert!(snapshots.contains(&after.history[0].snapshots[0]), "{snapshots:?}");
    let started = events::normal(&cluster, SERVICE, "RolloutStarted").await;
    assert_eq!(started.len(), 3, "one rollout per version set: {}", events::describe(&started));
}

#[tokio::test]
async fn a_prometheus_query_above_its_max_aborts_the_canary_with_emulator_hooks() {
    let endpoint = MetricsEndpoint::start().await;
    endpoint.set("canary_errors{revision=\"none\"} 0\n");
    let test = "canary-prometheus";
    let Some(prometheus) = start_prometheus(test, endpoint.addr).await else { return };
    let cluster = TestCluster::start(test).await;
    let Some(kube) = cluster.hooks().cloned() else { return };
    cluster.install_crds().await;
    let options =
        OperatorOptions { prometheus_allowed_url_prefixes: vec![prometheus.url()], ..OperatorOptions::default() };
    let operator = Operator::start_with(&cluster, options).await;
    let rollout = json!({
        "strategy": "Canary",
        "canary": { "steps": [{ "weight": 10, "pause": "10m" }] },
        "analysis": {
            "interval": "2s",
            "prometheus": { "address": prometheus.url(), "query": "max(canary_errors{revision=\"$revision\"})", "max": 0 },
        },
    });
    // Every pod is Ready: only the query can stop this canary.
    seed(&cluster, &kube, &operator, rollout, &[]).await;

    operator.gcp.add_version(PROJECT, "api-config-db", &db("pw-2"));
    let services: Api<SecureApiService> = cluster.api();
    let trial = wait_for("the canary in status", DEADLINE, || async { status(&cluster).await.canary }).await;
    // The canary's revision now reports errors; Prometheus scrapes them within a second.
    endpoint.set(&format!("canary_errors{{revision=\"{}\"}} 3\n", trial.revision));
    let aborted = wait_condition(&services, SERVICE, ready().is("False", "RolloutAborted")).await;
    let message = aborted.message("Ready");
    assert!(message.contains("the Prometheus query gave 3, above its max 0"), "{message}");
    let deployments: Api<Deployment> = cluster.api();
    let canary = deployments.get(CANARY).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(replicas_of(&canary), Some(0));
    let rejected = status(&cluster).await.rejected_revisions;
    assert_eq!(rejected.first().map(|r| r.revision.as_str()), Some(trial.revision.as_str()));
}

/// The (Service, weight) pairs of an HTTPRoute's first rule.
fn backends(route: &kube::api::DynamicObject) -> Vec<(String, i64)> {
    let refs = route.data["spec"]["rules"][0]["backendRefs"].as_array().cloned().unwrap_or_default();
    refs.iter()
        .map(|r| (r["name"].as_str().unwrap_or_default().to_owned(), r["weight"].as_i64().unwrap_or(1)))
        .collect()
}

#[tokio::test]
async fn the_httproute_weights_follow_the_canary_steps_with_emulator_hooks() {
    let test = "canary-route";
    let cluster = TestCluster::start(test).await;
    let Some(kube) = cluster.hooks().cloned() else { return };
    cluster.install_crds().await;
    // The official HTTPRoute schema, before the operator first asks whether the cluster serves it.
    install_gateway_api(&cluster).await;
    let operator = Operator::start(&cluster).await;
    let rollout = json!({
        "strategy": "Canary",
        "canary": { "steps": [{ "weight": 10, "pause": "1s" }, { "weight": 50, "pause": "1s" }] },
        "analysis": { "interval": "5s" },
    });
    seed_exposed(&cluster, &kube, &operator, rollout, json!({ "gateway": { "name": "web" } })).await;
    let routes = httproutes(&cluster);
    let steady =
        wait_for("the service's HTTPRoute", DEADLINE, || async { routes.get_opt(SERVICE).await.ok().flatten() }).await;
    assert_eq!(backends(&steady), [(SERVICE.to_owned(), 100)]);
    assert_eq!(steady.data["spec"]["parentRefs"][0]["name"], "web");

    operator.gcp.add_version(PROJECT, "api-config-db", &db("pw-2"));
    // Every split the route goes through, in order, until the stable Deployment runs the new one.
    let deployments: Api<Deployment> = cluster.api();
    let services: Api<Service> = cluster.api();
    let seen = std::sync::Mutex::new((Vec::<Vec<(String, i64)>>::new(), false));
    wait_for("the new revision promoted", DEADLINE, || async {
        let route = routes.get(SERVICE).await.ok();
        let canary_service = services.get_opt(CANARY).await.ok().flatten();
        {
            let mut seen = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(split) = route.as_ref().map(backends)
                && seen.0.last() != Some(&split)
            {
                seen.0.push(split);
            }
            seen.1 |= canary_service.is_some();
        }
        // The route goes back to the Service after the stable Deployment's write: wait for both.
        let stable = deployments.get(SERVICE).await.ok()?;
        let whole = route.as_ref().map(backends) == Some(vec![(SERVICE.to_owned(), 100)]);
        (versions_of(&stable) == "db=2" && whole).then_some(())
    })
    .await;
    let (splits, routed) = seen.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    let expected = [
        vec![(SERVICE.to_owned(), 100)],
        vec![(SERVICE.to_owned(), 90), (CANARY.to_owned(), 10)],
        vec![(SERVICE.to_owned(), 50), (CANARY.to_owned(), 50)],
        vec![(SERVICE.to_owned(), 100)],
    ];
    assert_eq!(splits, expected, "the route's weights follow the steps");
    assert!(routed, "the canary's Service stood behind the route");
    wait_for("the canary and its Service retired", DEADLINE, || async {
        let gone = deployments.get_opt(CANARY).await.ok()?.is_none() && services.get_opt(CANARY).await.ok()?.is_none();
        gone.then_some(())
    })
    .await;
}

#[tokio::test]
async fn without_the_gateway_api_a_canary_naming_a_gateway_splits_by_replicas_and_says_so_with_emulator_hooks() {
    let test = "canary-unrouted";
    let cluster = TestCluster::start(test).await;
    let Some(kube) = cluster.hooks().cloned() else { return };
    cluster.install_crds().await;
    let operator = Operator::start(&cluster).await;
    let rollout = json!({
        "strategy": "Canary",
        "canary": { "steps": [{ "weight": 10, "pause": "10m" }] },
        "analysis": { "interval": "5s" },
    });
    seed_exposed(&cluster, &kube, &operator, rollout, json!({ "gateway": { "name": "web" } })).await;
    operator.gcp.add_version(PROJECT, "api-config-db", &db("pw-2"));
    let services: Api<SecureApiService> = cluster.api();
    let trial = wait_for("the canary in status", DEADLINE, || async { status(&cluster).await.canary }).await;
    assert_eq!((trial.traffic_split, trial.effective_weight), (TrafficSplit::ReplicaRatio, 10), "{trial:?}");
    let service = wait_condition(&services, SERVICE, ready().is("False", "RolloutInProgress")).await;
    let message = service.message("Ready");
    assert!(message.contains("split by replica ratio: the cluster serves no Gateway API HTTPRoute"), "{message}");
    assert_eq!(status(&cluster).await.http_route, None);
}

fn selector_of(service: &Service) -> std::collections::BTreeMap<String, String> {
    service.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default()
}

#[tokio::test]
async fn blue_green_switches_all_traffic_at_once_keeps_the_old_revision_then_retires_it_with_emulator_hooks() {
    let rollout = json!({
        "strategy": "BlueGreen",
        "blueGreen": { "scaleDownDelay": "2s" },
        "analysis": { "interval": "2s" },
    });
    let Some((cluster, _kube, operator)) = canary_service("blue-green", rollout, &["3"]).await else { return };
    let services: Api<Service> = cluster.api();
    let deployments: Api<Deployment> = cluster.api();
    let normal = selector_of(&services.get(SERVICE).await.unwrap_or_else(|e| panic!("{e}")));
    let stable_before = deployments.get(SERVICE).await.unwrap_or_else(|e| panic!("{e}"));

    // A good version: up in full beside the old one, then all traffic at once, then the old one
    // rolls to it and the Service goes back to the stable Deployment's pods.
    operator.gcp.add_version(PROJECT, "api-config-db", &db("pw-2"));
    let seen = std::sync::Mutex::new((Vec::<std::collections::BTreeMap<String, String>>::new(), None::<i32>));
    wait_for("the new revision on the stable Deployment, the green one retired", DEADLINE, || async {
        let selector = services.get(SERVICE).await.ok().map(|s| selector_of(&s));
        let green = deployments.get_opt(CANARY).await.ok().flatten();
        {
            let mut seen = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(selector) = selector
                && seen.0.last() != Some(&selector)
            {
                seen.0.push(selector);
            }
            if let Some(replicas) = green.as_ref().and_then(replicas_of) {
                seen.1 = Some(seen.1.unwrap_or(0).max(replicas));
            }
        }
        let stable = deployments.get(SERVICE).await.ok()?;
        (versions_of(&stable) == "db=2" && green.is_none() && selector_of(&services.get(SERVICE).await.ok()?) == normal)
            .then_some(())
    })
    .await;
    let (selectors, green_replicas) = seen.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    assert_eq!(green_replicas, Some(9), "the new revision came up in full");
    assert_eq!(selectors.len(), 3, "the old pods, the new ones at once, then the stable Deployment's: {selectors:?}");
    assert_eq!(selectors.first(), Some(&normal));
    assert_eq!(selectors[1].get("secureapi.dev/track").map(String::as_str), Some("canary"), "{selectors:?}");
    assert_eq!(selectors.last(), Some(&normal));
    assert_ne!(
        template_of(&stable_before),
        template_of(&deployments.get(SERVICE).await.unwrap_or_else(|e| panic!("{e}")))
    );

    // A bad version: its pods never become Ready, so it never gets the Service.
    operator.gcp.add_version(PROJECT, "api-config-db", &db("pw-3-bad"));
    let service_api: Api<SecureApiService> = cluster.api();
    wait_condition(&service_api, SERVICE, ready().is("False", "RolloutAborted")).await;
    assert_eq!(selector_of(&services.get(SERVICE).await.unwrap_or_else(|e| panic!("{e}"))), normal);
    let stable = deployments.get(SERVICE).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(versions_of(&stable), "db=2", "the stable Deployment is untouched");
}
