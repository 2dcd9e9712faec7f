//! `covariance`: mean, sample covariance (n − 1 denominator) and correlation of the input
//! columns (daal4py's `covariance`). A statistics node: `execute` passes rows through.

use super::{rows, tagged, untrained, Node, NodeSpec};
use crate::comm::Comm;
use crate::io::{Chunk, Schema};
use crate::error::Result;
use crate::stats::{correlation, Scatter};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// The `covariance` node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CovarianceNode {
    /// Input column names.
    pub columns: Vec<String>,
    /// Rows seen on all ranks.
    pub count: u64,
    /// Column means.
    pub mean: Vec<f64>,
    /// Sample covariance, n − 1 denominator.
    #[serde(with = "rows")]
    pub covariance: Array2<f64>,
    /// Pearson correlation (0 off the diagonal for constant columns).
    #[serde(with = "rows")]
    pub correlation: Array2<f64>,
    #[serde(skip)]
    partial: Option<Scatter>,
}

impl CovarianceNode {
    /// From a flow spec (no parameters).
    pub fn from_spec(spec: &NodeSpec) -> Result<Self> {
        spec.check_keys(&[])?;
        Ok(Self::default())
    }
}

impl Node for CovarianceNode {
    fn kind(&self) -> &'static str {
        "covariance"
    }
    fn spec(&self) -> String {
        "covariance".into()
    }
    fn passthrough(&self) -> bool {
        true
    }
    fn begin(&mut self, schema: &Schema) -> Result<()> {
        let names = &schema.x;
        self.columns = names.to_vec();
        self.partial = Some(Scatter::new(names.len(), true));
        Ok(())
    }
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        self.partial.as_mut().expect("begin() first").update(chunk.x);
        Ok(())
    }
    fn join(&mut self, comm: &dyn Comm) -> Result<()> {
        let mut s = self.partial.take().ok_or_else(|| untrained("covariance"))?;
        s.allreduce(comm)?;
        self.covariance = s.covariance()?;
        self.correlation = correlation(&self.covariance);
        self.mean = s.mean().to_vec();
        self.count = s.n;
        Ok(())
    }
    fn take_partial(&mut self) -> Option<Vec<u8>> {
        super::take_scatter(&mut self.partial)
    }
    fn merge_partial(&mut self, bytes: &[u8]) -> Result<()> {
        super::merge_scatter(&mut self.partial, bytes, "covariance")
    }
    fn input_dim(&self) -> usize {
        self.columns.len()
    }
    fn output_names(&self) -> Vec<String> {
        self.columns.clone()
    }
    fn execute(&self, x: ArrayView2<f64>) -> Array2<f64> {
        x.to_owned()
    }
    fn summary(&self) -> Vec<String> {
        vec![format!(
            "{} rows; {}x{} sample covariance (n-1) and correlation; mean {}",
            self.count,
            self.columns.len(),
            self.columns.len(),
            super::moments::short(&self.mean)
        )]
    }
    fn check_model(&self) -> Result<()> {
        let (s, d) = (super::Shapes("covariance"), self.columns.len());
        s.vec("mean", &self.mean, d)?;
        s.mat("covariance", &self.covariance, d, d)
    }
    fn to_json(&self) -> serde_json::Value {
        tagged("covariance", self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comm::run_threads;
    use crate::stats::two_pass_covariance;
    use ndarray::{s, Array};

    #[test]
    fn covariance_over_simulated_ranks_matches_two_pass() {
        let x = Array::from_shape_fn((40, 3), |(i, j)| ((i * 7 + j * 13) % 11) as f64 + 0.1 * j as f64 * i as f64);
        let (mean, cov) = two_pass_covariance(x.view());
        for ranks in [1, 2, 3, 5, 8] {
            let out = run_threads(ranks, |c| {
                let (lo, hi) = ((c.rank() * 40) / ranks, ((c.rank() + 1) * 40) / ranks);
                let mut node = CovarianceNode::default();
                node.fit(c, x.slice(s![lo..hi, ..]), &["a".into(), "b".into(), "c".into()]).unwrap();
                node
            });
            for n in &out {
                assert_eq!(n.covariance, out[0].covariance);
                assert!((&n.covariance - &cov).iter().all(|v| v.abs() < 1e-12));
                assert!(n.mean.iter().zip(mean.iter()).all(|(a, b)| (a - b).abs() < 1e-13));
                assert!((n.correlation[[0, 1]] - cov[[0, 1]] / (cov[[0, 0]] * cov[[1, 1]]).sqrt()).abs() < 1e-13);
            }
        }
    }
}
