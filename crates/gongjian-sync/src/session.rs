//! One side of a sync with one peer, as a state machine.
//!
//! Each side first asks the other's feed: what the peer's accept log took
//! in since this node's place in it (PROTOCOL.md §8.6). Then the initiator
//! opens with the records set (certificates, revocations,
//! geneses, heads announcements), so every genesis and author is known
//! before changes arrive, then reconciles the documents set. Each side
//! answers what the other wants; differing documents are fetched by
//! version vector, a bounded number in flight, with the amount announced
//! first. Every received byte goes through [`Host`]'s checked ingest.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use gongjian_identity::{DocId, Hash, UnitId};
use serde::{Deserialize, Serialize};

use crate::batch::{Answer, BatchLimits, causal_order, edge_signed_batches};
use crate::fetches::{Fetch, Fetches};
use crate::message::{Message, decode};
use crate::rbsr::{Salt, SetId, Snapshot};
use crate::want::split_have;

/// Documents fetched at once from one peer.
pub const MAX_WANTS_IN_FLIGHT: usize = 64;
/// Reconcile steps per set and session at most (a reconciliation of any
/// real set ends in a few dozen).
pub const MAX_ROUNDS: u32 = 256;
/// Bytes of records in one answer at most (under the message cap).
pub const MAX_RECORDS_BYTES: usize = 4 << 20;
/// Misbehaviours after which a session gives up on its peer.
pub const MAX_MISBEHAVIOUR: u32 = 16;
/// At most this many documents wait on their genesis asked for by hash.
pub const MAX_GENESES_ASKED: usize = 4096;

mod feed;
mod fetch;

pub use crate::host::{Feed, Have, Host, IngestSummary, VersionVector};
use feed::FeedState;
pub use feed::{MAX_FEED_BYTES, MAX_FEED_MESSAGES, MAX_FEED_RECORDS_MESSAGES};

/// Who opened the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Initiator,
    Responder,
}

/// An input to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Open the session (initiator) or get ready (responder).
    Start,
    /// Bytes received from the peer.
    Message(Vec<u8>),
    /// A document changed here: tell the peer if it may see it.
    LocalChange(DocId),
    /// A fetch another session held ended: ask for what was deferred.
    Wake,
}

/// What the host must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Send(Message),
    /// The peer sent something malformed, forged or unsolicited; nothing of
    /// it was kept. The host penalises the peer (and closes the connection
    /// after [`MAX_MISBEHAVIOUR`]).
    Misbehaved(String),
    /// Progress changed; persist it to resume an interrupted transfer.
    Progress(PeerProgress),
    /// Reconciliation finished and every fetch was answered.
    Synced,
    /// The peer spoke of a document this node cannot ask for yet:
    /// reconcile again once this round ends (initiator only).
    ResyncWanted,
    /// Changes of this document were accepted here: tell the other peers
    /// (`Input::LocalChange` on their sessions), so a hub relays at once.
    Changed(DocId),
}

/// What a node remembers of its sync with one peer, across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerProgress {
    /// Documents known to differ and not yet fetched completely: a resumed
    /// session fetches them first, by version vector, so it continues from
    /// what was stored rather than starting over.
    pub pending: BTreeSet<DocId>,
    pub changes_announced: u64,
    pub bytes_announced: u64,
    pub changes_received: u64,
    pub bytes_received: u64,
    pub completed_sessions: u64,
    /// `now` of the last session that ended synced.
    pub last_synced: Option<u64>,
    /// The peer's accept log and the number up to which this node holds
    /// what it may see of it (a reconciliation from a `Mark` ended with
    /// every fetch answered): the next session asks the peer's `Feed`
    /// from there (PROTOCOL.md §8.6).
    pub log: Option<([u8; 8], u64)>,
}

/// Counters of one session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    pub messages_in: u64,
    pub messages_out: u64,
    pub docs_fetched: u64,
    pub changes_sent: u64,
    pub changes_received: u64,
    pub records_received: u64,
    pub misbehaviour: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Records,
    Docs,
    Synced,
}

