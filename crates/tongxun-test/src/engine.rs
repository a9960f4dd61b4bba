//! Engine.IO 4 under the client: the open handshake, the heartbeat, and the two transports.
//!
//! Either transport ends up as the same pair of channels: [`Frame`]s out (Socket.IO packets and
//! their binary attachments) and [`Frame`]s in. Pings are answered here, so the layer above
//! never sees them; the incoming channel closes when the server ends the session.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::error::{BoxError, HandshakeError};

/// One Engine.IO message: a Socket.IO packet in text, or one binary attachment.
#[derive(Debug, Clone)]
pub(crate) enum Frame {
    Text(String),
    Binary(Bytes),
}

/// What the writer task sends.
#[derive(Debug)]
enum Out {
    Message(Frame),
    Pong,
    Close,
}

/// Separates packets in a polling body (Engine.IO 4).
const SEPARATOR: char = '\u{1e}';

/// The frames a session received, in order; the channel closes when the session ends.
pub(crate) type Incoming = mpsc::UnboundedReceiver<Frame>;

/// An open Engine.IO session. Dropping it ends its tasks, as a vanished client would.
#[derive(Debug)]
pub(crate) struct Engine {
    out: mpsc::UnboundedSender<Out>,
    writer: JoinHandle<()>,
    reader: JoinHandle<()>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.writer.abort();
        self.reader.abort();
    }
}

/// The sending half of a session, shared by the client and its reader task.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing(mpsc::UnboundedSender<Out>);

impl Outgoing {
    /// Queues `frame`; `false` once the session has ended.
    pub(crate) fn send(&self, frame: Frame) -> bool {
        self.0.send(Out::Message(frame)).is_ok()
    }
}

impl Engine {
    pub(crate) fn outgoing(&self) -> Outgoing {
        Outgoing(self.out.clone())
    }

    /// Sends the Engine.IO close packet after everything queued, and waits (up to `patience`)
    /// until it is written.
    pub(crate) async fn close(mut self, patience: Duration) {
        if self.out.send(Out::Close).is_ok() {
            let _ = tokio::time::timeout(patience, &mut self.writer).await;
        }
    }

    /// Opens a session over a WebSocket at `url` (`ws://host/path/?EIO=4&transport=websocket`).
    pub(crate) async fn websocket(url: &str) -> Result<(Engine, Incoming), HandshakeError> {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| HandshakeError::Transport(Box::new(e)))?;
        let (mut sink, mut stream) = socket.split();
        let open = loop {
            match stream.next().await {
                Some(Ok(Message::Text(text))) => break text.to_string(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(other)) => return Err(HandshakeError::NotEngineIo(format!("{other:?}"))),
                Some(Err(e)) => return Err(HandshakeError::Transport(Box::new(e))),
                None => return Err(HandshakeError::Closed),
            }
        };
        check_open(&open)?;

