//! Redis Cluster protocol replies built from a [`ClusterView`]: `CLUSTER
//! SLOTS`, `SHARDS`, `NODES`, `INFO` and `MYID`, shaped as Redis 7 sends them so that cluster clients
//! (`redis-cli -c`, redis-py's `RedisCluster`, redis-rs) accept them. The
//! formats follow the Redis Cluster specification.
//!
//! The mapping from cohort's model to Redis's:
//!
//! - A cohort shard is one consensus group owning some slot ranges. Its
//!   leader is reported as the master of those slots (the first replica when
//!   no leader is known, so that every slot has a master) and its followers
//!   as the master's replicas.
//! - Redis gives a node a single role, while a cohort node may lead some
//!   shards and follow others. Clients keep one role per node (redis-py
//!   overwrites a node's role with the last one it reads, and sends
//!   DBSIZE, KEYS and SCAN to the nodes it thinks are masters), so every
//!   reply gives each node one role: a node leading at least one shard is a
//!   master, listed with the slots of every shard it leads and never as a
//!   replica; only the followers that lead nothing are listed as replicas
//!   (for `READONLY` reads). `NODES` makes any other node a replica of the
//!   leader of the first shard it holds.
//! - Redis node ids are 40 hex characters: cohort's numeric id, zero-padded.
//! - Nodes whose address is unknown are left out of `SLOTS` and `SHARDS`
//!   (clients could not connect to them), and a slot range whose master's
//!   address is unknown is left out of `SLOTS`. `NODES` lists them as
//!   `:0@0` with the `noaddr` flag, as Redis does.

use std::collections::BTreeSet;

use node::{ClusterView, ShardView};
use resp::Frame;

/// The number of hash slots.
const SLOT_COUNT: u32 = 16384;

/// Redis's cluster bus port is the client port plus this.
const BUS_PORT_OFFSET: u32 = 10000;

/// The 40-character lowercase hex Redis node id of a cohort node.
pub fn node_name(id: u64) -> String {
    format!("{id:040x}")
}

/// `host:port` → (host, port); the port is 0 when missing or malformed.
/// IPv6 hosts may be bracketed (`[::1]:6379`); the brackets are dropped, as
/// Redis reports IPv6 addresses bare.
pub fn split_address(addr: &str) -> (String, u16) {
    if let Some(rest) = addr.strip_prefix('[') {
        if let Some((host, tail)) = rest.split_once(']') {
            let port = tail.strip_prefix(':').and_then(|port| port.parse().ok()).unwrap_or(0);
            return (host.to_string(), port);
        }
    }
    match addr.rsplit_once(':') {
        // More than one colon and no brackets: a bare IPv6 address.
        Some((host, _)) if host.contains(':') => (addr.to_string(), 0),
        Some((host, port)) => (host.to_string(), port.parse().unwrap_or(0)),
        None => (addr.to_string(), 0),
    }
}

/// `CLUSTER SLOTS`: for each contiguous slot range of each shard, `[start,
/// end, master, replica …]`, each node as `[ip, port, id, {}]` (Redis 7
/// appends a map of extra endpoint metadata, empty here). Sorted by start.
pub fn slots(view: &ClusterView) -> Frame {
    let masters = masters(view);
    let mut entries: Vec<(u16, Frame)> = Vec::new();
    for shard in &view.shards {
        let Some(master) = master_of(shard) else { continue };
        let Some(master_entry) = slot_node(view, master) else { continue };
        let replicas: Vec<Frame> = shard
            .replicas
            .iter()
            .filter(|&&replica| !masters.contains(&replica))
            .filter_map(|&replica| slot_node(view, replica))
            .collect();
        for (start, end) in merged(shard.slots.iter().copied()) {
            let mut entry = vec![
                Frame::Integer(start.into()),
                Frame::Integer(end.into()),
                master_entry.clone(),
            ];
            entry.extend(replicas.iter().cloned());
            entries.push((start, Frame::Array(entry)));
        }
    }
    entries.sort_by_key(|(start, _)| *start);
    Frame::Array(entries.into_iter().map(|(_, entry)| entry).collect())
}

