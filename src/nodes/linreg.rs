//! `linreg`: linear least squares over all ranks, `target=y` (several: `target=[y0,y1]`),
//! `intercept=true` (default), `method=normal|qr`.
//!
//! - `normal` (default): the joined, *centred* cross-products (the same shifted sums as
//!   covariance, so a mean of 1e8 costs no precision) are solved by Cholesky. A singular system
//!   (collinear columns) is a clear error suggesting `method=qr` or `ridge`.
//! - `qr`: distributed tall-skinny QR ([`Tsqr`]). Each rank streams its block through an
//!   incremental QR of `[1, x − s, y − s]` (its own shift s); the R factors of all ranks are
//!   gathered (payload ranks × (d+t+1)², fine for d in the hundreds), moved to one shift exactly
//!   (a shift is a right-multiplication by a unit upper-triangular matrix) and factored once
//!   more. Better for ill-conditioned data.
//!
//! Model: coefficients (targets × features), intercepts, and training R² and RMSE over all ranks.
//! `execute` appends the predictions `<target>_pred` to the rows.

use super::define::{gather_merge, params_from_fields, Columns, Kind, NodeParams, Partial, Predict, Report};
use super::{rows, NodeSpec, Task};
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::{Chunk, Schema};
use crate::stats::{Scatter, Tsqr};
use ndarray::{concatenate, s, Array1, Array2, ArrayView2, Axis};
#[cfg(test)]
use ndarray_linalg::QRInto;
use ndarray_linalg::{Cholesky, Diag, SolveTriangular, UPLO};
use serde::{Deserialize, Serialize};

/// Solver for `linreg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Cholesky on the centred normal equations.
    #[default]
    Normal,
    /// Distributed tall-skinny QR.
    Qr,
}

/// What linreg and ridge learn for one set of coefficients.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    /// Coefficients, one row per target.
    #[serde(with = "rows")]
    pub coefficients: Array2<f64>,
    /// Intercept per target (0 without intercept).
    pub intercept: Vec<f64>,
    /// Training R² per target.
    pub r2: Vec<f64>,
    /// Training root mean squared error per target.
    pub rmse: Vec<f64>,
}

impl Fit {
    /// Shapes and values of a fit read from a model file: `t` targets, `d` features.
    pub(crate) fn check(&self, kind: &str, t: usize, d: usize) -> Result<()> {
        let s = super::Shapes(kind);
        s.mat("coefficients", &self.coefficients, t, d)?;
        s.vec("intercept", &self.intercept, t)?;
        // Read by inspect and score per target (R² is NaN for a constant target).
        s.count("r2", self.r2.len(), t)?;
        s.vec("rmse", &self.rmse, t)
    }

    /// Predictions for rows `x` (rows × targets).
    pub fn predict(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let mut p = x.dot(&self.coefficients.t());
        for mut row in p.rows_mut() {
            row += &Array1::from(self.intercept.clone());
        }
        p
    }
}

/// Parse `target=...` and `intercept=...`, shared by linreg and ridge.
pub(crate) fn target_params(spec: &NodeSpec) -> Result<(Vec<String>, bool)> {
    Ok((spec.get_list("target").unwrap_or_default(), spec.get_bool("intercept", true)?))
}

/// For `validate`: an error when a regression names no target.
pub(crate) fn check_target(kind: &str, target: &[String]) -> Result<()> {
    if target.is_empty() {
        return Err(Error::Param(format!("{kind}: give the target column(s), e.g. {kind}(target=y)")));
    }
    Ok(())
}

/// `[x | y[:, idx]]` as one block.
pub(crate) fn joint(chunk: &Chunk, idx: &[usize]) -> Array2<f64> {
    let y = chunk.y.select(Axis(1), idx);
    concatenate![Axis(1), chunk.x, y]
}

