//! The walk over every field of the three CRDs: each field gets an invalid value, and each value
//! is either refused by the API server (the OpenAPI schema, or a CEL rule) or accepted and lands
//! as Ready=False with a fixed reason, while what was synced before stays as it was. A test
//! derives the fields from the CRDs, so a new field without a row fails.
//!
//! The rows hold on a real cluster too: kube-apiserver's messages are what they match, and the
//! emulator evaluates the CEL rules as kube-apiserver does.

use crate::support::PROJECT;
use crate::support::cluster::TestCluster;
use crate::support::operator::{Operator, cluster_with_operator};
use crate::support::wait::DEADLINE;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, PostParams};
use secure_api_operator::api::secret_ref::RESERVED_KEYS_MESSAGE;
use secure_api_operator::api::{GatewayConfig, SecretRef, SecureApiService};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// What the API server or the operator makes of a bad value.
#[derive(Clone, Copy, Debug)]
enum Outcome {
    /// Refused by the OpenAPI schema: the API server's 422 carries this (the field's path).
    Schema(&'static str),
    /// Refused by a CEL rule: the API server's 422 carries this (the rule's message).
    Rule(&'static str),
    /// Accepted; Ready turns False with this reason, and nothing synced changes.
    Condition(&'static str),
    /// Accepted, and not an error of the object: Ready stays good and its message says this
    /// (a rollout target that does not exist yet does not hold back the sync).
    Reported(&'static str),
}
use Outcome::{Condition, Reported, Rule, Schema};

/// One bad value: `field` is a dotted path under the object, `[]` standing for the first item.
struct Row {
    field: &'static str,
    value: Value,
    outcome: Outcome,
}

fn row(field: &'static str, value: Value, outcome: Outcome) -> Row {
    Row { field, value, outcome }
}

/// `root` with `value` at `path` (`a.b[].c`: `[]` is the first item, created if absent).
fn with_value(mut root: Value, path: &str, value: &Value) -> Value {
    let steps: Vec<&str> = path.split('.').collect();
    let mut node = &mut root;
    for (i, step) in steps.iter().enumerate() {
        let (name, item) = match step.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (*step, false),
        };
        let last = i + 1 == steps.len();
        if last && !item {
            node[name] = value.clone();
            return root;
        }
        node = &mut node[name];
        if item {
            if !node.is_array() || node.as_array().is_some_and(Vec::is_empty) {
                *node = json!([{}]);
            }
            node = &mut node[0];
            if last {
                *node = value.clone();
                return root;
            }
        }
    }
    root
}

/// Every field of a CRD's schema under `spec`, as row paths (`spec.keys[].key`); maps and
/// lists of scalars are fields of their own.
fn schema_fields(node: &Value, path: &str, out: &mut BTreeSet<String>) {
    let properties = node.get("properties").and_then(Value::as_object);
    let items = node.get("items");
    match (properties, items) {
        (Some(properties), _) => {
            for (name, child) in properties {
                schema_fields(child, &format!("{path}.{name}"), out);
            }
        }
        (None, Some(items)) if items.get("properties").is_some() => schema_fields(items, &format!("{path}[]"), out),
        _ => {
            out.insert(path.to_owned());
        }
    }
}

fn crd_fields(plural: &str) -> BTreeSet<String> {
    let crd = secure_api_operator::crdgen::all().into_iter().find(|c| c.spec.names.plural == plural);
    let crd = serde_json::to_value(crd.unwrap_or_else(|| panic!("no CRD {plural}"))).unwrap_or_default();
    let mut fields = BTreeSet::new();
    schema_fields(&crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"], "spec", &mut fields);
    fields
}

/// Get-then-replace attempts before a row gives up on 409 Conflicts (the operator writes the
/// object's status while a row runs).
const REPLACE_ATTEMPTS: u32 = 5;

/// What a walk watches for change: the objects the operator synced for the walked object.
type Synced = Value;

/// One kind's walk: its object, Ready reason when good, and how to read what it synced.
struct Walk<'a> {
    cluster: &'a TestCluster,
    operator: &'a Operator,
    resource: ApiResource,
    name: &'static str,
    /// Ready's reasons when the object is as it should be.
    good: &'static [&'static str],
}

impl<'a> Walk<'a> {
    fn of<K: kube::Resource<DynamicType = ()>>(
        cluster: &'a TestCluster,
        operator: &'a Operator,
        name: &'static str,
        good: &'static [&'static str],
    ) -> Self {
        Self { cluster, operator, resource: ApiResource::erase::<K>(&()), name, good }
    }

    fn api(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.cluster.client.clone(), &self.cluster.namespace, &self.resource)
    }

