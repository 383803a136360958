//! The real `gcloud` CLI against the Secret Manager emulator: create, add a version from stdin,
//! access `latest` (gcloud checks the CRC32C), list, disable, describe, version aliases and a
//! rotation schedule (`secrets update`), and the failures of
//! accessing a disabled `latest` and of a payload whose checksum does not match. Everything talks
//! to 127.0.0.1 and every command is killed after 60 s. `GCLOUD` may name the binary.

use crate::support::PROJECT;
use crate::support::gcloud::start;
use secure_api_testbed::emulator::gcp::GcpFault;
use serde_json::Value;

fn versions_of(list: &Value) -> Vec<(String, String)> {
    let entries = list.as_array().into_iter().flatten();
    let field = |entry: &Value, name: &str| entry[name].as_str().unwrap_or_default().to_owned();
    entries.map(|entry| (field(entry, "name"), field(entry, "state"))).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn gcloud_creates_rotates_reads_lists_disables_and_describes_a_secret() -> Result<(), String> {
    let (emulator, listener, gcloud) = start().await?;
    let name = format!("projects/{PROJECT}/secrets/api-config-db");
    let data_file = gcloud.dir().join("first.txt");
    std::fs::write(&data_file, "postgres://first").map_err(|e| format!("data file: {e}"))?;
    let data_arg = format!("--data-file={}", data_file.display());

    let created = gcloud.run(&["secrets", "create", "api-config-db", &data_arg, "--format=json"]).await?;
    let created = created.success()?.json()?;
    assert_eq!(created["name"], name.as_str());
    assert_eq!(created["replication"], serde_json::json!({"automatic": {}}));
    // `create --data-file` is a create followed by an addVersion with the payload's CRC32C.
    assert_eq!(
        (emulator.count("secretmanager.secrets.create"), emulator.count("secretmanager.secrets.addVersion")),
        (1, 1)
    );

    let args = ["secrets", "versions", "add", "api-config-db", "--data-file=-", "--format=json"];
    let added = gcloud.run_with_input(&args, Some(b"postgres://second")).await?.success()?.json()?;
    assert_eq!(added["name"], format!("{name}/versions/2").as_str());
    assert_eq!(added["state"], "ENABLED");
    assert_eq!(added["clientSpecifiedPayloadChecksum"], true);

    let latest = gcloud.run(&["secrets", "versions", "access", "latest", "--secret=api-config-db"]).await?;
    assert_eq!(latest.success()?.stdout, "postgres://second");

    let listed = gcloud.run(&["secrets", "versions", "list", "api-config-db", "--format=json"]).await?;
    let listed = versions_of(&listed.success()?.json()?);
    let expected = [(format!("{name}/versions/2"), "ENABLED"), (format!("{name}/versions/1"), "ENABLED")];
    assert_eq!(listed, expected.map(|(n, s)| (n, s.to_owned())));

    let args = ["secrets", "versions", "disable", "2", "--secret=api-config-db", "--format=json"];
    let disabled = gcloud.run(&args).await?.success()?.json()?;
    assert_eq!(
        (disabled["name"].as_str(), disabled["state"].as_str()),
        (Some(format!("{name}/versions/2").as_str()), Some("DISABLED"))
    );

    let described = gcloud.run(&["secrets", "describe", "api-config-db", "--format=json"]).await?;
    let described = described.success()?.json()?;
    assert_eq!(described["name"], name.as_str());
    assert!(described["etag"].as_str().is_some_and(|etag| etag.len() > 2 && etag.starts_with('"')), "{described}");
    assert!(described["createTime"].as_str().is_some_and(|t| t.ends_with('Z')), "{described}");

    // `latest` is version 2 whatever its state, so reading it now fails.
    let refused = gcloud.run(&["secrets", "versions", "access", "latest", "--secret=api-config-db"]).await?;
    assert!(!refused.status.success(), "access of a disabled latest succeeded: {}", refused.stdout);
    assert!(refused.stdout.is_empty(), "a refused access printed data");
    let message = format!("FAILED_PRECONDITION: Secret Version [{name}/versions/2] is in DISABLED state.");
    assert!(refused.stderr.contains(&message), "{}", refused.stderr);

    let first = gcloud.run(&["secrets", "versions", "access", "1", "--secret=api-config-db"]).await?;
    assert_eq!(first.success()?.stdout, "postgres://first");
    assert_eq!(emulator.count("secretmanager.versions.access"), 3);
    listener.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn gcloud_rejects_an_access_answer_whose_checksum_does_not_match() -> Result<(), String> {
    let (emulator, listener, gcloud) = start().await?;
    assert_eq!(emulator.add_version(PROJECT, "token", b"s3cr3t"), 1);
    emulator.inject_fault(GcpFault {
        method: Some("secretmanager.versions.access".to_owned()),
        wrong_checksum: true,
        times: Some(1),
        ..GcpFault::default()
    });
    let args = ["secrets", "versions", "access", "latest", "--secret=token"];
    let corrupted = gcloud.run(&args).await?;
    assert!(!corrupted.status.success(), "gcloud accepted a wrong checksum");
    assert!(corrupted.stderr.contains("An incorrect data_crc32c was calculated"), "{}", corrupted.stderr);
    assert!(!corrupted.stdout.contains("s3cr3t") && !corrupted.stderr.contains("s3cr3t"));
    // The fault was for one request only.
    assert_eq!(gcloud.run(&args).await?.success()?.stdout, "s3cr3t");
    listener.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn gcloud_reports_missing_secrets_and_injected_errors_by_their_status() -> Result<(), String> {
    let (emulator, listener, gcloud) = start().await?;
    let missing = gcloud.run(&["secrets", "describe", "nope"]).await?;
    assert!(!missing.status.success());
    assert!(missing.stderr.contains("NOT_FOUND"), "{}", missing.stderr);
    assert!(
        missing.stderr.contains(&format!("Secret [projects/{PROJECT}/secrets/nope] not found.")),
        "{}",
        missing.stderr
    );

    emulator.add_version(PROJECT, "db", b"pw");
    emulator.inject_fault(GcpFault::status("secretmanager.versions.access", 403).times(1));
    let denied = gcloud.run(&["secrets", "versions", "access", "1", "--secret=db"]).await?;
    assert!(!denied.status.success());
    assert!(denied.stderr.contains("PERMISSION_DENIED"), "{}", denied.stderr);
    listener.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn gcloud_moves_version_aliases_and_sets_a_rotation_schedule() -> Result<(), String> {
    use k8s_openapi::jiff::{Timestamp, ToSpan};
    let (emulator, listener, gcloud) = start().await?;
    let secret = "api-key-hmac";
    for value in [&b"first"[..], b"second"] {
        let args = ["secrets", "versions", "add", secret, "--data-file=-", "--format=json"];
        if emulator.count("secretmanager.secrets.create") == 0 {
            gcloud.run(&["secrets", "create", secret, "--format=json"]).await?.success()?;
        }
        gcloud.run_with_input(&args, Some(value)).await?.success()?;
    }
    // A rotation's staging: `current` on the version in use, `pending` on the new one.
    let args = ["secrets", "update", secret, "--update-version-aliases=current=1,pending=2", "--format=json"];
    let updated = gcloud.run(&args).await?.success()?.json()?;
    assert_eq!(updated["versionAliases"], serde_json::json!({ "current": "1", "pending": "2" }), "{updated}");
    let current = gcloud.run(&["secrets", "versions", "access", "current", &format!("--secret={secret}")]).await?;
    assert_eq!(current.success()?.stdout, "first");
    // gcloud sends only the pairs it is given, and the API replaces the whole map with them: this
    // moves `current` and drops `pending` in one patch.
    gcloud.run(&["secrets", "update", secret, "--update-version-aliases=current=2"]).await?.success()?;
    let current = gcloud.run(&["secrets", "versions", "access", "current", &format!("--secret={secret}")]).await?;
    assert_eq!(current.success()?.stdout, "second");
    let described = gcloud.run(&["secrets", "describe", secret, "--format=json"]).await?.success()?.json()?;
    assert_eq!(described["versionAliases"], serde_json::json!({ "current": "2" }), "{described}");

    // Secret Manager's own rotation schedule needs a topic to tell, and a time at least 5 minutes ahead.
    let topic = format!("projects/{PROJECT}/topics/rotations");
    let next = Timestamp::now().checked_add(1.hour()).map_err(|e| e.to_string())?.to_string();
    let schedule = [
        "secrets",
        "update",
        secret,
        &format!("--add-topics={topic}"),
        &format!("--next-rotation-time={next}"),
        "--rotation-period=86400s",
        "--format=json",
    ];
    let scheduled = gcloud.run(&schedule).await?.success()?.json()?;
    assert_eq!(scheduled["rotation"]["rotationPeriod"], "86400s", "{scheduled}");
    assert!(scheduled["rotation"]["nextRotationTime"].as_str().is_some(), "{scheduled}");
    let soon = Timestamp::now().checked_add(1.minute()).map_err(|e| e.to_string())?.to_string();
    let refused = gcloud.run(&["secrets", "update", secret, &format!("--next-rotation-time={soon}")]).await?;
    assert!(!refused.status.success(), "a rotation time a minute ahead was taken");
    listener.shutdown().await;
    Ok(())
}
