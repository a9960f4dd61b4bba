//! The servers under test. Each runs in a process of its own, started by the bench, so that its
//! memory can be read from `/proc/<pid>/status` and it never shares a runtime with the load.
//!
//! A peer prints `listening on http://127.0.0.1:PORT` once it accepts connections, and exits
//! when its standard input closes (the bench closes it when done, or by dying). The two-node
//! peer is two such tongxun processes and the `redis-server` they share ([`redis`]).

pub(crate) mod bare;
pub(crate) mod hub;
pub(crate) mod node;
pub(crate) mod redis;
pub(crate) mod sse_floor;
pub(crate) mod sse_hub;
pub(crate) mod tongxun;
pub(crate) mod ws_floor;
pub(crate) mod ws_hub;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::client::Protocol;

/// Time a peer gets to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// What tongxun's Redis bus logs (at `error`, target `tongxun::bus`) each time a node takes
/// Redis for away: a failed or late publish. The two-node peer's stderr is read for it.
const REDIS_LOST: &str = "lost Redis";

/// A server the scenarios run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Peer {
    /// tongxun's Socket.IO layer.
    Tongxun,
    /// One `tongxun::hub::Hub` publishing to Socket.IO, WebSocket and SSE subscribers.
    TongxunHub,
    /// Two tongxun nodes sharing rooms and broadcasts through a `redis-server` the bench
    /// starts (`Config::redis_url`; the bench's feature `redis`).
    TongxunRedis,
    /// A minimal server on bare socketioxide.
    Bare,
    /// Node `socket.io`.
    Node,
    /// A bare tokio-tungstenite broadcast server (the WS hub's floor).
    WsFloor,
    /// tongxun's WebSocket hub.
    WsHub,
    /// tongxun's Server-Sent Events hub.
    SseHub,
    /// A minimal axum SSE server over a broadcast channel (the SSE hub's floor).
    SseFloor,
}

impl Peer {
    /// The short name used on the command line.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Peer::Tongxun => "tongxun",
            Peer::TongxunHub => "tongxun-hub",
            Peer::TongxunRedis => "tongxun-redis",
            Peer::Bare => "bare",
            Peer::Node => "node",
            Peer::WsFloor => "ws-floor",
            Peer::WsHub => "ws-hub",
            Peer::SseHub => "sse-hub",
            Peer::SseFloor => "sse-floor",
        }
    }

    /// The name shown in the report.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Peer::Tongxun => "tongxun",
            Peer::TongxunHub => "tongxun Hub",
            Peer::TongxunRedis => "tongxun, two nodes via Redis",
            Peer::Bare => "bare socketioxide",
            Peer::Node => "Node socket.io",
            Peer::WsFloor => "bare tokio-tungstenite (floor)",
            Peer::WsHub => "tongxun WS hub",
            Peer::SseHub => "tongxun SSE hub",
            Peer::SseFloor => "axum SSE (floor)",
        }
    }

    /// What its clients speak (the hub peer's speak all three; its scenario opens each kind).
    pub(crate) fn protocol(self) -> Protocol {
        match self {
            Peer::Tongxun | Peer::TongxunHub | Peer::TongxunRedis | Peer::Bare | Peer::Node => {
                Protocol::SocketIo
            }
            Peer::WsFloor | Peer::WsHub => Protocol::RawWs,
            Peer::SseHub | Peer::SseFloor => Protocol::Sse,
        }
    }

    /// Why this peer cannot run on this machine, if it cannot.
    pub(crate) fn unavailable(self) -> Option<String> {
        match self {
            Peer::Node => node::unavailable(),
            Peer::TongxunRedis if !cfg!(feature = "redis") => {
                Some("not built: run with `--features redis` (tongxun-bench's feature)".to_owned())
            }
            Peer::TongxunRedis if redis::binary().is_none() => {
                Some("redis-server is not installed".to_owned())
            }
            _ => None,
        }
    }
}

/// A started peer process; killed when dropped.
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) peer: Peer,
    /// Where clients connect; for the two-node peer, node A's address (the sender's node).
    pub(crate) addr: SocketAddr,
    pid: u32,
    /// `None` for a server the bench did not start.
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    /// The two-node peer's node B and Redis, stopped after node A.
    cluster: Option<Cluster>,
    /// A tongxun node of the two-node peer: how many times it logged [`REDIS_LOST`].
    redis_lost: Option<Arc<AtomicU64>>,
}

/// What becomes of a peer's standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stderr {
    /// The bench's own.
    Inherit,
    /// Read for [`REDIS_LOST`], and copied to the bench's when `copy`.
    Watch { copy: bool },
}

