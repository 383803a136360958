//! Throughput of the in-memory Kubernetes API emulator (`crates/testbed/src/emulator/kube/`), through both of
//! its front doors: the in-process `kube::Client` and the HTTP/1.1 listener on 127.0.0.1.
//!
//! It measures, and prints as a table (figures only, nothing is asserted):
//! 1. ConfigMap creates/s through the in-process client, with p50/p99 request latency (from the
//!    moment the request is issued, so waiting for a worker thread counts);
//! 2. the same over TCP (a `kube::Client` built from `KubeEmulator::kubeconfig`);
//! 3. watch events/s: a watch is opened from the current resourceVersion, M ConfigMaps are
//!    created, and the rate is M / (first write .. last event received); the delivery latency
//!    (write started .. event received) is reported as p50/p99;
//! 4. the same with 3 watches open at once (fan-out): the rate counts every delivered event;
//! 5. creates of ConfigMaps that name an owner (as the operator's Secrets name their SecretRef),
//!    so the garbage collector's view of each write is part of the figure;
//! 6. creates/s while 2 watches receive every write and another task lists all N objects of
//!    another namespace, one request after another (the lists' median time is reported too);
//! 7. listing all N objects in one request, and in pages of `limit=500` (median of 5 runs).
//!
//! Run with `cargo bench --bench kube_emulator`. Knobs (environment): `BENCH_OBJECTS` (N, default
//! 10 000), `BENCH_TCP_OBJECTS` (default N), `BENCH_OWNED_OBJECTS` (default N),
//! `BENCH_WATCH_EVENTS` (M, default 2000; the emulator buffers 10 000 events per watch),
//! `BENCH_CONCURRENCY` (requests in flight, default 16), `BENCH_TIMEOUT_SECS` (overall limit,
//! default 600). Each row is also shown on stderr as soon as it is measured.
//!
//! Each request runs in its own tokio task (at most `BENCH_CONCURRENCY` at once), so both cores
//! are used as they would be by independent controllers.

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use secure_api_testbed::emulator::kube::KubeEmulator;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Repetitions of each list measurement; the median is reported.
const LIST_RUNS: usize = 5;
const PAGE_SIZE: u32 = 500;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let limit = Duration::from_secs(env_usize("BENCH_TIMEOUT_SECS", 600)? as u64);
    tokio::time::timeout(limit, run()).await.map_err(|_| format!("benchmark took longer than {limit:?}"))?
}

