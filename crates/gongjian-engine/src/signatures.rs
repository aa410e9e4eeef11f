//! The signatures of a batch of changes: which are checked (each actor's
//! newest in a document, and checkpoints), which the hash links vouch for
//! (PROTOCOL.md §3, §4 rule 1), and what becomes of the others'.

use std::collections::{BTreeMap, BTreeSet};

use gongjian_identity::{DocId, Hash, SignedChange, verify_changes};

/// Hashes reachable from signed changes through same-actor dependencies.
pub(crate) fn vouched<'a>(changes: impl Iterator<Item = &'a SignedChange>) -> BTreeSet<Hash> {
    let by_hash: BTreeMap<Hash, &SignedChange> = changes.map(|c| (c.hash(), c)).collect();
    let mut out: BTreeSet<Hash> = BTreeSet::new();
    let mut todo: Vec<Hash> = by_hash
        .values()
        .filter(|c| c.signature().is_some())
        .map(|c| c.hash())
        .collect();
    while let Some(h) = todo.pop() {
        if !out.insert(h) {
            continue;
        }
        let c = by_hash[&h];
        for d in &c.header().deps {
            if let Some(dc) = by_hash.get(d)
                && dc.header().actor == c.header().actor
            {
                todo.push(*d);
            }
        }
    }
    out
}

/// Checks the signatures of a batch of decoded changes and returns the
/// failures by position. The signer must be the actor, always. Of each
/// actor's run in a document only the newest signed changes are verified
/// (those no other signed change of the batch reaches through same-actor
/// dependencies): an automerge hash covers its dependencies, so a verified
/// signature vouches for the earlier changes of its run (PROTOCOL.md §3,
/// §4 rule 1). Their own signatures, not checked, are dropped, so a
/// signature this node has not verified is never stored or relayed. If a
/// newest signature fails, every signature of the batch is checked on its
/// own (the cost of a forger, not of honest peers).
/// The signatures taken off are returned by (document, hash): if the
/// change that vouched for one is later refused, its own is checked then.
///
/// The batch may be made of groups (frames from several peers, each
/// starting at its position in `starts`; `&[0]` for one): a change vouches
/// only for changes of its own group, and a group whose newest signature
/// fails has every signature checked on its own, so each group is judged
/// as if it came alone; the newest signatures of all groups are still
/// verified in one batch.
pub(crate) fn check_signatures(
    decoded: &mut [(usize, SignedChange)],
    starts: &[usize],
) -> (Failures, Unchecked) {
    use gongjian_identity::SignatureFailure;
    let group = |k: usize| starts.partition_point(|s| *s <= k).saturating_sub(1);
    let mut bad: BTreeMap<usize, SignatureFailure> = BTreeMap::new();
    let mut unchecked = Unchecked::new();
    let mut signed: Vec<usize> = Vec::new();
    for (k, (_, c)) in decoded.iter().enumerate() {
        if let Some((signer, _)) = c.signature() {
            if *signer == c.header().actor.key {
                signed.push(k);
            } else {
                bad.insert(k, SignatureFailure::ActorNotSigner);
            }
        }
    }
    if signed.is_empty() {
        return (bad, unchecked);
    }
    // Positions of each (document, hash); walk down same-actor
    // dependencies from every signed change, marking what it reaches.
    let mut at: std::collections::HashMap<(usize, DocId, Hash), Vec<usize>> =
        std::collections::HashMap::with_capacity(decoded.len());
    for (k, (_, c)) in decoded.iter().enumerate() {
        if !bad.contains_key(&k) {
            at.entry((group(k), *c.doc(), c.hash()))
                .or_default()
                .push(k);
        }
    }
    // Each (document, hash) is marked once, whatever the number of its
    // copies or of the changes naming it: linear in what arrived.
    let mut covered = vec![false; decoded.len()];
    let mut covered_keys: std::collections::HashSet<(usize, DocId, Hash)> = Default::default();
    let mut walked: std::collections::HashSet<(usize, DocId, Hash)> = Default::default();
    let mut stack: Vec<usize> = Vec::new();
    for &k in &signed {
        let c = &decoded[k].1;
        let g = group(k);
        if !walked.insert((g, *c.doc(), c.hash())) {
            continue;
        }
        stack.push(k);
        while let Some(j) = stack.pop() {
            let c = &decoded[j].1;
            for d in &c.header().deps {
                let key = (g, *c.doc(), *d);
                if covered_keys.contains(&key) {
                    continue;
                }
                // Copies of one (document, hash) share their chunk, hence
                // their actor.
                let Some(ks) = at.get(&key) else { continue };
                if decoded[ks[0]].1.header().actor != c.header().actor {
                    continue;
                }
                covered_keys.insert(key);
                for &i in ks {
                    covered[i] = true;
                }
                if walked.insert(key) {
                    stack.push(ks[0]);
                }
            }
        }
    }
    let verify = |ks: &[usize], bad: &mut BTreeMap<usize, SignatureFailure>| -> bool {
        let changes: Vec<&SignedChange> = ks.iter().map(|&k| &decoded[k].1).collect();
        let mut all_ok = true;
        for (&k, r) in ks.iter().zip(verify_changes(&changes)) {
            if let Err(f) = r {
                bad.insert(k, f);
                all_ok = false;
            }
        }
        all_ok
    };
    // Checkpoints keep their signatures too, so what is stored can be sent
    // again in batches cut where a signature ends each actor's run
    // (`edge_signed_batches`): a run never goes more than
    // CHECKPOINT_SEQ changes of at most CHECKPOINT_BYTES without one.
    let checkpoint = |k: usize| {
        let c = &decoded[k].1;
        c.header().seq.is_multiple_of(CHECKPOINT_SEQ) || c.chunk().len() > CHECKPOINT_BYTES
    };
    let (newest, vouched): (Vec<usize>, Vec<usize>) =
        signed.iter().partition(|&&k| !covered[k] || checkpoint(k));
    verify(&newest, &mut bad);
    // The groups holding a failed newest signature: all of theirs checked.
    let failed: std::collections::HashSet<usize> = newest
        .iter()
        .filter(|k| bad.contains_key(k))
        .map(|&k| group(k))
        .collect();
    let (check, take): (Vec<usize>, Vec<usize>) = vouched
        .into_iter()
        .partition(|&k| failed.contains(&group(k)));
    verify(&check, &mut bad);
    for k in take {
        let c = &mut decoded[k].1;
        let key = (*c.doc(), c.hash());
        if let Some(sig) = c.take_signature() {
            unchecked.entry(key).or_default().push(sig);
        }
    }
    (bad, unchecked)
}

/// Every change whose seq is a multiple of this keeps its signature.
pub const CHECKPOINT_SEQ: u64 = 64;
/// So does every change whose chunk is larger than this.
pub const CHECKPOINT_BYTES: usize = 4096;

/// Signature failures by position in a decoded batch.
pub(crate) type Failures = BTreeMap<usize, gongjian_identity::SignatureFailure>;
/// Signatures taken off vouched changes, not checked (every copy's).
pub(crate) type Unchecked = std::collections::HashMap<
    (DocId, Hash),
    Vec<(gongjian_identity::PublicKey, gongjian_identity::Signature)>,
>;
