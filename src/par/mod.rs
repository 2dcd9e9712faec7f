//! Parallel map and friends across ranks and threads: what `multiprocessing.Pool.map`, a
//! hand-written `Parallelize(data, f)`, `sharedmem.MapReduce` and `joblib.Parallel` do on one
//! machine, over MPI.
//!
//! - [`parallelize`] / [`parallelize_with`]: `f` on every item exactly once, somewhere; the
//!   results in input order on every rank; [`parallelize_to_root`]: on rank 0 only (big results).
//! - [`map_reduce`]: the results folded by an associative `reduce` in item order (so the result
//!   does not depend on timing), on every rank; [`map_reduce_serial`]: sharedmem's form, a
//!   serial callback on rank 0 that sees every result in item order.
//! - Inside `f`, [`Ctx::critical`] (one worker of the whole job at a time) and [`Ctx::ordered`]
//!   (item i's section runs after item i−1's, whatever rank or thread ran it); outside a map,
//!   [`ordered`] runs a block on rank 0, then 1, ...
//! - [`sort_by_key`] / [`argsort`] / [`sort_by_column`]: a distributed stable sort (sample sort):
//!   each rank ends with one contiguous slice of the sorted rows and their global indices.
//!
//! Errors: `f` returns a `Result`; an error or a panic in any item ends the map on every rank
//! with the message of the lowest failing item and the rank that ran it; items after it are not
//! started. Debug mode: `FLOWMPI_SERIAL=1` (or [`Options::serial`]) runs every item on the
//! calling thread, in order, on every rank, without communication, so `println!` and a debugger
//! work as in a plain loop.

mod engine;
pub mod sort;

pub use sort::{argsort, sort_by_column, sort_by_key, Sorted};

use crate::comm::Comm;
use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::cell::Cell;
use std::fmt::Display;

/// How items are spread over ranks and threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Contiguous blocks of items per rank (like `Parallelize`): no traffic while running;
    /// best when items cost about the same.
    Static,
    /// Chunks of exactly `chunk` items handed out by rank 0 as workers become free (OpenMP's
    /// `dynamic`): for expensive items of very uneven cost, such as a task farm's.
    Dynamic {
        /// Items per chunk.
        chunk: usize,
    },
    /// Like `Dynamic`, but chunks shrink as the work runs out (OpenMP's `guided`: remaining ÷
    /// (2 × workers), at least `chunk` items): little traffic for many cheap items, small chunks
    /// at the end so a slow item does not hold up the rest. The default.
    Guided {
        /// Smallest chunk.
        chunk: usize,
    },
}

/// Options of a map.
#[derive(Debug, Clone)]
pub struct Options {
    /// The schedule (default: guided, chunk 1).
    pub schedule: Schedule,
    /// Worker threads per rank (0: `FLOWMPI_THREADS`, else cores ÷ ranks on the node).
    pub threads: usize,
    /// Run everything on the calling thread, in order, on every rank (`None`: `FLOWMPI_SERIAL`).
    pub serial: Option<bool>,
}

impl Default for Options {
    fn default() -> Self {
        Options { schedule: Schedule::Guided { chunk: 1 }, threads: 0, serial: None }
    }
}

impl Options {
    fn is_serial(&self) -> bool {
        self.serial.unwrap_or_else(|| std::env::var("FLOWMPI_SERIAL").is_ok_and(|v| !v.is_empty() && v != "0"))
    }
    fn threads(&self) -> usize {
        if self.threads > 0 { self.threads } else { crate::launch::threads_per_rank() }
    }
}

/// What an item's function gets besides the item: where it runs, and the job-wide sections.
pub struct Ctx<'a> {
    index: usize,
    rank: usize,
    thread: usize,
    link: Option<&'a engine::Link>,
}

impl Ctx<'_> {
    /// The item's index in the input.
    pub fn index(&self) -> usize {
        self.index
    }
    /// The rank running it.
    pub fn rank(&self) -> usize {
        self.rank
    }
    /// The worker thread (0-based, per rank) running it: index per-thread state with it.
    pub fn thread(&self) -> usize {
        self.thread
    }

    /// Run `f` while no other worker of the whole job (any rank, any thread) runs a critical
    /// section of this map.
    pub fn critical<R>(&self, f: impl FnOnce() -> R) -> R {
        let Some(link) = self.link else { return f() };
        let _ = link.events.send(engine::Event::Lock(link.worker));
        link.wait_go();
        // Released however `f` ends (a panic too), so the others never wait forever.
        struct Release<'l>(&'l engine::Link);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                let _ = self.0.events.send(engine::Event::Unlock);
            }
        }
        let _held = Release(link);
        f()
    }

    /// Run `f` after the ordered sections of every earlier item (an item that has none counts
    /// as passed when it ends): appending to one file in item order, say. At most once per item.
    pub fn ordered<R>(&self, f: impl FnOnce() -> R) -> R {
        let Some(link) = self.link else { return f() };
        let _ = link.events.send(engine::Event::OrdWait(self.index as u64, link.worker));
        link.wait_go();
        struct Pass<'l>(&'l engine::Link, u64);
        impl Drop for Pass<'_> {
            fn drop(&mut self) {
                let _ = self.0.events.send(engine::Event::Done(self.1));
            }
        }
        let _passed = Pass(link, self.index as u64);
        f()
    }
}

