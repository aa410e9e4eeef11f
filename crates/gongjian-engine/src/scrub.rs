//! The scrub behind `gongjian verify`: everything the store holds is read
//! back and checked again as if it had just arrived, so a flipped byte on
//! disk is found, reported, and (with repair) dropped to be fetched again
//! from peers rather than served.

use std::collections::BTreeMap;

use gongjian_identity::{
    ActorId, DocId, Hash, SignedChange, VerifyItem, change_signing_message, verify_many,
};
use gongjian_store::Batch;
use serde::Serialize;

use crate::{EngineError, Replica};

/// Something wrong in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScrubProblem {
    /// The document, if the problem is in one (else a record or a column
    /// family).
    pub doc: Option<String>,
    pub what: String,
}

/// What a scrub read and found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScrubReport {
    pub records: usize,
    pub documents: usize,
    pub changes: usize,
    pub signatures_checked: usize,
    pub problems: Vec<ScrubProblem>,
    /// Documents whose data was dropped to be fetched again (repair).
    pub dropped: Vec<String>,
}

impl ScrubReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Replica {
    /// Reads back and checks everything held: every block's checksum, every
    /// record's signature, every document's changes (each chunk's hash
    /// against its own checksum as it decodes, every indexed change
    /// present, the document they name, signatures or a same-author signed
    /// descendant, the version vector, the count) and the heads its changes
    /// build against the heads stored. `repair`: documents found corrupt
    /// lose their changes (their genesis stays), so the next sync fetches
    /// them again; a document this node alone wrote comes back only from a
    /// backup.
    pub fn scrub(&mut self, repair: bool) -> Result<ScrubReport, EngineError> {
        let mut report = ScrubReport::default();
        for (cf, e) in self.store.read_everything() {
            report.problems.push(ScrubProblem {
                doc: None,
                what: format!("column family {cf}: {e}"),
            });
        }
        match self.store.records() {
            Ok(records) => {
                report.records = records.len();
                for r in records {
                    let h = r.hash();
                    if let Err(e) = gongjian_model::verify_record(r) {
                        report.problems.push(ScrubProblem {
                            doc: None,
                            what: format!("record {h}: {e}"),
                        });
                    }
                }
            }
            Err(e) => report.problems.push(ScrubProblem {
                doc: None,
                what: format!("records: {e}"),
            }),
        }
        let docs = match self.store.docs() {
            Ok(d) => d,
            Err(e) => {
                report.problems.push(ScrubProblem {
                    doc: None,
                    what: format!("documents: {e}"),
                });
                return Ok(report);
            }
        };
        report.documents = docs.len();
        let mut corrupt: Vec<DocId> = Vec::new();
        for (doc, meta) in docs {
            let mut problems = Vec::new();
            if meta.genesis != doc.0 {
                problems.push("its meta names another genesis".to_owned());
            }
            // (Held, even if a revocation cut leaves it without force.)
            if self.membership.get(&doc.0).is_none() {
                problems.push("its genesis record is not held".to_owned());
            }
            let quarantined = match self.store.quarantined(&doc) {
                Ok(q) => q.into_iter().map(|q| q.change).collect(),
                Err(e) => {
                    problems.push(format!("quarantine: {e}"));
                    Vec::new()
                }
            };
            match self.store.doc_changes(&doc) {
                Err(e) => problems.push(e.to_string()),
                Ok(changes) => {
                    report.changes += changes.len();
                    report.signatures_checked +=
                        check_changes(&doc, &changes, &quarantined, &meta, &mut problems);
                }
            }
            if !problems.is_empty() {
                corrupt.push(doc);
                for what in problems {
                    report.problems.push(ScrubProblem {
                        doc: Some(doc.to_string()),
                        what,
                    });
                }
            }
        }
        if repair && !corrupt.is_empty() {
            let mut b = Batch::new();
            for doc in &corrupt {
                self.cache.pop(doc);
                b.drop_doc(doc);
                report.dropped.push(doc.to_string());
            }
            self.store.commit_blocking(b)?;
            tracing::warn!(
                documents = corrupt.len(),
                "corrupt documents dropped, to be fetched again from peers"
            );
        }
        Ok(report)
    }
}

/// Checks a document's accepted changes against its meta; returns the
/// signatures verified.
fn check_changes(
    doc: &DocId,
    changes: &[SignedChange],
    quarantined: &[SignedChange],
    meta: &gongjian_store::DocMeta,
    problems: &mut Vec<String>,
) -> usize {
    let mut clock: BTreeMap<ActorId, u64> = BTreeMap::new();
    for c in changes {
        if c.doc() != doc {
            problems.push(format!("change {} names document {}", c.hash(), c.doc()));
        }
        let e = clock.entry(c.header().actor).or_insert(0);
        *e = (*e).max(c.header().seq);
    }
    if clock != meta.clock {
        problems.push("its version vector does not match its changes".to_owned());
    }
    if changes.len() as u64 != meta.changes {
        problems.push(format!(
            "{} changes held, its meta counts {}",
            changes.len(),
            meta.changes
        ));
    }
    // Signatures, in one batch; unsigned changes must be vouched for.
    let msgs: Vec<_> = changes
        .iter()
        .map(|c| change_signing_message(c.doc(), &c.hash()))
        .collect();
    let mut items = Vec::new();
    let mut signed = Vec::new();
    for (k, c) in changes.iter().enumerate() {
        if let Some((signer, sig)) = c.signature() {
            if *signer != c.header().actor.key {
                problems.push(format!("change {} is signed by another key", c.hash()));
                continue;
            }
            items.push(VerifyItem {
                key: signer,
                msg: &msgs[k],
                sig,
            });
            signed.push(c.hash());
        }
    }
    for (h, r) in signed.iter().zip(verify_many(&items)) {
        if let Err(e) = r {
            problems.push(format!("change {h}: {e}"));
        }
    }
    // As ingest judges it: a signed change held in quarantine (say, cut
    // off by a revocation) still vouches for its accepted prefix.
    let vouched = crate::ingest::vouched(changes.iter().chain(quarantined));
    for c in changes {
        if c.signature().is_none() && !vouched.contains(&c.hash()) {
            problems.push(format!("change {} is unsigned and unvouched", c.hash()));
        }
    }
    if problems.is_empty() {
        let am = crate::ingest::build(changes);
        let mut heads: Vec<Hash> = am.get_heads().iter().map(|h| Hash(h.0)).collect();
        heads.sort();
        if heads != meta.heads {
            problems.push("its changes build other heads than those stored".to_owned());
        }
    }
    items.len()
}
