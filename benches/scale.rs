//! Scale: the operator, as its own process, brings N SecretRefs (and N/10 SecureApiServices using
//! them) to Ready from cold. How long it takes next to the floor of the same work done directly,
//! what it costs in API calls, reconciles and memory, whether it stays quiet afterwards, and how
//! long one new SecretRef waits while the backlog is worked off. One run prints every figure;
//! nothing is asserted.
//!
//! What happens, in order, against the in-process emulators over TCP:
//! 1. Setup: N secrets `s0`.. in the GCP emulator (one version each); N SecretRefs `s0`.. in
//!    `default` (format `json`, no ServiceAccount: the operator's own identity, which
//!    `--operator-identity-namespaces` allows in `default`); N/10 SecureApiServices `api-K`,
//!    each using ten of them. All created through the Kubernetes API over TCP, before the
//!    operator starts. The emulated Deployment controller completes rollouts at once.
//! 2. Cold sync: the release binary (`secure-api-operator run`, flags printed) is spawned. The
//!    clock runs from the spawn (process start, CRD check and first lists included) until a
//!    list shows every SecretRef Ready and then one shows every SecureApiService Ready, or
//!    until `BENCH_SYNC_LIMIT_SECS`: then the figures are printed as they stand, marked
//!    INCOMPLETE with how many were Ready (per-SecretRef figures still divide by N + 1). The
//!    bench looks with one list at a time, every 50 ms or four times the last list's duration,
//!    whichever is longer (so it takes at most a fifth of the emulator's time); a figure is late
//!    by at most one such pause.
//! 3. New-object latency: once a list shows a quarter of the SecretRefs Ready, one more
//!    SecretRef (`probe`) is created and read with a GET every 10 ms until it is Ready.
//! 4. Counters: the Kubernetes emulator's per-(verb, resource) counters and the GCP emulator's
//!    per-method counters are reset at the spawn and read at the end of the cold sync. The
//!    bench's own requests in that window (its polling lists, the probe's create and GETs, a
//!    list of SecureApiServices per progress line on stderr every 15 s) are
//!    counted by the bench and subtracted; their number is printed. Per-SecretRef figures divide
//!    by N + 1 (the probe is synced too). Reconciles come from the operator's `/metrics`
//!    (`secureapi_reconciles_total`), scraped at the end of the cold sync.
//! 5. Quiet window: counters reset, `BENCH_QUIET_SECS` without a request from the bench, read.
//! 6. Memory and CPU: `VmHWM` (peak) and `VmRSS` from `/proc/<pid>/status` at the end of the cold
//!    sync and of the quiet window; the operator's CPU time (`/proc/<pid>/stat`) in the cold sync.
//! 7. Floor: the operator is stopped (killed). Then the access calls, Secret applies and status
//!    patches the cold sync needs at the least, made directly: one job per SecretRef and one per
//!    SecureApiService, `--concurrency` jobs in flight (each a tokio task), each job's calls one
//!    after another. A SecretRef's job: GET `v1/projects/P/secrets/s{i}/versions/1:access` from
//!    the GCP emulator (its payload decoded into keys); server-side apply (forced, own field
//!    manager) of a Secret `floor-s{i}` in `default` shaped like a Secret the operator wrote
//!    (its type, labels, annotations, owner reference, pointed at SecretRef `s{i}`; the decoded
//!    keys); a merge patch of SecretRef `s{i}`'s status subresource carrying the status the
//!    operator wrote, with `observedRefresh` changed so every patch is a real write. A
//!    SecureApiService's job: an apply of a copy (`floor-<name>`) of each snapshot Secret the
//!    operator wrote for it, then a merge patch of its status with `url` changed. The
//!    operator's Deployment, Service and ServiceAccount applies, its Events and its reads are
//!    not in the floor. One reqwest client and one kube client over TCP, as the operator has.
//!    The ratio is cold sync / floor.
//!
//! The child process is killed when the bench ends, fails, times out or gets SIGINT/SIGTERM (a
//! guard's `Drop`); its log is `operator.log` in the directory printed first. The operator's
//! figures are printed before the floor runs, so a timeout there still leaves them.
//!
//! `cargo bench --bench scale [-- N]`. Knobs (environment): `BENCH_SECRET_REFS` (N when no
//! argument gives it, default 1000), `BENCH_CONCURRENCY` (the operator's `--concurrency` and the
//! floor's calls in flight, default 8), `BENCH_GCP_RPS` (`--gcp-requests-per-second`: unset
//! lifts the limit to 1000000, `default` leaves the flag out, a number passes it),
//! `BENCH_QUIET_SECS` (default 10), `BENCH_SYNC_LIMIT_SECS` (the cold sync, default 1200),
//! `BENCH_TIMEOUT_SECS` (the whole run, default 1800), `BENCH_SERVICES` (how many
//! SecureApiServices, default and at most N/10), `BENCH_OPERATOR_BIN` (the operator binary
//! to spawn; default the one built with the bench, the same as the image's
//! `cargo build --release --bin secure-api-operator`).

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use secure_api_operator::api::conditions::{find_condition, types};
use secure_api_operator::api::{
    Condition, MANAGED_BY_LABEL, MANAGED_BY_VALUE, SecretRef, SecureApiService, owner_label_key,
};
use secure_api_operator::shutdown::shutdown_signal;
use secure_api_testbed::emulator::gcp::GcpEmulator;
use secure_api_testbed::emulator::kube::{DeploymentSimulation, KubeEmulator, Listener};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Requests by (verb, resource), as the Kubernetes emulator counts them.
type Counts = BTreeMap<(String, String), u64>;

