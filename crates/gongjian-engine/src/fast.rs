//! The common case of ingest without re-judging the whole document: new
//! signed changes that extend the accepted history and disturb nothing.
//!
//! It gives exactly the verdicts `evaluate_document` would (PROTOCOL.md,
//! section 4): every condition below implies that no earlier verdict moves and
//! every new change passes rules 1-8. When one does not hold, the caller falls
//! back to the full evaluation.
//!
//! In three steps, so that a call's documents are applied on two cores:
//! [`Replica::fast_judge`] (rules 1-7, on the call's thread, in document
//! order), [`apply_fast`] (rule 8: automerge, on either core, beside the
//! judging: [`crate::applying`]; each document is its own),
//! [`Replica::fast_built`] (what is written, on the call's
//! thread, in document order again).

use std::collections::{BTreeMap, BTreeSet};

use automerge::Automerge;
use gongjian_identity::{DocId, Hash, SignedChange};
use gongjian_model::{ApplyOutcome, apply_accepted};
use gongjian_store::{Batch, DocMeta, Store};

use crate::error::EngineError;
use crate::ingest::IngestReport;
use crate::replica::Replica;
use crate::staged::Staged;

/// What the fast path's judging found for a document's new changes.
pub(crate) enum Fast {
    /// The full rule must run (nothing was changed).
    Slow,
    /// Nothing new, or every new change accepted and staged (application
    /// deferred).
    Done,
    /// Rules 1-7 accept every new change: apply them ([`apply_fast`]), then
    /// stage them ([`Replica::fast_built`]).
    Apply(Box<FastApply>),
}

/// A document whose new changes pass rules 1-7, to be applied.
pub(crate) struct FastApply {
    pub(crate) doc: DocId,
    meta: DocMeta,
    /// The accepted changes, dependencies first: indices into the call's
    /// new changes of the document.
    order: Vec<usize>,
    /// The document as built before, from the cache.
    cached: Option<Automerge>,
    /// Whether the document built is kept for the cache (one of the call's
    /// last): else it is dropped where it was built, as soon as its rows
    /// are taken (freed on the thread whose allocator holds it).
    pub(crate) keep: bool,
}

/// A document the fast path applied: its accepted heads (sorted), and the
/// document if it is kept for the cache ([`FastApply::keep`]).
pub(crate) struct Applied {
    pub(crate) heads: Vec<Hash>,
    pub(crate) am: Option<Automerge>,
}

impl FastApply {
    /// About how many changes applying it takes (a document not cached is
    /// built from its stored changes first).
    pub(crate) fn weight(&self) -> usize {
        let build = if self.cached.is_some() {
            0
        } else {
            self.meta.changes as usize
        };
        self.order.len() + build
    }
}

/// The rows hook ([`crate::Built`]) and the trust it is called with.
pub(crate) type Hook<'a> = Option<(&'a crate::Built, &'a gongjian_model::Trust)>;

/// Rule 8 for a document the fast path judged: its new changes applied to
/// the document as it is (built from the store if not cached), then handed
/// to the rows hook, if any, while it is at hand on this core. `None` if
/// automerge refuses one: the full rule must run. Touches only the
/// document's own keys, read-only, so documents apply on any thread.
pub(crate) fn apply_fast(
    job: &mut FastApply,
    new: &[(usize, SignedChange)],
    store: &Store,
    hook: Hook<'_>,
) -> Result<Option<Applied>, EngineError> {
    let doc = job.doc;
    let mut am = match job.cached.take() {
        Some(am) => am,
        // Nothing accepted yet (its genesis alone is held): nothing to read.
        None if job.meta.changes == 0 && job.meta.clock.is_empty() => Automerge::new(),
        None => {
            tracing::debug!(doc = %doc.fmt_short(), "building the document from its changes");
            crate::ingest::build(&store.doc_changes(&doc)?)
        }
    };
    // A local edit is already in the cached document (as its head):
    // applying it again would be refused as a duplicate.
    let present: BTreeSet<Hash> = am.get_heads().iter().map(|h| Hash(h.0)).collect();
    let added: Vec<(Hash, &[u8])> = job
        .order
        .iter()
        .map(|&i| &new[i].1)
        .filter(|c| !present.contains(&c.hash()))
        .map(|c| (c.hash(), c.chunk()))
        .collect();
    let outcome = apply_accepted(&mut am, &added, || {
        tracing::debug!("fast path: rebuilding the document");
        store
            .doc_changes(&doc)
            .map(|cs| crate::ingest::build(&cs))
            .unwrap_or_default()
    });
    if let ApplyOutcome::Failed { .. } = outcome {
        return Ok(None);
    }
    let heads = crate::ingest::sorted_heads(&am);
    if let Some((hook, trust)) = hook {
        (*hook)(trust, &doc, &heads, &mut am);
    }
    Ok(Some(Applied {
        heads,
        am: job.keep.then_some(am),
    }))
}

