//! ServiceAccount, Service, HorizontalPodAutoscaler and PodDisruptionBudget of a
//! SecureApiService, and its in-cluster URL.

use super::{
    Inputs, PORT_NAME, child_metadata, int_or_string, metadata_of_child, object_labels, selector_labels,
    service_account_name, service_name,
};
use crate::api::secure_api_service::ExposeType;
use crate::api::{SecretRef, SecureApiService, USABLE_BY_ANNOTATION};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec, MetricTarget,
    ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{Service, ServiceAccount, ServicePort, ServiceSpec};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource as _, ResourceExt};

pub use crate::api::GCP_SERVICE_ACCOUNT_ANNOTATION;
/// Service port when `expose.port` is not set.
pub const DEFAULT_SERVICE_PORT: i32 = 80;

/// The pods' ServiceAccount, annotated for Workload Identity when `gcpServiceAccount` is set. It
/// opts in for SecretRefs (`secureapi.dev/usable-by: SecretRef`): the SecretRefs the service
/// uses read their secrets as it. Not for GatewayConfigs: a gateway's identity is an admin's.
pub fn service_account(service: &SecureApiService) -> ServiceAccount {
    let mut metadata = metadata_of_child(service, service_account_name(service), object_labels(&service.name_any()));
    let gcp = service.spec.service_account.as_ref().and_then(|sa| sa.gcp_service_account.clone());
    let opt_in = (USABLE_BY_ANNOTATION.to_owned(), SecretRef::kind(&()).into_owned());
    let workload_identity = gcp.map(|gcp| (GCP_SERVICE_ACCOUNT_ANNOTATION.to_owned(), gcp));
    metadata.annotations = Some(std::iter::once(opt_in).chain(workload_identity).collect());
    ServiceAccount { metadata, ..ServiceAccount::default() }
}

/// Port of the Service: `expose.port`, or 80.
pub fn service_port(inputs: &Inputs<'_>) -> i32 {
    port_of(inputs.service)
}

fn port_of(service: &SecureApiService) -> i32 {
    service.spec.expose.port.unwrap_or(DEFAULT_SERVICE_PORT)
}

