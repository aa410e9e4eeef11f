//! The store: a RocksDB database and its writer thread.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use gongjian_identity::{DocId, Hash, SignedChange, SignedRecord};
use rocksdb::{
    BoundColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Direction, IteratorMode,
    MultiThreaded, Options,
};

/// Multi-threaded column families: the records' family can be dropped and
/// made again while the store is open ([`Store::replace_records`]).
pub(crate) type DB = rocksdb::DBWithThreadMode<MultiThreaded>;
use tokio::sync::oneshot;

use crate::batch::{Batch, DocMeta, doc_hash_key, index_key};
use crate::cf::Cf;
use crate::error::StoreError;
use crate::log::{LogHeads, last_log_number};
use crate::value;

/// Bound of the writer's queue, in batches.
const WRITE_QUEUE: usize = 1024;
/// At most this many batches are merged into one synced write.
pub(crate) const GROUP_COMMIT_MAX: usize = 256;
/// A relaxed commit ([`Store::commit_relaxed`]) is synced to disk within
/// this long, or sooner by the next synced commit.
pub const RELAXED_SYNC: std::time::Duration = std::time::Duration::from_millis(50);

/// How a batch is made durable before its commit returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Written to the write-ahead log and fsync'd: survives a power loss.
    Synced,
    /// Written to the write-ahead log (the OS holds it, so it survives the
    /// process being killed) and visible to reads; fsync'd by the writer
    /// within [`RELAXED_SYNC`]. For what peers can send again (changes and
    /// records received by sync), never for a write acknowledged to a user.
    Relaxed,
}

/// Keys of [`Cf::Meta`].
#[derive(Debug, Clone, Copy)]
#[repr(u8)]
pub(crate) enum MetaKey {
    Schema = 1,
    Epoch = 2,
    /// Set in the batch that adds records, cleared once every affected
    /// document was judged again: found set at open, the judging is redone.
    Reevaluate = 3,
    /// The records a rebuild of their column family writes back, saved
    /// before the family is dropped: found at open, the rebuild is finished.
    Rebuild = 4,
    /// A document family being written again past damage
    /// ([`Store::rewrite_family`]): found at open, the rebuild is finished.
    RebuildFamily = 5,
    /// 8 random bytes naming this store's accept log ([`Cf::Log`]): drawn
    /// when the store is made, and again when it moves to a new epoch (a
    /// restore from a backup, a scrub that lost data), so a peer's place
    /// in an older log is never read against this one.
    StoreId = 6,
}

const SCHEMA_VERSION: u32 = 1;

type Reply = oneshot::Sender<Result<(), StoreError>>;
pub(crate) type Queued = (Batch, Durability, Reply);

pub(crate) struct Inner {
    pub(crate) db: Arc<DB>,
    /// Synced RocksDB writes made by the writer (each may hold many batches).
    syncs: Arc<std::sync::atomic::AtomicU64>,
    /// The last number of the accept log written ([`Cf::Log`]), and the
    /// last made durable (fsync'd): a power loss never takes the log back
    /// below it.
    pub(crate) log: Arc<LogHeads>,
    pub(crate) path: PathBuf,
    tx: Mutex<Option<SyncSender<Queued>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Ok(mut w) = self.writer.lock()
            && let Some(handle) = w.take()
        {
            let _ = handle.join();
        }
    }
}

/// A record as stored: its key, whether the bytes are the ones the key
/// names (a record's id is the SHA-256 of its encoding, so anything else
/// is damage), and the record decoded or why it could not be.
#[derive(Debug)]
pub struct StoredRecord {
    pub key: Hash,
    pub intact: bool,
    pub record: Result<SignedRecord, StoreError>,
    /// The stored value as read (version byte included): what a rebuild
    /// writes back for an intact record this build cannot decode.
    pub raw: Vec<u8>,
}

/// A handle to the store; clones share one database and one writer.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

/// A queued batch; [`Pending::wait`] returns once it is durable.
#[derive(Debug)]
pub struct Pending(oneshot::Receiver<Result<(), StoreError>>);

impl Pending {
    pub fn wait(self) -> Result<(), StoreError> {
        self.0.blocking_recv().map_err(|_| StoreError::Closed)?
    }
}

