//! The equivocation scenario: a community's store is copied, the community
//! writes on (its peers take those changes), then its store is replaced by
//! the copy, same actor, and it writes on from there alone: two branches of
//! one actor at the same seqs. After healing every node must reject both
//! from the fork on (PROTOCOL.md §4 rule 4) and hold the same accepted set,
//! whichever branch it held and whatever the branches' lengths.

use std::collections::BTreeSet;

use super::{Config, World};

/// What an equivocation run found.
#[derive(Debug, Clone)]
pub struct EquivocationReport {
    /// The forked actor's accepted seqs on every node holding the document
    /// (the same on all): what it wrote before the copy.
    pub kept: BTreeSet<(u32, u64)>,
    /// The two branches' lengths.
    pub branches: (usize, usize),
    pub holders: usize,
}

/// Runs one seed: the first branch gets `first` writes, the second
/// `second` (equal lengths are the case version vectors cannot tell).
pub fn run_equivocation(
    seed: u64,
    first: usize,
    second: usize,
) -> Result<EquivocationReport, String> {
    let cfg = Config {
        streets: 2,
        communities_per_street: 2,
        residents_per_community: 1,
        p_write: 0.1,
        devices: false,
        ..Config::district(seed)
    };
    let mut w = World::new(cfg);
    w.steps(300, None);
    // Community index 2 (first community of the first street).
    let c = 2;
    let street = w.nodes[c].parent.ok_or("no parent")?;
    let doc = w.nodes[c].doc.ok_or("no document")?;
    let key = w.nodes[c].secret.public();
    let copy = w.copy_store(c);
    let at_copy = w.accepted_of(&doc, &key)[&c].clone();
    // The first branch, synced to the community's peers.
    for _ in 0..first {
        w.write(c);
    }
    w.steps(200, None);
    let ahead = w.accepted_of(&doc, &key);
    if ahead.get(&street) == Some(&at_copy) {
        return Err(format!(
            "seed {seed}: the first branch did not reach the street"
        ));
    }
    // Cut off, the store replaced by the copy (same actor, no new epoch:
    // what `gongjian restore` refuses to do), the second branch.
    w.isolate(c, true);
    w.replace_store(c, &copy);
    for _ in 0..second {
        w.write(c);
    }
    w.steps(100, None);
    w.isolate(c, false);
    w.heal(30);
    w.check()?;
    let accepted = w.accepted_of(&doc, &key);
    for (node, set) in &accepted {
        if *set != at_copy {
            return Err(format!(
                "seed {seed}: node {node} accepted {set:?} of the forked actor, \
                 {at_copy:?} was written before the fork ({first} and {second} changes past it)"
            ));
        }
    }
    Ok(EquivocationReport {
        kept: at_copy,
        branches: (first, second),
        holders: accepted.len(),
    })
}
