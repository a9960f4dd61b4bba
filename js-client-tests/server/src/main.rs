//! The server the JavaScript client tests talk to.
//!
//! It binds `127.0.0.1:0`, prints `listening on http://127.0.0.1:PORT` once it accepts
//! connections, and shuts down gracefully on SIGTERM or SIGINT.

mod hub;
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
        .namespace_with(hub::NAMESPACE, tongxun::hub::Hub::namespace())
        .ws(ws.clone())
        .sse(sse.clone())
        .build();
    let server = hub::routes(sse::routes(sio::routes(server)), ws, sse);

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on http://{}", listener.local_addr()?);
    server.serve(listener, shutdown_signal()).await?;
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
