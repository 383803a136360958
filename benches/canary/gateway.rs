//! The bad-but-Ready cases: the seed example (`deploy/examples/`) on a playground of its own,
//! where the stand-in plays its pods and the API Gateway emulator routes to it, and a real
//! Prometheus scrapes the stand-in's request counters. Each rotation adds a `db` version whose
//! password starts with `nogrants`: its pods pass `/health` but its `/api/data` answers 500.
//! A load generator calls `/api/data` through the gateway from `versions add` until the window
//! after it; then a good version rolls out under `RollingUpdate` before the next rotation.

use super::load::{Caller, NO_REVISION, Outcomes};
use super::support::{BoxError, percentile, wait_until};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use secure_api_operator::api::secure_api_service::SecureApiServiceStatus;
use secure_api_operator::api::{GatewayConfig, SecureApiService};
use secure_api_testbed::dev::playground::{Playground, PlaygroundOptions, SEED_NAMESPACE, SEED_SERVICE};
use secure_api_testbed::dev::standin::database::NO_GRANTS_PREFIX;
use secure_api_testbed::dev::{example_iam, examples};
use secure_api_testbed::prometheus::{self, Prometheus};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The example's service account names this project (`secure-api-sa@demo-project`).
const PROJECT: &str = "demo-project";
const DB: &str = "api-config-db";
const REPLICAS: u32 = 9;
/// How long setting up, and a good version's rollout, may take.
const SETTLE: Duration = Duration::from_secs(60);
/// The canary's gate: the revision's share of 5xx answers over the last 5 s. The `> 0` keeps a
/// revision without requests yet out of the result (empty: a pass) instead of 0/0, a NaN, which
/// the operator takes for a failed query and aborts on after an interval.
const QUERY: &str = "sum(rate(secureapi_standin_requests_total{revision=\"$revision\",code=\"5xx\"}[5s])) / (sum(rate(secureapi_standin_requests_total{revision=\"$revision\"}[5s])) > 0)";
const MAX: f64 = 0.1;

/// The knobs of these cases.
pub struct Knobs {
    pub rotations: usize,
    /// Between two requests of the load generator.
    pub every: Duration,
    /// How long after `versions add` requests are sent.
    pub window: Duration,
}

#[derive(Clone, Copy)]
enum Case {
    RollingUpdate,
    Canary,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Self::RollingUpdate => "RollingUpdate, bad but Ready",
            Self::Canary => "Canary, bad but Ready",
        }
    }

    fn rollout(self, prometheus: &str) -> Value {
        match self {
            Self::RollingUpdate => json!({ "strategy": "RollingUpdate", "canary": null, "analysis": null }),
            Self::Canary => json!({
                "strategy": "Canary",
                "canary": { "steps": [{ "weight": 10, "pause": "5s" }, { "weight": 50, "pause": "5s" }] },
                "analysis": { "interval": "1s", "prometheus": { "address": prometheus, "query": QUERY, "max": MAX } },
            }),
        }
    }
}

/// One case's rotations, summed.
#[derive(Default)]
struct Figures {
    outcomes: Outcomes,
    /// Requests the new (bad) revisions answered: (2xx, failed).
    new: (u64, u64),
    /// From `versions add` to the case's end (rolled out, or `RolloutAborted`), in ms.
    ended: Vec<f64>,
    /// Rotations that did not end so within the window.
    unended: usize,
    /// The last rotation's `Ready` message once it ended: why a canary was aborted.
    why: Option<String>,
}

pub async fn run(knobs: &Knobs) -> Result<(), BoxError> {
    println!(
        "\nbad but Ready (password {NO_GRANTS_PREFIX}-…: /health 200, /api/data 500): the example's service of {REPLICAS} replicas, {} rotations per case,\nGET /api/data through the gateway every {} ms from `versions add` for {} s; Canary: 10% then 50% for 5 s each, gated every 1 s on\n  {QUERY} <= {MAX}\n",
        knobs.rotations,
        knobs.every.as_millis(),
        knobs.window.as_secs()
    );
    let listen = prometheus::free_addr()?;
    let dir = std::env::temp_dir().join(format!("secure-api-operator-bench-canary-gateway-{}", std::process::id()));
    let options = PlaygroundOptions {
        kube_listen: ([127, 0, 0, 1], 0).into(),
        gcp_listen: ([127, 0, 0, 1], 0).into(),
        dir,
        gcp_project: PROJECT.into(),
        notifications: true,
        prometheus_allowed_url_prefixes: vec![format!("http://{listen}")],
    };
    let playground = Playground::start(&options).await?;
    let prometheus = match Prometheus::start(listen, &[playground.standin().metrics_addr()]).await {
        Ok(prometheus) => prometheus,
        Err(reason) => {
            println!("skipped: Prometheus is not available ({reason}); Debian's package `prometheus` provides it");
            playground.stop().await;
            return Ok(());
        }
    };
    let outcome = measure(&playground, &prometheus, knobs).await;
    playground.stop().await;
    outcome
}

