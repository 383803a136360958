//! `testbed dev [--demo]`: the first thing a person runs. Emulated Kubernetes and
//! Google Cloud with the operator, in one process on loopback; `--demo` plays the example and
//! exits, otherwise the playground stays up for kubectl and gcloud until Ctrl-C.
//!
//! The operator's log goes to a file in the playground's directory: stdout is for people.

pub mod demo;
pub mod example_iam;
pub mod examples;
pub mod playground;
pub mod standin;
pub mod table;

use crate::cli::DevArgs;
use crate::telemetry;
use demo::DemoOptions;
use playground::{Playground, PlaygroundOptions};
use secure_api_operator::cli::LogFormat;
use secure_api_operator::shutdown::shutdown_signal;
use std::io::Write;

/// Runs the playground (and the demo). The error is the one line `main` prints.
pub async fn run(args: DevArgs, log_format: LogFormat, log_filter: &str) -> Result<(), String> {
    let dir = args.dir.clone().unwrap_or_else(|| std::env::temp_dir().join("secure-api-operator-dev"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let log = dir.join("operator.log");
    telemetry::init_to_file(log_format, log_filter, &log)?;
    let options = PlaygroundOptions {
        kube_listen: args.kube_listen,
        gcp_listen: args.gcp_listen,
        dir,
        gcp_project: args.gcp_project.clone(),
        notifications: true,
        prometheus_allowed_url_prefixes: Vec::new(),
    };
    let playground = Playground::start(&options).await?;
    let mut stdout = std::io::stdout();
    let _ = stdout.write_all(banner(&playground, &log, args.demo).as_bytes());
    let outcome = if args.demo {
        let played = demo::play(&playground, &DemoOptions::default(), &mut stdout).await;
        if played.is_ok() {
            let _ = writeln!(
                stdout,
                "\nTo drive the playground yourself: cargo run --release --example testbed -- dev (without --demo)."
            );
        }
        played.map_err(|failure| format!("{failure} (the operator's log: {})", log.display()))
    } else {
        let _ = stdout.write_all(instructions(&playground).as_bytes());
        let _ = stdout.flush();
        shutdown_signal().await;
        Ok(())
    };
    playground.stop().await;
    outcome
}

fn banner(playground: &Playground, log: &std::path::Path, demo: bool) -> String {
    let title = if demo {
        "secure-api-operator playground (dev --demo): the example on emulated Kubernetes and Google Cloud"
    } else {
        "secure-api-operator playground (dev): emulated Kubernetes and Google Cloud (nothing is persisted)"
    };
    format!(
        "{title}\n\n  Kubernetes API   {}   (kubeconfig {})\n  Google Cloud     {}   (Secret Manager, API Gateway, STS and IAM, project {})\n  operator         metrics http://{}/metrics, log {}\n",
        playground.kube_url(),
        playground.kubeconfig.display(),
        playground.gcp_url(),
        playground.gcp_project,
        playground.metrics_addr(),
        log.display(),
    )
}

/// The commands to drive the playground from another terminal.
fn instructions(playground: &Playground) -> String {
    let gcp = playground.gcp_url();
    let kubeconfig = playground.kubeconfig.display();
    let project = &playground.gcp_project;
    let number = crate::emulator::gcp::GcpEmulator::project_number(project);
    let topic = playground.topic();
    let port = playground.gcp_addr().port();
    let metrics = playground.standin().metrics_addr();
    let pool = format!(
        "principal://iam.googleapis.com/projects/{number}/locations/global/workloadIdentityPools/{project}.svc.id.goog"
    );
    format!(
        r#"
Drive it from another terminal:

  export KUBECONFIG={kubeconfig}
  export CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER={gcp}/ CLOUDSDK_API_ENDPOINT_OVERRIDES_APIGATEWAY={gcp}/
  export CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM={gcp}/ CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER={gcp}/ CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB={gcp}/
  export CLOUDSDK_API_ENDPOINT_OVERRIDES_APIKEYS={gcp}/ CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE={gcp}/
  export CLOUDSDK_AUTH_ACCESS_TOKEN=emulator CLOUDSDK_CORE_PROJECT={project} CLOUDSDK_CONFIG=$(mktemp -d)

  # the example's secrets, readable by secure-api-sa only; the gateway managed as the ServiceAccount gateway-admin
  echo -n '{{"host":"db.example.com","port":5432,"username":"api_user","password":"change-me"}}' | gcloud secrets create api-config-db --topics={topic} --data-file=-
  echo -n '{{"external_api_key":"k1","jwt_secret":"j1","encryption_key":"e1"}}' | gcloud secrets create api-config-keys --topics={topic} --data-file=-
  echo -n '{{"debug_mode":false,"rate_limit":1000,"cache_ttl":3600,"log_level":"INFO"}}' | gcloud secrets create api-config-config --topics={topic} --data-file=-
  gcloud iam service-accounts create secure-api-sa
  for s in api-config-db api-config-keys api-config-config; do gcloud secrets add-iam-policy-binding $s --role=roles/secretmanager.secretAccessor --member=serviceAccount:secure-api-sa@{project}.iam.gserviceaccount.com; done
  gcloud iam service-accounts add-iam-policy-binding secure-api-sa@{project}.iam.gserviceaccount.com --role=roles/iam.workloadIdentityUser --member='serviceAccount:{project}.svc.id.goog[default/secure-api]'
  for r in apigateway.admin serviceusage.serviceUsageAdmin serviceusage.apiKeysAdmin; do gcloud projects add-iam-policy-binding {project} --role=roles/$r --member={pool}/subject/ns/default/sa/gateway-admin; done
  kubectl apply --server-side -f deploy/examples/
  kubectl get secureapi

  # the example's validation through its gateway (on this listener; a stand-in answers for the API)
  kubectl wait secureapiservice/secure-api --for=condition=Ready --timeout=60s
  kubectl wait gatewayconfig/secure-api --for=condition=ApiKeysReady --timeout=60s
  GW=$(kubectl get gatewayconfig secure-api -o jsonpath='{{.status.gatewayUrl}}'); GW=${{GW#https://}}:{port}
  KEY=$(kubectl get secret secure-api-key -o jsonpath='{{.data.api-key}}' | base64 -d)
  curl -sS --resolve $GW:127.0.0.1 http://$GW/health
  curl -sS --resolve $GW:127.0.0.1 http://$GW/config
  curl -sS --resolve $GW:127.0.0.1 "http://$GW/config?key=$KEY"
  gcloud services api-keys list

  # rotate the database password: Secret Manager's notification (topic {topic}) brings it at once,
  # and exactly one new revision rolls out, pinned to version 2
  echo -n '{{"host":"db.example.com","port":5432,"username":"api_user","password":"rotated"}}' | gcloud secrets versions add api-config-db --data-file=-
  kubectl describe secretref db
  kubectl get events
  kubectl get secureapiservice secure-api -o yaml
  gcloud api-gateway gateways describe default-secure-api --location us-central1

  # the stand-in's database refuses a password that starts with "wrong": a revision with one never
  # gets a Ready pod; with spec.rollout.strategy Canary its canary is aborted (docs/rollouts.md).
  # One that starts with "nogrants" logs in (its pods are Ready and take traffic) but may not query:
  # that revision's GET /api/data answers 500. Requests by revision and status class, for a
  # Prometheus to scrape: curl -sS http://{metrics}/metrics (secureapi_standin_requests_total)

Stop with Ctrl-C.
"#
    )
}
