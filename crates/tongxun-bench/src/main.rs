//! tongxun's benchmark suite: a Socket.IO / WebSocket / Server-Sent Events load generator and
//! the peer servers it measures (tongxun, bare socketioxide, Node `socket.io`, tongxun's WS hub
//! and a bare tokio-tungstenite floor, tongxun's SSE hub and a minimal axum SSE floor), and
//! two tongxun nodes sharing a room through Redis (feature `redis`), and one
//! `tongxun::hub::Hub` publishing to all three transports at once.
//!
//! ```text
//! cargo run -p tongxun-bench --release -- suite   # everything; writes docs/benchmarks.md
//! cargo run -p tongxun-bench --release -- smoke   # tiny sizes; fails on any loss or error
//! cargo run -p tongxun-bench --release -- run --scenario ack-echo --peer tongxun
//! cargo run -p tongxun-bench --release --features redis -- run --scenario redis-broadcast
//! cargo run -p tongxun-bench --release -- serve --peer bare --port 3000
//! # two builds of tongxun side by side, run after run (the peers served by each build's bench):
//! tongxun-bench run --scenario hub-fanout \
//!     --peer-bin before=/path/to/old/tongxun-bench --peer-bin after=/path/to/new/tongxun-bench
//! ```

mod client;
mod peers;
mod report;
mod scenarios;
mod sse_client;
mod stats;
mod suite;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use peers::Peer;
use scenarios::{Scenario, Sizes};

/// tongxun's benchmark suite.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs every scenario against every peer, several times, and writes the report.
    Suite {
        /// Where to write the report.
        #[arg(long, default_value_os_t = default_report_path())]
        out: PathBuf,
        /// A remark printed at the top of the report (such as "machine shared with builds").
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        selection: Selection,
        #[command(flatten)]
        sizes: SizeArgs,
    },
    /// Runs every scenario once with tiny sizes; exits non-zero on any loss or error.
    Smoke {
        /// Leaves out the Node peer even when it is installed.
        #[arg(long)]
        no_node: bool,
        /// Also writes the report here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Runs scenarios and prints the figures, without writing the report.
    Run {
        #[command(flatten)]
        selection: Selection,
        #[command(flatten)]
        sizes: SizeArgs,
        /// Measures an already running server at this address instead of starting the peer
        /// (for profiling it); with one `--peer` naming what it is.
        #[arg(long, requires = "pid")]
        addr: Option<SocketAddr>,
        /// The process id of the server at `--addr`, for its memory.
        #[arg(long, requires = "addr")]
        pid: Option<u32>,
        /// A `tracing` filter for the logs of the Rust peers the bench starts, on stderr (such
        /// as `tongxun=info`, to see why messages were lost).
        #[arg(long)]
        peer_log: Option<String>,
    },
    /// Serves one Rust peer (the bench starts its peers this way).
    Serve {
        /// Which peer.
        #[arg(long, value_enum)]
        peer: Peer,
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Exits when standard input closes.
        #[arg(long)]
        exit_with_stdin: bool,
        /// A `tracing` filter for the peer's logs on stderr (none by default).
        #[arg(long)]
        log: Option<String>,
        /// The tongxun peer's `Config::redis_url`: a node sharing rooms and broadcasts through
        /// this Redis (needs the bench's feature `redis`).
        #[arg(long)]
        redis_url: Option<String>,
    },
}

/// Which scenarios and peers to run (all by default).
#[derive(Debug, Args)]
struct Selection {
    /// A scenario to run (repeatable).
    #[arg(long = "scenario", value_enum)]
    scenarios: Vec<Scenario>,
    /// A peer to run (repeatable).
    #[arg(long = "peer", value_enum)]
    peers: Vec<Peer>,
    /// `NAME=PATH`: serves the Rust peers from the bench binary at PATH (another build, such as
    /// one of a previous commit), shown as `NAME` (repeatable: one row per build, run after run
    /// in alternating order, ratios to the first build).
    #[arg(long = "peer-bin", value_name = "NAME=PATH", value_parser = suite::Build::parse)]
    peer_bins: Vec<suite::Build>,
}

