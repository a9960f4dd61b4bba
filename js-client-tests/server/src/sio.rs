//! The Socket.IO namespaces and events the `socket.io-client` tests use.

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use tongxun::{
    Ack, Args, ConnectError, Data, Dispatch, Event, HandlerError, Handshake, Namespace, Server,
    ServerBuilder, Socket, TryData,
};

pub(crate) fn builder() -> ServerBuilder {
    // The npm-installed client of the tests, served like Node's server does.
    let dist = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../node_modules/socket.io-client/dist"
    );
    let builder = match tongxun::ClientBundle::from_dir(dist) {
        Ok(bundle) => Server::builder().client_bundle(bundle),
        Err(e) => {
            eprintln!("not serving the client bundle: {e}");
            Server::builder()
        }
    };
    // Nodes of a cluster share rooms and broadcasts through the Redis of TONGXUN_REDIS_URL.
    let mut config = tongxun::Config::default();
    config.redis_url = std::env::var("TONGXUN_REDIS_URL").ok();
    // The opt-in answer to acknowledgements no handler answered (Node leaves them to the
    // client's timeout).
    config.answer_unhandled_acks = std::env::var_os("TONGXUN_ANSWER_UNHANDLED_ACKS").is_some();
    // TONGXUN_PARSER=msgpack: for `socket.io-msgpack-parser` clients only.
    config.parser = match std::env::var("TONGXUN_PARSER").as_deref() {
        Ok("msgpack") => tongxun::config::Parser::MsgPack,
        Ok("common") | Err(_) => tongxun::config::Parser::Common,
        Ok(other) => panic!("TONGXUN_PARSER={other}: expected msgpack or common"),
    };
    // TONGXUN_ALLOW_EIO3: socket.io-client 2.x may connect too (Node's `allowEIO3`).
    config.allow_eio3 = std::env::var_os("TONGXUN_ALLOW_EIO3").is_some();
    builder
        .config(config)
        .namespace("/", on_main)
        .namespace("/chat", on_chat)
        .namespace_with("/auth", Namespace::new(on_auth).auth(check_token))
        .namespace_with("/parallel", Namespace::new(on_main).parallel())
        .namespace_with(
            "/ordered-start",
            Namespace::new(on_main).dispatch(Dispatch::OrderedStart),
        )
        .dynamic_namespace("/tenant/{id}", Namespace::new(on_tenant))
        .namespace("/rooms", on_rooms)
}

pub(crate) fn routes(server: Server) -> Server {
    let io = server.io();
    server.merge(axum::Router::new().route(
        "/stats",
        axum::routing::get(move || {
            let io = io.clone();
            async move {
                axum::Json(serde_json::json!({
                    "live_stores": io.live_stores(),
                    "dropped_deliveries": io.dropped_deliveries(),
                }))
            }
        }),
    ))
}

/// A broadcast a test asks the server to perform.
#[derive(Deserialize)]
struct Cast {
    /// `all` (or `marker`, the same), `broadcast`, `to`, `within`, `except`, `io-to-except`,
    /// `volatile`, `local`.
    mode: String,
    #[serde(default)]
    rooms: Vec<String>,
    #[serde(default)]
    except: Vec<String>,
}

