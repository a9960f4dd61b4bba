//! One connection's life: a reader (frames, handlers, heartbeat) in the connection's task and a
//! writer (the outgoing queue) in a task of its own; closing is bounded by the close timeout.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, sleep, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::broadcasts::Taken;
use super::client::WsClient;
use super::close::{WsDisconnectReason, close_frame};
use super::commands;
use super::handlers::HandlerResult;
use super::message::WsMessage;
use super::outbox::{ClientShared, Outgoing, Writer};
use super::registry::HubInner;
use super::stats::Counters;

type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// A timer that does not fire (pings disabled, or the client is closing).
const NEVER: Duration = Duration::from_secs(60 * 60 * 24 * 365);
/// Messages the writer takes from the queue per lock.
const WRITE_BATCH: usize = 64;
/// Close code reported when the peer's close frame carried none.
const NO_STATUS: u16 = 1005;

/// How the reading side of a connection ended.
enum ReadEnd {
    /// The close handshake completed: the peer's close frame (or its reply to ours).
    Closed(Option<CloseFrame>),
    /// The connection dropped without a close handshake.
    Lost,
    /// The peer broke the protocol; the connection is failed with this close frame.
    Failed(CloseFrame, WsDisconnectReason),
    /// No answer to a ping within the pong deadline.
    PingTimeout,
    /// The close handshake did not finish within the close timeout.
    CloseTimeout,
}

impl ReadEnd {
    fn from_error(hub: &HubInner, client: &ClientShared, error: WsError) -> Self {
        let (code, reason, why) = match &error {
            WsError::Capacity(_) => {
                let total = Counters::bump(&hub.counters.oversized_messages);
                tracing::warn!(
                    client = %client.id,
                    max_message_size = hub.config.max_message_size,
                    oversized_messages = total,
                    "websocket message too big, closing with 1009"
                );
                (
                    CloseCode::Size,
                    "message too big",
                    WsDisconnectReason::MessageTooBig,
                )
            }
            WsError::Utf8(_) => (
                CloseCode::Invalid,
                "invalid utf-8",
                WsDisconnectReason::ProtocolError { code: 1007 },
            ),
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => return Self::Lost,
            WsError::Protocol(_) => (
                CloseCode::Protocol,
                "protocol error",
                WsDisconnectReason::ProtocolError { code: 1002 },
            ),
            _ => {
                tracing::debug!(client = %client.id, %error, "websocket connection failed");
                return Self::Lost;
            }
        };
        if let WsDisconnectReason::ProtocolError { code } = why {
            let total = Counters::bump(&hub.counters.protocol_errors);
            tracing::warn!(client = %client.id, %error, code, protocol_errors = total, "websocket protocol error");
        }
        Self::Failed(close_frame(code, reason), why)
    }
}

/// Registers a client whose place in the broadcast log was taken when its upgrade was
/// answered, runs its connection to its end, then forgets the client.
pub(crate) async fn run(hub: Arc<HubInner>, shared: Arc<ClientShared>, socket: Socket) {
    let client = WsClient::from_parts((hub.clone(), shared.clone()));
    // The log was attached before the client is visible: a message queued for it then never
    // waits for a broadcast its reader could not see.
    hub.register(shared.clone());
    tracing::debug!(
        client = %shared.id,
        remote = ?shared.request.remote_addr(),
        protocol = ?shared.protocol,
        "websocket client connected"
    );
    let close_timeout = hub.config.close_timeout;
    let (sink, mut stream) = socket.split();
    // The writer has a task of its own, so that a wake-up to send is not also a read attempt
    // (tungstenite prepares its read buffer on each one), and reading never waits for writing.
    let mut writer = tokio::spawn(write_loop(hub.clone(), shared.clone(), sink));

    let end = {
        let reader = read_loop(&client, &mut stream);
        let close_timer = async {
            shared.close_started.notified().await;
            sleep(close_timeout).await;
        };
        tokio::select! {
            end = reader => end,
            () = close_timer => ReadEnd::CloseTimeout,
        }
    };
    // No more messages in, none out; late senders get `WsSendError::Closed`. The writer hands
    // the sink back once its current write is done; one stuck on a peer that stopped reading is
    // given up after the close timeout.
    shared.stop();
    let sink = match timeout(close_timeout, &mut writer).await {
        Ok(Ok(sink)) => Some(sink),
        Ok(Err(error)) => {
            tracing::error!(client = %shared.id, %error, "websocket writer task failed");
            None
        }
        Err(_) => {
            writer.abort();
            None
        }
    };

    // A failed connection lingers (below); any other is dropped now, before the handler runs.
    let mut halves = sink.map(|sink| (sink, stream));
    let mut failed = None;
    let reason = match end {
        ReadEnd::Closed(frame) => {
            let (code, reason) = frame.map_or((NO_STATUS, String::new()), |f| {
                (f.code.into(), f.reason.to_string())
            });
            WsDisconnectReason::ClientClosed { code, reason }
        }
        ReadEnd::Lost => WsDisconnectReason::ConnectionLost,
        ReadEnd::Failed(frame, reason) => {
            if let Some((sink, stream)) = halves.take() {
                failed = send_close(sink, stream, frame, close_timeout).await;
            }
            reason
        }
        ReadEnd::PingTimeout => {
            let total = Counters::bump(&hub.counters.dead_peers);
            tracing::warn!(
                client = %shared.id,
                pong_deadline = ?hub.config.pong_deadline,
                dead_peers = total,
                "websocket client did not answer a ping, tearing it down"
            );
            WsDisconnectReason::PingTimeout
        }
        ReadEnd::CloseTimeout => {
            tracing::debug!(client = %shared.id, "websocket close handshake timed out, dropping the connection");
            WsDisconnectReason::ConnectionLost
        }
    };
    drop(halves);
    // When the hub started the close, that is the reason, whatever the peer did next.
    let (hub_reason, dropped) = shared.close_reason_and_drops();
    let reason = hub_reason.unwrap_or(reason);

    hub.unregister(&shared);
    hub.counters.closed(reason.close_code());
    tracing::debug!(client = %shared.id, %reason, messages_dropped = dropped, "websocket client disconnected");
    if let Some(on_disconnect) = &hub.handlers.on_disconnect {
        run_handler(&client, "on_disconnect", || {
            on_disconnect(client.parts(), reason)
        })
        .await;
    }
    if let Some(socket) = failed {
        linger(socket, close_timeout).await;
    }
}