const PROJECT: &str = "bench-project";
const NAMESPACE: &str = "default";
/// Lets SecretRefs in `default` use the operator's own identity (no ServiceAccount, no STS).
const IDENTITY_NAMESPACES: &str = "kubernetes.io/metadata.name=default";
const PAYLOAD: &[u8] = b"{\"value\":\"initial\"}";
const PROBE: &str = "probe";
/// `--gcp-requests-per-second` when the bench lifts the limit (the flag must be finite).
const LIFTED_RATE: &str = "1000000";
/// Creates in flight during setup: setup is not measured, only kept short.
const SETUP_CONCURRENCY: usize = 16;
/// How often a long cold sync says how far it got (stderr).
const PROGRESS: Duration = Duration::from_secs(15);
const MIN_PAUSE: Duration = Duration::from_millis(50);
const PROBE_PAUSE: Duration = Duration::from_millis(10);
const PROBE_LIMIT: Duration = Duration::from_secs(120);
const FLOOR_MANAGER: &str = "bench-floor";
/// Column order of the per-verb tables; verbs nobody used are left out.
const VERBS: [&str; 9] = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "other"];
const WRITES: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let knobs = Knobs::read()?;
    let limit = knobs.timeout;
    // Returning drops `run` and with it the operator's guard, which kills the child.
    tokio::select! {
        outcome = tokio::time::timeout(limit, run(knobs)) => {
            outcome.map_err(|_| format!("benchmark took longer than {limit:?}"))?
        }
        _ = shutdown_signal() => Err("interrupted".into()),
    }
}

struct Knobs {
    refs: usize,
    concurrency: usize,
    /// `None`: the operator's default rate limit.
    gcp_rps: Option<String>,
    /// SecureApiServices, each using ten SecretRefs (at most N/10).
    services: usize,
    quiet: Duration,
    /// The cold sync's own limit: past it the figures are reported as they stand.
    sync_limit: Duration,
    timeout: Duration,
}

impl Knobs {
    fn read() -> Result<Self, BoxError> {
        // `cargo bench` passes `--bench` first; the first number among the arguments is N.
        let argument = std::env::args().skip(1).find_map(|a| a.parse::<usize>().ok());
        let refs = match argument {
            Some(refs) => refs,
            None => env_usize("BENCH_SECRET_REFS", 1000)?,
        };
        let gcp_rps = match std::env::var("BENCH_GCP_RPS") {
            Err(_) => Some(LIFTED_RATE.to_owned()),
            Ok(text) if text == "default" => None,
            Ok(text) => Some(text),
        };
        let refs = refs.max(10);
        Ok(Self {
            refs,
            services: env_usize("BENCH_SERVICES", refs / 10)?.min(refs / 10),
            concurrency: env_usize("BENCH_CONCURRENCY", 8)?.max(1),
            gcp_rps,
            quiet: Duration::from_secs(env_usize("BENCH_QUIET_SECS", 10)? as u64),
            sync_limit: Duration::from_secs(env_usize("BENCH_SYNC_LIMIT_SECS", 1200)? as u64),
            timeout: Duration::from_secs(env_usize("BENCH_TIMEOUT_SECS", 1800)? as u64),
        })
    }

    fn services(&self) -> usize {
        self.services
    }
}

async fn run(knobs: Knobs) -> Result<(), BoxError> {
    let dir = std::env::temp_dir().join(format!("secure-api-operator-bench-scale-{}", std::process::id()));
    let cluster = Cluster::start(&dir).await?;
    print_header(&knobs, &dir);
    let setup = seed(&cluster, &knobs).await?;
    println!("  setup: {} secrets, SecretRefs and SecureApiServices created in {:.2} s", knobs.refs, secs(setup));
    let report = operator_figures(&cluster, &knobs, &dir).await?;
    // Printed before the floor runs: a timeout there still leaves the operator's figures.
    report.print();
    eprintln!("  (operator stopped; the floor)");
    let floor = floor(&cluster, knobs.refs, knobs.concurrency).await?;
    print_floor(&floor, report.sync.total);
    cluster.stop().await;
    Ok(())
}

fn print_header(knobs: &Knobs, dir: &Path) {
    let rate = match &knobs.gcp_rps {
        Some(rate) => format!("lifted (--gcp-requests-per-second {rate})"),
        None => "the operator's default (--gcp-requests-per-second left out)".to_owned(),
    };
    println!(
        "scale: {} SecretRefs, {} SecureApiServices, --concurrency {}, GCP rate limit {rate}\n  files: {}",
        knobs.refs,
        knobs.services(),
        knobs.concurrency,
        dir.display()
    );
}

/// Spawns the operator, times its cold sync, reads its counters through the quiet window, and
/// stops it.
async fn operator_figures<'a>(cluster: &Cluster, knobs: &'a Knobs, dir: &Path) -> Result<Report<'a>, BoxError> {
    let flags = operator_flags(cluster, knobs, free_port()?);
    println!("  operator: {} {}", operator_bin(), flags.join(" "));
    cluster.kube.reset_counts();
    cluster.gcp.reset_counts();
    let mut operator = Operator::spawn(flags, &dir.join("operator.log"))?;
    let own = Arc::new(Own::default());
    let sync = cold_sync(cluster, &mut operator, knobs, &own).await?;
    let kube_counts = minus(cluster.kube.counts(), &own.counts());
    let gcp_counts = cluster.gcp.counts();
    let reconciles = operator.reconciles().await?;
    let memory_synced = operator.memory()?;
    let state = if sync.complete { "done" } else { "stopped at its limit" };
    eprintln!("  (cold sync {state} after {:.1} s; quiet window of {} s)", secs(sync.total), knobs.quiet.as_secs());
    let quiet = quiet_window(cluster, &mut operator, knobs.quiet).await?;
    let memory_quiet = operator.memory()?;
    operator.stop();
    Ok(Report {
        knobs,
        sync,
        kube_counts,
        gcp_counts,
        own: own.counts(),
        reconciles,
        memory_synced,
        memory_quiet,
        quiet,
    })
}

