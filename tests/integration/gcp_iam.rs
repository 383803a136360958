//! Workload Identity Federation and IAM in the GCP emulator: a Kubernetes ServiceAccount JWT
//! signed here is exchanged at STS for a federated token, which reads a secret only once a
//! policy grants it; the same token impersonates a Google service account through IAM
//! Credentials when that account's policy lets it; bad subject tokens are `invalid_grant`,
//! expired issued tokens 401; callers with no issued token stay the owner. The real gcloud
//! creates the service account and the bindings.

use crate::support::PROJECT;
use crate::support::gcloud::start;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{HeaderMap, Method, Response, StatusCode, Uri, header};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents};
use secure_api_testbed::emulator::gcp::{Denial, GcpEmulator, GcpFault};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// A 2048-bit RSA key in PKCS#1 DER (`openssl genpkey -algorithm RSA -outform DER`).
const KEY: &[u8] = include_bytes!("fixtures/sa-signing-key.der");
const KID: &str = "emulator-sa-key-1";
const ISSUER: &str = "https://container.googleapis.com/v1/projects/demo-project/locations/europe-west1/clusters/dev";
const ACCESSOR: &str = "roles/secretmanager.secretAccessor";
const SECRET: &str = "projects/demo-project/secrets/db";
const ACCESS_PATH: &str = "/v1/projects/demo-project/secrets/db/versions/latest:access";

fn key() -> RsaKeyPair {
    RsaKeyPair::from_der(KEY).unwrap_or_else(|e| panic!("fixture key: {e}"))
}

fn jwks(kid: &str) -> Value {
    let public = RsaPublicKeyComponents::<Vec<u8>>::from(key().public());
    json!({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(&public.n), "e": URL_SAFE_NO_PAD.encode(&public.e)}]})
}

fn sign(kid: &str, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "typ": "JWT", "kid": kid}).to_string());
    let signed = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let key = key();
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signed.as_bytes(), &mut signature)
        .unwrap_or_else(|e| panic!("signing: {e}"));
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn now() -> i64 {
    let since = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
}

/// A projected ServiceAccount token as a cluster with issuer [`ISSUER`] writes it.
fn ksa_claims(namespace: &str, name: &str, audience: &str) -> Value {
    json!({
        "iss": ISSUER,
        "sub": format!("system:serviceaccount:{namespace}:{name}"),
        "aud": [audience],
        "iat": now() - 5,
        "nbf": now() - 5,
        "exp": now() + 600,
        "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": "0f8c"}},
    })
}

fn gke_audience() -> String {
    format!("identitynamespace:{PROJECT}.svc.id.goog:{ISSUER}")
}

/// A workload identity pool of the project, without the scheme.
fn pool_name() -> String {
    let number = GcpEmulator::project_number(PROJECT);
    format!("iam.googleapis.com/projects/{number}/locations/global/workloadIdentityPools/k8s-pool")
}

fn provider_name() -> String {
    format!("{}/providers/dev-cluster", pool_name())
}

/// The principal GKE's form federates `namespace/name` into.
fn gke_principal(namespace: &str, name: &str) -> String {
    let number = GcpEmulator::project_number(PROJECT);
    format!(
        "principal://iam.googleapis.com/projects/{number}/locations/global/workloadIdentityPools/{PROJECT}.svc.id.goog/subject/ns/{namespace}/sa/{name}"
    )
}

async fn body_json(response: Response<Full<Bytes>>) -> (StatusCode, Value) {
    use http_body_util::BodyExt;
    let status = response.status();
    let bytes = match response.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    let value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {bytes:?}"));
    (status, value)
}

/// One request through the emulator's front door, with `token` as the bearer when given.
async fn call(
    emulator: &GcpEmulator,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let uri: Uri = path.parse().unwrap_or_else(|e| panic!("bad path {path}: {e}"));
    let mut headers = HeaderMap::new();
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().unwrap_or_else(|e| panic!("header: {e}"));
        headers.insert(header::AUTHORIZATION, value);
    }
    body_json(emulator.respond(&method, &uri, &headers, Bytes::from(body.to_owned())).await).await
}

