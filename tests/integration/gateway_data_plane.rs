//! The GCP emulator's API Gateway data plane: a gateway's `defaultHostname`, sent as `Host` to
//! the emulator's listener, enforces the gateway's config (routes, API key, JWT, quota) and
//! proxies to a backend on 127.0.0.1, answering refusals as ESPv2 does.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents};
use secure_api_testbed::emulator::gcp::GcpEmulator;
use secure_api_testbed::listener::{Listener, listen};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;

use crate::support::PROJECT;
use crate::support::wait::{DEADLINE, wait_for, within};

const API: &str = "secure-api";
const ISSUER: &str = "https://issuer.example.com";
/// Registered in-process: the emulator never fetches it.
const JWKS_URI: &str = "https://issuer.example.com/jwks";
const AUDIENCE: &str = "secure-api-clients";
/// The emulator's JWT test key (PKCS#1 DER).
const SIGNING_KEY: &[u8] = include_bytes!("../../crates/testbed/src/emulator/gcp/iam/testdata/jwt-signing-key.der");
const READS_PER_MINUTE: usize = 3;

struct Bed {
    emulator: GcpEmulator,
    front: Listener,
    _backend: Listener,
    hostname: String,
    service: String,
}

/// A backend that answers what it received: method, path and query, and two headers.
async fn backend() -> Listener {
    let answer = |request: Request<Bytes>| async move {
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let seen = json!({
            "method": request.method().as_str(),
            "target": request.uri().path_and_query().map(|p| p.as_str().to_owned()),
            "authorization": header("authorization"),
            "userinfo": header("x-endpoint-api-userinfo").is_some(),
        });
        Response::new(Full::new(Bytes::from(seen.to_string())))
    };
    let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
    listen(addr, answer).await.unwrap_or_else(|e| panic!("backend: {e}"))
}

fn document(backend: SocketAddr) -> Value {
    let address = format!("http://{backend}");
    json!({
        "swagger": "2.0",
        "info": {"title": API, "version": "1.0.0"},
        "x-google-backend": {"address": address, "path_translation": "APPEND_PATH_TO_ADDRESS", "deadline": 5.0},
        "securityDefinitions": {
            "api_key": {"type": "apiKey", "name": "key", "in": "query"},
            "issuer": {"type": "oauth2", "authorizationUrl": "", "flow": "implicit",
                "x-google-issuer": ISSUER, "x-google-jwks_uri": JWKS_URI, "x-google-audiences": AUDIENCE},
        },
        "x-google-management": {
            "metrics": [{"name": "reads", "displayName": "reads", "valueType": "INT64", "metricKind": "DELTA"}],
            "quota": {"limits": [{"name": "reads-limit", "metric": "reads", "unit": "1/min/{project}",
                "values": {"STANDARD": READS_PER_MINUTE}}]},
        },
        "paths": {
            "/health": {"get": {"operationId": "healthCheck", "responses": {"200": {"description": "OK"}}}},
            "/config": {"get": {"operationId": "getConfig", "security": [{"api_key": []}],
                "x-google-quota": {"metricCosts": {"reads": 1}}, "responses": {"200": {"description": "OK"}}}},
            "/api/data": {"get": {"operationId": "getSecureData", "security": [{"issuer": []}],
                "responses": {"200": {"description": "OK"}}}},
            "/orders/{id}": {"get": {"operationId": "getOrder", "responses": {"200": {"description": "OK"}},
                "x-google-backend": {"address": format!("{address}/orders"), "path_translation": "CONSTANT_ADDRESS"}}},
        },
    })
}

/// One control-plane call through `respond`; the JSON answer.
async fn control(emulator: &GcpEmulator, method: Method, path: &str, body: Value) -> Value {
    let uri: Uri = path.parse().unwrap_or_else(|e| panic!("{path}: {e}"));
    let body = if body.is_null() { Bytes::new() } else { Bytes::from(body.to_string()) };
    let response = emulator.respond(&method, &uri, &HeaderMap::new(), body).await;
    let status = response.status();
    let bytes = response.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert!(status.is_success(), "{method} {path}: {status} {value}");
    value
}

