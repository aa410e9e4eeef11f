//! The replica as a sync host: what it holds, filtered by the peer's
//! audience, and its checked ingest.

use std::collections::{BTreeMap, HashMap, HashSet};

use gongjian_identity::{
    ActorId, DocId, Hash, HeadsAnnouncement, RecordBody, RevocationTarget, SignedChange,
    SignedRecord, UnitId,
};
use gongjian_model::{Body, VerifiedRecord, verify_records};
use gongjian_sync::{Back, Have, Host, IngestSummary, Item, SetId};

use crate::error::{EngineError, InvalidChange};
use crate::replica::Replica;

/// A feed reads at most this many entries of the accept log; a peer
/// further behind is brought up to date by reconciliation alone.
pub const FEED_MAX_ENTRIES: usize = 4096;

/// At most this many certificates in a hello's chain (the hello's cap).
const CHAIN_RECORDS: usize = 32;
/// At most this many bytes of them (a hello is at most 64 KiB, of which
/// 8 KiB of revocations).
const CHAIN_BYTES: usize = 48 * 1024;

impl Replica {
    /// Records in their wire encoding (from sync or a bundle), checked and
    /// kept as [`Host::ingest_records`] says, committed as durably as the
    /// replica's commits are set to.
    pub(crate) fn ingest_record_batch(
        &mut self,
        records: Vec<Vec<u8>>,
    ) -> Result<IngestSummary, EngineError> {
        let mut summary = IngestSummary::default();
        let verified = match self.check_record_message(&records) {
            Ok(v) => v,
            Err(invalid) => {
                summary.invalid = invalid;
                return Ok(summary);
            }
        };
        if verified.is_empty() {
            // Held already: perhaps only relaxed, made durable if wanted.
            self.admit(verified)?;
            return Ok(summary);
        }
        // Each record whose signer is a member when evaluated with these
        // records goes in; one whose certificate has not arrived (it may be
        // in another batch) is left out and fetched again later.
        let (kept, left) = self.admit_what_may(verified)?;
        summary.accepted = kept.len();
        summary.unknown = left.len();
        Ok(summary)
    }

    /// The records of one message decoded and verified, those not held
    /// yet; or, if one is malformed or badly signed, how many count as
    /// invalid: the message is refused whole (nothing of it kept).
    fn check_record_message(&self, records: &[Vec<u8>]) -> Result<Vec<VerifiedRecord>, usize> {
        let mut decoded = Vec::with_capacity(records.len());
        let mut malformed = 0;
        for r in records {
            match SignedRecord::decode(r) {
                Ok(r) => decoded.push(r),
                Err(_) => malformed += 1,
            }
        }
        if malformed > 0 {
            return Err(malformed);
        }
        let n = decoded.len();
        verify_records(self.unheld(decoded))
            .into_iter()
            .collect::<Result<Vec<VerifiedRecord>, _>>()
            .map_err(|_| n)
    }

    /// Whether `peer` may receive record `v`: a genesis only within its
    /// document's audience, a heads announcement only within its unit's;
    /// membership records (certificates, key records, revocations,
    /// recoveries) go to every member, who needs them to verify.
    /// The street whose region a record belongs to (its records set key,
    /// PROTOCOL.md §8.2): a certificate's from its own unit and parent,
    /// others' from the unit they are about.
    pub(crate) fn record_street(&self, v: &VerifiedRecord) -> Option<UnitId> {
        let unit = match &v.body {
            Body::Certificate(c) => {
                return c
                    .unit
                    .division_street()
                    .or_else(|| c.parent?.division_street());
            }
            Body::Genesis(g) => g.unit,
            Body::Heads(h) => h.unit,
            Body::KeyAdd(k) => k.unit,
            Body::Recovery(r) => r.unit,
            Body::Revocation(r) => match &r.target {
                RevocationTarget::Unit { unit, .. } => *unit,
                RevocationTarget::Key(_) => return None,
            },
        };
        self.trust.street_of(&unit)
    }

