//! The demo's identity steps: the seed's Google IAM (secure-api-sa alone reads the three
//! secrets; the operator's own identity holds nothing), and a SecretRef in another namespace
//! that names the seed's secret and is refused, while the seed's service is untouched.

use super::{Demo, SERVICE};
use crate::dev::example_iam::{self, principal};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::api::{Api, Patch, PatchParams};
use secure_api_operator::api::conditions::{find_condition, reasons, types};
use secure_api_operator::api::{SecretRef, USABLE_BY_ANNOTATION};
use serde_json::json;

/// The namespace of the refused SecretRef.
const OTHER_NAMESPACE: &str = "team-b";
const STOLEN: &str = "stolen";
const FIELD_MANAGER: &str = "secure-api-operator-dev";

impl Demo<'_> {
    pub(super) async fn grant_iam(&mut self) -> Result<Vec<String>, String> {
        Ok(example_iam::grant(&self.playground.gcp, &self.playground.gcp_project, &self.options.namespace))
    }

    pub(super) async fn other_namespace_refused(&mut self) -> Result<Vec<String>, String> {
        let revision = self.service().await?.status.and_then(|s| s.revision).unwrap_or_default();
        let generation = self.deployment().await?.metadata.generation;
        self.apply_stolen().await?;
        let refs: Api<SecretRef> = Api::namespaced(self.client.clone(), OTHER_NAMESPACE);
        let message = self
            .wait(|| async {
                let object =
                    refs.get(STOLEN).await.map_err(|e| format!("SecretRef {OTHER_NAMESPACE}/{STOLEN}: {e}"))?;
                let status = object.status.as_ref();
                let conditions = status.map(|s| s.conditions.as_slice()).unwrap_or_default();
                match find_condition(conditions, types::READY) {
                    Some(c) if c.reason == reasons::PERMISSION_DENIED => Ok(c.message.clone()),
                    Some(c) if c.is_true(types::READY) => {
                        Err(format!("SecretRef {OTHER_NAMESPACE}/{STOLEN} synced: it must be refused"))
                    }
                    Some(c) => {
                        Err(format!("SecretRef {OTHER_NAMESPACE}/{STOLEN}: Ready={:?} ({})", c.status, c.reason))
                    }
                    None => Err(format!("SecretRef {OTHER_NAMESPACE}/{STOLEN}: no Ready condition yet")),
                }
            })
            .await?;
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), OTHER_NAMESPACE);
        if secrets.get_opt(STOLEN).await.map_err(|e| format!("Secret {OTHER_NAMESPACE}/{STOLEN}: {e}"))?.is_some() {
            return Err(format!("a Secret {OTHER_NAMESPACE}/{STOLEN} was written"));
        }
        let service = self.service().await?;
        let deployments: Api<Deployment> = self.api();
        let deployment = deployments.get(SERVICE).await.map_err(|e| format!("Deployment {SERVICE}: {e}"))?;
        let now = service.status.and_then(|s| s.revision).unwrap_or_default();
        if now != revision || deployment.metadata.generation != generation {
            return Err(format!("SecureApiService {SERVICE} changed: revision {revision} -> {now}"));
        }
        let denied = principal(&self.playground.gcp_project, OTHER_NAMESPACE, "app");
        let logged = self.playground.gcp.denials().iter().any(|d| d.principal == denied);
        Ok(vec![
            format!("SecretRef {OTHER_NAMESPACE}/{STOLEN} -> api-config-db as ServiceAccount {OTHER_NAMESPACE}/app"),
            format!("Ready=False PermissionDenied: {message}"),
            format!("Secret Manager denied {denied}{}", if logged { "" } else { " (not in the denial log!)" }),
            format!("no Secret written in {OTHER_NAMESPACE}; SecureApiService {SERVICE} still at revision {now}"),
        ])
    }

    /// `kubectl create namespace team-b`, a ServiceAccount `app` there and a SecretRef that names
    /// the seed's database secret.
    async fn apply_stolen(&self) -> Result<(), String> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let namespace = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": OTHER_NAMESPACE } });
        Api::<Namespace>::all(self.client.clone())
            .patch(OTHER_NAMESPACE, &params, &Patch::Apply(&namespace))
            .await
            .map_err(|e| format!("Namespace {OTHER_NAMESPACE}: {e}"))?;
        // Opted in, so what stops it is Google's IAM, not the opt-in.
        let annotations = json!({ (USABLE_BY_ANNOTATION): "SecretRef" });
        let account = json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": { "name": "app", "annotations": annotations } });
        Api::<ServiceAccount>::namespaced(self.client.clone(), OTHER_NAMESPACE)
            .patch("app", &params, &Patch::Apply(&account))
            .await
            .map_err(|e| format!("ServiceAccount {OTHER_NAMESPACE}/app: {e}"))?;
        let stolen = json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": STOLEN },
            "spec": { "secret": "api-config-db", "serviceAccountName": "app", "format": "json" },
        });
        Api::<SecretRef>::namespaced(self.client.clone(), OTHER_NAMESPACE)
            .patch(STOLEN, &params, &Patch::Apply(&stolen))
            .await
            .map_err(|e| format!("SecretRef {OTHER_NAMESPACE}/{STOLEN}: {e}"))?;
        Ok(())
    }
}
