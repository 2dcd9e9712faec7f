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
mod worker;

pub use sort::{argsort, sort_by_column, sort_by_key, Sorted};

use crate::comm::Comm;
use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
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
    /// Rank 0 draws a progress line with this label (items done of all, rate, ETA) as the
    /// process's log allows ([`crate::log::global`]); `None`: no line.
    pub progress: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options { schedule: Schedule::Guided { chunk: 1 }, threads: 0, serial: None, progress: None }
    }
}

impl Options {
    fn is_serial(&self) -> bool {
        self.serial.unwrap_or_else(|| std::env::var("FLOWMPI_SERIAL").is_ok_and(|v| !v.is_empty() && v != "0"))
    }
    fn threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            crate::cores::threads_per_rank()
        }
    }
}

/// What an item's function gets besides the item: where it runs, and the job-wide sections.
pub struct Ctx<'a> {
    index: usize,
    rank: usize,
    thread: usize,
    link: Option<&'a worker::Link>,
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
        let _held = self.enter_critical();
        f()
    }

    /// Run `f` after the ordered sections of every earlier item (an item that has none counts
    /// as passed when it ends): appending to one file in item order, say. At most once per item.
    pub fn ordered<R>(&self, f: impl FnOnce() -> R) -> R {
        let _passed = self.enter_ordered();
        f()
    }

    /// [`Ctx::critical`] as a guard, for callers whose section is not one closure (the Python
    /// package's `with critical():`): the section lasts until the guard is dropped, which must
    /// happen before the item returns.
    pub fn enter_critical(&self) -> Section<'_> {
        let Some(link) = self.link else { return Section(Held::Nothing) };
        let _ = link.events.send(worker::Event::Lock(link.worker));
        link.wait_go();
        Section(Held::Critical(link))
    }

    /// [`Ctx::ordered`] as a guard (see [`Ctx::enter_critical`]).
    pub fn enter_ordered(&self) -> Section<'_> {
        let Some(link) = self.link else { return Section(Held::Nothing) };
        let _ = link.events.send(worker::Event::OrdWait(self.index as u64, link.worker));
        link.wait_go();
        Section(Held::Ordered(link, self.index as u64))
    }
}

/// A critical or ordered section of an item, held until dropped: released however the
/// section ends (a panic too), so the other workers never wait forever.
pub struct Section<'l>(Held<'l>);

enum Held<'l> {
    /// Serial mode: nothing to hold.
    Nothing,
    /// The job-wide lock.
    Critical(&'l worker::Link),
    /// Past the ordered sections of the earlier items (this item's index).
    Ordered(&'l worker::Link, u64),
}

impl Drop for Section<'_> {
    fn drop(&mut self) {
        match self.0 {
            Held::Nothing => {}
            Held::Critical(link) => {
                let _ = link.events.send(worker::Event::Unlock);
            }
            Held::Ordered(link, index) => {
                let _ = link.events.send(worker::Event::Done(index));
            }
        }
    }
}

/// One item's outcome: its encoded result, or its error message.
type Item = std::result::Result<Vec<u8>, String>;

/// Run one item, turning a panic into its error; after Ctrl-C ([`crate::stop::interrupt`]) an
/// item fails without running, so that the map hands out nothing more and ends.
fn call<T, R, E, F>(f: &F, ctx: &Ctx, item: &T) -> Item
where
    R: Serialize,
    E: Display,
    F: Fn(&Ctx, &T) -> std::result::Result<R, E>,
{
    if crate::stop::interrupted() {
        return Err(Error::Interrupted.to_string());
    }
    match crate::panics::catch(|| f(ctx, item)) {
        Ok(Ok(r)) => bincode::serialize(&r).map_err(|e| format!("cannot encode the result: {e}")),
        Ok(Err(e)) => Err(e.to_string()),
        Err(p) => Err(format!("panicked: {p}")),
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
    let bar = opts.progress.as_ref().and_then(|l| crate::progress::Progress::items(&crate::log::global(), l.clone(), items.len() as u64));
    let mine = engine::run(comm, items.len(), opts.schedule, opts.threads(), bar, |ctx, i| call(&f, ctx, &items[i]));
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
mod tests;