/// STS `v1/token` with the form Google's client libraries send.
async fn exchange(emulator: &GcpEmulator, audience: &str, subject_token: &str) -> (StatusCode, Value) {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange")
        .append_pair("subject_token_type", "urn:ietf:params:oauth:token-type:jwt")
        .append_pair("requested_token_type", "urn:ietf:params:oauth:token-type:access_token")
        .append_pair("scope", "https://www.googleapis.com/auth/cloud-platform")
        .append_pair("audience", audience)
        .append_pair("subject_token", subject_token)
        .finish();
    call(emulator, Method::POST, "/v1/token", None, &form).await
}

/// A federated token for `namespace/name` through GKE's audience.
async fn federate(emulator: &GcpEmulator, namespace: &str, name: &str) -> String {
    let token = sign(KID, &ksa_claims(namespace, name, &format!("{PROJECT}.svc.id.goog")));
    let (status, answer) = exchange(emulator, &gke_audience(), &token).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["access_token"].as_str().unwrap_or_else(|| panic!("no access_token: {answer}")).to_owned()
}

async fn generate_access_token(
    emulator: &GcpEmulator,
    email: &str,
    token: &str,
    lifetime: &str,
) -> (StatusCode, Value) {
    let path = format!("/v1/projects/-/serviceAccounts/{email}:generateAccessToken");
    let body = json!({"scope": ["https://www.googleapis.com/auth/cloud-platform"], "lifetime": lifetime}).to_string();
    call(emulator, Method::POST, &path, Some(token), &body).await
}

fn trusting_emulator() -> GcpEmulator {
    let emulator = GcpEmulator::new();
    emulator.trust_jwks(jwks(KID));
    emulator.add_version(PROJECT, "db", b"postgres://secret");
    emulator
}

