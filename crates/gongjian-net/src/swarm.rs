//! The libp2p side: transports, behaviours, connection limits, dialling
//! with backoff, and the streams that carry sync sessions.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{AsyncReadExt as _, AsyncWriteExt as _, StreamExt as _};
use gongjian_sync::{MAX_MESSAGE_BYTES, Role};
use libp2p::core::ConnectedPoint;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, Stream, StreamProtocol, Swarm, connection_limits, identify, mdns, noise,
    ping, tcp, yamux,
};
use rand::RngExt as _;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use crate::actor::{Event, Outbox, Waiting};
use crate::frame::{read_frame, write_frame};
use crate::now_secs;
use crate::status::NetStatus;
use crate::{NetConfig, NetError};

pub(crate) const PROTOCOL: StreamProtocol = StreamProtocol::new(gongjian_sync::PROTOCOL_ID);

/// Frames queued to one stream's writer at most.
const OUTBOX_FRAMES: usize = 4096;

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    per_ip: crate::per_ip::Behaviour,
    limits: connection_limits::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    stream: libp2p_stream::Behaviour,
    mdns: Toggle<mdns::tokio::Behaviour>,
}

#[derive(Debug)]
pub(crate) enum SwarmCmd {
    Disconnect(PeerId),
    /// Keep a connection to this address (redialled with backoff).
    Dial(Multiaddr),
    /// Offline: drop every connection and dial nobody, until back online.
    SetOffline(bool),
    /// The peer's hello admitted it: its connections stay.
    Admitted(PeerId),
    /// Our sync stream to this peer ended but the connection may stay:
    /// open another after a pause.
    Reopen(PeerId),
    Shutdown,
}

/// Connections a stranger (a peer whose key no known certificate names)
/// opened to us and that no admitted hello has vouched for yet. Each has
/// `hello_timeout` to become admitted, and at most `max_unadmitted` exist
/// at once (a new one evicts the oldest of the address that has the most
/// waiting, so a host flooding connections evicts its own first), so peers nobody certified cannot
/// hold the connection slots members need, nor crowd out a member that is
/// connecting (members do not wait here).
#[derive(Debug)]
struct Unadmitted {
    /// Admitted peers with a connection open.
    admitted: std::collections::HashSet<PeerId>,
    /// Inbound connections not yet vouched for, oldest first, with their
    /// host (`per_ip::host_of`: QUIC's too, its handshake done).
    waiting: std::collections::VecDeque<Stranger>,
    /// Evicted since the last summary was logged, and when that was.
    unlogged_evictions: u64,
    logged_at: Instant,
}

/// An inbound connection not yet vouched for.
#[derive(Debug, Clone, Copy)]
struct Stranger {
    id: ConnectionId,
    peer: PeerId,
    since: Instant,
    from: Option<crate::per_ip::Source>,
}

impl Unadmitted {
    /// Which waiting connection to evict for a new one: the oldest of the
    /// source with the most waiting (the oldest of all among equals).
    fn victim(&self) -> Option<usize> {
        let mut count: std::collections::HashMap<Option<crate::per_ip::Source>, usize> =
            Default::default();
        for w in &self.waiting {
            *count.entry(w.from).or_default() += 1;
        }
        let most = *count.values().max()?;
        self.waiting.iter().position(|w| count[&w.from] == most)
    }
}

impl Default for Unadmitted {
    fn default() -> Self {
        Unadmitted {
            admitted: Default::default(),
            waiting: Default::default(),
            unlogged_evictions: 0,
            logged_at: Instant::now(),
        }
    }
}

/// A sync stream of ours that ended is opened again after this.
const REOPEN_AFTER: Duration = Duration::from_secs(1);

/// Evictions of connections not yet admitted are logged in sum, at most
/// this often.
const EVICTIONS_LOGGED_EVERY: Duration = Duration::from_secs(10);

