//! The canary Deployment of a SecureApiService (pure): the new revision's pod template, pinned to
//! its own snapshots, running beside the stable Deployment under `<service>-canary`, and the
//! Service of its pods. Its pods carry the service's label and a track label of their own, so
//! the canary's selector finds only them. Split by replica ratio, they also carry the stable
//! pods' name label, so the one Service sends them their share of the traffic; split by an
//! HTTPRoute, they do not, and only the route's weight reaches them, through their own Service.

use super::service::DEFAULT_SERVICE_PORT;
use super::{NAME_LABEL, PORT_NAME, metadata_of_child, object_labels, service_label};
use crate::api::SecureApiService;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use std::collections::BTreeMap;

/// Label of the canary's pods (and its selector).
pub const TRACK_LABEL: &str = "secureapi.dev/track";
/// Value of [`TRACK_LABEL`] on the canary's pods.
pub const CANARY_TRACK: &str = "canary";

/// Name of the canary Deployment: `<service>-canary`.
pub fn canary_name(service: &str) -> String {
    format!("{service}-canary")
}

/// Labels that select the canary's pods (and only them).
fn canary_selector(service: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(service_label(), service.to_owned()), (TRACK_LABEL.into(), CANARY_TRACK.into())])
}

/// The canary Deployment for the revision `revision_deployment` describes (as
/// [`super::deployment::deployment`] builds it for the stable one): `replicas` pods, no
/// autoscaler, and `annotations` (the trial's record) in place of the stable one's. `routed`:
/// the traffic is split by an HTTPRoute, so the pods stay out of the stable Service.
pub fn canary_deployment(
    service: &str,
    revision_deployment: &Deployment,
    replicas: i32,
    annotations: BTreeMap<String, String>,
    routed: bool,
) -> Deployment {
    let selector = canary_selector(service);
    let mut metadata = revision_deployment.metadata.clone();
    metadata.name = Some(canary_name(service));
    metadata.labels = Some(object_labels(service));
    metadata.annotations = Some(annotations);
    let mut spec = revision_deployment.spec.clone().unwrap_or_default();
    spec.replicas = Some(replicas);
    spec.selector = LabelSelector { match_labels: Some(selector.clone()), ..LabelSelector::default() };
    let labels =
        spec.template.metadata.get_or_insert_with(Default::default).labels.get_or_insert_with(Default::default);
    labels.extend(selector);
    if routed {
        labels.remove(NAME_LABEL);
    }
    Deployment { metadata, spec: Some(DeploymentSpec { ..spec }), status: None }
}

