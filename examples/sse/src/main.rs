//! Run with `cargo run -p example-sse`
//!
//! Server-Sent Events: a `ticker` topic published from Rust every second, and a page at
//! <http://127.0.0.1:3002> whose form publishes to the `chat` topic over HTTP. Both topics reach
//! the page over one `EventSource` connection; reload it, stop the server for a few seconds, or
//! open several tabs to see resuming at work.
//!
//! From a terminal:
//! ```sh
//! curl -N 'http://127.0.0.1:3002/events?topic=ticker&topic=chat'
//! curl http://127.0.0.1:3002/events -H 'Authorization: Bearer demo-publish-token' \
//!      -H 'Content-Type: application/json' -d '{"topic":"chat","event":"note","data":"hello"}'
//! ```
//! `--port N` serves on another port.

use std::time::Duration;

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use tongxun::Server;
use tongxun::sse::{SseConfig, SseEvent, SseHub};

/// The bearer token the page's form sends. A real app keeps it on the server side.
const PUBLISH_TOKEN: &str = "demo-publish-token";
const TICK: Duration = Duration::from_secs(1);

/// The server: the hub at `/events`, the page at `/`, and the ticker, which runs until the
/// hub shuts down. Call it inside a Tokio runtime.
fn app() -> Server {
    let mut config = SseConfig::default();
    config.publish_token = Some(PUBLISH_TOKEN.to_owned());
    config.retry = Duration::from_secs(1);
    let hub = SseHub::new(config);
    tokio::spawn(ticker(hub.clone()));
    Server::builder()
        .sse(hub)
        .routes(Router::new().route("/", get(|| async { Html(PAGE) })))
        .build()
}

/// Publishes the time since start to `ticker` every second.
async fn ticker(hub: SseHub) {
    let mut interval = tokio::time::interval(TICK);
    let start = tokio::time::Instant::now();
    loop {
        interval.tick().await;
        let seconds = start.elapsed().as_secs();
        let event = SseEvent::new(format!("{seconds} s since the server started")).event("tick");
        if hub.publish("ticker", event).await.is_err() {
            return; // shut down
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "tongxun=info,socketioxide=info".into()),
        )
        .init();
    let mut port = 3002;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--port", Some(value)) => port = value.parse()?,
            _ => anyhow::bail!("usage: example-sse [--port N]"),
        }
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    app()
        .serve(listener, async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await?;
    Ok(())
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>tongxun SSE</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; }
  #tick { font-size: 1.4rem; }
  #log { border: 1px solid #ccc; padding: .5rem; height: 14rem; overflow-y: auto; white-space: pre-wrap; font-family: monospace; }
  form { display: grid; grid-template-columns: 6rem 1fr; gap: .4rem; margin-top: 1rem; }
  #answer { font-family: monospace; }
</style>
<h1>Server-Sent Events</h1>
<p>Status: <span id="status">connecting</span> &middot; ticker: <span id="tick">&ndash;</span></p>
<div id="log"></div>
<form id="form">
  <label for="topic">topic</label> <input id="topic" value="chat">
  <label for="event">event</label>
  <select id="event"><option value="">(message)</option><option>note</option><option>alert</option></select>
  <label for="data">data</label> <textarea id="data" rows="3">hello
second line</textarea>
  <label for="token">token</label> <input id="token" value="demo-publish-token">
  <span></span> <button>Publish</button>
</form>
<p id="answer"></p>
<script>
  const log = (text) => {
    const box = document.getElementById("log");
    box.textContent += text + "\n";
    box.scrollTop = box.scrollHeight;
  };
  const source = new EventSource("/events?topic=ticker&topic=chat");
  const status = document.getElementById("status");
  source.onopen = () => { status.textContent = "open"; };
  source.onerror = () => { status.textContent = "reconnecting"; };
  source.addEventListener("tick", (e) => { document.getElementById("tick").textContent = e.data; });
  for (const type of ["message", "note", "alert"]) {
    source.addEventListener(type, (e) => log(`${type} [${e.lastEventId}]\n  ${e.data.replaceAll("\n", "\n  ")}`));
  }
  source.addEventListener("ready", (e) => log(`ready at ${e.lastEventId}`));
  source.addEventListener("resync", (e) => log(`resync: ${e.data} (history no longer reaches back)`));

  document.getElementById("form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = (id) => document.getElementById(id).value;
    const body = { topic: value("topic"), data: value("data") };
    if (value("event")) body.event = value("event");
    const response = await fetch("/events", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${value("token")}` },
      body: JSON.stringify(body),
    });
    document.getElementById("answer").textContent = `${response.status} ${await response.text()}`;
  });
</script>
</html>
"#;

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: std::net::SocketAddr, target: &str, until: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut received = Vec::new();
        let mut buf = [0; 4096];
        while !String::from_utf8_lossy(&received).contains(until) {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "connection closed before {until:?}: {}",
                String::from_utf8_lossy(&received)
            );
            received.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(received).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn serves_the_page_and_the_ticker() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(super::app().serve(listener, std::future::pending()));

        let page = get(addr, "/", "</html>").await;
        assert!(page.starts_with("HTTP/1.1 200"));
        assert!(page.contains("new EventSource(\"/events?topic=ticker&topic=chat\")"));

        let stream = get(addr, "/events?topic=ticker", "event: tick").await;
        assert!(stream.contains("content-type: text/event-stream"));
        assert!(stream.contains("s since the server started"));
    }
}
