//! `fda(n=…, label=class)`: Fisher discriminant analysis, as MDP's FDANode, in MDP's two
//! training phases: first the class means (one pass), then the within-class scatter
//! S_W = Σ_c Σ_{x∈c} (x − m_c)(x − m_c)ᵀ and the total covariance S_T (second pass). The
//! generalised eigenproblem S_W v = λ S_T v is solved (ascending λ; the first `n` kept,
//! normalised vᵀ S_T v = 1). The class set is the union over ranks; a single class is an error.
//! Model: classes, class means, mean, eigenvalues, projection (rows); `execute` gives
//! (x − mean)·projectionᵀ.

use super::classes::{require_label, union};
use super::{rows, tagged, untrained, Node, NodeSpec};
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::{Chunk, Schema};
use crate::stats::{allreduce_symmetric, fix_signs, generalized_eigh, syrk_upper, Scatter};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The `fda` node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FdaNode {
    /// Output dimension; all when `None`.
    pub n: Option<usize>,
    /// Label column.
    pub label: Option<String>,
    /// Input column names.
    pub columns: Vec<String>,
    /// Class labels.
    pub classes: Vec<String>,
    /// Class means (classes × d).
    #[serde(with = "rows")]
    pub means: Array2<f64>,
    /// Overall mean.
    pub mean: Vec<f64>,
    /// Generalised eigenvalues of the kept directions, ascending.
    pub eigenvalues: Vec<f64>,
    /// Projection, one row per output (k × d).
    #[serde(with = "rows")]
    pub projection: Array2<f64>,
    /// Training rows.
    pub count: u64,
    #[serde(skip)]
    phase: usize,
    #[serde(skip)]
    sums: BTreeMap<String, (f64, Array1<f64>)>,
    #[serde(skip)]
    class_index: HashMap<String, usize>,
    #[serde(skip)]
    sw: Array2<f64>,
    #[serde(skip)]
    total: Option<Scatter>,
}

impl FdaNode {
    /// From a flow spec: `fda(n=K, label=class)`.
    pub fn from_spec(spec: &NodeSpec) -> Result<Self> {
        spec.check_keys(&["n", "label"])?;
        let n = spec.get::<usize>("n")?;
        if n == Some(0) {
            return Err(Error::Param("fda: n must be at least 1".into()));
        }
        Ok(FdaNode { n, label: spec.params.get("label").cloned(), ..Default::default() })
    }
}

impl Node for FdaNode {
    fn kind(&self) -> &'static str {
        "fda"
    }
    fn spec(&self) -> String {
        match self.n {
            Some(n) => format!("fda(n={n}, label={})", self.label.clone().unwrap_or_default()),
            None => format!("fda(label={})", self.label.clone().unwrap_or_default()),
        }
    }
    fn label(&self) -> Option<String> {
        self.label.clone()
    }
    fn begin(&mut self, schema: &Schema) -> Result<()> {
        if self.label.is_none() {
            return Err(Error::Param("fda: give the label column, e.g. fda(n=2, label=class)".into()));
        }
        require_label("fda", &self.label, schema)?;
        let d = schema.x.len();
        if let Some(n) = self.n.filter(|n| *n > d) {
            return Err(Error::Param(format!("fda: n={n} is larger than the input dimension {d}")));
        }
        self.columns = schema.x.clone();
        self.phase = 0;
        self.sums.clear();
        Ok(())
    }
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        let d = self.columns.len();
        if self.phase == 0 {
            for (row, l) in chunk.x.rows().into_iter().zip(chunk.labels) {
                let e = self.sums.entry(l.clone()).or_insert_with(|| (0.0, Array1::zeros(d)));
                e.0 += 1.0;
                e.1 += &row;
            }
        } else {
            self.total.as_mut().expect("phase 1").update(chunk.x);
            let mut centred = Vec::with_capacity(chunk.x.len());
            for (row, l) in chunk.x.rows().into_iter().zip(chunk.labels) {
                let c = self.class_index[l.as_str()];
                centred.extend(row.iter().zip(self.means.row(c)).map(|(a, m)| a - m));
            }
            syrk_upper(&centred, chunk.rows(), d, &mut self.sw);
        }
        Ok(())
    }
    fn join(&mut self, comm: &dyn Comm) -> Result<()> {
        let d = self.columns.len();
        if self.phase == 0 {
            let classes = union(comm, &self.sums.keys().cloned().collect())?;
            if classes.len() < 2 {
                return Err(Error::Fit(format!("fda: needs at least 2 classes, the data has only '{}'", classes[0])));
            }
            let c = classes.len();
            let mut flat = vec![0.0; c * (d + 1)];
            for (k, name) in classes.iter().enumerate() {
                if let Some((n, s)) = self.sums.get(name) {
                    flat[k * (d + 1)] = *n;
                    flat[k * (d + 1) + 1..(k + 1) * (d + 1)].copy_from_slice(s.as_slice().unwrap());
                }
            }
            comm.allreduce_sum(&mut flat);
            let all = Array2::from_shape_vec((c, d + 1), flat).unwrap();
            self.means = Array2::from_shape_fn((c, d), |(k, j)| all[[k, j + 1]] / all[[k, 0]]);
            self.class_index = classes.iter().enumerate().map(|(i, c)| (c.clone(), i)).collect();
            self.classes = classes;
            self.sw = Array2::zeros((d, d));
            self.total = Some(Scatter::new(d, true));
            self.phase = 1;
            return Ok(());
        }
        let mut total = self.total.take().ok_or_else(|| untrained("fda"))?;
        total.allreduce(comm)?;
        let sw = allreduce_symmetric(comm, &self.sw, &mut []);
        let st = total.covariance()?;
        let (vals, vecs) = generalized_eigh(&sw, &st, "fda: the total covariance matrix")?;
        let keep = self.n.unwrap_or(d);
        let mut proj = vecs.t().slice_axis(Axis(0), (0..keep).into()).to_owned();
        fix_signs(&mut proj);
        self.eigenvalues = vals.iter().take(keep).copied().collect();
        self.projection = proj;
        self.mean = total.mean().to_vec();
        self.count = total.n;
        self.phase = 2;
        Ok(())
    }
    fn another_pass(&self) -> bool {
        self.phase == 1
    }
    fn input_dim(&self) -> usize {
        self.columns.len()
    }
    fn output_names(&self) -> Vec<String> {
        (0..self.projection.nrows()).map(|i| format!("fd{i}")).collect()
    }
    fn execute(&self, x: ArrayView2<f64>) -> Array2<f64> {
        (&x - &Array1::from(self.mean.clone())).dot(&self.projection.t())
    }
    fn summary(&self) -> Vec<String> {
        vec![format!(
            "{} -> {} dims, {} classes [{}], eigenvalues {}",
            self.columns.len(),
            self.projection.nrows(),
            self.classes.len(),
            self.classes.join(", "),
            super::moments::short(&self.eigenvalues)
        )]
    }
    fn check_model(&self) -> Result<()> {
        let (s, d) = (super::Shapes("fda"), self.columns.len());
        s.rows("projection", &self.projection, d)?;
        s.vec("mean", &self.mean, d)
    }
    fn resolve_columns(&mut self, name_of: &dyn Fn(&str) -> String) {
        self.label = self.label.as_deref().map(name_of);
    }
    fn to_json(&self) -> serde_json::Value {
        tagged("fda", self)
    }
}
