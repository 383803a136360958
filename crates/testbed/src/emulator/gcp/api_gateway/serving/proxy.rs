//! The call to `x-google-backend.address`: the URL `path_translation` gives (pure), the headers
//! forwarded, and the request itself. The emulator only calls `http://127.0.0.1` backends, and
//! the addresses [`Routes`] send to one (see `GcpEmulator::route_backend`).

use super::super::super::Body;
use super::Refusal;
use super::routing::{Backend, Translation};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{HeaderMap, Method, Response, StatusCode, header};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::OnceLock;

/// What answers at an origin (`scheme://host[:port]`, as [`origin_of`] writes it) of the
/// emulated network: a loopback address, called over `http`.
pub type Routes = BTreeMap<String, SocketAddr>;

/// The origin of a URL in its serialised form (default port left out), or `None` for a URL
/// without one (unparsable, or a scheme like `grpc:` whose origin is opaque).
pub fn origin_of(address: &str) -> Option<String> {
    let origin = reqwest::Url::parse(address).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// `address` with its origin replaced by `http://<to>` when the origin is routed to `to`.
fn routed(address: &str, routes: &Routes) -> Option<String> {
    let to = routes.get(&origin_of(address)?)?;
    // Path, query and fragment start at the first of these after `scheme://`.
    let after_scheme = address.split_once("://").map_or(address, |(_, rest)| rest);
    let tail = after_scheme.find(['/', '?', '#']).map_or("", |start| &after_scheme[start..]);
    Some(format!("http://{to}{tail}"))
}

/// Whether the emulator calls `address` as it is: `http://127.0.0.1[:port]`.
fn is_loopback(address: &str) -> bool {
    let url = reqwest::Url::parse(address).ok();
    url.is_some_and(|url| url.scheme() == "http" && url.host_str() == Some("127.0.0.1"))
}

/// Headers that belong to one connection, not to the request (RFC 9110 §7.6.1), and `host`,
/// which the client sets for the backend.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

/// The backend URL of a request: `APPEND_PATH_TO_ADDRESS` puts the request path after the
/// address's own; `CONSTANT_ADDRESS` calls the address as it is, with the path parameters
/// added to the query. The caller's query follows either way (ESPv2 forwards it whole,
/// `key` included). An address whose origin is in `routes` is called at its route; anything
/// else but `http://127.0.0.1[:port]` is refused.
pub fn target_url(
    backend: &Backend,
    path: &str,
    query: Option<&str>,
    params: &[(String, String)],
    routes: &Routes,
) -> Result<String, Refusal> {
    // Routes lead to loopback only: `route_backend` refuses any other address.
    let address = match routed(&backend.address, routes) {
        Some(address) => address,
        None if is_loopback(&backend.address) => backend.address.clone(),
        None => {
            let message = format!(
                "The GCP emulator's gateway only calls http://127.0.0.1 backends; '{}' is not one.",
                backend.address
            );
            return Err(Refusal::new(502, message));
        }
    };
    let (mut url, mut extra) = match backend.translation {
        Translation::AppendPathToAddress => (format!("{}{path}", address.trim_end_matches('/')), Vec::new()),
        Translation::ConstantAddress => {
            let params = params.iter().map(|(name, value)| format!("{name}={value}")).collect();
            (address, params)
        }
    };
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        extra.push(query.to_owned());
    }
    if !extra.is_empty() {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&extra.join("&"));
    }
    Ok(url)
}

/// The caller's headers minus the hop-by-hop ones. `Authorization` goes through unchanged: the
/// emulator does not mint the backend ID token ESPv2 would put there (it would then move the
/// caller's to `X-Forwarded-Authorization`).
pub fn forwarded_headers(headers: &HeaderMap) -> HeaderMap {
    let mut forwarded = headers.clone();
    for name in HOP_BY_HOP {
        forwarded.remove(name);
    }
    forwarded
}

/// The client of every backend call: building one loads the TLS roots, which takes longer than
/// a call to a loopback backend (tens of milliseconds in a debug build). It keeps no idle
/// connection: each call connects, as one client per call did.
fn client() -> Option<&'static reqwest::Client> {
    static CLIENT: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    let built = || {
        let builder = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none());
        builder.pool_max_idle_per_host(0).build().ok()
    };
    CLIENT.get_or_init(built).as_ref()
}

