//! What a GatewayConfig reads from the cluster: the URL of every backend SecureApiService, in
//! its own namespace.

use super::error::Error;
use crate::api::{GatewayConfig, SecureApiService};
use crate::controllers::Context;
use kube::ResourceExt;
use kube::api::Api;
use std::collections::BTreeMap;

/// The backend URL of every `backend.service`, or why one is missing.
pub async fn backends(
    gateway: &GatewayConfig,
    ctx: &Context,
) -> Result<Result<BTreeMap<String, String>, String>, Error> {
    let namespace = gateway.namespace().unwrap_or_default();
    let services: Api<SecureApiService> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut urls = BTreeMap::new();
    for name in gateway.spec.routes.iter().filter_map(|r| r.backend.service.clone()) {
        if urls.contains_key(&name) {
            continue;
        }
        let url = services.get_opt(&name).await?.and_then(|s| s.status?.external_url);
        match url {
            Some(url) => {
                urls.insert(name, url);
            }
            None => return Ok(Err(format!("SecureApiService {name} has no external URL yet (or does not exist)"))),
        }
    }
    Ok(Ok(urls))
}