    fn object(&self, name: &str, spec: &Value) -> DynamicObject {
        let mut object = DynamicObject::new(name, &self.resource);
        object.data = json!({ "spec": spec });
        object
    }

    /// Replaces the object's spec, getting it again and retrying when the operator wrote it (status
    /// included) between the get and the replace: a 409 Conflict is not the row's answer.
    async fn replace_spec(&self, spec: &Value) -> Result<DynamicObject, kube::Error> {
        let api = self.api();
        let mut attempt = 1;
        loop {
            let mut current = api.get(self.name).await?;
            current.data["spec"] = spec.clone();
            match api.replace(self.name, &PostParams::default(), &current).await {
                Err(kube::Error::Api(status)) if status.code == 409 && attempt < REPLACE_ATTEMPTS => attempt += 1,
                written => return written,
            }
        }
    }

    /// Puts the baseline back after a row that left the object changed, and waits until it is good
    /// again, so that the next row starts from it.
    async fn restore(&self, baseline: &Value) -> Result<(), String> {
        self.replace_spec(baseline).await.map_err(|e| format!("restoring the baseline: {e}"))?;
        self.wait_reason(self.good).await.map_err(|e| format!("restored: {e}"))
    }

    /// Ready's reason and message once the operator has seen the current generation.
    async fn current_ready(&self) -> Option<(String, String)> {
        let object = self.api().get(self.name).await.ok()?;
        let ready = object.data["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == "Ready")?.clone();
        let observed = ready["observedGeneration"].as_i64().or(object.data["status"]["observedGeneration"].as_i64());
        let text = |field: &str| ready[field].as_str().unwrap_or_default().to_owned();
        (observed == object.metadata.generation).then(|| (text("reason"), text("message")))
    }

    /// Waits until Ready's message says `text` (with a good reason).
    async fn wait_message(&self, text: &str) -> Result<(), String> {
        self.wait_reason(self.good).await?;
        match self.current_ready().await {
            Some((_, message)) if message.contains(text) => Ok(()),
            other => Err(format!("Ready's message does not say {text:?}: {other:?}")),
        }
    }

    async fn wait_reason(&self, reasons: &[&str]) -> Result<(), String> {
        let mut last = String::new();
        let waited = tokio::time::timeout(DEADLINE, async {
            loop {
                if let Some((now, _)) = self.current_ready().await {
                    if reasons.contains(&now.as_str()) {
                        return;
                    }
                    last = now;
                }
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
        })
        .await;
        waited.map_err(|_| format!("Ready's reason never became one of {reasons:?} (last: {last:?})"))
    }

    /// What the operator synced for the object, for the kind at hand.
    async fn synced(&self) -> Synced {
        let client = self.cluster.client.clone();
        let ns = &self.cluster.namespace;
        match self.resource.kind.as_str() {
            "SecretRef" => {
                let secret = Api::<Secret>::namespaced(client.clone(), ns).get_opt("walk").await.ok().flatten();
                let app = Api::<Deployment>::namespaced(client, ns).get_opt("walk-app").await.ok().flatten();
                let template = app.and_then(|d| d.spec).map(|s| s.template.metadata);
                json!([secret.map(|s| (s.metadata.resource_version, s.data)), template])
            }
            "SecureApiService" => {
                let deployment = Api::<Deployment>::namespaced(client, ns).get_opt(self.name).await.ok().flatten();
                json!(deployment.and_then(|d| d.spec).map(|s| s.template))
            }
            _ => {
                let gateway = Api::<GatewayConfig>::namespaced(client, ns).get_opt(self.name).await.ok().flatten();
                let config = gateway.and_then(|g| g.status).and_then(|s| s.api_config_id);
                json!([config, self.operator.gcp.count("apigateway.apiConfigs.create")])
            }
        }
    }

    /// Creates the object with `baseline`, waits until it is Ready with a good reason, then plays
    /// every row against it.
    async fn play(&self, baseline: &Value, rows: &[Row]) {
        let created = self.api().create(&PostParams::default(), &self.object(self.name, baseline)).await;
        created.unwrap_or_else(|e| panic!("creating the baseline: {e}"));
        let baseline_ready = self.wait_reason(self.good).await;
        assert!(baseline_ready.is_ok(), "the baseline: {baseline_ready:?}");
        let mut failures = vec![];
        for row in rows {
            if let Err(failure) = self.play_row(baseline, row).await {
                failures.push(format!("{}: {failure}", row.field));
            }
        }
        assert!(failures.is_empty(), "{} rows failed:\n{}", failures.len(), failures.join("\n"));
    }

    async fn play_row(&self, baseline: &Value, row: &Row) -> Result<(), String> {
        let before = self.synced().await;
        let bad = match row.field.strip_prefix("spec.") {
            Some(path) => with_value(baseline.clone(), path, &row.value),
            None => return self.play_metadata_row(baseline, row).await,
        };
        let written = self.replace_spec(&bad).await;
        match (row.outcome, written) {
            (Schema(text) | Rule(text), Err(kube::Error::Api(status))) if status.code == 422 => {
                if !status.message.contains(text) {
                    return Err(format!("refused, but without {text:?}: {}", status.message));
                }
            }
            (Schema(_) | Rule(_), Err(error)) => return Err(format!("refused with {error}, not a 422")),
            (Schema(_) | Rule(_), Ok(_)) => {
                // One surprise must not spoil the rows after it: they start from the baseline.
                let accepted = format!("accepted {}, expected {:?}", row.value, row.outcome);
                return Err(match self.restore(baseline).await {
                    Ok(()) => accepted,
                    Err(error) => format!("{accepted}; {error}"),
                });
            }
            (outcome @ (Condition(_) | Reported(_)), Ok(_)) => {
                let landed = match outcome {
                    Condition(reason) => self.wait_reason(&[reason]).await,
                    Reported(text) => self.wait_message(text).await,
                    _ => Ok(()),
                };
                let kept = self.synced().await == before;
                // The next row starts from the baseline, whatever this one did.
                self.restore(baseline).await?;
                landed?;
                if !kept {
                    return Err("what was synced changed while the bad value stood".to_owned());
                }
            }
            (Condition(_) | Reported(_), Err(error)) => return Err(format!("refused ({error}), expected it accepted")),
        }
        if self.synced().await != before {
            return Err("what was synced changed".to_owned());
        }
        Ok(())
    }

    /// `metadata.name` rows: a new object named `value` must be refused.
    async fn play_metadata_row(&self, baseline: &Value, row: &Row) -> Result<(), String> {
        let name = row.value.as_str().unwrap_or_default();
        let created = self.api().create(&PostParams::default(), &self.object(name, baseline)).await;
        match (row.outcome, created) {
            (Rule(text), Err(kube::Error::Api(status))) if status.code == 422 && status.message.contains(text) => {
                Ok(())
            }
            (_, Err(error)) => Err(format!("refused, but not as {:?}: {error}", row.outcome)),
            (_, Ok(_)) => {
                // The surprise object goes, so that it cannot weigh on the rows after it.
                let _ = self.api().delete(name, &DeleteParams::default()).await;
                Err(format!("{name:?} accepted, expected {:?}", row.outcome))
            }
        }
    }
}

/// Fails when a field of the CRD has no row, or a row names no field.
fn assert_every_field_has_a_row(plural: &str, rows: &[Row]) {
    let fields = crd_fields(plural);
    let covered: BTreeSet<String> = rows.iter().map(|r| r.field.to_owned()).collect();
    let missing: Vec<&String> = fields.iter().filter(|f| !covered.contains(*f)).collect();
    // A row may also aim at a whole object or list (`spec.routes`): a node above some field.
    let is_node = |row: &str| {
        fields.iter().any(|f| f == row || f.starts_with(&format!("{row}.")) || f.starts_with(&format!("{row}[]")))
    };
    let unknown: Vec<&String> = covered.iter().filter(|f| !is_node(f) && !f.starts_with("metadata.")).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "{plural}: fields without a row {missing:?}, rows of no field {unknown:?}"
    );
}

fn long(n: usize) -> String {
    "a".repeat(n)
}

/// A map of `n` harmless entries (`k0: v` ...).
fn many_entries(n: usize) -> serde_json::Map<String, Value> {
    (0..n).map(|i| (format!("k{i}"), json!("v"))).collect()
}

fn secret_ref_rows() -> Vec<Row> {
    vec![
        row("metadata.name", json!(long(64)), Rule("metadata.name must be at most 63 characters")),
        row("spec.projectId", json!("Bad_Project"), Schema("spec.projectId")),
        row("spec.projectId", json!("no-such-project"), Condition("SecretNotFound")),
        row("spec.serviceAccountName", json!("Bad_Name"), Schema("spec.serviceAccountName")),
        row("spec.serviceAccountName", json!("nobody"), Condition("ServiceAccountNotFound")),
        row("spec.secret", json!("has space"), Schema("spec.secret")),
        row("spec.secret", json!("no-such-secret"), Condition("SecretNotFound")),
        row("spec.secret", json!("projects/other-project/secrets/walk"), Rule("projectId disagrees")),
        row("spec.version", json!("0"), Schema("spec.version")),
        row("spec.version", json!("99"), Condition("VersionNotFound")),
        row("spec.refreshInterval", json!("soon"), Schema("spec.refreshInterval")),
        row("spec.refreshInterval", json!("0s"), Rule("refreshInterval must be between 1s and 168h")),
        row("spec.target.name", json!("Bad_Name"), Schema("spec.target.name")),
        row("spec.target.name", json!("taken"), Condition("TargetConflict")),
        row("spec.target.type", json!(""), Schema("spec.target.type")),
        row("spec.target.type", json!("kubernetes.io/service-account-token"), Schema("spec.target.type")),
        row("spec.target.type", json!("bootstrap.kubernetes.io/token"), Schema("spec.target.type")),
        row("spec.target.type", json!("kubernetes.io/tls"), Condition("Invalid")),
        row("spec.target.labels", json!({ "bad key": "v" }), Condition("Invalid")),
        row("spec.target.labels", json!({ "kubernetes.io/metadata.name": "v" }), Rule(RESERVED_KEYS_MESSAGE)),
        row("spec.target.labels", json!({ "foo.k8s.io/x": "v" }), Rule(RESERVED_KEYS_MESSAGE)),
        row("spec.target.labels", json!(many_entries(65)), Schema("spec.target.labels")),
        row("spec.target.annotations", json!({ "bad key": "v" }), Condition("Invalid")),
        row(
            "spec.target.annotations",
            json!({ "kubernetes.io/service-account.name": "default" }),
            Rule(RESERVED_KEYS_MESSAGE),
        ),
        row("spec.target.annotations", json!({ "a.kubernetes.io/x": "v" }), Rule(RESERVED_KEYS_MESSAGE)),
        row("spec.target.annotations", json!(many_entries(65)), Schema("spec.target.annotations")),
        row("spec.target.creationPolicy", json!("Sometimes"), Schema("spec.target.creationPolicy")),
        row("spec.target.deletionPolicy", json!("Never"), Schema("spec.target.deletionPolicy")),
        row("spec.format", json!("yaml"), Schema("spec.format")),
        row("spec.format", json!("dotenv"), Condition("InvalidPayload")),
        row("spec.format", json!("raw"), Rule("format raw maps the whole payload to one key")),
        row("spec.keys", json!([{ "key": "pw" }, { "key": "pw" }]), Schema("spec.keys[1]")),
        row("spec.keys[].key", json!("bad/key"), Schema("spec.keys[0].key")),
        row("spec.keys[].property", json!(""), Schema("spec.keys[0].property")),
        row("spec.keys[].property", json!("no.such.path"), Condition("InvalidPayload")),
        row("spec.rolloutTargets[].kind", json!("Pod"), Schema("spec.rolloutTargets[0].kind")),
        row("spec.rolloutTargets[].name", json!("Bad_Name"), Schema("spec.rolloutTargets[0].name")),
        row(
            "spec.rolloutTargets[].name",
            json!("no-such-app"),
            Reported("rollout targets not found: Deployment/no-such-app"),
        ),
    ]
}

#[test]
fn every_secret_ref_field_has_a_bad_input_row() {
    assert_every_field_has_a_row("secretrefs", &secret_ref_rows());
}

#[tokio::test]
async fn every_secret_ref_field_refuses_or_reports_bad_input_and_keeps_what_was_synced() {
    let (cluster, operator) = cluster_with_operator("walk-sref").await;
    operator.gcp.add_version(PROJECT, "walk", br#"{"password":"pw-1","user":"u"}"#);
    let app = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "walk-app" },
        "spec": { "selector": { "matchLabels": { "app": "walk-app" } }, "template": {
            "metadata": { "labels": { "app": "walk-app" } },
            "spec": { "containers": [{ "name": "app", "image": "example.com/app:1" }] } } },
    });
    let app: Deployment = serde_json::from_value(app).unwrap_or_else(|e| panic!("{e}"));
    cluster.api::<Deployment>().create(&PostParams::default(), &app).await.unwrap_or_else(|e| panic!("{e}"));
    let taken: Secret = serde_json::from_value(json!({ "metadata": { "name": "taken" } })).unwrap_or_default();
    cluster.api::<Secret>().create(&PostParams::default(), &taken).await.unwrap_or_else(|e| panic!("{e}"));

    let baseline = json!({
        "projectId": PROJECT, "secret": "walk", "format": "json", "refreshInterval": "1h",
        "keys": [{ "key": "pw", "property": "password" }],
        "target": { "name": "walk" },
        "rolloutTargets": [{ "kind": "Deployment", "name": "walk-app" }],
    });
    let walk = Walk::of::<SecretRef>(&cluster, &operator, "walk", &["Synced"]);
    walk.play(&baseline, &secret_ref_rows()).await;
}

