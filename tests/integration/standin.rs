//! The playground's stand-in for the seed's API: each Ready revision answers from its own env and
//! files, split by Ready pods; it is reached through the emulated API Gateway at the service's
//! external URL, and shows a rotation of api-config-db as a new revision with the new database
//! host.

use crate::support::wait::wait_for;
use crate::support::{PROJECT, principal};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use secure_api_operator::api::{GatewayConfig, SecureApiService};
use secure_api_testbed::dev::examples;
use secure_api_testbed::dev::playground::{Playground, PlaygroundOptions, SEED_NAMESPACE, SEED_SERVICE};
use secure_api_testbed::dev::standin::{REVISION_HEADER, StandIn};
use secure_api_testbed::emulator::kube::{DeploymentSimulation, KubeEmulator};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;

/// Generous: the seed scenario takes a few seconds, a loaded CI machine more.
const SLOW: Duration = Duration::from_secs(90);
const API_KEY: &str = "standin-key";

/// `GET path` at `addr` with `Host: host`: status and JSON body, `None` when nothing answers.
async fn get(addr: SocketAddr, host: &str, path: &str, bearer: Option<&str>) -> Option<(StatusCode, Value)> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(connection);
    let mut request = Request::get(path).header("host", host);
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = sender.send_request(request.body(Full::new(Bytes::new())).ok()?).await.ok()?;
    let status = response.status();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

fn db_payload(host: &str) -> Vec<u8> {
    json!({"host": host, "port": 5432, "username": "api_user", "password": "pw-sentinel"}).to_string().into_bytes()
}

/// The seed's secrets and Google IAM, as the demo's first two steps make them.
fn seed_google_cloud(playground: &Playground) {
    let gcp = &playground.gcp;
    let keys = json!({"external_api_key": API_KEY, "jwt_secret": "j", "encryption_key": "e"}).to_string();
    let config = json!({"debug_mode": false, "rate_limit": 1000, "cache_ttl": 3600, "log_level": "INFO"}).to_string();
    let topic = playground.topic();
    let gsa = gcp.create_service_account(PROJECT, "secure-api-sa");
    for (id, payload) in [
        ("api-config-db", db_payload("db.example.com")),
        ("api-config-keys", keys.into()),
        ("api-config-config", config.into()),
    ] {
        gcp.add_version(PROJECT, id, &payload);
        gcp.set_secret_topics(PROJECT, id, &[&topic]).unwrap_or_else(|e| panic!("topics of {id}: {e:?}"));
        let secret = format!("projects/{PROJECT}/secrets/{id}");
        gcp.add_iam_binding(&secret, "roles/secretmanager.secretAccessor", &format!("serviceAccount:{gsa}"));
    }
    let ksa = format!("serviceAccount:{PROJECT}.svc.id.goog[{SEED_NAMESPACE}/{SEED_SERVICE}]");
    gcp.add_iam_binding(&format!("projects/{PROJECT}/serviceAccounts/{gsa}"), "roles/iam.workloadIdentityUser", &ksa);
    let admin = principal(SEED_NAMESPACE, "gateway-admin");
    for role in ["roles/apigateway.admin", "roles/serviceusage.serviceUsageAdmin", "roles/serviceusage.apiKeysAdmin"] {
        gcp.add_iam_binding(&format!("projects/{PROJECT}"), role, &admin);
    }
}

async fn start() -> (tempfile::TempDir, Playground) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let options = PlaygroundOptions {
        kube_listen: ([127, 0, 0, 1], 0).into(),
        gcp_listen: ([127, 0, 0, 1], 0).into(),
        dir: dir.path().to_path_buf(),
        gcp_project: PROJECT.into(),
        notifications: true,
        prometheus_allowed_url_prefixes: Vec::new(),
    };
    let playground = Playground::start(&options).await.unwrap_or_else(|e| panic!("the playground did not start: {e}"));
    (dir, playground)
}

