//! What a node's sessions are fetching, so that one thing is fetched from
//! one peer at a time.
//!
//! A district node syncing from a hundred street hubs learns the same
//! certificates and the same district documents from every one of them.
//! Without coordination each session asks its own peer for all of it, and
//! the node receives it a hundred times. With a shared [`Fetches`], a
//! session *claims* a record or a document before asking for it; a session
//! that finds it claimed by another defers it, and asks again (by version
//! vector, so only what is still missing comes) once the other fetch ended.
//! A claim lasts until its answer arrives, its session is dropped, or its
//! lease ([`LEASE_SECS`]) runs out: then another session takes it over, so
//! a peer that never answers (or keeps its stream alive with chatter)
//! holds a fetch up for a lease at most. The host also wakes waiting
//! sessions on its timer, so a takeover needs no release.
//!
//! The same goes for the records set itself. A node that starts (or whose
//! sessions were all gone) and dials its hundred hubs at once would have
//! each of them list its thousands of certificates to it in full. So its
//! first records reconciliation is a turn ([`Fetch::RecordsTurn`]): one
//! session reconciles its records while the others wait, and once that one
//! is done (or [`TURN_LEASE_SECS`] after it began, whether done or not) all
//! the others reconcile theirs, against a set that now mostly agrees by
//! fingerprint.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use gongjian_identity::{DocId, Hash};

/// Something a session fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fetch {
    Record(Hash),
    Doc(DocId),
    /// The node's first records reconciliation (see the module's text).
    RecordsTurn,
}

/// Seconds after which another session may take a claim over.
pub const LEASE_SECS: u64 = 30;

/// Seconds after which the records turn ends even if its holder has not
/// finished: a slow or silent first peer delays the others by this much at
/// most.
pub const TURN_LEASE_SECS: u64 = 10;

#[derive(Debug, Default)]
struct State {
    /// What is being fetched, by which session, since when (Unix seconds).
    owners: HashMap<Fetch, (u64, u64)>,
    /// What some session wanted while another held it.
    contended: HashSet<Fetch>,
    /// A contended fetch ended since the last `take_released`.
    released: bool,
    next_session: u64,
    /// Sessions registered and not yet dropped.
    live: u64,
    /// A records reconciliation ended since the node's sessions were last
    /// all gone: the others need not wait their turn.
    turn_done: bool,
}

/// The fetches under way on one node, shared by its sessions (cheap to
/// clone: clones share the state).
#[derive(Debug, Clone, Default)]
pub struct Fetches(Arc<Mutex<State>>);

