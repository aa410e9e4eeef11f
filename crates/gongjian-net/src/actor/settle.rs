//! Deferred application, a bounded step each tick (PROTOCOL.md §4 rule 8).

use super::Actor;

impl Actor {
    /// Applies up to `settle_per_tick` deferred changes to automerge
    /// (`Replica::settle`). Documents where automerge refused changes lost
    /// them to quarantine: peers and the view are told, as after ingest.
    pub(super) fn settle(&mut self) {
        let n = self.timing.settle_per_tick;
        if n == 0 {
            return;
        }
        match self.replica.settle(n) {
            Ok(s) => {
                if s.documents > 0 {
                    tracing::debug!(
                        documents = s.documents,
                        changes = s.changes,
                        more = s.more,
                        "settled deferred documents"
                    );
                }
                {
                    let mut st = self.status.lock().expect("status lock");
                    st.settle.documents += s.documents as u64;
                    st.settle.changes += s.changes as u64;
                    st.settle.cut_off += s.cut_off.len() as u64;
                    st.settle.waiting = s.more;
                }
                if !s.cut_off.is_empty() {
                    tracing::warn!(
                        documents = s.cut_off.len(),
                        "settling moved changes automerge cannot apply to quarantine"
                    );
                    self.notify(&s.cut_off, None);
                    self.observe(&s.cut_off);
                }
            }
            Err(e) => tracing::error!(error = %e, "settling deferred documents failed"),
        }
    }
}
