//! The example's Google side, as the playground's printed gcloud commands set it up: the Google
//! service account secure-api-sa alone reads the three secrets and is worn by the ServiceAccount
//! secure-api; the ServiceAccount gateway-admin manages API Gateway and the API key as a
//! federated principal; the operator's own identity holds nothing. The demo and the tests share it.

use crate::emulator::gcp::GcpEmulator;

/// The example's secrets in Secret Manager.
pub const SECRET_IDS: [&str; 3] = ["api-config-db", "api-config-keys", "api-config-config"];
/// The ServiceAccount the SecureApiService example creates, which its SecretRefs read as.
pub const SERVICE_ACCOUNT: &str = "secure-api";
/// The ServiceAccount the GatewayConfig example names (granted API Gateway as a principal).
pub const GATEWAY_ADMIN: &str = "gateway-admin";

/// GKE's federated principal of ServiceAccount `ksa` of `namespace`.
pub fn principal(project: &str, namespace: &str, ksa: &str) -> String {
    let number = GcpEmulator::project_number(project);
    format!(
        "principal://iam.googleapis.com/projects/{number}/locations/global/workloadIdentityPools/{project}.svc.id.goog/subject/ns/{namespace}/sa/{ksa}"
    )
}

/// Grants the example's IAM in `project` for the examples applied in `namespace`; returns one
/// line per grant, naming the gcloud command that makes it.
pub fn grant(gcp: &GcpEmulator, project: &str, namespace: &str) -> Vec<String> {
    let gsa = gcp.create_service_account(project, "secure-api-sa");
    let mut lines = vec![format!("{gsa}   (gcloud iam service-accounts create secure-api-sa)")];
    for id in SECRET_IDS {
        let member = format!("serviceAccount:{gsa}");
        gcp.add_iam_binding(&format!("projects/{project}/secrets/{id}"), "roles/secretmanager.secretAccessor", &member);
        lines.push(format!("{id:<18}  secretAccessor for {member}   (gcloud secrets add-iam-policy-binding {id} ...)"));
    }
    let ksa = format!("serviceAccount:{project}.svc.id.goog[{namespace}/{SERVICE_ACCOUNT}]");
    gcp.add_iam_binding(&format!("projects/{project}/serviceAccounts/{gsa}"), "roles/iam.workloadIdentityUser", &ksa);
    lines.push(format!(
        "secure-api-sa       workloadIdentityUser for {ksa}   (gcloud iam service-accounts add-iam-policy-binding ...)"
    ));
    let gateway_admin = principal(project, namespace, GATEWAY_ADMIN);
    gcp.add_iam_binding(&format!("projects/{project}"), "roles/apigateway.admin", &gateway_admin);
    lines.push(format!("project {project}   apigateway.admin for the ServiceAccount {namespace}/{GATEWAY_ADMIN}"));
    // The gateway's API key: enable its managed service, create and read the key.
    for role in ["roles/serviceusage.serviceUsageAdmin", "roles/serviceusage.apiKeysAdmin"] {
        gcp.add_iam_binding(&format!("projects/{project}"), role, &gateway_admin);
    }
    lines.push(format!(
        "project {project}   serviceUsageAdmin, apiKeysAdmin for {namespace}/{GATEWAY_ADMIN}   (the gateway's API key)"
    ));
    lines.push("the operator's own identity holds no role".into());
    lines
}
