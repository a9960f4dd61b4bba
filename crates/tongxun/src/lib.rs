#![doc = include_str!("../README.md")]

pub mod config;
mod error;
mod io;
mod server;
#[cfg(feature = "sse")]
pub mod sse;
#[cfg(feature = "ws")]
pub mod ws;

pub use config::Config;
pub use error::{AckError, SendError, ServeError};
pub use io::{
    Ack, Args, Bin, ConnectError, Data, Event, EventContext, EventHandler, ExtractError, FromEvent, Handshake,
    IntoHandlerResult, Io, ListenerId, Namespace, Socket, Store, StoreError, TryData,
};
pub use server::{Server, ServerBuilder};
pub use socketioxide::TransportType;
pub use socketioxide::socket::{DisconnectReason, Sid};