async fn measure(playground: &Playground, prometheus: &Prometheus, knobs: &Knobs) -> Result<(), BoxError> {
    let caller = seed(playground).await?;
    println!(
        "{:<30} {:>6} {:>7} {:>8} {:>10} {:>18}   {:<15} {:>7} {:>7}",
        "case", "sent", "failed", "failed %", "new 2xx", "new failed", "ended at", "p50 ms", "max ms"
    );
    for case in [Case::RollingUpdate, Case::Canary] {
        let mut figures = Figures::default();
        for i in 0..knobs.rotations {
            set_rollout(playground, case.rollout(&prometheus.url())).await?;
            let stable = status(playground).await?.revision.unwrap_or_default();
            let load = caller.clone();
            let (every, window) = (knobs.every, knobs.window);
            let calls = tokio::spawn(async move { load.run(every, window).await });
            let added = Instant::now();
            let bad = add_db(playground, &format!("{NO_GRANTS_PREFIX}-{i}"));
            let ended = wait_until(knobs.window, || async { ended(playground, case, bad).await }).await;
            match ended {
                Ok(()) => {
                    figures.ended.push(added.elapsed().as_secs_f64() * 1000.0);
                    let status = status(playground).await?;
                    figures.why = status.conditions.into_iter().find(|c| c.type_ == "Ready").map(|c| c.message);
                }
                Err(_) => figures.unended += 1,
            }
            let outcomes = calls.await?;
            for (revision, (ok, failed)) in &outcomes.by_revision {
                if revision != &stable && revision != NO_REVISION {
                    figures.new.0 += ok;
                    figures.new.1 += failed;
                }
            }
            figures.outcomes.add(&outcomes);
            // The next rotation starts from a good version on every replica.
            set_rollout(playground, Case::RollingUpdate.rollout(&prometheus.url())).await?;
            let good = add_db(playground, &format!("good-{i}"));
            wait_until(SETTLE, || async { settled(playground, good).await }).await?;
        }
        print_figures(case, &figures);
    }
    Ok(())
}

fn print_figures(case: Case, figures: &Figures) {
    let (sent, failed) = (figures.outcomes.sent(), figures.outcomes.failed());
    let share = if sent == 0 { f64::NAN } else { failed as f64 * 100.0 / sent as f64 };
    let ends = match case {
        Case::RollingUpdate => "rolled out",
        Case::Canary => "RolloutAborted",
    };
    let unended =
        if figures.unended == 0 { String::new() } else { format!("   ({} not within the window)", figures.unended) };
    println!(
        "{:<30} {:>6} {:>7} {:>7.1}% {:>10} {:>18}   {:<15} {:>7.0} {:>7.0}{unended}",
        case.name(),
        sent,
        failed,
        share,
        figures.new.0,
        figures.new.1,
        ends,
        percentile(&figures.ended, 0.5),
        percentile(&figures.ended, 1.0),
    );
    if let (Case::Canary, Some(why)) = (case, &figures.why) {
        println!("{:<30} why (the last): {why}", "");
    }
}