/// Rooms, broadcast helpers and storage.
async fn on_rooms(socket: Socket) {
    socket.on(
        "join",
        |socket: Socket, Data(rooms): Data<Vec<String>>, ack: Ack| async move {
            match socket.join(rooms) {
                Ok(()) => ack.send(&socket.rooms()),
                Err(e) => ack.send(&serde_json::json!({ "error": e.to_string() })),
            }
        },
    );
    socket.on(
        "leave",
        |socket: Socket, Data(room): Data<String>, ack: Ack| async move {
            socket.leave(room);
            ack.send(&socket.rooms())
        },
    );
    socket.on("leave-all", |socket: Socket, ack: Ack| async move {
        socket.leave_all();
        ack.send(&socket.rooms())
    });
    socket.on(
        "cast",
        |socket: Socket, Data(cast): Data<Cast>, ack: Ack| async move {
            let io = socket.io();
            let payload = (cast.mode.clone(), socket.id().to_string());
            let selection = match cast.mode.as_str() {
                "all" | "marker" => io.of("/rooms").expect("namespace"),
                "broadcast" => socket.broadcast(),
                "to" => socket.to(cast.rooms),
                "within" => socket.within(cast.rooms),
                "except" => socket.except(cast.except),
                "io-to-except" => io
                    .of("/rooms")
                    .expect("namespace")
                    .to(cast.rooms)
                    .except(cast.except),
                "volatile" => io.of("/rooms").expect("namespace").volatile(),
                "local" => io.of("/rooms").expect("namespace").local(),
                other => {
                    return ack
                        .send(&serde_json::json!({ "error": format!("unknown mode {other}") }))
                        .map_err(HandlerError::from);
                }
            };
            // "done" once every node was told; "this node only" while Redis is away.
            match selection.emit("hit", &payload).await {
                Ok(()) => ack.send("done")?,
                Err(tongxun::BroadcastError::ThisNodeOnly) => ack.send("this node only")?,
                Err(e) => return Err(e.into()),
            }
            Ok::<_, HandlerError>(())
        },
    );
    socket.on(
        "votes",
        |socket: Socket, Data(room): Data<String>, ack: Ack| async move {
            let votes = socket
                .within(room)
                .timeout(Duration::from_millis(800))
                .emit_with_ack::<_, String>("vote?", &())
                .await?;
            let votes: Vec<_> = votes
                .into_iter()
                .map(|(id, vote)| match vote {
                    Ok(vote) => serde_json::json!({ "id": id.to_string(), "vote": vote }),
                    Err(e) => serde_json::json!({ "id": id.to_string(), "error": e.to_string() }),
                })
                .collect();
            ack.send(&votes)?;
            Ok::<_, HandlerError>(())
        },
    );
    socket.on(
        "fetch",
        |socket: Socket, Data(room): Data<String>, ack: Ack| async move {
            let sockets = socket.within(room).fetch_sockets().await?;
            let mut ids: Vec<String> = sockets.iter().map(|s| s.data().id.to_string()).collect();
            ids.sort();
            ack.send(&ids)?;
            Ok::<_, HandlerError>(())
        },
    );
    socket.on(
        "kick",
        |socket: Socket, Data(room): Data<String>, ack: Ack| async move {
            ack.send("kicking")?;
            socket.within(room).disconnect().await?;
            Ok::<_, HandlerError>(())
        },
    );
    socket.on(
        "move",
        |socket: Socket, Data((from, to)): Data<(String, String)>, ack: Ack| async move {
            socket.within(from.clone()).join(to).await?;
            socket.within(from).leave("lobby").await?;
            ack.send("moved")?;
            Ok::<_, HandlerError>(())
        },
    );

    // Storage.
    socket.on("set", |socket: Socket, Data((key, value)): Data<(String, serde_json::Value)>, ack: Ack| async move {
        socket.store().set(key, &value)?;
        ack.send(&socket.store().keys().len())?;
        Ok::<_, HandlerError>(())
    });
    socket.on(
        "get",
        |socket: Socket, Data(key): Data<String>, ack: Ack| async move {
            match socket.store().get::<serde_json::Value>(&key) {
                Ok(value) => ack.send(&value),
                Err(e) => ack.send(&serde_json::json!({ "error": e.to_string() })),
            }
        },
    );
    socket.on(
        "get-number",
        |socket: Socket, Data(key): Data<String>, ack: Ack| async move {
            let n: i64 = socket.store().get(&key)?;
            ack.send(&n)?;
            Ok::<_, HandlerError>(())
        },
    );
    socket.on(
        "nicks",
        |socket: Socket, Data(room): Data<String>, ack: Ack| async move {
            let mut nicks: Vec<String> = socket
                .within(room)
                .sockets()
                .iter()
                .filter_map(|s| s.store().get::<String>("nick").ok())
                .collect();
            nicks.sort();
            ack.send(&nicks)
        },
    );
    socket.on_disconnect(|socket: Socket, _| async move {
        let nick: String = socket
            .store()
            .get("nick")
            .unwrap_or_else(|_| "?".to_owned());
        let rooms = socket.rooms();
        socket.to(rooms).emit("left", &nick).await.ok();
    });
}

