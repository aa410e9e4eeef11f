//! The feed (PROTOCOL.md §8.6): each side first asks what the peer's
//! accept log took in since this node's place in it, and once a sync ended
//! each tells the other where its log stands (`Mark`).

use super::{Output, Role, Session};
use crate::batch::{causal_order, edge_signed_batches};
use crate::host::Host;
use crate::message::{MAX_LIST, Message};
use crate::session::MAX_RECORDS_BYTES;

/// Bytes of changes and records a feed brings at most: a sender stops
/// adding to its feed past half of it; more is misbehaviour.
pub const MAX_FEED_BYTES: usize = 16 << 20;
/// `FeedRecords` and `FeedChanges` messages a feed brings at most: a
/// sender stops at half of it; more is misbehaviour.
pub const MAX_FEED_MESSAGES: usize = 8192;
/// `FeedRecords` messages a feed brings at most (each is one evaluation of
/// the membership; a sender sends at most four): more is misbehaviour.
pub const MAX_FEED_RECORDS_MESSAGES: usize = 4;

/// A session's feeds each way and marks.
#[derive(Debug, Default)]
pub(crate) struct FeedState {
    /// This session's `Feed` was sent and the peer's `FeedEnd` not yet
    /// received: `FeedChanges` and `FeedRecords` are taken in meanwhile.
    pub(super) open: bool,
    /// Bytes of changes and records the feed brought so far, messages, and
    /// `FeedRecords` messages.
    bytes: usize,
    messages: usize,
    records_messages: usize,
    /// The peer's `Feed` was answered (once a session).
    pub(super) answered: bool,
    /// This session's `Feed` was sent (once a session, at its first start).
    asked: bool,
    /// The initiator opens its first reconciliation once both feeds are
    /// through, so each side's set holds what the other's feed brought.
    pub(super) open_after: bool,
    /// The peer's last `Mark`, until this side's documents reconciliation
    /// has ended and nothing is awaited: then it becomes `progress.log`.
    peer_mark: Option<([u8; 8], u64)>,
    /// The documents reconciliation under way ended on this side.
    docs_ended: bool,
    /// The peer's `Mark` of the documents reconciliation under way came
    /// (one is taken each; others are ignored).
    mark_taken: bool,
    /// This side's `Mark` is sent once nothing is awaited.
    mark_due: bool,
}

impl FeedState {
    /// Whether a feed's changes (or, `records`, its records) of `bytes`
    /// are taken in now: the feed is open and stays under its caps.
    pub(crate) fn takes(&self, bytes: usize, records: bool) -> bool {
        self.open
            && self.bytes.saturating_add(bytes) <= MAX_FEED_BYTES
            && self.messages < MAX_FEED_MESSAGES
            && (!records || self.records_messages < MAX_FEED_RECORDS_MESSAGES)
    }

    /// Whether the session waits for its peer's feed.
    pub(super) fn awaits_peer(&self) -> bool {
        self.open || self.open_after
    }

    /// The peer's `Mark`: one is taken a reconciliation, so a peer sending
    /// marks on and on does not make this node write its progress for each.
    fn take_mark(&mut self, log: [u8; 8], at: u64) {
        if !std::mem::replace(&mut self.mark_taken, true) {
            self.peer_mark = Some((log, at));
        }
    }

    /// A documents reconciliation opens: its end, and its marks, are ahead.
    pub(super) fn docs_opened(&mut self) {
        self.docs_ended = false;
        self.mark_due = false;
        self.mark_taken = false;
    }
}

impl Session {
    /// Whether a feed's changes (or, `records`, its records) of `bytes`
    /// are taken in now (what the fold ingests ahead, `fold.rs`).
    pub(crate) fn takes_feed(&self, bytes: usize, records: bool) -> bool {
        self.feed.takes(bytes, records)
    }

    /// At the session's first start, asks the peer's feed from this node's
    /// place in its log; the initiator reconciles once both feeds are
    /// through. Whether the first reconciliation waits for them.
    pub(super) fn ask_feed<H: Host>(
        &mut self,
        host: &mut H,
        out: &mut Vec<Output>,
    ) -> Result<bool, H::Error> {
        if self.feed.open_after {
            return Ok(true);
        }
        if std::mem::replace(&mut self.feed.asked, true) {
            return Ok(false);
        }
        self.feed.open = true;
        out.push(Output::Send(Message::Feed {
            from: self.progress.log,
        }));
        self.feed.open_after = self.role == Role::Initiator;
        self.open_if_fed(host, out)?;
        Ok(true)
    }

    /// Opens the initiator's first reconciliation once its feed came and
    /// the peer's was answered.
    fn open_if_fed<H: Host>(
        &mut self,
        host: &mut H,
        out: &mut Vec<Output>,
    ) -> Result<(), H::Error> {
        if self.feed.open_after && !self.feed.open && self.feed.answered {
            self.feed.open_after = false;
            self.open_records(host, out)?;
        }
        Ok(())
    }

