//! `cohort cluster status`: the cluster as its nodes report it — nodes,
//! shards, leaders, replica lag — read with `INFO cohort` from one node and
//! then from every node it knows.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::BytesMut;
use resp::{Frame, Limits};

const TIMEOUT: Duration = Duration::from_secs(2);

/// One node's `INFO cohort`, as field → value.
type Fields = BTreeMap<String, String>;

fn parse(arguments: &[String]) -> Result<String> {
    let (mut host, mut port) = ("127.0.0.1".to_string(), 7001u16);
    let mut words = arguments.iter();
    while let Some(word) = words.next() {
        let mut value = || words.next().cloned().with_context(|| format!("{word} needs a value"));
        match word.as_str() {
            "--host" => host = value()?,
            "--port" => port = value()?.parse().context("--port")?,
            other => bail!("unknown option {other} for cluster status"),
        }
    }
    Ok(format!("{host}:{port}"))
}

/// Sends `INFO cohort` and returns its fields.
fn info(address: &str) -> Result<Fields> {
    let socket = address.parse().with_context(|| format!("address {address}"))?;
    let mut stream = TcpStream::connect_timeout(&socket, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\ncohort\r\n")?;
    let mut buffer = BytesMut::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(frame) = resp::decode_frame(&mut buffer, &Limits::default())
            .map_err(|error| anyhow!("malformed reply from {address}: {error:?}"))?
        {
            let text = match frame {
                Frame::Bulk(text) | Frame::Verbatim { text, .. } => text,
                Frame::Error(error) => bail!("{address}: {error}"),
                other => bail!("{address}: unexpected reply {other:?}"),
            };
            let text = String::from_utf8_lossy(&text).into_owned();
            let fields = text
                .lines()
                .filter_map(|line| line.split_once(':'))
                .map(|(field, value)| (field.to_string(), value.to_string()))
                .collect();
            return Ok(fields);
        }
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            bail!("{address} closed the connection");
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

/// `key=value,key=value` → map.
fn pairs(text: &str) -> BTreeMap<&str, &str> {
    text.split(',').filter_map(|pair| pair.split_once('=')).collect()
}

pub fn status(arguments: &[String]) -> Result<()> {
    let address = parse(arguments)?;
    let first = info(&address).with_context(|| format!("asking {address}"))?;
    let nodes: Vec<(u64, String)> = first
        .get("cluster_nodes")
        .map(|list| {
            pairs(list)
                .into_iter()
                .filter_map(|(id, address)| Some((id.parse().ok()?, address.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let mut reports: BTreeMap<u64, Result<Fields>> = BTreeMap::new();
    for (id, address) in &nodes {
        let report =
            if address.is_empty() { Err(anyhow!("address unknown")) } else { info(address) };
        reports.insert(*id, report);
    }
    print!("{}", render(&nodes, &reports));
    Ok(())
}

/// The report, from every node's fields (or the error reaching it).
fn render(nodes: &[(u64, String)], reports: &BTreeMap<u64, Result<Fields>>) -> String {
    let mut out = String::new();
    // group → (node → that node's shard line).
    let mut groups: BTreeMap<u64, BTreeMap<u64, BTreeMap<String, String>>> = BTreeMap::new();
    let up = reports.values().filter(|report| report.is_ok()).count();
    out.push_str(&format!("nodes: {} known, {up} reachable\n", nodes.len()));
    for (id, address) in nodes {
        match &reports[id] {
            Ok(fields) => {
                let mut led = 0;
                let mut held = 0;
                let mut asleep = 0;
                for (field, value) in fields {
                    let Some(group) = field.strip_prefix("shard_") else { continue };
                    let Ok(group) = group.parse::<u64>() else { continue };
                    let line: BTreeMap<String, String> = pairs(value)
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    held += 1;
                    led += usize::from(line.get("role").is_some_and(|role| role == "leader"));
                    asleep += usize::from(line.get("hibernating").is_some_and(|h| h == "1"));
                    groups.entry(group).or_default().insert(*id, line);
                }
                out.push_str(&format!(
                    "  node {id:<3} {address:<22} up    leads {led:>3}, holds {held:>3} replicas \
                     ({asleep} idle), log {} bytes\n",
                    fields.get("log_bytes").map_or("?", String::as_str)
                ));
            }
            Err(error) => out.push_str(&format!("  node {id:<3} {address:<22} DOWN  ({error})\n")),
        }
    }
    if groups.is_empty() {
        out.push_str("shards: 1 (unsharded: one group replicated on every node)\n");
        return out;
    }
    out.push_str(&format!("shards: {}\n", groups.len()));
    for (group, replicas) in &groups {
        let leader = replicas
            .iter()
            .find(|(_, line)| line.get("role").is_some_and(|role| role == "leader"))
            .map(|(node, _)| *node);
        let commit = |line: &BTreeMap<String, String>| {
            line.get("commit").and_then(|c| c.parse::<u64>().ok()).unwrap_or(0)
        };
        let leader_commit = leader.map_or(0, |leader| commit(&replicas[&leader]));
        let any = replicas.values().next().expect("a replica");
        let lag: Vec<String> = replicas
            .iter()
            .filter(|(node, _)| Some(**node) != leader)
            .map(|(node, line)| {
                let applied = line.get("applied").and_then(|a| a.parse::<u64>().ok()).unwrap_or(0);
                format!("n{node} {}", leader_commit.saturating_sub(applied))
            })
            .collect();
        out.push_str(&format!(
            "  shard {group:<4} slots {:>5}  leader {:<5} term {:<4} commit {:<8} keys {:<8} \
             lag [{}]\n",
            any.get("slots").map_or("?", String::as_str),
            leader.map_or("none".to_string(), |leader| format!("n{leader}")),
            leader.map_or("?", |leader| {
                replicas[&leader].get("term").map_or("?", String::as_str)
            }),
            leader_commit,
            leader.map_or("?", |leader| replicas[&leader].get("keys").map_or("?", String::as_str)),
            lag.join(", ")
        ));
    }
    out.push_str(
        "moves in progress: none (replica sets and slots are fixed when the cluster is created)\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(lines: &[(&str, &str)]) -> Fields {
        lines.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_report_names_leaders_lag_and_down_nodes() {
        let nodes = vec![(1, "127.0.0.1:7001".to_string()), (2, "127.0.0.1:7002".to_string())];
        let mut reports = BTreeMap::new();
        reports.insert(
            1,
            Ok(fields(&[
                ("log_bytes", "100"),
                (
                    "shard_1",
                    "role=leader,leader=1,term=2,commit=9,applied=9,last=9,keys=4,slots=8192,\
                     replicas=1/2,hibernating=1",
                ),
            ])),
        );
        reports.insert(2, Err(anyhow!("connection refused")));
        let text = render(&nodes, &reports);
        assert!(text.starts_with("nodes: 2 known, 1 reachable\n"), "{text}");
        assert!(text.contains("leads   1, holds   1 replicas (1 idle)"), "{text}");
        assert!(text.contains("node 2   127.0.0.1:7002         DOWN  (connection refused)"));
        assert!(text.contains("shard 1    slots  8192  leader n1"), "{text}");
    }
}
