//! The scrub behind `gongjian verify`: everything the store holds is read
//! back and checked again as if it had just arrived, so a flipped byte on
//! disk is found, reported, and (with repair) dropped to be fetched again
//! from peers rather than served.

use std::collections::BTreeMap;

use gongjian_identity::{ActorId, DocId, Hash, SignatureFailure, SignedChange, verify_changes};
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
    /// Corrupt documents this node writes, left in place by the daemon's
    /// own scrub: its peers may not hold every change yet, so only the
    /// operator drops them (`gongjian verify --repair`) or restores a backup.
    pub kept: Vec<String>,
}

impl ScrubReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What one step of the records scrub found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecordsScrub {
    pub checked: usize,
    pub problems: Vec<ScrubProblem>,
    /// Corrupt records written again from the verified copy in memory.
    pub rewritten: usize,
    /// Corrupt records with no verified copy: dropped, to be fetched again.
    pub dropped: usize,
    /// RocksDB found damaged blocks in the records' table files and the
    /// column family was written again from what could be read and what
    /// memory holds (what neither holds comes back from peers).
    pub rebuilt: bool,
    /// RocksDB found damage in the records' table files that was not
    /// repaired here: the operator's `gongjian verify --repair` does.
    pub unreadable: bool,
}

/// A stored record read back.
pub(crate) enum RecordState {
    Good(Box<gongjian_model::VerifiedRecord>),
    /// Its bytes are not the record its key names (a record's id is the
    /// SHA-256 of its encoding): damage.
    Damaged,
    /// Intact, but this build does not decode or verify it.
    Refused(String),
}

impl RecordState {
    /// What is wrong with the record stored under `hash`, as the scrubs
    /// report it; `None` when it is good.
    pub(crate) fn problem(&self, hash: &Hash) -> Option<ScrubProblem> {
        let what = match self {
            RecordState::Good(_) => return None,
            RecordState::Damaged => {
                format!("record {hash}: its bytes are not the record its key names")
            }
            // Intact bytes that this build refuses (a downgrade, a rule
            // change): reported, never deleted; the record set only grows.
            RecordState::Refused(why) => {
                format!("record {hash} does not verify under this build's rules (kept): {why}")
            }
        };
        Some(ScrubProblem { doc: None, what })
    }
}

/// Judges a stored record; an error only for a read that does not say the
/// data is damaged.
pub(crate) fn judge_record(
    stored: gongjian_store::StoredRecord,
) -> Result<RecordState, gongjian_store::StoreError> {
    Ok(judge_records(vec![stored])?
        .pop()
        .map(|(_, state)| state)
        .unwrap_or(RecordState::Damaged))
}

/// [`judge_record`] for many stored records, their signatures verified in
/// one batch; in the order given, each with its key.
pub(crate) fn judge_records(
    stored: Vec<gongjian_store::StoredRecord>,
) -> Result<Vec<(Hash, RecordState)>, gongjian_store::StoreError> {
    let mut out: Vec<(Hash, Option<RecordState>)> = Vec::with_capacity(stored.len());
    let mut decoded = Vec::new();
    for s in stored {
        let state = match s.record {
            Err(e) if !e.is_corruption() => return Err(e),
            _ if !s.intact => Some(RecordState::Damaged),
            Err(e) => Some(RecordState::Refused(e.to_string())),
            Ok(r) => {
                decoded.push(r);
                None
            }
        };
        out.push((s.key, state));
    }
    let mut verified = gongjian_model::verify_records(decoded).into_iter();
    Ok(out
        .into_iter()
        .map(|(key, state)| {
            let state = state.unwrap_or_else(|| match verified.next() {
                Some(Ok(v)) => RecordState::Good(Box::new(v)),
                Some(Err(e)) => RecordState::Refused(e.to_string()),
                None => RecordState::Damaged,
            });
            (key, state)
        })
        .collect())
}

