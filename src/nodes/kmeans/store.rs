//! The rows a rank keeps for the Lloyd passes.

use super::*;
use std::ops::Range;

/// Copied rows of fewer values than this (64 KiB) join the block before them.
const SMALL_VALUES: usize = 1 << 13;

/// The rank's rows, kept for the Lloyd passes, in input order: blocks copied from the chunks
/// (row-major) and blocks borrowed from memory-mapped NPY inputs (row stride = the file's
/// column count; no copy, no fresh pages).
#[derive(Debug, Clone, Default)]
pub(super) struct Rows {
    d: usize,
    n: usize,
    pub(super) blocks: Vec<Block>,
    /// The first row of each block, so a range's blocks are found without walking them all
    /// (`--reproducible` sums over every leaf each iteration; a rank may hold thousands of files).
    starts: Vec<usize>,
    /// Under `train --reproducible`: the leaves of the canonical order the rows come from, as
    /// (leaf index, end row); sums over the rows are then formed per leaf ([`Rows::sum`]).
    leaves: Option<Vec<(u64, usize)>>,
}

#[derive(Debug, Clone)]
pub(super) enum Block {
    Owned(Vec<f64>),
    Mapped { map: Mapped, start: usize, rows: usize, stride: usize },
}

impl Rows {
    pub(super) fn new(d: usize) -> Self {
        Rows { d, n: 0, blocks: Vec::new(), starts: Vec::new(), leaves: None }
    }

    /// All rows of `x` as one copied block.
    pub(super) fn from_array(x: &Array2<f64>) -> Self {
        let mut r = Rows::new(x.ncols());
        r.push(x.view(), None);
        r
    }

    pub(super) fn len(&self) -> usize {
        self.n
    }

    /// Keep a chunk's rows: by holding its memory map when `x` lies in one, else by copying.
    pub(super) fn push(&mut self, x: ArrayView2<f64>, mapped: Option<&Mapped>) {
        if !self.hold(x, mapped) {
            self.push_owned(copy_rows(x));
        }
    }

    /// Keep `x`'s rows by holding its memory map, when they lie in one (or are none); false:
    /// they must be copied ([`Rows::push_owned`]).
    pub(super) fn hold(&mut self, x: ArrayView2<f64>, mapped: Option<&Mapped>) -> bool {
        let n = x.nrows();
        if n == 0 {
            return true;
        }
        // Rows of a mapped view: unit-stride columns, rows `stride` apart (a one-row view may
        // report any row stride: it joins a block whatever the block's stride).
        let stride = usize::try_from(x.strides()[0]).ok().filter(|&s| s >= self.d);
        let stride = if n == 1 { stride.or(Some(self.d)) } else { stride };
        let start = mapped.and_then(|m| m.offset_of(x.as_ptr()));
        let (Some(map), Some(start), Some(stride), true) = (mapped, start, stride, x.ncols() <= 1 || x.strides()[1] == 1) else {
            return false;
        };
        self.n += n;
        // Consecutive chunks of one file extend one block.
        if let Some(Block::Mapped { map: m, start: s, rows, stride: st }) = self.blocks.last_mut() {
            if m.same(map) && (*st == stride || n == 1) && *s + *rows * *st == start {
                *rows += n;
                return true;
            }
        }
        self.blocks.push(Block::Mapped { map: map.clone(), start, rows: n, stride });
        self.starts.push(self.n - n);
        true
    }

    /// Keep rows copied out of a chunk (row-major, whole rows): as a block of their own, or
    /// when they are few, at the end of the copied block before them (so that many small
    /// chunks make few blocks).
    pub(super) fn push_owned(&mut self, v: Vec<f64>) {
        if v.is_empty() {
            return;
        }
        let rows = v.len() / self.d.max(1);
        match self.blocks.last_mut() {
            Some(Block::Owned(last)) if v.len() < SMALL_VALUES => last.extend_from_slice(&v),
            _ => {
                self.starts.push(self.n);
                self.blocks.push(Block::Owned(v));
            }
        }
        self.n += rows;
    }

    /// The rows kept since the last leaf are leaf `index` of the canonical order.
    pub(super) fn end_leaf(&mut self, index: u64) {
        self.leaves.get_or_insert_with(Vec::new).push((index, self.n));
    }

    /// Collective: whether the rows come in leaves on any rank (`train --reproducible`, where a
    /// rank may have read no leaf); if so, on every rank.
    pub(super) fn agree_leaves(&mut self, comm: &dyn Comm) -> bool {
        let mut any = [if self.leaves.is_some() { 1.0 } else { 0.0 }];
        comm.allreduce_max(&mut any);
        if any[0] > 0.0 {
            self.leaves.get_or_insert_with(Vec::new);
        }
        self.leaves.is_some()
    }

