//! Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics: one replica
//! holds the Lease and reconciles; the others stand by and take it when it is released (empty
//! holder) or expired (`renewTime + leaseDurationSeconds < now`). Every write carries the
//! resourceVersion it read, so when two replicas race, the API server's 409 picks one.
//!
//! The leader renews every retry period. If no renewal succeeds within the renew deadline
//! ([`Config::renew_deadline`], 2/3 of the lease duration) it stops reconciling and reports
//! [`LostLeadership`]: a standby can take over only after the full lease duration, so the gap of
//! 1/3 of the duration absorbs clock skew between replicas and the time to stop. On graceful
//! shutdown the leader releases the Lease, so a standby takes over within one retry period.
//!
//! [`decide`] is the pure decision step; [`Elector`] does the I/O around it.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What this replica should write, if anything, given the Lease it read.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// No Lease exists: create it, held by us.
    Create(LeaseSpec),
    /// The Lease is released or expired: take it over (a new holder, one more transition).
    Acquire(LeaseSpec),
    /// We hold the Lease: renew it.
    Renew(LeaseSpec),
    /// Another replica holds a valid Lease: stand by.
    StandBy { holder: String },
}

/// The pure decision step. `lease_duration` is ours; a Lease's own `leaseDurationSeconds` wins
/// when judging whether it expired, since its holder promised to renew within that time.
pub fn decide(current: Option<&Lease>, identity: &str, now: Timestamp, lease_duration: Duration) -> Decision {
    let Some(lease) = current else {
        return Decision::Create(held(None, identity, now, lease_duration));
    };
    let spec = lease.spec.clone().unwrap_or_default();
    match holder(&spec) {
        Some(holder) if holder == identity => Decision::Renew(held(Some(&spec), identity, now, lease_duration)),
        Some(holder) if !expired(&spec, now, lease_duration) => Decision::StandBy { holder: holder.to_owned() },
        _ => Decision::Acquire(held(Some(&spec), identity, now, lease_duration)),
    }
}

/// The Lease released by `identity`: no holder, so standbys take it at their next try. `None`
/// when `identity` does not hold it (then there is nothing to release).
pub fn released(spec: &LeaseSpec, identity: &str, now: Timestamp) -> Option<LeaseSpec> {
    (holder(spec) == Some(identity)).then(|| LeaseSpec {
        holder_identity: None,
        // As client-go: other electors that measure expiry themselves wait one second at most.
        lease_duration_seconds: Some(1),
        acquire_time: Some(MicroTime(now)),
        renew_time: Some(MicroTime(now)),
        ..spec.clone()
    })
}

/// The holder named in the Lease; an empty or absent holderIdentity means released.
pub fn holder(spec: &LeaseSpec) -> Option<&str> {
    spec.holder_identity.as_deref().filter(|holder| !holder.is_empty())
}

/// Whether `renewTime + leaseDurationSeconds < now`. A Lease naming a holder but no renewTime was
/// not written by an elector that renews, so it counts as expired.
fn expired(spec: &LeaseSpec, now: Timestamp, lease_duration: Duration) -> bool {
    let Some(MicroTime(renewed)) = spec.renew_time else { return true };
    let ours = i64::try_from(lease_duration.as_secs()).unwrap_or(i64::MAX);
    let seconds = spec.lease_duration_seconds.filter(|s| *s > 0).map_or(ours, i64::from);
    // An expiry beyond the representable range is simply not reached.
    renewed.checked_add(SignedDuration::from_secs(seconds)).is_ok_and(|expiry| expiry < now)
}

/// The Lease spec with us as holder, renewed now. Fields we do not manage are kept.
fn held(previous: Option<&LeaseSpec>, identity: &str, now: Timestamp, lease_duration: Duration) -> LeaseSpec {
    let previous = previous.cloned();
    let ours = previous.as_ref().is_some_and(|spec| holder(spec) == Some(identity));
    let transitions = match &previous {
        None => 0,
        Some(spec) if ours => spec.lease_transitions.unwrap_or(0),
        Some(spec) => spec.lease_transitions.unwrap_or(0).saturating_add(1),
    };
    let acquired = previous.as_ref().filter(|_| ours).and_then(|spec| spec.acquire_time.clone());
    LeaseSpec {
        holder_identity: Some(identity.to_owned()),
        lease_duration_seconds: Some(i32::try_from(lease_duration.as_secs()).unwrap_or(i32::MAX)),
        acquire_time: Some(acquired.unwrap_or(MicroTime(now))),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..previous.unwrap_or_default()
    }
}

/// Where the Lease lives, who we are, and the timings.
#[derive(Clone, Debug)]
pub struct Config {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub retry_period: Duration,
}

