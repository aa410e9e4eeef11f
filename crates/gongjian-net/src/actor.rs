//! The sync actor: one thread that owns the replica and every peer's sync
//! session. Streams feed it frames; it answers through each stream's
//! outbox. Everything that touches the store goes through it, one at a
//! time, so sessions need no locks and ingest stays batched per message.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gongjian_engine::Replica;
use gongjian_identity::{DocId, PublicKey, SignedRecord, UnitId};
use gongjian_sync::{Fetches, Input, Output, Role, Session, encode};
use libp2p::PeerId;
use tokio::sync::{Notify, mpsc};

use crate::hello::Hello;
use crate::now_secs;
use crate::status::NetStatus;
use crate::swarm::SwarmCmd;

mod admit;
mod frames;
mod resync;
mod scrub;
mod settle;

use admit::progress_batch;
pub use admit::set_log_place;
use frames::MAX_FOLD;
pub(crate) use frames::Waiting;

/// Bytes queued to one stream at most: a peer that does not read is cut
/// off rather than buffered without bound.
pub const MAX_QUEUED_BYTES: usize = 64 << 20;
/// Sync streams one peer may hold open at once.
pub const MAX_STREAMS_PER_PEER: usize = 4;
/// Bytes of a refused peer's own revocations our hello carries at most.
const REVOCATIONS_IN_HELLO: usize = 8 << 10;

/// The sending half of a stream, as the actor sees it.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    pub tx: mpsc::Sender<Vec<u8>>,
    pub queued: Arc<AtomicUsize>,
    pub close: Arc<Notify>,
}

/// Requests of a peer (reconcile steps, record and document asks) held
/// while its answers wait to be sent, at most: past this the peer asks
/// without reading, and is cut.
pub const MAX_DEFERRED_BYTES: usize = 8 << 20;

/// What became of a frame given to an outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Push {
    Queued,
    /// Over [`MAX_QUEUED_BYTES`]: the peer does not read.
    Full,
    /// The stream's writer has stopped (the link failed or it was closed).
    Closed,
}

impl Outbox {
    fn push(&self, frame: Vec<u8>) -> Push {
        if self.tx.is_closed() {
            return Push::Closed;
        }
        let n = frame.len();
        if self.queued.load(Ordering::Relaxed) + n > MAX_QUEUED_BYTES {
            return Push::Full;
        }
        self.queued.fetch_add(n, Ordering::Relaxed);
        match self.tx.try_send(frame) {
            Ok(()) => Push::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.queued.fetch_sub(n, Ordering::Relaxed);
                Push::Full
            }
            // The writer zeroed the count when it stopped: not taken again.
            Err(mpsc::error::TrySendError::Closed(_)) => Push::Closed,
        }
    }

    fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

/// Whether an encoded sync message asks something of this node (a
/// reconcile step, `WantRecords`, `Want` or `Feed`: its answer adds to the
/// outbox), by its variant tag after the version byte.
fn is_request(bytes: &[u8]) -> bool {
    matches!(bytes.get(1), Some(0 | 1 | 3 | 7))
}

type Job = Box<dyn FnOnce(&mut Actor) + Send>;

pub(crate) enum Event {
    Opened {
        stream: u64,
        peer: PeerId,
        role: Role,
        outbox: Outbox,
    },
    Frame(Waiting),
    /// The peer broke the framing (e.g. announced a huge frame).
    BadFrame {
        stream: u64,
        why: String,
    },
    /// What is queued to the stream's peer fell under the read pause mark.
    Drained {
        stream: u64,
    },
    Closed {
        stream: u64,
    },
    Job(Job),
    Tick,
    Shutdown,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub resync: Duration,
    pub stall: Duration,
    pub hello: Duration,
    /// Over this many bytes queued to a peer, its requests wait.
    pub read_pause: usize,
    /// Documents the node's own scrub checks each second (0: none).
    pub scrub_per_tick: usize,
    /// Deferred changes applied each second, at most (0: none).
    pub settle_per_tick: usize,
}