/// Disconnected peers that were never admitted, kept in the status for the
/// operator's eyes (their misbehaviour); older ones are forgotten, so fresh
/// identities cannot grow the node's memory.
const KEPT_STRANGERS: usize = 1024;

/// A bootstrap address kept connected.
/// A dialled connection that stays open this long was a working link (a
/// refused hello closes it within a second or so): the
/// redial backoff starts over when it closes.
const HELD: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Dialer {
    addr: Multiaddr,
    peer: Option<PeerId>,
    pending: Option<ConnectionId>,
    connected: bool,
    /// When the current connection was established.
    since: Option<Instant>,
    next: Instant,
    backoff: Duration,
}

pub(crate) fn build(
    keypair: libp2p::identity::Keypair,
    cfg: &NetConfig,
    status: Arc<Mutex<NetStatus>>,
) -> Result<Swarm<Behaviour>, NetError> {
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_pending_incoming(Some(64))
        .with_max_established_incoming(Some(cfg.max_connections))
        .with_max_established_per_peer(Some(4));
    let mdns_on = cfg.mdns;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            || {
                let mut y = yamux::Config::default();
                // More concurrent streams than this and yamux refuses them
                // (a node needs a few sync streams, identify and ping); each
                // may buffer a 256 KiB window unread, so this bounds what one
                // connection can make the node hold. The sync layer itself
                // closes a peer past a handful of sync streams.
                y.set_max_num_streams(MAX_YAMUX_STREAMS);
                y
            },
        )
        .map_err(|e| NetError::Transport(e.to_string()))?
        .with_quic()
        .with_dns()
        .map_err(|e| NetError::Transport(e.to_string()))?
        .with_behaviour(|key| {
            let peer = key.public().to_peer_id();
            let mdns = if mdns_on {
                Some(mdns::tokio::Behaviour::new(mdns::Config::default(), peer)?)
            } else {
                None
            };
            Ok(Behaviour {
                per_ip: crate::per_ip::Behaviour::new(cfg.max_handshakes_per_ip, status.clone()),
                limits: connection_limits::Behaviour::new(limits),
                identify: identify::Behaviour::new(identify::Config::new(
                    "/gongjian/id/1".into(),
                    key.public(),
                )),
                ping: ping::Behaviour::new(ping::Config::new()),
                stream: libp2p_stream::Behaviour::new(),
                mdns: Toggle::from(mdns),
            })
        })
        .map_err(|e| NetError::Transport(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(cfg.idle))
        .build();
    Ok(swarm)
}

pub(crate) struct SwarmTask {
    pub swarm: Swarm<Behaviour>,
    pub cfg: NetConfig,
    pub events: mpsc::Sender<Event>,
    pub cmds: mpsc::UnboundedReceiver<SwarmCmd>,
    pub status: Arc<Mutex<NetStatus>>,
    pub next_stream: Arc<AtomicU64>,
    /// Peers whose sync stream of ours ended, and when to open another.
    pub reopens: Vec<(Instant, PeerId)>,
    /// Back to this task's own commands (weak: it does not keep them
    /// open): a sync stream that failed to open is asked for again.
    pub retry: mpsc::WeakUnboundedSender<SwarmCmd>,
}

