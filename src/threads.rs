//! Threads inside a rank. A block of rows is cut into fixed parts; the rank's threads work on
//! the parts at once, and their results come back in part order. The parts depend only on the
//! number of rows and their width, never on the thread count, and every caller combines the
//! results in part order: so the thread count never changes a bit of a result.
//!
//! The threads are a [`Pool`] that training or execution puts in place on the rank's own thread
//! for its duration ([`Pool::run`]); MPI stays on that thread, which waits while the parts run.
//! Without a pool in place, parts run one after another on the caller's thread.

use crate::error::{Error, Result};
use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;
use std::cell::RefCell;
use std::ops::Range;
use std::sync::Arc;

/// Values in one part (512 KiB of f64): enough work that starting it and merging its result
/// cost little beside it, small enough that a 4 MiB block gives every thread of a node work.
const PART_VALUES: usize = 1 << 16;

/// The fewest rows in a part: a partial of d × d statistics (covariance) costs O(d²) to start
/// and to merge, so a part of wide rows still gets enough rows to make that small beside its
/// O(rows · d²) accumulation.
const MIN_PART_ROWS: usize = 256;

/// The parts of `rows` rows of `width` values each: consecutive ranges of the same length
/// (the last shorter), fixed by `rows` and `width` alone.
pub fn parts(rows: usize, width: usize) -> Vec<Range<usize>> {
    let per = (PART_VALUES / width.max(1)).max(MIN_PART_ROWS);
    (0..rows).step_by(per).map(|s| s..(s + per).min(rows)).collect()
}

thread_local! {
    /// The pool in place on this thread ([`Pool::run`]).
    static CURRENT: RefCell<Option<Arc<rayon::ThreadPool>>> = const { RefCell::new(None) };
}

/// A rank's threads.
#[derive(Clone)]
pub struct Pool {
    threads: usize,
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl Pool {
    /// A pool of `threads` threads (1: none started; the caller's thread does the work).
    pub fn new(threads: usize) -> Result<Pool> {
        if threads <= 1 {
            return Ok(Pool { threads: 1, pool: None });
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("flowmpi-{i}"))
            .build()
            .map_err(|e| Error::Param(format!("cannot start {threads} threads: {e}")))?;
        Ok(Pool { threads, pool: Some(Arc::new(pool)) })
    }

    /// How many threads work on the parts.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Run `f` on this thread with this pool in place: [`map_parts`] and [`map_rows`] called
    /// by `f` (on this thread) spread their parts over the pool's threads.
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        // Our threads own the cores meanwhile: BLAS runs each call on its caller's thread, also
        // between the parallel parts (OpenBLAS's own threads spin a while after every call,
        // taking a core from ours).
        let _blas = (self.threads > 1).then(crate::cores::BlasOnOneThread::new);
        let before = CURRENT.with(|c| c.replace(self.pool.clone()));
        // Put back what was in place, also when `f` unwinds.
        struct Restore(Option<Option<Arc<rayon::ThreadPool>>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let before = self.0.take().flatten();
                CURRENT.with(|c| *c.borrow_mut() = before);
            }
        }
        let _restore = Restore(Some(before));
        f()
    }
}

/// Threads working on parts on this thread now: the pool's in place, else 1.
pub fn current() -> usize {
    CURRENT.with(|c| c.borrow().as_ref().map_or(1, |p| p.current_num_threads()))
}

/// `f` of every part of `rows` rows of `width` values ([`parts`]), on the pool in place, the
/// results in part order.
pub fn map_parts<T: Send>(rows: usize, width: usize, f: impl Fn(Range<usize>) -> T + Sync) -> Vec<T> {
    // (A vector of `()` takes no memory, whatever its length.)
    map_parts_with(width, &mut vec![(); rows], |r, _| f(r))
}