struct Slot {
    peer: PeerId,
    key: PublicKey,
    role: Role,
    outbox: Outbox,
    unit: Option<UnitId>,
    session: Option<Session>,
    opened: Instant,
    last_rx: Instant,
    last_start: Instant,
    /// Reconcile again as soon as the current round ends (new records
    /// arrived elsewhere: a peer may lack a genesis it cannot ask for).
    due: bool,
    /// Due past the resync gap (a revocation took effect).
    urgent: bool,
    /// The peer's requests held while its outbox is over the read pause
    /// mark (answers are still taken in), and their bytes.
    deferred: std::collections::VecDeque<Vec<u8>>,
    deferred_bytes: usize,
    /// This node's hello left its certificates out.
    elided: bool,
    /// A sync message came from the peer: it admitted this node.
    heard: bool,
}

/// Called on the actor thread after documents changed here (local writes,
/// accepted changes) or records grew: the merged view hangs on this.
pub type Observer = Box<dyn FnMut(&Replica, &[DocId], bool) + Send>;

pub struct Actor {
    replica: Replica,
    observer: Option<Observer>,
    /// Records held when the observer was last called.
    observed_records: usize,
    slots: BTreeMap<u64, Slot>,
    swarm: mpsc::UnboundedSender<SwarmCmd>,
    status: Arc<Mutex<NetStatus>>,
    timing: Timing,
    local_key: PublicKey,
    local_unit: UnitId,
    last_announce: Instant,
    /// What the sessions are fetching: each record or document from one
    /// peer at a time.
    fetches: Fetches,
    /// Peers whose last hello without certificates went unanswered: the
    /// next carries them.
    full_hello: std::collections::HashSet<PublicKey>,
    /// Waking sessions now (no nested wake rounds).
    waking: bool,
    /// Whether a session may be due to reconcile again (`Slot::due`), so
    /// the check after every input is skipped when none is.
    any_due: bool,
    /// Restarting due sessions now (no nested restarts).
    kicking: bool,
    /// Effective revocations when sessions were last made due.
    revocations: usize,
    /// What starting a session's reconciliation costs, on average.
    start_cost: Duration,
    /// Where the node's own scrub goes on from, and when it may run again
    /// after the store could not be read.
    scrub_cursor: Option<DocId>,
    /// Where the records scrub goes on from.
    records_cursor: Option<gongjian_identity::Hash>,
    /// The records scrub's own pause after a failed read (the documents'
    /// scrub goes on meanwhile).
    records_paused_until: Option<Instant>,
    scrub_paused_until: Option<Instant>,
    /// Time spent on sync (every event, a tick's work before its scrub step)
    /// since the scrub last looked, when it last looked, and how many ticks
    /// in a row it yielded.
    scrub_busy: (Duration, Instant, u32),
    /// When the frame being handled was read (None for other work).
    arrived: Option<Instant>,
    /// What became of the changes of the frame being handled, ingested
    /// ahead with other frames' (its count of changes, and the summary).
    prefolded: Option<(usize, gongjian_sync::IngestSummary)>,
    /// The same for the records of the frame being handled.
    prefolded_records: Option<(usize, gongjian_sync::IngestSummary)>,
    /// While frames folded together are handled: the documents they
    /// changed, each with when its frame was read (the observer runs once,
    /// after the last).
    folding: Option<Vec<(DocId, Option<Instant>)>>,
}

impl std::fmt::Debug for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actor")
            .field("unit", &self.local_unit)
            .field("streams", &self.slots.len())
            .finish()
    }
}

