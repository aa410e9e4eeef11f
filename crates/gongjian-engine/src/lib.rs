//! The replica: one node's documents and membership, wired from identity,
//! model and store.
//!
//! Owns: the ingest pipeline (check before parsing → acceptance rule → apply
//! under `catch_unwind` → durable commit) used alike for local writes and
//! received changes, and loading documents lazily from the store.
//! Must never: let anything unverified reach automerge or RocksDB, keep every
//! document in memory, or acknowledge a write before the store has synced it.

mod applying;
mod bundle;
mod error;
mod fast;
mod forks;
mod ingest;
mod replica;
mod scrub;
mod settle;
mod signatures;
mod staged;
mod sync_host;

pub use applying::APPLY_ON_TWO_CORES;
pub use bundle::{
    BUNDLE_MAGIC, BUNDLE_VERSION, Bundle, BundleError, ExportSummary, ImportSummary,
    MAX_BUNDLE_BYTES, PeerState,
};
pub use error::{EngineError, InvalidChange};
pub use ingest::{IngestCounters, IngestReport};
pub use replica::{Built, LocalIdentity, Replica};
pub use scrub::{RecordsScrub, ScrubProblem, ScrubReport};
pub use settle::Settled;
pub use signatures::{CHECKPOINT_BYTES, CHECKPOINT_SEQ};
pub use staged::{EXTRACT_ON_WORKER_DOCS, HAND_OVER_WRITES};
