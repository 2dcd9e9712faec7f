//! The scheduler behind [`super::parallelize_with`]: worker threads on every rank, and on every
//! rank's main thread an event loop that feeds them.
//!
//! Only the main thread talks MPI (Open MPI gives us `Funneled`): workers ask it for work,
//! locks and ordered turns through a channel. Rank 0's loop is also the job's dispatcher, lock
//! server and ordered-section sequencer, while its own workers compute like everyone else's:
//! no rank is spent on dispatching. The dynamic schedule hands out fixed chunks; the guided one
//! chunks of remaining ÷ (2 × workers), at least `chunk`, so early chunks are big (little
//! traffic) and the last ones small (a slow item does not hold up the end).

use super::worker::{worker, Event, Link, Queue, Shared};
use super::{Ctx, Item, Schedule};
use crate::comm::Comm;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Range;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

const TAG_REQ: u16 = 7101;
const TAG_GRANT: u16 = 7102;
const TAG_FIN: u16 = 7103;
const TAG_LOCK: u16 = 7104;
const TAG_LOCKED: u16 = 7105;
const TAG_UNLOCK: u16 = 7106;
const TAG_ORD_WAIT: u16 = 7107;
const TAG_ORD_GO: u16 = 7108;
const TAG_DONE: u16 = 7109;

/// How long the main thread waits for its workers before it looks for MPI messages again.
const POLL: Duration = Duration::from_micros(200);

/// Run `run(ctx, i)` for every item `0..n` over all ranks; returns this rank's (index, outcome)
/// pairs. Collective.
pub(super) fn run<F>(comm: &dyn Comm, n: usize, schedule: Schedule, threads: usize, bar: Option<crate::progress::Progress>, run: F) -> Vec<(usize, Item)>
where
    F: Fn(&Ctx, usize) -> Item + Sync,
{
    let (rank, size) = (comm.rank(), comm.size());
    let threads = threads.max(1);
    let (events, rx) = channel();
    let mut go: Vec<Sender<()>> = Vec::new();
    let mut wake = Vec::new();
    for _ in 0..threads {
        let (tx, r) = channel();
        go.push(tx);
        wake.push(Mutex::new(Some(r)));
    }
    let shared = Arc::new(Shared { queue: Mutex::new(Queue::default()), ready: Condvar::new(), wake });
    let results = Mutex::new(Vec::new());
    let workers_total = (size * threads) as u64;
    std::thread::scope(|s| {
        for w in 0..threads {
            let link = Link { events: events.clone(), shared: shared.clone(), worker: w as u32 };
            let (run, results) = (&run, &results);
            s.spawn(move || worker(link, rank, run, results));
        }
        drop(events);
        let mut main = Main {
            comm,
            rank,
            size,
            n,
            shared: &shared,
            go: &go,
            schedule,
            next: 0,
            exhausted: false,
            requested: false,
            failed: None,
            fins: 0,
            holder: None,
            lock_queue: VecDeque::new(),
            ord_next: 0,
            passed: BTreeSet::new(),
            ord_waiting: BTreeMap::new(),
            done_out: Vec::new(),
            done_sent: 0,
            done_got: vec![0; size],
            workers_total,
            threads,
            bar,
            seen: vec![0; if comm.rank() == 0 { n.div_ceil(64) } else { 0 }],
            completed: 0,
        };
        if let Schedule::Static = schedule {
            // A contiguous block per rank, in chunks the rank's threads share.
            let (lo, hi) = (n * rank / size, n * (rank + 1) / size);
            let per = (hi - lo).div_ceil(threads * 4).max(1);
            let mut q = shared.queue.lock().unwrap();
            q.ranges.extend((lo..hi).step_by(per).map(|a| a..(a + per).min(hi)));
            drop(q);
            shared.ready.notify_all();
            main.exhausted = true;
        }
        main.event_loop(&rx);
    });
    results.into_inner().unwrap()
}

/// A rank's main thread during a map.
struct Main<'a> {
    comm: &'a dyn Comm,
    rank: usize,
    size: usize,
    n: usize,
    shared: &'a Arc<Shared>,
    go: &'a [Sender<()>],
    schedule: Schedule,
    /// Rank 0: the first item not yet handed out.
    next: usize,
    /// No more work will come to this rank.
    exhausted: bool,
    /// A request to rank 0 is outstanding.
    requested: bool,
    /// Lowest failed item known here.
    failed: Option<u64>,
    /// Rank 0: ranks that finished.
    fins: usize,
    /// Rank 0: who holds the job-wide lock, and who waits for it.
    holder: Option<(usize, u32)>,
    lock_queue: VecDeque<(usize, u32)>,
    /// Rank 0: the first item whose ordered point has not passed; items past it that have.
    ord_next: u64,
    passed: BTreeSet<u64>,
    ord_waiting: BTreeMap<u64, (usize, u32)>,
    /// Other ranks: items passed, to tell rank 0, and how many DONE messages were sent.
    done_out: Vec<u64>,
    done_sent: u64,
    /// Rank 0: DONE messages received from each rank.
    done_got: Vec<u64>,
    workers_total: u64,
    /// Worker threads on this rank.
    threads: usize,
    /// Rank 0: the progress line, the items seen done (a bit each) and how many.
    bar: Option<crate::progress::Progress>,
    seen: Vec<u64>,
    completed: u64,
}

