//! Run with `cargo run -p example-echo`
//!
//! The smallest useful tongxun server: every event a client emits on `/` comes back to it under
//! the same name, and an acknowledgement, if asked for, receives the same arguments.
//!
//! ```js
//! const socket = io("http://localhost:3000");
//! socket.on("hello", (...args) => console.log(args));   // ["world"]
//! socket.emit("hello", "world");
//! console.log(await socket.emitWithAck("sum", 1, 2));   // [1, 2]
//! ```

use tongxun::{Ack, Args, Event, Server, Socket};

async fn on_connect(socket: Socket) {
    // Every argument comes back as it was sent: a `Buffer` is still a `Buffer`.
    socket.on_any(
        |socket: Socket, Event(event): Event, args: Args, ack: Ack| async move {
            if ack.requested() {
                ack.send(&args)
            } else {
                socket.emit(&event, &args)
            }
        },
    );
}

fn app() -> Server {
    Server::builder().namespace("/", on_connect).build()
}

/// A Socket.IO echo server.
#[derive(clap::Parser)]
struct Cli {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 3000)]
    port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = <Cli as clap::Parser>::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "tongxun=info,socketioxide=info".into()),
        )
        .init();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", cli.port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    app()
        .serve(listener, async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await?;
    Ok(())
}
