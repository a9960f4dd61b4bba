//! The Server-Sent Events hub: topics with history, streams that resume exactly, publishing
//! from Rust and over HTTP.
//!
//! ```no_run
//! use tongxun::sse::{SseConfig, SseEvent, SseHub};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = SseConfig::default();
//! config.publish_token = Some("publisher-secret".into());
//! let hub = SseHub::new(config);
//! let server = tongxun::Server::builder().sse(hub.clone()).build();
//!
//! // From anywhere in the app:
//! hub.publish("prices", SseEvent::new(r#"{"btc":64000}"#).event("price")).await?;
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! # server.serve(listener, async {}).await?;
//! # Ok(()) }
//! ```
//! In the browser, one connection carries several topics:
//! ```js
//! const events = new EventSource("/events?topic=prices&topic=news");
//! events.addEventListener("price", (e) => console.log(JSON.parse(e.data)));
//! events.onmessage = (e) => console.log("unnamed event", e.data);
//! events.addEventListener("resync", (e) => reloadState(JSON.parse(e.data).topics));
//! ```
//!
//! # Subscribing
//! `GET {path}?topic=a&topic=b` ([`SseConfig::path`] is `/events` by default) opens one stream
//! on every listed topic, so a page does not spend one of the browser's six connections per
//! host on each topic. Query parameters:
//!
//! | parameter     | meaning                                                              |
//! |---------------|----------------------------------------------------------------------|
//! | `topic`       | a topic to receive, repeated for several (at least one, at most [`SseConfig::max_topics`]) |
//! | `token`       | the subscribe token, see [`SubscribeAuth`] (or `Authorization: Bearer`) |
//! | `lastEventId` | where to resume, for a first connection, which cannot send `Last-Event-ID` |
//!
//! Other parameters are ignored. Topic names are 1 to 64 bytes of ASCII letters, digits, `-`,
//! `_`, `.`, `/` and `:` ([`check_topic`]): the rules of a cross-transport
//! [`Hub`](crate::hub::Hub) topic, less the one that keeps Socket.IO rooms of sockets private.
//!
//! The response has `Content-Type: text/event-stream`, `Cache-Control: no-cache` and
//! `X-Accel-Buffering: no` (nginx passes it through unbuffered); it is never compressed: the
//! hub sets no `Content-Encoding`, and `tower-http`'s compression skips `text/event-stream` by
//! default (a layer of your own must too, or events sit in its buffer).
//!
//! ## Status codes
//! A browser's `EventSource` reconnects only after a `200` stream ends or the connection
//! drops; any other status stops it for good, 5xx included. So the hub answers:
//!
//! | status | when                                                                      |
//! |--------|---------------------------------------------------------------------------|
//! | `200`  | the stream (also after [`SseHub::shutdown`], or when a topic is new and the hub holds [`SseConfig::max_live_topics`]: it ends at once, the client retries later) |
//! | `204`  | the subscribe check returned [`SubscribeRejection::Stop`]: "stop, do not reconnect" |
//! | `400`  | no topic, an invalid topic name, too many topics, a malformed query string |
//! | `401`  | missing or wrong token (with `WWW-Authenticate: Bearer`)                  |
//! | `403`  | the subscribe check returned [`SubscribeRejection::Forbidden`]            |
//!
//! Error answers carry a JSON body `{"error": "..."}`. The hub never answers 5xx on purpose.
//!
//! # Wire format
//! A stream starts with `retry: <ms>` ([`SseConfig::retry`]) and the [`READY_EVENT`] event,
//! then carries events such as
//! ```text
//! id: 5f3a9c1e;prices:18,news:4
//! event: price
//! data: first line
//! data: second line
//!
//! ```
//! `event:` is present for named events ([`SseEvent::event`]); without it clients fire
//! `message`. Data is split into one `data:` line per line; `\r\n` and `\r` count as line
//! breaks like `\n`, so clients always receive `\n`. After [`SseConfig::keep_alive`] without
//! output, the stream sends a `: keep-alive` comment, which clients ignore and proxies see as
//! traffic.
//!
//! # Ids and resuming
//! A stream carries several topics but a client remembers one id, so the id records the
//! stream's position in every topic it carries:
//! ```text
//! id       = epoch ";" position *( "," position )
//! position = topic ":" seq
//! ```
//! `seq` counts the events of one topic (1, 2, 3, ...; 0 before the first; a topic created after
//! the hub [forgot](SseHub::forget) one may start further on); `epoch` names the
//! current life of the history: it changes when an in-memory hub restarts, so that an id from
//! before a restart is recognized as such and not mistaken for a position in the new
//! numbering. Each event's id is the stream's position *after* it. Clients should treat ids as
//! opaque.
//!
//! Why not one sequence for all topics? It would force every publish through one lock to keep
//! each stream's events in id order, and would not map onto per-topic stores such as Redis
//! Streams; per-topic positions need neither, and a topic's order is all a stream promises.
//! The price: the `id:` line differs per stream, so each stream writes its own few bytes in
//! front of the event, whose `event:`/`data:` bytes are encoded once and shared.
//!
//! On reconnect a browser sends the last id it saw in `Last-Event-ID`; a first connection may
//! pass one in the `lastEventId` query parameter instead (the header wins, since the query
//! parameter stays in the URL for every reconnection). For each topic the stream replays the
//! events after the recorded position from history, then continues live: replay and
//! registration happen under the topic's lock, so no event is lost or repeated. Replayed events
//! of several topics come in the order they were published, as they would have arrived live. A
//! topic the id does not mention (one added to the URL since) starts live.
//!
//! The [`READY_EVENT`] event that opens every stream carries the starting id, so even a client
//! whose connection drops before any real event resumes from the right place.
//!
//! ## History and resync
//! Each topic keeps its last [`SseConfig::history_len`] events (1,000 by default). When a
//! stream asks to resume from a position history no longer reaches, or with an id of another
//! epoch or not of this hub at all, it first receives a [`RESYNC_EVENT`] event whose data names
//! the topics concerned, such as `{"topics":["prices"],"reason":"history_exceeded"}`; the client
//! should reload their state by other means. Those topics then continue live from now; the
//! other topics resume normally.
//!
//! ## Bounds
//! Besides `history_len` per topic, the hub holds at most [`SseConfig::max_live_topics`] topics
//! and [`SseConfig::max_history_bytes`] of history in all, and forgets a topic with no
//! subscriber and no publish for [`SseConfig::topic_idle_timeout`]. [`SseHub::forget`] forgets
//! one now. A client resuming into a forgotten topic receives `resync`, never its old events.
//! [`SseHub::topic_count`] and [`SseHub::history_bytes`] tell what the hub holds.
//!
//! # Publishing
//! From Rust: [`SseHub::publish`] with an [`SseEvent`]; it returns the [`EventId`].
//!
//! Over HTTP, when [`SseConfig::publish_token`] is set: `POST {path}` with
//! `Authorization: Bearer <token>`, `Content-Type: application/json` and a body
//! ```json
//! {"topic": "prices", "event": "price", "data": "64000"}
//! ```
//! `event` is optional; `data` is a string, or any other JSON value except `null`, which is sent
//! as compact JSON text. The answer is `200` with `{"id": "...", "topic": "prices", "seq": 18}`,
//! or `{"error": "..."}` with:
//!
//! | status | when                                                                  |
//! |--------|-----------------------------------------------------------------------|
//! | `400`  | the body is not JSON                                                  |
//! | `401`  | missing or wrong bearer token                                         |
//! | `403`  | no publish token is configured: HTTP publishing is off                |
//! | `413`  | data over [`SseConfig::max_data_len`], or a body over twice that plus 1 KiB |
//! | `415`  | the content type is not `application/json`                            |
//! | `422`  | JSON of the wrong shape: a missing or unknown field, an invalid topic or event name, `data: null`, or an `id` (the hub assigns ids) |
//! | `503`  | the hub is shutting down, or the topic is new and the hub holds [`SseConfig::max_live_topics`] |
//!
//! # Slow subscribers
//! Publishing never waits for a subscriber. Each stream has a queue of
//! [`SseConfig::subscriber_queue`] events (256 by default); a subscriber whose queue is full
//! when an event arrives is disconnected, counted in [`SseStats::lagged`] and logged. Its
//! browser reconnects after the `retry` delay with its `Last-Event-ID` and resumes from history,
//! so it loses nothing as long as history reaches back; otherwise it receives `resync`.
//!
//! A client that stops reading entirely keeps its connection until the operating system gives
//! up on it, but it holds no one back: it is out of every topic once its queue fills.
//!
//! # Shutdown
//! [`SseHub::shutdown`] (called by [`Server::serve`](crate::Server::serve) on graceful
//! shutdown) ends every stream cleanly after a `: server shutting down, reconnect` comment, and
//! returns once they have ended (5 seconds at most); clients reconnect to whatever serves the
//! URL next and resume.
//! [`SseHub::disconnect_all`] does the same without shutting down.
//!
//! # Inside
//! `event.rs` (events and their framing), `id.rs`, `config.rs`, `stats.rs` and `history.rs`
//! (one topic's events in memory) are leaves; `resume.rs` places a new stream in its topics
//! and writes its opening; `topics.rs` holds every topic with its history and streams;
//! `stream.rs` is one stream's response body; `hub.rs` is [`SseHub`] over them, `http.rs` its
//! routes, `shared.rs` the history in Redis (feature `redis`), and `log.rs` what a
//! cross-transport [`Hub`](crate::hub::Hub) reads of the hub.

