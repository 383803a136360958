//! The real `gcloud` CLI against the API Keys and Service Usage emulators: it creates a key
//! restricted to a gateway's managed service, lists, describes and reads its string, deletes and
//! undeletes it, polling the emulator's operations; it enables a service and lists the enabled
//! ones. The key string shows only in `get-key-string`'s output. Everything talks to 127.0.0.1
//! and every command is killed after 60 s. `GCLOUD` may name the binary.

use crate::support::PROJECT;
use crate::support::gcloud::start;
use secure_api_testbed::emulator::gcp::{GcpFault, KeyRejection};
use serde_json::Value;

const SERVICE: &str = "orders-abc123.apigateway.demo-project.cloud.goog";
const KEY: &str = "projects/demo-project/locations/global/keys/web";

fn names(listed: &Value) -> Vec<String> {
    let items = listed.as_array().map(Vec::as_slice).unwrap_or_default();
    items.iter().filter_map(|item| item["name"].as_str().map(str::to_owned)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn gcloud_manages_a_restricted_key_through_operations() -> Result<(), String> {
    let (emulator, listener, gcloud) = start().await?;
    let target = format!("--api-target=service={SERVICE}");
    let args = ["services", "api-keys", "create", "--key-id=web", "--display-name=Web", &target, "--format=json"];
    let created = gcloud.run(&args).await?.success()?;
    let operation = created.json()?;
    assert_eq!(operation["done"], true, "{operation}");
    assert_eq!(operation["response"]["name"], KEY);
    assert_eq!(operation["response"]["restrictions"]["apiTargets"][0]["service"], SERVICE);
    let keys = emulator.api_keys(PROJECT);
    assert_eq!((keys.len(), keys[0].id.as_str(), keys[0].deleted), (1, "web", false));
    let key_string = emulator.key_string(PROJECT, "web").ok_or("no key string")?;
    assert!(!created.stdout.contains(&key_string) && !created.stderr.contains(&key_string));

    let listed = gcloud.run(&["services", "api-keys", "list", "--format=json"]).await?.success()?.json()?;
    assert_eq!(names(&listed), [KEY]);
    let described = gcloud.run(&["services", "api-keys", "describe", "web", "--format=json"]).await?.success()?;
    let key = described.json()?;
    assert_eq!((key["displayName"].as_str(), key.get("keyString")), (Some("Web"), None));
    assert!(!described.stdout.contains(&key_string));
    let args = ["services", "api-keys", "get-key-string", "web", "--format=json"];
    let answer = gcloud.run(&args).await?.success()?.json()?;
    assert_eq!(answer["keyString"], key_string.as_str());

    gcloud.run(&["services", "api-keys", "delete", "web"]).await?.success()?;
    assert!(emulator.api_keys(PROJECT)[0].deleted);
    assert_eq!(emulator.validate_key(&key_string, SERVICE, "GetConfig"), Err(KeyRejection::Deleted));
    let listed = gcloud.run(&["services", "api-keys", "list", "--format=json"]).await?.success()?.json()?;
    assert!(names(&listed).is_empty(), "{listed}");
    let args = ["services", "api-keys", "list", "--show-deleted", "--format=json"];
    let listed = gcloud.run(&args).await?.success()?.json()?;
    assert_eq!(names(&listed), [KEY]);

    gcloud.run(&["services", "api-keys", "undelete", "web"]).await?.success()?;
    assert!(!emulator.api_keys(PROJECT)[0].deleted);
    assert_eq!(emulator.validate_key(&key_string, SERVICE, "GetConfig"), Err(KeyRejection::ServiceNotEnabled));
    assert_eq!(emulator.validate_key(&key_string, "other.example.com", "Get"), Err(KeyRejection::ServiceNotAllowed));
    assert_eq!(emulator.validate_key("AIzaUnknown", SERVICE, "Get"), Err(KeyRejection::Unknown));

    let counts = ["create", "list", "get", "getKeyString", "delete", "undelete"]
        .map(|m| emulator.count(&format!("apikeys.keys.{m}")));
    assert_eq!(counts, [1, 3, 1, 1, 1, 1]);
    listener.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn gcloud_enables_a_service_and_lists_the_enabled_ones() -> Result<(), String> {
    let (emulator, listener, gcloud) = start().await?;
    gcloud.run(&["services", "enable", SERVICE]).await?.success()?;
    assert_eq!(emulator.enabled_services(PROJECT), [SERVICE]);
    assert_eq!(emulator.count("serviceusage.services.enable"), 1);
    let listed = gcloud.run(&["services", "list", "--enabled", "--format=json"]).await?.success()?.json()?;
    assert_eq!(names(&listed), [format!("projects/{PROJECT}/services/{SERVICE}")]);
    assert_eq!(listed[0]["config"]["name"], SERVICE);

    let args = ["services", "api-keys", "create", "--key-id=web", &format!("--api-target=service={SERVICE}")];
    gcloud.run(&args).await?.success()?;
    let key_string = emulator.key_string(PROJECT, "web").ok_or("no key string")?;
    assert_eq!(emulator.validate_key(&key_string, SERVICE, "GetConfig"), Ok(()));

    emulator.inject_fault(GcpFault::fail_operation("apikeys.keys.create", "backend unavailable").times(1));
    let failed = gcloud.run(&["services", "api-keys", "create", "--key-id=second"]).await?;
    assert!(!failed.status.success() && failed.stderr.contains("backend unavailable"), "{}", failed.stderr);
    assert_eq!(emulator.api_keys(PROJECT).len(), 1);
    listener.shutdown().await;
    Ok(())
}
