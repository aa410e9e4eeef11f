//! Changes leave a node in causal order, in batches bounded in bytes and
//! count, signed at the edges: within a batch only each actor's newest
//! change keeps its signature, which vouches for that actor's earlier
//! changes in the batch through the hash links (PROTOCOL.md §8.4).

use std::collections::{BTreeMap, BTreeSet};

use gongjian_identity::{ActorId, Hash, SignedChange};

use crate::message::MAX_LIST;

/// Bounds of one `Changes` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// A batch is cut once it reaches this many bytes, at the first point
    /// where every actor's last change in it is signed.
    pub max_bytes: usize,
    pub max_changes: usize,
    /// No batch grows past this, cut point or not.
    pub hard_max_bytes: usize,
    /// One answer stops (at a cut point, `complete = false`) once its
    /// batches reach this many bytes: the asker fetches the rest from its
    /// new version vector, so neither side queues a huge document at once.
    pub max_answer_bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_bytes: 512 * 1024,
            max_changes: 512,
            hard_max_bytes: HARD_MAX_BYTES,
            max_answer_bytes: MAX_ANSWER_BYTES,
        }
    }
}

/// Orders changes so each comes after its dependencies among them; ties
/// broken by (seq, actor, hash), so the order is deterministic. An actor
/// whose last change placed is unsigned is continued first when it can be,
/// so each actor's run reaches its vouching signature before another's
/// starts and batches find cut points soon (see [`edge_signed_batches`]).
pub fn causal_order(changes: Vec<SignedChange>) -> Vec<SignedChange> {
    let by_hash: BTreeMap<Hash, SignedChange> =
        changes.into_iter().map(|c| (c.hash(), c)).collect();
    let mut waiting: BTreeMap<Hash, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<Hash, Vec<Hash>> = BTreeMap::new();
    let mut ready = Ready::default();
    for (h, c) in &by_hash {
        let deps: BTreeSet<&Hash> = c
            .header()
            .deps
            .iter()
            .filter(|d| by_hash.contains_key(*d))
            .collect();
        for d in &deps {
            dependents.entry(**d).or_default().push(*h);
        }
        if deps.is_empty() {
            ready.insert(c, *h);
        } else {
            waiting.insert(*h, deps.len());
        }
    }
    let mut out = Vec::with_capacity(by_hash.len());
    // Actors whose last change placed carries no signature.
    let mut open: BTreeSet<ActorId> = BTreeSet::new();
    while let Some(h) = ready.pop(&open) {
        for d in dependents.get(&h).into_iter().flatten() {
            if let Some(n) = waiting.get_mut(d) {
                *n -= 1;
                if *n == 0 {
                    waiting.remove(d);
                    ready.insert(&by_hash[d], *d);
                }
            }
        }
        let c = &by_hash[&h];
        if c.signature().is_some() {
            open.remove(&c.header().actor);
        } else {
            open.insert(c.header().actor);
        }
        out.push(c.clone());
    }
    // A cycle cannot occur between hash-linked changes; anything left (it
    // would be malformed) goes last, in hash order.
    for h in waiting.keys() {
        out.push(by_hash[h].clone());
    }
    out
}

/// Changes whose dependencies are all placed, in (seq, actor, hash) order
/// and by actor.
#[derive(Default)]
struct Ready {
    all: BTreeSet<(u64, ActorId, Hash)>,
    by_actor: BTreeMap<ActorId, BTreeSet<(u64, Hash)>>,
}

impl Ready {
    fn insert(&mut self, c: &SignedChange, h: Hash) {
        let (seq, actor) = (c.header().seq, c.header().actor);
        self.all.insert((seq, actor, h));
        self.by_actor.entry(actor).or_default().insert((seq, h));
    }

    /// The first ready change of an `open` actor if any, else the first.
    fn pop(&mut self, open: &BTreeSet<ActorId>) -> Option<Hash> {
        let preferred = open
            .iter()
            .filter_map(|a| {
                let (seq, h) = self.by_actor.get(a)?.first()?;
                Some((*seq, *a, *h))
            })
            .min();
        let key = match preferred {
            Some(k) => k,
            None => *self.all.first()?,
        };
        self.all.remove(&key);
        if let Some(set) = self.by_actor.get_mut(&key.1) {
            set.remove(&(key.0, key.2));
            if set.is_empty() {
                self.by_actor.remove(&key.1);
            }
        }
        Some(key.2)
    }
}

