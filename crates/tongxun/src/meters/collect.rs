//! The collector: what the server, its hubs and its Redis bus already count (dropped
//! deliveries, the hubs' stats, the bus state), read at scrape time instead of kept twice.

use std::sync::Weak;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::Limit;
use crate::io::ServerShared;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LimitLabel {
    limit: &'static str,
}

#[cfg(feature = "ws")]
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

/// What the collector reads at scrape time.
#[derive(Debug)]
pub(crate) struct Sources {
    pub(crate) server: Weak<ServerShared>,
    #[cfg(feature = "ws")]
    pub(crate) ws: Option<crate::ws::WsHub>,
    #[cfg(feature = "sse")]
    pub(crate) sse: Option<crate::sse::SseHub>,
    #[cfg(feature = "redis")]
    pub(crate) bus: Option<crate::bus::RedisBus>,
}

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> std::fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: i64,
) -> std::fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Collector for Sources {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let Some(server) = self.server.upgrade() else {
            return Ok(());
        };
        let dropped = server.dropped_deliveries.load(Ordering::Relaxed);
        counter(
            &mut encoder,
            "tongxun_socketio_deliveries_dropped",
            "Broadcast deliveries skipped because the recipient's outgoing queue was full",
            dropped,
        )?;
        gauge(
            &mut encoder,
            "tongxun_socketio_dynamic_namespaces",
            "Child namespaces of dynamic patterns alive now",
            to_i64(server.dynamic.len()),
        )?;

        let mut limits: Vec<(&'static str, u64)> = Limit::ALL
            .iter()
            .map(|&l| {
                let hits = server.meters.inner.limits[l as usize].load(Ordering::Relaxed);
                (l.as_str(), hits)
            })
            .collect();
        limits.push(("max_buffer_size", dropped));
        #[cfg(feature = "ws")]
        if let Some(hub) = &self.ws {
            let stats = hub.stats();
            limits.push(("ws_max_message_size", stats.oversized_messages));
            limits.push((
                "ws_queue",
                stats.slow_clients_closed + stats.messages_dropped,
            ));
            limits.push(("ws_pong_deadline", stats.dead_peers));
        }
        #[cfg(feature = "sse")]
        if let Some(hub) = &self.sse {
            let stats = hub.stats();
            limits.push(("sse_max_live_topics", stats.topics_refused));
            limits.push(("sse_max_history_bytes", stats.history_evicted));
            limits.push(("sse_subscriber_queue", stats.lagged));
        }
        #[cfg(feature = "admin-ui")]
        if let Some(admin) = &server.admin {
            limits.push(("admin_max_logins_at_once", admin.logins.refused_busy()));
            limits.push(("admin_queue", admin.feed.lost()));
        }
        {
            let mut family = encoder.encode_descriptor(
                "tongxun_limit_hits",
                "Times a bound of docs/security.md was hit",
                None,
                MetricType::Counter,
            )?;
            for (limit, hits) in limits {
                let labels = LimitLabel { limit };
                ConstCounter::new(hits).encode(family.encode_family(&labels)?)?;
            }
        }

        #[cfg(feature = "ws")]
        if let Some(hub) = &self.ws {
            encode_ws(&mut encoder, hub)?;
        }
        #[cfg(feature = "sse")]
        if let Some(hub) = &self.sse {
            let stats = hub.stats();
            gauge(
                &mut encoder,
                "tongxun_sse_subscribers",
                "SSE streams open now",
                to_i64(stats.subscribers),
            )?;
            gauge(
                &mut encoder,
                "tongxun_sse_topics",
                "SSE topics with history or subscribers",
                to_i64(stats.topics),
            )?;
            counter(
                &mut encoder,
                "tongxun_sse_events_published",
                "Events published to the SSE hub",
                stats.published,
            )?;
            counter(
                &mut encoder,
                "tongxun_sse_events_delivered",
                "Events queued to streams as they were published",
                stats.delivered,
            )?;
            counter(
                &mut encoder,
                "tongxun_sse_events_replayed",
                "Events replayed from history to resuming streams",
                stats.replayed,
            )?;
            counter(
                &mut encoder,
                "tongxun_sse_resyncs",
                "resync events sent to streams resuming from where history does not reach",
                stats.resyncs,
            )?;
            gauge(
                &mut encoder,
                "tongxun_sse_history_bytes",
                "Bytes the in-memory history holds now",
                to_i64(stats.history_bytes),
            )?;
        }
        #[cfg(feature = "redis")]
        if let Some(bus) = &self.bus {
            let state = bus.state();
            gauge(
                &mut encoder,
                "tongxun_redis_up",
                "1 while the last command reached Redis, else 0",
                i64::from(state.up),
            )?;
            counter(
                &mut encoder,
                "tongxun_redis_reconnects",
                "Times Redis was reached again after it was lost",
                state.reconnects,
            )?;
            counter(
                &mut encoder,
                "tongxun_redis_publish_failures",
                "Publishes that did not reach Redis",
                state.publish_failures,
            )?;
        }
        Ok(())
    }
}

#[cfg(feature = "ws")]
fn encode_ws(encoder: &mut DescriptorEncoder<'_>, hub: &crate::ws::WsHub) -> std::fmt::Result {
    let stats = hub.stats();
    let counters = hub.counters();
    gauge(
        encoder,
        "tongxun_ws_clients",
        "WebSocket hub clients connected now",
        to_i64(stats.clients),
    )?;
    counter(
        encoder,
        "tongxun_ws_connections",
        "WebSocket hub connections accepted",
        stats.connections,
    )?;
    counter(
        encoder,
        "tongxun_ws_upgrades_refused",
        "WebSocket hub upgrades refused (origin, auth, malformed, shutting down)",
        stats.upgrades_refused,
    )?;
    counter(
        encoder,
        "tongxun_ws_messages_received",
        "Messages received from WebSocket hub clients",
        counters.messages_received.load(Ordering::Relaxed),
    )?;
    counter(
        encoder,
        "tongxun_ws_messages_sent",
        "Messages written to WebSocket hub clients",
        counters.messages_sent.load(Ordering::Relaxed),
    )?;
    counter(
        encoder,
        "tongxun_ws_messages_dropped",
        "Messages dropped because a client's queue was full",
        stats.messages_dropped,
    )?;
    gauge(
        encoder,
        "tongxun_ws_queued_bytes",
        "Bytes the hub holds for its clients now",
        i64::try_from(stats.queued_bytes).unwrap_or(i64::MAX),
    )?;
    let mut family = encoder.encode_descriptor(
        "tongxun_ws_closes",
        "WebSocket hub connections ended, by close code (none: no close frame)",
        None,
        MetricType::Counter,
    )?;
    for (code, closes) in counters.closes_by_code() {
        ConstCounter::new(closes).encode(family.encode_family(&CodeLabel { code })?)?;
    }
    Ok(())
}