impl Actor {
    pub(crate) fn new(
        replica: Replica,
        swarm: mpsc::UnboundedSender<SwarmCmd>,
        status: Arc<Mutex<NetStatus>>,
        timing: Timing,
        local_key: PublicKey,
        local_unit: UnitId,
    ) -> Actor {
        Actor {
            observed_records: replica.membership().len(),
            revocations: replica.trust().revocation_count(),
            replica,
            observer: None,
            slots: BTreeMap::new(),
            swarm,
            status,
            timing,
            local_key,
            local_unit,
            last_announce: Instant::now(),
            fetches: Fetches::new(),
            full_hello: std::collections::HashSet::new(),
            waking: false,
            any_due: false,
            kicking: false,
            start_cost: Duration::ZERO,
            scrub_cursor: None,
            records_cursor: None,
            records_paused_until: None,
            scrub_paused_until: None,
            scrub_busy: (Duration::ZERO, Instant::now(), 0),
            arrived: None,
            prefolded: None,
            prefolded_records: None,
            folding: None,
        }
    }

    pub fn replica(&mut self) -> &mut Replica {
        &mut self.replica
    }

    /// Tells every peer that may see them that these documents changed here.
    pub fn changed(&mut self, docs: &[DocId]) {
        self.observe(docs);
        self.notify(docs, None);
    }

    /// Installs the observer of changes (replacing any).
    pub fn set_observer(&mut self, f: Observer) {
        self.observer = Some(f);
    }

    /// Records a view lag; the status shows the last 1,024's percentiles.
    fn lag(&mut self, secs: f64) {
        self.status
            .lock()
            .expect("status lock")
            .view_lag
            .record(secs);
    }

    /// Publishes the peer ids of the certified keys to the swarm task once
    /// the records changed.
    fn publish_members(&mut self) {
        let records = self.replica.membership().len();
        if self.status.lock().expect("status lock").members_from == records {
            return;
        }
        let trust = self.replica.trust();
        let members: std::collections::HashSet<PeerId> = trust
            .certified_keys()
            .filter(|k| !trust.is_revoked(k))
            .map(PublicKey::peer_id)
            .collect();
        let mut st = self.status.lock().expect("status lock");
        st.members = Arc::new(members);
        st.members_from = records;
    }

    fn observe(&mut self, docs: &[DocId]) {
        let records = self.replica.membership().len();
        let grew = records != self.observed_records;
        if docs.is_empty() && !grew {
            return;
        }
        self.observed_records = records;
        if let Some(f) = self.observer.as_mut() {
            f(&self.replica, docs, grew);
        }
    }

    /// `Input::LocalChange` for each document on every session but `except`
    /// (the one the changes came from); each session tells its peer only
    /// if the peer may see the document.
    fn notify(&mut self, docs: &[DocId], except: Option<u64>) {
        // Only the sessions whose peer may see a document are told (the
        // session would check the same and say nothing to the others): a
        // district syncing from 130 hubs changes thousands of documents,
        // each in one street's audience.
        let trust = self.replica.trust();
        let todo: Vec<(u64, DocId)> = self
            .slots
            .iter()
            .filter(|(i, s)| Some(**i) != except && s.session.is_some())
            .filter_map(|(i, s)| s.unit.map(|u| (*i, u)))
            .flat_map(|(i, u)| {
                docs.iter()
                    .filter(move |d| trust.may_see(&u, d))
                    .map(move |d| (i, *d))
            })
            .collect();
        for (id, doc) in todo {
            self.input(id, Input::LocalChange(doc));
        }
    }