/// The emulators on loopback, the kubeconfig the operator reads, and the bench's TCP client.
struct Cluster {
    kube: KubeEmulator,
    gcp: GcpEmulator,
    kube_listener: Listener,
    gcp_listener: Listener,
    kubeconfig: PathBuf,
    /// Over TCP like the operator's: setup, the probe and the floor go through it.
    tcp: kube::Client,
}

impl Cluster {
    async fn start(dir: &Path) -> Result<Self, BoxError> {
        std::fs::create_dir_all(dir)?;
        let kube = KubeEmulator::new();
        // SecureApiServices are Ready only once their Deployment's rollout completes.
        kube.set_deployment_simulation(DeploymentSimulation::Complete);
        install_crds(&kube).await?;
        let kube_listener = kube.listen(([127, 0, 0, 1], 0).into()).await?;
        let yaml = KubeEmulator::kubeconfig(&kube_listener.url());
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, &yaml)?;
        let config =
            kube::Config::from_custom_kubeconfig(Kubeconfig::from_yaml(&yaml)?, &KubeConfigOptions::default()).await?;
        let tcp = kube::Client::try_from(config)?;
        let gcp = GcpEmulator::new();
        let gcp_listener = gcp.listen(([127, 0, 0, 1], 0).into()).await?;
        Ok(Self { kube, gcp, kube_listener, gcp_listener, kubeconfig, tcp })
    }

    /// A client served in-process, for the bench's polling (no socket between it and the store).
    fn looker(&self) -> kube::Client {
        self.kube.client()
    }

    async fn stop(self) {
        self.kube_listener.shutdown().await;
        self.gcp_listener.shutdown().await;
    }
}

async fn install_crds(kube: &KubeEmulator) -> Result<(), BoxError> {
    let crds: Api<CustomResourceDefinition> = Api::all(kube.client());
    for crd in secure_api_operator::crdgen::all() {
        crds.create(&PostParams::default(), &crd).await?;
    }
    Ok(())
}

/// Seeds Secret Manager directly and creates the SecretRefs and services over TCP; returns the
/// time it took.
async fn seed(cluster: &Cluster, knobs: &Knobs) -> Result<Duration, BoxError> {
    let started = Instant::now();
    for i in 0..knobs.refs {
        cluster.gcp.add_version(PROJECT, &format!("s{i}"), PAYLOAD);
    }
    cluster.gcp.add_version(PROJECT, PROBE, PAYLOAD);
    let refs: Api<SecretRef> = Api::namespaced(cluster.tcp.clone(), NAMESPACE);
    stream::iter(0..knobs.refs)
        .map(|i| create(&refs, secret_ref(&format!("s{i}"))))
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect::<()>()
        .await?;
    let services: Api<SecureApiService> = Api::namespaced(cluster.tcp.clone(), NAMESPACE);
    stream::iter(0..knobs.services())
        .map(|s| create(&services, secure_api_service(s)))
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect::<()>()
        .await?;
    Ok(started.elapsed())
}

async fn create<K>(api: &Api<K>, object: Result<K, BoxError>) -> Result<(), BoxError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    api.create(&PostParams::default(), &object?).await?;
    Ok(())
}

/// SecretRef `name` of the secret of the same name, with the product's default refresh interval.
fn secret_ref(name: &str) -> Result<SecretRef, BoxError> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": name },
        "spec": { "secret": name, "format": "json" },
    }))?)
}

/// Service `api-{s}`, using SecretRefs `s{10s}` to `s{10s+9}` as environment variables.
fn secure_api_service(s: usize) -> Result<SecureApiService, BoxError> {
    let env: Vec<_> = (0..10)
        .map(|k| json!({ "name": format!("V{k}"), "secretRef": format!("s{}", s * 10 + k), "key": "value" }))
        .collect();
    Ok(serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecureApiService", "metadata": { "name": format!("api-{s}") },
        "spec": { "image": "example.com/bench:1.0", "secretEnv": env },
    }))?)
}

/// `run`'s flags: the emulators, no credentials, the operator's identity for `default`.
fn operator_flags(cluster: &Cluster, knobs: &Knobs, metrics_port: u16) -> Vec<String> {
    let gcp = cluster.gcp_listener.url();
    let mut flags: Vec<String> = [
        "run",
        "--kubeconfig",
        &cluster.kubeconfig.to_string_lossy(),
        "--secret-manager-endpoint",
        &gcp,
        "--api-gateway-endpoint",
        &gcp,
        "--gcp-no-auth",
        "--gcp-project",
        PROJECT,
        "--metrics-addr",
        &format!("127.0.0.1:{metrics_port}"),
        "--operator-identity-namespaces",
        IDENTITY_NAMESPACES,
        "--concurrency",
        &knobs.concurrency.to_string(),
    ]
    .map(str::to_owned)
    .into();
    if let Some(rate) = &knobs.gcp_rps {
        flags.extend(["--gcp-requests-per-second".to_owned(), rate.clone()]);
    }
    flags
}

/// `BENCH_OPERATOR_BIN`, or the operator binary cargo built with the bench.
fn operator_bin() -> String {
    std::env::var("BENCH_OPERATOR_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_secure-api-operator").to_owned())
}