#[tokio::test]
async fn a_federated_token_reads_a_secret_only_once_secret_accessor_is_granted() {
    let emulator = trusting_emulator();
    let token = sign(KID, &ksa_claims("apps", "reader", &format!("{PROJECT}.svc.id.goog")));
    let (status, answer) = exchange(&emulator, &gke_audience(), &token).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        (&answer["issued_token_type"], &answer["token_type"], &answer["expires_in"]),
        (&json!("urn:ietf:params:oauth:token-type:access_token"), &json!("Bearer"), &json!(3600))
    );
    let federated = answer["access_token"].as_str().unwrap_or_default().to_owned();
    assert!(federated.starts_with("ya29.d."), "{answer}");

    let (status, denied) = call(&emulator, Method::GET, ACCESS_PATH, Some(&federated), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{denied}");
    assert_eq!(
        denied["error"],
        json!({"code": 403, "status": "PERMISSION_DENIED", "message":
            "Permission 'secretmanager.versions.access' denied for resource 'projects/demo-project/secrets/db/versions/latest' (or it may not exist)."})
    );
    let principal = gke_principal("apps", "reader");
    assert_eq!(
        emulator.denials(),
        [Denial {
            principal: principal.clone(),
            permission: "secretmanager.versions.access".into(),
            resource: "projects/demo-project/secrets/db/versions/latest".into(),
        }]
    );

    emulator.add_iam_binding(SECRET, ACCESSOR, &principal);
    let (status, read) = call(&emulator, Method::GET, ACCESS_PATH, Some(&federated), "").await;
    assert_eq!((status, &read["payload"]["data"]), (StatusCode::OK, &json!("cG9zdGdyZXM6Ly9zZWNyZXQ=")));
    // Reading is all the accessor role grants.
    let (status, _) = call(&emulator, Method::GET, "/v1/projects/demo-project/secrets/db", Some(&federated), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(emulator.count("sts.token"), 1);
}

#[tokio::test]
async fn a_pool_provider_audience_federates_the_subject_as_it_is() {
    let emulator = trusting_emulator();
    let audience = format!("//{}", provider_name());
    let token = sign(KID, &ksa_claims("apps", "reader", &format!("https://{}", provider_name())));
    let (status, answer) = exchange(&emulator, &audience, &token).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let federated = answer["access_token"].as_str().unwrap_or_default().to_owned();

    // The owner (no issued token) grants through the REST API, as gcloud would.
    let principal = format!("principal://{}/subject/system:serviceaccount:apps:reader", pool_name());
    let policy = json!({"policy": {"bindings": [{"role": ACCESSOR, "members": [principal]}]}}).to_string();
    let (status, set) = call(&emulator, Method::POST, &format!("/v1/{SECRET}:setIamPolicy"), None, &policy).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    let (status, _) = call(&emulator, Method::GET, ACCESS_PATH, Some(&federated), "").await;
    assert_eq!(status, StatusCode::OK);
    // The GKE form of the same ServiceAccount is another principal.
    let (status, _) =
        call(&emulator, Method::GET, ACCESS_PATH, Some(&federate(&emulator, "apps", "reader").await), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn generate_access_token_needs_workload_identity_user_in_either_member_form() {
    let emulator = trusting_emulator();
    let email = emulator.create_service_account(PROJECT, "reader-gsa");
    assert_eq!(email, "reader-gsa@demo-project.iam.gserviceaccount.com");
    let gsa = format!("projects/{PROJECT}/serviceAccounts/{email}");
    let reader = federate(&emulator, "apps", "reader").await;

    let (status, refused) = generate_access_token(&emulator, &email, &reader, "3600s").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(
        refused["error"]["message"],
        "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist)."
    );
    assert_eq!(
        emulator.denials().last().map(|d| (d.principal.clone(), d.permission.clone(), d.resource.clone())),
        Some((gke_principal("apps", "reader"), "iam.serviceAccounts.getAccessToken".into(), gsa.clone()))
    );

    // GKE's documented member form.
    emulator.add_iam_binding(
        &gsa,
        "roles/iam.workloadIdentityUser",
        &format!("serviceAccount:{PROJECT}.svc.id.goog[apps/reader]"),
    );
    let (status, issued) = generate_access_token(&emulator, &email, &reader, "3600s").await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    let gsa_token = issued["accessToken"].as_str().unwrap_or_default().to_owned();
    assert!(issued["expireTime"].as_str().is_some_and(|t| t.ends_with('Z')), "{issued}");

    // The service account's token is `serviceAccount:EMAIL`.
    let (status, _) = call(&emulator, Method::GET, ACCESS_PATH, Some(&gsa_token), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    emulator.add_iam_binding(SECRET, ACCESSOR, &format!("serviceAccount:{email}"));
    let (status, _) = call(&emulator, Method::GET, ACCESS_PATH, Some(&gsa_token), "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&emulator, Method::GET, ACCESS_PATH, Some(&reader), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the federated token itself was never granted the secret");

    // The principal form, for another ServiceAccount.
    let writer = federate(&emulator, "apps", "writer").await;
    assert_eq!(generate_access_token(&emulator, &email, &writer, "600s").await.0, StatusCode::FORBIDDEN);
    emulator.add_iam_binding(&gsa, "roles/iam.serviceAccountTokenCreator", &gke_principal("apps", "writer"));
    assert_eq!(generate_access_token(&emulator, &email, &writer, "600s").await.0, StatusCode::OK);

    // A service account that does not exist is refused the same way, even for the owner.
    let missing = "missing-gsa@demo-project.iam.gserviceaccount.com";
    for token in [reader.as_str(), "not-issued-here"] {
        let (status, body) = generate_access_token(&emulator, missing, token, "3600s").await;
        assert_eq!((status, body["error"]["status"].clone()), (StatusCode::FORBIDDEN, json!("PERMISSION_DENIED")));
    }
    assert_eq!(emulator.count("iamcredentials.serviceAccounts.generateAccessToken"), 6);
}

#[tokio::test]
async fn bad_subject_tokens_are_invalid_grant_without_echoing_them() {
    let emulator = trusting_emulator();
    let audience = gke_audience();
    let namespace = format!("{PROJECT}.svc.id.goog");
    let mut expired = ksa_claims("apps", "reader", &namespace);
    expired["exp"] = json!(now() - 60);
    let good = sign(KID, &ksa_claims("apps", "reader", &namespace));
    let (head, _) = good.rsplit_once('.').unwrap_or_default();
    let tampered = format!("{head}.{}", URL_SAFE_NO_PAD.encode([7u8; 256]));
    let mut other_issuer = ksa_claims("apps", "reader", &namespace);
    other_issuer["iss"] = json!("https://kubernetes.default.svc");
    let cases = [
        ("wrong audience", sign(KID, &ksa_claims("apps", "reader", "other-project.svc.id.goog"))),
        ("bad signature", tampered),
        ("expired", sign(KID, &expired)),
        ("other issuer", sign(KID, &other_issuer)),
        ("unknown kid", sign("rotated-away", &ksa_claims("apps", "reader", &namespace))),
        ("not a JWT", "opaque-token-value".to_owned()),
    ];
    for (case, token) in cases {
        let (status, answer) = exchange(&emulator, &audience, &token).await;
        assert_eq!((status, &answer["error"]), (StatusCode::BAD_REQUEST, &json!("invalid_grant")), "{case}: {answer}");
        let text = answer.to_string();
        assert!(!text.contains(&token) && !text.contains(&token[..token.len().min(20)]), "{case} echoed the token");
    }

    let (status, answer) = exchange(&emulator, "https://example.com/aud", &good).await;
    assert_eq!((status, answer["error"].clone()), (StatusCode::BAD_REQUEST, json!("invalid_target")));
    let (status, answer) = call(&emulator, Method::POST, "/v1/token", None, "grant_type=password").await;
    assert_eq!((status, answer["error"].clone()), (StatusCode::BAD_REQUEST, json!("invalid_request")));

    let untrusting = GcpEmulator::new();
    let (status, answer) = exchange(&untrusting, &audience, &good).await;
    assert_eq!((status, answer["error"].clone()), (StatusCode::BAD_REQUEST, json!("invalid_grant")), "{answer}");
    assert_eq!(emulator.count("sts.token"), 8);
}

#[tokio::test]
async fn an_issued_token_past_its_expiry_is_unauthenticated() {
    let emulator = trusting_emulator();
    emulator.set_access_token_lifetime(Duration::from_secs(1));
    emulator.add_iam_binding(&format!("projects/{PROJECT}"), ACCESSOR, &gke_principal("apps", "reader"));
    let token = sign(KID, &ksa_claims("apps", "reader", &format!("{PROJECT}.svc.id.goog")));
    let (_, answer) = exchange(&emulator, &gke_audience(), &token).await;
    assert_eq!(answer["expires_in"], 1);
    let federated = answer["access_token"].as_str().unwrap_or_default().to_owned();
    assert_eq!(call(&emulator, Method::GET, ACCESS_PATH, Some(&federated), "").await.0, StatusCode::OK);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = call(&emulator, Method::GET, ACCESS_PATH, Some(&federated), "").await;
    assert_eq!((status, body["error"]["status"].clone()), (StatusCode::UNAUTHORIZED, json!("UNAUTHENTICATED")));
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Request had invalid authentication credentials."))
    );
    assert!(!body.to_string().contains(&federated));
    assert!(emulator.denials().is_empty(), "an expired token is not a denial");

    // IAM Credentials: the shorter of the emulator's lifetime and the one asked for.
    emulator.set_access_token_lifetime(Duration::from_secs(3600));
    let email = emulator.create_service_account(PROJECT, "reader-gsa");
    let fresh = federate(&emulator, "apps", "reader").await;
    emulator.add_iam_binding(
        &format!("projects/{PROJECT}/serviceAccounts/{email}"),
        "roles/iam.workloadIdentityUser",
        &gke_principal("apps", "reader"),
    );
    let (status, issued) = generate_access_token(&emulator, &email, &fresh, "1s").await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    let expire: jiff::Timestamp =
        issued["expireTime"].as_str().unwrap_or_default().parse().unwrap_or_else(|e| panic!("{e}"));
    assert!(expire.as_second() <= now() + 1, "{issued}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let gsa_token = issued["accessToken"].as_str().unwrap_or_default();
    assert_eq!(call(&emulator, Method::GET, ACCESS_PATH, Some(gsa_token), "").await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn without_issued_tokens_every_caller_is_the_owner() {
    let emulator = trusting_emulator();
    for token in [None, Some("test-token"), Some("ya29.looks-real-but-unknown")] {
        assert_eq!(call(&emulator, Method::GET, ACCESS_PATH, token, "").await.0, StatusCode::OK, "{token:?}");
        let create = "/v1/projects/demo-project/locations/global/apis?apiId=orders";
        let (status, created) = call(&emulator, Method::POST, create, token, "{}").await;
        assert!(status == StatusCode::OK || created["error"]["status"] == "ALREADY_EXISTS", "{created}");
        let (status, _) = call(&emulator, Method::POST, "/v1/projects/demo-project:getIamPolicy", token, "{}").await;
        assert_eq!(status, StatusCode::OK);
    }
    assert!(emulator.denials().is_empty());
}

#[tokio::test]
async fn project_policies_are_inherited_by_secrets_and_api_gateway() {
    let emulator = trusting_emulator();
    emulator.add_version(PROJECT, "other", b"x");
    let token = federate(&emulator, "ops", "deployer").await;
    let principal = gke_principal("ops", "deployer");
    let apis = "/v1/projects/demo-project/locations/global/apis";
    let (status, denied) = call(&emulator, Method::GET, apis, Some(&token), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        denied["error"]["message"],
        "Permission 'apigateway.apis.list' denied for resource 'projects/demo-project/locations/global' (or it may not exist)."
    );

    // Granted with the Resource Manager API, as `gcloud projects add-iam-policy-binding` does.
    let (_, current) = call(&emulator, Method::POST, "/v1/projects/demo-project:getIamPolicy", None, "{}").await;
    let bindings = json!([{"role": "roles/apigateway.admin", "members": [principal]}, {"role": "roles/secretmanager.viewer", "members": [principal]}]);
    let set = json!({"policy": {"etag": current["etag"], "bindings": bindings}}).to_string();
    let (status, _) = call(&emulator, Method::POST, "/v1/projects/demo-project:setIamPolicy", None, &set).await;
    assert_eq!(status, StatusCode::OK);
    let stale = call(&emulator, Method::POST, "/v1/projects/demo-project:setIamPolicy", None, &set).await;
    assert_eq!((stale.0, stale.1["error"]["status"].clone()), (StatusCode::CONFLICT, json!("ABORTED")));

    assert_eq!(call(&emulator, Method::GET, apis, Some(&token), "").await.0, StatusCode::OK);
    let (status, listed) = call(&emulator, Method::GET, "/v1/projects/demo-project/secrets", Some(&token), "").await;
    assert_eq!((status, listed["totalSize"].clone()), (StatusCode::OK, json!(2)));
    // Viewing is not reading.
    assert_eq!(call(&emulator, Method::GET, ACCESS_PATH, Some(&token), "").await.0, StatusCode::FORBIDDEN);
    // Not the owner: changing the project policy needs a role the token lacks.
    let (status, body) =
        call(&emulator, Method::POST, "/v1/projects/demo-project:setIamPolicy", Some(&token), &set).await;
    assert_eq!(
        (status, body["error"]["message"].clone()),
        (StatusCode::FORBIDDEN, json!("The caller does not have permission"))
    );
}

#[tokio::test]
async fn identity_methods_are_counted_faulted_and_routed_by_host() {
    let emulator = trusting_emulator();
    emulator.inject_fault(GcpFault::status("sts.token", 503).times(1));
    let token = sign(KID, &ksa_claims("apps", "reader", &format!("{PROJECT}.svc.id.goog")));
    let (status, body) = exchange(&emulator, &gke_audience(), &token).await;
    assert_eq!((status, body["error"]["status"].clone()), (StatusCode::SERVICE_UNAVAILABLE, json!("UNAVAILABLE")));
    assert_eq!(exchange(&emulator, &gke_audience(), &token).await.0, StatusCode::OK);

    // By Host, as a client that resolves googleapis.com to the emulator calls it.
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, header::HeaderValue::from_static("iam.googleapis.com"));
    let create = json!({"accountId": "reader-gsa", "serviceAccount": {"displayName": "Reader"}}).to_string();
    let uri: Uri = "/v1/projects/demo-project/serviceAccounts".parse().unwrap_or_else(|e| panic!("{e}"));
    let (status, account) =
        body_json(emulator.respond(&Method::POST, &uri, &headers, Bytes::from(create.clone())).await).await;
    assert_eq!(
        (status, account["email"].clone()),
        (StatusCode::OK, json!("reader-gsa@demo-project.iam.gserviceaccount.com"))
    );
    let (status, again) =
        call(&emulator, Method::POST, "/v1/projects/demo-project/serviceAccounts", None, &create).await;
    assert_eq!((status, again["error"]["status"].clone()), (StatusCode::CONFLICT, json!("ALREADY_EXISTS")));
    let gsa = "projects/-/serviceAccounts/reader-gsa@demo-project.iam.gserviceaccount.com";
    let (status, got) = call(&emulator, Method::GET, &format!("/v1/{gsa}"), None, "").await;
    assert_eq!((status, got["projectId"].clone()), (StatusCode::OK, json!(PROJECT)));
    call(&emulator, Method::POST, &format!("/v1/{gsa}:getIamPolicy"), None, "").await;
    let policy = json!({"policy": {"bindings": [{"role": "roles/iam.workloadIdentityUser", "members": ["serviceAccount:demo-project.svc.id.goog[apps/reader]"]}]}});
    call(&emulator, Method::POST, &format!("/v1/{gsa}:setIamPolicy"), None, &policy.to_string()).await;
    call(&emulator, Method::GET, &format!("/v1/{SECRET}:getIamPolicy?options.requestedPolicyVersion=3"), None, "")
        .await;
    call(&emulator, Method::POST, &format!("/v1/{SECRET}:setIamPolicy"), None, r#"{"policy":{}}"#).await;
    call(&emulator, Method::POST, "/v1/projects/demo-project:getIamPolicy", None, "{}").await;
    call(&emulator, Method::POST, "/v1/projects/demo-project:setIamPolicy", None, r#"{"policy":{}}"#).await;
    let federated = federate(&emulator, "apps", "reader").await;
    let (status, _) =
        generate_access_token(&emulator, "reader-gsa@demo-project.iam.gserviceaccount.com", &federated, "60s").await;
    assert_eq!(status, StatusCode::OK);

    let counts = emulator.counts();
    let expected = [
        ("sts.token", 3),
        ("iamcredentials.serviceAccounts.generateAccessToken", 1),
        ("iam.serviceAccounts.create", 2),
        ("iam.serviceAccounts.get", 1),
        ("iam.serviceAccounts.getIamPolicy", 1),
        ("iam.serviceAccounts.setIamPolicy", 1),
        ("secretmanager.secrets.getIamPolicy", 1),
        ("secretmanager.secrets.setIamPolicy", 1),
        ("cloudresourcemanager.projects.getIamPolicy", 1),
        ("cloudresourcemanager.projects.setIamPolicy", 1),
    ];
    for (method, count) in expected {
        assert_eq!(counts.get(method).copied(), Some(count), "{method}: {counts:?}");
    }
}

#[tokio::test]
async fn a_jwks_url_is_fetched_when_needed_cached_and_refetched_for_an_unknown_kid() {
    let document = Arc::new(Mutex::new(jwks("k1")));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (served, counter) = (Arc::clone(&document), Arc::clone(&fetches));
    let addr = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
    let listener = secure_api_testbed::listener::listen(addr, move |_request: hyper::Request<Bytes>| {
        let (served, counter) = (Arc::clone(&served), Arc::clone(&counter));
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            let body = served.lock().unwrap_or_else(PoisonError::into_inner).to_string();
            Response::new(Full::new(Bytes::from(body)))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("listen: {e}"));

    let emulator = GcpEmulator::new();
    assert_eq!(emulator.trust_jwks_source(&format!("{}/openid/v1/jwks", listener.url())), Ok(()));
    assert_eq!(fetches.load(Ordering::SeqCst), 0, "fetched only when a token arrives");
    let audience = format!("{PROJECT}.svc.id.goog");
    for _ in 0..2 {
        let (status, answer) =
            exchange(&emulator, &gke_audience(), &sign("k1", &ksa_claims("a", "b", &audience))).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "cached");

    *document.lock().unwrap_or_else(PoisonError::into_inner) = jwks("k2");
    let (status, answer) = exchange(&emulator, &gke_audience(), &sign("k2", &ksa_claims("a", "b", &audience))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(fetches.load(Ordering::SeqCst), 2, "refetched for the new kid");
    listener.shutdown().await;

    // A file is read at once.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks("k3").to_string()).unwrap_or_else(|e| panic!("{e}"));
    let from_file = GcpEmulator::new();
    assert_eq!(from_file.trust_jwks_source(&path.display().to_string()), Ok(()));
    let (status, _) = exchange(&from_file, &gke_audience(), &sign("k3", &ksa_claims("a", "b", &audience))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(from_file.trust_jwks_source("/nonexistent/jwks.json").is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn gcloud_creates_a_service_account_and_binds_workload_identity_and_secret_access() -> Result<(), String> {
    let (emulator, listener, mut gcloud) = start().await?;
    emulator.trust_jwks(jwks(KID));
    let created = gcloud
        .run(&["iam", "service-accounts", "create", "reader-gsa", "--display-name=Reader", "--format=json"])
        .await?;
    let email = created.success()?.json()?["email"].as_str().unwrap_or_default().to_owned();
    assert_eq!(email, "reader-gsa@demo-project.iam.gserviceaccount.com");

    let gke_member = format!("--member=serviceAccount:{PROJECT}.svc.id.goog[apps/reader]");
    let args = [
        "iam",
        "service-accounts",
        "add-iam-policy-binding",
        &email,
        &gke_member,
        "--role=roles/iam.workloadIdentityUser",
        "--format=json",
    ];
    let bound = gcloud.run(&args).await?.success()?.json()?;
    assert_eq!(bound["bindings"][0]["members"], json!([format!("serviceAccount:{PROJECT}.svc.id.goog[apps/reader]")]));

    let args = ["secrets", "create", "db", "--data-file=-", "--format=json"];
    gcloud.run_with_input(&args, Some(b"postgres://secret")).await?.success()?;
    let gsa_member = format!("--member=serviceAccount:{email}");
    let principal_member = format!("--member={}", gke_principal("apps", "direct"));
    for member in [&gsa_member, &principal_member] {
        let args = [
            "secrets",
            "add-iam-policy-binding",
            "db",
            member.as_str(),
            "--role=roles/secretmanager.secretAccessor",
            "--format=json",
        ];
        gcloud.run(&args).await?.success()?;
    }
    let policy = gcloud.run(&["secrets", "get-iam-policy", "db", "--format=json"]).await?.success()?.json()?;
    assert_eq!(
        policy["bindings"],
        json!([{"role": ACCESSOR, "members": [format!("serviceAccount:{email}"), gke_principal("apps", "direct")]}])
    );

    // What the bindings allow: `apps/direct` reads the secret with its federated token; `apps/reader`
    // only through the service account.
    let direct = federate(&emulator, "apps", "direct").await;
    assert_eq!(call(&emulator, Method::GET, ACCESS_PATH, Some(&direct), "").await.0, StatusCode::OK);
    let reader = federate(&emulator, "apps", "reader").await;
    assert_eq!(call(&emulator, Method::GET, ACCESS_PATH, Some(&reader), "").await.0, StatusCode::FORBIDDEN);
    let (status, issued) = generate_access_token(&emulator, &email, &reader, "3600s").await;
    assert_eq!(status, StatusCode::OK, "{issued}");

    // gcloud itself, as the service account and as a principal with no grant.
    gcloud.set_access_token(issued["accessToken"].as_str().unwrap_or_default());
    let read = gcloud.run(&["secrets", "versions", "access", "latest", "--secret=db"]).await?;
    assert_eq!(read.success()?.stdout, "postgres://secret");
    gcloud.set_access_token(&reader);
    let refused = gcloud.run(&["secrets", "versions", "access", "latest", "--secret=db"]).await?;
    assert!(!refused.status.success() && refused.stdout.is_empty(), "{}", refused.stdout);
    assert!(
        refused.stderr.contains("PERMISSION_DENIED") && refused.stderr.contains("secretmanager.versions.access"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains(&reader), "gcloud's error shows the token");
    assert_eq!(emulator.denials().last().map(|d| d.principal.clone()), Some(gke_principal("apps", "reader")));
    listener.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_subscriptions_own_policy_lets_a_principal_pull_it_and_no_other() {
    let emulator = trusting_emulator();
    emulator.create_subscription(PROJECT, "events-operator", "events", Duration::from_secs(10));
    emulator.create_subscription(PROJECT, "events-other", "events", Duration::from_secs(10));
    let token = federate(&emulator, "secure-api-operator", "secure-api-operator").await;
    let pull = |subscription: &str| format!("/v1/projects/demo-project/subscriptions/{subscription}:pull");
    let (status, denied) =
        call(&emulator, Method::POST, &pull("events-operator"), Some(&token), "{\"maxMessages\":1}").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{denied}");

    // Granted on the subscription, as `gcloud pubsub subscriptions add-iam-policy-binding` does.
    let policy_path = "/v1/projects/demo-project/subscriptions/events-operator";
    let (_, current) = call(&emulator, Method::GET, &format!("{policy_path}:getIamPolicy"), None, "").await;
    let member = gke_principal("secure-api-operator", "secure-api-operator");
    let bindings = json!([{"role": "roles/pubsub.subscriber", "members": [member]}]);
    let set = json!({"policy": {"etag": current["etag"], "bindings": bindings}}).to_string();
    let (status, _) = call(&emulator, Method::POST, &format!("{policy_path}:setIamPolicy"), None, &set).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(emulator.count("pubsub.subscriptions.setIamPolicy"), 1);

    let (status, pulled) =
        call(&emulator, Method::POST, &pull("events-operator"), Some(&token), "{\"maxMessages\":1}").await;
    assert_eq!(status, StatusCode::OK, "{pulled}");
    let other = call(&emulator, Method::POST, &pull("events-other"), Some(&token), "{\"maxMessages\":1}").await;
    assert_eq!(other.0, StatusCode::FORBIDDEN, "the grant is the subscription's alone");
    // Consuming is all the subscriber role grants: not the subscription's policy.
    let (status, _) = call(&emulator, Method::POST, &format!("{policy_path}:setIamPolicy"), Some(&token), &set).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