/// One side of a sync with one peer.
#[derive(Debug)]
pub struct Session {
    peer: UnitId,
    role: Role,
    phase: Phase,
    snapshots: BTreeMap<SetId, Snapshot>,
    /// Per set: the round we expect next from the peer, and whether our
    /// last reconcile step awaits an answer.
    next_round: BTreeMap<SetId, u32>,
    /// Per set: the reconciliation under way (see `Message::Reconcile`).
    epochs: BTreeMap<SetId, u32>,
    /// Per set: the salt of the reconciliation under way.
    salts: BTreeMap<SetId, Salt>,
    /// Mixed into the salts this session draws as initiator.
    nonce: u64,
    awaiting: BTreeSet<SetId>,
    records_awaited: usize,
    queue: VecDeque<DocId>,
    /// What `queue` holds, to look up.
    queued: BTreeSet<DocId>,
    in_flight: BTreeSet<DocId>,
    /// Documents wanted in this session: changes of others are unsolicited.
    wanted: BTreeSet<DocId>,
    /// Documents whose answer in flight was announced as incomplete, with
    /// the changes of it accepted so far.
    incomplete: BTreeMap<DocId, usize>,
    /// This node's state of a document when it last told the peer of a fork
    /// (a `Notify` after a forked ingest, or an ask back for another change
    /// at an actor's seq): not again until that state moves, so two nodes
    /// that cannot take each other's branch do not trade them forever.
    fork_told: BTreeMap<DocId, [u8; 16]>,
    /// Documents whose answer in flight was announced by `Coming`.
    announced: BTreeSet<DocId>,
    /// Documents the peer named that this node cannot ask for (most often
    /// their genesis, written after this round's records were reconciled,
    /// is not here): the genesis is asked for by its hash, the document
    /// id, and the document fetched once it can be.
    geneses_asked: BTreeSet<DocId>,
    progress: PeerProgress,
    stats: SessionStats,
    limits: BatchLimits,
    /// The node's fetches shared with its other sessions, and this
    /// session's id among them.
    fetches: Option<(Fetches, u64)>,
    /// Documents wanted but being fetched by another session.
    deferred_docs: BTreeSet<DocId>,
    /// Records wanted but being fetched by another session.
    deferred_records: BTreeSet<Hash>,
    /// `now` of the input being handled (claims are leased).
    now: u64,
    /// The hashes of each `WantRecords` awaiting its answer, in order.
    records_asked: VecDeque<Vec<Hash>>,
    /// Woken: ask for the deferred records (documents) when this session's
    /// own asks are answered (its queue is empty).
    retry_records: bool,
    retry_docs: bool,
    /// Its records reconciliation waits for the node's first one, on
    /// another session, to end (see [`Fetches`]).
    turn_wait: bool,
    /// The feeds each way and the marks (PROTOCOL.md §8.6).
    feed: FeedState,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some((f, id)) = &self.fetches {
            f.release_all(*id);
        }
    }
}

impl Session {
    /// A session with `peer`, resuming from `progress`.
    pub fn new(peer: UnitId, role: Role, progress: PeerProgress) -> Session {
        Session {
            peer,
            role,
            phase: Phase::Records,
            snapshots: BTreeMap::new(),
            next_round: BTreeMap::new(),
            epochs: BTreeMap::new(),
            salts: BTreeMap::new(),
            nonce: 0,
            awaiting: BTreeSet::new(),
            records_awaited: 0,
            queue: VecDeque::new(),
            queued: BTreeSet::new(),
            in_flight: BTreeSet::new(),
            wanted: BTreeSet::new(),
            incomplete: BTreeMap::new(),
            geneses_asked: BTreeSet::new(),
            fork_told: BTreeMap::new(),
            announced: BTreeSet::new(),
            progress,
            stats: SessionStats::default(),
            limits: BatchLimits::default(),
            fetches: None,
            deferred_docs: BTreeSet::new(),
            deferred_records: BTreeSet::new(),
            now: 0,
            records_asked: VecDeque::new(),
            retry_records: false,
            retry_docs: false,
            turn_wait: false,
            feed: FeedState::default(),
        }
    }

    /// A session that fetches nothing another session of `fetches` is
    /// fetching (see [`Fetches`]).
    pub fn with_fetches(
        peer: UnitId,
        role: Role,
        progress: PeerProgress,
        fetches: &Fetches,
    ) -> Session {
        let mut s = Session::new(peer, role, progress);
        s.fetches = Some((fetches.clone(), fetches.register()));
        s
    }

