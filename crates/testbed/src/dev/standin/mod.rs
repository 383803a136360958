//! A stand-in for the seed's API (SCENARIO.md, "The API service") in the playground, where no
//! container runs: an HTTP server on loopback that plays the pods of a SecureApiService. Each
//! request is answered by one of the revisions whose pods are Ready — the stable Deployment's and
//! the canary's, in proportion to their Ready pods, as the one Service splits them — from that
//! revision's own env and files, resolved from its pod template and snapshot Secrets as a kubelet
//! would; the `x-revision` header names it. A pod is Ready once its revision's `/health` answers
//! 200, which it does while the simulated database takes the revision's credential; the emulated
//! Deployment controller asks the stand-in. A second listener serves `/metrics`: the requests
//! each revision answered, by status class, for a real Prometheus to scrape.
//!
//! - [`process`]: pod template + Secrets → the container's env and files (pure);
//! - [`database`]: which credentials the simulated database refuses, at login or for queries
//!   (pure);
//! - [`api`]: request + env and files → answer (pure);
//! - [`split`]: requests split between revisions by Ready pods (pure);
//! - [`metrics`]: requests by revision and status class, in Prometheus' text format (pure);
//! - [`pods`]: follows the Deployments, probes each revision, and answers the readiness hook;
//! - [`route`]: routes the service's external URL to the stand-in in the GCP emulator's network.

pub mod api;
pub mod database;
pub mod metrics;
pub mod pods;
pub mod process;
pub mod route;
pub mod split;

use crate::emulator::kube::KubeEmulator;
use crate::listener::{Listener, listen};
use api::Answer;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use metrics::Requests;
use pods::Pods;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

/// The response header that names the revision that answered.
pub const REVISION_HEADER: &str = "x-revision";

/// The running stand-in of one SecureApiService.
pub struct StandIn {
    listener: Listener,
    metrics: Listener,
    pods: Arc<Pods>,
    stop: CancellationToken,
    /// Stops the follower if the stand-in is dropped without [`StandIn::stop`].
    _follower: DropGuard,
    task: JoinHandle<()>,
}

impl StandIn {
    /// Serves `namespace/service` on `127.0.0.1` (a free port), and answers `kube`'s readiness
    /// questions about the service's pods from then on.
    pub async fn start(kube: &KubeEmulator, namespace: &str, service: &str) -> Result<Self, String> {
        let pods = Arc::new(Pods::new(namespace, service));
        let hook = pods.clone();
        kube.set_pod_readiness(Some(Arc::new(move |deployment: &Value| hook.ready(deployment))));
        let stop = CancellationToken::new();
        let task = tokio::spawn(pods::follow(pods.clone(), kube.clone(), stop.clone()));
        let serving = pods.clone();
        let handler = move |request: Request<Bytes>| {
            let pods = serving.clone();
            async move {
                let process = pods.pick();
                let (method, path) = (request.method(), request.uri().path());
                let answer = api::answer(method, path, request.headers(), process.as_deref().map_err(String::as_str));
                // Method, path and status only: headers carry the caller's token.
                tracing::debug!(%method, path, status = answer.status.as_u16(), "stand-in API");
                if let Ok(process) = &process {
                    pods.record(&process.revision, answer.status);
                }
                let mut response = answer.into_response();
                let revision = process.ok().and_then(|p| HeaderValue::from_str(&p.revision).ok());
                if let Some(revision) = revision {
                    response.headers_mut().insert(REVISION_HEADER, revision);
                }
                response
            }
        };
        let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
        let listener = listen(addr, handler).await.map_err(|e| format!("the stand-in cannot listen on {addr}: {e}"))?;
        let counted = pods.clone();
        let metrics = listen(addr, move |request: Request<Bytes>| {
            let text = (request.uri().path() == "/metrics").then(|| counted.requests().render());
            async move { metrics_response(text) }
        })
        .await
        .map_err(|e| format!("the stand-in's metrics cannot listen on {addr}: {e}"))?;
        Ok(Self { listener, metrics, pods, _follower: stop.clone().drop_guard(), stop, task })
    }

    /// Where the stand-in answers: `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.listener.addr
    }

    /// Where the stand-in's `/metrics` answers: `127.0.0.1:PORT`.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics.addr
    }

    /// Requests by revision and status class so far: what `/metrics` shows.
    pub fn requests(&self) -> Requests {
        self.pods.requests()
    }

    /// Ready pods per revision: how requests are split now.
    pub fn endpoints(&self) -> BTreeMap<String, u32> {
        self.pods.endpoints()
    }

    /// Requests each revision answered so far.
    pub fn served(&self) -> BTreeMap<String, u64> {
        self.pods.served()
    }

    /// What the readiness probe (`GET /health`) of a revision the Deployments run answers.
    pub fn probe(&self, revision: &str) -> Option<Answer> {
        self.pods.probe(revision)
    }

    /// Stops serving and following. The emulator keeps the readiness hook's last answers.
    pub async fn stop(self) {
        self.listener.shutdown().await;
        self.metrics.shutdown().await;
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// `/metrics`' answer in Prometheus' text format; any other path is not found.
fn metrics_response(text: Option<String>) -> Response<Full<Bytes>> {
    let Some(text) = text else {
        let mut response = Response::new(Full::new(Bytes::from_static(b"not found")));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return response;
    };
    let mut response = Response::new(Full::new(Bytes::from(text)));
    let format = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
    response.headers_mut().insert(header::CONTENT_TYPE, format);
    response
}
