//! The node's network. Peers connect over libp2p (TCP or QUIC, noise,
//! yamux); each side's first frame is a hello with the certificates that
//! admit its key (PeerId = that key) under the pinned root; then one sync
//! session per connection, opened by the dialler, carries the sans-IO
//! protocol of `gongjian-sync` in length-prefixed frames.
//!
//! Must never: serve a byte to a peer before its certificate chain
//! admitted it; allocate a frame before checking its announced length;
//! let one peer's backlog grow without bound; touch the store outside the
//! actor thread.

mod actor;
pub mod frame;
pub mod hello;
mod per_ip;
pub mod status;
mod swarm;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gongjian_engine::Replica;
use gongjian_identity::{DocId, Secret, UnitId};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

pub use actor::{Actor, MAX_QUEUED_BYTES, MAX_STREAMS_PER_PEER, Observer, set_log_place};
pub use status::{NetStatus, PeerStatus, ScrubStatus, ViewLag};

use crate::actor::{Event, Timing};
use crate::swarm::{SwarmCmd, SwarmTask};

/// Unix seconds: the node's one clock. `GONGJIAN_FAKE_NOW` overrides it
/// (tests of expiry, drills); the clock only decides certificate validity at
/// admission and local writes, never what is accepted.
pub fn now_secs() -> u64 {
    if let Some(t) = std::env::var("GONGJIAN_FAKE_NOW")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return t;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The network's settings (from the node's config).
#[derive(Debug, Clone)]
pub struct NetConfig {
    pub listen: Vec<Multiaddr>,
    /// Addresses kept connected, redialled with backoff and jitter.
    pub bootstrap: Vec<Multiaddr>,
    /// Find peers on the LAN by mDNS.
    pub mdns: bool,
    /// A synced session reconciles again after this long.
    pub resync: Duration,
    /// A session waiting this long for its peer is dropped.
    pub stall: Duration,
    /// A peer must send its hello within this.
    pub hello_timeout: Duration,
    /// The longest delay between redials of a bootstrap address (before
    /// its jitter of ×0.5 to ×1.5).
    pub max_backoff: Duration,
    /// Connections with no open stream close after this.
    pub idle: Duration,
    pub max_connections: u32,
    /// Inbound connections whose peer has not been admitted yet, at most
    /// (a new one evicts the oldest); each has `hello_timeout` to be.
    pub max_unadmitted: usize,
    /// Incoming connections still in their handshake from one IP address,
    /// at most (of the 64 the node takes at once).
    pub max_handshakes_per_ip: usize,
    /// While this many bytes are queued to a peer, its requests wait (a
    /// peer that asks without reading is slowed to what it reads; its
    /// answers are still taken in).
    pub read_pause_bytes: usize,
    /// A frame not taken by the peer within this, plus a second per 16 KiB,
    /// closes the stream: the peer does not read.
    pub write_grace: Duration,
    /// Documents the node's own scrub reads back and checks each second
    /// (0: none); corrupt ones are dropped and fetched again from peers.
    pub scrub_per_second: usize,
    /// Accepted changes applied to automerge each second, at most, for
    /// documents whose application was deferred
    /// ([`gongjian_engine::Replica::defer_application`]: a node that keeps
    /// no view). 0: never (they stay judged by rules 1-7 only).
    pub settle_per_second: usize,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            listen: vec![],
            bootstrap: vec![],
            mdns: false,
            resync: Duration::from_secs(60),
            stall: Duration::from_secs(120),
            hello_timeout: Duration::from_secs(10),
            max_backoff: Duration::from_secs(60),
            idle: Duration::from_secs(120),
            max_connections: 256,
            max_unadmitted: 64,
            max_handshakes_per_ip: 16,
            read_pause_bytes: 16 << 20,
            write_grace: Duration::from_secs(30),
            scrub_per_second: 8,
            settle_per_second: 4096,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("transport: {0}")]
    Transport(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: Multiaddr, reason: String },
    #[error("the node has stopped")]
    Stopped,
}

/// A running node's network and sync.
#[derive(Debug)]
pub struct Node {
    events: mpsc::Sender<Event>,
    cmds: mpsc::UnboundedSender<SwarmCmd>,
    status: Arc<Mutex<NetStatus>>,
    actor: Option<std::thread::JoinHandle<Replica>>,
    swarm: Option<tokio::task::JoinHandle<()>>,
    ticker: tokio::task::JoinHandle<()>,
    peer_id: PeerId,
}

