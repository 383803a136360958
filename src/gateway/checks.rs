//! Re-checks of what the GatewayConfig schema's CEL rules say.
//!
//! `secure-api-operator render` reads files that never met an API server, and an API server may
//! hold objects stored before a rule existed, so the renderer must not trust that these rules held.

use super::{API_KEY_DEFINITION, RenderError, method_key};
use crate::api::gateway_config::{GatewayConfigSpec, JwtProvider, Route};
use std::collections::BTreeSet;

/// How a route authenticates callers, parsed from `route.auth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RouteAuth<'a> {
    /// Public (`none` or absent).
    None,
    /// `apiKey`: the `api_key` security definition.
    ApiKey,
    /// `jwt:<provider>`.
    Jwt(&'a str),
}

impl<'a> RouteAuth<'a> {
    /// Parses `route.auth`; anything but `none`, `apiKey` or `jwt:<name>` is an error rather than
    /// a public route, so a typo never opens an API.
    pub(super) fn of(route: &'a Route) -> Result<Self, RenderError> {
        match route.auth.as_deref() {
            None | Some("none") => Ok(Self::None),
            Some("apiKey") => Ok(Self::ApiKey),
            Some(other) => match other.strip_prefix("jwt:") {
                Some(provider) if !provider.is_empty() => Ok(Self::Jwt(provider)),
                _ => Err(RenderError::InvalidAuth { route: route.path.clone(), auth: other.to_owned() }),
            },
        }
    }
}

/// The JWT providers declared in `auth.jwt` (none when `auth` is absent).
pub(super) fn jwt_providers(spec: &GatewayConfigSpec) -> &[JwtProvider] {
    spec.auth.as_ref().map_or(&[], |auth| auth.jwt.as_slice())
}

/// Every check, in a fixed order so the same spec always reports the same error.
pub(super) fn check(spec: &GatewayConfigSpec) -> Result<(), RenderError> {
    check_unique_methods(&spec.routes)?;
    for route in &spec.routes {
        check_jwt_provider(spec, route)?;
        check_quota_metrics(spec, route)?;
    }
    check_definition_names(spec)
}

/// At most one operation per (path, method), across routes and within one route.
fn check_unique_methods(routes: &[Route]) -> Result<(), RenderError> {
    let mut seen = BTreeSet::new();
    for route in routes {
        for method in &route.methods {
            if !seen.insert((route.path.as_str(), *method)) {
                let method = method_key(*method).to_ascii_uppercase();
                return Err(RenderError::DuplicateRoute { path: route.path.clone(), method });
            }
        }
    }
    Ok(())
}

/// `auth: jwt:NAME` must name a provider in `auth.jwt`.
fn check_jwt_provider(spec: &GatewayConfigSpec, route: &Route) -> Result<(), RenderError> {
    match RouteAuth::of(route)? {
        RouteAuth::Jwt(name) if !jwt_providers(spec).iter().any(|p| p.name == name) => {
            Err(RenderError::UnknownJwtProvider { route: route.path.clone(), provider: name.to_owned() })
        }
        _ => Ok(()),
    }
}

/// Every metric a route charges must be declared in `quotas`.
fn check_quota_metrics(spec: &GatewayConfigSpec, route: &Route) -> Result<(), RenderError> {
    let mut charged = route.quota.iter().flat_map(|costs| costs.keys());
    match charged.find(|metric| !spec.quotas.iter().any(|q| &q.metric == *metric)) {
        Some(metric) => Err(RenderError::UnknownQuotaMetric { route: route.path.clone(), metric: metric.clone() }),
        None => Ok(()),
    }
}

/// A JWT provider named `api_key` would overwrite the API-key security definition (and so
/// change which credential some routes demand) when both are in use.
fn check_definition_names(spec: &GatewayConfigSpec) -> Result<(), RenderError> {
    let auths = spec.routes.iter().map(RouteAuth::of).collect::<Result<Vec<_>, _>>()?;
    if auths.contains(&RouteAuth::ApiKey) && auths.contains(&RouteAuth::Jwt(API_KEY_DEFINITION)) {
        return Err(RenderError::JwtProviderNameClash(API_KEY_DEFINITION.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{render_error, rendered};
    use super::*;

    #[test]
    fn unknown_jwt_provider_is_rejected() {
        let error = render_error(
            r#"
auth: {jwt: [{name: google, issuer: "https://accounts.google.com", jwksUri: "https://www.googleapis.com/oauth2/v3/certs"}]}
routes:
  - {path: /a, auth: "jwt:firebase", backend: {service: secure-api}}
"#,
        );
        assert_eq!(error, RenderError::UnknownJwtProvider { route: "/a".into(), provider: "firebase".into() });
    }

    #[test]
    fn jwt_route_without_any_auth_section_is_rejected() {
        let error = render_error("routes: [{path: /a, auth: \"jwt:google\", backend: {service: secure-api}}]");
        assert_eq!(error, RenderError::UnknownJwtProvider { route: "/a".into(), provider: "google".into() });
    }

    #[test]
    fn undeclared_quota_metric_is_rejected() {
        let error = render_error(
            r#"
quotas: [{metric: reads, limitPerMinute: 10}]
routes:
  - {path: /a, quota: {reads: 1, writes: 1}, backend: {service: secure-api}}
"#,
        );
        assert_eq!(error, RenderError::UnknownQuotaMetric { route: "/a".into(), metric: "writes".into() });
    }

    #[test]
    fn same_method_on_same_path_in_two_routes_is_rejected() {
        let error = render_error(
            r#"
routes:
  - {path: /a, methods: [GET, POST], backend: {service: secure-api}}
  - {path: /a, methods: [POST], operationId: other, backend: {service: secure-api}}
"#,
        );
        assert_eq!(error, RenderError::DuplicateRoute { path: "/a".into(), method: "POST".into() });
    }

    #[test]
    fn same_method_twice_in_one_route_is_rejected() {
        let error = render_error("routes: [{path: /a, methods: [GET, GET], backend: {service: secure-api}}]");
        assert_eq!(error, RenderError::DuplicateRoute { path: "/a".into(), method: "GET".into() });
    }

    #[test]
    fn different_methods_on_same_path_in_two_routes_are_allowed() {
        let doc = rendered(
            r#"
routes:
  - {path: /a, methods: [GET], backend: {service: secure-api}}
  - {path: /a, methods: [DELETE], backend: {service: secure-api}}
"#,
        );
        assert!(doc["paths"]["/a"]["get"].is_object());
        assert!(doc["paths"]["/a"]["delete"].is_object());
    }

    #[test]
    fn unrecognised_auth_is_rejected_instead_of_made_public() {
        for auth in ["apikey", "jwt:", "basic"] {
            let yaml = format!("routes: [{{path: /a, auth: \"{auth}\", backend: {{service: secure-api}}}}]");
            assert_eq!(render_error(&yaml), RenderError::InvalidAuth { route: "/a".into(), auth: auth.into() });
        }
    }

    #[test]
    fn jwt_provider_named_api_key_clashes_with_api_key_routes() {
        let error = render_error(
            r#"
auth: {jwt: [{name: api_key, issuer: "https://issuer.example.com", jwksUri: "https://issuer.example.com/jwks"}]}
routes:
  - {path: /a, auth: apiKey, backend: {service: secure-api}}
  - {path: /b, auth: "jwt:api_key", backend: {service: secure-api}}
"#,
        );
        assert_eq!(error, RenderError::JwtProviderNameClash("api_key".into()));
    }
}