/// Fails the connection after a protocol error: sends `frame` and hands back the socket for
/// [`linger`].
async fn send_close(
    mut sink: SplitSink<Socket, Message>,
    stream: SplitStream<Socket>,
    frame: CloseFrame,
    bound: Duration,
) -> Option<Socket> {
    let code = u16::from(frame.code);
    let sent = timeout(bound, sink.send(Message::Close(Some(frame)))).await;
    if let Ok(Err(error)) = sent {
        tracing::trace!(code, %error, "websocket close frame not sent");
    }
    stream.reunite(sink).ok()
}

/// Closes our side of the TCP connection and reads until the peer closes its side, so that the
/// close frame we sent is not lost to a reset (unread data makes the kernel answer with RST).
async fn linger(mut socket: Socket, bound: Duration) {
    let io = socket.get_mut();
    let drain = async {
        io.shutdown().await.ok();
        let mut scratch = [0u8; 512];
        while let Ok(1..) = io.read(&mut scratch).await {}
    };
    timeout(bound, drain).await.ok();
}

/// Reads frames and runs the handlers; sends pings and watches their answers.
async fn read_loop(client: &WsClient, stream: &mut SplitStream<Socket>) -> ReadEnd {
    let hub = &client.hub;
    let shared = &client.shared;
    let config = &hub.config;
    if let Some(on_connect) = &hub.handlers.on_connect {
        run_handler(client, "on_connect", || on_connect(client.parts())).await;
    }

    let pings = !config.ping_interval.is_zero();
    let timer = sleep(if pings { config.ping_interval } else { NEVER });
    tokio::pin!(timer);
    // When the ping waiting for an answer went out.
    let mut ping_sent: Option<Instant> = None;
    let mut peer_close: Option<CloseFrame> = None;
    loop {
        tokio::select! {
            // A frame that already arrived counts before the deadline is checked.
            biased;
            frame = stream.next() => {
                let frame = match frame {
                    Some(Ok(frame)) => frame,
                    Some(Err(error)) => return ReadEnd::from_error(hub, shared, error),
                    // tungstenite ends the stream once the close handshake is complete (and
                    // our reply to the peer's close frame is written).
                    None => return ReadEnd::Closed(peer_close),
                };
                // Any frame shows the peer is alive.
                if let Some(sent) = ping_sent.take() {
                    timer.as_mut().reset(later(sent, config.ping_interval));
                }
                match frame {
                    Message::Text(text) => handle_data(client, WsMessage::Text(text)).await,
                    Message::Binary(bytes) => handle_data(client, WsMessage::Binary(bytes)).await,
                    // Keep reading: the next read sends tungstenite's reply and ends the stream.
                    // Nothing more can be sent, and the close timer now bounds the handshake
                    // (a peer that stops reading would otherwise keep our reply pending).
                    Message::Close(frame) => {
                        peer_close = frame;
                        shared.stop();
                    }
                    // tungstenite answers pings itself.
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                }
            }
            () = &mut timer => {
                if !pings || shared.is_closing() {
                    // The close timer bounds a closing connection.
                    timer.as_mut().reset(later(Instant::now(), NEVER));
                } else if ping_sent.is_some() {
                    return ReadEnd::PingTimeout;
                } else {
                    shared.queue_ping();
                    let now = Instant::now();
                    ping_sent = Some(now);
                    timer.as_mut().reset(later(now, config.pong_deadline));
                }
            }
        }
    }
}

/// `start + duration`, or a year from `start` when that does not fit (a configured
/// `Duration::MAX` must not panic).
fn later(start: Instant, duration: Duration) -> Instant {
    start
        .checked_add(duration)
        .or_else(|| start.checked_add(NEVER))
        .unwrap_or(start)
}

