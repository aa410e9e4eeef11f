//! The simulator's scripted events, for the scenarios (revocation,
//! equivocation, interrupted transfers): links cut and restored, a key
//! revoked, a store copied and put back, a few quiet steps, and what each
//! node accepted of a key.

use std::collections::{BTreeMap, BTreeSet};

use gongjian_identity::{DocId, Hash, RecordBody, Revocation, RevocationTarget};
use rand::RngExt;

use super::World;

impl World {
    /// A copy of node `i`'s store as it is now (a RocksDB checkpoint).
    pub fn copy_store(&self, i: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        self.nodes[i]
            .replica()
            .store()
            .checkpoint(&dir.path().join("store"))
            .expect("checkpoint");
        dir
    }

    /// Kills node `i` and starts it again on a copy of `copy` (from
    /// [`World::copy_store`]), the same actor: it forgets what it wrote
    /// since and writes those seqs again.
    pub fn replace_store(&mut self, i: usize, copy: &tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        for e in std::fs::read_dir(copy.path().join("store")).expect("copy") {
            let e = e.expect("copy entry");
            std::fs::copy(e.path(), dir.path().join(e.file_name())).expect("copy file");
        }
        self.reopen(i, dir);
    }

    /// Revokes node `target`'s key on node `at` (its certificate's signer),
    /// cutting at what `at` holds of its changes and records.
    pub fn revoke(&mut self, target: usize, at: usize) -> Hash {
        let key = self.nodes[target].secret.public();
        let cut = self.nodes[at]
            .replica()
            .revocation_cut(&BTreeSet::from([key]))
            .expect("cut");
        let revocation = Revocation {
            target: RevocationTarget::Key(key),
            cut,
            reason: "密钥泄露".into(),
            issued_at: self.now,
        }
        .sign(&self.nodes[at].secret);
        let hash = revocation.hash();
        self.nodes[at]
            .replica_mut()
            .insert_records(vec![revocation])
            .expect("revocation");
        hash
    }

    /// The link between child `child` and its parent.
    pub fn uplink(&self, child: usize) -> Option<usize> {
        self.links.iter().position(|l| l.child == child)
    }

    /// Opens link `l` and delivers at most `n` packets, then cuts it: an
    /// interrupted transfer.
    pub fn interrupt_after(&mut self, l: usize, n: usize) {
        self.connect(l);
        for _ in 0..n {
            if !self.deliver_one() {
                break;
            }
        }
        self.disconnect(l);
    }

    /// Cuts (or restores) one link.
    pub fn set_link(&mut self, l: usize, up: bool) {
        self.links[l].up = up;
        if !up {
            self.disconnect(l);
        }
    }

    /// Cuts (or restores) every link of node `i`.
    pub fn isolate(&mut self, i: usize, cut: bool) {
        for l in 0..self.links.len() {
            if self.links[l].child == i || self.links[l].parent == i {
                self.links[l].up = !cut;
                if cut {
                    self.disconnect(l);
                }
            }
        }
    }

    /// Random steps without link flips or restarts (used around scripted
    /// events).
    pub fn steps(&mut self, n: usize, write_only: Option<usize>) {
        for _ in 0..n {
            self.now += 1;
            if self.rng.random_bool(self.cfg.p_write) {
                let i = write_only.unwrap_or_else(|| self.rng.random_range(0..self.nodes.len()));
                self.write(i);
            }
            self.reconnect_idle();
            for _ in 0..8 {
                if !self.deliver_one() {
                    break;
                }
            }
        }
    }

    /// The accepted seq range of `actor key`'s changes in `doc`, per node
    /// that holds the document.
    pub fn accepted_of(
        &self,
        doc: &DocId,
        key: &gongjian_identity::PublicKey,
    ) -> BTreeMap<usize, BTreeSet<(u32, u64)>> {
        let mut out = BTreeMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(meta) = n.replica().store().doc_meta(doc).expect("meta") {
                let set: BTreeSet<(u32, u64)> = meta
                    .clock
                    .iter()
                    .filter(|(a, _)| a.key == *key)
                    .map(|(a, s)| (a.epoch, *s))
                    .collect();
                out.insert(i, set);
            }
        }
        out
    }
}
