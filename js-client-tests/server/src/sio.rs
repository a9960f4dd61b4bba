//! The Socket.IO namespaces and events the `socket.io-client` tests use.

use tongxun::{Server, ServerBuilder};

pub(crate) fn builder() -> ServerBuilder {
    Server::builder()
}

pub(crate) fn routes(server: Server) -> Server {
    server
}