/// One item's outcome: its encoded result, or its error message.
type Item = std::result::Result<Vec<u8>, String>;

thread_local! {
    /// Set while an item runs: a panic there is the item's error, not the job's end.
    static CATCHING: Cell<bool> = const { Cell::new(false) };
}

/// Whether the current thread is running a map item (the panic hook lets such panics unwind
/// into the item's error instead of aborting the job).
pub fn catching_panics() -> bool {
    CATCHING.with(|c| c.get())
}

/// Run one item, turning a panic into its error.
fn call<T, R, E, F>(f: &F, ctx: &Ctx, item: &T) -> Item
where
    R: Serialize,
    E: Display,
    F: Fn(&Ctx, &T) -> std::result::Result<R, E>,
{
    CATCHING.with(|c| c.set(true));
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(ctx, item)));
    CATCHING.with(|c| c.set(false));
    match out {
        Ok(Ok(r)) => bincode::serialize(&r).map_err(|e| format!("cannot encode the result: {e}")),
        Ok(Err(e)) => Err(e.to_string()),
        Err(p) => Err(format!(
            "panicked: {}",
            p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_default()
        )),
    }
}

/// [`parallelize_with`] with default options (guided, chunk 1, threads per the node).
pub fn parallelize<T, R, E, F>(comm: &dyn Comm, items: &[T], f: F) -> Result<Vec<R>>
where
    T: Sync,
    R: Serialize + DeserializeOwned,
    E: Display,
    F: Fn(&Ctx, &T) -> std::result::Result<R, E> + Sync,
{
    parallelize_with(comm, items, &Options::default(), f)
}

/// `f` on every item exactly once over all ranks and threads; every rank gets all results in
/// input order. Collective: every rank passes the same items. An error (or a panic) ends it on
/// every rank with `Error::Item` of the lowest failing item.
pub fn parallelize_with<T, R, E, F>(comm: &dyn Comm, items: &[T], opts: &Options, f: F) -> Result<Vec<R>>
where
    T: Sync,
    R: Serialize + DeserializeOwned,
    E: Display,
    F: Fn(&Ctx, &T) -> std::result::Result<R, E> + Sync,
{
    Ok(map_items(comm, items, opts, f, None)?.expect("results on every rank"))
}

/// [`parallelize_with`] for results too big to hold on every rank: they are gathered on rank
/// 0 only (`Some` there, `None` on the others). Errors still end the map on every rank.
pub fn parallelize_to_root<T, R, E, F>(comm: &dyn Comm, items: &[T], opts: &Options, f: F) -> Result<Option<Vec<R>>>
where
    T: Sync,
    R: Serialize + DeserializeOwned,
    E: Display,
    F: Fn(&Ctx, &T) -> std::result::Result<R, E> + Sync,
{
    map_items(comm, items, opts, f, Some(0))
}

/// The map, with results on every rank (`root` None) or on `root` only.
fn map_items<T, R, E, F>(comm: &dyn Comm, items: &[T], opts: &Options, f: F, root: Option<usize>) -> Result<Option<Vec<R>>>
where
    T: Sync,
    R: Serialize + DeserializeOwned,
    E: Display,
    F: Fn(&Ctx, &T) -> std::result::Result<R, E> + Sync,
{
    let decode = |b: &[u8]| bincode::deserialize::<R>(b).map_err(|e| Error::Fit(format!("cannot decode a result: {e}")));
    let wanted = root.is_none_or(|r| r == comm.rank());
    if opts.is_serial() {
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let ctx = Ctx { index: i, rank: comm.rank(), thread: 0, link: None };
            match call(&f, &ctx, item) {
                Ok(b) => out.push(decode(&b)?),
                Err(msg) => return Err(Error::Item { index: i, rank: comm.rank(), msg }),
            }
        }
        return Ok(wanted.then_some(out));
    }
    let mine = engine::run(comm, items.len(), opts.schedule, opts.threads(), |ctx, i| call(&f, ctx, &items[i]));
    let (oks, errs): (Vec<_>, Vec<_>) = mine.into_iter().partition(|(_, it)| it.is_ok());
    // Errors go to every rank (they are small), so every rank fails with the same message.
    let first_error = gather(comm, &errs, None).into_iter().flatten().min_by_key(|(_, i, _)| *i);
    if let Some((rank, index, Err(msg))) = first_error {
        return Err(Error::Item { index, rank, msg });
    }
    let all = gather(comm, &oks, root);
    if !wanted {
        return Ok(None);
    }
    let mut out: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    for (_, i, item) in all.into_iter().flatten() {
        out[i] = Some(decode(&item.expect("only results"))?);
    }
    out.into_iter()
        .enumerate()
        .map(|(i, r)| r.ok_or_else(|| Error::Fit(format!("item {i} was never run (a scheduler bug)"))))
        .collect::<Result<Vec<R>>>()
        .map(Some)
}

