//! The SecureApiService controller.
//!
//! resolve (the SecretRefs it uses, in its namespace, and the live and canary Deployments, read
//! once) → build (pure, in `crate::workload`: snapshots, ServiceAccount, Deployment, Service, HPA,
//! PDB) → decide how the revision rolls out ([`trial`]: a rotation waits for its batch or window;
//! a canary or blue/green trial takes its next step, or is aborted; the traffic split) → apply
//! what changed (immutable snapshots first, then the rest) → roll back a stalled rollout when
//! asked → status (pure) → prune snapshots no retained revision uses. While a SecretRef is not
//! Ready, the current revision stays. Every failure — a write the API server refused, a SecretRef
//! not Ready, a stalled rollout, an aborted trial — is a `Ready=False` condition and one Warning
//! Event; a new revision on the Deployment, and a trial's step, is one Normal Event ([`announce`]).

pub mod announce;
pub mod apply;
pub mod canary;
pub mod desired;
pub mod error;
pub mod resolve;
pub mod revision;
pub mod route;
pub mod schedule;
pub mod status;
pub mod traffic;
pub mod trial;

use super::Context;
use crate::api::{SecureApiService, SecureApiServiceStatus};
use crate::metrics::Controller as ControllerKind;
use crate::runtime::caches::Cache;
use crate::runtime::caches::index_key;
use crate::runtime::children::is_child_of;
use crate::runtime::recheck::Recheck;
use crate::runtime::skeleton::{self, Failure, Profile, Reconciler, warn_once, write_status};
use crate::runtime::{Runtime, now};
use crate::workload::snapshot::secretref_label;
use crate::workload::{Inputs, service_label};
use error::Error;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The safety-net re-check of a steady service.
const RECHECK: Duration = Duration::from_secs(300);
/// A service hears of each of its SecretRefs, of its Deployment's status updates and of its own
/// status write one by one, often within milliseconds: waiting this long makes a burst one
/// reconcile (at 1,000 services of ten SecretRefs each, a cold sync made 23 reconciles per
/// service without it). A rotation reaches the rollout this much later.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// The controller until `shutdown` resolves. Subscribes to the caches at once: call it before
/// they run.
pub fn run(ctx: Arc<Context>, shutdown: CancellationToken) -> impl Future<Output = ()> {
    let caches = &ctx.caches;
    let controller = skeleton::controller_of::<SecureApiService>(&ctx);
    let users = ctx.clone();
    let pruner = ctx.clone();
    let controller = controller
        .owns_shared_stream(caches.deployments.subscribe())
        .owns_shared_stream(caches.services.subscribe())
        // A SecretRef's new version rolls every SecureApiService of its namespace that uses it;
        // SecretRef changes a service does not read (a finalizer, a label) trigger nothing.
        .watches_shared_stream(resolve::changes_services_see(ctx.clone()), move |secret_ref| {
            let key = index_key(secret_ref.namespace().as_deref(), &secret_ref.name_any());
            users.caches.secure_api_services.indexed(&key)
        })
        // A snapshot no retained revision uses must not wait for the re-check: one whose write
        // landed after the prune that would have taken it (a crashed process's last request)
        // reconciles its service, which prunes it.
        .watches_shared_stream(ctx.caches.secrets.subscribe(), move |secret| {
            unretained_snapshot_owner(&pruner, &secret)
        });
    skeleton::run(controller, ctx, shutdown)
}

/// The service of a snapshot Secret that its cached status retains in no revision, or that is
/// gone while retained (the service re-creates the current revision's, and forgets a revision
/// it can no longer restore).
fn unretained_snapshot_owner(ctx: &Context, secret: &Secret) -> Option<ObjectRef<SecureApiService>> {
    let labels = secret.metadata.labels.as_ref()?;
    labels.get(&secretref_label())?;
    let service = labels.get(&service_label())?;
    let namespace = secret.namespace()?;
    let cached = ctx.caches.secure_api_services.get(&namespace, service)?;
    let name = secret.name_any();
    let history = cached.status.as_ref().map(|s| s.history.as_slice()).unwrap_or_default();
    let retained = history.iter().any(|revision| revision.snapshots.contains(&name));
    // The cache follows a deletion before it hands the object over.
    let gone = !ctx.caches.secrets.contains(&namespace, &name);
    (!retained || gone).then(|| ObjectRef::new(service).within(&namespace))
}