    /// Runs until `Shutdown` (or every sender is gone); gives the replica back.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<Event>) -> Replica {
        self.publish_members();
        'events: while let Some(ev) = rx.blocking_recv() {
            let Event::Frame(first) = ev else {
                if self.event(ev) {
                    continue;
                }
                break;
            };
            // The frames waiting behind this one (one per stream at most)
            // are handled with it: their changes go through one ingest.
            let mut frames = vec![first];
            let mut next = None;
            while frames.len() < MAX_FOLD {
                match rx.try_recv() {
                    Ok(Event::Frame(w)) => frames.push(w),
                    Ok(ev) => {
                        next = Some(ev);
                        break;
                    }
                    Err(_) => break,
                }
            }
            let started = Instant::now();
            self.frames(frames);
            // Sync work, which the scrub yields to (`Actor::scrub`).
            self.scrub_busy.0 += started.elapsed();
            if let Some(ev) = next
                && !self.event(ev)
            {
                break 'events;
            }
        }
        for id in self.slots.keys().copied().collect::<Vec<_>>() {
            self.close(id, false);
        }
        self.replica
    }

    /// Handles an event other than a frame; false on `Shutdown`. Its time
    /// is sync work, which the scrub yields to (`Actor::scrub`); a tick
    /// counts its own up to its scrub step.
    fn event(&mut self, ev: Event) -> bool {
        let started = Instant::now();
        let tick = matches!(ev, Event::Tick);
        let go_on = self.handle_event(ev);
        if !tick {
            self.scrub_busy.0 += started.elapsed();
        }
        go_on
    }

    fn handle_event(&mut self, ev: Event) -> bool {
        match ev {
            Event::Opened {
                stream,
                peer,
                role,
                outbox,
            } => self.opened(stream, peer, role, outbox),
            Event::Frame(w) => self.frames(vec![w]),
            Event::BadFrame { stream, why } => {
                if let Some(s) = self.slots.get(&stream) {
                    let (peer, unit) = (s.peer, s.unit);
                    self.misbehaved(peer, unit, &why);
                    self.close(stream, true);
                }
            }
            Event::Closed { stream } => {
                // Our session's stream ended while the connection may
                // stay (the peer dropped it: libp2p-stream drops an
                // inbound stream when its queue of one is full): open
                // another, or the peer would go unsynced until the
                // connection idles out.
                let reopen = self
                    .slots
                    .get(&stream)
                    .filter(|s| s.role == Role::Initiator)
                    .map(|s| s.peer);
                self.close(stream, false);
                if let Some(peer) = reopen
                    && !self
                        .slots
                        .values()
                        .any(|s| s.peer == peer && s.role == Role::Initiator)
                {
                    let _ = self.swarm.send(SwarmCmd::Reopen(peer));
                }
            }
            Event::Job(job) => {
                let before = self.replica.membership().len();
                let logged = self.replica.store().log_head();
                job(self);
                if self.replica.membership().len() > before {
                    self.resync_for_records(logged, &[]);
                }
            }
            Event::Tick => {
                let started = Instant::now();
                self.publish_members();
                for id in self.slots.keys().copied().collect::<Vec<_>>() {
                    self.drained(id);
                }
                self.tick();
                self.settle();
                // The tick's own sync work counts too (what the scrub yields to).
                self.scrub_busy.0 += started.elapsed();
                self.scrub();
            }
            Event::Drained { stream } => self.drained(stream),
            Event::Shutdown => return false,
        }
        true
    }

    fn opened(&mut self, stream: u64, peer: PeerId, role: Role, outbox: Outbox) {
        let Some(key) = PublicKey::from_peer_id(&peer) else {
            self.misbehaved(peer, None, "refused: its peer id is not an ed25519 key");
            outbox.close.notify_one();
            let _ = self.swarm.send(SwarmCmd::Disconnect(peer));
            return;
        };
        let open = self.slots.values().filter(|s| s.peer == peer).count();
        if open >= MAX_STREAMS_PER_PEER {
            self.misbehaved(
                peer,
                None,
                &format!("more than {MAX_STREAMS_PER_PEER} sync streams"),
            );
            outbox.close.notify_one();
            let _ = self.swarm.send(SwarmCmd::Disconnect(peer));
            return;
        }
        // A peer this node synced with (it holds a place in the peer's
        // accept log) holds its certificates: they are left out, unless a
        // hello without them was not answered (PROTOCOL.md §9).
        let elided = self.load_progress(&key).log.is_some() && !self.full_hello.contains(&key);
        let hello = Hello {
            version: gongjian_sync::VERSION,
            unit: self.local_unit,
            chain: self
                .replica
                .hello_records(
                    &self.local_key,
                    &key,
                    crate::hello::MAX_CHAIN,
                    REVOCATIONS_IN_HELLO,
                    !elided,
                )
                .iter()
                .map(SignedRecord::encode)
                .collect(),
        };
        let _ = outbox.push(hello.encode());
        let now = Instant::now();
        self.slots.insert(
            stream,
            Slot {
                peer,
                key,
                role,
                outbox,
                unit: None,
                session: None,
                opened: now,
                last_rx: now,
                last_start: now,
                due: false,
                urgent: false,
                deferred: std::collections::VecDeque::new(),
                deferred_bytes: 0,
                elided,
                heard: false,
            },
        );
    }

    fn frame(&mut self, stream: u64, bytes: Vec<u8>) {
        let Some(slot) = self.slots.get_mut(&stream) else {
            return; // closed meanwhile
        };
        slot.last_rx = Instant::now();
        if slot.session.is_some() {
            slot.heard = true;
            // Backpressure: while the peer leaves its answers untaken, its
            // new requests wait (its answers to ours still come in, so two
            // nodes sending each other much never both stop reading).
            if is_request(&bytes)
                && (slot.outbox.queued() > self.timing.read_pause || !slot.deferred.is_empty())
            {
                if slot.deferred_bytes + bytes.len() > MAX_DEFERRED_BYTES {
                    let (peer, unit) = (slot.peer, slot.unit);
                    let why = format!(
                        "does not read: {} bytes of its requests wait while {} bytes of answers are not taken",
                        slot.deferred_bytes + bytes.len(),
                        slot.outbox.queued()
                    );
                    self.misbehaved(peer, unit, &why);
                    self.close(stream, true);
                    return;
                }
                slot.deferred_bytes += bytes.len();
                slot.deferred.push_back(bytes);
                return;
            }
            self.input(stream, Input::Message(bytes));
            return;
        }
        let (peer, key) = (slot.peer, slot.key);
        match self.admit(key, &bytes) {
            Ok(unit) => {
                let progress = self.load_progress(&key);
                let slot = self.slots.get_mut(&stream).expect("present");
                slot.unit = Some(unit);
                let mut session = Session::with_fetches(unit, slot.role, progress, &self.fetches);
                // Salts of its reconciliations nobody can know in advance.
                session.set_nonce(rand::random());
                slot.session = Some(session);
                crate::status::TRAFFIC
                    .sessions
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                slot.last_start = Instant::now();
                tracing::info!(%peer, %unit, role = ?slot.role, "peer admitted");
                let _ = self.swarm.send(SwarmCmd::Admitted(peer));
                let mut st = self.status.lock().expect("status lock");
                let p = st.peers.entry(peer).or_default();
                p.unit = Some(unit);
                p.key = Some(key);
                p.last_seen = Some(now_secs());
                drop(st);
                self.input(stream, Input::Start);
            }
            Err((why, bare)) if bare => {
                // A hello without certificates, from a key this node cannot
                // admit: the peer left them out believing them held (a store
                // restored here, say) and sends them on its next dial.
                tracing::info!(
                    target: "gongjian::peer",
                    %peer,
                    reason = %why,
                    "peer refused: its hello carried no certificates"
                );
                self.status.lock().expect("status lock").bare_hellos_refused += 1;
                self.close(stream, true);
            }
            Err((why, _)) => {
                self.misbehaved(peer, None, &format!("refused: {why}"));
                self.close(stream, true);
            }
        }
    }

    /// Handles a stream's held requests while its outbox is under the
    /// read pause mark.
    fn drained(&mut self, stream: u64) {
        loop {
            let Some(slot) = self.slots.get_mut(&stream) else {
                return;
            };
            if slot.outbox.queued() > self.timing.read_pause {
                return;
            }
            let Some(bytes) = slot.deferred.pop_front() else {
                return;
            };
            slot.deferred_bytes -= bytes.len();
            slot.last_rx = Instant::now();
            self.input(stream, Input::Message(bytes));
        }
    }

    fn input(&mut self, stream: u64, input: Input) {
        let Some(slot) = self.slots.get_mut(&stream) else {
            return;
        };
        let Some(session) = slot.session.as_mut() else {
            return;
        };
        let records_before = self.replica.membership().len();
        let logged = self.replica.store().log_head();
        let awaited = session.awaits_peer();
        // Only the frame's own message is answered from the fold.
        let (ahead, records_ahead) = match input {
            Input::Message(_) => (self.prefolded.take(), self.prefolded_records.take()),
            _ => (None, None),
        };
        let mut host =
            gongjian_sync::Prefolded::new(&mut self.replica, ahead).with_records(records_ahead);
        let res = session.handle(&mut host, input, now_secs());
        // The view holds what the fold ingested already (a `Changes`
        // message changes only its own document, which the fold observed).
        let observed = host.answered();
        if !awaited && session.awaits_peer() {
            // Asking again after waiting on other sessions: the stall
            // timer counts from now.
            slot.last_rx = Instant::now();
        }
        let (peer, key, unit) = (slot.peer, slot.key, slot.unit);
        let outputs = match res {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(%peer, error = %e, "sync session failed on a store error");
                self.close(stream, false);
                return;
            }
        };
        let mut changed = Vec::new();
        let mut drop_it = false;
        let mut writer_gone = false;
        for o in outputs {
            match o {
                Output::Send(_) if writer_gone => {}
                Output::Send(m) => {
                    let slot = self.slots.get(&stream).expect("present");
                    match slot.outbox.push(encode(&m)) {
                        Push::Queued => {}
                        Push::Full => {
                            self.misbehaved(peer, unit, "does not read: its outbox is full");
                            drop_it = true;
                            break;
                        }
                        // The writer stopped: its `BadFrame` (or the reader's
                        // `Closed`) follows and closes the stream, naming why.
                        // The other outputs (progress) still count.
                        Push::Closed => writer_gone = true,
                    }
                }
                Output::Misbehaved(why) => self.misbehaved(peer, unit, &why),
                Output::Progress(p) => {
                    // Bookkeeping a session can rebuild: not worth an fsync.
                    let relaxed = gongjian_store::Durability::Relaxed;
                    let b = progress_batch(&key, &p);
                    if let Err(e) = self.replica.store().submit_with(b, relaxed) {
                        tracing::error!(error = %e, "persisting sync progress");
                    }
                    let mut st = self.status.lock().expect("status lock");
                    let ps = st.peers.entry(peer).or_default();
                    ps.pending_docs = p.pending.len();
                    ps.changes_received = p.changes_received;
                    ps.bytes_received = p.bytes_received;
                }
                Output::Synced => {
                    tracing::info!(%peer, unit = ?unit, "synced");
                    let mut st = self.status.lock().expect("status lock");
                    st.peers.entry(peer).or_default().last_synced = Some(now_secs());
                }
                Output::Changed(doc) => changed.push(doc),
                Output::ResyncWanted => {
                    if let Some(s) = self.slots.get_mut(&stream) {
                        s.due = true;
                        self.any_due = true;
                    }
                }
            }
        }
        let hostile = self
            .slots
            .get(&stream)
            .and_then(|s| s.session.as_ref())
            .is_some_and(Session::is_hostile);
        if drop_it || hostile {
            self.close(stream, true);
        }
        if self.replica.membership().len() > records_before {
            self.resync_for_records(logged, &[stream]);
        }
        self.kick();
        if let Some(folding) = self.folding.as_mut() {
            // Observed once the frames read together are all handled.
            if !observed {
                folding.extend(changed.iter().map(|d| (*d, self.arrived)));
            }
        } else {
            self.observe(&changed);
            if !changed.is_empty()
                && let Some(at) = self.arrived
            {
                self.lag(at.elapsed().as_secs_f64());
            }
        }
        if !changed.is_empty() {
            self.notify(&changed, Some(stream));
        }
        self.wake();
    }

    /// After a fetch other sessions waited for ended: they ask for what
    /// they deferred (what arrived meanwhile is not asked for again).
    fn wake(&mut self) {
        if self.waking {
            return;
        }
        self.waking = true;
        while self.fetches.take_released() {
            self.wake_waiting();
        }
        self.waking = false;
    }

    fn misbehaved(&mut self, peer: PeerId, unit: Option<UnitId>, why: &str) {
        // One fixed format, so operators can grep and alert on it.
        tracing::warn!(
            target: "gongjian::peer",
            %peer,
            unit = %unit.map(|u| u.to_string()).unwrap_or_else(|| "-".into()),
            reason = %why,
            "peer misbehaved"
        );
        let mut st = self.status.lock().expect("status lock");
        st.misbehaviour += 1;
        let p = st.peers.entry(peer).or_default();
        p.misbehaviour += 1;
        p.last_misbehaviour = Some(why.to_owned());
    }

    /// Closes a stream; `cut`: also drop the connection (the peer broke the
    /// protocol or stalled; an honest dialer reconnects with backoff).
    fn close(&mut self, stream: u64, cut: bool) {
        if let Some(slot) = self.slots.remove(&stream) {
            tracing::debug!(peer = %slot.peer, stream, cut, "stream closed");
            if slot.elided && !slot.heard {
                // Perhaps refused for want of the certificates: the next
                // hello carries them.
                self.full_hello.insert(slot.key);
            } else if slot.heard && !slot.elided {
                self.full_hello.remove(&slot.key);
            }
            slot.outbox.close.notify_one();
            if cut {
                let _ = self.swarm.send(SwarmCmd::Disconnect(slot.peer));
            }
            // Dropping the session ended its fetches.
            drop(slot);
            self.wake();
        }
    }

    /// Closes the streams of peers no longer admitted: their key revoked,
    /// or their certificate expired, since their hello. A peer is checked
    /// at its hello and then every tick, so a revoked key keeps no session
    /// open (and is refused when it dials again).
    fn drop_unadmitted(&mut self) {
        let now = now_secs();
        let trust = self.replica.trust();
        let gone: Vec<(u64, String)> = self
            .slots
            .iter()
            .filter_map(|(id, s)| {
                let unit = s.unit?;
                trust
                    .admit_as(&s.key, &unit, now)
                    .err()
                    .map(|e| (*id, format!("no longer admitted: {e}")))
            })
            .collect();
        for (id, why) in gone {
            self.drop_stream(id, &why);
        }
    }

    /// Closes a stream and its connection, logging why in the peer log's
    /// one format.
    fn drop_stream(&mut self, id: u64, why: &str) {
        if let Some(s) = self.slots.get(&id) {
            let unit = s.unit.map(|u| u.to_string()).unwrap_or_else(|| "-".into());
            tracing::warn!(target: "gongjian::peer", peer = %s.peer, %unit, reason = why, "stream dropped");
        }
        self.close(id, true);
    }

    fn tick(&mut self) {
        self.drop_unadmitted();
        let now = Instant::now();
        let mut restart = Vec::new();
        let mut stalled = Vec::new();
        for (id, s) in &self.slots {
            match &s.session {
                None if now.duration_since(s.opened) > self.timing.hello => {
                    stalled.push((*id, "no hello in time"))
                }
                None => {}
                Some(sess) if s.role == Role::Initiator => {
                    if sess.is_synced() {
                        if now.duration_since(s.last_start) >= self.timing.resync {
                            restart.push(*id);
                        }
                    } else if sess.awaits_peer()
                        // Its requests held here: our own backlog, not a stall.
                        && s.deferred.is_empty()
                        && now.duration_since(s.last_rx) > self.timing.stall
                    {
                        stalled.push((*id, "sync stalled"));
                    }
                }
                Some(_) => {}
            }
        }
        for (id, why) in stalled {
            self.drop_stream(id, why);
        }
        if now.duration_since(self.last_announce) >= self.timing.resync {
            self.last_announce = now;
            if let Err(e) = self.replica.announce_heads(now_secs()) {
                tracing::warn!(error = %e, "announcing heads");
            }
        }
        self.start_all(restart);
        // Sessions due, held back by the gap.
        self.kick();
        // Claims past their lease are taken over without a release: the
        // sessions waiting on them ask again once a second.
        self.wake_waiting();
    }

    /// `Input::Wake` to every session with deferred fetches.
    fn wake_waiting(&mut self) {
        let waiting: Vec<u64> = self
            .slots
            .iter()
            .filter(|(_, s)| s.session.as_ref().is_some_and(Session::has_deferred))
            .map(|(id, _)| *id)
            .collect();
        for id in waiting {
            self.input(id, Input::Wake);
        }
    }
}