/// A free port on 127.0.0.1 for the operator's `/metrics` (bound and released at once).
fn free_port() -> Result<u16, BoxError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The operator's process; killed when dropped, so no error or timeout leaves it running.
struct Operator {
    child: Child,
    metrics: SocketAddr,
    started: Instant,
    log: PathBuf,
}

impl Operator {
    fn spawn(flags: Vec<String>, log: &Path) -> Result<Self, BoxError> {
        let metrics = flag_value(&flags, "--metrics-addr").ok_or("no --metrics-addr")?.parse()?;
        let mut command = Command::new(operator_bin());
        command.args(&flags).stdin(Stdio::null()).stdout(Stdio::null()).stderr(std::fs::File::create(log)?);
        // A `SECUREAPI_*` or `RUST_LOG` meant for something else must not change the run.
        command.env_remove("RUST_LOG");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SECUREAPI_") {
                command.env_remove(key);
            }
        }
        let started = Instant::now();
        let child = command.spawn()?;
        Ok(Self { child, metrics, started, log: log.to_owned() })
    }

    /// An error naming the log when the operator has exited.
    fn check_alive(&mut self) -> Result<(), BoxError> {
        match self.child.try_wait()? {
            Some(status) => Err(format!("the operator exited ({status}); its log: {}", self.log.display()).into()),
            None => Ok(()),
        }
    }

    fn memory(&self) -> Result<Memory, BoxError> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        Ok(Memory {
            peak_kib: status_kib(&status, "VmHWM:")?,
            now_kib: status_kib(&status, "VmRSS:")?,
            cpu: self.cpu_time()?,
        })
    }

    /// User + system CPU time so far, from `/proc/<pid>/stat` (in USER_HZ ticks, 100 per second
    /// on Linux).
    fn cpu_time(&self) -> Result<Duration, BoxError> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // Fields after the command name (which may hold spaces) start with the state, field 3.
        let after_name = stat.rsplit_once(')').ok_or("no command name in /proc stat")?.1;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks =
            |i: usize| -> Result<u64, BoxError> { Ok(fields.get(i).ok_or("short /proc stat")?.parse::<u64>()?) };
        // utime and stime are fields 14 and 15, i.e. 11 and 12 after the state.
        Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
    }

    async fn reconciles(&self) -> Result<Reconciles, BoxError> {
        let text = reqwest::get(format!("http://{}/metrics", self.metrics)).await?.error_for_status()?.text().await?;
        Ok(Reconciles {
            secret_ref: metric(&text, r#"secureapi_reconciles_total{controller="secretref"}"#)?,
            service: metric(&text, r#"secureapi_reconciles_total{controller="secureapiservice"}"#)?,
        })
    }

    /// Kills the process now (dropping does the same).
    fn stop(self) {
        drop(self);
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn flag_value<'a>(flags: &'a [String], name: &str) -> Option<&'a str> {
    flags.iter().position(|f| f == name).and_then(|i| flags.get(i + 1)).map(String::as_str)
}

struct Memory {
    peak_kib: u64,
    now_kib: u64,
    /// CPU time used by the operator so far.
    cpu: Duration,
}

/// A `Name:   1234 kB` line of `/proc/<pid>/status`.
fn status_kib(status: &str, name: &str) -> Result<u64, BoxError> {
    let line = status.lines().find(|l| l.starts_with(name)).ok_or_else(|| format!("no {name} in /proc status"))?;
    let number = line.trim_start_matches(name).trim().trim_end_matches("kB").trim();
    Ok(number.parse()?)
}

struct Reconciles {
    secret_ref: f64,
    service: f64,
}

/// The value of one series in Prometheus' text format.
fn metric(text: &str, series: &str) -> Result<f64, BoxError> {
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .ok_or_else(|| format!("no {series} in /metrics"))?;
    Ok(value.trim().parse()?)
}

/// The bench's own requests, to subtract from the emulator's counters.
#[derive(Default)]
struct Own(Mutex<Counts>);

impl Own {
    fn note(&self, verb: &str, resource: &str) {
        let mut counts = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *counts.entry((verb.to_owned(), resource.to_owned())).or_default() += 1;
    }

    fn counts(&self) -> Counts {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

fn minus(mut all: Counts, own: &Counts) -> Counts {
    for (key, n) in own {
        if let Some(count) = all.get_mut(key) {
            *count = count.saturating_sub(*n);
        }
    }
    all.retain(|_, n| *n > 0);
    all
}

struct ColdSync {
    /// Spawn to every SecretRef and SecureApiService Ready, or to the limit.
    total: Duration,
    /// Whether everything was Ready before the limit.
    complete: bool,
    /// Ready at the end (the probe included).
    refs_ready: usize,
    services_ready: usize,
    /// Spawn to the first list with a Ready SecretRef.
    first_ready: Option<Duration>,
    /// Spawn to every SecretRef Ready.
    all_refs_ready: Option<Duration>,
    /// The probe's create to Ready, and the SecretRefs Ready when it was created.
    probe: Option<(Duration, usize)>,
}

/// Polls until everything is Ready or `limit` after the spawn, creating the probe once a quarter
/// of the SecretRefs are Ready.
async fn cold_sync(
    cluster: &Cluster,
    operator: &mut Operator,
    knobs: &Knobs,
    own: &Arc<Own>,
) -> Result<ColdSync, BoxError> {
    let looked_refs: Api<SecretRef> = Api::namespaced(cluster.looker(), NAMESPACE);
    let looked_services: Api<SecureApiService> = Api::namespaced(cluster.looker(), NAMESPACE);
    let (refs, services) = (knobs.refs, knobs.services());
    let deadline = operator.started + knobs.sync_limit;
    let mut sync = ColdSync {
        total: Duration::ZERO,
        complete: false,
        refs_ready: 0,
        services_ready: 0,
        first_ready: None,
        all_refs_ready: None,
        probe: None,
    };
    let mut probe = None;
    let mut told = Instant::now();
    loop {
        operator.check_alive()?;
        let look = Instant::now();
        sync.refs_ready = ready_secret_refs(&looked_refs, own).await?;
        if sync.refs_ready > 0 {
            sync.first_ready.get_or_insert(operator.started.elapsed());
        }
        if probe.is_none() && sync.refs_ready >= refs / 4 {
            let api = Api::namespaced(cluster.tcp.clone(), NAMESPACE);
            probe = Some((sync.refs_ready, tokio::spawn(probe_latency(api, own.clone()))));
        }
        let all_refs = probe.is_some() && sync.refs_ready > refs;
        if all_refs {
            sync.all_refs_ready.get_or_insert(operator.started.elapsed());
        }
        let tell = told.elapsed() >= PROGRESS;
        if all_refs || tell {
            sync.services_ready = ready_services(&looked_services, own).await?;
        }
        if tell {
            told = Instant::now();
            let (at, r, s) = (secs(operator.started.elapsed()), sync.refs_ready, sync.services_ready);
            eprintln!("  ({at:.0} s: {r}/{} SecretRefs, {s}/{services} SecureApiServices Ready)", refs + 1);
        }
        sync.complete = all_refs && sync.services_ready >= services;
        if sync.complete || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep((look.elapsed() * 4).max(MIN_PAUSE)).await;
    }
    sync.total = operator.started.elapsed();
    sync.probe = match probe {
        Some((ready_then, handle)) => finished(handle).await?.map(|latency| (latency, ready_then)),
        None => None,
    };
    Ok(sync)
}

/// The probe's latency; `None` when it is still waiting (the cold sync hit its limit first).
async fn finished(handle: tokio::task::JoinHandle<Result<Duration, BoxError>>) -> Result<Option<Duration>, BoxError> {
    if handle.is_finished() {
        return Ok(Some(handle.await??));
    }
    handle.abort();
    Ok(None)
}

async fn ready_secret_refs(api: &Api<SecretRef>, own: &Own) -> Result<usize, BoxError> {
    own.note("list", "secretrefs");
    let list = api.list(&ListParams::default()).await?;
    Ok(list.items.iter().filter(|r| r.status.as_ref().is_some_and(|s| ready(&s.conditions))).count())
}

async fn ready_services(api: &Api<SecureApiService>, own: &Own) -> Result<usize, BoxError> {
    own.note("list", "secureapiservices");
    let list = api.list(&ListParams::default()).await?;
    Ok(list.items.iter().filter(|s| s.status.as_ref().is_some_and(|s| ready(&s.conditions))).count())
}

fn ready(conditions: &[Condition]) -> bool {
    find_condition(conditions, types::READY).is_some_and(|c| c.is_true(types::READY))
}

/// Creates the probe SecretRef and returns how long it took to become Ready.
async fn probe_latency(api: Api<SecretRef>, own: Arc<Own>) -> Result<Duration, BoxError> {
    let object = secret_ref(PROBE)?;
    let created = Instant::now();
    own.note("create", "secretrefs");
    api.create(&PostParams::default(), &object).await?;
    loop {
        own.note("get", "secretrefs");
        let current = api.get(PROBE).await?;
        if current.status.as_ref().is_some_and(|s| ready(&s.conditions)) {
            return Ok(created.elapsed());
        }
        if created.elapsed() > PROBE_LIMIT {
            return Err(format!("the probe SecretRef was not Ready after {PROBE_LIMIT:?}").into());
        }
        tokio::time::sleep(PROBE_PAUSE).await;
    }
}

struct Quiet {
    kube: Counts,
    gcp: BTreeMap<String, u64>,
}

/// The requests the operator makes while nothing changes.
async fn quiet_window(cluster: &Cluster, operator: &mut Operator, length: Duration) -> Result<Quiet, BoxError> {
    cluster.kube.reset_counts();
    cluster.gcp.reset_counts();
    tokio::time::sleep(length).await;
    operator.check_alive()?;
    Ok(Quiet { kube: cluster.kube.counts(), gcp: cluster.gcp.counts() })
}

struct Floor {
    elapsed: Duration,
    /// Per kind of call, in [`CALL_KINDS`] order: how many were made and their time summed.
    calls: [Calls; 3],
    kube: Counts,
    gcp: BTreeMap<String, u64>,
}

/// The floor's kinds of call, as indexes into [`Floor::calls`].
const ACCESS: usize = 0;
const APPLY: usize = 1;
const STATUS_PATCH: usize = 2;
const CALL_KINDS: [&str; 3] = ["access", "Secret apply", "status patch"];

#[derive(Clone, Copy, Default)]
struct Calls {
    made: u64,
    spent: Duration,
}

fn sum(mut all: [Calls; 3], one: [Calls; 3]) -> [Calls; 3] {
    for (total, calls) in all.iter_mut().zip(one) {
        total.made += calls.made;
        total.spent += calls.spent;
    }
    all
}

/// Times one call into its kind's slot.
async fn timed<T>(calls: &mut [Calls; 3], kind: usize, call: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let outcome = call.await;
    calls[kind].made += 1;
    calls[kind].spent += started.elapsed();
    outcome
}

/// What every floor task shares.
struct FloorContext {
    http: reqwest::Client,
    gcp_url: String,
    secrets: Api<Secret>,
    refs: Api<SecretRef>,
    services: Api<SecureApiService>,
    /// The operator's Secret `s0`, the shape of every floor Secret of a SecretRef.
    template: Secret,
}

/// One object's part of the floor, with what it writes read before the clock starts.
enum FloorJob {
    /// A SecretRef's first sync: its name, uid (for the owner reference) and status.
    SecretRef { name: String, uid: String, status: Value },
    /// A SecureApiService's first revision: a copy of each snapshot Secret the operator wrote
    /// for it, and its status.
    Service { name: String, snapshots: Vec<Value>, status: Value },
}

/// The writes the cold sync needs at the least, made directly, `concurrency` at a time (see the
/// module's doc).
async fn floor(cluster: &Cluster, refs: usize, concurrency: usize) -> Result<Floor, BoxError> {
    let context = Arc::new(FloorContext {
        http: reqwest::Client::new(),
        gcp_url: cluster.gcp_listener.url(),
        secrets: Api::namespaced(cluster.tcp.clone(), NAMESPACE),
        refs: Api::namespaced(cluster.tcp.clone(), NAMESPACE),
        services: Api::namespaced(cluster.tcp.clone(), NAMESPACE),
        template: operator_secret(&cluster.tcp).await?,
    });
    let mut jobs = secret_ref_jobs(&context.refs, refs).await?;
    jobs.extend(service_jobs(&context).await?);
    cluster.kube.reset_counts();
    cluster.gcp.reset_counts();
    let started = Instant::now();
    let calls = stream::iter(jobs)
        .map(|job| tokio::spawn(floor_job(context.clone(), job)))
        .buffer_unordered(concurrency)
        .map(|joined| joined.map_err(BoxError::from).and_then(|calls| calls))
        .try_fold([Calls::default(); 3], |all, one| async move { Ok(sum(all, one)) })
        .await?;
    Ok(Floor { elapsed: started.elapsed(), calls, kube: cluster.kube.counts(), gcp: cluster.gcp.counts() })
}

/// One Secret the operator wrote for a SecretRef: the shape of the floor's Secrets.
async fn operator_secret(client: &kube::Client) -> Result<Secret, BoxError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    let written = ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},!{}", service_label()));
    let first = secrets.list(&written.limit(1)).await?.items.into_iter().next();
    Ok(first.ok_or("the operator wrote no Secret")?)
}

/// The label that marks a snapshot Secret and names its SecureApiService.
fn service_label() -> String {
    owner_label_key("SecureApiService")
}

/// One list of the SecretRefs, made before the floor's clock starts. A SecretRef the operator
/// left without status (a cold sync stopped at its limit) gets the first synced one's status.
async fn secret_ref_jobs(api: &Api<SecretRef>, refs: usize) -> Result<Vec<FloorJob>, BoxError> {
    let mut listed: HashMap<String, SecretRef> = api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|r| (r.metadata.name.clone().unwrap_or_default(), r))
        .collect();
    let any_status = listed.values().find_map(|r| r.status.clone()).ok_or("no SecretRef has a status")?;
    (0..refs)
        .map(|i| {
            let name = format!("s{i}");
            let object = listed.remove(&name).ok_or_else(|| format!("SecretRef {name} is gone"))?;
            let status =
                changed(serde_json::to_value(object.status.unwrap_or_else(|| any_status.clone()))?, "observedRefresh")?;
            Ok(FloorJob::SecretRef { uid: object.metadata.uid.unwrap_or_default(), name, status })
        })
        .collect()
}

