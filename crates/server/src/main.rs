//! `cohort`: a strongly consistent, Redis-compatible store.
//!
//! `cohort serve` runs one node: the sans-IO [`node`] crate driven by the
//! [`runtime`] shell (node task, disk thread, peer transport), with clients
//! served by [`connection`]. `cohort cluster up` starts a local cluster.

mod cli;
mod clients;
mod cluster;
mod cluster_protocol;
mod config;
mod connection;
mod handle;
mod info;
mod log;
mod runtime;
mod status;
mod transport;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::watch;

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let result = match arguments.first().map(String::as_str) {
        None | Some("serve") if arguments.iter().any(|a| a == "--help" || a == "-h") => {
            println!("{}", cli::USAGE);
            Ok(())
        }
        None | Some("serve") => {
            let flags = arguments.get(1..).unwrap_or_default();
            let environment: BTreeMap<String, String> = std::env::vars().collect();
            cli::load_config(flags, &environment).and_then(serve)
        }
        Some("cluster") if arguments.get(1).map(String::as_str) == Some("up") => {
            cluster::up(&arguments[2..])
        }
        Some("cluster") if arguments.get(1).map(String::as_str) == Some("status") => {
            status::status(&arguments[2..])
        }
        Some("version" | "--version") => {
            println!("cohort {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Some("help" | "--help" | "-h") => {
            println!("{}", cli::USAGE);
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!("unknown command {other}\n{}", cli::USAGE)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cohort: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: config::Config) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(serve_async(config))
}

async fn serve_async(config: config::Config) -> Result<()> {
    let config = Arc::new(config);
    let (shutdown_sender, shutdown) = watch::channel(false);
    let started = runtime::start(config.clone(), shutdown.clone()).await?;
    let client_address = format!("{}:{}", config.bind, config.port);
    let listener = tokio::net::TcpListener::bind(&client_address)
        .await
        .with_context(|| format!("listening for clients on {client_address}"))?;
    log!(
        "cohort node {} ready: clients on {}, peers on {}, data in {}, fsync {}",
        config.node_id,
        listener.local_addr()?,
        started.peer_address,
        config.data_dir.display(),
        config.fsync.name()
    );
    let shared = Arc::new(connection::Shared::new(config.clone(), started.handle.clone()));
    let clients = tokio::spawn(connection::serve_clients(shared, listener, shutdown.clone()));
    let mut node_task = started.task;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let outcome = tokio::select! {
        _ = tokio::signal::ctrl_c() => None,
        _ = terminate.recv() => None,
        result = &mut node_task => Some(result),
    };
    log!("shutting down");
    let _ = shutdown_sender.send(true);
    let _ = clients.await;
    let result = match outcome {
        Some(result) => result,
        None => node_task.await,
    };
    result.context("the node task panicked")?
}
