//! `dev --demo`: the example end to end on the playground, as a step-by-step report.
//!
//! Every step waits for what a person would check with kubectl (conditions, versions, URLs) with a
//! deadline, and the first step that fails ends the demo with its name and the state it saw.
//! Secret payloads are generated here and never printed.

mod calls;
mod canary;
mod identity;

use super::examples;
use super::playground::Playground;
use super::table;
use calls::Calls;
use canary::Rollouts;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Resource;
use kube::api::{Api, ApiResource};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use secure_api_operator::api::conditions::{Condition, find_condition, types};
use secure_api_operator::api::{GatewayConfig, SecretRef, SecureApiService};
use serde_json::json;
use std::future::Future;
use std::io::Write;
use std::time::{Duration, Instant};

/// The demo's knobs (the command line uses the defaults).
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// How long one step may wait for the cluster to get where it should.
    pub step_deadline: Duration,
    /// Namespace the examples go into.
    pub namespace: String,
    /// Start of every generated secret value (tests plant a sentinel here).
    pub payload_prefix: String,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self { step_deadline: Duration::from_secs(60), namespace: "default".into(), payload_prefix: "demo".into() }
    }
}

/// The step that failed, and why.
#[derive(Debug, thiserror::Error)]
#[error("the demo failed at step {step}/{total} \"{title}\": {reason}")]
pub struct DemoFailure {
    pub step: usize,
    pub total: usize,
    pub title: &'static str,
    pub reason: String,
}

const STEPS: [&str; 17] = [
    "Create the example's secrets in Secret Manager",
    "Grant Google IAM: secure-api-sa reads exactly the three secrets",
    "Apply deploy/examples/",
    "Wait for the SecretRefs to sync",
    "Wait for the service to roll out",
    "Wait for the API Gateway",
    "Call the API through the gateway, as the example's validation does",
    "Rotate api-config-db",
    "Wait for the new revision",
    "The gateway reaches the new revision",
    "Check that the gateway did not change",
    "Rotate the gateway's API key",
    "The old API key is refused after the overlap",
    "Switch the example to canary rollouts",
    "A rotation the database refuses is aborted by the canary's gate",
    "A good rotation is promoted step by step",
    "A SecretRef in another namespace is refused",
];

const SERVICE: &str = "secure-api";
const GATEWAY: &str = "secure-api";
const SECRET_REFS: [&str; 3] = ["db", "keys", "config"];
const POLL: Duration = Duration::from_millis(10);

/// Plays the example, writing the report to `out`.
pub async fn play(playground: &Playground, options: &DemoOptions, out: &mut dyn Write) -> Result<(), DemoFailure> {
    let started = Instant::now();
    let mut report = Report { out, step: 0 };
    let mut demo = Demo {
        playground,
        options,
        client: playground.client(),
        before: Before::default(),
        calls: Calls::default(),
        rollouts: Rollouts::default(),
    };
    report.step(demo.create_secrets()).await?;
    report.step(demo.grant_iam()).await?;
    report.step(demo.apply_examples()).await?;
    report.step(demo.secret_refs_synced()).await?;
    report.step(demo.service_rolled_out()).await?;
    report.step(demo.gateway_ready()).await?;
    report.step(demo.gateway_answers()).await?;
    report.step(demo.rotate_db()).await?;
    report.step(demo.new_revision()).await?;
    report.step(demo.new_revision_answers()).await?;
    report.step(demo.gateway_unchanged()).await?;
    report.step(demo.rotate_api_key()).await?;
    report.step(demo.old_api_key_refused()).await?;
    report.step(demo.switch_to_canary()).await?;
    report.step(demo.refused_rotation_aborted()).await?;
    report.step(demo.good_rotation_promoted()).await?;
    report.step(demo.other_namespace_refused()).await?;
    report.line(&format!("\nAll {} steps succeeded in {:.1} s.", STEPS.len(), started.elapsed().as_secs_f64()));
    Ok(())
}

/// Writes steps as `[n/N] title`, their details indented, and `ok`/`FAILED` with the time taken.
/// A report that cannot be written (a closed pipe) does not stop the demo.
struct Report<'w> {
    out: &'w mut dyn Write,
    step: usize,
}

impl Report<'_> {
    fn line(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }

    async fn step(&mut self, work: impl Future<Output = Result<Vec<String>, String>>) -> Result<(), DemoFailure> {
        let title = STEPS[self.step];
        self.step += 1;
        self.line(&format!("\n[{}/{}] {title}", self.step, STEPS.len()));
        let started = Instant::now();
        match work.await {
            Ok(details) => {
                for detail in details.iter().flat_map(|d| d.lines()) {
                    self.line(format!("      {detail}").trim_end());
                }
                self.line(&format!("      ok ({} ms)", started.elapsed().as_millis()));
                Ok(())
            }
            Err(reason) => {
                self.line(&format!("      FAILED: {reason}"));
                Err(DemoFailure { step: self.step, total: STEPS.len(), title, reason })
            }
        }
    }
}