/// One list of the SecureApiServices and one of their snapshots, made before the clock starts:
/// each service with a status gets a job of its snapshots (none when the cold sync stopped
/// before it wrote any).
async fn service_jobs(context: &FloorContext) -> Result<Vec<FloorJob>, BoxError> {
    let label = service_label();
    let mut snapshots: HashMap<String, Vec<Value>> = HashMap::new();
    for snapshot in context.secrets.list(&ListParams::default().labels(&label)).await?.items {
        let service = snapshot.labels().get(&label).cloned().unwrap_or_default();
        let copy = secret_copy(&snapshot, &format!("floor-{}", snapshot.name_any()))?;
        snapshots.entry(service).or_default().push(copy);
    }
    let services = context.services.list(&ListParams::default()).await?.items;
    services
        .into_iter()
        .filter_map(|service| Some((service.name_any(), service.status?)))
        .map(|(name, status)| {
            let status = changed(serde_json::to_value(status)?, "url")?;
            Ok(FloorJob::Service { snapshots: snapshots.remove(&name).unwrap_or_default(), name, status })
        })
        .collect()
}

/// `status` with `field` set to a value the operator never writes: every patch writes, as the
/// operator's first status write does.
fn changed(mut status: Value, field: &str) -> Result<Value, BoxError> {
    let fields = status.as_object_mut().ok_or("a status is not an object")?;
    fields.insert(field.into(), json!(FLOOR_MANAGER));
    Ok(status)
}

