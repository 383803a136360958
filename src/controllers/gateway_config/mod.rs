//! The GatewayConfig controller: routes in Kubernetes, Google Cloud API Gateway kept in line.
//!
//! resolve backends (SecureApiService URLs) → plan (pure: the Swagger 2.0 document and the config
//! id `<apiId>-<hash>`) → provision one step (see [`provision`]: observe → decide, pure, with the
//! ownership checks → act) → status (pure, named condition builders). Long-running operations are remembered in status and polled on later reconciles.
//! Once the gateway serves, its API keys (see [`api_keys`], pure parts in [`keys`]).
//! Deletion (finalizer): API keys, gateway, then configs, then the API, unless
//! `deletionPolicy: Retain`. What a status write changed is announced as Normal Events
//! ([`announce`]).

pub mod announce;
pub mod api_keys;
pub mod decide;
pub mod error;
pub mod keys;
pub mod observe;
pub mod plan;
pub mod provision;
pub mod resolve;
pub mod status;

use super::Context;
use crate::api::{DeletionPolicy, GatewayConfig, GatewayConfigStatus};
use crate::gcp::{ApiGateway, ApiKeys};
use crate::identity::awaited;
use crate::metrics::Controller as ControllerKind;
use crate::runtime::caches::Cache;
use crate::runtime::caches::index_key;
use crate::runtime::recheck::Recheck;
use crate::runtime::skeleton::{self, Profile, Reconciler, write_status};
use crate::runtime::{Runtime, now, object_key};
use error::{Error, POLL};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The safety-net re-check of a Ready gateway.
const RECHECK: Duration = Duration::from_secs(300);
/// The re-check while a backend has no URL yet.
const BACKEND_RECHECK: Duration = Duration::from_secs(30);

/// The controller until `shutdown` resolves. Subscribes to the caches at once: call it before
/// they run.
pub fn run(ctx: Arc<Context>, shutdown: CancellationToken) -> impl Future<Output = ()> {
    let users = ctx.clone();
    // A backend service's URL appearing or changing re-renders the gateways that use it.
    let services = ctx.caches.secure_api_services.subscribe();
    let controller = skeleton::controller_of::<GatewayConfig>(&ctx).watches_shared_stream(services, move |service| {
        users.caches.gateway_configs.indexed(&index_key(service.namespace().as_deref(), &service.name_any()))
    });
    skeleton::run(controller, ctx, shutdown)
}

/// Writes the status, then announces what it changed (Normal Events, see [`announce`]).
async fn write(
    ctx: &Context,
    gateway: &GatewayConfig,
    current: &GatewayConfigStatus,
    next: &GatewayConfigStatus,
) -> Result<(), kube::Error> {
    write_status(ctx, gateway, current, next).await?;
    announce::transitions(ctx, gateway, current, next).await;
    Ok(())
}

/// The API Gateway client, calling with the identity this GatewayConfig may use.
async fn client(ctx: &Context, gateway: &GatewayConfig) -> Result<ApiGateway, Error> {
    let client = ctx.api_gateway.as_ref().ok_or(Error::NoClient)?;
    let namespace = gateway.namespace().unwrap_or_default();
    let caller = ctx
        .identities
        .caller(&<GatewayConfig as kube::Resource>::kind(&()), &namespace, gateway.spec.service_account_name.as_deref())
        .await?;
    Ok(client.acting_as(caller))
}

/// The API Keys client, calling with the same identity.
async fn keys_client(ctx: &Context, gateway: &GatewayConfig) -> Result<ApiKeys, Error> {
    let client = ctx.api_keys.as_ref().ok_or(Error::NoClient)?;
    let namespace = gateway.namespace().unwrap_or_default();
    let caller = ctx
        .identities
        .caller(&<GatewayConfig as kube::Resource>::kind(&()), &namespace, gateway.spec.service_account_name.as_deref())
        .await?;
    Ok(client.acting_as(caller))
}

impl Reconciler for GatewayConfig {
    type Error = Error;
    type Context = Context;
    const PROFILE: Profile = Profile::new(ControllerKind::GatewayConfig, "Provision").finalized();

    fn failed(&self, error: &Error, message: &str, now: Time) -> GatewayConfigStatus {
        use skeleton::Failure;
        let failure = status::Failed {
            reason: error.reason(),
            message,
            operation_failed: matches!(error, Error::OperationFailed { .. }),
            keys_failed: error.is_api_keys(),
            key_operation_failed: matches!(error, Error::KeyOperationFailed { .. }),
        };
        status::failed(self, &failure, &now)
    }

