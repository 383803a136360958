//! API Gateway's data plane: a request whose `Host` (without port) is an `ACTIVE` gateway's
//! `defaultHostname` is served by that gateway, enforcing its `ACTIVE` config's OpenAPI 2.0
//! documents as ESPv2 does, in ESPv2's order and with its answers (`{"code":N,"message":...}`):
//!
//! 1. route and method ([`routing`]): 404 `The current request is not defined by this API.`,
//!    405 `The current request is matched to the defined url template ... not allowed`;
//! 2. JWT, when an oauth2 provider is required ([`auth`]): 401 `Jwt is missing`,
//!    `Jwt issuer is not configured`, `Jwt verification fails`, `Jwt is expired`,
//!    `Jwks remote fetch is failed`; 403 `Audiences in Jwt are not allowed`;
//! 3. API key, when an `apiKey` definition is required: 401 `UNAUTHENTICATED: Method doesn't
//!    allow unregistered callers ...`; 400 for an unknown or deleted key; 403 for a service not
//!    enabled or a key restricted elsewhere (method = `operationId`);
//! 4. per-minute quota per API key ([`quota`]): 429 `RESOURCE_EXHAUSTED: Quota exceeded ...`;
//! 5. the call to `x-google-backend` ([`proxy`]): only `http://127.0.0.1`, or an address whose
//!    origin [`GcpEmulator::route_backend`] routed to loopback (else 502); 503 when unreachable,
//!    504 past the deadline.
//!
//! JWKS come from [`GcpEmulator::trust_jwks_uri`] or are fetched from `http://127.0.0.1` URIs
//! on each token (no cache); other URIs are never fetched. Neither keys nor tokens are logged.

mod auth;
mod proxy;
mod quota;
mod routing;

use super::super::hooks::lock;
use super::super::iam::jwt::{Jwk, parse_jwks};
use super::super::{Body, GcpEmulator, json_response, percent_decode};
use super::model::State;
use super::operations::Now;
use super::store::Store;
use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, Method, Response, StatusCode, Uri};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

/// How long fetching a JWKS from a loopback URI may take.
const JWKS_TIMEOUT: Duration = Duration::from_secs(5);

/// The data plane's own state: quota usage, the JWKS registered in-process and the backend
/// routes.
#[derive(Debug, Default)]
pub struct Serving {
    ledger: Mutex<quota::Ledger>,
    jwks: Mutex<BTreeMap<String, Vec<Jwk>>>,
    routes: Mutex<proxy::Routes>,
}

/// An answer the gateway gives itself instead of calling the backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

impl Refusal {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    /// ESPv2's error body.
    pub fn response(&self) -> Response<Body> {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(status, &json!({"code": self.status, "message": self.message}))
    }
}

/// What a gateway serves: its API's managed service and its config's documents.
struct Deployment {
    service: String,
    documents: Vec<Value>,
}

impl GcpEmulator {
    /// Gateways verify JWTs of providers whose `x-google-jwks_uri` is `uri` with the RSA keys of
    /// `jwks` (`{"keys":[...]}`), without fetching it; replaces what was registered for `uri`.
    pub fn trust_jwks_uri(&self, uri: &str, jwks: Value) {
        lock(&self.inner.serving.jwks).insert(uri.to_owned(), parse_jwks(&jwks));
    }

    /// What answers at `origin` (`scheme://host[:port]`, e.g. a LoadBalancer's
    /// `http://203.0.113.7:8080`) in the emulated network, as a cloud load balancer reaches pods:
    /// gateways call backend addresses of that origin at `http://<to>` instead, path and query
    /// kept. `origin` may be a whole URL (only its origin counts); `to` must be a loopback
    /// address. A later route for the same origin replaces this one.
    pub fn route_backend(&self, origin: &str, to: SocketAddr) -> Result<(), String> {
        if !to.ip().is_loopback() {
            return Err(format!("{to} is not a loopback address; the emulator only calls loopback backends"));
        }
        let normalised = proxy::origin_of(origin).ok_or_else(|| format!("'{origin}' has no scheme://host origin"))?;
        lock(&self.inner.serving.routes).insert(normalised, to);
        Ok(())
    }

