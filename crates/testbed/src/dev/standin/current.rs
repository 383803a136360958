//! The process of the service's current revision, read from the cluster: the SecureApiService's
//! `status.revision`, the pod template of the Deployment that runs it, and the Secrets that
//! template names. Kept per revision: a revision's template and snapshot Secrets never change
//! (the name is the template's hash, the snapshots are immutable), so only a new revision reads
//! again.

use super::process::{self, Process};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use secure_api_operator::api::SecureApiService;
use secure_api_operator::controllers::secure_api_service::revision::revision_of;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Reads the current revision's process of one SecureApiService.
pub struct Current {
    client: kube::Client,
    namespace: String,
    service: String,
    last: Mutex<Option<Arc<Process>>>,
}

impl Current {
    pub fn new(client: kube::Client, namespace: &str, service: &str) -> Self {
        Self { client, namespace: namespace.to_owned(), service: service.to_owned(), last: Mutex::new(None) }
    }

    /// The process of the current revision, or why there is none (an answer for a 503: names,
    /// never values).
    pub async fn process(&self) -> Result<Arc<Process>, String> {
        let (namespace, name) = (&self.namespace, &self.service);
        let services: Api<SecureApiService> = Api::namespaced(self.client.clone(), namespace);
        let service = services.get_opt(name).await.map_err(|e| format!("cannot read SecureApiService {name}: {e}"))?;
        let service = service.ok_or_else(|| format!("SecureApiService {namespace}/{name} does not exist"))?;
        let revision = service.status.and_then(|s| s.revision).ok_or("no revision is current yet")?;
        let cached = self.last.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(process) = cached.filter(|p| p.revision == revision) {
            return Ok(process);
        }
        let process = Arc::new(self.read(&revision).await?);
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(process.clone());
        Ok(process)
    }

    async fn read(&self, revision: &str) -> Result<Process, String> {
        let name = &self.service;
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
        let deployment = deployments.get_opt(name).await.map_err(|e| format!("cannot read Deployment {name}: {e}"))?;
        let deployment = deployment.ok_or_else(|| format!("Deployment {name} does not exist"))?;
        // Between the operator's Deployment write and its status write the two may differ.
        if revision_of(&deployment).as_deref() != Some(revision) {
            return Err(format!("the Deployment {name} does not run revision {revision}"));
        }
        let template = deployment.spec.map(|s| s.template).ok_or_else(|| format!("Deployment {name} has no spec"))?;
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let mut secrets = BTreeMap::new();
        for secret in process::secrets_of(&template) {
            let found = api.get_opt(&secret).await.map_err(|e| format!("cannot read Secret {secret}: {e}"))?;
            secrets.extend(found.map(|found| (secret, found)));
        }
        process::resolve(revision, &template, &secrets)
    }
}
