//! The replica: membership in memory (small), documents loaded on demand.

use automerge::Automerge;
use gongjian_identity::{
    ActorId, DocId, DocType, Genesis, Hash, PublicKey, RecordBody, Secret, SignedChange,
    SignedRecord, UnitId,
};
use gongjian_model::{Membership, Trust, VerifiedRecord, verify_records};
use gongjian_store::{Batch, DocMeta, Store};

use crate::error::EngineError;

/// The node's own key and the unit it writes as.
#[derive(Debug, Clone)]
pub struct LocalIdentity {
    pub secret: Secret,
    pub unit: UnitId,
}

/// Documents kept built in memory, most recently used first.
pub const DOC_CACHE: usize = 32;

/// One node's replica of the documents and records it holds.
pub struct Replica {
    pub(crate) store: Store,
    /// A bounded cache of built documents, each equal to its accepted changes.
    pub(crate) cache: lru::LruCache<DocId, Automerge>,
    pub(crate) membership: Membership,
    /// Shared with the thread that extracts a large call's rows
    /// (`staged::Extractor`); replaced whole when records change it.
    pub(crate) trust: std::sync::Arc<Trust>,
    pub(crate) local: Option<LocalIdentity>,
    pub(crate) epoch: u32,
    pub(crate) counters: crate::ingest::IngestCounters,
    /// Documents the daemon's scrub found corrupt but keeps (this node
    /// writes them): not offered or sent to peers until a scrub finds them
    /// clean again (after `gongjian verify --repair` or a restore).
    pub(crate) withheld: std::collections::BTreeSet<DocId>,
    /// The scrub met damaged blocks in the documents' families and held
    /// their compactions (until a repair, or a restart).
    pub(crate) doc_compactions_held: bool,
    /// How ingest commits: synced, but relaxed for what sync received
    /// ([`Replica::received`]).
    pub(crate) durability: gongjian_store::Durability,
    /// Called with each document ingest builds, before the call commits
    /// ([`Replica::on_built`]).
    pub(crate) built: Option<std::sync::Arc<Built>>,
    /// Ingest stores accepted changes without applying them to automerge;
    /// [`Replica::settle`] applies them later ([`Replica::defer_application`]).
    pub(crate) defer_apply: bool,
    /// Where [`Replica::settle`] goes on from (every marked document gets
    /// its turn, however often the first ones are marked again).
    pub(crate) settle_cursor: Option<DocId>,
}

/// A hook handed each document ingest builds: the trust it was judged
/// under, its id, its accepted heads (sorted) and the document. Called from
/// several threads at once (each with its own documents), as a call's
/// documents are applied on two cores.
pub type Built = Box<dyn Fn(&Trust, &DocId, &[Hash], &mut Automerge) + Send + Sync>;

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("store", &self.store)
            .field("records", &self.membership.len())
            .field("epoch", &self.epoch)
            .field("cached_docs", &self.cache.len())
            .finish()
    }
}

impl Replica {
    /// Opens a replica over a store: reads and re-verifies every record held.
    /// One whose bytes are damaged, or that does not verify, is left out
    /// and logged, never a reason not to start; opening writes nothing (the
    /// scrub repairs damage, and peers send such a record again).
    pub fn open(
        store: Store,
        root: PublicKey,
        local: Option<LocalIdentity>,
    ) -> Result<Self, EngineError> {
        use crate::scrub::RecordState;
        let mut membership = Membership::new(root);
        // A record damaged on disk is left out (logged), not a reason to
        // refuse to start; opening writes nothing: the scrub (the daemon's
        // own, or `gongjian verify --repair`) drops it, and records sync
        // fetches it again from peers.
        let mut cursor = None;
        loop {
            let (listed, full) = match store.records_after(cursor.as_ref(), 4096) {
                Ok(listed) => {
                    let full = listed.len() == 4096;
                    (listed, full)
                }
                // Damage RocksDB itself found (a block's checksum): every
                // record still readable, read again from the start; the
                // scrub writes the family again, peers send the rest.
                Err(e) if e.is_corruption() => {
                    if let Err(e) = store.hold_compactions(gongjian_store::Cf::Records) {
                        tracing::warn!(error = %e, "records' compactions not held");
                    }
                    let (readable, damage) = store.records_readable();
                    tracing::error!(error = %e, unreadable = damage.map_or(0, |(_, n)| n), readable = readable.len(), "records' table files are damaged; opening with the records still readable (stop the node and run `gongjian verify --repair` to write them again; peers send the rest)");
                    membership = Membership::new(root);
                    (readable, false)
                }
                Err(e) => return Err(e.into()),
            };
            cursor = listed.last().map(|s| s.key);
            for (hash, state) in crate::scrub::judge_records(listed)? {
                if let Some(p) = state.problem(&hash) {
                    tracing::error!(record = %hash, problem = %p.what, "record left out at open; the scrub repairs a damaged one and peers send it again");
                } else if let RecordState::Good(verified) = state {
                    membership.insert(*verified);
                }
            }
            if !full {
                break;
            }
        }
        let trust = membership.evaluate();
        let epoch = store.epoch()?;
        let pending = store.reevaluation_pending()?;
        let mut replica = Replica {
            durability: gongjian_store::Durability::Synced,
            cache: lru::LruCache::new(
                std::num::NonZeroUsize::new(DOC_CACHE).unwrap_or(std::num::NonZeroUsize::MIN),
            ),
            store,
            membership,
            trust: std::sync::Arc::new(trust),
            local,
            epoch,
            counters: Default::default(),
            withheld: Default::default(),
            doc_compactions_held: false,
            built: None,
            defer_apply: false,
            settle_cursor: None,
        };
        if pending {
            tracing::warn!("finishing an interrupted re-evaluation of documents");
            replica.reevaluate_all()?;
        }
        Ok(replica)
    }