impl SwarmTask {
    pub(crate) async fn run(mut self) {
        let mut control = self.swarm.behaviour().stream.new_control();
        let incoming = match control.accept(PROTOCOL) {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(error = %e, "sync protocol already registered");
                return;
            }
        };
        let mut dialers: Vec<Dialer> = self
            .cfg
            .bootstrap
            .iter()
            .map(|a| new_dialer(a.clone()))
            .collect();
        let mut offline = false;
        // Inbound streams are taken by a task of their own: libp2p-stream
        // hands them over through a channel of one and drops any that
        // finds it full, so a loop also busy with the swarm would lose
        // streams a peer opens back to back.
        let dropping = Arc::new(AtomicBool::new(false));
        {
            let (dropping, events, next) = (
                dropping.clone(),
                self.events.clone(),
                self.next_stream.clone(),
            );
            let limits = StreamLimits::of(&self.cfg);
            tokio::spawn(async move {
                let mut incoming = incoming;
                while let Some((peer, stream)) = incoming.next().await {
                    if dropping.load(Ordering::Relaxed) {
                        continue; // offline: dropped
                    }
                    let (events, next) = (events.clone(), next.clone());
                    tokio::spawn(async move {
                        spawn_stream(stream, peer, Role::Responder, events, &next, limits).await
                    });
                }
            });
        }
        let mut outbound: BTreeSet<PeerId> = BTreeSet::new();
        let mut unadmitted = Unadmitted::default();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                ev = self.swarm.select_next_some() => {
                    self.on_event(ev, &mut dialers, &mut outbound, &mut unadmitted, offline, &control);
                }
                cmd = self.cmds.recv() => match cmd {
                    Some(SwarmCmd::Disconnect(p)) => {
                        let _ = self.swarm.disconnect_peer_id(p);
                    }
                    Some(SwarmCmd::Dial(a)) => dialers.push(new_dialer(a)),
                    Some(SwarmCmd::Reopen(p)) => {
                        if !offline && outbound.contains(&p) && self.swarm.is_connected(&p) {
                            self.reopens.push((Instant::now() + REOPEN_AFTER, p));
                        }
                    }
                    Some(SwarmCmd::Admitted(p)) => {
                        if self.swarm.is_connected(&p) {
                            unadmitted.admitted.insert(p);
                            unadmitted.waiting.retain(|w| w.peer != p);
                        }
                    }
                    Some(SwarmCmd::SetOffline(o)) => {
                        offline = o;
                        dropping.store(o, Ordering::Relaxed);
                        if o {
                            let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
                            for p in peers {
                                let _ = self.swarm.disconnect_peer_id(p);
                            }
                        } else {
                            for d in &mut dialers {
                                d.next = Instant::now();
                                d.backoff = Duration::from_millis(200);
                            }
                        }
                    }
                    Some(SwarmCmd::Shutdown) | None => break,
                },
                _ = tick.tick() => {
                    if !offline {
                        self.redial(&mut dialers);
                        self.reopen(&outbound, &control);
                    }
                    self.expire_unadmitted(&mut unadmitted);
                }
            }
        }
    }

    fn redial(&mut self, dialers: &mut [Dialer]) {
        let now = Instant::now();
        for d in dialers.iter_mut() {
            if d.connected || d.pending.is_some() || d.next > now {
                continue;
            }
            let opts = DialOpts::unknown_peer_id().address(d.addr.clone()).build();
            let id = opts.connection_id();
            match self.swarm.dial(opts) {
                Ok(()) => d.pending = Some(id),
                Err(e) => {
                    tracing::debug!(addr = %d.addr, error = %e, "dial failed");
                    back_off(d, &self.cfg);
                }
            }
        }
    }

    /// Opens our sync streams that ended again, once due, on connections
    /// still open (a connection closed meanwhile took its reopen along).
    fn reopen(&mut self, outbound: &BTreeSet<PeerId>, control: &libp2p_stream::Control) {
        let now = Instant::now();
        let due: Vec<PeerId> = self
            .reopens
            .iter()
            .filter(|(at, _)| *at <= now)
            .map(|(_, p)| *p)
            .collect();
        self.reopens.retain(|(at, _)| *at > now);
        for p in due {
            if outbound.contains(&p) && self.swarm.is_connected(&p) {
                tracing::debug!(peer = %p, "our sync stream ended: opening another");
                self.open_sync(p, control);
            }
        }
    }

    /// Opens our sync stream to `peer`.
    fn open_sync(&self, peer: PeerId, control: &libp2p_stream::Control) {
        let mut control = control.clone();
        let events = self.events.clone();
        let next = self.next_stream.clone();
        let limits = StreamLimits::of(&self.cfg);
        let retry = self.retry.clone();
        tokio::spawn(async move {
            match control.open_stream(peer, PROTOCOL).await {
                Ok(stream) => {
                    spawn_stream(stream, peer, Role::Initiator, events, &next, limits).await
                }
                // A peer that does not speak the sync protocol: cut (the
                // dialer backs off before it tries again).
                Err(e @ libp2p_stream::OpenStreamError::UnsupportedProtocol(_)) => {
                    tracing::warn!(%peer, error = %e, "opening the sync stream; disconnecting");
                    if let Some(tx) = retry.upgrade() {
                        let _ = tx.send(SwarmCmd::Disconnect(peer));
                    }
                }
                Err(e) => {
                    // Else the connection would stay up unsynced until it
                    // idles out: opened again shortly, while it holds.
                    tracing::warn!(%peer, error = %e, "opening the sync stream; trying again");
                    if let Some(tx) = retry.upgrade() {
                        let _ = tx.send(SwarmCmd::Reopen(peer));
                    }
                }
            }
        });
    }

    /// Closes inbound connections whose peer was not admitted in time.
    fn expire_unadmitted(&mut self, u: &mut Unadmitted) {
        let now = Instant::now();
        while let Some(&Stranger {
            id, peer, since, ..
        }) = u.waiting.front()
        {
            if now.duration_since(since) <= self.cfg.hello_timeout {
                break;
            }
            u.waiting.pop_front();
            if self.swarm.close_connection(id) {
                // At most `max_unadmitted` per `hello_timeout`: each logged.
                tracing::warn!(
                    target: "gongjian::peer",
                    %peer,
                    unit = "-",
                    reason = "no admitted hello in time",
                    "connection closed"
                );
                self.status.lock().expect("status lock").unadmitted_closed += 1;
            }
        }
        if u.unlogged_evictions > 0 && now.duration_since(u.logged_at) >= EVICTIONS_LOGGED_EVERY {
            // Evictions come as fast as strangers connect: summed up.
            tracing::warn!(
                target: "gongjian::peer",
                evicted = u.unlogged_evictions,
                waiting = u.waiting.len(),
                "connections not yet admitted evicted by newer ones"
            );
            u.unlogged_evictions = 0;
            u.logged_at = now;
        }
    }

    /// Makes room for one more connection not yet admitted: closes the
    /// oldest waiting one of the source with the most (counted; logged in
    /// sum by `expire_unadmitted`).
    fn evict_one(&mut self, u: &mut Unadmitted) {
        if let Some(Stranger { id, peer, .. }) = u.victim().and_then(|i| u.waiting.remove(i))
            && self.swarm.close_connection(id)
        {
            tracing::debug!(%peer, "evicted: too many connections not yet admitted");
            u.unlogged_evictions += 1;
            self.status.lock().expect("status lock").unadmitted_closed += 1;
        }
    }

    fn on_event(
        &mut self,
        ev: SwarmEvent<BehaviourEvent>,
        dialers: &mut [Dialer],
        outbound: &mut BTreeSet<PeerId>,
        unadmitted: &mut Unadmitted,
        offline: bool,
        control: &libp2p_stream::Control,
    ) {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                self.status
                    .lock()
                    .expect("status lock")
                    .listen
                    .push(address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                if offline {
                    self.swarm.close_connection(connection_id);
                    // A dial that was in flight when the node went offline:
                    // its dialer dials again once back online.
                    for d in dialers.iter_mut() {
                        if d.pending == Some(connection_id) {
                            d.pending = None;
                        }
                    }
                    return;
                }
                let addr = endpoint.get_remote_address().clone();
                let member = {
                    let mut st = self.status.lock().expect("status lock");
                    let p = st.peers.entry(peer_id).or_default();
                    p.connected = true;
                    p.relayed = addr
                        .iter()
                        .any(|x| matches!(x, libp2p::multiaddr::Protocol::P2pCircuit));
                    p.address = Some(addr.clone());
                    p.last_seen = Some(now_secs());
                    st.members.contains(&peer_id)
                };
                // Strangers (no certificate known) wait in a bounded queue;
                // members are bounded by the per-peer limit and their
                // streams' hello timeout.
                if endpoint.is_listener() && !member && !unadmitted.admitted.contains(&peer_id) {
                    if unadmitted.waiting.len() >= self.cfg.max_unadmitted {
                        self.evict_one(unadmitted);
                    }
                    unadmitted.waiting.push_back(Stranger {
                        id: connection_id,
                        peer: peer_id,
                        since: Instant::now(),
                        from: crate::per_ip::host_of(&addr),
                    });
                }
                for d in dialers.iter_mut() {
                    if d.pending == Some(connection_id) {
                        d.pending = None;
                        d.connected = true;
                        d.peer = Some(peer_id);
                        d.since = Some(Instant::now());
                    }
                }
                // The dialling side opens the sync session.
                if matches!(endpoint, ConnectedPoint::Dialer { .. }) && outbound.insert(peer_id) {
                    self.open_sync(peer_id, control);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                connection_id,
                ..
            } => {
                unadmitted.waiting.retain(|w| w.id != connection_id);
                if num_established == 0 {
                    outbound.remove(&peer_id);
                    unadmitted.admitted.remove(&peer_id);
                    self.reopens.retain(|(_, p)| *p != peer_id);
                    let mut st = self.status.lock().expect("status lock");
                    if let Some(p) = st.peers.get_mut(&peer_id) {
                        p.connected = false;
                    }
                    forget_strangers(&mut st);
                    drop(st);
                    for d in dialers.iter_mut() {
                        if d.peer == Some(peer_id) && d.connected {
                            d.connected = false;
                            // The backoff starts over after a connection
                            // that held (a working link), not on connecting:
                            // a peer that refuses our hello (our key revoked
                            // or expired) is not redialled twice a second.
                            if d.since.take().is_some_and(|t| t.elapsed() >= HELD) {
                                d.backoff = Duration::from_millis(500);
                            }
                            back_off(d, &self.cfg);
                        }
                    }
                }
                tracing::debug!(peer = %peer_id, ?connection_id, "connection closed");
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                for d in dialers.iter_mut() {
                    if d.pending == Some(connection_id) {
                        tracing::debug!(addr = %d.addr, %error, "dial failed");
                        d.pending = None;
                        back_off(d, &self.cfg);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                if offline {
                    return;
                }
                for (peer, addr) in found {
                    if !self.swarm.is_connected(&peer) && peer < *self.swarm.local_peer_id() {
                        // One side dials, so two nodes on a LAN keep one session.
                        let _ = self
                            .swarm
                            .dial(DialOpts::peer_id(peer).addresses(vec![addr]).build());
                    }
                }
            }
            _ => {}
        }
    }
}

/// Drops the oldest disconnected, never-admitted peers from the status
/// once more than [`KEPT_STRANGERS`] are kept.
fn forget_strangers(st: &mut NetStatus) {
    let strangers = st
        .peers
        .values()
        .filter(|p| p.unit.is_none() && !p.connected)
        .count();
    if strangers <= KEPT_STRANGERS + KEPT_STRANGERS / 4 {
        return;
    }
    let mut seen: Vec<(u64, PeerId)> = st
        .peers
        .iter()
        .filter(|(_, p)| p.unit.is_none() && !p.connected)
        .map(|(id, p)| (p.last_seen.unwrap_or(0), *id))
        .collect();
    seen.sort_unstable();
    for (_, id) in &seen[..strangers - KEPT_STRANGERS] {
        st.peers.remove(id);
    }
}

fn new_dialer(addr: Multiaddr) -> Dialer {
    Dialer {
        addr,
        peer: None,
        pending: None,
        connected: false,
        since: None,
        next: Instant::now(),
        backoff: Duration::from_millis(500),
    }
}

/// Doubles the wait (up to the cap) with jitter, so offices that lost the
/// same hub do not all come back in the same instant.
fn back_off(d: &mut Dialer, cfg: &NetConfig) {
    let jitter = rand::rng().random_range(0.5..1.5);
    d.next = Instant::now() + d.backoff.mul_f64(jitter);
    d.backoff = (d.backoff * 2).min(cfg.max_backoff);
}

/// Yamux streams per connection at most.
pub const MAX_YAMUX_STREAMS: usize = 32;
/// The first frame of a stream is the peer's hello (a unit id and a short
/// certificate chain): it may not be larger than this, so a peer not yet
/// admitted can make the node buffer little.
pub const MAX_HELLO_BYTES: usize = 64 << 10;

/// How a stream guards against a peer that does not read
/// ([`NetConfig::read_pause_bytes`]: when what is queued falls under it,
/// the actor hears so and takes the peer's held requests;
/// [`NetConfig::write_grace`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamLimits {
    read_pause: usize,
    write_grace: Duration,
}

