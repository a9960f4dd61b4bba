//! Per-socket event dispatch.
//!
//! socketioxide calls a socket's message handler synchronously, in arrival order, from the
//! socket's receive path. tongxun registers one [`Dispatcher`] there. When the socket has nothing
//! queued or running, the event's listeners run right there, up to their first `.await` that is
//! not ready; that is the common case, and it costs no task. A listener that has to wait moves
//! on to a task, and the socket's next events queue behind it: that task drains the queue, so
//! events from one socket are handled in the order they arrived even when handlers await. A
//! namespace may trade that for concurrency ([`Dispatch`]): start handlers in order but let them
//! finish in any, or run each event in a task of its own. The drain task only exists while
//! events are waiting: an idle socket costs no task.
//!
//! Before the listeners, the socket's middleware (Node's `socket.use`) sees each event and may
//! refuse it: the listeners do not run and the client's acknowledgement gets the refusal.
//!
//! The state this runs on is in `socket_state.rs`, the listener table in `listeners.rs`.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures_util::FutureExt;
use socketioxide::extract::Event as RawEvent;
use socketioxide::handler::{DisconnectHandler, FromMessageParts, MessageHandler};
use socketioxide::socket::DisconnectReason;
use socketioxide_core::Value;
use tokio::sync::oneshot;

use super::RawAdapter;
use super::extract::{AckSlot, EventContext};
use super::handler::{BoxedHandler, HandlerFailure};
use super::limits::event_cost;
use super::listeners::Listeners;
use super::namespace::Dispatch;
use super::socket::{RawSocket, Socket};
use super::socket_state::{HAS_MIDDLEWARE, OPENED, SocketState};
use crate::config::PendingOverflow;
use crate::meters::Limit;

enum Job {
    Event {
        raw: Arc<RawSocket>,
        value: Value,
        ack_id: Option<i64>,
        /// What the event holds of its client's pending budget.
        cost: usize,
    },
    Disconnect {
        raw: Arc<RawSocket>,
        reason: DisconnectReason,
        done: oneshot::Sender<()>,
    },
}

/// The jobs waiting for a socket's drain task, allocated only while there are some: most
/// sockets never queue, and an idle one holds nothing.
#[derive(Default)]
#[allow(
    clippy::box_collection,
    reason = "the box keeps an idle socket's queue to 8 bytes, a `VecDeque` takes 32"
)]
struct Jobs(Option<Box<VecDeque<Job>>>);

impl Jobs {
    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |jobs| jobs.len())
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push_back(&mut self, job: Job) {
        self.0.get_or_insert_default().push_back(job);
    }

    fn pop_front(&mut self) -> Option<Job> {
        let jobs = self.0.as_mut()?;
        let job = jobs.pop_front();
        if jobs.is_empty() {
            self.0 = None;
        }
        job
    }
}

/// A socket's waiting jobs, and whether they may run and are running.
#[derive(Default)]
pub(super) struct Queue {
    jobs: Jobs,
    /// A drain task is running.
    running: bool,
    /// The connect handler has finished registering listeners.
    ready: bool,
}

impl SocketState {
    /// Called once the connect handler returned: queued events may now be dispatched.
    pub(crate) fn mark_ready(self: &Arc<Self>) {
        let mut queue = self.queue();
        queue.ready = true;
        self.start_drain(&mut queue);
    }

    fn start_drain(self: &Arc<Self>, queue: &mut Queue) {
        if queue.ready && !queue.running && !queue.jobs.is_empty() {
            queue.running = true;
            self.ns.server.tasks.spawn(self.clone().drain());
        }
    }

