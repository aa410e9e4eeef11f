//! What a `Want` says the asker holds: per actor its highest accepted seq
//! and that change's hash, and for a long chain back points below it, so
//! an answerer whose chain differs starts near the fork (PROTOCOL.md §8.4).

use std::collections::BTreeMap;

use gongjian_identity::{ActorId, DocId, Hash};

use crate::message::MAX_LIST;
use crate::session::{Have, Host};

/// Actor → earlier (seq, hash) points of the asker's chain, below its
/// highest (at [`back_seqs`]): an answerer whose change at the highest is
/// another sends its chain from the highest point where the two agree,
/// not from the first change (which past some 30,000 changes of one actor
/// would not fit in an answer and never reach the fork).
pub type Back = BTreeMap<ActorId, Vec<(u64, Hash)>>;

/// The spacing of the back points of a `Want`: at `seq - 1024`,
/// `seq - 2048`, `seq - 4096`, ... while above 0. An actor with at most
/// 1,024 changes has none (its whole chain is a small answer). Whatever
/// the fork's seq f, the answerer starts at most max(1024, seq - f)
/// changes before the fork.
pub const BACK_SPACING: u64 = 1024;

/// A `Want`'s list read back: per actor, the highest entry is what the
/// peer holds, any others are back points of its chain.
pub(crate) fn split_have(entries: Vec<(ActorId, u64, Hash)>) -> (Have, Back) {
    let mut have = Have::new();
    let mut back = Back::new();
    for (a, s, h) in entries {
        let below = match have.get(&a) {
            Some(&(top, _)) if top >= s => (s, h),
            Some(&top) => {
                have.insert(a, (s, h));
                top
            }
            None => {
                have.insert(a, (s, h));
                continue;
            }
        };
        back.entry(a).or_default().push(below);
    }
    (have, back)
}

/// The seqs of an actor's back points when the asker holds `top`
/// changes of it, ascending.
pub fn back_seqs(top: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut step = BACK_SPACING;
    while step < top {
        out.push(top - step);
        step = step.saturating_mul(2);
    }
    out.reverse();
    out
}

/// The list a `Want` of `doc` carries. A version vector past the list cap
/// is cut: the peer then sends the left-out actors' changes from the
/// start, which ingest takes as duplicates (never a document left
/// unasked). Each actor's back points go before its highest, while the
/// list has room (a node that reads one entry per actor, keeping the last,
/// sees the highest).
pub(crate) fn want_list<H: Host>(
    host: &mut H,
    doc: &DocId,
) -> Result<Vec<(ActorId, u64, Hash)>, H::Error> {
    let tops: Vec<(ActorId, (u64, Hash))> = host.have(doc)?.into_iter().take(MAX_LIST).collect();
    let mut room = MAX_LIST - tops.len();
    let mut list = Vec::with_capacity(tops.len());
    for (a, (s, h)) in tops {
        for seq in back_seqs(s).into_iter().rev().take(room).rev() {
            if let Some(at) = host.change_at(doc, &a, seq)? {
                list.push((a, seq, at));
                room -= 1;
            }
        }
        list.push((a, s, h));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_points_are_spaced_from_the_top_and_read_back_apart_from_it() {
        assert!(back_seqs(1024).is_empty(), "a small chain has none");
        assert_eq!(back_seqs(1025), [1]);
        assert_eq!(back_seqs(5000), [904, 2952, 3976]);
        assert_eq!(back_seqs(u64::MAX).len(), 54, "bounded by the seq's bits");
        let actor = || ActorId {
            key: gongjian_identity::Secret::generate().public(),
            epoch: 1,
        };
        let (a, b) = (actor(), actor());
        let h = |n: u8| Hash([n; 32]);
        // As a session sends them: back points first, the highest last.
        let (have, back) = split_have(vec![
            (a, 904, h(1)),
            (a, 2952, h(2)),
            (a, 5000, h(3)),
            (b, 7, h(4)),
        ]);
        assert_eq!(have, Have::from([(a, (5000, h(3))), (b, (7, h(4)))]));
        assert_eq!(back, Back::from([(a, vec![(904, h(1)), (2952, h(2))])]));
        // In any order, the highest is still what the peer holds.
        let (have2, back2) = split_have(vec![
            (a, 5000, h(3)),
            (a, 904, h(1)),
            (b, 7, h(4)),
            (a, 2952, h(2)),
        ]);
        assert_eq!(have2, have);
        assert_eq!(back2[&a].len(), 2);
        // What a node reading one entry per actor (the last) sees.
        let last: BTreeMap<ActorId, (u64, Hash)> =
            [(a, 904, h(1)), (a, 2952, h(2)), (a, 5000, h(3))]
                .into_iter()
                .map(|(a, s, h)| (a, (s, h)))
                .collect();
        assert_eq!(last[&a], (5000, h(3)));
    }
}
