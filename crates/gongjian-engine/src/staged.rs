//! What one ingest call writes and builds, and how it gets there: its
//! writes staged and handed to the store's writer in parts, the documents
//! it builds handed to the rows hook (on a thread of the call's own in a
//! large call) and kept for the cache once the call is durable.

use automerge::Automerge;
use gongjian_identity::{DocId, Hash};
use gongjian_store::Batch;

use crate::error::EngineError;
use crate::replica::Replica;

/// What one ingest call writes and builds: every document's writes are
/// durable when the call returns (one fsync at the end, not one per
/// document); the documents built go to the cache once they are. A large
/// call hands its writes to the store's writer in parts as it goes
/// ([`Staged::hand_over`]), so the writer stores one part while the next
/// documents are judged; each document's writes stay in one part.
#[derive(Default)]
pub(crate) struct Staged {
    pub(crate) batch: Batch,
    docs: Kept,
    /// Parts handed to the writer, not yet waited for.
    pub(crate) handed: Vec<gongjian_store::Pending>,
    /// Where built documents go for their rows, in a large call.
    extractor: Option<Extractor>,
    /// A large call: the extractor is made for its first built document.
    extract_aside: bool,
}

/// Documents a call must build at least for their rows to be extracted on
/// a thread of their own ([`Extractor`]): below, a thread costs more than
/// it saves.
pub const EXTRACT_ON_WORKER_DOCS: usize = 8;

/// The thread that hands a large call's built documents to the
/// [`Replica::on_built`] hook (the view extracting their rows), so that
/// runs beside the judging and applying of the next documents on the
/// call's thread. It keeps the last documents for the cache, as
/// [`Staged::doc`] does; the call waits for it before it commits.
pub(crate) struct Extractor {
    tx: Option<std::sync::mpsc::SyncSender<ToExtract>>,
    done: Option<std::thread::JoinHandle<Kept>>,
    /// Set when the call unwinds: the documents still queued are not
    /// handed to the hook.
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// A built document for the extractor: its id, heads, the document, and
/// whether the hook wants it (its accepted set moved).
type ToExtract = (DocId, Vec<Hash>, Automerge, bool);
/// The documents the extractor kept for the cache.
type Kept = std::collections::VecDeque<(DocId, Automerge)>;

impl Extractor {
    /// Ends the thread once it handed over what it was sent.
    fn join(&mut self) -> Option<std::thread::Result<Kept>> {
        drop(self.tx.take());
        self.done.take().map(std::thread::JoinHandle::join)
    }
}

impl Drop for Extractor {
    /// A call unwinding (a panic on its thread) stops handing documents to
    /// the hook and waits for the one at hand: it never runs after the call.
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.join();
    }
}

/// Built documents waiting for the extractor at most (then the call's
/// thread waits): bounds the memory they hold.
const EXTRACT_QUEUE: usize = 64;

/// Writes staged from which they are handed to the store's writer before
/// the call ends: about a thousand changes (each change is three writes:
/// the change, its (doc, actor, seq) index entry, its quarantine entry
/// deleted).
pub const HAND_OVER_WRITES: usize = 3072;

impl Staged {
    /// For a call judging `documents`: a large one that builds them
    /// (`applying`) extracts their rows on a thread of its own.
    pub(crate) fn for_call(documents: usize, applying: bool) -> Staged {
        Staged {
            extract_aside: applying && documents >= EXTRACT_ON_WORKER_DOCS,
            ..Staged::default()
        }
    }

    /// Between two documents: hands what is staged (whole documents; those
    /// still being applied are staged later) to the store's writer, without
    /// waiting, once it holds [`HAND_OVER_WRITES`] writes. Written
    /// relaxed: the call's last commit syncs them
    /// ([`Replica::commit_staged`]). The documents of one call are
    /// independent (each reads and writes only its own keys), so none
    /// judged later depends on a part still being written.
    pub(crate) fn hand_over(&mut self, store: &gongjian_store::Store) -> Result<(), EngineError> {
        if self.batch.len() >= HAND_OVER_WRITES {
            let part = std::mem::take(&mut self.batch);
            self.handed
                .push(store.submit_with(part, gongjian_store::Durability::Relaxed)?);
        }
        Ok(())
    }