/// What the two-node peer runs besides node A.
#[derive(Debug)]
struct Cluster {
    /// Node B; dropped before Redis, so that no node sees Redis go first.
    other: Box<Running>,
    redis: redis::RedisServer,
}

impl Running {
    /// Starts `peer` on a free loopback port and waits for its `listening on` line; for the
    /// two-node peer, starts `redis-server` first, then both nodes. A Rust peer logs on stderr
    /// with the `tracing` filter `log`, if given, and is served by the bench binary `bin`
    /// (`tongxun-bench serve`; this process's own by default), to compare builds.
    pub(crate) fn start(peer: Peer, log: Option<&str>, bin: Option<&Path>) -> Result<Running> {
        let mut args = Vec::new();
        if let Some(filter) = log {
            args.extend(["--log", filter]);
        }
        if peer == Peer::TongxunRedis {
            let redis = redis::RedisServer::start()?;
            let url = redis.url();
            // The bus's errors are always on, to count the times a node took Redis for away.
            let filter = match log {
                Some(filter) => format!("{filter},tongxun::bus=warn"),
                None => "tongxun::bus=warn".to_owned(),
            };
            let args = ["--log", filter.as_str(), "--redis-url", url.as_str()];
            let stderr = Stderr::Watch {
                copy: log.is_some(),
            };
            let mut a = Running::spawn(Peer::Tongxun, &args, stderr, bin)?;
            let other = Box::new(Running::spawn(Peer::Tongxun, &args, stderr, bin)?);
            a.peer = peer;
            a.cluster = Some(Cluster { other, redis });
            return Ok(a);
        }
        Running::spawn(peer, &args, Stderr::Inherit, bin)
    }

    /// Starts one peer process, with `extra` arguments to `serve` of bench binary `bin`.
    fn spawn(peer: Peer, extra: &[&str], stderr: Stderr, bin: Option<&Path>) -> Result<Running> {
        let mut command = match peer {
            Peer::Node => node::command(),
            _ => {
                let mut command = match bin {
                    Some(bin) => crate::pin::server_command(bin),
                    None => crate::pin::server_command(std::env::current_exe()?),
                };
                command.args([
                    "serve",
                    "--peer",
                    peer.key(),
                    "--port",
                    "0",
                    "--exit-with-stdin",
                ]);
                command.args(extra);
                command
            }
        };
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(match stderr {
                Stderr::Inherit => Stdio::inherit(),
                Stderr::Watch { .. } => Stdio::piped(),
            })
            .spawn()
            .with_context(|| format!("starting the {} peer", peer.label()))?;
        let redis_lost = match (stderr, child.stderr.take()) {
            (Stderr::Watch { copy }, Some(pipe)) => Some(watch_stderr(pipe, copy)),
            _ => None,
        };
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("peer stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on http://") {
                    if let Some(tx) = tx.take() {
                        tx.send(addr.trim().to_owned()).ok();
                    }
                } else {
                    // Keep reading so that the peer never blocks on a full pipe.
                    eprintln!("[peer] {line}");
                }
            }
        });
        let mut running = Running {
            peer,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pid: child.id(),
            child: Some(child),
            stdin,
            cluster: None,
            redis_lost,
        };
        let addr = match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => bail!(
                "the {} peer did not print `listening on` in time",
                peer.label()
            ),
        };
        running.addr = addr
            .parse()
            .with_context(|| format!("bad listening address {addr:?}"))?;
        Ok(running)
    }

    /// A server started by someone else (to profile it), listening on `addr`.
    pub(crate) fn external(peer: Peer, addr: SocketAddr, pid: u32) -> Running {
        Running {
            peer,
            addr,
            pid,
            child: None,
            stdin: None,
            cluster: None,
            redis_lost: None,
        }
    }

    /// How many times so far the two-node peer's nodes took Redis for away (a publish that
    /// failed or took longer than tongxun allows); `None` for the other peers.
    pub(crate) fn redis_lost(&self) -> Option<u64> {
        let cluster = self.cluster.as_ref()?;
        let count = |running: &Running| {
            running
                .redis_lost
                .as_ref()
                .map_or(0, |n| n.load(Ordering::Relaxed))
        };
        Some(count(self) + count(&cluster.other))
    }

    /// The two-node peer's node B, where half the receivers connect; `None` for the others.
    pub(crate) fn other_node(&self) -> Option<SocketAddr> {
        self.cluster.as_ref().map(|c| c.other.addr)
    }

    /// CPU time the peer used so far (user and system), in seconds; for the two-node peer,
    /// both nodes' (Redis's is [`redis_cpu_secs`](Self::redis_cpu_secs)).
    pub(crate) fn cpu_secs(&self) -> Result<f64> {
        let other = match &self.cluster {
            Some(cluster) => cluster.other.cpu_secs()?,
            None => 0.0,
        };
        Ok(process_cpu_secs(self.pid)? + other)
    }

    /// CPU time the two-node peer's `redis-server` used so far, in seconds.
    pub(crate) fn redis_cpu_secs(&self) -> Option<Result<f64>> {
        self.cluster
            .as_ref()
            .map(|c| process_cpu_secs(c.redis.pid()))
    }

    /// The peer's resident memory (`VmRSS`), in KiB.
    pub(crate) fn rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS in /proc/<pid>/status")
    }
}

