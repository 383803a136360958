//! A stand-in for the seed's API (SCENARIO.md, "The API service") in the playground, where no
//! container runs: an HTTP server on loopback that answers `/health`, `/config`,
//! `/database/status` and `/api/data` from the env and files of the SecureApiService's current
//! revision, resolved from its Deployment and snapshot Secrets as a kubelet would. A rotation is
//! visible in the answers as soon as the operator made the new revision current.
//!
//! - [`process`]: pod template + Secrets → the container's env and files (pure);
//! - [`api`]: request + env and files → answer (pure);
//! - [`current`]: reads the current revision's template and Secrets;
//! - [`route`]: routes the service's external URL to the stand-in in the GCP emulator's network.

pub mod api;
pub mod current;
pub mod process;
pub mod route;

use crate::listener::{Listener, listen};
use bytes::Bytes;
use current::Current;
use hyper::Request;
use std::net::SocketAddr;
use std::sync::Arc;

/// The running stand-in of one SecureApiService.
pub struct StandIn {
    listener: Listener,
}

impl StandIn {
    /// Serves `namespace/service`'s current revision on `127.0.0.1` (a free port).
    pub async fn start(client: kube::Client, namespace: &str, service: &str) -> Result<Self, String> {
        let current = Arc::new(Current::new(client, namespace, service));
        let handler = move |request: Request<Bytes>| {
            let current = current.clone();
            async move {
                let process = current.process().await;
                let (method, path) = (request.method(), request.uri().path());
                let process = process.as_deref().map_err(String::as_str);
                let answer = api::answer(method, path, request.headers(), process);
                // Method, path and status only: headers carry the caller's token.
                tracing::debug!(%method, path, status = answer.status.as_u16(), "stand-in API");
                answer.into_response()
            }
        };
        let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
        let listener = listen(addr, handler).await.map_err(|e| format!("the stand-in cannot listen on {addr}: {e}"))?;
        Ok(Self { listener })
    }

    /// Where the stand-in answers: `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.listener.addr
    }

    pub async fn stop(self) {
        self.listener.shutdown().await;
    }
}
