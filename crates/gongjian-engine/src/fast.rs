//! The common case of ingest without re-judging the whole document: new
//! signed changes that extend the accepted history and disturb nothing.
//!
//! It gives exactly the verdicts `evaluate_document` would (PROTOCOL.md,
//! section 4): every condition below implies that no earlier verdict moves and
//! every new change passes rules 1-8. When one does not hold, the caller falls
//! back to the full evaluation.

use std::collections::{BTreeMap, BTreeSet};

use automerge::Automerge;
use gongjian_identity::{DocId, Hash, SignedChange};
use gongjian_model::{ApplyOutcome, apply_accepted};
use gongjian_store::Batch;

use crate::error::EngineError;
use crate::ingest::IngestReport;
use crate::replica::Replica;
use crate::staged::Staged;

impl Replica {
    /// Returns false (having changed nothing) when the full rule must run.
    pub(crate) fn try_fast(
        &mut self,
        doc: &DocId,
        new: &[(usize, SignedChange)],
        report: &mut IngestReport,
        staged: &mut Staged,
    ) -> Result<bool, EngineError> {
        let Some(mut meta) = self.store.doc_meta(doc)? else {
            return Ok(false);
        };
        let Some(writers) = self.trust.write_keys(doc) else {
            return Ok(false);
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
                    return Ok(false);
                }
                let h = q.change.header();
                waiting.extend(h.deps.iter().copied());
                quarantined_slots.insert((h.actor, h.seq));
            }
        }
        // Order the new changes so that dependencies come first.
        let mut pending: Vec<&SignedChange> = Vec::new();
        for (_, c) in new {
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
                    return Ok(false);
                }
                Some(_) => {}
                None => match pending.iter().position(|p| p.hash() == c.hash()) {
                    None => pending.push(c),
                    // Two copies (frames from two peers): the signed one is
                    // kept, as one ingested alone after the other would be.
                    Some(i) if pending[i].signature().is_none() && c.signature().is_some() => {
                        pending[i] = c;
                    }
                    Some(_) => {}
                },
            }
        }
        if pending.is_empty() {
            return Ok(true);
        }
        // Unsigned changes pass rule 1 when a signed change of the same
        // actor among the new ones reaches them (it is accepted here too,
        // or the full rule runs).
        let vouched = if pending.iter().any(|c| c.signature().is_none()) {
            crate::ingest::vouched(pending.iter().copied())
        } else {
            BTreeSet::new()
        };
        let mut accepted: BTreeMap<Hash, &SignedChange> = BTreeMap::new();
        let mut order: Vec<&SignedChange> = Vec::new();
        let mut taken: BTreeSet<(gongjian_identity::ActorId, u64)> = BTreeSet::new();
        while !pending.is_empty() {
            let before = pending.len();
            let mut rest = Vec::new();
            for c in pending {
                let h = c.header();
                let deps_ready = h.deps.iter().all(|d| accepted.contains_key(d));
                let deps_held = deps_ready
                    || h.deps.iter().all(|d| {
                        accepted.contains_key(d)
                            || self.store.change(doc, d).ok().flatten().is_some()
                    });
                if !deps_held {
                    rest.push(c);
                    continue;
                }
                // Rules 1-3: signed (verified by the caller), a writer, no
                // revocation of the key at all.
                if (c.signature().is_none() && !vouched.contains(&c.hash()))
                    || !writers.contains(&h.actor.key)
                    || !self.trust.revocations_of(&h.actor.key).is_empty()
                {
                    return Ok(false);
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
                    return Ok(false);
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
                    return Ok(false);
                }
                accepted.insert(c.hash(), c);
                order.push(c);
            }
            if rest.len() == before {
                // Some dependency is missing: the full rule holds them pending.
                return Ok(false);
            }
            pending = rest;
        }
        // Rule 8: apply to the document as it is, or (application
        // deferred) leave that to `Replica::settle` and take the heads from
        // the hash links.
        let built = if self.defer_apply {
            // A built copy would no longer equal the accepted changes.
            self.cache.pop(doc);
            None
        } else {
            let mut am = match self.cache.pop(doc) {
                Some(am) => am,
                // Nothing accepted yet (its genesis alone is held): nothing
                // to read.
                None if meta.changes == 0 && meta.clock.is_empty() => Automerge::new(),
                None => self.load(doc)?,
            };
            // A local edit is already in the cached document (as its head):
            // applying it again would be refused as a duplicate.
            let present: BTreeSet<Hash> = am.get_heads().iter().map(|h| Hash(h.0)).collect();
            let added: Vec<(Hash, &[u8])> = order
                .iter()
                .filter(|c| !present.contains(&c.hash()))
                .map(|c| (c.hash(), c.chunk()))
                .collect();
            let store = self.store.clone();
            let d = *doc;
            let outcome = apply_accepted(&mut am, &added, || {
                tracing::debug!("fast path: rebuilding the document");
                store
                    .doc_changes(&d)
                    .map(|cs| crate::ingest::build(&cs))
                    .unwrap_or_default()
            });
            if let ApplyOutcome::Failed { .. } = outcome {
                return Ok(false);
            }
            Some(am)
        };
        let mut batch = Batch::new();
        for c in &order {
            batch.put_change(c);
            let h = c.header();
            let e = meta.clock.entry(h.actor).or_insert(0);
            *e = (*e).max(h.seq);
        }
        meta.heads = match &built {
            Some(am) => {
                let mut heads: Vec<Hash> = am.get_heads().iter().map(|h| Hash(h.0)).collect();
                heads.sort();
                heads
            }
            None => {
                let mut heads: BTreeSet<Hash> = meta.heads.iter().copied().collect();
                heads.extend(order.iter().map(|c| c.hash()));
                for c in &order {
                    for d in &c.header().deps {
                        heads.remove(d);
                    }
                }
                batch.mark_unapplied(doc);
                heads.into_iter().collect()
            }
        };
        meta.changes += order.len() as u64;
        batch.put_doc(doc, &meta);
        staged.batch.append(batch);
        let fresh: BTreeSet<Hash> = order.iter().map(|c| c.hash()).collect();
        for (_, c) in new {
            if fresh.contains(&c.hash()) && !report.accepted.contains(&c.hash()) {
                report.accepted.push(c.hash());
            }
        }
        if let Some(am) = built {
            self.hand_built(staged, *doc, &meta.heads, am, true);
        }
        Ok(true)
    }
}
