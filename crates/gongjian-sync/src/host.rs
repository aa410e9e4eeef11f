//! What a sync session needs from the node ([`Host`]: its holdings by
//! audience, its checked ingest) and what the node's ingest tells it back.

use std::collections::BTreeMap;

use gongjian_identity::{ActorId, DocId, Hash, SignedChange, UnitId};

use crate::rbsr::{Item, SetId};
use crate::want::Back;

/// Actor → highest accepted seq (accepted seqs of an actor are contiguous).
pub type VersionVector = BTreeMap<ActorId, u64>;

/// Actor → highest accepted seq and the hash of that change: what a `Want`
/// says the asker holds.
pub type Have = BTreeMap<ActorId, (u64, Hash)>;

/// What became of received data, as the host's checked ingest reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestSummary {
    pub accepted: usize,
    /// Held, waiting for dependencies.
    pub pending: usize,
    /// Held, refused by the acceptance rule (e.g. outside a revocation cut).
    pub rejected: usize,
    /// Refused because this node lacks a genesis or certificate yet (not
    /// the sender's fault; fetched again later).
    pub unknown: usize,
    /// Malformed, badly signed or unvouched: the sender misbehaved.
    pub invalid: usize,
    /// Received changes (new or held already) that this node rejects for
    /// their actor's equivocation: the sender holds a branch of a fork it
    /// may not know of, so it is told (PROTOCOL.md §8.4).
    pub forked: usize,
    /// Changes accepted before left the document's accepted set (cut off
    /// by the equivocation these changes proved): its state moved.
    pub cut_off: bool,
}

/// What a node's accept log holds after a peer's place in it, that the
/// peer may see (PROTOCOL.md §8.6): records, then each document's changes
/// in groups as [`Host::changes_after`] gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Feed {
    pub records: Vec<Vec<u8>>,
    pub docs: Vec<(DocId, Vec<Vec<SignedChange>>)>,
}

/// What a session needs from the node: its holdings, filtered by audience,
/// and its checked ingest (decode, signatures, the acceptance rule, then
/// durable storage).
pub trait Host {
    type Error: std::fmt::Display;
    /// The items of `set` that `peer` may see.
    fn items(&mut self, set: SetId, peer: &UnitId) -> Result<Vec<Item>, Self::Error>;
    /// The encoded records among `hashes` that `peer` may see.
    fn records(&mut self, hashes: &[Hash], peer: &UnitId) -> Result<Vec<Vec<u8>>, Self::Error>;
    fn ingest_records(&mut self, records: Vec<Vec<u8>>) -> Result<IngestSummary, Self::Error>;
    /// Whether this node holds the record `hash`.
    fn has_record(&mut self, hash: &Hash) -> Result<bool, Self::Error>;
    /// What this node holds of `doc`: each actor's highest accepted seq and
    /// that change's hash (empty if not held).
    fn have(&mut self, doc: &DocId) -> Result<Have, Self::Error>;
    /// The hash of this node's accepted change of `doc` by `actor` at
    /// `seq`, if it holds one.
    fn change_at(
        &mut self,
        doc: &DocId,
        actor: &ActorId,
        seq: u64,
    ) -> Result<Option<Hash>, Self::Error>;
    /// This node's item for `doc`, if it holds it and `peer` (or, with
    /// `None`, this node) may see it.
    fn doc_item(&mut self, doc: &DocId, peer: Option<&UnitId>)
    -> Result<Option<Item>, Self::Error>;
    /// What answers a `Want` of `doc`, if `peer` may see it: groups of
    /// changes, each sent in causal order and signed at its own edges.
    /// The first: the accepted changes beyond `have` (an actor whose chain
    /// there is not this node's, from the highest point of `back` where it
    /// is, or from its first change). Then, for an actor this node knows
    /// forked at a seq `have` reaches, the proof of the fork (PROTOCOL.md
    /// §8.4).
    fn changes_after(
        &mut self,
        doc: &DocId,
        have: &Have,
        back: &Back,
        peer: &UnitId,
    ) -> Result<Option<Vec<Vec<SignedChange>>>, Self::Error>;
    /// Checks and ingests changes of one document read from a `Changes`
    /// message (their compact form decoded: the message's document, each
    /// signed by its actor).
    fn ingest_changes(&mut self, changes: Vec<SignedChange>) -> Result<IngestSummary, Self::Error>;
    /// Whether this node holds the genesis of `doc` and `peer` may see it:
    /// only such documents are ever asked for from that peer, so a peer
    /// cannot learn what this node holds of anything else.
    fn visible(&mut self, doc: &DocId, peer: &UnitId) -> Result<bool, Self::Error>;
    /// Counts changes of a `Changes` message that did not decode (they
    /// never reach [`Host::ingest_changes`]), for the node's metrics.
    fn changes_malformed(&mut self, _n: usize) {}
    /// This node's accept log: its id and the last number written, every
    /// entry up to which is reflected in what [`Host::items`] returns from
    /// now on. `None`: the node keeps no log (it sends no `Mark`).
    fn log_position(&mut self) -> Result<Option<([u8; 8], u64)>, Self::Error> {
        Ok(None)
    }
    /// What the accept log `log` holds after number `since` that `peer`
    /// may see, about `budget` bytes at most (what is past it the
    /// reconciliation that follows finds), or `None` to send nothing
    /// (another log, a place past its head, or too much of it).
    fn feed(
        &mut self,
        _log: [u8; 8],
        _since: u64,
        _peer: &UnitId,
        _budget: usize,
    ) -> Result<Option<Feed>, Self::Error> {
        Ok(None)
    }
}
