//! [`Scatter`]: count, shifted sums, min and max of a set of rows, merged exactly.

use super::{allreduce_symmetric, syrk_upper};
use crate::comm::Comm;
use crate::error::{Error, Result};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

/// Partial statistics of a set of rows: count, shifted sums, min and max.
#[derive(Debug, Clone, PartialEq)]
pub struct Scatter {
    /// Number of rows.
    pub n: u64,
    /// The shift `s` (meaningless while `n == 0`).
    pub shift: Array1<f64>,
    /// Σ(x − s).
    pub sum: Array1<f64>,
    /// Upper triangle of Σ(x − s)(x − s)ᵀ when `full`, otherwise only its diagonal in `sq`.
    pub cross: Array2<f64>,
    /// Σ(x − s)² per column (kept up to date in both modes).
    pub sq: Array1<f64>,
    /// Column minima.
    pub min: Array1<f64>,
    /// Column maxima.
    pub max: Array1<f64>,
    full: bool,
}

thread_local! {
    /// One block of shifted rows, reused by every full partial on this thread: a fresh partial
    /// per `--reproducible` leaf would otherwise fault in a new block of pages each time.
    /// The second buffer holds a block of rows gathered from non-contiguous memory.
    static BLOCK: std::cell::RefCell<(Vec<f64>, Vec<f64>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Values in one block of shifted rows (1 MiB: within a core's L2 on the machines we run on),
/// but at least 256 rows, so that dsyrk still gets a long inner dimension for wide data.
const BLOCK_VALUES: usize = 1 << 17;

impl Scatter {
    /// Empty statistics for `d` columns; `full` keeps the d×d cross-products (covariance),
    /// otherwise only per-column sums (moments, O(d) memory and O(nd) work).
    pub fn new(d: usize, full: bool) -> Self {
        Scatter {
            n: 0,
            shift: Array1::zeros(d),
            sum: Array1::zeros(d),
            cross: if full { Array2::zeros((d, d)) } else { Array2::zeros((0, 0)) },
            sq: Array1::zeros(d),
            min: Array1::from_elem(d, f64::INFINITY),
            max: Array1::from_elem(d, f64::NEG_INFINITY),
            full,
        }
    }

    /// Number of columns.
    pub fn dim(&self) -> usize {
        self.sum.len()
    }

    /// The flat layout: n, full, d, shift, sum, sq, min, max (d each), then the d × d cross
    /// products when `full`; as little-endian f64 (the layout of cache entries and of models
    /// that keep partials since format v1).
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let head = [self.n as f64, f64::from(u8::from(self.full)), self.dim() as f64];
        let parts = [self.shift.view(), self.sum.view(), self.sq.view(), self.min.view(), self.max.view()];
        let body = parts.iter().flat_map(|a| a.iter().copied()).chain(self.cross.iter().copied());
        // Sized once and filled 8 bytes at a time: a byte-wise flat_map was a quarter of
        // `--reproducible`'s time on 200 columns, which encodes a d × d partial per leaf.
        let mut out = Vec::with_capacity(8 * (head.len() + 5 * self.dim() + self.cross.len()));
        head.into_iter().chain(body).for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        out
    }

    /// Read [`Scatter::to_bytes`]' layout; an error when the bytes are damaged.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Scatter> {
        let bad = || Error::Fit("damaged partial statistics".into());
        if !bytes.len().is_multiple_of(8) || bytes.len() < 24 {
            return Err(bad());
        }
        // Values `at..at + len`, read straight into their own vector (no copy of the whole).
        let values =
            |at: usize, len: usize| -> Vec<f64> { bytes[8 * at..8 * (at + len)].chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect() };
        let head = values(0, 3);
        let (full, d) = (head[1] == 1.0, head[2] as usize);
        if !(head[1] == 0.0 || full) || head[2] != d as f64 || (bytes.len() / 8) as u128 != 3 + 5 * d as u128 + if full { (d as u128) * (d as u128) } else { 0 }
        {
            return Err(bad());
        }
        let vec = |k: usize| Array1::from(values(3 + k * d, d));
        let cross = if full { Array2::from_shape_vec((d, d), values(3 + 5 * d, d * d)).expect("d x d") } else { Array2::zeros((0, 0)) };
        Ok(Scatter { n: head[0] as u64, shift: vec(0), sum: vec(1), sq: vec(2), min: vec(3), max: vec(4), cross, full })
    }

    /// An error unless `other` has this partial's shape (columns, cross-products or not).
    pub(crate) fn fits(&self, other: &Scatter) -> Result<()> {
        if other.dim() != self.dim() || other.full != self.full {
            return Err(Error::Fit("partial statistics of another shape".into()));
        }
        Ok(())
    }

    /// Add the rows of `x` (row-major, `dim()` columns).
    pub fn update(&mut self, x: ArrayView2<f64>) {
        let (rows, d) = x.dim();
        assert_eq!(d, self.dim(), "column count changed");
        if rows == 0 {
            return;
        }
        if self.full {
            let all = x.to_slice();
            self.absorb_rows(rows, |raw, start| {
                if let Some(all) = all {
                    // Contiguous rows are shifted straight from where they lie.
                    return Some(&all[start * d..start * d + raw.len()]);
                }
                let m = raw.len() / d;
                for (dev, row) in raw.chunks_exact_mut(d).zip(x.slice(ndarray::s![start..start + m, ..]).rows()) {
                    dev.iter_mut().zip(row).for_each(|(o, v)| *o = *v);
                }
                None
            });
            return;
        }
        if self.n == 0 {
            self.shift.assign(&x.row(0));
        }
        self.n += rows as u64;
        let shift = self.shift.as_slice().unwrap();
        let (min, max) = (self.min.as_slice_mut().unwrap(), self.max.as_slice_mut().unwrap());
        let sum = self.sum.as_slice_mut().unwrap();
        let sq = self.sq.as_slice_mut().unwrap();
        let (shift, min, max, sum, sq) = (&shift[..d], &mut min[..d], &mut max[..d], &mut sum[..d], &mut sq[..d]);
        let mut copy = vec![0.0; d];
        for row in x.rows() {
            // Cut to length, so that the column loop has no bounds checks and vectorises.
            let row = match row.to_slice() {
                Some(row) => &row[..d],
                None => {
                    copy.iter_mut().zip(row).for_each(|(o, v)| *o = *v);
                    &copy[..]
                }
            };
            for j in 0..d {
                let v = row[j];
                min[j] = min[j].min(v);
                max[j] = max[j].max(v);
                let c = v - shift[j];
                sum[j] += c;
                sq[j] += c * c;
            }
        }
    }

    /// Add the rows `[x | y[:, idx]]` (full mode) without building the joined block first.
    pub fn update_joint(&mut self, x: ArrayView2<f64>, y: ArrayView2<f64>, idx: &[usize]) {
        let d = x.ncols();
        assert_eq!(d + idx.len(), self.dim(), "column count changed");
        self.absorb_rows(x.nrows(), |raw, start| {
            for (i, dev) in raw.chunks_exact_mut(d + idx.len()).enumerate() {
                let (xr, yr) = (x.row(start + i), y.row(start + i));
                dev.iter_mut().zip(xr.iter().chain(idx.iter().map(|&k| &yr[k]))).for_each(|(o, v)| *o = *v);
            }
            None
        });
    }

    /// Full mode: `n` rows, a block at a time. `rows(raw, start)` returns rows `start..` (as
    /// many as `raw` holds, row-major) where they lie when they are contiguous, else copies them
    /// into `raw` and returns None. Each block is shifted into the thread's block while its min,
    /// max and sums are taken, and one BLAS dsyrk adds its cross-products.
    fn absorb_rows<'a>(&mut self, n: usize, mut rows: impl FnMut(&mut [f64], usize) -> Option<&'a [f64]>) {
        assert!(self.full);
        let d = self.dim();
        if n == 0 {
            return;
        }
        // Shifted a block of rows at a time, each block still in cache when dsyrk reads it:
        // a chunk of a few million rows in memory (Python's fit) would otherwise be copied
        // whole, and the thread would keep a buffer of its size.
        let per_block = (BLOCK_VALUES / d.max(1)).max(256).min(n);
        BLOCK.with_borrow_mut(|(block, raw)| {
            block.resize(per_block * d, 0.0);
            raw.resize(per_block * d, 0.0);
            let mut start = 0;
            while start < n {
                let m = (n - start).min(per_block);
                let (block, raw) = (&mut block[..m * d], &mut raw[..m * d]);
                let from = match rows(raw, start) {
                    Some(rows) => rows,
                    None => raw,
                };
                if self.n == 0 {
                    self.shift.assign(&ArrayView1::from(&from[..d]));
                }
                self.n += m as u64;
                shift_block(
                    from,
                    block,
                    self.shift.as_slice().unwrap(),
                    self.min.as_slice_mut().unwrap(),
                    self.max.as_slice_mut().unwrap(),
                    self.sum.as_slice_mut().unwrap(),
                );
                syrk_upper(block, m, d, &mut self.cross);
                start += m;
            }
        });
        for j in 0..d {
            self.sq[j] = self.cross[[j, j]];
        }
    }

    /// Move the sums to another shift, exactly: with δ = s_old − s_new,
    /// Σ(x−s_new) = Σ(x−s_old) + nδ and Σ(x−s_new)(x−s_new)ᵀ = C + Σδᵀ + δΣᵀ + nδδᵀ.
    pub fn reshift(&mut self, new_shift: &Array1<f64>) {
        if self.n == 0 {
            self.shift.assign(new_shift);
            return;
        }
        let n = self.n as f64;
        let delta = &self.shift - new_shift;
        let d = self.dim();
        if self.full {
            for i in 0..d {
                for j in i..d {
                    self.cross[[i, j]] += self.sum[i] * delta[j] + delta[i] * self.sum[j] + n * delta[i] * delta[j];
                }
                self.sq[i] = self.cross[[i, i]];
            }
        } else {
            for j in 0..d {
                self.sq[j] += 2.0 * delta[j] * self.sum[j] + n * delta[j] * delta[j];
            }
        }
        self.sum.scaled_add(n, &delta);
        self.shift.assign(new_shift);
    }

    /// Merge another partial into this one (associative and commutative up to round-off).
    pub fn merge(&mut self, other: &Scatter) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = other.clone();
            return;
        }
        let mut o = other.clone();
        o.reshift(&self.shift);
        self.n += o.n;
        self.sum += &o.sum;
        self.sq += &o.sq;
        if self.full {
            self.cross += &o.cross;
        }
        self.min.zip_mut_with(&o.min, |a, &b| *a = a.min(b));
        self.max.zip_mut_with(&o.max, |a, &b| *a = a.max(b));
    }

    /// Join the partials of all ranks: afterwards every rank holds the statistics of all rows,
    /// bit-identical. Errors (on every rank) when there are no rows at all.
    pub fn allreduce(&mut self, comm: &dyn Comm) -> Result<()> {
        let d = self.dim();
        // 1. Agree a shift near the data: the global mean, to working precision.
        let mut head = vec![0.0; d + 1];
        head[0] = self.n as f64;
        if self.n > 0 {
            for j in 0..d {
                head[j + 1] = self.n as f64 * self.shift[j] + self.sum[j];
            }
        }
        comm.allreduce_sum(&mut head);
        let total = head[0];
        if total == 0.0 {
            return Err(Error::Fit("no data rows on any rank".into()));
        }
        let g = Array1::from_iter(head[1..].iter().map(|v| v / total));
        self.reshift(&g);
        // 2. Sum the sums, now all around the same shift.
        let mut head: Vec<f64> = std::iter::once(self.n as f64).chain(self.sum.iter().copied()).collect();
        if self.full {
            self.cross = allreduce_symmetric(comm, &self.cross, &mut head);
            self.sq.assign(&self.cross.diag());
        } else {
            head.extend(self.sq.iter());
            comm.allreduce_sum(&mut head);
            self.sq.assign(&Array1::from_iter(head[d + 1..].iter().copied()));
        }
        self.n = head[0] as u64;
        self.sum.assign(&Array1::from_iter(head[1..=d].iter().copied()));
        comm.allreduce_min(self.min.as_slice_mut().unwrap());
        comm.allreduce_max(self.max.as_slice_mut().unwrap());
        Ok(())
    }

    /// Column means.
    pub fn mean(&self) -> Array1<f64> {
        &self.shift + &(&self.sum / self.n as f64)
    }

    /// Σ(x − mean)² per column.
    pub fn centered_sq(&self) -> Array1<f64> {
        let n = self.n as f64;
        Array1::from_iter(self.sq.iter().zip(self.sum.iter()).map(|(q, s)| (q - s * s / n).max(0.0)))
    }

    /// Σx² per column (raw, unshifted).
    pub fn raw_sq(&self) -> Array1<f64> {
        let n = self.n as f64;
        Array1::from_iter((0..self.dim()).map(|j| {
            let s = self.shift[j];
            self.sq[j] + 2.0 * s * self.sum[j] + n * s * s
        }))
    }

    /// Full symmetric Σ(x − mean)(x − mean)ᵀ (requires `full`).
    pub fn centered_cross(&self) -> Array2<f64> {
        assert!(self.full, "cross-products were not accumulated");
        let d = self.dim();
        let n = self.n as f64;
        let mut c = Array2::zeros((d, d));
        for i in 0..d {
            for j in i..d {
                let v = self.cross[[i, j]] - self.sum[i] * self.sum[j] / n;
                c[[i, j]] = v;
                c[[j, i]] = v;
            }
        }
        c
    }

    /// Sample covariance (n − 1 denominator); needs at least two rows.
    pub fn covariance(&self) -> Result<Array2<f64>> {
        if self.n < 2 {
            return Err(Error::Fit(format!("covariance needs at least 2 rows in total, got {}", self.n)));
        }
        Ok(self.centered_cross() / (self.n as f64 - 1.0))
    }
}

