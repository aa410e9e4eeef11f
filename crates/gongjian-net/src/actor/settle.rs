//! Deferred application, a bounded step each tick (PROTOCOL.md §4 rule 8).

use super::Actor;

impl Actor {
    /// Applies up to `settle_per_tick` deferred changes to automerge
    /// (`Replica::settle`). Documents whose accepted set changed (automerge
    /// refused changes, or took one it had refused): peers and the view
    /// are told, as after ingest.
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
                    st.settle.changed += s.changed.len() as u64;
                    st.settle.waiting = s.more;
                }
                if !s.changed.is_empty() {
                    tracing::warn!(
                        documents = s.changed.len(),
                        "settling changed what documents accept (automerge refused changes, or took one it had refused)"
                    );
                    self.notify(&s.changed, None);
                    self.observe(&s.changed);
                }
            }
            Err(e) => tracing::error!(error = %e, "settling deferred documents failed"),
        }
    }
}
