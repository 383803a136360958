//! The three controllers, one folder per kind, and the context they share: the runtime
//! (`crate::runtime`), the Google Cloud clients, the identity policy, notifications, and each
//! kind's own memory.

pub mod gateway_config;
pub mod secret_ref;
pub mod secure_api_service;

use crate::gcp::{ApiGateway, ApiKeys};
use crate::identity::Identities;
use crate::notifications::Notifications;
use crate::prometheus::Prometheus;
use crate::provider::SecretProvider;
use crate::runtime::Runtime;
use std::ops::Deref;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Everything a reconcile needs: the shared [`Runtime`] (reached through `Deref`) and what only
/// our kinds use.
pub struct Context {
    pub runtime: Arc<Runtime>,
    pub secrets: Arc<dyn SecretProvider>,
    /// API Gateway, when configured (GatewayConfigs wait with a clear condition otherwise).
    pub api_gateway: Option<ApiGateway>,
    /// API Keys and Service Usage, for GatewayConfigs' `spec.apiKeys` (configured with API Gateway).
    pub api_keys: Option<ApiKeys>,
    /// Whose Google identity each object's calls use, and the tokens for it.
    pub identities: Identities,
    /// Secret Manager's Pub/Sub notifications, when subscriptions are configured.
    pub notifications: Option<Arc<Notifications>>,
    /// What only the SecretRef controller remembers.
    pub secret_refs: secret_ref::Memory,
    /// The Prometheus servers canary gates may query.
    pub prometheus: Prometheus,
    /// Whether the cluster serves Gateway API HTTPRoutes.
    pub http_routes: secure_api_service::route::RouteDiscovery,
}

/// The Google Cloud services the controllers call.
pub struct GoogleCloud {
    pub secrets: Arc<dyn SecretProvider>,
    /// API Gateway with API Keys, when configured.
    pub gateway: Option<(ApiGateway, ApiKeys)>,
    /// Secret Manager's Pub/Sub notifications, when subscriptions are configured.
    pub notifications: Option<Notifications>,
}

impl Deref for Context {
    type Target = Runtime;

    fn deref(&self) -> &Runtime {
        &self.runtime
    }
}

impl Context {
    pub fn new(runtime: Runtime, google: GoogleCloud, identities: Identities) -> Arc<Self> {
        let GoogleCloud { secrets, gateway, notifications } = google;
        let prometheus = Prometheus::new(runtime.settings.prometheus_allowed_url_prefixes.clone());
        Arc::new(Self {
            runtime: Arc::new(runtime),
            secrets,
            api_gateway: gateway.as_ref().map(|(gateway, _)| gateway.clone()),
            api_keys: gateway.map(|(_, keys)| keys),
            identities,
            notifications: notifications.map(Arc::new),
            secret_refs: secret_ref::Memory::default(),
            prometheus,
            http_routes: Default::default(),
        })
    }

    /// Waits until every watch the reconciles read has listed once: the caches, and the
    /// namespaces that may use the operator's identity.
    pub async fn listed(&self) {
        tokio::join!(self.caches.listed(), self.identities.operator_namespaces.listed());
    }
}

/// Runs the three controllers and the watches they share until `shutdown` fires and they have
/// drained, or `Settings::drain` has passed since (then the reconciles still in flight are
/// dropped: each is safe to redo, and the next start or leader does).
///
/// The controllers start only once every watch the reconciles read has listed
/// ([`Context::listed`]); no reconcile ever waits for a list.
pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken) {
    // `secureapi_objects` counts what the caches hold, from the moment they fill.
    let shard = ctx.settings.shard;
    ctx.metrics.count_objects(crate::metrics::objects::Watched {
        secret_refs: ctx.caches.secret_refs.store(),
        secure_api_services: ctx.caches.secure_api_services.store(),
        gateway_configs: ctx.caches.gateway_configs.store(),
        owns: Arc::new(move |meta| {
            shard.owns_key(meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default())
        }),
    });
    // Every controller subscribes to the caches before the watches start.
    let secret_refs = secret_ref::run(ctx.clone(), shutdown.clone());
    let services = secure_api_service::run(ctx.clone(), shutdown.clone());
    let gateways = gateway_config::run(ctx.clone(), shutdown.clone());
    let controllers = async {
        tokio::select! {
            // Stopped before the lists were in: nothing was reconciled, nothing to drain.
            () = shutdown.cancelled() => return,
            () = ctx.listed() => tracing::info!("every watch has listed; the controllers start"),
        }
        tokio::join!(secret_refs, services, gateways);
    };
    let abandoned = async {
        shutdown.cancelled().await;
        tokio::time::sleep(ctx.settings.drain).await;
    };
    let bounded = async {
        tokio::select! {
            () = controllers => {}
            () = abandoned => tracing::warn!(
                drain_seconds = ctx.settings.drain.as_secs_f64(),
                "reconciles still in flight after the shutdown grace are abandoned; they run again at the next start"
            ),
        }
    };
    // The ServiceAccount watch drops cached tokens whose ServiceAccount changed (opt-in withdrawn).
    let accounts = ctx.identities.tokens.watch_accounts(&ctx.settings.namespaces, shutdown.clone());
    tokio::join!(bounded, ctx.caches.run(shutdown.clone()), accounts);
}
