//! Writing the records' column family again when RocksDB finds damage in
//! its table files: what can still be read, and a crash-safe rebuild that
//! keeps the old files aside.

use std::path::PathBuf;

use gongjian_identity::{Hash, SignedRecord};

use crate::batch::{Batch, Op};
use crate::cf::Cf;
use crate::error::StoreError;
use crate::store::{MetaKey, Store, StoredRecord, cf_options, decode_record};
use crate::value;

/// A record as the records' family stores it, under its key: what
/// [`Store::replace_records`] takes for a record held in memory.
pub fn stored_record(record: &SignedRecord) -> (Hash, Vec<u8>) {
    (record.hash(), value::wrap(&record.encode()))
}

impl Store {
    /// Every record that can still be read when RocksDB finds damage in the
    /// records' table files (a block whose checksum fails, a file cut
    /// short): the listing goes on past each failure by seeking to the
    /// next two-byte prefix of the keys (records' keys are SHA-256 hashes,
    /// spread evenly). RocksDB reads all of the family's table files at
    /// once, so a failing file also hides the good records other files hold
    /// in the same range: what this returns is a floor, not the set. Also
    /// returns the first error met and how many there were.
    pub fn records_readable(&self) -> (Vec<StoredRecord>, Option<(String, usize)>) {
        let cf = self.cf(Cf::Records);
        let mut it = self.inner.db.raw_iterator_cf(&cf);
        let mut out: Vec<StoredRecord> = Vec::new();
        let mut first_error: Option<(String, usize)> = None;
        // The next prefix to try after a failure: only ever moves forward,
        // so the walk ends whatever the damage.
        let mut next: u32 = 0;
        it.seek_to_first();
        loop {
            while let (Some(k), Some(v)) = (it.key(), it.value()) {
                if k.len() >= 2 {
                    next = next.max(u32::from(u16::from_be_bytes([k[0], k[1]])) + 1);
                }
                if let Ok(key) = <[u8; 32]>::try_from(k) {
                    out.push(StoredRecord {
                        key: Hash(key),
                        intact: value::unwrap_version("records", v)
                            .is_ok_and(|b| Hash::of(b).0 == key),
                        record: decode_record(v),
                        raw: v.to_vec(),
                    });
                }
                it.next();
            }
            let Err(e) = it.status() else {
                break; // the end
            };
            match &mut first_error {
                Some((_, n)) => *n += 1,
                None => first_error = Some((e.to_string(), 1)),
            }
            let mut resumed = false;
            while next <= 0xffff {
                it.seek((next as u16).to_be_bytes());
                next += 1;
                if it.valid() || it.status().is_ok() {
                    resumed = it.valid();
                    break;
                }
            }
            if !resumed {
                break;
            }
        }
        (out, first_error)
    }

    /// Entries RocksDB counts in the records' live table files (puts and
    /// deletions; memtables not included): beside what
    /// [`Store::records_readable`] could read, how much a damaged family
    /// may hide.
    pub fn records_in_table_files(&self) -> u64 {
        self.inner
            .db
            .live_files()
            .map(|files| {
                files
                    .iter()
                    .filter(|f| f.column_family_name == Cf::Records.name())
                    .map(|f| f.num_entries.saturating_sub(f.num_deletions))
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Stops background compactions of the records' family: one reading a
    /// damaged block would fail and leave the whole store read-only
    /// (RocksDB's paranoid checks) before an operator repairs it.
    pub fn hold_records_compactions(&self) -> Result<(), StoreError> {
        self.inner.db.set_options_cf(
            &self.cf(Cf::Records),
            &[("disable_auto_compactions", "true")],
        )?;
        Ok(())
    }

    /// Writes the records' column family again holding exactly `records`
    /// (each a stored value, version byte included, under its key): the
    /// family is dropped (its table files with it, damaged blocks and all)
    /// and made again. The table files are first hard-linked into
    /// `DIR/salvage/records-SECS/` (returned), so nothing the damaged files
    /// still hold is destroyed: an operator can read them with RocksDB's
    /// tools. Crash-safe: the records are first saved in one synced value,
    /// and a store opened with that value present finishes the rebuild
    /// before anything reads the records.
    pub fn replace_records(
        &self,
        records: &[(Hash, Vec<u8>)],
        now_secs: u64,
    ) -> Result<PathBuf, StoreError> {
        let aside = self
            .inner
            .path
            .join("salvage")
            .join(format!("records-{now_secs}"));
        std::fs::create_dir_all(&aside).map_err(|e| StoreError::Corrupt {
            cf: "records",
            reason: format!("cannot make {}: {e}", aside.display()),
        })?;
        for f in self.inner.db.live_files()? {
            if f.column_family_name != Cf::Records.name() {
                continue;
            }
            let name = f.name.trim_start_matches('/');
            let (from, to) = (self.inner.path.join(name), aside.join(name));
            if !to.exists() {
                std::fs::hard_link(&from, &to)
                    .or_else(|_| std::fs::copy(&from, &to).map(|_| ()))
                    .map_err(|e| StoreError::Corrupt {
                        cf: "records",
                        reason: format!("cannot keep {} aside: {e}", from.display()),
                    })?;
            }
        }
        let saved = postcard::to_stdvec(records).map_err(|e| StoreError::Corrupt {
            cf: "meta",
            reason: format!("records to rebuild do not encode: {e}"),
        })?;
        let mut b = Batch::new();
        b.put_meta(MetaKey::Rebuild as u8, saved.clone());
        // Queued behind every batch submitted before: none of them can land
        // in the family once it is dropped.
        self.commit_blocking(b)?;
        self.finish_rebuild(&saved)?;
        Ok(aside)
    }

    pub(crate) fn finish_rebuild(&self, saved: &[u8]) -> Result<(), StoreError> {
        // Decoded before anything is dropped: a saved value that does not
        // decode leaves the family as it is.
        let records: Vec<(Hash, Vec<u8>)> =
            postcard::from_bytes(saved).map_err(|e| StoreError::Corrupt {
                cf: "meta",
                reason: format!("the saved records of a rebuild do not decode: {e}"),
            })?;
        let db = &self.inner.db;
        db.drop_cf(Cf::Records.name())?;
        db.create_cf(Cf::Records.name(), &cf_options())?;
        let mut b = Batch::new();
        for (key, value) in records {
            b.ops.push(Op::Put(Cf::Records, key.0.to_vec(), value));
        }
        b.delete_meta(MetaKey::Rebuild as u8);
        self.commit_blocking(b)
    }
}
