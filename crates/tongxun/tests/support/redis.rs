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

impl RedisCluster {
    /// The slot of `key` (or channel), and the master serving it, as an index of
    /// [`ports`](Self::ports).
    pub fn slot_of(&self, key: &str) -> (u16, usize) {
        let slot: u16 = self.cli(&["CLUSTER", "KEYSLOT", key]).parse().unwrap();
        (slot, self.master_of(slot))
    }

    /// The master serving `slot`, as an index of [`ports`](Self::ports).
    pub fn master_of(&self, slot: u16) -> usize {
        let ids = self.cli_each(&["CLUSTER", "MYID"]);
        let nodes = self.cli(&["CLUSTER", "NODES"]);
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            // Slot ranges from the ninth field on; `[...]` entries are slots being moved.
            let serves = fields.iter().skip(8).any(|range| {
                let (low, high) = range.split_once('-').unwrap_or((range, range));
                match (low.parse::<u16>(), high.parse::<u16>()) {
                    (Ok(low), Ok(high)) => (low..=high).contains(&slot),
                    _ => false,
                }
            });
            if serves {
                return ids.iter().position(|id| id == fields[0]).unwrap();
            }
        }
        panic!("no master serves slot {slot}:\n{nodes}");
    }

    /// Moves `slot`, which holds no key, to master `to` (an index of [`ports`](Self::ports)),
    /// as `redis-cli --cluster reshard` does: `CLUSTER SETSLOT` importing on the new master,
    /// migrating on the old one, then the new owner on every master.
    pub fn move_empty_slot(&self, slot: u16, to: usize) {
        let from = self.master_of(slot);
        let ids = self.cli_each(&["CLUSTER", "MYID"]);
        let slot = slot.to_string();
        let setslot = |on: usize, args: &[&str]| {
            let mut all = vec!["CLUSTER", "SETSLOT", &slot];
            all.extend_from_slice(args);
            assert_eq!(cli(self.ports[on], &all), "OK", "CLUSTER SETSLOT {args:?}");
        };
        setslot(to, &["IMPORTING", &ids[from]]);
        setslot(from, &["MIGRATING", &ids[to]]);
        // The old owner first drops it, then the new one and the third master learn.
        for on in [from, to, 3 - from - to] {
            setslot(on, &["NODE", &ids[to]]);
        }
    }

    /// Runs `redis-cli` against master `n` (an index of [`ports`](Self::ports)).
    pub fn cli_on(&self, n: usize, args: &[&str]) -> String {
        cli(self.ports[n], args)
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