/// Solve (Sxx + αI)β = Sxy from joined statistics of `[x | y]` (d features, t targets),
/// centred when `intercept`, with SSE from the same sums. `kind` names the node in errors.
pub(crate) fn solve_normal(s: &Scatter, d: usize, alpha: f64, intercept: bool, kind: &str) -> Result<Fit> {
    let n = s.n as f64;
    let c = s.centered_cross();
    let mean = s.mean();
    let t = s.dim() - d;
    // Without an intercept the model goes through the origin: raw cross-products.
    let m = if intercept {
        c.clone()
    } else {
        let mm = mean.view().insert_axis(Axis(1));
        &c + &(mm.dot(&mm.t()) * n)
    };
    let mut sxx = m.slice(s![..d, ..d]).to_owned();
    for i in 0..d {
        sxx[[i, i]] += alpha;
    }
    let sxy = m.slice(s![..d, d..]).to_owned();
    let l = sxx.cholesky(UPLO::Lower).map_err(|_| {
        Error::Fit(format!(
            "{kind}: the normal equations are singular (constant or collinear feature columns?); \
             use linreg(method=qr) or ridge(alpha=...)"
        ))
    })?;
    let z = l.solve_triangular(UPLO::Lower, Diag::NonUnit, &sxy).map_err(|e| Error::Fit(format!("{kind}: {e}")))?;
    let beta = l.t().to_owned().solve_triangular(UPLO::Upper, Diag::NonUnit, &z).map_err(|e| Error::Fit(format!("{kind}: {e}")))?;
    let mut fit = Fit { coefficients: beta.t().to_owned(), intercept: vec![0.0; t], r2: vec![0.0; t], rmse: vec![0.0; t] };
    for j in 0..t {
        let b = beta.column(j);
        if intercept {
            fit.intercept[j] = mean[d + j] - mean.slice(s![..d]).dot(&b);
        }
        // SSE = Syy − 2βᵀSxy + βᵀSxxβ (Sxx without the ridge term).
        let syy = m[[d + j, d + j]];
        let sxx0 = m.slice(s![..d, ..d]);
        let sse = (syy - 2.0 * b.dot(&m.slice(s![..d, d + j])) + b.dot(&sxx0.dot(&b))).max(0.0);
        let sst = c[[d + j, d + j]];
        fit.r2[j] = if sst > 0.0 { 1.0 - sse / sst } else { f64::NAN };
        fit.rmse[j] = (sse / n).sqrt();
    }
    Ok(fit)
}

fn solve_qr(r: &Array2<f64>, g: &Array1<f64>, n: f64, d: usize, intercept: bool, sst: &[f64]) -> Result<Fit> {
    let a = d + intercept as usize;
    let t = r.ncols() - a;
    let raa = r.slice(s![..a, ..a]).to_owned();
    let top = raa.diag().iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if raa.diag().iter().any(|v| v.abs() <= top * 1e-13) {
        return Err(Error::Fit("linreg(method=qr): the features are rank-deficient (constant or collinear columns?); use ridge(alpha=...)".into()));
    }
    let ray = r.slice(s![..a, a..]).to_owned();
    let b = raa.solve_triangular(UPLO::Upper, Diag::NonUnit, &ray).map_err(|e| Error::Fit(format!("linreg(method=qr): {e}")))?;
    let coef = b.slice(s![intercept as usize.., ..]).to_owned();
    let mut fit = Fit { coefficients: coef.t().to_owned(), intercept: vec![0.0; t], r2: vec![0.0; t], rmse: vec![0.0; t] };
    for j in 0..t {
        if intercept {
            fit.intercept[j] = b[[0, j]] + g[d + j] - g.slice(s![..d]).dot(&coef.column(j));
        }
        let sse: f64 = r.slice(s![a.., a + j]).iter().map(|v| v * v).sum();
        fit.r2[j] = if sst[j] > 0.0 { 1.0 - sse / sst[j] } else { f64::NAN };
        fit.rmse[j] = (sse / n).sqrt();
    }
    Ok(fit)
}

/// `linreg`'s parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinregParams {
    /// Target column names.
    pub target: Vec<String>,
    /// Fit an intercept.
    pub fit_intercept: bool,
    /// Solver.
    pub method: Method,
}

/// With an intercept, by the normal equations; the target must be given.
impl Default for LinregParams {
    fn default() -> Self {
        LinregParams { target: Vec::new(), fit_intercept: true, method: Method::default() }
    }
}

/// The trained `linreg` node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LinregModel {
    /// The parameters (the targets name the prediction columns).
    pub params: LinregParams,
    /// Training rows over all ranks.
    pub count: u64,
    /// The fitted model.
    #[serde(flatten)]
    pub fit: Fit,
}

/// The statistics each solver needs; `idx` picks the targets from the chunk's target columns.
#[derive(Clone, Serialize, Deserialize)]
pub struct LinregPartial {
    stats: Stats,
    #[serde(skip)]
    idx: Vec<usize>,
}

#[derive(Clone, Serialize, Deserialize)]
enum Stats {
    /// Shifted sums of `[x | y]`.
    Normal(Scatter),
    /// The QR of `[1, x, y]`, and the targets' sums for their total sum of squares.
    Qr(Tsqr, Scatter),
}

