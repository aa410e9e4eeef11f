//! The sync protocol of `PROTOCOL.md` §8 as a pure state machine.
//!
//! A [`Session`] runs one side of a sync with one peer. It is driven by
//! explicit inputs (`Session::handle(host, input, now) -> outputs`) and
//! reaches what the node holds only through the [`Host`] trait, which the
//! engine implements over its store and the acceptance rule. Nothing here
//! does IO, reads a clock or spawns: the same code runs over libp2p in the
//! daemon and over a seeded, lossy, reordering network in the simulator.
//!
//! Owns: the wire messages and their versioned encoding, range-based set
//! reconciliation over document summaries, causal ordering and edge
//! signatures of change batches, per-peer progress. Must never: hand a
//! received byte to anything but the host's checked ingest, reveal a
//! document id outside the peer's audience, or allocate from a length a
//! peer announced before checking it against a cap.

mod batch;
mod fetches;
mod fold;
mod host;
mod message;
mod rbsr;
mod session;
mod want;

pub use batch::{
    Answer, BatchLimits, CHANGE_OVERHEAD, HARD_MAX_BYTES, MAX_ANSWER_BYTES, causal_order,
    edge_signed_batches, vouched_prefix,
};
pub use fetches::{Fetch, Fetches, LEASE_SECS, TURN_LEASE_SECS};
pub use fold::Prefolded;
pub use message::{
    DecodeError, MAX_LIST, MAX_MESSAGE_BYTES, Message, PROTOCOL_ID, VERSION, decode, encode,
};
pub use rbsr::{Bound, Fingerprint, Item, Key, Mode, Range, Salt, SetId, ShortId, Snapshot};
pub use session::{
    Feed, Have, Host, IngestSummary, Input, MAX_FEED_BYTES, MAX_FEED_MESSAGES,
    MAX_FEED_RECORDS_MESSAGES, Output, PeerProgress, Role, Session, SessionStats, VersionVector,
};
pub use want::{BACK_SPACING, Back, back_seqs};
