//! [`Tsqr`]: distributed tall-skinny QR as a mergeable partial (linreg's `method=qr`, svd).

use crate::error::{Error, Result};
use ndarray::{s, Array1, Array2, ArrayView2, Axis};
use ndarray_linalg::QRInto;

/// Distributed tall-skinny QR, as a partial. Rows stream through an incremental QR of `[1, z − s]`
/// (with an intercept column and the partial's own shift s, the first row it saw, which keeps a
/// mean of 1e8 from costing precision) or of raw `z`. `merge` moves the other partial's R to
/// this one's shift exactly (a shift is a right-multiplication by a unit upper-triangular
/// matrix) and stacks it below; the stack is factored again when it grows, and once more by
/// [`Tsqr::finish`]. Joined by gathering (payload ranks × k², fine for k in the hundreds).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Tsqr {
    intercept: bool,
    n: u64,
    shift: Array1<f64>,
    sum: Array1<f64>,
    /// R factors stacked (k columns); upper triangular after a factorisation.
    r: Array2<f64>,
}

impl Tsqr {
    /// No rows yet, of `w` columns (plus a column of ones when `intercept`).
    pub fn new(w: usize, intercept: bool) -> Self {
        let k = w + intercept as usize;
        // R starts as k zero rows (no rows seen), so every factorisation is of a tall matrix.
        Tsqr { intercept, n: 0, shift: Array1::zeros(w), sum: Array1::zeros(w), r: Array2::zeros((k, k)) }
    }

    /// Add rows `z`.
    pub fn update(&mut self, z: ArrayView2<f64>) -> Result<()> {
        let (rows, w) = z.dim();
        if rows == 0 {
            return Ok(());
        }
        if self.n == 0 && self.intercept {
            // Without an intercept the model is not shift invariant: raw values (shift 0).
            self.shift = z.row(0).to_owned();
        }
        let (k, c) = (self.r.nrows(), self.intercept as usize);
        let mut a = Array2::zeros((k + rows, w + c));
        a.slice_mut(s![..k, ..]).assign(&self.r);
        for (i, row) in z.rows().into_iter().enumerate() {
            let mut out = a.row_mut(k + i);
            if self.intercept {
                out[0] = 1.0;
            }
            for j in 0..w {
                let v = row[j] - self.shift[j];
                out[j + c] = v;
                self.sum[j] += v;
            }
        }
        self.n += rows as u64;
        self.r = a.qr_into().map_err(|e| Error::Fit(format!("QR factorisation failed: {e}")))?.1;
        Ok(())
    }

    /// Move to shift `to`: [1, z − to] = [1, z − s]·T with T = I + e₀(s − to)ᵀ on the z columns.
    fn reshift(&mut self, to: &Array1<f64>) {
        if !self.intercept {
            return;
        }
        let delta = &self.shift - to;
        let col0 = self.r.column(0).to_owned();
        for (j, d) in delta.iter().enumerate() {
            self.r.column_mut(j + 1).scaled_add(*d, &col0);
        }
        self.sum.scaled_add(self.n as f64, &delta);
        self.shift = to.clone();
    }

    /// Merge another partial of the same width.
    pub fn merge(&mut self, mut other: Tsqr) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = other;
            return;
        }
        other.reshift(&self.shift);
        self.n += other.n;
        self.sum += &other.sum;
        self.r = ndarray::concatenate![Axis(0), self.r, other.r];
        // Keep the stack small; a failed factorisation only leaves it unfactored (still exact).
        if self.r.nrows() > 2 * self.r.ncols() {
            if let Ok((_, r)) = self.r.clone().qr_into() {
                self.r = r;
            }
        }
    }

    /// An error unless `other` has this partial's width.
    pub fn fits(&self, other: &Tsqr) -> Result<()> {
        match (other.r.ncols(), other.shift.len(), other.intercept) == (self.r.ncols(), self.shift.len(), self.intercept) {
            true => Ok(()),
            false => Err(Error::Fit(format!("a QR partial of {} columns, expected {}", other.r.ncols(), self.r.ncols()))),
        }
    }

    /// The R of all rows (k × k), with the row count and the shift g used: the mean with an
    /// intercept (zero without).
    pub fn finish(mut self) -> Result<(u64, Array1<f64>, Array2<f64>)> {
        if self.n == 0 {
            return Err(Error::Fit("no data rows on any rank".into()));
        }
        if self.intercept {
            let g = &self.shift + &(&self.sum / self.n as f64);
            self.reshift(&g);
        }
        let (_, r) = self.r.qr_into().map_err(|e| Error::Fit(format!("QR factorisation failed: {e}")))?;
        Ok((self.n, self.shift, r))
    }
}
