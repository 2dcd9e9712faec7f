//! The worker threads' side of a map: the shared queue of item ranges, the link to the rank's
//! main thread (events out, "go" in), and the worker loop.

use super::{Ctx, Item};
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};

/// What a worker tells its rank's main thread.
pub(super) enum Event {
    /// The work queue ran dry.
    Idle,
    /// Worker `w` wants the job-wide lock.
    Lock(u32),
    /// The lock holder is done.
    Unlock,
    /// Worker `w` wants to run item `i`'s ordered section.
    OrdWait(u64, u32),
    /// Item `i` has passed its ordered point (its section ran, or the item ended).
    Done(u64),
    /// Item `i` failed: hand out nothing after it.
    Failed(u64),
}

/// The queue of item ranges a rank's workers take from.
#[derive(Default)]
pub(super) struct Queue {
    pub(super) ranges: VecDeque<Range<usize>>,
    pub(super) closed: bool,
    pub(super) busy: usize,
    /// Lowest failed item seen on this rank: later items are skipped.
    pub(super) failed: Option<usize>,
}

/// What workers share.
pub(super) struct Shared {
    pub(super) queue: Mutex<Queue>,
    pub(super) ready: Condvar,
    /// Per worker: the main thread's "go" for a lock or an ordered turn.
    pub(super) wake: Vec<Mutex<Option<Receiver<()>>>>,
}

/// A worker's link to its main thread.
pub(super) struct Link {
    pub(super) events: Sender<Event>,
    pub(super) shared: Arc<Shared>,
    pub(super) worker: u32,
}

impl Link {
    /// Block until the main thread says go.
    pub(super) fn wait_go(&self) {
        let rx = self.shared.wake[self.worker as usize].lock().unwrap();
        // The main thread outlives every worker, so the sender is there.
        rx.as_ref().expect("wake channel").recv().expect("main thread gone");
    }
}

/// A worker thread: take ranges from the queue and run their items until the queue closes.
pub(super) fn worker<F>(link: Link, rank: usize, run: &F, results: &Mutex<Vec<(usize, Item)>>)
where
    F: Fn(&Ctx, usize) -> Item + Sync,
{
    let mut mine = Vec::new();
    loop {
        let range = {
            let mut q = link.shared.queue.lock().unwrap();
            loop {
                if let Some(r) = q.ranges.pop_front() {
                    q.busy += 1;
                    break Some((r, q.failed));
                }
                if q.closed {
                    break None;
                }
                let _ = link.events.send(Event::Idle);
                q = link.shared.ready.wait(q).unwrap();
            }
        };
        let Some((range, failed)) = range else { break };
        let mut failed = failed;
        for i in range {
            if failed.is_some_and(|f| i > f) {
                let _ = link.events.send(Event::Done(i as u64));
                continue;
            }
            let ctx = Ctx { index: i, rank, thread: link.worker as usize, link: Some(&link) };
            let out = run(&ctx, i);
            if out.is_err() {
                failed = Some(failed.map_or(i, |f| f.min(i)));
                let _ = link.events.send(Event::Failed(i as u64));
                let mut q = link.shared.queue.lock().unwrap();
                q.failed = Some(q.failed.map_or(i, |f| f.min(i)));
            }
            let _ = link.events.send(Event::Done(i as u64));
            mine.push((i, out));
        }
        link.shared.queue.lock().unwrap().busy -= 1;
        let _ = link.events.send(Event::Idle);
    }
    results.lock().unwrap().extend(mine);
}
