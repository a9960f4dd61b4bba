//! The state nodes share (`tongxun::shared`) in Redis: one set of names, groups and logs across
//! two nodes; what a dead node held frees itself; a node writes back what it holds when Redis
//! lost its data.

mod support;

use std::time::Duration;

use support::redis::RedisServer;
use tongxun::shared::{Claim, Holder, NODE_LEASE, SharedError, SharedState};
use tongxun::{Config, Server};

/// A node on `redis` sharing `state`: built, so that its bus carries the state, not serving.
fn node(redis: &RedisServer, state: &SharedState) -> Server {
    let mut config = Config::default();
    config.redis_url = Some(redis.url());
    Server::builder()
        .config(config)
        .shared_state(state.clone())
        .build()
}

/// Calls `read` until it gives `Some`, within `bound` (a lease lapses, or a node writes back, on
/// its own clock).
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    bound: Duration,
    mut read: impl FnMut() -> F,
) -> T {
    tokio::time::timeout(bound, async {
        loop {
            if let Some(value) = read().await {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the shared state changed in time")
}

/// Two nodes on one Redis, with their states.
struct Cluster {
    redis: RedisServer,
    a: SharedState,
    b: SharedState,
    nodes: (Server, Server),
}

/// Two nodes where node A's socket `s1` holds the name `ada` and is in the group `general`.
async fn ada_on_a() -> Cluster {
    let redis = RedisServer::start().await;
    let (a, b) = (SharedState::new(), SharedState::new());
    let nodes = (node(&redis, &a), node(&redis, &b));
    // The first call may wait for the connection: tried until the bus is up.
    eventually(support::STEP, || async {
        a.names("nicks").claim("ada", "s1", "Ada").await.ok()
    })
    .await;
    a.groups("rooms").add("general", "s1", "Ada").await.unwrap();
    Cluster { redis, a, b, nodes }
}

#[tokio::test]
async fn two_nodes_see_one_set_of_names_groups_and_logs() {
    let redis = RedisServer::start().await;
    let (a, b) = (SharedState::new(), SharedState::new());
    let (_na, _nb) = (node(&redis, &a), node(&redis, &b));
    assert!(a.in_redis() && b.in_redis());
    // The first call may wait for the connection: retried until the bus is up.
    let claimed = eventually(support::STEP, || async {
        a.names("nicks").claim("ada", "s1", "Ada").await.ok()
    })
    .await;
    assert_eq!(claimed, Claim::Claimed);

    let held = eventually(support::STEP, || async {
        b.names("nicks").claim("ada", "s2", "ADA").await.ok()
    })
    .await;
    let ada = Holder {
        owner: "s1".into(),
        value: "Ada".into(),
    };
    assert_eq!(held, Claim::Held(ada.clone()));
    assert_eq!(b.names("nicks").holder("ada").await.unwrap(), Some(ada));
    // Claiming again is the owner's right, with a new value; releasing is the owner's only.
    assert_eq!(
        a.names("nicks").claim("ada", "s1", "Ada L.").await.unwrap(),
        Claim::Claimed
    );
    assert!(!b.names("nicks").release("ada", "s2").await.unwrap());
    assert!(a.names("nicks").release("ada", "s1").await.unwrap());
    assert_eq!(
        b.names("nicks").claim("ada", "s2", "ADA").await.unwrap(),
        Claim::Claimed
    );

    a.groups("rooms").add("general", "s1", "Ada").await.unwrap();
    b.groups("rooms")
        .add("general", "s2", "Grace")
        .await
        .unwrap();
    let mut members: Vec<String> = a
        .groups("rooms")
        .members("general")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.value)
        .collect();
    members.sort();
    assert_eq!(members, ["Ada", "Grace"]);
    assert!(b.groups("rooms").remove("general", "s1").await.unwrap());
    assert_eq!(b.groups("rooms").members("general").await.unwrap().len(), 1);

    let mut ids = Vec::new();
    for n in 0..6 {
        let log = if n % 2 == 0 { &a } else { &b }.log("history", 4);
        ids.push(log.append("general", &format!("m{n}")).await.unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let kept = b.log("history", 4).recent("general").await.unwrap();
    let kept: Vec<(u64, &str)> = kept.iter().map(|e| (e.id, e.data.as_str())).collect();
    assert_eq!(
        kept,
        [
            (ids[2], "m2"),
            (ids[3], "m3"),
            (ids[4], "m4"),
            (ids[5], "m5")
        ]
    );
    assert!(a.log("history", 4).next_id().await.unwrap() > ids[5]);
    a.log("history", 4).forget("general").await.unwrap();
    assert!(
        b.log("history", 4)
            .recent("general")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn what_a_dead_node_held_is_free_once_its_lease_lapses() {
    let Cluster {
        redis: _redis,
        a,
        b,
        nodes: (na, _nb),
    } = ada_on_a().await;
    assert!(b.names("nicks").holder("ada").await.unwrap().is_some());

    // Node A dies: nothing renews its lease any more.
    drop((na, a));
    let bound = NODE_LEASE + support::STEP;
    eventually(bound, || async {
        b.names("nicks")
            .holder("ada")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        b.groups("rooms")
            .members("general")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        b.names("nicks").claim("ada", "s2", "ADA").await.unwrap(),
        Claim::Claimed
    );
}

#[tokio::test]
async fn a_node_writes_back_what_it_holds_when_redis_lost_its_data() {
    let Cluster {
        redis,
        a,
        b,
        nodes: _nodes,
    } = ada_on_a().await;
    let before = a.log("history", 50).append("general", "hi").await.unwrap();

    assert_eq!(redis.cli(&["FLUSHALL"]), "OK");
    let back = eventually(support::STEP, || async {
        b.names("nicks").holder("ada").await.unwrap()
    })
    .await;
    assert_eq!(back.owner, "s1");
    let members = b.groups("rooms").members("general").await.unwrap();
    assert_eq!(members.len(), 1);
    // A log's ids go on increasing although its counter was lost.
    let after = b
        .log("history", 50)
        .append("general", "again")
        .await
        .unwrap();
    assert!(after > before, "{after} > {before}");
}

#[tokio::test]
async fn a_release_that_could_not_reach_redis_is_done_once_it_answers_again() {
    let Cluster {
        redis,
        a,
        b,
        nodes: _nodes,
    } = ada_on_a().await;

    // Redis keeps its data but answers nobody for a while: the calls miss their deadline.
    assert_eq!(redis.cli(&["CLIENT", "PAUSE", "1000", "ALL"]), "OK");
    let released = a.names("nicks").release("ada", "s1").await;
    assert!(
        matches!(released, Err(SharedError::Unreachable)),
        "{released:?}"
    );
    let removed = a.groups("rooms").remove("general", "s1").await;
    assert!(
        matches!(removed, Err(SharedError::Unreachable)),
        "{removed:?}"
    );

    // Node A's lease never lapsed; its renewal does what failed.
    eventually(support::STEP, || async {
        matches!(b.names("nicks").holder("ada").await, Ok(None)).then_some(())
    })
    .await;
    assert!(
        b.groups("rooms")
            .members("general")
            .await
            .unwrap()
            .is_empty()
    );
}