fn service_rows() -> Vec<Row> {
    vec![
        row("metadata.name", json!(long(64)), Rule("metadata.name must be at most 63 characters")),
        row("metadata.name", json!("1api"), Rule("metadata.name must start with a lowercase letter")),
        row("metadata.name", json!("my.api"), Rule("metadata.name must start with a lowercase letter")),
        row("spec.image", json!("has space"), Schema("spec.image")),
        row("spec.port", json!(70000), Schema("spec.port")),
        row("spec.replicas", json!(-1), Schema("spec.replicas")),
        row("spec.autoscaling", json!({ "maxReplicas": 3 }), Rule("set either replicas or autoscaling, not both")),
        row("spec.autoscaling.minReplicas", json!(0), Schema("spec.autoscaling.minReplicas")),
        row("spec.autoscaling.maxReplicas", json!(0), Schema("spec.autoscaling.maxReplicas")),
        row("spec.autoscaling.targetCPUUtilizationPercentage", json!(101), Schema("targetCPUUtilizationPercentage")),
        row("spec.resources.requests.cpu", json!("lots"), Schema("spec.resources.requests.cpu")),
        row("spec.resources.requests.memory", json!("lots"), Schema("spec.resources.requests.memory")),
        row("spec.resources.limits.cpu", json!("-1"), Schema("spec.resources.limits.cpu")),
        row("spec.resources.limits.memory", json!("1Zi"), Schema("spec.resources.limits.memory")),
        row("spec.env[].name", json!("1BAD"), Schema("spec.env[0].name")),
        row("spec.env[].name", json!("DB_HOST"), Rule("an environment variable is declared in both env and secretEnv")),
        row("spec.env[].value", json!(long(32769)), Schema("spec.env[0].value")),
        row("spec.secretEnv[].name", json!("1BAD"), Schema("spec.secretEnv[0].name")),
        row("spec.secretEnv[].secretRef", json!("Bad_Name"), Schema("spec.secretEnv[0].secretRef")),
        row("spec.secretEnv[].secretRef", json!("no-such-ref"), Condition("SecretRefNotFound")),
        row("spec.secretEnv[].key", json!("bad/key"), Schema("spec.secretEnv[0].key")),
        row("spec.secretEnv[].key", json!("no-such-key"), Condition("SecretKeyNotFound")),
        row("spec.secretFiles[].secretRef", json!("Bad_Name"), Schema("spec.secretFiles[0].secretRef")),
        row("spec.secretFiles[].secretRef", json!("no-such-ref"), Condition("SecretRefNotFound")),
        row("spec.secretFiles[].mountPath", json!("relative"), Schema("spec.secretFiles[0].mountPath")),
        row("spec.secretFiles[].mountPath", json!("/tmp"), Condition("InvalidSpec")),
        row("spec.serviceAccount.name", json!("Bad_Name"), Schema("spec.serviceAccount.name")),
        row("spec.serviceAccount.gcpServiceAccount", json!("not-an-email"), Schema("gcpServiceAccount")),
        row("spec.serviceAccount.automountToken", json!("yes"), Schema("spec.serviceAccount.automountToken")),
        row("spec.tmpSizeLimit", json!("lots"), Schema("spec.tmpSizeLimit")),
        row("spec.healthCheck.path", json!("health"), Schema("spec.healthCheck.path")),
        row("spec.healthCheck.periodSeconds", json!(0), Schema("spec.healthCheck.periodSeconds")),
        row("spec.healthCheck.initialDelaySeconds", json!(-1), Schema("spec.healthCheck.initialDelaySeconds")),
        row("spec.expose.type", json!("NodePort"), Schema("spec.expose.type")),
        row("spec.expose.port", json!(0), Schema("spec.expose.port")),
        row("spec.expose.externalUrl", json!("ftp://example.com"), Schema("spec.expose.externalUrl")),
        row(
            "spec.expose.loadBalancerSourceRanges",
            json!(["everyone"]),
            Schema("spec.expose.loadBalancerSourceRanges[0]"),
        ),
        row("spec.expose.gateway.name", json!("Bad_Name"), Schema("spec.expose.gateway.name")),
        row("spec.expose.gateway.namespace", json!("Bad_Namespace"), Schema("spec.expose.gateway.namespace")),
        row("spec.expose.gateway.sectionName", json!("Bad_Section"), Schema("spec.expose.gateway.sectionName")),
        row("spec.rollout.maxSurge", json!("lots"), Schema("spec.rollout.maxSurge")),
        row("spec.rollout.maxUnavailable", json!("150"), Schema("spec.rollout.maxUnavailable")),
        row("spec.rollout.progressDeadlineSeconds", json!(10), Schema("spec.rollout.progressDeadlineSeconds")),
        row("spec.rollout.autoRollback", json!("yes"), Schema("spec.rollout.autoRollback")),
        row("spec.rollout.strategy", json!("Recreate"), Schema("spec.rollout.strategy")),
        row(
            "spec.rollout.canary",
            json!({ "steps": [{ "weight": 10 }] }),
            Rule("canary applies only to strategy Canary"),
        ),
        row("spec.rollout.blueGreen", json!({}), Rule("blueGreen applies only to strategy BlueGreen")),
        row("spec.rollout.blueGreen.scaleDownDelay", json!("later"), Schema("spec.rollout.blueGreen.scaleDownDelay")),
        row("spec.rollout.canary.steps", json!([]), Schema("spec.rollout.canary.steps")),
        row("spec.rollout.canary.steps[].weight", json!(100), Schema("spec.rollout.canary.steps[0].weight")),
        row("spec.rollout.canary.steps[].pause", json!("soon"), Schema("spec.rollout.canary.steps[0].pause")),
        row(
            "spec.rollout",
            json!({ "strategy": "Canary", "canary": { "steps": [{ "weight": 50 }, { "weight": 10 }] } }),
            Condition("InvalidSpec"),
        ),
        row(
            "spec.rollout.analysis",
            json!({ "interval": "1m" }),
            Rule("analysis applies only to strategies Canary and BlueGreen"),
        ),
        row("spec.rollout.analysis.interval", json!("0s"), Rule("analysis.interval must be between 1s and 1h")),
        row(
            "spec.rollout.analysis.prometheus.address",
            json!("ftp://prometheus.example"),
            Schema("spec.rollout.analysis.prometheus.address"),
        ),
        row("spec.rollout.analysis.prometheus.query", json!(""), Schema("spec.rollout.analysis.prometheus.query")),
        row("spec.rollout.analysis.prometheus.max", json!("lots"), Schema("spec.rollout.analysis.prometheus.max")),
        row("spec.rollout.window", json!({ "start": "09:00" }), Schema("spec.rollout.window.end")),
        row("spec.rollout.window.days", json!(["Funday"]), Schema("spec.rollout.window.days[0]")),
        row("spec.rollout.window.start", json!("9am"), Schema("spec.rollout.window.start")),
        row("spec.rollout.window.end", json!("24:00"), Schema("spec.rollout.window.end")),
        row("spec.rollout.window.timeZone", json!(""), Schema("spec.rollout.window.timeZone")),
        row(
            "spec.rollout.window",
            json!({ "start": "09:00", "end": "17:00", "timeZone": "Mars/Olympus" }),
            Condition("InvalidSpec"),
        ),
        row("spec.rollout.batchSeconds", json!(-1), Schema("spec.rollout.batchSeconds")),
        // The operator of the walk may query no Prometheus server.
        row(
            "spec.rollout",
            json!({ "strategy": "Canary", "analysis": { "prometheus": {
                "address": "http://prometheus.example:9090", "query": "up", "max": 0,
            } } }),
            Condition("InvalidSpec"),
        ),
        row("spec.traffic", json!([{ "latestRevision": true, "percent": 50 }]), Rule("must add up to 100")),
        row("spec.traffic", json!([{ "percent": 100 }]), Rule("set exactly one of revision and latestRevision")),
        row(
            "spec.traffic",
            json!([{ "revision": "api-1a", "percent": 50 }, { "revision": "api-1a", "percent": 50 }]),
            Rule("each entry of spec.traffic must name another revision"),
        ),
        row(
            "spec.traffic",
            json!([
                { "revision": "api-1a", "percent": 50, "tag": "a" },
                { "latestRevision": true, "percent": 50, "tag": "a" },
            ]),
            Rule("the tags of spec.traffic must differ"),
        ),
        row(
            "spec.traffic",
            json!([
                { "revision": "api-1a", "percent": 50 },
                { "revision": "api-2b", "percent": 25 },
                { "latestRevision": true, "percent": 25 },
            ]),
            Schema("spec.traffic"),
        ),
        // Not a revision of the service's history: reported, and what serves stays.
        row("spec.traffic", json!([{ "revision": "api-0000000000", "percent": 100 }]), Condition("InvalidSpec")),
        row("spec.traffic[].revision", json!("Bad_Name"), Schema("spec.traffic[0].revision")),
        row("spec.traffic[].latestRevision", json!("yes"), Schema("spec.traffic[0].latestRevision")),
        row("spec.traffic[].percent", json!(101), Schema("spec.traffic[0].percent")),
        row("spec.traffic[].tag", json!("Bad_Tag"), Schema("spec.traffic[0].tag")),
        row("spec.traffic[].tag", json!("canary"), Rule("the tag canary is taken")),
        row("spec.disruptionBudget", json!({}), Rule("set exactly one of minAvailable and maxUnavailable")),
        row("spec.disruptionBudget.minAvailable", json!("lots"), Schema("spec.disruptionBudget.minAvailable")),
        row("spec.disruptionBudget.maxUnavailable", json!("1%%"), Schema("spec.disruptionBudget.maxUnavailable")),
        row("spec.revisionHistoryLimit", json!(51), Schema("spec.revisionHistoryLimit")),
    ]
}