    /// Seeds the salts of the reconciliations this session opens: a node
    /// gives each session a random nonce, so a peer cannot know a salt
    /// before it is used (the simulator keeps 0, to replay exactly).
    pub fn set_nonce(&mut self, nonce: u64) {
        self.nonce = nonce;
    }

    /// Whether its records reconciliation waits for the node's first one,
    /// on another session, to end (see [`Fetches`]).
    pub fn waits_for_turn(&self) -> bool {
        self.turn_wait
    }

    /// Whether something wanted waits for another session's fetch (or
    /// the records reconciliation for its turn).
    pub fn has_deferred(&self) -> bool {
        !self.deferred_docs.is_empty() || !self.deferred_records.is_empty() || self.turn_wait
    }

    /// Whether changes of `doc` are taken in (asked for, or being fetched
    /// from this peer); others are refused unread.
    pub(crate) fn takes_changes(&self, doc: &DocId) -> bool {
        self.wanted.contains(doc) || self.in_flight.contains(doc)
    }

    /// Whether a `Records` message is taken in now (it answers one of
    /// this session's `WantRecords`); others are dropped unread.
    pub(crate) fn takes_records(&self) -> bool {
        self.records_awaited > 0
    }

    /// Whether this session waits for its peer (an answer is due), as
    /// opposed to being synced or waiting only for other sessions.
    pub fn awaits_peer(&self) -> bool {
        !self.awaiting.is_empty()
            || self.records_awaited > 0
            || !self.in_flight.is_empty()
            || self.feed.awaits_peer()
    }

    pub fn progress(&self) -> &PeerProgress {
        &self.progress
    }

    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Whether reconciliation ended and nothing is awaited.
    pub fn is_synced(&self) -> bool {
        self.phase == Phase::Synced
    }

    /// Whether the session should be dropped (too much misbehaviour).
    pub fn is_hostile(&self) -> bool {
        self.stats.misbehaviour >= MAX_MISBEHAVIOUR
    }

    /// Handles one input; `now` (Unix seconds) is only recorded.
    pub fn handle<H: Host>(
        &mut self,
        host: &mut H,
        input: Input,
        now: u64,
    ) -> Result<Vec<Output>, H::Error> {
        let mut out = Vec::new();
        self.now = now;
        match input {
            Input::Start => self.start(host, &mut out)?,
            Input::Message(bytes) => {
                self.stats.messages_in += 1;
                match decode(&bytes) {
                    Ok(msg) => self.on_message(host, msg, &mut out)?,
                    Err(e) => self.misbehaved(&mut out, format!("{e}")),
                }
            }
            Input::Wake => {
                self.retry_records = !self.deferred_records.is_empty();
                self.retry_docs = !self.deferred_docs.is_empty();
                if self.turn_wait {
                    self.open_records(host, &mut out)?;
                }
            }
            Input::LocalChange(doc) => {
                if let Some(item) = host.doc_item(&doc, Some(&self.peer))? {
                    out.push(Output::Send(Message::Notify {
                        doc,
                        state: item.value,
                    }));
                }
            }
        }
        self.pump(host, &mut out)?;
        self.advance(host, now, &mut out)?;
        self.marks(host, &mut out)?;
        self.stats.messages_out +=
            out.iter().filter(|o| matches!(o, Output::Send(_))).count() as u64;
        Ok(out)
    }

    /// Whether to tell the peer of a fork in `doc` now: once per state of
    /// the document here (it moves as the fork's proof comes in).
    fn may_tell_fork<H: Host>(&mut self, host: &mut H, doc: &DocId) -> Result<bool, H::Error> {
        let state = host
            .doc_item(doc, None)?
            .map(|i| i.value)
            .unwrap_or_default();
        Ok(self.fork_told.insert(*doc, state) != Some(state))
    }

    fn misbehaved(&mut self, out: &mut Vec<Output>, why: String) {
        self.stats.misbehaviour += 1;
        out.push(Output::Misbehaved(why));
    }

