//! The SSE floor: a minimal axum server, `axum::response::sse` over one
//! `tokio::sync::broadcast` channel. The SSE hub's fan-out is measured against it.
//!
//! `POST /events` takes the same JSON body and bearer token as the hub
//! (`{"topic":..,"data":".."}`) and numbers the events 1, 2, 3 ... in their `id:` lines;
//! `GET /events` streams them, whatever the `topic` asked for (the floor has one). Each event's
//! data is shared, but axum encodes it again for every stream, as its `Event` API requires. A
//! stream that falls behind the channel's 256 events (the hub's default subscriber queue) ends,
//! as the hub ends a lagging stream.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header::AUTHORIZATION};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::Stream;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::broadcast;

use crate::sse_client::{PATH, PUBLISH_TOKEN};

/// Events a stream may lag behind before it ends.
const QUEUE: usize = 256;

struct Floor {
    tx: broadcast::Sender<(u64, Arc<str>)>,
    /// The last event's number; held while sending so that numbers follow the channel's order.
    last: Mutex<u64>,
    /// Streams that ended because they fell behind, reported once a second.
    lagged: AtomicU64,
}

/// The body of a `POST`, as the hub takes it.
#[derive(Deserialize)]
struct Publish {
    #[expect(
        dead_code,
        reason = "one topic: read for parity with the hub, not used"
    )]
    topic: String,
    data: String,
}

/// Serves until the process ends.
pub(crate) async fn serve(listener: TcpListener) -> anyhow::Result<()> {
    let floor = Arc::new(Floor {
        tx: broadcast::channel(QUEUE).0,
        last: Mutex::new(0),
        lagged: AtomicU64::new(0),
    });
    tokio::spawn(report_lagged(floor.clone()));
    let app = axum::Router::new()
        .route(PATH, get(subscribe).post(publish))
        .with_state(floor);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn subscribe(
    State(floor): State<Arc<Floor>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = floor.tx.subscribe();
    let stream = futures_util::stream::unfold((rx, floor), |(mut rx, floor)| async move {
        match rx.recv().await {
            Ok((seq, data)) => {
                let event = Event::default().id(seq.to_string()).data(&*data);
                Some((Ok(event), (rx, floor)))
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                floor.lagged.fetch_add(1, Ordering::Relaxed);
                None
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn publish(
    State(floor): State<Arc<Floor>>,
    headers: HeaderMap,
    Json(body): Json<Publish>,
) -> Response {
    let expected = format!("Bearer {PUBLISH_TOKEN}");
    if headers.get(AUTHORIZATION).map(|v| v.as_bytes()) != Some(expected.as_bytes()) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let data: Arc<str> = body.data.into();
    let seq = {
        let mut last = floor.last.lock().unwrap_or_else(|p| p.into_inner());
        *last += 1;
        floor.tx.send((*last, data)).ok();
        *last
    };
    seq.to_string().into_response()
}

/// Prints, once a second, how many streams ended because they fell behind.
async fn report_lagged(floor: Arc<Floor>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let n = floor.lagged.swap(0, Ordering::Relaxed);
        if n > 0 {
            eprintln!("sse-floor: {n} streams ended because they fell behind");
        }
    }
}