    /// The records stored since the accept log stood at `since`, or
    /// `None` if more than 4096 entries were logged meanwhile (or the log
    /// cannot be read).
    pub fn records_logged_since(&self, since: u64) -> Option<Vec<Hash>> {
        let entries = self.store.log_since(since, 4096).ok().flatten()?;
        Some(
            entries
                .into_iter()
                .filter_map(|e| match e {
                    gongjian_store::LogEntry::Record(h) => Some(h),
                    gongjian_store::LogEntry::Change { .. } => None,
                })
                .collect(),
        )
    }

    /// Whether `peer` may see any of the records `hashes` held here.
    pub fn any_record_visible(&self, hashes: &[Hash], peer: &UnitId) -> bool {
        let mut audience = self.trust.audience(peer);
        hashes
            .iter()
            .filter_map(|h| self.membership.get(h))
            .any(|v| record_visible_to(v, &mut audience))
    }

    /// Signs a heads announcement of this unit's documents if they moved
    /// since the last one this node holds; returns its hash.
    pub fn announce_heads(&mut self, now: u64) -> Result<Option<Hash>, EngineError> {
        let unit = self.local.as_ref().ok_or(EngineError::NoSecret)?.unit;
        // Heads are announced settled (rule 8 run): an announcement is a
        // signed record for good.
        let own: Vec<DocId> = self
            .trust
            .documents()
            .filter(|(_, g)| g.unit == unit)
            .map(|(d, _)| *d)
            .collect();
        for doc in &own {
            self.settle_doc(doc)?;
        }
        let mut docs = Vec::new();
        for (doc, g) in self.trust.documents() {
            if g.unit == unit
                && let Some(meta) = self.store.doc_meta(doc)?
            {
                docs.push((*doc, meta.heads));
            }
        }
        docs.sort();
        let latest = self.heads_of(&unit);
        if latest.as_ref().is_some_and(|h| h.docs == docs) {
            return Ok(None);
        }
        let at = latest.map_or(now, |h| now.max(h.at.saturating_add(1)));
        let local = self.local.as_ref().ok_or(EngineError::NoSecret)?;
        let record = HeadsAnnouncement { unit, docs, at }.sign(&local.secret);
        let hash = record.hash();
        self.insert_records(vec![record])?;
        Ok(Some(hash))
    }

    /// What this node's hello to the holder of `peer` carries: the
    /// certificates that admit `own` ([`Replica::cert_chain`]), then the
    /// revocations of `peer` and of the keys that certified it up to the
    /// root, its own first (up to `max_records` in all and
    /// `revocation_bytes` of them). A peer whose key or whose parent's was
    /// revoked is refused at its hello, so it could never hear of the
    /// revocation otherwise, and its node would keep the changes the
    /// revocation cuts off.
    ///
    /// `chain` false leaves the certificates out (the revocations stay): a
    /// peer this node synced with holds them (PROTOCOL.md §9).
    pub fn hello_records(
        &self,
        own: &gongjian_identity::PublicKey,
        peer: &gongjian_identity::PublicKey,
        max_records: usize,
        revocation_bytes: usize,
        chain: bool,
    ) -> Vec<SignedRecord> {
        let mut out = if chain {
            self.cert_chain(own)
        } else {
            Vec::new()
        };
        out.truncate(max_records);
        let mut bytes = 0usize;
        let keys = self.chain_keys(peer);
        for (hash, _) in keys.iter().flat_map(|k| self.trust.revocations_of(k)) {
            if out.len() >= max_records {
                break;
            }
            let Some(v) = self.membership.get(hash) else {
                continue;
            };
            let n = v.record.encode().len();
            if bytes + n <= revocation_bytes {
                bytes += n;
                out.push(v.record.clone());
            }
        }
        out
    }

    /// The certificates that admit `key`: those naming it, then those
    /// naming their signers, up to the root (what a node shows a peer it
    /// connects to, so the peer can admit it without knowing it before).
    pub fn cert_chain(&self, key: &gongjian_identity::PublicKey) -> Vec<SignedRecord> {
        self.chain(key).0
    }

