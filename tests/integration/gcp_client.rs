//! Integration tests of the Secret Manager client against a stub server on 127.0.0.1.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::gcp_stub::{Capture, Recorder, Reply, Stub, config, expect_error};
use crate::support::http::free_port;
use crate::support::wait::within;
use secure_api_operator::gcp::{
    AccessedVersion, CallObserver, Code, DEFAULT_USER_AGENT, Detail, GcpConfig, GcpError, SecretManager, SecretName,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SECRET: &str = "projects/p/secrets/db";

async fn client(config: GcpConfig, recorder: Option<&Arc<Recorder>>) -> Result<SecretManager, GcpError> {
    let observer = recorder.map(|recorder| Arc::clone(recorder) as Arc<dyn CallObserver>);
    SecretManager::new(config, observer).await
}

fn secret(name: &str) -> SecretName {
    SecretName::parse(name, None).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn retries_transient_errors_then_succeeds() -> TestResult {
    let stub = Stub::start(|index, path| match index {
        0 => Reply::error(503, "UNAVAILABLE", "try later"),
        1 => Reply::error(429, "RESOURCE_EXHAUSTED", "quota"),
        _ => Reply::version(path, 7, b"value"),
    })
    .await?;
    let recorder = Arc::new(Recorder::default());
    let manager = client(config(&stub), Some(&recorder)).await?;
    let version = within(manager.access(&secret(SECRET), "latest")).await?;
    assert_eq!((version.version.as_str(), version.name.as_str()), ("7", "projects/p/secrets/db/versions/7"));
    assert_eq!(version.data.expose(), b"value");
    assert!(version.crc32c_matches());
    assert_eq!(stub.requests(), 3);
    assert_eq!(recorder.outcomes(), ["503", "429", "200"]);
    let calls = recorder.calls();
    assert!(
        calls
            .iter()
            .all(|(service, method, _)| (*service, *method) == ("secretmanager", "secretmanager.versions.access"))
    );
    Ok(())
}

#[tokio::test]
async fn gives_up_after_max_attempts() -> TestResult {
    let stub = Stub::start(|_, _| Reply::error(503, "UNAVAILABLE", "down")).await?;
    let manager = client(GcpConfig { max_attempts: 3, ..config(&stub) }, None).await?;
    let error = expect_error(within(manager.access(&secret(SECRET), "latest")).await);
    assert_eq!((error.status, error.http_code, error.detail), (Code::Unavailable, Some(503), None));
    assert!(error.is_transient());
    assert_eq!(stub.requests(), 3);
    Ok(())
}

#[tokio::test]
async fn not_found_is_not_retried() -> TestResult {
    let stub = Stub::start(|_, _| {
        Reply::error(404, "NOT_FOUND", "Secret [projects/1/secrets/db] not found or has no versions.")
    })
    .await?;
    let manager = client(config(&stub), None).await?;
    let error = expect_error(within(manager.access(&secret(SECRET), "3")).await);
    assert_eq!((error.status, error.http_code), (Code::NotFound, Some(404)));
    assert_eq!(error.to_string(), "secretmanager.versions.access projects/p/secrets/db/versions/3: HTTP 404 NOT_FOUND");
    assert!(!error.is_transient());
    assert_eq!(stub.requests(), 1);
    Ok(())
}

#[tokio::test]
async fn disabled_version_is_reported_precisely() -> TestResult {
    let message = "Secret Version [projects/1/secrets/db/versions/4] is in DISABLED state.";
    let stub = Stub::start(move |_, _| Reply::error(400, "FAILED_PRECONDITION", message)).await?;
    let manager = client(config(&stub), None).await?;
    let error = expect_error(within(manager.access(&secret(SECRET), "latest")).await);
    assert_eq!((error.status, error.detail), (Code::FailedPrecondition, Some(Detail::VersionDisabled)));
    assert!(error.to_string().ends_with("versions/latest: HTTP 400 FAILED_PRECONDITION (version disabled)"));
    assert_eq!(stub.requests(), 1);
    Ok(())
}

#[tokio::test]
async fn timeouts_are_retried() -> TestResult {
    let stub = Stub::start(|index, path| {
        let reply = Reply::version(path, 2, b"v");
        if index == 0 { reply.delayed(Duration::from_secs(10)) } else { reply }
    })
    .await?;
    let recorder = Arc::new(Recorder::default());
    let manager =
        client(GcpConfig { request_timeout: Duration::from_millis(200), ..config(&stub) }, Some(&recorder)).await?;
    let version = within(manager.access(&secret(SECRET), "2")).await?;
    assert_eq!(version.version, "2");
    assert_eq!(recorder.outcomes(), ["timeout", "200"]);
    Ok(())
}

#[tokio::test]
async fn persistent_timeouts_become_deadline_exceeded() -> TestResult {
    let stub = Stub::start(|_, path| Reply::version(path, 2, b"v").delayed(Duration::from_secs(10))).await?;
    let config = GcpConfig { request_timeout: Duration::from_millis(100), max_attempts: 2, ..config(&stub) };
    let manager = client(config, None).await?;
    let error = expect_error(within(manager.access(&secret(SECRET), "2")).await);
    assert_eq!((error.status, error.http_code, error.detail), (Code::DeadlineExceeded, None, Some(Detail::Timeout)));
    assert!(error.to_string().ends_with("versions/2: DEADLINE_EXCEEDED (timeout)"));
    assert_eq!(stub.requests(), 2);
    Ok(())
}

#[tokio::test]
async fn connection_errors_are_unavailable_and_retried() -> TestResult {
    // A port that was just free: nothing listens there any more.
    let port = free_port();
    let stub = Stub::start(|_, path| Reply::version(path, 1, b"x")).await?;
    let recorder = Arc::new(Recorder::default());
    let config = GcpConfig {
        secret_manager_endpoint: Some(format!("http://127.0.0.1:{port}")),
        max_attempts: 2,
        ..config(&stub)
    };
    let manager = client(config, Some(&recorder)).await?;
    let error = expect_error(within(manager.access(&secret(SECRET), "1")).await);
    assert_eq!((error.status, error.http_code, error.detail), (Code::Unavailable, None, Some(Detail::Connect)));
    assert_eq!(recorder.outcomes(), ["connect_error", "connect_error"]);
    Ok(())
}

#[tokio::test]
async fn identical_concurrent_reads_share_one_request() -> TestResult {
    let stub = Stub::start(|_, path| Reply::version(path, 9, b"shared").delayed(Duration::from_millis(300))).await?;
    let manager = client(config(&stub), None).await?;
    let name = secret(SECRET);
    let calls = (0..20).map(|_| manager.access(&name, "latest"));
    let results = within(futures::future::join_all(calls)).await;
    let versions: Vec<AccessedVersion> = results.into_iter().collect::<Result<_, _>>()?;
    assert_eq!(stub.requests(), 1);
    assert!(versions.iter().all(|v| v.version == "9" && Arc::ptr_eq(&v.data, &versions[0].data)));
    // Completed calls leave the map: the next read is a new request.
    within(manager.access(&name, "latest")).await?;
    assert_eq!(stub.requests(), 2);
    // Different versions are different requests.
    let (latest, pinned) =
        within(futures::future::join(manager.access(&name, "latest"), manager.access(&name, "9"))).await;
    assert_eq!((latest?.version, pinned?.version), ("9".to_owned(), "9".to_owned()));
    assert_eq!(stub.requests(), 4);
    Ok(())
}

#[tokio::test]
async fn concurrency_limit_is_respected() -> TestResult {
    let stub = Stub::start(|_, path| Reply::version(path, 1, b"x").delayed(Duration::from_millis(150))).await?;
    let manager = client(GcpConfig { max_concurrency: 3, ..config(&stub) }, None).await?;
    let name = secret(SECRET);
    let versions: Vec<String> = (1..=12).map(|n| n.to_string()).collect();
    let results = within(futures::future::join_all(versions.iter().map(|v| manager.access(&name, v)))).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(stub.requests(), 12);
    let max = stub.max_in_flight();
    assert!((2..=3).contains(&max), "max in flight {max}");
    Ok(())
}

#[tokio::test]
async fn rate_limit_spaces_requests() -> TestResult {
    let stub = Stub::start(|_, path| Reply::version(path, 1, b"x")).await?;
    let manager = client(GcpConfig { requests_per_second: 20.0, ..config(&stub) }, None).await?;
    let name = secret(SECRET);
    let versions: Vec<String> = (1..=30).map(|n| n.to_string()).collect();
    let started = Instant::now();
    let results = within(futures::future::join_all(versions.iter().map(|v| manager.access(&name, v)))).await;
    assert!(results.iter().all(Result::is_ok));
    // A burst of 20, then 10 more tokens at 50 ms each.
    assert!(started.elapsed() >= Duration::from_millis(450), "took {:?}", started.elapsed());
    Ok(())
}

#[tokio::test]
async fn retry_after_is_honoured() -> TestResult {
    let stub = Stub::start(|index, path| match index {
        0 => Reply::error(429, "RESOURCE_EXHAUSTED", "slow down").header("retry-after", "1"),
        _ => Reply::version(path, 1, b"x"),
    })
    .await?;
    let manager = client(GcpConfig { max_backoff: Duration::from_secs(5), ..config(&stub) }, None).await?;
    let started = Instant::now();
    within(manager.access(&secret(SECRET), "1")).await?;
    assert!(started.elapsed() >= Duration::from_millis(950), "took {:?}", started.elapsed());
    assert_eq!(stub.requests(), 2);
    Ok(())
}

#[tokio::test]
async fn retry_after_is_capped_by_max_backoff() -> TestResult {
    let stub = Stub::start(|index, path| match index {
        0 => Reply::error(503, "UNAVAILABLE", "maintenance").header("retry-after", "3600"),
        _ => Reply::version(path, 1, b"x"),
    })
    .await?;
    let manager = client(GcpConfig { max_backoff: Duration::from_millis(50), ..config(&stub) }, None).await?;
    let started = Instant::now();
    within(manager.access(&secret(SECRET), "1")).await?;
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(stub.requests(), 2);
    Ok(())
}

#[tokio::test]
async fn sends_bearer_token_and_user_agent_to_regional_names() -> TestResult {
    let stub = Stub::start(|_, path| Reply::version(path, 3, b"x")).await?;
    let with_token = GcpConfig { no_auth: false, access_token: Some("test-token".into()), ..config(&stub) };
    let manager = client(with_token, None).await?;
    let regional = secret("projects/p/locations/europe-west1/secrets/s");
    let version = within(manager.access(&regional, "latest")).await?;
    assert_eq!(version.name, "projects/p/locations/europe-west1/secrets/s/versions/3");
    let no_auth = client(GcpConfig { access_token: Some("unused".into()), ..config(&stub) }, None).await?;
    within(no_auth.access(&regional, "3")).await?;
    let seen = stub.seen();
    assert_eq!(seen[0].path, "/v1/projects/p/locations/europe-west1/secrets/s/versions/latest:access");
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer test-token"));
    assert_eq!(seen[0].user_agent.as_deref(), Some(DEFAULT_USER_AGENT));
    assert_eq!(seen[1].authorization, None);
    Ok(())
}

#[tokio::test]
async fn payloads_and_server_messages_never_leak() -> TestResult {
    const SENTINEL: &str = "SENTINEL-7f3a9c";
    let capture = Capture::default();
    let _guard = tracing::dispatcher::set_default(&tracing::Dispatch::new(capture.clone()));
    let stub = Stub::start(|index, path| match (index, path.contains("/secrets/db/")) {
        (0, _) => Reply::error(503, "UNAVAILABLE", SENTINEL),
        (_, true) => Reply::version(path, 5, SENTINEL.as_bytes()),
        (_, false) => Reply::error(400, "FAILED_PRECONDITION", &format!("{SENTINEL} is in DESTROYED state.")),
    })
    .await?;
    let recorder = Arc::new(Recorder::default());
    let manager = client(config(&stub), Some(&recorder)).await?;
    let version = within(manager.access(&secret(SECRET), "latest")).await?;
    assert_eq!(version.data.expose(), SENTINEL.as_bytes());
    let error = expect_error(within(manager.access(&secret("projects/p/secrets/other"), "2")).await);
    assert_eq!(error.detail, Some(Detail::VersionDestroyed));

    let logs = capture.output();
    assert!(logs.contains("retrying GCP call") && logs.contains("projects/p/secrets/db/versions/latest"), "{logs}");
    let shown = [format!("{version:?}"), format!("{:?}", version.data), format!("{error}"), format!("{error:?}"), logs];
    for text in shown.iter().chain(recorder.outcomes().iter()) {
        assert!(!text.contains(SENTINEL), "leaked in: {text}");
    }
    Ok(())
}

#[tokio::test]
async fn abandoned_reads_do_not_block_later_ones() -> TestResult {
    let stub = Stub::start(|_, path| Reply::version(path, 4, b"x").delayed(Duration::from_millis(300))).await?;
    let manager = client(config(&stub), None).await?;
    let name = secret(SECRET);
    // The only caller gives up: the shared request is dropped with it.
    let abandoned = tokio::time::timeout(Duration::from_millis(50), manager.access(&name, "4")).await;
    assert!(abandoned.is_err());
    let version = within(manager.access(&name, "4")).await?;
    assert_eq!(version.version, "4");
    assert_eq!(stub.requests(), 2);
    Ok(())
}

#[tokio::test]
async fn malformed_success_is_not_retried() -> TestResult {
    let stub = Stub::start(|_, _| Reply { status: 200, ..Reply::error(200, "OK", "not an access answer") }).await?;
    let manager = client(config(&stub), None).await?;
    let error = expect_error(within(manager.access(&secret(SECRET), "1")).await);
    assert_eq!(
        (error.status, error.http_code, error.detail),
        (Code::Unknown, Some(200), Some(Detail::MalformedResponse))
    );
    assert_eq!(stub.requests(), 1);
    Ok(())
}