impl Replica {
    /// One step of the records scrub: up to `max` records after `cursor`,
    /// each decoded, its hash checked against its key and its signature
    /// verified again. A corrupt one is written again from the verified
    /// copy membership holds in memory (every accepted record has one), or
    /// else dropped so records sync fetches it again; either way it is
    /// never served corrupt. Returns where to go on from (`None`: the pass
    /// is complete).
    ///
    /// Damage RocksDB itself finds in the records' table files (a block
    /// checksum) is reported, and the family's background compactions are
    /// held (one failing on it would leave the store read-only), but not
    /// rebuilt here: that drops table files, and RocksDB cannot say which
    /// good records the damaged ones hide, so it is the operator's step
    /// (`gongjian verify --repair`, [`Replica::scrub`]).
    pub fn scrub_records_step(
        &mut self,
        cursor: Option<Hash>,
        max: usize,
    ) -> Result<(RecordsScrub, Option<Hash>), EngineError> {
        self.check_records(cursor, max, true, false)
    }

    /// [`Replica::scrub_records_step`]; `repair` false: only reported;
    /// `rebuild`: damage RocksDB finds is repaired by writing the family
    /// again ([`Replica::scrub`] with `repair`).
    fn check_records(
        &mut self,
        cursor: Option<Hash>,
        max: usize,
        repair: bool,
        rebuild: bool,
    ) -> Result<(RecordsScrub, Option<Hash>), EngineError> {
        let max = max.max(1);
        let listed = match self.store.records_after(cursor.as_ref(), max) {
            Ok(listed) => listed,
            Err(e) if e.is_corruption() => {
                return Ok((self.rebuild_records(&e, repair && rebuild)?, None));
            }
            Err(e) => return Err(e.into()),
        };
        let next = if listed.len() == max {
            listed.last().map(|s| s.key)
        } else {
            None
        };
        let mut out = RecordsScrub {
            checked: listed.len(),
            ..Default::default()
        };
        let mut batch = Batch::default();
        for stored in listed {
            let hash = stored.key;
            let state = judge_record(stored)?;
            out.problems.extend(state.problem(&hash));
            if !matches!(state, RecordState::Damaged) || !repair {
                continue;
            }
            match self.membership.get(&hash) {
                Some(v) => {
                    batch.put_record(&v.record);
                    out.rewritten += 1;
                }
                None => {
                    batch.delete_record(&hash);
                    out.dropped += 1;
                }
            }
        }
        if !batch.is_empty() {
            self.store.commit_blocking(batch)?;
        }
        Ok((out, next))
    }

