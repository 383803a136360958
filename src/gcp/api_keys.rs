//! The API Keys v2 client (keys under `projects/P/locations/global`) together with the one
//! Service Usage v1 call keys depend on: enabling a gateway's managed service in the project.
//!
//! Key strings are secret material: `key_string` returns them as [`SecretString`], and nothing
//! here formats one. Ids are checked before they become part of a URL.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::GcpConfig;
use super::api_gateway::Operation;
use super::caller::Caller;
use super::error::{Code, Detail, GcpError};
use super::http::{Call, CallObserver, Executor, Request, Verb, check_endpoint};

const API_KEYS: &str = "apikeys";
const SERVICE_USAGE: &str = "serviceusage";
const DEFAULT_API_KEYS_ENDPOINT: &str = "https://apikeys.googleapis.com";
const DEFAULT_SERVICE_USAGE_ENDPOINT: &str = "https://serviceusage.googleapis.com";

const GET_KEY: &str = "apikeys.keys.get";
const CREATE_KEY: &str = "apikeys.keys.create";
const GET_KEY_STRING: &str = "apikeys.keys.getKeyString";
const DELETE_KEY: &str = "apikeys.keys.delete";
const GET_KEY_OPERATION: &str = "apikeys.operations.get";
const GET_SERVICE: &str = "serviceusage.services.get";
const ENABLE_SERVICE: &str = "serviceusage.services.enable";
const GET_SERVICE_OPERATION: &str = "serviceusage.operations.get";

/// An API key as the API describes it (never its string).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// `projects/P/locations/global/keys/ID`.
    pub name: String,
    /// Set once the key is deleted (it can be undeleted for 30 days).
    #[serde(default)]
    pub delete_time: Option<String>,
    /// Free-form metadata; the operator records a key's owner here.
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// Which API a long-running operation of this client belongs to (their names look alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum KeyApi {
    ApiKeys,
    ServiceUsage,
}

/// The API Keys and Service Usage client. Cheap to clone (one connection pool and set of limits).
#[derive(Clone)]
pub struct ApiKeys {
    inner: Arc<Inner>,
    caller: Caller,
}

struct Inner {
    executor: Executor,
    api_keys: String,
    service_usage: String,
}

