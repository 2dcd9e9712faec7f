//! The rows a rank keeps for the Lloyd passes.

use super::*;

/// The rank's rows, kept for the Lloyd passes, in input order: blocks copied from the chunks
/// (row-major) and blocks borrowed from memory-mapped NPY inputs (row stride = the file's
/// column count; no copy, no fresh pages).
#[derive(Debug, Clone, Default)]
pub(super) struct Rows {
    d: usize,
    n: usize,
    pub(super) blocks: Vec<Block>,
}

#[derive(Debug, Clone)]
pub(super) enum Block {
    Owned(Vec<f64>),
    Mapped { map: Mapped, start: usize, rows: usize, stride: usize },
}

impl Rows {
    pub(super) fn new(d: usize) -> Self {
        Rows { d, n: 0, blocks: Vec::new() }
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
        let n = x.nrows();
        if n == 0 {
            return;
        }
        self.n += n;
        // Rows of a mapped view: unit-stride columns, rows `stride` apart (a one-row view may
        // report any row stride: it joins a block whatever the block's stride).
        let stride = usize::try_from(x.strides()[0]).ok().filter(|&s| s >= self.d);
        let stride = if n == 1 { stride.or(Some(self.d)) } else { stride };
        let start = mapped.and_then(|m| m.offset_of(x.as_ptr()));
        if let (Some(map), Some(start), Some(stride), true) = (mapped, start, stride, x.ncols() <= 1 || x.strides()[1] == 1) {
            // Consecutive chunks of one file extend one block.
            if let Some(Block::Mapped { map: m, start: s, rows, stride: st }) = self.blocks.last_mut() {
                if m.same(map) && (*st == stride || n == 1) && *s + *rows * *st == start {
                    *rows += n;
                    return;
                }
            }
            self.blocks.push(Block::Mapped { map: map.clone(), start, rows: n, stride });
            return;
        }
        if !matches!(self.blocks.last(), Some(Block::Owned(_))) {
            self.blocks.push(Block::Owned(Vec::new()));
        }
        let Some(Block::Owned(v)) = self.blocks.last_mut() else { unreachable!() };
        for row in x.rows() {
            match row.as_slice() {
                Some(r) => v.extend_from_slice(r),
                None => v.extend(row.iter()),
            }
        }
    }

    /// The blocks as views.
    pub(super) fn views(&self) -> impl Iterator<Item = ArrayView2<'_, f64>> + '_ {
        let d = self.d;
        self.blocks.iter().map(move |b| match b {
            Block::Owned(v) => ArrayView2::from_shape((v.len() / d.max(1), d), v).unwrap(),
            Block::Mapped { map, start, rows, stride } => {
                ArrayView2::from_shape((*rows, d).strides((*stride, 1)), &map.values()[*start..]).unwrap()
            }
        })
    }

    /// Every row, in order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &[f64]> + '_ {
        self.views().flat_map(|v| (0..v.nrows()).map(move |i| v.index_axis_move(Axis(0), i).to_slice().unwrap()))
    }

    /// Row `i` (walks the blocks: a rank has one per input file).
    pub(super) fn row(&self, mut i: usize) -> &[f64] {
        for v in self.views() {
            if i < v.nrows() {
                return v.index_axis_move(Axis(0), i).to_slice().unwrap();
            }
            i -= v.nrows();
        }
        panic!("row index out of range")
    }

    /// [`nearest`] over every block; `visit` gets the row's index among all rows.
    pub(super) fn nearest(&self, c: &Array2<f64>, mut visit: impl FnMut(usize, &[f64], usize)) {
        let mut base = 0;
        for v in self.views() {
            let n = v.nrows();
            nearest(v, c, |i, row, j| visit(base + i, row, j));
            base += n;
        }
    }
}