/// Overrides of the full sizes, for a shorter run; the report states the sizes used.
#[derive(Debug, Args)]
struct SizeArgs {
    /// Runs of each scenario and peer [default: 5].
    #[arg(long)]
    repeats: Option<usize>,
    /// Broadcast receivers [default: 1000].
    #[arg(long)]
    fanout_clients: Option<usize>,
    /// Seconds each broadcast trial sends for [default: 2].
    #[arg(long)]
    fanout_secs: Option<f64>,
    /// First broadcast rate tried [default: 50].
    #[arg(long)]
    fanout_start_rate: Option<u32>,
    /// Highest broadcast rate tried [default: 16000].
    #[arg(long)]
    fanout_max_rate: Option<u32>,
    /// One trial at this rate instead of a search, reported whatever its outcome (to profile a
    /// fixed load); for every fan-out scenario run.
    #[arg(long)]
    fanout_fixed_rate: Option<u32>,
    /// Ack echo clients [default: 100].
    #[arg(long)]
    ack_clients: Option<usize>,
    /// Seconds of ack echo measured [default: 5].
    #[arg(long)]
    ack_secs: Option<f64>,
    /// Idle connections [default: 10000].
    #[arg(long)]
    idle_conns: Option<usize>,
    /// Connections opened in the connection-rate scenario [default: 10000].
    #[arg(long)]
    connect_conns: Option<usize>,
    /// SSE subscribers [default: 10000].
    #[arg(long)]
    sse_subscribers: Option<usize>,
    /// First SSE publish rate tried [default: 5].
    #[arg(long)]
    sse_start_rate: Option<u32>,
    /// Highest SSE publish rate tried [default: 2000].
    #[arg(long)]
    sse_max_rate: Option<u32>,
    /// Room broadcasts per second of the Redis scenario [default: 200]; its receivers are
    /// `--fanout-clients`.
    #[arg(long)]
    room_rate: Option<u32>,
    /// Seconds the Redis scenario's measured trial sends for [default: 10].
    #[arg(long)]
    room_secs: Option<f64>,
    /// Socket.IO receivers of the hub fan-out [default: 300].
    #[arg(long)]
    hub_socketio: Option<usize>,
    /// WebSocket receivers of the hub fan-out [default: 300].
    #[arg(long)]
    hub_ws: Option<usize>,
    /// SSE receivers of the hub fan-out [default: 300].
    #[arg(long)]
    hub_sse: Option<usize>,
    /// First hub publish rate tried [default: 50].
    #[arg(long)]
    hub_start_rate: Option<u32>,
    /// Highest hub publish rate tried [default: 16000].
    #[arg(long)]
    hub_max_rate: Option<u32>,
    /// The hub fan-out's reference rate, where its latencies are measured [default: 200].
    #[arg(long)]
    hub_reference_rate: Option<u32>,
}

impl SizeArgs {
    fn apply(&self, mut sizes: Sizes) -> Sizes {
        let SizeArgs {
            repeats,
            fanout_clients,
            fanout_secs,
            fanout_start_rate,
            fanout_max_rate,
            fanout_fixed_rate,
            ack_clients,
            ack_secs,
            idle_conns,
            connect_conns,
            sse_subscribers,
            sse_start_rate,
            sse_max_rate,
            room_rate,
            room_secs,
            hub_socketio,
            hub_ws,
            hub_sse,
            hub_start_rate,
            hub_max_rate,
            hub_reference_rate,
        } = self;
        sizes.repeats = repeats.unwrap_or(sizes.repeats).max(1);
        sizes.fanout_clients = fanout_clients.unwrap_or(sizes.fanout_clients);
        sizes.fanout_secs = fanout_secs.unwrap_or(sizes.fanout_secs);
        sizes.fanout_start_rate = fanout_start_rate.unwrap_or(sizes.fanout_start_rate);
        sizes.fanout_max_rate = fanout_max_rate.unwrap_or(sizes.fanout_max_rate);
        sizes.fanout_fixed_rate = fanout_fixed_rate.or(sizes.fanout_fixed_rate);
        sizes.ack_clients = ack_clients.unwrap_or(sizes.ack_clients);
        sizes.ack_secs = ack_secs.unwrap_or(sizes.ack_secs);
        sizes.idle_conns = idle_conns.unwrap_or(sizes.idle_conns);
        sizes.connect_conns = connect_conns.unwrap_or(sizes.connect_conns);
        sizes.sse_subscribers = sse_subscribers.unwrap_or(sizes.sse_subscribers);
        sizes.sse_start_rate = sse_start_rate.unwrap_or(sizes.sse_start_rate);
        sizes.sse_max_rate = sse_max_rate.unwrap_or(sizes.sse_max_rate);
        sizes.room_rate = room_rate.unwrap_or(sizes.room_rate).max(1);
        sizes.room_secs = room_secs.unwrap_or(sizes.room_secs);
        sizes.hub_socketio = hub_socketio.unwrap_or(sizes.hub_socketio);
        sizes.hub_ws = hub_ws.unwrap_or(sizes.hub_ws);
        sizes.hub_sse = hub_sse.unwrap_or(sizes.hub_sse);
        sizes.hub_start_rate = hub_start_rate.unwrap_or(sizes.hub_start_rate);
        sizes.hub_max_rate = hub_max_rate.unwrap_or(sizes.hub_max_rate);
        sizes.hub_reference_rate = hub_reference_rate.or(sizes.hub_reference_rate);
        sizes
    }
}

