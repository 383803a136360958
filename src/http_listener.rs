//! A small HTTP/1.1 server on a TCP listener with graceful shutdown, shared by the operator's
//! health/metrics endpoint and the test bed's emulators ([`serve`]). Handlers get the request
//! with its body already read.
//!
//! Shutdown is bounded, as kube-apiserver's is: requests in flight get their whole answer, a
//! streaming answer (a watch) ends at once, cleanly, and a connection still busy after
//! [`GRACE`] is closed. Without that, one client's open watch kept a process alive for as long as
//! the client cared to watch.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// How long a connection may take to finish once shutdown starts.
pub const GRACE: Duration = Duration::from_secs(5);

/// Serves `handler` on an already bound listener until `shutdown` is cancelled, then lets open
/// requests finish.
pub async fn serve<H, F, B>(listener: TcpListener, handler: H, shutdown: CancellationToken)
where
    H: Fn(Request<Bytes>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut connections = JoinSet::new();
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::debug!(%error, "accepting a connection failed");
                    continue;
                }
            },
        };
        let handler = handler.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let requests = shutdown.clone();
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let handler = handler.clone();
                let shutdown = requests.clone();
                async move {
                    let (parts, body) = request.into_parts();
                    let response = match body.collect().await {
                        Ok(body) => handler(Request::from_parts(parts, body.to_bytes()))
                            .await
                            .map(|b| b.map_err(Into::into).boxed_unsync()),
                        Err(_) => unreadable_body(),
                    };
                    Ok::<_, Infallible>(response.map(|body| UntilShutdown::new(body, &shutdown)))
                }
            });
            let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    // Past the grace the connection is dropped, which closes it.
                    let _ = tokio::time::timeout(GRACE, connection).await;
                }
            }
        });
    }
    while connections.join_next().await.is_some() {}
}

type BoxedBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// A response body that ends when shutdown starts, if it is a stream (its size not known up
/// front: a watch). A body of known size is always sent whole.
struct UntilShutdown {
    body: BoxedBody,
    /// `None` for a body of known size.
    shutdown: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
}

impl UntilShutdown {
    fn new(body: BoxedBody, shutdown: &CancellationToken) -> Self {
        let streaming = body.size_hint().exact().is_none();
        Self { body, shutdown: streaming.then(|| Box::pin(shutdown.clone().cancelled_owned())) }
    }
}

impl Body for UntilShutdown {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(shutdown) = self.shutdown.as_mut()
            && shutdown.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(None);
        }
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

fn unreadable_body() -> Response<BoxedBody> {
    let body = Full::new(Bytes::from_static(b"the request body could not be read\n")).map_err(|never| match never {});
    let mut response = Response::new(body.boxed_unsync());
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
}
