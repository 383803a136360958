//! What Google Cloud holds under a GatewayConfig's ids, read and nothing else: the API, the
//! config the plan names, the gateway — and for deletion, the API's configs.

use super::error::Error;
use super::plan::{Names, Plan};
use crate::gcp::{Api, ApiConfig, ApiGateway, Gateway};

/// The resources under the plan's ids, as they are now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    pub api: Option<Api>,
    /// The config the plan names (only looked for in an API that exists).
    pub config: Option<ApiConfig>,
    pub gateway: Option<Gateway>,
}

/// Reads the API, the planned config and the gateway (three reads in the steady state).
pub async fn observe(client: &ApiGateway, plan: &Plan) -> Result<Observed, Error> {
    let api = client.get_api(&plan.project, &plan.api_id).await?;
    let config = match &api {
        Some(_) => client.get_config(&plan.project, &plan.api_id, &plan.config_id).await?,
        None => None,
    };
    let gateway = client.get_gateway(&plan.project, &plan.location, &plan.gateway_id).await?;
    Ok(Observed { api, config, gateway })
}

/// The resources a deletion works through.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedForDeletion {
    pub gateway: Option<Gateway>,
    pub api: Option<Api>,
    /// Every config of the API (ours or not: the API can go only once it has none).
    pub configs: Vec<ApiConfig>,
}

/// Reads the gateway, the API and its configs.
pub async fn observe_for_deletion(client: &ApiGateway, names: &Names) -> Result<ObservedForDeletion, Error> {
    let gateway = client.get_gateway(&names.project, &names.location, &names.gateway_id).await?;
    let api = client.get_api(&names.project, &names.api_id).await?;
    let configs = match &api {
        Some(_) => client.list_configs(&names.project, &names.api_id).await?,
        None => Vec::new(),
    };
    Ok(ObservedForDeletion { gateway, api, configs })
}