#[tokio::test]
async fn the_seeds_gateway_answers_from_the_standin_and_shows_a_rotation() {
    let (_dir, playground) = start().await;
    seed_google_cloud(&playground);
    examples::apply(&playground.client(), SEED_NAMESPACE).await.unwrap_or_else(|e| panic!("{e}"));
    let external = playground.backend_routed(SLOW).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(external.starts_with("http://203.0.113."), "the LoadBalancer's address: {external}");

    let client = playground.client();
    let gateways: Api<GatewayConfig> = Api::namespaced(client.clone(), SEED_NAMESPACE);
    let gateway_url =
        wait_for("the gateway's URL", SLOW, || async { gateways.get("secure-api").await.ok()?.status?.gateway_url })
            .await;
    let host = gateway_url.trim_start_matches("https://").trim_end_matches('/').to_owned();
    let front = playground.gcp_addr();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), SEED_NAMESPACE);
    let key = wait_for("the gateway's API key in its Secret", SLOW, || async {
        let data = secrets.get("secure-api-key").await.ok()?.data?;
        Some(String::from_utf8_lossy(&data.get("api-key")?.0).into_owned())
    })
    .await;
    let services: Api<SecureApiService> = Api::namespaced(client, SEED_NAMESPACE);
    let revision = || async { services.get(SEED_SERVICE).await.ok()?.status?.revision };

    let health = wait_for("/health through the gateway", SLOW, || async {
        get(front, &host, "/health", None).await.filter(|(status, _)| *status == StatusCode::OK)
    })
    .await;
    assert_eq!(health.1["status"], "healthy");
    let before = revision().await.unwrap_or_default();
    assert_eq!(health.1["revision"], before.as_str(), "{health:?}");
    let database = format!("/database/status?key={key}");
    let (status, body) = get(front, &host, &database, None).await.unwrap_or_else(|| panic!("no answer"));
    assert_eq!(
        (status, body["host"].clone(), body["port"].clone()),
        (StatusCode::OK, json!("db.example.com"), json!(5432))
    );
    assert!(!body.to_string().contains("pw-sentinel"), "{body}");
    let data = format!("/api/data?key={key}");
    let (status, _) = get(front, &host, &data, Some(API_KEY)).await.unwrap_or_else(|| panic!("no answer"));
    assert_eq!(status, StatusCode::OK, "the backend's Bearer check passes with external_api_key");
    let (status, _) = get(front, &host, &data, Some("wrong")).await.unwrap_or_else(|| panic!("no answer"));
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    playground.gcp.add_version(PROJECT, "api-config-db", &db_payload("db2.example.com"));
    let rotated = wait_for("the new revision's database host through the gateway", SLOW, || async {
        let (status, body) = get(front, &host, &database, None).await?;
        (status == StatusCode::OK && body["host"] == "db2.example.com").then_some(body)
    })
    .await;
    let after = revision().await.unwrap_or_default();
    assert_ne!(after, before, "a rotation is a new revision");
    assert_eq!(rotated["revision"], after.as_str(), "{rotated}");
    playground.stop().await;
}

/// A revision as the operator renders one: the Deployment `name` stamped with it, `replicas`
/// pods, env from a db snapshot.
fn deployment(name: &str, revision: &str, replicas: i32, db_snapshot: &str) -> Deployment {
    let env =
        |name: &str, key: &str| json!({"name": name, "valueFrom": {"secretKeyRef": {"name": db_snapshot, "key": key}}});
    let deployment = json!({
        "metadata": {"name": name, "annotations": {"secureapi.dev/revision": revision}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{"name": "api", "image": "example.com/secure-api:1.0",
                        "env": [env("DB_HOST", "host"), env("DB_PASSWORD", "password")],
                        "volumeMounts": [{"name": "keys", "mountPath": "/secrets/keys", "readOnly": true}]}],
                    "volumes": [{"name": "keys", "secret": {"secretName": "keys-1"}}],
                },
            },
        },
    });
    serde_json::from_value(deployment).unwrap_or_else(|e| panic!("{e}"))
}

fn secret(name: &str, data: Value) -> Secret {
    let secret = json!({"metadata": {"name": name}, "immutable": true, "stringData": data});
    serde_json::from_value(secret).unwrap_or_else(|e| panic!("{e}"))
}

/// `GET path` at the stand-in: status, body and the revision the `x-revision` header names.
async fn served(addr: SocketAddr, path: &str) -> (StatusCode, Value, Option<String>) {
    let stream = TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("{e}"));
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(connection);
    let request = Request::get(path).header("host", "standin").body(Full::new(Bytes::new()));
    let response = sender.send_request(request.unwrap_or_else(|e| panic!("{e}"))).await;
    let response = response.unwrap_or_else(|e| panic!("{e}"));
    let status = response.status();
    let revision = response.headers().get(REVISION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = response.into_body().collect().await.unwrap_or_else(|e| panic!("{e}")).to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null), revision)
}