/// An API, a config of [`document`], an ACTIVE gateway, an enabled service and key `web`
/// restricted to it.
async fn bed() -> Bed {
    let emulator = GcpEmulator::new();
    emulator.set_operation_delay(Duration::ZERO);
    let backend = backend().await;
    let front = emulator.listen(([127, 0, 0, 1], 0).into()).await.unwrap_or_else(|e| panic!("emulator: {e}"));
    let apis = format!("/v1/projects/{PROJECT}/locations/global/apis");
    control(&emulator, Method::POST, &format!("{apis}?apiId={API}"), json!({})).await;
    let contents = STANDARD.encode(document(backend.addr).to_string());
    let config = json!({"openapiDocuments": [{"document": {"path": "openapi.json", "contents": contents}}]});
    control(&emulator, Method::POST, &format!("{apis}/{API}/configs?apiConfigId=v1"), config).await;
    let service = control(&emulator, Method::GET, &format!("{apis}/{API}"), Value::Null).await["managedService"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let config_name = format!("projects/{PROJECT}/locations/global/apis/{API}/configs/v1");
    let gateways = format!("/v1/projects/{PROJECT}/locations/us-central1/gateways?gatewayId=gw");
    control(&emulator, Method::POST, &gateways, json!({"apiConfig": config_name})).await;
    let hostname = wait_for("the gateway to be ACTIVE", DEADLINE, || async {
        let (_, state, hostname) = emulator.gateway(PROJECT, "us-central1", "gw")?;
        (state == "ACTIVE").then_some(hostname)
    })
    .await;
    emulator.enable_service(PROJECT, &service);
    let keys = format!("/v2/projects/{PROJECT}/locations/global/keys?keyId=web");
    control(&emulator, Method::POST, &keys, json!({"restrictions": {"apiTargets": [{"service": service}]}})).await;
    wait_for("key web", DEADLINE, || async { emulator.key_string(PROJECT, "web") }).await;
    emulator.trust_jwks_uri(JWKS_URI, jwks());
    Bed { emulator, front, _backend: backend, hostname, service }
}

impl Bed {
    /// `method target` to the gateway's hostname: status and JSON body.
    async fn call(&self, method: Method, target: &str, bearer: Option<&str>) -> (StatusCode, Value) {
        let stream = TcpStream::connect(self.front.addr).await.unwrap_or_else(|e| panic!("connect: {e}"));
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap_or_else(|e| panic!("handshake: {e}"));
        tokio::spawn(connection);
        let mut request =
            Request::builder().method(method).uri(target).header("host", format!("{}:443", self.hostname));
        if let Some(token) = bearer {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request.body(Full::new(Bytes::new())).unwrap_or_else(|e| panic!("request: {e}"));
        let response = sender.send_request(request).await.unwrap_or_else(|e| panic!("send: {e}"));
        let status = response.status();
        let bytes = response.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    fn key(&self) -> String {
        self.emulator.key_string(PROJECT, "web").unwrap_or_default()
    }
}

fn signing_key() -> RsaKeyPair {
    RsaKeyPair::from_der(SIGNING_KEY).unwrap_or_else(|e| panic!("test key: {e}"))
}

fn jwks() -> Value {
    let public = RsaPublicKeyComponents::<Vec<u8>>::from(signing_key().public());
    json!({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "k1",
        "n": URL_SAFE_NO_PAD.encode(&public.n), "e": URL_SAFE_NO_PAD.encode(&public.e)}]})
}

fn token(issuer: &str, audience: &str, expires_in: i64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let exp = now.saturating_add_signed(expires_in);
    let claims = json!({"iss": issuer, "sub": "client-1", "aud": audience, "iat": now - 120, "exp": exp});
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "typ": "JWT", "kid": "k1"}).to_string());
    let signed = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let key = signing_key();
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signed.as_bytes(), &mut signature)
        .unwrap_or_else(|e| panic!("signing: {e}"));
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