/// A change held but not accepted.
#[derive(Debug, Clone)]
pub struct QuarantineEntry {
    pub reason: String,
    pub change: SignedChange,
}

/// Counts for `status` commands and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub changes: u64,
    pub index: u64,
    pub docs: u64,
    pub records: u64,
    pub quarantine: u64,
    /// Column families whose files RocksDB found damaged while counting:
    /// their counts stop at the damage.
    pub damaged: Vec<&'static str>,
}

pub(crate) fn cf_options() -> Options {
    let mut o = Options::default();
    o.set_compression_type(DBCompressionType::None);
    o
}

fn options() -> Options {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    o.set_compression_type(DBCompressionType::None);
    o.set_max_open_files(256);
    o.set_keep_log_file_num(4);
    o
}

impl Store {
    /// Creates the store at `path` (a new, empty directory or a missing one).
    pub fn create(path: &Path) -> Result<Store, StoreError> {
        let store = Self::open_inner(path, true)?;
        let mut b = Batch::new();
        b.put_meta(MetaKey::Schema as u8, SCHEMA_VERSION.to_be_bytes().to_vec());
        store.commit_blocking(b)?;
        Ok(store)
    }

    /// Opens an existing store.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if !path.join("CURRENT").exists() {
            return Err(StoreError::Missing {
                path: path.to_owned(),
            });
        }
        Self::open_inner(path, false)
    }

    fn open_inner(path: &Path, create: bool) -> Result<Store, StoreError> {
        let mut opts = options();
        opts.create_if_missing(create);
        let cfs = Cf::ALL
            .iter()
            .map(|cf| ColumnFamilyDescriptor::new(cf.name(), cf_options()));
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|e| {
            // RocksDB's own wording for a held LOCK file ("While lock file:
            // …/LOCK: Resource temporarily unavailable"); not any message
            // with "lock" in it, as "block checksum mismatch" has.
            let held = e.kind() == rocksdb::ErrorKind::IOError
                && (e.as_ref().contains("lock file") || e.as_ref().contains("/LOCK"));
            if held {
                StoreError::Locked {
                    path: path.to_owned(),
                }
            } else {
                StoreError::Rocks(e)
            }
        })?;
        let db = Arc::new(db);
        let (tx, rx) = sync_channel(WRITE_QUEUE);
        let writer_db = db.clone();
        let syncs = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let writer_syncs = syncs.clone();
        // The log's end, read before anything is written; one that cannot
        // be read is made anew below, once the store is known to be ours.
        let last = last_log_number(&db);
        let log = Arc::new(LogHeads::at(*last.as_ref().unwrap_or(&0)));
        let heads = log.clone();
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || crate::writer::writer_loop(&writer_db, rx, &writer_syncs, &heads))
            .map_err(|e| StoreError::Corrupt {
                cf: "meta",
                reason: format!("cannot start the writer thread: {e}"),
            })?;
        let store = Store {
            inner: Arc::new(Inner {
                db,
                syncs,
                log,
                path: path.to_owned(),
                tx: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(writer)),
            }),
        };
        if !create {
            match store.meta(MetaKey::Schema)? {
                Some(v) if v == SCHEMA_VERSION.to_be_bytes() => {}
                Some(_) => {
                    return Err(StoreError::Version {
                        cf: "meta",
                        version: 0,
                    });
                }
                None => {
                    return Err(StoreError::Missing {
                        path: path.to_owned(),
                    });
                }
            }
            if let Some(saved) = store.meta(MetaKey::Rebuild)? {
                tracing::warn!("finishing an interrupted rebuild of the records");
                store.finish_rebuild(&saved)?;
            }
            if let Some(saved) = store.meta(MetaKey::RebuildFamily)? {
                tracing::warn!("finishing an interrupted rebuild of a document family");
                store.finish_family_rebuild(&saved)?;
            }
        }
        let id_ok = store.meta(MetaKey::StoreId)?.is_some_and(|v| v.len() == 8);
        if last.is_err() || !id_ok {
            // Made now, a store of a build before the accept log, or a log
            // to make anew: a new id first (synced), so no peer's place in
            // the old log is ever read against what follows.
            let mut b = Batch::new();
            b.put_meta(MetaKey::StoreId as u8, rand::random::<[u8; 8]>().to_vec());
            store.commit_blocking(b)?;
        }
        if let Err(e) = last {
            // The log is a hint (sync's feed): one whose end cannot be read
            // is made anew rather than keeping the store shut.
            tracing::warn!(error = %e, "the accept log cannot be read: made anew");
            store.inner.db.drop_cf(Cf::Log.name())?;
            store.inner.db.create_cf(Cf::Log.name(), &cf_options())?;
            store.inner.log.reset();
        }
        Ok(store)
    }

    /// Synced writes so far: fewer than the batches committed when callers
    /// commit concurrently (group commit).
    pub fn sync_count(&self) -> u64 {
        self.inner.syncs.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(crate) fn cf(&self, cf: Cf) -> Arc<BoundColumnFamily<'_>> {
        self.inner
            .db
            .cf_handle(cf.name())
            .unwrap_or_else(|| unreachable!("every column family is opened"))
    }

    fn send(
        &self,
        batch: Batch,
        durability: Durability,
    ) -> Result<oneshot::Receiver<Result<(), StoreError>>, StoreError> {
        let (reply, rx) = oneshot::channel();
        let tx = self
            .inner
            .tx
            .lock()
            .map_err(|_| StoreError::Closed)?
            .clone();
        tx.ok_or(StoreError::Closed)?
            .send((batch, durability, reply))
            .map_err(|_| StoreError::Closed)?;
        Ok(rx)
    }

    /// Commits a batch; returns once it is durable (fsync'd WAL).
    pub fn commit_blocking(&self, batch: Batch) -> Result<(), StoreError> {
        self.commit_with(batch, Durability::Synced)
    }

    /// Commits a batch; returns once it is written and readable, before it
    /// is fsync'd ([`Durability::Relaxed`]). A later synced commit, or the
    /// writer within [`RELAXED_SYNC`], makes it durable; the log keeps
    /// commits in order, so a power loss keeps a prefix of them.
    pub fn commit_relaxed(&self, batch: Batch) -> Result<(), StoreError> {
        self.commit_with(batch, Durability::Relaxed)
    }

    /// Makes every relaxed commit made so far durable (an fsync if any waits
    /// for one; nothing otherwise).
    pub fn sync(&self) -> Result<(), StoreError> {
        self.commit_blocking(Batch::new())
    }

    /// Commits a batch as durable as asked.
    pub fn commit_with(&self, batch: Batch, durability: Durability) -> Result<(), StoreError> {
        self.send(batch, durability)?
            .blocking_recv()
            .map_err(|_| StoreError::Closed)?
    }

    /// Queues a batch without waiting: pipelined writers queue many, then
    /// wait for each acknowledgement (and the writer merges what is queued).
    pub fn submit(&self, batch: Batch) -> Result<Pending, StoreError> {
        self.submit_with(batch, Durability::Synced)
    }

    /// Queues a batch as durable as asked; [`Pending::wait`] returns once
    /// it is (written, for [`Durability::Relaxed`]).
    pub fn submit_with(&self, batch: Batch, durability: Durability) -> Result<Pending, StoreError> {
        Ok(Pending(self.send(batch, durability)?))
    }

    /// Commits a batch from async code; resolves once it is durable.
    pub async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        self.send(batch, Durability::Synced)?
            .await
            .map_err(|_| StoreError::Closed)?
    }

    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.inner.db.get_cf(&self.cf(cf), key)?)
    }

    pub(crate) fn meta(&self, key: MetaKey) -> Result<Option<Vec<u8>>, StoreError> {
        match self.get(Cf::Meta, &[key as u8])? {
            Some(v) => Ok(Some(value::unwrap_version("meta", &v)?.to_vec())),
            None => Ok(None),
        }
    }

    /// A peer's sync progress as last put (see `Batch::put_peer`).
    pub fn peer(&self, peer: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.get(Cf::Peers, peer)? {
            Some(v) => Ok(Some(value::unwrap_version("peers", &v)?.to_vec())),
            None => Ok(None),
        }
    }

    /// The actor epoch of this node's writes (0 until first set).
    pub fn epoch(&self) -> Result<u32, StoreError> {
        match self.meta(MetaKey::Epoch)? {
            Some(v) => {
                let arr: [u8; 4] = v.as_slice().try_into().map_err(|_| StoreError::Corrupt {
                    cf: "meta",
                    reason: "epoch is not 4 bytes".into(),
                })?;
                Ok(u32::from_be_bytes(arr))
            }
            None => Ok(0),
        }
    }

    /// Moves to a new epoch: `max(old + 1, now)`. Called on restore from a
    /// backup, so a restored node never reuses (actor, seq) pairs it already
    /// signed before the backup was taken.
    pub fn bump_epoch(&self, now_secs: u64) -> Result<u32, StoreError> {
        self.bump_epoch_past(0, now_secs)
    }

    /// Moves to an epoch above both this store's and `other` (the epoch of
    /// the store a backup replaces): `max(old + 1, other + 1, now)`.
    pub fn bump_epoch_past(&self, other: u32, now_secs: u64) -> Result<u32, StoreError> {
        let old = self.epoch()?;
        let now = u32::try_from(now_secs).unwrap_or(u32::MAX);
        let new = old.max(other).saturating_add(1).max(now);
        let mut b = Batch::new();
        b.put_meta(MetaKey::Epoch as u8, new.to_be_bytes().to_vec());
        // A restored or damaged store's log went back: peers' places in it
        // name another log.
        b.put_meta(MetaKey::StoreId as u8, rand::random::<[u8; 8]>().to_vec());
        self.commit_blocking(b)?;
        Ok(new)
    }

    /// Whether a re-evaluation of documents was interrupted (see
    /// [`Batch::mark_reevaluation`]).
    pub fn reevaluation_pending(&self) -> Result<bool, StoreError> {
        Ok(self.meta(MetaKey::Reevaluate)?.is_some())
    }

    pub fn record(&self, hash: &Hash) -> Result<Option<SignedRecord>, StoreError> {
        match self.get(Cf::Records, hash.as_bytes())? {
            Some(v) => Ok(Some(decode_record(&v)?)),
            None => Ok(None),
        }
    }

    /// Every record held (membership records and geneses).
    pub fn records(&self) -> Result<Vec<SignedRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self
            .inner
            .db
            .iterator_cf(&self.cf(Cf::Records), IteratorMode::Start)
        {
            let (_, v) = item?;
            out.push(decode_record(&v)?);
        }
        Ok(out)
    }

    /// Records after `after` (by hash), at most `limit`, each with its key
    /// and the record decoded or why it could not be.
    pub fn records_after(
        &self,
        after: Option<&Hash>,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        self.slice_after(Cf::Records, after.map(Hash::as_bytes), limit, |key, v| {
            StoredRecord {
                key: Hash(key),
                intact: value::unwrap_version("records", v).is_ok_and(|b| Hash::of(b).0 == key),
                record: decode_record(v),
                raw: v.to_vec(),
            }
        })
    }

    /// Up to `limit` entries of a column family keyed by 32-byte ids, in
    /// key order after `after` (from the first when `None`), each made by
    /// `f` from its key and value: the scrubs walk the store a slice at a
    /// time.
    fn slice_after<T>(
        &self,
        cf: Cf,
        after: Option<&[u8; 32]>,
        limit: usize,
        mut f: impl FnMut([u8; 32], &[u8]) -> T,
    ) -> Result<Vec<T>, StoreError> {
        let mode = match after {
            Some(k) => IteratorMode::From(k, rocksdb::Direction::Forward),
            None => IteratorMode::Start,
        };
        let mut out = Vec::new();
        for item in self.inner.db.iterator_cf(&self.cf(cf), mode) {
            let (k, v) = item?;
            let key: [u8; 32] = k.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                cf: cf.name(),
                reason: "key is not 32 bytes".into(),
            })?;
            if after == Some(&key) {
                continue;
            }
            out.push(f(key, &v));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Whether the document's accepted changes wait to be applied
    /// ([`Batch::mark_unapplied`]).
    pub fn is_unapplied(&self, doc: &DocId) -> Result<bool, StoreError> {
        Ok(self.get(Cf::Unapplied, doc.as_bytes())?.is_some())
    }

    /// Up to `limit` documents whose accepted changes wait to be applied,
    /// in id order after `after`.
    pub fn unapplied_after(
        &self,
        after: Option<&DocId>,
        limit: usize,
    ) -> Result<Vec<DocId>, StoreError> {
        self.slice_after(Cf::Unapplied, after.map(DocId::as_bytes), limit, |id, _| {
            DocId(Hash(id))
        })
    }

    pub fn doc_meta(&self, doc: &DocId) -> Result<Option<DocMeta>, StoreError> {
        match self.get(Cf::Docs, doc.as_bytes())? {
            Some(v) => Ok(Some(value::decode("docs", &v)?)),
            None => Ok(None),
        }
    }

    pub fn docs(&self) -> Result<Vec<(DocId, DocMeta)>, StoreError> {
        self.docs_where(|_| true)
    }

    /// The metadata of the documents `keep` keeps, in id order; only theirs
    /// is decoded (a sync session's snapshot keeps those its peer may see:
    /// a street's, of a district's thousands).
    pub fn docs_where(
        &self,
        mut keep: impl FnMut(&DocId) -> bool,
    ) -> Result<Vec<(DocId, DocMeta)>, StoreError> {
        let mut out = Vec::new();
        for item in self
            .inner
            .db
            .iterator_cf(&self.cf(Cf::Docs), IteratorMode::Start)
        {
            let (k, v) = item?;
            let id: [u8; 32] = k.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                cf: "docs",
                reason: "key is not 32 bytes".into(),
            })?;
            let doc = DocId(Hash(id));
            if keep(&doc) {
                out.push((doc, value::decode("docs", &v)?));
            }
        }
        Ok(out)
    }

    /// Up to `limit` documents' metadata in id order, after `after` (from
    /// the first when `None`): a scrub walks the store a slice at a time.
    /// A value that does not decode is returned as its error, so the scrub
    /// can name (and drop) that document and go on.
    #[allow(clippy::type_complexity)]
    pub fn docs_after(
        &self,
        after: Option<&DocId>,
        limit: usize,
    ) -> Result<Vec<(DocId, Result<DocMeta, StoreError>)>, StoreError> {
        self.slice_after(Cf::Docs, after.map(DocId::as_bytes), limit, |id, v| {
            (DocId(Hash(id)), value::decode("docs", v))
        })
    }

    pub fn change(&self, doc: &DocId, hash: &Hash) -> Result<Option<SignedChange>, StoreError> {
        match self.get(Cf::Changes, &doc_hash_key(doc, hash))? {
            Some(v) => Ok(Some(decode_change(&v)?)),
            None => Ok(None),
        }
    }

    /// The hash of the accepted change at (doc, actor, seq).
    pub fn change_at(
        &self,
        doc: &DocId,
        actor: &gongjian_identity::ActorId,
        seq: u64,
    ) -> Result<Option<Hash>, StoreError> {
        match self.get(Cf::ChangeIndex, &crate::batch::index_key(doc, actor, seq))? {
            Some(v) => {
                let h: [u8; 32] = v.as_slice().try_into().map_err(|_| StoreError::Corrupt {
                    cf: "change_index",
                    reason: "value is not a 32-byte hash".into(),
                })?;
                Ok(Some(Hash(h)))
            }
            None => Ok(None),
        }
    }

    /// The entries of `cf` from `prefix` on, bounded to the keys that start
    /// with it: RocksDB stops at the bound instead of stepping over the
    /// deletions that follow (a quarantine emptied by a sync leaves
    /// thousands), which made a lookup of an empty prefix cost milliseconds.
    fn prefix_iter(&self, cf: Cf, prefix: &[u8]) -> rocksdb::DBIteratorWithThreadMode<'_, DB> {
        let mut opts = rocksdb::ReadOptions::default();
        // The smallest key above every key with the prefix, if there is one.
        let mut end = prefix.to_vec();
        while let Some(last) = end.pop() {
            if last < u8::MAX {
                end.push(last + 1);
                opts.set_iterate_upper_bound(end);
                break;
            }
        }
        self.inner.db.iterator_cf_opt(
            &self.cf(cf),
            opts,
            IteratorMode::From(prefix, Direction::Forward),
        )
    }

    /// The accepted changes of a document, in (actor, seq) order.
    pub fn doc_changes(&self, doc: &DocId) -> Result<Vec<SignedChange>, StoreError> {
        let mut out = Vec::new();
        let prefix = doc.as_bytes();
        let iter = self.prefix_iter(Cf::ChangeIndex, prefix);
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(prefix) {
                break;
            }
            let hash: [u8; 32] = v.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                cf: "change_index",
                reason: "value is not a 32-byte hash".into(),
            })?;
            let change = self
                .change(doc, &Hash(hash))?
                .ok_or_else(|| StoreError::Corrupt {
                    cf: "change_index",
                    reason: format!("indexed change {} is missing", Hash(hash)),
                })?;
            // The change under the key must be the one indexed, at the
            // (actor, seq) of its index key.
            let h = change.header();
            if h.hash != Hash(hash) || k.as_ref() != index_key(doc, &h.actor, h.seq).as_slice() {
                return Err(StoreError::Corrupt {
                    cf: "change_index",
                    reason: format!(
                        "the entry for change {} names another change or (actor, seq)",
                        Hash(hash)
                    ),
                });
            }
            out.push(change);
        }
        Ok(out)
    }

    /// The accepted changes of a document beyond a version vector (actor →
    /// highest seq held by the asker), in (actor, seq) order.
    pub fn changes_after(
        &self,
        doc: &DocId,
        have: &std::collections::BTreeMap<gongjian_identity::ActorId, u64>,
    ) -> Result<Vec<SignedChange>, StoreError> {
        let mut out = Vec::new();
        let prefix = doc.as_bytes();
        let iter = self.prefix_iter(Cf::ChangeIndex, prefix);
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(prefix) {
                break;
            }
            let corrupt = |reason: &str| StoreError::Corrupt {
                cf: "change_index",
                reason: reason.to_owned(),
            };
            if k.len() != 32 + 36 + 8 {
                return Err(corrupt("key is not doc, actor, seq"));
            }
            let actor = gongjian_identity::ActorId::from_bytes(&k[32..68])
                .map_err(|_| corrupt("bad actor in key"))?;
            let seq = u64::from_be_bytes(k[68..76].try_into().map_err(|_| corrupt("bad seq"))?);
            if have.get(&actor).is_some_and(|h| seq <= *h) {
                continue;
            }
            let hash: [u8; 32] = v
                .as_ref()
                .try_into()
                .map_err(|_| corrupt("value is not a 32-byte hash"))?;
            let change = self
                .change(doc, &Hash(hash))?
                .ok_or_else(|| corrupt("indexed change is missing"))?;
            out.push(change);
        }
        Ok(out)
    }

    /// Changes of a document held but not accepted.
    pub fn quarantined(&self, doc: &DocId) -> Result<Vec<QuarantineEntry>, StoreError> {
        let mut out = Vec::new();
        let prefix = doc.as_bytes();
        let iter = self.prefix_iter(Cf::Quarantine, prefix);
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push(decode_quarantine(&v)?);
        }
        Ok(out)
    }

    /// Whether a change is held in quarantine.
    pub fn quarantine_entry(
        &self,
        doc: &DocId,
        hash: &Hash,
    ) -> Result<Option<QuarantineEntry>, StoreError> {
        match self.get(Cf::Quarantine, &doc_hash_key(doc, hash))? {
            Some(v) => Ok(Some(decode_quarantine(&v)?)),
            None => Ok(None),
        }
    }

    /// Counts of every column family of interest (a full scan: for tests and
    /// `status`, not hot paths).
    /// Bytes on disk (live SST files) and in memtables, over every column
    /// family: RocksDB's own figures, cheap to read.
    /// Reads every key and value of every column family, RocksDB checking
    /// each block's checksum: the first error of each family, if any.
    pub fn read_everything(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for cf in crate::cf::Cf::ALL {
            let mut opts = rocksdb::ReadOptions::default();
            opts.set_verify_checksums(true);
            opts.fill_cache(false);
            for item in self
                .inner
                .db
                .iterator_cf_opt(&self.cf(cf), opts, IteratorMode::Start)
            {
                if let Err(e) = item {
                    out.push((cf.name(), e.to_string()));
                    break;
                }
            }
        }
        out
    }

    pub fn size_bytes(&self) -> u64 {
        Cf::ALL
            .iter()
            .map(|cf| {
                let p = |name: &str| {
                    self.inner
                        .db
                        .property_int_value_cf(&self.cf(*cf), name)
                        .ok()
                        .flatten()
                        .unwrap_or(0)
                };
                p("rocksdb.live-sst-files-size") + p("rocksdb.cur-size-all-mem-tables")
            })
            .sum()
    }

    /// Changes held in quarantine (bounded, so counting is cheap).
    pub fn quarantined_count(&self) -> Result<u64, StoreError> {
        let mut n = 0;
        for item in self
            .inner
            .db
            .iterator_cf(&self.cf(Cf::Quarantine), IteratorMode::Start)
        {
            item?;
            n += 1;
        }
        Ok(n)
    }

    /// The documents with changes in quarantine: a walk of the quarantine
    /// (bounded per document and author), not of every document.
    pub fn quarantined_docs(&self) -> Result<std::collections::BTreeSet<DocId>, StoreError> {
        let mut out = std::collections::BTreeSet::new();
        let mut it = self.inner.db.raw_iterator_cf(&self.cf(Cf::Quarantine));
        it.seek_to_first();
        while let Some(k) = it.key() {
            let doc: [u8; 32] = k
                .get(..32)
                .and_then(|d| <[u8; 32]>::try_from(d).ok())
                .ok_or_else(|| StoreError::Corrupt {
                    cf: Cf::Quarantine.name(),
                    reason: format!("a key of {} bytes", k.len()),
                })?;
            out.insert(DocId(Hash(doc)));
            // On past this document's entries (doc ‖ 32-byte hash).
            let mut next = doc.to_vec();
            next.extend_from_slice(&[0xff; 33]);
            it.seek(&next);
        }
        it.status()?;
        Ok(out)
    }

    /// Counts by walking every key (exact; slow on a large store).
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let mut damaged = Vec::new();
        // A family whose files RocksDB finds damaged is counted as far as
        // it reads and named: the status stays up while the node runs on
        // what it could read (the records' family, `Replica::open`).
        let mut count = |cf: Cf| -> Result<u64, StoreError> {
            let mut n = 0;
            for item in self.inner.db.iterator_cf(&self.cf(cf), IteratorMode::Start) {
                match item.map_err(StoreError::from) {
                    Ok(_) => n += 1,
                    Err(e) if e.is_corruption() => {
                        damaged.push(cf.name());
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(n)
        };
        let changes = count(Cf::Changes)?;
        let index = count(Cf::ChangeIndex)?;
        let docs = count(Cf::Docs)?;
        let records = count(Cf::Records)?;
        let quarantine = count(Cf::Quarantine)?;
        // Not reported as a count, but walked for damage like the others.
        count(Cf::Unapplied)?;
        Ok(StoreStats {
            changes,
            index,
            docs,
            records,
            quarantine,
            damaged,
        })
    }

    /// A consistent copy of the store (RocksDB checkpoint) at `dest`.
    pub fn checkpoint(&self, dest: &Path) -> Result<(), StoreError> {
        let cp = rocksdb::checkpoint::Checkpoint::new(&self.inner.db)?;
        cp.create_checkpoint(dest)?;
        Ok(())
    }
}

pub(crate) fn decode_record(v: &[u8]) -> Result<SignedRecord, StoreError> {
    SignedRecord::decode(value::unwrap_version("records", v)?).map_err(|e| StoreError::Corrupt {
        cf: "records",
        reason: e.to_string(),
    })
}

fn decode_change(v: &[u8]) -> Result<SignedChange, StoreError> {
    SignedChange::decode(value::unwrap_version("changes", v)?).map_err(|e| StoreError::Corrupt {
        cf: "changes",
        reason: e.to_string(),
    })
}

fn decode_quarantine(v: &[u8]) -> Result<QuarantineEntry, StoreError> {
    let (reason, bytes): (String, Vec<u8>) = value::decode("quarantine", v)?;
    let change = SignedChange::decode(&bytes).map_err(|e| StoreError::Corrupt {
        cf: "quarantine",
        reason: e.to_string(),
    })?;
    Ok(QuarantineEntry { reason, change })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Op;
    use crate::rebuild::stored_record;
    use gongjian_identity::{ActorId, DocType, Genesis, RecordBody, Secret, UnitId};

    fn geneses(n: u64) -> Vec<SignedRecord> {
        let secret = Secret::from_seed([5; 32]);
        let unit: UnitId = "320106002001".parse().unwrap();
        (0..n)
            .map(|i| {
                Genesis {
                    doc_type: DocType::Needs,
                    unit,
                    parties: vec![],
                    created_at: 1_780_000_000 + i,
                    write_keys: vec![secret.public()],
                }
                .sign(&secret)
            })
            .collect()
    }

    fn held(store: &Store) -> Vec<Hash> {
        let mut out: Vec<Hash> = store.records().unwrap().iter().map(|r| r.hash()).collect();
        out.sort();
        out
    }

    /// The records' family written again holds exactly the records given,
    /// and a rebuild cut short after its records were saved (a crash while
    /// the family was dropped) is finished at the next open.
    #[test]
    fn records_written_again_hold_exactly_those_given_even_across_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).unwrap();
        let all = geneses(6);
        let mut b = Batch::new();
        for r in &all {
            b.put_record(r);
        }
        store.commit_blocking(b).unwrap();
        let stored: Vec<(Hash, Vec<u8>)> = all[..4].iter().map(stored_record).collect();
        let aside = store.replace_records(&stored, 7).unwrap();
        assert!(aside.ends_with("salvage/records-7"), "{}", aside.display());
        let mut want: Vec<Hash> = all[..4].iter().map(SignedRecord::hash).collect();
        want.sort();
        assert_eq!(held(&store), want);
        assert!(store.meta(MetaKey::Rebuild).unwrap().is_none());

        // Cut short: the records to keep saved, the family not yet dropped.
        let keep: Vec<(Hash, Vec<u8>)> = all[1..3].iter().map(stored_record).collect();
        let mut b = Batch::new();
        b.put_meta(MetaKey::Rebuild as u8, postcard::to_stdvec(&keep).unwrap());
        store.commit_blocking(b).unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let mut want: Vec<Hash> = all[1..3].iter().map(SignedRecord::hash).collect();
        want.sort();
        assert_eq!(held(&store), want, "the rebuild was finished at open");
        assert!(store.meta(MetaKey::Rebuild).unwrap().is_none());
        assert!(store.read_everything().is_empty());
    }

    /// A change index entry must name the change stored under it, at its
    /// own (actor, seq): one pointing elsewhere is reported corrupt on read.
    #[test]
    fn an_index_entry_naming_another_change_is_corrupt() {
        use automerge::transaction::Transactable;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).unwrap();
        let secret = Secret::from_seed([3; 32]);
        let doc = DocId(Hash([1; 32]));
        let actor = ActorId {
            key: secret.public(),
            epoch: 0,
        };
        let mut am = automerge::AutoCommit::new();
        am.set_actor(automerge::ActorId::from(actor.to_bytes()));
        let mut changes = Vec::new();
        for i in 0..2i64 {
            am.put(automerge::ROOT, "k", i).unwrap();
            am.commit();
            let raw = am.get_last_local_change().unwrap().raw_bytes().to_vec();
            changes.push(SignedChange::sign(doc, raw, &secret).unwrap());
        }
        let mut b = Batch::new();
        for c in &changes {
            b.put_change(c);
        }
        store.commit_blocking(b).unwrap();
        assert_eq!(store.doc_changes(&doc).unwrap().len(), 2);
        // The entry of seq 2 rewritten to name seq 1's change.
        let mut b = Batch::new();
        b.ops.push(Op::Put(
            Cf::ChangeIndex,
            index_key(&doc, &actor, 2),
            changes[0].hash().0.to_vec(),
        ));
        store.commit_blocking(b).unwrap();
        let err = store.doc_changes(&doc).unwrap_err();
        assert!(err.to_string().contains("names another change"), "{err}");
    }
}
