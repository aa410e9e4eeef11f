//! The accept log ([`Cf::Log`]): every accepted change and record the
//! store writes, numbered in commit order by the writer thread
//! (`writer.rs`), read by sync's feed (PROTOCOL.md §8.6).

use std::sync::atomic::{AtomicU64, Ordering};

use gongjian_identity::{DocId, Hash};
use rocksdb::{Direction, IteratorMode};

use crate::cf::Cf;
use crate::error::StoreError;
use crate::store::{DB, MetaKey, Store};

/// An entry of the accept log ([`Cf::Log`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogEntry {
    /// A change accepted: its document, actor (as [`gongjian_identity::ActorId::to_bytes`];
    /// decoding checks the key, left to the reader once per actor) and seq
    /// (its index key).
    Change {
        doc: DocId,
        actor: [u8; 36],
        seq: u64,
    },
    /// A record written.
    Record(Hash),
}

impl LogEntry {
    fn decode(v: &[u8]) -> Option<LogEntry> {
        match v.len() {
            32 => Some(LogEntry::Record(Hash(v.try_into().ok()?))),
            76 => Some(LogEntry::Change {
                doc: DocId(Hash(v[..32].try_into().ok()?)),
                actor: v[32..68].try_into().ok()?,
                seq: u64::from_be_bytes(v[68..].try_into().ok()?),
            }),
            _ => None,
        }
    }
}

/// Where the accept log stands: the last number written (committed and
/// readable), and the last made durable (fsync'd; a power loss never takes
/// the log back below it). The writer thread moves both.
#[derive(Debug)]
pub(crate) struct LogHeads {
    pub(crate) written: AtomicU64,
    pub(crate) synced: AtomicU64,
}

impl LogHeads {
    /// A log whose last entry, durable, is number `last`.
    pub(crate) fn at(last: u64) -> LogHeads {
        LogHeads {
            written: AtomicU64::new(last),
            synced: AtomicU64::new(last),
        }
    }

    /// A log made anew: empty.
    pub(crate) fn reset(&self) {
        self.written.store(0, Ordering::Release);
        self.synced.store(0, Ordering::Release);
    }

    /// Everything written is durable now.
    pub(crate) fn synced_all(&self) {
        self.synced
            .store(self.written.load(Ordering::Acquire), Ordering::Release);
    }
}

/// The last number of the accept log, 0 if it is empty.
pub(crate) fn last_log_number(db: &DB) -> Result<u64, StoreError> {
    let Some(cf) = db.cf_handle(Cf::Log.name()) else {
        return Ok(0);
    };
    match db.iterator_cf(&cf, IteratorMode::End).next() {
        Some(item) => {
            let (k, _) = item?;
            log_number(&k)
        }
        None => Ok(0),
    }
}

/// A key of the accept log: its number.
fn log_number(k: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(k)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt {
            cf: "log",
            reason: format!("a key of {} bytes, not 8", k.len()),
        })
}

impl Store {
    /// The id of this store's accept log (see [`MetaKey::StoreId`]).
    pub fn store_id(&self) -> Result<[u8; 8], StoreError> {
        let v = self.meta(MetaKey::StoreId)?.unwrap_or_default();
        v.as_slice().try_into().map_err(|_| StoreError::Corrupt {
            cf: "meta",
            reason: format!("the store id is {} bytes, not 8", v.len()),
        })
    }

    /// The last number of the accept log written: every entry up to it is
    /// committed (and readable).
    pub fn log_head(&self) -> u64 {
        self.inner.log.written.load(Ordering::Acquire)
    }

    /// The last number of the accept log made durable: after a power
    /// loss the log holds at least this far (what a peer is told, `Mark`).
    pub fn log_synced_head(&self) -> u64 {
        self.inner.log.synced.load(Ordering::Acquire)
    }

    /// The accept log after `since` ([`Cf::Log`]), in order, or `None` if
    /// it holds more than `max` entries there or `since` is past its head
    /// (a log that went back: its entries are not the ones counted).
    pub fn log_since(&self, since: u64, max: usize) -> Result<Option<Vec<LogEntry>>, StoreError> {
        let head = self.log_head();
        if since > head || head - since > max as u64 {
            return Ok(None);
        }
        let mut out = Vec::new();
        let from = (since + 1).to_be_bytes();
        let iter = self.inner.db.iterator_cf(
            &self.cf(Cf::Log),
            IteratorMode::From(&from, Direction::Forward),
        );
        for item in iter {
            let (k, v) = item?;
            let n = log_number(&k)?;
            if n > head {
                break;
            }
            out.push(LogEntry::decode(&v).ok_or_else(|| StoreError::Corrupt {
                cf: "log",
                reason: format!("entry {n} is {} bytes, neither 32 nor 76", v.len()),
            })?);
        }
        Ok(Some(out))
    }
}