impl Config {
    /// How long the leader keeps reconciling without a successful renewal: 2/3 of the lease
    /// duration (client-go's defaults are 15 s / 10 s), leaving 1/3 as the safety margin before
    /// a standby may take over.
    pub fn renew_deadline(&self) -> Duration {
        self.lease_duration * 2 / 3
    }

    /// The leader must get at least one renewal attempt before its renew deadline.
    pub fn validate(&self) -> Result<(), String> {
        if self.retry_period >= self.renew_deadline() {
            return Err(format!(
                "--lease-retry-period {}s must be shorter than the renew deadline, 2/3 of --lease-duration {}s \
                 (the leader gives up after that long without a renewal); raise --lease-duration or lower \
                 --lease-retry-period",
                self.retry_period.as_secs(),
                self.lease_duration.as_secs(),
            ));
        }
        Ok(())
    }

    fn lease(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Namespace of the Lease: the flag, else the pod's own namespace, else the (first) watched one,
/// else `default`.
pub fn lease_namespace(flag: Option<&str>, watched: Option<&str>) -> String {
    let pod = std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace").ok();
    let pod = pod.as_deref().map(str::trim).filter(|ns| !ns.is_empty());
    flag.or(pod).or(watched).unwrap_or("default").to_owned()
}

/// The host name (the pod name in a cluster) plus a random suffix, so that two processes on one
/// host, or a restarted pod, never share an identity.
pub fn default_identity() -> String {
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.trim().is_empty());
    let host = host.or_else(|| std::fs::read_to_string("/etc/hostname").ok()).unwrap_or_default();
    let host = Some(host.trim()).filter(|h| !h.is_empty()).unwrap_or("secure-api-operator");
    let mut suffix = [0u8; 4];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut suffix).is_err() {
        suffix = std::process::id().to_be_bytes();
    }
    format!("{host}_{}", suffix.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Leadership ended without a shutdown: the process must stop reconciling and exit.
#[derive(Debug, thiserror::Error)]
#[error("lost leadership of Lease {lease}: {reason}; exiting so that Kubernetes restarts the operator")]
pub struct LostLeadership {
    lease: String,
    reason: String,
}

/// Result of one try to acquire or renew.
enum Attempt {
    Held,
    HeldBy(String),
    /// Another replica wrote the Lease between our read and our write.
    Contended,
}

/// Takes part in the election for one Lease.
pub struct Elector {
    api: Api<Lease>,
    config: Config,
    /// The Lease as we last wrote it while holding it: renewals update it without reading first.
    ours: Option<Lease>,
    /// When the attempt that last acquired or renewed the Lease started.
    renewed: Instant,
}

impl Elector {
    pub fn new(client: kube::Client, config: Config) -> Self {
        Self { api: Api::namespaced(client, &config.namespace), config, ours: None, renewed: Instant::now() }
    }

    /// Tries every retry period until this replica holds the Lease. `false` when `shutdown`
    /// fired first.
    pub async fn acquire(&mut self, shutdown: &CancellationToken) -> bool {
        let (lease, identity) = (self.config.lease(), self.config.identity.clone());
        tracing::info!(%lease, %identity, "waiting for leadership");
        let (mut last_holder, mut last_error) = (None, None);
        loop {
            let started = Instant::now();
            let attempt = tokio::time::timeout(self.config.lease_duration, self.try_acquire_or_renew());
            let outcome = tokio::select! {
                () = shutdown.cancelled() => return false,
                outcome = attempt => outcome,
            };
            match outcome {
                Ok(Ok(Attempt::Held)) => {
                    self.renewed = started;
                    tracing::info!(%lease, %identity, "became leader");
                    return true;
                }
                Ok(Ok(Attempt::HeldBy(holder))) if last_holder.as_ref() != Some(&holder) => {
                    tracing::info!(%lease, %holder, "the Lease is held by another replica; standing by");
                    last_holder = Some(holder);
                }
                Ok(Err(error)) if last_error.as_ref() != Some(&error.to_string()) => {
                    tracing::warn!(%lease, %error, "cannot read or take the Lease; retrying");
                    last_error = Some(error.to_string());
                }
                _ => {}
            }
            tokio::select! {
                () = shutdown.cancelled() => return false,
                () = tokio::time::sleep(self.config.retry_period) => {}
            }
        }
    }

    /// Renews the Lease while `work` runs, then releases it. If no renewal succeeds within the
    /// renew deadline, or another replica took the Lease, `work` is dropped at once (so nothing
    /// more is reconciled) and the loss is returned.
    pub async fn hold(&mut self, work: impl Future<Output = ()>) -> Result<(), LostLeadership> {
        tokio::pin!(work);
        let mut last_error = String::from("none");
        loop {
            let deadline = self.renewed + self.config.renew_deadline();
            let wake = deadline.min(Instant::now() + self.config.retry_period);
            tokio::select! {
                () = &mut work => break,
                () = tokio::time::sleep_until(wake) => {}
            }
            if Instant::now() >= deadline {
                let reason = format!(
                    "no renewal succeeded within the renew deadline of {:.1}s (last error: {last_error})",
                    self.config.renew_deadline().as_secs_f64()
                );
                return Err(self.lost(reason));
            }
            let started = Instant::now();
            let outcome = tokio::select! {
                () = &mut work => break,
                outcome = tokio::time::timeout_at(deadline, self.try_acquire_or_renew()) => outcome,
            };
            let error = match outcome {
                Ok(Ok(Attempt::Held)) => {
                    self.renewed = started;
                    continue;
                }
                Ok(Ok(Attempt::HeldBy(holder))) => return Err(self.lost(format!("{holder} holds it now"))),
                Ok(Ok(Attempt::Contended)) => "another replica wrote the Lease".to_owned(),
                Ok(Err(error)) => error.to_string(),
                Err(_) => "the request timed out".to_owned(),
            };
            last_error = error.replace(['\n', '\r'], " ");
            tracing::warn!(lease = %self.config.lease(), error = %last_error, "cannot renew the Lease; retrying");
        }
        self.release().await;
        Ok(())
    }

    fn lost(&mut self, reason: String) -> LostLeadership {
        self.ours = None;
        LostLeadership { lease: self.config.lease(), reason }
    }

    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, kube::Error> {
        let (name, now) = (self.config.name.clone(), Timestamp::now());
        // As client-go: the leader writes over the Lease it last wrote, without reading it first.
        if let Some(mut lease) = self.ours.take()
            && let Decision::Renew(spec) = decide(Some(&lease), &self.config.identity, now, self.config.lease_duration)
        {
            let cached = lease.clone();
            lease.spec = Some(spec);
            match self.api.replace(&name, &PostParams::default(), &lease).await {
                Ok(written) => {
                    self.ours = Some(written);
                    return Ok(Attempt::Held);
                }
                Err(error) if !is_conflict(&error) => {
                    self.ours = Some(cached);
                    return Err(error);
                }
                Err(_) => {} // Someone else wrote it: read it and decide again.
            }
        }
        let current = self.api.get_opt(&name).await?;
        let written = match decide(current.as_ref(), &self.config.identity, now, self.config.lease_duration) {
            Decision::StandBy { holder } => return Ok(Attempt::HeldBy(holder)),
            Decision::Create(spec) => {
                let metadata = ObjectMeta {
                    name: Some(name),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                };
                self.api.create(&PostParams::default(), &Lease { metadata, spec: Some(spec) }).await
            }
            Decision::Acquire(spec) | Decision::Renew(spec) => {
                // Carries the resourceVersion we read: a concurrent writer makes this a 409.
                let lease = Lease { spec: Some(spec), ..current.unwrap_or_default() };
                self.api.replace(&name, &PostParams::default(), &lease).await
            }
        };
        match written {
            Ok(lease) => {
                self.ours = Some(lease);
                Ok(Attempt::Held)
            }
            Err(error) if is_conflict(&error) => Ok(Attempt::Contended),
            Err(error) => Err(error),
        }
    }

    /// Clears the holder if we still hold the Lease; bounded by the renew deadline.
    async fn release(&mut self) {
        self.ours = None;
        let lease = self.config.lease();
        let release = async {
            let Some(mut current) = self.api.get_opt(&self.config.name).await? else { return Ok(false) };
            let spec = current.spec.as_ref().and_then(|s| released(s, &self.config.identity, Timestamp::now()));
            let Some(spec) = spec else { return Ok(false) };
            current.spec = Some(spec);
            self.api.replace(&self.config.name, &PostParams::default(), &current).await.map(|_| true)
        };
        match tokio::time::timeout(self.config.renew_deadline(), release).await {
            Ok(Ok(true)) => tracing::info!(%lease, "released leadership"),
            Ok(Ok(false)) => tracing::info!(%lease, "the Lease is no longer ours; nothing to release"),
            Ok(Err(error)) => {
                tracing::warn!(%lease, %error, "cannot release the Lease; a standby takes over when it expires")
            }
            Err(_) => tracing::warn!(%lease, "releasing the Lease timed out; a standby takes over when it expires"),
        }
    }
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

#[cfg(test)]
mod tests;