/// `CLUSTER SHARDS` (Redis 7): one map per shard with `slots` (a flat array
/// of start, end, …) and `nodes` (the master first, then the replicas).
/// Maps are RESP3 maps and flat arrays in RESP2. Shards are sorted by their
/// first slot, those without slots last.
pub fn shards(view: &ClusterView) -> Frame {
    let masters = masters(view);
    let mut ordered: Vec<&ShardView> = view.shards.iter().collect();
    // Shards without slots last.
    ordered.sort_by_key(|shard| {
        let first = shard.slots.iter().filter(|(start, end)| start <= end).map(|r| r.0).min();
        (first.is_none(), first, shard.group)
    });
    let reply = ordered
        .into_iter()
        .map(|shard| {
            let slots = merged(shard.slots.iter().copied())
                .into_iter()
                .flat_map(|(start, end)| [Frame::Integer(start.into()), Frame::Integer(end.into())])
                .collect();
            let master = master_of(shard);
            let members = master
                .into_iter()
                .chain(shard.replicas.iter().copied().filter(|replica| !masters.contains(replica)));
            let nodes = members.filter_map(|id| shard_node(view, id, Some(id) == master)).collect();
            Frame::Map(vec![
                (Frame::bulk("slots"), Frame::Array(slots)),
                (Frame::bulk("nodes"), Frame::Array(nodes)),
            ])
        })
        .collect();
    Frame::Array(reply)
}

/// `CLUSTER NODES`: one line per node, sorted by id:
/// `<id> <ip:port@cport> <flags> <master> <ping-sent> <pong-recv>
/// <config-epoch> <link-state> <slot> …`, each ending in `\n`.
pub fn nodes(view: &ClusterView) -> Frame {
    let mut text = String::new();
    for id in known_nodes(view) {
        let led: Vec<&ShardView> =
            view.shards.iter().filter(|shard| master_of(shard) == Some(id)).collect();
        let mut flags = Vec::new();
        if id == view.myself {
            flags.push("myself");
        }
        let master = if led.is_empty() {
            flags.push("slave");
            view.shards
                .iter()
                .find(|shard| shard.replicas.contains(&id))
                .and_then(master_of)
                .map_or_else(|| "-".to_string(), node_name)
        } else {
            flags.push("master");
            "-".to_string()
        };
        let address = match address_of(view, id) {
            Some((ip, port)) => {
                let bus = if port == 0 { 0 } else { u32::from(port) + BUS_PORT_OFFSET };
                format!("{ip}:{port}@{bus}")
            }
            None => {
                flags.push("noaddr");
                ":0@0".to_string()
            }
        };
        let link = if id == view.myself || address_of(view, id).is_some() {
            "connected"
        } else {
            "disconnected"
        };
        text.push_str(&format!(
            "{} {address} {} {master} 0 0 {} {link}",
            node_name(id),
            flags.join(","),
            view.epoch
        ));
        for (start, end) in merged(led.iter().flat_map(|shard| shard.slots.iter().copied())) {
            if start == end {
                text.push_str(&format!(" {start}"));
            } else {
                text.push_str(&format!(" {start}-{end}"));
            }
        }
        text.push('\n');
    }
    Frame::bulk(text)
}

/// `CLUSTER INFO`: `field:value` lines ending in `\r\n`. The cluster is `ok`
/// when every slot is assigned to a shard that has a master.
pub fn info(view: &ClusterView) -> Frame {
    let (mut assigned, mut ok, mut fail) = (0u32, 0u32, 0u32);
    let mut size = 0usize;
    for shard in &view.shards {
        let count: u32 = merged(shard.slots.iter().copied())
            .into_iter()
            .map(|(start, end)| u32::from(end) - u32::from(start) + 1)
            .sum();
        if count == 0 {
            continue;
        }
        size += 1;
        assigned += count;
        if master_of(shard).is_some() {
            ok += count;
        } else {
            fail += count;
        }
    }
    let state = if assigned == SLOT_COUNT && fail == 0 { "ok" } else { "fail" };
    let fields: [(&str, String); 13] = [
        ("cluster_enabled", u8::from(view.enabled).to_string()),
        ("cluster_state", state.to_string()),
        ("cluster_slots_assigned", assigned.to_string()),
        ("cluster_slots_ok", ok.to_string()),
        ("cluster_slots_pfail", "0".to_string()),
        ("cluster_slots_fail", fail.to_string()),
        ("cluster_known_nodes", known_nodes(view).len().to_string()),
        ("cluster_size", size.to_string()),
        ("cluster_current_epoch", view.epoch.to_string()),
        ("cluster_my_epoch", view.epoch.to_string()),
        ("cluster_stats_messages_sent", "0".to_string()),
        ("cluster_stats_messages_received", "0".to_string()),
        ("total_cluster_links_buffer_limit_exceeded", "0".to_string()),
    ];
    let text: String = fields.iter().map(|(name, value)| format!("{name}:{value}\r\n")).collect();
    Frame::bulk(text)
}