impl NodeParams for LinregParams {
    const KIND: Kind =
        Kind::new("linreg", &["target", "intercept", "method"], "linreg(target=y | target=[y0,y1], method=normal|qr, intercept=true): least squares")
            .aliases(&["linear_regression"])
            .task(Task::Regression);
    type Partial = LinregPartial;
    type Model = LinregModel;
    /// `linreg(target=y, intercept=true, method=normal|qr)`.
    fn from_spec(spec: &NodeSpec) -> Result<Self> {
        let (target, fit_intercept) = target_params(spec)?;
        let method = match spec.params.get("method").map(String::as_str) {
            None | Some("normal") | Some("cholesky") => Method::Normal,
            Some("qr") => Method::Qr,
            Some(m) => return Err(Error::Param(format!("linreg: method must be normal or qr, not {m:?}"))),
        };
        Ok(LinregParams { target, fit_intercept, method })
    }
    fn validate(&self) -> Result<()> {
        check_target("linreg", &self.target)
    }
    fn spec(&self) -> String {
        let mut s = format!("linreg(target=[{}]", self.target.join(","));
        if !self.fit_intercept {
            s.push_str(", intercept=false");
        }
        if self.method == Method::Qr {
            s.push_str(", method=qr");
        }
        s + ")"
    }
    fn columns(&mut self) -> Columns<'_> {
        Columns::Targets(&mut self.target)
    }
    fn partial(&self, schema: &Schema) -> LinregPartial {
        let idx = schema.target_indices("linreg", &self.target).unwrap_or_default();
        let w = schema.x.len() + idx.len();
        let stats = match self.method {
            Method::Normal => Stats::Normal(Scatter::new(w, true)),
            Method::Qr => Stats::Qr(Tsqr::new(w, self.fit_intercept), Scatter::new(idx.len(), false)),
        };
        LinregPartial { stats, idx }
    }
    fn finalize(&self, all: LinregPartial, schema: &Schema) -> Result<LinregModel> {
        let d = schema.x.len();
        let (count, fit) = match all.stats {
            Stats::Normal(s) => (s.n, solve_normal(&s, d, 0.0, self.fit_intercept, "linreg")?),
            Stats::Qr(q, ys) => {
                let (n, g, r) = q.finish()?;
                (n, solve_qr(&r, &g, n as f64, d, self.fit_intercept, &ys.centered_sq().to_vec())?)
            }
        };
        Ok(LinregModel { params: self.clone(), count, fit })
    }
    fn upgrade(node: &serde_json::Value) -> Option<serde_json::Value> {
        params_from_fields(node, &["target", "fit_intercept", "method"])
    }
}

impl Partial for LinregPartial {
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        match &mut self.stats {
            Stats::Normal(s) => s.update_joint(chunk.x, chunk.y, &self.idx),
            Stats::Qr(q, ys) => {
                let z = joint(chunk, &self.idx);
                ys.update(z.slice(s![.., chunk.x.ncols()..]));
                q.update(z.view())?
            }
        }
        Ok(())
    }
    fn merge(&mut self, other: Self) {
        match (&mut self.stats, other.stats) {
            (Stats::Normal(a), Stats::Normal(b)) => a.merge(&b),
            (Stats::Qr(q, ys), Stats::Qr(q2, ys2)) => {
                q.merge(q2);
                ys.merge(&ys2);
            }
            _ => unreachable!("fits() refuses partials of the other method"),
        }
    }
    fn fits(&self, other: &Self) -> Result<()> {
        match (&self.stats, &other.stats) {
            (Stats::Normal(a), Stats::Normal(b)) => a.fits(b),
            (Stats::Qr(q, ys), Stats::Qr(q2, ys2)) => q.fits(q2).and_then(|()| ys.fits(ys2)),
            _ => Err(Error::Fit("linreg: a partial of the other method".into())),
        }
    }
    // The normal equations' sums join by one allreduce; the R factors by gathering them.
    fn join(self, comm: &dyn Comm) -> Result<Self> {
        match self.stats {
            Stats::Normal(s) => Ok(LinregPartial { stats: Stats::Normal(s.join(comm)?), idx: self.idx }),
            Stats::Qr(..) => gather_merge(comm, self),
        }
    }
}

impl Predict for LinregModel {
    fn prediction_names(&self) -> Vec<String> {
        self.params.target.iter().map(|t| format!("{t}_pred")).collect()
    }
    fn predict(&self, x: ArrayView2<f64>) -> Array2<f64> {
        self.fit.predict(x)
    }
}