/// Prints `disconnect listener ran: <ns> <sid> <reason>` when the socket's disconnect listener
/// runs, for the shutdown tests.
fn report_disconnects(socket: &Socket) {
    socket.on_disconnect(
        |socket: Socket, reason: tongxun::DisconnectReason| async move {
            println!(
                "disconnect listener ran: {} {} {reason:?}",
                socket.ns(),
                socket.id()
            );
        },
    );
}

/// The main namespace: echo, typed payloads, acks both ways, listeners and failures.
async fn on_main(socket: Socket) {
    report_disconnects(&socket);
    // Per-packet middleware (Node's socket.use): events under `admin:` are refused.
    socket.middleware(|Event(name): Event| async move {
        match name.strip_prefix("admin:") {
            Some(_) => Err(format!("\"{name}\" is not allowed")),
            None => Ok(()),
        }
    });
    socket.on(
        "admin:reset",
        |ack: Ack| async move { ack.send("reset done") },
    );
    // What `socket.handshake` holds, as JSON.
    socket.on("handshake", |socket: Socket, ack: Ack| async move {
        let handshake = socket.handshake();
        let headers: serde_json::Map<String, serde_json::Value> = handshake
            .headers()
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or_default().into()))
            .collect();
        let query: serde_json::Map<String, serde_json::Value> = handshake
            .query_pairs()
            .into_iter()
            .map(|(key, value)| (key, value.into()))
            .collect();
        let issued = handshake
            .issued()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        ack.send(&serde_json::json!({
            "headers": headers,
            "query": query,
            "auth": handshake.auth::<serde_json::Value>().unwrap_or_default(),
            "address": handshake.address().map(|a| a.ip().to_string()),
            "time": handshake.time(),
            "issued": issued,
            "url": handshake.url().to_string(),
            "secure": handshake.secure(),
            "xdomain": handshake.xdomain(),
        }))
    });
    // Echo every argument back, through the ack when asked, else as an event of the same name.
    socket.on("echo", |socket: Socket, args: Args, ack: Ack| async move {
        if ack.requested() {
            ack.send(&args)
        } else {
            socket.emit("echo", &args)
        }
    });
    socket.on(
        "multi",
        |Data((text, number, flag)): Data<(String, i64, bool)>, ack: Ack| async move {
            ack.send(&(text.to_uppercase(), number * 2, !flag))
        },
    );
    socket.on(
        "binary",
        |socket: Socket, Data((name, file)): Data<(String, Bytes)>, ack: Ack| async move {
            socket.emit("binary", &(name.clone(), file.clone()))?;
            ack.send(&(name, file.len(), file))
        },
    );
    // Binary in, no binary out: the length and byte sum of a file.
    socket.on("digest", |Data(file): Data<Bytes>, ack: Ack| async move {
        ack.send(&(file.len(), file.iter().map(|&b| u64::from(b)).sum::<u64>()))
    });
    socket.on("point", |Data(point): Data<Point>, ack: Ack| async move {
        ack.send(&(point.x + point.y))
    });
    socket.on(
        "maybe-point",
        |TryData(point): TryData<Point>, ack: Ack| async move {
            match point {
                Ok(point) => ack.send(&serde_json::json!({ "sum": point.x + point.y })),
                Err(e) => ack.send(&serde_json::json!({ "invalid": e.to_string() })),
            }
        },
    );
    socket.on("panic", |Data(text): Data<String>| async move {
        if !text.is_empty() {
            panic!("handler asked to panic: {text}");
        }
    });
    socket.on("fail", |Data(reason): Data<String>| async move {
        Err::<(), _>(reason)
    });
    socket.on("no-ack", |_: Data<serde_json::Value>| async move {});
    // Counts the tries of an event it never acknowledges (the client's `retries`).
    socket.on(
        "count-tries",
        |socket: Socket, Data(key): Data<String>| async move {
            let tries: u64 = socket.store().get(&key).unwrap_or(0);
            socket.store().set(key, &(tries + 1))
        },
    );
    socket.on(
        "tries-of",
        |socket: Socket, Data(key): Data<String>, ack: Ack| async move {
            ack.send(&socket.store().get::<u64>(&key).unwrap_or(0))
        },
    );

    // Ordered dispatch: each handler awaits before recording, so a reordering would show.
    socket.on("seq", |socket: Socket, Data(n): Data<u64>| async move {
        tokio::time::sleep(Duration::from_micros(n % 7 * 50)).await;
        let mut seen: Vec<u64> = socket.store().get("seq").unwrap_or_default();
        seen.push(n);
        socket.store().set("seq", &seen)
    });
    socket.on("seq-result", |socket: Socket, ack: Ack| async move {
        let seen: Vec<u64> = socket.store().get("seq").unwrap_or_default();
        ack.send(&seen)
    });

    // once / off / catch-all.
    socket.once("first", |socket: Socket, Data(n): Data<u32>| async move {
        socket.emit("first-seen", &n)
    });
    socket.on("target", |socket: Socket, Data(n): Data<u32>| async move {
        socket.emit("target-seen", &n)
    });
    socket.on("off-target", |socket: Socket, ack: Ack| async move {
        ack.send(&socket.off("target"))
    });
    socket.on_any(|socket: Socket, Event(event): Event| async move {
        let mut seen: Vec<String> = socket.store().get("any").unwrap_or_default();
        seen.push(event);
        socket.store().set("any", &seen)
    });
    socket.on("any-result", |socket: Socket, ack: Ack| async move {
        let seen: Vec<String> = socket.store().get("any").unwrap_or_default();
        ack.send(&seen)
    });
    socket.on_message(|socket: Socket, Data(text): Data<String>| async move {
        socket.send(&format!("got {text}"))
    });

    // Server-to-client acks.
    socket.on(
        "ask-me",
        |socket: Socket, Data(question): Data<String>, ack: Ack| async move {
            let answer = socket
                .timeout(Duration::from_millis(500))
                .emit_with_ack::<_, (String, u32)>("question", &question)
                .await;
            match answer {
                Ok((text, number)) => {
                    ack.send(&serde_json::json!({ "answer": text, "number": number }))
                }
                Err(e) => ack.send(&serde_json::json!({ "error": e.to_string() })),
            }
        },
    );

    // Waits for the client to answer `release?`, then acknowledges with its answer.
    socket.on("hold", |socket: Socket, ack: Ack| async move {
        match socket.emit_with_ack::<_, String>("release?", &()).await {
            Ok(answer) => ack.send(&answer),
            Err(e) => ack.send(&serde_json::json!({ "error": e.to_string() })),
        }
    });

    socket.on("ping-me", |socket: Socket, ack: Ack| async move {
        socket.emit("pinged", &())?;
        ack.send(&())?;
        Ok::<_, HandlerError>(())
    });
    socket.on("disconnect-me", |socket: Socket| async move {
        socket.disconnect()
    });
}

