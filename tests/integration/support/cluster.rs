//! The test cluster: the in-process Kubernetes API emulator by default, or a real cluster when
//! `SECUREAPI_E2E_KUBECONFIG` points at one. A test that needs the emulator's hooks (faults,
//! counters) skips that part against a real cluster, and says so in its name
//! ([`PARTLY_SKIPPED`]). Also kubeconfigs for the operator binary.

use k8s_openapi::api::core::v1::{Namespace, ResourceQuota};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use secure_api_testbed::emulator::kube::{KubeEmulator, Listener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::wait::{DEADLINE, wait_for};

/// The name suffix of every test that skips part of its body on a real cluster
/// (`SECUREAPI_E2E_KUBECONFIG`): its hooks-only part passes there without running.
pub const PARTLY_SKIPPED: &str = "_with_emulator_hooks";

/// Fails a test that asks for the emulator's hooks without saying so in its name. The test
/// harness names a test's thread after the test (`module::name`); tasks on a runtime's worker
/// threads are not checked.
fn assert_named_partly_skipped() {
    let thread = std::thread::current();
    let Some(test) = thread.name().filter(|name| name.contains("::")) else { return };
    assert!(
        test.ends_with(PARTLY_SKIPPED),
        "{test} uses the emulator's hooks, which a real cluster skips: end its name in `{PARTLY_SKIPPED}`"
    );
}

/// A cluster for one test, with a namespace of its own, deleted when the value is dropped.
///
/// Teardown is this guard, not a call at the end of each test, so that a test that fails midway
/// cleans up too. On the emulator there is nothing to do: the emulator goes away with its last
/// handle. On a real cluster the namespace is deleted, which takes an API call, and `Drop`
/// cannot await: it makes the call on a thread of its own, with a small runtime and a client of
/// its own (the test's client is served by the test's runtime, which may be blocked in this very
/// drop or shutting down after a panic), and waits for that thread, which gives up after
/// [`CLEANUP_TIMEOUT`]. The deletion is best effort, as `kubectl delete namespace --wait=false`.
/// Drop the cluster after the operator that runs on it (declare it first), so the operator
/// stops before its namespace goes.
pub struct TestCluster {
    pub client: Client,
    pub namespace: String,
    emulator: Option<KubeEmulator>,
    /// The real cluster's configuration, for the namespace's deletion; `None` on the emulator.
    real: Option<Config>,
}

/// How long dropping a [`TestCluster`] waits for a real cluster to accept its namespace's
/// deletion.
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(15);

static NEXT: AtomicU32 = AtomicU32::new(0);

impl TestCluster {
    /// Starts an emulator (or connects to the real cluster) and creates a fresh namespace.
    pub async fn start(test: &str) -> Self {
        let (client, emulator, real) = match std::env::var("SECUREAPI_E2E_KUBECONFIG") {
            Ok(path) if !path.is_empty() => {
                let config = real_cluster(&path).await;
                let client = Client::try_from(config.clone()).unwrap_or_else(|e| panic!("client for {path}: {e}"));
                (client, None, Some(config))
            }
            _ => {
                let emulator = KubeEmulator::new();
                // Like kube-controller-manager on a real cluster: no namespace stays empty, and
                // a ResourceQuota is enforced once its status is filled in.
                emulator.start_root_ca_publisher();
                emulator.start_quota_controller();
                (emulator.client(), Some(emulator), None)
            }
        };
        let namespace = create_namespace(&client, test).await;
        Self { client, namespace, emulator, real }
    }

    /// A second namespace of the same cluster (two tenants of one cluster), its CRDs being the
    /// cluster's.
    pub async fn another_namespace(&self, test: &str) -> Self {
        let namespace = create_namespace(&self.client, test).await;
        Self { client: self.client.clone(), namespace, emulator: self.emulator.clone(), real: self.real.clone() }
    }

    /// [`start`](Self::start), then [`install_crds`](Self::install_crds).
    pub async fn with_crds(test: &str) -> Self {
        let cluster = Self::start(test).await;
        cluster.install_crds().await;
        cluster
    }

    /// The emulator's hooks (faults, counters, simulations) for the part of a test that a real
    /// cluster skips: `None` there. The calling test's name must end in [`PARTLY_SKIPPED`]
    /// (checked at every call, on either lane), so `cargo nextest list` counts what the
    /// real-cluster lane skips.
    pub fn hooks(&self) -> Option<&KubeEmulator> {
        assert_named_partly_skipped();
        self.emulator.as_ref()
    }

    /// The emulator, for what only makes it behave as a real cluster does by itself (a slow first
    /// list) or reach it as one (a loopback listener): a real cluster skips nothing there.
    pub fn emulator(&self) -> Option<&KubeEmulator> {
        self.emulator.as_ref()
    }

    /// Namespaced API in the test's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Installs the operator's CRDs (server-side apply) and waits until they are Established.
    pub async fn install_crds(&self) {
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        for crd in secure_api_operator::crdgen::all() {
            let name = crd.metadata.name.clone().unwrap_or_default();
            crds.patch(&name, &PatchParams::apply("secureapi-tests").force(), &Patch::Apply(&crd))
                .await
                .unwrap_or_else(|e| panic!("applying CRD {name}: {e}"));
            wait_for(&format!("CRD {name} Established"), DEADLINE, || {
                let crds = crds.clone();
                let name = name.clone();
                async move {
                    let crd = crds.get(&name).await.ok()?;
                    let conditions = crd.status?.conditions?;
                    conditions.iter().any(|c| c.type_ == "Established" && c.status == "True").then_some(())
                }
            })
            .await;
        }
    }

    /// A kubeconfig in `dir` for the operator binary: the real cluster's, or the emulator's served
    /// on loopback for as long as the returned value lives.
    pub async fn kubeconfig_in(&self, dir: &Path) -> ProcessKubeconfig {
        match (&self.emulator, std::env::var("SECUREAPI_E2E_KUBECONFIG")) {
            (None, Ok(path)) => ProcessKubeconfig { path: PathBuf::from(path), _listener: None },
            (None, Err(_)) => panic!("a real cluster without SECUREAPI_E2E_KUBECONFIG"),
            (Some(emulator), _) => {
                let listener =
                    emulator.listen(([127, 0, 0, 1], 0).into()).await.unwrap_or_else(|e| panic!("listen: {e}"));
                let path = dir.join("kubeconfig");
                write_kubeconfig(&path, &listener.url());
                ProcessKubeconfig { path, _listener: Some(listener) }
            }
        }
    }

    /// Creates ResourceQuota `name` with `hard` and waits until it is enforced: kube-apiserver
    /// admits everything until the quota controller has copied `spec.hard` into `status.hard`.
    pub async fn enforced_quota(&self, name: &str, hard: serde_json::Value) {
        let quotas: Api<ResourceQuota> = self.api();
        let quota =
            serde_json::from_value(serde_json::json!({ "metadata": { "name": name }, "spec": { "hard": hard } }))
                .unwrap_or_else(|e| panic!("quota {name}: {e}"));
        quotas.create(&PostParams::default(), &quota).await.unwrap_or_else(|e| panic!("creating quota {name}: {e}"));
        wait_for(&format!("quota {name} in status.hard"), DEADLINE, || async {
            let status = quotas.get(name).await.ok()?.status?;
            let enforced = serde_json::to_value(status.hard?).ok()? == hard;
            enforced.then_some(())
        })
        .await;
    }
}

impl Drop for TestCluster {
    /// Deletes the test namespace on a real cluster (see [`TestCluster`]); nothing on the emulator.
    fn drop(&mut self) {
        let Some(config) = self.real.take() else { return };
        let namespace = std::mem::take(&mut self.namespace);
        let deleting = std::thread::Builder::new()
            .name(format!("cleanup {namespace}"))
            .spawn(move || delete_namespace(config, &namespace));
        match deleting {
            Ok(thread) => {
                if thread.join().is_err() {
                    eprintln!("cleanup: the thread deleting the test namespace panicked");
                }
            }
            Err(error) => eprintln!("cleanup: no thread to delete the test namespace: {error}"),
        }
    }
}

/// Deletes `namespace` with a client and runtime of its own, giving up after
/// [`CLEANUP_TIMEOUT`]; says on stderr what went wrong (a test's teardown never fails it).
fn delete_namespace(config: Config, namespace: &str) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return eprintln!("cleanup of {namespace}: no runtime: {error}"),
    };
    let deleting = async {
        let namespaces: Api<Namespace> = Api::all(Client::try_from(config)?);
        namespaces.delete(namespace, &DeleteParams::default()).await.map(|_| ())
    };
    // The timer, too, belongs to this runtime: made inside `block_on`.
    let deleted = runtime.block_on(async { tokio::time::timeout(CLEANUP_TIMEOUT, deleting).await });
    match deleted {
        Ok(Ok(())) => {}
        Ok(Err(kube::Error::Api(status))) if status.code == 404 => {}
        Ok(Err(error)) => eprintln!("cleanup of {namespace}: {error}"),
        Err(_) => eprintln!("cleanup of {namespace}: no answer within {CLEANUP_TIMEOUT:?}"),
    }
}

