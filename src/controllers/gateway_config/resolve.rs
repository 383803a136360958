//! What a GatewayConfig reads from the cluster: the URL of every backend SecureApiService, in
//! its own namespace.

use super::error::Error;
use crate::api::GatewayConfig;
use crate::controllers::Context;
use kube::ResourceExt;
use std::collections::BTreeMap;

/// The backend URL of every `backend.service`, or why one is missing.
pub async fn backends(
    gateway: &GatewayConfig,
    ctx: &Context,
) -> Result<Result<BTreeMap<String, String>, String>, Error> {
    let namespace = gateway.namespace().unwrap_or_default();
    let mut urls = BTreeMap::new();
    for name in gateway.spec.routes.iter().filter_map(|r| r.backend.service.clone()) {
        if urls.contains_key(&name) {
            continue;
        }
        // From the cache: a service appearing or changing triggers this reconcile.
        let url = ctx.caches.secure_api_services.get(&namespace, &name).and_then(|s| s.status.clone()?.external_url);
        match url {
            Some(url) => {
                urls.insert(name, url);
            }
            None => return Ok(Err(format!("SecureApiService {name} has no external URL yet (or does not exist)"))),
        }
    }
    Ok(Ok(urls))
}
