//! Connection setup rate.

use std::time::Instant;

use anyhow::Result;

use crate::client;
use crate::peers::Running;

use super::Sizes;

/// Returns connections per second.
pub(crate) async fn run(peer: &Running, sizes: &Sizes) -> Result<Vec<f64>> {
    let started = Instant::now();
    let conns = client::connect_many(
        peer.addr,
        peer.peer.protocol(),
        sizes.connect_conns,
        sizes.connect_concurrency,
    )
    .await?;
    let secs = started.elapsed().as_secs_f64();
    drop(conns);
    Ok(vec![sizes.connect_conns as f64 / secs])
}