/// One job's calls, one after another, each timed.
async fn floor_job(context: Arc<FloorContext>, job: FloorJob) -> Result<[Calls; 3], BoxError> {
    let mut calls = [Calls::default(); 3];
    let apply = PatchParams::apply(FLOOR_MANAGER).force();
    match job {
        FloorJob::SecretRef { name, uid, status } => {
            let keys = timed(&mut calls, ACCESS, access(&context, &name)).await?;
            let secret = floor_secret(&context.template, &name, &uid, &keys)?;
            let target = format!("floor-{name}");
            timed(&mut calls, APPLY, context.secrets.patch(&target, &apply, &Patch::Apply(&secret))).await?;
            timed(&mut calls, STATUS_PATCH, merge_status(&context.refs, &name, status)).await?;
        }
        FloorJob::Service { name, snapshots, status } => {
            for snapshot in &snapshots {
                let target = snapshot["metadata"]["name"].as_str().unwrap_or_default().to_owned();
                timed(&mut calls, APPLY, context.secrets.patch(&target, &apply, &Patch::Apply(snapshot))).await?;
            }
            timed(&mut calls, STATUS_PATCH, merge_status(&context.services, &name, status)).await?;
        }
    }
    Ok(calls)
}

/// A merge patch of `name`'s status subresource to `status`.
async fn merge_status<K>(api: &Api<K>, name: &str, status: Value) -> Result<K, kube::Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({ "status": status }))).await
}

