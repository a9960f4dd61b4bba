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
//! # the same, every server on CPU 0 and the load generator on CPU 1 (src/pin.rs):
//! cargo run -p tongxun-bench --release -- suite --pin \
//!     --scenario ack-echo --scenario connect-rate --scenario broadcast --scenario idle-memory
//! # scale curves: writes docs/benchmarks-curves.md and docs/images/curve-*.svg (src/curve.rs)
//! cargo run -p tongxun-bench --release -- curve --pin
//! cargo run -p tongxun-bench --release -- curve --curve idle-memory --peer tongxun --repeats 1
//! # two builds of tongxun side by side, run after run (the peers served by each build's bench):
//! tongxun-bench run --scenario hub-fanout \
//!     --peer-bin before=/path/to/old/tongxun-bench --peer-bin after=/path/to/new/tongxun-bench
//! ```
//!
//! The curves are a subcommand of their own rather than a flag of `suite`: they run other
//! sizes, write another file (which `benchmarks.md` links to) and take much longer; each point
//! is one of the suite's scenarios at one size. Their largest points hold 100,000 connections:
//! the bench raises its open-file limit to 250,000 for itself and the peers, which needs the
//! hard limit that high or `CAP_SYS_RESOURCE` (a point that cannot fit is recorded as failed,
//! with the reason).
//!
//! tongxun's peers serve on [`tongxun::runtime`], the others on tokio's default runtime, and the
//! load generator on `tongxun::runtime` too; `TONGXUN_BENCH_RUNTIME=tokio` or `=tongxun` puts
//! every peer on one of the two, to measure what the runtime alone changes.

mod client;
mod curve;
mod peers;
mod pin;
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
        #[command(flatten)]
        pin: PinArg,
    },
    /// Runs every scenario once with tiny sizes; exits non-zero on any loss or error.
    Smoke {
        /// Leaves out the Node peer even when it is installed.
        #[arg(long)]
        no_node: bool,
        /// Also writes the report here.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        pin: PinArg,
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
        #[command(flatten)]
        pin: PinArg,
    },
    /// Runs scale curves (each a scenario at several sizes, tongxun, bare socketioxide and
    /// Node side by side) and writes their report and plots.
    Curve {
        /// A curve to run (repeatable) [default: all].
        #[arg(long = "curve", value_enum)]
        curves: Vec<curve::Curve>,
        /// A peer to run (repeatable) [default: tongxun, bare, node].
        #[arg(long = "peer", value_enum)]
        peers: Vec<Peer>,
        /// Runs of every point.
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Sizes to use instead of each curve's own, comma-separated (for a short run).
        #[arg(long, value_delimiter = ',')]
        sizes: Vec<usize>,
        /// Where to write the report; the plots go to `images/` beside it.
        #[arg(long, default_value_os_t = default_curves_path())]
        out: PathBuf,
        /// A remark printed at the top of the report.
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        pin: PinArg,
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

/// `--pin`, for every command that measures.
#[derive(Debug, Args)]
struct PinArg {
    /// Runs every peer server on the first CPU and the load generator on the second (see
    /// `src/pin.rs`); fails on a machine with fewer than 2 CPUs.
    #[arg(long)]
    pin: bool,
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

fn default_curves_path() -> PathBuf {
    default_report_path().with_file_name("benchmarks-curves.md")
}

fn default_report_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/benchmarks.md"
    ))
}

/// Raises this process's open-file limit as far as allowed (children, the peers, inherit it);
/// returns the soft limit now in force. The scale curves hold 100,000 connections, a file
/// each on both sides: 250,000 leaves room, within the kernel's `fs.nr_open` (1,048,576 by
/// default).
pub(crate) fn raise_fd_limit() -> u64 {
    const WANTED: u64 = 250_000;
    let wanted = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|n| n.trim().parse::<u64>().ok())
        .map_or(WANTED, |max| WANTED.min(max));
    // Root may lift the hard limit too; anyone may lift the soft limit up to the hard one.
    if let Ok((soft, hard)) = rlimit::Resource::NOFILE.get()
        && hard < wanted
    {
        rlimit::Resource::NOFILE.set(soft, wanted).ok();
    }
    rlimit::increase_nofile_limit(wanted).unwrap_or(0)
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
        // The load generator serves a thousand connections as fairly as the servers it measures.
        command => pin_if_asked(&command)
            .and_then(|()| Ok(tongxun::runtime().build()?))
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