    /// `key` and the keys that certified it, up to the root, `key` first.
    fn chain_keys(&self, key: &gongjian_identity::PublicKey) -> Vec<gongjian_identity::PublicKey> {
        self.chain(key).1
    }

    /// The certificates of `key`'s chain, at most [`CHAIN_RECORDS`] and
    /// [`CHAIN_BYTES`], and the keys they lead to, `key` first. First the
    /// path the evaluation holds valid, `key` to the root; then, while
    /// room is left, the other certificates naming those keys and their
    /// signers (one cut off by a revocation leads to the revoked
    /// certifier). Anyone who may sign records can sign a certificate
    /// naming any key; those come last, so they cannot push the valid path
    /// out of a hello.
    fn chain(
        &self,
        key: &gongjian_identity::PublicKey,
    ) -> (Vec<SignedRecord>, Vec<gongjian_identity::PublicKey>) {
        let mut out: Vec<SignedRecord> = Vec::new();
        let mut taken = std::collections::BTreeSet::new();
        let mut keys = vec![*key];
        let mut bytes = 0usize;
        let mut take = |v: &gongjian_model::VerifiedRecord, out: &mut Vec<SignedRecord>| {
            let n = v.record.encode().len();
            if out.len() >= CHAIN_RECORDS || bytes + n > CHAIN_BYTES || !taken.insert(v.hash) {
                return false;
            }
            bytes += n;
            out.push(v.record.clone());
            true
        };
        // The valid path.
        let mut seen = std::collections::BTreeSet::from([*key]);
        let mut todo = vec![*key];
        while let Some(k) = todo.pop() {
            for h in self.trust.certificates_of(&k) {
                if let Some(v) = self.membership.get(&h)
                    && take(v, &mut out)
                    && seen.insert(v.signer)
                {
                    keys.push(v.signer);
                    todo.push(v.signer);
                }
            }
        }
        // The rest, from every key reached (the list grows as it goes).
        let mut i = 0;
        while i < keys.len() {
            let k = keys[i];
            i += 1;
            for v in self.membership.certificates_of(&k) {
                if take(v, &mut out) && seen.insert(v.signer) {
                    keys.push(v.signer);
                }
            }
        }
        (out, keys)
    }

    /// The latest heads announcement held of `unit`.
    pub fn heads_of(&self, unit: &UnitId) -> Option<HeadsAnnouncement> {
        self.membership
            .records()
            .filter_map(|v| match &v.body {
                Body::Heads(h) if h.unit == *unit => Some(h.clone()),
                _ => None,
            })
            .max_by_key(|h| h.at)
    }
}

impl Host for Replica {
    type Error = EngineError;

    fn items(&mut self, set: SetId, peer: &UnitId) -> Result<Vec<Item>, EngineError> {
        Ok(match set {
            SetId::Records => {
                let mut audience = self.trust.audience(peer);
                self.membership
                    .records()
                    .filter(|v| record_visible_to(v, &mut audience))
                    .map(|v| Item::record(self.record_street(v).as_ref(), &v.hash))
                    .collect()
            }
            SetId::Docs => {
                let mut audience = self.trust.audience(peer);
                self.store
                    .docs_where(|doc| audience.may_see(doc) && !self.withheld.contains(doc))?
                    .into_iter()
                    .map(|(doc, meta)| Item::doc(&doc, &meta.heads, meta.changes))
                    .collect()
            }
        })
    }

    fn records(&mut self, hashes: &[Hash], peer: &UnitId) -> Result<Vec<Vec<u8>>, EngineError> {
        let mut audience = self.trust.audience(peer);
        Ok(hashes
            .iter()
            .filter_map(|h| self.membership.get(h))
            .filter(|v| record_visible_to(v, &mut audience))
            .map(|v| v.record.encode())
            .collect())
    }

    fn has_record(&mut self, hash: &Hash) -> Result<bool, EngineError> {
        Ok(self.membership.get(hash).is_some())
    }

    fn ingest_records(&mut self, records: Vec<Vec<u8>>) -> Result<IngestSummary, EngineError> {
        // What sync received, the peer can send again: relaxed commits.
        self.received(|r| r.ingest_record_batch(records))
    }

