//! The Admin UI's server side, driven as the UI drives it: login, what it is shown, and its
//! commands. (The UI itself, in Chromium, is `js-client-tests/test/admin.browser.test.mjs`.)

mod support;

use serde_json::{Value, json};
use tongxun::admin::{AdminUi, Mode};
use tongxun::{Server, Socket};
use tongxun_test::{Closed, HandshakeError, TestClient, TestServer};

/// bcrypt of `tongxun-dev`, as bcryptjs writes it.
const HASH: &str = "$2a$10$HXTz5fMnYUtnfvMQ6iQKJeP6RO38rOMnX6ozxHhQEbzXO19w/l3sq";

/// A `/chat` whose sockets join the room they name in `join`, echo `say` back as `said`, and
/// broadcast `shout` to everyone as `shouted`.
async fn start(admin: AdminUi) -> TestServer {
    support::init_tracing();
    let server = Server::builder()
        .namespace("/chat", |socket: Socket| async move {
            socket.on(
                "join",
                |socket: Socket, tongxun::Data(room): tongxun::Data<String>| async move {
                    socket.join(room)
                },
            );
            socket.on(
                "say",
                |socket: Socket, tongxun::Data(text): tongxun::Data<String>| async move {
                    socket.emit("said", &text)
                },
            );
            socket.on(
                "shout",
                |socket: Socket, tongxun::Data(text): tongxun::Data<String>| async move {
                    socket.namespace().emit("shouted", &text).await
                },
            );
        })
        .admin_ui(admin)
        .build();
    TestServer::start(server).await.expect("a loopback port")
}

async fn login(server: &TestServer, password: &str) -> Result<TestClient, HandshakeError> {
    server
        .client()
        .namespace("/admin")
        .auth(json!({ "username": "admin", "password": password }))
        .connect()
        .await
}