async fn run() -> Result<(), BoxError> {
    let n = env_usize("BENCH_OBJECTS", 10_000)?;
    let n_tcp = env_usize("BENCH_TCP_OBJECTS", n)?;
    let n_owned = env_usize("BENCH_OWNED_OBJECTS", n)?;
    let m = env_usize("BENCH_WATCH_EVENTS", 2000)?;
    let concurrency = env_usize("BENCH_CONCURRENCY", 16)?.max(1);
    let base = Instant::now();

    let emulator = KubeEmulator::new();
    let listener = emulator.listen(([127, 0, 0, 1], 0).into()).await?;
    let kubeconfig = Kubeconfig::from_yaml(&KubeEmulator::kubeconfig(&listener.url()))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let clients = [("in-process", emulator.client()), ("TCP", Client::try_from(config)?)];

    let namespaces: Api<Namespace> = Api::all(emulator.client());
    let extra = ["bench-fan-out", "bench-owned", "bench-contended"];
    for name in ["bench-in-process", "bench-tcp", "bench-watch-in-process", "bench-watch-tcp"].iter().chain(&extra) {
        let metadata = ObjectMeta { name: Some((*name).into()), ..Default::default() };
        namespaces.create(&PostParams::default(), &Namespace { metadata, ..Default::default() }).await?;
    }

    let mut rows: Vec<(String, String)> = vec![];
    for ((door, client), count) in clients.iter().zip([n, n_tcp]) {
        eprintln!("creating {count} ConfigMaps ({door})...");
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace("bench", door));
        let (elapsed, latencies) = create_many(&api, "cm", count, concurrency, base).await?;
        record(
            &mut rows,
            (
                format!("creates, {door} ({count} objects, {concurrency} in flight)"),
                format!("{} objects/s, {}", rate(count, elapsed), p50_p99(latencies)),
            ),
        );
    }

    for (door, client) in &clients {
        eprintln!("watching {m} creates ({door})...");
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace("bench-watch", door));
        let (elapsed, latencies) = watch_creates(&api, 1, m, concurrency, base).await?;
        record(
            &mut rows,
            (
                format!("watch events, {door} ({m} ADDED)"),
                format!("{} events/s, delivery {}", rate(m, elapsed), p50_p99(latencies)),
            ),
        );
    }

    let in_process = emulator.client();
    eprintln!("watching {m} creates with 3 watches...");
    let api: Api<ConfigMap> = Api::namespaced(in_process.clone(), "bench-fan-out");
    let (elapsed, latencies) = watch_creates(&api, 3, m, concurrency, base).await?;
    record(
        &mut rows,
        (
            format!("watch fan-out, in-process (3 watches x {m} ADDED)"),
            format!("{} events/s delivered, delivery {}", rate(3 * m, elapsed), p50_p99(latencies)),
        ),
    );

    eprintln!("creating {n_owned} owned ConfigMaps...");
    let api: Api<ConfigMap> = Api::namespaced(in_process.clone(), "bench-owned");
    let owner = api.create(&PostParams::default(), &config_map("owner".into(), base)).await?;
    let (elapsed, latencies) = create_owned(&api, &owner, n_owned, concurrency, base).await?;
    record(
        &mut rows,
        (
            format!("creates with an owner, in-process ({n_owned} objects, {concurrency} in flight)"),
            format!("{} objects/s, {}", rate(n_owned, elapsed), p50_p99(latencies)),
        ),
    );

    eprintln!("creating {m} ConfigMaps while 2 watches and a list of {n} run...");
    let listed: Api<ConfigMap> = Api::namespaced(in_process.clone(), "bench-in-process");
    let api: Api<ConfigMap> = Api::namespaced(in_process.clone(), "bench-contended");
    let contended = contended_creates(&api, &listed, m, n, concurrency, base).await?;
    record(
        &mut rows,
        (
            format!("creates beside 2 watches and lists of {n}, in-process ({m} objects)"),
            format!(
                "{} objects/s, {}; {} lists done, median {}",
                rate(m, contended.elapsed),
                p50_p99(contended.latencies),
                contended.lists.len(),
                ms(median(contended.lists))
            ),
        ),
    );

    for ((door, client), count) in clients.iter().zip([n, n_tcp]) {
        eprintln!("listing {count} ConfigMaps ({door})...");
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace("bench", door));
        for page in [None, Some(PAGE_SIZE)] {
            let mut times = Vec::with_capacity(LIST_RUNS);
            let mut requests = 0;
            for _ in 0..LIST_RUNS {
                let start = Instant::now();
                let (items, pages) = list_all(&api, page).await?;
                times.push(start.elapsed());
                requests = pages;
                if items != count {
                    return Err(format!("listed {items} ConfigMaps, expected {count}").into());
                }
            }
            let median = median(times);
            let how = page.map_or("one request".to_owned(), |l| format!("limit={l}, {requests} requests"));
            record(
                &mut rows,
                (
                    format!("list {count}, {door} ({how})"),
                    format!("{} (median of {LIST_RUNS}), {} objects/s", ms(median), rate(count, median)),
                ),
            );
        }
    }

    let creates = emulator.count("create", "configmaps");
    let expected = n + n_tcp + 2 * m + m + (n_owned + 1) + m;
    if creates != expected as u64 {
        return Err(format!("the emulator counted {creates} ConfigMap creates, expected {expected}").into());
    }
    listener.shutdown().await;

    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    println!("\nKubernetes API emulator, {cores} cores, release build");
    for (name, figure) in &rows {
        println!("  {name:<width$}  {figure}");
    }
    Ok(())
}

/// Keeps a row for the final table, and shows it at once (a slow run still reports what it measured).
fn record(rows: &mut Vec<(String, String)>, row: (String, String)) {
    eprintln!("  {}: {}", row.0, row.1);
    rows.push(row);
}

