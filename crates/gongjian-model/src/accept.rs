//! The acceptance rule (`PROTOCOL.md`, "The acceptance rule"): which changes
//! of a document are accepted, as a pure function of the changes held and the
//! evaluated membership. Nothing here looks at arrival order or a clock.

use std::collections::{BTreeMap, BTreeSet};

use gongjian_identity::{ActorId, DocId, Hash, PublicKey};

use crate::membership::Trust;

/// What the rule needs of one change: read from its checked header, plus
/// whether its own signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeMeta {
    pub hash: Hash,
    pub deps: Vec<Hash>,
    pub actor: ActorId,
    pub seq: u64,
    /// Its own signature verified (strictly). Unsigned changes are
    /// authenticated only as same-author ancestors of a signed one.
    pub signed: bool,
}

/// Why a change is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, thiserror::Error)]
pub enum Rejection {
    #[error("document genesis is not held or not valid")]
    NoGenesis,
    #[error("not covered by a signature of its author (own or a same-author descendant's)")]
    Unauthenticated,
    #[error("author {0} is not a write key of the owning unit")]
    NotWriteKey(PublicKey),
    #[error("author's key is revoked and this change is outside the cut of revocation {0}")]
    Revoked(Hash),
    #[error(
        "author {actor:?} equivocated at seq {fork_seq}: every change of that actor from there on is rejected"
    )]
    Equivocation { actor: ActorId, fork_seq: u64 },
    #[error(
        "seq {seq} does not follow the author's previous change (expected a dependency on seq {expected_prev})"
    )]
    SeqGap { seq: u64, expected_prev: u64 },
    #[error("depends on rejected change {0}")]
    DependsOnRejected(Hash),
    #[error("automerge could not apply it")]
    ApplyFailed,
}

/// The verdict on one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// Waits for these missing dependencies (or for the genesis).
    Pending(Vec<Hash>),
    Rejected(Rejection),
}

/// The verdicts on every change of a document held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocVerdicts {
    pub verdicts: BTreeMap<Hash, Verdict>,
    /// Accepted changes, dependencies first: the order to apply them in.
    pub order: Vec<Hash>,
    /// Actors proven to have equivocated, with the first forked seq.
    pub forks: BTreeMap<ActorId, u64>,
}

impl DocVerdicts {
    pub fn accepted(&self) -> BTreeSet<Hash> {
        self.order.iter().copied().collect()
    }
}

/// Evaluates every change held for `doc`. `apply_failed` names accepted-by-rule
/// changes that automerge could not apply (deterministic for one automerge
/// version); they and their descendants are rejected.
pub fn evaluate_document(
    trust: &Trust,
    doc: &DocId,
    changes: &[ChangeMeta],
    apply_failed: &BTreeSet<Hash>,
) -> DocVerdicts {
    let by_hash: BTreeMap<Hash, &ChangeMeta> = changes.iter().map(|c| (c.hash, c)).collect();
    let mut out = DocVerdicts::default();
    let Some(write_keys) = trust.write_keys(doc) else {
        for c in by_hash.values() {
            out.verdicts
                .insert(c.hash, Verdict::Rejected(Rejection::NoGenesis));
        }
        return out;
    };

    let authenticated = authenticate(&by_hash);
    // Rules 1-3 depend on the change alone (and the records): settle them
    // first, so that only eligible changes can prove an equivocation. A
    // thief's change outside a revocation cut never freezes honest history.
    let mut chains = ChainCache::default();
    let local: BTreeMap<Hash, Option<Rejection>> = by_hash
        .values()
        .map(|c| {
            let verdict = local_checks(
                trust,
                doc,
                write_keys,
                c,
                &by_hash,
                &authenticated,
                &mut chains,
            );
            (c.hash, verdict)
        })
        .collect();
    out.forks = forks(&by_hash, &local);

    for hash in topological(&by_hash) {
        let c = by_hash[&hash];
        let verdict = match &local[&hash] {
            Some(r) => Verdict::Rejected(r.clone()),
            None => judge(c, &by_hash, &out, apply_failed),
        };
        if verdict == Verdict::Accepted {
            out.order.push(hash);
        }
        out.verdicts.insert(hash, verdict);
    }
    // Changes on a dependency cycle (impossible with SHA-256) never become ready.
    for c in by_hash.values() {
        out.verdicts
            .entry(c.hash)
            .or_insert_with(|| Verdict::Pending(c.deps.clone()));
    }
    out
}

/// Same-actor chains ending at a change: the changes a cut entry keeps.
#[derive(Default)]
struct ChainCache(BTreeMap<Hash, BTreeSet<Hash>>);

impl ChainCache {
    fn chain(&mut self, head: &Hash, by_hash: &BTreeMap<Hash, &ChangeMeta>) -> &BTreeSet<Hash> {
        self.0.entry(*head).or_insert_with(|| {
            let mut out = BTreeSet::new();
            let mut next = by_hash.get(head).copied();
            while let Some(c) = next {
                if !out.insert(c.hash) {
                    break;
                }
                next = c
                    .deps
                    .iter()
                    .filter_map(|d| by_hash.get(d).copied())
                    .find(|d| d.actor == c.actor);
            }
            out
        })
    }
}

