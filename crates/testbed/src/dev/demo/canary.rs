//! The demo's safe rotation: the example switched to canary rollouts; a rotation of api-config-db
//! to a password the stand-in's simulated database refuses, whose canary never has a Ready pod and
//! is aborted by its gate while the gateway keeps answering from the stable revision; then one
//! to a good password, promoted step by step. Each phase counts which revision answered a run of
//! requests through the gateway (the stand-in's `x-revision` header), and checks the count
//! against the replica ratio the operator set.

use super::calls::{Caller, line};
use super::{Demo, SERVICE, rollout, versions};
use crate::dev::standin::database::REFUSED_PREFIX;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Patch, PatchParams};
use secrecy::{ExposeSecret, SecretString};
use secure_api_operator::api::conditions::{find_condition, reasons, types};
use secure_api_operator::api::secure_api_service::CanaryStatus;
use secure_api_operator::controllers::secure_api_service::revision::revision_of;
use secure_api_operator::workload::canary::canary_name;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Instant;

/// Enough replicas for a 10% step to be exact: 1 canary pod beside 9.
const REPLICAS: i32 = 9;
/// The steps (weight, pause): short, so that the demo stays short.
const STEPS: [(i32, &str); 2] = [(10, "1.5s"), (50, "1.5s")];
/// How long a step's canary pods have to become Ready.
const INTERVAL: &str = "2s";
/// Requests per count: a multiple of the 10 pods of the first step.
const REQUESTS: usize = 50;
/// Requests in flight at once while counting.
const AT_ONCE: usize = 10;
/// How far a count's share may be from the canary's share of the pods, in points.
const TOLERANCE: i64 = 5;

/// What the canary steps carry from one to the next.
#[derive(Default)]
pub(super) struct Rollouts {
    /// The stable revision, and its Deployment's generation once it has nine replicas.
    stable: String,
    stable_generation: i64,
}

/// Which revision answered each of a run of requests.
struct Count {
    answered: BTreeMap<String, usize>,
}

impl Count {
    fn of(&self, revision: &str) -> usize {
        self.answered.get(revision).copied().unwrap_or(0)
    }

    /// `revision`'s share in percent, rounded to the nearest.
    fn share(&self, revision: &str) -> i64 {
        let (part, total) = (self.of(revision), REQUESTS);
        i64::try_from((part * 200 + total) / (total * 2)).unwrap_or(0)
    }

    /// `50 requests: stable secure-api-1 45 (90%), canary secure-api-2 5 (10%)`; a revision
    /// not named by a role is listed too.
    fn line(&self, roles: &[(&str, &str)]) -> String {
        let mut parts: Vec<String> = roles
            .iter()
            .map(|(role, revision)| format!("{role} {revision} {} ({}%)", self.of(revision), self.share(revision)))
            .collect();
        let others = self.answered.keys().filter(|r| roles.iter().all(|(_, named)| named != *r));
        parts.extend(others.map(|r| format!("{r} {} ({}%)", self.of(r), self.share(r))));
        format!("{REQUESTS} requests: {}", parts.join(", "))
    }
}

