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
//!   within it, or hyper closes the connection (slowloris); a new
//!   connection's first byte must arrive within it too, before hyper even
//!   knows whether it speaks HTTP/1 or HTTP/2;
//! - **idle timeout** (default 45 s): a connection with no request in
//!   flight and no byte either way for this long is closed, whatever its
//!   protocol: a keep-alive connection left open, or an HTTP/2 client that
//!   sent its preface and nothing else (HTTP/2 connections are also
//!   pinged, and closed when a ping goes unanswered);
//! - **connection cap** (default 4,096): past it, new connections wait in
//!   the kernel's backlog until one closes, instead of each costing
//!   memory and a file descriptor;
//! - **body read timeout** (default 30 s): a request's whole body must
//!   arrive within it from the end of its head; after that, reading the body
//!   fails, the handler answers 4xx and the connection closes;
//! - **drain timeout** (default 10 s): on shutdown the listener closes at
//!   once, idle keep-alive connections close, requests in flight get this
//!   long to finish, and whatever is still open after it is dropped.
//!
//! (A second Ctrl-C exits at once: see [`crate::shutdown`].)
//!
//! Each request carries the peer's address as an extension
//! ([`axum::extract::ConnectInfo`]), for rate limits and trusted proxies.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
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
    /// How long a connection may sit with nothing in flight and nothing
    /// sent either way. Keep it above the pool idle timeout of the clients
    /// inside the stack ([`CLIENT_POOL_IDLE`]), so they never reuse a
    /// connection just as the server closes it.
    pub idle_timeout: Duration,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
}

/// How long the HTTP clients inside the stack keep an idle pooled
/// connection: well under every server's idle timeout.
pub const CLIENT_POOL_IDLE: Duration = Duration::from_secs(20);

impl Default for ServeSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(45),
            max_connections: 4096,
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
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(settings.idle_timeout / 2))
        .keep_alive_timeout(settings.header_read_timeout)
        .max_concurrent_streams(128);
    let body_limit = settings.body_read_timeout;

    let graceful = GracefulShutdown::new();
    // At most `max_connections` served at once: a permit per connection,
    // returned when its task ends.
    let permits = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    // Every connection's task, so that the ones still open after the drain
    // deadline can be dropped; finished ones are reaped as we go.
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
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
        let activity = Arc::new(Activity::new());
        let service = {
            let activity = activity.clone();
            router
                .clone()
                .map_request(move |request: Request<Incoming>| {
                    let mut request = request.map(|body| {
                        if hyper::body::Body::is_end_stream(&body) {
                            Body::new(body)
                        } else {
                            Body::new(ReadDeadline::new(body, body_limit))
                        }
                    });
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                })
                // In flight from the request's arrival until its answer is
                // ready (its body's bytes then count as traffic).
                .map_future(move |answer| {
                    let in_flight = activity.start_request();
                    async move {
                        let answer = answer.await;
                        drop(in_flight);
                        answer
                    }
                })
        };
        let builder = builder.clone();
        let graceful_watch = graceful.watcher();
        let first_byte = settings.header_read_timeout;
        let idle = settings.idle_timeout;
        connections.spawn(async move {
            let _permit = permit;
            // Nothing at all within the header timeout: not a client.
            let mut probe = [0u8; 1];
            if !matches!(
                tokio::time::timeout(first_byte, stream.peek(&mut probe)).await,
                Ok(Ok(1..))
            ) {
                return;
            }
            let io = TokioIo::new(Tracked {
                inner: stream,
                activity: activity.clone(),
            });
            let connection = builder
                .serve_connection_with_upgrades(io, TowerToHyperService::new(service))
                .into_owned();
            let connection = graceful_watch.watch(connection);
            tokio::select! {
                ended = connection => {
                    if let Err(e) = ended {
                        tracing::trace!(%peer, error = %e, "connection ended with an error");
                    }
                }
                () = activity.idle_for(idle) => {
                    tracing::trace!(%peer, "closing an idle connection");
                }
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

/// What one connection is doing, for its idle watchdog: when a byte last
/// went either way, and how many requests are in flight.
#[derive(Debug)]
struct Activity {
    started: Instant,
    /// Milliseconds from `started` to the last byte read or written.
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// A request began; it counts as in flight until the guard is
    /// dropped, when its answer is ready.
    fn start_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight(self.clone())
    }

    /// Resolves once the connection has had nothing in flight and no byte
    /// either way for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last = self.started + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let quiet_until = last + limit;
            if self.in_flight.load(Ordering::Relaxed) == 0 && Instant::now() >= quiet_until {
                return;
            }
            let next_look = quiet_until.max(Instant::now() + limit.min(Duration::from_secs(1)));
            tokio::time::sleep_until(next_look).await;
        }
    }
}

/// A request in flight on a connection (see [`Activity::start_request`]).
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

pin_project! {
    /// A connection's stream that notes each byte read or written in its
    /// [`Activity`].
    struct Tracked {
        #[pin]
        inner: TcpStream,
        activity: Arc<Activity>,
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let polled = this.inner.poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.project();
        let polled = this.inner.poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.project();
        let polled = this.inner.poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
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
            idle_timeout: Duration::from_millis(600),
            max_connections: 64,
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
    async fn a_connection_that_sends_nothing_is_closed() {
        let (port, _stop, _server) = start(settings()).await;
        let mut stream = send_part(port, b"").await;
        assert_eq!(read_to_close(&mut stream).await, "");
    }

    #[tokio::test]
    async fn a_connection_that_sends_one_byte_is_closed() {
        // One byte: not enough for hyper to tell HTTP/1 from HTTP/2, so its
        // header timeout never starts; the idle watchdog closes it.
        let (port, _stop, _server) = start(settings()).await;
        let mut stream = send_part(port, b"P").await;
        read_to_close(&mut stream).await;
    }

    #[tokio::test]
    async fn an_http2_connection_that_only_sent_its_preface_is_closed() {
        let (port, _stop, _server) = start(settings()).await;
        // The client preface and an empty SETTINGS frame, then nothing (not
        // even an answer to the server's pings).
        let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        let mut stream = send_part(port, &hello).await;
        read_to_close(&mut stream).await;
    }

    #[tokio::test]
    async fn a_keep_alive_connection_left_idle_is_closed() {
        let (port, _stop, _server) = start(settings()).await;
        let mut stream = send_part(
            port,
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab",
        )
        .await;
        let answer = read_to_close(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with('2'), "{answer}");
    }

    #[tokio::test]
    async fn a_slow_handler_is_not_taken_for_an_idle_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let router = Router::new().route(
            "/",
            post(|| async {
                // Three idle timeouts without a byte either way.
                tokio::time::sleep(Duration::from_millis(1800)).await;
                "slow"
            }),
        );
        let stop = CancellationToken::new();
        let _server = tokio::spawn(serve(listener, router, settings(), stop.clone()));
        let answer = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(answer, "slow");
    }

    #[tokio::test]
    async fn connections_past_the_cap_wait_until_one_closes() {
        let (port, _stop, _server) = start(ServeSettings {
            max_connections: 1,
            ..settings()
        })
        .await;
        // The first holds the only place, sending nothing yet.
        let first = send_part(port, b"").await;
        let second = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/"))
            .body("abc")
            .send();
        // Served once the first has been closed for sending nothing.
        let answer = tokio::time::timeout(Duration::from_secs(10), second)
            .await
            .expect("served after the first connection closed")
            .unwrap();
        assert_eq!(answer.text().await.unwrap(), "3");
        drop(first);
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
