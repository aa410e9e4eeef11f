//! `gongjian run`: the daemon. Opens the store, starts the network and
//! sync, logs as it goes, and shuts down cleanly on SIGTERM or SIGINT.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use gongjian_net::{NetConfig, Node};
use gongjian_view::{PendingRows, View};

use crate::api::{self, Api, Me};
use crate::backend::Backend;

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
        scrub_per_second: config.scrub_docs_per_second.unwrap_or(8) as usize,
        settle_per_second: config.settle_changes_per_second.unwrap_or(4096) as usize,
        ..NetConfig::default()
    })
}

pub fn run(a: DirArg) -> anyhow::Result<()> {
    let dir = DataDir(a.data_dir);
    let (config, _) = dir.load_config()?;
    let opened = crate::node::open(&dir)?;
    // This process holds the store now: an address left by a daemon that
    // was killed points nowhere (or at someone else).
    let addr_file = dir.api_addr();
    match std::fs::remove_file(&addr_file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("removing the stale {}", addr_file.display())))
            .code(Exit::DataDir);
        }
    }
    let secret = dir.secret()?;
    let cfg = net_config(&config).code(Exit::BadInput)?;
    for addr in &cfg.bootstrap {
        if addr
            .iter()
            .any(|p| matches!(p, multiaddr::Protocol::QuicV1))
        {
            // libp2p-quic validates no source address (no Retry), so all
            // QUIC handshakes share one budget a spoofed flood can fill
            // (PROTOCOL.md §9); a TCP dial keeps its own host's share.
            tracing::warn!(
                %addr,
                "bootstrap address is QUIC: under a flood of spoofed QUIC handshakes at that peer this dial waits; a TCP address does not"
            );
        }
    }
    let api_addr: std::net::SocketAddr = config
        .api
        .parse()
        .with_context(|| format!("api: `{}` is not HOST:PORT", config.api))
        .code(Exit::BadInput)?;
    let token = std::fs::read_to_string(dir.api_token())
        .with_context(|| format!("reading {}", dir.api_token().display()))
        .code(Exit::DataDir)?
        .trim()
        .to_owned();
    if token.len() < 32 {
        return crate::exit::bail(
            Exit::BadInput,
            format!("{}: the token is too short", dir.api_token().display()),
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
        .code(Exit::Failure)?;
    rt.block_on(async move {
        let unit = opened.checked.unit;
        let me = Me {
            unit,
            kind: opened.checked.kind,
            name: config.name.clone(),
            key: secret.public(),
        };
        let me_key = me.key;
        let keeps_view = config.view.unwrap_or(true);
        let mut replica = opened.replica;
        // Without a view nothing reads the documents: ingest stores what
        // rules 1-7 accept, and rule 8 runs when idle (settling).
        replica.defer_application(!keeps_view);
        let node = Node::start(replica, &secret, unit, cfg)
            .await
            .context("starting the network")
            .code(Exit::Failure)?;
        // The view is built on the sync thread, and the observer installed
        // in the same step: no change slips in between.
        let view = Arc::new(RwLock::new(View::default()));
        let v = view.clone();
        let started = std::time::Instant::now();
        node.call(move |a| {
            if !keeps_view {
                return;
            }
            let built = View::build(a.replica());
            *v.write().expect("view lock") = built;
            // Rows are taken from each document as ingest builds it, and
            // folded in once the ingest is stored (those records re-judged
            // too); the others that moved are read again from the store.
            let pending = PendingRows::default();
            a.replica().on_built(pending.hook());
            a.set_observer(Box::new(move |r, docs, grew| {
                let mut view = v.write().expect("view lock");
                let folded = pending.fold_into(&mut view, r);
                if grew {
                    view.records_changed(r);
                }
                for d in docs.iter().filter(|d| !folded.contains(*d)) {
                    view.refresh(r, d);
                }
            }));
        })
        .await
        .context("building the view")
        .code(Exit::Failure)?;
        if keeps_view {
            let (items, acts) = view.read().expect("view lock").len();
            tracing::info!(
                items,
                acts,
                ms = started.elapsed().as_millis() as u64,
                "view built"
            );
        } else {
            tracing::info!(
                "no merged view kept (view = false): received changes are stored and applied to automerge when idle"
            );
        }
        let listener = tokio::net::TcpListener::bind(api_addr)
            .await
            .with_context(|| format!("binding the API to {api_addr}"))
            .code(Exit::Failure)?;
        let api_bound = listener
            .local_addr()
            .context("API address")
            .code(Exit::Failure)?;
        let node = Arc::new(node);
        let ready = Arc::new(AtomicBool::new(true));
        let app = api::router(Api {
            backend: Backend::Net(node.clone()),
            data_dir: Arc::new(dir.0.clone()),
            view,
            keeps_view,
            token: Arc::new(token),
            me: Arc::new(me),
            accounts: Arc::new(
                crate::accounts::Accounts::open(&dir.accounts())
                    .context("opening the accounts")
                    .code(Exit::DataDir)?,
            ),
            ready: ready.clone(),
        });
        let addrs = node.listen_addrs().await;
        // Where commands find the API while the daemon holds the store
        // (written whole: a temporary file renamed over).
        let tmp = dir.0.join(".api.addr.tmp");
        std::fs::write(&tmp, format!("{api_bound}\n"))
            .and_then(|()| std::fs::rename(&tmp, &addr_file))
            .with_context(|| format!("writing {}", addr_file.display()))
            .code(Exit::DataDir)?;
        tracing::info!(
            %unit,
            name = %config.name,
            peer_id = %node.peer_id(),
            listen = ?addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            api = %api_bound,
            "node running"
        );
        // Certificate expiry in the log: at start, then every six hours.
        // (It holds the node: stopped before the node is shut down.)
        let cert_task = {
            let backend = Backend::Net(node.clone());
            let key = me_key;
            tokio::spawn(async move {
                let mut every = tokio::time::interval(std::time::Duration::from_secs(6 * 3600));
                loop {
                    every.tick().await;
                    let Ok(cert) = backend
                        .read(move |r| api::certificate(r.trust(), &key, crate::node::now()))
                        .await
                    else {
                        break;
                    };
                    log_certificate(&cert);
                }
            })
        };
        // One line on stdout for scripts: where the node listens.
        println!(
            "{}",
            serde_json::json!({
                "unit": unit.to_string(),
                "peer_id": node.peer_id().to_string(),
                "listen": addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "api": api_bound.to_string(),
            })
        );
        let server = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            ready.store(false, Ordering::Release);
            tracing::info!("shutting down");
        });
        server
            .await
            .context("serving the API")
            .code(Exit::Failure)?;
        cert_task.abort();
        let _ = cert_task.await;
        let node = Arc::try_unwrap(node)
            .map_err(|_| anyhow::anyhow!("the API still holds the node"))
            .code(Exit::Failure)?;
        let replica = node
            .shutdown()
            .await
            .context("stopping")
            .code(Exit::Failure)?;
        tokio::task::spawn_blocking(move || drop(replica))
            .await
            .context("closing the store")
            .code(Exit::Failure)?;
        let _ = std::fs::remove_file(&addr_file);
        tracing::info!("stopped");
        Ok(())
    })
}

/// One log line about this node's certificate when it needs attention:
/// a warning while it expires within `CERT_WARN_DAYS`, an error once it is
/// no longer valid (the node cannot admit peers or write then).
fn log_certificate(cert: &serde_json::Value) {
    match cert["state"].as_str() {
        Some("valid") => {}
        Some("expiring") => tracing::warn!(
            days_left = cert["days_left"].as_u64().unwrap_or(0),
            expires_at = cert["expires_at"].as_u64().unwrap_or(0),
            "certificate expires soon: ask the parent unit for a renewal (gongjian cert renew)"
        ),
        _ => tracing::error!(
            why = %cert["why"].as_str().unwrap_or("unknown"),
            "certificate not valid: this node cannot write or admit peers until it is renewed"
        ),
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