/// Take the column min, max and sums of the row-major rows `from` (rows of `shift.len()`
/// values) and write them shifted by `shift` into `block`. Every slice is cut to the row's
/// length first, so the column loop has no bounds checks and vectorises; each column still adds
/// its rows in order.
fn shift_block(from: &[f64], block: &mut [f64], shift: &[f64], min: &mut [f64], max: &mut [f64], sum: &mut [f64]) {
    let d = shift.len();
    let (min, max, sum) = (&mut min[..d], &mut max[..d], &mut sum[..d]);
    for (src, out) in from.chunks_exact(d).zip(block.chunks_exact_mut(d)) {
        let (src, out) = (&src[..d], &mut out[..d]);
        for j in 0..d {
            let v = src[j];
            min[j] = min[j].min(v);
            max[j] = max[j].max(v);
            let c = v - shift[j];
            out[j] = c;
            sum[j] += c;
        }
    }
}

impl serde::Serialize for Scatter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> serde::Deserialize<'de> for Scatter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let bytes: Vec<u8> = serde::Deserialize::deserialize(d)?;
        Scatter::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comm::run_threads;
    use crate::stats::two_pass_covariance;
    use ndarray::{s, Array};

    fn data(n: usize, d: usize, seed: u64, center: f64, spread: f64) -> Array2<f64> {
        // Small deterministic LCG: no rand dependency for tests.
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        Array::from_shape_fn((n, d), |(_, j)| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            center + spread * (j as f64 + 1.0) * (u - 0.5)
        })
    }

    fn close(a: &Array2<f64>, b: &Array2<f64>, rel: f64) -> bool {
        let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        a.iter().zip(b.iter()).all(|(x, y)| (x - y).abs() <= rel * scale)
    }

    #[test]
    fn merge_of_partials_equals_partial_of_union() {
        let x = data(101, 4, 1, 3.0, 2.0);
        for full in [true, false] {
            let mut whole = Scatter::new(4, full);
            whole.update(x.view());
            let mut a = Scatter::new(4, full);
            a.update(x.slice(s![..37, ..]));
            let mut b = Scatter::new(4, full);
            b.update(x.slice(s![37.., ..]));
            let empty = Scatter::new(4, full);
            a.merge(&empty);
            a.merge(&b);
            assert_eq!(a.n, whole.n);
            assert!((a.mean() - whole.mean()).iter().all(|v| v.abs() < 1e-12));
            assert!((a.centered_sq() - whole.centered_sq()).iter().all(|v| v.abs() < 1e-9));
            assert_eq!(a.min, whole.min);
            assert_eq!(a.max, whole.max);
            if full {
                assert!(close(&a.centered_cross(), &whole.centered_cross(), 1e-12));
            }
        }
    }

    #[test]
    fn covariance_matches_two_pass_on_nasty_data() {
        // mean 1e8, spreads 1e-2..4e-2: raw sums would lose every digit here.
        let x = data(5000, 4, 7, 1e8, 1e-2);
        let (m_ref, c_ref) = two_pass_covariance(x.view());
        let mut s = Scatter::new(4, true);
        for k in 0..5 {
            s.update(x.slice(s![k * 1000..(k + 1) * 1000, ..]));
        }
        assert!(close(&s.covariance().unwrap(), &c_ref, 1e-9));
        assert!((s.mean() - m_ref).iter().all(|v| v.abs() < 1e-6));
    }

    #[test]
    fn allreduce_over_simulated_ranks_matches_one_rank() {
        let x = data(257, 5, 3, -2.0, 5.0);
        let mut one = Scatter::new(5, true);
        one.update(x.view());
        let reference = one.covariance().unwrap();
        for ranks in 1..=8 {
            let out = run_threads(ranks, |c| {
                // Uneven blocks; rank 1 (when present) gets nothing.
                let bounds: Vec<usize> = (0..=ranks).map(|r| (r * r * 257) / (ranks * ranks)).collect();
                let (lo, hi) = if c.rank() == 1 { (0, 0) } else { (bounds[c.rank()], bounds[c.rank() + 1]) };
                let mut s = Scatter::new(5, true);
                s.update(x.slice(s![lo..hi, ..]));
                if c.rank() == 0 && ranks > 1 {
                    s.update(x.slice(s![bounds[1]..bounds[2], ..]));
                }
                s.allreduce(c).unwrap();
                s.covariance().unwrap()
            });
            for cov in &out {
                assert_eq!(cov, &out[0], "ranks disagree");
                assert!(close(cov, &reference, 1e-12), "{ranks} ranks");
            }
        }
    }

    #[test]
    fn no_rows_anywhere_is_an_error_on_every_rank() {
        let out = run_threads(3, |c| Scatter::new(2, true).allreduce(c).is_err());
        assert_eq!(out, vec![true; 3]);
    }
}