/// Creates `count` ConfigMaps, `concurrency` at a time; returns the wall time and each request's latency.
async fn create_many(
    api: &Api<ConfigMap>,
    prefix: &str,
    count: usize,
    concurrency: usize,
    base: Instant,
) -> Result<(Duration, Vec<Duration>), BoxError> {
    create_each(api, count, concurrency, |i| config_map(format!("{prefix}-{i:06}"), base)).await
}

/// Creates the ConfigMaps `make` builds for 0..`count`, `concurrency` at a time; returns the wall
/// time and each request's latency.
async fn create_each(
    api: &Api<ConfigMap>,
    count: usize,
    concurrency: usize,
    make: impl Fn(usize) -> ConfigMap,
) -> Result<(Duration, Vec<Duration>), BoxError> {
    let start = Instant::now();
    let latencies: Vec<Duration> = stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            // Latency counts from here, so time spent waiting for a worker thread is included.
            let sent = Instant::now();
            let object = make(i);
            tokio::spawn(async move {
                api.create(&PostParams::default(), &object).await?;
                Ok::<_, kube::Error>(sent.elapsed())
            })
        })
        .buffer_unordered(concurrency)
        .map(|joined| -> Result<Duration, BoxError> { Ok(joined??) })
        .try_collect()
        .await?;
    Ok((start.elapsed(), latencies))
}

/// Opens `watches` watches from the current resourceVersion, creates `count` ConfigMaps and waits
/// until every watch has their ADDED events; returns first write .. last event, and each event's
/// delivery latency (for every watch).
async fn watch_creates(
    api: &Api<ConfigMap>,
    watches: usize,
    count: usize,
    concurrency: usize,
    base: Instant,
) -> Result<(Duration, Vec<Duration>), BoxError> {
    let version = current_version(api).await?;
    let mut readers = Vec::with_capacity(watches);
    for _ in 0..watches {
        readers.push(watch_added(api, &version, count, base).await?);
    }
    let start = Instant::now();
    create_many(api, "watched", count, concurrency, base).await?;
    let (latencies, last) = join_watches(readers).await?;
    Ok((last.duration_since(start), latencies))
}

/// What creates measured while watches and lists ran beside them.
struct Contended {
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// The time of each complete list of the other namespace.
    lists: Vec<Duration>,
}

/// Creates `count` ConfigMaps while 2 watches receive them and a task lists `listed` (which holds
/// `expected` objects) in one request after another.
async fn contended_creates(
    api: &Api<ConfigMap>,
    listed: &Api<ConfigMap>,
    count: usize,
    expected: usize,
    concurrency: usize,
    base: Instant,
) -> Result<Contended, BoxError> {
    let version = current_version(api).await?;
    let mut readers = Vec::with_capacity(2);
    for _ in 0..2 {
        readers.push(watch_added(api, &version, count, base).await?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let lister = {
        let (listed, stop) = (listed.clone(), stop.clone());
        tokio::spawn(async move {
            let mut lists = vec![];
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                let (items, _) = list_all(&listed, None).await?;
                lists.push(start.elapsed());
                if items != expected {
                    return Err(format!("listed {items} ConfigMaps, expected {expected}").into());
                }
            }
            Ok::<_, BoxError>(lists)
        })
    };
    let (elapsed, latencies) = create_many(api, "contended", count, concurrency, base).await?;
    join_watches(readers).await?;
    stop.store(true, Ordering::Relaxed);
    let lists = lister.await??;
    Ok(Contended { elapsed, latencies, lists })
}

/// Creates `count` ConfigMaps owned by `owner`, `concurrency` at a time.
async fn create_owned(
    api: &Api<ConfigMap>,
    owner: &ConfigMap,
    count: usize,
    concurrency: usize,
    base: Instant,
) -> Result<(Duration, Vec<Duration>), BoxError> {
    let reference = OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: owner.metadata.name.clone().unwrap_or_default(),
        uid: owner.metadata.uid.clone().ok_or("the owner has no uid")?,
        ..Default::default()
    };
    create_each(api, count, concurrency, |i| {
        let mut object = config_map(format!("owned-{i:06}"), base);
        object.metadata.owner_references = Some(vec![reference.clone()]);
        object
    })
    .await
}