    /// The records' table files hold damage RocksDB itself found (a block
    /// whose checksum fails, a file cut short), so they cannot be listed.
    /// Every record still readable is judged as [`Self::check_records`]
    /// judges it, and the family's compactions are held. With `repair`, the
    /// family is written again from the good and the intact ones and every
    /// verified record memory holds, its old table files kept aside (hard
    /// links) rather than destroyed, since RocksDB reads every file of the
    /// family at once and a damaged one can hide good records of the
    /// others. Peers send what neither held: records sync serves and
    /// reconciles from memory.
    fn rebuild_records(
        &mut self,
        error: &gongjian_store::StoreError,
        repair: bool,
    ) -> Result<RecordsScrub, EngineError> {
        if let Err(e) = self.store.hold_compactions(gongjian_store::Cf::Records) {
            tracing::warn!(error = %e, "records' compactions not held");
        }
        let (readable, damage) = self.store.records_readable();
        let in_files = self.store.records_in_table_files();
        let mut out = RecordsScrub {
            checked: readable.len(),
            ..Default::default()
        };
        let mut keep: Vec<(Hash, Vec<u8>)> = Vec::new();
        let mut held = std::collections::HashSet::new();
        for stored in readable {
            let (hash, raw) = (stored.key, stored.raw.clone());
            let state = judge_record(stored)?;
            out.problems.extend(state.problem(&hash));
            if matches!(state, RecordState::Damaged) {
                continue;
            }
            held.insert(hash);
            keep.push((hash, raw));
        }
        let from_memory: Vec<(Hash, Vec<u8>)> = self
            .membership
            .records()
            .filter(|v| !held.contains(&v.record.hash()))
            .map(|v| gongjian_store::stored_record(&v.record))
            .collect();
        let blocks = damage.map_or(0, |(_, n)| n);
        let read = keep.len();
        let mut what = format!(
            "records: {error}; {blocks} unreadable places skipped: {read} records read past them (the table files count {in_files} entries), {} more held in memory",
            from_memory.len()
        );
        if repair {
            out.rewritten = from_memory.len();
            keep.extend(from_memory);
            let aside = self.store.replace_records(&keep, now_secs())?;
            out.rebuilt = true;
            what.push_str(&format!(
                "; the records' column family was written again from them ({} records), its old table files kept in {}; peers send the rest",
                keep.len(),
                aside.display()
            ));
        } else {
            out.unreadable = true;
            what.push_str("; stop the node and run `gongjian verify --repair` to write the family again (peers then send the rest)");
        }
        out.problems.push(ScrubProblem { doc: None, what });
        Ok(out)
    }

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
        let damaged = self.store.read_everything();
        for (cf, e) in &damaged {
            report.problems.push(ScrubProblem {
                doc: None,
                what: format!("column family {cf}: {e}"),
            });
        }
        // A document family with damaged blocks is written again from what
        // can be read (the damaged files kept aside): a compaction reading
        // them would leave the store read-only. The documents that lost
        // entries are then found below and dropped, for peers to send again.
        if repair {
            for cf in gongjian_store::DOC_FAMILIES {
                if !damaged.iter().any(|(name, _)| *name == cf.name()) {
                    continue;
                }
                self.cache.clear();
                let (aside, kept, _) = self.store.rewrite_family(cf, now_secs())?;
                self.doc_compactions_held = false;
                tracing::warn!(family = cf.name(), kept, aside = %aside.display(), "document family written again past damage");
                report.problems.push(ScrubProblem {
                    doc: None,
                    what: format!(
                        "column family {}: written again from the {kept} entries that could be read; its old table files are kept in {}",
                        cf.name(),
                        aside.display()
                    ),
                });
            }
        }
        // Records: each checked; with `repair`, a corrupt one is written
        // again from its verified copy in memory, or dropped.
        let mut cursor = None;
        loop {
            match self.check_records(cursor, 4096, repair, true) {
                Ok((step, next)) => {
                    report.records += step.checked;
                    report.problems.extend(step.problems);
                    cursor = next;
                    if cursor.is_none() {
                        break;
                    }
                }
                Err(e) => {
                    report.problems.push(ScrubProblem {
                        doc: None,
                        what: format!("records: {e}"),
                    });
                    break;
                }
            }
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
        let docs = docs.into_iter().map(|(d, m)| (d, Ok(m))).collect();
        let corrupt = self.scrub_docs(docs, &mut report);
        if repair && !corrupt.is_empty() {
            self.drop_corrupt(&corrupt, &mut report)?;
        }
        Ok(report)
    }

    /// One step of the daemon's own scrub: documents after `cursor`, at
    /// most `max_docs` and (past the first) `max_changes` changes in all,
    /// checked as [`Self::scrub`] checks them. The corrupt ones are dropped
    /// to be fetched again from peers, except those this node writes or
    /// holds its own changes of (reported in `kept`): dropping those could
    /// lose changes no peer has yet, and a local write before they came back
    /// would sign a second change at a seq already used. A read that fails
    /// without saying the data is damaged drops nothing. Returns the report
    /// and where to go on from (`None`: the pass is complete).
    pub fn scrub_step(
        &mut self,
        cursor: Option<DocId>,
        max_docs: usize,
        max_changes: u64,
    ) -> Result<(ScrubReport, Option<DocId>), EngineError> {
        let mut report = ScrubReport::default();
        let max_docs = max_docs.max(1);
        let listed = self.store.docs_after(cursor.as_ref(), max_docs)?;
        let (count, more) = (listed.len(), listed.len() == max_docs);
        let mut docs = Vec::new();
        let mut changes = 0u64;
        for (doc, meta) in listed {
            let n = meta.as_ref().map(|m| m.changes).unwrap_or(0);
            if !docs.is_empty() && changes + n > max_changes {
                break;
            }
            changes += n;
            docs.push((doc, meta));
        }
        // Stopped by the change budget, or the listing was full: go on
        // from the last one taken. Else the pass is complete.
        let next = if docs.len() < count || more {
            docs.last().map(|(d, _)| *d)
        } else {
            None
        };
        report.documents = docs.len();
        let mine: std::collections::BTreeSet<DocId> = docs
            .iter()
            .filter(|(d, m)| self.writes(d) || m.as_ref().is_ok_and(|m| self.wrote(m)))
            .map(|(d, _)| *d)
            .collect();
        let checked: Vec<DocId> = docs.iter().map(|(d, _)| *d).collect();
        let (own, others): (Vec<DocId>, Vec<DocId>) = self
            .scrub_docs(docs, &mut report)
            .into_iter()
            .partition(|d| mine.contains(d));
        // Kept, but not served: peers keep their own copy meanwhile.
        for d in &checked {
            self.withheld.remove(d);
        }
        self.withheld.extend(own.iter().copied());
        report.kept = own.iter().map(DocId::to_string).collect();
        if !others.is_empty() {
            self.drop_corrupt(&others, &mut report)?;
        }
        Ok((report, next))
    }

