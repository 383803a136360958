//! Leader election with two `run` processes (the real binary) against one cluster and the GCP
//! emulator: exactly one holds the Lease and reconciles; on SIGTERM it releases the Lease and the
//! standby takes over at once; on SIGKILL the standby takes over once the Lease expires; a leader
//! that cannot renew exits with one clear line. Against a real cluster too
//! (`SECUREAPI_E2E_KUBECONFIG`), except the fault-injection case.

use crate::support::cluster::{ProcessKubeconfig, TestCluster};
use crate::support::http::{free_port, http_get};
use crate::support::wait::{DEADLINE, wait_for};
use crate::support::{PROJECT, operator_bin};
use hyper::StatusCode;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use secure_api_operator::api::SecretRef;
use secure_api_testbed::emulator::gcp::GcpEmulator;
use secure_api_testbed::emulator::kube::{Fault, Listener};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const LEASE: &str = "secure-api-operator";
const LEASE_DURATION: u64 = 4;
const RETRY_PERIOD: u64 = 1;

/// A test cluster reachable over TCP, the GCP emulator, and a directory for kubeconfig and logs.
struct Setup {
    cluster: TestCluster,
    gcp: GcpEmulator,
    gcp_listener: Listener,
    kubeconfig: ProcessKubeconfig,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn start(test: &str) -> Self {
        let cluster = TestCluster::with_crds(test).await;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let kubeconfig = cluster.kubeconfig_in(dir.path()).await;
        let gcp = GcpEmulator::new();
        let gcp_listener = gcp.listen(([127, 0, 0, 1], 0).into()).await.unwrap_or_else(|e| panic!("gcp listen: {e}"));
        Self { cluster, gcp, gcp_listener, kubeconfig, dir }
    }

    /// Starts `run --leader-election` as `identity`, logging to a file (a pipe could fill up).
    fn spawn(&self, identity: &str) -> Replica {
        let metrics: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let log = self.dir.path().join(format!("{identity}.log"));
        let file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        let (namespace, gcp) = (self.cluster.namespace.as_str(), self.gcp_listener.url());
        let child = Command::new(operator_bin())
            .arg("run")
            .args(["--kubeconfig", &self.kubeconfig.path.to_string_lossy(), "--metrics-addr", &metrics.to_string()])
            .args(["--namespace", namespace, "--startup-timeout", "10", "--gcp-project", PROJECT, "--gcp-no-auth"])
            .args(["--secret-manager-endpoint", &gcp, "--api-gateway-endpoint", &gcp])
            .args(["--operator-identity-namespaces", &format!("kubernetes.io/metadata.name={namespace}")])
            .args(["--leader-election", "--lease-namespace", namespace, "--leader-identity", identity])
            .args(["--lease-duration", &LEASE_DURATION.to_string(), "--lease-retry-period", &RETRY_PERIOD.to_string()])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {identity}: {e}"));
        Replica { identity: identity.to_owned(), metrics, log, child }
    }

    async fn lease(&self) -> Option<LeaseSpec> {
        let api: Api<Lease> = self.cluster.api();
        api.get_opt(LEASE).await.ok()??.spec
    }

    /// Waits until exactly one of `a` and `b` leads (its gauge says 1, the other's 0, and the
    /// Lease names it); returns (leader, standby).
    async fn single_leader(&self, a: Replica, b: Replica) -> (Replica, Replica) {
        let a_leads = wait_for("exactly one leader", DEADLINE, || async {
            let gauges = (metrics_leader(&a).await?, metrics_leader(&b).await?);
            let holder = self.lease().await?.holder_identity?;
            match gauges {
                (1, 0) if holder == a.identity => Some(true),
                (0, 1) if holder == b.identity => Some(false),
                _ => None,
            }
        })
        .await;
        if a_leads { (a, b) } else { (b, a) }
    }

    async fn create_secret_ref(&self, name: &str) {
        self.gcp.add_version(PROJECT, name, b"s3cr3t");
        let object: SecretRef = serde_json::from_value(json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef",
            "metadata": { "name": name }, "spec": { "secret": name },
        }))
        .unwrap_or_else(|e| panic!("secretref {name}: {e}"));
        let api: Api<SecretRef> = self.cluster.api();
        api.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("creating {name}: {e}"));
        wait_for(&format!("{name} synced"), DEADLINE, || async {
            let status = api.get(name).await.ok()?.status?;
            (status.synced_version.as_deref() == Some("1")).then_some(())
        })
        .await;
    }
}

