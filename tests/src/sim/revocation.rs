//! The revocation scenario: a key writes behind a partition while it is
//! revoked elsewhere; every node must end with exactly the cut's prefix.

use std::collections::BTreeSet;

use super::{Config, World};

/// What a revocation run found: the prefix of each of the revoked key's
/// actors the cut keeps, what the key wrote in all, and how many nodes
/// hold its document.
#[derive(Debug, Clone)]
pub struct RevocationReport {
    pub kept: BTreeSet<(u32, u64)>,
    pub writes: u64,
    pub holders: usize,
}

/// Revocation under concurrency: a community's key keeps writing behind a
/// partition while its street revokes it; after healing, every node holding
/// the document accepts exactly the prefix the cut keeps, and the
/// revocation (which goes to every member) names no document id.
pub fn run_revocation(seed: u64) -> Result<RevocationReport, String> {
    let cfg = Config {
        streets: 2,
        communities_per_street: 2,
        residents_per_community: 2,
        p_write: 0.1,
        ..Config::district(seed)
    };
    let mut w = World::new(cfg);
    w.steps(300, None);
    // Community index 2 (first community of the first street).
    let c = 2;
    let street = w.nodes[c].parent.ok_or("no parent")?;
    let up = w.uplink(c).ok_or("no uplink")?;
    w.set_link(up, false);
    w.steps(150, Some(c));
    let doc = w.nodes[c].doc.ok_or("no document")?;
    let before_cut = w.nodes[c]
        .replica()
        .store()
        .doc_meta(&doc)
        .map_err(|e| e.to_string())?
        .ok_or("no meta")?;
    let rev = w.revoke(c, street);
    let record = w.nodes[street]
        .replica()
        .store()
        .records()
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|r| r.hash() == rev)
        .ok_or("revocation not stored")?;
    let bytes = record.encode();
    for (d, _) in w.nodes[0].replica().trust().documents() {
        if bytes.windows(32).any(|x| x == d.as_bytes()) {
            return Err(format!(
                "seed {seed}: the revocation names document {d} in the clear"
            ));
        }
    }
    let cut = record
        .open::<gongjian_identity::Revocation>()
        .map_err(|e| e.to_string())?
        .cut;
    // The revoked key keeps writing; its residents still take its changes.
    w.steps(300, Some(c));
    w.heal(30);
    w.check()?;
    let key = w.nodes[c].secret.public();
    let accepted = w.accepted_of(&doc, &key);
    let kept: BTreeSet<(u32, u64)> = before_cut
        .clock
        .keys()
        .filter(|a| a.key == key)
        .filter_map(|a| cut.entry(&doc, a).map(|e| (a.epoch, e.seq)))
        .collect();
    // (The cut may keep nothing, if none of the key's changes reached the
    // street before it revoked; then every node must accept nothing.)
    for (node, set) in &accepted {
        if *set != kept {
            return Err(format!(
                "seed {seed}: node {node} accepted {set:?}, the cut keeps {kept:?} (replay: scripts/sim.sh --revocation --seed {seed})"
            ));
        }
    }
    let writes = w.nodes[c].writes;
    let cut_seq = kept.iter().map(|(_, s)| *s).max().unwrap_or(0);
    if writes <= cut_seq {
        return Err(format!(
            "seed {seed}: the key did not write past the cut ({writes} writes, {cut_seq} kept)"
        ));
    }
    Ok(RevocationReport {
        kept,
        writes,
        holders: accepted.len(),
    })
}
