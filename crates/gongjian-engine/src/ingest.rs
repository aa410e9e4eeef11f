//! The ingest pipeline, the same for received and local changes.

use std::collections::{BTreeMap, BTreeSet};

use automerge::Automerge;
use gongjian_identity::{DocId, Hash, SignedChange};
use gongjian_model::{
    ApplyOutcome, ChangeMeta, Rejection, Verdict, apply_accepted, evaluate_document,
};
use gongjian_store::{Batch, DocMeta};

use crate::applying;
use crate::error::{EngineError, InvalidChange};
use crate::fast::{self, Fast};
use crate::replica::Replica;
use crate::signatures::{Unchecked, check_signatures, vouched};
use crate::staged::Staged;

/// Changes of one document held in quarantine at most.
pub const MAX_QUARANTINE_PER_DOC: usize = 1_000;
/// Changes of one author held in one document's quarantine at most, so one
/// member cannot fill another unit's quarantine.
pub const MAX_QUARANTINE_PER_AUTHOR: usize = 100;
pub(crate) const APPLY_FAILED: &str = "apply-failed";

/// What became of a batch of received changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Newly accepted (stored, applied).
    pub accepted: Vec<Hash>,
    /// The document of each of `accepted`, in the same order: one change
    /// (the same chunk, so the same hash) may be accepted in two documents.
    pub accepted_docs: Vec<DocId>,
    /// Held in quarantine, waiting for dependencies or the genesis.
    pub pending: Vec<Hash>,
    /// Held in quarantine, refused by the acceptance rule.
    pub rejected: Vec<(Hash, Rejection)>,
    /// Refused before the rule: nothing of them is stored. Index into the input.
    pub invalid: Vec<(usize, InvalidChange)>,
    /// Changes of the call, new or held already, rejected for their
    /// actor's equivocation (whoever sent them holds a fork's branch).
    pub forked: Vec<Hash>,
    /// Documents whose accepted set lost changes (cut off by an
    /// equivocation the call proved).
    pub cut_off: BTreeSet<DocId>,
}

/// What ingest did since the replica opened, for metrics: changes
/// accepted, held pending, and refused, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IngestCounters {
    pub accepted: u64,
    pub pending: u64,
    /// Kept in quarantine, refused by the acceptance rule, by reason.
    pub rejected: std::collections::BTreeMap<&'static str, u64>,
    /// Refused before the rule (nothing stored), by reason.
    pub invalid: std::collections::BTreeMap<&'static str, u64>,
    /// Parts of large calls handed to the store's writer before the call
    /// ended ([`crate::HAND_OVER_WRITES`]).
    pub parts_handed: u64,
    /// Calls whose built documents went to the rows hook on a thread of
    /// their own ([`crate::EXTRACT_ON_WORKER_DOCS`]).
    pub extracted_aside: u64,
    /// Calls some of whose documents the fast path applied on a worker
    /// thread, beside their judging ([`crate::APPLY_ON_TWO_CORES`]).
    pub applied_on_two_cores: u64,
}

/// A short, stable label of a rejection, for metrics.
fn rejection_reason(r: &Rejection) -> &'static str {
    match r {
        Rejection::NoGenesis => "no_genesis",
        Rejection::Unauthenticated => "unauthenticated",
        Rejection::NotWriteKey(_) => "not_write_key",
        Rejection::Revoked(_) => "revoked",
        Rejection::Equivocation { .. } => "equivocation",
        Rejection::SeqGap { .. } => "seq_gap",
        Rejection::DependsOnRejected(_) => "depends_on_rejected",
        Rejection::ApplyFailed => "apply_failed",
    }
}