    fn start<H: Host>(&mut self, host: &mut H, out: &mut Vec<Output>) -> Result<(), H::Error> {
        // A new round on a synced session (periodic resync): from scratch.
        if self.phase == Phase::Synced {
            self.phase = Phase::Records;
            self.fork_told.clear();
            // Docs in flight or queued stay wanted: their answers are due
            // (or will be, once asked for).
            let (in_flight, queued) = (&self.in_flight, &self.queued);
            self.wanted
                .retain(|d| in_flight.contains(d) || queued.contains(d));
            self.deferred_docs.clear();
            // Geneses waiting on a deferred record are let go with it (the
            // new round's reconciliation names them again).
            for h in std::mem::take(&mut self.deferred_records) {
                self.geneses_asked.remove(&DocId(h));
            }
            self.retry_docs = false;
            self.retry_records = false;
        } else if self.phase != Phase::Records || !self.awaiting.is_empty() {
            return Ok(()); // a round is already under way
        }
        // Resume: documents left half-fetched go first.
        for doc in self.progress.pending.clone() {
            self.enqueue(doc);
        }
        if self.ask_feed(host, out)? {
            return Ok(()); // the first reconciliation waits for the feeds
        }
        if self.role == Role::Initiator {
            self.open_records(host, out)?;
        }
        Ok(())
    }

    /// Whether nothing is awaited or waits to be fetched.
    fn quiet(&self) -> bool {
        self.awaiting.is_empty()
            && self.records_awaited == 0
            && self.deferred_records.is_empty()
            && self.in_flight.is_empty()
            && self.queue.is_empty()
            && self.deferred_docs.is_empty()
            && !self.feed.open
    }

    /// Takes in changes of `doc` (a `Changes` or `FeedChanges` message):
    /// decoded, ingested, counted; what became of them told.
    fn take_changes<H: Host>(
        &mut self,
        host: &mut H,
        doc: DocId,
        changes: &[Vec<u8>],
        out: &mut Vec<Output>,
    ) -> Result<(), H::Error> {
        let n = changes.len() as u64;
        let bytes: usize = changes.iter().map(Vec::len).sum();
        let (decoded, malformed) = crate::fold::decode_changes(doc, changes);
        if malformed > 0 {
            host.changes_malformed(malformed);
        }
        if n == 0 {
            return Ok(());
        }
        let mut s = if decoded.is_empty() {
            IngestSummary::default()
        } else {
            host.ingest_changes(decoded)?
        };
        s.invalid += malformed;
        self.stats.changes_received += n;
        self.progress.changes_received += n;
        self.progress.bytes_received += bytes as u64;
        if !self.announced.contains(&doc) {
            // One complete batch comes unannounced (and a feed's).
            self.progress.changes_announced += n;
            self.progress.bytes_announced += bytes as u64;
        }
        if s.invalid > 0 {
            self.misbehaved(
                out,
                format!("{} invalid changes of {}", s.invalid, doc.fmt_short()),
            );
        }
        if s.accepted > 0 || s.cut_off {
            out.push(Output::Changed(doc));
        }
        if s.accepted > 0
            && let Some(n) = self.incomplete.get_mut(&doc)
        {
            *n += s.accepted;
        }
        // The peer sent a branch of a fork as its own: it may not know of
        // the fork. Told this side's state, it asks, and the answer brings
        // it the evidence (§8.4).
        if s.forked > 0
            && self.may_tell_fork(host, &doc)?
            && let Some(item) = host.doc_item(&doc, Some(&self.peer))?
        {
            out.push(Output::Send(Message::Notify {
                doc,
                state: item.value,
            }));
        }
        Ok(())
    }

    /// Opens the records reconciliation, or waits for the node's first one
    /// to end on another session ([`Fetches`]): with its records in, this
    /// node's set mostly agrees with this peer's by fingerprint, instead of
    /// the peer listing every record it holds.
    fn open_records<H: Host>(
        &mut self,
        host: &mut H,
        out: &mut Vec<Output>,
    ) -> Result<(), H::Error> {
        let turn = match &self.fetches {
            Some((f, id)) => f.take_turn(*id, self.now),
            None => true,
        };
        self.turn_wait = !turn;
        if turn {
            self.open(host, SetId::Records, out)?;
        }
        Ok(())
    }