/// Hands a text or binary message to the topic commands or the app.
async fn handle_data(client: &WsClient, message: WsMessage) {
    let hub = &client.hub;
    hub.counters
        .messages_received
        .fetch_add(1, Ordering::Relaxed);
    if client.shared.is_closing() {
        // RFC 6455 lets an endpoint that sent its close frame discard further data.
        tracing::trace!(client = %client.shared.id, "websocket message after close ignored");
        return;
    }
    if hub.config.topic_commands
        && let WsMessage::Text(text) = &message
        && let Some(command) = commands::parse(text)
    {
        commands::apply(client, command);
        return;
    }
    match &hub.handlers.on_message {
        Some(on_message) => {
            run_handler(client, "on_message", || on_message(client.parts(), message)).await
        }
        None => {
            tracing::trace!(client = %client.shared.id, "websocket message ignored: no on_message handler")
        }
    }
}

/// Runs a handler to its end; an error is logged, a panic closes the client with 1011.
async fn run_handler(
    client: &WsClient,
    handler: &'static str,
    start: impl FnOnce() -> HandlerResult,
) {
    let outcome = match std::panic::catch_unwind(AssertUnwindSafe(start)) {
        Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
        Err(panic) => Err(panic),
    };
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(client = %client.shared.id, handler, %error, "websocket handler returned an error");
        }
        Err(_) => {
            tracing::error!(client = %client.shared.id, handler, "websocket handler panicked, closing the client with 1011");
            client.shared.close(
                close_frame(CloseCode::Error, "internal error"),
                WsDisconnectReason::HandlerPanicked,
                false,
                client.hub.broadcasts.published(),
            );
        }
    }
}

/// Drains the client's queue and the hub's broadcasts into the socket until our close frame is
/// sent, the socket fails, or the connection stops; hands the sink back.
async fn write_loop(
    hub: Arc<HubInner>,
    shared: Arc<ClientShared>,
    mut sink: SplitSink<Socket, Message>,
) -> SplitSink<Socket, Message> {
    if let Err(error) = write_all(&hub, &shared, &mut sink).await {
        // The peer is gone or closed first; the reader sees it too.
        tracing::trace!(client = %shared.id, %error, "websocket writer stopped");
        shared.stop();
    }
    sink
}

async fn write_all(
    hub: &HubInner,
    shared: &ClientShared,
    sink: &mut SplitSink<Socket, Message>,
) -> Result<(), WsError> {
    let mut writer = Writer {
        batch: Vec::with_capacity(WRITE_BATCH),
        // What the writer takes from the queue is no longer counted against the byte bound:
        // about what the socket buffers before a write.
        max_batch_bytes: hub.config.write_buffer_size,
        held: None,
        waiting: None,
    };
    let mut unflushed = false;
    let max_bytes = hub.limits.max_bytes;
    loop {
        let published = hub.broadcasts.published_bytes();
        let next = shared.next_for_writer(&mut writer, !unflushed, max_bytes, published);
        match next {
            Outgoing::Ping => {
                sink.feed(Message::Ping(Bytes::new())).await?;
                unflushed = true;
            }
            Outgoing::Missed(missed) => hub.missed_broadcasts(shared, missed),
            Outgoing::OverBudget => hub.over_budget(shared),
            Outgoing::Messages => {
                // Frames are buffered and written in batches; nothing left to send flushes.
                let sent = writer.batch.len() as u64;
                for message in writer.batch.drain(..) {
                    sink.feed(message.into_frame()).await?;
                }
                hub.counters
                    .messages_sent
                    .fetch_add(sent, Ordering::Relaxed);
                unflushed = true;
            }
            Outgoing::Close(frame) => {
                sink.send(Message::Close(Some(frame))).await?;
                return Ok(());
            }
            Outgoing::Stopped => return Ok(()),
            Outgoing::Idle | Outgoing::Behind if writer.held.is_some() => {
                if let Some(broadcast) = writer.held.take()
                    && broadcast.except != Some(shared.id)
                {
                    sink.feed(broadcast.message.into_frame()).await?;
                    hub.counters.messages_sent.fetch_add(1, Ordering::Relaxed);
                    unflushed = true;
                }
            }
            Outgoing::Behind => {}
            Outgoing::Idle if unflushed => {
                sink.flush().await?;
                unflushed = false;
            }
            Outgoing::Idle => {
                let take = async {
                    match writer.waiting.as_mut() {
                        Some(reader) => {
                            let taken = reader.take().await;
                            (taken, reader.taken())
                        }
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = shared.wake_writer.notified() => {}
                    (taken, position) = take => {
                        shared.took_while_waiting(&taken, position);
                        match taken {
                            Taken::Broadcast(broadcast) => writer.held = Some(broadcast),
                            Taken::Missed(missed) => hub.missed_broadcasts(shared, missed),
                            Taken::Nothing => {}
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_durations_do_not_overflow() {
        let now = Instant::now();
        assert_eq!(
            later(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
        assert_eq!(later(now, Duration::MAX), now + NEVER);
    }
}
