//! Keeps a SecureApiService's `status.externalUrl` — the address its GatewayConfig's backends
//! call — routed to the stand-in in the emulated network: whenever the URL appears or changes,
//! the GCP emulator's gateways send requests for its origin to the stand-in.

use crate::emulator::gcp::GcpEmulator;
use futures::StreamExt;
use kube::Api;
use kube::runtime::{WatchStreamExt as _, watcher};
use secure_api_operator::api::SecureApiService;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running router: follows the service until stopped.
pub struct Router {
    routed: watch::Receiver<Option<String>>,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Router {
    /// Follows `namespace/service` and routes its external URL to `to` on `gcp`.
    pub fn start(client: kube::Client, gcp: GcpEmulator, namespace: &str, service: &str, to: SocketAddr) -> Self {
        let api: Api<SecureApiService> = Api::namespaced(client, namespace);
        let config = watcher::Config::default().fields(&format!("metadata.name={service}"));
        let (sender, routed) = watch::channel(None);
        let shutdown = CancellationToken::new();
        let stopped = shutdown.clone();
        let task = tokio::spawn(async move {
            let mut objects = watcher(api, config).default_backoff().applied_objects().boxed();
            loop {
                let next = tokio::select! {
                    () = stopped.cancelled() => return,
                    next = objects.next() => next,
                };
                let url = match next {
                    Some(Ok(service)) => service.status.and_then(|s| s.external_url),
                    Some(Err(error)) => {
                        tracing::debug!(%error, "stand-in router: watching the service failed; retrying");
                        continue;
                    }
                    None => return,
                };
                let Some(url) = url.filter(|url| sender.borrow().as_ref() != Some(url)) else { continue };
                match gcp.route_backend(&url, to) {
                    Ok(()) => {
                        tracing::info!(%url, %to, "stand-in router: the service's external URL answers from the stand-in");
                        sender.send_replace(Some(url));
                    }
                    Err(error) => tracing::warn!(%url, %error, "stand-in router: cannot route the external URL"),
                }
            }
        });
        Self { routed, shutdown, task }
    }

    /// The external URL routed last, waiting up to `deadline` for the first.
    pub async fn routed(&self, deadline: Duration) -> Result<String, String> {
        let mut routed = self.routed.clone();
        let first = tokio::time::timeout(deadline, routed.wait_for(Option::is_some)).await;
        match first {
            Ok(Ok(url)) => Ok(url.clone().unwrap_or_default()),
            Ok(Err(_)) => Err("the stand-in's router stopped".into()),
            Err(_) => Err(format!("the service had no external URL to route within {} s", deadline.as_secs())),
        }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}