/// Which revision answered each of `n` requests, checking that the header names the revision
/// the body does.
async fn split(addr: SocketAddr, n: usize) -> BTreeMap<String, usize> {
    let mut answered = BTreeMap::new();
    for _ in 0..n {
        let (status, body, revision) = served(addr, "/database/status").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let revision = revision.unwrap_or_else(|| panic!("no {REVISION_HEADER} header"));
        assert_eq!(body["revision"], revision.as_str(), "the header names the revision that answered");
        *answered.entry(revision).or_insert(0) += 1;
    }
    answered
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(revision, n)| ((*revision).to_owned(), *n)).collect()
}

/// Without the operator: hand-made revisions on the Kubernetes emulator (its Deployment
/// controller simulated), served by a stand-in that probes each revision and splits requests
/// by Ready pods.
#[tokio::test]
async fn the_standin_serves_each_ready_revision_from_its_own_secrets_in_proportion_to_its_ready_pods() {
    let kube = KubeEmulator::new();
    kube.set_deployment_simulation(DeploymentSimulation::Complete);
    let client = kube.client();
    let standin = StandIn::start(&kube, SEED_NAMESPACE, SEED_SERVICE).await.unwrap_or_else(|e| panic!("{e}"));
    let addr = standin.addr();
    let (status, body, revision) = served(addr, "/health").await;
    assert_eq!((status, revision), (StatusCode::SERVICE_UNAVAILABLE, None), "no Deployment yet: {body}");
    assert_eq!(body["error"], "Deployment secure-api does not exist");

    let secrets: Api<Secret> = Api::namespaced(client.clone(), SEED_NAMESPACE);
    for made in [
        secret("db-1", json!({"host": "db1.example.com", "password": "pw-1"})),
        secret("db-2", json!({"host": "db2.example.com", "password": "wrong-pw-2"})),
        secret("db-3", json!({"host": "db3.example.com", "password": "pw-3"})),
        secret("keys-1", json!({"external_api_key": "k"})),
    ] {
        secrets.create(&PostParams::default(), &made).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), SEED_NAMESPACE);
    let apply = |made: Deployment| {
        let deployments = deployments.clone();
        async move {
            let name = made.metadata.name.clone().unwrap_or_default();
            let params = PatchParams::apply("test").force();
            deployments.patch(&name, &params, &Patch::Apply(made)).await.unwrap_or_else(|e| panic!("{e}"));
        }
    };
    let ready_pods = |name: &'static str| {
        let deployments = deployments.clone();
        async move {
            let found = deployments.get(name).await.ok()?;
            let status = found.status?;
            (status.observed_generation >= found.metadata.generation).then(|| status.ready_replicas.unwrap_or(0))
        }
    };
    let endpoints =
        |pairs: &[(&str, u32)]| pairs.iter().map(|(r, n)| ((*r).to_owned(), *n)).collect::<BTreeMap<_, _>>();

    apply(deployment(SEED_SERVICE, "secure-api-1", 2, "db-1")).await;
    wait_for("the stable pods Ready", SLOW, || async { (ready_pods(SEED_SERVICE).await == Some(2)).then_some(()) })
        .await;
    wait_for("the stand-in to split over them", SLOW, || async {
        (standin.endpoints() == endpoints(&[("secure-api-1", 2)])).then_some(())
    })
    .await;
    let (status, body, _) = served(addr, "/database/status").await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"host": "db1.example.com", "port": null, "revision": "secure-api-1"}))
    );

    // A canary whose password the database refuses: its probe fails, so its pod never becomes
    // Ready and no request reaches it.
    apply(deployment("secure-api-canary", "secure-api-2", 1, "db-2")).await;
    let probe = wait_for("the refused revision probed", SLOW, || async { standin.probe("secure-api-2") }).await;
    assert_eq!(probe.status, StatusCode::SERVICE_UNAVAILABLE, "{probe:?}");
    assert_eq!(probe.body["database"], "the database refused DB_PASSWORD");
    assert_eq!(ready_pods("secure-api-canary").await, Some(0), "its pod is not Ready");
    assert_eq!(split(addr, 10).await, counts(&[("secure-api-1", 10)]));

    // A good one, two pods beside two: half of the requests, alternating.
    apply(deployment("secure-api-canary", "secure-api-3", 2, "db-3")).await;
    wait_for("the good canary's pods Ready", SLOW, || async {
        (ready_pods("secure-api-canary").await == Some(2)).then_some(())
    })
    .await;
    wait_for("the stand-in to split over both", SLOW, || async {
        (standin.endpoints() == endpoints(&[("secure-api-1", 2), ("secure-api-3", 2)])).then_some(())
    })
    .await;
    assert_eq!(split(addr, 8).await, counts(&[("secure-api-1", 4), ("secure-api-3", 4)]));
    let (_, body, _) = served(addr, "/database/status").await;
    assert!(["db1.example.com", "db3.example.com"].contains(&body["host"].as_str().unwrap_or_default()), "{body}");

    // The stable Deployment rolled to the refused revision: its old pods keep serving, as in a
    // rolling update whose new pods never become Ready.
    apply(deployment(SEED_SERVICE, "secure-api-2", 2, "db-2")).await;
    wait_for("the stable rollout observed", SLOW, || async {
        (ready_pods(SEED_SERVICE).await == Some(0)).then_some(())
    })
    .await;
    assert_eq!(standin.endpoints(), endpoints(&[("secure-api-1", 2), ("secure-api-3", 2)]));
    // Scaled to zero, the canary serves nothing.
    apply(deployment("secure-api-canary", "secure-api-3", 0, "db-3")).await;
    wait_for("the canary out of the split", SLOW, || async {
        (standin.endpoints() == endpoints(&[("secure-api-1", 2)])).then_some(())
    })
    .await;
    assert_eq!(split(addr, 4).await, counts(&[("secure-api-1", 4)]));
    let served = standin.served();
    assert_eq!(served.get("secure-api-2"), None, "the refused revision answered nothing: {served:?}");
    standin.stop().await;
}