#[tokio::test]
async fn routes_and_api_keys_are_enforced_and_allowed_calls_reach_the_backend() {
    within(async {
        let bed = bed().await;
        let (status, seen) = bed.call(Method::GET, "/health", None).await;
        assert_eq!((status, seen["target"].as_str()), (StatusCode::OK, Some("/health")), "{seen}");

        let (status, refused) = bed.call(Method::GET, "/config", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(refused["code"], 401);
        assert!(refused["message"].as_str().is_some_and(|m| m.contains("Method doesn't allow unregistered callers")));

        let key = bed.key();
        let (status, seen) = bed.call(Method::GET, &format!("/config?key={key}"), None).await;
        assert_eq!((status, seen["target"].as_str()), (StatusCode::OK, Some(format!("/config?key={key}").as_str())));

        let (status, refused) = bed.call(Method::GET, "/config?key=AIzaNotAKey", None).await;
        assert_eq!((status, refused["code"].clone()), (StatusCode::BAD_REQUEST, json!(400)), "{refused}");
        assert!(!refused.to_string().contains("AIzaNotAKey"), "the key is never echoed: {refused}");

        let (status, seen) = bed.call(Method::GET, "/orders/7?x=1", None).await;
        assert_eq!((status, seen["target"].as_str()), (StatusCode::OK, Some("/orders?id=7&x=1")), "{seen}");

        let (status, refused) = bed.call(Method::POST, "/health", None).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{refused}");
        let (status, refused) = bed.call(Method::GET, "/nowhere", None).await;
        assert_eq!(
            (status, refused),
            (StatusCode::NOT_FOUND, json!({"code": 404, "message": "The current request is not defined by this API."}))
        );

        control(
            &bed.emulator,
            Method::DELETE,
            &format!("/v2/projects/{PROJECT}/locations/global/keys/web"),
            Value::Null,
        )
        .await;
        wait_for("key web deleted", DEADLINE, || async {
            bed.emulator.api_keys(PROJECT).first().is_some_and(|k| k.deleted).then_some(())
        })
        .await;
        let (status, refused) = bed.call(Method::GET, &format!("/config?key={key}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        assert!(refused["message"].as_str().is_some_and(|m| m.contains("API key not found")), "{refused}");
        let _ = &bed.service;
    })
    .await;
}

#[tokio::test]
async fn a_disabled_service_is_permission_denied() {
    within(async {
        let bed = bed().await;
        let usage = format!("/v1/projects/{PROJECT}/services/{}:disable", bed.service);
        control(&bed.emulator, Method::POST, &usage, json!({})).await;
        let key = bed.key();
        let refused = wait_for("the service disabled", DEADLINE, || async {
            let (status, refused) = bed.call(Method::GET, &format!("/config?key={key}"), None).await;
            (status == StatusCode::FORBIDDEN).then_some(refused)
        })
        .await;
        let expected = format!("PERMISSION_DENIED: API {} is not enabled for the project.", bed.service);
        assert_eq!(refused["message"].as_str(), Some(expected.as_str()));
    })
    .await;
}

#[tokio::test]
async fn jwts_are_verified_for_issuer_audience_signature_and_time() {
    within(async {
        let bed = bed().await;
        let good = token(ISSUER, AUDIENCE, 600);
        let (status, seen) = bed.call(Method::GET, "/api/data", Some(&good)).await;
        assert_eq!(status, StatusCode::OK, "{seen}");
        assert_eq!(seen["userinfo"], true, "the verified claims are passed on");
        assert_eq!(seen["authorization"].as_str(), Some(format!("Bearer {good}").as_str()));

        let message = |answer: (StatusCode, Value)| (answer.0, answer.1["message"].as_str().map(str::to_owned));
        let expect = |status: StatusCode, text: &str| (status, Some(text.to_owned()));
        assert_eq!(
            message(bed.call(Method::GET, "/api/data", None).await),
            expect(StatusCode::UNAUTHORIZED, "Jwt is missing")
        );
        let other_issuer = token("https://other.example.com", AUDIENCE, 600);
        assert_eq!(
            message(bed.call(Method::GET, "/api/data", Some(&other_issuer)).await),
            expect(StatusCode::UNAUTHORIZED, "Jwt issuer is not configured")
        );
        let other_audience = token(ISSUER, "someone-else", 600);
        assert_eq!(
            message(bed.call(Method::GET, "/api/data", Some(&other_audience)).await),
            expect(StatusCode::FORBIDDEN, "Audiences in Jwt are not allowed")
        );
        let expired = token(ISSUER, AUDIENCE, -10);
        assert_eq!(
            message(bed.call(Method::GET, "/api/data", Some(&expired)).await),
            expect(StatusCode::UNAUTHORIZED, "Jwt is expired")
        );
        // Another token's signature on these claims.
        let (signed, _) = good.rsplit_once('.').unwrap_or_default();
        let (_, signature) = other_audience.rsplit_once('.').unwrap_or_default();
        let forged = format!("{signed}.{signature}");
        assert_eq!(
            message(bed.call(Method::GET, "/api/data", Some(&forged)).await),
            expect(StatusCode::UNAUTHORIZED, "Jwt verification fails")
        );
    })
    .await;
}

#[tokio::test]
async fn a_key_over_its_quota_is_refused_until_the_next_minute() {
    within(async {
        let bed = bed().await;
        let target = format!("/config?key={}", bed.key());
        // A minute boundary may pass during the loop and refill the quota: allow two windows.
        let mut refused = None;
        for _ in 0..=2 * READS_PER_MINUTE + 1 {
            let (status, answer) = bed.call(Method::GET, &target, None).await;
            if status == StatusCode::TOO_MANY_REQUESTS {
                refused = Some(answer);
                break;
            }
            assert_eq!(status, StatusCode::OK, "{answer}");
        }
        let refused = refused.unwrap_or_else(|| panic!("no 429 after {} calls", 2 * READS_PER_MINUTE + 2));
        assert_eq!(refused["code"], 429);
        let message = refused["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("RESOURCE_EXHAUSTED: Quota exceeded for quota metric 'reads'"), "{message}");
        bed.emulator.advance_clock(Duration::from_secs(61));
        assert_eq!(bed.call(Method::GET, &target, None).await.0, StatusCode::OK);
    })
    .await;
}
