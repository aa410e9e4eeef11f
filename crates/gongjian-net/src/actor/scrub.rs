//! The node's own scrub, a few documents and records each tick.

use std::time::{Duration, Instant};

use gongjian_identity::DocId;

use super::Actor;

/// Changes the node's own scrub checks in one tick at most (past its first
/// document): a step holds the sync thread for milliseconds.
const SCRUB_CHANGES_PER_TICK: u64 = 4096;

/// After a read error (or an unreadable record), the scrub of that family
/// waits this long: the operator repairs the store meanwhile, and the log
/// is not filled every second.
const SCRUB_RETRY: Duration = Duration::from_secs(600);

impl Actor {
    /// One step of the node's own scrub (PROTOCOL.md §3 checks again on
    /// what is stored): a few documents each tick, so a full pass takes
    /// documents ÷ `scrub_per_tick` seconds and never holds the sync
    /// thread long. A corrupt document is dropped (its genesis kept) and
    /// fetched again from peers: every session reconciles at once. One this
    /// node writes is only reported (its peers may lack changes of it).
    pub(super) fn scrub(&mut self) {
        let n = self.timing.scrub_per_tick;
        if n == 0 {
            return;
        }
        // Documents and records pause apart: an error reading one family
        // does not stop the other's scrub.
        if self.scrub_paused_until.is_none_or(|t| Instant::now() >= t) {
            self.scrub_documents(n);
        }
        if self
            .records_paused_until
            .is_none_or(|t| Instant::now() >= t)
        {
            self.scrub_records(n);
        }
    }

    fn scrub_documents(&mut self, n: usize) {
        match self
            .replica
            .scrub_step(self.scrub_cursor, n, SCRUB_CHANGES_PER_TICK)
        {
            Ok((report, next)) => {
                self.scrub_cursor = next;
                let dropped: Vec<DocId> = report
                    .dropped
                    .iter()
                    .filter_map(|d| d.parse().ok())
                    .collect();
                for p in &report.problems {
                    tracing::error!(doc = p.doc.as_deref().unwrap_or("-"), problem = %p.what, "scrub: corrupt data found");
                }
                for d in &report.kept {
                    tracing::error!(doc = %d, "scrub: a document this node writes is corrupt; left in place (peers may lack some of its changes): run `gongjian verify --repair` or restore a backup");
                }
                {
                    let mut st = self.status.lock().expect("status lock");
                    st.scrub.documents_checked += report.documents as u64;
                    st.scrub.problems += report.problems.len() as u64;
                    st.scrub.dropped += dropped.len() as u64;
                    if next.is_none() {
                        st.scrub.passes += 1;
                    }
                }
                if !dropped.is_empty() {
                    self.observe(&dropped);
                    self.resync_all(&[]);
                }
            }
            Err(e) => {
                // Counted as a problem, so `/metrics` shows it; the
                // records' scrub goes on (it reads another family).
                tracing::error!(error = %e, "scrub: the documents could not be read; trying again in 10 minutes");
                self.status.lock().expect("status lock").scrub.problems += 1;
                self.scrub_cursor = None;
                self.scrub_paused_until = Some(Instant::now() + SCRUB_RETRY);
            }
        }
    }

    /// Records, four for each document a tick: a damaged one is written
    /// again from its verified copy in memory, or dropped and fetched again
    /// from peers (records are served from memory, never from disk).
    fn scrub_records(&mut self, n: usize) {
        match self.replica.scrub_records_step(self.records_cursor, n * 4) {
            Ok((step, next)) => {
                self.records_cursor = next;
                for p in &step.problems {
                    tracing::error!(problem = %p.what, "scrub: corrupt record found");
                }
                let mut st = self.status.lock().expect("status lock");
                st.scrub.records_checked += step.checked as u64;
                st.scrub.problems += step.problems.len() as u64;
                st.scrub.records_repaired += (step.rewritten + step.dropped) as u64;
                drop(st);
                if step.unreadable {
                    // Reported above; the operator repairs it. Not read
                    // again (and logged) every second meanwhile.
                    self.records_paused_until = Some(Instant::now() + SCRUB_RETRY);
                }
                if step.dropped > 0 {
                    self.resync_all(&[]);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "scrub: the records could not be read; trying again in 10 minutes");
                self.status.lock().expect("status lock").scrub.problems += 1;
                self.records_cursor = None;
                self.records_paused_until = Some(Instant::now() + SCRUB_RETRY);
            }
        }
    }
}
