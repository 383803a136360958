//! The TokenRequest API (`serviceaccounts/NAME/token`) and the service-account issuer's discovery
//! (`/.well-known/openid-configuration`, `/openid/v1/jwks`), as kube-apiserver serves them. Every
//! test also runs against a real cluster except the parts that need the emulator's hooks.

use crate::support::cluster::TestCluster;
use crate::support::kubectl::{Kubectl, serve_emulator};
use crate::support::wait::{DEADLINE, wait_for};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::BodyExt;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::Api;
use kube::api::{ListParams, PostParams};
use kube::core::Status;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use secure_api_testbed::emulator::kube::{DEFAULT_ISSUER, EmulatorOptions, Fault, KubeEmulator};
use serde_json::{Value, json};

async fn service_account(cluster: &TestCluster, name: &str) -> ServiceAccount {
    let object = serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap_or_else(|e| panic!("{e}"));
    cluster.api::<ServiceAccount>().create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("{e}"))
}

fn token_request(audiences: &[&str], expiration_seconds: Option<i64>) -> TokenRequest {
    TokenRequest {
        spec: TokenRequestSpec {
            audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
            expiration_seconds,
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    }
}

async fn request_token(api: &Api<ServiceAccount>, name: &str, request: &TokenRequest) -> kube::Result<TokenRequest> {
    api.create_token_request(name, &PostParams::default(), request).await
}

async fn issued(cluster: &TestCluster, name: &str, request: &TokenRequest) -> TokenRequest {
    request_token(&cluster.api(), name, request).await.unwrap_or_else(|e| panic!("token for {name}: {e}"))
}

fn status_token(answer: &TokenRequest) -> String {
    answer.status.as_ref().map(|s| s.token.clone()).unwrap_or_default()
}

/// A compact JWS, split and decoded.
struct Jwt {
    header: Value,
    claims: Value,
    signed: String,
    signature: Vec<u8>,
}

fn decode(token: &str) -> Jwt {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three parts: {token}");
    let json = |part: &str| -> Value {
        let bytes = URL_SAFE_NO_PAD.decode(part).unwrap_or_else(|e| panic!("base64url {part}: {e}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("JSON {part}: {e}"))
    };
    Jwt {
        header: json(parts[0]),
        claims: json(parts[1]),
        signed: format!("{}.{}", parts[0], parts[1]),
        signature: URL_SAFE_NO_PAD.decode(parts[2]).unwrap_or_else(|e| panic!("signature: {e}")),
    }
}

/// GETs a path of the API server: its status, Content-Type and JSON body.
async fn get_document(client: &kube::Client, path: &str) -> (u16, String, Value) {
    let request = hyper::Request::get(path).body(kube::client::Body::empty()).unwrap_or_else(|e| panic!("{e}"));
    let response = client.send(request).await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = response.into_body().collect().await.unwrap_or_else(|e| panic!("body of {path}: {e}")).to_bytes();
    let value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("JSON from {path}: {e}"));
    (status, content_type, value)
}

/// The issuer's key set, as any relying party fetches it.
async fn jwks(client: &kube::Client) -> Value {
    let request = hyper::Request::get("/openid/v1/jwks").body(Vec::new()).unwrap_or_else(|e| panic!("{e}"));
    let text = client.request_text(request).await.unwrap_or_else(|e| panic!("GET /openid/v1/jwks: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("JWKS {text}: {e}"))
}

/// Whether the token's RS256 signature verifies with the JWKS key its `kid` names.
fn verifies(jwt: &Jwt, keys: &Value) -> bool {
    let kid = &jwt.header["kid"];
    let Some(key) = keys["keys"].as_array().into_iter().flatten().find(|k| &k["kid"] == kid) else {
        return false;
    };
    let component = |name: &str| key[name].as_str().and_then(|v| URL_SAFE_NO_PAD.decode(v).ok()).unwrap_or_default();
    let public = RsaPublicKeyComponents { n: component("n"), e: component("e") };
    public.verify(&RSA_PKCS1_2048_8192_SHA256, jwt.signed.as_bytes(), &jwt.signature).is_ok()
}

fn api_status(result: kube::Result<TokenRequest>) -> Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_token_carries_the_service_accounts_claims_and_the_requested_audience_and_expiry() {
    let cluster = TestCluster::start("token-claims").await;
    let account = service_account(&cluster, "robot").await;
    let answer = issued(&cluster, "robot", &token_request(&["sts.example.com"], Some(1200))).await;

    let meta = &answer.metadata;
    assert_eq!((meta.name.as_deref(), meta.namespace.as_deref()), (Some("robot"), Some(cluster.namespace.as_str())));
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(answer.spec.audiences, ["sts.example.com"]);
    assert_eq!(answer.spec.expiration_seconds, Some(1200));

    let jwt = decode(&status_token(&answer));
    assert_eq!(jwt.header["alg"], "RS256");
    assert!(jwt.header["kid"].as_str().is_some_and(|k| !k.is_empty()), "{}", jwt.header);
    let claims = &jwt.claims;
    assert_eq!(claims["aud"], json!(["sts.example.com"]));
    assert_eq!(claims["sub"], format!("system:serviceaccount:{}:robot", cluster.namespace));
    assert_eq!(
        claims["kubernetes.io"],
        json!({
            "namespace": cluster.namespace,
            "serviceaccount": { "name": "robot", "uid": account.metadata.uid.unwrap_or_default() },
        })
    );
    assert!(claims["iss"].as_str().is_some_and(|i| !i.is_empty()), "{claims}");
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()), "{claims}");
    let (iat, nbf, exp) = (claims["iat"].as_i64(), claims["nbf"].as_i64(), claims["exp"].as_i64());
    let (Some(iat), Some(nbf), Some(exp)) = (iat, nbf, exp) else { panic!("numeric iat, nbf, exp: {claims}") };
    assert_eq!((nbf, exp - iat), (iat, 1200));
    let now = jiff::Timestamp::now().as_second();
    assert!((iat - now).abs() < 300, "issued now (iat {iat}, clock {now})");
    let expires = answer.status.map(|s| s.expiration_timestamp.0.as_second()).unwrap_or_default();
    assert!((expires - exp).abs() <= 1, "status.expirationTimestamp {expires} is the token's exp {exp}");
}

#[tokio::test]
async fn an_empty_request_gets_the_default_audience_and_an_hour_with_emulator_hooks() {
    let cluster = TestCluster::start("token-defaults").await;
    service_account(&cluster, "robot").await;
    let answer = issued(&cluster, "robot", &token_request(&[], None)).await;
    assert_eq!(answer.spec.expiration_seconds, Some(3600));
    assert!(!answer.spec.audiences.is_empty());
    let claims = decode(&status_token(&answer)).claims;
    assert_eq!(claims["aud"], json!(answer.spec.audiences), "the token is for the defaulted audiences");
    assert_eq!(claims["exp"].as_i64().zip(claims["iat"].as_i64()).map(|(e, i)| e - i), Some(3600));
    if let Some(emulator) = cluster.hooks() {
        // kube-apiserver's `--api-audiences` defaults to the issuer.
        assert_eq!(answer.spec.audiences, [emulator.service_account_issuer()]);
    }
}

#[tokio::test]
async fn the_token_signature_verifies_against_the_published_jwks() {
    let cluster = TestCluster::start("token-jwks").await;
    service_account(&cluster, "robot").await;
    let answer = issued(&cluster, "robot", &token_request(&["sts.example.com"], None)).await;
    let jwt = decode(&status_token(&answer));
    let keys = jwks(&cluster.client).await;
    for key in keys["keys"].as_array().into_iter().flatten().filter(|k| k["kty"] == "RSA") {
        assert_eq!((&key["use"], &key["alg"], &key["e"]), (&json!("sig"), &json!("RS256"), &json!("AQAB")), "{key}");
    }
    assert!(verifies(&jwt, &keys), "the token (kid {}) verifies with {keys}", jwt.header["kid"]);

    let mut forged = decode(&status_token(&answer));
    forged.signed.push('x');
    assert!(!verifies(&forged, &keys), "other bytes do not verify");
}

#[tokio::test]
async fn the_discovery_document_names_the_issuer_the_tokens_carry_with_emulator_hooks() {
    let cluster = TestCluster::start("token-discovery").await;
    service_account(&cluster, "robot").await;
    let claims = decode(&status_token(&issued(&cluster, "robot", &token_request(&["x"], None)).await)).claims;

    let (status, content_type, config) = get_document(&cluster.client, "/.well-known/openid-configuration").await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    assert_eq!(config["issuer"], claims["iss"]);
    assert!(config["jwks_uri"].as_str().is_some_and(|u| u.ends_with("/openid/v1/jwks")), "{config}");
    assert_eq!(config["response_types_supported"], json!(["id_token"]));
    assert_eq!(config["subject_types_supported"], json!(["public"]));
    assert_eq!(config["id_token_signing_alg_values_supported"], json!(["RS256"]));

    let (status, content_type, keys) = get_document(&cluster.client, "/openid/v1/jwks").await;
    assert_eq!((status, content_type.as_str()), (200, "application/jwk-set+json"));
    if let Some(emulator) = cluster.hooks() {
        assert_eq!(config["issuer"], DEFAULT_ISSUER);
        assert_eq!(config["jwks_uri"], format!("{DEFAULT_ISSUER}/openid/v1/jwks"));
        assert_eq!(keys, emulator.service_account_jwks(), "the public method serves the same key set");
    }
}

#[tokio::test]
async fn a_missing_service_account_or_namespace_is_not_found() {
    let cluster = TestCluster::start("token-missing").await;
    let status = api_status(request_token(&cluster.api(), "ghost", &token_request(&[], None)).await);
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    assert_eq!(status.message, "serviceaccounts \"ghost\" not found");

    let elsewhere = Api::<ServiceAccount>::namespaced(cluster.client.clone(), &format!("{}-absent", cluster.namespace));
    let status = api_status(request_token(&elsewhere, "ghost", &token_request(&[], None)).await);
    assert_eq!(status.code, 404);
    assert_eq!(status.message, format!("namespaces \"{}-absent\" not found", cluster.namespace));
}

#[tokio::test]
async fn an_expiry_under_ten_minutes_or_over_two_to_the_32_seconds_is_invalid() {
    let cluster = TestCluster::start("token-expiry").await;
    service_account(&cluster, "robot").await;
    let status = api_status(request_token(&cluster.api(), "robot", &token_request(&[], Some(60))).await);
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        status.message,
        "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 60: \
         may not specify a duration less than 10 minutes"
    );
    let too_long = (1_i64 << 32) + 1;
    let status = api_status(request_token(&cluster.api(), "robot", &token_request(&[], Some(too_long))).await);
    assert_eq!(status.code, 422);
    assert!(status.message.ends_with("may not specify a duration larger than 2^32 seconds"), "{}", status.message);
}

#[tokio::test]
async fn a_fault_injected_on_the_token_subresource_is_answered_and_counted_with_emulator_hooks() {
    let cluster = TestCluster::start("token-fault").await;
    let Some(emulator) = cluster.hooks() else { return };
    service_account(&cluster, "robot").await;
    emulator.inject_fault(Fault::status("create", "serviceaccounts/token", 403).times(1));
    let status = api_status(request_token(&cluster.api(), "robot", &token_request(&[], None)).await);
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    issued(&cluster, "robot", &token_request(&[], None)).await;
    assert_eq!(emulator.count("create", "serviceaccounts/token"), 2);
    assert_eq!(emulator.count("create", "serviceaccounts"), 1, "the token subresource is counted apart");
}

#[tokio::test]
async fn a_token_request_stores_nothing_with_emulator_hooks() {
    let cluster = TestCluster::start("token-stateless").await;
    let Some(emulator) = cluster.hooks() else { return };
    service_account(&cluster, "robot").await;
    // The simulated root-CA publisher writes into the new namespace once: not during the measure.
    let maps: Api<ConfigMap> = cluster.api();
    wait_for("the root-CA ConfigMap", DEADLINE, || async { maps.get_opt("kube-root-ca.crt").await.ok().flatten() })
        .await;
    let before = emulator.resource_version();
    issued(&cluster, "robot", &token_request(&[], None)).await;
    assert_eq!(emulator.resource_version(), before, "no write, no watch event");
    let accounts = cluster.api::<ServiceAccount>().list(&ListParams::default()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(accounts.items.len(), 1);
}

#[tokio::test]
async fn a_chosen_issuer_is_the_tokens_iss_and_the_default_audience() {
    let issuer = "https://issuer.test.example";
    let emulator = KubeEmulator::with_options(EmulatorOptions { issuer: Some(issuer.into()), ..Default::default() });
    assert_eq!(emulator.service_account_issuer(), issuer);
    let api: Api<ServiceAccount> = Api::namespaced(emulator.client(), "default");
    let object = serde_json::from_value(json!({ "metadata": { "name": "robot" } })).unwrap_or_else(|e| panic!("{e}"));
    api.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("{e}"));
    let answer = request_token(&api, "robot", &token_request(&[], None)).await.unwrap_or_else(|e| panic!("{e}"));
    let jwt = decode(&status_token(&answer));
    assert_eq!((&jwt.claims["iss"], &jwt.claims["aud"]), (&json!(issuer), &json!([issuer])));
    assert!(verifies(&jwt, &emulator.service_account_jwks()));
    let (_, _, config) = get_document(&emulator.client(), "/.well-known/openid-configuration").await;
    assert_eq!(config["jwks_uri"], format!("{issuer}/openid/v1/jwks"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_token_prints_a_token_the_jwks_verifies() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let emulator = KubeEmulator::new();
    let (kubeconfig, listener) = serve_emulator(&emulator, dir.path()).await;
    let token = tokio::task::spawn_blocking(move || {
        let kubectl = Kubectl::new(&kubeconfig, "default");
        kubectl.ok(&["create", "serviceaccount", "robot"]);
        kubectl.ok(&["create", "token", "robot", "--audience=sts.example.com", "--duration=15m"])
    })
    .await
    .unwrap_or_else(|e| panic!("kubectl steps: {e}"));
    drop(listener);
    let jwt = decode(token.trim());
    assert_eq!(jwt.claims["aud"], json!(["sts.example.com"]));
    assert_eq!(jwt.claims["exp"].as_i64().zip(jwt.claims["iat"].as_i64()).map(|(e, i)| e - i), Some(900));
    assert!(verifies(&jwt, &emulator.service_account_jwks()));
}