#[test]
fn every_secure_api_service_field_has_a_bad_input_row() {
    assert_every_field_has_a_row("secureapiservices", &service_rows());
}

#[tokio::test]
async fn every_secure_api_service_field_refuses_or_reports_bad_input_and_keeps_the_revision() {
    let (cluster, operator) = cluster_with_operator("walk-service").await;
    operator.gcp.add_version(PROJECT, "walk", br#"{"host":"db","password":"pw-1"}"#);
    let secret_ref = json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": "walk" },
        "spec": { "secret": "walk", "format": "json" },
    });
    let secret_ref: SecretRef = serde_json::from_value(secret_ref).unwrap_or_else(|e| panic!("{e}"));
    cluster.api::<SecretRef>().create(&PostParams::default(), &secret_ref).await.unwrap_or_else(|e| panic!("{e}"));
    let baseline = json!({
        "image": "example.com/api:1", "replicas": 1,
        "env": [{ "name": "MODE", "value": "walk" }],
        "secretEnv": [{ "name": "DB_HOST", "secretRef": "walk", "key": "host" }],
        "secretFiles": [{ "secretRef": "walk", "mountPath": "/secrets/walk" }],
    });
    // Applied is enough: on a real cluster the pods may never pull the image.
    let walk = Walk::of::<SecureApiService>(&cluster, &operator, "api", &["RolloutComplete", "RolloutInProgress"]);
    walk.play(&baseline, &service_rows()).await;
}