fn replicas(deployment: &Deployment) -> i32 {
    deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// Ready pods of the Deployment's current generation.
fn ready_pods(deployment: &Deployment) -> i32 {
    let status = deployment.status.clone().unwrap_or_default();
    let current = status.observed_generation.is_some() && status.observed_generation >= deployment.metadata.generation;
    if current { status.ready_replicas.unwrap_or(0) } else { 0 }
}

impl Demo<'_> {
    async fn canary_deployment(&self) -> Result<Option<Deployment>, String> {
        let name = canary_name(SERVICE);
        self.api::<Deployment>().get_opt(&name).await.map_err(|e| format!("Deployment {name}: {e}"))
    }

    /// Waits until the stand-in splits requests over exactly `pods` (Ready pods per revision).
    async fn endpoints(&self, pods: &[(&str, i32)]) -> Result<(), String> {
        let wanted: BTreeMap<String, u32> =
            pods.iter().map(|(r, n)| ((*r).to_owned(), u32::try_from(*n).unwrap_or(0))).collect();
        self.wait(|| async {
            let now = self.playground.standin().endpoints();
            if now == wanted { Ok(()) } else { Err(format!("the Service's Ready pods are {now:?}, not {wanted:?}")) }
        })
        .await
    }

    /// Calls `/health` through the gateway [`REQUESTS`] times, [`AT_ONCE`] at a time (the split
    /// counts requests, not their order); every call must answer 200.
    async fn count(&self, caller: &Caller) -> Result<Count, String> {
        let calls = futures::stream::iter(0..REQUESTS).map(|_| caller.get("/health", None, None));
        let answers: Vec<_> = calls.buffer_unordered(AT_ONCE).collect().await;
        let mut answered = BTreeMap::new();
        for answer in answers {
            let answer = answer?;
            if answer.status != 200 {
                return Err(format!("expected 200: {}", line("/health", "without a key", &answer)));
            }
            let revision = answer.revision.ok_or("an answer without the x-revision header")?;
            *answered.entry(revision).or_insert(0) += 1;
        }
        Ok(Count { answered })
    }

    async fn add_db_version(&self, password: &SecretString) -> u64 {
        let payload = json!({"host": "db.example.com", "port": 5432, "username": "api_user",
                             "password": password.expose_secret()});
        let project = &self.playground.gcp_project;
        self.playground.gcp.add_version(project, "api-config-db", payload.to_string().as_bytes())
    }

    /// `spec.replicas` 9 and `spec.rollout.strategy: Canary` with short steps, as a merge patch:
    /// neither is part of the pod template, so the revision stays and its pods only scale.
    pub(super) async fn switch_to_canary(&mut self) -> Result<Vec<String>, String> {
        let before = self.service().await?;
        let revision = before.status.as_ref().and_then(|s| s.revision.clone()).unwrap_or_default();
        let steps: Vec<Value> = STEPS.iter().map(|(weight, pause)| json!({"weight": weight, "pause": pause})).collect();
        let patch = json!({"spec": {"replicas": REPLICAS, "rollout": {
            "strategy": "Canary", "canary": {"steps": steps}, "analysis": {"interval": INTERVAL}}}});
        let services = self.api::<secure_api_operator::api::SecureApiService>();
        let patched = services.patch(SERVICE, &PatchParams::default(), &Patch::Merge(&patch)).await;
        patched.map_err(|e| format!("SecureApiService {SERVICE}: {e}"))?;
        self.wait_service(|service| {
            let status = service.status.clone().unwrap_or_default();
            match (status.revision, status.ready_replicas) {
                (Some(now), _) if now != revision => Err(format!("the revision changed: {revision} -> {now}")),
                (_, Some(REPLICAS)) => Ok(()),
                (_, ready) => Err(format!("{} of {REPLICAS} replicas Ready", ready.unwrap_or(0))),
            }
        })
        .await?;
        let deployment = self.deployment().await?;
        self.endpoints(&[(&revision, REPLICAS)]).await?;
        let count = self.count(self.caller()?).await?;
        self.rollouts =
            Rollouts { stable: revision.clone(), stable_generation: deployment.metadata.generation.unwrap_or(0) };
        let steps: Vec<String> = STEPS.iter().map(|(weight, pause)| format!("{weight}% for {pause}")).collect();
        Ok(vec![
            format!(
                "spec              replicas {} -> {REPLICAS}, rollout.strategy {:?} -> Canary   (kubectl patch secureapiservice {SERVICE} --type merge -p '{patch}')",
                before.spec.replicas.map_or_else(|| "-".to_owned(), |r| r.to_string()),
                before.spec.rollout.strategy,
            ),
            format!(
                "canary steps      {}; analysis.interval {INTERVAL}: a step's canary pods all Ready within {INTERVAL}, or it is aborted",
                steps.join(", then ")
            ),
            format!("revision          {revision} unchanged (neither is part of the pod template)"),
            rollout(&deployment),
            format!(
                "readiness         a pod is Ready when GET /health of its revision answers 200: the stand-in's database refuses a password starting with {REFUSED_PREFIX:?}"
            ),
            format!("GET /health       {}", count.line(&[("stable", &revision)])),
        ])
    }

    /// A password the database refuses: the canary comes up, never Ready, and its gate aborts
    /// it; no request reaches it, and the gateway answers from the stable revision throughout.
    pub(super) async fn refused_rotation_aborted(&mut self) -> Result<Vec<String>, String> {
        let stable = self.rollouts.stable.clone();
        let password = SecretString::from(format!("{REFUSED_PREFIX}-{}", self.secret_value()?.expose_secret()));
        let version = self.add_db_version(&password).await;
        let rotated = Instant::now();
        let (canary, trial) = self.trial(&version.to_string(), 1, |_| Ok(())).await?;
        let came_up = rotated.elapsed().as_millis();
        let pods = self.canary_deployment().await?.map_or(0, |d| replicas(&d));
        let probe = self
            .wait(|| async {
                let probe = self.playground.standin().probe(&canary);
                probe.ok_or_else(|| format!("revision {canary} is not probed yet"))
            })
            .await?;
        if probe.status.is_success() {
            return Err(format!("the readiness probe of {canary} answers {}: expected a refusal", probe.status));
        }
        let caller = self.caller()?;
        self.endpoints(&[(&stable, REPLICAS)]).await?;
        let during = self.count(caller).await?;
        let message = self
            .wait(|| async {
                let service = self.service().await?;
                let conditions = service.status.map(|s| s.conditions).unwrap_or_default();
                match find_condition(&conditions, types::READY) {
                    Some(c) if c.reason == reasons::ROLLOUT_ABORTED => Ok(c.message.clone()),
                    Some(c) => Err(format!("SecureApiService {SERVICE}: Ready={:?} ({})", c.status, c.reason)),
                    None => Err(format!("SecureApiService {SERVICE}: no Ready condition")),
                }
            })
            .await?;
        let aborted = rotated.elapsed().as_millis();
        self.wait(|| async {
            let pods = self.canary_deployment().await?.map_or(0, |d| replicas(&d));
            if pods == 0 { Ok(()) } else { Err(format!("the aborted canary still has {pods} pods")) }
        })
        .await?;
        self.endpoints(&[(&stable, REPLICAS)]).await?;
        let after = self.count(caller).await?;
        let reached = self.playground.standin().served().get(&canary).copied().unwrap_or(0);
        if during.of(&canary) + after.of(&canary) > 0 || reached > 0 {
            return Err(format!("the rejected revision {canary} answered {reached} requests"));
        }
        let status = self.service().await?.status.unwrap_or_default();
        let rejected = status.rejected_revisions.first().map(|r| r.revision.clone()).unwrap_or_default();
        if rejected != canary || status.revision.as_deref() != Some(stable.as_str()) {
            return Err(format!(
                "status.rejectedRevisions[0] is {rejected:?} and status.revision {:?}",
                status.revision
            ));
        }
        let deployment = self.deployment().await?;
        let generation = deployment.metadata.generation.unwrap_or(0);
        if generation != self.rollouts.stable_generation {
            return Err(format!(
                "the stable Deployment changed: generation {} -> {generation}",
                self.rollouts.stable_generation
            ));
        }
        let roles = [("stable", stable.as_str()), ("canary", canary.as_str())];
        Ok(vec![
            format!(
                "api-config-db     version {version}, a password the stand-in's database refuses   (gcloud secrets versions add api-config-db --data-file=-)"
            ),
            format!(
                "canary            Deployment {}: revision {canary} ({}), step {}/{}, weight {}%: {pods} of {} pods, {came_up} ms after the version was added",
                canary_name(SERVICE),
                versions(&trial.secret_versions),
                trial.step,
                trial.steps,
                trial.effective_weight,
                pods + REPLICAS,
            ),
            format!("readiness probe   GET /health {}   (0/{pods} Ready)", probe_answer(&probe).summary()),
            format!("during the canary {}", during.line(&roles)),
            format!("Ready=False RolloutAborted: {message}   ({aborted} ms after the version was added)"),
            format!(
                "after the abort   {}   (the canary has 0 pods)",
                after.line(&[("stable", &stable), ("rejected", &canary)])
            ),
            format!(
                "rejected          status.rejectedRevisions[0] {canary}; requests it answered: {reached}; Deployment {SERVICE} untouched (generation {generation})"
            ),
        ])
    }

    /// A good password: its canary passes each step's gate, takes its share of the requests,
    /// and is promoted; then every request reaches it.
    pub(super) async fn good_rotation_promoted(&mut self) -> Result<Vec<String>, String> {
        let stable = self.rollouts.stable.clone();
        let version = self.add_db_version(&self.secret_value()?).await.to_string();
        let rotated = Instant::now();
        let mut lines = vec![format!(
            "api-config-db     version {version}    (gcloud secrets versions add api-config-db --data-file=-)"
        )];
        let mut canary = String::new();
        for (index, (weight, _)) in STEPS.iter().enumerate() {
            let step = i32::try_from(index + 1).unwrap_or(i32::MAX);
            let (revision, trial) = self
                .trial(&version, step, |d| {
                    let (ready, wanted) = (ready_pods(d), replicas(d));
                    if ready >= wanted { Ok(()) } else { Err(format!("{ready} of {wanted} canary pods Ready")) }
                })
                .await?;
            let pods = replicas(&self.canary_deployment().await?.unwrap_or_default());
            self.endpoints(&[(&stable, REPLICAS), (&revision, pods)]).await?;
            let count = self.count(self.caller()?).await?;
            // The count belongs to the step only if the split did not change while it ran.
            let still = self.service().await?.status.and_then(|s| s.canary).is_some_and(|c| c.step == step);
            let split = self.playground.standin().endpoints();
            if !still || split.get(&revision).copied() != u32::try_from(pods).ok() {
                return Err(format!("step {step} ended while its requests were counted (a slow machine?)"));
            }
            let share = count.share(&revision);
            if (share - i64::from(trial.effective_weight)).abs() > TOLERANCE {
                return Err(format!(
                    "step {step}: the canary answered {share}% of the requests, its share of the pods is {}%",
                    trial.effective_weight
                ));
            }
            if index == 0 {
                let probe = self.playground.standin().probe(&revision).map(|p| probe_answer(&p).summary());
                lines.push(format!("canary            revision {revision} ({})", versions(&trial.secret_versions)));
                lines.push(format!("readiness probe   GET /health {}", probe.unwrap_or_default()));
            }
            lines.push(format!(
                "step {step}/{} ({weight}%)    {}   ({} beside {REPLICAS}, all Ready)",
                trial.steps,
                count.line(&[("stable", &stable), ("canary", &revision)]),
                if pods == 1 { "1 canary pod".to_owned() } else { format!("{pods} canary pods") },
            ));
            canary = revision;
        }
        let promoted = self
            .wait_service(|service| {
                let revision = service.status.as_ref().and_then(|s| s.revision.clone()).unwrap_or_default();
                if revision == canary {
                    Ok(())
                } else {
                    Err(format!("SecureApiService {SERVICE} is at revision {revision}"))
                }
            })
            .await?;
        let took = rotated.elapsed().as_millis();
        self.wait(|| async {
            match self.canary_deployment().await? {
                None => Ok(()),
                Some(_) => Err(format!("Deployment {} is not deleted yet", canary_name(SERVICE))),
            }
        })
        .await?;
        self.endpoints(&[(&canary, REPLICAS)]).await?;
        let count = self.count(self.caller()?).await?;
        if count.of(&canary) != REQUESTS {
            return Err(format!("after the promotion: {}", count.line(&[("promoted", &canary)])));
        }
        let status = promoted.status.unwrap_or_default();
        lines.extend([
            format!(
                "promoted          {}   (Deployment {} deleted)",
                count.line(&[("stable", &canary)]),
                canary_name(SERVICE)
            ),
            format!(
                "revision          {stable} -> {canary}   ({took} ms after the version was added), pinned to {}",
                versions(&status.secret_versions)
            ),
            rollout(&self.deployment().await?),
        ]);
        self.rollouts.stable = canary;
        Ok(lines)
    }

    /// Waits until the canary of db `version` is at `step` with the status naming it and
    /// `settled` content with its Deployment; returns its revision and status.
    async fn trial(
        &self,
        version: &str,
        step: i32,
        settled: impl Fn(&Deployment) -> Result<(), String>,
    ) -> Result<(String, CanaryStatus), String> {
        self.wait(|| async {
            let service = self.service().await?;
            let status = service.status.clone().unwrap_or_default();
            let trial = status.canary.filter(|c| c.secret_versions.get("db").map(String::as_str) == Some(version));
            let trial = trial.ok_or_else(|| format!("no canary of db version {version} in status yet"))?;
            if trial.step != step {
                return Err(format!("the canary is at step {}, not {step}", trial.step));
            }
            let canary = self.canary_deployment().await?.ok_or("no canary Deployment yet")?;
            if revision_of(&canary).as_deref() != Some(trial.revision.as_str()) {
                return Err(format!("Deployment {} does not run {} yet", canary_name(SERVICE), trial.revision));
            }
            let expected = STEPS.get(usize::try_from(step - 1).unwrap_or(0)).map_or(0, |(w, _)| *w);
            if trial.weight != expected {
                return Err(format!("the canary's weight is {}%, not {expected}%", trial.weight));
            }
            settled(&canary)?;
            Ok((trial.revision.clone(), trial))
        })
        .await
    }
}

/// A probe's answer as a call's, to show it as one.
fn probe_answer(probe: &crate::dev::standin::api::Answer) -> super::calls::Answer {
    super::calls::Answer { status: probe.status.as_u16(), body: probe.body.clone(), revision: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_shows_each_revisions_share() {
        let count = Count { answered: BTreeMap::from([("a".to_owned(), 45), ("b".to_owned(), 5)]) };
        assert_eq!((count.share("a"), count.share("b"), count.share("c")), (90, 10, 0));
        assert_eq!(count.line(&[("stable", "a"), ("canary", "b")]), "50 requests: stable a 45 (90%), canary b 5 (10%)");
        assert_eq!(
            count.line(&[("stable", "a"), ("rejected", "c")]),
            "50 requests: stable a 45 (90%), rejected c 0 (0%), b 5 (10%)"
        );
    }
}