/// Rules 1-3: authentication, write key, revocation cuts.
fn local_checks(
    trust: &Trust,
    doc: &DocId,
    write_keys: &BTreeSet<PublicKey>,
    c: &ChangeMeta,
    by_hash: &BTreeMap<Hash, &ChangeMeta>,
    auth: &BTreeSet<Hash>,
    chains: &mut ChainCache,
) -> Option<Rejection> {
    if !auth.contains(&c.hash) {
        return Some(Rejection::Unauthenticated);
    }
    if !write_keys.contains(&c.actor.key) {
        return Some(Rejection::NotWriteKey(c.actor.key));
    }
    for (revocation, entry) in trust.cuts_for(doc, &c.actor) {
        let kept = entry
            .is_some_and(|e| c.seq <= e.seq && chains.chain(&e.head, by_hash).contains(&c.hash));
        if !kept {
            return Some(Rejection::Revoked(revocation));
        }
    }
    None
}

/// Signed changes, and same-author ancestors of authenticated changes.
fn authenticate(by_hash: &BTreeMap<Hash, &ChangeMeta>) -> BTreeSet<Hash> {
    let mut auth: BTreeSet<Hash> = by_hash
        .values()
        .filter(|c| c.signed)
        .map(|c| c.hash)
        .collect();
    let mut todo: Vec<Hash> = auth.iter().copied().collect();
    while let Some(h) = todo.pop() {
        let c = by_hash[&h];
        for d in &c.deps {
            if let Some(dc) = by_hash.get(d)
                && dc.actor == c.actor
                && auth.insert(*d)
            {
                todo.push(*d);
            }
        }
    }
    auth
}

/// (actor → first seq) where two different changes that pass rules 1-3
/// share a seq.
fn forks(
    by_hash: &BTreeMap<Hash, &ChangeMeta>,
    local: &BTreeMap<Hash, Option<Rejection>>,
) -> BTreeMap<ActorId, u64> {
    let mut seen: BTreeMap<(ActorId, u64), Hash> = BTreeMap::new();
    let mut forks: BTreeMap<ActorId, u64> = BTreeMap::new();
    for (h, rejection) in local {
        if rejection.is_some() {
            continue;
        }
        let c = by_hash[h];
        if let Some(other) = seen.insert((c.actor, c.seq), c.hash)
            && other != c.hash
        {
            let f = forks.entry(c.actor).or_insert(c.seq);
            *f = (*f).min(c.seq);
        }
    }
    forks
}

/// Kahn's algorithm over present changes, ties broken by hash. Changes with a
/// dependency that is not held come out too (their verdict is Pending).
fn topological(by_hash: &BTreeMap<Hash, &ChangeMeta>) -> Vec<Hash> {
    let mut indegree: BTreeMap<Hash, usize> = BTreeMap::new();
    let mut children: BTreeMap<Hash, Vec<Hash>> = BTreeMap::new();
    for c in by_hash.values() {
        let present: BTreeSet<&Hash> = c.deps.iter().filter(|d| by_hash.contains_key(d)).collect();
        indegree.insert(c.hash, present.len());
        for d in present {
            children.entry(*d).or_default().push(c.hash);
        }
    }
    let mut ready: BTreeSet<Hash> = indegree
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(h, _)| *h)
        .collect();
    let mut order = Vec::with_capacity(by_hash.len());
    while let Some(h) = ready.pop_first() {
        order.push(h);
        for child in children.get(&h).into_iter().flatten() {
            let n = indegree
                .get_mut(child)
                .unwrap_or_else(|| unreachable!("indexed above"));
            *n -= 1;
            if *n == 0 {
                ready.insert(*child);
            }
        }
    }
    order
}

/// Rules 4-8 for a change that passed rules 1-3.
fn judge(
    c: &ChangeMeta,
    by_hash: &BTreeMap<Hash, &ChangeMeta>,
    so_far: &DocVerdicts,
    apply_failed: &BTreeSet<Hash>,
) -> Verdict {
    if let Some(&fork_seq) = so_far.forks.get(&c.actor)
        && c.seq >= fork_seq
    {
        return Verdict::Rejected(Rejection::Equivocation {
            actor: c.actor,
            fork_seq,
        });
    }
    // 2. Dependencies: a rejected one rejects, a missing or pending one waits.
    let mut missing = Vec::new();
    for d in &c.deps {
        match so_far.verdicts.get(d) {
            Some(Verdict::Accepted) => {}
            Some(Verdict::Rejected(_)) => {
                return Verdict::Rejected(Rejection::DependsOnRejected(*d));
            }
            Some(Verdict::Pending(m)) => missing.extend(m.iter().copied()),
            None => missing.push(*d),
        }
    }
    if !missing.is_empty() {
        missing.sort();
        missing.dedup();
        return Verdict::Pending(missing);
    }
    // 3. The author's chain: seq 1 has no same-author dependency; seq n has
    //    exactly one, at seq n-1.
    let own: Vec<&ChangeMeta> = c
        .deps
        .iter()
        .filter_map(|d| by_hash.get(d).copied())
        .filter(|d| d.actor == c.actor)
        .collect();
    let chained = match c.seq {
        1 => own.is_empty(),
        n => own.len() == 1 && own[0].seq == n - 1,
    };
    if !chained {
        return Verdict::Rejected(Rejection::SeqGap {
            seq: c.seq,
            expected_prev: c.seq - 1,
        });
    }
    if apply_failed.contains(&c.hash) {
        return Verdict::Rejected(Rejection::ApplyFailed);
    }
    Verdict::Accepted
}
