//! The real kubectl's typed `kubectl create ...` commands against the emulator: they send
//! protobuf bodies, which the emulator decodes (and answers in JSON).

use crate::support::kubectl::{Kubectl, serve_emulator};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use secure_api_testbed::emulator::kube::KubeEmulator;

fn failed<T>(error: kube::Error) -> T {
    panic!("reading an object back: {error}")
}

const COMMANDS: &[(&[&str], &str)] = &[
    (&["create", "namespace", "playground", "--save-config"], "namespace/playground created"),
    (&["create", "configmap", "db", "--from-literal=a=b", "--from-literal=host=db.local"], "configmap/db created"),
    (&["create", "secret", "generic", "s", "--from-literal=a=b", "--type=Opaque"], "secret/s created"),
    (&["create", "serviceaccount", "x"], "serviceaccount/x created"),
    (&["create", "deployment", "web", "--image=nginx", "--replicas=2", "--port=8080"], "deployment.apps/web created"),
    (
        &["create", "deployment", "job", "--image=busybox", "--replicas=0", "--", "sleep", "60"],
        "deployment.apps/job created",
    ),
    (&["create", "service", "clusterip", "web", "--tcp=80:8080"], "service/web created"),
    (&["create", "service", "nodeport", "np", "--tcp=80:8080", "--node-port=30080"], "service/np created"),
    (&["create", "pdb", "web", "--selector=app=web", "--min-available=1"], "poddisruptionbudget.policy/web created"),
    (
        &["create", "deployment", "dry", "--image=nginx", "--dry-run=server"],
        "deployment.apps/dry created (server dry run)",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_sends_protobuf_that_the_emulator_decodes() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let emulator = KubeEmulator::new();
    let (kubeconfig, listener) = serve_emulator(&emulator, dir.path()).await;
    let path = kubeconfig.clone();
    tokio::task::spawn_blocking(move || {
        for (args, expected) in COMMANDS {
            let printed = Kubectl::new(&path, "default").ok(args);
            assert!(printed.contains(expected), "kubectl {args:?} printed {printed:?}");
        }
        // Typed `-o` output is decoded from the emulator's JSON answer.
        let yaml = Kubectl::new(&path, "default").ok(&["get", "configmap", "db", "-o", "yaml"]);
        assert!(yaml.contains("host: db.local"), "{yaml}");
    })
    .await
    .unwrap_or_else(|e| panic!("kubectl steps: {e}"));
    drop(listener);

    let client = emulator.client();
    let namespace = Api::<Namespace>::all(client.clone()).get("playground").await.unwrap_or_else(failed);
    let annotations = namespace.metadata.annotations.unwrap_or_default();
    let applied = annotations.get("kubectl.kubernetes.io/last-applied-configuration").cloned().unwrap_or_default();
    assert!(applied.contains(r#""name":"playground""#), "--save-config's annotation: {applied:?}");

    let config_map = Api::<ConfigMap>::namespaced(client.clone(), "default").get("db").await.unwrap_or_else(failed);
    let data = config_map.data.unwrap_or_default();
    assert_eq!(
        (data.get("a").map(String::as_str), data.get("host").map(String::as_str)),
        (Some("b"), Some("db.local"))
    );

    let secret = Api::<Secret>::namespaced(client.clone(), "default").get("s").await.unwrap_or_else(failed);
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    assert_eq!(secret.data.unwrap_or_default().get("a").map(|b| b.0.clone()), Some(b"b".to_vec()));

    let accounts = Api::<ServiceAccount>::namespaced(client.clone(), "default");
    assert_eq!(accounts.get("x").await.unwrap_or_else(failed).metadata.name.as_deref(), Some("x"));

    let deployments = Api::<Deployment>::namespaced(client.clone(), "default");
    let web = deployments.get("web").await.unwrap_or_else(failed);
    let labels = web.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("app").map(String::as_str), Some("web"));
    let spec = web.spec.unwrap_or_default();
    assert_eq!(spec.replicas, Some(2));
    assert_eq!(spec.selector.match_labels.unwrap_or_default().get("app").map(String::as_str), Some("web"));
    let pod = spec.template.spec.unwrap_or_default();
    let container = &pod.containers[0];
    assert_eq!((container.name.as_str(), container.image.as_deref()), ("nginx", Some("nginx")));
    let ports = container.ports.clone().unwrap_or_default();
    assert_eq!(ports.iter().map(|p| p.container_port).collect::<Vec<_>>(), [8080]);
    let job = deployments.get("job").await.unwrap_or_else(failed).spec.unwrap_or_default();
    assert_eq!(job.replicas, Some(0), "--replicas=0 survives decoding (a pointer field)");
    let command = job.template.spec.unwrap_or_default().containers[0].command.clone();
    assert_eq!(command, Some(vec!["sleep".to_owned(), "60".to_owned()]));
    assert!(deployments.get_opt("dry").await.unwrap_or_else(failed).is_none(), "a server dry run stores nothing");

    let services = Api::<Service>::namespaced(client.clone(), "default");
    let web = services.get("web").await.unwrap_or_else(failed).spec.unwrap_or_default();
    assert_eq!(web.type_.as_deref(), Some("ClusterIP"));
    let port = web.ports.unwrap_or_default().into_iter().next().unwrap_or_default();
    assert_eq!((port.port, port.target_port), (80, Some(IntOrString::Int(8080))));
    assert_eq!(web.selector.unwrap_or_default().get("app").map(String::as_str), Some("web"));
    let np = services.get("np").await.unwrap_or_else(failed).spec.unwrap_or_default();
    let node_ports: Vec<_> = np.ports.unwrap_or_default().iter().map(|p| p.node_port).collect();
    assert_eq!((np.type_.as_deref(), node_ports), (Some("NodePort"), vec![Some(30080)]));

    let budgets = Api::<PodDisruptionBudget>::namespaced(client, "default");
    let budget = budgets.get("web").await.unwrap_or_else(failed).spec.unwrap_or_default();
    assert_eq!(budget.min_available, Some(IntOrString::Int(1)));
}

/// A protobuf body with a field the schema lacks is refused with 415, naming the field.
#[tokio::test]
async fn a_protobuf_field_outside_the_schema_is_415() {
    let emulator = KubeEmulator::new();
    // k8s\0 + Unknown{typeMeta{v1, ConfigMap}, raw: ConfigMap{metadata{name: db}, field 9}}.
    let body = b"k8s\0\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12\x08\x0a\x04\x0a\x02db\x48\x01".to_vec();
    let request = hyper::Request::post("/api/v1/namespaces/default/configmaps")
        .header("content-type", "application/vnd.kubernetes.protobuf")
        .header("accept", "application/vnd.kubernetes.protobuf, application/json")
        .body(kube::client::Body::from(body))
        .unwrap_or_else(|e| panic!("request: {e}"));
    let response = emulator.client().send(request).await.unwrap_or_else(|e| panic!("send: {e}"));
    assert_eq!(response.status().as_u16(), 415);
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(content_type.as_deref(), Some("application/json"), "answers stay JSON");
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.map(|b| b.to_bytes());
    let status: serde_json::Value = serde_json::from_slice(&bytes.unwrap_or_default()).unwrap_or_default();
    assert_eq!(status["reason"], "UnsupportedMediaType");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(message.contains("ConfigMap field 9") && message.contains("kubectl apply -f"), "{message}");
}