/// [`map_parts`] over the rows of `per_row` (one entry per row, such as a row's cluster), where
/// `f` also gets its part's entries to write.
pub fn map_parts_with<T: Send, U: Send>(width: usize, per_row: &mut [U], f: impl Fn(Range<usize>, &mut [U]) -> T + Sync) -> Vec<T> {
    let parts = parts(per_row.len(), width);
    let mut items = Vec::with_capacity(parts.len());
    let mut rest = per_row;
    for r in parts {
        let (mine, tail) = rest.split_at_mut(r.len());
        items.push((r, mine));
        rest = tail;
    }
    map_items(items, |(r, mine)| f(r, mine))
}

/// `f` of every item, on the pool in place (each item to one thread), the results in item
/// order: the primitive under [`map_parts`], for work cut some other way (the pieces of a CSV
/// block, each piece's copy into its place).
pub fn map_items<T: Send, U: Send>(items: Vec<U>, f: impl Fn(U) -> T + Sync) -> Vec<T> {
    let pool = CURRENT.with(|c| c.borrow().clone());
    match pool {
        Some(pool) if items.len() > 1 => pool.install(|| items.into_par_iter().map(&f).collect()),
        _ => items.into_iter().map(f).collect(),
    }
}

/// `f` of the rows of `x` part by part, the outputs stacked in row order: a row-by-row map
/// (a trained flow's transform) on the pool's threads. An error is the first part's to fail,
/// its row numbers counted from the top of `x` ([`Error::Row`]).
pub fn map_rows(x: ArrayView2<f64>, f: impl Fn(ArrayView2<f64>) -> Result<Array2<f64>> + Sync) -> Result<Array2<f64>> {
    let outs = map_parts(x.nrows(), x.ncols(), |r| f(x.slice_axis(Axis(0), r.clone().into())).map_err(|e| e.rows_from(r.start)));
    let mut outs = outs.into_iter().collect::<Result<Vec<_>>>()?;
    if outs.len() == 1 {
        return Ok(outs.pop().expect("one part"));
    }
    if outs.is_empty() {
        return f(x);
    }
    let views: Vec<_> = outs.iter().map(|o| o.view()).collect();
    Ok(ndarray::concatenate(Axis(0), &views).expect("parts of one map have the same columns"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_rows_and_do_not_depend_on_threads() {
        assert!(parts(0, 4).is_empty());
        let p = parts(40_000, 32);
        assert_eq!(p.len(), 20);
        assert!(p.iter().all(|r| r.len() == 2048 || r.end == 40_000));
        assert_eq!(p.last().unwrap().end, 40_000);
        assert_eq!(parts(1000, 10_000), vec![0..256, 256..512, 512..768, 768..1000]);
    }

    #[test]
    fn map_parts_keeps_part_order_on_any_pool() {
        let sums = |threads: usize| Pool::new(threads).unwrap().run(|| map_parts(100_000, 8, |r| r.map(|i| i as f64).sum::<f64>()));
        let one = sums(1);
        assert_eq!(one.len(), parts(100_000, 8).len());
        for t in 2..=4 {
            assert_eq!(sums(t), one);
        }
        assert_eq!(Pool::new(3).unwrap().run(current), 3);
        assert_eq!(current(), 1);
    }

    #[test]
    fn map_rows_stacks_in_order_and_names_the_row() {
        let x = Array2::from_shape_fn((10_000, 8), |(i, j)| (i * 8 + j) as f64);
        let pool = Pool::new(3).unwrap();
        let y = pool.run(|| map_rows(x.view(), |v| Ok(v.mapv(|a| 2.0 * a)))).unwrap();
        assert_eq!(y, x.mapv(|a| 2.0 * a));
        let bad = |v: ArrayView2<f64>| match v.column(0).iter().position(|&a| a == 8.0 * 9000.0) {
            Some(i) => Err(Error::Row { row: i, msg: "bad".into() }),
            None => Ok(v.to_owned()),
        };
        match pool.run(|| map_rows(x.view(), bad)) {
            Err(Error::Row { row, .. }) => assert_eq!(row, 9000),
            other => panic!("{other:?}"),
        }
    }
}
