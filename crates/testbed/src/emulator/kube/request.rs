//! Turns a request line into what it addresses: a discovery document, or a resource (group,
//! version, plural, namespace, name, subresource) and its query parameters.

use super::status::ApiError;
use std::collections::HashMap;

/// What a path addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Version,
    /// `/api`: the core group's versions.
    CoreVersions,
    /// `/apis`: every group.
    Groups,
    /// `/apis/{group}`.
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`: the resources of one group version.
    GroupVersion {
        group: String,
        version: String,
    },
    /// `/openapi/v2`, `/openapi/v3`, `/openapi/v3/...`.
    OpenApi(String),
    /// `/healthz`, `/livez`, `/readyz`.
    Health,
    /// `/.well-known/openid-configuration`: the service-account issuer's discovery document.
    OpenIdConfiguration,
    /// `/openid/v1/jwks`: the keys service-account tokens verify against.
    Jwks,
    Resource(ResourcePath),
}

/// A resource collection or object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// Legacy `/watch/` prefix.
    pub legacy_watch: bool,
}

/// Parses a request path (without query).
pub fn parse_path(path: &str) -> Result<Route, ApiError> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["version"] => Ok(Route::Version),
        ["healthz" | "livez" | "readyz", ..] => Ok(Route::Health),
        [".well-known", "openid-configuration"] => Ok(Route::OpenIdConfiguration),
        ["openid", "v1", "jwks"] => Ok(Route::Jwks),
        ["openapi", rest @ ..] => Ok(Route::OpenApi(rest.join("/"))),
        ["api"] => Ok(Route::CoreVersions),
        ["api", version] => Ok(Route::GroupVersion { group: String::new(), version: (*version).into() }),
        ["api", version, rest @ ..] => resource_path("", version, rest),
        ["apis"] => Ok(Route::Groups),
        ["apis", group] => Ok(Route::Group((*group).into())),
        ["apis", group, version] => Ok(Route::GroupVersion { group: (*group).into(), version: (*version).into() }),
        ["apis", group, version, rest @ ..] => resource_path(group, version, rest),
        _ => Err(ApiError::no_route()),
    }
}

fn resource_path(group: &str, version: &str, rest: &[&str]) -> Result<Route, ApiError> {
    let (legacy_watch, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let at = |plural: &str, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>| {
        Ok(Route::Resource(ResourcePath {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            namespace: namespace.map(Into::into),
            name: name.map(Into::into),
            subresource: sub.map(Into::into),
            legacy_watch,
        }))
    };
    match rest {
        // A namespace's own subresources look like a namespaced collection; tell them apart.
        ["namespaces", name, sub @ ("status" | "finalize")] => at("namespaces", None, Some(name), Some(sub)),
        ["namespaces", ns, plural] => at(plural, Some(ns), None, None),
        ["namespaces", ns, plural, name] => at(plural, Some(ns), Some(name), None),
        ["namespaces", ns, plural, name, sub] => at(plural, Some(ns), Some(name), Some(sub)),
        [plural] => at(plural, None, None, None),
        [plural, name] => at(plural, None, Some(name), None),
        [plural, name, sub] => at(plural, None, Some(name), Some(sub)),
        _ => Err(ApiError::no_route()),
    }
}

/// Decoded query parameters.
#[derive(Clone, Debug, Default)]
pub struct Query {
    params: HashMap<String, String>,
}

impl Query {
    /// Parses (and URL-decodes) a query string.
    pub fn parse(query: Option<&str>) -> Self {
        let params = form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
        Self { params }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// A boolean flag (`true`, `1`).
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "1"))
    }

    /// A non-negative integer parameter; 400 when it is not one.
    pub fn number(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.get(name)
            .map(|v| v.parse::<u64>().map_err(|_| ApiError::bad_request(format!("invalid {name}: {v:?}"))))
            .transpose()
    }

    /// `dryRun=All`: validate and answer, store nothing.
    pub fn dry_run(&self) -> bool {
        self.get("dryRun") == Some("All")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(path: &str) -> Option<ResourcePath> {
        match parse_path(path) {
            Ok(Route::Resource(r)) => Some(r),
            _ => None,
        }
    }

    #[test]
    fn namespaced_object_paths_are_parsed() {
        let r = resource("/apis/apps/v1/namespaces/prod/deployments/web/status");
        assert_eq!(
            r,
            Some(ResourcePath {
                group: "apps".into(),
                version: "v1".into(),
                plural: "deployments".into(),
                namespace: Some("prod".into()),
                name: Some("web".into()),
                subresource: Some("status".into()),
                legacy_watch: false,
            })
        );
    }

    #[test]
    fn namespace_status_is_not_a_collection_named_status() {
        let r = resource("/api/v1/namespaces/prod/status");
        assert!(r.is_some_and(|r| r.plural == "namespaces" && r.name.as_deref() == Some("prod")));
        let list = resource("/api/v1/namespaces/prod/secrets");
        assert!(list.is_some_and(|r| r.plural == "secrets" && r.namespace.as_deref() == Some("prod")));
    }

    #[test]
    fn discovery_paths_are_recognised() {
        assert_eq!(parse_path("/api").ok(), Some(Route::CoreVersions));
        assert_eq!(
            parse_path("/apis/apps/v1").ok(),
            Some(Route::GroupVersion { group: "apps".into(), version: "v1".into() })
        );
        assert_eq!(parse_path("/.well-known/openid-configuration").ok(), Some(Route::OpenIdConfiguration));
        assert_eq!(parse_path("/openid/v1/jwks").ok(), Some(Route::Jwks));
        assert!(parse_path("/nonsense").is_err());
    }

    #[test]
    fn query_values_are_url_decoded() {
        let query = Query::parse(Some("labelSelector=app%20in%20%28a%2Cb%29&watch=1&limit=5"));
        assert_eq!(query.get("labelSelector"), Some("app in (a,b)"));
        assert!(query.flag("watch"));
        assert_eq!(query.number("limit").ok().flatten(), Some(5));
    }
}