/// A kubeconfig file for the binary under test, and the emulator's listener it points at.
pub struct ProcessKubeconfig {
    pub path: PathBuf,
    _listener: Option<Listener>,
}

/// A fresh namespace named after `test`.
async fn create_namespace(client: &Client, test: &str) -> String {
    let namespace =
        format!("t-{}-{}-{}", short(test), std::process::id() % 10_000, NEXT.fetch_add(1, Ordering::Relaxed));
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let object = serde_json::from_value(serde_json::json!({ "metadata": { "name": namespace } }))
        .unwrap_or_else(|e| panic!("namespace object: {e}"));
    namespaces.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("creating {namespace}: {e}"));
    namespace
}

async fn real_cluster(path: &str) -> Config {
    let kubeconfig = Kubeconfig::read_from(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("kubeconfig {path}: {e}"))
}

fn short(test: &str) -> String {
    test.chars().filter(|c| c.is_ascii_alphanumeric()).take(20).collect::<String>().to_ascii_lowercase()
}

/// Writes a kubeconfig for `server` (no credentials) to `path`.
pub fn write_kubeconfig(path: &Path, server: &str) {
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n\
         contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\ncurrent-context: test\n\
         users:\n- name: test\n  user: {{}}\n"
    );
    std::fs::write(path, kubeconfig).unwrap_or_else(|error| panic!("writing {}: {error}", path.display()));
}