impl Reconciler for SecureApiService {
    type Error = Error;
    type Context = Context;
    // Children go with the service through their owner references.
    const PROFILE: Profile = Profile::new(ControllerKind::SecureApiService, "Rollout").debounced(DEBOUNCE);

    fn cache(runtime: &Runtime) -> &Cache<Self> {
        &runtime.caches.secure_api_services
    }

    fn failed(&self, error: &Error, message: &str, now: Time) -> SecureApiServiceStatus {
        status::failed(self, error.reason(), message, now)
    }

    async fn apply(&self, ctx: &Context) -> Result<Recheck, Error> {
        let current = self.status.clone().unwrap_or_default();
        let manager = Self::PROFILE.field_manager();
        // --- validate (pure): what the API server would refuse later, object by object
        crate::workload::names::check(self).map_err(Error::Unbuildable)?;
        trial::check(ctx, self)?;
        // --- resolve: the SecretRefs in use and their Secrets, the live Deployment (read once)
        let world = resolve::resolve(ctx, self).await?;
        let key = index_key(self.namespace().as_deref(), &self.name_any());
        let live_before = world.deployment.as_ref().and_then(revision::revision_of);
        let before = status::Before {
            live: world.deployment.as_ref().and_then(revision::record_of),
            previous: world.deployment.as_ref().and_then(revision::previous_record_of),
            snapshots: ctx.caches.secrets.indexed(&key).into_iter().map(|secret| secret.name).collect(),
        };
        // --- build (pure), then decide how it rolls out: waits, a trial's step, the split
        let mut desired = match &world.secrets {
            Ok(secrets) => {
                let inputs = Inputs::new(self, secrets)?;
                Some(desired::build(&inputs, world.deployment.as_ref(), &current, &ctx.hash_key))
            }
            Err(_) => None,
        };
        let canary_live = world.canary.clone().filter(|canary| is_child_of(canary, self.uid().as_deref()));
        let decision =
            trial::decide(ctx, self, &current, desired.as_mut(), world.deployment.as_ref(), canary_live.as_ref())
                .await?;
        // --- apply what changed; a stalled new revision is rolled back when the spec asks
        let mut applied =
            apply::children(ctx, self, desired.as_ref(), world.deployment, world.canary, &current, &manager).await?;
        if desired.as_ref().is_some_and(|d| status::must_roll_back(self, d, &applied)) {
            apply::roll_back(ctx, self, &mut applied, &manager).await?;
        }
        announce::rollout(ctx, self, desired.as_ref(), &applied, live_before.as_deref()).await;
        if let Some(canary::Plan::Step(trial)) = &decision.plan {
            announce::canary_step(ctx, self, trial, decision.before.as_ref()).await;
        }
        // --- status (pure, from what was applied), then the snapshots it no longer retains
        let unresolved = world.secrets.as_ref().err();
        let mut facts = status::facts(self, &current, unresolved, desired.as_ref(), &applied, before);
        facts.route = applied.route.clone();
        decision.inform(self, desired.as_ref(), &mut facts);
        let next = status::next(self, &facts, now());
        apply::prune_snapshots(ctx, self, &next.history, &applied).await?;
        let first_sync = world.secrets.as_ref().err().is_some_and(|u| u.first_sync);
        if let Some((reason, message)) = status::failure(&next).filter(|_| !first_sync) {
            warn_once(ctx, self, reason, message).await;
        }
        write_status(ctx, self, &current, &next).await?;
        Ok(Recheck::After(decision.next_look(self, RECHECK)))
    }
}