/// The example's secrets, IAM and objects, rolled out on 9 replicas behind a Ready gateway;
/// returns a caller of the gateway's `/api/data` that gets a 2xx.
async fn seed(playground: &Playground) -> Result<Caller, BoxError> {
    let gcp = &playground.gcp;
    let topic = playground.topic();
    let bearer = "bench-external-api-key".to_owned();
    let keys = json!({ "external_api_key": bearer, "jwt_secret": "j1", "encryption_key": "e1" });
    let config = json!({ "debug_mode": false, "rate_limit": 1000, "cache_ttl": 3600, "log_level": "INFO" });
    let secrets = [(DB, db_payload("initial")), ("api-config-keys", keys), ("api-config-config", config)];
    for (id, payload) in secrets {
        gcp.add_version(PROJECT, id, payload.to_string().as_bytes());
        gcp.set_secret_topics(PROJECT, id, &[&topic]).map_err(|e| format!("topics of {id}: {e}"))?;
    }
    example_iam::grant(gcp, PROJECT, SEED_NAMESPACE);
    let client = playground.client();
    examples::apply(&client, SEED_NAMESPACE).await?;
    set_rollout(playground, json!({ "strategy": "RollingUpdate" })).await?;
    let services: Api<SecureApiService> = Api::namespaced(client.clone(), SEED_NAMESPACE);
    let replicas = json!({ "spec": { "replicas": REPLICAS } });
    services.patch(SEED_SERVICE, &PatchParams::default(), &Patch::Merge(&replicas)).await?;
    wait_until(SETTLE, || async { settled(playground, 1).await })
        .await
        .map_err(|e| format!("the first rollout: {e}"))?;
    playground.backend_routed(SETTLE).await?;

    let gateways: Api<GatewayConfig> = Api::namespaced(client.clone(), SEED_NAMESPACE);
    let gateway = Mutex::new(None);
    wait_until(SETTLE, || async {
        let found = gateways.get(SEED_SERVICE).await.ok()?;
        let url = found.status.as_ref()?.gateway_url.clone()?;
        let spec = found.spec.api_keys.first()?;
        let secret = Api::<Secret>::namespaced(client.clone(), SEED_NAMESPACE).get(&spec.secret_name).await.ok()?;
        let key = secret.data?.remove(&spec.secret_key)?;
        *gateway.lock().unwrap_or_else(PoisonError::into_inner) = Some((url, String::from_utf8(key.0).ok()?));
        Some(())
    })
    .await
    .map_err(|e| format!("the gateway and its API key: {e}"))?;
    let (url, key) = gateway.into_inner().unwrap_or_else(PoisonError::into_inner).ok_or("no gateway")?;
    let caller = Caller::new(&url, playground.gcp_addr(), key, bearer)?;
    wait_until(SETTLE, || async { caller.call().await.0.then_some(()) })
        .await
        .map_err(|e| format!("GET /api/data through the gateway: {e}"))?;
    Ok(caller)
}

fn db_payload(password: &str) -> Value {
    json!({ "host": "db.example.com", "port": 5432, "username": "api_user", "password": password })
}

/// Adds a version of the `db` secret with `password`; returns its number.
fn add_db(playground: &Playground, password: &str) -> u64 {
    playground.gcp.add_version(PROJECT, DB, db_payload(password).to_string().as_bytes())
}

async fn set_rollout(playground: &Playground, rollout: Value) -> Result<(), BoxError> {
    let services: Api<SecureApiService> = Api::namespaced(playground.client(), SEED_NAMESPACE);
    let patch = json!({ "spec": { "rollout": rollout } });
    services.patch(SEED_SERVICE, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}

async fn status(playground: &Playground) -> Result<SecureApiServiceStatus, BoxError> {
    let services: Api<SecureApiService> = Api::namespaced(playground.client(), SEED_NAMESPACE);
    Ok(services.get(SEED_SERVICE).await?.status.unwrap_or_default())
}

fn ready_reason(status: &SecureApiServiceStatus) -> Option<&str> {
    status.conditions.iter().find(|c| c.type_ == "Ready").map(|c| c.reason.as_str())
}

/// The service runs `db` version `version` on every replica, and every request goes to it.
async fn settled(playground: &Playground, version: u64) -> Option<()> {
    let status = status(playground).await.ok()?;
    let revision = status.revision.clone()?;
    let at = status.secret_versions.get("db") == Some(&version.to_string());
    let serving = playground.standin().endpoints() == BTreeMap::from([(revision, REPLICAS)]);
    (at && serving && ready_reason(&status) == Some("RolloutComplete")).then_some(())
}

/// The case's rotation to `version` ended: rolled out everywhere, or its canary aborted.
async fn ended(playground: &Playground, case: Case, version: u64) -> Option<()> {
    match case {
        Case::RollingUpdate => settled(playground, version).await,
        Case::Canary => {
            let status = status(playground).await.ok()?;
            let rejected = status.rejected_revisions.first()?;
            let this = rejected.secret_versions.get("db") == Some(&version.to_string());
            (this && ready_reason(&status) == Some("RolloutAborted")).then_some(())
        }
    }
}