/// Reads a tongxun node's standard error until it closes, counting [`REDIS_LOST`] lines and
/// copying every line to the bench's when `copy`.
fn watch_stderr(pipe: std::process::ChildStderr, copy: bool) -> Arc<AtomicU64> {
    let lost = Arc::new(AtomicU64::new(0));
    let counter = lost.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if line.contains(REDIS_LOST) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            if copy {
                eprintln!("{line}");
            }
        }
    });
    lost
}

/// CPU time process `pid` used so far (user and system), in seconds.
fn process_cpu_secs(pid: u32) -> Result<f64> {
    /// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`, 100 on Linux).
    const TICKS: f64 = 100.0;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .context("unreadable /proc/<pid>/stat")?
        .1
        .split_whitespace()
        .collect();
    // utime and stime: fields 14 and 15 of the line, 12 and 13 after the command name.
    let ticks: u64 = fields
        .get(11..13)
        .context("short /proc/<pid>/stat")?
        .iter()
        .map(|v| v.parse::<u64>())
        .sum::<Result<u64, _>>()?;
    Ok(ticks as f64 / TICKS)
}

impl Drop for Running {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if let Some(child) = &mut self.child {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

/// Runs a Rust peer in this process: `tongxun-bench serve --peer <peer>`. With
/// `exit_with_stdin`, the process exits once its standard input closes, so that no peer
/// outlives the bench that started it.
/// `redis_url` is the tongxun peer's `Config::redis_url`.
pub(crate) fn serve(
    peer: Peer,
    port: u16,
    exit_with_stdin: bool,
    redis_url: Option<String>,
) -> Result<()> {
    if redis_url.is_some() && peer != Peer::Tongxun {
        bail!("--redis-url is for the tongxun peer");
    }
    crate::raise_fd_limit();
    if exit_with_stdin {
        std::thread::spawn(|| {
            let mut sink = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink).ok();
            // The bench's own child server ends when its parent's pipe closes, whatever runs.
            #[allow(clippy::exit)]
            std::process::exit(0);
        });
    }
    let runtime = runtime_for(peer)?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        println!("listening on http://{}", listener.local_addr()?);
        match peer {
            Peer::Tongxun => tongxun::serve(listener, redis_url).await,
            Peer::TongxunHub => hub::serve(listener).await,
            Peer::TongxunRedis => {
                bail!("the two-node peer runs as two `--peer tongxun --redis-url URL` nodes")
            }
            Peer::Bare => bare::serve(listener).await,
            Peer::WsFloor => ws_floor::serve(listener).await,
            Peer::WsHub => ws_hub::serve(listener).await,
            Peer::SseHub => sse_hub::serve(listener).await,
            Peer::SseFloor => sse_floor::serve(listener).await,
            Peer::Node => bail!("the Node peer runs with `node node/server.mjs`"),
        }
    })
}

/// The runtime a peer serves on: tongxun's peers on [`::tongxun::runtime`], as tongxun's docs tell a
/// server to, the others on tokio's default. `TONGXUN_BENCH_RUNTIME=tokio` (or `=tongxun`) puts
/// every peer on that one, to measure what the runtime alone changes.
fn runtime_for(peer: Peer) -> Result<tokio::runtime::Runtime> {
    let tongxuns = matches!(
        peer,
        Peer::Tongxun | Peer::TongxunHub | Peer::WsHub | Peer::SseHub
    );
    let tongxun_runtime = match std::env::var("TONGXUN_BENCH_RUNTIME").as_deref() {
        Ok("tokio") => false,
        Ok("tongxun") => true,
        Ok(other) => bail!("TONGXUN_BENCH_RUNTIME: expected tokio or tongxun, got {other:?}"),
        Err(_) => tongxuns,
    };
    Ok(if tongxun_runtime {
        ::tongxun::runtime().build()?
    } else {
        tokio::runtime::Runtime::new()?
    })
}
