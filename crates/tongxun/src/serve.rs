//! The accept loop behind [`Server::serve`](crate::Server::serve): hyper connections with a
//! header-read timeout, an idle timeout and graceful shutdown.
//!
//! hyper's own HTTP/1 timer (`header_read_timeout`) runs while hyper waits for a request head,
//! but only once it knows the connection is HTTP/1: before that, hyper-util's auto builder reads
//! the first bytes to tell HTTP/1 from HTTP/2's preface, with no timer at all. And HTTP/2 has no
//! idle timeout in hyper. So each connection also counts its requests in flight, and a
//! connection that has none for `Config::header_read_timeout` is closed; a request in flight (a
//! long-polling GET, an SSE stream) keeps its connection, and an upgraded WebSocket has left
//! hyper's connection by then.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

use crate::Config;

/// How long the accept loop pauses after an error that is not about one connection (such as
/// running out of file descriptors), so that it does not spin while the error lasts.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on every one of `listeners` until `stop` completes, then asks every connection
/// to close gracefully and waits for them, `Config::shutdown_timeout` at most.
pub(crate) async fn run(
    listeners: Vec<TcpListener>,
    app: Router,
    config: &Config,
    stop: impl Future<Output = ()>,
) {
    let builder = Arc::new(builder(config));
    let connections = GracefulShutdown::new();
    let mut accept_errors = 0_u64;
    let mut stop = std::pin::pin!(stop);
    let mut first = 0;
    loop {
        let accepted = tokio::select! {
            () = &mut stop => break,
            accepted = accept_any(&listeners, &mut first) => accepted,
        };
        match accepted {
            Ok((tcp, addr)) => {
                if accept_errors > 0 {
                    tracing::info!(errors = accept_errors, "accepting connections again");
                    accept_errors = 0;
                }
                if config.tcp_nodelay
                    && let Err(e) = tcp.set_nodelay(true)
                {
                    tracing::debug!(%addr, "could not set TCP_NODELAY: {e}");
                }
                let conn = Conn {
                    builder: builder.clone(),
                    app: app.clone(),
                    addr,
                    idle_timeout: config.header_read_timeout,
                };
                tokio::spawn(conn.serve(tcp, connections.watcher()));
            }
            // The peer gave up before the connection was accepted: nothing lasting.
            Err(e) if is_connection_error(&e) => {
                tracing::debug!("connection failed before it was accepted: {e}");
            }
            Err(e) => {
                if accept_errors == 0 {
                    tracing::warn!("failed to accept a connection, retrying: {e}");
                }
                accept_errors += 1;
                tokio::select! {
                    () = &mut stop => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => {}
                }
            }
        }
    }
    drop(listeners);
    let open = connections.count();
    if tokio::time::timeout(config.shutdown_timeout, connections.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(open, "connections still open after the shutdown timeout");
    }
}

/// Accepts a connection from whichever of `listeners` has one, looking at them in turn from
/// `first` on so that a busy listener does not starve the others.
async fn accept_any(
    listeners: &[TcpListener],
    first: &mut usize,
) -> std::io::Result<(TcpStream, SocketAddr)> {
    if listeners.is_empty() {
        return std::future::pending().await;
    }
    std::future::poll_fn(|cx| {
        for turn in 0..listeners.len() {
            let index = (*first + turn) % listeners.len();
            if let Poll::Ready(accepted) = listeners[index].poll_accept(cx) {
                *first = (index + 1) % listeners.len();
                return Poll::Ready(accepted);
            }
        }
        Poll::Pending
    })
    .await
}

/// One builder for every connection, configured from `config`.
fn builder(config: &Config) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(config.http2_keep_alive_interval)
        .keep_alive_timeout(config.http2_keep_alive_timeout)
        .max_concurrent_streams(config.http2_max_concurrent_streams);
    builder
}

/// Errors of `accept` that concern only the connection being accepted.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

/// What serving one accepted connection needs.
struct Conn {
    builder: Arc<Builder<TokioExecutor>>,
    app: Router,
    addr: SocketAddr,
    idle_timeout: Duration,
}

impl Conn {
    async fn serve(self, tcp: TcpStream, watcher: Watcher) {
        let Conn {
            builder,
            app,
            addr,
            idle_timeout,
        } = self;
        let (in_flight, counts) = watch::channel(Requests::default());
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            let request = InFlight::new(in_flight.clone());
            // What `Router::into_make_service_with_connect_info::<SocketAddr>` would insert.
            req.extensions_mut().insert(ConnectInfo(addr));
            let response = app.clone().oneshot(req);
            async move {
                let response = response.await?;
                Ok::<_, Infallible>(response.map(|body| Tracked {
                    body,
                    _request: request,
                }))
            }
        });
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
        tokio::select! {
            result = watcher.watch(conn) => {
                if let Err(e) = result {
                    tracing::debug!(%addr, "connection closed: {e}");
                }
            }
            () = idle(counts, idle_timeout) => {
                tracing::debug!(%addr, "closing a connection idle for {idle_timeout:?}");
            }
        }
    }
}

/// A connection's requests: in flight now, and started since it opened.
#[derive(Debug, Default, Clone, Copy)]
struct Requests {
    in_flight: usize,
    started: u64,
}

/// Completes once a connection had no request in flight, and started none, for `timeout`.
///
/// Both counts matter: a request answered within one poll of the connection's task raises and
/// lowers `in_flight` before this future looks, so only `started` shows it came.
async fn idle(mut counts: watch::Receiver<Requests>, timeout: Duration) {
    loop {
        let Ok(now) = counts.wait_for(|r| r.in_flight == 0).await.map(|r| *r) else {
            // The connection is gone with its service; its own future ends the task.
            return std::future::pending().await;
        };
        let busy = counts.wait_for(|r| r.in_flight > 0 || r.started != now.started);
        if tokio::time::timeout(timeout, busy).await.is_err() {
            return;
        }
    }
}

/// A request in flight on its connection, from the moment hyper hands it over until its
/// response body is dropped.
struct InFlight(watch::Sender<Requests>);

impl InFlight {
    fn new(counts: watch::Sender<Requests>) -> Self {
        counts.send_modify(|r| {
            r.in_flight += 1;
            r.started += 1;
        });
        Self(counts)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|r| r.in_flight -= 1);
    }
}

/// A response body that keeps its request counted as in flight while hyper still sends it.
struct Tracked {
    body: Body,
    _request: InFlight,
}

impl http_body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