#[derive(Deserialize)]
struct ServiceState {
    #[serde(default)]
    state: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyString {
    key_string: SecretString,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NewKey<'a> {
    display_name: &'a str,
    restrictions: Restrictions<'a>,
    annotations: &'a std::collections::BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Restrictions<'a> {
    api_targets: [ApiTarget<'a>; 1],
}

#[derive(Serialize)]
struct ApiTarget<'a> {
    service: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    methods: &'a [String],
}

impl ApiKeys {
    /// Builds the client; initialises authentication unless `config.no_auth` (or a fixed token) is set.
    ///
    /// # Errors
    /// An invalid endpoint override (INVALID_ARGUMENT) or no usable Google credentials (UNAUTHENTICATED).
    pub async fn new(config: GcpConfig, observer: Option<Arc<dyn CallObserver>>) -> Result<Self, GcpError> {
        let endpoint = |given: Option<&str>, setting, default: &str| match given {
            Some(endpoint) => check_endpoint(endpoint, setting),
            None => Ok(default.to_owned()),
        };
        let api_keys = endpoint(config.api_keys_endpoint.as_deref(), "api_keys_endpoint", DEFAULT_API_KEYS_ENDPOINT)?;
        let service_usage = endpoint(
            config.service_usage_endpoint.as_deref(),
            "service_usage_endpoint",
            DEFAULT_SERVICE_USAGE_ENDPOINT,
        )?;
        let executor = Executor::from_config(&config, observer).await?;
        Ok(Self { inner: Arc::new(Inner { executor, api_keys, service_usage }), caller: Caller::Operator })
    }

    /// The same client, calling as `caller`.
    pub fn acting_as(&self, caller: Caller) -> Self {
        Self { inner: Arc::clone(&self.inner), caller }
    }

    /// Whether `service` is enabled in `project`.
    ///
    /// # Errors
    /// An invalid id (INVALID_ARGUMENT, not sent), or the final error after retries.
    pub async fn service_enabled(&self, project: &str, service: &str) -> Result<bool, GcpError> {
        check(GET_SERVICE, &[project, service])?;
        let name = format!("projects/{project}/services/{service}");
        let state: ServiceState = self.send(KeyApi::ServiceUsage, GET_SERVICE, &name, &name, Request::GET).await?;
        Ok(state.state == "ENABLED")
    }

    /// Starts enabling `service` in `project` (enabling an enabled service is a no-op).
    ///
    /// # Errors
    /// As [`Self::service_enabled`].
    pub async fn enable_service(&self, project: &str, service: &str) -> Result<Operation, GcpError> {
        check(ENABLE_SERVICE, &[project, service])?;
        let name = format!("projects/{project}/services/{service}");
        let request = Request::json(Verb::Post, Bytes::from_static(b"{}"));
        self.send(KeyApi::ServiceUsage, ENABLE_SERVICE, &name, &format!("{name}:enable"), request).await
    }

    /// The key `key_id` of `project`, deleted or not; `None` when there is none.
    ///
    /// # Errors
    /// As [`Self::service_enabled`].
    pub async fn get_key(&self, project: &str, key_id: &str) -> Result<Option<ApiKey>, GcpError> {
        check(GET_KEY, &[project, key_id])?;
        let name = key_name(project, key_id);
        absent_if_not_found(self.send(KeyApi::ApiKeys, GET_KEY, &name, &name, Request::GET).await)
    }

    /// Starts creating the key `key_id`, restricted to the target's service (and to its methods,
    /// when any), with `annotations`.
    ///
    /// # Errors
    /// As [`Self::service_enabled`]; ALREADY_EXISTS when a key has this id.
    pub async fn create_key(
        &self,
        project: &str,
        key_id: &str,
        display_name: &str,
        target: (&str, &[String]),
        annotations: &std::collections::BTreeMap<String, String>,
    ) -> Result<Operation, GcpError> {
        check(CREATE_KEY, &[project, key_id])?;
        let (service, methods) = target;
        let restrictions = Restrictions { api_targets: [ApiTarget { service, methods }] };
        let body = NewKey { display_name, restrictions, annotations };
        let json = serde_json::to_vec(&body).map_err(|_| invalid(CREATE_KEY, key_id))?;
        let name = key_name(project, key_id);
        let path = format!("projects/{project}/locations/global/keys?keyId={key_id}");
        self.send(KeyApi::ApiKeys, CREATE_KEY, &name, &path, Request::json(Verb::Post, Bytes::from(json))).await
    }

    /// The string of key `key_id`: the secret callers present.
    ///
    /// # Errors
    /// As [`Self::service_enabled`]; NOT_FOUND when the key does not exist.
    pub async fn key_string(&self, project: &str, key_id: &str) -> Result<SecretString, GcpError> {
        check(GET_KEY_STRING, &[project, key_id])?;
        let name = key_name(project, key_id);
        let path = format!("{name}/keyString");
        let answer: KeyString = self.send(KeyApi::ApiKeys, GET_KEY_STRING, &name, &path, Request::GET).await?;
        Ok(answer.key_string)
    }

    /// Starts deleting the key `key_id` (restorable for 30 days).
    ///
    /// # Errors
    /// As [`Self::service_enabled`]; NOT_FOUND when the key does not exist.
    pub async fn delete_key(&self, project: &str, key_id: &str) -> Result<Operation, GcpError> {
        check(DELETE_KEY, &[project, key_id])?;
        let name = key_name(project, key_id);
        let request = Request { verb: Verb::Delete, json: None, form: false };
        self.send(KeyApi::ApiKeys, DELETE_KEY, &name, &name, request).await
    }

    /// The current state of an operation `operations/ID` of `api`.
    ///
    /// # Errors
    /// As [`Self::service_enabled`]; a malformed name is INVALID_ARGUMENT (not sent).
    pub async fn get_operation(&self, api: KeyApi, name: &str) -> Result<Operation, GcpError> {
        let method = match api {
            KeyApi::ApiKeys => GET_KEY_OPERATION,
            KeyApi::ServiceUsage => GET_SERVICE_OPERATION,
        };
        match name.split_once('/') {
            Some(("operations", id)) if is_segment(id) => {}
            _ => return Err(invalid(method, name)),
        }
        self.send(api, method, name, name, Request::GET).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        api: KeyApi,
        method: &'static str,
        resource: &str,
        path: &str,
        request: Request,
    ) -> Result<T, GcpError> {
        let (service, url) = match api {
            KeyApi::ApiKeys => (API_KEYS, format!("{}/v2/{path}", self.inner.api_keys)),
            KeyApi::ServiceUsage => (SERVICE_USAGE, format!("{}/v1/{path}", self.inner.service_usage)),
        };
        let call = Call { service, method, resource, url: &url, caller: &self.caller };
        let success = self.inner.executor.execute(&call, &request).await?;
        // Errors never quote the body: it may hold a key string.
        serde_json::from_slice(&success.body).map_err(|_| GcpError {
            http_code: Some(success.http_code),
            ..GcpError::new(method, resource, Code::Unknown, Some(Detail::MalformedResponse))
        })
    }
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeys")
            .field("api_keys", &self.inner.api_keys)
            .field("service_usage", &self.inner.service_usage)
            .finish_non_exhaustive()
    }
}

fn key_name(project: &str, key_id: &str) -> String {
    format!("projects/{project}/locations/global/keys/{key_id}")
}

/// 1–128 of `A-Z a-z 0-9 . _ -`, not `.` or `..`: nothing that changes the path or query.
fn is_segment(value: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    (1..=128).contains(&value.len()) && value.bytes().all(allowed) && value != "." && value != ".."
}

fn check(method: &'static str, ids: &[&str]) -> Result<(), GcpError> {
    match ids.iter().find(|id| !is_segment(id)) {
        Some(bad) => Err(invalid(method, bad)),
        None => Ok(()),
    }
}

fn invalid(method: &'static str, input: &str) -> GcpError {
    GcpError::new(method, input.escape_default().to_string(), Code::InvalidArgument, Some(Detail::InvalidRequest))
}

fn absent_if_not_found<T>(result: Result<T, GcpError>) -> Result<Option<T>, GcpError> {
    match result {
        Ok(found) => Ok(Some(found)),
        Err(error) if error.http_code == Some(404) && error.status == Code::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::{ApiKeys, Code, GcpConfig, KeyApi};

    #[tokio::test]
    async fn ids_and_operation_names_are_checked_before_sending() -> Result<(), super::GcpError> {
        // Nothing listens on port 9: a request that went out would fail with UNAVAILABLE instead.
        let config = GcpConfig {
            no_auth: true,
            api_keys_endpoint: Some("http://127.0.0.1:9".into()),
            service_usage_endpoint: Some("http://127.0.0.1:9".into()),
            ..GcpConfig::default()
        };
        let client = ApiKeys::new(config, None).await?;
        for error in [
            client.get_key("p", "../x").await.err(),
            client.create_key("p", "a?b", "d", ("s", &[]), &Default::default()).await.err(),
            client.get_operation(KeyApi::ApiKeys, "operations/a/../../x").await.err(),
            client.get_operation(KeyApi::ServiceUsage, "projects/p").await.err(),
        ] {
            assert_eq!(error.map(|e| e.status), Some(Code::InvalidArgument));
        }
        assert_eq!(
            format!("{client:?}"),
            r#"ApiKeys { api_keys: "http://127.0.0.1:9", service_usage: "http://127.0.0.1:9", .. }"#
        );
        Ok(())
    }
}
