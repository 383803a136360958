//! Whether the cluster serves Gateway API HTTPRoutes: asked of discovery when a service names a
//! Gateway, and remembered for a minute, so that installing the Gateway API CRDs is noticed
//! without a request per reconcile.

use crate::workload::http_route::GROUP;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long an answer is trusted.
const TRUSTED: Duration = Duration::from_secs(60);

/// The last answer, and when it came.
#[derive(Default)]
pub struct RouteDiscovery {
    known: Mutex<Option<(Instant, bool)>>,
}

impl RouteDiscovery {
    /// Whether `gateway.networking.k8s.io/v1` serves `httproutes`. A failure to ask is a no,
    /// asked again next time.
    pub async fn served(&self, client: &kube::Client) -> bool {
        if let Some((at, served)) = *self.known.lock().unwrap_or_else(PoisonError::into_inner)
            && at.elapsed() < TRUSTED
        {
            return served;
        }
        let served = match client.list_api_group_resources(&format!("{GROUP}/v1")).await {
            Ok(list) => list.resources.iter().any(|resource| resource.name == "httproutes"),
            Err(kube::Error::Api(status)) if status.code == 404 => false,
            Err(error) => {
                tracing::debug!(%error, "asking whether the cluster serves HTTPRoutes");
                return false;
            }
        };
        *self.known.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), served));
        served
    }
}