impl Replica {
    /// Rules 1-7 over a document's new changes (the fast path), staging
    /// them at once if application is deferred. [`Fast::Slow`] (having
    /// changed nothing) when the full rule must run.
    pub(crate) fn fast_judge(
        &mut self,
        doc: &DocId,
        new: &[(usize, SignedChange)],
        report: &mut IngestReport,
        staged: &mut Staged,
    ) -> Result<Fast, EngineError> {
        let Some(meta) = self.store.doc_meta(doc)? else {
            return Ok(Fast::Slow);
        };
        let Some(writers) = self.trust.write_keys(doc) else {
            return Ok(Fast::Slow);
        };
        // Quarantined changes keep their verdicts unless a new change is one
        // they wait for, or shares their (actor, seq). Reading them costs
        // what the quarantine holds (bounded), not what the document holds.
        let mut waiting: BTreeSet<Hash> = BTreeSet::new();
        let mut quarantined_slots: BTreeSet<(gongjian_identity::ActorId, u64)> = BTreeSet::new();
        if meta.quarantined > 0 {
            for q in self.store.quarantined(doc)? {
                // Application is retried whenever changes arrive (rule 8).
                if q.reason == crate::ingest::APPLY_FAILED {
                    return Ok(Fast::Slow);
                }
                let h = q.change.header();
                waiting.extend(h.deps.iter().copied());
                quarantined_slots.insert((h.actor, h.seq));
            }
        }
        // Order the new changes so that dependencies come first.
        // Each with its index among `new`.
        let mut pending: Vec<(usize, &SignedChange)> = Vec::new();
        for (k, (_, c)) in new.iter().enumerate() {
            // Accepted seqs of an actor run from 1 to its clock: one past
            // it is not held (no read).
            let h = c.header();
            let maybe_held = meta.clock.get(&h.actor).is_some_and(|s| h.seq <= *s);
            let held = if maybe_held {
                self.store.change(doc, &c.hash())?
            } else {
                None
            };
            match held {
                // A signed copy of a change held unsigned: the full path
                // stores the signed one.
                Some(held) if held.signature().is_none() && c.signature().is_some() => {
                    return Ok(Fast::Slow);
                }
                Some(_) => {}
                None => match pending.iter().position(|p| p.1.hash() == c.hash()) {
                    None => pending.push((k, c)),
                    // Two copies (frames from two peers): the signed one is
                    // kept, as one ingested alone after the other would be.
                    Some(i) if pending[i].1.signature().is_none() && c.signature().is_some() => {
                        pending[i] = (k, c);
                    }
                    Some(_) => {}
                },
            }
        }
        if pending.is_empty() {
            return Ok(Fast::Done);
        }
        // Unsigned changes pass rule 1 when a signed change of the same
        // actor among the new ones reaches them (it is accepted here too,
        // or the full rule runs).
        let vouched = if pending.iter().any(|(_, c)| c.signature().is_none()) {
            crate::signatures::vouched(pending.iter().map(|(_, c)| *c))
        } else {
            BTreeSet::new()
        };
        let mut accepted: BTreeMap<Hash, &SignedChange> = BTreeMap::new();
        let mut order: Vec<&SignedChange> = Vec::new();
        let mut indices: Vec<usize> = Vec::new();
        let mut taken: BTreeSet<(gongjian_identity::ActorId, u64)> = BTreeSet::new();
        while !pending.is_empty() {
            let before = pending.len();
            let mut rest = Vec::new();
            for (k, c) in pending {
                let h = c.header();
                let deps_ready = h.deps.iter().all(|d| accepted.contains_key(d));
                let deps_held = deps_ready
                    || h.deps.iter().all(|d| {
                        accepted.contains_key(d)
                            || self.store.change(doc, d).ok().flatten().is_some()
                    });
                if !deps_held {
                    rest.push((k, c));
                    continue;
                }
                // Rules 1-3: signed (verified by the caller), a writer, no
                // revocation of the key at all.
                if (c.signature().is_none() && !vouched.contains(&c.hash()))
                    || !writers.contains(&h.actor.key)
                    || !self.trust.revocations_of(&h.actor.key).is_empty()
                {
                    return Ok(Fast::Slow);
                }
                // Rules 4 and 6: nothing else held at (actor, seq), and the
                // previous change of the actor is the one accepted at seq - 1.
                // (Something is accepted at (actor, seq) exactly when seq is
                // within the actor's clock: accepted seqs run from 1.)
                if waiting.contains(&c.hash())
                    || quarantined_slots.contains(&(h.actor, h.seq))
                    || !taken.insert((h.actor, h.seq))
                    || meta.clock.get(&h.actor).is_some_and(|s| h.seq <= *s)
                {
                    return Ok(Fast::Slow);
                }
                let mut own = Vec::new();
                for d in &h.deps {
                    let dep = match accepted.get(d) {
                        Some(c) => Some((c.header().actor, c.header().seq)),
                        None => self
                            .store
                            .change(doc, d)?
                            .map(|c| (c.header().actor, c.header().seq)),
                    };
                    if let Some((actor, seq)) = dep
                        && actor == h.actor
                    {
                        own.push(seq);
                    }
                }
                let chained = match h.seq {
                    1 => own.is_empty(),
                    n => {
                        own == [n - 1]
                            && meta.clock.get(&h.actor).copied().unwrap_or(0).max(
                                order
                                    .iter()
                                    .filter(|o| o.header().actor == h.actor)
                                    .map(|o| o.header().seq)
                                    .max()
                                    .unwrap_or(0),
                            ) == n - 1
                    }
                };
                if !chained {
                    return Ok(Fast::Slow);
                }
                accepted.insert(c.hash(), c);
                order.push(c);
                indices.push(k);
            }
            if rest.len() == before {
                // Some dependency is missing: the full rule holds them pending.
                return Ok(Fast::Slow);
            }
            pending = rest;
        }
        // Rule 8: left to `Replica::settle` (application deferred), the
        // heads taken from the hash links; else applied to the document as
        // it is ([`apply_fast`]).
        if self.defer_apply {
            // A built copy would no longer equal the accepted changes.
            self.cache.pop(doc);
            self.stage_fast(doc, meta, &order, None, new, report, staged);
            return Ok(Fast::Done);
        }
        Ok(Fast::Apply(Box::new(FastApply {
            doc: *doc,
            cached: self.cache.pop(doc),
            meta,
            order: indices,
            keep: true,
        })))
    }