/// What the cluster looked like before the rotation, to compare with after.
#[derive(Default)]
struct Before {
    revision: String,
    generation: i64,
    password_snapshot: String,
    api_config: String,
    gateway_url: String,
    gateway_changes: u64,
    /// When the rotation's version was added.
    rotated: Option<Instant>,
}

struct Demo<'a> {
    playground: &'a Playground,
    options: &'a DemoOptions,
    client: kube::Client,
    before: Before,
    calls: Calls,
    rollouts: Rollouts,
}

impl Demo<'_> {
    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.options.namespace)
    }

    async fn table<K: Resource<DynamicType = ()>>(&self) -> Result<String, String> {
        table::get(&self.client, &ApiResource::erase::<K>(&()), &self.options.namespace).await
    }

    /// Polls `check` until it succeeds or the step's deadline passes; the error then says what
    /// the last check saw.
    async fn wait<T, Fut>(&self, mut check: impl FnMut() -> Fut) -> Result<T, String>
    where
        Fut: Future<Output = Result<T, String>>,
    {
        let started = Instant::now();
        loop {
            match check().await {
                Ok(value) => return Ok(value),
                Err(why) if started.elapsed() >= self.options.step_deadline => {
                    return Err(format!("{why} (waited {} s)", self.options.step_deadline.as_secs()));
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    fn secret_value(&self) -> Result<SecretString, String> {
        let mut bytes = [0u8; 12];
        SystemRandom::new().fill(&mut bytes).map_err(|_| "no randomness for the demo's secret values".to_owned())?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(SecretString::from(format!("{}-{hex}", self.options.payload_prefix)))
    }

    fn db_payload(&self) -> Result<SecretString, String> {
        let password = self.secret_value()?;
        let payload = json!({"host": "db.example.com", "port": 5432, "username": "api_user",
                             "password": password.expose_secret()});
        Ok(SecretString::from(payload.to_string()))
    }

    async fn create_secrets(&mut self) -> Result<Vec<String>, String> {
        let bearer = self.secret_value()?;
        let keys = json!({
            "external_api_key": bearer.expose_secret(),
            "jwt_secret": self.secret_value()?.expose_secret(),
            "encryption_key": self.secret_value()?.expose_secret(),
        });
        let config = json!({"debug_mode": false, "rate_limit": 1000, "cache_ttl": 3600, "log_level": "INFO"});
        let secrets = [
            ("api-config-db", self.db_payload()?),
            ("api-config-keys", SecretString::from(keys.to_string())),
            ("api-config-config", SecretString::from(config.to_string())),
        ];
        let project = &self.playground.gcp_project;
        let mut lines = Vec::new();
        let topic = self.playground.topic();
        for (id, payload) in secrets {
            let version = self.playground.gcp.add_version(project, id, payload.expose_secret().as_bytes());
            self.playground
                .gcp
                .set_secret_topics(project, id, &[&topic])
                .map_err(|e| format!("topics of {id}: {e}"))?;
            lines.push(format!(
                "{id:<18}  version {version}    (gcloud secrets create {id} --topics={topic} --data-file=-)"
            ));
        }
        lines.push(format!("project {project}; the values are generated and never printed"));
        self.calls.bearer = Some(bearer);
        Ok(lines)
    }

    async fn apply_examples(&mut self) -> Result<Vec<String>, String> {
        examples::apply(&self.client, &self.options.namespace).await
    }

    async fn secret_refs_synced(&mut self) -> Result<Vec<String>, String> {
        let refs: Api<SecretRef> = self.api();
        self.wait(|| async {
            for name in SECRET_REFS {
                let object = refs.get(name).await.map_err(|e| format!("SecretRef {name}: {e}"))?;
                let status = object.status.as_ref();
                let conditions = status.map(|s| s.conditions.as_slice()).unwrap_or_default();
                ready(&format!("SecretRef {name}"), &object, status.and_then(|s| s.observed_generation), conditions)?;
            }
            Ok(())
        })
        .await?;
        Ok(vec![self.table::<SecretRef>().await?])
    }

    async fn service(&self) -> Result<SecureApiService, String> {
        self.api::<SecureApiService>().get(SERVICE).await.map_err(|e| format!("SecureApiService {SERVICE}: {e}"))
    }

    async fn deployment(&self) -> Result<Deployment, String> {
        self.api::<Deployment>().get(SERVICE).await.map_err(|e| format!("Deployment {SERVICE}: {e}"))
    }

    /// Waits for the service Ready with its rollout complete, and returns it.
    async fn wait_service(
        &self,
        settled: impl Fn(&SecureApiService) -> Result<(), String>,
    ) -> Result<SecureApiService, String> {
        self.wait(|| async {
            let service = self.service().await?;
            let status = service.status.as_ref();
            let conditions = status.map(|s| s.conditions.as_slice()).unwrap_or_default();
            let what = format!("SecureApiService {SERVICE}");
            ready(&what, &service, status.and_then(|s| s.observed_generation), conditions)?;
            if !conditions.iter().any(|c| c.is_true(types::ROLLOUT_COMPLETE)) {
                return Err(format!("{what}: the rollout is not complete"));
            }
            settled(&service)?;
            Ok(service)
        })
        .await
    }

    async fn service_rolled_out(&mut self) -> Result<Vec<String>, String> {
        let service = self.wait_service(|_| Ok(())).await?;
        let status = service.status.unwrap_or_default();
        let deployment = self.deployment().await?;
        self.before.revision = status.revision.clone().unwrap_or_default();
        self.before.generation = deployment.metadata.generation.unwrap_or_default();
        self.before.password_snapshot = env_secret(&deployment, "DB_PASSWORD").unwrap_or_default();
        Ok(vec![
            self.table::<SecureApiService>().await?,
            rollout(&deployment),
            format!("service URL       {}", status.url.unwrap_or_default()),
            format!("external URL      {}   (the LoadBalancer's address)", status.external_url.unwrap_or_default()),
            format!("revision          {}   pinned to {}", self.before.revision, versions(&status.secret_versions)),
        ])
    }

    /// Waits for the gateway Ready, and returns it.
    async fn gateway(&self) -> Result<GatewayConfig, String> {
        self.wait(|| async {
            let gateway =
                self.api::<GatewayConfig>().get(GATEWAY).await.map_err(|e| format!("GatewayConfig {GATEWAY}: {e}"))?;
            let status = gateway.status.as_ref();
            let conditions = status.map(|s| s.conditions.as_slice()).unwrap_or_default();
            ready(
                &format!("GatewayConfig {GATEWAY}"),
                &gateway,
                status.and_then(|s| s.observed_generation),
                conditions,
            )?;
            Ok(gateway)
        })
        .await
    }

    async fn gateway_ready(&mut self) -> Result<Vec<String>, String> {
        let status = self.gateway().await?.status.unwrap_or_default();
        self.before.api_config = status.api_config_id.unwrap_or_default();
        self.before.gateway_url = status.gateway_url.unwrap_or_default();
        self.before.gateway_changes = self.gateway_changes();
        Ok(vec![
            self.table::<GatewayConfig>().await?,
            format!("gateway URL       {}", self.before.gateway_url),
            format!("API config        {}", self.before.api_config),
            format!(
                "API key           {}   (its string in the Secret secure-api-key, never shown)",
                status.api_keys.first().map(|k| k.key_id.as_str()).unwrap_or("none")
            ),
        ])
    }

    /// API Gateway calls that create, change or delete something.
    fn gateway_changes(&self) -> u64 {
        let counts = self.playground.gcp.counts();
        let changes = counts.iter().filter(|(method, _)| {
            method.starts_with("apigateway.") && !method.ends_with(".get") && !method.ends_with(".list")
        });
        changes.map(|(_, n)| n).sum()
    }

    async fn rotate_db(&mut self) -> Result<Vec<String>, String> {
        let version = self.playground.gcp.add_version(
            &self.playground.gcp_project,
            "api-config-db",
            self.db_payload()?.expose_secret().as_bytes(),
        );
        // No annotation, no polling: Secret Manager's notification brings the new version.
        self.before.rotated = Some(Instant::now());
        let refs: Api<SecretRef> = self.api();
        let wanted = version.to_string();
        self.wait(|| async {
            let db = refs.get("db").await.map_err(|e| format!("SecretRef db: {e}"))?;
            let synced = db.status.as_ref().and_then(|s| s.synced_version.clone()).unwrap_or_default();
            if synced == wanted { Ok(()) } else { Err(format!("SecretRef db is at version {synced}, not {wanted}")) }
        })
        .await?;
        let took = self.since_rotation();
        Ok(vec![
            format!(
                "api-config-db       version {version}    (gcloud secrets versions add api-config-db --data-file=-)"
            ),
            format!(
                "SecretRef db        synced version {version} {took} after the version was added (Pub/Sub notification)"
            ),
            self.table::<SecretRef>().await?,
        ])
    }

    /// `in N ms` since the rotation.
    fn since_rotation(&self) -> String {
        let elapsed = self.before.rotated.map(|at| at.elapsed()).unwrap_or_default();
        format!("{} ms", elapsed.as_millis())
    }

    async fn new_revision(&mut self) -> Result<Vec<String>, String> {
        let before = &self.before.revision;
        let service = self
            .wait_service(|service| {
                let status = service.status.clone().unwrap_or_default();
                match status.revision {
                    Some(revision) if &revision != before => Ok(()),
                    _ => Err(format!("SecureApiService {SERVICE} is still at revision {before}")),
                }
            })
            .await?;
        let status = service.status.unwrap_or_default();
        let deployment = self.deployment().await?;
        let generation = deployment.metadata.generation.unwrap_or_default();
        if generation != self.before.generation + 1 {
            return Err(format!(
                "the Deployment went from generation {} to {generation}: expected exactly one rollout",
                self.before.generation
            ));
        }
        let snapshot = env_secret(&deployment, "DB_PASSWORD").unwrap_or_default();
        if snapshot == self.before.password_snapshot {
            return Err(format!("DB_PASSWORD still comes from {snapshot}"));
        }
        Ok(vec![
            format!(
                "revision          {} -> {}   ({} after the version was added)",
                self.before.revision,
                status.revision.unwrap_or_default(),
                self.since_rotation()
            ),
            format!("pinned to         {}", versions(&status.secret_versions)),
            format!(
                "DB_PASSWORD from  Secret {} -> {snapshot}   (immutable snapshots; the old one stays for rollback)",
                self.before.password_snapshot
            ),
            format!("Deployment        generation {} -> {generation}: one rollout", self.before.generation),
            rollout(&deployment),
            self.table::<SecureApiService>().await?,
        ])
    }

    async fn gateway_unchanged(&mut self) -> Result<Vec<String>, String> {
        let status = self.gateway().await?.status.unwrap_or_default();
        let api_config = status.api_config_id.unwrap_or_default();
        let gateway_url = status.gateway_url.unwrap_or_default();
        if api_config != self.before.api_config {
            return Err(format!("the API config changed from {} to {api_config}", self.before.api_config));
        }
        if gateway_url != self.before.gateway_url {
            return Err(format!("the gateway URL changed from {} to {gateway_url}", self.before.gateway_url));
        }
        let changes = self.gateway_changes() - self.before.gateway_changes;
        if changes != 0 {
            return Err(format!("{changes} API Gateway calls changed something during the rotation"));
        }
        Ok(vec![
            format!("API config        {api_config}   (unchanged)"),
            format!("gateway URL       {gateway_url}   (unchanged)"),
            "API Gateway calls that changed something during the rotation: 0".into(),
            self.table::<GatewayConfig>().await?,
        ])
    }
}

/// `Ok` when `object` is Ready for its current generation; else what it reports instead.
fn ready<K: Resource>(what: &str, object: &K, observed: Option<i64>, conditions: &[Condition]) -> Result<(), String> {
    let Some(condition) = find_condition(conditions, types::READY) else {
        return Err(format!("{what}: no Ready condition yet"));
    };
    if !condition.is_true(types::READY) {
        return Err(format!("{what}: Ready={:?} ({}: {})", condition.status, condition.reason, condition.message));
    }
    if observed != object.meta().generation {
        return Err(format!("{what}: generation {:?} not observed yet", object.meta().generation));
    }
    Ok(())
}

/// `Deployment secure-api   2/2 ready, 2 up to date, generation 1`.
fn rollout(deployment: &Deployment) -> String {
    let wanted = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    format!(
        "Deployment        {}/{wanted} ready, {} up to date, generation {}",
        status.ready_replicas.unwrap_or(0),
        status.updated_replicas.unwrap_or(0),
        deployment.metadata.generation.unwrap_or_default()
    )
}

/// `config=1, db=2, keys=1`.
fn versions(versions: &std::collections::BTreeMap<String, String>) -> String {
    versions.iter().map(|(name, version)| format!("{name}={version}")).collect::<Vec<_>>().join(", ")
}

/// The Secret an environment variable of the Deployment's first container comes from.
fn env_secret(deployment: &Deployment, variable: &str) -> Option<String> {
    let container = deployment.spec.as_ref()?.template.spec.as_ref()?.containers.first()?;
    let env = container.env.as_ref()?.iter().find(|e| e.name == variable)?;
    Some(env.value_from.as_ref()?.secret_key_ref.as_ref()?.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_the_step() {
        let failure =
            DemoFailure { step: 4, total: 17, title: STEPS[3], reason: "SecretRef db: no Ready condition yet".into() };
        assert_eq!(
            failure.to_string(),
            "the demo failed at step 4/17 \"Wait for the SecretRefs to sync\": SecretRef db: no Ready condition yet"
        );
    }
}
