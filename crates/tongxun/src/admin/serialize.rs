//! A socket as the Admin UI reads it (its `SerializedSocket`).

use serde_json::{Map, Value, json};

use crate::io::ClientShare;
use crate::{Socket, TransportType};

/// The transport's name as Engine.IO spells it.
pub(crate) fn transport_name(transport: TransportType) -> &'static str {
    match transport {
        TransportType::Polling => "polling",
        TransportType::Websocket => "websocket",
    }
}

/// The Engine.IO connection `socket` belongs to, as the UI's `clientId`.
pub(crate) fn client_id(socket: &Socket) -> String {
    format!("{:012x}", ClientShare::of(socket.raw()).id)
}

/// `socket` with its handshake, store and rooms.
pub(crate) fn socket(socket: &Socket) -> Value {
    let handshake = socket.handshake();
    let mut headers = Map::new();
    for name in handshake.headers().keys() {
        let values: Vec<&str> = handshake
            .headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        headers.insert(name.as_str().to_owned(), Value::from(values.join(", ")));
    }
    // Behind a proxy, the client's address is in its headers, as Node's admin side reads it.
    let forwarded = ["cf-connecting-ip", "x-forwarded-for"]
        .iter()
        .find_map(|name| {
            headers
                .get(*name)
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    let address = forwarded.or_else(|| handshake.address().map(|a| a.ip().to_string()));
    let query: Map<String, Value> = handshake
        .query_pairs()
        .into_iter()
        .map(|(k, v)| (k, Value::from(v)))
        .collect();
    let issued = handshake
        .issued()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    json!({
        "id": socket.id().to_string(),
        "clientId": client_id(socket),
        "transport": transport_name(socket.transport()),
        "nsp": socket.ns(),
        "data": socket.store().snapshot(),
        "handshake": {
            "address": address,
            "headers": headers,
            "query": query,
            "issued": issued,
            "secure": handshake.secure(),
            "time": handshake.time(),
            "url": handshake.url().to_string(),
            "xdomain": handshake.xdomain(),
        },
        "rooms": socket.rooms(),
    })
}
