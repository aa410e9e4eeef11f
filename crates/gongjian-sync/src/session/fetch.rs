//! What a session asks its peer for: the documents that differ, fetched by
//! version vector a bounded number at a time, the records it lacks, and the
//! geneses of documents named that it cannot ask for yet; each claimed in
//! the node's shared fetches, so two sessions do not fetch the same thing.

use std::collections::BTreeSet;

use gongjian_identity::{DocId, Hash};

use super::{MAX_GENESES_ASKED, MAX_WANTS_IN_FLIGHT, Output, Session};
use crate::fetches::Fetch;
use crate::host::Host;
use crate::message::{MAX_LIST, Message};
use crate::want::want_list;

impl Session {
    pub(super) fn claim(&self, what: Fetch) -> bool {
        self.fetches
            .as_ref()
            .is_none_or(|(f, id)| f.claim(what, *id, self.now))
    }

    pub(super) fn release(&self, what: Fetch) {
        if let Some((f, id)) = &self.fetches {
            f.release(what, *id);
        }
    }

    /// Asks the peer for `hashes`, in messages of at most `MAX_LIST`.
    pub(super) fn want_records(&mut self, hashes: Vec<Hash>, out: &mut Vec<Output>) {
        for chunk in hashes.chunks(MAX_LIST) {
            self.records_awaited += 1;
            self.records_asked.push_back(chunk.to_vec());
            out.push(Output::Send(Message::WantRecords {
                hashes: chunk.to_vec(),
            }));
        }
    }

    /// Whether `doc` is being fetched or waits to be (in flight, queued or
    /// deferred behind another session's fetch).
    pub(super) fn fetching(&self, doc: &DocId) -> bool {
        self.in_flight.contains(doc)
            || self.queued.contains(doc)
            || self.deferred_docs.contains(doc)
    }

    /// Fetches `doc` again, even if fetched earlier in this session (it
    /// moved since), unless it is being fetched.
    pub(super) fn fetch_again(&mut self, doc: DocId) {
        if !self.fetching(&doc) {
            self.wanted.remove(&doc);
            self.enqueue(doc);
        }
    }

    pub(super) fn enqueue(&mut self, doc: DocId) {
        if self.wanted.insert(doc) && self.queued.insert(doc) {
            self.queue.push_back(doc);
        }
    }

    /// Asks for the genesis records of `docs`, documents the peer named
    /// that this node cannot ask for, by their ids (the records' hashes).
    /// Whether this node holds the record does not matter (a held one
    /// comes again and is skipped): what it holds of documents the peer
    /// may not see never shows in what it asks.
    pub(super) fn want_geneses(&mut self, docs: Vec<DocId>, out: &mut Vec<Output>) {
        let mut ask = Vec::new();
        for doc in docs {
            if self.geneses_asked.len() >= MAX_GENESES_ASKED {
                break; // the rest wait for the next round
            }
            if !self.geneses_asked.insert(doc) {
                continue; // asked already
            }
            if self.claim(Fetch::Record(doc.0)) {
                ask.push(doc.0);
            } else {
                self.deferred_records.insert(doc.0);
            }
        }
        self.want_records(ask, out);
    }

    /// `hashes` were answered (or came from another peer): the documents
    /// among them waiting on their genesis are fetched if they can be now,
    /// else let go. Only the answered hashes are looked at.
    pub(super) fn geneses_answered<H: Host>(
        &mut self,
        host: &mut H,
        hashes: &[Hash],
    ) -> Result<(), H::Error> {
        if self.geneses_asked.is_empty() {
            return Ok(());
        }
        for h in hashes {
            let doc = DocId(*h);
            if self.geneses_asked.remove(&doc) && host.visible(&doc, &self.peer)? {
                self.fetch_again(doc);
            }
        }
        Ok(())
    }

    /// Sends wants up to the in-flight bound. What another session is
    /// fetching waits (deferred); woken (such a fetch ended), it is asked
    /// for again once this session's own asks are answered.
    pub(super) fn pump<H: Host>(
        &mut self,
        host: &mut H,
        out: &mut Vec<Output>,
    ) -> Result<(), H::Error> {
        if self.retry_records && self.records_awaited == 0 {
            self.retry_records = false;
            let mut ask = Vec::new();
            let mut came = Vec::new();
            for h in std::mem::take(&mut self.deferred_records) {
                // A genesis asked for counts as come only once its document
                // can be asked for: whether the record is held must not
                // change what is asked (the peer may not see it).
                let here = if self.geneses_asked.contains(&DocId(h)) {
                    host.visible(&DocId(h), &self.peer)?
                } else {
                    host.has_record(&h)?
                };
                if here {
                    came.push(h); // it came from the other peer
                    continue;
                }
                if self.claim(Fetch::Record(h)) {
                    ask.push(h);
                } else {
                    self.deferred_records.insert(h);
                }
            }
            self.want_records(ask, out);
            self.geneses_answered(host, &came)?;
        }
        if self.retry_docs && self.queue.is_empty() {
            self.retry_docs = false;
            // Asked by version vector, so only what the other peer did not
            // bring comes.
            for doc in std::mem::take(&mut self.deferred_docs) {
                if self.queued.insert(doc) {
                    self.queue.push_back(doc);
                }
            }
        }
        let mut deferred = BTreeSet::new();
        while self.in_flight.len() < MAX_WANTS_IN_FLIGHT {
            let Some(doc) = self.queue.pop_front() else {
                break;
            };
            self.queued.remove(&doc);
            if !self.claim(Fetch::Doc(doc)) {
                deferred.insert(doc);
                continue;
            }
            let have = want_list(host, &doc)?;
            self.in_flight.insert(doc);
            if self.progress.pending.insert(doc) {
                out.push(Output::Progress(self.progress.clone()));
            }
            out.push(Output::Send(Message::Want { doc, have }));
        }
        self.deferred_docs.extend(deferred);
        Ok(())
    }
}
