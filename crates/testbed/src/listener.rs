//! The emulators' front doors: [`listen`] binds a loopback address and serves a handler with the
//! operator's own HTTP server (`secure_api_operator::http_listener::serve`), until the returned
//! [`Listener`] is shut down or dropped.

use bytes::Bytes;
use hyper::body::Body;
use hyper::{Request, Response};
use secure_api_operator::http_listener::serve;
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running listener. Dropping it stops accepting and closes open connections.
#[derive(Debug)]
pub struct Listener {
    /// The bound address (with the port picked for port 0).
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Listener {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets requests in flight finish, and waits for the connections to close.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Binds `addr` and serves `handler` until the returned listener is shut down or dropped.
pub async fn listen<H, F, B>(addr: SocketAddr, handler: H) -> std::io::Result<Listener>
where
    H: Fn(Request<Bytes>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve(listener, handler, shutdown.clone()));
    Ok(Listener { addr, shutdown, task: Some(task) })
}
