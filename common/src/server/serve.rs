//! The HTTP server loop every service runs: hyper's connection handling
//! with the limits a public server needs against slow clients, and a stop
//! that drains what is in flight but never waits for ever.
//!
//! `axum::serve` is the usual way to run a router, but it has no read
//! timeouts and its graceful shutdown waits for every connection however
//! long that takes: one client that sends its headers and two bytes of a
//! 100-byte body, then nothing, keeps a stopping process alive
//! indefinitely. So this loop, with three settings ([`ServeSettings`]):
//!
//! - **header read timeout** (default 10 s): a request's head must arrive
//!   within it, or hyper closes the connection (slowloris);
//! - **body read timeout** (default 30 s): a request's whole body must
//!   arrive within it from the end of its head; after that, reading the body
//!   fails, the handler answers 4xx and the connection closes;
//! - **drain timeout** (default 10 s): on shutdown the listener closes at
//!   once, idle keep-alive connections close, requests in flight get this
//!   long to finish, and whatever is still open after it is dropped.
//!
//! (A second Ctrl-C exits at once: see [`crate::shutdown`].)

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use pin_project_lite::pin_project;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How connections are served and how long a stop may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeSettings {
    /// Time for a request's head (request line and headers) to arrive.
    pub header_read_timeout: Duration,
    /// Time for a request's whole body to arrive, from the end of its head.
    pub body_read_timeout: Duration,
    /// How long a stop waits for requests in flight before dropping them.
    pub drain_timeout: Duration,
}

impl Default for ServeSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` fires, then drains (see
/// the module docs).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ServeSettings,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let body_limit = settings.body_read_timeout;
    let service = router.map_request(move |request: Request<Incoming>| {
        request.map(|body| {
            if hyper::body::Body::is_end_stream(&body) {
                Body::new(body)
            } else {
                Body::new(ReadDeadline::new(body, body_limit))
            }
        })
    });

    let graceful = GracefulShutdown::new();
    // Every connection's task, so that the ones still open after the drain
    // deadline can be dropped; finished ones are reaped as we go.
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let connection = builder
            .serve_connection_with_upgrades(
                TokioIo::new(stream),
                TowerToHyperService::new(service.clone()),
            )
            .into_owned();
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            if let Err(e) = connection.await {
                tracing::trace!(%peer, error = %e, "connection ended with an error");
            }
        });
    }

    // Stop accepting first: new connections are refused from here on.
    drop(listener);
    while connections.try_join_next().is_some() {}
    let open = connections.len();
    if open > 0 {
        tracing::info!(connections = open, limit = ?settings.drain_timeout, "draining open connections");
    }
    if tokio::time::timeout(settings.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = connections.len(),
            limit = ?settings.drain_timeout,
            "connections still open after the drain timeout; dropping them"
        );
    }
    connections.shutdown().await;
    Ok(())
}

/// An accept error: a connection that failed before we took it is the
/// client's business; anything else (out of file descriptors) is logged
/// and retried after a pause, as hyper's and axum's loops do.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %error, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The body of a request took longer than the body read timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} s", .0.as_secs_f64())]
pub struct BodyTimeout(pub Duration);

pin_project! {
    /// A request body that fails once `limit` has passed since the request
    /// arrived: tower-http's `RequestBodyTimeout` limits the gap between
    /// two chunks, which a client that trickles a byte at a time never
    /// exceeds; this limits the whole body.
    pub struct ReadDeadline<B> {
        #[pin]
        body: B,
        #[pin]
        deadline: tokio::time::Sleep,
        limit: Duration,
    }
}

impl<B> ReadDeadline<B> {
    /// `body`, failing once `limit` has passed from now.
    pub fn new(body: B, limit: Duration) -> Self {
        Self {
            body,
            deadline: tokio::time::sleep(limit),
            limit,
        }
    }
}

impl<B> hyper::body::Body for ReadDeadline<B>
where
    B: hyper::body::Body,
    B::Error: Into<axum::BoxError>,
{
    type Data = B::Data;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        if let Poll::Ready(frame) = this.body.poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match this.deadline.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout(*this.limit).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn settings() -> ServeSettings {
        ServeSettings {
            header_read_timeout: Duration::from_millis(300),
            body_read_timeout: Duration::from_millis(300),
            drain_timeout: Duration::from_millis(300),
        }
    }

    async fn start(
        settings: ServeSettings,
    ) -> (
        u16,
        CancellationToken,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let router = Router::new().route(
            "/",
            post(|body: axum::body::Bytes| async move { body.len().to_string() }),
        );
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(listener, router, settings, stop.clone()));
        (port, stop, server)
    }

    /// Connects to `port` and sends `bytes` (the start of a request).
    async fn send_part(port: u16, bytes: &[u8]) -> tokio::net::TcpStream {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        stream.write_all(bytes).await.unwrap();
        stream
    }

    /// Headers and 2 bytes of a 100-byte body.
    const STUCK_BODY: &[u8] = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab";

    /// Reads until the server closes the connection, and returns what it
    /// sent; panics if it is still open after 20 s (for ever, without the
    /// timeouts under test).
    async fn read_to_close(stream: &mut tokio::net::TcpStream) -> String {
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
            .await
            .expect("the server closes the connection")
            .expect("a clean close");
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn a_client_that_never_finishes_its_headers_is_disconnected() {
        let (port, _stop, _server) = start(settings()).await;
        let mut stream = send_part(port, b"POST / HTTP/1.1\r\nHost: x\r\n").await;
        let answer = read_to_close(&mut stream).await;
        assert!(answer.is_empty() || answer.contains("408"), "{answer}");
    }

    #[tokio::test]
    async fn a_body_that_trickles_is_cut_off_with_a_clear_error() {
        let (port, _stop, _server) = start(settings()).await;
        let mut stream = send_part(port, STUCK_BODY).await;
        let answer = read_to_close(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
        assert!(answer.contains("did not arrive within"), "{answer}");
    }

    #[tokio::test]
    async fn a_stop_drops_a_stuck_connection_after_the_drain_timeout() {
        let (port, stop, server) = start(ServeSettings {
            body_read_timeout: Duration::from_secs(600),
            ..settings()
        })
        .await;
        // A request in flight that will not finish by itself before the
        // drain timeout: its body is still being "sent".
        let _stream = send_part(port, STUCK_BODY).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        stop.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(20), server).await;
        assert!(
            ended.is_ok(),
            "the server is still running {:?} after the stop",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_request_in_flight_is_answered_during_the_drain() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let started = std::sync::Arc::new(tokio::sync::Notify::new());
        let handler_started = started.clone();
        let router = Router::new().route(
            "/",
            post(move || async move {
                handler_started.notify_one();
                tokio::time::sleep(Duration::from_millis(200)).await;
                "done"
            }),
        );
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(
            listener,
            router,
            ServeSettings {
                drain_timeout: Duration::from_secs(10),
                ..settings()
            },
            stop.clone(),
        ));
        let call = tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("http://127.0.0.1:{port}/"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        });
        // Stop while the handler is running.
        started.notified().await;
        stop.cancel();
        assert_eq!(call.await.unwrap(), "done");
        server.await.unwrap().unwrap();
    }
}