async fn current_version(api: &Api<ConfigMap>) -> Result<String, BoxError> {
    Ok(api.list(&ListParams::default().limit(1)).await?.metadata.resource_version.unwrap_or_default())
}

type WatchReader = JoinHandle<Result<(Vec<Duration>, Instant), BoxError>>;

/// Opens a watch from `version` and reads `count` ADDED events in a task; the task returns their
/// delivery latencies and when the last one arrived.
async fn watch_added(
    api: &Api<ConfigMap>,
    version: &str,
    count: usize,
    base: Instant,
) -> Result<WatchReader, BoxError> {
    let events = api.watch(&WatchParams::default().timeout(290), version).await?;
    Ok(tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        let mut latencies = Vec::with_capacity(count);
        while latencies.len() < count {
            match events.try_next().await? {
                Some(WatchEvent::Added(cm)) => {
                    let received = base.elapsed();
                    let written = cm.data.as_ref().and_then(|d| d.get("t")).and_then(|t| t.parse::<u64>().ok());
                    let written = written.ok_or("an ADDED event without the write timestamp")?;
                    latencies.push(received.saturating_sub(Duration::from_nanos(written)));
                }
                Some(WatchEvent::Error(status)) => return Err(format!("watch error: {status:?}").into()),
                Some(_) => {}
                None => return Err(format!("the watch ended after {} of {count} events", latencies.len()).into()),
            }
        }
        Ok((latencies, Instant::now()))
    }))
}

/// Waits for every reader; returns all latencies and the last event's arrival.
async fn join_watches(readers: Vec<WatchReader>) -> Result<(Vec<Duration>, Instant), BoxError> {
    let (mut all, mut last) = (vec![], None::<Instant>);
    for reader in readers {
        let (latencies, at) = reader.await??;
        all.extend(latencies);
        last = Some(last.map_or(at, |l| l.max(at)));
    }
    Ok((all, last.unwrap_or_else(Instant::now)))
}

/// Lists every ConfigMap of the namespace, in pages of `limit` if given; returns (items, requests).
async fn list_all(api: &Api<ConfigMap>, limit: Option<u32>) -> Result<(usize, usize), BoxError> {
    let (mut items, mut requests, mut token) = (0, 0, None::<String>);
    loop {
        let mut params = ListParams::default();
        if let Some(limit) = limit {
            params = params.limit(limit);
        }
        if let Some(token) = &token {
            params = params.continue_token(token);
        }
        let page = api.list(&params).await?;
        items += page.items.len();
        requests += 1;
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok((items, requests));
        }
    }
}

/// A small ConfigMap carrying its write time (nanoseconds since `base`) for watch latency.
fn config_map(name: String, base: Instant) -> ConfigMap {
    let data = [("t".to_owned(), base.elapsed().as_nanos().to_string()), ("payload".to_owned(), "x".repeat(64))];
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name),
            labels: Some(BTreeMap::from([("app".to_owned(), "bench".to_owned())])),
            ..Default::default()
        },
        data: Some(BTreeMap::from(data)),
        ..Default::default()
    }
}

fn namespace(prefix: &str, door: &str) -> String {
    format!("{prefix}-{}", if door == "TCP" { "tcp" } else { "in-process" })
}

fn env_usize(name: &str, default: usize) -> Result<usize, BoxError> {
    match std::env::var(name) {
        Ok(value) => value.parse().map_err(|e| format!("{name}={value}: {e}").into()),
        Err(_) => Ok(default),
    }
}

fn rate(count: usize, elapsed: Duration) -> String {
    format!("{:.0}", count as f64 / elapsed.as_secs_f64().max(1e-9))
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1e3)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

fn p50_p99(mut latencies: Vec<Duration>) -> String {
    latencies.sort();
    let at = |p: f64| {
        let index = (latencies.len().saturating_sub(1) as f64 * p).round() as usize;
        latencies.get(index).copied().unwrap_or_default()
    };
    format!("p50 {}, p99 {}", ms(at(0.5)), ms(at(0.99)))
}