    /// Hands each document an ingest call builds to `hook`, while it is
    /// at hand, so a view can take its rows without building it again from
    /// the store. The hook runs before the call commits: what it keeps is
    /// only good once the call returns `Ok` and the document's stored heads
    /// are the ones it was given. The hook must not edit the document (it
    /// goes to the cache as it is); `&mut` is what automerge's readers take.
    pub fn on_built(&mut self, hook: Built) {
        self.built = Some(std::sync::Arc::new(hook));
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// The trust evaluation, shared: to read it off the sync thread (it is
    /// replaced whole, never changed in place, when records change).
    pub fn trust_shared(&self) -> std::sync::Arc<Trust> {
        self.trust.clone()
    }

    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The actor this node writes as.
    pub fn actor(&self) -> Result<ActorId, EngineError> {
        let local = self.local.as_ref().ok_or(EngineError::NoSecret)?;
        Ok(ActorId {
            key: local.secret.public(),
            epoch: self.epoch,
        })
    }

    /// Verifies records, adds the new ones to the grow-only set durably, and
    /// re-evaluates the documents they may affect. All or nothing: one bad
    /// record refuses the whole call.
    pub fn insert_records(
        &mut self,
        records: Vec<SignedRecord>,
    ) -> Result<Vec<VerifiedRecord>, EngineError> {
        // Signatures checked in one batch; the first refused record (in
        // the order given) refuses the call.
        let fresh = verify_records(self.unheld(records))
            .into_iter()
            .collect::<Result<Vec<VerifiedRecord>, _>>()?;
        self.admit(fresh)
    }

    /// The records not held yet, each once.
    pub(crate) fn unheld(&self, records: Vec<SignedRecord>) -> Vec<SignedRecord> {
        let mut seen = std::collections::HashSet::new();
        records
            .into_iter()
            .filter(|r| {
                let h = r.hash();
                !self.membership.contains(&h) && seen.insert(h)
            })
            .collect()
    }

    /// Adds verified records not held yet (each once), all or nothing:
    /// refused whole with [`EngineError::NotMember`] if one is signed by a
    /// key that is no member when evaluated with all of them.
    pub(crate) fn admit(
        &mut self,
        fresh: Vec<VerifiedRecord>,
    ) -> Result<Vec<VerifiedRecord>, EngineError> {
        if fresh.is_empty() {
            // Held already, perhaps only by a relaxed commit of sync's: a
            // caller that wants it durable gets it durable.
            if self.durability == gongjian_store::Durability::Synced {
                self.store.sync()?;
            }
            return Ok(fresh);
        }
        // Tried in place and taken out again if refused: a copy of the
        // whole set for each try cost more than the evaluation (a district
        // holds tens of thousands of records).
        let trust = self.evaluate_with(&fresh);
        let signers = RecordSigners::new(&trust, *self.membership.root());
        if let Some(v) = fresh.iter().find(|v| !signers.may_sign(&v.signer)) {
            // Only members sign records a node keeps: the root, a key with
            // a valid certificate, or a write key of a valid document.
            // Anything else (a chain from a foreign root, junk) is refused
            // whole.
            let err = EngineError::NotMember {
                hash: v.hash,
                signer: v.signer.to_string(),
            };
            self.withdraw(&fresh);
            return Err(err);
        }
        self.keep(fresh, trust)
    }

    /// Commits records already put in the set in place, with the trust
    /// evaluated with them; takes them out again if the commit fails.
    fn keep(
        &mut self,
        fresh: Vec<VerifiedRecord>,
        trust: Trust,
    ) -> Result<Vec<VerifiedRecord>, EngineError> {
        let docs = match self.commit_records(&fresh, &trust) {
            Ok(docs) => docs,
            Err(e) => {
                self.withdraw(&fresh);
                return Err(e);
            }
        };
        self.trust = std::sync::Arc::new(trust);
        for doc in &docs {
            self.reevaluate(doc)?;
        }
        if !docs.is_empty() {
            let mut done = Batch::new();
            done.clear_reevaluation();
            self.store.commit_with(done, self.durability)?;
        }
        Ok(fresh)
    }

    /// Adds what it can of verified records not held yet: each record whose
    /// signer is a member when evaluated with everything held and every
    /// record given goes in, in one batch; passes until nothing more gets
    /// in. Returns the records kept and those left out (their signer is not
    /// known yet: its certificate may be in another batch). Arrival order
    /// and batching never decide what a node keeps.
    pub(crate) fn admit_what_may(
        &mut self,
        mut left: Vec<VerifiedRecord>,
    ) -> Result<(Vec<VerifiedRecord>, Vec<VerifiedRecord>), EngineError> {
        let mut kept = Vec::new();
        loop {
            if left.is_empty() {
                return Ok((kept, left));
            }
            let trust = self.evaluate_with(&left);
            let signers = RecordSigners::new(&trust, *self.membership.root());
            let (may, rest): (Vec<_>, Vec<_>) =
                left.into_iter().partition(|v| signers.may_sign(&v.signer));
            if rest.is_empty() {
                // All of them: kept with the evaluation just made.
                kept.extend(self.keep(may, trust)?);
                return Ok((kept, rest));
            }
            self.withdraw(&may);
            self.withdraw(&rest);
            if may.is_empty() {
                return Ok((kept, rest));
            }
            match self.admit(may.clone()) {
                // The rest were judged with these already: no member signs
                // them until other records come.
                Ok(f) => {
                    kept.extend(f);
                    return Ok((kept, rest));
                }
                // Membership is not monotone (a record left out may have
                // been what refused another's signer): one at a time, as
                // each is admissible with what is held, in passes while
                // some get in.
                Err(EngineError::NotMember { .. }) => {
                    let before = kept.len();
                    let mut still = rest;
                    for v in may {
                        match self.admit(vec![v.clone()]) {
                            Ok(f) => kept.extend(f),
                            Err(EngineError::NotMember { .. }) => still.push(v),
                            Err(e) => return Err(e),
                        }
                    }
                    if kept.len() == before {
                        return Ok((kept, still));
                    }
                    left = still;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Puts `records` into the set in place and evaluates it: the caller
    /// keeps them, or takes them out again with [`Replica::withdraw`].
    fn evaluate_with(&mut self, records: &[VerifiedRecord]) -> Trust {
        for v in records {
            self.membership.insert(v.clone());
        }
        self.membership.evaluate()
    }

    fn withdraw(&mut self, records: &[VerifiedRecord]) {
        for v in records {
            self.membership.remove(&v.hash);
        }
    }

    /// Commits records the set now holds, and the metadata of documents
    /// their geneses add; returns the documents to evaluate again (all of
    /// them if the revocations moved; else those whose genesis or write
    /// keys moved, and those holding quarantined changes: a record may
    /// unlock them), marked in the same commit so a crash before they are
    /// evaluated again is finished at open.
    fn commit_records(
        &mut self,
        fresh: &[VerifiedRecord],
        trust: &Trust,
    ) -> Result<std::collections::BTreeSet<DocId>, EngineError> {
        let mut batch = Batch::new();
        for v in fresh {
            batch.put_record(&v.record);
        }
        for (doc, _) in trust.documents() {
            if self.trust.genesis(doc).is_none() && self.store.doc_meta(doc)?.is_none() {
                batch.put_doc(
                    doc,
                    &DocMeta {
                        genesis: doc.0,
                        ..DocMeta::default()
                    },
                );
            }
        }
        let all = !self.trust.same_revocations(trust);
        let mut docs = self.trust.documents_changed(trust);
        if all {
            docs.extend(self.store.docs()?.into_iter().map(|(doc, _)| doc));
        } else {
            // Only what waits in quarantine may get in with new records:
            // read from the quarantine, not from every document's metadata
            // (records come in many batches during a cold sync).
            docs.extend(self.store.quarantined_docs()?);
        }
        if !docs.is_empty() {
            batch.mark_reevaluation();
        }
        self.store.commit_with(batch, self.durability)?;
        Ok(docs)
    }

    /// Ingest stores what the rule accepts without applying it to automerge
    /// (`true`), for a node that keeps no view (a hub): the changes are
    /// judged by rules 1-7, stored, and their documents marked; rule 8 runs
    /// when [`Replica::settle`] reaches them, which moves any change
    /// automerge cannot apply to quarantine, as ingest would have. A local
    /// write settles its document first and is applied at once.
    pub fn defer_application(&mut self, on: bool) {
        self.defer_apply = on;
    }

    /// Runs `f` with ingest's commits relaxed (`Durability::Relaxed`): for
    /// changes and records received by sync, which the peer can send again.
    /// They are written and readable when ingest returns, survive the
    /// process being killed, and are fsync'd within
    /// [`gongjian_store::RELAXED_SYNC`] or by the next synced commit (the
    /// log keeps commits in order: a power loss keeps a prefix of them).
    /// A local write is always synced before it is acknowledged.
    pub fn received<T>(&mut self, f: impl FnOnce(&mut Replica) -> T) -> T {
        let before = std::mem::replace(&mut self.durability, gongjian_store::Durability::Relaxed);
        let out = f(self);
        self.durability = before;
        out
    }

    /// Judges every document again (after an interrupted re-evaluation).
    pub fn reevaluate_all(&mut self) -> Result<(), EngineError> {
        for (doc, _) in self.store.docs()? {
            self.reevaluate(&doc)?;
        }
        let mut done = Batch::new();
        done.clear_reevaluation();
        self.store.commit_blocking(done)?;
        Ok(())
    }

    /// Creates a document owned by this node's unit, with this node's key as
    /// its write key.
    pub fn create_document(&mut self, doc_type: DocType, now: u64) -> Result<DocId, EngineError> {
        self.create_document_with_parties(doc_type, vec![], now)
    }

    /// Creates a document naming other party units (an agreement).
    pub fn create_document_with_parties(
        &mut self,
        doc_type: DocType,
        parties: Vec<UnitId>,
        now: u64,
    ) -> Result<DocId, EngineError> {
        let local = self.local.clone().ok_or(EngineError::NoSecret)?;
        self.trust.admit(&local.secret.public(), now)?;
        // A genesis record lost with damaged records leaves its document's
        // changes held and the document unknown: this unit's own list would
        // look missing, and a second one be made beside it. Not while any
        // document this key wrote to (accepted changes, or those a
        // re-evaluation without the genesis moved to quarantine) lacks it.
        let me = local.secret.public();
        for (held, meta) in self.store.docs()? {
            if self.trust.genesis(&held).is_some() {
                continue;
            }
            let wrote = meta.clock.keys().any(|a| a.key == me)
                || self
                    .store
                    .quarantined(&held)?
                    .iter()
                    .any(|q| q.change.header().actor.key == me);
            if wrote {
                return Err(EngineError::GenesisMissing(held.to_string()));
            }
        }
        let parties_ok = match doc_type {
            DocType::Agreement => gongjian_model::agreement_parties(local.unit, &parties).is_some(),
            _ => parties.is_empty(),
        };
        if !parties_ok {
            return Err(EngineError::Parties(doc_type.as_str()));
        }
        let genesis = Genesis {
            doc_type,
            unit: local.unit,
            parties,
            created_at: now,
            write_keys: vec![local.secret.public()],
        };
        let record = genesis.sign(&local.secret);
        let doc = DocId(record.hash());
        self.insert_records(vec![record])?;
        if self.trust.genesis(&doc).is_none() {
            return Err(EngineError::NotWriter(doc.to_string()));
        }
        Ok(doc)
    }

    /// Documents owned by `unit` of a type.
    pub fn documents_of(&self, unit: &UnitId, doc_type: DocType) -> Vec<DocId> {
        self.trust
            .documents()
            .filter(|(_, g)| g.unit == *unit && g.doc_type == doc_type)
            .map(|(d, _)| *d)
            .collect()
    }

    /// Loads a document from its accepted changes (or the cache).
    pub fn load(&self, doc: &DocId) -> Result<Automerge, EngineError> {
        if let Some(am) = self.cache.peek(doc) {
            return Ok(am.clone());
        }
        tracing::debug!(doc = %doc.fmt_short(), "building the document from its changes");
        let changes = self.store.doc_changes(doc)?;
        Ok(crate::ingest::build(&changes))
    }

    /// The cut of a revocation of `keys` at what this node holds: every
    /// accepted prefix of their actors in every document (to its head), and
    /// every record they signed (PROTOCOL.md §5.2). Normalised.
    pub fn revocation_cut(
        &self,
        keys: &std::collections::BTreeSet<PublicKey>,
    ) -> Result<gongjian_identity::RevocationCut, EngineError> {
        let mut cut = gongjian_identity::RevocationCut::default();
        for (doc, meta) in self.store.docs()? {
            for (actor, seq) in &meta.clock {
                if keys.contains(&actor.key)
                    && let Some(head) = self.store.change_at(&doc, actor, *seq)?
                {
                    cut.changes
                        .push(gongjian_identity::CutEntry::new(&doc, *actor, *seq, head));
                }
            }
        }
        for r in self.membership.records() {
            if keys.contains(&r.signer) {
                cut.keep_record(&r.hash);
            }
        }
        cut.normalize();
        Ok(cut)
    }

    /// The accepted changes of `doc` after `have`, to send on; plus, for
    /// an actor whose last accepted change held here is unsigned (it came
    /// with an edge signature on a later change that a revocation's cut
    /// then rejected), the quarantined run from there up to that signed
    /// change. The run is rejected again by the receiver, but its hash
    /// links let the signature vouch for the accepted prefix; without it
    /// that prefix could never be passed on (PROTOCOL.md §8.4).
    pub fn changes_to_send(
        &self,
        doc: &DocId,
        have: &std::collections::BTreeMap<ActorId, u64>,
    ) -> Result<Vec<SignedChange>, EngineError> {
        let mut out = self.store.changes_after(doc, have)?;
        let mut last: std::collections::BTreeMap<ActorId, (u64, Option<Hash>)> = Default::default();
        for c in &out {
            let e = last.entry(c.header().actor).or_insert((0, None));
            if c.header().seq >= e.0 {
                *e = (c.header().seq, c.signature().is_none().then(|| c.hash()));
            }
        }
        let open: Vec<(ActorId, u64, Hash)> = last
            .into_iter()
            .filter_map(|(a, (seq, unsigned))| unsigned.map(|h| (a, seq, h)))
            .collect();
        if open.is_empty() {
            return Ok(out);
        }
        // A rejected run is found by its hash links from the accepted
        // change, each step one seq on: at a fork several changes follow
        // one, and a run that mixed branches no one signature would vouch
        // for. Of the runs that reach a signature the one of fewest bytes
        // (a key grinding hashes cannot put a huge one first).
        let actors: std::collections::BTreeSet<ActorId> = open.iter().map(|(a, _, _)| *a).collect();
        let mut held: std::collections::BTreeMap<Hash, SignedChange> = Default::default();
        let mut next: std::collections::BTreeMap<Hash, Vec<Hash>> = Default::default();
        for q in self.store.quarantined(doc)? {
            let h = q.change.header();
            if actors.contains(&h.actor) {
                for d in &h.deps {
                    next.entry(*d).or_default().push(q.change.hash());
                }
                held.insert(q.change.hash(), q.change);
            }
        }
        for (actor, seq, prev) in open {
            out.extend(voucher_run(&held, &next, actor, seq, prev));
        }
        Ok(out)
    }

    /// Makes a local change with `edit`, signs it, runs it through the same
    /// acceptance rule as any received change, and returns once it is durable.
    pub fn local_change<E>(
        &mut self,
        doc: &DocId,
        now: u64,
        edit: impl FnOnce(&mut Automerge) -> Result<Vec<u8>, E>,
    ) -> Result<SignedChange, EngineError>
    where
        EngineError: From<E>,
    {
        let local = self.local.clone().ok_or(EngineError::NoSecret)?;
        // Certificate expiry is checked here, at local writes, never when
        // accepting a stored change.
        self.trust.admit(&local.secret.public(), now)?;
        let writers = self
            .trust
            .write_keys(doc)
            .ok_or_else(|| EngineError::UnknownDocument(doc.to_string()))?;
        if !writers.contains(&local.secret.public()) {
            return Err(EngineError::NotWriter(doc.to_string()));
        }
        // A local write is judged whole (rule 8 included) and applied now.
        self.settle_doc(doc)?;
        let deferred = std::mem::replace(&mut self.defer_apply, false);
        let out = self.local_change_applied(doc, &local, edit);
        self.defer_apply = deferred;
        out
    }

    fn local_change_applied<E>(
        &mut self,
        doc: &DocId,
        local: &LocalIdentity,
        edit: impl FnOnce(&mut Automerge) -> Result<Vec<u8>, E>,
    ) -> Result<SignedChange, EngineError>
    where
        EngineError: From<E>,
    {
        let mut am = match self.cache.pop(doc) {
            Some(am) => am,
            None => self.load(doc)?,
        };
        am.set_actor(automerge::ActorId::from(self.actor()?.to_bytes()));
        let chunk = edit(&mut am)?;
        let change = SignedChange::sign(*doc, chunk, &local.secret)
            .map_err(|e| EngineError::LocalInvalid(e.into()))?;
        // The edited document already holds the change; applying it again
        // on ingest is a no-op. If the rule refuses it, the copy is dropped.
        self.cache.put(*doc, am);
        let report = match self.ingest(vec![change.encode()]) {
            Ok(r) => r,
            Err(e) => {
                self.cache.pop(doc);
                return Err(e);
            }
        };
        if !report.invalid.is_empty() || !report.rejected.is_empty() || !report.pending.is_empty() {
            self.cache.pop(doc);
        }
        if let Some((_, e)) = report.invalid.into_iter().next() {
            return Err(EngineError::LocalInvalid(e));
        }
        if let Some((_, r)) = report.rejected.into_iter().next() {
            return Err(EngineError::LocalRejected(r));
        }
        Ok(change)
    }
}

/// Who may sign records a node keeps, under a trust: the root, a key with a
/// valid certificate, or a write key of a valid document (those gathered
/// once, on the first key that is neither of the others).
struct RecordSigners<'a> {
    trust: &'a Trust,
    root: PublicKey,
    write_keys: std::cell::OnceCell<std::collections::HashSet<PublicKey>>,
}

impl<'a> RecordSigners<'a> {
    fn new(trust: &'a Trust, root: PublicKey) -> Self {
        RecordSigners {
            trust,
            root,
            write_keys: std::cell::OnceCell::new(),
        }
    }

    fn may_sign(&self, key: &PublicKey) -> bool {
        *key == self.root
            || !self.trust.units_of(key).is_empty()
            || self
                .write_keys
                .get_or_init(|| {
                    self.trust
                        .documents()
                        .filter_map(|(d, _)| self.trust.write_keys(d))
                        .flatten()
                        .copied()
                        .collect()
                })
                .contains(key)
    }
}

/// The run of `actor`'s changes from `from` (at `seq`) to a signed change
/// that weighs fewest bytes, each change one seq past the one it depends on
/// by hash (`next` maps a hash to the changes that depend on it, `held`
/// holds them): a cheapest-path search, ties by hash. Empty if none
/// reaches a signature.
fn voucher_run(
    held: &std::collections::BTreeMap<Hash, SignedChange>,
    next: &std::collections::BTreeMap<Hash, Vec<Hash>>,
    actor: ActorId,
    seq: u64,
    from: Hash,
) -> Vec<SignedChange> {
    use std::cmp::Reverse;
    // Each change reached, with the one its cheapest run came through.
    let mut came: std::collections::BTreeMap<Hash, Hash> = Default::default();
    let mut todo = std::collections::BinaryHeap::new();
    todo.push(Reverse((0usize, from, seq, from)));
    while let Some(Reverse((bytes, at, at_seq, through))) = todo.pop() {
        if at != from {
            if came.contains_key(&at) {
                continue;
            }
            came.insert(at, through);
            if held[&at].signature().is_some() {
                let mut run = Vec::new();
                let mut h = at;
                while h != from {
                    run.push(held[&h].clone());
                    h = came[&h];
                }
                run.reverse();
                return run;
            }
        }
        for child in next.get(&at).into_iter().flatten() {
            let c = &held[child];
            if c.header().actor == actor
                && c.header().seq == at_seq + 1
                && !came.contains_key(child)
            {
                let size = c.chunk().len() + gongjian_sync::CHANGE_OVERHEAD;
                todo.push(Reverse((bytes + size, *child, at_seq + 1, at)));
            }
        }
    }
    Vec::new()
}