fn gateway_rows() -> Vec<Row> {
    vec![
        row("spec.projectId", json!("Bad_Project"), Schema("spec.projectId")),
        row("spec.location", json!("mars"), Schema("spec.location")),
        row("spec.apiId", json!("Bad_Id"), Schema("spec.apiId")),
        row("spec.apiId", json!("another-api"), Rule("apiId is immutable")),
        row("spec.gatewayId", json!("Bad_Id"), Schema("spec.gatewayId")),
        row("spec.gatewayId", json!("another-gateway"), Rule("gatewayId is immutable")),
        row("spec.serviceAccountName", json!("Bad_Name"), Schema("spec.serviceAccountName")),
        row("spec.serviceAccountName", json!("nobody"), Condition("ServiceAccountNotFound")),
        row("spec.gatewayServiceAccount", json!("not-an-email"), Schema("spec.gatewayServiceAccount")),
        row("spec.displayName", json!(long(64)), Schema("spec.displayName")),
        row("spec.auth.apiKey.in", json!("cookie"), Schema("spec.auth.apiKey.in")),
        row("spec.auth.apiKey.name", json!("bad name"), Schema("spec.auth.apiKey.name")),
        row("spec.auth.jwt[].name", json!("Bad"), Schema("spec.auth.jwt[0].name")),
        row("spec.auth.jwt[].issuer", json!(""), Schema("spec.auth.jwt[0].issuer")),
        row("spec.auth.jwt[].jwksUri", json!("http://insecure.example.com/jwks"), Schema("spec.auth.jwt[0].jwksUri")),
        row("spec.auth.jwt[].audiences", json!([""]), Schema("spec.auth.jwt[0].audiences[0]")),
        row("spec.quotas[].metric", json!("1bad"), Schema("spec.quotas[0].metric")),
        row("spec.quotas[].limitPerMinute", json!(0), Schema("spec.quotas[0].limitPerMinute")),
        row("spec.routes", json!([]), Schema("spec.routes")),
        row("spec.routes[].path", json!("no-slash"), Schema("spec.routes[0].path")),
        row("spec.routes[].methods", json!(["FETCH"]), Schema("spec.routes[0].methods[0]")),
        row("spec.routes[].operationId", json!("1bad"), Schema("spec.routes[0].operationId")),
        row("spec.routes[].auth", json!("basic"), Schema("spec.routes[0].auth")),
        row(
            "spec.routes[].auth",
            json!("jwt:nobody"),
            Rule("a route's auth jwt:NAME must name a provider in auth.jwt"),
        ),
        row("spec.routes[].backend", json!({ "service": "no-such-service" }), Condition("BackendNotReady")),
        row("spec.routes[].backend.service", json!("Bad_Name"), Schema("spec.routes[0].backend.service")),
        row(
            "spec.routes[].backend.service",
            json!("no-such-service"),
            Rule("set exactly one of backend.service and backend.address"),
        ),
        row("spec.routes[].backend.address", json!("ftp://example.com"), Schema("spec.routes[0].backend.address")),
        row(
            "spec.routes[].backend.pathTranslation",
            json!("SOMETIMES"),
            Schema("spec.routes[0].backend.pathTranslation"),
        ),
        // kube-apiserver compares a whole number with a truncated minimum: 0 and -0 must be
        // refused by an exclusive minimum of 0, not by `minimum: 0.001`.
        row("spec.routes[].backend.deadlineSeconds", json!(0), Schema("spec.routes[0].backend.deadlineSeconds")),
        row("spec.routes[].backend.deadlineSeconds", json!(0.0), Schema("spec.routes[0].backend.deadlineSeconds")),
        row("spec.routes[].backend.deadlineSeconds", json!(-0.0), Schema("spec.routes[0].backend.deadlineSeconds")),
        row("spec.routes[].backend.jwtAudience", json!(""), Schema("spec.routes[0].backend.jwtAudience")),
        row("spec.routes[].backend.disableAuth", json!("yes"), Schema("spec.routes[0].backend.disableAuth")),
        row("spec.routes[].quota", json!({ "requests": -1 }), Schema("spec.routes[0].quota.requests")),
        row(
            "spec.routes[].quota",
            json!({ "undeclared": 1 }),
            Rule("a route's quota names a metric that is not declared in quotas"),
        ),
        row("spec.apiKeys[].name", json!("Bad"), Schema("spec.apiKeys[0].name")),
        row("spec.apiKeys[].secretName", json!("Bad_Name"), Schema("spec.apiKeys[0].secretName")),
        row(
            "spec.apiKeys",
            json!([{ "name": "a", "secretName": "same" }, { "name": "b", "secretName": "same" }]),
            Rule("two API keys write into the same Secret"),
        ),
        row("spec.apiKeys[].secretKey", json!("bad key"), Schema("spec.apiKeys[0].secretKey")),
        row("spec.apiKeys[].methods", json!([""]), Schema("spec.apiKeys[0].methods[0]")),
        row("spec.apiKeys[].rotation", json!(long(64)), Schema("spec.apiKeys[0].rotation")),
        row("spec.apiKeys[].overlap", json!("soon"), Schema("spec.apiKeys[0].overlap")),
        row("spec.apiKeys[].rotationPeriod", json!("monthly"), Schema("spec.apiKeys[0].rotationPeriod")),
        row("spec.apiKeys[].rotationPeriod", json!("5s"), Rule("rotationPeriod must be at least 10s")),
        // The default overlap is 24h.
        row("spec.apiKeys[].rotationPeriod", json!("1h"), Rule("overlap must be shorter than rotationPeriod")),
        row("spec.deletionPolicy", json!("Never"), Schema("spec.deletionPolicy")),
    ]
}