    fn have(&mut self, doc: &DocId) -> Result<Have, EngineError> {
        let Some(meta) = self.store.doc_meta(doc)? else {
            return Ok(Have::new());
        };
        let mut have = Have::new();
        for (actor, seq) in meta.clock {
            // Always held: the index is written with the change.
            if let Some(h) = self.store.change_at(doc, &actor, seq)? {
                have.insert(actor, (seq, h));
            }
        }
        Ok(have)
    }

    fn change_at(
        &mut self,
        doc: &DocId,
        actor: &ActorId,
        seq: u64,
    ) -> Result<Option<Hash>, EngineError> {
        Ok(self.store.change_at(doc, actor, seq)?)
    }

    fn doc_item(
        &mut self,
        doc: &DocId,
        peer: Option<&UnitId>,
    ) -> Result<Option<Item>, EngineError> {
        if peer.is_some_and(|p| !self.trust.may_see(p, doc) || self.withheld.contains(doc)) {
            return Ok(None);
        }
        Ok(self
            .store
            .doc_meta(doc)?
            .map(|m| Item::doc(doc, &m.heads, m.changes)))
    }

    fn changes_after(
        &mut self,
        doc: &DocId,
        have: &Have,
        back: &Back,
        peer: &UnitId,
    ) -> Result<Option<Vec<Vec<SignedChange>>>, EngineError> {
        if !self.trust.may_see(peer, doc) || self.withheld.contains(doc) {
            return Ok(None);
        }
        Ok(Some(self.answer_want(doc, have, back)?))
    }

    fn visible(&mut self, doc: &DocId, peer: &UnitId) -> Result<bool, EngineError> {
        Ok(self.trust.may_see(peer, doc))
    }

    fn changes_malformed(&mut self, n: usize) {
        self.counters.malformed(n);
    }

    fn log_position(&mut self) -> Result<Option<([u8; 8], u64)>, EngineError> {
        // What a peer is told must hold after a power loss: this sync's
        // relaxed writes are made durable first (one fsync a mark), and the
        // durable head is told. Everything up to it is in the store's
        // documents and the membership (this thread made or took in every
        // batch it counts). An id that cannot be read tells nothing.
        self.store.sync()?;
        let head = self.store.log_synced_head();
        Ok(self.store.store_id().ok().map(|id| (id, head)))
    }

    fn feed(
        &mut self,
        log: [u8; 8],
        since: u64,
        peer: &UnitId,
        budget: usize,
    ) -> Result<Option<gongjian_sync::Feed>, EngineError> {
        if self.store.store_id().ok() != Some(log) {
            return Ok(None);
        }
        // The log is a hint: one that cannot be read feeds nothing (the
        // reconciliation brings it all), rather than failing the session.
        let entries = match self.store.log_since(since, FEED_MAX_ENTRIES) {
            Ok(Some(entries)) => entries,
            Ok(None) => return Ok(None),
            Err(e) => {
                tracing::warn!(error = %e, "reading the accept log: no feed");
                return Ok(None);
            }
        };
        let mut hashes = Vec::new();
        let mut seen = HashSet::new();
        // Per document, in the order the log first names it: each actor's
        // lowest seq logged.
        let mut order = Vec::new();
        let mut lowest: HashMap<DocId, BTreeMap<[u8; 36], u64>> = HashMap::new();
        for e in entries {
            match e {
                gongjian_store::LogEntry::Record(h) => {
                    if seen.insert(h) {
                        hashes.push(h);
                    }
                }
                gongjian_store::LogEntry::Change { doc, actor, seq } => {
                    let actors = lowest.entry(doc).or_insert_with(|| {
                        order.push(doc);
                        Default::default()
                    });
                    let s = actors.entry(actor).or_insert(seq);
                    *s = (*s).min(seq);
                }
            }
        }
        let records = self.records(&hashes, peer)?;
        let mut bytes: usize = records.iter().map(Vec::len).sum();
        let mut docs = Vec::new();
        for doc in order {
            if bytes >= budget {
                break; // the rest, the reconciliation finds
            }
            if !self.trust.may_see(peer, &doc) || self.withheld.contains(&doc) {
                continue;
            }
            // As a `Want` from the peer holding what this node holds but
            // what the log took in since its place: each logged actor from
            // just before its lowest seq logged.
            let mut have = self.have(&doc)?;
            for (actor, seq) in &lowest[&doc] {
                let Ok(actor) = ActorId::from_bytes(actor) else {
                    continue;
                };
                match seq.checked_sub(1).filter(|s| *s > 0) {
                    // Not held there any more (a cut since): that actor's
                    // part is left to the reconciliation.
                    Some(before) => {
                        if let Some(h) = self.store.change_at(&doc, &actor, before)? {
                            have.insert(actor, (before, h));
                        }
                    }
                    None => {
                        have.remove(&actor);
                    }
                }
            }
            if let Some(groups) = self.changes_after(&doc, &have, &Back::new(), peer)?
                && groups.iter().any(|g| !g.is_empty())
            {
                bytes += groups
                    .iter()
                    .flatten()
                    .map(|c| c.encode_compact().len())
                    .sum::<usize>();
                docs.push((doc, groups));
            }
        }
        tracing::debug!(
            target: "gongjian::sync",
            %peer,
            since,
            head = self.store.log_head(),
            records = records.len(),
            kinds = ?hashes
                .iter()
                .filter_map(|h| self.membership.get(h).map(|v| v.record.kind()))
                .collect::<Vec<_>>(),
            docs = docs.len(),
            "feed answered"
        );
        Ok(Some(gongjian_sync::Feed { records, docs }))
    }

