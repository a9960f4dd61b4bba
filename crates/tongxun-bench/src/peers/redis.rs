//! The `redis-server` the two-node peer shares: Debian's (or whichever `redis-server` is on
//! `PATH`), started by the bench on a free loopback port without persistence, killed with the
//! peer.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Time `redis-server` gets to answer `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Ports tried: another process may take the free port found before `redis-server` binds it.
const ATTEMPTS: usize = 3;

/// The `redis-server` on `PATH`, if there is one.
pub(crate) fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
}

/// A running `redis-server`; killed when dropped.
#[derive(Debug)]
pub(crate) struct RedisServer {
    child: Child,
    addr: SocketAddr,
}

impl RedisServer {
    /// Starts one on a free loopback port and waits until it answers `PING`.
    pub(crate) fn start() -> Result<RedisServer> {
        let binary = binary().context("redis-server is not installed")?;
        let mut last = None;
        for _ in 0..ATTEMPTS {
            // redis-server cannot bind port 0 and say which port it got: find a free one first.
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let child = crate::pin::server_command(&binary)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .context("starting redis-server")?;
            let mut server = RedisServer {
                child,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
            };
            match server.wait_for_pong() {
                Ok(()) => return Ok(server),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("redis-server did not start")))
    }

    /// Polls with `PING` until `+PONG` comes back; fails early if the server exited (its port
    /// was taken meanwhile).
    fn wait_for_pong(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("redis-server on {} exited at start ({status})", self.addr);
            }
            if ping(self.addr).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("redis-server on {} did not answer PING in time", self.addr);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its URL, for `Config::redis_url`.
    pub(crate) fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Its process id, for its CPU time.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// One `PING` on a fresh connection.
fn ping(addr: SocketAddr) -> Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
    stream.set_read_timeout(Some(Duration::from_millis(500)))?;
    stream.write_all(b"*1\r\n$4\r\nPING\r\n")?;
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply)?;
    if &reply != b"+PONG\r\n" {
        bail!(
            "unexpected answer to PING: {:?}",
            String::from_utf8_lossy(&reply)
        );
    }
    Ok(())
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
