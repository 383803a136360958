//! The operator's pod is hardened (securityContext, probes, resources, no host access) and the
//! optional objects (ServiceMonitor, PodDisruptionBudget, NetworkPolicy) render as documented.

use super::RELEASE;
use super::combinations::EVERYTHING_ON;
use super::objects::{container, deployment, env_of, find, has_kind, pod};
use super::tools::render;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The Service in front of the metrics port.
fn metrics_service(docs: &[Value]) -> &Value {
    find(docs, "Service", &format!("{RELEASE}-metrics"))
}

#[test]
fn the_operator_pod_is_hardened() {
    let docs = render("");
    let pod = pod(&docs);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(pod["automountServiceAccountToken"], true);
    let container = &pod["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["runAsUser"], 65532);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["privileged"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert!(security["capabilities"]["add"].is_null());
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(container["args"], json!(["run"]));
    assert_eq!(container["ports"], json!([{ "name": "metrics", "containerPort": 8080, "protocol": "TCP" }]));
    assert_eq!(container["livenessProbe"]["httpGet"], json!({ "path": "/healthz", "port": "metrics" }));
    assert_eq!(container["readinessProbe"]["httpGet"], json!({ "path": "/readyz", "port": "metrics" }));
    assert!(
        container["resources"]["limits"]["memory"].is_string() && container["resources"]["requests"]["cpu"].is_string()
    );
    assert_eq!(container["volumeMounts"][0]["mountPath"], "/tmp", "a writable /tmp beside the read-only root");
    assert!(pod["hostNetwork"].is_null() && pod["hostPID"].is_null());

    let service_account = find(&docs, "ServiceAccount", RELEASE);
    assert_eq!(service_account["automountServiceAccountToken"], false);
    let service = metrics_service(&docs);
    assert_eq!(service["spec"]["type"], "ClusterIP");
    assert_eq!(
        service["spec"]["ports"],
        json!([{ "name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP" }])
    );
    for kind in ["ServiceMonitor", "PrometheusRule", "ConfigMap", "PodDisruptionBudget", "NetworkPolicy"] {
        assert!(!has_kind(&docs, kind), "{kind} is off by default");
    }
}

#[test]
fn the_optional_objects_render_as_documented() {
    let docs = render(EVERYTHING_ON);
    let deployment = deployment(&docs);
    assert_eq!(deployment["spec"]["replicas"], 2);
    let container = container(&docs);
    assert_eq!(
        container["image"],
        "europe-docker.pkg.dev/demo-project/images/secure-api-operator@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    );
    assert_eq!(container["args"], json!(["run", "--gcp-timeout", "20"]));
    assert_eq!(env_of(&docs, "RUST_BACKTRACE").as_deref(), Some("1"));
    assert_eq!(
        pod(&docs)["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"]["app.kubernetes.io/instance"],
        RELEASE
    );

    let service_account = find(&docs, "ServiceAccount", RELEASE);
    assert_eq!(
        service_account["metadata"]["annotations"],
        json!({
            "iam.gke.io/gcp-service-account": "secure-api-operator@demo-project.iam.gserviceaccount.com",
            "team": "platform"
        })
    );

    let monitor = find(&docs, "ServiceMonitor", RELEASE);
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    let service = metrics_service(&docs);
    for (key, value) in monitor["spec"]["selector"]["matchLabels"].as_object().into_iter().flatten() {
        assert_eq!(&service["metadata"]["labels"][key], value, "the ServiceMonitor selects the metrics Service");
    }

    let budget = find(&docs, "PodDisruptionBudget", RELEASE);
    assert_eq!(budget["spec"]["maxUnavailable"], 1);
    assert_eq!(budget["spec"]["selector"], deployment["spec"]["selector"]);

    let policy = find(&docs, "NetworkPolicy", RELEASE);
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        policy["spec"]["ingress"],
        json!([{
            "ports": [{ "port": "metrics", "protocol": "TCP" }],
            "from": [{ "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": "monitoring" } } }]
        }])
    );
    let egress = policy["spec"]["egress"].as_array().cloned().unwrap_or_default();
    let ports: BTreeSet<i64> = egress
        .iter()
        .flat_map(|rule| rule["ports"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p["port"].as_i64())
        .collect();
    assert_eq!(ports, BTreeSet::from([53, 80, 443, 988, 6443]));
    assert!(egress.iter().any(|rule| rule["to"] == json!([{ "ipBlock": { "cidr": "172.16.0.2/32" } }])));
    assert!(egress.iter().any(|rule| rule["to"] == json!([{ "ipBlock": { "cidr": "199.36.153.8/30" } }])));
}
