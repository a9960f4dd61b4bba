//! Ack echo: each client emits `echo` with an acknowledgement and waits for it before the next.

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::task::JoinSet;

use crate::client::{self, Conn, Incoming, json_u64, now_us};
use crate::peers::Running;
use crate::stats::Histogram;

use super::Sizes;

/// The longest wait for one acknowledgement before the run counts as failed.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Returns acks/s, the mean, p50 and p99 in ms, p99 / mean, and server CPU µs per ack.
pub(crate) async fn run(peer: &Running, sizes: &Sizes) -> Result<Vec<f64>> {
    let conns = client::connect_many(
        peer.addr,
        peer.peer.protocol(),
        sizes.ack_clients,
        sizes.connect_concurrency,
    )
    .await?;
    let measure = Duration::from_secs_f64(sizes.ack_secs);
    let start = Instant::now() + Duration::from_millis(20);
    let measure_from = start + measure / 5;
    let end = measure_from + measure;
    let cpu_before = peer.cpu_secs()?;
    let mut tasks = JoinSet::new();
    let padding: std::sync::Arc<str> = "x".repeat(sizes.ack_payload).into();
    for conn in conns {
        tasks.spawn(echo_loop(conn, start, measure_from, end, padding.clone()));
    }
    let mut latency = Histogram::default();
    let mut acks = 0;
    while let Some(outcome) = tasks.join_next().await {
        let (measured, all) = outcome.context("echo task panicked")??;
        latency.merge(&measured);
        acks += all;
    }
    let server_cpu = peer.cpu_secs()? - cpu_before;
    eprintln!("    {acks} acknowledgements in all (warm-up included)");
    if latency.len() == 0 {
        bail!("no acknowledgement arrived in the measured window");
    }
    let mean = latency.mean_ms();
    let p99 = latency.quantile_ms(0.99);
    Ok(vec![
        latency.len() as f64 / measure.as_secs_f64(),
        mean,
        latency.quantile_ms(0.50),
        p99,
        p99 / mean,
        server_cpu * 1e6 / acks.max(1) as f64,
    ])
}

/// One client's loop; returns the latency of round trips started in the measured window, and
/// how many round trips it made in all. Each echo carries `padding` (maybe empty) as `"p"`,
/// which the acknowledgement must bring back whole.
async fn echo_loop(
    mut conn: Conn,
    start: Instant,
    measure_from: Instant,
    end: Instant,
    padding: std::sync::Arc<str>,
) -> Result<(Histogram, u64)> {
    tokio::time::sleep_until(start.into()).await;
    let mut latency = Histogram::default();
    let mut body = Vec::with_capacity(64 + padding.len());
    let mut id = 0;
    loop {
        let sent_at = Instant::now();
        if sent_at >= end {
            return Ok((latency, id));
        }
        id += 1;
        body.clear();
        if padding.is_empty() {
            write!(body, "[\"echo\",{{\"t\":{},\"s\":{id}}}]", now_us())?;
        } else {
            write!(
                body,
                "[\"echo\",{{\"t\":{},\"s\":{id},\"p\":\"{padding}\"}}]",
                now_us()
            )?;
        }
        conn.emit(&body, Some(id)).await?;
        tokio::time::timeout(ACK_TIMEOUT, async {
            loop {
                if let Incoming::Ack(got, args) = conn.recv().await? {
                    if got == id {
                        if json_u64(args, b"\"s\":") != Some(id) {
                            bail!("acknowledgement {id} did not echo its argument");
                        }
                        // `[{"t":..,"s":..,"p":"` padding `"}]`: the padding and 8 more at least.
                        if args.len() < padding.len() + 8 {
                            bail!(
                                "acknowledgement {id} carried {} bytes, short of its {} of \
                                 padding",
                                args.len(),
                                padding.len()
                            );
                        }
                        return Ok::<_, anyhow::Error>(());
                    }
                    bail!("acknowledgement {got} arrived while waiting for {id}");
                }
            }
        })
        .await
        .context("acknowledgement timed out")??;
        if sent_at >= measure_from {
            latency.record(u64::try_from(sent_at.elapsed().as_micros()).unwrap_or(u64::MAX));
        }
    }
}
