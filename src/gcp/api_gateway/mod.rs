//! The Google Cloud API Gateway v1 client: APIs and API configs (under `locations/global`),
//! gateways (under a region), and the long-running operations that every write returns.
//!
//! Reads are retried on transient errors; writes only where the request surely was not applied
//! (see the executor). Ids are checked before they become part of a URL.

mod model;
mod request;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::GcpConfig;
use super::caller::Caller;
use super::error::{Code, GcpError};
use super::http::{Call, CallObserver, Executor, check_endpoint};
use model::{ConfigPage, decode, malformed};
use request::{ConfigSpec, Planned};

pub use model::{Api, ApiConfig, Gateway, Operation, OperationError};

const SERVICE: &str = "apigateway";
const DEFAULT_ENDPOINT: &str = "https://apigateway.googleapis.com";
/// Pages followed by `list_configs` before giving up on a server that never ends.
const MAX_PAGES: usize = 100;

/// The API Gateway client. Cheap to clone (shares one connection pool and one set of limits).
#[derive(Clone)]
pub struct ApiGateway {
    inner: Arc<Inner>,
    caller: Caller,
}

struct Inner {
    executor: Executor,
    endpoint: String,
}

impl ApiGateway {
    /// Builds the client; initialises authentication unless `config.no_auth` (or a fixed token) is set.
    ///
    /// # Errors
    /// An invalid `api_gateway_endpoint` (INVALID_ARGUMENT) or no usable Google credentials (UNAUTHENTICATED).
    pub async fn new(config: GcpConfig, observer: Option<Arc<dyn CallObserver>>) -> Result<Self, GcpError> {
        let endpoint = match config.api_gateway_endpoint.as_deref() {
            Some(endpoint) => check_endpoint(endpoint, "api_gateway_endpoint")?,
            None => DEFAULT_ENDPOINT.to_owned(),
        };
        let executor = Executor::from_config(&config, observer).await?;
        Ok(Self { inner: Arc::new(Inner { executor, endpoint }), caller: Caller::Operator })
    }

    /// The same client, calling as `caller` (the same connection pool and limits).
    pub fn acting_as(&self, caller: Caller) -> Self {
        Self { inner: Arc::clone(&self.inner), caller }
    }

    /// The API `projects/{project}/locations/global/apis/{api_id}`; `None` when it does not exist.
    ///
    /// # Errors
    /// An invalid id (INVALID_ARGUMENT, not sent), or the final error after retries.
    pub async fn get_api(&self, project: &str, api_id: &str) -> Result<Option<Api>, GcpError> {
        self.find(&request::get_api(project, api_id)?).await
    }

