//! Which service and method a request calls: by the host a client was pointed at, else by the
//! path under the emulator's own address (`/v1/`, `/v2/` for API Keys, `/v1beta1/` for Service
//! Usage).

use super::rpc::RpcError;
use super::{api_gateway, api_keys, iam, pubsub, rest, secret_manager, service_usage};
use hyper::{HeaderMap, Method, Uri, header};

/// The emulated services. Another one plugs in as a variant here, a branch in
/// [`Service::from_host`] and [`Service::from_path`], and one in [`Routed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Service {
    SecretManager,
    PubSub,
    ApiGateway,
    ApiKeys,
    /// Service Usage.
    Usage,
    Iam(iam::Api),
}

impl Service {
    /// By the API host a client was pointed at: `secretmanager.googleapis.com` or a regional
    /// `secretmanager.LOCATION.rep.googleapis.com`.
    pub(super) fn from_host(host: &str) -> Option<Self> {
        match host.split('.').next() {
            Some("secretmanager") => Some(Self::SecretManager),
            Some("pubsub") => Some(Self::PubSub),
            Some("apigateway") => Some(Self::ApiGateway),
            Some("apikeys") => Some(Self::ApiKeys),
            Some("serviceusage") => Some(Self::Usage),
            Some(label) => iam::Api::from_host_label(label).map(Self::Iam),
            None => None,
        }
    }

    /// By the first collection under `projects/P[/locations/L]/`, for clients pointed at the
    /// emulator's own address, under `/v1/`. API Gateway's collections only exist under a
    /// location; Service Usage's operations are the only top-level `operations/`.
    pub(super) fn from_path(path: &str) -> Option<Self> {
        if let Some(api) = iam::Api::from_path(path) {
            return Some(Self::Iam(api));
        }
        if path.starts_with("operations/") {
            return Some(Self::Usage);
        }
        let mut segments = path.split('/');
        let (Some("projects"), Some(_)) = (segments.next(), segments.next()) else { return None };
        let mut collection = segments.next()?;
        let mut located = false;
        if collection == "locations" {
            segments.next()?;
            collection = segments.next()?;
            located = true;
        }
        match collection.split(':').next() {
            Some("secrets") => Some(Self::SecretManager),
            Some("topics" | "subscriptions") if !located => Some(Self::PubSub),
            Some("apis" | "gateways" | "operations") if located => Some(Self::ApiGateway),
            Some("services") if !located => Some(Self::Usage),
            _ => None,
        }
    }
}

/// A request matched to one method of one service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Routed {
    SecretManager(secret_manager::Call),
    PubSub(pubsub::Call),
    ApiGateway(api_gateway::Call),
    ApiKeys(api_keys::Call),
    ServiceUsage(service_usage::Call),
    Iam(iam::Call),
}

impl Routed {
    pub(super) fn method_id(&self) -> &'static str {
        match self {
            Self::SecretManager(call) => call.method_id(),
            Self::PubSub(call) => call.method_id(),
            Self::ApiGateway(call) => call.method_id(),
            Self::ApiKeys(call) => call.method_id(),
            Self::ServiceUsage(call) => call.method_id(),
            Self::Iam(call) => call.method_id(),
        }
    }

    pub(super) fn resource(&self) -> String {
        match self {
            Self::SecretManager(call) => call.resource(),
            Self::PubSub(call) => call.resource(),
            Self::ApiGateway(call) => call.resource(),
            Self::ApiKeys(call) => call.resource(),
            Self::ServiceUsage(call) => call.resource(),
            Self::Iam(call) => call.resource(),
        }
    }

    pub(super) fn starts_operation(&self) -> bool {
        match self {
            Self::SecretManager(_) | Self::PubSub(_) | Self::Iam(_) => false,
            Self::ApiGateway(call) => call.starts_operation(),
            Self::ApiKeys(call) => call.starts_operation(),
            Self::ServiceUsage(call) => call.starts_operation(),
        }
    }

    /// The permission the call needs and on what; `None` for STS and operation reads.
    pub(super) fn requirement(&self) -> Option<iam::Requirement> {
        match self {
            Self::SecretManager(call) => Some(iam::Requirement::on(call.permission(), call.resource())),
            Self::PubSub(call) => Some(iam::Requirement::on(call.permission(), call.resource())),
            Self::ApiGateway(call) => Some(iam::Requirement::on(call.permission(), call.resource())),
            Self::ApiKeys(call) => call.requirement(),
            Self::ServiceUsage(call) => call.requirement(),
            Self::Iam(call) => call.requirement(),
        }
    }
}

