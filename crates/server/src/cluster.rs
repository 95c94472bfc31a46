//! `cohort cluster up`: a local cluster of separate processes for trying
//! things out.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

struct Layout {
    nodes: u64,
    port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    /// Shards; default: two per node, so each node leads about two and
    /// holds replicas of several.
    shards: Option<u64>,
    cluster_enabled: bool,
    extra: Vec<String>,
}

fn parse(arguments: &[String]) -> Result<Layout> {
    let mut layout = Layout {
        nodes: 3,
        port: 7001,
        peer_port: 17001,
        data_dir: PathBuf::from("./data/cluster"),
        shards: None,
        cluster_enabled: true,
        extra: Vec::new(),
    };
    let mut words = arguments.iter();
    while let Some(word) = words.next() {
        let mut value = || words.next().cloned().with_context(|| format!("{word} needs a value"));
        match word.as_str() {
            "--nodes" => layout.nodes = value()?.parse().context("--nodes")?,
            "--port" => layout.port = value()?.parse().context("--port")?,
            "--peer-port" => layout.peer_port = value()?.parse().context("--peer-port")?,
            "--data-dir" => layout.data_dir = PathBuf::from(value()?),
            "--shards" => layout.shards = Some(value()?.parse().context("--shards")?),
            "--cluster-enabled" => {
                layout.cluster_enabled = match value()?.to_ascii_lowercase().as_str() {
                    "yes" => true,
                    "no" => false,
                    _ => bail!("--cluster-enabled must be yes or no"),
                }
            }
            "--fsync" | "--requirepass" | "--tick-ms" | "--consensus" | "--replicas" => {
                let setting = value()?;
                layout.extra.extend([word.clone(), setting]);
            }
            other => bail!("unknown option {other} for cluster up"),
        }
    }
    if !(1..=9).contains(&layout.nodes) {
        bail!("--nodes must be between 1 and 9");
    }
    Ok(layout)
}

/// Starts the nodes, prints how to reach them, and stops them all (SIGTERM)
/// on Ctrl-C.
pub fn up(arguments: &[String]) -> Result<()> {
    let layout = parse(arguments)?;
    let executable = std::env::current_exe().context("finding the cohort executable")?;
    let members: Vec<String> = (1..=layout.nodes)
        .map(|id| format!("{id}=127.0.0.1:{}", layout.peer_port + id as u16 - 1))
        .collect();
    let initial_cluster = members.join(",");
    let shards = layout.shards.unwrap_or(2 * layout.nodes);
    let cluster_enabled = if layout.cluster_enabled { "yes" } else { "no" };
    let mut children: Vec<(u64, Child)> = Vec::new();
    for id in 1..=layout.nodes {
        let directory = layout.data_dir.join(format!("node-{id}"));
        std::fs::create_dir_all(&directory)
            .with_context(|| format!("creating {}", directory.display()))?;
        let log = std::fs::File::create(directory.join("cohort.log"))?;
        let child = Command::new(&executable)
            .arg("serve")
            .args(["--node-id", &id.to_string()])
            .args(["--port", &(layout.port + id as u16 - 1).to_string()])
            .args(["--peer-port", &(layout.peer_port + id as u16 - 1).to_string()])
            .args(["--data-dir", &directory.display().to_string()])
            .args(["--initial-cluster", &initial_cluster])
            .args(["--shards", &shards.to_string()])
            .args(["--cluster-enabled", cluster_enabled])
            .args(&layout.extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting node {id}"))?;
        children.push((id, child));
    }
    println!("cohort cluster of {} nodes and {shards} shards is starting:", layout.nodes);
    let client_flag = if layout.cluster_enabled { " -c" } else { "" };
    for id in 1..=layout.nodes {
        let port = layout.port + id as u16 - 1;
        let log = layout.data_dir.join(format!("node-{id}")).join("cohort.log");
        println!("  node {id}: redis-cli{client_flag} -p {port}    (log: {})", log.display());
    }
    if layout.cluster_enabled {
        println!("Redis Cluster mode: a node redirects (-MOVED) to the leader of a key's shard.");
    } else {
        println!("Any node accepts any command.");
    }
    println!("Press Ctrl-C to stop the cluster.");
    let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = interrupted.clone();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    // A node that dies (say, killed to watch a failover) is reported, and
    // the others keep running; Ctrl-C stops the cluster.
    let mut reported = std::collections::BTreeSet::new();
    while !interrupted.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
        for (id, child) in &mut children {
            if let Some(status) = child.try_wait()? {
                if reported.insert(*id) {
                    println!("node {id} exited ({status}); the others keep running");
                }
            }
        }
        if reported.len() == children.len() {
            break;
        }
    }
    for (_, child) in &mut children {
        // SIGTERM lets each node finish its writes and flush its log.
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    }
    for (id, child) in &mut children {
        if !reported.contains(id) {
            let status = child.wait()?;
            println!("node {id} stopped ({status})");
        }
    }
    Ok(())
}
