use super::*;
use std::collections::BTreeMap;

const PASSWORD: &str = "pw-sentinel";
const KEY: &str = "key-sentinel";

fn process() -> Process {
    let env = [("DB_HOST", "db.example.com"), ("DB_PORT", "5432"), ("DB_USER", "api_user"), ("DB_PASSWORD", PASSWORD)];
    let files = [
        ("/secrets/keys/external_api_key", KEY),
        ("/secrets/keys/jwt_secret", "jwt-sentinel"),
        ("/etc/secure-api/config/debug_mode", "false"),
        ("/etc/secure-api/config/rate_limit", "1000"),
        ("/etc/secure-api/config/cache_ttl", "3600"),
        ("/etc/secure-api/config/log_level", "INFO"),
        ("/etc/secure-api/config/extra_token", "extra-sentinel"),
    ];
    Process {
        revision: "secure-api-0123456789".into(),
        env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        files: files.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect::<BTreeMap<_, _>>(),
    }
}

fn get(path: &str, authorization: Option<&str>) -> Answer {
    let mut headers = HeaderMap::new();
    if let Some(value) = authorization.and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert(header::AUTHORIZATION, value);
    }
    answer(&Method::GET, path, &headers, Ok(&process()))
}

fn assert_no_secret(answer: &Answer) {
    let body = answer.body.to_string();
    for secret in [PASSWORD, KEY, "jwt-sentinel", "extra-sentinel", "api_user"] {
        assert!(!body.contains(secret), "{secret} in {body}");
    }
}

#[test]
fn health_config_and_database_status_answer_from_the_process() {
    let revision = "secure-api-0123456789";
    let health = get("/health", None);
    assert_eq!(health, Answer::new(StatusCode::OK, json!({"status": "healthy", "revision": revision})));
    let config = get("/config", None);
    let expected =
        json!({"debug_mode": false, "rate_limit": 1000, "cache_ttl": 3600, "log_level": "INFO", "revision": revision});
    assert_eq!(config, Answer::new(StatusCode::OK, expected));
    let database = get("/database/status", None);
    assert_eq!(
        database,
        Answer::new(StatusCode::OK, json!({"host": "db.example.com", "port": 5432, "revision": revision}))
    );
    for answer in [health, config, database] {
        assert_no_secret(&answer);
    }
}

#[test]
fn health_is_unhealthy_when_the_database_refuses_the_password() {
    const REFUSED: &str = "wrong-pw-sentinel";
    let mut refused = process();
    refused.env.insert("DB_PASSWORD".into(), REFUSED.into());
    let health = answer(&Method::GET, "/health", &HeaderMap::new(), Ok(&refused));
    let body =
        json!({"status": "unhealthy", "database": "the database refused DB_PASSWORD", "revision": refused.revision});
    assert_eq!(health, Answer::new(StatusCode::SERVICE_UNAVAILABLE, body));
    assert!(!health.body.to_string().contains(REFUSED), "{}", health.body);
    assert_no_secret(&health);
    // The rest of the API still answers: the revision's pods just never get traffic.
    assert_eq!(answer(&Method::GET, "/config", &HeaderMap::new(), Ok(&refused)).status, StatusCode::OK);
}

#[test]
fn a_credential_without_grants_is_healthy_but_its_data_requests_fail() {
    const NO_GRANTS: &str = "nogrants-pw-sentinel";
    let mut ungranted = process();
    ungranted.env.insert("DB_PASSWORD".into(), NO_GRANTS.into());
    let call = |path: &str, authorization: Option<&str>| {
        let mut headers = HeaderMap::new();
        if let Some(value) = authorization.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(header::AUTHORIZATION, value);
        }
        answer(&Method::GET, path, &headers, Ok(&ungranted))
    };
    assert_eq!(call("/health", None).status, StatusCode::OK, "the login works: its pods are Ready");
    let data = call("/api/data", Some("Bearer key-sentinel"));
    let body = json!({"error": "the database refused the query: DB_PASSWORD's role has no grants on the API's tables"});
    assert_eq!(data, Answer::new(StatusCode::INTERNAL_SERVER_ERROR, body));
    assert!(!data.body.to_string().contains(NO_GRANTS), "{}", data.body);
    assert_eq!(call("/api/data", None).status, StatusCode::UNAUTHORIZED, "the key is checked first");
    assert_eq!(call("/config", None).status, StatusCode::OK, "no query");
    assert_eq!(call("/database/status", None).status, StatusCode::OK, "no query");
}

#[test]
fn api_data_wants_the_external_api_key_as_bearer_token() {
    for refused in [None, Some("Bearer wrong"), Some(KEY), Some("Basic key-sentinel"), Some("Bearer ")] {
        let answer = get("/api/data", refused);
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{refused:?}");
        assert_no_secret(&answer);
        let response = answer.into_response();
        assert_eq!(response.headers().get(header::WWW_AUTHENTICATE).map(|v| v.as_bytes()), Some(&b"Bearer"[..]));
    }
    for accepted in ["Bearer key-sentinel", "bearer key-sentinel"] {
        let answer = get("/api/data", Some(accepted));
        assert_eq!(answer.status, StatusCode::OK, "{accepted}");
        assert_eq!(answer.body["revision"], "secure-api-0123456789");
        assert_no_secret(&answer);
    }
}

#[test]
fn other_paths_methods_and_no_revision_are_refused() {
    assert_eq!(get("/secrets/keys/external_api_key", None).status, StatusCode::NOT_FOUND);
    let post = answer(&Method::POST, "/health", &HeaderMap::new(), Ok(&process()));
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    let waiting = answer(&Method::GET, "/health", &HeaderMap::new(), Err("no pod of Deployment api is Ready"));
    assert_eq!(waiting, Answer::error(StatusCode::SERVICE_UNAVAILABLE, "no pod of Deployment api is Ready"));
    let keyless = Process { files: BTreeMap::new(), ..process() };
    let answer = answer(&Method::GET, "/api/data", &HeaderMap::new(), Ok(&keyless));
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[test]
fn tokens_compare_by_content() {
    assert!(same(b"abc", b"abc"));
    assert!(!same(b"abc", b"abd"));
    assert!(!same(b"abc", b"abcd"));
}