fn default_report_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/benchmarks.md"
    ))
}

/// Raises this process's open-file limit as far as allowed (children inherit it); returns the
/// soft limit now in force.
pub(crate) fn raise_fd_limit() -> u64 {
    const WANTED: u64 = 65_536;
    // Root may lift the hard limit too; anyone may lift the soft limit up to the hard one.
    if let Ok((soft, hard)) = rlimit::Resource::NOFILE.get()
        && hard < WANTED
    {
        rlimit::Resource::NOFILE.set(soft, WANTED).ok();
    }
    rlimit::increase_nofile_limit(WANTED).unwrap_or(0)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve {
            peer,
            port,
            exit_with_stdin,
            log,
            redis_url,
        } => {
            if let Some(filter) = log {
                tracing_subscriber::fmt()
                    .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                    .with_writer(std::io::stderr)
                    .init();
            }
            peers::serve(peer, port, exit_with_stdin, redis_url)
        }
        command => tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(bench(command))),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn bench(command: Command) -> anyhow::Result<()> {
    let limit = raise_fd_limit();
    match command {
        Command::Suite {
            out,
            note,
            selection,
            sizes,
        } => {
            let sizes = sizes.apply(Sizes::full());
            check_fd_limit(limit, &sizes);
            let mut plan = suite::Plan::new(&selection.scenarios, &selection.peers, sizes);
            plan.with_builds(&selection.peer_bins)?;
            let results = plan.run().await;
            let text = report::render(&results, note.as_deref());
            if let Some(dir) = out.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&out, text)?;
            eprintln!("wrote {}", out.display());
            Ok(())
        }
        Command::Smoke { no_node, out } => {
            let mut peers = vec![
                Peer::Tongxun,
                Peer::TongxunHub,
                Peer::Bare,
                Peer::WsHub,
                Peer::WsFloor,
                Peer::SseHub,
                Peer::SseFloor,
                Peer::TongxunRedis,
            ];
            if let Some(why) = Peer::TongxunRedis.unavailable() {
                eprintln!("Room broadcast through Redis: skipped, {why}");
            }
            if no_node {
                eprintln!("Node peer: skipped (--no-node)");
            } else {
                if let Some(why) = Peer::Node.unavailable() {
                    eprintln!("Node peer: skipped, {why}");
                }
                peers.push(Peer::Node);
            }
            let plan = suite::Plan::new(&[], &peers, Sizes::smoke());
            let results = plan.run().await;
            let text = report::render(&results, Some("smoke run: tiny sizes, not benchmarks"));
            if let Some(out) = out {
                std::fs::write(&out, text)?;
            }
            let failures = results.failures();
            if failures.is_empty() {
                eprintln!("smoke: every scenario ran without loss or error");
                Ok(())
            } else {
                for failure in &failures {
                    eprintln!("smoke failure: {failure}");
                }
                anyhow::bail!("{} smoke failure(s)", failures.len())
            }
        }
        Command::Run {
            selection,
            sizes,
            addr,
            pid,
            peer_log,
        } => {
            let sizes = sizes.apply(Sizes::full());
            check_fd_limit(limit, &sizes);
            let mut plan = suite::Plan::new(&selection.scenarios, &selection.peers, sizes);
            if let (Some(addr), Some(pid)) = (addr, pid) {
                plan.use_external(addr, pid)?;
            }
            plan.with_builds(&selection.peer_bins)?;
            if let Some(filter) = peer_log {
                plan.log_peers(filter);
            }
            let results = plan.run().await;
            print!("{}", report::render_results_only(&results));
            Ok(())
        }
        Command::Serve { .. } => unreachable!("served without a runtime"),
    }
}

fn check_fd_limit(limit: u64, sizes: &Sizes) {
    let needed = sizes
        .idle_conns
        .max(sizes.connect_conns)
        .max(sizes.fanout_clients)
        .max(sizes.sse_subscribers)
        .max(sizes.hub_socketio + sizes.hub_ws + sizes.hub_sse) as u64
        + 256;
    if limit < needed {
        eprintln!(
            "warning: the open-file limit is {limit}, below the {needed} this run needs; \
             raise the hard limit (ulimit -Hn) or pass smaller sizes"
        );
    }
}