    /// Starts creating the API `api_id` with a display name and labels.
    ///
    /// # Errors
    /// As [`Self::get_api`]; ALREADY_EXISTS when the API exists.
    pub async fn create_api(
        &self,
        project: &str,
        api_id: &str,
        display_name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Operation, GcpError> {
        self.fetch(&request::create_api(project, api_id, display_name, labels)?).await
    }

    /// Starts deleting the API `api_id` (the server refuses while it has configs).
    ///
    /// # Errors
    /// As [`Self::get_api`]; NOT_FOUND when the API does not exist.
    pub async fn delete_api(&self, project: &str, api_id: &str) -> Result<Operation, GcpError> {
        self.fetch(&request::delete_api(project, api_id)?).await
    }

    /// The API config `config_id` of `api_id`; `None` when it does not exist.
    ///
    /// # Errors
    /// As [`Self::get_api`].
    pub async fn get_config(
        &self,
        project: &str,
        api_id: &str,
        config_id: &str,
    ) -> Result<Option<ApiConfig>, GcpError> {
        self.find(&request::get_config(project, api_id, config_id)?).await
    }

    /// Every API config of `api_id`, following `nextPageToken`.
    ///
    /// # Errors
    /// As [`Self::get_api`]; UNKNOWN (malformed response) when the server repeats a page token or
    /// sends more than 100 pages.
    pub async fn list_configs(&self, project: &str, api_id: &str) -> Result<Vec<ApiConfig>, GcpError> {
        let mut configs = Vec::new();
        let mut token = String::new();
        for _ in 0..MAX_PAGES {
            let planned = request::list_configs(project, api_id, &token)?;
            let page: ConfigPage = self.fetch(&planned).await?;
            configs.extend(page.api_configs);
            match next_token(&planned, &token, page.next_page_token)? {
                Some(next) => token = next,
                None => return Ok(configs),
            }
        }
        Err(malformed(request::LIST_CONFIGS, &request::api_name(project, api_id), None))
    }

    /// Starts creating the API config `config_id` from one OpenAPI document (sent as base64 under
    /// the file name `document_path`), optionally run as `gateway_service_account`.
    ///
    /// # Errors
    /// As [`Self::get_api`]; ALREADY_EXISTS when the config exists.
    #[allow(clippy::too_many_arguments, reason = "the API's own parameters, kept flat for callers")]
    pub async fn create_config(
        &self,
        project: &str,
        api_id: &str,
        config_id: &str,
        document_path: &str,
        document: &[u8],
        gateway_service_account: Option<&str>,
        labels: &BTreeMap<String, String>,
    ) -> Result<Operation, GcpError> {
        let spec = ConfigSpec { document_path, document, gateway_service_account, labels };
        self.fetch(&request::create_config(project, api_id, config_id, &spec)?).await
    }

    /// Starts deleting the API config `config_id` (the server refuses while a gateway serves it).
    ///
    /// # Errors
    /// As [`Self::get_api`].
    pub async fn delete_config(&self, project: &str, api_id: &str, config_id: &str) -> Result<Operation, GcpError> {
        self.fetch(&request::delete_config(project, api_id, config_id)?).await
    }

    /// The gateway `projects/{project}/locations/{location}/gateways/{gateway_id}`; `None` when
    /// it does not exist.
    ///
    /// # Errors
    /// As [`Self::get_api`].
    pub async fn get_gateway(
        &self,
        project: &str,
        location: &str,
        gateway_id: &str,
    ) -> Result<Option<Gateway>, GcpError> {
        self.find(&request::get_gateway(project, location, gateway_id)?).await
    }

    /// Starts creating a gateway serving `api_config` (a full config name,
    /// `projects/*/locations/global/apis/*/configs/*`).
    ///
    /// # Errors
    /// As [`Self::get_api`]; a malformed `api_config` is INVALID_ARGUMENT (not sent).
    pub async fn create_gateway(
        &self,
        project: &str,
        location: &str,
        gateway_id: &str,
        api_config: &str,
        display_name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Operation, GcpError> {
        let planned = request::create_gateway(project, location, gateway_id, api_config, display_name, labels)?;
        self.fetch(&planned).await
    }

    /// Starts moving a gateway to `api_config` (full config name): PATCH with `updateMask=apiConfig`.
    ///
    /// # Errors
    /// As [`Self::create_gateway`].
    pub async fn update_gateway_config(
        &self,
        project: &str,
        location: &str,
        gateway_id: &str,
        api_config: &str,
    ) -> Result<Operation, GcpError> {
        self.fetch(&request::update_gateway_config(project, location, gateway_id, api_config)?).await
    }

    /// Starts deleting a gateway.
    ///
    /// # Errors
    /// As [`Self::get_api`].
    pub async fn delete_gateway(&self, project: &str, location: &str, gateway_id: &str) -> Result<Operation, GcpError> {
        self.fetch(&request::delete_gateway(project, location, gateway_id)?).await
    }

    /// The current state of an operation, by the name a write returned
    /// (`projects/*/locations/*/operations/*`; anything else is INVALID_ARGUMENT, not sent).
    ///
    /// # Errors
    /// As [`Self::get_api`]; NOT_FOUND when the operation is unknown (or expired).
    pub async fn get_operation(&self, name: &str) -> Result<Operation, GcpError> {
        self.fetch(&request::get_operation(name)?).await
    }

    /// Sends a planned call and decodes its answer.
    async fn fetch<T: DeserializeOwned>(&self, planned: &Planned) -> Result<T, GcpError> {
        let url = format!("{}{}", self.inner.endpoint, planned.path);
        let call = Call {
            service: SERVICE,
            method: planned.method,
            resource: &planned.resource,
            url: &url,
            caller: &self.caller,
        };
        let success = self.inner.executor.execute(&call, &planned.request).await?;
        decode(planned.method, &planned.resource, success.http_code, &success.body)
    }

    /// Like [`Self::fetch`], with HTTP 404 as `None`.
    async fn find<T: DeserializeOwned>(&self, planned: &Planned) -> Result<Option<T>, GcpError> {
        absent_if_not_found(self.fetch(planned).await)
    }
}

impl fmt::Debug for ApiGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiGateway").field("endpoint", &self.inner.endpoint).finish_non_exhaustive()
    }
}