    /// Whether this node's key writes the document.
    fn writes(&self, doc: &DocId) -> bool {
        let Some(local) = &self.local else {
            return false;
        };
        self.trust
            .write_keys(doc)
            .is_some_and(|w| w.contains(&local.secret.public()))
    }

    /// Whether this node's key (at any epoch) has changes in the document.
    fn wrote(&self, meta: &gongjian_store::DocMeta) -> bool {
        let Some(local) = &self.local else {
            return false;
        };
        let key = local.secret.public();
        meta.clock.keys().any(|a| a.key == key)
    }

    fn drop_corrupt(
        &mut self,
        corrupt: &[DocId],
        report: &mut ScrubReport,
    ) -> Result<(), EngineError> {
        // A document holding this node's own changes, dropped: its next
        // local write there would start again at seq 1 under the same actor
        // and contradict the changes peers hold (rule 4). A new epoch makes
        // it a new actor, as a restore does.
        let mut own = false;
        let mut b = Batch::new();
        for doc in corrupt {
            if let Ok(Some(meta)) = self.store.doc_meta(doc) {
                own |= self.wrote(&meta);
            }
            self.cache.pop(doc);
            b.drop_doc(doc);
            report.dropped.push(doc.to_string());
        }
        self.store.commit_blocking(b)?;
        if own && self.local.is_some() {
            self.epoch = self.store.bump_epoch(now_secs())?;
            self.cache.clear();
            tracing::warn!(
                epoch = self.epoch,
                "a dropped document held this node's changes: writing under a new epoch"
            );
        }
        tracing::warn!(
            documents = corrupt.len(),
            "corrupt documents dropped, to be fetched again from peers"
        );
        Ok(())
    }

