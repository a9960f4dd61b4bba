//! Server memory per idle connection, read from the OS.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures_util::StreamExt;
use tokio::task::JoinSet;

use crate::client::{self, Conn};
use crate::peers::Running;

use super::Sizes;

/// Connections that come and go before the baseline is read, so that it includes what any
/// first connection sets up (runtime workers, allocator arenas, lazy statics).
const WARM_UP: usize = 100;

/// Returns KiB per connection and the server's resident memory in MiB.
pub(crate) async fn run(peer: &Running, sizes: &Sizes) -> Result<Vec<f64>> {
    let protocol = peer.peer.protocol();
    let warm =
        client::connect_many(peer.addr, protocol, WARM_UP, sizes.connect_concurrency).await?;
    drop(warm);
    let base = settled_rss(peer).await?;

    // Each connection answers pings from the moment it is open: opening 100,000 can take
    // longer than a Socket.IO server waits for the first pong (25 s + 20 s by default).
    let mut tasks = JoinSet::new();
    let mut opening = futures_util::stream::iter(0..sizes.idle_conns)
        .map(|_| Conn::connect(peer.addr, protocol))
        .buffer_unordered(sizes.connect_concurrency.max(1));
    while let Some(conn) = opening.next().await {
        tasks.spawn(idle(conn?));
    }
    drop(opening);
    let rss = settled_rss(peer).await?;
    if let Some(ended) = tasks.try_join_next() {
        let why = match ended {
            Ok(Err(e)) => format!("{e:#}"),
            _ => "its task ended".to_owned(),
        };
        bail!("an idle connection failed: {why}");
    }
    tasks.shutdown().await;
    let per_conn = rss.saturating_sub(base) as f64 / sizes.idle_conns as f64;
    Ok(vec![per_conn, rss as f64 / 1024.0])
}

/// Keeps a connection alive: answers pings, ignores the rest.
async fn idle(mut conn: Conn) -> Result<()> {
    loop {
        conn.recv().await?;
    }
}

/// The server's `VmRSS` in KiB once it stopped moving: read every 250 ms (after 500 ms) until
/// two readings are within 0.5%, for at most 5 s.
async fn settled_rss(peer: &Running) -> Result<u64> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let until = Instant::now() + Duration::from_secs(5);
    let mut last = peer.rss_kib()?;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = peer.rss_kib()?;
        if now.abs_diff(last) * 200 <= now || Instant::now() >= until {
            return Ok(now);
        }
        last = now;
    }
}