/// The nodes reported as masters: those leading at least one shard.
fn masters(view: &ClusterView) -> BTreeSet<u64> {
    view.shards.iter().filter_map(master_of).collect()
}

/// `CLUSTER MYID`.
pub fn myid(view: &ClusterView) -> Frame {
    Frame::bulk(node_name(view.myself))
}

/// The node reported as the shard's master: its leader, or its first replica
/// when no leader is known.
fn master_of(shard: &ShardView) -> Option<u64> {
    shard.leader.or_else(|| shard.replicas.first().copied())
}

/// A node's (ip, port), `None` when its address is unknown.
fn address_of(view: &ClusterView, id: u64) -> Option<(String, u16)> {
    view.nodes.get(&id).filter(|address| !address.is_empty()).map(|address| split_address(address))
}

/// Every node the view mentions, ascending.
fn known_nodes(view: &ClusterView) -> BTreeSet<u64> {
    let mut ids: BTreeSet<u64> = view.nodes.keys().copied().collect();
    for shard in &view.shards {
        ids.extend(shard.replicas.iter().copied());
        ids.extend(shard.leader);
    }
    ids
}

/// A node in a `CLUSTER SLOTS` entry: `[ip, port, id, {}]`.
fn slot_node(view: &ClusterView, id: u64) -> Option<Frame> {
    let (ip, port) = address_of(view, id)?;
    Some(Frame::Array(vec![
        Frame::bulk(ip),
        Frame::Integer(port.into()),
        Frame::bulk(node_name(id)),
        Frame::Map(Vec::new()),
    ]))
}

/// A node in a `CLUSTER SHARDS` entry, with Redis 7's fields in its order
/// (`port` is left out when unknown, as Redis does).
fn shard_node(view: &ClusterView, id: u64, master: bool) -> Option<Frame> {
    let (ip, port) = address_of(view, id)?;
    let mut fields = vec![(Frame::bulk("id"), Frame::bulk(node_name(id)))];
    if port != 0 {
        fields.push((Frame::bulk("port"), Frame::Integer(port.into())));
    }
    fields.extend([
        (Frame::bulk("ip"), Frame::bulk(ip.clone())),
        (Frame::bulk("endpoint"), Frame::bulk(ip)),
        (Frame::bulk("role"), Frame::bulk(if master { "master" } else { "replica" })),
        (Frame::bulk("replication-offset"), Frame::Integer(0)),
        (Frame::bulk("health"), Frame::bulk("online")),
    ]);
    Some(Frame::Map(fields))
}