/// A short, stable label of an invalid change, for metrics.
fn invalid_reason(r: &InvalidChange) -> &'static str {
    match r {
        InvalidChange::Decode(_) => "malformed",
        InvalidChange::Signature { .. } => "bad_signature",
        InvalidChange::UnknownAuthor { .. } => "unknown_author",
        InvalidChange::UnknownDocument { .. } => "unknown_document",
        InvalidChange::Unvouched { .. } => "unvouched",
        InvalidChange::QuarantineFull { .. } => "quarantine_full",
    }
}

impl IngestCounters {
    /// Changes that did not decode where ingest never saw them (inside a
    /// sync message), under the same label as those it refused.
    pub(crate) fn malformed(&mut self, n: usize) {
        *self.invalid.entry("malformed").or_default() += n as u64;
    }

    fn count(&mut self, r: &IngestReport) {
        self.accepted += r.accepted.len() as u64;
        self.pending += r.pending.len() as u64;
        for (_, why) in &r.rejected {
            *self.rejected.entry(rejection_reason(why)).or_default() += 1;
        }
        for (_, why) in &r.invalid {
            *self.invalid.entry(invalid_reason(why)).or_default() += 1;
        }
    }
}

fn meta(c: &SignedChange) -> ChangeMeta {
    let h = c.header();
    ChangeMeta {
        hash: h.hash,
        deps: h.deps.clone(),
        actor: h.actor,
        seq: h.seq,
        signed: c.signature().is_some(),
    }
}

fn reason(v: &Verdict) -> String {
    match v {
        Verdict::Accepted => "accepted".into(),
        Verdict::Pending(missing) => format!("pending: waiting for {} dependencies", missing.len()),
        Verdict::Rejected(Rejection::ApplyFailed) => APPLY_FAILED.into(),
        Verdict::Rejected(r) => format!("rejected: {r}"),
    }
}

/// The seq at which `c`'s actor forked, if `reason` (its quarantine entry's)
/// rejects it for that equivocation; read back from the reason's one
/// spelling, so nothing else can pass for it.
pub(crate) fn fork_seq(c: &SignedChange, why: &str) -> Option<u64> {
    let (_, after) = why.split_once(" equivocated at seq ")?;
    let fork_seq: u64 = after.split_once(':')?.0.parse().ok()?;
    let actor = c.header().actor;
    let expected = reason(&Verdict::Rejected(Rejection::Equivocation {
        actor,
        fork_seq,
    }));
    (why == expected).then_some(fork_seq)
}

/// New changes that would be quarantined beyond the bounds (per document,
/// per author key): held ones first, then new ones by (seq, hash); deterministic.
/// Changes accepted before (`previously`) that the new ones cut off do not
/// count: they take no more room than they did. Nor do changes rejected for
/// their actor's equivocation, in this call or any later one: counting them
/// would keep out the very branch that proves a fork (a node holding a
/// long branch could never learn of the other), and what a node accepts
/// would depend on which branch reached it first.
fn over_capacity(
    verdicts: &gongjian_model::DocVerdicts,
    all: &BTreeMap<Hash, SignedChange>,
    fresh: &[(usize, Hash)],
    previously: &BTreeSet<Hash>,
) -> Vec<Hash> {
    let fresh: BTreeSet<Hash> = fresh.iter().map(|(_, h)| *h).collect();
    let mut per_author: BTreeMap<gongjian_identity::PublicKey, usize> = BTreeMap::new();
    let mut total = 0usize;
    let mut over = Vec::new();
    // Held changes count first: they are already in the quarantine.
    let held = verdicts.verdicts.iter().filter(|(h, _)| !fresh.contains(h));
    // New changes by (seq, hash): the lowest of an author's chain are kept,
    // so the one missing dependency arriving unlocks what is held.
    let mut new: Vec<(&Hash, &Verdict)> = verdicts
        .verdicts
        .iter()
        .filter(|(h, _)| fresh.contains(h))
        .collect();
    new.sort_by_key(|(h, _)| (all[*h].header().seq, **h));
    for (h, v) in held.chain(new) {
        // A fork's proof is not counted either: it is signed by the actor's
        // own key, which could as well have written as much accepted, and
        // refusing it would leave this node on one branch while others
        // reject both (whichever came first would decide).
        let proof = matches!(v, Verdict::Rejected(Rejection::Equivocation { .. }));
        if *v == Verdict::Accepted || proof || previously.contains(h) {
            continue;
        }
        let author = all[h].header().actor.key;
        let n = per_author.entry(author).or_insert(0);
        if fresh.contains(h) && (*n >= MAX_QUARANTINE_PER_AUTHOR || total >= MAX_QUARANTINE_PER_DOC)
        {
            over.push(*h);
            continue;
        }
        *n += 1;
        total += 1;
    }
    over
}

