//! `gongjian run`: the daemon. Opens the store, starts the network and
//! sync, logs as it goes, and shuts down cleanly on SIGTERM or SIGINT.

use std::time::Duration;

use anyhow::Context;
use gongjian_net::{NetConfig, Node};

use crate::DirArg;
use crate::config::{Config, DataDir};
use crate::exit::{Coded, Exit};

fn net_config(config: &Config) -> anyhow::Result<NetConfig> {
    let parse = |v: &[String]| -> anyhow::Result<Vec<multiaddr::Multiaddr>> {
        v.iter()
            .map(|a| {
                a.parse()
                    .with_context(|| format!("`{a}` is not a multiaddr"))
            })
            .collect()
    };
    Ok(NetConfig {
        listen: parse(&config.listen)?,
        bootstrap: parse(&config.bootstrap)?,
        mdns: config.mdns.unwrap_or(true),
        resync: Duration::from_secs(config.resync_secs.unwrap_or(60)),
        ..NetConfig::default()
    })
}

pub fn run(a: DirArg) -> anyhow::Result<()> {
    let dir = DataDir(a.data_dir);
    let (config, _) = dir.load_config()?;
    let opened = crate::node::open(&dir)?;
    let secret = dir.secret()?;
    let cfg = net_config(&config).code(Exit::BadInput)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
        .code(Exit::Failure)?;
    rt.block_on(async move {
        let unit = opened.checked.unit;
        let node = Node::start(opened.replica, &secret, unit, cfg)
            .await
            .context("starting the network")
            .code(Exit::Failure)?;
        let addrs = node.listen_addrs().await;
        tracing::info!(
            %unit,
            name = %config.name,
            peer_id = %node.peer_id(),
            listen = ?addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "node running"
        );
        // One line on stdout for scripts: where the node listens.
        println!(
            "{}",
            serde_json::json!({
                "unit": unit.to_string(),
                "peer_id": node.peer_id().to_string(),
                "listen": addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        );
        shutdown_signal().await;
        tracing::info!("shutting down");
        let replica = node
            .shutdown()
            .await
            .context("stopping")
            .code(Exit::Failure)?;
        tokio::task::spawn_blocking(move || drop(replica))
            .await
            .context("closing the store")
            .code(Exit::Failure)?;
        tracing::info!("stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