    /// Once the documents reconciliation ended on this side and nothing is
    /// awaited (what it brought is fetched), the peer is told where this
    /// node's accept log stands (`Mark`): everything logged up to there was
    /// in the sets just reconciled, or came from the peer, or was told to
    /// the peer by `Notify` (its documents' changes accepted meanwhile).
    /// And the peer's mark becomes this node's place in its log: what was
    /// reconciled, and what the peer announced before its mark, is here
    /// (or was refused here). PROTOCOL.md §8.6.
    pub(super) fn marks<H: Host>(
        &mut self,
        host: &mut H,
        out: &mut Vec<Output>,
    ) -> Result<(), H::Error> {
        if !self.feed.docs_ended || !self.quiet() {
            return Ok(());
        }
        if std::mem::replace(&mut self.feed.mark_due, false)
            && let Some((log, at)) = host.log_position()?
        {
            out.push(Output::Send(Message::Mark { log, at }));
        }
        if let Some(mark) = self.feed.peer_mark.take()
            && self.progress.log != Some(mark)
        {
            self.progress.log = Some(mark);
            out.push(Output::Progress(self.progress.clone()));
        }
        Ok(())
    }

    /// The documents reconciliation ended on this side.
    pub(super) fn docs_reconciled(&mut self) {
        self.feed.docs_ended = true;
        self.feed.mark_due = true;
    }

    /// Answers the peer's `Feed`: what this node's accept log took in after
    /// the peer's place in it, that the peer may see, records first, then
    /// `FeedEnd`. A sender stops adding past half of [`MAX_FEED_BYTES`]
    /// (the reconciliation that follows brings the rest).
    fn answer_feed<H: Host>(
        &mut self,
        host: &mut H,
        from: Option<([u8; 8], u64)>,
        out: &mut Vec<Output>,
    ) -> Result<(), H::Error> {
        let budget = MAX_FEED_BYTES / 2;
        let feed = match from {
            Some((log, since)) => host.feed(log, since, &self.peer, budget)?,
            None => None,
        };
        let mut bytes = 0usize;
        let mut messages = 0usize;
        if let Some(feed) = feed {
            let mut batch = Vec::new();
            let mut batch_bytes = 0;
            for r in feed.records {
                if bytes + r.len() > budget {
                    break;
                }
                if batch.len() == MAX_LIST || batch_bytes + r.len() > MAX_RECORDS_BYTES {
                    if messages + 1 >= MAX_FEED_RECORDS_MESSAGES {
                        break; // the last one goes below
                    }
                    out.push(Output::Send(Message::FeedRecords {
                        records: std::mem::take(&mut batch),
                    }));
                    messages += 1;
                    batch_bytes = 0;
                }
                bytes += r.len();
                batch_bytes += r.len();
                batch.push(r);
            }
            if !batch.is_empty() {
                out.push(Output::Send(Message::FeedRecords { records: batch }));
                messages += 1;
            }
            'docs: for (doc, groups) in feed.docs {
                for group in groups {
                    let answer = edge_signed_batches(causal_order(group), self.limits);
                    for b in answer.batches {
                        let size: usize = b.iter().map(Vec::len).sum();
                        if bytes + size > budget || messages >= MAX_FEED_MESSAGES / 2 {
                            break 'docs;
                        }
                        bytes += size;
                        messages += 1;
                        self.stats.changes_sent += b.len() as u64;
                        out.push(Output::Send(Message::FeedChanges { doc, changes: b }));
                    }
                }
            }
        }
        out.push(Output::Send(Message::FeedEnd));
        Ok(())
    }

    /// A feed message from the peer (`Feed`, `FeedRecords`, `FeedChanges`,
    /// `FeedEnd`, `Mark`).
    pub(super) fn on_feed_message<H: Host>(
        &mut self,
        host: &mut H,
        msg: Message,
        out: &mut Vec<Output>,
    ) -> Result<(), H::Error> {
        match msg {
            Message::Feed { from } => {
                // Once a session: a second (a duplicate) is ignored.
                if std::mem::replace(&mut self.feed.answered, true) {
                    return Ok(());
                }
                self.answer_feed(host, from, out)?;
                self.open_if_fed(host, out)?;
            }
            Message::FeedRecords { records } => {
                if !self.admit_feed(records.iter().map(Vec::len).sum(), true, out)
                    || records.is_empty()
                {
                    return Ok(());
                }
                let n = records.len() as u64;
                let s = host.ingest_records(records)?;
                self.stats.records_received += n;
                if s.invalid > 0 {
                    self.misbehaved(out, format!("{} invalid records in a feed", s.invalid));
                }
            }
            Message::FeedChanges { doc, changes } => {
                if !self.admit_feed(changes.iter().map(Vec::len).sum(), false, out) {
                    return Ok(());
                }
                self.take_changes(host, doc, &changes, out)?;
            }
            Message::FeedEnd => {
                // One a session; another (a duplicate) changes nothing.
                self.feed.open = false;
                self.open_if_fed(host, out)?;
            }
            Message::Mark { log, at } => {
                self.feed.take_mark(log, at);
            }
            _ => {}
        }
        Ok(())
    }

    /// Counts a feed message of `bytes` (`records`: a `FeedRecords`) in, or
    /// refuses it, unread: past the caps (misbehaviour), or after the
    /// feed's end (a duplicate; the reconciliation brings what is missing).
    fn admit_feed(&mut self, bytes: usize, records: bool, out: &mut Vec<Output>) -> bool {
        if self.feed.takes(bytes, records) {
            self.feed.bytes += bytes;
            self.feed.messages += 1;
            self.feed.records_messages += usize::from(records);
            return true;
        }
        if self.feed.open {
            let why = format!(
                "a feed of more than {MAX_FEED_BYTES} bytes, {MAX_FEED_MESSAGES} messages or {MAX_FEED_RECORDS_MESSAGES} of records ({} + {bytes} bytes, {} messages, {} of records)",
                self.feed.bytes, self.feed.messages, self.feed.records_messages
            );
            self.misbehaved(out, why);
        }
        false
    }
}