/// From this many changes a call's wire encodings are decoded in two
/// halves on two threads (when the machine has two cores).
const PARALLEL_DECODE_MIN: usize = 1024;

/// Decodes each change's wire encoding, in order.
fn decode_all(wire: &[Vec<u8>]) -> Vec<Result<SignedChange, gongjian_identity::DecodeError>> {
    gongjian_identity::on_two_cores(wire, PARALLEL_DECODE_MIN, |part| {
        part.iter().map(|b| SignedChange::decode(b)).collect()
    })
}

/// The heads of a set of changes by their hash links, sorted: those none of
/// the others names as a dependency (automerge's heads once all applied).
pub(crate) fn graph_heads<'a>(
    changes: impl Iterator<Item = &'a SignedChange> + Clone,
) -> Vec<Hash> {
    let named: std::collections::HashSet<Hash> = changes
        .clone()
        .flat_map(|c| c.header().deps.iter().copied())
        .collect();
    let mut heads: Vec<Hash> = changes
        .map(SignedChange::hash)
        .filter(|h| !named.contains(h))
        .collect();
    heads.sort();
    heads.dedup();
    heads
}

/// A built document's heads, sorted (as `DocMeta` keeps them).
pub(crate) fn sorted_heads(am: &Automerge) -> Vec<Hash> {
    let mut heads: Vec<Hash> = am.get_heads().iter().map(|h| Hash(h.0)).collect();
    heads.sort();
    heads
}

/// Builds a document from changes already accepted. A change that fails to
/// apply is skipped and logged: a stored change never crashes the node.
pub(crate) fn build(changes: &[SignedChange]) -> Automerge {
    let mut todo: Vec<(Hash, &[u8])> = changes.iter().map(|c| (c.hash(), c.chunk())).collect();
    loop {
        let mut doc = Automerge::new();
        match apply_accepted(&mut doc, &todo, Automerge::new) {
            ApplyOutcome::Applied => return doc,
            ApplyOutcome::Failed { hashes, reason } => {
                tracing::error!(changes = hashes.len(), %reason, "stored changes do not apply; skipped");
                todo.retain(|(h, _)| !hashes.contains(h));
            }
        }
    }
}

impl Replica {
    /// Checks and ingests changes in their wire encoding.
    pub fn ingest(&mut self, wire: Vec<Vec<u8>>) -> Result<IngestReport, EngineError> {
        let report = self.ingest_inner(wire)?;
        self.counters.count(&report);
        Ok(report)
    }

    /// What ingest did since the replica opened.
    pub fn counters(&self) -> &IngestCounters {
        &self.counters
    }

    fn ingest_inner(&mut self, wire: Vec<Vec<u8>>) -> Result<IngestReport, EngineError> {
        let mut report = IngestReport::default();
        let mut decoded: Vec<(usize, SignedChange)> = Vec::with_capacity(wire.len());
        for (i, result) in decode_all(&wire).into_iter().enumerate() {
            match result {
                Ok(c) => decoded.push((i, c)),
                Err(e) => report.invalid.push((i, e.into())),
            }
        }
        self.ingest_checked(decoded, report, &[0], true)
    }