/// A 404 answer means "no such resource"; every other error stays one.
fn absent_if_not_found<T>(result: Result<T, GcpError>) -> Result<Option<T>, GcpError> {
    match result {
        Ok(found) => Ok(Some(found)),
        Err(error) if error.http_code == Some(404) && error.status == Code::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// The token of the next page, `None` after the last one; a token equal to the one just used
/// would loop forever and is a malformed answer.
fn next_token(planned: &Planned, used: &str, next: String) -> Result<Option<String>, GcpError> {
    if next.is_empty() {
        Ok(None)
    } else if next == used {
        Err(malformed(planned.method, &planned.resource, Some(200)))
    } else {
        Ok(Some(next))
    }
}

#[cfg(test)]
mod tests {
    use super::{ApiGateway, Code, GcpConfig, GcpError, absent_if_not_found, next_token, request};
    use crate::gcp::Detail;

    #[test]
    fn not_found_is_none_and_other_errors_stay() {
        let not_found = GcpError::from_response("m", "r", 404, br#"{"error":{"status":"NOT_FOUND"}}"#);
        assert_eq!(absent_if_not_found::<u8>(Err(not_found)), Ok(None));
        assert_eq!(absent_if_not_found(Ok(7)), Ok(Some(7)));
        let denied = GcpError::from_response("m", "r", 403, b"");
        assert_eq!(absent_if_not_found::<u8>(Err(denied.clone())), Err(denied));
        // A 404 whose body claims another status is not an absence.
        let odd = GcpError::from_response("m", "r", 404, br#"{"error":{"status":"PERMISSION_DENIED"}}"#);
        assert!(absent_if_not_found::<u8>(Err(odd)).is_err());
    }

    #[test]
    fn paging_stops_on_empty_tokens_and_rejects_repeats() -> Result<(), GcpError> {
        let planned = request::list_configs("p", "a", "t1")?;
        assert_eq!(next_token(&planned, "", String::new()), Ok(None));
        assert_eq!(next_token(&planned, "", "t1".into()), Ok(Some("t1".to_owned())));
        assert_eq!(next_token(&planned, "t1", "t2".into()), Ok(Some("t2".to_owned())));
        let repeated = next_token(&planned, "t1", "t1".into()).err();
        assert_eq!(repeated.map(|e| (e.status, e.detail)), Some((Code::Unknown, Some(Detail::MalformedResponse))));
        Ok(())
    }

    #[tokio::test]
    async fn endpoint_defaults_and_overrides() -> Result<(), GcpError> {
        let default = ApiGateway::new(GcpConfig { no_auth: true, ..GcpConfig::default() }, None).await?;
        assert_eq!(default.inner.endpoint, "https://apigateway.googleapis.com");
        let config = GcpConfig {
            no_auth: true,
            api_gateway_endpoint: Some("http://127.0.0.1:9/".into()),
            ..GcpConfig::default()
        };
        let emulator = ApiGateway::new(config, None).await?;
        assert_eq!(format!("{emulator:?}"), r#"ApiGateway { endpoint: "http://127.0.0.1:9", .. }"#);
        let bad = GcpConfig { no_auth: true, api_gateway_endpoint: Some("ftp://x".into()), ..GcpConfig::default() };
        let error = ApiGateway::new(bad, None).await.err();
        assert_eq!(
            error.map(|e| e.to_string()).as_deref(),
            Some("config api_gateway_endpoint: INVALID_ARGUMENT (invalid request)")
        );
        Ok(())
    }

    #[tokio::test]
    async fn invalid_ids_are_rejected_before_sending() -> Result<(), GcpError> {
        // Nothing listens on port 9: a request that went out would fail with UNAVAILABLE instead.
        let config = GcpConfig {
            no_auth: true,
            api_gateway_endpoint: Some("http://127.0.0.1:9".into()),
            ..GcpConfig::default()
        };
        let client = ApiGateway::new(config, None).await?;
        let error = client.get_api("p", "../x").await.err();
        assert_eq!(error.map(|e| (e.status, e.detail)), Some((Code::InvalidArgument, Some(Detail::InvalidRequest))));
        let error = client.get_operation("projects/p/locations/global/operations/o?x=1").await.err();
        assert_eq!(error.map(|e| e.status), Some(Code::InvalidArgument));
        Ok(())
    }
}
