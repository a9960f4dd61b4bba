//! The WebSocket hub the `ws` client tests use.

use tongxun::ws::{WsConfig, WsHub};

pub(crate) fn hub() -> WsHub {
    WsHub::new(WsConfig::default())
}