    /// The call unwinds: the documents queued for the rows thread are not
    /// handed to the hook any more.
    pub(crate) fn stop_extraction(&self) {
        if let Some(x) = &self.extractor {
            x.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Waits for the parts handed over, whatever became of them (a call
    /// that fails returns its own error).
    pub(crate) fn wait_handed(&mut self) {
        for part in self.handed.drain(..) {
            if let Err(e) = part.wait() {
                tracing::error!(error = %e, "a part of a failed ingest call was not written");
            }
        }
    }

    /// Waits for the extractor, if any, to hand every document to the hook;
    /// keeps what it kept for the cache. A panic of the hook there is one
    /// here, as it would have been without the thread.
    pub(crate) fn finish_extraction(&mut self, cap: usize) {
        let Some(mut x) = self.extractor.take() else {
            return;
        };
        match x.join() {
            Some(Ok(docs)) => {
                for (doc, am) in docs {
                    self.doc(doc, am, cap);
                }
            }
            Some(Err(panic)) => {
                // Nothing of the call is still being written either.
                self.wait_handed();
                std::panic::resume_unwind(panic)
            }
            None => {}
        }
    }

    /// Keeps a built document for the cache; only as many as the cache holds.
    pub(crate) fn doc(&mut self, doc: DocId, am: Automerge, cap: usize) {
        keep_last(&mut self.docs, doc, am, cap);
    }
}

/// Keeps the last `cap` documents built, for the cache.
fn keep_last(kept: &mut Kept, doc: DocId, am: Automerge, cap: usize) {
    kept.push_back((doc, am));
    while kept.len() > cap {
        kept.pop_front();
    }
}

impl Replica {
    /// A thread for the rows of a large call's documents, if a hook wants
    /// them and a thread can be made (else they are extracted here).
    fn extractor(&self) -> Option<Extractor> {
        let hook = self.built.clone()?;
        let trust = self.trust.clone();
        let cap = self.cache.cap().get();
        let (tx, rx) = std::sync::mpsc::sync_channel::<ToExtract>(EXTRACT_QUEUE);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let done = std::thread::Builder::new()
            .name("gongjian-rows".into())
            .spawn(move || {
                let mut kept = Kept::new();
                for (doc, heads, mut am, extract) in rx {
                    if extract && !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                        (*hook)(&trust, &doc, &heads, &mut am);
                    }
                    keep_last(&mut kept, doc, am, cap);
                }
                kept
            })
            .ok()?;
        Some(Extractor {
            tx: Some(tx),
            done: Some(done),
            stop,
        })
    }

    /// Hands a document this call built to the hook (`extract`: its
    /// accepted set moved), on the call's extractor if it has one, and keeps
    /// it for the cache.
    pub(crate) fn hand_built(
        &mut self,
        staged: &mut Staged,
        doc: DocId,
        heads: &[Hash],
        mut am: Automerge,
        extract: bool,
    ) {
        // Made for the first document whose rows it takes (a fast
        // document's were taken where it was applied).
        if extract && std::mem::take(&mut staged.extract_aside) {
            staged.extractor = self.extractor();
            if staged.extractor.is_some() {
                self.counters.extracted_aside += 1;
            }
        }
        if let Some(tx) = staged.extractor.as_ref().and_then(|x| x.tx.as_ref()) {
            if tx.send((doc, heads.to_vec(), am, extract)).is_err() {
                // The thread is gone: its hook panicked. The panic is
                // raised here, at this document, as the hook's own would
                // have been without the thread.
                staged.finish_extraction(self.cache.cap().get());
            }
            return;
        }
        if extract {
            self.call_built(&doc, heads, &mut am);
        }
        staged.doc(doc, am, self.cache.cap().get());
    }

    /// Calls the hook, if any, with a document built here.
    pub(crate) fn call_built(&self, doc: &DocId, heads: &[Hash], am: &mut Automerge) {
        if let Some(hook) = &self.built {
            (*hook)(&self.trust, doc, heads, am);
        }
    }

    /// Commits what documents staged (synced), then caches what they built.
    /// The parts handed over before ([`Staged::hand_over`]) are waited for
    /// too: the last part carries the call's durability, and a synced write
    /// syncs the log up to it, so the parts before it with it (an empty last
    /// part only asks for that sync).
    pub(crate) fn commit_staged(&mut self, staged: Staged) -> Result<(), EngineError> {
        if !staged.batch.is_empty() || !staged.handed.is_empty() {
            let mut parts = staged.handed;
            let mut first_error = None;
            match self.store.submit_with(staged.batch, self.durability) {
                Ok(last) => parts.push(last),
                Err(e) => first_error = Some(e),
            }
            // Every part is waited for, even after an error.
            for part in parts {
                if let Err(e) = part.wait() {
                    first_error.get_or_insert(e);
                }
            }
            if let Some(e) = first_error {
                return Err(e.into());
            }
        }
        for (doc, am) in staged.docs {
            self.cache.put(doc, am);
        }
        Ok(())
    }
}
