//! Folding: the changes of several sessions' `Changes` messages checked in
//! one ingest (and their `Records` messages admitted in one evaluation). A node reads frames from many peers at once (a district
//! syncing from its street hubs); each ingest call costs a commit, a
//! signature batch and its documents' loading, so the frames waiting
//! together go through one call, and each session is then handed what
//! became of its own changes.

use gongjian_identity::{ActorId, DocId, Hash, SignedChange, UnitId};

use crate::message::{Message, decode};
use crate::rbsr::{Item, SetId};
use crate::session::{Have, Host, IngestSummary, Session};
use crate::want::Back;

/// The changes of a `Changes` message in their compact form decoded (the
/// message names the document), and how many were malformed.
pub(crate) fn decode_changes(doc: DocId, changes: &[Vec<u8>]) -> (Vec<SignedChange>, usize) {
    let mut malformed = 0usize;
    let decoded = changes
        .iter()
        .filter_map(|c| {
            SignedChange::decode_compact(doc, c)
                .inspect_err(|_| malformed += 1)
                .ok()
        })
        .collect();
    (decoded, malformed)
}

impl Session {
    /// The changes a message would bring into ingest if this session
    /// handled it now: those of a `Changes` message for a document it asked
    /// for, decoded as [`Session::handle`] decodes them. `None` for any
    /// other message (and for changes it did not ask for: refused unread).
    pub fn changes_to_ingest(&self, bytes: &[u8]) -> Option<Vec<SignedChange>> {
        match decode(bytes).ok()? {
            Message::Changes { doc, changes, .. } if self.takes_changes(&doc) => {
                let (decoded, _) = decode_changes(doc, &changes);
                (!decoded.is_empty()).then_some(decoded)
            }
            Message::FeedChanges { doc, changes }
                if self.takes_feed(changes.iter().map(Vec::len).sum(), false) =>
            {
                let (decoded, _) = decode_changes(doc, &changes);
                (!decoded.is_empty()).then_some(decoded)
            }
            _ => None,
        }
    }

    /// The records a message would bring into ingest if this session
    /// handled it now: those of a `Records` message answering one of its
    /// `WantRecords` (others are dropped unread). `None` otherwise.
    pub fn records_to_ingest(&self, bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
        match decode(bytes).ok()? {
            Message::Records { records } if self.takes_records() && !records.is_empty() => {
                Some(records)
            }
            Message::FeedRecords { records }
                if !records.is_empty()
                    && self.takes_feed(records.iter().map(Vec::len).sum(), true) =>
            {
                Some(records)
            }
            _ => None,
        }
    }
}

/// A host whose next [`Host::ingest_changes`] was done already, folded with
/// other sessions' changes into one ingest: the first call with exactly
/// that many changes is answered with its summary; everything else goes to
/// the host.
#[derive(Debug)]
pub struct Prefolded<'a, H> {
    host: &'a mut H,
    done: Option<(usize, IngestSummary)>,
    records_done: Option<(usize, IngestSummary)>,
    answered: bool,
}

impl<'a, H: Host> Prefolded<'a, H> {
    /// `done`: how many changes were ingested ahead, and what became of them.
    pub fn new(host: &'a mut H, done: Option<(usize, IngestSummary)>) -> Self {
        Prefolded {
            host,
            done,
            records_done: None,
            answered: false,
        }
    }

    /// The same for the next [`Host::ingest_records`]: `done`, how many
    /// records were ingested ahead, folded with other sessions' records,
    /// and what became of them.
    pub fn with_records(mut self, done: Option<(usize, IngestSummary)>) -> Self {
        self.records_done = done;
        self
    }

    /// Whether a call was answered with the summary given ahead.
    pub fn answered(&self) -> bool {
        self.answered
    }
}

impl<H: Host> Host for Prefolded<'_, H> {
    type Error = H::Error;

    fn items(&mut self, set: SetId, peer: &UnitId) -> Result<Vec<Item>, H::Error> {
        self.host.items(set, peer)
    }

    fn records(&mut self, hashes: &[Hash], peer: &UnitId) -> Result<Vec<Vec<u8>>, H::Error> {
        self.host.records(hashes, peer)
    }

    fn ingest_records(&mut self, records: Vec<Vec<u8>>) -> Result<IngestSummary, H::Error> {
        match self.records_done.take() {
            Some((n, summary)) if n == records.len() => Ok(summary),
            _ => self.host.ingest_records(records),
        }
    }

    fn has_record(&mut self, hash: &Hash) -> Result<bool, H::Error> {
        self.host.has_record(hash)
    }

    fn have(&mut self, doc: &DocId) -> Result<Have, H::Error> {
        self.host.have(doc)
    }

    fn change_at(
        &mut self,
        doc: &DocId,
        actor: &ActorId,
        seq: u64,
    ) -> Result<Option<Hash>, H::Error> {
        self.host.change_at(doc, actor, seq)
    }

    fn doc_item(&mut self, doc: &DocId, peer: Option<&UnitId>) -> Result<Option<Item>, H::Error> {
        self.host.doc_item(doc, peer)
    }

    fn changes_after(
        &mut self,
        doc: &DocId,
        have: &Have,
        back: &Back,
        peer: &UnitId,
    ) -> Result<Option<Vec<Vec<SignedChange>>>, H::Error> {
        self.host.changes_after(doc, have, back, peer)
    }

    fn ingest_changes(&mut self, changes: Vec<SignedChange>) -> Result<IngestSummary, H::Error> {
        match self.done.take() {
            Some((n, summary)) if n == changes.len() => {
                self.answered = true;
                Ok(summary)
            }
            _ => self.host.ingest_changes(changes),
        }
    }

    fn visible(&mut self, doc: &DocId, peer: &UnitId) -> Result<bool, H::Error> {
        self.host.visible(doc, peer)
    }

    fn changes_malformed(&mut self, n: usize) {
        self.host.changes_malformed(n);
    }

    fn log_position(&mut self) -> Result<Option<([u8; 8], u64)>, H::Error> {
        self.host.log_position()
    }

    fn feed(
        &mut self,
        log: [u8; 8],
        since: u64,
        peer: &UnitId,
        budget: usize,
    ) -> Result<Option<crate::host::Feed>, H::Error> {
        self.host.feed(log, since, peer, budget)
    }
}
