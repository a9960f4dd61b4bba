//! Serving: CORS, `allow_request`, the app's own tower layers and several listeners.

mod support;

use std::net::SocketAddr;

use serde_json::{Value, json};
use support::{Client, TestServer, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tongxun::{Data, Server, Socket};
use tower_http::cors::{AllowOrigin, CorsLayer};

const HANDSHAKE: &str = "/socket.io/?EIO=4&transport=polling";

/// One HTTP/1.1 exchange: the status, the headers (names lowercased) and the body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `method target` with `headers` and `Connection: close`, and reads the whole answer.
async fn request(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
    within(async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut head =
            format!("{method} {target} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = answer.split_once("\r\n\r\n").expect("a complete head");
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .expect("a status line");
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Reply {
            status,
            headers,
            body: body.to_owned(),
        }
    })
    .await
}

/// Refuses handshakes without `token=letmein` in their query.
fn guarded() -> Server {
    Server::builder()
        .allow_request(|head: http::request::Parts| async move {
            let query = head.uri.query().unwrap_or_default();
            if query.split('&').any(|pair| pair == "token=letmein") {
                Ok(())
            } else {
                Err("no token".to_owned())
            }
        })
        .build()
}

#[tokio::test]
async fn allow_request_refuses_a_handshake_as_node_does_and_lets_the_others_open() {
    let server = TestServer::start(guarded()).await;

    let refused = request(server.addr, "GET", HANDSHAKE, &[]).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_str(&refused.body).unwrap();
    assert_eq!(body, json!({ "code": 4, "message": "no token" }));

    // A WebSocket handshake is a handshake too.
    let upgrade = [
        ("connection", "upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let refused = request(
        server.addr,
        "GET",
        "/socket.io/?EIO=4&transport=websocket",
        &upgrade,
    )
    .await;
    assert_eq!(refused.status, 403);

    let allowed = request(
        server.addr,
        "GET",
        &format!("{HANDSHAKE}&token=letmein"),
        &[],
    )
    .await;
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    let open: Value =
        serde_json::from_str(allowed.body.strip_prefix('0').expect("an OPEN packet")).unwrap();
    let sid = open["sid"].as_str().unwrap();

    // The session's own requests carry no token and are not checked again.
    let polled = request(
        server.addr,
        "GET",
        &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
        &[],
    )
    .await;
    assert_eq!(polled.status, 200, "{}", polled.body);
    server.shutdown().await;
}

fn with_cors(cors: Option<CorsLayer>) -> Server {
    let builder = Server::builder()
        .routes(axum::Router::new().route("/api", axum::routing::get(|| async { "api" })));
    match cors {
        Some(cors) => builder.cors(cors),
        None => builder,
    }
    .build()
}

#[tokio::test]
async fn cors_answers_preflights_for_allowed_origins_only() {
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(["http://app.test".parse().unwrap()]))
        .allow_methods([http::Method::GET, http::Method::POST])
        .allow_headers([http::HeaderName::from_static("x-client")])
        .allow_credentials(true);
    let server = TestServer::start(with_cors(Some(cors))).await;

    let addr = server.addr;
    let preflight = |origin: &'static str| async move {
        let headers = [
            ("origin", origin),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "x-client"),
        ];
        request(addr, "OPTIONS", HANDSHAKE, &headers).await
    };
    let allowed = preflight("http://app.test").await;
    assert_eq!(allowed.status, 200);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("http://app.test")
    );
    assert_eq!(
        allowed.header("access-control-allow-credentials"),
        Some("true")
    );
    assert!(
        allowed
            .header("access-control-allow-headers")
            .is_some_and(|h| h.contains("x-client"))
    );
    let other = preflight("http://other.test").await;
    assert_eq!(other.header("access-control-allow-origin"), None);

    // The handshake itself, and the app's routes, are marked for the page's origin.
    for target in [HANDSHAKE, "/api"] {
        let reply = request(server.addr, "GET", target, &[("origin", "http://app.test")]).await;
        assert_eq!(reply.status, 200, "{target}");
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some("http://app.test"),
            "{target}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn without_cors_no_cross_origin_header_is_sent_as_in_node() {
    let server = TestServer::start(with_cors(None)).await;
    let reply = request(
        server.addr,
        "GET",
        HANDSHAKE,
        &[("origin", "http://app.test")],
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), None);
    server.shutdown().await;
}

async fn mark(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert("x-layered", http::HeaderValue::from_static("yes"));
    response
}

#[tokio::test]
async fn the_apps_layers_wrap_every_path_and_serve_keeps_its_graceful_shutdown() {
    let (said, mut heard) = tokio::sync::mpsc::unbounded_channel();
    let server = Server::builder()
        .namespace("/", move |socket: Socket| {
            let said = said.clone();
            async move {
                socket.on_disconnect(move |_: Socket, reason: tongxun::DisconnectReason| {
                    said.send(reason).ok();
                    async {}
                });
            }
        })
        .routes(axum::Router::new().route("/api", axum::routing::get(|| async { "api" })))
        .layer(axum::middleware::from_fn(mark))
        .build();
    let server = TestServer::start(server).await;
    for target in [HANDSHAKE, "/api", "/missing"] {
        let reply = request(server.addr, "GET", target, &[]).await;
        assert_eq!(reply.header("x-layered"), Some("yes"), "{target}");
    }
    let _client = server.client("/").await;
    server.shutdown().await;
    let reason = within(heard.recv())
        .await
        .expect("the disconnect listener ran");
    assert_eq!(reason, tongxun::DisconnectReason::ClosingServer);
}

#[tokio::test]
async fn serve_all_serves_one_set_of_sockets_on_ipv4_and_ipv6() {
    async fn on_connect(socket: Socket) {
        socket.on(
            "shout",
            |socket: Socket, Data(text): Data<String>| async move {
                socket.broadcast().emit("shouted", &text).await
            },
        );
    }
    let server = Server::builder().namespace("/", on_connect).build();
    let io = server.io();
    let v4 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let v6 = TcpListener::bind("[::1]:0").await.unwrap();
    let (v4_addr, v6_addr) = (v4.local_addr().unwrap(), v6.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve_all([v4, v6], async {
        stopped.await.ok();
    }));

    let mut on_v4 = within(Client::connect(v4_addr, "/", None)).await.unwrap();
    let mut on_v6 = within(Client::connect(v6_addr, "/", None)).await.unwrap();
    assert_eq!(io.sockets("/").unwrap().len(), 2);
    on_v6.emit("shout", json!(["over IPv6"])).await;
    let (args, _) = on_v4.expect_event("shouted").await;
    assert_eq!(args, vec![json!("over IPv6")]);
    on_v4.emit("shout", json!(["over IPv4"])).await;
    let (args, _) = on_v6.expect_event("shouted").await;
    assert_eq!(args, vec![json!("over IPv4")]);

    stop.send(()).unwrap();
    within(serving).await.unwrap().unwrap();
    assert!(TcpStream::connect(v4_addr).await.is_err());
    assert!(TcpStream::connect(v6_addr).await.is_err());
}