/// Every rank's (index, outcome) pairs as (rank, index, outcome), on every rank (`root` None) or
/// on `root` only (empty elsewhere).
fn gather(comm: &dyn Comm, mine: &[(usize, Item)], root: Option<usize>) -> Vec<Vec<(usize, usize, Item)>> {
    let bytes = bincode::serialize(mine).expect("results encode");
    let parts = match root {
        None => comm.allgather_bytes(&bytes),
        Some(r) => comm.gather_bytes(r, &bytes),
    };
    parts
        .iter()
        .enumerate()
        .map(|(rank, b)| {
            let theirs: Vec<(usize, Item)> = bincode::deserialize(b).expect("results decode");
            theirs.into_iter().map(|(i, it)| (rank, i, it)).collect()
        })
        .collect()
}

/// `map` on every item, then the results folded with the associative `reduce` in item order
/// (`((r0 ⊕ r1) ⊕ r2) ⊕ ...`), so the result is the same on every rank and every run. `None` for
/// no items.
pub fn map_reduce<T, R, E, M, Red>(comm: &dyn Comm, items: &[T], opts: &Options, map: M, reduce: Red) -> Result<Option<R>>
where
    T: Sync,
    R: Serialize + DeserializeOwned,
    E: Display,
    M: Fn(&Ctx, &T) -> std::result::Result<R, E> + Sync,
    Red: Fn(R, R) -> R,
{
    Ok(parallelize_with(comm, items, opts, map)?.into_iter().reduce(reduce))
}

/// sharedmem's `MapReduce`: `map` in parallel, and `reduce(index, result)` called on rank 0
/// for every item in item order (a serial fold, e.g. writing results in order). Other ranks
/// return once every item is done.
pub fn map_reduce_serial<T, R, E, M, Red>(comm: &dyn Comm, items: &[T], opts: &Options, map: M, mut reduce: Red) -> Result<()>
where
    T: Sync,
    R: Serialize + DeserializeOwned,
    E: Display,
    M: Fn(&Ctx, &T) -> std::result::Result<R, E> + Sync,
    Red: FnMut(usize, R),
{
    let results = parallelize_with(comm, items, opts, map)?;
    if comm.rank() == 0 {
        results.into_iter().enumerate().for_each(|(i, r)| reduce(i, r));
    }
    Ok(())
}

const TAG_RING: u16 = 7120;

/// Run `f` on rank 0, then on rank 1, ... (each starts after the previous returned): e.g. every
/// rank appending its part to one file. Collective. Also a critical section: no two ranks run
/// `f` at once.
pub fn ordered<R>(comm: &dyn Comm, f: impl FnOnce() -> R) -> R {
    let (rank, size) = (comm.rank(), comm.size());
    if rank > 0 {
        comm.recv_bytes(rank - 1, TAG_RING);
    }
    let out = f();
    if rank + 1 < size {
        comm.send_bytes(rank + 1, TAG_RING, &[]);
    }
    out
}

