//! `pca`: principal component analysis by eigendecomposition of the joined covariance
//! (`method=cov`, default) or correlation (`method=corr`) matrix.
//!
//! Output dimension: `n=K` components, or `var=F` (the fewest components whose explained
//! variance ratio sums to at least F); all components when neither is given. Components are
//! rows, sorted by decreasing eigenvalue, each with its largest-magnitude entry positive
//! (deterministic signs). `execute` projects (x − mean)/scale onto the components, where scale
//! is 1 for `cov` and the column standard deviation for `corr`; `inverse` reconstructs.

use super::define::{size_fits, Kind, NodeParams, Report, Transform};
use super::{rows, spec_text, NodeSpec};
use crate::error::{Error, Result};
use crate::io::Schema;
use crate::stats::{correlation, fix_signs, Scatter};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use ndarray_linalg::{Eigh, UPLO};
use serde::{Deserialize, Serialize};

/// Matrix the eigendecomposition runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PcaMethod {
    /// Covariance matrix (sklearn's PCA).
    #[default]
    Cov,
    /// Correlation matrix (daal4py's correlationDense): PCA of standardized columns.
    Corr,
}

/// PCA parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PcaParams {
    /// Number of components.
    pub n: Option<usize>,
    /// Explained-variance fraction in (0, 1].
    pub var: Option<f64>,
    /// Covariance or correlation.
    pub method: PcaMethod,
}

impl PcaParams {
    /// Parse `n`, `var` and `method` from a spec (pca's and whitening's; the driver has
    /// refused other keys).
    pub fn from_spec(spec: &NodeSpec) -> Result<Self> {
        let p = PcaParams {
            n: spec.get("n")?,
            var: spec.get("var")?,
            method: match spec.params.get("method").map(|s| s.as_str()) {
                None | Some("cov") | Some("covariance") | Some("eig") => PcaMethod::Cov,
                Some("corr") | Some("correlation") => PcaMethod::Corr,
                Some(m) => return Err(Error::Param(format!("{}: method must be cov or corr, not {m:?}", spec.kind))),
            },
        };
        Ok(p)
    }

    /// [`NodeParams::validate`] under the kind name `kind` (`pca` or `whitening`).
    pub(crate) fn validate_as(&self, kind: &str) -> Result<()> {
        crate::nodes::define::at_least_one(kind, "n", self.n)?;
        if self.n.is_some() && self.var.is_some() {
            return Err(Error::Param(format!("{kind}: give n or var, not both")));
        }
        if let Some(v) = self.var {
            if !(v > 0.0 && v <= 1.0) {
                return Err(Error::Param(format!("{kind}: var must be in (0, 1], got {v}")));
            }
        }
        Ok(())
    }

    /// The spec under the kind name `kind` (`pca` or `whitening`).
    pub(crate) fn spec_as(&self, kind: &str) -> String {
        let method = (self.method == PcaMethod::Corr).then(|| "corr".to_string());
        spec_text(kind, &[("n", self.n.map(|n| n.to_string())), ("var", self.var.map(|v| v.to_string())), ("method", method)])
    }
}

/// The trained `pca` node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PcaModel {
    /// Training rows on all ranks.
    pub count: u64,
    /// Column means.
    pub mean: Vec<f64>,
    /// Column scale divided out before projection (1 for cov, std for corr).
    pub scale: Vec<f64>,
    /// All eigenvalues of the covariance (or correlation) matrix, decreasing.
    pub eigenvalues: Vec<f64>,
    /// Kept components, one per row (k × d).
    #[serde(with = "rows")]
    pub components: Array2<f64>,
    /// Fraction of the total variance each kept component explains.
    pub explained_variance_ratio: Vec<f64>,
}

/// Eigen-decompose a symmetric matrix: eigenvalues decreasing, eigenvectors as rows with the
/// largest-magnitude entry made positive.
pub fn sorted_eigh(m: &Array2<f64>) -> Result<(Array1<f64>, Array2<f64>)> {
    let (vals, vecs) = m.eigh(UPLO::Upper).map_err(|e| Error::Fit(format!("eigendecomposition failed: {e}")))?;
    let d = vals.len();
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| vals[b].total_cmp(&vals[a]));
    let mut comps = Array2::zeros((d, d));
    for (r, &k) in order.iter().enumerate() {
        comps.row_mut(r).assign(&vecs.column(k));
    }
    fix_signs(&mut comps);
    Ok((Array1::from_iter(order.iter().map(|&k| vals[k])), comps))
}

