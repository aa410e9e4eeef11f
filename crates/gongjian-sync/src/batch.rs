//! Changes leave a node in causal order, in batches bounded in bytes and
//! count, signed at the edges: within a batch only each actor's newest
//! change keeps its signature, which vouches for that actor's earlier
//! changes in the batch through the hash links (PROTOCOL.md §8.4).

use std::collections::{BTreeMap, BTreeSet};

use gongjian_identity::{ActorId, Hash, SignedChange};

/// Bounds of one `Changes` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// A batch is cut once it reaches this many bytes, at the first point
    /// where every actor's last change in it is signed.
    pub max_bytes: usize,
    pub max_changes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_bytes: 512 * 1024,
            max_changes: 512,
        }
    }
}

/// Orders changes so each comes after its dependencies among them; ties
/// broken by (seq, actor, hash), so the order is deterministic.
pub fn causal_order(changes: Vec<SignedChange>) -> Vec<SignedChange> {
    let by_hash: BTreeMap<Hash, SignedChange> =
        changes.into_iter().map(|c| (c.hash(), c)).collect();
    let mut waiting: BTreeMap<Hash, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<Hash, Vec<Hash>> = BTreeMap::new();
    let mut ready: BTreeSet<(u64, ActorId, Hash)> = BTreeSet::new();
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
            ready.insert((c.header().seq, c.header().actor, *h));
        } else {
            waiting.insert(*h, deps.len());
        }
    }
    let mut out = Vec::with_capacity(by_hash.len());
    while let Some(next) = ready.pop_first() {
        let h = next.2;
        for d in dependents.get(&h).into_iter().flatten() {
            if let Some(n) = waiting.get_mut(d) {
                *n -= 1;
                if *n == 0 {
                    waiting.remove(d);
                    let c = &by_hash[d];
                    ready.insert((c.header().seq, c.header().actor, *d));
                }
            }
        }
        out.push(by_hash[&h].clone());
    }
    // A cycle cannot occur between hash-linked changes; anything left (it
    // would be malformed) goes last, in hash order.
    for h in waiting.keys() {
        out.push(by_hash[h].clone());
    }
    out
}

/// Cuts changes (already in causal order) into encoded, edge-signed
/// batches. An actor's trailing changes that no signature held vouches for
/// are held back: sent, they would be refused as unvouched.
pub fn edge_signed_batches(ordered: Vec<SignedChange>, limits: BatchLimits) -> Vec<Vec<Vec<u8>>> {
    let mut last_signed: BTreeMap<ActorId, u64> = BTreeMap::new();
    for c in &ordered {
        if c.signature().is_some() {
            let e = last_signed.entry(c.header().actor).or_insert(0);
            *e = (*e).max(c.header().seq);
        }
    }
    let sendable: Vec<SignedChange> = ordered
        .into_iter()
        .filter(|c| {
            last_signed
                .get(&c.header().actor)
                .is_some_and(|s| c.header().seq <= *s)
        })
        .collect();
    let mut out = Vec::new();
    let mut cur: Vec<SignedChange> = Vec::new();
    let mut bytes = 0usize;
    let mut unsigned_tail: BTreeSet<ActorId> = BTreeSet::new();
    for c in sendable {
        bytes += c.chunk().len() + 128;
        if c.signature().is_some() {
            unsigned_tail.remove(&c.header().actor);
        } else {
            unsigned_tail.insert(c.header().actor);
        }
        cur.push(c);
        if (bytes >= limits.max_bytes || cur.len() >= limits.max_changes)
            && unsigned_tail.is_empty()
        {
            out.push(seal(std::mem::take(&mut cur)));
            bytes = 0;
        }
    }
    if !cur.is_empty() {
        out.push(seal(cur));
    }
    out
}

/// Encodes a batch, keeping only each actor's newest signature.
fn seal(batch: Vec<SignedChange>) -> Vec<Vec<u8>> {
    let mut newest: BTreeMap<ActorId, usize> = BTreeMap::new();
    for (i, c) in batch.iter().enumerate() {
        newest.insert(c.header().actor, i);
    }
    let keep: BTreeSet<usize> = newest.into_values().collect();
    batch
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if keep.contains(&i) {
                c.encode()
            } else {
                c.without_signature().encode()
            }
        })
        .collect()
}