impl Fetches {
    pub fn new() -> Fetches {
        Fetches::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every
        // method leaves it whole before returning.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh owner id for a session.
    pub(crate) fn register(&self) -> u64 {
        let mut s = self.lock();
        s.next_session += 1;
        s.live += 1;
        s.next_session
    }

    /// Whether `session` may open its records reconciliation now: the turn
    /// is free (then it is this session's), its own, or over (done, or
    /// begun [`TURN_LEASE_SECS`] ago). A session refused is woken
    /// (`take_released`) when the turn ends, or asks again on the host's
    /// timer.
    pub(crate) fn take_turn(&self, session: u64, now: u64) -> bool {
        let mut s = self.lock();
        if s.turn_done {
            return true;
        }
        match s.owners.get(&Fetch::RecordsTurn) {
            Some(&(o, since)) if o != session => {
                if now < since.saturating_add(TURN_LEASE_SECS) {
                    s.contended.insert(Fetch::RecordsTurn);
                    return false;
                }
                drop(s);
                self.turn_done();
                true
            }
            Some(_) => true,
            None => {
                s.owners.insert(Fetch::RecordsTurn, (session, now));
                true
            }
        }
    }

    /// A records reconciliation ended (or the turn's lease did): no session
    /// waits for the turn any more, until every session is gone.
    pub(crate) fn turn_done(&self) {
        let mut s = self.lock();
        s.turn_done = true;
        s.owners.remove(&Fetch::RecordsTurn);
        if s.contended.remove(&Fetch::RecordsTurn) {
            s.released = true;
        }
    }

    /// Claims `what` for `session` at `now`: true if free, already its
    /// own, or held by another past its lease (taken over).
    pub(crate) fn claim(&self, what: Fetch, session: u64, now: u64) -> bool {
        let mut s = self.lock();
        match s.owners.get(&what) {
            Some(&(o, since)) if o != session && now < since.saturating_add(LEASE_SECS) => {
                s.contended.insert(what);
                false
            }
            Some(&(o, _)) if o == session => true,
            _ => {
                s.owners.insert(what, (session, now));
                true
            }
        }
    }

    /// Ends `session`'s fetch of `what`.
    pub(crate) fn release(&self, what: Fetch, session: u64) {
        let mut s = self.lock();
        if s.owners.get(&what).is_some_and(|(o, _)| *o == session) {
            s.owners.remove(&what);
            if s.contended.remove(&what) {
                s.released = true;
            }
        }
    }

    /// Ends every fetch of `session` (its session dropped). Once no
    /// session is left, the next ones take turns again.
    pub(crate) fn release_all(&self, session: u64) {
        let mut s = self.lock();
        s.live = s.live.saturating_sub(1);
        if s.live == 0 {
            s.turn_done = false;
        }
        let mine: Vec<Fetch> = s
            .owners
            .iter()
            .filter(|(_, (o, _))| *o == session)
            .map(|(f, _)| *f)
            .collect();
        for f in mine {
            s.owners.remove(&f);
            if s.contended.remove(&f) {
                s.released = true;
            }
        }
    }

    /// Whether a fetch another session waited for ended since the last
    /// call: the host then feeds `Input::Wake` to the sessions that
    /// [`Session::has_deferred`](crate::Session::has_deferred) work.
    pub fn take_released(&self) -> bool {
        std::mem::take(&mut self.lock().released)
    }

    /// Fetches under way.
    pub fn len(&self) -> usize {
        self.lock().owners.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_exclusive_until_released_and_contention_is_reported_once() {
        let f = Fetches::new();
        let (a, b) = (f.register(), f.register());
        let doc = Fetch::Doc(DocId(Hash([7; 32])));
        assert!(f.claim(doc, a, 100));
        assert!(f.claim(doc, a, 101), "a claim is idempotent for its owner");
        assert!(!f.claim(doc, b, 101));
        assert!(!f.take_released());
        f.release(doc, b); // not b's: nothing happens
        assert!(!f.claim(doc, b, 102));
        f.release(doc, a);
        assert!(f.take_released());
        assert!(!f.take_released(), "reported once");
        assert!(f.claim(doc, b, 103));
        let rec = Fetch::Record(Hash([1; 32]));
        assert!(f.claim(rec, b, 103));
        assert_eq!(f.len(), 2);
        f.release_all(b);
        assert!(f.is_empty());
        assert!(!f.take_released(), "nobody waited for these");
    }

    #[test]
    fn a_claim_past_its_lease_is_taken_over() {
        let f = Fetches::new();
        let (a, b) = (f.register(), f.register());
        let doc = Fetch::Doc(DocId(Hash([3; 32])));
        assert!(f.claim(doc, a, 1000));
        assert!(!f.claim(doc, b, 1000 + LEASE_SECS - 1));
        assert!(
            f.claim(doc, b, 1000 + LEASE_SECS),
            "a silent owner loses it"
        );
        f.release(doc, a); // the old owner's late answer: not its claim now
        assert!(!f.claim(doc, a, 1000 + LEASE_SECS), "b holds it");
        f.release(doc, b);
        assert!(f.is_empty());
    }

    #[test]
    fn the_records_turn_is_one_session_s_until_done_its_lease_ends_or_all_sessions_go() {
        let f = Fetches::new();
        let (a, b) = (f.register(), f.register());
        assert!(f.take_turn(a, 100));
        assert!(f.take_turn(a, 101), "its own");
        assert!(!f.take_turn(b, 101), "b waits");
        assert!(!f.take_released());
        f.turn_done();
        assert!(f.take_released(), "b is woken");
        assert!(f.take_turn(b, 102));
        assert!(f.is_empty(), "a turn done is no fetch");

        // A silent holder ends the turn for everyone after its lease.
        let f = Fetches::new();
        let (a, b, c) = (f.register(), f.register(), f.register());
        assert!(f.take_turn(a, 1000));
        assert!(!f.take_turn(b, 1000 + TURN_LEASE_SECS - 1));
        assert!(!f.take_turn(c, 1000 + TURN_LEASE_SECS - 1));
        assert!(f.take_turn(b, 1000 + TURN_LEASE_SECS));
        assert!(f.take_released(), "the waiters are woken");
        assert!(f.take_turn(c, 1000 + TURN_LEASE_SECS), "all of them");
        // Dropped, a holder passes the turn on at once.
        let f = Fetches::new();
        let (a, b, c) = (f.register(), f.register(), f.register());
        assert!(f.take_turn(b, 1000));
        assert!(!f.take_turn(c, 1000));
        f.release_all(b);
        assert!(f.take_released());
        assert!(f.take_turn(c, 1000));
        assert!(!f.take_turn(a, 1000), "c holds it now");
        f.turn_done();
        let d = f.register();
        assert!(f.take_turn(d, 2000), "done: nobody waits");
        // Every session gone: the next ones take turns again.
        for s in [a, c, d] {
            f.release_all(s);
        }
        let (g, h) = (f.register(), f.register());
        assert!(f.take_turn(g, 2000));
        assert!(!f.take_turn(h, 2000), "armed again once all were gone");
    }
}