    /// The gateway's answer when the request's host is an active gateway's; `None` otherwise.
    pub(in crate::emulator::gcp) async fn serve_gateway(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Option<Response<Body>> {
        let host = host_of(uri, headers)?;
        let deployment = deployment(&mut lock(&self.inner.api_gateway), &host)?;
        let answer = match deployment {
            Ok(deployment) => self.serve(&deployment, method, uri, headers, body).await,
            Err(refusal) => Err(refusal),
        };
        Some(answer.unwrap_or_else(|refusal| refusal.response()))
    }

    async fn serve(
        &self,
        deployment: &Deployment,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Response<Body>, Refusal> {
        let plan = routing::Plan::of(&deployment.documents);
        let (operation, params) = match plan.find(method.as_str(), uri.path()) {
            routing::Match::Found(operation, params) => (operation, params),
            routing::Match::WrongMethod(template) => {
                return Err(Refusal::new(
                    405,
                    format!(
                        "The current request is matched to the defined url template \"{template}\" but its http method is not allowed"
                    ),
                ));
            }
            routing::Match::NotFound => {
                return Err(Refusal::new(404, "The current request is not defined by this API."));
            }
        };
        let service = deployment.service.as_str();
        let seconds = u64::try_from(self.inner.clock.now().wall.as_second()).unwrap_or_default();
        let mut forwarded = proxy::forwarded_headers(headers);
        if !operation.security.jwt.is_empty() {
            let token = auth::bearer(headers).ok_or_else(|| Refusal::new(401, "Jwt is missing"))?;
            let provider = auth::provider_for(token, &operation.security.jwt)?;
            let keys = self.jwks_for(&provider.jwks_uri).await?;
            auth::verify(token, provider, &keys, service, seconds)?;
            // ESPv2 hands the verified claims to the backend (the payload, base64url).
            if let Some(payload) = token.split('.').nth(1).and_then(|p| HeaderValue::from_str(p).ok()) {
                forwarded.insert("x-endpoint-api-userinfo", payload);
            }
        }
        let query = query_pairs(uri.query());
        let key = auth::api_key(&operation.security.api_keys, &query, headers);
        if !operation.security.api_keys.is_empty() {
            let key = key.as_deref().ok_or_else(|| Refusal::new(401, auth::NO_KEY))?;
            let method_name = operation.operation_id.as_str();
            self.validate_key(key, service, method_name)
                .map_err(|rejection| auth::key_refusal(rejection, service, method_name))?;
        }
        // Quota needs a consumer, which only a required (hence validated) key establishes.
        if let Some(key) = key.filter(|_| !operation.costs.is_empty()) {
            let consumer = quota::consumer_of(&key);
            let charged = lock(&self.inner.serving.ledger).charge(
                service,
                &consumer,
                &operation.costs,
                &plan.limits,
                seconds / 60,
            );
            charged.map_err(|exceeded| {
                Refusal::new(
                    429,
                    format!(
                        "RESOURCE_EXHAUSTED: Quota exceeded for quota metric '{}' and limit '{}' of service '{service}'.",
                        exceeded.metric, exceeded.limit
                    ),
                )
            })?;
        }
        let backend = operation
            .backend
            .as_ref()
            .ok_or_else(|| Refusal::new(502, format!("Operation '{}' has no backend.", operation.operation_id)))?;
        let routes = lock(&self.inner.serving.routes).clone();
        let url = proxy::target_url(backend, uri.path(), uri.query(), &params, &routes)?;
        Ok(proxy::call(method, &url, forwarded, body.clone(), backend).await)
    }

    /// The keys registered for `uri`, else fetched from it when it is on 127.0.0.1.
    async fn jwks_for(&self, uri: &str) -> Result<Vec<Jwk>, Refusal> {
        if let Some(keys) = lock(&self.inner.serving.jwks).get(uri) {
            return Ok(keys.clone());
        }
        let failed = || Refusal::new(401, "Jwks remote fetch is failed");
        let loopback = reqwest::Url::parse(uri).ok().is_some_and(|url| url.host_str() == Some("127.0.0.1"));
        if !loopback {
            tracing::warn!(%uri, "GCP emulator gateway: JWKS URI is neither registered nor on 127.0.0.1");
            return Err(failed());
        }
        let client = reqwest::Client::builder().no_proxy().timeout(JWKS_TIMEOUT).build().map_err(|_| failed())?;
        let response = client.get(uri).send().await.and_then(reqwest::Response::error_for_status);
        let document: Value = match response {
            Ok(response) => response.json().await.map_err(|_| failed())?,
            Err(error) => {
                tracing::warn!(%uri, %error, "GCP emulator gateway: cannot fetch a JWKS");
                return Err(failed());
            }
        };
        Ok(parse_jwks(&document))
    }
}

/// The request's host without port, lower case.
fn host_of(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| uri.host())?;
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    Some(host.to_ascii_lowercase())
}

/// The active gateway serving `host`, when there is one: its deployment, or a refusal when its
/// config is not active (or gone).
fn deployment(store: &mut Store, host: &str) -> Option<Result<Deployment, Refusal>> {
    store.settle(Now::current());
    let gateways = store.gateways("projects/");
    let gateway = gateways
        .into_iter()
        .find(|g| g.meta.state == State::Active && g.default_hostname.eq_ignore_ascii_case(host))?;
    let unavailable = || Refusal::new(503, format!("The gateway's API config '{}' is not active.", gateway.api_config));
    let Some(config) = store.config(&gateway.api_config).ok().filter(|c| c.meta.state == State::Active) else {
        return Some(Err(unavailable()));
    };
    let api = gateway.api_config.split("/configs/").next().unwrap_or_default();
    let Ok(api) = store.api(api) else { return Some(Err(unavailable())) };
    let documents = config.documents.iter().filter_map(|d| parse_document(&d.contents)).collect();
    Some(Ok(Deployment { service: api.managed_service.clone(), documents }))
}

/// JSON first, then YAML, as the control plane reads documents.
fn parse_document(contents: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(contents).ok()?;
    let parsed = serde_json::from_str(text).ok().or_else(|| serde_saphyr::from_str::<Value>(text).ok());
    parsed.filter(Value::is_object)
}

/// `name=value` pairs of a query, percent-decoded (`+` is a space); undecodable ones are kept
/// as sent.
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let decode = |text: &str| {
        let spaced = text.replace('+', " ");
        percent_decode(&spaced).unwrap_or(spaced)
    };
    let pairs = query.unwrap_or_default().split('&').filter(|pair| !pair.is_empty());
    pairs
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_read_without_its_port() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("GW-1.uc.gateway.dev:8080"));
        let uri: Uri = "/health".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(host_of(&uri, &headers).as_deref(), Some("gw-1.uc.gateway.dev"));
        assert_eq!(host_of(&uri, &HeaderMap::new()), None);
    }

    #[test]
    fn query_pairs_are_decoded() {
        let pairs = query_pairs(Some("key=a%2Bb&x=1+2&flag"));
        let expected = [("key", "a+b"), ("x", "1 2"), ("flag", "")].map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(pairs, expected);
    }

    #[test]
    fn backends_are_routed_to_loopback_only() {
        let emulator = GcpEmulator::new();
        assert!(emulator.route_backend("http://203.0.113.7", ([10, 0, 0, 1], 80).into()).is_err());
        assert!(emulator.route_backend("nonsense", ([127, 0, 0, 1], 80).into()).is_err());
        assert_eq!(emulator.route_backend("http://203.0.113.7:80", ([127, 0, 0, 1], 81).into()), Ok(()));
        let routes = lock(&emulator.inner.serving.routes).clone();
        assert_eq!(routes, proxy::Routes::from([("http://203.0.113.7".to_owned(), ([127, 0, 0, 1], 81).into())]));
    }

    #[test]
    fn refusals_answer_espv2s_body() {
        let refusal = Refusal::new(404, "The current request is not defined by this API.");
        let response = refusal.response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
