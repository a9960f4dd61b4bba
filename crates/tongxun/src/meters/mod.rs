//! What the server counts for its Prometheus metrics: the hooks the Socket.IO layer calls, and
//! the small enums their labels take.
//!
//! With the `metrics` feature the hooks feed a registry each server owns (`on.rs`); without
//! it they are zero-sized stand-ins with the same methods (`off.rs`), which compile to nothing.
//! Every label is one of the enums below or a namespace as the app registered it (a pattern
//! such as `/tenant/{id}`, never a child's name), so no client can grow the label sets.

#[cfg(feature = "metrics")]
mod collect;
#[cfg(feature = "metrics")]
mod on;
#[cfg(feature = "metrics")]
pub(crate) use collect::Sources;
#[cfg(feature = "metrics")]
pub(crate) use on::{Meters, NsMeters};

#[cfg(not(feature = "metrics"))]
mod off;
#[cfg(not(feature = "metrics"))]
pub(crate) use off::{Meters, NsMeters};

/// Defines a label enum, with the text each value is written as.
macro_rules! label_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
        pub(crate) enum $name { $($variant),+ }

        impl $name {
            #[allow(dead_code)]
            pub(crate) const ALL: &'static [$name] = &[$($name::$variant),+];

            #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
            pub(crate) fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        #[cfg(feature = "metrics")]
        impl prometheus_client::encoding::EncodeLabelValue for $name {
            fn encode(
                &self,
                encoder: &mut prometheus_client::encoding::LabelValueEncoder<'_>,
            ) -> std::fmt::Result {
                std::fmt::Write::write_str(encoder, self.as_str())
            }
        }
    };
}

label_enum! {
    /// The Engine.IO transport of a connection.
    Transport { Polling => "polling", Websocket => "websocket" }
}

impl From<socketioxide::TransportType> for Transport {
    fn from(transport: socketioxide::TransportType) -> Self {
        match transport {
            socketioxide::TransportType::Polling => Transport::Polling,
            socketioxide::TransportType::Websocket => Transport::Websocket,
        }
    }
}

label_enum! {
    /// Why a client was refused a namespace (or its Engine.IO handshake).
    Refusal {
        Auth => "auth",
        AuthPanicked => "auth_panicked",
        NameTooLong => "namespace_name_too_long",
        TooManyNamespaces => "too_many_namespaces",
        TooManyForClient => "too_many_namespaces_for_client",
        Removed => "namespace_removed",
        AllowRequest => "allow_request",
    }
}

impl From<crate::io::Refusal> for Refusal {
    fn from(refusal: crate::io::Refusal) -> Self {
        match refusal {
            crate::io::Refusal::NameTooLong => Refusal::NameTooLong,
            crate::io::Refusal::TooManyNamespaces => Refusal::TooManyNamespaces,
            crate::io::Refusal::TooManyForClient => Refusal::TooManyForClient,
            crate::io::Refusal::Removed => Refusal::Removed,
        }
    }
}

label_enum! {
    /// Why a socket left its namespace: socketioxide's [`DisconnectReason`](socketioxide::socket::DisconnectReason).
    Disconnect {
        TransportClose => "transport_close",
        MultipleHttpPolling => "multiple_http_polling",
        PacketParsing => "packet_parsing_error",
        TransportError => "transport_error",
        HeartbeatTimeout => "heartbeat_timeout",
        ByClient => "client_disconnect",
        ByServer => "server_disconnect",
        ClosingServer => "closing_server",
    }
}

impl From<socketioxide::socket::DisconnectReason> for Disconnect {
    fn from(reason: socketioxide::socket::DisconnectReason) -> Self {
        use socketioxide::socket::DisconnectReason as R;
        match reason {
            R::TransportClose => Disconnect::TransportClose,
            R::MultipleHttpPollingError => Disconnect::MultipleHttpPolling,
            R::PacketParsingError => Disconnect::PacketParsing,
            R::TransportError => Disconnect::TransportError,
            R::HeartbeatTimeout => Disconnect::HeartbeatTimeout,
            R::ClientNSDisconnect => Disconnect::ByClient,
            R::ServerNSDisconnect => Disconnect::ByServer,
            R::ClosingServer => Disconnect::ClosingServer,
        }
    }
}

label_enum! {
    /// Whom an emit addressed.
    Target { Socket => "socket", Broadcast => "broadcast" }
}

label_enum! {
    /// How an acknowledgement the server asked for ended (`failed`: an answer that did not
    /// decode, or an event that could not be sent).
    AckOutcome {
        Answered => "answered",
        TimedOut => "timed_out",
        Disconnected => "disconnected",
        Failed => "failed",
    }
}

impl AckOutcome {
    /// How an acknowledgement that failed with `error` ended.
    pub(crate) fn of(error: &crate::AckError) -> AckOutcome {
        match error {
            crate::AckError::Timeout => AckOutcome::TimedOut,
            crate::AckError::Disconnected => AckOutcome::Disconnected,
            crate::AckError::Decode(_) | crate::AckError::Send(_) => AckOutcome::Failed,
        }
    }
}

label_enum! {
    /// The Socket.IO bounds of `docs/security.md` that tongxun itself enforces and counts.
    Limit {
        PendingEvents => "max_pending_events",
        PendingBytes => "max_pending_bytes",
        DynamicNamespaces => "max_dynamic_namespaces",
        NamespaceLen => "max_namespace_len",
        NamespacesPerClient => "max_namespaces_per_client",
    }
}

impl Limit {
    /// The bound a namespace refusal hit, if it was one.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn of_refusal(refusal: crate::io::Refusal) -> Option<Limit> {
        match refusal {
            crate::io::Refusal::NameTooLong => Some(Limit::NamespaceLen),
            crate::io::Refusal::TooManyNamespaces => Some(Limit::DynamicNamespaces),
            crate::io::Refusal::TooManyForClient => Some(Limit::NamespacesPerClient),
            crate::io::Refusal::Removed => None,
        }
    }
}

label_enum! {
    /// A transport a [`Hub`](crate::hub::Hub) publish reached.
    HubTransport { SocketIo => "socketio", Ws => "ws", Sse => "sse" }
}
