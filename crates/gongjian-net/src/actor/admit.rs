//! A peer's admission by its hello (PROTOCOL.md §9), and the sync progress
//! this node keeps of each peer (`Cf::Peers`).

use gongjian_identity::{PublicKey, UnitId};
use gongjian_sync::{Host, PeerProgress};

use super::Actor;
use crate::hello::Hello;
use crate::now_secs;

/// The sync progress this node keeps of `peer` (a default one if none or
/// it does not decode: a session then starts over).
fn load_progress(store: &gongjian_store::Store, peer: &PublicKey) -> PeerProgress {
    match store.peer(peer.as_bytes()) {
        Ok(Some(bytes)) => postcard::from_bytes(&bytes).unwrap_or_default(),
        _ => PeerProgress::default(),
    }
}

/// Sets this node's place in `peer`'s accept log (`log`, number `at`), as
/// a sync with it that ended leaves it (PROTOCOL.md §8.6): for setting up
/// a node as if it had synced (`gongjian demo hubs --later`).
pub fn set_log_place(
    store: &gongjian_store::Store,
    peer: &PublicKey,
    log: [u8; 8],
    at: u64,
) -> Result<(), gongjian_store::StoreError> {
    let mut progress = load_progress(store, peer);
    progress.log = Some((log, at));
    store.commit_blocking(progress_batch(peer, &progress))
}

/// The write that keeps `progress` as this node's sync progress of `peer`.
pub(super) fn progress_batch(peer: &PublicKey, progress: &PeerProgress) -> gongjian_store::Batch {
    let mut b = gongjian_store::Batch::new();
    // Plain data into a Vec: postcard cannot fail here.
    b.put_peer(
        peer.as_bytes(),
        &postcard::to_stdvec(progress).unwrap_or_default(),
    );
    b
}

impl Actor {
    /// Checks a hello: its certificates go through the checked record
    /// ingest, then the peer's key must be admitted (a chain valid now up
    /// to the pinned root, no revocation) as the unit it claims.
    ///
    /// The error says why, and whether it is a hello without certificates
    /// (its revocations only, PROTOCOL.md §9) from a key this node holds no
    /// valid, unrevoked chain for: one the peer's next hello may fix.
    pub(super) fn admit(&mut self, key: PublicKey, bytes: &[u8]) -> Result<UnitId, (String, bool)> {
        let hello = Hello::decode(bytes).map_err(|e| (e.to_string(), false))?;
        let bare = hello.chain.iter().all(|r| {
            gongjian_identity::SignedRecord::decode(r)
                .is_ok_and(|r| r.kind() != gongjian_identity::RecordKind::Certificate)
        });
        self.admit_hello(key, hello)
            .map_err(|(why, unknown)| (why, bare && unknown))
    }

    /// The error says why, and whether the key lacks a valid chain here
    /// (as opposed to being revoked, or claiming another unit).
    fn admit_hello(&mut self, key: PublicKey, hello: Hello) -> Result<UnitId, (String, bool)> {
        if !hello.chain.is_empty() {
            let s = self
                .replica
                .ingest_records(hello.chain)
                .map_err(|e| (format!("certificates: {e}"), false))?;
            if s.invalid > 0 {
                return Err((
                    format!("{} invalid certificates in hello", s.invalid),
                    false,
                ));
            }
        }
        let info = self.replica.trust().admit(&key, now_secs()).map_err(|e| {
            let revoked = matches!(e, gongjian_model::CertChainError::Revoked { .. });
            (format!("not admitted: {e}"), !revoked)
        })?;
        if info.unit != hello.unit {
            return Err((
                format!(
                    "claims unit {} but its key is certified for {}",
                    hello.unit, info.unit
                ),
                false,
            ));
        }
        Ok(info.unit)
    }

    pub(super) fn load_progress(&self, key: &PublicKey) -> PeerProgress {
        load_progress(self.replica.store(), key)
    }
}
