//! When sessions this node opened reconcile again: after new records,
//! no sooner than the resync gap (at once for a revocation).

use std::time::{Duration, Instant};

use gongjian_sync::{Input, Role, Session};

use super::Actor;

/// The longest a session due to reconcile again waits for it.
const MAX_RESYNC_GAP: Duration = Duration::from_secs(30);

impl Actor {
    /// New records (a genesis, a certificate) are only learnt by
    /// reconciling: every session this node opened does so again, at once
    /// or when its current round ends. Sessions peers opened are theirs to
    /// restart; a peer that hears of a document it does not know yet does.
    ///
    /// A revocation that took effect is passed on at once, past the resync
    /// gap: what the revoked key signs from now on must be refused everywhere.
    pub(super) fn resync_all(&mut self, except: &[u64]) {
        let revocations = self.replica.trust().revocation_count();
        let urgent = revocations != self.revocations;
        self.revocations = revocations;
        for (id, s) in self.slots.iter_mut() {
            if !except.contains(id) && s.role == Role::Initiator {
                s.due = true;
                s.urgent |= urgent;
                self.any_due = true;
            }
        }
        self.kick();
    }

    /// [`Actor::resync_all`] for the records stored since the accept log
    /// stood at `since`, but only the sessions whose peer may see one of
    /// them: a street's heads announcement does not make the district
    /// reconcile again with every other street (130 of them at ×10). A
    /// revocation, or more records than the log is read for, restarts all.
    pub(super) fn resync_for_records(&mut self, since: u64, except: &[u64]) {
        let urgent = self.replica.trust().revocation_count() != self.revocations;
        let hashes = match self.replica.records_logged_since(since) {
            Some(hashes) if !urgent => hashes,
            _ => return self.resync_all(except),
        };
        for (id, s) in self.slots.iter_mut() {
            if !except.contains(id)
                && s.role == Role::Initiator
                && s.unit
                    .is_none_or(|u| self.replica.any_record_visible(&hashes, &u))
            {
                s.due = true;
                self.any_due = true;
            }
        }
        self.kick();
    }

    /// Restarts the synced sessions that are due.
    ///
    /// A session reconciles again no sooner than [`Actor::resync_gap`]
    /// after its last start: each start snapshots the sets it reconciles,
    /// and while records stream in from many peers (a district syncing
    /// from 130 hubs), restarting every session on each batch kept the sync
    /// thread doing nothing else. The tick restarts the ones held back.
    pub(super) fn kick(&mut self) {
        // Not again from inside a start (its input ends with a kick): each
        // start is timed alone, and the restarts do not nest.
        if !self.any_due || self.kicking {
            return;
        }
        self.any_due = self.slots.values().any(|s| s.due);
        let now = Instant::now();
        let gap = self.resync_gap();
        let ready: Vec<u64> = self
            .slots
            .iter()
            .filter(|(_, s)| {
                s.due
                    && s.session.as_ref().is_some_and(Session::is_synced)
                    && (s.urgent || now.duration_since(s.last_start) >= gap)
            })
            .map(|(id, _)| *id)
            .collect();
        self.start_all(ready);
    }

    /// Starts these sessions' reconciliation again, one after the other
    /// (no restart nests in another: each is timed alone).
    pub(super) fn start_all(&mut self, ids: Vec<u64>) {
        self.kicking = true;
        for id in ids {
            self.start(id);
        }
        self.kicking = false;
    }

    /// Starts a session's reconciliation again, timing it.
    fn start(&mut self, id: u64) {
        let t = Instant::now();
        let Some(s) = self.slots.get_mut(&id) else {
            return; // closed meanwhile
        };
        s.due = false;
        s.urgent = false;
        s.last_start = t;
        self.input(id, Input::Start);
        // A moving average of what a start costs this node.
        let took = t.elapsed();
        self.start_cost = (self.start_cost * 4 + took) / 5;
    }

    /// How long a session waits between reconciliations started by new
    /// records: three times what restarting every session this node opened
    /// costs (so such restarts take at most a quarter of the sync thread),
    /// at most [`MAX_RESYNC_GAP`]. Milliseconds on a small node; seconds for
    /// a district holding tens of thousands of documents with 130 hubs.
    fn resync_gap(&self) -> Duration {
        let sessions = self
            .slots
            .values()
            .filter(|s| s.role == Role::Initiator)
            .count() as u32;
        (self.start_cost * sessions * 3).min(MAX_RESYNC_GAP)
    }
}
