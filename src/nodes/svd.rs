//! `svd(k=…)`: singular values and right singular vectors of the whole distributed matrix
//! (raw rows, not centred), by distributed tall-skinny QR: every rank factors its block
//! incrementally, the R factors are gathered and factored once more, and R's SVD gives
//! X = U Σ Vᵀ. TSQR is used always: unlike the joined gram XᵀX it keeps the small singular
//! values accurate (the gram squares the condition number); its payload is ranks × d², fine for
//! d up to a few hundred. Model: singular_values (k, decreasing), components (k × d, rows = right
//! singular vectors, largest entry positive). `execute` writes each row's coordinates in U:
//! x·V·Σ⁻¹.

use super::define::{params_from_fields, size_fits, Kind, NodeParams, Report, Transform};
use super::{rows, NodeSpec};
use crate::error::{Error, Result};
use crate::io::Schema;
use crate::stats::{fix_signs, Tsqr};
use ndarray::{Array2, ArrayView2, Axis};
use ndarray_linalg::SVD;
use serde::{Deserialize, Serialize};

/// `svd`'s parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SvdParams {
    /// Singular triplets kept; all when `None`.
    pub k: Option<usize>,
}

/// The trained `svd` node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SvdModel {
    /// Rows over all ranks.
    pub count: u64,
    /// Singular values, decreasing.
    pub singular_values: Vec<f64>,
    /// Right singular vectors as rows (k × d).
    #[serde(with = "rows")]
    pub components: Array2<f64>,
}

impl NodeParams for SvdParams {
    const KIND: Kind = Kind::new("svd", &["k"], "svd(k=K): singular values and right singular vectors (TSQR)");
    type Partial = Tsqr;
    type Model = SvdModel;
    /// `svd(k=K)`.
    fn from_spec(spec: &NodeSpec) -> Result<Self> {
        Ok(SvdParams { k: spec.get("k")? })
    }
    fn validate(&self) -> Result<()> {
        crate::nodes::define::at_least_one("svd", "k", self.k)
    }
    fn spec(&self) -> String {
        self.k.map_or("svd".into(), |k| format!("svd(k={k})"))
    }
    fn check(&self, schema: &Schema) -> Result<()> {
        size_fits("svd", "k", self.k, schema.x.len())
    }
    fn partial(&self, schema: &Schema) -> Tsqr {
        Tsqr::new(schema.x.len(), false)
    }
    fn finalize(&self, all: Tsqr, schema: &Schema) -> Result<SvdModel> {
        let d = schema.x.len();
        let (count, _, r) = all.finish()?;
        let (_, s, vt) = r.svd(false, true).map_err(|e| Error::Fit(format!("svd: {e}")))?;
        let vt = vt.ok_or_else(|| Error::Fit("svd: no singular vectors".into()))?;
        let keep = self.k.unwrap_or(d).min(s.len());
        let mut components = vt.slice_axis(Axis(0), (0..keep).into()).to_owned();
        fix_signs(&mut components);
        if s[keep - 1] <= s[0] * 1e-14 {
            return Err(Error::Fit(format!("svd: singular value {keep} is zero (rank-deficient data); use a smaller k")));
        }
        Ok(SvdModel { count, singular_values: s.iter().take(keep).copied().collect(), components })
    }
    fn upgrade(node: &serde_json::Value) -> Option<serde_json::Value> {
        params_from_fields(node, &["k"])
    }
}

impl Transform for SvdModel {
    fn output_names(&self, _input: &[String]) -> Vec<String> {
        (0..self.components.nrows()).map(|i| format!("u{i}")).collect()
    }
    fn transform(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let mut u = x.dot(&self.components.t());
        for mut row in u.rows_mut() {
            for (j, v) in row.iter_mut().enumerate() {
                *v /= self.singular_values[j];
            }
        }
        u
    }
}

impl Report for SvdModel {
    fn summary(&self, input: &[String], full: bool) -> Vec<String> {
        vec![format!("{} rows x {} columns: singular values {}", self.count, input.len(), super::moments::short(&self.singular_values, full))]
    }
    fn check_loaded(&self, input: &[String]) -> Result<()> {
        let s = super::Shapes("svd");
        s.rows("components", &self.components, input.len())?;
        s.vec("singular_values", &self.singular_values, self.components.nrows())?;
        if self.singular_values.contains(&0.0) {
            return Err(Error::Model("svd: a singular value is 0".into()));
        }
        Ok(())
    }
}