        let (out, mut queued) = mpsc::unbounded_channel();
        let (deliver, incoming) = mpsc::unbounded_channel();
        let writer = tokio::spawn(async move {
            while let Some(out) = queued.recv().await {
                let message = match out {
                    Out::Message(Frame::Text(text)) => Message::text(format!("4{text}")),
                    Out::Message(Frame::Binary(data)) => Message::binary(data),
                    Out::Pong => Message::text("3"),
                    Out::Close => {
                        let _ = sink.send(Message::text("1")).await;
                        let _ = sink.close().await;
                        return;
                    }
                };
                if sink.send(message).await.is_err() {
                    return;
                }
            }
        });
        let pong = out.clone();
        let reader = tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let keep_going = match message {
                    Message::Text(text) => receive(text.as_str(), &deliver, &pong),
                    Message::Binary(data) => deliver.send(Frame::Binary(data)).is_ok(),
                    Message::Close(_) => false,
                    _ => true,
                };
                if !keep_going {
                    break;
                }
            }
        });
        Ok((
            Engine {
                out,
                writer,
                reader,
            },
            incoming,
        ))
    }

    /// Opens a session over HTTP long-polling at `url`
    /// (`http://host/path/?EIO=4&transport=polling`).
    pub(crate) async fn polling(url: &str) -> Result<(Engine, Incoming), HandshakeError> {
        let http = HttpClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let body = get(&http, url)
            .await
            .map_err(HandshakeError::Transport)?
            .ok_or(HandshakeError::Closed)?;
        let mut packets = body.split(SEPARATOR);
        let open = packets.next().unwrap_or_default();
        let sid = check_open(open)?;
        let url = format!("{url}&sid={sid}");

        let (out, mut queued) = mpsc::unbounded_channel();
        let (deliver, incoming) = mpsc::unbounded_channel();
        for packet in packets {
            receive_polled(packet, &deliver, &out);
        }

        let writer = tokio::spawn({
            let (http, url) = (http.clone(), url.clone());
            async move {
                // Everything queued meanwhile goes in one POST, as a browser's client batches.
                while let Some(first) = queued.recv().await {
                    let mut batch = vec![first];
                    while let Ok(more) = queued.try_recv() {
                        batch.push(more);
                    }
                    let closing = batch.iter().any(|out| matches!(out, Out::Close));
                    let body = batch
                        .into_iter()
                        .map(|out| match out {
                            Out::Message(Frame::Text(text)) => format!("4{text}"),
                            Out::Message(Frame::Binary(data)) => format!(
                                "b{}",
                                base64::engine::general_purpose::STANDARD.encode(data)
                            ),
                            Out::Pong => "3".to_owned(),
                            Out::Close => "1".to_owned(),
                        })
                        .collect::<Vec<_>>()
                        .join(&SEPARATOR.to_string());
                    if post(&http, &url, body).await.is_err() || closing {
                        return;
                    }
                }
            }
        });
        let pong = out.clone();
        let reader = tokio::spawn(async move {
            // One GET at a time, as the protocol allows; the server holds it until it has
            // something to send or a ping is due. A refused GET means the session is over.
            while let Ok(Some(body)) = get(&http, &url).await {
                if !body
                    .split(SEPARATOR)
                    .all(|packet| receive_polled(packet, &deliver, &pong))
                {
                    break;
                }
            }
        });
        Ok((
            Engine {
                out,
                writer,
                reader,
            },
            incoming,
        ))
    }
}

/// Checks the session's open packet (`0{"sid":...}`) and returns its session id.
fn check_open(packet: &str) -> Result<String, HandshakeError> {
    let not_open = || HandshakeError::NotEngineIo(packet.chars().take(200).collect());
    let json = packet.strip_prefix('0').ok_or_else(not_open)?;
    let open: serde_json::Value = serde_json::from_str(json).map_err(|_| not_open())?;
    open["sid"].as_str().map(str::to_owned).ok_or_else(not_open)
}

/// Handles one text Engine.IO packet; `false` when the session is over.
fn receive(
    packet: &str,
    deliver: &mpsc::UnboundedSender<Frame>,
    pong: &mpsc::UnboundedSender<Out>,
) -> bool {
    match packet.as_bytes().first() {
        Some(b'2') => pong.send(Out::Pong).is_ok(),
        Some(b'4') => deliver.send(Frame::Text(packet[1..].to_owned())).is_ok(),
        Some(b'1') => false,
        _ => true, // noop (6) and anything newer
    }
}

/// Handles one packet of a polling body, where binary comes as `b<base64>`.
fn receive_polled(
    packet: &str,
    deliver: &mpsc::UnboundedSender<Frame>,
    pong: &mpsc::UnboundedSender<Out>,
) -> bool {
    match packet.strip_prefix('b') {
        Some(encoded) => match base64::engine::general_purpose::STANDARD.decode(encoded) {
            Ok(data) => deliver.send(Frame::Binary(data.into())).is_ok(),
            Err(_) => false,
        },
        None => receive(packet, deliver, pong),
    }
}

type Http = HttpClient<HttpConnector, Full<Bytes>>;

/// The body of a GET, or `None` when the server refused it (the session is gone).
async fn get(http: &Http, url: &str) -> Result<Option<String>, BoxError> {
    let response = http.get(url.parse()?).await?;
    let ok = response.status().is_success();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(ok.then(|| String::from_utf8_lossy(&body).into_owned()))
}

async fn post(http: &Http, url: &str, body: String) -> Result<(), BoxError> {
    let request = hyper::Request::post(url)
        .header(hyper::header::CONTENT_TYPE, "text/plain;charset=UTF-8")
        .body(Full::new(Bytes::from(body)))?;
    let response = http.request(request).await?;
    let status = response.status();
    response.into_body().collect().await?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("POST answered {status}").into())
    }
}