/// The next `event` the admin is sent about a socket of `/chat` (the admin's own are skipped).
async fn next_about_chat(admin: &mut TestClient, event: &str) -> Vec<Value> {
    loop {
        let args = admin.wait_for(event).await.expect(event).args();
        let nsp = match event {
            "socket_connected" => args[0]["nsp"].clone(),
            _ => args[0].clone(),
        };
        if nsp == "/chat" {
            return args;
        }
    }
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_the_right_one_gets_a_session_config_and_every_socket() {
    let server = start(AdminUi::basic_auth("admin", HASH)).await;
    let user = server.connect("/chat").await.unwrap();
    user.emit_with_ack::<_, Value>("join", "lobby").await.ok();

    let wrong = login(&server, "nope").await;
    assert!(
        matches!(&wrong, Err(HandshakeError::Refused { message, .. }) if message == "invalid credentials"),
        "{wrong:?}"
    );

    let mut admin = login(&server, "tongxun-dev").await.unwrap();
    let session: String = admin.wait_for("session").await.unwrap().data().unwrap();
    assert_eq!(session.len(), 32);
    let config: Value = admin.wait_for("config").await.unwrap().data().unwrap();
    assert!(
        config["supportedFeatures"]
            .as_array()
            .unwrap()
            .contains(&json!("DISCONNECT"))
    );
    let sockets: Vec<Value> = admin.wait_for("all_sockets").await.unwrap().data().unwrap();
    let listed = sockets
        .iter()
        .find(|s| s["id"] == user.id())
        .expect("the chat user is listed");
    assert_eq!(listed["nsp"], "/chat");
    assert_eq!(listed["transport"], "websocket");
    let rooms: Vec<&str> = listed["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        rooms.contains(&"lobby") && rooms.contains(&user.id()),
        "{rooms:?}"
    );
    assert_eq!(listed["handshake"]["address"], "127.0.0.1");

    // The session logs in again without the password, as the UI does when it reconnects.
    let again = server
        .client()
        .namespace("/admin")
        .auth(json!({ "sessionId": session }))
        .connect()
        .await;
    assert!(again.is_ok(), "{again:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_admin_sees_connections_rooms_events_and_disconnects_as_they_happen() {
    let server = start(AdminUi::basic_auth("admin", HASH)).await;
    let mut admin = login(&server, "tongxun-dev").await.unwrap();
    admin.wait_for("all_sockets").await.unwrap();

    let user = server.connect("/chat").await.unwrap();
    let connected = next_about_chat(&mut admin, "socket_connected").await;
    assert_eq!(connected[0]["id"], user.id());

    user.emit_with_ack::<_, Value>("join", "lobby").await.ok();
    let received = next_about_chat(&mut admin, "event_received").await;
    assert_eq!(received[1], user.id());
    assert_eq!(received[2], json!(["join", "lobby"]));
    let joined = next_about_chat(&mut admin, "room_joined").await;
    assert_eq!(
        (&joined[1], &joined[2]),
        (&json!("lobby"), &json!(user.id()))
    );

    user.emit("say", "hi").unwrap();
    let sent = next_about_chat(&mut admin, "event_sent").await;
    assert_eq!(sent[2], json!(["said", "hi"]));
    // A broadcast is reported for each socket it reached.
    user.emit("shout", "hey").unwrap();
    let sent = next_about_chat(&mut admin, "event_sent").await;
    assert_eq!(
        (&sent[1], &sent[2]),
        (&json!(user.id()), &json!(["shouted", "hey"]))
    );

    let id = user.id().to_owned();
    user.disconnect().await;
    let gone = next_about_chat(&mut admin, "socket_disconnected").await;
    assert_eq!(
        (&gone[1], &gone[2]),
        (&json!(id), &json!("client namespace disconnect"))
    );
    let left = next_about_chat(&mut admin, "room_left").await;
    assert_eq!(left[2], json!(id));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_admin_disconnects_and_moves_sockets_and_a_readonly_one_cannot() {
    let server = start(AdminUi::basic_auth("admin", HASH)).await;
    let mut admin = login(&server, "tongxun-dev").await.unwrap();
    admin.wait_for("all_sockets").await.unwrap();
    let mut user = server.connect("/chat").await.unwrap();
    let other = server.connect("/chat").await.unwrap();

    admin.emit("join", &("/chat", "vip", user.id())).unwrap();
    let joined = next_about_chat(&mut admin, "room_joined").await;
    assert_eq!((&joined[1], &joined[2]), (&json!("vip"), &json!(user.id())));
    admin
        .emit("emit", &("/chat", "vip", "news", "for vips"))
        .unwrap();
    let news: String = user.wait_for("news").await.unwrap().data().unwrap();
    assert_eq!(news, "for vips");

    admin
        .emit("_disconnect", &("/chat", false, user.id()))
        .unwrap();
    assert_eq!(user.closed().await.unwrap(), Closed::ServerDisconnect);
    let gone = next_about_chat(&mut admin, "socket_disconnected").await;
    assert_eq!(gone[2], "server namespace disconnect");
    assert!(other.connected());

    let readonly = start(AdminUi::basic_auth("admin", HASH).readonly(true)).await;
    let mut admin = login(&readonly, "tongxun-dev").await.unwrap();
    let config: Value = admin.wait_for("config").await.unwrap().data().unwrap();
    assert_eq!(
        config["supportedFeatures"],
        json!(["AGGREGATED_EVENTS", "ALL_EVENTS"])
    );
    let mut user = readonly.connect("/chat").await.unwrap();
    admin
        .emit("_disconnect", &("/chat", false, user.id()))
        .unwrap();
    // The command is ignored: the user is still served after the admin's next stats.
    admin.wait_for("server_stats").await.unwrap();
    user.emit("say", "still here").unwrap();
    let echo: String = user.wait_for("said").await.unwrap().data().unwrap();
    assert_eq!(echo, "still here");
    server.shutdown().await.unwrap();
    readonly.shutdown().await.unwrap();
}

#[tokio::test]
async fn server_stats_count_this_nodes_clients_and_namespaces_and_production_mode_sends_nothing_per_socket()
 {
    let server = start(
        AdminUi::basic_auth("admin", HASH)
            .mode(Mode::Production)
            .server_id("node-a"),
    )
    .await;
    let _users = [
        server.connect("/chat").await.unwrap(),
        server.connect("/chat").await.unwrap(),
    ];
    let mut admin = login(&server, "tongxun-dev").await.unwrap();
    // In production the admin is told the config and the stats, nothing per socket.
    let third = loop {
        let event = admin.next_event().await.unwrap();
        match event.name() {
            "session" => {}
            "config" => {
                let config: Value = event.data().unwrap();
                assert!(
                    !config["supportedFeatures"]
                        .as_array()
                        .unwrap()
                        .contains(&json!("ALL_EVENTS"))
                );
            }
            "server_stats" => {
                let stats: Value = event.data().unwrap();
                assert_eq!(stats["serverId"], "node-a");
                assert_eq!(stats["pid"], std::process::id());
                // Two users and the admin, each on a connection of its own.
                assert_eq!(stats["clientsCount"], 3);
                assert_eq!(stats["pollingClientsCount"], 0);
                let chat = stats["namespaces"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|ns| ns["name"] == "/chat")
                    .cloned()
                    .unwrap();
                assert_eq!(chat["socketsCount"], 2);
                break server.connect("/chat").await.unwrap();
            }
            other => panic!("production mode sent {other}"),
        }
    };
    loop {
        let event = admin.next_event().await.unwrap();
        assert_eq!(
            event.name(),
            "server_stats",
            "production mode sent {}",
            event.name()
        );
        let stats: Value = event.data().unwrap();
        if stats["clientsCount"] == 4 {
            break;
        }
    }
    drop(third);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn logins_past_the_password_checks_running_at_once_are_refused_not_queued() {
    // A slow hash (cost 13), so that the checks overlap.
    const SLOW: &str = "$2a$13$HlNIyUQ10Hq5DeCLMjEedOv.2qEx54FNcFIqz3deDi9Xwhq1tD1g6";
    let server = start(AdminUi::basic_auth("admin", SLOW)).await;
    let attempts = tongxun::admin::MAX_LOGINS_AT_ONCE + 4;
    let logins = (0..attempts).map(|_| {
        server
            .client()
            .namespace("/admin")
            .auth(json!({ "username": "admin", "password": "wrong" }))
            .timeout(std::time::Duration::from_secs(60))
            .connect()
    });
    let outcomes = futures_util::future::join_all(logins).await;
    let refusals: Vec<String> = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Err(HandshakeError::Refused { message, .. }) => message,
            other => panic!("a wrong password let in: {other:?}"),
        })
        .collect();
    let busy = refusals
        .iter()
        .filter(|m| *m == "too many login attempts")
        .count();
    assert!(busy >= 1, "{refusals:?}");
    // Each of those is a hit of the bound in the metrics.
    #[cfg(feature = "metrics")]
    {
        let scrape = server.io().metrics().render();
        let line = format!("tongxun_limit_hits_total{{limit=\"admin_max_logins_at_once\"}} {busy}");
        assert!(scrape.lines().any(|l| l == line), "{line} in\n{scrape}");
    }
    assert!(
        attempts - busy <= tongxun::admin::MAX_LOGINS_AT_ONCE,
        "{refusals:?}"
    );
    // Once those checks finished, a login is checked again.
    assert!(login(&server, "tongxun-dev").await.is_ok());
    server.shutdown().await.unwrap();
}

/// `GET path` over a fresh connection: the status line's code, the `location` header, the body.
async fn get(server: &TestServer, path: &str) -> (u16, Option<String>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    let location = head
        .lines()
        .find_map(|line| line.strip_prefix("location: "))
        .map(str::to_owned);
    (status, location, body.to_owned())
}

#[tokio::test]
async fn the_ui_files_are_served_under_their_path_with_the_icons_beside_them_and_nothing_outside() {
    support::init_tracing();
    let root = std::env::temp_dir().join(format!("tongxun-admin-ui-{}", std::process::id()));
    let (dist, icons) = (root.join("dist"), root.join("mdi"));
    std::fs::create_dir_all(dist.join("js")).unwrap();
    std::fs::create_dir_all(icons.join("css")).unwrap();
    std::fs::write(
        dist.join("index.html"),
        r#"<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/@mdi/font@latest/css/materialdesignicons.min.css"><script src="js/app.js"></script>"#,
    )
    .unwrap();
    std::fs::write(dist.join("js/app.js"), "console.log(1)").unwrap();
    std::fs::write(icons.join("css/materialdesignicons.min.css"), ".mdi{}").unwrap();
    std::fs::write(root.join("secret.txt"), "not served").unwrap();

    let files = tongxun::admin::UiFiles::new(&dist).icons(&icons);
    let server = TestServer::start(Server::builder().routes(files.router("/admin/ui")).build())
        .await
        .unwrap();
    assert_eq!(
        get(&server, "/admin/ui").await.1.as_deref(),
        Some("/admin/ui/")
    );
    let (status, _, page) = get(&server, "/admin/ui/").await;
    assert_eq!(status, 200);
    assert!(
        page.contains(r#"href="mdi/css/materialdesignicons.min.css""#),
        "{page}"
    );
    assert!(!page.contains("https://"), "{page}");
    assert_eq!(get(&server, "/admin/ui/index.html").await.2, page);
    assert_eq!(
        get(&server, "/admin/ui/js/app.js").await.2,
        "console.log(1)"
    );
    assert_eq!(
        get(&server, "/admin/ui/mdi/css/materialdesignicons.min.css")
            .await
            .2,
        ".mdi{}"
    );
    assert_eq!(get(&server, "/admin/ui/../secret.txt").await.0, 404);
    assert_eq!(get(&server, "/admin/ui/%2e%2e/secret.txt").await.0, 404);
    assert_eq!(get(&server, "/admin/ui/nope.js").await.0, 404);
    server.shutdown().await.unwrap();
    std::fs::remove_dir_all(root).ok();
}
