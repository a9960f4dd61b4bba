//! A throwaway `redis-server`, or Redis Cluster, for the multi-node tests (Debian's, installed
//! by `scripts/install-deps.sh`).

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
        cli(self.port, args)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// A throwaway Redis Cluster of three masters without replicas or persistence, on loopback
/// ports; every node is killed and its directory removed on drop.
pub struct RedisCluster {
    nodes: Vec<Child>,
    pub ports: Vec<u16>,
    dir: std::path::PathBuf,
}

/// How many masters a [`RedisCluster`] has.
const MASTERS: usize = 3;

/// Free ports for `n` cluster nodes: each node also listens on its port + 10000 (the cluster
/// bus), so both must be free. The OS picks the ports; they are released for redis-server.
fn free_cluster_ports(n: usize) -> Vec<u16> {
    let mut held = Vec::new();
    for _ in 0..1000 {
        if held.len() == n {
            break;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port > 55535 {
            continue;
        }
        let Ok(bus) = std::net::TcpListener::bind(("127.0.0.1", port + 10000)) else {
            continue;
        };
        held.push((port, listener, bus));
    }
    assert_eq!(held.len(), n, "free ports for the cluster");
    held.into_iter().map(|(port, ..)| port).collect()
}

impl RedisCluster {
    /// Starts the nodes, joins them into a cluster with `redis-cli --cluster create`, and
    /// returns once every node says `cluster_state:ok`.
    pub async fn start() -> Self {
        let ports = free_cluster_ports(MASTERS);
        let dir = std::env::temp_dir().join(format!(
            "tongxun-cluster-{}-{}",
            std::process::id(),
            ports[0]
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cluster = Self {
            nodes: Vec::new(),
            ports,
            dir,
        };
        cluster.spawn_nodes().await;
        let nodes: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let create = tokio::task::spawn_blocking(move || {
            Command::new("redis-cli")
                .args(["--cluster", "create"])
                .args(&nodes)
                .args(["--cluster-replicas", "0", "--cluster-yes"])
                .stdin(Stdio::null())
                .output()
                .expect("redis-cli runs")
        });
        let created = tokio::time::timeout(super::STEP, create)
            .await
            .expect("redis-cli --cluster create finishes in time")
            .unwrap();
        assert!(
            created.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        cluster.wait_until_ok().await;
        cluster
    }

    /// Kills every node (SIGKILL): the whole cluster is away.
    pub fn kill(&mut self) {
        for mut node in self.nodes.drain(..) {
            node.kill().ok();
            node.wait().ok();
        }
    }

    /// Starts the killed nodes again on their ports, with their cluster configuration files
    /// (so they are the same cluster, without the data); returns once it is ok.
    pub async fn restart(&mut self) {
        assert!(self.nodes.is_empty(), "kill the cluster first");
        self.spawn_nodes().await;
        self.wait_until_ok().await;
    }

    /// Starts one `redis-server` per port, in cluster mode, and waits until each accepts
    /// connections.
    async fn spawn_nodes(&mut self) {
        for (n, port) in self.ports.iter().enumerate() {
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .args(["--cluster-enabled", "yes"])
                .arg("--cluster-config-file")
                .arg(self.dir.join(format!("nodes-{n}.conf")))
                .arg("--dir")
                .arg(&self.dir)
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server is installed (the JS cluster tests need it too)");
            self.nodes.push(child);
        }
        for port in &self.ports {
            let up = tokio::time::timeout(super::STEP, async {
                while tokio::net::TcpStream::connect(("127.0.0.1", *port))
                    .await
                    .is_err()
                {
                    tokio::task::yield_now().await;
                }
            });
            up.await
                .expect("a cluster node accepts connections in time");
        }
    }

    /// Polls every node until each says `cluster_state:ok`: every slot is served.
    async fn wait_until_ok(&self) {
        let ok = tokio::time::timeout(super::STEP, async {
            let mut poll = tokio::time::interval(std::time::Duration::from_millis(50));
            loop {
                poll.tick().await;
                if self
                    .ports
                    .iter()
                    .all(|port| cli(*port, &["CLUSTER", "INFO"]).contains("cluster_state:ok"))
                {
                    return;
                }
            }
        });
        ok.await.expect("the cluster is ok in time");
    }

    /// The URL of one node, which tongxun finds the others through.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.ports[0])
    }

    /// Runs `redis-cli -c` (following redirections) against the cluster.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut all = vec!["-c"];
        all.extend_from_slice(args);
        cli(self.ports[0], &all)
    }

    /// Runs `redis-cli` against every master, in the order of [`ports`](Self::ports).
    pub fn cli_each(&self, args: &[&str]) -> Vec<String> {
        self.ports.iter().map(|port| cli(*port, args)).collect()
    }
}

/// Runs `redis-cli` against the Redis on `port`.
fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        self.kill();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}