impl Report for LinregModel {
    fn summary(&self, input: &[String], _full: bool) -> Vec<String> {
        let p = &self.params;
        let mut out = vec![format!("{} features -> {} target(s), {:?}, trained on {} rows", input.len(), p.target.len(), p.method, self.count)];
        for (j, t) in p.target.iter().enumerate() {
            out.push(format!("{t}: intercept {:.6}, R² {:.6}, RMSE {:.6}", self.fit.intercept[j], self.fit.r2[j], self.fit.rmse[j]));
        }
        out
    }
    fn check_loaded(&self, input: &[String]) -> Result<()> {
        self.fit.check("linreg", self.params.target.len(), input.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comm::run_threads;
    use crate::nodes::Node;
    use ndarray::Array;

    fn linreg(spec: &str) -> crate::nodes::LinregNode {
        crate::nodes::LinregNode::from_spec(&NodeSpec::parse(spec).unwrap()).unwrap()
    }

    /// y0 = 2 + x·(1, −2, 0.5) + small noise; y1 = −1 + x·(0.3, 0, 4)
    fn data(n: usize, center: f64) -> (Array2<f64>, Array2<f64>) {
        let x = Array::from_shape_fn((n, 3), |(i, j)| center + ((i * (j + 2)) as f64 * 0.37).sin() * (j + 1) as f64);
        let y = Array::from_shape_fn((n, 2), |(i, j)| {
            let r = x.row(i).mapv(|v| v - center);
            if j == 0 {
                2.0 + r[0] - 2.0 * r[1] + 0.5 * r[2] + 1e-3 * (i as f64 * 1.7).cos()
            } else {
                -1.0 + 0.3 * r[0] + 4.0 * r[2]
            }
        });
        (x, y)
    }

    fn lstsq(x: &Array2<f64>, y: &Array2<f64>) -> Array2<f64> {
        // Reference: QR of [1, x] on one process (independent of the node's code paths).
        let n = x.nrows();
        let a = concatenate![Axis(1), Array2::ones((n, 1)), *x];
        let (q, r) = a.qr_into().unwrap();
        r.solve_triangular(UPLO::Upper, Diag::NonUnit, &q.t().dot(y)).unwrap()
    }

    #[test]
    fn both_methods_match_a_single_process_least_squares_on_any_rank_count() {
        let (x, y) = data(200, 0.0);
        let want = lstsq(&x, &y);
        let schema = Schema { x: vec!["a".into(), "b".into(), "c".into()], y: vec!["y0".into(), "y1".into()], label: None };
        for method in ["normal", "qr"] {
            for ranks in [1, 2, 3, 5] {
                let out = run_threads(ranks, |c| {
                    let (lo, hi) = ((c.rank() * c.rank() * 200) / (ranks * ranks), ((c.rank() + 1) * (c.rank() + 1) * 200) / (ranks * ranks));
                    let mut node = linreg(&format!("linreg(target=[y0,y1], method={method})"));
                    let chunk = Chunk {
                        x: x.slice(s![lo..hi, ..]),
                        y: y.slice(s![lo..hi, ..]),
                        labels: &[],
                        kept: &[],
                        segment_start: true,
                        origin: None,
                        mapped: None,
                    };
                    node.fit_chunk(c, &chunk, &schema).unwrap();
                    node.model().unwrap().fit.clone()
                });
                for f in &out {
                    assert_eq!(f, &out[0]);
                    for j in 0..2 {
                        assert!((f.intercept[j] - want[[0, j]]).abs() < 1e-10, "{method} {ranks}: {} vs {}", f.intercept[j], want[[0, j]]);
                        for i in 0..3 {
                            assert!((f.coefficients[[j, i]] - want[[i + 1, j]]).abs() < 1e-10);
                        }
                    }
                    // Exact fit: the normal-equation SSE is a difference of sums, exact to ~sqrt(eps·Syy/n).
                    assert!(f.r2[1] > 1.0 - 1e-12 && f.rmse[1] < 1e-6, "{:?}", f);
                }
            }
        }
    }

    #[test]
    fn nasty_offsets_keep_precision_and_collinearity_is_an_error() {
        let (x0, y) = data(300, 0.0);
        let (x, _) = data(300, 1e8);
        let want = lstsq(&x0, &y);
        let schema = Schema { x: vec!["a".into(), "b".into(), "c".into()], y: vec!["y0".into(), "y1".into()], label: None };
        for method in ["normal", "qr"] {
            let mut node = linreg(&format!("linreg(target=[y0,y1], method={method})"));
            node.fit_chunk(
                &crate::comm::SingleComm,
                &Chunk { x: x.view(), y: y.view(), labels: &[], kept: &[], segment_start: true, origin: None, mapped: None },
                &schema,
            )
            .unwrap();
            for i in 0..3 {
                let (a, b) = (node.model().unwrap().fit.coefficients[[0, i]], want[[i + 1, 0]]);
                assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{method}: {a} vs {b}");
            }
        }
        let bad = concatenate![Axis(1), x0, x0.column(0).insert_axis(Axis(1))];
        let schema4 = Schema { x: vec!["a".into(), "b".into(), "c".into(), "d".into()], ..schema.clone() };
        for method in ["normal", "qr"] {
            let mut node = linreg(&format!("linreg(target=y0, method={method})"));
            let e = node
                .fit_chunk(
                    &crate::comm::SingleComm,
                    &Chunk { x: bad.view(), y: y.view(), labels: &[], kept: &[], segment_start: true, origin: None, mapped: None },
                    &schema4,
                )
                .unwrap_err();
            assert!(e.to_string().contains("collinear"), "{e}");
        }
    }
}
