//! Applying accepted changes to automerge, with every failure contained:
//! automerge can panic on a signed but malformed change (an op on a missing
//! object), so application runs under `catch_unwind` and a failing change is
//! named, never allowed to take the node down.

use std::panic::{AssertUnwindSafe, catch_unwind};

use automerge::{Automerge, Change};
use gongjian_identity::Hash;

/// The result of applying accepted changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Every change was applied.
    Applied,
    /// This change could not be parsed or applied (error or panic); the
    /// changes before it in the order were applied, none after it.
    Failed { hash: Hash, reason: String },
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
/// time on a copy to find the one that fails.
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
    for (hash, chunk) in changes {
        let change = match parse(hash, chunk) {
            Ok(c) => c,
            Err(reason) => {
                return ApplyOutcome::Failed {
                    hash: *hash,
                    reason,
                };
            }
        };
        let mut trial = doc.clone();
        match try_apply(&mut trial, vec![change]) {
            Ok(()) => *doc = trial,
            Err(reason) => {
                return ApplyOutcome::Failed {
                    hash: *hash,
                    reason,
                };
            }
        }
    }
    ApplyOutcome::Applied
}