impl PcaParams {
    /// The model from joined statistics (used by `pca` and `whitening`).
    pub(crate) fn fit(&self, s: &Scatter, columns: &[String], kind: &str) -> Result<PcaModel> {
        let cov = s.covariance()?;
        let d = cov.nrows();
        let (matrix, scale) = match self.method {
            PcaMethod::Cov => (cov, vec![1.0; d]),
            PcaMethod::Corr => {
                let sd: Vec<f64> = cov.diag().iter().map(|v| v.sqrt()).collect();
                if let Some(j) = sd.iter().position(|&v| v == 0.0) {
                    return Err(Error::Fit(format!("{kind}(method=corr): column '{}' is constant, its correlation is undefined", columns[j])));
                }
                (correlation(&cov), sd)
            }
        };
        let (vals, comps) = sorted_eigh(&matrix)?;
        let total: f64 = vals.iter().map(|v| v.max(0.0)).sum();
        let ratio: Vec<f64> = vals.iter().map(|v| if total > 0.0 { v.max(0.0) / total } else { 0.0 }).collect();
        let k = match (self.n, self.var) {
            (Some(n), _) => n,
            (None, Some(f)) => {
                let mut acc = 0.0;
                // Tolerance: var=1.0 must not ask for more components than exist.
                ratio
                    .iter()
                    .position(|r| {
                        acc += r;
                        acc >= f - 1e-12
                    })
                    .map_or(d, |i| i + 1)
            }
            (None, None) => d,
        };
        Ok(PcaModel {
            components: comps.slice_axis(Axis(0), (0..k).into()).to_owned(),
            explained_variance_ratio: ratio[..k].to_vec(),
            eigenvalues: vals.to_vec(),
            mean: s.mean().to_vec(),
            scale,
            count: s.n,
        })
    }
}

impl PcaModel {
    /// Reconstruct input rows from component coordinates (k columns → d columns).
    pub(crate) fn reconstruct(&self, y: ArrayView2<f64>) -> Array2<f64> {
        let mut x = y.dot(&self.components);
        for mut row in x.rows_mut() {
            for j in 0..row.len() {
                row[j] = row[j] * self.scale[j] + self.mean[j];
            }
        }
        x
    }

    /// (x − mean) / scale.
    pub(crate) fn center(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let mut c = x.to_owned();
        for mut row in c.rows_mut() {
            for j in 0..row.len() {
                row[j] = (row[j] - self.mean[j]) / self.scale[j];
            }
        }
        c
    }
}

impl NodeParams for PcaParams {
    const KIND: Kind = Kind::new("pca", &["n", "var", "method"], "pca(n=K | var=F, method=cov|corr): principal components");
    type Partial = Scatter;
    type Model = PcaModel;
    fn from_spec(spec: &NodeSpec) -> Result<Self> {
        PcaParams::from_spec(spec)
    }
    fn spec(&self) -> String {
        self.spec_as("pca")
    }
    fn validate(&self) -> Result<()> {
        self.validate_as("pca")
    }
    fn check(&self, schema: &Schema) -> Result<()> {
        size_fits("pca", "n", self.n, schema.x.len())
    }
    fn partial(&self, schema: &Schema) -> Scatter {
        Scatter::new(schema.x.len(), true)
    }
    fn finalize(&self, all: Scatter, schema: &Schema) -> Result<PcaModel> {
        self.fit(&all, &schema.x, "pca")
    }
}

impl Transform for PcaModel {
    fn output_names(&self, _: &[String]) -> Vec<String> {
        (0..self.components.nrows()).map(|i| format!("pc{i}")).collect()
    }
    fn transform(&self, x: ArrayView2<f64>) -> Array2<f64> {
        self.center(x).dot(&self.components.t())
    }
    fn inverse(&self, y: ArrayView2<f64>) -> Option<Array2<f64>> {
        Some(self.reconstruct(y))
    }
}