    fn cache(runtime: &Runtime) -> &Cache<Self> {
        &runtime.caches.gateway_configs
    }

    /// A ServiceAccount missing before the first provisioning step (ids in status say one ran).
    fn awaited(&self, error: &Error, grace: Duration, now: &Time) -> Option<String> {
        use skeleton::Failure;
        let (conditions, provisioned) =
            self.status.as_ref().map_or((&[][..], false), |s| (&s.conditions[..], s.api_id.is_some()));
        awaited::awaited_message(error, error.reason(), conditions, provisioned, grace, now)
    }

    async fn apply(&self, ctx: &Context) -> Result<Recheck, Error> {
        let current = self.status.clone().unwrap_or_default();
        // --- resolve: backend URLs
        let urls = match resolve::backends(self, ctx).await? {
            Ok(urls) => urls,
            Err(why) => {
                write(ctx, self, &current, &status::backends_unresolved(self, &current, why, &now())).await?;
                return Ok(Recheck::After(BACKEND_RECHECK));
            }
        };
        // --- plan (pure)
        let plan = plan::plan(self, ctx.settings.gcp_project.as_deref(), &urls)?;
        // --- provision as this object's identity: finish the pending operation, then the next step
        let client = &client(ctx, self).await?;
        if provision::poll_pending(client, &current).await?.is_some() {
            return Ok(Recheck::After(POLL));
        }
        let mut next = status::operation_done(&current);
        let step = provision::advance(client, &plan, &mut next).await?;
        if matches!(step, provision::Step::Done { .. }) {
            provision::prune_configs(client, &plan, &next).await?;
        }
        let now = now();
        let mut next = status::after_step(self, &next, &plan, &step, &now);
        let provision::Step::Done { managed_service, .. } = &step else {
            write(ctx, self, &current, &next).await?;
            return Ok(Recheck::After(POLL));
        };
        // --- API keys, once the gateway serves
        let keys_client = keys_client(ctx, self).await?;
        let keys = api_keys::Keys {
            client: &keys_client,
            project: &plan.project,
            gateway_id: &plan.gateway_id,
            managed_service,
        };
        let keys_step = match api_keys::advance(ctx, self, &keys, &mut next, &now).await {
            Ok(step) => step,
            Err(error) => {
                // What this pass did (a key recorded, a service enabled) is kept.
                write(ctx, self, &current, &next).await?;
                return Err(error);
            }
        };
        // --- status
        let next = status::with_keys(self, next, &keys_step, &now);
        write(ctx, self, &current, &next).await?;
        Ok(Recheck::After(match keys_step {
            api_keys::KeysStep::Waiting { .. } => POLL,
            api_keys::KeysStep::Ready { next_change: Some(due), .. } => due.clamp(POLL, RECHECK),
            _ => RECHECK,
        }))
    }

    /// Deletes the gateway, then our configs, then the API — each after the previous step's
    /// operation finished — unless the policy is Retain.
    async fn cleanup(&self, ctx: &Context) -> Result<Recheck, Error> {
        ctx.memory.forget(&object_key(self));
        if self.spec.deletion_policy == DeletionPolicy::Retain {
            return Ok(Recheck::OnChange);
        }
        let names = plan::names(self, ctx.settings.gcp_project.as_deref())?;
        let current = self.status.clone().unwrap_or_default();
        if !current.api_keys.is_empty() || !current.retired_api_keys.is_empty() {
            let keys = keys_client(ctx, self).await?;
            let ids =
                current.api_keys.iter().map(|k| &k.key_id).chain(current.retired_api_keys.iter().map(|k| &k.key_id));
            for key_id in ids {
                api_keys::delete_key(&keys, &names.project, key_id, self).await?;
            }
            let next = GatewayConfigStatus { api_keys: Vec::new(), retired_api_keys: Vec::new(), ..current.clone() };
            write_status(ctx, self, &current, &next).await?;
            return Err(Error::Waiting("the API keys' deletion".into()));
        }
        let client = &client(ctx, self).await?;
        if provision::poll_pending(client, &current).await?.is_some() {
            return Err(Error::Waiting("a deletion operation".into()));
        }
        let owner = plan::Owner::of(self);
        let Some(operation) = provision::delete_step(client, &names, &owner).await? else {
            return Ok(Recheck::OnChange);
        };
        let next = GatewayConfigStatus { pending_operation: Some(operation.name.clone()), ..current.clone() };
        write_status(ctx, self, &current, &next).await?;
        Err(Error::Waiting(operation.name))
    }
}