/// The version of an API a path is under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    V1,
    /// Service Usage's, for `generateServiceIdentity`.
    V1Beta1,
    /// API Keys', its only one.
    V2,
}

/// The method a request calls, from its host or path; 404 when none.
pub(super) fn route(method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<Routed, RpcError> {
    let no_route = || RpcError::no_route(method.as_str(), uri.path());
    let versions = [("/v1/", Version::V1), ("/v1beta1/", Version::V1Beta1), ("/v2/", Version::V2)];
    let (version, path) = versions
        .iter()
        .find_map(|(prefix, version)| uri.path().strip_prefix(prefix).map(|path| (*version, path)))
        .ok_or_else(no_route)?;
    let path = percent_decode(path).ok_or_else(no_route)?;
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| uri.host()).unwrap_or_default();
    // API Keys is the only `/v2/` API, and is only served there; Service Usage the only
    // `/v1beta1/` one.
    let by_path = || match version {
        Version::V1 => Service::from_path(&path),
        Version::V1Beta1 => Some(Service::Usage),
        Version::V2 => Some(Service::ApiKeys),
    };
    let service = Service::from_host(host).or_else(by_path).ok_or_else(no_route)?;
    let served = match service {
        Service::ApiKeys => version == Version::V2,
        Service::Usage => version != Version::V2,
        _ => version == Version::V1,
    };
    if !served {
        return Err(no_route());
    }
    let routed = match service {
        Service::SecretManager => secret_manager::Call::parse(method, &path).map(Routed::SecretManager),
        Service::PubSub => pubsub::Call::parse(method, &path).map(Routed::PubSub),
        Service::ApiGateway => {
            // A create names its new resource in the query (`apiId`, ...), which the counters use.
            let query = rest::Query::parse(uri.query());
            api_gateway::Call::parse(method, &path, &query).map(Routed::ApiGateway)
        }
        Service::ApiKeys => {
            let query = rest::Query::parse(uri.query());
            api_keys::Call::parse(method, &path, &query).map(Routed::ApiKeys)
        }
        Service::Usage => {
            let version =
                if version == Version::V1Beta1 { service_usage::Version::V1Beta1 } else { service_usage::Version::V1 };
            service_usage::Call::parse(version, method, &path).map(Routed::ServiceUsage)
        }
        Service::Iam(api) => iam::Call::parse(api, method, &path).map(Routed::Iam),
    };
    routed.ok_or_else(no_route)
}