    /// Checks each document; returns the corrupt ones.
    fn scrub_docs(
        &mut self,
        docs: Vec<(
            DocId,
            Result<gongjian_store::DocMeta, gongjian_store::StoreError>,
        )>,
        report: &mut ScrubReport,
    ) -> Vec<DocId> {
        let mut corrupt: Vec<DocId> = Vec::new();
        for (doc, meta) in docs {
            let mut problems = Vec::new();
            // A read that failed without saying the bytes are damaged is
            // reported, but is no reason to drop the document.
            let mut damaged = false;
            let mut read_failed = |what: &str, e: gongjian_store::StoreError| {
                damaged |= e.is_corruption();
                format!("{what}: {e}")
            };
            let meta = match meta {
                Ok(m) => Some(m),
                Err(e) => {
                    problems.push(read_failed("its meta", e));
                    None
                }
            };
            let quarantined: Vec<SignedChange> = match self.store.quarantined(&doc) {
                Ok(q) => q.into_iter().map(|q| q.change).collect(),
                Err(e) => {
                    problems.push(read_failed("quarantine", e));
                    Vec::new()
                }
            };
            let changes = match self.store.doc_changes(&doc) {
                Ok(c) => Some(c),
                Err(e) => {
                    problems.push(read_failed("changes", e));
                    None
                }
            };
            let mut checks = Vec::new();
            if let Some(meta) = &meta {
                if meta.genesis != doc.0 {
                    checks.push("its meta names another genesis".to_owned());
                }
                if quarantined.len() as u64 != meta.quarantined {
                    checks.push(format!(
                        "{} changes in quarantine, its meta counts {}",
                        quarantined.len(),
                        meta.quarantined
                    ));
                }
                if let Some(changes) = &changes {
                    report.changes += changes.len();
                    // Not yet applied (deferred): only the hash links' heads.
                    let unapplied = match self.store.is_unapplied(&doc) {
                        Ok(u) => u,
                        Err(e) => {
                            problems.push(read_failed("unapplied", e));
                            true
                        }
                    };
                    report.signatures_checked +=
                        check_changes(&doc, changes, &quarantined, meta, unapplied, &mut checks);
                }
            }
            if damaged || !checks.is_empty() {
                corrupt.push(doc);
            }
            if damaged && !self.doc_compactions_held {
                // Damaged blocks stay in the table files whatever is
                // dropped: a compaction reading one would leave the store
                // read-only. Held until `gongjian verify --repair` writes
                // the families again (a restart lifts it; the scrub holds it
                // again when it meets the damage).
                self.doc_compactions_held = true;
                for cf in gongjian_store::DOC_FAMILIES {
                    if let Err(e) = self.store.hold_compactions(cf) {
                        tracing::error!(family = cf.name(), error = %e, "cannot hold the compactions of a damaged family");
                    }
                }
                tracing::error!(
                    "damaged blocks in the documents' table files: their compactions are held; stop the node and run `gongjian verify --repair`"
                );
                problems.push(
                    "damaged blocks in the documents' table files: compactions held until `gongjian verify --repair`".to_owned(),
                );
            }
            // (Held, even if a revocation cut leaves it without force.) A
            // missing genesis is reported but never a reason to drop the
            // changes: it may be a damaged record left out at open, which
            // peers send again; meanwhile the document is not offered (it
            // has no audience without its genesis).
            if self.membership.get(&doc.0).is_none() {
                problems.push(
                    "its genesis record is not held (the document's data is kept until it is back)"
                        .to_owned(),
                );
            }
            for what in problems.into_iter().chain(checks) {
                report.problems.push(ScrubProblem {
                    doc: Some(doc.to_string()),
                    what,
                });
            }
        }
        corrupt
    }
}

/// Checks a document's accepted changes against its meta; returns the
/// signatures verified. `unapplied`: its changes wait to be applied
/// (deferred), so its heads are checked by the hash links alone.
fn check_changes(
    doc: &DocId,
    changes: &[SignedChange],
    quarantined: &[SignedChange],
    meta: &gongjian_store::DocMeta,
    unapplied: bool,
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
    let signed: Vec<&SignedChange> = changes.iter().filter(|c| c.signature().is_some()).collect();
    let mut verified = 0;
    for (c, r) in signed.iter().zip(verify_changes(&signed)) {
        match r {
            Ok(()) => verified += 1,
            Err(SignatureFailure::ActorNotSigner) => {
                problems.push(format!("change {} is signed by another key", c.hash()))
            }
            Err(e) => {
                verified += 1;
                problems.push(format!("change {}: {e}", c.hash()))
            }
        }
    }
    // As ingest judges it: a signed change held in quarantine (say, cut
    // off by a revocation) still vouches for its accepted prefix.
    let vouched = crate::signatures::vouched(changes.iter().chain(quarantined));
    for c in changes {
        if c.signature().is_none() && !vouched.contains(&c.hash()) {
            problems.push(format!("change {} is unsigned and unvouched", c.hash()));
        }
    }
    if problems.is_empty() && crate::ingest::graph_heads(changes.iter()) != meta.heads {
        problems.push("its changes' hash links give other heads than those stored".to_owned());
    } else if problems.is_empty() && !unapplied {
        let am = crate::ingest::build(changes);
        if crate::ingest::sorted_heads(&am) != meta.heads {
            problems.push("its changes build other heads than those stored".to_owned());
        }
    }
    verified
}

/// Seconds since the Unix epoch (names the salvage directories; a new
/// epoch's start).
fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