/// Pins this process with `--pin`, before its runtime exists (see `src/pin.rs`).
fn pin_if_asked(command: &Command) -> anyhow::Result<()> {
    pin::record_machine_cpus();
    let asked = match command {
        Command::Suite { pin, .. }
        | Command::Smoke { pin, .. }
        | Command::Run { pin, .. }
        | Command::Curve { pin, .. } => pin.pin,
        Command::Serve { .. } => false,
    };
    if asked {
        let pinning = pin::pin_bench()?;
        eprintln!(
            "pinned: servers on CPU {}, load generator on CPU {}",
            pinning.server_cpu, pinning.bench_cpu
        );
    }
    Ok(())
}

async fn bench(command: Command) -> anyhow::Result<()> {
    let limit = raise_fd_limit();
    match command {
        Command::Suite {
            out,
            note,
            selection,
            sizes,
            pin: _,
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
        Command::Smoke { no_node, out, .. } => {
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
            let mut failures = results.failures();
            // Every curve at two tiny sizes, and its report and plots drawn (not written).
            let curves = curve::CurvePlan {
                curves: Vec::new(),
                peers: peers
                    .iter()
                    .copied()
                    .filter(|p| curve::Curve::PEERS.contains(p))
                    .collect(),
                sizes: None,
                repeats: 1,
                base: curve::smoke_base_sizes(),
                smoke: true,
            }
            .run()
            .await;
            report::render_curves(&curves, None, "images");
            let plots =
                std::env::temp_dir().join(format!("tongxun-bench-smoke-{}", std::process::id()));
            report::write_curve_plots(&curves, &plots)?;
            std::fs::remove_dir_all(&plots).ok();
            failures.extend(curves.failures());
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
            pin: _,
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
        Command::Curve {
            curves,
            peers,
            repeats,
            sizes,
            out,
            note,
            pin: _,
        } => {
            if let Some(peer) = peers.iter().find(|p| !curve::Curve::PEERS.contains(p)) {
                anyhow::bail!(
                    "the curves compare tongxun, bare and node, not {}",
                    peer.key()
                );
            }
            let plan = curve::CurvePlan {
                curves,
                peers,
                sizes: (!sizes.is_empty()).then_some(sizes),
                repeats: repeats.max(1),
                base: curve::base_sizes(),
                smoke: false,
            };
            check_curve_limits(limit, plan.most_connections());
            let results = plan.run().await;
            let text = report::render_curves(&results, note.as_deref(), "images");
            if let Some(dir) = out.parent() {
                std::fs::create_dir_all(dir)?;
                report::write_curve_plots(&results, &dir.join("images"))?;
            }
            std::fs::write(&out, text)?;
            eprintln!("wrote {}", out.display());
            for failure in results.failures() {
                eprintln!("curve failure: {failure}");
            }
            Ok(())
        }
        Command::Serve { .. } => unreachable!("served without a runtime"),
    }
}

/// Warns when the open-file limit or the kernel's connection tracking table is too small for
/// `connections` connections (each one a file on both sides, and one tracked connection, which
/// stays tracked a while after it closes).
fn check_curve_limits(limit: u64, connections: usize) {
    let needed = connections as u64 + 256;
    if limit < needed {
        eprintln!(
            "warning: the open-file limit is {limit}, below the {needed} the curves need: raise the \
             hard limit (ulimit -Hn, or run with CAP_SYS_RESOURCE); the larger points will be \
             recorded as failed"
        );
    }
    let conntrack = std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_max")
        .ok()
        .and_then(|n| n.trim().parse::<u64>().ok());
    if let Some(max) = conntrack.filter(|&max| max < 3 * connections as u64) {
        eprintln!(
            "warning: net.netfilter.nf_conntrack_max is {max}: connections closed less than two \
             minutes ago still count against it, so running {} connections twice in a row may \
             fill it (the kernel then drops new connections; raise it with sysctl)",
            scenarios::thousands(connections)
        );
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