/// Decodes `%XX` escapes (clients may escape `:` and `/` in names); `None` for bad escapes.
pub(super) fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> Uri {
        text.parse().unwrap_or_else(|e| panic!("bad uri {text}: {e}"))
    }

    #[test]
    fn the_service_is_chosen_by_host_or_by_collection() {
        assert_eq!(Service::from_host("secretmanager.googleapis.com"), Some(Service::SecretManager));
        assert_eq!(Service::from_host("secretmanager.us-east1.rep.googleapis.com"), Some(Service::SecretManager));
        assert_eq!(Service::from_host("127.0.0.1:8080"), None);
        assert_eq!(Service::from_path("projects/p/secrets/s:addVersion"), Some(Service::SecretManager));
        assert_eq!(Service::from_path("projects/p/locations/l/secrets"), Some(Service::SecretManager));
        assert_eq!(Service::from_host("apigateway.googleapis.com"), Some(Service::ApiGateway));
        assert_eq!(Service::from_path("projects/p/locations/global/apis"), Some(Service::ApiGateway));
        assert_eq!(Service::from_path("projects/p/locations/us-east1/gateways/g"), Some(Service::ApiGateway));
        assert_eq!(Service::from_path("projects/p/locations/global/operations/operation-1"), Some(Service::ApiGateway));
        assert_eq!(Service::from_path("projects/p/apis"), None);
        assert_eq!(Service::from_host("pubsub.googleapis.com"), Some(Service::PubSub));
        assert_eq!(Service::from_path("projects/p/topics/t:publish"), Some(Service::PubSub));
        assert_eq!(Service::from_path("projects/p/subscriptions"), Some(Service::PubSub));
        assert_eq!(Service::from_path("projects/p/locations/l/topics"), None);
        assert_eq!(Service::from_host("sts.googleapis.com"), Some(Service::Iam(iam::Api::Sts)));
        assert_eq!(Service::from_path("token"), Some(Service::Iam(iam::Api::Sts)));
        assert_eq!(Service::from_path("projects/p:getIamPolicy"), Some(Service::Iam(iam::Api::ResourceManager)));
        assert_eq!(Service::from_path("projects/p/secrets/s:getIamPolicy"), Some(Service::SecretManager));
        assert_eq!(Service::from_host("apikeys.googleapis.com"), Some(Service::ApiKeys));
        assert_eq!(Service::from_host("serviceusage.googleapis.com"), Some(Service::Usage));
        assert_eq!(Service::from_path("projects/p/services/s.example.com:enable"), Some(Service::Usage));
        assert_eq!(Service::from_path("operations/acf.p2-1"), Some(Service::Usage));
    }

    #[test]
    fn v2_paths_go_to_api_keys_and_api_keys_only_to_v2() {
        let routed = |path: &str, host: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, header::HeaderValue::from_str(host).unwrap_or_else(|e| panic!("{e}")));
            route(&Method::GET, &uri(path), &headers).ok().map(|r| r.method_id())
        };
        assert_eq!(routed("/v2/projects/p/locations/global/keys", "127.0.0.1"), Some("apikeys.keys.list"));
        assert_eq!(routed("/v2/operations/akmf.p7-1", "127.0.0.1"), Some("apikeys.operations.get"));
        assert_eq!(routed("/v1/operations/acf.p2-1", "127.0.0.1"), Some("serviceusage.operations.get"));
        assert_eq!(routed("/v1/projects/p/locations/global/keys", "apikeys.googleapis.com"), None);
        assert_eq!(routed("/v2/projects/p/secrets", "secretmanager.googleapis.com"), None);
        let beta =
            |method: Method, path: &str| route(&method, &uri(path), &HeaderMap::new()).ok().map(|r| r.method_id());
        assert_eq!(
            beta(Method::POST, "/v1beta1/projects/p/services/secretmanager.googleapis.com:generateServiceIdentity"),
            Some("serviceusage.services.generateServiceIdentity")
        );
        assert_eq!(
            beta(Method::POST, "/v1/projects/p/services/secretmanager.googleapis.com:generateServiceIdentity"),
            None
        );
        assert_eq!(beta(Method::GET, "/v1beta1/projects/p/secrets"), None);
        assert_eq!(
            beta(Method::POST, "/v1/projects/p/services:batchEnable"),
            Some("serviceusage.services.batchEnable")
        );
        assert_eq!(
            routed("/v1/projects/p/services", "serviceusage.googleapis.com"),
            Some("serviceusage.services.list")
        );
    }

    #[test]
    fn escaped_colons_in_paths_are_decoded() {
        assert_eq!(
            percent_decode("projects/p/secrets/s/versions/1%3Aaccess").as_deref(),
            Some("projects/p/secrets/s/versions/1:access")
        );
        assert_eq!(percent_decode("bad%zz"), None);
    }
}