/// Version 1 of secret `name`, its JSON payload as Secret keys.
async fn access(context: &FloorContext, name: &str) -> Result<BTreeMap<String, String>, BoxError> {
    use base64::Engine as _;
    let url = format!("{}/v1/projects/{PROJECT}/secrets/{name}/versions/1:access", context.gcp_url);
    let answer: Value = context.http.get(url).send().await?.error_for_status()?.json().await?;
    let data = answer["payload"]["data"].as_str().ok_or_else(|| format!("no payload in the access of {name}"))?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(data)?;
    let payload: BTreeMap<String, Value> = serde_json::from_slice(&bytes)?;
    Ok(payload
        .into_iter()
        .map(|(key, value)| (key, value.as_str().map_or_else(|| value.to_string(), str::to_owned)))
        .collect())
}

/// Secret `floor-{name}`: the template's type, labels and annotations, owned by SecretRef
/// `name` (`uid`), holding `keys`.
fn floor_secret(template: &Secret, name: &str, uid: &str, keys: &BTreeMap<String, String>) -> Result<Value, BoxError> {
    let template_owner = template.metadata.name.as_deref().unwrap_or_default();
    // Labels and annotations that name the template's SecretRef name this job's instead.
    let rename = |map: &Option<BTreeMap<String, String>>| -> Option<BTreeMap<String, String>> {
        let entries = map.iter().flatten();
        Some(entries.map(|(k, v)| (k.clone(), if v == template_owner { name.to_owned() } else { v.clone() })).collect())
    };
    let mut secret = template.clone();
    secret.metadata.labels = rename(&template.metadata.labels);
    secret.metadata.annotations = rename(&template.metadata.annotations);
    for owner in secret.metadata.owner_references.iter_mut().flatten() {
        name.clone_into(&mut owner.name);
        uid.clone_into(&mut owner.uid);
    }
    secret.data = Some(keys.iter().map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes()))).collect());
    secret_copy(&secret, &format!("floor-{name}"))
}

/// An apply of Secret `name` in the bench's namespace with `secret`'s type, labels,
/// annotations, owner references and data.
fn secret_copy(secret: &Secret, name: &str) -> Result<Value, BoxError> {
    let source = &secret.metadata;
    let metadata = ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(NAMESPACE.to_owned()),
        labels: source.labels.clone(),
        annotations: source.annotations.clone(),
        owner_references: source.owner_references.clone(),
        ..ObjectMeta::default()
    };
    let copy = Secret { metadata, type_: secret.type_.clone(), data: secret.data.clone(), ..Secret::default() };
    Ok(serde_json::to_value(copy)?)
}

struct Report<'a> {
    knobs: &'a Knobs,
    sync: ColdSync,
    /// The operator's requests during the cold sync (the bench's own subtracted).
    kube_counts: Counts,
    gcp_counts: BTreeMap<String, u64>,
    own: Counts,
    reconciles: Reconciles,
    memory_synced: Memory,
    memory_quiet: Memory,
    quiet: Quiet,
}