#[cfg(test)]
mod tests {
    use gongjian_identity::{ActorId, DocId, Hash, Secret};
    use gongjian_sync::{Message, SetId, encode};

    use super::frames::is_records;
    use super::is_request;
    use crate::status::{FRAME_KINDS, frame_kind};

    #[test]
    fn requests_are_told_from_answers_by_their_tag() {
        let doc = DocId(Hash([3; 32]));
        let actor = ActorId {
            key: Secret::from_seed([1; 32]).public(),
            epoch: 1,
        };
        let requests = [
            Message::Reconcile {
                set: SetId::Docs,
                epoch: 0,
                round: 0,
                salt: [0; 8],
                ranges: vec![],
            },
            Message::WantRecords { hashes: vec![] },
            Message::Want {
                doc,
                have: vec![(actor, 1, gongjian_identity::Hash([0; 32]))],
            },
            Message::Feed {
                from: Some(([1; 8], 9)),
            },
        ];
        let answers = [
            Message::Records { records: vec![] },
            Message::Coming {
                doc,
                changes: 0,
                bytes: 0,
                complete: true,
            },
            Message::Changes {
                doc,
                changes: vec![],
                last: true,
            },
            Message::Notify {
                doc,
                state: [0; 16],
            },
            Message::FeedRecords { records: vec![] },
            Message::FeedChanges {
                doc,
                changes: vec![],
            },
            Message::FeedEnd,
            Message::Mark { log: [2; 8], at: 3 },
        ];
        for m in &requests {
            assert!(is_request(&encode(m)), "{}", m.kind());
        }
        for m in &answers {
            assert!(!is_request(&encode(m)), "{}", m.kind());
            let records = matches!(m, Message::Records { .. } | Message::FeedRecords { .. });
            assert_eq!(is_records(&encode(m)), records, "{}", m.kind());
        }
        for m in &requests {
            assert!(!is_records(&encode(m)), "{}", m.kind());
        }
        // The traffic is counted under each message's own kind; a stream's
        // first frame is its hello, and anything else is `other`.
        for m in requests.iter().chain(&answers) {
            let bytes = encode(m);
            assert_eq!(FRAME_KINDS[frame_kind(&bytes, false)], m.kind());
            assert_eq!(FRAME_KINDS[frame_kind(&bytes, true)], "hello");
        }
        assert_eq!(FRAME_KINDS[frame_kind(&[], false)], "other");
        assert_eq!(FRAME_KINDS[frame_kind(&[3, 7], false)], "other");
        assert_eq!(FRAME_KINDS[frame_kind(&[9, 0], false)], "other");
    }
}
