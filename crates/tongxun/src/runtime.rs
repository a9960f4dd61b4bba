//! The tokio runtime a busy tongxun server should run on.
//!
//! tokio's multi-thread scheduler keeps each worker's runnable tasks in a local queue of 256.
//! When more become runnable at once, as when a thousand clients' messages arrive together, half
//! of the local queue moves to a global queue that a busy worker looks at only once every 30 to
//! 127 polls (tokio tunes the interval to about 200 µs of work). The tasks stuck there, each the
//! reader of one connection, wait while the others are served again and again: at 1,000
//! clients in an acknowledgement loop most round trips take under a millisecond and a few take
//! hundreds (`docs/benchmarks.md`, "Fairness"). Bare socketioxide behaves the same; Node's
//! single event loop serves in turn.
//!
//! [`runtime`] is tokio's multi-thread runtime with every driver enabled and the global queue
//! looked at every other poll: overflowed tasks are then served at the pace of the others, and
//! while nothing overflows the check is one atomic load.

/// How many polls a worker makes between two looks at the global queue.
const GLOBAL_QUEUE_INTERVAL: u32 = 2;

/// A multi-thread tokio runtime builder for a tongxun server: all drivers enabled, and the global
/// queue checked every other poll, so that a busy server serves its connections in turn rather
/// than leaving some of them waiting for hundreds of milliseconds (tokio's default, and why, is
/// in `docs/benchmarks.md`, "Fairness"). Add worker threads, names or hooks before building it.
///
/// # Examples
/// ```no_run
/// use tongxun::Server;
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     tongxun::runtime().build()?.block_on(async {
///         let server = Server::builder().build();
///         let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
///         server.serve(listener, async { tokio::signal::ctrl_c().await.ok(); }).await?;
///         Ok(())
///     })
/// }
/// ```
pub fn runtime() -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .enable_all()
        .global_queue_interval(GLOBAL_QUEUE_INTERVAL);
    builder
}