#[test]
fn every_gateway_config_field_has_a_bad_input_row() {
    assert_every_field_has_a_row("gatewayconfigs", &gateway_rows());
}

#[tokio::test]
async fn every_gateway_config_field_refuses_or_reports_bad_input_and_keeps_the_served_config() {
    let (cluster, operator) = cluster_with_operator("walk-gateway").await;
    let baseline = json!({
        "projectId": PROJECT, "apiId": "walk-api", "gatewayId": "walk-gateway",
        "auth": { "apiKey": { "in": "query", "name": "key" },
                  "jwt": [{ "name": "issuer", "issuer": "https://issuer.example.com", "jwksUri": "https://issuer.example.com/jwks" }] },
        "quotas": [{ "metric": "requests", "limitPerMinute": 100 }],
        "apiKeys": [{ "name": "client", "secretName": "walk-key" }],
        "routes": [{ "path": "/health", "methods": ["GET"], "auth": "none", "quota": { "requests": 1 },
                     "backend": { "address": "https://backend.example.com" } }],
    });
    let walk = Walk::of::<GatewayConfig>(&cluster, &operator, "walk", &["GatewayActive"]);
    walk.play(&baseline, &gateway_rows()).await;
}

#[test]
fn a_row_value_lands_at_its_path() {
    let spec = json!({ "keys": [{ "key": "a" }] });
    assert_eq!(with_value(spec.clone(), "keys[].key", &json!("b")), json!({ "keys": [{ "key": "b" }] }));
    assert_eq!(with_value(json!({}), "target.name", &json!("n")), json!({ "target": { "name": "n" } }));
    assert_eq!(with_value(json!({}), "quotas[].metric", &json!("m")), json!({ "quotas": [{ "metric": "m" }] }));
    assert_eq!(with_value(spec, "keys", &json!([])), json!({ "keys": [] }));
}