/// Upper bound of a change's bytes in a `Changes` message beyond its
/// chunk: the compact form's flags and signature (65) and postcard's length
/// prefix (5).
pub const CHANGE_OVERHEAD: usize = 70;
/// The default hard cap of a batch: half the message cap.
pub const HARD_MAX_BYTES: usize = crate::message::MAX_MESSAGE_BYTES / 2;
/// The default cap of one answer: 8 MiB.
pub const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// The batches answering one fetch; `complete` is false when the answer
/// stopped short because changes of several actors interleave with no
/// point to cut at below the hard cap (or [`MAX_LIST`] changes):
/// what was sent ends at the last cut point, and the asker fetches again
/// from its new version vector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    pub batches: Vec<Vec<Vec<u8>>>,
    pub complete: bool,
}

impl Answer {
    pub fn changes(&self) -> usize {
        self.batches.iter().map(Vec::len).sum()
    }
    pub fn bytes(&self) -> usize {
        self.batches.iter().flatten().map(Vec::len).sum()
    }
}

/// Cuts changes (already in causal order) into encoded, edge-signed
/// batches. An actor's trailing changes that no signature held vouches for
/// are held back: sent, they would be refused as unvouched.
pub fn edge_signed_batches(ordered: Vec<SignedChange>, limits: BatchLimits) -> Answer {
    let sendable = vouched_prefix(ordered);
    let mut out = Answer {
        batches: Vec::new(),
        complete: true,
    };
    let mut cur: Vec<SignedChange> = Vec::new();
    let mut bytes = 0usize;
    // Length of `cur` at its last cut point (every actor's last change in
    // it signed).
    let mut cut = 0usize;
    let mut unsigned_tail: BTreeSet<ActorId> = BTreeSet::new();
    let mut total = 0usize;
    let n = sendable.len();
    for (i, c) in sendable.into_iter().enumerate() {
        let size = c.chunk().len() + CHANGE_OVERHEAD;
        if bytes + size > limits.hard_max_bytes || cur.len() + 1 > MAX_LIST {
            // No cut point came in time: send up to the last one and stop.
            cur.truncate(cut);
            out.complete = false;
            break;
        }
        bytes += size;
        if c.signature().is_some() {
            unsigned_tail.remove(&c.header().actor);
        } else {
            unsigned_tail.insert(c.header().actor);
        }
        cur.push(c);
        if unsigned_tail.is_empty() {
            cut = cur.len();
            if bytes >= limits.max_bytes || cur.len() >= limits.max_changes {
                total += bytes;
                out.batches.push(seal(std::mem::take(&mut cur)));
                bytes = 0;
                cut = 0;
                if total >= limits.max_answer_bytes && i + 1 < n {
                    out.complete = false;
                    break;
                }
            }
        }
    }
    if !cur.is_empty() {
        out.batches.push(seal(cur));
    }
    out
}

/// The changes a signature among them vouches for: each actor's changes up
/// to its last signed one (order kept). The rest would be refused as
/// unvouched.
pub fn vouched_prefix(changes: Vec<SignedChange>) -> Vec<SignedChange> {
    let mut last_signed: BTreeMap<ActorId, u64> = BTreeMap::new();
    for c in &changes {
        if c.signature().is_some() {
            let e = last_signed.entry(c.header().actor).or_insert(0);
            *e = (*e).max(c.header().seq);
        }
    }
    changes
        .into_iter()
        .filter(|c| {
            last_signed
                .get(&c.header().actor)
                .is_some_and(|s| c.header().seq <= *s)
        })
        .collect()
}

/// Encodes a batch in the changes' compact form (the `Changes` message
/// names the document), keeping the signature only of each actor's newest
/// changes: those no other change of the batch depends on by the same
/// actor (one per actor, except for the branches of a fork).
fn seal(batch: Vec<SignedChange>) -> Vec<Vec<u8>> {
    let actor_of: BTreeMap<Hash, ActorId> =
        batch.iter().map(|c| (c.hash(), c.header().actor)).collect();
    let mut vouched: BTreeSet<Hash> = BTreeSet::new();
    for c in &batch {
        let actor = c.header().actor;
        for d in &c.header().deps {
            if actor_of.get(d) == Some(&actor) {
                vouched.insert(*d);
            }
        }
    }
    batch
        .iter()
        .map(|c| {
            if vouched.contains(&c.hash()) {
                c.without_signature().encode_compact()
            } else {
                c.encode_compact()
            }
        })
        .collect()
}