/// At most one rank at a time runs `f` (each rank once): the same as [`ordered`], whose fixed
/// order also makes runs repeatable.
pub fn critical<R>(comm: &dyn Comm, f: impl FnOnce() -> R) -> R {
    ordered(comm, f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comm::run_threads;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    fn schedules() -> [Schedule; 5] {
        [Schedule::Static, Schedule::Dynamic { chunk: 1 }, Schedule::Dynamic { chunk: 7 }, Schedule::Guided { chunk: 1 }, Schedule::Guided { chunk: 7 }]
    }

    /// Uneven costs: every 13th item sleeps.
    fn work(i: &u64) -> u64 {
        if i % 13 == 0 {
            std::thread::sleep(std::time::Duration::from_micros(300));
        }
        i * i + 1
    }

    #[test]
    fn results_come_back_in_input_order_on_every_rank() {
        for ranks in [1, 2, 3, 5, 8] {
            for n in [0usize, 1, 3, 200] {
                let items: Vec<u64> = (0..n as u64).collect();
                let want: Vec<u64> = items.iter().map(work).collect();
                for schedule in schedules() {
                    for threads in [1, 3] {
                        let opts = Options { schedule, threads, serial: Some(false) };
                        let got = run_threads(ranks, |c| parallelize_with(c, &items, &opts, |_, x| Ok::<_, String>(work(x))).unwrap());
                        for g in &got {
                            assert_eq!(g, &want, "{ranks} ranks, {n} items, {schedule:?}, {threads} threads");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_item_runs_exactly_once() {
        let items: Vec<u64> = (0..500).collect();
        for schedule in schedules() {
            let runs: Vec<AtomicUsize> = (0..500).map(|_| AtomicUsize::new(0)).collect();
            run_threads(4, |c| {
                let opts = Options { schedule, threads: 2, serial: Some(false) };
                parallelize_with(c, &items, &opts, |ctx, &x| {
                    assert_eq!(ctx.index() as u64, x);
                    runs[x as usize].fetch_add(1, Ordering::SeqCst);
                    Ok::<_, String>(())
                })
                .unwrap()
            });
            assert!(runs.iter().all(|r| r.load(Ordering::SeqCst) == 1), "{schedule:?}");
        }
    }

    #[test]
    fn the_lowest_failing_item_is_reported_everywhere_and_nothing_hangs() {
        let items: Vec<u64> = (0..300).collect();
        for schedule in schedules() {
            let got = run_threads(3, |c| {
                let opts = Options { schedule, threads: 2, serial: Some(false) };
                parallelize_with(c, &items, &opts, |_, &x| {
                    if x == 250 {
                        panic!("boom at {x}");
                    }
                    if x == 170 || x == 171 {
                        return Err(format!("bad item {x}"));
                    }
                    Ok(work(&x))
                })
                .unwrap_err()
            });
            for e in &got {
                match e {
                    // Item 250 may have run before 170 failed (static), but 170 is reported.
                    Error::Item { index, msg, .. } => assert_eq!((*index, msg.as_str()), (170, "bad item 170"), "{schedule:?}"),
                    e => panic!("{e}"),
                }
            }
        }
        // A panic alone: its message.
        let got = run_threads(2, |c| parallelize(c, &[1u8, 2, 3], |_, &x| if x == 2 { panic!("two") } else { Ok::<_, String>(x) }).unwrap_err().to_string());
        assert!(got.iter().all(|e| e.contains("item 1") && e.contains("panicked: two")), "{got:?}");
    }

    #[test]
    fn ordered_sections_run_in_item_order_and_critical_ones_alone() {
        let items: Vec<u64> = (0..120).collect();
        // One thread per rank too: a rank whose only worker has just left a critical section
        // must still pass on its unlock before it says it is finished.
        for (ranks, threads) in [(1, 2), (2, 2), (3, 1), (4, 1), (4, 2)] {
            for schedule in schedules() {
                let seq = Mutex::new(Vec::new());
                let (inside, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
                run_threads(ranks, |c| {
                    let opts = Options { schedule, threads, serial: Some(false) };
                    parallelize_with(c, &items, &opts, |ctx, &x| {
                        let v = work(&x);
                        // Items divisible by 3 have no ordered section: they pass when they end.
                        if x % 3 != 0 {
                            ctx.ordered(|| seq.lock().unwrap().push(x));
                        }
                        if x % 2 == 0 {
                            ctx.critical(|| {
                                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                                most.fetch_max(now, Ordering::SeqCst);
                                std::thread::sleep(std::time::Duration::from_micros(50));
                                inside.fetch_sub(1, Ordering::SeqCst);
                            });
                        }
                        Ok::<_, String>(v)
                    })
                    .unwrap()
                });
                let want: Vec<u64> = items.iter().copied().filter(|x| x % 3 != 0).collect();
                assert_eq!(*seq.lock().unwrap(), want, "{ranks} ranks, {schedule:?}");
                assert_eq!(most.load(Ordering::SeqCst), 1, "{ranks} ranks, {schedule:?}");
            }
        }
    }

    #[test]
    fn back_to_back_maps_leave_no_message_to_the_next_one() {
        // A rank's last "items passed" message could stay unread when rank 0 ended a map, and
        // then mark items of the next map as passed: an ordered turn never came (a hang seen
        // with 4 ranks). Many short maps in a row, each with ordered sections, under a watchdog.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let items: Vec<u64> = (0..40).collect();
            let seqs: Vec<Mutex<Vec<u64>>> = (0..60).map(|_| Mutex::new(Vec::new())).collect();
            run_threads(4, |c| {
                let opts = Options { schedule: Schedule::Dynamic { chunk: 1 }, threads: 2, serial: Some(false) };
                for seq in &seqs {
                    parallelize_with(c, &items, &opts, |_, &x| Ok::<_, String>(x)).unwrap();
                    parallelize_with(c, &items, &opts, |ctx, &x| {
                        ctx.ordered(|| seq.lock().unwrap().push(x));
                        Ok::<_, String>(())
                    })
                    .unwrap();
                }
            });
            let _ = tx.send(seqs.into_iter().map(|s| s.into_inner().unwrap()).collect::<Vec<_>>());
        });
        let seqs = rx.recv_timeout(std::time::Duration::from_secs(120)).expect("back-to-back maps hung");
        for seq in seqs {
            assert_eq!(seq, (0..40).collect::<Vec<u64>>());
        }
    }

    #[test]
    fn results_to_root_come_only_to_rank_0_and_errors_to_everyone() {
        let items: Vec<u64> = (0..77).collect();
        let want: Vec<u64> = items.iter().map(work).collect();
        for ranks in [1, 2, 3, 5] {
            for schedule in schedules() {
                let opts = Options { schedule, threads: 2, serial: Some(false) };
                let got = run_threads(ranks, |c| parallelize_to_root(c, &items, &opts, |_, x| Ok::<_, String>(work(x))).unwrap());
                assert_eq!(got[0].as_ref(), Some(&want), "{ranks} ranks {schedule:?}");
                assert!(got[1..].iter().all(Option::is_none));
                let errs = run_threads(ranks, |c| {
                    parallelize_to_root(c, &items, &opts, |_, &x| if x == 40 { Err("forty") } else { Ok(x) }).unwrap_err().to_string()
                });
                assert!(errs.iter().all(|e| e.contains("item 40") && e.contains("forty")), "{errs:?}");
            }
        }
    }

    #[test]
    fn map_reduce_folds_in_item_order() {
        let items: Vec<u64> = (0..57).collect();
        let want: String = items.iter().map(|x| format!("{x};")).collect();
        for ranks in [1, 3, 4] {
            let got = run_threads(ranks, |c| {
                let opts = Options { threads: 2, serial: Some(false), ..Options::default() };
                let s = map_reduce(c, &items, &opts, |_, x| Ok::<_, String>(format!("{x};")), |a, b| a + &b).unwrap();
                let mut seen = Vec::new();
                map_reduce_serial(c, &items, &opts, |_, x| Ok::<_, String>(x * 2), |i, r| seen.push((i, r))).unwrap();
                (s, seen)
            });
            for (r, (s, seen)) in got.iter().enumerate() {
                assert_eq!(s.as_deref(), Some(want.as_str()));
                let expect: Vec<(usize, u64)> = if r == 0 { items.iter().map(|&x| (x as usize, x * 2)).collect() } else { Vec::new() };
                assert_eq!(seen, &expect);
            }
        }
        let none = run_threads(2, |c| map_reduce(c, &[] as &[u64], &Options::default(), |_, x| Ok::<_, String>(*x), |a, b| a + b).unwrap());
        assert_eq!(none, [None, None]);
    }

    #[test]
    fn serial_mode_runs_in_order_on_the_calling_thread() {
        let items: Vec<u64> = (0..20).collect();
        let caller = std::thread::current().id();
        let order = Mutex::new(Vec::new());
        let opts = Options { serial: Some(true), ..Options::default() };
        let got = parallelize_with(&crate::comm::SingleComm, &items, &opts, |ctx, &x| {
            assert_eq!(std::thread::current().id(), caller);
            order.lock().unwrap().push(ctx.index());
            Ok::<_, String>(x + 1)
        })
        .unwrap();
        assert_eq!(got, (1..21).collect::<Vec<u64>>());
        assert_eq!(*order.lock().unwrap(), (0..20).collect::<Vec<usize>>());
    }

    #[test]
    fn ordered_outside_a_map_goes_rank_by_rank() {
        let seq = Mutex::new(Vec::new());
        run_threads(5, |c| ordered(c, || seq.lock().unwrap().push(c.rank())));
        assert_eq!(*seq.lock().unwrap(), [0, 1, 2, 3, 4]);
    }
}