    fn snapshot<H: Host>(&mut self, host: &mut H, set: SetId) -> Result<&Snapshot, H::Error> {
        if !self.snapshots.contains_key(&set) {
            let items = host.items(set, &self.peer)?;
            self.snapshots.insert(set, Snapshot::new(items));
        }
        Ok(&self.snapshots[&set])
    }

    fn open<H: Host>(
        &mut self,
        host: &mut H,
        set: SetId,
        out: &mut Vec<Output>,
    ) -> Result<(), H::Error> {
        self.snapshots.remove(&set);
        let epoch = self.epochs.get(&set).map_or(0, |e| e.saturating_add(1));
        let salt = {
            let d = Hash::of_parts(&[
                b"gongjian/v1/rbsr-salt",
                &self.nonce.to_be_bytes(),
                &[set as u8],
                &epoch.to_be_bytes(),
            ]);
            let mut s = [0u8; 8];
            s.copy_from_slice(&d.as_bytes()[..8]);
            s
        };
        if set == SetId::Docs {
            self.feed.docs_opened();
        }
        let ranges = self.snapshot(host, set)?.initial(&salt);
        self.epochs.insert(set, epoch);
        self.salts.insert(set, salt);
        self.awaiting.insert(set);
        self.next_round.insert(set, 1);
        out.push(Output::Send(Message::Reconcile {
            set,
            epoch,
            round: 0,
            salt,
            ranges,
        }));
        Ok(())
    }

    /// Moves the initiator from records to documents, and both sides to
    /// synced, when nothing is awaited.
    fn advance<H: Host>(
        &mut self,
        host: &mut H,
        now: u64,
        out: &mut Vec<Output>,
    ) -> Result<(), H::Error> {
        if self.role != Role::Initiator {
            return Ok(());
        }
        let quiet = self.awaiting.is_empty()
            && self.records_awaited == 0
            && self.deferred_records.is_empty();
        if self.phase == Phase::Records && quiet && !self.turn_wait && !self.feed.open_after {
            // Its records reconciled (none is opened while it waits its
            // turn): the node's turn, whoever held it, is over.
            if self.epochs.contains_key(&SetId::Records)
                && let Some((f, _)) = &self.fetches
            {
                f.turn_done();
            }
            self.phase = Phase::Docs;
            self.open(host, SetId::Docs, out)?;
        } else if self.phase == Phase::Docs
            && quiet
            && self.in_flight.is_empty()
            && self.queue.is_empty()
            && self.deferred_docs.is_empty()
        {
            self.phase = Phase::Synced;
            self.progress.completed_sessions += 1;
            self.progress.last_synced = Some(now);
            out.push(Output::Progress(self.progress.clone()));
            out.push(Output::Synced);
        }
        Ok(())
    }

