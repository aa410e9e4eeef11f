//! Deferred application (PROTOCOL.md §4, rule 8). A node that keeps no view
//! (a hub) may store what rules 1-7 accept without building the documents
//! ([`Replica::defer_application`]); each such document is marked, and
//! settling applies its accepted changes to automerge in one call, moving
//! any change automerge cannot apply (and what depends on it) to quarantine
//! as ingest would have. Until then the document holds the verdicts of
//! rules 1-7; once settled, those of the whole rule: the same set, whatever
//! the order of ingest and settling.

use std::collections::BTreeSet;

use automerge::Automerge;
use gongjian_identity::{DocId, Hash};
use gongjian_model::{ApplyOutcome, apply_accepted};
use gongjian_store::{Batch, Durability};

use crate::error::EngineError;
use crate::ingest::APPLY_FAILED;
use crate::replica::Replica;

/// What one [`Replica::settle`] step did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settled {
    /// Documents settled: every accepted change applied, marks cleared.
    pub documents: usize,
    /// Accepted changes applied to automerge.
    pub changes: usize,
    /// Documents whose accepted set changed on settling (automerge refused
    /// changes, moved to quarantine; or took again one it had refused):
    /// peers and views must hear of it.
    pub changed: Vec<DocId>,
    /// Documents still wait (the step's budget ran out).
    pub more: bool,
}

/// Documents read from the marks at a time.
const SETTLE_SLICE: usize = 64;

impl Replica {
    /// Settles marked documents until about `max_changes` accepted changes
    /// were applied (each document is built whole, never cut in two), going
    /// on from where the last call stopped. A document that cannot be read
    /// is logged and left marked for the next pass (the scrub finds it).
    pub fn settle(&mut self, max_changes: usize) -> Result<Settled, EngineError> {
        let mut out = Settled::default();
        // Begun past the start: round to the start once at the end.
        let mut wrap = self.settle_cursor.is_some();
        loop {
            let docs = self
                .store
                .unapplied_after(self.settle_cursor.as_ref(), SETTLE_SLICE)?;
            if docs.is_empty() {
                self.settle_cursor = None;
                if std::mem::take(&mut wrap) {
                    continue;
                }
                return Ok(out);
            }
            // The marks of a slice are cleared in one commit (a crash
            // before it only settles those documents again).
            let mut done = Batch::new();
            for doc in docs {
                if out.changes >= max_changes {
                    out.more = true;
                    break;
                }
                self.settle_cursor = Some(doc);
                match self.settle_doc_into(&doc, &mut done) {
                    Ok((applied, changed)) => {
                        out.documents += 1;
                        out.changes += applied;
                        if changed {
                            out.changed.push(doc);
                        }
                    }
                    Err(e) => {
                        tracing::error!(doc = %doc.fmt_short(), error = %e, "settling a document failed; left for the next pass");
                    }
                }
            }
            if !done.is_empty() {
                self.store.commit_with(done, Durability::Relaxed)?;
            }
            if out.more {
                return Ok(out);
            }
        }
    }

    /// Documents whose accepted changes wait to be applied (a walk of the
    /// marks).
    pub fn unapplied(&self) -> Result<usize, EngineError> {
        let mut n = 0;
        let mut after: Option<DocId> = None;
        loop {
            let docs = self.store.unapplied_after(after.as_ref(), 4096)?;
            let Some(last) = docs.last().copied() else {
                return Ok(n);
            };
            n += docs.len();
            after = Some(last);
        }
    }

    /// Settles one document if it is marked.
    pub(crate) fn settle_doc(&mut self, doc: &DocId) -> Result<(), EngineError> {
        let mut done = Batch::new();
        self.settle_doc_into(doc, &mut done)?;
        if !done.is_empty() {
            self.store.commit_with(done, Durability::Relaxed)?;
        }
        Ok(())
    }

    /// Settles `doc` if it is marked: the changes applied, whether its
    /// accepted set changed; its mark's clearing goes into `done`.
    fn settle_doc_into(
        &mut self,
        doc: &DocId,
        done: &mut Batch,
    ) -> Result<(usize, bool), EngineError> {
        if !self.store.is_unapplied(doc)? {
            return Ok((0, false));
        }
        // Settling redoes work a crash would lose, nothing acknowledged:
        // its commits need not wait for an fsync.
        let deferred = std::mem::replace(&mut self.defer_apply, false);
        let durability = std::mem::replace(&mut self.durability, Durability::Relaxed);
        let out = self.settle_marked(doc, done);
        self.defer_apply = deferred;
        self.durability = durability;
        out
    }

    fn settle_marked(
        &mut self,
        doc: &DocId,
        done: &mut Batch,
    ) -> Result<(usize, bool), EngineError> {
        let mut failed: BTreeSet<Hash> = BTreeSet::new();
        let mut cut = false;
        loop {
            let stored = self.store.doc_changes(doc)?;
            let todo: Vec<(Hash, &[u8])> = stored.iter().map(|c| (c.hash(), c.chunk())).collect();
            let mut am = Automerge::new();
            match apply_accepted(&mut am, &todo, Automerge::new) {
                ApplyOutcome::Applied => {
                    let heads = crate::ingest::sorted_heads(&am);
                    let meta = self.store.doc_meta(doc)?;
                    if meta.as_ref().is_some_and(|m| m.heads != heads) {
                        // Cannot happen: once all apply, automerge's heads
                        // are the hash links'. The scrub reports it.
                        tracing::error!(doc = %doc.fmt_short(), "settled: automerge's heads differ from those stored");
                    }
                    done.clear_unapplied(doc);
                    let refused_before = meta.as_ref().is_some_and(|m| m.quarantined > 0)
                        && self
                            .store
                            .quarantined(doc)?
                            .iter()
                            .any(|q| q.reason == APPLY_FAILED);
                    if refused_before {
                        // As the whole rule does at every evaluation, what
                        // automerge refused is tried again now that the
                        // accepted changes all apply (a concurrent change
                        // may have made the object it names).
                        self.judge_again(doc, &BTreeSet::new())?;
                        let after = self.store.doc_meta(doc)?.map(|m| m.heads);
                        return Ok((stored.len(), cut || after != meta.map(|m| m.heads)));
                    }
                    if cut {
                        self.call_built(doc, &heads, &mut am);
                    }
                    self.cache.put(*doc, am);
                    return Ok((stored.len(), cut));
                }
                ApplyOutcome::Failed { hashes, reason } => {
                    tracing::warn!(doc = %doc.fmt_short(), changes = hashes.len(), %reason, "quarantined on settling: automerge could not apply them");
                    let before = failed.len();
                    failed.extend(hashes);
                    if failed.len() == before {
                        // Named again after being quarantined: cannot
                        // happen (they are no longer accepted); left marked
                        // for the scrub and the log, not looped on.
                        tracing::error!(doc = %doc.fmt_short(), "settling made no progress; left marked");
                        return Ok((0, cut));
                    }
                    // The whole rule again, with what failed known: it
                    // moves them and their descendants to quarantine.
                    self.judge_again(doc, &failed)?;
                    cut = true;
                }
            }
        }
    }
}
