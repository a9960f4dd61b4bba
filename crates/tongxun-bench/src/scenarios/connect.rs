//! Connection setup rate.

use std::time::Instant;

use anyhow::Result;

use crate::client;
use crate::peers::Running;

use super::Sizes;

/// Returns connections per second and server CPU µs per connection.
pub(crate) async fn run(peer: &Running, sizes: &Sizes) -> Result<Vec<f64>> {
    let cpu_before = peer.cpu_secs()?;
    let started = Instant::now();
    let conns = client::connect_many(
        peer.addr,
        peer.peer.protocol(),
        sizes.connect_conns,
        sizes.connect_concurrency,
    )
    .await?;
    let secs = started.elapsed().as_secs_f64();
    let server_cpu = peer.cpu_secs()? - cpu_before;
    drop(conns);
    let n = sizes.connect_conns.max(1) as f64;
    Ok(vec![n / secs, server_cpu * 1e6 / n])
}