impl Node {
    /// Starts the network over `replica` (must be called inside a tokio
    /// runtime): listens, dials the bootstrap peers, syncs.
    pub async fn start(
        replica: Replica,
        secret: &Secret,
        unit: UnitId,
        cfg: NetConfig,
    ) -> Result<Node, NetError> {
        let keypair = secret.libp2p_keypair();
        let peer_id = keypair.public().to_peer_id();
        let status = Arc::new(Mutex::new(NetStatus {
            peer_id: Some(peer_id),
            ..NetStatus::default()
        }));
        let mut swarm = swarm::build(keypair, &cfg, status.clone())?;
        for a in &cfg.listen {
            swarm.listen_on(a.clone()).map_err(|e| NetError::Listen {
                addr: a.clone(),
                reason: e.to_string(),
            })?;
        }
        let (events_tx, events_rx) = mpsc::channel(1024);
        let (cmds_tx, cmds_rx) = mpsc::unbounded_channel();
        let timing = Timing {
            resync: cfg.resync,
            stall: cfg.stall,
            hello: cfg.hello_timeout,
            read_pause: cfg.read_pause_bytes,
            scrub_per_tick: cfg.scrub_per_second,
            settle_per_tick: cfg.settle_per_second,
        };
        let actor = Actor::new(
            replica,
            cmds_tx.clone(),
            status.clone(),
            timing,
            secret.public(),
            unit,
        );
        let actor = std::thread::Builder::new()
            .name("gongjian-sync".into())
            .spawn(move || actor.run(events_rx))
            .map_err(|e| NetError::Transport(e.to_string()))?;
        let task = SwarmTask {
            swarm,
            cfg,
            events: events_tx.clone(),
            cmds: cmds_rx,
            status: status.clone(),
            next_stream: Arc::new(AtomicU64::new(1)),
            reopens: Vec::new(),
            retry: cmds_tx.downgrade(),
        };
        let swarm = tokio::spawn(task.run());
        let tick_tx = events_tx.clone();
        let ticker = tokio::spawn(async move {
            let mut t = tokio::time::interval(Duration::from_secs(1));
            // Ticks missed while the runtime was starved do not come back to
            // back (the scrub would see a second's work in none).
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                t.tick().await;
                // Skipped when the actor is busy: ticks need not pile up.
                if let Err(mpsc::error::TrySendError::Closed(_)) = tick_tx.try_send(Event::Tick) {
                    return;
                }
            }
        });
        Ok(Node {
            events: events_tx,
            cmds: cmds_tx,
            status,
            actor: Some(actor),
            swarm: Some(swarm),
            ticker,
            peer_id,
        })
    }

    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    pub fn status(&self) -> NetStatus {
        self.status.lock().expect("status lock").clone()
    }

    /// The addresses listened on, once the first is bound.
    pub async fn listen_addrs(&self) -> Vec<Multiaddr> {
        for _ in 0..200 {
            let l = self.status.lock().expect("status lock").listen.clone();
            if !l.is_empty() {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        vec![]
    }

    /// Runs `f` on the replica in the sync actor (reads, or writes whose
    /// changed documents `f` returns so connected peers hear of them).
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Actor) -> T + Send + 'static,
    ) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.events
            .send(Event::Job(Box::new(move |a| {
                let _ = tx.send(f(a));
            })))
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Runs a write on the replica, then tells peers about `docs` it returns.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Replica) -> (T, Vec<DocId>) + Send + 'static,
    ) -> Result<T, NetError> {
        self.call(move |a| {
            let (t, docs) = f(a.replica());
            a.changed(&docs);
            t
        })
        .await
    }

    /// Keeps a connection to `addr` (redialled with backoff).
    pub fn dial(&self, addr: Multiaddr) {
        let _ = self.cmds.send(SwarmCmd::Dial(addr));
    }

    /// Cuts every connection and dials nobody (a partition), or comes back.
    pub fn set_offline(&self, offline: bool) {
        let _ = self.cmds.send(SwarmCmd::SetOffline(offline));
    }

    /// Stops the network and the actor; gives the replica back (its store
    /// closes when it is dropped).
    pub async fn shutdown(mut self) -> Result<Replica, NetError> {
        let _ = self.cmds.send(SwarmCmd::Shutdown);
        if let Some(s) = self.swarm.take() {
            let _ = s.await;
        }
        self.ticker.abort();
        let _ = self.events.send(Event::Shutdown).await;
        let actor = self.actor.take().ok_or(NetError::Stopped)?;
        tokio::task::spawn_blocking(move || actor.join())
            .await
            .map_err(|_| NetError::Stopped)?
            .map_err(|_| NetError::Stopped)
    }
}