    fn on_message<H: Host>(
        &mut self,
        host: &mut H,
        msg: Message,
        out: &mut Vec<Output>,
    ) -> Result<(), H::Error> {
        match msg {
            Message::Reconcile {
                set,
                epoch,
                round,
                salt,
                ranges,
            } => {
                let current = self.epochs.get(&set).copied();
                if current.is_some_and(|c| epoch < c) {
                    return Ok(()); // a step of an earlier reconciliation
                }
                if current.is_none_or(|c| epoch > c) {
                    if self.role == Role::Initiator || round != 0 {
                        self.misbehaved(
                            out,
                            format!("reconcile epoch {epoch} opened at round {round}"),
                        );
                        return Ok(());
                    }
                    // The peer (re)opened this set: answer from a fresh view.
                    self.epochs.insert(set, epoch);
                    self.fork_told.clear();
                    self.salts.insert(set, salt);
                    self.next_round.insert(set, 0);
                    self.snapshots.remove(&set);
                    if set == SetId::Docs {
                        self.feed.docs_opened();
                    }
                }
                let expected = self.next_round.get(&set).copied().unwrap_or(0);
                if round < expected {
                    return Ok(()); // a duplicate or stale step
                }
                if self.salts.get(&set) != Some(&salt) {
                    self.misbehaved(out, format!("reconcile salt changed in epoch {epoch}"));
                    return Ok(());
                }
                if round > expected || round >= MAX_ROUNDS {
                    self.misbehaved(out, format!("reconcile round {round}, expected {expected}"));
                    return Ok(());
                }
                self.next_round.insert(set, round + 2);
                self.awaiting.remove(&set);
                if ranges.is_empty() {
                    if set == SetId::Docs {
                        self.docs_reconciled();
                    }
                    return Ok(());
                }
                let response = match self.snapshot(host, set)?.respond(&ranges, &salt) {
                    Ok(r) => r,
                    Err(e) => {
                        self.misbehaved(out, format!("reconcile: {e}"));
                        return Ok(());
                    }
                };
                match set {
                    SetId::Records => {
                        let mut ask = Vec::new();
                        for it in response.wanted {
                            let h = it.record_hash();
                            if self.claim(Fetch::Record(h)) {
                                ask.push(h);
                            } else {
                                self.deferred_records.insert(h);
                            }
                        }
                        self.want_records(ask, out);
                    }
                    SetId::Docs => {
                        let mut unknown = Vec::new();
                        for theirs in response.wanted {
                            // Of a document both hold in different states,
                            // the side with fewer accepted changes asks (both
                            // if as many); the other asks back if the asker's
                            // version vector shows it more (see `Want`).
                            let ours = self.snapshots.get(&set).and_then(|s| s.get(&theirs.key));
                            if ours.is_some_and(|o| theirs.changes() < o.changes()) {
                                continue;
                            }
                            let doc = DocId(Hash(theirs.key));
                            if host.visible(&doc, &self.peer)? {
                                // Fetched earlier in this session perhaps
                                // (a later reconciliation): it moved since.
                                self.fetch_again(doc);
                            } else {
                                unknown.push(doc);
                            }
                        }
                        self.want_geneses(unknown, out);
                    }
                }
                let ended = response.reply.is_empty();
                if !ended {
                    self.awaiting.insert(set);
                }
                out.push(Output::Send(Message::Reconcile {
                    set,
                    epoch,
                    round: round + 1,
                    salt,
                    ranges: response.reply,
                }));
                if ended && set == SetId::Docs {
                    self.docs_reconciled();
                }
            }
            Message::WantRecords { hashes } => {
                // Exactly one answer per request, so the asker can count;
                // what does not fit in one message waits for the next session.
                let mut batch = Vec::new();
                let mut bytes = 0;
                for r in host.records(&hashes, &self.peer)? {
                    if bytes + r.len() > MAX_RECORDS_BYTES {
                        break;
                    }
                    bytes += r.len();
                    batch.push(r);
                }
                out.push(Output::Send(Message::Records { records: batch }));
            }
            Message::Records { records } => {
                if self.records_awaited == 0 {
                    // Not asked for (or a duplicate): dropped unread, so
                    // nobody makes this node verify records for free.
                    return Ok(());
                }
                self.records_awaited -= 1;
                let asked = self.records_asked.pop_front().unwrap_or_default();
                for h in &asked {
                    self.release(Fetch::Record(*h));
                }
                if records.is_empty() {
                    return self.geneses_answered(host, &asked);
                }
                let n = records.len() as u64;
                let s = host.ingest_records(records)?;
                self.stats.records_received += n;
                if s.invalid > 0 {
                    self.misbehaved(out, format!("{} invalid records", s.invalid));
                }
                // Records refused only because what they rest on has not
                // arrived (a certificate's issuer, say) are fetched again
                // once this session ends.
                if s.unknown > 0 && self.role == Role::Initiator {
                    out.push(Output::ResyncWanted);
                }
                self.geneses_answered(host, &asked)?;
            }
            Message::Want { doc, have: entries } => {
                let (have, back) = split_have(entries);
                let groups = host.changes_after(&doc, &have, &back, &self.peer)?;
                let held = groups.is_some();
                // A document the peer may not see is answered like one not
                // held: its id is never confirmed.
                let mut answer = Answer {
                    batches: Vec::new(),
                    complete: true,
                };
                for group in groups.unwrap_or_default() {
                    let a = edge_signed_batches(causal_order(group), self.limits);
                    answer.batches.extend(a.batches);
                    answer.complete &= a.complete;
                }
                let count = answer.changes();
                let n = answer.batches.len();
                if n > 1 || !answer.complete {
                    out.push(Output::Send(Message::Coming {
                        doc,
                        changes: count as u64,
                        bytes: answer.bytes() as u64,
                        complete: answer.complete,
                    }));
                }
                self.stats.changes_sent += count as u64;
                if n == 0 {
                    out.push(Output::Send(Message::Changes {
                        doc,
                        changes: vec![],
                        last: true,
                    }));
                }
                for (i, b) in answer.batches.into_iter().enumerate() {
                    out.push(Output::Send(Message::Changes {
                        doc,
                        changes: b,
                        last: i + 1 == n,
                    }));
                }
                // The asker holds changes this side lacks: ask back (the
                // asker of a difference may be the side ahead, §8.3), or
                // another change at an actor's seq (a fork: it sends its
                // branch, and both are judged).
                if held && !self.fetching(&doc) {
                    let mine = host.have(&doc)?;
                    let ahead = have
                        .iter()
                        .any(|(a, (s, _))| mine.get(a).is_none_or(|(m, _)| s > m));
                    let forked = have
                        .iter()
                        .any(|(a, (s, h))| mine.get(a).is_some_and(|(m, mh)| s == m && h != mh));
                    if ahead || (forked && self.may_tell_fork(host, &doc)?) {
                        self.wanted.remove(&doc);
                        self.enqueue(doc);
                    }
                }
            }
            Message::Coming {
                doc,
                changes,
                bytes,
                complete,
            } => {
                if self.wanted.contains(&doc) {
                    // Fetched again after this answer if it moved us on
                    // (accepted counted below); an answer that stops short
                    // with nothing stays pending, never reported done. (A
                    // `Coming` after its fetch ended is stale: ignored.)
                    if !complete && self.in_flight.contains(&doc) {
                        self.incomplete.insert(doc, 0);
                    }
                    if self.in_flight.contains(&doc) {
                        self.announced.insert(doc);
                    }
                    self.progress.changes_announced =
                        self.progress.changes_announced.saturating_add(changes);
                    self.progress.bytes_announced =
                        self.progress.bytes_announced.saturating_add(bytes);
                }
            }
            Message::Changes { doc, changes, last } => {
                if !self.takes_changes(&doc) {
                    self.misbehaved(out, format!("unsolicited changes of {}", doc.fmt_short()));
                    return Ok(());
                }
                // Each change in its compact form: the message names the
                // document, so a change of another one cannot be sent here.
                self.take_changes(host, doc, &changes, out)?;
                if last {
                    self.announced.remove(&doc);
                }
                if last && self.in_flight.remove(&doc) {
                    self.release(Fetch::Doc(doc));
                    self.stats.docs_fetched += 1;
                    match self.incomplete.remove(&doc) {
                        Some(n) if n > 0 => {
                            self.wanted.remove(&doc);
                            self.enqueue(doc);
                        }
                        // Stopped short and nothing got in: left pending
                        // (tried again next session), not looped on now.
                        Some(_) => {}
                        None => {
                            self.progress.pending.remove(&doc);
                            out.push(Output::Progress(self.progress.clone()));
                        }
                    }
                }
            }
            Message::Notify { doc, state } => {
                // The peer's state moved: a fork may be told again.
                self.fork_told.remove(&doc);
                if !host.visible(&doc, &self.peer)? {
                    // Perhaps a document whose genesis has not reached us
                    // (a new one): its genesis is asked for by its id, on
                    // either side; an initiator also reconciles again, for
                    // what else this node may lack to take it.
                    self.want_geneses(vec![doc], out);
                    if self.role == Role::Initiator {
                        out.push(Output::ResyncWanted);
                    }
                    return Ok(());
                }
                let mine = host.doc_item(&doc, None)?;
                if mine.is_none_or(|i| i.value != state) {
                    self.fetch_again(doc);
                }
            }
            Message::Feed { .. }
            | Message::FeedRecords { .. }
            | Message::FeedChanges { .. }
            | Message::FeedEnd
            | Message::Mark { .. } => self.on_feed_message(host, msg, out)?,
        }
        Ok(())
    }
}
