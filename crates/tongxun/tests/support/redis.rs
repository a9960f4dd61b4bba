//! A throwaway `redis-server` for the multi-node tests (Debian's, installed by
//! `scripts/install-deps.sh`).

use std::process::{Child, Command, Stdio};

/// A free TCP port on 127.0.0.1: the OS picks it; redis-server cannot bind port 0 itself.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A throwaway `redis-server` without persistence, killed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    /// Starts one on a free port; returns once it accepts connections.
    pub async fn start() -> Self {
        Self::on(free_port()).await
    }

    /// Starts one on `port` (to restart a stopped one where its clients expect it).
    pub async fn on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (the JS cluster tests need it too)");
        let server = Self { child, port };
        let up = tokio::time::timeout(super::STEP, async {
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                tokio::task::yield_now().await;
            }
        });
        up.await.expect("redis-server accepts connections in time");
        server
    }

    /// The URL of this server.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs `redis-cli` against it.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