/// The Service of the canary's pods, `<service>-canary`, on the service's port: the backend an
/// HTTPRoute sends the canary's weight to.
pub fn canary_service(service: &SecureApiService) -> Service {
    let name = service.name_any();
    let port = service.spec.expose.port.unwrap_or(DEFAULT_SERVICE_PORT);
    Service {
        metadata: metadata_of_child(service, canary_name(&name), object_labels(&name)),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(canary_selector(&name)),
            ports: Some(vec![ServicePort {
                name: Some(PORT_NAME.into()),
                port,
                target_port: Some(IntOrString::String(PORT_NAME.into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// Canary pods for `weight` percent of the traffic when an HTTPRoute splits it: enough to serve
/// that share at the stable pods' load (rounded up, at least one).
pub fn routed_canary_replicas(stable: i32, weight: i32) -> i32 {
    let (stable, weight) = (i64::from(stable.max(0)), i64::from(weight.clamp(1, 99)));
    i32::try_from(((stable * weight + 99) / 100).max(1)).unwrap_or(i32::MAX)
}

/// Canary pods beside `stable` stable ones so that the canary gets `weight` percent of the pods
/// (rounded up, at least one): the stable Deployment keeps every replica, so a failing canary
/// never lowers the capacity that serves.
pub fn canary_replicas(stable: i32, weight: i32) -> i32 {
    let (stable, weight) = (i64::from(stable.max(0)), i64::from(weight.clamp(1, 99)));
    let wanted = ((stable * weight + 99 - weight) / (100 - weight)).max(1);
    i32::try_from(wanted).unwrap_or(i32::MAX)
}

/// The canary's share of the pods, in percent (rounded to the nearest).
pub fn effective_weight(stable: i32, canary: i32) -> i32 {
    let (stable, canary) = (i64::from(stable.max(0)), i64::from(canary.max(0)));
    let total = stable + canary;
    if total == 0 {
        return 0;
    }
    i32::try_from((canary * 200 + total) / (total * 2)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::selector_labels;
    use serde_json::json;

    #[test]
    fn the_canary_gets_its_weight_of_the_pods_and_never_takes_one_from_the_stable() {
        assert_eq!(canary_replicas(9, 10), 1);
        assert_eq!(effective_weight(9, 1), 10);
        assert_eq!(canary_replicas(10, 50), 10);
        assert_eq!(effective_weight(10, 10), 50);
        // One stable pod: the smallest canary is one pod, half of the pods.
        assert_eq!(canary_replicas(1, 10), 1);
        assert_eq!(effective_weight(1, 1), 50);
        assert_eq!(canary_replicas(3, 20), 1, "3 × 20 / 80 rounds up to 1");
        assert_eq!(effective_weight(3, 1), 25);
        assert_eq!(canary_replicas(1, 99), 99);
        assert_eq!(effective_weight(0, 0), 0);
    }

    #[test]
    fn the_canary_selects_only_its_own_pods_and_keeps_the_revisions_template() {
        let stable: Deployment = serde_json::from_value(json!({
            "metadata": { "name": "api", "namespace": "team", "annotations": { "secureapi.dev/previous-revision": "api-1" } },
            "spec": {
                "replicas": 3,
                "selector": { "matchLabels": selector_labels("api") },
                "template": { "metadata": { "labels": selector_labels("api"), "annotations": { "secureapi.dev/secret-versions": "db=8" } } },
            },
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let marks = BTreeMap::from([("secureapi.dev/revision".to_owned(), "api-2".to_owned())]);
        let canary = canary_deployment("api", &stable, 1, marks.clone(), false);
        assert_eq!(canary.metadata.name.as_deref(), Some("api-canary"));
        assert_eq!(canary.metadata.annotations, Some(marks.clone()), "no rollback record of the stable one");
        let spec = canary.spec.unwrap_or_default();
        assert_eq!(spec.replicas, Some(1));
        let selector = spec.selector.match_labels.unwrap_or_default();
        assert_eq!(selector.get(TRACK_LABEL).map(String::as_str), Some(CANARY_TRACK));
        let template = spec.template.metadata.unwrap_or_default();
        let labels = template.labels.unwrap_or_default();
        assert!(selector.iter().all(|(k, v)| labels.get(k) == Some(v)), "the canary's pods match its selector");
        assert!(selector_labels("api").iter().all(|(k, v)| labels.get(k) == Some(v)), "and the Service's");
        assert_eq!(
            template.annotations.unwrap_or_default().get("secureapi.dev/secret-versions").map(String::as_str),
            Some("db=8")
        );

        // Routed: the stable Service no longer selects them; the canary's Service does.
        let routed = canary_deployment("api", &stable, 1, marks, true);
        let labels = routed.spec.and_then(|s| s.template.metadata?.labels).unwrap_or_default();
        assert!(!selector_labels("api").iter().all(|(k, v)| labels.get(k) == Some(v)), "out of the Service");
        assert!(selector.iter().all(|(k, v)| labels.get(k) == Some(v)), "still the canary's");
    }

    #[test]
    fn a_routed_canary_needs_pods_for_its_share_only() {
        assert_eq!(routed_canary_replicas(9, 10), 1);
        assert_eq!(routed_canary_replicas(10, 50), 5);
        assert_eq!(routed_canary_replicas(1, 10), 1);
        assert_eq!(routed_canary_replicas(20, 99), 20);
    }
}
