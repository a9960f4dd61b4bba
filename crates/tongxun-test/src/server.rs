//! A tongxun server on a free loopback port, for the length of a test.

use std::net::SocketAddr;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tongxun::{Io, ServeError, Server};

use crate::builder::ClientBuilder;
use crate::client::TestClient;
use crate::error::HandshakeError;

/// A [`Server`] serving on `127.0.0.1:0` until [`shutdown`](Self::shutdown) or drop.
///
/// # Examples
/// ```
/// use tongxun::{Server, Socket};
/// use tongxun_test::TestServer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = Server::builder()
///     .namespace("/", |socket: Socket| async move {
///         socket.join("lobby").ok();
///     })
///     .build();
/// let server = TestServer::start(server).await?;
/// let client = server.connect("/").await?;
/// let in_lobby = server.io().of("/").unwrap().to("lobby").sockets();
/// assert_eq!(in_lobby[0].id().to_string(), client.id());
/// server.shutdown().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    io: Io,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl TestServer {
    /// Binds `127.0.0.1:0` and serves `server` there, on a task of the current runtime.
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start(server: Server) -> std::io::Result<TestServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let io = server.io();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(listener, async {
            stopped.await.ok();
        }));
        Ok(TestServer {
            addr,
            io,
            stop: Some(stop),
            task,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's Socket.IO side, to broadcast, look up sockets and rooms from the test.
    pub fn io(&self) -> &Io {
        &self.io
    }

    /// A builder for a client of this server (namespace, auth, transport).
    pub fn client(&self) -> ClientBuilder {
        ClientBuilder::new(self.addr)
    }

    /// A client joined to `namespace` over a WebSocket.
    ///
    /// # Errors
    /// As [`ClientBuilder::connect`].
    pub async fn connect(&self, namespace: &str) -> Result<TestClient, HandshakeError> {
        self.client().namespace(namespace).connect().await
    }

    /// Shuts the server down gracefully, as on SIGTERM, and waits until it stopped: the
    /// server's disconnect handlers have run for every client.
    ///
    /// # Errors
    /// What [`Server::serve`] returned.
    ///
    /// # Panics
    /// When serving panicked.
    pub async fn shutdown(mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
        match (&mut self.task).await {
            Ok(served) => served,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
