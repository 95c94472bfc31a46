//! Leader failure under load: a 3-node cluster takes concurrent writes through every node, the
//! leader is killed with SIGKILL, writes resume under a new leader, the killed node is restarted
//! with its old arguments and data, and in the end every acknowledged write is readable through
//! every node and all replicas have applied the same entries (same `applied_index` and
//! `state_digest`).

mod common;

use std::time::{Duration, Instant};

use common::{assert_all_present, Client, Cluster, Reply, Writers};

/// Writer threads; two per node, so every node forwards writes to the leader.
const WRITERS: usize = 6;
/// Acknowledged writes after the kill that show the cluster is writable again.
const WRITES_AFTER_KILL_MIN: usize = 50;

#[test]
fn failover_keeps_every_acknowledged_write() {
    // Goal: killing the leader mid-load loses no acknowledged write and the replicas converge.
    let mut cluster = Cluster::start("failover", 3, &[]);
    let ports = cluster.ports();

    // A write acknowledged before the kill, through a follower, must survive it.
    let leader = cluster.wait_for_leader(Duration::from_secs(10));
    let follower = cluster.nodes.iter().find(|node| node.id != leader).expect("a follower");
    let mut client = follower.client();
    assert!(client.command(&["SET", "before-kill", "survives"]).unwrap().is_ok());
    drop(client);

    let writers = Writers::start(&ports, WRITERS, "c");
    wait_for_acknowledged(&writers, 200, Duration::from_secs(15));

    let leader = cluster.wait_for_leader(Duration::from_secs(10));
    let killed_at = Instant::now();
    cluster.node_mut(leader).kill();
    eprintln!("killed leader node {leader} (SIGKILL)");

    // Writes resume once the survivors elect a new leader.
    let acknowledged_at_kill = writers.acknowledged();
    wait_for_acknowledged(
        &writers,
        acknowledged_at_kill + WRITES_AFTER_KILL_MIN as u64 + WRITERS as u64,
        Duration::from_secs(20),
    );
    let new_leader = cluster.wait_for_leader(Duration::from_secs(10));
    assert_ne!(new_leader, leader, "the killed node cannot lead");

    let killed = cluster.node_mut(leader);
    killed.start();
    killed.wait_ready(Duration::from_secs(20));
    // The restarted node rejoins under load.
    let acknowledged_at_restart = writers.acknowledged();
    wait_for_acknowledged(&writers, acknowledged_at_restart + 200, Duration::from_secs(20));
    let outcome = writers.stop();

    let sent_after_kill: Vec<_> = outcome.acks.iter().filter(|ack| ack.sent > killed_at).collect();
    assert!(
        sent_after_kill.len() >= WRITES_AFTER_KILL_MIN,
        "only {} writes sent after the kill were acknowledged",
        sent_after_kill.len()
    );
    let first_after_kill =
        sent_after_kill.iter().map(|ack| ack.acknowledged).min().expect("writes after the kill");
    let unavailable = first_after_kill.duration_since(killed_at);
    let mut times: Vec<Instant> = outcome.acks.iter().map(|ack| ack.acknowledged).collect();
    times.sort();
    let longest_gap =
        times.windows(2).map(|pair| pair[1].duration_since(pair[0])).max().unwrap_or_default();
    eprintln!(
        "failover: first write sent after the kill acknowledged {unavailable:?} after it; \
         longest gap between acknowledgements {longest_gap:?}; {} acknowledged, {} uncertain",
        outcome.acks.len(),
        outcome.uncertain.len()
    );
    assert!(unavailable < Duration::from_secs(10), "writes resumed only after {unavailable:?}");

    let (applied, digest) = cluster.wait_converged(Duration::from_secs(30));
    eprintln!("converged at applied_index {applied}, state_digest {digest}");
    for node in &cluster.nodes {
        assert_all_present(node.port, &outcome.acks, &format!("node {}", node.id));
        let mut client = node.client();
        let value = client.command(&["GET", "before-kill"]).unwrap();
        assert_eq!(value, Reply::bulk("survives"), "node {}", node.id);
    }
    // Nothing beyond what was attempted appeared: keys are the acknowledged writes, some of the
    // uncertain ones, and the one written before the kill.
    let keys: usize = cluster.node(1).info("cohort").unwrap()["keys"].parse().unwrap();
    let attempted = outcome.acks.len() + outcome.uncertain.len() + 1;
    assert!(
        (outcome.acks.len() + 1..=attempted).contains(&keys),
        "{keys} keys, {} acknowledged, {attempted} attempted",
        outcome.acks.len()
    );
}

#[test]
fn a_follower_restart_catches_up() {
    // Goal: a follower killed and restarted while the others take writes catches up and
    // converges with them.
    let mut cluster = Cluster::start("follower-restart", 3, &[]);
    let leader = cluster.wait_for_leader(Duration::from_secs(10));
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    cluster.node_mut(follower).kill();
    let leader_port = cluster.node(leader).port;
    let acks = common::write_keys(leader_port, "while-down-", 300);
    let node = cluster.node_mut(follower);
    node.start();
    node.wait_ready(Duration::from_secs(20));
    cluster.wait_converged(Duration::from_secs(30));
    let port = cluster.node(follower).port;
    assert_all_present(port, &acks, "restarted follower");
    let mut client = Client::connect(port).unwrap();
    let role = cluster.node(follower).info("cohort").unwrap()["role"].clone();
    assert_eq!(role, "follower");
    assert!(client.command(&["SET", "after-restart", "1"]).unwrap().is_ok());
}

fn wait_for_acknowledged(writers: &Writers, target: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while writers.acknowledged() < target {
        assert!(
            Instant::now() < deadline,
            "only {} of {target} writes acknowledged within {timeout:?}",
            writers.acknowledged()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
