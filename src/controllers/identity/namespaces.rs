//! Which namespaces may use the operator's own Google identity: those matching the label
//! selector `--operator-identity-namespaces` (none when it is empty). The API server evaluates
//! the selector; a reflector keeps the matching namespaces.

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, ListParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use tokio_util::sync::CancellationToken;

/// The namespaces allowed to use the operator's identity.
#[derive(Clone, Default)]
pub struct OperatorNamespaces {
    /// `None`: no namespace is allowed (the default).
    selected: Option<Store<Namespace>>,
}

impl OperatorNamespaces {
    /// No namespace may use the operator's identity.
    pub fn none() -> Self {
        Self::default()
    }

    /// Namespaces matching `selector` (an empty selector allows none). The selector is checked
    /// by one list call first, so a typo or missing RBAC fails at start-up, not in every reconcile.
    ///
    /// # Errors
    /// The API server's refusal of the selector (400) or of the list (403).
    pub async fn watch(client: Client, selector: &str, shutdown: CancellationToken) -> Result<Self, kube::Error> {
        if selector.trim().is_empty() {
            return Ok(Self::none());
        }
        let api: Api<Namespace> = Api::all(client);
        api.list_metadata(&ListParams::default().labels(selector).limit(1)).await?;
        let (store, writer) = reflector::store();
        let stream = reflector::reflector(writer, watcher(api, watcher::Config::default().labels(selector)))
            .default_backoff()
            .touched_objects();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream.take_until(shutdown.cancelled_owned()));
            while stream.next().await.is_some() {}
        });
        Ok(Self { selected: Some(store) })
    }

    /// Whether `namespace` may use the operator's identity (waits for the first list).
    pub async fn allows(&self, namespace: &str) -> bool {
        let Some(store) = &self.selected else { return false };
        if store.wait_until_ready().await.is_err() {
            return false;
        }
        store.get(&ObjectRef::new(namespace)).is_some()
    }
}
