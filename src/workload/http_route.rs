//! The HTTPRoute (Gateway API `gateway.networking.k8s.io/v1`) of a SecureApiService that names a
//! Gateway: one rule sending the traffic to the service's Service, and during a canary the
//! step's weight to the canary's Service.
//!
//! A small typed subset of our own: the `gateway-api` crate is built on another major version of
//! kube. Only the fields written here are declared, each as the official schema has it (names,
//! types, optional fields left out when unset), so a server-side apply owns exactly these; the
//! tests apply what this builds to the official CRD schema.

use super::canary::canary_name;
use super::{metadata_of_child, object_labels};
use crate::api::SecureApiService;
use crate::api::secure_api_service::GatewayParent;
use kube::{CustomResource, ResourceExt};
use serde::{Deserialize, Serialize};

/// The Gateway API group.
pub const GROUP: &str = "gateway.networking.k8s.io";

/// The part of an HTTPRoute's spec the operator writes.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(group = "gateway.networking.k8s.io", version = "v1", kind = "HTTPRoute", namespaced, schema = "disabled")]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    pub parent_refs: Vec<ParentReference>,
    pub rules: Vec<HttpRouteRule>,
}

/// A Gateway the route attaches to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ParentReference {
    pub group: String,
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

/// A rule: where its requests go.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRule {
    pub backend_refs: Vec<HttpBackendRef>,
}

/// A Service and the weight of the requests it gets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpBackendRef {
    pub group: String,
    pub kind: String,
    pub name: String,
    pub port: i32,
    pub weight: i32,
}

/// The service's route to `gateway`: all requests to its Service, or `canary_weight` percent
/// of them to the canary's Service.
pub fn http_route(service: &SecureApiService, gateway: &GatewayParent, port: i32, canary_weight: i32) -> HTTPRoute {
    let name = service.name_any();
    let backend =
        |name: String, weight: i32| HttpBackendRef { group: String::new(), kind: "Service".into(), name, port, weight };
    let canary_weight = canary_weight.clamp(0, 100);
    let mut backends = vec![backend(name.clone(), 100 - canary_weight)];
    if canary_weight > 0 {
        backends.push(backend(canary_name(&name), canary_weight));
    }
    let parent = ParentReference {
        group: GROUP.into(),
        kind: "Gateway".into(),
        name: gateway.name.clone(),
        namespace: gateway.namespace.clone(),
        section_name: gateway.section_name.clone(),
    };
    let spec = HttpRouteSpec { parent_refs: vec![parent], rules: vec![HttpRouteRule { backend_refs: backends }] };
    HTTPRoute { metadata: metadata_of_child(service, name.clone(), object_labels(&name)), spec }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::fixtures::service_with;
    use serde_json::json;

    #[test]
    fn the_route_sends_the_canary_its_weight_and_nothing_without_one() {
        let service =
            service_with("api", json!({ "image": "example.com/api:1", "expose": { "gateway": { "name": "web" } } }));
        let gateway = GatewayParent { name: "web".into(), namespace: Some("infra".into()), section_name: None };
        let route = serde_json::to_value(http_route(&service, &gateway, 80, 10)).unwrap_or_default();
        assert_eq!(route["apiVersion"], "gateway.networking.k8s.io/v1");
        assert_eq!(
            route["spec"]["parentRefs"],
            json!([{ "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "web", "namespace": "infra" }])
        );
        assert_eq!(
            route["spec"]["rules"][0]["backendRefs"],
            json!([
                { "group": "", "kind": "Service", "name": "api", "port": 80, "weight": 90 },
                { "group": "", "kind": "Service", "name": "api-canary", "port": 80, "weight": 10 },
            ])
        );
        let steady = serde_json::to_value(http_route(&service, &gateway, 80, 0)).unwrap_or_default();
        assert_eq!(steady["spec"]["rules"][0]["backendRefs"].as_array().map(Vec::len), Some(1));
        assert_eq!(steady["spec"]["rules"][0]["backendRefs"][0]["weight"], 100);
    }
}
