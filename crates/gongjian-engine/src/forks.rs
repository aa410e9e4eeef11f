//! What answers a sync `Want`, and the evidence of forks it carries.
//!
//! Version vectors cannot show a fork: two nodes each holding one branch
//! of an equivocating actor may hold as many changes of it. So a `Want`
//! names, per actor, the hash of the asker's change at its seq, and the
//! answer brings what proves the fork to a node that cannot know of it
//! (PROTOCOL.md §8.4): this node's chain of an actor whose change there is
//! another, and the branches of a fork this node knows at a seq the asker
//! holds a change of. Judged by the same rule 4, both branches are then
//! rejected everywhere.

use std::collections::BTreeMap;

use gongjian_identity::{ActorId, DocId, Hash, SignedChange};
use gongjian_sync::{Back, Have, VersionVector};

use crate::error::EngineError;
use crate::replica::Replica;

impl Replica {
    /// The groups of changes answering a `Want` of `doc` from a peer that
    /// holds `have`, each sent in causal order, signed at its own edges:
    /// first the accepted changes beyond `have` (of an actor whose accepted
    /// change at the peer's seq is another here, from the highest of the
    /// peer's `back` points that is this node's too, or its first change);
    /// then, for each actor this node knows forked at a seq the peer's
    /// reaches, the proof of that fork: two of its branches, each from the
    /// fork to its first signature, a group of its own (one batch would
    /// strip a branch's signature: only the newest per actor stays).
    pub fn answer_want(
        &self,
        doc: &DocId,
        have: &Have,
        back: &Back,
    ) -> Result<Vec<Vec<SignedChange>>, EngineError> {
        let mut vv = VersionVector::new();
        // Actors the peer holds a change of at a seq this node accepted
        // none at: only there can a fork this node knows be news to it
        // (every change of a forked actor from the fork on is rejected), so
        // only then is the quarantine read, not on every `Want`.
        let mut beyond: std::collections::BTreeSet<ActorId> = Default::default();
        for (actor, (seq, hash)) in have {
            let ours = self.store.change_at(doc, actor, *seq)?;
            if ours.is_none() {
                beyond.insert(*actor);
            }
            match ours {
                // The peer's chain is not ours there: ours from the highest
                // point where it is (or the start), so the peer gets both
                // changes at the fork.
                Some(ours) if ours != *hash => {
                    if let Some(p) = self.agreed(doc, actor, back.get(actor))? {
                        vv.insert(*actor, p);
                    }
                }
                _ => {
                    vv.insert(*actor, *seq);
                }
            }
        }
        let mut groups = vec![self.changes_to_send(doc, &vv)?];
        if !beyond.is_empty() {
            for (actor, (fork_seq, evidence)) in self.forks(doc, &beyond)? {
                if have.get(&actor).is_some_and(|(seq, _)| *seq >= fork_seq) {
                    groups.extend(proof(fork_seq, evidence));
                }
            }
        }
        groups.retain(|g| !g.is_empty());
        Ok(groups)
    }

    /// The highest of the peer's back points of `actor` where this node's
    /// accepted change is the same.
    fn agreed(
        &self,
        doc: &DocId,
        actor: &ActorId,
        points: Option<&Vec<(u64, Hash)>>,
    ) -> Result<Option<u64>, EngineError> {
        let mut points: Vec<(u64, Hash)> = points.cloned().unwrap_or_default();
        points.sort_unstable_by(|a, b| b.cmp(a));
        for (seq, hash) in points {
            if self.store.change_at(doc, actor, seq)? == Some(hash) {
                return Ok(Some(seq));
            }
        }
        Ok(None)
    }

    /// The actors of `doc` among `actors` this node holds proof of
    /// equivocation for: the first forked seq and the changes rejected for
    /// it (from quarantine).
    fn forks(
        &self,
        doc: &DocId,
        actors: &std::collections::BTreeSet<ActorId>,
    ) -> Result<BTreeMap<ActorId, (u64, Vec<SignedChange>)>, EngineError> {
        let mut out: BTreeMap<ActorId, (u64, Vec<SignedChange>)> = BTreeMap::new();
        if self.store.doc_meta(doc)?.is_none_or(|m| m.quarantined == 0) {
            return Ok(out);
        }
        for q in self.store.quarantined(doc)? {
            if !actors.contains(&q.change.header().actor) {
                continue;
            }
            if let Some(f) = crate::ingest::fork_seq(&q.change, &q.reason) {
                let e = out
                    .entry(q.change.header().actor)
                    .or_insert((f, Vec::new()));
                e.0 = e.0.min(f);
                e.1.push(q.change);
            }
        }
        Ok(out)
    }
}

/// What proves an actor's fork at `fork_seq`: two branches from it (of
/// any two, at least one is not the asker's), each up to the first change
/// that is signed, which vouches for the rest. Whatever more the forked
/// key wrote is not needed to cut it, so what a `Want` can draw is
/// bounded by two runs of unsigned changes, however much it wrote. The
/// two smallest runs that fit in one batch: a run too large to send (its
/// first signature past a batch's hard cap) must not take the place of
/// one that can go, nor can a forking key choose which go by its hashes.
fn proof(fork_seq: u64, evidence: Vec<SignedChange>) -> Vec<Vec<SignedChange>> {
    let size = |line: &[SignedChange]| -> usize {
        line.iter()
            .map(|c| c.chunk().len() + gongjian_sync::CHANGE_OVERHEAD)
            .sum()
    };
    let mut lines: Vec<(usize, Vec<SignedChange>)> = branches(evidence)
        .into_iter()
        .filter(|line| line[0].header().seq == fork_seq)
        .filter_map(|mut line| {
            // A line no signature vouches for would only be refused.
            let i = line.iter().position(|c| c.signature().is_some())?;
            line.truncate(i + 1);
            let bytes = size(&line);
            (bytes <= gongjian_sync::HARD_MAX_BYTES && line.len() <= gongjian_sync::MAX_LIST)
                .then_some((bytes, line))
        })
        .collect();
    lines.sort_by_key(|(bytes, line)| (*bytes, line[0].hash()));
    lines.into_iter().take(2).map(|(_, line)| line).collect()
}

/// The changes of one actor split into chains, each a line of same-actor
/// dependencies ending at a leaf, in the order they may be sent: a branch
/// forked off another branch becomes a chain of its own after the one it
/// leaves (one batch holding both could be cut where one of them is
/// unvouched: the batcher tracks an actor's unsigned run, not a branch's).
/// A leaf was the newest of its branch in the batch that brought it, so it
/// kept its signature; each chain is vouched by its own.
fn branches(mut changes: Vec<SignedChange>) -> Vec<Vec<SignedChange>> {
    changes.sort_by_key(|c| (c.header().seq, c.hash()));
    let mut chains: Vec<Vec<SignedChange>> = Vec::new();
    // The chain each change ends, while it ends one.
    let mut tails: BTreeMap<Hash, usize> = BTreeMap::new();
    for c in changes {
        let k = match c.header().deps.iter().find_map(|d| tails.remove(d)) {
            Some(k) => k,
            None => {
                chains.push(Vec::new());
                chains.len() - 1
            }
        };
        tails.insert(c.hash(), k);
        chains[k].push(c);
    }
    chains
}
