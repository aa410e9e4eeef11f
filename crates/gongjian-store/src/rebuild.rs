//! Writing the records' column family again when RocksDB finds damage in
//! its table files: what can still be read, and a crash-safe rebuild that
//! keeps the old files aside.

use std::path::PathBuf;

use gongjian_identity::{DocId, Hash, SignedRecord};

use crate::batch::{Batch, Op};
use crate::cf::Cf;
use crate::error::StoreError;
use crate::store::{MetaKey, Store, StoredRecord, cf_options, decode_record};
use crate::value;

/// The first error a walk past damage met, and how many it met.
pub type Damage = Option<(String, usize)>;

/// A family's entries, key and value, in key order.
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

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
    pub fn records_readable(&self) -> (Vec<StoredRecord>, Damage) {
        let (entries, damage) = self.readable(Cf::Records);
        let out = entries
            .into_iter()
            .filter_map(|(k, v)| {
                let key = <[u8; 32]>::try_from(k.as_slice()).ok()?;
                Some(StoredRecord {
                    key: Hash(key),
                    intact: value::unwrap_version("records", &v)
                        .is_ok_and(|b| Hash::of(b).0 == key),
                    record: decode_record(&v),
                    raw: v,
                })
            })
            .collect();
        (out, damage)
    }

    /// Every entry of `cf` that can still be read, in key order, going on
    /// past each failure by seeking to the next two-byte prefix of the keys
    /// (they start with a SHA-256 hash: a record's, or a document id, so
    /// they spread evenly); with the first error met and how many there
    /// were. A failing table file also hides what other files hold in the
    /// same range: a floor, not the set.
    pub(crate) fn readable(&self, cf: Cf) -> (Entries, Damage) {
        let mut out: Entries = Vec::new();
        let damage = self.walk_readable(cf, |k, v| out.push((k.to_vec(), v.to_vec())));
        (out, damage)
    }

    /// Hands `f` every entry of `cf` that can still be read, as
    /// [`Store::readable`] collects them.
    fn walk_readable(&self, cf: Cf, mut f: impl FnMut(&[u8], &[u8])) -> Damage {
        let handle = self.cf(cf);
        let mut it = self.inner.db.raw_iterator_cf(&handle);
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
                f(k, v);
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
        first_error
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
        let aside = self.keep_aside(Cf::Records, now_secs)?;
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

/// The families holding documents' data (keys start with the document id):
/// what [`Store::rewrite_family`] writes again past damage. Written again,
/// the marks of documents whose application waits (`Unapplied`) are made
/// for every document held: a mark lost with the damage cannot be told
/// from one never made, and settling a document already applied applies it
/// again and clears its mark.
pub const DOC_FAMILIES: [Cf; 5] = [
    Cf::Changes,
    Cf::ChangeIndex,
    Cf::Docs,
    Cf::Quarantine,
    Cf::Unapplied,
];

/// A family rebuild under way, saved before the family is dropped.
#[derive(serde::Serialize, serde::Deserialize)]
struct FamilyRebuild {
    family: String,
    /// The table file of what could be read (none if nothing could).
    table: Option<PathBuf>,
}

impl Store {
    /// Writes a document family (one of [`DOC_FAMILIES`]) again from what
    /// can still be read of it, when RocksDB finds damage in its table
    /// files: left as they are, a compaction reading a damaged block would
    /// fail and leave the whole store read-only. The family's table files
    /// are first hard-linked into `DIR/salvage/<family>-SECS/` (returned,
    /// with how many entries were kept and the damage met), so nothing is
    /// destroyed; what could be read goes into one table file there, synced,
    /// and the family is dropped and made again from it (RocksDB ingests
    /// the file). Crash-safe: a store opened with the rebuild saved in its
    /// meta finishes it first. Documents that lost entries with the damage
    /// no longer agree with their meta: the scrub that follows drops them,
    /// and peers send them again.
    pub fn rewrite_family(
        &self,
        cf: Cf,
        now_secs: u64,
    ) -> Result<(PathBuf, usize, Damage), StoreError> {
        if !DOC_FAMILIES.contains(&cf) {
            return Err(StoreError::Corrupt {
                cf: cf.name(),
                reason: "only a document family is written again this way".into(),
            });
        }
        let (entries, damage) = self.readable(cf);
        let aside = self.keep_aside(cf, now_secs)?;
        let table = if entries.is_empty() {
            None
        } else {
            let path = aside.join("readable.sst");
            let opts = cf_options();
            let mut w = rocksdb::SstFileWriter::create(&opts);
            w.open(&path)?;
            for (k, v) in &entries {
                w.put(k, v)?;
            }
            w.finish()?;
            Some(path)
        };
        let saved = postcard::to_stdvec(&FamilyRebuild {
            family: cf.name().to_owned(),
            table,
        })
        .map_err(|e| StoreError::Corrupt {
            cf: cf.name(),
            reason: format!("the rebuild does not encode: {e}"),
        })?;
        let mut b = Batch::new();
        b.put_meta(MetaKey::RebuildFamily as u8, saved.clone());
        // Queued behind every batch submitted before: none of them can land
        // in the family once it is dropped.
        self.commit_blocking(b)?;
        self.finish_family_rebuild(&saved)?;
        Ok((aside, entries.len(), damage))
    }

    /// Hard-links (or copies) the live table files of `cf` into
    /// `DIR/salvage/<family>-SECS/` (returned): kept before the family is
    /// written again, so nothing the damaged files still hold is destroyed.
    fn keep_aside(&self, cf: Cf, now_secs: u64) -> Result<PathBuf, StoreError> {
        let aside = self
            .inner
            .path
            .join("salvage")
            .join(format!("{}-{now_secs}", cf.name()));
        let fail = |what: String| StoreError::Corrupt {
            cf: cf.name(),
            reason: what,
        };
        std::fs::create_dir_all(&aside)
            .map_err(|e| fail(format!("cannot make {}: {e}", aside.display())))?;
        for f in self.inner.db.live_files()? {
            if f.column_family_name != cf.name() {
                continue;
            }
            let name = f.name.trim_start_matches('/');
            let (from, to) = (self.inner.path.join(name), aside.join(name));
            if !to.exists() {
                std::fs::hard_link(&from, &to)
                    .or_else(|_| std::fs::copy(&from, &to).map(|_| ()))
                    .map_err(|e| fail(format!("cannot keep {} aside: {e}", from.display())))?;
            }
        }
        Ok(aside)
    }

    pub(crate) fn finish_family_rebuild(&self, saved: &[u8]) -> Result<(), StoreError> {
        let r: FamilyRebuild = postcard::from_bytes(saved).map_err(|e| StoreError::Corrupt {
            cf: "meta",
            reason: format!("a saved family rebuild does not decode: {e}"),
        })?;
        let Some(cf) = DOC_FAMILIES.into_iter().find(|c| c.name() == r.family) else {
            return Err(StoreError::Corrupt {
                cf: "meta",
                reason: format!("a saved rebuild names family {:?}", r.family),
            });
        };
        if let Some(t) = &r.table
            && !t.exists()
        {
            // Nothing is dropped without what replaces it.
            return Err(StoreError::Corrupt {
                cf: cf.name(),
                reason: format!("the rebuild's table file {} is gone", t.display()),
            });
        }
        let db = &self.inner.db;
        if db.cf_handle(cf.name()).is_some() {
            db.drop_cf(cf.name())?;
        }
        db.create_cf(cf.name(), &cf_options())?;
        if let Some(t) = &r.table {
            db.ingest_external_file_cf(&self.cf(cf), vec![t])?;
        }
        let mut b = Batch::new();
        if cf == Cf::Unapplied {
            // In the commit that ends the rebuild: a crash before it
            // redoes the rebuild at open, marks included. From the keys
            // alone, read past damage: a meta that does not decode, or a
            // damaged block of the documents' family, must not keep the
            // store from opening (a mark without a document is cleared by
            // settling, which finds nothing to apply).
            self.walk_readable(Cf::Docs, |k, _| {
                if let Ok(id) = <[u8; 32]>::try_from(k) {
                    b.mark_unapplied(&DocId(Hash(id)));
                }
            });
        }
        b.delete_meta(MetaKey::RebuildFamily as u8);
        self.commit_blocking(b)
    }

    /// Stops background compactions of `cf`: one reading a damaged block
    /// would fail and leave the whole store read-only before an operator
    /// repairs it (`gongjian verify --repair`).
    pub fn hold_compactions(&self, cf: Cf) -> Result<(), StoreError> {
        self.inner
            .db
            .set_options_cf(&self.cf(cf), &[("disable_auto_compactions", "true")])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(store: &Store, cf: Cf) -> Vec<(Vec<u8>, Vec<u8>)> {
        let (e, damage) = store.readable(cf);
        assert!(damage.is_none());
        e
    }

    /// A document family written again holds what was read of it, and a
    /// rebuild cut short after its table file and its marker were saved (a
    /// crash while the family was dropped) is finished at the next open.
    #[test]
    fn a_document_family_written_again_survives_a_crash_midway() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).unwrap();
        let all: Vec<(Vec<u8>, Vec<u8>)> = (0u8..40)
            .map(|i| (vec![i; 64], format!("值{i}").into_bytes()))
            .collect();
        let mut b = Batch::new();
        for (k, v) in &all {
            b.ops.push(Op::Put(Cf::Quarantine, k.clone(), v.clone()));
        }
        store.commit_blocking(b).unwrap();
        let (aside, kept, damage) = store.rewrite_family(Cf::Quarantine, 9).unwrap();
        assert!(
            aside.ends_with("salvage/quarantine-9"),
            "{}",
            aside.display()
        );
        assert_eq!((kept, damage), (40, None));
        assert_eq!(entries(&store, Cf::Quarantine), all);
        assert!(store.meta(MetaKey::RebuildFamily).unwrap().is_none());
        assert!(
            store.rewrite_family(Cf::Records, 9).is_err(),
            "documents' families only"
        );

        // Cut short: the table file of the first ten and the marker saved,
        // the family not yet dropped.
        let table = dir.path().join("salvage").join("ten.sst");
        let opts = cf_options();
        let mut w = rocksdb::SstFileWriter::create(&opts);
        w.open(&table).unwrap();
        for (k, v) in &all[..10] {
            w.put(k, v).unwrap();
        }
        w.finish().unwrap();
        let saved = postcard::to_stdvec(&FamilyRebuild {
            family: "quarantine".into(),
            table: Some(table),
        })
        .unwrap();
        let mut b = Batch::new();
        b.put_meta(MetaKey::RebuildFamily as u8, saved);
        store.commit_blocking(b).unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            entries(&store, Cf::Quarantine),
            all[..10],
            "finished at open"
        );
        assert!(store.meta(MetaKey::RebuildFamily).unwrap().is_none());
        assert!(store.read_everything().is_empty());
    }
}
