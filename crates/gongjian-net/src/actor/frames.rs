//! Frames read together: their records first, then their changes in one
//! ingest, the view updated once.

use std::time::Instant;

use gongjian_identity::DocId;
use gongjian_sync::IngestSummary;

use super::Actor;

/// A frame read off a stream, waiting to be handled.
pub(crate) struct Waiting {
    pub stream: u64,
    pub bytes: Vec<u8>,
    /// Dropped once the frame is handled: the stream's reader waits for it
    /// before reading the next.
    pub done: tokio::sync::oneshot::Sender<()>,
    /// When the frame was read off the stream (for the view lag).
    pub at: Instant,
}

/// Frames handled together at most (each stream has one waiting at a time).
pub(super) const MAX_FOLD: usize = 64;

/// Whether an encoded sync message is `Records` or `FeedRecords`, by its
/// variant tag: the records of frames read together are admitted in one
/// evaluation of the membership.
pub(super) fn is_records(bytes: &[u8]) -> bool {
    matches!(bytes.get(1), Some(2 | 8))
}

impl Actor {
    /// Handles frames read together (one per stream, so each stream's
    /// order holds). Records first (hellos, `Records` messages: what
    /// changes may rest on), each in its turn. Then the changes of the
    /// frames whose session takes them in are ingested in one call (one
    /// commit, one signature batch, each frame's signatures judged alone)
    /// and the view updated with them at once; each session then handles
    /// its frame as it would alone and is handed what became of its
    /// changes. What the frames changed besides is observed once, after
    /// the last.
    pub(super) fn frames(&mut self, frames: Vec<Waiting>) {
        if frames.len() < 2 {
            // Nothing to fold.
            for f in frames {
                self.handle_frame(f, None);
            }
            return;
        }
        self.folding = Some(Vec::new());
        let (hellos, frames): (Vec<Waiting>, Vec<Waiting>) = frames.into_iter().partition(|f| {
            self.slots
                .get(&f.stream)
                .is_none_or(|s| s.session.is_none())
        });
        for f in hellos {
            self.handle_frame(f, None);
        }
        let (records, frames): (Vec<Waiting>, Vec<Waiting>) =
            frames.into_iter().partition(|f| is_records(&f.bytes));
        self.records_frames(records);
        let mut ahead: Vec<Option<(usize, IngestSummary)>> = vec![None; frames.len()];
        let mut which = Vec::new();
        let mut batches = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            if let Some(changes) = self
                .slots
                .get(&f.stream)
                .and_then(|s| s.session.as_ref())
                .and_then(|s| s.changes_to_ingest(&f.bytes))
            {
                which.push((i, changes.len(), *changes[0].doc()));
                batches.push(changes);
            }
        }
        if batches.len() > 1 {
            match self.replica.ingest_folded(batches) {
                Ok(summaries) => {
                    let mut changed = Vec::new();
                    for ((i, n, doc), s) in which.into_iter().zip(summaries) {
                        if s.accepted > 0 || s.cut_off {
                            changed.push((doc, Some(frames[i].at)));
                        }
                        ahead[i] = Some((n, s));
                    }
                    self.observe_frames(changed);
                }
                // Each session ingests its own again, and reports it.
                Err(e) => tracing::error!(error = %e, "ingesting frames together"),
            }
        }
        for (f, done) in frames.into_iter().zip(ahead) {
            self.handle_frame(f, done);
        }
        if let Some(changed) = self.folding.take() {
            self.observe_frames(changed);
        }
    }

    /// `Records` frames read together: the records of those their session
    /// takes in are admitted in one evaluation of the set (each frame
    /// checked alone), then each session handles its frame and is handed
    /// what became of its records. One evaluation costs as much as the
    /// whole set (35,000 records at ×10): a district fetching records from
    /// 130 hubs at once did little else than evaluate it again per frame.
    fn records_frames(&mut self, frames: Vec<Waiting>) {
        let mut ahead: Vec<Option<(usize, IngestSummary)>> = vec![None; frames.len()];
        let mut which = Vec::new();
        let mut batches = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            if let Some(records) = self
                .slots
                .get(&f.stream)
                .and_then(|s| s.session.as_ref())
                .and_then(|s| s.records_to_ingest(&f.bytes))
            {
                which.push((i, records.len()));
                batches.push(records);
            }
        }
        let before = self.replica.membership().len();
        let logged = self.replica.store().log_head();
        // The streams whose frames brought records in.
        let mut brought = Vec::new();
        let folded = batches.len() > 1;
        if folded {
            match self.replica.ingest_records_folded(batches) {
                Ok(summaries) => {
                    for ((i, n), s) in which.into_iter().zip(summaries) {
                        if s.accepted > 0 {
                            brought.push(frames[i].stream);
                        }
                        ahead[i] = Some((n, s));
                    }
                }
                // Each session ingests its own again, and reports it.
                Err(e) => tracing::error!(error = %e, "ingesting records frames together"),
            }
        }
        for (f, done) in frames.into_iter().zip(ahead) {
            self.prefolded_records = done;
            self.handle_frame(f, None);
            self.prefolded_records = None;
        }
        // Every session reconciles again to pass the new records on (a
        // revocation at once), but for the one that brought them, if one
        // alone did: the others' peers may lack what another's brought. (A
        // frame handled alone did this itself, in `Actor::input`.)
        if folded && self.replica.membership().len() > before {
            if brought.len() == 1 {
                self.resync_for_records(logged, &brought);
            } else {
                self.resync_for_records(logged, &[]);
            }
        }
    }

    /// The view told of documents changed by frames, then each frame's lag
    /// (from its read to now) recorded once.
    fn observe_frames(&mut self, changed: Vec<(DocId, Option<Instant>)>) {
        let mut docs: Vec<DocId> = changed.iter().map(|(d, _)| *d).collect();
        docs.sort();
        docs.dedup();
        self.observe(&docs);
        let mut arrivals: Vec<Instant> = changed.into_iter().filter_map(|(_, at)| at).collect();
        arrivals.sort();
        arrivals.dedup();
        for at in arrivals {
            self.lag(at.elapsed().as_secs_f64());
        }
    }

    /// One frame, `ahead`: what became of its changes if ingested already.
    fn handle_frame(&mut self, f: Waiting, ahead: Option<(usize, IngestSummary)>) {
        self.arrived = Some(f.at);
        self.prefolded = ahead;
        self.frame(f.stream, f.bytes);
        self.prefolded = None;
        self.arrived = None;
        drop(f.done);
    }
}