    fn enqueue_event(self: &Arc<Self>, raw: Arc<RawSocket>, value: Value, ack_id: Option<i64>) {
        let config = &self.ns.server.config;
        let client = self.seat.client();
        let cost = event_cost(&value);
        let meters = &self.ns.meters;
        meters.received();
        let mut queue = self.queue();
        let over = if queue.jobs.len() >= config.max_pending_events {
            Some(Limit::PendingEvents)
        } else if !client.try_charge(cost, config.max_pending_bytes) {
            Some(Limit::PendingBytes)
        } else {
            None
        };
        if let Some(limit) = over {
            meters.limit_hit(limit);
            let pending = queue.jobs.len();
            drop(queue);
            self.refuse(raw, ack_id, pending);
            return;
        }
        if queue.ready && !queue.running && queue.jobs.is_empty() {
            // Nothing of this socket is waiting or running: no queue, no task.
            match self.ns.dispatch {
                Dispatch::Parallel => {
                    drop(queue);
                    let handled = self.clone().handle_event(raw, value, ack_id, cost);
                    self.ns.server.tasks.spawn(handled);
                }
                Dispatch::Ordered | Dispatch::OrderedStart => {
                    queue.running = true;
                    drop(queue);
                    self.handle_inline(raw, value, ack_id, cost);
                }
            }
            return;
        }
        queue.jobs.push_back(Job::Event {
            raw,
            value,
            ack_id,
            cost,
        });
        meters.queued();
        self.start_drain(&mut queue);
    }

    /// Handles an event on the receive path itself, which socketioxide calls in arrival order:
    /// the common case of ordered dispatch, a socket with nothing queued, then costs what a
    /// synchronous handler costs, with no task spawned. Only a handler that awaits something not
    /// yet ready moves on to a task; the socket's events that arrive meanwhile queue behind it.
    /// The caller has marked the queue as running.
    fn handle_inline(
        self: &Arc<Self>,
        raw: Arc<RawSocket>,
        value: Value,
        ack_id: Option<i64>,
        cost: usize,
    ) {
        let mut handled = Box::pin(self.clone().handle_event(raw, value, ack_id, cost));
        let mut cx = Context::from_waker(Waker::noop());
        if handled.as_mut().poll(&mut cx).is_pending() {
            // The task polls the future again at once, so a wake-up registered with the no-op
            // waker above is not lost: a future registers the waker of its latest poll.
            let state = self.clone();
            match self.ns.dispatch {
                Dispatch::Ordered => {
                    self.ns.server.tasks.spawn(async move {
                        handled.await;
                        state.drain().await;
                    });
                    return;
                }
                Dispatch::OrderedStart | Dispatch::Parallel => {
                    self.ns.server.tasks.spawn(handled);
                }
            }
        }
        let mut queue = self.queue();
        queue.running = false;
        // A disconnect queued while the handler ran.
        self.start_drain(&mut queue);
    }

    /// Runs an event's middleware and listeners, then gives back what it held of its client's
    /// pending budget.
    async fn handle_event(
        self: Arc<Self>,
        raw: Arc<RawSocket>,
        value: Value,
        ack_id: Option<i64>,
        cost: usize,
    ) {
        self.clone().run_event(raw, value, ack_id).await;
        self.seat.client().refund(cost);
    }

    /// Refuses an event past the pending bounds, as `Config::pending_overflow` says.
    fn refuse(self: &Arc<Self>, raw: Arc<RawSocket>, ack_id: Option<i64>, pending: usize) {
        let config = &self.ns.server.config;
        let client = self.seat.client();
        if client.start_overflow() {
            tracing::warn!(
                sid = %raw.id,
                ns = raw.ns(),
                pending_events = pending,
                pending_bytes = client.pending_bytes(),
                max_pending_events = config.max_pending_events,
                max_pending_bytes = config.max_pending_bytes,
                policy = ?config.pending_overflow,
                "client sends faster than its handlers finish; refusing its events until they catch up"
            );
        }
        let socket = Socket::new(raw, self.clone());
        AckSlot::new(&socket, ack_id).fail("too many pending events");
        if config.pending_overflow == PendingOverflow::Disconnect {
            socket.disconnect().ok();
        }
    }

