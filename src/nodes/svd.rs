//! `svd(k=…)`: singular values and right singular vectors of the whole distributed matrix
//! (raw rows, not centred), by distributed tall-skinny QR: every rank factors its block
//! incrementally, the R factors are gathered and factored once more, and R's SVD gives
//! X = U Σ Vᵀ. TSQR is used always: unlike the joined gram XᵀX it keeps the small singular
//! values accurate (the gram squares the condition number); its payload is ranks × d², fine for
//! d up to a few hundred. Model: singular_values (k, decreasing), components (k × d, rows = right
//! singular vectors, largest entry positive). `execute` writes each row's coordinates in U:
//! x·V·Σ⁻¹.

use super::{rows, tagged, untrained, Node, NodeSpec};
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::{Chunk, Schema};
use crate::stats::{fix_signs, Tsqr};
use ndarray::{Array2, ArrayView2, Axis};
use ndarray_linalg::SVD;
use serde::{Deserialize, Serialize};

/// The `svd` node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SvdNode {
    /// Singular triplets kept; all when `None`.
    pub k: Option<usize>,
    /// Input column names.
    pub columns: Vec<String>,
    /// Rows over all ranks.
    pub count: u64,
    /// Singular values, decreasing.
    pub singular_values: Vec<f64>,
    /// Right singular vectors as rows (k × d).
    #[serde(with = "rows")]
    pub components: Array2<f64>,
    #[serde(skip)]
    partial: Option<Tsqr>,
}

impl SvdNode {
    /// From a flow spec: `svd(k=K)`.
    pub fn from_spec(spec: &NodeSpec) -> Result<Self> {
        spec.check_keys(&["k"])?;
        let k = spec.get::<usize>("k")?;
        if k == Some(0) {
            return Err(Error::Param("svd: k must be at least 1".into()));
        }
        Ok(SvdNode { k, ..Default::default() })
    }
}

impl Node for SvdNode {
    fn kind(&self) -> &'static str {
        "svd"
    }
    fn spec(&self) -> String {
        self.k.map_or("svd".into(), |k| format!("svd(k={k})"))
    }
    fn begin(&mut self, schema: &Schema) -> Result<()> {
        let d = schema.x.len();
        if let Some(k) = self.k.filter(|k| *k > d) {
            return Err(Error::Param(format!("svd: k={k} is larger than the input dimension {d}")));
        }
        self.columns = schema.x.clone();
        self.partial = Some(Tsqr::default());
        Ok(())
    }
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        self.partial.as_mut().expect("begin() first").update(chunk.x, false)
    }
    fn join(&mut self, comm: &dyn Comm) -> Result<()> {
        let d = self.columns.len();
        let (n, _, r) = self.partial.take().ok_or_else(|| untrained("svd"))?.join(comm, d, false)?;
        let (_, s, vt) = r.svd(false, true).map_err(|e| Error::Fit(format!("svd: {e}")))?;
        let vt = vt.expect("asked for V");
        let keep = self.k.unwrap_or(d).min(s.len());
        let mut comps = vt.slice_axis(Axis(0), (0..keep).into()).to_owned();
        fix_signs(&mut comps);
        if s[keep - 1] <= s[0] * 1e-14 {
            return Err(Error::Fit(format!("svd: singular value {keep} is zero (rank-deficient data); use a smaller k")));
        }
        self.components = comps;
        self.singular_values = s.iter().take(keep).copied().collect();
        self.count = n;
        Ok(())
    }
    fn input_dim(&self) -> usize {
        self.columns.len()
    }
    fn output_names(&self) -> Vec<String> {
        (0..self.components.nrows()).map(|i| format!("u{i}")).collect()
    }
    fn execute(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let mut u = x.dot(&self.components.t());
        for mut row in u.rows_mut() {
            for (j, v) in row.iter_mut().enumerate() {
                *v /= self.singular_values[j];
            }
        }
        u
    }
    fn summary(&self) -> Vec<String> {
        vec![format!("{} rows x {} columns: singular values {}", self.count, self.columns.len(), super::moments::short(&self.singular_values))]
    }
    fn check_model(&self) -> Result<()> {
        let (s, d) = (super::Shapes("svd"), self.columns.len());
        s.rows("components", &self.components, d)?;
        s.vec("singular_values", &self.singular_values, self.components.nrows())?;
        if self.singular_values.contains(&0.0) {
            return Err(Error::Model("svd: a singular value is 0".into()));
        }
        Ok(())
    }
    fn to_json(&self) -> serde_json::Value {
        tagged("svd", self)
    }
}