async fn on_chat(socket: Socket) {
    report_disconnects(&socket);
    let ns = socket.ns().to_owned();
    socket.on("whoami", move |socket: Socket, ack: Ack| {
        let ns = ns.clone();
        async move { ack.send(&serde_json::json!({ "ns": ns, "id": socket.id().to_string() })) }
    });
}

#[derive(Deserialize)]
struct Point {
    x: i64,
    y: i64,
}

#[derive(Deserialize)]
struct Auth {
    token: Option<String>,
}

async fn check_token(handshake: Handshake) -> Result<(), ConnectError> {
    let auth: Auth = handshake
        .auth()
        .map_err(|_| ConnectError::new("malformed auth payload"))?;
    match auth.token.as_deref() {
        Some("secret") => {
            handshake.store().set("user", "ada").ok();
            Ok(())
        }
        Some("banned") => {
            Err(ConnectError::new("banned").with_data(&serde_json::json!({ "until": "tomorrow" })))
        }
        Some(_) => Err(ConnectError::new("invalid token")),
        None => Err(ConnectError::new("missing token")),
    }
}

async fn on_auth(socket: Socket) {
    socket.on("user", |socket: Socket, ack: Ack| async move {
        let user: String = socket.store().get("user")?;
        ack.send(&user)?;
        Ok::<_, HandlerError>(())
    });
}

async fn on_tenant(socket: Socket) {
    socket.on("tenant", |socket: Socket, ack: Ack| async move {
        let ns = socket.ns().to_owned();
        ack.send(&ns)
    });
}
