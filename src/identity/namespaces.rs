//! Which namespaces may use the operator's own Google identity: those matching the label
//! selector `--operator-identity-namespaces` (none when it is empty). The API server evaluates
//! the selector; a reflector keeps the matching namespaces.

use crate::runtime::listed::Listed;
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
    selected: Option<Selected>,
}

#[derive(Clone)]
struct Selected {
    store: Store<Namespace>,
    listed: Listed,
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
        let listed = Listed::default();
        let events = reflector::reflector(writer, watcher(api, watcher::Config::default().labels(selector)))
            .default_backoff()
            .take_until(shutdown.cancelled_owned());
        let first_list = listed.clone();
        tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::InitDone) => first_list.set(),
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "cannot watch the operator identity's namespaces; retrying"),
                }
            }
        });
        Ok(Self { selected: Some(Selected { store, listed }) })
    }

    /// Waits until the namespaces are listed once (at once when none are selected). The
    /// controllers start after this, so [`Self::allows`] never answers from an empty list.
    pub async fn listed(&self) {
        if let Some(selected) = &self.selected {
            selected.listed.wait().await;
        }
    }

    /// Whether `namespace` may use the operator's identity.
    pub fn allows(&self, namespace: &str) -> bool {
        let Some(selected) = &self.selected else { return false };
        selected.store.get(&ObjectRef::new(namespace)).is_some()
    }
}
