//! The example (`deploy/examples/`) on the emulators, its Google side set up as the playground's
//! printed commands do: every object becomes Ready without a single Warning Event (a
//! ServiceAccount that a SecureApiService is about to create is progress, not a failure), and a
//! rotation announces the rollout it causes with a Normal Event.

use crate::support::PROJECT;
use crate::support::cluster::TestCluster;
use crate::support::events::{self, describe, wait_normal};
use crate::support::operator::{NotificationOptions, Operator, OperatorOptions, topic_name};
use crate::support::wait::{DEADLINE, wait_for};
use kube::api::Api;
use secure_api_operator::api::conditions::{find_condition, reasons, types};
use secure_api_operator::api::{GatewayConfig, SecretRef, SecureApiService};
use secure_api_testbed::dev::{example_iam, examples};
use secure_api_testbed::emulator::kube::DeploymentSimulation;

const DB_V1: &str = r#"{"host":"db.example.com","port":5432,"username":"api_user","password":"pw-1"}"#;
const DB_V2: &str = r#"{"host":"db.example.com","port":5432,"username":"api_user","password":"pw-2"}"#;
const KEYS: &str = r#"{"external_api_key":"k1","jwt_secret":"j1","encryption_key":"e1"}"#;
const CONFIG: &str = r#"{"debug_mode":false,"rate_limit":1000,"cache_ttl":3600,"log_level":"INFO"}"#;

/// Whether `conditions` say Ready=True.
fn is_ready(conditions: Option<&[secure_api_operator::api::conditions::Condition]>) -> bool {
    conditions.and_then(|c| find_condition(c, types::READY)).is_some_and(|c| c.is_true(types::READY))
}

/// Waits until the three SecretRefs, the SecureApiService and the GatewayConfig are Ready.
async fn wait_all_ready(cluster: &TestCluster) {
    let refs: Api<SecretRef> = cluster.api();
    let services: Api<SecureApiService> = cluster.api();
    let gateways: Api<GatewayConfig> = cluster.api();
    wait_for("every example object Ready", DEADLINE, || async {
        for name in ["db", "keys", "config"] {
            let object = refs.get(name).await.ok()?;
            is_ready(object.status.as_ref().map(|s| s.conditions.as_slice())).then_some(())?;
        }
        let service = services.get("secure-api").await.ok()?;
        is_ready(service.status.as_ref().map(|s| s.conditions.as_slice())).then_some(())?;
        let gateway = gateways.get("secure-api").await.ok()?;
        is_ready(gateway.status.as_ref().map(|s| s.conditions.as_slice())).then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_example_gets_ready_without_a_warning_event_and_a_rotation_announces_its_rollout_with_emulator_hooks() {
    let cluster = TestCluster::start("example-events").await;
    // Rollouts complete and LoadBalancers get an address only on the emulator.
    let Some(kube) = cluster.hooks().cloned() else { return };
    cluster.install_crds().await;
    kube.set_deployment_simulation(DeploymentSimulation::Complete);
    let options = OperatorOptions {
        operator_identity: false,
        notifications: Some(NotificationOptions::default()),
        ..OperatorOptions::default()
    };
    let operator = Operator::start_with(&cluster, options).await;
    for (id, payload) in example_iam::SECRET_IDS.into_iter().zip([DB_V1, KEYS, CONFIG]) {
        operator.gcp.add_version(PROJECT, id, payload.as_bytes());
        operator.gcp.set_secret_topics(PROJECT, id, &[&topic_name()]).unwrap_or_else(|e| panic!("{id}: {e}"));
    }
    example_iam::grant(&operator.gcp, PROJECT, &cluster.namespace);
    examples::apply(&cluster.client, &cluster.namespace).await.unwrap_or_else(|e| panic!("{e}"));

    wait_all_ready(&cluster).await;
    let warnings = events::of_type(&cluster, "Warning").await;
    assert!(warnings.is_empty(), "Warning Events on the happy path:\n{}", describe(&warnings));
    let started = events::normal(&cluster, "secure-api", reasons::ROLLOUT_STARTED).await;
    assert_eq!(started.len(), 1, "one rollout so far:\n{}", describe(&started));

    operator.gcp.add_version(PROJECT, "api-config-db", DB_V2.as_bytes());
    wait_normal(&cluster, "secure-api", reasons::ROLLOUT_STARTED, "db=2").await;
    wait_all_ready(&cluster).await;
    let started = events::normal(&cluster, "secure-api", reasons::ROLLOUT_STARTED).await;
    assert_eq!(started.len(), 2, "one more rollout for the rotation:\n{}", describe(&started));
    let warnings = events::of_type(&cluster, "Warning").await;
    assert!(warnings.is_empty(), "Warning Events after the rotation:\n{}", describe(&warnings));
}