/// The Service in front of the pods: `ClusterIP` or `LoadBalancer`, one TCP port named `http`
/// that targets the container port by name.
pub fn service(inputs: &Inputs<'_>) -> Service {
    let name = service_name(inputs);
    let expose = &inputs.service.spec.expose;
    let (type_, source_ranges) = match expose.type_ {
        ExposeType::ClusterIP => ("ClusterIP", None),
        ExposeType::LoadBalancer => {
            let ranges = &expose.load_balancer_source_ranges;
            ("LoadBalancer", (!ranges.is_empty()).then(|| ranges.clone()))
        }
    };
    Service {
        metadata: child_metadata(inputs, name.clone(), object_labels(&name)),
        spec: Some(ServiceSpec {
            type_: Some(type_.into()),
            selector: Some(selector_labels(&name)),
            ports: Some(vec![ServicePort {
                name: Some(PORT_NAME.into()),
                port: service_port(inputs),
                target_port: Some(IntOrString::String(PORT_NAME.into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            load_balancer_source_ranges: source_ranges,
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// An autoscaling/v2 HorizontalPodAutoscaler on average CPU utilisation of the Deployment,
/// when `autoscaling` is set.
pub fn horizontal_pod_autoscaler(inputs: &Inputs<'_>) -> Option<HorizontalPodAutoscaler> {
    let autoscaling = inputs.service.spec.autoscaling.as_ref()?;
    let name = service_name(inputs);
    let cpu = MetricSpec {
        type_: "Resource".into(),
        resource: Some(ResourceMetricSource {
            name: "cpu".into(),
            target: MetricTarget {
                type_: "Utilization".into(),
                average_utilization: Some(autoscaling.target_cpu_utilization_percentage),
                ..MetricTarget::default()
            },
        }),
        ..MetricSpec::default()
    };
    Some(HorizontalPodAutoscaler {
        metadata: child_metadata(inputs, name.clone(), object_labels(&name)),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name,
            },
            min_replicas: Some(autoscaling.min_replicas),
            max_replicas: autoscaling.max_replicas,
            metrics: Some(vec![cpu]),
            behavior: None,
        }),
        status: None,
    })
}

/// A policy/v1 PodDisruptionBudget over the pods, when `disruptionBudget` is set.
pub fn pod_disruption_budget(inputs: &Inputs<'_>) -> Option<PodDisruptionBudget> {
    let budget = inputs.service.spec.disruption_budget.as_ref()?;
    let name = service_name(inputs);
    Some(PodDisruptionBudget {
        metadata: child_metadata(inputs, name.clone(), object_labels(&name)),
        spec: Some(PodDisruptionBudgetSpec {
            selector: Some(LabelSelector { match_labels: Some(selector_labels(&name)), ..LabelSelector::default() }),
            min_available: budget.min_available.as_ref().map(int_or_string),
            max_unavailable: budget.max_unavailable.as_ref().map(int_or_string),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    })
}

/// `http://<service>.<namespace>.svc:<service port>`; the port is always written, even 80.
pub fn in_cluster_url(service: &SecureApiService) -> String {
    let namespace = service.namespace().unwrap_or_else(|| "default".into());
    format!("http://{}.{namespace}.svc:{}", service.name_any(), port_of(service))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{inputs, seed_secrets, seed_service, seed_service_patched};
    use super::*;
    use crate::api::SecureApiService;
    use serde_json::json;

    fn with<T>(service: &SecureApiService, build: impl Fn(&Inputs<'_>) -> T) -> T {
        let secrets = seed_secrets();
        build(&inputs(service, &secrets))
    }

    fn assert_owned_and_labelled(metadata: &kube::api::ObjectMeta) {
        assert_eq!(metadata.namespace.as_deref(), Some("demo"));
        assert_eq!(metadata.labels, Some(object_labels("secure-api")));
        let owners = metadata.owner_references.clone().unwrap_or_default();
        assert!(matches!(owners.as_slice(), [o] if o.controller == Some(true) && o.uid == "uid-1"));
    }

    #[test]
    fn the_service_account_carries_the_workload_identity_annotation() {
        let sa = service_account(&seed_service());
        assert_eq!(sa.metadata.name.as_deref(), Some("secure-api"));
        assert_owned_and_labelled(&sa.metadata);
        let annotations = sa.metadata.annotations.unwrap_or_default();
        assert_eq!(
            annotations.get("iam.gke.io/gcp-service-account").map(String::as_str),
            Some("secure-api-sa@demo-project.iam.gserviceaccount.com")
        );
    }

    #[test]
    fn the_service_account_opts_in_for_secret_refs_only() {
        for service in [seed_service(), seed_service_patched(json!({ "serviceAccount": { "name": "api-runner" } }))] {
            let annotations = service_account(&service).metadata.annotations.unwrap_or_default();
            assert_eq!(annotations.get("secureapi.dev/usable-by").map(String::as_str), Some("SecretRef"));
        }
    }

    #[test]
    fn a_named_service_account_without_gcp_identity_has_no_workload_identity_annotation() {
        let service = seed_service_patched(json!({ "serviceAccount": { "name": "api-runner" } }));
        let sa = service_account(&service);
        assert_eq!(sa.metadata.name.as_deref(), Some("api-runner"));
        let annotations = sa.metadata.annotations.unwrap_or_default();
        assert_eq!(annotations.keys().collect::<Vec<_>>(), ["secureapi.dev/usable-by"]);
    }

    #[test]
    fn the_service_targets_the_named_port_of_the_selected_pods() {
        let svc = with(&seed_service(), service);
        assert_eq!(svc.metadata.name.as_deref(), Some("secure-api"));
        assert_owned_and_labelled(&svc.metadata);
        let spec = svc.spec.unwrap_or_default();
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(spec.selector, Some(selector_labels("secure-api")));
        let port = ServicePort {
            name: Some("http".into()),
            port: 80,
            target_port: Some(IntOrString::String("http".into())),
            protocol: Some("TCP".into()),
            ..ServicePort::default()
        };
        assert_eq!(spec.ports, Some(vec![port]));
    }

    #[test]
    fn a_load_balancer_service_uses_the_declared_port() {
        let exposed = seed_service_patched(json!({ "expose": { "type": "LoadBalancer", "port": 8443 } }));
        let spec = with(&exposed, service).spec.unwrap_or_default();
        assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
        assert_eq!(spec.ports.unwrap_or_default().first().map(|p| p.port), Some(8443));
        assert_eq!(in_cluster_url(&exposed), "http://secure-api.demo.svc:8443");
        assert_eq!(spec.load_balancer_source_ranges, None, "every client unless restricted");
    }

    #[test]
    fn source_ranges_restrict_a_load_balancer_only() {
        let ranges = json!(["203.0.113.0/24", "2001:db8::/32"]);
        let restricted =
            seed_service_patched(json!({ "expose": { "type": "LoadBalancer", "loadBalancerSourceRanges": ranges } }));
        let spec = with(&restricted, service).spec.unwrap_or_default();
        assert_eq!(spec.load_balancer_source_ranges, Some(vec!["203.0.113.0/24".into(), "2001:db8::/32".into()]));
        let internal = seed_service_patched(json!({ "expose": { "loadBalancerSourceRanges": ranges } }));
        assert_eq!(with(&internal, service).spec.unwrap_or_default().load_balancer_source_ranges, None);
    }

    #[test]
    fn the_in_cluster_url_always_names_the_port() {
        assert_eq!(in_cluster_url(&seed_service()), "http://secure-api.demo.svc:80");
    }

    #[test]
    fn autoscaling_yields_a_cpu_autoscaler_for_the_deployment() {
        assert!(with(&seed_service(), horizontal_pod_autoscaler).is_none());
        let scaled = seed_service_patched(json!({
            "replicas": null,
            "autoscaling": { "minReplicas": 2, "maxReplicas": 6, "targetCPUUtilizationPercentage": 70 },
        }));
        let Some(hpa) = with(&scaled, horizontal_pod_autoscaler) else { panic!("autoscaling is set") };
        assert_owned_and_labelled(&hpa.metadata);
        let spec = hpa.spec.unwrap_or_default();
        let target = &spec.scale_target_ref;
        assert_eq!(
            (target.api_version.as_deref(), target.kind.as_str(), target.name.as_str()),
            (Some("apps/v1"), "Deployment", "secure-api")
        );
        assert_eq!((spec.min_replicas, spec.max_replicas), (Some(2), 6));
        let metrics = spec.metrics.unwrap_or_default();
        let Some(resource) = metrics.first().and_then(|m| m.resource.clone()) else { panic!("a resource metric") };
        assert_eq!((metrics[0].type_.as_str(), resource.name.as_str()), ("Resource", "cpu"));
        assert_eq!((resource.target.type_.as_str(), resource.target.average_utilization), ("Utilization", Some(70)));
    }

    #[test]
    fn a_disruption_budget_exists_only_when_asked() {
        assert!(with(&seed_service(), pod_disruption_budget).is_none());
        let budgeted = seed_service_patched(json!({ "disruptionBudget": { "minAvailable": 1 } }));
        let Some(pdb) = with(&budgeted, pod_disruption_budget) else { panic!("disruptionBudget is set") };
        assert_owned_and_labelled(&pdb.metadata);
        let spec = pdb.spec.unwrap_or_default();
        assert_eq!(spec.selector.and_then(|s| s.match_labels), Some(selector_labels("secure-api")));
        assert_eq!((spec.min_available, spec.max_unavailable), (Some(IntOrString::Int(1)), None));
        let percent = seed_service_patched(json!({ "disruptionBudget": { "maxUnavailable": "50%" } }));
        let spec = with(&percent, pod_disruption_budget).and_then(|p| p.spec).unwrap_or_default();
        assert_eq!((spec.min_available, spec.max_unavailable), (None, Some(IntOrString::String("50%".into()))));
    }
}
