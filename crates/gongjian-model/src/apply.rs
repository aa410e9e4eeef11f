//! Applying accepted changes to automerge, with every failure contained:
//! automerge can panic on a signed but malformed change (an op on a missing
//! object), so application runs under `catch_unwind` and a failing change is
//! named, never allowed to take the node down.
//!
//! Whether a change applies must not depend on the order changes arrived in
//! (PROTOCOL.md, section 4, rule 8): a change whose ops name an object made by
//! a concurrent change applies once that change is in. So a change that fails
//! is set aside and tried again after the others, until nothing more applies;
//! only what still fails then is named.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

use automerge::{Automerge, Change, ReadDoc};
use gongjian_identity::Hash;

/// The result of applying accepted changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Every change was applied.
    Applied,
    /// These changes could not be parsed or applied (error or panic) even
    /// after every other change was applied; nothing depending on them was
    /// applied. The document holds all the rest.
    Failed { hashes: Vec<Hash>, reason: String },
}

fn parse(hash: &Hash, chunk: &[u8]) -> Result<Change, String> {
    let change = Change::try_from(chunk).map_err(|e| e.to_string())?;
    if change.hash().0 != hash.0 {
        return Err("automerge computed another hash".into());
    }
    Ok(change)
}

fn try_apply(doc: &mut Automerge, changes: Vec<Change>) -> Result<(), String> {
    match catch_unwind(AssertUnwindSafe(|| doc.apply_changes(changes))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("automerge panicked".into()),
    }
}

/// Applies `changes` (accepted, dependencies first) in one batch; if that
/// fails, rebuilds the document with `rebuild` and applies one change at a
/// time on a copy, setting failures aside and retrying them until nothing
/// more applies.
pub fn apply_accepted(
    doc: &mut Automerge,
    changes: &[(Hash, &[u8])],
    rebuild: impl FnOnce() -> Automerge,
) -> ApplyOutcome {
    let parsed: Result<Vec<Change>, (Hash, String)> = changes
        .iter()
        .map(|(h, c)| parse(h, c).map_err(|e| (*h, e)))
        .collect();
    if let Ok(parsed) = parsed
        && try_apply(doc, parsed).is_ok()
    {
        return ApplyOutcome::Applied;
    }
    // Slow path, only on bad input: the batch may have left `doc` half-applied.
    *doc = rebuild();
    let mut todo: Vec<(Hash, Change)> = Vec::new();
    let mut failed: BTreeSet<Hash> = BTreeSet::new();
    let mut last_reason = String::new();
    for (hash, chunk) in changes {
        match parse(hash, chunk) {
            Ok(c) => todo.push((*hash, c)),
            Err(reason) => {
                failed.insert(*hash);
                last_reason = reason;
            }
        }
    }
    loop {
        let mut progress = false;
        let mut rest = Vec::new();
        for (hash, change) in todo {
            // Never hand automerge a change whose dependency is not in the
            // document yet (set aside, or later in `changes`, which need
            // not be in causal order): it would queue it silently, and
            // the change that releases it would take the blame.
            if change.deps().iter().any(|d| failed.contains(&Hash(d.0)))
                || !doc.get_missing_deps(change.deps()).is_empty()
            {
                rest.push((hash, change));
                continue;
            }
            let mut trial = doc.clone();
            match try_apply(&mut trial, vec![change.clone()]) {
                Ok(()) => {
                    *doc = trial;
                    progress = true;
                }
                Err(reason) => {
                    last_reason = reason;
                    rest.push((hash, change));
                }
            }
        }
        if rest.is_empty() {
            break;
        }
        if !progress {
            // What is left fails on everything else: name the ones whose
            // own dependencies are all in (the others merely depend on them).
            let left: BTreeSet<Hash> = rest.iter().map(|(h, _)| *h).collect();
            for (hash, change) in &rest {
                if !change
                    .deps()
                    .iter()
                    .any(|d| left.contains(&Hash(d.0)) || failed.contains(&Hash(d.0)))
                {
                    failed.insert(*hash);
                }
            }
            break;
        }
        todo = rest;
    }
    if failed.is_empty() {
        ApplyOutcome::Applied
    } else {
        ApplyOutcome::Failed {
            hashes: failed.into_iter().collect(),
            reason: last_reason,
        }
    }
}