impl Report for PcaModel {
    fn summary(&self, input: &[String], full: bool) -> Vec<String> {
        let k = self.components.nrows();
        let kept: f64 = self.explained_variance_ratio.iter().sum();
        let corr = if self.scale.iter().any(|&s| s != 1.0) { ", standardized columns" } else { "" };
        vec![
            format!("{} -> {} dims{corr}, trained on {} rows", input.len(), k, self.count),
            format!("explained variance: {:.4} in total; per component {}", kept, super::moments::short(&self.explained_variance_ratio, full)),
            format!("eigenvalues {}", super::moments::short(&self.eigenvalues, full)),
        ]
    }
    fn check_loaded(&self, input: &[String]) -> Result<()> {
        let (s, d) = (super::Shapes("pca"), input.len());
        s.rows("components", &self.components, d)?;
        s.vec("mean", &self.mean, d)?;
        s.divisors("scale", &self.scale, d)?;
        // Every array a command reads (inspect, score), at the length it reads it: edited
        // models with short ones indexed out of bounds.
        s.vec("eigenvalues", &self.eigenvalues, d)?;
        s.vec("explained_variance_ratio", &self.explained_variance_ratio, self.components.nrows())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comm::run_threads;
    use crate::comm::Comm;
    use crate::nodes::Node;
    use crate::stats::two_pass_covariance;
    use ndarray::{s, Array};

    fn data() -> Array2<f64> {
        Array::from_shape_fn((60, 4), |(i, j)| {
            let t = i as f64;
            match j {
                0 => (t * 0.37).sin() * 3.0,
                1 => (t * 0.37).sin() * 1.5 + (t * 1.1).cos(),
                2 => (t * 0.05).cos() + 0.1 * (t * 2.3).sin(),
                _ => 0.2 * (t * 0.7).sin() + 10.0,
            }
        })
    }

    #[test]
    fn pca_equals_eigh_of_two_pass_covariance_and_roundtrips() {
        let x = data();
        let (_, cov) = two_pass_covariance(x.view());
        let (vals, vecs) = sorted_eigh(&cov).unwrap();
        let names: Vec<String> = (0..4).map(|j| format!("c{j}")).collect();
        for ranks in [1, 2, 3, 4, 7] {
            let out = run_threads(ranks, |c| {
                let (lo, hi) = ((c.rank() * 60) / ranks, ((c.rank() + 1) * 60) / ranks);
                let mut node = crate::nodes::PcaNode::new(PcaParams { n: Some(4), ..Default::default() });
                node.fit(c, x.slice(s![lo..hi, ..]), &names).unwrap();
                node
            });
            for node in &out {
                let (m, m0) = (node.model().unwrap(), out[0].model().unwrap());
                assert_eq!(m.components, m0.components);
                for (a, b) in m.eigenvalues.iter().zip(vals.iter()) {
                    assert!((a - b).abs() < 1e-10 * vals[0]);
                }
                assert!((&m.components - &vecs).iter().all(|v| v.abs() < 1e-8));
                // Full-rank PCA reconstructs exactly.
                let back = node.inverse(node.execute(x.view()).unwrap().view()).unwrap();
                assert!((&back - &x).iter().all(|v| v.abs() < 1e-10));
            }
        }
    }

    #[test]
    fn var_selects_the_fewest_components() {
        let x = data();
        let names: Vec<String> = (0..4).map(|j| format!("c{j}")).collect();
        let mut node = crate::nodes::PcaNode::new(PcaParams { var: Some(0.9), ..Default::default() });
        node.fit(&crate::comm::SingleComm, x.view(), &names).unwrap();
        let m = node.model().unwrap();
        let k = m.components.nrows();
        let sum: f64 = m.explained_variance_ratio.iter().sum();
        assert!(sum >= 0.9);
        assert!(sum - m.explained_variance_ratio[k - 1] < 0.9);
    }

    #[test]
    fn n_larger_than_dimension_is_rejected() {
        let mut node = crate::nodes::PcaNode::new(PcaParams { n: Some(5), ..Default::default() });
        assert!(node.begin(&Schema::features(&["a".into(), "b".into()])).is_err());
    }
}