/// Inclusive ranges sorted, with overlapping and adjacent ones joined.
fn merged(ranges: impl IntoIterator<Item = (u16, u16)>) -> Vec<(u16, u16)> {
    let mut ranges: Vec<(u16, u16)> =
        ranges.into_iter().filter(|(start, end)| start <= end).collect();
    ranges.sort_unstable();
    let mut out: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match out.last_mut() {
            Some(last) if u32::from(start) <= u32::from(last.1) + 1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bytes::BytesMut;
    use resp::Protocol;

    use super::*;

    const N1: &str = "0000000000000000000000000000000000000001";
    const N2: &str = "0000000000000000000000000000000000000002";
    const N3: &str = "0000000000000000000000000000000000000003";

    fn shard(group: u64, slots: &[(u16, u16)], leader: Option<u64>, replicas: &[u64]) -> ShardView {
        ShardView { group, slots: slots.to_vec(), leader, replicas: replicas.to_vec() }
    }

    /// Three nodes, node 3's address unknown; node 1 leads slots 0-8191,
    /// node 2 leads 8192-16383, node 3 leads nothing.
    fn two_shards() -> ClusterView {
        ClusterView {
            enabled: true,
            epoch: 7,
            myself: 1,
            nodes: BTreeMap::from([
                (1, "10.0.0.1:7001".to_string()),
                (2, "10.0.0.2:7002".to_string()),
                (3, String::new()),
            ]),
            shards: vec![
                shard(1, &[(0, 8191)], Some(1), &[1, 2, 3]),
                shard(2, &[(8192, 16383)], Some(2), &[1, 2, 3]),
            ],
        }
    }

    /// Shards owning disjoint ranges, a one-slot range, and a shard with no
    /// known leader whose fallback master (node 3) has no known address.
    fn split_ranges() -> ClusterView {
        ClusterView {
            shards: vec![
                shard(1, &[(0, 8191), (16383, 16383)], Some(1), &[1, 2]),
                shard(2, &[(8192, 9999), (12000, 16382)], Some(2), &[2, 1]),
                shard(3, &[(10000, 11999)], None, &[3, 2]),
            ],
            ..two_shards()
        }
    }

    fn node(ip: &str, port: i64, name: &str) -> Frame {
        Frame::Array(vec![
            Frame::bulk(ip.to_string()),
            Frame::Integer(port),
            Frame::bulk(name.to_string()),
            Frame::Map(Vec::new()),
        ])
    }

    fn range(start: i64, end: i64, nodes: Vec<Frame>) -> Frame {
        let mut entry = vec![Frame::Integer(start), Frame::Integer(end)];
        entry.extend(nodes);
        Frame::Array(entry)
    }

    fn text(frame: Frame) -> String {
        match frame {
            Frame::Bulk(bytes) => String::from_utf8(bytes.to_vec()).unwrap(),
            other => panic!("not a bulk string: {other:?}"),
        }
    }

    fn resp2(frame: &Frame) -> String {
        let mut out = BytesMut::new();
        resp::encode(frame, Protocol::Resp2, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn names_and_addresses() {
        assert_eq!(node_name(1), N1);
        assert_eq!(node_name(u64::MAX), "000000000000000000000000ffffffffffffffff");
        assert_eq!(split_address("10.0.0.1:7001"), ("10.0.0.1".to_string(), 7001));
        assert_eq!(split_address("host"), ("host".to_string(), 0));
        assert_eq!(split_address("host:x"), ("host".to_string(), 0));
        assert_eq!(split_address("host:70000"), ("host".to_string(), 0));
        assert_eq!(split_address("[::1]:6379"), ("::1".to_string(), 6379));
        assert_eq!(split_address("::1"), ("::1".to_string(), 0));
        assert_eq!(split_address(""), (String::new(), 0));
    }

    #[test]
    fn slots_lists_masters_then_replicas_with_known_addresses() {
        let n1 = || node("10.0.0.1", 7001, N1);
        let n2 = || node("10.0.0.2", 7002, N2);
        // Nodes 1 and 2 each lead a shard: neither is listed as the other's
        // replica (clients keep one role per node).
        assert_eq!(
            slots(&two_shards()),
            Frame::Array(vec![range(0, 8191, vec![n1()]), range(8192, 16383, vec![n2()])])
        );
        // Sorted by start across shards; node 3's range has no reachable
        // master and is left out.
        assert_eq!(
            slots(&split_ranges()),
            Frame::Array(vec![
                range(0, 8191, vec![n1()]),
                range(8192, 9999, vec![n2()]),
                range(12000, 16382, vec![n2()]),
                range(16383, 16383, vec![n1()]),
            ])
        );
        assert!(resp2(&slots(&two_shards())).starts_with(
            "*2\r\n*3\r\n:0\r\n:8191\r\n*4\r\n$8\r\n10.0.0.1\r\n:7001\r\n$40\r\n\
             0000000000000000000000000000000000000001\r\n*0\r\n"
        ));
        // A follower that leads nothing is every one of its shards' replica.
        let mut view = two_shards();
        view.nodes.insert(4, "10.0.0.4:7004".to_string());
        for shard in &mut view.shards {
            shard.replicas.push(4);
        }
        let n4 = || node("10.0.0.4", 7004, "0000000000000000000000000000000000000004");
        assert_eq!(
            slots(&view),
            Frame::Array(vec![
                range(0, 8191, vec![n1(), n4()]),
                range(8192, 16383, vec![n2(), n4()])
            ])
        );
    }

    #[test]
    fn shards_are_maps_of_slots_and_nodes() {
        let entry = |id: &str, port: i64, ip: &str, role: &str| {
            Frame::Map(vec![
                (Frame::bulk("id"), Frame::bulk(id.to_string())),
                (Frame::bulk("port"), Frame::Integer(port)),
                (Frame::bulk("ip"), Frame::bulk(ip.to_string())),
                (Frame::bulk("endpoint"), Frame::bulk(ip.to_string())),
                (Frame::bulk("role"), Frame::bulk(role.to_string())),
                (Frame::bulk("replication-offset"), Frame::Integer(0)),
                (Frame::bulk("health"), Frame::bulk("online")),
            ])
        };
        let shard = |slots: &[i64], nodes: Vec<Frame>| {
            Frame::Map(vec![
                (
                    Frame::bulk("slots"),
                    Frame::Array(slots.iter().map(|&s| Frame::Integer(s)).collect()),
                ),
                (Frame::bulk("nodes"), Frame::Array(nodes)),
            ])
        };
        let reply = shards(&split_ranges());
        assert_eq!(
            reply,
            Frame::Array(vec![
                shard(&[0, 8191, 16383, 16383], vec![entry(N1, 7001, "10.0.0.1", "master")]),
                shard(&[8192, 9999, 12000, 16382], vec![entry(N2, 7002, "10.0.0.2", "master")]),
                // The master's address is unknown, and node 2 leads another
                // shard: nobody is listed.
                shard(&[10000, 11999], Vec::new()),
            ])
        );
        // RESP2 flattens the maps.
        assert!(resp2(&reply).starts_with(
            "*3\r\n*4\r\n$5\r\nslots\r\n*4\r\n:0\r\n:8191\r\n:16383\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n*14\r\n$2\r\nid\r\n"
        ));
    }

    #[test]
    fn nodes_gives_each_node_one_role() {
        assert_eq!(
            text(nodes(&two_shards())),
            format!(
                "{N1} 10.0.0.1:7001@17001 myself,master - 0 0 7 connected 0-8191\n\
                 {N2} 10.0.0.2:7002@17002 master - 0 0 7 connected 8192-16383\n\
                 {N3} :0@0 slave,noaddr {N1} 0 0 7 disconnected\n"
            )
        );
        let view = ClusterView { myself: 2, ..split_ranges() };
        assert_eq!(
            text(nodes(&view)),
            format!(
                "{N1} 10.0.0.1:7001@17001 master - 0 0 7 connected 0-8191 16383\n\
                 {N2} 10.0.0.2:7002@17002 myself,master - 0 0 7 connected 8192-9999 12000-16382\n\
                 {N3} :0@0 master,noaddr - 0 0 7 disconnected 10000-11999\n"
            )
        );
        // A node leading nothing and holding no replica has no master.
        let mut view = two_shards();
        view.nodes.insert(4, "10.0.0.4:7004".to_string());
        assert!(text(nodes(&view))
            .ends_with("0000000000000000000000000000000000000004 10.0.0.4:7004@17004 slave - 0 0 7 connected\n"));
    }

    #[test]
    fn info_reports_state_and_counts() {
        let expected = |state: &str, ok: u32, fail: u32| {
            format!(
                "cluster_enabled:1\r\ncluster_state:{state}\r\ncluster_slots_assigned:16384\r\n\
                 cluster_slots_ok:{ok}\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:{fail}\r\n\
                 cluster_known_nodes:3\r\ncluster_size:3\r\ncluster_current_epoch:7\r\n\
                 cluster_my_epoch:7\r\ncluster_stats_messages_sent:0\r\n\
                 cluster_stats_messages_received:0\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n"
            )
        };
        assert_eq!(text(info(&split_ranges())), expected("ok", 16384, 0));
        assert!(text(info(&two_shards())).contains("\r\ncluster_size:2\r\n"));
        let mut view = split_ranges();
        view.shards[2].replicas.clear();
        assert_eq!(text(info(&view)), expected("fail", 14384, 2000));
    }

    #[test]
    fn myid() {
        assert_eq!(super::myid(&two_shards()), Frame::bulk(N1));
    }
}
