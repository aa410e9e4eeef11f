//! The store's writer thread: group commit of queued batches.

use std::sync::mpsc::{Receiver, TryRecvError};

use rocksdb::{WriteBatch, WriteOptions};

use crate::batch::Op;
use crate::cf::Cf;
use crate::error::StoreError;
use crate::log::LogHeads;
use crate::store::{DB, Durability, GROUP_COMMIT_MAX, Queued, RELAXED_SYNC};

/// Entries of the accept log kept: a feed reads at most a few thousand
/// after a peer's place; older ones are deleted (in ranges, every this
/// many entries).
pub const LOG_KEPT: u64 = 65_536;

/// Group commit: take one batch, then whatever else is queued (up to
/// [`GROUP_COMMIT_MAX`]), write them as one RocksDB batch, answer all. The
/// write is synced if any batch of the group asks it, or relaxed ones have
/// waited [`RELAXED_SYNC`]; relaxed writes left unsynced are synced once
/// the queue stays empty that long, and when the store closes.
///
/// Each accepted change's index entry and each record written is also
/// logged under the next number of [`Cf::Log`], in the same write: the
/// last number written moves once the write is made, the last durable once
/// it is synced.
pub(crate) fn writer_loop(
    db: &DB,
    rx: Receiver<Queued>,
    syncs: &std::sync::atomic::AtomicU64,
    heads: &LogHeads,
) {
    use std::sync::atomic::Ordering;
    use std::sync::mpsc::RecvTimeoutError;
    let mut sync = WriteOptions::default();
    sync.set_sync(true);
    let relaxed = WriteOptions::default();
    // Since when relaxed writes wait for their fsync.
    let mut unsynced: Option<std::time::Instant> = None;
    let sync_wal = |unsynced: &mut Option<std::time::Instant>| {
        match db.flush_wal(true) {
            Ok(()) => {
                syncs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                heads.synced_all();
                *unsynced = None;
            }
            // Tried again a full interval later (never in a loop), or by the
            // next synced write, which fails if the disk still does.
            Err(e) => {
                tracing::error!(error = %e, "syncing the write-ahead log");
                *unsynced = Some(std::time::Instant::now());
            }
        }
    };
    loop {
        let first = match unsynced {
            None => match rx.recv() {
                Ok(first) => first,
                Err(_) => break,
            },
            Some(since) => match rx.recv_timeout(RELAXED_SYNC.saturating_sub(since.elapsed())) {
                Ok(first) => first,
                Err(RecvTimeoutError::Timeout) => {
                    sync_wal(&mut unsynced);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            },
        };
        let mut group = vec![first];
        while group.len() < GROUP_COMMIT_MAX {
            match rx.try_recv() {
                Ok(next) => group.push(next),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let synced = group.iter().any(|(_, d, _)| *d == Durability::Synced)
            || unsynced.is_some_and(|t| t.elapsed() >= RELAXED_SYNC);
        let mut wb = WriteBatch::default();
        let mut missing = None;
        let log = db.cf_handle(Cf::Log.name());
        let mut seq = heads.written.load(Ordering::Acquire);
        for (batch, _, _) in &group {
            for op in &batch.ops {
                let Some(cf) = db.cf_handle(op_cf(op).name()) else {
                    missing = Some(op_cf(op).name());
                    continue;
                };
                match op {
                    Op::Put(Cf::ChangeIndex | Cf::Records, k, v) => {
                        wb.put_cf(&cf, k, v);
                        if let Some(log) = &log {
                            seq += 1;
                            wb.put_cf(log, seq.to_be_bytes(), k);
                            // Past what a feed reads, the log is let go of.
                            if seq.is_multiple_of(LOG_KEPT) {
                                wb.delete_range_cf(
                                    log,
                                    0u64.to_be_bytes(),
                                    (seq - LOG_KEPT).to_be_bytes(),
                                );
                            }
                        }
                    }
                    Op::Put(_, k, v) => wb.put_cf(&cf, k, v),
                    Op::Delete(_, k) => wb.delete_cf(&cf, k),
                    Op::DeleteRange(_, from, to) => wb.delete_range_cf(&cf, from, to),
                }
            }
        }
        // A group with nothing to write only asks for a sync
        // ([`Store::sync`]): made only if relaxed writes wait for one.
        let empty = wb.is_empty();
        let fsync = synced && (!empty || unsynced.is_some());
        let result = match missing {
            // Never acknowledge a write that was not made (a family missing
            // while the records' family is made again).
            Some(_) => Ok(()),
            None if empty && fsync => db.flush_wal(true),
            None if empty => Ok(()),
            None => db.write_opt(wb, if synced { &sync } else { &relaxed }),
        };
        if result.is_ok() && missing.is_none() {
            heads.written.store(seq, Ordering::Release);
            if fsync {
                // A synced write syncs the log up to it: the relaxed
                // writes before it too.
                syncs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                heads.synced_all();
                unsynced = None;
            } else if !empty && unsynced.is_none() {
                unsynced = Some(std::time::Instant::now());
            }
        }
        tracing::trace!(
            batches = group.len(),
            synced,
            ok = result.is_ok(),
            "group commit"
        );
        for (_, _, reply) in group {
            let r = match (&result, missing) {
                (_, Some(cf)) => Err(StoreError::Corrupt {
                    cf,
                    reason: "the column family is missing; nothing of this batch was written"
                        .into(),
                }),
                (Ok(()), None) => Ok(()),
                (Err(e), None) => Err(StoreError::Rocks(e.clone())),
            };
            let _ = reply.send(r);
        }
    }
    if unsynced.is_some() {
        sync_wal(&mut unsynced);
    }
}

fn op_cf(op: &Op) -> Cf {
    match op {
        Op::Put(cf, _, _) | Op::Delete(cf, _) | Op::DeleteRange(cf, _, _) => *cf,
    }
}
