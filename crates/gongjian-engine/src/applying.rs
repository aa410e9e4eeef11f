//! A call's fast documents applied beside their judging: the call's thread
//! judges each document (rules 1-7) and stages it, in document order; the
//! application between (rule 8: automerge, then the rows hook) goes to a
//! worker thread of the call's own while it is short of work, and is done
//! on the call's thread otherwise. So both cores apply while the call's
//! thread also judges, stages and commits.
//!
//! Each document reads only its own keys, so where it is applied changes
//! nothing of its verdicts; the results are staged in the order the
//! documents were judged.

use std::collections::{BTreeMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use gongjian_identity::SignedChange;
use gongjian_store::Store;

use crate::error::EngineError;
use crate::fast::{self, FastApply, Hook, apply_fast};

/// A document judged by the fast path, with its new changes.
pub(crate) type Job = (FastApply, Vec<(usize, SignedChange)>);
/// A job applied: the document built, or `None` if automerge refused a
/// change (the whole rule must run).
pub(crate) type Applied = (Job, Result<Option<fast::Applied>, EngineError>);

/// Changes the fast documents of a call must weigh, judged and not yet
/// applied, before a worker thread is made for them. Applying a change
/// costs some 30 µs, a thread some 50 µs, but more in a busy daemon: the
/// small calls of a sync (a fold of a dozen frames of a few changes each)
/// ran no faster shared, and cost the node more CPU.
pub const APPLY_ON_TWO_CORES: usize = 64;

/// Changes the worker is given ahead at most (queued or being applied);
/// past that the call's thread applies the next document itself.
const WORKER_AHEAD: usize = 96;

/// What the call's thread and its worker share.
#[derive(Default)]
pub(crate) struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// No more documents are applied: the worker's hook panicked, or the
    /// call's thread is unwinding.
    stop: AtomicBool,
}

#[derive(Default)]
struct State {
    /// Documents for the worker, each with its place in the call.
    queue: VecDeque<(u64, Job)>,
    /// Changes given to the worker and not yet applied.
    ahead: usize,
    /// What the worker applied, not yet taken by the call's thread.
    done: Vec<(u64, Applied)>,
    /// No more documents come: the worker ends when the queue is empty.
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends the worker: at once (`stop`) or once the queue is empty.
    pub(crate) fn close(&self, stop: bool) {
        if stop {
            self.stop.store(true, Ordering::Relaxed);
        }
        self.lock().closed = true;
        self.wake.notify_all();
    }

    /// The worker's loop: documents from the queue, applied, until it is
    /// closed and empty. A panic of the hook stops the call's documents
    /// and reaches the call's thread when it joins this one.
    pub(crate) fn work(&self, store: &Store, hook: Hook<'_>) {
        loop {
            let (at, mut job) = {
                let mut state = self.lock();
                loop {
                    if self.stop.load(Ordering::Relaxed) {
                        return;
                    }
                    if let Some(next) = state.queue.pop_front() {
                        break next;
                    }
                    if state.closed {
                        return;
                    }
                    state = self.wake.wait(state).unwrap_or_else(|e| e.into_inner());
                }
            };
            let weight = job.0.weight();
            let applied = std::panic::catch_unwind(AssertUnwindSafe(|| {
                apply_fast(&mut job.0, &job.1, store, hook)
            }));
            match applied {
                Ok(result) => {
                    let mut state = self.lock();
                    state.ahead -= weight;
                    state.done.push((at, (job, result)));
                }
                Err(panic) => {
                    // `close` takes the lock after setting it: the call's
                    // thread, waiting or about to, sees it.
                    self.close(true);
                    std::panic::resume_unwind(panic)
                }
            }
            self.wake.notify_all();
        }
    }
}

/// The call's side: documents handed out in order, their results taken
/// back in that order.
pub(crate) struct Applying<'a> {
    shared: &'a Shared,
    store: &'a Store,
    hook: Hook<'a>,
    /// Who applies the documents judged.
    mode: Mode,
    /// The place the next document judged gets.
    next: u64,
    /// The place of the next result to stage.
    staged: u64,
    /// Results by place, waiting for the ones before them.
    ready: BTreeMap<u64, Applied>,
    /// Documents judged while no worker was made, applied here when one
    /// must be staged.
    held: VecDeque<(u64, Job)>,
    /// Documents the worker applied this call.
    pub(crate) by_worker: u64,
}