    /// Ingests changes already decoded (as sync reads them from their
    /// compact form), the changes of several frames in one call (one
    /// commit), each frame's signatures judged as if it came alone
    /// ([`check_signatures`]); indices in the report run over all of them,
    /// frame after frame.
    pub(crate) fn ingest_frames(
        &mut self,
        frames: Vec<Vec<SignedChange>>,
    ) -> Result<IngestReport, EngineError> {
        let mut starts = Vec::with_capacity(frames.len());
        let mut decoded = Vec::new();
        for f in frames {
            starts.push(decoded.len());
            decoded.extend(f);
        }
        let decoded = decoded.into_iter().enumerate().collect();
        let report = self.ingest_checked(decoded, IngestReport::default(), &starts, false)?;
        self.counters.count(&report);
        Ok(report)
    }

    /// Ingest from decoded changes on, each with its index in the call;
    /// `starts`: where each frame begins (`&[0]` for one).
    /// `parts`: whether a large call may hand its writes over in parts
    /// ([`Staged::hand_over`]). Not for what sync receives: a folded call
    /// that fails is ingested again frame by frame, and each session must
    /// then find its changes new, not partly stored (what it fetches next
    /// follows from what its frame got in).
    fn ingest_checked(
        &mut self,
        mut decoded: Vec<(usize, SignedChange)>,
        mut report: IngestReport,
        starts: &[usize],
        parts: bool,
    ) -> Result<IngestReport, EngineError> {
        let (mut bad, unchecked) = check_signatures(&mut decoded, starts);
        let mut by_doc: BTreeMap<DocId, Vec<(usize, SignedChange)>> = BTreeMap::new();
        for (k, (i, c)) in decoded.into_iter().enumerate() {
            if let Some(failure) = bad.remove(&k) {
                report.invalid.push((
                    i,
                    InvalidChange::Signature {
                        hash: c.hash(),
                        failure,
                    },
                ));
                continue;
            }
            if self.trust.write_keys(c.doc()).is_none() {
                report.invalid.push((
                    i,
                    InvalidChange::UnknownDocument {
                        hash: c.hash(),
                        doc: c.doc().to_string(),
                    },
                ));
                continue;
            }
            let author = c.header().actor.key;
            let known = !self.trust.units_of(&author).is_empty()
                || self
                    .trust
                    .write_keys(c.doc())
                    .is_some_and(|w| w.contains(&author));
            if !known {
                report.invalid.push((
                    i,
                    InvalidChange::UnknownAuthor {
                        hash: c.hash(),
                        author: author.to_string(),
                    },
                ));
                continue;
            }
            by_doc.entry(*c.doc()).or_default().push((i, c));
        }
        let mut staged = Staged::for_call(by_doc.len(), !self.defer_apply);
        let judged = self.judge_docs(by_doc, &unchecked, &mut report, &mut staged, parts);
        // Every document is with the hook before the call commits.
        staged.finish_extraction(self.cache.cap().get());
        self.counters.parts_handed += staged.handed.len() as u64;
        if let Err(e) = judged {
            // Parts handed over are written all the same: waited for, so
            // nothing of the call is still being written when the caller
            // tries again (a retry finds them held).
            staged.wait_handed();
            return Err(e);
        }
        self.commit_staged(staged)?;
        report.invalid.sort_by_key(|(i, _)| *i);
        Ok(report)
    }

