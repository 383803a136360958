//! A load generator through the API Gateway emulator: `GET /api/data` with the gateway's API key
//! and the backend's Bearer token, at a steady pace (one request started per tick, whatever the
//! ones before are doing), counting the answers by outcome and by the revision that answered.

use secure_api_testbed::dev::standin::REVISION_HEADER;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::task::JoinSet;

use super::support::BoxError;

/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The `x-revision` of an answer without one (the gateway's own errors, timeouts).
pub const NO_REVISION: &str = "-";

/// Calls the gateway's hostname on the GCP emulator's listener, as `curl --resolve` would.
#[derive(Clone)]
pub struct Caller {
    client: reqwest::Client,
    url: String,
    key: String,
    bearer: String,
}

/// Requests sent, and how they ended: 2xx or failed (any other status, or no answer), per
/// revision.
#[derive(Clone, Debug, Default)]
pub struct Outcomes {
    /// Revision → (2xx, failed).
    pub by_revision: BTreeMap<String, (u64, u64)>,
}

impl Outcomes {
    pub fn sent(&self) -> u64 {
        self.by_revision.values().map(|(ok, failed)| ok + failed).sum()
    }

    pub fn failed(&self) -> u64 {
        self.by_revision.values().map(|(_, failed)| failed).sum()
    }

    fn count(&mut self, revision: Option<String>, ok: bool) {
        let entry = self.by_revision.entry(revision.unwrap_or_else(|| NO_REVISION.to_owned())).or_default();
        if ok {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }

    pub fn add(&mut self, other: &Outcomes) {
        for (revision, (ok, failed)) in &other.by_revision {
            let entry = self.by_revision.entry(revision.clone()).or_default();
            entry.0 += ok;
            entry.1 += failed;
        }
    }
}

impl Caller {
    /// For the gateway at `gateway_url` (`https://HOST`), served on `addr`.
    pub fn new(gateway_url: &str, addr: SocketAddr, key: String, bearer: String) -> Result<Self, BoxError> {
        let host = gateway_url.trim_start_matches("https://").trim_end_matches('/');
        let client = reqwest::Client::builder().no_proxy().resolve(host, addr).timeout(REQUEST_TIMEOUT).build()?;
        Ok(Self { client, url: format!("http://{host}:{}/api/data", addr.port()), key, bearer })
    }

    /// One request: whether it answered 2xx, and the revision that answered.
    pub async fn call(&self) -> (bool, Option<String>) {
        let request = self.client.get(&self.url).query(&[("key", &self.key)]).bearer_auth(&self.bearer);
        match request.send().await {
            Ok(response) => {
                let revision = response.headers().get(REVISION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
                (response.status().is_success(), revision)
            }
            Err(_) => (false, None),
        }
    }

    /// Starts a request every `every` for `window`, then waits for the ones in flight.
    pub async fn run(&self, every: Duration, window: Duration) -> Outcomes {
        let mut ticks = tokio::time::interval(every);
        // A late tick is skipped rather than bursting: the pace stays steady.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let end = tokio::time::Instant::now() + window;
        let mut calls = JoinSet::new();
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(end) => break,
                _ = ticks.tick() => {
                    let caller = self.clone();
                    calls.spawn(async move { caller.call().await });
                }
            }
        }
        let mut outcomes = Outcomes::default();
        while let Some(done) = calls.join_next().await {
            let (ok, revision) = done.unwrap_or((false, None));
            outcomes.count(revision, ok);
        }
        outcomes
    }
}
