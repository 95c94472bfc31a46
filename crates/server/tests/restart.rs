//! Whole-cluster restarts and damaged logs, with real processes and real files: a restart after
//! SIGTERM or SIGKILL of every node loses nothing acknowledged; a torn final record (garbage or a
//! partial record appended after a SIGKILL) is truncated on recovery, which says so on stderr;
//! damage in the middle of the log stops startup with an error naming the file and offset.

mod common;

use std::time::Duration;

use common::{append_to_file, assert_all_present, Cluster, Writers};

/// Stops every node with `stop` while writers are running, restarts them all, and checks every
/// acknowledged write through every node.
fn full_restart_keeps_acknowledged_writes(name: &str, stop: impl Fn(&mut common::Node)) {
    let mut cluster = Cluster::start(name, 3, &[]);
    let writers = Writers::start(&cluster.ports(), 3, "w");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while writers.acknowledged() < 300 {
        assert!(std::time::Instant::now() < deadline, "writes too slow");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Every node stops while writes are in flight.
    for node in &mut cluster.nodes {
        stop(node);
    }
    let outcome = writers.stop();
    for node in &mut cluster.nodes {
        node.start();
    }
    for node in &mut cluster.nodes {
        node.wait_ready(Duration::from_secs(20));
    }
    cluster.wait_for_leader(Duration::from_secs(20));
    for node in &cluster.nodes {
        assert_all_present(node.port, &outcome.acks, &format!("node {} after restart", node.id));
    }
    cluster.wait_converged(Duration::from_secs(30));
}

#[test]
fn full_cluster_restart_after_sigterm_loses_nothing() {
    // Goal: a graceful stop of every node under load keeps every acknowledged write.
    full_restart_keeps_acknowledged_writes("restart-term", |node| {
        let status = node.terminate(Duration::from_secs(10));
        assert!(status.success(), "node {} exited with {status} after SIGTERM", node.id);
    });
}

#[test]
fn full_cluster_restart_after_sigkill_loses_nothing() {
    // Goal: killing every node under load (no chance to flush) keeps every acknowledged write.
    full_restart_keeps_acknowledged_writes("restart-kill", |node| node.kill());
}

#[test]
fn a_torn_tail_is_truncated_and_reported() {
    // Goal: garbage or a half-written record after the last complete one is cut off at startup,
    // the node says so, and every acknowledged write is still there (a single node, so the data
    // can only come from its own log).
    let mut cluster = Cluster::start("torn-tail", 1, &[]);
    let port = cluster.node(1).port;
    let mut acks = common::write_keys(port, "first-", 300);

    // Round one: bytes that cannot be a record.
    let node = cluster.node_mut(1);
    node.kill();
    let segment = node.newest_wal_file();
    append_to_file(&segment, &[0xA5; 37]);
    node.start();
    node.wait_ready(Duration::from_secs(20));
    cluster.wait_for_leader(Duration::from_secs(20));
    assert_eq!(torn_tail_reports(&cluster.node(1).log_text()), 1, "{}", cluster.node(1).log_text());
    assert_all_present(port, &acks, "after truncating garbage");

    // Round two: a record header promising more bytes than follow (a write cut short).
    acks.extend(common::write_keys(port, "second-", 200));
    let node = cluster.node_mut(1);
    node.kill();
    let segment = node.newest_wal_file();
    let mut partial = Vec::new();
    partial.extend(64u32.to_le_bytes()); // length of the body
    partial.extend(0x1234_5678u32.to_le_bytes()); // its checksum
    partial.extend([1u8; 20]); // the first 20 of the 64 body bytes
    append_to_file(&segment, &partial);
    node.start();
    node.wait_ready(Duration::from_secs(20));
    cluster.wait_for_leader(Duration::from_secs(20));
    let log = cluster.node(1).log_text();
    assert_eq!(torn_tail_reports(&log), 2, "{log}");
    assert_all_present(port, &acks, "after truncating a partial record");
    // The repaired log takes new writes and keeps them across another restart.
    let more = common::write_keys(port, "third-", 50);
    acks.extend(more);
    let node = cluster.node_mut(1);
    node.terminate(Duration::from_secs(10));
    node.start();
    node.wait_ready(Duration::from_secs(20));
    cluster.wait_for_leader(Duration::from_secs(20));
    assert_all_present(port, &acks, "after a clean restart of the repaired log");
    assert_eq!(torn_tail_reports(&cluster.node(1).log_text()), 2, "no new truncation expected");
}

fn torn_tail_reports(log: &str) -> usize {
    log.lines().filter(|line| line.contains("truncated a torn tail")).count()
}

#[test]
fn corruption_in_the_middle_of_the_log_stops_startup_loudly() {
    // Goal: a flipped byte well before the end of the log is not mistaken for a torn tail: the
    // node refuses to start, exits non-zero, and names the file and the offset.
    let mut cluster = Cluster::start("corrupt-middle", 1, &[]);
    let port = cluster.node(1).port;
    common::write_keys(port, "key-", 500);
    let node = cluster.node_mut(1);
    node.terminate(Duration::from_secs(10));
    let segment = node.newest_wal_file();
    let mut bytes = std::fs::read(&segment).expect("reading the segment");
    assert!(bytes.len() > 16 << 10, "segment unexpectedly small: {} bytes", bytes.len());
    let position = bytes.len() / 3;
    bytes[position] ^= 0x5A;
    std::fs::write(&segment, &bytes).expect("writing the damaged segment");

    node.start();
    let status = node.wait_exit(Duration::from_secs(20)).expect("startup must fail, not hang");
    assert!(!status.success(), "cohort started on a corrupt log");
    let log = node.log_text();
    let file_name = segment.file_name().and_then(|name| name.to_str()).expect("segment name");
    let line = log
        .lines()
        .find(|line| line.contains("corrupt") && line.contains(file_name))
        .unwrap_or_else(|| panic!("no error naming {file_name}:\n{log}"));
    let offset: u64 = line
        .split("at offset ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no offset in {line:?}"));
    // The damaged record starts at or before the flipped byte.
    assert!(offset <= position as u64, "offset {offset} is past the flipped byte {position}");
    // Records here are a few hundred bytes, so it starts close before it.
    assert!(position as u64 - offset < 4096, "offset {offset} far before byte {position}");
    assert!(!log.contains("truncated a torn tail"), "damage mistaken for a torn tail:\n{log}");
}