    fn ingest_changes(&mut self, changes: Vec<SignedChange>) -> Result<IngestSummary, EngineError> {
        let n = changes.len();
        Ok(self
            .ingest_folded(vec![changes])?
            .pop()
            .unwrap_or_else(|| unreachable!("one summary for one frame of {n}")))
    }
}

impl Replica {
    /// The records of several `Records` messages (perhaps from different
    /// peers) admitted in one evaluation of the set, committed relaxed;
    /// what became of each message's records, in order, as
    /// [`Host::ingest_records`] reports them. Each message is checked alone
    /// (one malformed or badly signed record refuses its message whole);
    /// the records of the messages that pass are admitted together, so a
    /// certificate in one message lets in the records it signs in another,
    /// as PROTOCOL.md §2 allows for records that arrive together. A record
    /// in two messages counts in both.
    pub fn ingest_records_folded(
        &mut self,
        frames: Vec<Vec<Vec<u8>>>,
    ) -> Result<Vec<IngestSummary>, EngineError> {
        self.received(|r| r.ingest_record_frames(frames))
    }

    fn ingest_record_frames(
        &mut self,
        frames: Vec<Vec<Vec<u8>>>,
    ) -> Result<Vec<IngestSummary>, EngineError> {
        let mut summaries = vec![IngestSummary::default(); frames.len()];
        let mut of_frame: Vec<Vec<Hash>> = vec![Vec::new(); frames.len()];
        let mut all: Vec<VerifiedRecord> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (i, records) in frames.iter().enumerate() {
            let verified = match self.check_record_message(records) {
                Ok(v) => v,
                Err(invalid) => {
                    summaries[i].invalid = invalid;
                    continue;
                }
            };
            for v in verified {
                of_frame[i].push(v.hash);
                if seen.insert(v.hash) {
                    all.push(v);
                }
            }
        }
        if all.is_empty() {
            return Ok(summaries);
        }
        let (kept, left) = self.admit_what_may(all)?;
        let kept: std::collections::BTreeSet<Hash> = kept.iter().map(|v| v.hash).collect();
        let left: std::collections::BTreeSet<Hash> = left.iter().map(|v| v.hash).collect();
        for (s, hashes) in summaries.iter_mut().zip(&of_frame) {
            s.accepted = hashes.iter().filter(|h| kept.contains(h)).count();
            s.unknown = hashes.iter().filter(|h| left.contains(h)).count();
        }
        Ok(summaries)
    }

