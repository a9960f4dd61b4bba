//! The SSE hub the `eventsource` client tests use.

use tongxun::sse::{SseConfig, SseHub};

pub(crate) fn hub() -> SseHub {
    SseHub::new(SseConfig::default())
}
