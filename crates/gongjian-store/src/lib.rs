//! RocksDB storage for a gongjian node.
//!
//! Owns: the column families, binary keys, versioned values, and the writer
//! thread that commits batches with group commit (`sync` on every write, many
//! batches per sync). Must never: decide what is accepted (callers hand it only
//! verified, accepted data), format a key as a string, or acknowledge a write
//! before it is durable.

mod batch;
mod cf;
mod error;
mod log;
mod rebuild;
mod store;
mod value;
mod writer;

pub use batch::{Batch, DocMeta};
pub use cf::Cf;
pub use error::StoreError;
pub use log::LogEntry;
pub use rebuild::{DOC_FAMILIES, stored_record};
pub use store::{
    Durability, Pending, QuarantineEntry, RELAXED_SYNC, Store, StoreStats, StoredRecord,
};
pub use writer::LOG_KEPT;