impl<'a> Applying<'a> {
    pub(crate) fn new(shared: &'a Shared, store: &'a Store, hook: Hook<'a>) -> Applying<'a> {
        Applying {
            shared,
            store,
            hook,
            mode: if gongjian_identity::two_cores() {
                Mode::Holding
            } else {
                Mode::Alone
            },
            next: 0,
            staged: 0,
            ready: BTreeMap::new(),
            held: VecDeque::new(),
            by_worker: 0,
        }
    }

    /// Whether a worker should be made now: two documents or more judged
    /// and not applied, weighing enough together, on a machine with a
    /// second core.
    pub(crate) fn wants_worker(&self) -> bool {
        self.mode == Mode::Holding
            && self.held.len() >= 2
            && self
                .held
                .iter()
                .map(|(_, job)| job.0.weight())
                .sum::<usize>()
                >= APPLY_ON_TWO_CORES
    }

    /// Whether the worker asked for was made (`made`): the documents held
    /// go to it; else they are applied here, and every one after at once.
    pub(crate) fn worker_started(&mut self, made: bool) {
        if !made {
            self.mode = Mode::Alone;
            while let Some((at, job)) = self.held.pop_front() {
                self.apply_here(at, job);
            }
            return;
        }
        self.mode = Mode::Worker;
        let mut state = self.shared.lock();
        for (at, job) in self.held.drain(..) {
            state.ahead += job.0.weight();
            state.queue.push_back((at, job));
        }
        drop(state);
        self.shared.wake.notify_all();
    }

    /// A document judged: to the worker if it is short of work, else
    /// applied here (held, before a worker is made). Dropped once the
    /// worker stopped: nothing after is staged.
    pub(crate) fn push(&mut self, job: Job) {
        let at = self.next;
        self.next += 1;
        match self.mode {
            Mode::Alone => return self.apply_here(at, job),
            Mode::Holding => return self.held.push_back((at, job)),
            Mode::Worker if self.shared.stop.load(Ordering::Relaxed) => return,
            Mode::Worker => {}
        }
        let mut state = self.shared.lock();
        if state.ahead < WORKER_AHEAD {
            state.ahead += job.0.weight();
            state.queue.push_back((at, job));
            drop(state);
            self.shared.wake.notify_all();
            return;
        }
        drop(state);
        self.apply_here(at, job);
    }

    fn apply_here(&mut self, at: u64, mut job: Job) {
        let result = apply_fast(&mut job.0, &job.1, self.store, self.hook);
        self.ready.insert(at, (job, result));
    }

    /// Takes what the worker applied.
    fn collect(&mut self, state: &mut State) {
        for (at, applied) in state.done.drain(..) {
            self.by_worker += 1;
            self.ready.insert(at, applied);
        }
    }

    /// The results ready to stage, in order, without waiting. `Err` if the
    /// worker stopped (its hook panicked): the caller judges no more and
    /// joins it for the panic.
    pub(crate) fn ready(&mut self) -> Result<Vec<Applied>, Stopped> {
        if self.mode == Mode::Worker {
            let mut state = self.shared.lock();
            if self.shared.stop.load(Ordering::Relaxed) {
                return Err(Stopped);
            }
            self.collect(&mut state);
        }
        Ok(self.in_order())
    }

    fn in_order(&mut self) -> Vec<Applied> {
        let mut out = Vec::new();
        while let Some(applied) = self.ready.remove(&self.staged) {
            out.push(applied);
            self.staged += 1;
        }
        out
    }

    /// Every document judged so far applied, results in order: those held
    /// applied here, the worker's waited for (the call's thread takes the
    /// last of its queue meanwhile, leaving it the first). `Err` if the
    /// worker stopped (its hook panicked): the caller joins it for the panic.
    pub(crate) fn drain(&mut self) -> Result<Vec<Applied>, Stopped> {
        while let Some((at, job)) = self.held.pop_front() {
            self.apply_here(at, job);
        }
        if self.mode == Mode::Worker {
            loop {
                let mut state = self.shared.lock();
                self.collect(&mut state);
                if self.shared.stop.load(Ordering::Relaxed) {
                    return Err(Stopped);
                }
                if self.ready.len() as u64 == self.next - self.staged {
                    break;
                }
                if state.queue.len() >= 2 {
                    let (at, job) = state.queue.pop_back().expect("two queued");
                    state.ahead -= job.0.weight();
                    drop(state);
                    self.apply_here(at, job);
                    continue;
                }
                drop(
                    self.shared
                        .wake
                        .wait(state)
                        .unwrap_or_else(|e| e.into_inner()),
                );
            }
        }
        Ok(self.in_order())
    }
}

/// The worker stopped: its hook panicked.
pub(crate) struct Stopped;

/// Who applies a call's documents.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// No worker yet: documents are held until they weigh enough to make
    /// one, or must be staged.
    Holding,
    /// A worker takes documents while it is short of work.
    Worker,
    /// No worker (one core, or none could be made): each document is
    /// applied here as it is judged.
    Alone,
}