/// `GET /metrics` at the stand-in's metrics listener: status and text.
async fn metrics(addr: SocketAddr) -> (StatusCode, String) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap_or_else(|e| panic!("{e}"));
    let response = client.get(format!("http://{addr}/metrics")).send().await.unwrap_or_else(|e| panic!("{e}"));
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or_else(|e| panic!("{e}"));
    (status, response.text().await.unwrap_or_else(|e| panic!("{e}")))
}

/// A credential the database lets log in but not query: the revision's pods are Ready and take
/// requests, its data requests answer 500, and the metrics endpoint counts them by revision and
/// status class for a Prometheus to scrape.
#[tokio::test]
async fn a_credential_without_grants_is_ready_but_its_data_requests_fail_as_its_metrics_show() {
    let kube = KubeEmulator::new();
    kube.set_deployment_simulation(DeploymentSimulation::Complete);
    let client = kube.client();
    let standin = StandIn::start(&kube, SEED_NAMESPACE, SEED_SERVICE).await.unwrap_or_else(|e| panic!("{e}"));
    let secrets: Api<Secret> = Api::namespaced(client.clone(), SEED_NAMESPACE);
    for made in [
        secret("db-1", json!({"host": "db1.example.com", "password": "nogrants-pw-1"})),
        secret("keys-1", json!({"external_api_key": "k"})),
    ] {
        secrets.create(&PostParams::default(), &made).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), SEED_NAMESPACE);
    let made = deployment(SEED_SERVICE, "secure-api-1", 2, "db-1");
    let params = PatchParams::apply("test").force();
    deployments.patch(SEED_SERVICE, &params, &Patch::Apply(made)).await.unwrap_or_else(|e| panic!("{e}"));
    let wanted = BTreeMap::from([("secure-api-1".to_owned(), 2)]);
    wait_for("its pods Ready and serving", SLOW, || async { (standin.endpoints() == wanted).then_some(()) }).await;

    let addr = standin.addr();
    let (status, body, revision) = served(addr, "/health").await;
    assert_eq!((status, revision.as_deref()), (StatusCode::OK, Some("secure-api-1")), "{body}");
    for _ in 0..3 {
        let (status, body) = get(addr, "standin", "/api/data", Some("k")).await.unwrap_or_else(|| panic!("no answer"));
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        assert!(!body.to_string().contains("nogrants-pw-1"), "{body}");
    }
    let (status, text) = metrics(standin.metrics_addr()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    for line in [
        "# TYPE secureapi_standin_requests_total counter",
        "secureapi_standin_requests_total{revision=\"secure-api-1\",code=\"2xx\"} 1",
        "secureapi_standin_requests_total{revision=\"secure-api-1\",code=\"4xx\"} 0",
        "secureapi_standin_requests_total{revision=\"secure-api-1\",code=\"5xx\"} 3",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    standin.stop().await;
}