/// One `run` process; killed when dropped, so no test leaves one behind.
struct Replica {
    identity: String,
    metrics: SocketAddr,
    log: PathBuf,
    child: Child,
}

impl Replica {
    fn signal_term(&self) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap_or_else(|e| panic!("pid: {e}"));
        // SAFETY: sending a signal to our own child process has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "sending SIGTERM failed");
    }

    async fn exit(&mut self, deadline: Duration) -> ExitStatus {
        wait_for(&format!("{} to exit", self.identity), deadline, || {
            let status = self.child.try_wait().ok().flatten();
            async move { status }
        })
        .await
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Reconciles of all three controllers, from `/metrics`.
    async fn reconciles(&self) -> Option<u64> {
        let mut total = 0;
        for controller in ["secretref", "secureapiservice", "gatewayconfig"] {
            total +=
                metric(self.metrics, &format!("secureapi_reconciles_total{{controller=\"{controller}\"}}")).await?;
        }
        Some(total)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of one integer series on `/metrics`, `None` while nothing answers.
async fn metric(addr: SocketAddr, series: &str) -> Option<u64> {
    let (status, body) = http_get(addr, "/metrics").await?;
    (status == StatusCode::OK).then_some(())?;
    body.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn metrics_leader(replica: &Replica) -> Option<u64> {
    metric(replica.metrics, "secureapi_leader").await
}

fn seconds_after(time: &Option<MicroTime>, seconds: u64) -> Timestamp {
    let time = time.as_ref().unwrap_or_else(|| panic!("no time in the Lease")).0;
    let seconds = i64::try_from(seconds).unwrap_or_else(|e| panic!("{e}"));
    time.checked_add(SignedDuration::from_secs(seconds)).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn one_leader_reconciles_and_hands_over_on_sigterm_by_releasing_the_lease() {
    let setup = Setup::start("leader-sigterm").await;
    let (a, b) = (setup.spawn("replica-a"), setup.spawn("replica-b"));
    let (mut leader, standby) = setup.single_leader(a, b).await;
    // A standby serves `/metrics` (leader 0) a moment before its start-up ends and it turns ready.
    wait_for("the standby to be ready", DEADLINE, || async {
        http_get(standby.metrics, "/readyz").await.filter(|(status, _)| *status == StatusCode::OK)
    })
    .await;

    setup.create_secret_ref("first").await;
    // The reconcile counts once it returns, just after the status write the sync shows in.
    wait_for("the leader to count its reconcile", DEADLINE, || async {
        (leader.reconciles().await? > 0).then_some(())
    })
    .await;
    assert_eq!(standby.reconciles().await, Some(0), "the standby must not reconcile");
    assert_eq!(metrics_leader(&standby).await, Some(0));
    let before = setup.lease().await.unwrap_or_default();

    let stopped = Instant::now();
    leader.signal_term();
    wait_for("the standby to lead within the lease duration", Duration::from_secs(LEASE_DURATION), || async {
        (metrics_leader(&standby).await? == 1).then_some(())
    })
    .await;
    let hand_over = stopped.elapsed();
    let status = leader.exit(DEADLINE).await;
    assert!(status.success(), "exit after SIGTERM: {status:?}\n{}", leader.log());
    assert!(leader.log().contains("released leadership"), "{}", leader.log());

    let after = setup.lease().await.unwrap_or_default();
    assert_eq!(after.holder_identity.as_deref(), Some(standby.identity.as_str()));
    assert_eq!(after.lease_transitions, before.lease_transitions.map(|t| t + 1));
    setup.create_secret_ref("second").await;
    wait_for("the new leader to count its reconciles", DEADLINE, || async {
        (standby.reconciles().await? > 0).then_some(())
    })
    .await;
    eprintln!("hand-over after SIGTERM took {hand_over:?}");
}

#[tokio::test]
async fn after_a_sigkill_the_standby_takes_over_once_the_lease_expires() {
    let setup = Setup::start("leader-sigkill").await;
    let (a, b) = (setup.spawn("replica-a"), setup.spawn("replica-b"));
    let (mut leader, standby) = setup.single_leader(a, b).await;
    leader.child.kill().unwrap_or_else(|e| panic!("SIGKILL: {e}"));
    let _ = leader.exit(DEADLINE).await;
    let last = setup.lease().await.unwrap_or_default();
    assert_eq!(last.holder_identity.as_deref(), Some(leader.identity.as_str()), "a killed leader releases nothing");

    let deadline = Duration::from_secs(LEASE_DURATION + RETRY_PERIOD + 2);
    wait_for("the standby to lead once the Lease expired", deadline, || async {
        (metrics_leader(&standby).await? == 1).then_some(())
    })
    .await;
    let taken = setup.lease().await.unwrap_or_default();
    assert_eq!(taken.holder_identity.as_deref(), Some(standby.identity.as_str()));
    assert_eq!(taken.lease_transitions, last.lease_transitions.map(|t| t + 1));
    let acquired = taken.acquire_time.as_ref().map(|t| t.0);
    let expiry = seconds_after(&last.renew_time, LEASE_DURATION);
    assert!(acquired > Some(expiry), "taken at {acquired:?}, before the Lease expired at {expiry}");
    setup.create_secret_ref("after-kill").await;
}

#[tokio::test]
async fn a_leader_that_cannot_renew_stops_before_the_lease_expires_with_one_line_with_emulator_hooks() {
    let setup = Setup::start("leader-lost").await;
    let Some(emulator) = setup.cluster.hooks().cloned() else { return };
    let mut leader = setup.spawn("replica-a");
    wait_for("leadership", DEADLINE, || async { (metrics_leader(&leader).await? == 1).then_some(()) }).await;

    emulator.inject_fault(Fault::status("update", "leases", 500));
    let status = leader.exit(Duration::from_secs(LEASE_DURATION)).await;
    assert!(!status.success());
    let log = leader.log();
    let last = log.lines().last().unwrap_or_default();
    let lease = format!("{}/{LEASE}", setup.cluster.namespace);
    assert!(last.starts_with(&format!("error: lost leadership of Lease {lease}: no renewal succeeded")), "{log}");
    assert!(log.contains("cannot renew the Lease"), "renew failures are logged:\n{log}");
}

#[tokio::test]
async fn a_lease_update_with_a_stale_resource_version_is_a_409_conflict() {
    let cluster = TestCluster::start("lease-conflict").await;
    let api: Api<Lease> = cluster.api();
    let renewed = Timestamp::from_second(1_700_000_000)
        .and_then(|t| t.checked_add(SignedDuration::from_micros(123_456)))
        .unwrap_or_else(|e| panic!("{e}"));
    let lease: Lease = serde_json::from_value(json!({
        "metadata": { "name": "l" },
        "spec": { "holderIdentity": "a", "leaseDurationSeconds": 4, "renewTime": MicroTime(renewed) },
    }))
    .unwrap_or_else(|e| panic!("lease: {e}"));
    let created = api.create(&PostParams::default(), &lease).await.unwrap_or_else(|e| panic!("create: {e}"));
    assert_eq!(created.spec.as_ref().and_then(|s| s.renew_time.clone()), Some(MicroTime(renewed)), "microseconds kept");

    let mut first = created.clone();
    first.spec.get_or_insert_default().holder_identity = Some("b".into());
    api.replace("l", &PostParams::default(), &first).await.unwrap_or_else(|e| panic!("replace: {e}"));
    let mut stale = created;
    stale.spec.get_or_insert_default().holder_identity = Some("c".into());
    match api.replace("l", &PostParams::default(), &stale).await {
        Err(kube::Error::Api(status)) => assert_eq!((status.code, status.reason.as_str()), (409, "Conflict")),
        other => panic!("expected 409 Conflict, got {other:?}"),
    }
    let stored = api.get("l").await.unwrap_or_else(|e| panic!("get: {e}"));
    assert_eq!(stored.spec.and_then(|s| s.holder_identity).as_deref(), Some("b"));
}
