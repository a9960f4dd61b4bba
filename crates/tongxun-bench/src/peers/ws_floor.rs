//! The WebSocket floor: a bare tokio-tungstenite server where every text message a client sends
//! goes to every other client. The WS hub's fan-out is measured against it.
//!
//! One `tokio::sync::broadcast` channel carries each message once (its bytes shared, not
//! copied); each client has a reader task and a writer task that feeds whatever is queued and
//! flushes once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Messages a client may lag behind before it misses some.
const QUEUE: usize = 1024;

/// Serves until the process ends.
pub(crate) async fn serve(listener: TcpListener) -> anyhow::Result<()> {
    let (tx, _) = broadcast::channel::<(u64, Utf8Bytes)>(QUEUE);
    let ids = AtomicU64::new(0);
    let missed = Arc::new(AtomicU64::new(0));
    tokio::spawn(report_missed(missed.clone()));
    loop {
        let (stream, _) = listener.accept().await?;
        let id = ids.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(client(stream, id, tx.clone(), missed.clone()));
    }
}

/// Prints, once a second, how many deliveries clients that fell behind missed.
async fn report_missed(missed: Arc<AtomicU64>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let n = missed.swap(0, Ordering::Relaxed);
        if n > 0 {
            eprintln!("ws-floor: {n} deliveries missed by clients that fell behind");
        }
    }
}

async fn client(
    stream: TcpStream,
    id: u64,
    tx: broadcast::Sender<(u64, Utf8Bytes)>,
    missed: Arc<AtomicU64>,
) {
    stream.set_nodelay(true).ok();
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let mut rx = tx.subscribe();
    let writer = tokio::spawn(async move {
        loop {
            let mut next = rx.recv().await;
            loop {
                match next {
                    Ok((from, text)) if from != id => {
                        if sink.feed(Message::Text(text)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        missed.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
                next = match rx.try_recv() {
                    Ok(item) => Ok(item),
                    Err(broadcast::error::TryRecvError::Lagged(n)) => {
                        Err(broadcast::error::RecvError::Lagged(n))
                    }
                    Err(_) => break,
                };
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(message)) = stream.next().await {
        match message {
            Message::Text(text) => {
                tx.send((id, text)).ok();
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    writer.abort();
}
