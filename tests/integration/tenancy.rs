//! Tenant isolation: what a tenant who may create only our three kinds in one namespace can and
//! cannot do. Each test is an attack that worked once; on the emulator and a real cluster alike.

use crate::support::operator::cluster_with_operator;
use crate::support::wait::{DEADLINE, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};
use secure_api_operator::api::SecureApiService;
use secure_api_operator::api::conditions::{find_condition, types};
use serde_json::{Value, json};

fn object<K: serde::de::DeserializeOwned>(value: Value) -> K {
    serde_json::from_value(value).unwrap_or_else(|e| panic!("object: {e}"))
}

/// Waits until SecureApiService `name` is Ready=False with `reason`; returns the message.
async fn refused_with(api: &Api<SecureApiService>, name: &str, reason: &str) -> String {
    wait_for(&format!("{name} Ready=False ({reason})"), DEADLINE, || async {
        let status = api.get(name).await.ok()?.status?;
        let ready = find_condition(&status.conditions, types::READY)?;
        (ready.reason == reason).then(|| ready.message.clone())
    })
    .await
}

/// A SecureApiService named like a Service that exists, and another naming a ServiceAccount that
/// exists: neither object is patched or adopted (force-applied once, they gained our owner
/// reference and were garbage-collected with the SecureApiService).
#[tokio::test]
async fn a_secure_api_service_never_adopts_a_service_or_service_account_it_did_not_create() {
    let (cluster, operator) = cluster_with_operator("tenancy-foreign-children").await;
    let services: Api<Service> = cluster.api();
    let accounts: Api<ServiceAccount> = cluster.api();
    let theirs: Service = object(json!({
        "metadata": { "name": "web", "labels": { "team": "a" } },
        "spec": { "selector": { "app": "team-a-web" }, "ports": [{ "port": 443, "targetPort": 8443 }] },
    }));
    let theirs = services.create(&PostParams::default(), &theirs).await.unwrap_or_else(|e| panic!("{e}"));
    let deployer: ServiceAccount = object(json!({
        "metadata": {
            "name": "deployer",
            "annotations": { "iam.gke.io/gcp-service-account": "deployer@team-a.iam.gserviceaccount.com" },
        },
    }));
    let deployer = accounts.create(&PostParams::default(), &deployer).await.unwrap_or_else(|e| panic!("{e}"));

    let tenants: Api<SecureApiService> = cluster.api();
    let spec = |account: Option<&str>| {
        let mut spec = json!({ "image": "example.com/api:1", "port": 8080, "replicas": 1 });
        if let Some(account) = account {
            spec["serviceAccount"] =
                json!({ "name": account, "gcpServiceAccount": "tenant-b@b.iam.gserviceaccount.com" });
        }
        spec
    };
    for (name, account) in [("web", None), ("other", Some("deployer"))] {
        let service: SecureApiService = object(json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecureApiService",
            "metadata": { "name": name }, "spec": spec(account),
        }));
        tenants.create(&PostParams::default(), &service).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let message = refused_with(&tenants, "web", "OwnershipConflict").await;
    assert!(message.contains("Service web"), "{message}");
    let message = refused_with(&tenants, "other", "OwnershipConflict").await;
    assert!(message.contains("ServiceAccount deployer"), "{message}");

    // Not one write: the same resourceVersion, so the same bytes, and no owner reference of ours.
    let unchanged = |what: &str, before: Option<String>, after: Option<String>| {
        assert_eq!(before, after, "{what} was written");
    };
    let service_now = services.get("web").await.unwrap_or_else(|e| panic!("{e}"));
    unchanged("Service web", theirs.metadata.resource_version.clone(), service_now.metadata.resource_version);
    let account_now = accounts.get("deployer").await.unwrap_or_else(|e| panic!("{e}"));
    unchanged(
        "ServiceAccount deployer",
        deployer.metadata.resource_version.clone(),
        account_now.metadata.resource_version,
    );

    // Deleting the SecureApiServices takes their own children along, and nothing else.
    for name in ["web", "other"] {
        tenants.delete(name, &DeleteParams::default()).await.unwrap_or_else(|e| panic!("{e}"));
    }
    wait_for("both SecureApiServices gone", DEADLINE, || async {
        let left = tenants.list(&Default::default()).await.ok()?.items.len();
        (left == 0).then_some(())
    })
    .await;
    wait_for("the tenant's own Deployment web garbage-collected", DEADLINE, || async {
        let deployments: Api<Deployment> = cluster.api();
        deployments.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
    let service_now = services.get("web").await.unwrap_or_else(|e| panic!("Service web: {e}"));
    unchanged("Service web", theirs.metadata.resource_version, service_now.metadata.resource_version);
    let account_now = accounts.get("deployer").await.unwrap_or_else(|e| panic!("ServiceAccount deployer: {e}"));
    unchanged("ServiceAccount deployer", deployer.metadata.resource_version, account_now.metadata.resource_version);
    operator.stop().await;
    cluster.cleanup().await;
}
