//! Prometheus metrics of every transport, in the OpenMetrics text format.
//!
//! Each [`Server`](crate::Server) owns its registry: two servers in one process (a test, a
//! server per tenant) keep their own counts, and nothing is global. The app mounts the scrape
//! endpoint at a path it chooses, and may add its own metrics to the same registry
//! ([`Metrics::register`]). The metrics, their labels and a scrape configuration are listed
//! in `docs/operations.md`.
//!
//! # Examples
//! ```
//! use tongxun::{Io, Server};
//!
//! let server = Server::builder()
//!     .namespace("/", |_| async {})
//!     .routes_with(|io: Io| io.metrics().router("/metrics"))
//!     .build();
//! let text = server.metrics().render();
//! assert!(text.contains("# TYPE tongxun_socketio_events_received counter"));
//! assert!(text.ends_with("# EOF\n"));
//! ```

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Metric;

use crate::lock;
use crate::meters::Meters;

/// The content type of a scrape: what [`Metrics::render`] writes (OpenMetrics 1.0 text, which
/// Prometheus reads natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A server's metrics: its Prometheus registry. Cheap to clone; clones share the registry.
///
/// # Examples
/// ```
/// use prometheus_client::metrics::counter::Counter;
///
/// let server = tongxun::Server::builder().build();
/// let orders = Counter::<u64>::default();
/// server.metrics().register("shop_orders", "Orders placed", orders.clone());
/// orders.inc();
/// assert!(server.metrics().render().contains("shop_orders_total 1"));
/// ```
#[derive(Debug, Clone)]
pub struct Metrics {
    meters: Meters,
}

impl Metrics {
    pub(crate) fn new(meters: Meters) -> Self {
        Self { meters }
    }

    /// The metrics now, in the OpenMetrics text format ([`CONTENT_TYPE`]), ending `# EOF`.
    #[must_use]
    pub fn render(&self) -> String {
        let mut text = String::new();
        self.encode(&mut text);
        text
    }

    /// Appends the metrics now to `out`, as [`render`](Self::render) writes them.
    pub fn encode(&self, out: &mut String) {
        let registry = lock(&self.meters.inner.registry);
        // Writing into a `String` cannot fail, and every metric encodes infallibly.
        if let Err(e) = prometheus_client::encoding::text::encode(out, &registry) {
            tracing::error!("metrics failed to encode: {e}");
        }
    }

    /// Adds a metric of the app's own to the registry, written with the others. `name` is
    /// written as is (a counter gets `_total` appended), so give it a prefix of the app's.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        lock(&self.meters.inner.registry).register(name, help, metric);
    }

    /// A router answering `GET path` with a scrape, for
    /// [`ServerBuilder::routes_with`](crate::ServerBuilder::routes_with) or
    /// [`Server::merge`](crate::Server::merge).
    ///
    /// # Examples
    /// ```
    /// let server = tongxun::Server::builder()
    ///     .routes_with(|io| io.metrics().router("/internal/metrics"))
    ///     .build();
    /// ```
    pub fn router(&self, path: &str) -> Router {
        Router::new()
            .route(path, get(handler))
            .with_state(self.clone())
    }
}

/// The axum handler of a scrape, for a route of the app's own with the [`Metrics`] as its state.
///
/// # Examples
/// ```
/// use axum::{Router, routing::get};
///
/// let server = tongxun::Server::builder().build();
/// let admin: Router = Router::new()
///     .route("/metrics", get(tongxun::metrics::handler))
///     .with_state(server.metrics());
/// let server = server.merge(admin);
/// ```
pub async fn handler(State(metrics): State<Metrics>) -> Response {
    (
        [(http::header::CONTENT_TYPE, CONTENT_TYPE)],
        metrics.render(),
    )
        .into_response()
}