    /// The changes of several `Changes` messages (each one document's,
    /// perhaps from different peers) checked in one ingest, committed
    /// relaxed (what sync received, the peer can send again); what became
    /// of each message's changes, in order. A change in two messages (of
    /// one document) counts for the first whose copy was not refused, as if
    /// they had been ingested one after the other.
    pub fn ingest_folded(
        &mut self,
        frames: Vec<Vec<SignedChange>>,
    ) -> Result<Vec<IngestSummary>, EngineError> {
        let mut starts = Vec::with_capacity(frames.len());
        let mut hashes = Vec::new();
        // Each frame is one document's (a `Changes` message names it).
        let docs: Vec<Option<DocId>> = frames.iter().map(|f| f.first().map(|c| *c.doc())).collect();
        for changes in &frames {
            starts.push(hashes.len());
            hashes.extend(changes.iter().map(SignedChange::hash));
        }
        let frame_of = |i: usize| starts.partition_point(|s| *s <= i) - 1;
        // Each frame's signatures judged as if it came alone.
        let report = self.received(|r| r.ingest_frames(frames))?;
        // Which frame each change counts for: the first whose copy was not
        // refused before the rule.
        let refused: std::collections::HashSet<usize> =
            report.invalid.iter().map(|(i, _)| *i).collect();
        let mut first: std::collections::HashMap<Hash, usize> = std::collections::HashMap::new();
        // The same, by document: one chunk may be a change of two
        // documents (the same actor writing the same first edit to two in
        // one second), each accepted in its own.
        let mut first_in: std::collections::HashMap<(DocId, Hash), usize> =
            std::collections::HashMap::new();
        for (i, h) in hashes.iter().enumerate() {
            if !refused.contains(&i) {
                first.entry(*h).or_insert_with(|| frame_of(i));
                if let Some(doc) = docs[frame_of(i)] {
                    first_in.entry((doc, *h)).or_insert_with(|| frame_of(i));
                }
            }
        }
        let mut out = vec![IngestSummary::default(); starts.len()];
        // The report names only changes of the call (held ones it moved,
        // a pending change whose dependency came, are not counted).
        for (h, doc) in report.accepted.iter().zip(&report.accepted_docs) {
            if let Some(&f) = first_in.get(&(*doc, *h)) {
                out[f].accepted += 1;
            }
        }
        for h in &report.pending {
            if let Some(&f) = first.get(h) {
                out[f].pending += 1;
            }
        }
        for (h, _) in &report.rejected {
            if let Some(&f) = first.get(h) {
                out[f].rejected += 1;
            }
        }
        // Every frame that brought a branch is told of the fork, not only
        // the first: each came from a peer that may hold it as its own.
        let forked: std::collections::HashSet<&Hash> = report.forked.iter().collect();
        for (i, h) in hashes.iter().enumerate() {
            if forked.contains(h) && !refused.contains(&i) {
                out[frame_of(i)].forked += 1;
            }
        }
        for (s, doc) in out.iter_mut().zip(&docs) {
            s.cut_off = doc.is_some_and(|d| report.cut_off.contains(&d));
        }
        for (i, why) in &report.invalid {
            let s = &mut out[frame_of(*i)];
            match why {
                InvalidChange::UnknownAuthor { .. }
                | InvalidChange::UnknownDocument { .. }
                | InvalidChange::QuarantineFull { .. } => s.unknown += 1,
                InvalidChange::Decode(_)
                | InvalidChange::Signature { .. }
                | InvalidChange::Unvouched { .. } => s.invalid += 1,
            }
        }
        Ok(out)
    }
}

/// Whether a record is one `audience`'s viewer may see: a genesis if it may
/// see the document, a heads announcement if it may see the unit's
/// documents, any other record always (certificates, revocations and key
/// records are the federation's to check).
pub(crate) fn record_visible_to(
    v: &VerifiedRecord,
    audience: &mut gongjian_model::Audience<'_>,
) -> bool {
    match &v.body {
        Body::Genesis(_) => audience.may_see(&DocId(v.hash)),
        Body::Heads(h) => audience.may_see_unit(&h.unit),
        _ => true,
    }
}