impl Report<'_> {
    fn print(&self) {
        let n = self.knobs.refs;
        let synced = (n + 1) as f64;
        let sync = &self.sync;
        println!();
        // Per-SecretRef figures divide by N + 1 even when the cold sync stopped short.
        self.print_sync_time();
        let access = self.gcp_counts.get("secretmanager.versions.access").copied().unwrap_or(0);
        let all: u64 = self.gcp_counts.values().sum();
        row("Secret Manager access / SecretRef", format!("{:.2}  (target 1.00)", access as f64 / synced));
        row(
            "GCP calls (all methods) / SecretRef",
            format!("{:.2}  ({})", all as f64 / synced, compact_gcp(&self.gcp_counts)),
        );
        row(
            "reconciles / SecretRef",
            format!("{:.2}  ({} in all)", self.reconciles.secret_ref / synced, self.reconciles.secret_ref),
        );
        let services = self.knobs.services().max(1) as f64;
        row(
            "reconciles / SecureApiService",
            format!("{:.2}  ({} in all)", self.reconciles.service / services, self.reconciles.service),
        );
        row(
            "operator RSS peak (VmHWM) / at the end",
            format!("{:.1} / {:.1} MiB", mib(self.memory_quiet.peak_kib), mib(self.memory_quiet.now_kib)),
        );
        row(
            "  at the end of the cold sync: peak / now",
            format!("{:.1} / {:.1} MiB", mib(self.memory_synced.peak_kib), mib(self.memory_synced.now_kib)),
        );
        row(
            "operator CPU (user + system) in the cold sync",
            format!(
                "{:.2} s  ({:.0}% of the cold sync)",
                secs(self.memory_synced.cpu),
                100.0 * secs(self.memory_synced.cpu) / secs(sync.total)
            ),
        );
        let probe = match sync.probe {
            Some((latency, ready_then)) => format!(
                "{:.0} ms  (goal < 1000; created when {ready_then}/{n} were Ready)",
                latency.as_secs_f64() * 1000.0
            ),
            None => "not Ready (or not created) when the cold sync stopped".to_owned(),
        };
        row("new SecretRef during the cold sync: create → Ready", probe);
        self.print_quiet();
        println!("\nKubernetes requests during the cold sync, by the operator (per SecretRef: / {})", n + 1);
        print_counts(&self.kube_counts, synced);
        println!("  (the bench's own, subtracted: {})", compact(&self.own));
    }

    fn print_sync_time(&self) {
        let sync = &self.sync;
        let (n, services) = (self.knobs.refs + 1, self.knobs.services());
        if sync.complete {
            row("cold sync: spawn → all Ready", format!("{:.2} s", secs(sync.total)));
        } else {
            let (r, s) = (sync.refs_ready, sync.services_ready);
            let stopped = format!("{r}/{n} SecretRefs, {s}/{services} SecureApiServices Ready");
            row("cold sync: INCOMPLETE at the limit", format!("{:.2} s, {stopped}", secs(sync.total)));
        }
        let at = |moment: Option<Duration>| moment.map_or_else(|| "-".to_owned(), |m| format!("{:.2} s", secs(m)));
        row(
            "  first SecretRef Ready / all SecretRefs Ready",
            format!("{} / {}", at(sync.first_ready), at(sync.all_refs_ready)),
        );
        row("  throughput", format!("{:.0} SecretRefs/s", sync.refs_ready as f64 / secs(sync.total)));
    }

    fn print_quiet(&self) {
        let quiet = &self.quiet;
        let writes: Counts = quiet
            .kube
            .iter()
            .filter(|((verb, _), _)| WRITES.contains(&verb.as_str()))
            .map(|(k, n)| (k.clone(), *n))
            .collect();
        let reads: Counts = quiet
            .kube
            .iter()
            .filter(|((verb, _), _)| !WRITES.contains(&verb.as_str()))
            .map(|(k, n)| (k.clone(), *n))
            .collect();
        let label = format!("quiet {} s: Kubernetes writes", self.knobs.quiet.as_secs());
        row(&label, format!("{}  ({})", writes.values().sum::<u64>(), compact(&writes)));
        row("  Kubernetes reads and watches", format!("{}  ({})", reads.values().sum::<u64>(), compact(&reads)));
        row("  GCP calls", format!("{}  ({})", quiet.gcp.values().sum::<u64>(), compact_gcp(&quiet.gcp)));
    }
}

/// The floor, and the operator's cold sync next to it.
fn print_floor(floor: &Floor, sync: Duration) {
    println!();
    row("floor: the cold sync's writes, made directly", format!("{:.2} s", secs(floor.elapsed)));
    println!("  (each SecretRef: access, its Secret, its status; each SecureApiService: its snapshots, its status)");
    let made: Vec<String> =
        CALL_KINDS.iter().zip(&floor.calls).map(|(kind, calls)| format!("{kind} {}", calls.made)).collect();
    row("  calls", made.join(", "));
    let mean = |calls: &Calls| calls.spent.as_secs_f64() * 1000.0 / calls.made.max(1) as f64;
    let means: Vec<String> = floor.calls.iter().map(|calls| format!("{:.2}", mean(calls))).collect();
    row(&format!("  mean ms per call: {}", CALL_KINDS.join(" / ")), means.join(" / "));
    row("  the floor's requests", format!("{}; GCP {}", compact(&floor.kube), compact_gcp(&floor.gcp)));
    row("  not in the floor", "the operator's Deployment, Service and ServiceAccount applies, Events, reads".into());
    row("operator's cold sync / floor", format!("{:.1}×", secs(sync) / secs(floor.elapsed)));
}

fn row(label: &str, value: String) {
    println!("{label:<52} {value}");
}

/// A table: one row per resource, one column per verb used, then totals and per SecretRef.
fn print_counts(counts: &Counts, per: f64) {
    let used: BTreeSet<&str> = counts.keys().map(|(verb, _)| verb.as_str()).collect();
    let verbs: Vec<&str> = VERBS.into_iter().filter(|v| used.contains(v)).collect();
    let resources: BTreeSet<&str> = counts.keys().map(|(_, resource)| resource.as_str()).collect();
    let header: String = verbs.iter().map(|v| format!("{v:>10}")).collect();
    println!("  {:<34}{header}{:>10}", "resource", "all");
    let line = |label: &str, pick: &dyn Fn(&str) -> f64, precision: usize| {
        let cells: String = verbs.iter().map(|v| format!("{:>10.precision$}", pick(v))).collect();
        let all: f64 = verbs.iter().map(|v| pick(v)).sum();
        println!("  {label:<34}{cells}{all:>10.precision$}");
    };
    let count =
        |verb: &str, resource: &str| counts.get(&(verb.to_owned(), resource.to_owned())).copied().unwrap_or(0) as f64;
    for resource in &resources {
        line(resource, &|verb| count(verb, resource), 0);
    }
    let total = |verb: &str| resources.iter().map(|r| count(verb, r)).sum::<f64>();
    line("total", &total, 0);
    line("per SecretRef", &|verb| total(verb) / per, 2);
}

/// `verb resource N, ...`, or `none`.
fn compact(counts: &Counts) -> String {
    let parts: Vec<String> = counts.iter().map(|((verb, resource), n)| format!("{verb} {resource} {n}")).collect();
    if parts.is_empty() { "none".into() } else { parts.join(", ") }
}

fn compact_gcp(counts: &BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = counts.iter().map(|(method, n)| format!("{method} {n}")).collect();
    if parts.is_empty() { "none".into() } else { parts.join(", ") }
}

fn secs(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn env_usize(name: &str, default: usize) -> Result<usize, BoxError> {
    match std::env::var(name) {
        Ok(text) => Ok(text.parse().map_err(|_| format!("{name}={text} is not a number"))?),
        Err(_) => Ok(default),
    }
}