    /// Stages a document [`apply_fast`] applied (its rows taken): its
    /// changes written, the document kept for the cache if it was.
    pub(crate) fn fast_built(
        &mut self,
        job: FastApply,
        new: &[(usize, SignedChange)],
        applied: Applied,
        report: &mut IngestReport,
        staged: &mut Staged,
    ) {
        let order: Vec<&SignedChange> = job.order.iter().map(|&i| &new[i].1).collect();
        self.stage_fast(
            &job.doc,
            job.meta,
            &order,
            Some(applied),
            new,
            report,
            staged,
        );
    }

    /// Stages the fast path's accepted changes of a document (`order`,
    /// dependencies first): written with the document's new metadata, and
    /// the document `built`, if applied (its rows taken by [`apply_fast`]),
    /// kept for the cache.
    #[allow(clippy::too_many_arguments)]
    fn stage_fast(
        &mut self,
        doc: &DocId,
        mut meta: DocMeta,
        order: &[&SignedChange],
        built: Option<Applied>,
        new: &[(usize, SignedChange)],
        report: &mut IngestReport,
        staged: &mut Staged,
    ) {
        let mut batch = Batch::new();
        for c in order {
            batch.put_change(c);
            let h = c.header();
            let e = meta.clock.entry(h.actor).or_insert(0);
            *e = (*e).max(h.seq);
        }
        let (heads, am) = match built {
            Some(Applied { heads, am }) => (heads, am),
            None => {
                let mut heads: BTreeSet<Hash> = meta.heads.iter().copied().collect();
                heads.extend(order.iter().map(|c| c.hash()));
                for c in order {
                    for d in &c.header().deps {
                        heads.remove(d);
                    }
                }
                batch.mark_unapplied(doc);
                (heads.into_iter().collect(), None)
            }
        };
        meta.heads = heads;
        meta.changes += order.len() as u64;
        batch.put_doc(doc, &meta);
        staged.batch.append(batch);
        // Each accepted change reported once, in the order it came (a
        // change sent twice, by two frames, is one); as the whole rule
        // reports a document's. (Looking each up in the call's report
        // instead cost a call of 4,096 changes some 8 million comparisons.)
        let mut fresh: BTreeSet<Hash> = order.iter().map(|c| c.hash()).collect();
        for (_, c) in new {
            if fresh.remove(&c.hash()) {
                report.accepted.push(c.hash());
                report.accepted_docs.push(*doc);
            }
        }
        if let Some(am) = am {
            self.hand_built(staged, *doc, &meta.heads, am, false);
        }
    }
}