    /// Collective: the sum over every rank's rows of what `f` adds into `len` values for a
    /// range of local rows, the same on every rank: `f` over all the rows and one allreduce, or
    /// under `train --reproducible` `f` over each leaf's rows, added in the canonical tree.
    pub(super) fn sum(&self, comm: &dyn Comm, len: usize, f: impl Fn(Range<usize>, &mut [f64]) + Sync) -> Vec<f64> {
        self.sum_with(comm, len, &mut vec![(); self.n], |r, acc, _| f(r, acc))
    }

    /// [`Rows::sum`] where `f` also gets the range's entries of `per_row` (one per local row,
    /// such as its cluster) to write. The rows are summed in fixed parts on the rank's threads
    /// ([`crate::threads`]), the parts' sums added in order: the same bits for any thread count.
    pub(super) fn sum_with<U: Send>(&self, comm: &dyn Comm, len: usize, per_row: &mut [U], f: impl Fn(Range<usize>, &mut [f64], &mut [U]) + Sync) -> Vec<f64> {
        let range_sum = |range: Range<usize>, mine: &mut [U]| {
            let parts = crate::threads::map_parts_with(self.d, mine, |r, rows| {
                let mut v = vec![0.0; len];
                f(range.start + r.start..range.start + r.end, &mut v, rows);
                v
            });
            let mut v = vec![0.0; len];
            for p in parts {
                v.iter_mut().zip(p).for_each(|(a, b)| *a += b);
            }
            v
        };
        let Some(leaves) = &self.leaves else {
            let mut v = range_sum(0..self.n, per_row);
            comm.allreduce_sum(&mut v);
            return v;
        };
        let (mut start, mut rest) = (0, per_row);
        let per_leaf = leaves
            .iter()
            .map(|&(index, end)| {
                let (mine, tail) = std::mem::take(&mut rest).split_at_mut(end - start);
                rest = tail;
                let v = range_sum(start..end, mine);
                start = end;
                (index, v)
            })
            .collect();
        crate::comm::tree::sum(comm, len, per_leaf)
    }

    /// The rows in `range` as views (one per block they touch).
    pub(super) fn views_in(&self, range: Range<usize>) -> impl Iterator<Item = ArrayView2<'_, f64>> + '_ {
        let first = self.starts.partition_point(|&s| s <= range.start).saturating_sub(1);
        let blocks = self.blocks[first..].iter().zip(&self.starts[first..]);
        blocks.take_while(move |(_, &lo)| lo < range.end).filter_map(move |(b, &lo)| {
            let v = self.view(b);
            let hi = lo + v.nrows();
            let (a, b) = (range.start.max(lo), range.end.min(hi));
            (a < b).then(|| v.slice_move(s![a - lo..b - lo, ..]))
        })
    }

    /// The rows in `range`, in order.
    pub(super) fn iter_in(&self, range: Range<usize>) -> impl Iterator<Item = &[f64]> + '_ {
        self.views_in(range).flat_map(|v| (0..v.nrows()).map(move |i| v.index_axis_move(Axis(0), i).to_slice().unwrap()))
    }

    /// A block as a view.
    fn view<'a>(&self, b: &'a Block) -> ArrayView2<'a, f64> {
        let d = self.d;
        match b {
            Block::Owned(v) => ArrayView2::from_shape((v.len() / d.max(1), d), v).unwrap(),
            Block::Mapped { map, start, rows, stride } => ArrayView2::from_shape((*rows, d).strides((*stride, 1)), &map.values()[*start..]).unwrap(),
        }
    }

    /// Every row, in order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &[f64]> + '_ {
        self.iter_in(0..self.n)
    }

    /// Row `i`.
    pub(super) fn row(&self, i: usize) -> &[f64] {
        self.iter_in(i..i + 1).next().expect("row index out of range")
    }

    /// [`nearest`] over the rows in `range`; `visit` gets the row's index among all rows.
    pub(super) fn nearest(&self, range: Range<usize>, c: &Array2<f64>, mut visit: impl FnMut(usize, &[f64], usize)) {
        let mut base = range.start;
        for v in self.views_in(range) {
            let n = v.nrows();
            nearest(v, c, |i, row, j| visit(base + i, row, j));
            base += n;
        }
    }
}

/// The rows of `x`, row-major.
pub(super) fn copy_rows(x: ArrayView2<f64>) -> Vec<f64> {
    let mut v = Vec::with_capacity(x.len());
    for row in x.rows() {
        match row.as_slice() {
            Some(r) => v.extend_from_slice(r),
            None => v.extend(row.iter()),
        }
    }
    v
}