/// Calls the backend and relays its answer; a backend that cannot be reached is 503 and one
/// that does not answer within the deadline 504, with Envoy's texts.
pub async fn call(method: &Method, url: &str, headers: HeaderMap, body: Bytes, backend: &Backend) -> Response<Body> {
    let Some(client) = client() else {
        return Refusal::new(502, "The gateway's HTTP client could not be built.").response();
    };
    let request = client.request(method.clone(), url).timeout(backend.deadline).headers(headers).body(body);
    let sent = request.send().await;
    let answer = match sent {
        Ok(answer) => answer,
        Err(error) if error.is_timeout() => return Refusal::new(504, "upstream request timeout").response(),
        Err(error) => {
            tracing::debug!(backend = %backend.address, %error, "GCP emulator gateway: backend unreachable");
            return Refusal::new(
                503,
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
            )
            .response();
        }
    };
    let status = answer.status();
    let mut relayed = forwarded_headers(answer.headers());
    relayed.remove(header::CONTENT_LENGTH);
    let bytes = match answer.bytes().await {
        Ok(bytes) => bytes,
        Err(error) if error.is_timeout() => return Refusal::new(504, "upstream request timeout").response(),
        Err(_) => return Refusal::new(502, "upstream connect error or disconnect/reset after headers").response(),
    };
    let mut response = Response::new(Full::new(bytes));
    *response.status_mut() = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    *response.headers_mut() = relayed;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;
    use std::time::Duration;

    fn backend(address: &str, translation: Translation) -> Backend {
        Backend { address: address.into(), translation, deadline: Duration::from_secs(1) }
    }

    #[test]
    fn append_path_puts_the_request_path_after_the_address() {
        let append = backend("http://127.0.0.1:9000/base/", Translation::AppendPathToAddress);
        assert_eq!(
            target_url(&append, "/config", None, &[], &Routes::new()),
            Ok("http://127.0.0.1:9000/base/config".into())
        );
        let plain = backend("http://127.0.0.1:9000", Translation::AppendPathToAddress);
        assert_eq!(
            target_url(&plain, "/a/b", Some("key=k&x=1"), &[], &Routes::new()),
            Ok("http://127.0.0.1:9000/a/b?key=k&x=1".into())
        );
    }

    #[test]
    fn constant_address_moves_path_parameters_to_the_query() {
        let constant = backend("http://127.0.0.1:9000/orders", Translation::ConstantAddress);
        let params = [("id".to_owned(), "7".to_owned())];
        assert_eq!(
            target_url(&constant, "/v1/orders/7", Some("x=1"), &params, &Routes::new()),
            Ok("http://127.0.0.1:9000/orders?id=7&x=1".into())
        );
        assert_eq!(
            target_url(&constant, "/v1/orders", None, &[], &Routes::new()),
            Ok("http://127.0.0.1:9000/orders".into())
        );
    }

    #[test]
    fn only_http_loopback_backends_are_called() {
        for address in
            ["https://127.0.0.1:9000", "http://10.0.0.1", "http://example.com", "grpc://127.0.0.1:1", "nonsense"]
        {
            let refused =
                target_url(&backend(address, Translation::AppendPathToAddress), "/", None, &[], &Routes::new());
            assert_eq!(refused.map_err(|r| r.status), Err(502), "{address}");
        }
    }

    #[test]
    fn a_routed_origin_is_called_at_its_loopback_address_and_others_still_refused() {
        let to: SocketAddr = ([127, 0, 0, 1], 8181).into();
        let routes = Routes::from([(origin_of("http://203.0.113.7:80").unwrap_or_default(), to)]);
        let lb = backend("http://203.0.113.7", Translation::AppendPathToAddress);
        assert_eq!(
            target_url(&lb, "/health", Some("key=k"), &[], &routes),
            Ok("http://127.0.0.1:8181/health?key=k".into())
        );
        let based = backend("http://203.0.113.7/v1/", Translation::AppendPathToAddress);
        assert_eq!(target_url(&based, "/config", None, &[], &routes), Ok("http://127.0.0.1:8181/v1/config".into()));
        let constant = backend("http://203.0.113.7/orders", Translation::ConstantAddress);
        let params = [("id".to_owned(), "7".to_owned())];
        assert_eq!(
            target_url(&constant, "/o/7", None, &params, &routes),
            Ok("http://127.0.0.1:8181/orders?id=7".into())
        );
        for other in ["http://203.0.113.7:8080", "https://203.0.113.7", "http://203.0.113.8"] {
            let refused = target_url(&backend(other, Translation::AppendPathToAddress), "/", None, &[], &routes);
            assert_eq!(refused.map_err(|r| r.status), Err(502), "{other}");
        }
    }

    #[test]
    fn origins_leave_out_default_ports_and_paths() {
        assert_eq!(origin_of("http://203.0.113.7:80/x?y").as_deref(), Some("http://203.0.113.7"));
        assert_eq!(origin_of("HTTP://LB.example.com:8080").as_deref(), Some("http://lb.example.com:8080"));
        assert_eq!(origin_of("grpc://127.0.0.1:1"), None);
        assert_eq!(origin_of("nonsense"), None);
    }

    #[test]
    fn hop_by_hop_headers_are_dropped_and_authorization_kept() {
        let mut headers = HeaderMap::new();
        for (name, value) in [("connection", "close"), ("host", "gw"), ("authorization", "Bearer t"), ("x-custom", "1")]
        {
            headers.insert(name, HeaderValue::from_static(value));
        }
        let forwarded = forwarded_headers(&headers);
        let mut names: Vec<&str> = forwarded.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["authorization", "x-custom"]);
    }
}
