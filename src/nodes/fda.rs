//! `fda(n=…, label=class)`: Fisher discriminant analysis, as MDP's FDANode, in MDP's two
//! training phases: first the class means (one pass), then the within-class scatter
//! S_W = Σ_c Σ_{x∈c} (x − m_c)(x − m_c)ᵀ and the total covariance S_T (second pass). The
//! generalised eigenproblem S_W v = λ S_T v is solved (ascending λ; the first `n` kept,
//! normalised vᵀ S_T v = 1). The class set is the union over ranks; a single class is an error.
//! Model: classes, class means, mean, eigenvalues, projection (rows); `execute` gives
//! (x − mean)·projectionᵀ.

use super::classes::{Counts, PerClass};
use super::define::{params_from_fields, size_fits, Columns, Kind, NodeParams, Partial, Report, Transform};
use super::{rows, spec_text, NodeSpec};
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::{Chunk, Schema};
use crate::stats::{allreduce_symmetric, fix_signs, generalized_eigh, syrk_upper, Scatter};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// `fda`'s parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FdaParams {
    /// Output dimension; all when `None`.
    pub n: Option<usize>,
    /// Label column.
    pub label: Option<String>,
}

/// The trained `fda` node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FdaModel {
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
}

/// MDP's two phases: the class means, then the scatter about them.
// The second phase is the big one, and a partial is one of a few per rank: boxing it would
// only add an indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Serialize, Deserialize)]
pub enum FdaPartial {
    /// Rows and sums per class.
    Means(PerClass<Counts>),
    /// The within-class scatter about the agreed class means, and the total moments.
    Scatter {
        /// Class labels, in the order of `means`' rows.
        classes: Vec<String>,
        /// Class means (classes × d).
        means: Array2<f64>,
        /// Upper triangle of S_W.
        sw: Array2<f64>,
        /// Moments of all rows (S_T).
        total: Scatter,
        /// Row of `means` per class label.
        index: HashMap<String, usize>,
    },
}

impl NodeParams for FdaParams {
    const KIND: Kind = Kind::new("fda", &["n", "label"], "fda(n=K, label=c): Fisher discriminant analysis (two passes)");
    const PASSES: usize = 2;
    type Partial = FdaPartial;
    type Model = FdaModel;
    /// `fda(n=K, label=class)`.
    fn from_spec(spec: &NodeSpec) -> Result<Self> {
        Ok(FdaParams { n: spec.get("n")?, label: spec.params.get("label").cloned() })
    }
    fn validate(&self) -> Result<()> {
        crate::nodes::define::at_least_one("fda", "n", self.n)
    }
    fn spec(&self) -> String {
        spec_text("fda", &[("n", self.n.map(|n| n.to_string())), ("label", self.label.clone())])
    }
    fn columns(&mut self) -> Columns<'_> {
        Columns::Label(&mut self.label)
    }
    fn check(&self, schema: &Schema) -> Result<()> {
        size_fits("fda", "n", self.n, schema.x.len())
    }
    fn partial(&self, schema: &Schema) -> FdaPartial {
        FdaPartial::Means(PerClass::new(Counts::new(schema.x.len())))
    }
    fn next_pass(&self, _pass: usize, joined: FdaPartial, schema: &Schema) -> Result<FdaPartial> {
        let FdaPartial::Means(sums) = joined else { return Err(Error::Fit("fda: the first pass holds no class sums".into())) };
        let (classes, parts) = sums.into_sorted()?;
        if classes.len() < 2 {
            return Err(Error::Fit(format!("fda: needs at least 2 classes, the data has only '{}'", classes[0])));
        }
        let d = schema.x.len();
        let means = Array2::from_shape_fn((classes.len(), d), |(k, j)| parts[k].sums[j] / parts[k].n);
        let index = classes.iter().enumerate().map(|(i, c)| (c.clone(), i)).collect();
        Ok(FdaPartial::Scatter { classes, means, sw: Array2::zeros((d, d)), total: Scatter::new(d, true), index })
    }
    fn finalize(&self, all: FdaPartial, schema: &Schema) -> Result<FdaModel> {
        let FdaPartial::Scatter { classes, means, sw, total, .. } = all else { return Err(Error::Fit("fda: the second pass holds no scatter".into())) };
        let st = total.covariance()?;
        let (vals, vecs) = generalized_eigh(&sw, &st, "fda: the total covariance matrix")?;
        let keep = self.n.unwrap_or(schema.x.len());
        let mut projection = vecs.t().slice_axis(Axis(0), (0..keep).into()).to_owned();
        fix_signs(&mut projection);
        Ok(FdaModel { classes, means, mean: total.mean().to_vec(), eigenvalues: vals.iter().take(keep).copied().collect(), projection, count: total.n })
    }
    fn upgrade(node: &serde_json::Value) -> Option<serde_json::Value> {
        params_from_fields(node, &["n", "label"])
    }
}

impl Partial for FdaPartial {
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        match self {
            FdaPartial::Means(sums) => sums.update(chunk),
            FdaPartial::Scatter { means, sw, total, index, .. } => {
                total.update(chunk.x);
                let mut centred = Vec::with_capacity(chunk.x.len());
                for (row, l) in chunk.x.rows().into_iter().zip(chunk.labels) {
                    // The class set is the union over all ranks, so every label has a mean.
                    let c = index[l.as_str()];
                    centred.extend(row.iter().zip(means.row(c)).map(|(a, m)| a - m));
                }
                syrk_upper(&centred, chunk.rows(), chunk.x.ncols(), sw);
                Ok(())
            }
        }
    }
    fn merge(&mut self, other: Self) {
        match (self, other) {
            (FdaPartial::Means(a), FdaPartial::Means(b)) => a.merge(b),
            (FdaPartial::Scatter { sw, total, .. }, FdaPartial::Scatter { sw: sw2, total: t2, .. }) => {
                *sw += &sw2;
                total.merge(&t2);
            }
            _ => unreachable!("partials of one pass"),
        }
    }
    fn join(self, comm: &dyn Comm) -> Result<Self> {
        match self {
            FdaPartial::Means(sums) => sums.join(comm).map(FdaPartial::Means),
            FdaPartial::Scatter { classes, means, sw, mut total, index } => {
                total.allreduce(comm)?;
                let sw = allreduce_symmetric(comm, &sw, &mut []);
                Ok(FdaPartial::Scatter { classes, means, sw, total, index })
            }
        }
    }
}

impl Transform for FdaModel {
    fn output_names(&self, _input: &[String]) -> Vec<String> {
        (0..self.projection.nrows()).map(|i| format!("fd{i}")).collect()
    }
    fn transform(&self, x: ArrayView2<f64>) -> Array2<f64> {
        (&x - &Array1::from(self.mean.clone())).dot(&self.projection.t())
    }
}

impl Report for FdaModel {
    fn warnings(&self) -> Vec<String> {
        super::classes::label_warnings("fda", self.classes.len(), self.count as f64)
    }
    fn summary(&self, input: &[String], full: bool) -> Vec<String> {
        let (dims, eigen) = (self.projection.nrows(), super::moments::short(&self.eigenvalues, full));
        vec![format!("{} -> {dims} dims, {}, eigenvalues {eigen}", input.len(), super::classes::describe(&self.classes, full))]
    }
    fn check_loaded(&self, input: &[String]) -> Result<()> {
        let (s, d) = (super::Shapes("fda"), input.len());
        s.rows("projection", &self.projection, d)?;
        s.vec("mean", &self.mean, d)
    }
}