impl Main<'_> {
    fn event_loop(&mut self, rx: &Receiver<Event>) {
        loop {
            match rx.recv_timeout(POLL) {
                Ok(e) => self.on_event(e),
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {}
            }
            while let Ok(e) = rx.try_recv() {
                self.on_event(e);
            }
            if self.size > 1 {
                self.on_messages();
            }
            self.refill();
            if self.finished(rx) {
                break;
            }
        }
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::Idle => {}
            Event::Lock(w) => self.lock(self.rank, w),
            Event::Unlock => self.unlock(),
            Event::OrdWait(i, w) => self.ord_wait(i, self.rank, w),
            Event::Done(i) => self.done(i),
            Event::Failed(i) => self.failed = Some(self.failed.map_or(i, |f| f.min(i))),
        }
    }

    /// Rank 0 serves; the others forward to it.
    fn lock(&mut self, rank: usize, w: u32) {
        if self.rank != 0 {
            return self.comm.send_bytes(0, TAG_LOCK, &w.to_le_bytes());
        }
        if self.holder.is_none() {
            self.holder = Some((rank, w));
            self.grant(rank, w, TAG_LOCKED);
        } else {
            self.lock_queue.push_back((rank, w));
        }
    }

    fn unlock(&mut self) {
        if self.rank != 0 {
            return self.comm.send_bytes(0, TAG_UNLOCK, &[]);
        }
        self.holder = self.lock_queue.pop_front();
        if let Some((r, w)) = self.holder {
            self.grant(r, w, TAG_LOCKED);
        }
    }

    fn ord_wait(&mut self, i: u64, rank: usize, w: u32) {
        if self.rank != 0 {
            self.flush_done();
            let msg: Vec<u8> = i.to_le_bytes().into_iter().chain(w.to_le_bytes()).collect();
            return self.comm.send_bytes(0, TAG_ORD_WAIT, &msg);
        }
        if i == self.ord_next {
            self.grant(rank, w, TAG_ORD_GO);
        } else {
            self.ord_waiting.insert(i, (rank, w));
        }
    }

    fn done(&mut self, i: u64) {
        if self.rank != 0 {
            self.done_out.push(i);
            return;
        }
        // Progress: items passed once (an item with an ordered section reports twice).
        let (word, bit) = ((i / 64) as usize, 1u64 << (i % 64));
        if self.seen.get(word).is_some_and(|w| w & bit == 0) {
            self.seen[word] |= bit;
            self.completed += 1;
            if let Some(bar) = self.bar.as_mut() {
                bar.items_done(self.completed);
            }
        }
        if i >= self.ord_next {
            self.passed.insert(i);
        }
        while self.passed.remove(&self.ord_next) {
            self.ord_next += 1;
        }
        if let Some((r, w)) = self.ord_waiting.remove(&self.ord_next) {
            self.grant(r, w, TAG_ORD_GO);
        }
    }

    /// Rank 0: tell worker `w` of `rank` to go (its lock or its ordered turn).
    fn grant(&self, rank: usize, w: u32, tag: u16) {
        if rank == 0 {
            let _ = self.go[w as usize].send(());
        } else {
            self.comm.send_bytes(rank, tag, &w.to_le_bytes());
        }
    }

    fn flush_done(&mut self) {
        if !self.done_out.is_empty() {
            // Control messages stay small: at most 100 items per message.
            for part in self.done_out.chunks(100) {
                let msg: Vec<u8> = part.iter().flat_map(|i| i.to_le_bytes()).collect();
                self.comm.send_bytes(0, TAG_DONE, &msg);
                self.done_sent += 1;
            }
            self.done_out.clear();
        }
    }

    fn on_messages(&mut self) {
        let c = self.comm;
        let u32_of = |b: &[u8]| u32::from_le_bytes(b[..4].try_into().unwrap());
        let u64_of = |b: &[u8]| u64::from_le_bytes(b[..8].try_into().unwrap());
        if self.rank == 0 {
            while let Some((src, b)) = c.try_recv_bytes(TAG_DONE) {
                self.done_got[src] += 1;
                b.chunks_exact(8).for_each(|i| self.done(u64_of(i)));
            }
            while let Some((src, b)) = c.try_recv_bytes(TAG_REQ) {
                let f = u64_of(&b);
                if f != u64::MAX {
                    self.failed = Some(self.failed.map_or(f, |g| g.min(f)));
                }
                let r = self.take();
                let msg: Vec<u8> = (r.start as u64).to_le_bytes().into_iter().chain((r.end as u64).to_le_bytes()).collect();
                c.send_bytes(src, TAG_GRANT, &msg);
            }
            while let Some((src, b)) = c.try_recv_bytes(TAG_LOCK) {
                self.lock(src, u32_of(&b));
            }
            while c.try_recv_bytes(TAG_UNLOCK).is_some() {
                self.unlock();
            }
            while let Some((src, b)) = c.try_recv_bytes(TAG_ORD_WAIT) {
                self.ord_wait(u64_of(&b), src, u32_of(&b[8..]));
            }
            while let Some((src, b)) = c.try_recv_bytes(TAG_FIN) {
                // A DONE sent just before the FIN may not have been probed yet: take them all
                // now, or one would be left to the next map (where it would mark an item of that
                // map as passed, and an ordered turn would never come).
                while self.done_got[src] < u64_of(&b) {
                    let d = c.recv_bytes(src, TAG_DONE);
                    self.done_got[src] += 1;
                    d.chunks_exact(8).for_each(|i| self.done(u64_of(i)));
                }
                self.fins += 1;
            }
        } else {
            self.flush_done();
            if let Some((_, b)) = c.try_recv_bytes(TAG_GRANT) {
                self.requested = false;
                let (a, z) = (u64_of(&b) as usize, u64_of(&b[8..]) as usize);
                if a == z {
                    self.exhausted = true;
                } else {
                    self.push(a..z);
                }
            }
            for tag in [TAG_LOCKED, TAG_ORD_GO] {
                while let Some((_, b)) = c.try_recv_bytes(tag) {
                    let _ = self.go[u32_of(&b) as usize].send(());
                }
            }
        }
    }

    /// Rank 0: the next chunk (empty when there is none, or after a failure).
    fn take(&mut self) -> Range<usize> {
        if self.failed.is_some() || self.next >= self.n {
            return self.n..self.n;
        }
        let left = self.n - self.next;
        let size = match self.schedule {
            Schedule::Static => return self.n..self.n,
            Schedule::Dynamic { chunk } => chunk.max(1),
            Schedule::Guided { chunk } => ((left as u64).div_ceil(2 * self.workers_total) as usize).max(chunk.max(1)),
        }
        .min(left);
        let r = self.next..self.next + size;
        self.next += size;
        r
    }

    fn push(&self, r: Range<usize>) {
        self.shared.queue.lock().unwrap().ranges.push_back(r);
        self.shared.ready.notify_all();
    }

    fn refill(&mut self) {
        if self.exhausted {
            return;
        }
        // Ask only when a worker is idle: a chunk fetched ahead would wait behind a long item
        // while other ranks run dry (with heavy-tailed task times that costs more than the
        // round trip it saves).
        let q = self.shared.queue.lock().unwrap();
        if !q.ranges.is_empty() || q.busy >= self.threads {
            return;
        }
        drop(q);
        if self.rank == 0 {
            let r = self.take();
            if r.is_empty() {
                self.exhausted = true;
            } else {
                self.push(r);
            }
        } else if !self.requested {
            let f = self.failed.unwrap_or(u64::MAX);
            self.comm.send_bytes(0, TAG_REQ, &f.to_le_bytes());
            self.requested = true;
        }
    }

    /// Whether this rank's loop may end: no more work and its workers idle; rank 0 also waits
    /// for every other rank (it serves their locks and ordered turns until then).
    fn finished(&mut self, rx: &Receiver<Event>) -> bool {
        if !self.exhausted {
            return false;
        }
        {
            let mut q = self.shared.queue.lock().unwrap();
            if !q.ranges.is_empty() || q.busy > 0 {
                return false;
            }
            if !q.closed {
                q.closed = true;
                drop(q);
                self.shared.ready.notify_all();
                // Events the workers sent before going idle (an unlock, a passed ordered point)
                // must reach rank 0 before this rank says it is finished.
                while let Ok(e) = rx.try_recv() {
                    self.on_event(e);
                }
                if self.rank != 0 {
                    self.flush_done();
                    self.comm.send_bytes(0, TAG_FIN, &self.done_sent.to_le_bytes());
                }
            }
        }
        self.rank != 0 || self.fins == self.size - 1
    }
}