    /// Judges each document's new changes (the fast path, else the whole
    /// rule), staging what to write; parts handed to the writer as it goes.
    /// Documents are judged and staged in order on the call's thread; the
    /// fast path's application of them runs beside, on a worker thread and
    /// this one ([`crate::applying`]), once two documents or more judged
    /// weigh [`APPLY_ON_TWO_CORES`](crate::APPLY_ON_TWO_CORES) changes. A document
    /// of the whole rule waits for the ones before it.
    fn judge_docs(
        &mut self,
        by_doc: BTreeMap<DocId, Vec<(usize, SignedChange)>>,
        unchecked: &Unchecked,
        report: &mut IngestReport,
        staged: &mut Staged,
        parts: bool,
    ) -> Result<(), EngineError> {
        let shared = applying::Shared::default();
        let store = self.store.clone();
        let built = self.built.clone();
        let trust = self.trust.clone();
        let hook: fast::Hook<'_> = built.as_deref().map(|b| (b, &*trust));
        let judged = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            std::thread::scope(|s| {
                // The worker ends with the call, however it ends.
                let _close = CloseOnDrop(&shared);
                let mut applying = applying::Applying::new(&shared, &store, hook);
                let mut worker = None;
                let judged = self.judge_in_order(
                    by_doc,
                    unchecked,
                    report,
                    staged,
                    parts,
                    &mut applying,
                    &mut || {
                        std::thread::Builder::new()
                            .name("gongjian-apply".into())
                            .spawn_scoped(s, || shared.work(&store, hook))
                            .ok()
                            .map(|w| worker = Some(w))
                            .is_some()
                    },
                );
                shared.close(judged.is_err());
                if let Some(Err(panic)) = worker.map(|w| w.join()) {
                    std::panic::resume_unwind(panic)
                }
                if applying.by_worker > 0 {
                    self.counters.applied_on_two_cores += 1;
                }
                judged
            })
        }));
        match judged {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Judged::Failed(e))) => Err(e),
            Ok(Err(Judged::Stopped)) => unreachable!("the worker's panic was raised"),
            Err(panic) => {
                // Nothing of the call is still being written when the panic
                // reaches the caller.
                staged.stop_extraction();
                staged.wait_handed();
                std::panic::resume_unwind(panic)
            }
        }
    }

    /// The loop of [`Replica::judge_docs`]: `start_worker` makes the worker
    /// (false if it could not be made).
    #[allow(clippy::too_many_arguments)]
    fn judge_in_order(
        &mut self,
        by_doc: BTreeMap<DocId, Vec<(usize, SignedChange)>>,
        unchecked: &Unchecked,
        report: &mut IngestReport,
        staged: &mut Staged,
        parts: bool,
        applying: &mut applying::Applying<'_>,
        start_worker: &mut dyn FnMut() -> bool,
    ) -> Result<(), Judged> {
        // Documents built and kept for the cache: the call's last ones.
        let keep_from = by_doc.len().saturating_sub(self.cache.cap().get());
        let mut docs = by_doc.into_iter().enumerate().peekable();
        while let Some((k, (doc, new))) = docs.next() {
            // Applying at once to a document whose application was
            // deferred: settled first (rule 8 over what it holds).
            if !self.defer_apply {
                self.settle_doc(&doc)?;
            }
            match self.fast_judge(&doc, &new, report, staged)? {
                Fast::Done => {}
                Fast::Apply(mut job) => {
                    job.keep = k >= keep_from;
                    applying.push((*job, new));
                    if applying.wants_worker() {
                        let made = start_worker();
                        applying.worker_started(made);
                    }
                }
                Fast::Slow => {
                    let done = applying.drain().map_err(|_| Judged::Stopped)?;
                    self.stage_applied(done, unchecked, report, staged)?;
                    self.process_doc(&doc, new, unchecked, &BTreeSet::new(), report, staged)?;
                }
            }
            let done = applying.ready().map_err(|_| Judged::Stopped)?;
            self.stage_applied(done, unchecked, report, staged)?;
            // After the last document the call commits at once.
            if parts && docs.peek().is_some() {
                staged.hand_over(&self.store)?;
            }
        }
        let done = applying.drain().map_err(|_| Judged::Stopped)?;
        self.stage_applied(done, unchecked, report, staged)?;
        Ok(())
    }

    /// Stages documents the fast path applied, in order; one automerge
    /// refused goes to the whole rule, as it would have alone.
    fn stage_applied(
        &mut self,
        done: Vec<applying::Applied>,
        unchecked: &Unchecked,
        report: &mut IngestReport,
        staged: &mut Staged,
    ) -> Result<(), EngineError> {
        for ((job, new), am) in done {
            match am? {
                Some(am) => self.fast_built(job, &new, am, report, staged),
                None => {
                    let doc = job.doc;
                    self.process_doc(&doc, new, unchecked, &BTreeSet::new(), report, staged)?;
                }
            }
        }
        Ok(())
    }

    /// Re-runs the rule over a document (after membership records changed).
    pub(crate) fn reevaluate(&mut self, doc: &DocId) -> Result<(), EngineError> {
        if !self.defer_apply {
            self.settle_doc(doc)?;
        }
        self.judge_again(doc, &BTreeSet::new())
    }

    /// The full rule over what a document holds, `failed` known not to
    /// apply; committed.
    pub(crate) fn judge_again(
        &mut self,
        doc: &DocId,
        failed: &BTreeSet<Hash>,
    ) -> Result<(), EngineError> {
        let mut report = IngestReport::default();
        let mut staged = Staged::default();
        self.process_doc(
            doc,
            Vec::new(),
            &Unchecked::new(),
            failed,
            &mut report,
            &mut staged,
        )?;
        self.commit_staged(staged)
    }

    /// The full rule over a document with `new` changes. `failed`: changes
    /// already known not to apply (`Replica::settle` found them).
    pub(crate) fn process_doc(
        &mut self,
        doc: &DocId,
        new: Vec<(usize, SignedChange)>,
        unchecked: &Unchecked,
        failed: &BTreeSet<Hash>,
        report: &mut IngestReport,
        staged: &mut Staged,
    ) -> Result<(), EngineError> {
        tracing::debug!(doc = %doc.fmt_short(), new = new.len(), "full evaluation of the document");
        self.cache.pop(doc);
        let stored = self.store.doc_changes(doc)?;
        let quarantined = self.store.quarantined(doc)?;
        let previously: BTreeSet<Hash> = stored.iter().map(SignedChange::hash).collect();
        // Application is retried on every evaluation: a change that failed
        // may apply now that more changes are in (PROTOCOL.md, rule 8).
        let mut apply_failed: BTreeSet<Hash> = failed.clone();
        if self.defer_apply {
            // Deferred, a change automerge refused stays refused until
            // settling tries it again (as the whole rule would at its next
            // evaluation): rules 1-7 alone would accept it again.
            apply_failed.extend(
                quarantined
                    .iter()
                    .filter(|q| q.reason == APPLY_FAILED)
                    .map(|q| q.change.hash()),
            );
        }
        let old_reasons: BTreeMap<Hash, String> = quarantined
            .iter()
            .map(|q| (q.change.hash(), q.reason.clone()))
            .collect();

        let mut all: BTreeMap<Hash, SignedChange> = BTreeMap::new();
        for c in stored.iter().chain(quarantined.iter().map(|q| &q.change)) {
            all.insert(c.hash(), c.clone());
        }
        // Unsigned changes are kept only if a signed change of the same
        // actor, held or arriving, reaches them through same-actor deps.
        let vouched = vouched(all.values().chain(new.iter().map(|(_, c)| c)));
        let mut fresh: Vec<(usize, Hash)> = Vec::new();
        let mut upgraded: BTreeSet<Hash> = BTreeSet::new();
        // Every change of the call that reached the rule, new or held.
        let mut received: BTreeSet<Hash> = BTreeSet::new();
        for (i, c) in new {
            let h = c.hash();
            if c.signature().is_none() && !vouched.contains(&h) {
                report
                    .invalid
                    .push((i, InvalidChange::Unvouched { hash: h }));
                continue;
            }
            received.insert(h);
            match all.entry(h) {
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(c);
                    fresh.push((i, h));
                }
                // A signed copy replaces an unsigned one held: the verdict
                // must not depend on which copy came first.
                std::collections::btree_map::Entry::Occupied(mut e)
                    if e.get().signature().is_none() && c.signature().is_some() =>
                {
                    e.insert(c);
                    upgraded.insert(h);
                }
                std::collections::btree_map::Entry::Occupied(_) => {}
            }
        }
        let (verdicts, mut doc_state, moved) = loop {
            let metas: Vec<ChangeMeta> = all.values().map(meta).collect();
            let verdicts = evaluate_document(&self.trust, doc, &metas, &apply_failed);
            // New changes the quarantine has no room for are refused (not
            // stored), then the document is judged without them, so what is
            // stored is always what the rule says of what is held.
            let over = over_capacity(&verdicts, &all, &fresh, &previously);
            if !over.is_empty() {
                for h in over {
                    let i = fresh
                        .iter()
                        .find(|(_, f)| *f == h)
                        .map(|(i, _)| *i)
                        .unwrap_or(0);
                    report.invalid.push((
                        i,
                        InvalidChange::QuarantineFull {
                            hash: h,
                            max: MAX_QUARANTINE_PER_AUTHOR,
                        },
                    ));
                    all.remove(&h);
                    fresh.retain(|(_, f)| *f != h);
                    received.remove(&h);
                }
                // Unsigned changes vouched for only by a change just
                // refused go too: nothing unvouched is ever stored.
                // Those whose own signature was taken off unchecked
                // (their voucher arrived with them) keep it if it verifies;
                // one put back vouches in turn for its own run, so this
                // goes on until nothing more is put back.
                let mut tried: BTreeSet<Hash> = BTreeSet::new();
                let orphans = loop {
                    let still = self::vouched(all.values());
                    let orphans: Vec<(usize, Hash)> = fresh
                        .iter()
                        .filter(|(_, h)| all[h].signature().is_none() && !still.contains(h))
                        .copied()
                        .collect();
                    let mut restored = false;
                    for (_, h) in &orphans {
                        // Each one's signatures are tried once.
                        if !tried.insert(*h) {
                            continue;
                        }
                        let Some(sigs) = unchecked.get(&(*doc, *h)) else {
                            continue;
                        };
                        let Some(c) = all.get_mut(h) else { continue };
                        for sig in sigs {
                            c.set_signature(*sig);
                            if c.verify().is_ok() {
                                restored = true;
                                break;
                            }
                            c.take_signature();
                        }
                    }
                    if !restored {
                        break orphans;
                    }
                };
                for (i, h) in orphans {
                    report.invalid.push((
                        i,
                        InvalidChange::QuarantineFull {
                            hash: h,
                            max: MAX_QUARANTINE_PER_AUTHOR,
                        },
                    ));
                    all.remove(&h);
                    fresh.retain(|(_, f)| *f != h);
                    received.remove(&h);
                }
                continue;
            }
            let kept: Vec<SignedChange> = verdicts
                .order
                .iter()
                .filter(|h| previously.contains(h))
                .map(|h| all[h].clone())
                .collect();
            let cut_off = kept.len() < previously.len();
            let added: Vec<(Hash, &[u8])> = verdicts
                .order
                .iter()
                .filter(|h| !previously.contains(h))
                .map(|h| (*h, all[h].chunk()))
                .collect();
            let quarantine_moved = verdicts.verdicts.iter().any(|(h, v)| match v {
                Verdict::Accepted => false,
                other => old_reasons.get(h) != Some(&reason(other)),
            });
            let forked: Vec<Hash> = received
                .iter()
                .filter(|h| {
                    matches!(
                        verdicts.verdicts.get(*h),
                        Some(Verdict::Rejected(Rejection::Equivocation { .. }))
                    )
                })
                .copied()
                .collect();
            if added.is_empty() && !cut_off && !quarantine_moved && upgraded.is_empty() {
                report.forked.extend(forked);
                return Ok(());
            }
            if self.defer_apply {
                // Rule 8 waits for `Replica::settle` (rules 1-7 hold until then).
                report.forked.extend(forked);
                if cut_off {
                    report.cut_off.insert(*doc);
                }
                break (verdicts, None, !added.is_empty() || cut_off);
            }
            let mut am = if cut_off {
                build(&kept)
            } else {
                build(&stored)
            };
            let base = kept.clone();
            match apply_accepted(&mut am, &added, || build(&base)) {
                ApplyOutcome::Applied => {
                    report.forked.extend(forked);
                    if cut_off {
                        report.cut_off.insert(*doc);
                    }
                    break (verdicts, Some(am), !added.is_empty() || cut_off);
                }
                ApplyOutcome::Failed { hashes, reason } => {
                    tracing::warn!(doc = %doc.fmt_short(), changes = hashes.len(), %reason, "quarantined: automerge could not apply them");
                    apply_failed.extend(hashes);
                }
            }
        };

        let mut batch = Batch::new();
        let mut quarantine_count = 0usize;
        let fresh_set: BTreeMap<Hash, usize> = fresh.iter().map(|(i, h)| (*h, *i)).collect();
        let mut clock = BTreeMap::new();
        for (hash, verdict) in &verdicts.verdicts {
            let change = &all[hash];
            match verdict {
                Verdict::Accepted => {
                    let h = change.header();
                    let e = clock.entry(h.actor).or_insert(0);
                    *e = (*e).max(h.seq);
                    if !previously.contains(hash) || upgraded.contains(hash) {
                        batch.put_change(change);
                        if fresh_set.contains_key(hash) {
                            report.accepted.push(*hash);
                            report.accepted_docs.push(*doc);
                        }
                    }
                }
                other => {
                    let why = reason(other);
                    let is_new = fresh_set.contains_key(hash);
                    quarantine_count += 1;
                    if previously.contains(hash) {
                        batch.remove_change(change);
                    }
                    if old_reasons.get(hash) != Some(&why) || upgraded.contains(hash) {
                        batch.quarantine(change, &why);
                    }
                    if is_new {
                        match other {
                            Verdict::Pending(_) => report.pending.push(*hash),
                            Verdict::Rejected(r) => report.rejected.push((*hash, r.clone())),
                            Verdict::Accepted => {}
                        }
                    }
                }
            }
        }
        let heads = match doc_state.as_mut() {
            Some(am) => sorted_heads(am),
            None => {
                if moved {
                    batch.mark_unapplied(doc);
                }
                graph_heads(verdicts.order.iter().map(|h| &all[h]))
            }
        };
        batch.put_doc(
            doc,
            &DocMeta {
                genesis: doc.0,
                heads: heads.clone(),
                changes: verdicts.order.len() as u64,
                quarantined: quarantine_count as u64,
                clock,
            },
        );
        if !verdicts.forks.is_empty() {
            tracing::warn!(doc = %doc.fmt_short(), forks = verdicts.forks.len(), "equivocation: forked actors are frozen");
        }
        staged.batch.append(batch);
        if let Some(am) = doc_state {
            // Rows only of a document whose accepted set moved (not one
            // whose quarantine alone did, or a signature upgraded).
            self.hand_built(staged, *doc, &heads, am, moved);
        }
        Ok(())
    }
}

/// How judging a call's documents ended early.
enum Judged {
    Failed(EngineError),
    /// The worker stopped: its hook panicked (raised once it is joined).
    Stopped,
}

impl From<EngineError> for Judged {
    fn from(e: EngineError) -> Judged {
        Judged::Failed(e)
    }
}

/// Closes the call's application queue when dropped (the call's thread
/// unwinding included), so the worker ends and the scope can join it.
struct CloseOnDrop<'a>(&'a applying::Shared);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close(std::thread::panicking());
    }
}