impl StreamLimits {
    pub(crate) fn of(cfg: &NetConfig) -> StreamLimits {
        StreamLimits {
            read_pause: cfg.read_pause_bytes,
            write_grace: cfg.write_grace,
        }
    }

    /// How long writing a frame of `len` bytes may take.
    fn write_deadline(&self, len: usize) -> Duration {
        self.write_grace + Duration::from_secs((len / (16 << 10)) as u64)
    }
}

/// Wires a sync stream to the actor: a writer draining the outbox and a
/// reader feeding frames (size-checked before reading) in.
async fn spawn_stream(
    stream: Stream,
    peer: PeerId,
    role: Role,
    events: mpsc::Sender<Event>,
    next: &AtomicU64,
    limits: StreamLimits,
) {
    let id = next.fetch_add(1, Ordering::Relaxed);
    let (mut r, mut w) = stream.split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(OUTBOX_FRAMES);
    let queued = Arc::new(AtomicUsize::new(0));
    let close = Arc::new(Notify::new());
    let outbox = Outbox {
        tx,
        queued: queued.clone(),
        close: close.clone(),
    };
    if events
        .send(Event::Opened {
            stream: id,
            peer,
            role,
            outbox,
        })
        .await
        .is_err()
    {
        return;
    }
    let events_w = events.clone();
    tokio::spawn(async move {
        // Each side's first frame on a stream is its hello.
        let mut first = true;
        loop {
            // The hello (at most 64 KiB, queued first) is written even if
            // the stream is closed meanwhile: a peer refused at once still
            // gets it, and with it the revocations of its key (PROTOCOL.md
            // §9). If it never comes, the outbox's sender is gone and
            // `recv` ends.
            let f = if first {
                rx.recv().await
            } else {
                tokio::select! {
                    f = rx.recv() => f,
                    _ = close.notified() => None,
                }
            };
            let Some(f) = f else { break };
            let n = f.len();
            let deadline = limits.write_deadline(n);
            // A closed stream stops at once, even mid-frame, so what is
            // queued to a peer that does not read is freed with it.
            let written = if first {
                Some(tokio::time::timeout(deadline, write_frame(&mut w, &f)).await)
            } else {
                tokio::select! {
                    r = tokio::time::timeout(deadline, write_frame(&mut w, &f)) => Some(r),
                    _ = close.notified() => None,
                }
            };
            let before = queued.fetch_sub(n, Ordering::Relaxed);
            if before > limits.read_pause && before - n <= limits.read_pause {
                // If the channel is full the actor's next tick catches it.
                let _ = events_w.try_send(Event::Drained { stream: id });
            }
            match written {
                Some(Ok(Ok(()))) => {
                    crate::status::TRAFFIC.count(&f, first, false);
                    first = false;
                }
                Some(Err(_)) => {
                    let why = format!(
                        "does not read: a {n}-byte frame not taken in {} s",
                        deadline.as_secs()
                    );
                    let _ = events_w.send(Event::BadFrame { stream: id, why }).await;
                    break;
                }
                Some(Ok(Err(_))) | None => break,
            }
        }
        // What was queued is dropped with the channel; the actor sees the
        // stream closed (`Push::Closed`) from now on.
        drop(rx);
        queued.store(0, Ordering::Relaxed);
        let _ = w.close().await;
    });
    let events2 = events.clone();
    tokio::spawn(async move {
        let mut cap = MAX_HELLO_BYTES;
        loop {
            let frame = read_frame(&mut r, cap).await;
            let first = cap == MAX_HELLO_BYTES;
            cap = MAX_MESSAGE_BYTES;
            match frame {
                Ok(Some(bytes)) => {
                    crate::status::TRAFFIC.count(&bytes, first, true);
                    // One frame of a stream in the node at a time: the next
                    // is read once the actor handled this one (or dropped
                    // it), so a fast peer cannot pile frames up in memory.
                    let (done, handled) = tokio::sync::oneshot::channel();
                    if events2
                        .send(Event::Frame(Waiting {
                            stream: id,
                            bytes,
                            done,
                            at: std::time::Instant::now(),
                        }))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    let _ = handled.await;
                }
                Ok(None) => {
                    tracing::debug!(%peer, stream = id, "stream ended by the peer");
                    break;
                }
                Err(e) => {
                    tracing::debug!(%peer, stream = id, error = %e, "reading a stream");
                    if e.is_peer_fault() {
                        let _ = events2
                            .send(Event::BadFrame {
                                stream: id,
                                why: e.to_string(),
                            })
                            .await;
                    }
                    break;
                }
            }
        }
        let _ = events2.send(Event::Closed { stream: id }).await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flooding_address_evicts_its_own_strangers_first() {
        let mut u = Unadmitted::default();
        let at = |addr: &str| crate::per_ip::host_of(&addr.parse().unwrap());
        let push = |u: &mut Unadmitted, n: usize, addr: &str| {
            u.waiting.push_back(Stranger {
                id: ConnectionId::new_unchecked(n),
                peer: PeerId::random(),
                since: Instant::now(),
                from: at(addr),
            })
        };
        assert_eq!(u.victim(), None);
        push(&mut u, 0, "/ip4/10.0.0.1/tcp/1");
        push(&mut u, 1, "/ip4/10.0.0.9/tcp/1");
        push(&mut u, 2, "/ip4/10.0.0.9/tcp/2");
        push(&mut u, 3, "/ip4/10.0.0.2/tcp/1");
        assert_eq!(u.victim(), Some(1), "the oldest of 10.0.0.9, which has two");
        push(&mut u, 4, "/ip4/10.0.0.9/tcp/3");
        // The flood goes on: each newcomer from 10.0.0.9 evicts one of its own.
        for n in 10..20 {
            let i = u.victim().unwrap();
            let w = u.waiting.remove(i).unwrap();
            assert_eq!(w.from, at("/ip4/10.0.0.9/tcp/1"));
            push(&mut u, n, "/ip4/10.0.0.9/tcp/4");
        }
        assert!(
            u.waiting
                .iter()
                .any(|w| w.from == at("/ip4/10.0.0.1/tcp/1"))
                && u.waiting
                    .iter()
                    .any(|w| w.from == at("/ip4/10.0.0.2/tcp/1")),
            "the other hosts' strangers still wait"
        );
        // Among equals, the oldest of all.
        let mut v = Unadmitted::default();
        push(&mut v, 0, "/ip4/10.0.0.1/tcp/1");
        push(&mut v, 1, "/ip4/10.0.0.2/tcp/1");
        assert_eq!(v.victim(), Some(0));
    }
}
