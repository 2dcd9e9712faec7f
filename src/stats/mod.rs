//! Mergeable, numerically stable sums: the partial statistics behind moments, covariance, PCA
//! and whitening.
//!
//! Raw sums (Σx, ΣxxT) lose every significant digit when the mean is large compared with the
//! spread (mean 1e8, std 1e-2). [`Scatter`] keeps *shifted* sums Σ(x−s) and Σ(x−s)(x−s)ᵀ around
//! a shift `s` close to the data (the first row seen), and moves them to another shift exactly
//! when two partials are merged. The distributed join first agrees a global shift (the
//! approximate global mean), moves every rank's sums there and then sums them: the payload is
//! O(d²) whatever the number of ranks.

mod scatter;
mod tsqr;

pub use scatter::Scatter;
pub use tsqr::Tsqr;

use crate::comm::Comm;
use crate::error::{Error, Result};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use ndarray_linalg::{Cholesky, Diag, Eigh, SolveTriangular, UPLO};

/// Make every row's largest-magnitude entry positive: deterministic signs for eigen- and
/// singular vectors (stored as rows).
pub fn fix_signs(rows: &mut Array2<f64>) {
    for mut row in rows.rows_mut() {
        let big = row.iter().copied().fold(0.0f64, |b, v| if v.abs() > b.abs() { v } else { b });
        if big < 0.0 {
            row.mapv_inplace(|v| -v);
        }
    }
}

/// Collective: sum the upper triangle of the symmetric `m` over all ranks (payload d(d+1)/2,
/// plus `extra` leading values summed alongside) and return the full symmetric sum.
pub fn allreduce_symmetric(comm: &dyn Comm, m: &Array2<f64>, extra: &mut [f64]) -> Array2<f64> {
    let d = m.nrows();
    let mut flat: Vec<f64> = extra.to_vec();
    for i in 0..d {
        flat.extend(m.row(i).iter().skip(i));
    }
    comm.allreduce_sum(&mut flat);
    extra.copy_from_slice(&flat[..extra.len()]);
    let mut out = Array2::zeros((d, d));
    let mut k = extra.len();
    for i in 0..d {
        for j in i..d {
            out[[i, j]] = flat[k];
            out[[j, i]] = flat[k];
            k += 1;
        }
    }
    out
}

/// Correlation from a covariance matrix; a constant column gets correlation 0 with the others
/// and 1 with itself (rather than NaN), as oneDAL does.
pub fn correlation(cov: &Array2<f64>) -> Array2<f64> {
    let sd: Vec<f64> = cov.diag().iter().map(|v| v.sqrt()).collect();
    let mut r = cov.clone();
    for ((i, j), v) in r.indexed_iter_mut() {
        *v = if i == j {
            1.0
        } else if sd[i] > 0.0 && sd[j] > 0.0 {
            *v / (sd[i] * sd[j])
        } else {
            0.0
        };
    }
    r
}

/// C(upper) += AᵀA for a row-major `rows × d` block `a`, with BLAS dsyrk.
pub fn syrk_upper(a: &[f64], rows: usize, d: usize, c: &mut Array2<f64>) {
    assert_eq!(a.len(), rows * d);
    assert!(c.is_standard_layout() && c.dim() == (d, d));
    if rows == 0 || d == 0 {
        return;
    }
    // Row-major C = 1·AᵀA + 1·C with A stored rows × d: cblas Trans, N = d, K = rows.
    unsafe {
        cblas_sys::cblas_dsyrk(
            cblas_sys::CBLAS_LAYOUT::CblasRowMajor,
            cblas_sys::CBLAS_UPLO::CblasUpper,
            cblas_sys::CBLAS_TRANSPOSE::CblasTrans,
            d as i32,
            rows as i32,
            1.0,
            a.as_ptr(),
            d as i32,
            1.0,
            c.as_mut_ptr(),
            d as i32,
        );
    }
}

/// Solve the symmetric-definite generalised eigenproblem A v = λ B v (B positive definite):
/// eigenvalues ascending and eigenvectors as columns, normalised so that Vᵀ B V = I (as
/// scipy.linalg.eigh(a, b)). Errors when B is singular, naming `what` B is.
pub fn generalized_eigh(a: &Array2<f64>, b: &Array2<f64>, what: &str) -> Result<(Array1<f64>, Array2<f64>)> {
    let top = b.diag().iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let l = b.cholesky(UPLO::Lower).map_err(|_| Error::Fit(format!("{what} is singular (rank-deficient input)")))?;
    if l.diag().iter().any(|v| v * v <= top * 1e-13) {
        return Err(Error::Fit(format!("{what} is singular (rank-deficient input)")));
    }
    // C = L⁻¹ A L⁻ᵀ, then V = L⁻ᵀ U.
    let y = l.solve_triangular(UPLO::Lower, Diag::NonUnit, a).map_err(|e| Error::Fit(e.to_string()))?;
    let c = l.solve_triangular(UPLO::Lower, Diag::NonUnit, &y.t().to_owned()).map_err(|e| Error::Fit(e.to_string()))?;
    let c = (&c + &c.t()) / 2.0;
    let (vals, u) = c.eigh(UPLO::Upper).map_err(|e| Error::Fit(format!("eigendecomposition failed: {e}")))?;
    let v = l.t().to_owned().solve_triangular(UPLO::Upper, Diag::NonUnit, &u).map_err(|e| Error::Fit(e.to_string()))?;
    Ok((vals, v))
}

/// Mean of the rows of `x` and their sample covariance, by the plain two-pass formula; the
/// independent reference for tests.
pub fn two_pass_covariance(x: ArrayView2<f64>) -> (Array1<f64>, Array2<f64>) {
    let n = x.nrows() as f64;
    let mean = x.mean_axis(Axis(0)).unwrap();
    let c = &x - &mean;
    (mean, c.t().dot(&c) / (n - 1.0))
}
