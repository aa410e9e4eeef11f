//! The node's own scrub, a few documents and records each tick.

use std::time::{Duration, Instant};

use gongjian_identity::DocId;

use super::Actor;

/// Changes the node's own scrub checks in one tick at most (past its first
/// document): a step holds the sync thread for milliseconds.
const SCRUB_CHANGES_PER_TICK: u64 = 4096;

/// The scrub yields its tick while the node syncs: when the sync thread's
/// other work (frames, answers waiting for room, jobs, the tick's own) took more than this
/// share of the time since its last tick (a cold sync, a district catching
/// up), it waits for the next...
const SCRUB_YIELD_BUSY: f64 = 0.25;
/// ...but not more ticks than this in a row, so it still goes on (at one
/// step a minute) under load that never lets up.
const SCRUB_YIELD_TICKS: u32 = 60;

/// Whether the scrub yields this tick: `busy` of `since` spent on sync,
/// after `yielded` ticks in a row yielded already.
pub(super) fn scrub_yields(busy: Duration, since: Duration, yielded: u32) -> bool {
    yielded < SCRUB_YIELD_TICKS && busy.as_secs_f64() > SCRUB_YIELD_BUSY * since.as_secs_f64()
}

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
        let (busy, last, yielded) = self.scrub_busy;
        let now = Instant::now();
        let n = self.timing.scrub_per_tick;
        let yields = n > 0 && scrub_yields(busy, now.duration_since(last), yielded);
        self.scrub_busy = (Duration::ZERO, now, if yields { yielded + 1 } else { 0 });
        if n == 0 {
            return;
        }
        if yields {
            self.status.lock().expect("status lock").scrub.yielded += 1;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scrub_yields_to_a_busy_sync_for_a_minute_at_most() {
        let s = Duration::from_secs(1);
        // Idle, or light live traffic: it runs.
        assert!(!scrub_yields(Duration::ZERO, s, 0));
        assert!(!scrub_yields(Duration::from_millis(200), s, 0));
        // A sync keeping the thread busy: it waits...
        assert!(scrub_yields(Duration::from_millis(300), s, 0));
        assert!(scrub_yields(
            Duration::from_millis(900),
            s,
            SCRUB_YIELD_TICKS - 1
        ));
        // ...a minute in a row at most.
        assert!(!scrub_yields(
            Duration::from_millis(900),
            s,
            SCRUB_YIELD_TICKS
        ));
        // A long gap between ticks (the thread held elsewhere) is not busy.
        assert!(!scrub_yields(
            Duration::from_millis(300),
            Duration::from_secs(2),
            0
        ));
    }
}