    /// Runs the disconnect listeners of a socket the server is closing (socketioxide 0.18's
    /// `SocketIo::close` forgets its namespaces before closing the transports, so it never calls
    /// them itself).
    pub(crate) async fn close_for_shutdown(self: Arc<Self>, raw: Arc<RawSocket>) {
        if self.begin_disconnect(&raw) {
            self.disconnect(raw, DisconnectReason::ClosingServer).await;
        }
    }

    /// Queues the disconnect behind the events already received and waits until it was handled.
    pub(crate) async fn disconnect(self: Arc<Self>, raw: Arc<RawSocket>, reason: DisconnectReason) {
        let (done, finished) = oneshot::channel();
        {
            let mut queue = self.queue();
            // A socket that disconnects while its connect handler still runs is handled
            // once that handler returns.
            queue.jobs.push_back(Job::Disconnect { raw, reason, done });
            self.start_drain(&mut queue);
        }
        finished.await.ok();
    }

    async fn drain(self: Arc<Self>) {
        loop {
            let job = {
                let mut queue = self.queue();
                match queue.jobs.pop_front() {
                    Some(job) => job,
                    None => {
                        queue.running = false;
                        return;
                    }
                }
            };
            match job {
                Job::Event {
                    raw,
                    value,
                    ack_id,
                    cost,
                } => {
                    self.ns.meters.dequeued();
                    let handled = self.clone().handle_event(raw, value, ack_id, cost);
                    match self.ns.dispatch {
                        Dispatch::Ordered => handled.await,
                        Dispatch::Parallel => {
                            self.ns.server.tasks.spawn(handled);
                        }
                        Dispatch::OrderedStart => {
                            // Run the handlers up to their first await here, in arrival order,
                            // and the rest beside the next events. The spawned task polls the
                            // future again at once, so a wake-up meant for this task is not lost.
                            let mut handled = Box::pin(handled);
                            let started =
                                std::future::poll_fn(|cx| Poll::Ready(handled.as_mut().poll(cx)))
                                    .await;
                            if started.is_pending() {
                                self.ns.server.tasks.spawn(handled);
                            }
                        }
                    }
                }
                Job::Disconnect { raw, reason, done } => {
                    self.clone().run_disconnect(raw, reason).await;
                    done.send(()).ok();
                }
            }
        }
    }

