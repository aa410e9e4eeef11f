//! Typed write batches: the only way anything is written.

use std::collections::BTreeMap;

use gongjian_identity::{ActorId, DocId, Hash, SignedChange, SignedRecord};
use serde::{Deserialize, Serialize};

use crate::cf::Cf;
use crate::value;

/// What a node keeps about a document besides its changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocMeta {
    /// Hash of the genesis record (= the document id).
    pub genesis: Hash,
    /// Heads of the accepted changes, sorted.
    pub heads: Vec<Hash>,
    /// Version vector: actor → highest accepted seq.
    pub clock: BTreeMap<ActorId, u64>,
    /// Accepted changes.
    pub changes: u64,
    /// Changes held but not accepted (pending or rejected).
    pub quarantined: u64,
}

pub(crate) enum Op {
    Put(Cf, Vec<u8>, Vec<u8>),
    Delete(Cf, Vec<u8>),
    /// Keys from the first (inclusive) to the second (exclusive).
    DeleteRange(Cf, Vec<u8>, Vec<u8>),
}

/// A set of writes committed atomically and durably.
#[derive(Default)]
pub struct Batch {
    pub(crate) ops: Vec<Op>,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Batch({} ops)", self.ops.len())
    }
}

pub(crate) fn index_key(doc: &DocId, actor: &ActorId, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(32 + 36 + 8);
    k.extend_from_slice(doc.as_bytes());
    k.extend_from_slice(&actor.to_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub(crate) fn doc_hash_key(doc: &DocId, hash: &Hash) -> Vec<u8> {
    let mut k = Vec::with_capacity(64);
    k.extend_from_slice(doc.as_bytes());
    k.extend_from_slice(hash.as_bytes());
    k
}

impl Batch {
    pub fn new() -> Self {
        Batch::default()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Appends another batch's writes after this one's: both commit as one.
    pub fn append(&mut self, mut other: Batch) {
        self.ops.append(&mut other.ops);
    }

    /// An accepted change, with its (doc, actor, seq) index entry.
    pub fn put_change(&mut self, change: &SignedChange) {
        let h = change.header();
        self.ops.push(Op::Put(
            Cf::Changes,
            doc_hash_key(change.doc(), &h.hash),
            value::wrap(&change.encode()),
        ));
        self.ops.push(Op::Put(
            Cf::ChangeIndex,
            index_key(change.doc(), &h.actor, h.seq),
            h.hash.0.to_vec(),
        ));
        self.ops.push(Op::Delete(
            Cf::Quarantine,
            doc_hash_key(change.doc(), &h.hash),
        ));
    }

    /// Removes an accepted change (a revocation or equivocation cut it off).
    pub fn remove_change(&mut self, change: &SignedChange) {
        let h = change.header();
        self.ops
            .push(Op::Delete(Cf::Changes, doc_hash_key(change.doc(), &h.hash)));
        self.ops.push(Op::Delete(
            Cf::ChangeIndex,
            index_key(change.doc(), &h.actor, h.seq),
        ));
    }

    /// A change held but not accepted, with the reason.
    pub fn quarantine(&mut self, change: &SignedChange, reason: &str) {
        let entry = (reason.to_owned(), change.encode());
        self.ops.push(Op::Put(
            Cf::Quarantine,
            doc_hash_key(change.doc(), &change.hash()),
            value::encode(&entry),
        ));
    }

    /// Forgets everything held of a document but its genesis record: its
    /// changes, index, quarantine and meta (a scrub found it corrupt; sync
    /// fetches it again from peers). Range deletes: nothing is read.
    pub fn drop_doc(&mut self, doc: &DocId) {
        let from = doc.as_bytes().to_vec();
        // The next 32-byte prefix; a document id of all 0xff bytes has no
        // successor of the same length, so its range ends past it.
        let mut to = from.clone();
        let mut end = None;
        for i in (0..to.len()).rev() {
            if to[i] < 0xff {
                to[i] += 1;
                to.truncate(i + 1);
                end = Some(to);
                break;
            }
        }
        let end = end.unwrap_or_else(|| vec![0xff; 33 + 36 + 8]);
        for cf in [Cf::Changes, Cf::ChangeIndex, Cf::Quarantine] {
            self.ops
                .push(Op::DeleteRange(cf, from.clone(), end.clone()));
        }
        self.ops.push(Op::Delete(Cf::Unapplied, from.clone()));
        self.ops.push(Op::Delete(Cf::Docs, from));
    }

    /// Marks a document whose accepted changes are stored but not yet
    /// applied to automerge (application deferred).
    pub fn mark_unapplied(&mut self, doc: &DocId) {
        self.ops
            .push(Op::Put(Cf::Unapplied, doc.as_bytes().to_vec(), Vec::new()));
    }

    /// Clears the mark: every accepted change of the document applied.
    pub fn clear_unapplied(&mut self, doc: &DocId) {
        self.ops
            .push(Op::Delete(Cf::Unapplied, doc.as_bytes().to_vec()));
    }

    pub fn put_doc(&mut self, doc: &DocId, meta: &DocMeta) {
        self.ops.push(Op::Put(
            Cf::Docs,
            doc.as_bytes().to_vec(),
            value::encode(meta),
        ));
    }

    /// A peer's sync progress (opaque bytes, encoded by the sync layer),
    /// keyed by the peer's public key.
    pub fn put_peer(&mut self, peer: &[u8; 32], progress: &[u8]) {
        self.ops
            .push(Op::Put(Cf::Peers, peer.to_vec(), value::wrap(progress)));
    }

    pub fn put_record(&mut self, record: &SignedRecord) {
        self.ops.push(Op::Put(
            Cf::Records,
            record.hash().0.to_vec(),
            value::wrap(&record.encode()),
        ));
    }

    /// Stores `record` under another record's key: what a damaged disk
    /// can leave. Only for tests of the scrub.
    #[doc(hidden)]
    pub fn put_record_under(&mut self, key: &Hash, record: &SignedRecord) {
        self.ops.push(Op::Put(
            Cf::Records,
            key.0.to_vec(),
            value::wrap(&record.encode()),
        ));
    }

    /// Drops a stored record (found corrupt: fetched again from peers).
    pub fn delete_record(&mut self, hash: &Hash) {
        self.ops.push(Op::Delete(Cf::Records, hash.0.to_vec()));
    }

    /// Marks that documents must be judged again (new records).
    pub fn mark_reevaluation(&mut self) {
        self.put_meta(crate::store::MetaKey::Reevaluate as u8, vec![1]);
    }

    /// Clears the mark once every document was judged again.
    pub fn clear_reevaluation(&mut self) {
        self.ops.push(Op::Delete(
            Cf::Meta,
            vec![crate::store::MetaKey::Reevaluate as u8],
        ));
    }

    pub(crate) fn put_meta(&mut self, key: u8, value_bytes: Vec<u8>) {
        self.ops
            .push(Op::Put(Cf::Meta, vec![key], value::wrap(&value_bytes)));
    }

    pub(crate) fn delete_meta(&mut self, key: u8) {
        self.ops.push(Op::Delete(Cf::Meta, vec![key]));
    }
}