mod config;
mod event;
mod history;
mod http;
mod hub;
mod id;
mod log;
mod resume;
#[cfg(feature = "redis")]
mod shared;
mod stats;
mod stream;
mod topics;

pub use config::{
    DEFAULT_HISTORY_LEN, DEFAULT_KEEP_ALIVE, DEFAULT_MAX_DATA_LEN, DEFAULT_MAX_HISTORY_BYTES,
    DEFAULT_MAX_LIVE_TOPICS, DEFAULT_MAX_TOPICS, DEFAULT_PATH, DEFAULT_PUBLISH_TOKEN,
    DEFAULT_RETRY, DEFAULT_SUBSCRIBE_AUTH, DEFAULT_SUBSCRIBER_QUEUE, DEFAULT_TOPIC_IDLE_TIMEOUT,
    SseConfig, SubscribeAuth, SubscribeRejection, SubscribeRequest,
};
pub use event::{
    ForgetError, MAX_EVENT_NAME_LEN, MAX_TOPIC_LEN, PublishError, READY_EVENT, RESYNC_EVENT,
    SseEvent, check_topic,
};
pub use hub::SseHub;
pub use id::EventId;
pub use stats::SseStats;

pub(crate) use history::{Replay, Stored};
pub(crate) use id::ParsedId;
pub(crate) use resume::ResyncReason;
