//! The server the JavaScript client tests talk to.
//!
//! It binds `127.0.0.1:0` (and the addresses of `TONGXUN_ALSO_LISTEN`), prints
//! `listening on http://127.0.0.1:PORT [also on http://ADDR ...]` once it accepts connections,
//! and shuts down gracefully on SIGTERM or SIGINT.

mod hub;
mod origins;
mod sio;
mod sse;
mod ws;

use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "tongxun=warn,socketioxide=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let (ws, sse) = (ws::hub(), sse::hub());
    let server = sio::builder()
        .routes(origins::routes())
        .cors(origins::cors())
        .allow_request(origins::allow_request)
        .namespace_with(hub::NAMESPACE, tongxun::hub::Hub::namespace())
        .ws(ws.clone())
        .sse(sse.clone())
        // Prometheus metrics, scraped by test/metrics.test.mjs.
        .routes_with(|io: tongxun::Io| io.metrics().router("/metrics"))
        .build();
    let server = hub::routes(sse::routes(sio::routes(server)), ws, sse);

    // TONGXUN_ALSO_LISTEN: more addresses, comma-separated (such as `127.0.0.2:0,[::1]:0`),
    // served by the same server and named on the same line.
    let mut listeners = vec![TcpListener::bind("127.0.0.1:0").await?];
    for addr in std::env::var("TONGXUN_ALSO_LISTEN")
        .unwrap_or_default()
        .split(',')
    {
        if !addr.is_empty() {
            listeners.push(TcpListener::bind(addr).await?);
        }
    }
    let mut line = String::from("listening on");
    for (i, listener) in listeners.iter().enumerate() {
        let also = if i == 1 { " also on" } else { "" };
        line.push_str(&format!("{also} http://{}", listener.local_addr()?));
    }
    println!("{line}");
    server.serve_all(listeners, shutdown_signal()).await?;
    println!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