    async fn run_event(
        self: Arc<Self>,
        raw: Arc<RawSocket>,
        mut value: Value,
        ack_id: Option<i64>,
    ) {
        let plain = match &value {
            Value::Str(text, _) => plain_event_name(text.as_str()),
            Value::Bytes(_) => None,
        };
        let parsed;
        let name = match plain {
            Some(name) => name,
            None => match parsed_event_name(&raw, &mut value, &ack_id) {
                Ok(name) => {
                    parsed = name;
                    parsed.as_str()
                }
                Err(e) => {
                    tracing::warn!(sid = %raw.id, ns = raw.ns(), "unreadable event name: {e}");
                    return;
                }
            },
        };
        let middleware = self
            .has_flag(HAS_MIDDLEWARE)
            .then(|| self.listeners().middleware.clone());
        if let Some(middleware) = middleware {
            let socket = Socket::new(raw.clone(), self.clone());
            let ack = Arc::new(AckSlot::new(&socket, ack_id));
            let event: Arc<str> = Arc::from(name);
            for check in middleware {
                let outcome = run_caught(&check, &socket, &event, &value, &ack).await;
                let refusal = match outcome {
                    Ok(Ok(())) => continue,
                    Ok(Err(
                        HandlerFailure::Extract(message) | HandlerFailure::Returned(message),
                    )) => message,
                    Err(panic) => {
                        tracing::error!(sid = %socket.id(), ns = socket.ns(), %event, panic = %panic_message(panic), "middleware panicked");
                        "internal server error".to_owned()
                    }
                };
                tracing::debug!(sid = %socket.id(), ns = socket.ns(), %event, %refusal, "middleware refused the event");
                ack.fail(&refusal);
                return;
            }
        }
        let (known, handlers) = self.listeners().take_for(name);
        let event = known.unwrap_or_else(|| Arc::from(name));
        let socket = Socket::new(raw, self.clone());
        let ack = Arc::new(AckSlot::new(&socket, ack_id));
        let answer_unhandled = self.ns.server.config.answer_unhandled_acks;
        if handlers.is_empty() {
            tracing::debug!(sid = %socket.id(), ns = socket.ns(), %event, "no listener for event");
            if answer_unhandled {
                ack.fail(&format!("no handler for event \"{event}\""));
            }
            return;
        }
        let _timer = self.ns.meters.handling();
        for handler in handlers {
            let outcome = run_caught(&handler, &socket, &event, &value, &ack).await;
            let message = match outcome {
                Ok(Ok(())) => continue,
                Ok(Err(HandlerFailure::Extract(message))) => {
                    tracing::warn!(sid = %socket.id(), ns = socket.ns(), %event, "{message}");
                    message
                }
                Ok(Err(HandlerFailure::Returned(message))) => {
                    tracing::debug!(sid = %socket.id(), ns = socket.ns(), %event, "handler returned an error: {message}");
                    message
                }
                Err(panic) => {
                    tracing::error!(sid = %socket.id(), ns = socket.ns(), %event, panic = %panic_message(panic), "event handler panicked");
                    "internal server error".to_owned()
                }
            };
            ack.fail(&message);
        }
        // Every listener returned and none kept the acknowledgement for later: as in Node, the
        // client's own timeout answers, unless the app asked tongxun to.
        if answer_unhandled
            && Arc::strong_count(&ack) == 1
            && ack.fail("event handled without an acknowledgement")
        {
            tracing::debug!(sid = %socket.id(), ns = socket.ns(), %event, "handlers finished without answering the requested acknowledgement");
        }
    }

    async fn run_disconnect(self: Arc<Self>, raw: Arc<RawSocket>, reason: DisconnectReason) {
        if self.clear_flag(OPENED) {
            let transport = raw.transport_type().into();
            self.ns.meters.disconnected(transport, reason.into());
        }
        let socket = Socket::new(raw, self.clone());
        let handlers = std::mem::take(&mut self.listeners().disconnect);
        for handler in handlers {
            let fut = handler(socket.clone(), reason);
            if let Err(panic) = AssertUnwindSafe(fut).catch_unwind().await {
                tracing::error!(sid = %socket.id(), ns = socket.ns(), panic = %panic_message(panic), "disconnect handler panicked");
            }
        }
        #[cfg(feature = "admin-ui")]
        if let Some(feed) = self.ns.server.admin_feed() {
            feed.disconnected(&socket, reason);
        }
        // Break the cycles a listener capturing its own socket would create, and free the store.
        *self.listeners() = Listeners::default();
        self.store.clear();
        tracing::debug!(sid = %socket.id(), ns = socket.ns(), ?reason, "socket disconnected");
    }
}

/// The name of a received event, from socketioxide's parser.
///
/// socketioxide parses the name to route the event but does not hand it on, and asking its parser
/// again deserializes the whole argument array a second time (about 2,000 instructions, a tenth
/// of an acknowledged round trip's user-space work; see `docs/benchmarks.md`). So the common case,
/// a JSON text starting `["name"` with no escape in the name, is read directly
/// ([`plain_event_name`]); anything else comes here.
fn parsed_event_name(
    raw: &Arc<RawSocket>,
    value: &mut Value,
    ack_id: &Option<i64>,
) -> Result<String, socketioxide::ParserError> {
    RawEvent::from_message_parts(raw, value, ack_id).map(|RawEvent(name)| name)
}

/// The event name at the start of `["name", ...]` when it is written without escapes.
fn plain_event_name(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("[\"")?;
    let end = rest.find(['"', '\\'])?;
    (rest.as_bytes()[end] == b'"').then(|| &rest[..end])
}

