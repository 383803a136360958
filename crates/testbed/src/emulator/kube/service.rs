//! The two front doors: a tower service for `kube::Client` and an HTTP/1.1 listener for kubectl.
//! Both hand every request to [`respond`].

use super::handlers::{self, Reply, ResourceRequest};
use super::hooks;
use super::request::{Query, ResourcePath, Route, parse_path};
use super::resources::StorageKey;
use super::status::ApiError;
use super::store::State;
use super::watch::{WatchPlan, error_line};
use super::{KubeEmulator, discovery, openapi, token_request, tokens};
use crate::listener::Listener;
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{HeaderMap, Method, Request, Response, Uri, header};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;

/// Response body: a whole document, or a watch stream.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The server clock, as Kubernetes writes timestamps (seconds, UTC).
pub fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `default`, `kube-system`, `kube-public` and `kube-node-lease`, as a new cluster has them.
pub fn create_default_namespaces(state: &mut State) {
    let key = StorageKey { group: String::new(), plural: "namespaces".into() };
    let now = now();
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let uid = state.new_uid();
        let namespace = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "uid": uid,
                "creationTimestamp": now,
                "labels": { "kubernetes.io/metadata.name": name },
            },
            "spec": { "finalizers": ["kubernetes"] },
            "status": { "phase": "Active" },
        });
        state.insert(&key, "", name, namespace);
    }
}

fn json_response(code: u16, value: &Value) -> Response<Body> {
    bytes_response(code, Bytes::from(value.to_string()))
}

fn bytes_response(code: u16, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body).boxed_unsync());
    *response.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}

/// The issuer's documents: their own content types, cacheable for an hour like kube-apiserver's.
fn issuer_response(document: Result<Value, ApiError>, content_type: &'static str) -> Response<Body> {
    let value = match document {
        Ok(value) => value,
        Err(error) => return error_response(&error),
    };
    let mut response = json_response(200, &value);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static(tokens::CACHE_CONTROL));
    response
}

fn error_response(error: &ApiError) -> Response<Body> {
    json_response(error.code, &error.to_status())
}

fn streaming_response(first: Option<Bytes>, rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    let stream = futures::stream::unfold((first, rx), |(first, mut rx)| async move {
        let next = match first {
            Some(bytes) => Some(bytes),
            None => rx.recv().await,
        };
        next.map(|bytes| (Ok::<_, Infallible>(Frame::data(bytes)), (None, rx)))
    });
    let mut response = Response::new(StreamBody::new(stream).boxed_unsync());
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}

/// Serves one request.
pub async fn respond(
    emulator: &KubeEmulator,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let route = match parse_path(uri.path()) {
        Ok(route) => route,
        Err(error) => return error_response(&error),
    };
    let document = {
        let state = emulator.state();
        match &route {
            Route::Version => Ok(discovery::version()),
            Route::CoreVersions => Ok(discovery::core_versions()),
            Route::Groups => Ok(discovery::group_list(&state.registry)),
            Route::Group(group) => discovery::group(&state.registry, group),
            Route::GroupVersion { group, version } => discovery::resource_list(&state.registry, group, version),
            Route::OpenApi(rest) => openapi::document(&state.registry, rest),
            Route::Health => Ok(json!("ok")),
            Route::OpenIdConfiguration => Ok(tokens::openid_configuration(&emulator.inner.issuer)),
            Route::Jwks => Ok(tokens::jwks()),
            Route::Resource(_) => Err(ApiError::no_route()),
        }
    };
    match route {
        Route::Resource(path) => {
            let query = Query::parse(uri.query());
            resource(emulator, method, &path, &query, headers, body).await
        }
        Route::OpenIdConfiguration => issuer_response(document, "application/json"),
        Route::Jwks => issuer_response(document, tokens::JWKS_CONTENT_TYPE),
        _ => match document {
            Ok(value) => json_response(200, &value),
            Err(error) => error_response(&error),
        },
    }
}

async fn resource(
    emulator: &KubeEmulator,
    method: &Method,
    path: &ResourcePath,
    query: &Query,
    headers: &HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let watching = method == Method::GET && path.name.is_none() && (path.legacy_watch || query.flag("watch"));
    let verb = hooks::verb(method.as_str(), path.name.is_some(), watching);
    let resource = match &path.subresource {
        Some(sub) => format!("{}/{sub}", path.plural),
        None => path.plural.clone(),
    };
    let injected = emulator.inner.hooks.on_request(verb, &resource, path.name.as_deref());
    if let Some(delay) = injected.delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(code) = injected.status {
        let message = injected.message.unwrap_or_else(|| format!("injected fault: HTTP {code} for {verb} {resource}"));
        return error_response(&ApiError::injected(code, message));
    }
    let header = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let user_agent = header(header::USER_AGENT);
    let now = now();
    let request = ResourceRequest {
        method: method.as_str(),
        path,
        query,
        body: &body,
        content_type: header(header::CONTENT_TYPE),
        wants_table: header(header::ACCEPT).contains("as=Table"),
        default_manager: user_agent.split('/').next().filter(|m| !m.is_empty()).unwrap_or("unknown"),
        now: &now,
    };
    // The store lock is held for this statement only; what the reply encodes is encoded after.
    let reply = if token_request::addresses(path) {
        token_request::handle(&mut emulator.state(), &emulator.inner.issuer, &request).map(|o| Reply::Object(201, o))
    } else {
        handlers::handle(&mut emulator.state(), &request)
    };
    match reply {
        Ok(Reply::Object(code, value)) => json_response(code, &value),
        Ok(Reply::List(list)) => bytes_response(200, list.encode()),
        Ok(Reply::Watch(plan)) => watch_response(plan, emulator.inner.options.bookmark_interval),
        // kube-apiserver reports an expired watch version inside a 200 stream.
        Err(error) if watching && error.code == 410 => {
            let (_, rx) = mpsc::channel(1);
            streaming_response(Some(error_line(&error)), rx)
        }
        Err(error) => error_response(&error),
    }
}

fn watch_response(plan: WatchPlan, bookmark_every: Duration) -> Response<Body> {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(plan.stream(tx, bookmark_every));
    streaming_response(None, rx)
}

/// A `kube::Client` whose requests are served in-process.
pub fn client(emulator: KubeEmulator) -> kube::Client {
    let service = tower::service_fn(move |request: Request<kube::client::Body>| {
        let emulator = emulator.clone();
        async move {
            let (parts, body) = request.into_parts();
            let bytes = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(error) => {
                    let status = ApiError::bad_request(format!("cannot read the request body: {error}"));
                    return Ok::<_, Infallible>(error_response(&status));
                }
            };
            Ok(respond(&emulator, &parts.method, &parts.uri, &parts.headers, bytes).await)
        }
    });
    kube::Client::new(service, "default")
}

/// Binds `addr` and serves the emulator over HTTP/1.1.
pub async fn listen(emulator: KubeEmulator, addr: SocketAddr) -> std::io::Result<Listener> {
    crate::listener::listen(addr, move |request: Request<Bytes>| {
        let emulator = emulator.clone();
        async move {
            let (parts, body) = request.into_parts();
            respond(&emulator, &parts.method, &parts.uri, &parts.headers, body).await
        }
    })
    .await
}
