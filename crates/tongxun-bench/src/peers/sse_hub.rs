//! The tongxun SSE hub peer: `SseHub` with its default config but for the publish token, which
//! turns on publishing with `POST /events`.

use tokio::net::TcpListener;
use tongxun::Server;
use tongxun::sse::{SseConfig, SseHub};

use crate::sse_client::PUBLISH_TOKEN;

/// Serves until the process ends.
pub(crate) async fn serve(listener: TcpListener) -> anyhow::Result<()> {
    let mut config = SseConfig::default();
    config.publish_token = Some(PUBLISH_TOKEN.to_owned());
    let server = Server::builder().sse(SseHub::new(config)).build();
    server.serve(listener, std::future::pending()).await?;
    Ok(())
}