/// The message a panic was raised with (`panic!("...")` carries a `&str` or a `String`).
///
/// Takes the payload by value: a `&Box<dyn Any>` would itself coerce to `&dyn Any`, and the
/// downcasts would then test the box rather than what it holds.
pub(crate) fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    match panic.downcast::<String>() {
        Ok(message) => *message,
        Err(panic) => match panic.downcast::<&'static str>() {
            Ok(message) => (*message).to_owned(),
            Err(_) => "non-string panic payload".to_owned(),
        },
    }
}

/// The message handler tongxun registers on every socketioxide socket.
#[derive(Clone)]
pub(crate) struct Dispatcher(pub(crate) Arc<SocketState>);

impl MessageHandler<RawAdapter, Dispatcher> for Dispatcher {
    fn call(&self, s: Arc<RawSocket>, v: Value, ack_id: Option<i64>) {
        #[cfg(feature = "admin-ui")]
        if let Some(feed) = self.0.ns.server.admin_feed() {
            feed.received(s.ns(), s.id, &v);
        }
        self.0.enqueue_event(s, v, ack_id);
    }
}

impl DisconnectHandler<RawAdapter, Dispatcher> for Dispatcher {
    fn call_with_defer(
        &self,
        s: Arc<RawSocket>,
        reason: DisconnectReason,
        defer: fn(Arc<RawSocket>),
    ) {
        let first = self.0.begin_disconnect(&s);
        let state = self.0.clone();
        self.0.ns.server.tasks.spawn(async move {
            // On shutdown, tongxun already ran the listeners (`Io::close`).
            if first {
                state.clone().disconnect(s.clone(), reason).await;
            }
            defer(s);
            // Once the socket left its namespace: the last one out of a dynamic namespace
            // removes it.
            state.seat.release();
        });
    }
}

/// Runs one middleware or listener on an event, catching its panic.
async fn run_caught(
    handler: &BoxedHandler,
    socket: &Socket,
    event: &Arc<str>,
    value: &Value,
    ack: &Arc<AckSlot>,
) -> std::thread::Result<Result<(), HandlerFailure>> {
    let ctx = EventContext {
        socket: socket.clone(),
        event: event.clone(),
        value: value.clone(),
        ack: ack.clone(),
    };
    AssertUnwindSafe(handler(ctx)).catch_unwind().await
}

#[cfg(test)]
mod tests {
    use super::{panic_message, plain_event_name};

    #[test]
    fn a_panic_message_is_read_from_the_payload_not_its_box() {
        let formatted = std::panic::catch_unwind(|| panic!("boom {}", 42)).unwrap_err();
        assert_eq!(panic_message(formatted), "boom 42");
        let literal = std::panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(panic_message(literal), "plain");
        let other = std::panic::catch_unwind(|| std::panic::panic_any(7_u8)).unwrap_err();
        assert_eq!(panic_message(other), "non-string panic payload");
    }

    #[test]
    fn reads_plain_event_names_and_leaves_the_rest_to_the_parser() {
        assert_eq!(plain_event_name(r#"["echo",{"t":1}]"#), Some("echo"));
        assert_eq!(plain_event_name(r#"["tick"]"#), Some("tick"));
        assert_eq!(
            plain_event_name(r#"["héllo wörld",1]"#),
            Some("héllo wörld")
        );
        assert_eq!(plain_event_name(r#"["",1]"#), Some(""));
        // Escapes, whitespace and anything unexpected go through socketioxide's parser.
        assert_eq!(plain_event_name(r#"["a\"b",1]"#), None);
        assert_eq!(plain_event_name(r#"["a\u0041"]"#), None);
        assert_eq!(plain_event_name(r#"[ "echo"]"#), None);
        assert_eq!(plain_event_name(r#"["unterminated"#), None);
        assert_eq!(plain_event_name("42"), None);
    }
}
