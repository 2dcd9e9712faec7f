//! `covariance`: mean, sample covariance (n − 1 denominator) and correlation of the input
//! columns (daal4py's `covariance`). A statistics node: `execute` passes rows through.

use super::define::{Kind, NodeParams, Report, Transform};
use super::{rows, NodeSpec};
use crate::error::Result;
use crate::io::Schema;
use crate::stats::{correlation, Scatter};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// `covariance`'s parameters (none).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CovarianceParams {}

/// The trained `covariance` node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CovarianceModel {
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
}

impl NodeParams for CovarianceParams {
    const KIND: Kind = Kind::new("covariance", &[], "covariance (cov): covariance and correlation matrices").aliases(&["cov"]).passthrough();
    type Partial = Scatter;
    type Model = CovarianceModel;
    fn from_spec(_: &NodeSpec) -> Result<Self> {
        Ok(CovarianceParams {})
    }
    fn spec(&self) -> String {
        "covariance".into()
    }
    fn partial(&self, schema: &Schema) -> Scatter {
        Scatter::new(schema.x.len(), true)
    }
    fn finalize(&self, all: Scatter, _: &Schema) -> Result<CovarianceModel> {
        let covariance = all.covariance()?;
        Ok(CovarianceModel { count: all.n, mean: all.mean().to_vec(), correlation: correlation(&covariance), covariance })
    }
}

impl Transform for CovarianceModel {}

impl Report for CovarianceModel {
    fn summary(&self, input: &[String], full: bool) -> Vec<String> {
        let d = input.len();
        vec![format!("{} rows; {d}x{d} sample covariance (n-1) and correlation; mean {}", self.count, super::moments::short(&self.mean, full))]
    }
    fn check_loaded(&self, input: &[String]) -> Result<()> {
        let (s, d) = (super::Shapes("covariance"), input.len());
        s.vec("mean", &self.mean, d)?;
        s.mat("covariance", &self.covariance, d, d)
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

    #[test]
    fn covariance_over_simulated_ranks_matches_two_pass() {
        let x = Array::from_shape_fn((40, 3), |(i, j)| ((i * 7 + j * 13) % 11) as f64 + 0.1 * j as f64 * i as f64);
        let (mean, cov) = two_pass_covariance(x.view());
        for ranks in [1, 2, 3, 5, 8] {
            let out = run_threads(ranks, |c| {
                let (lo, hi) = ((c.rank() * 40) / ranks, ((c.rank() + 1) * 40) / ranks);
                let mut node = crate::nodes::CovarianceNode::default();
                node.fit(c, x.slice(s![lo..hi, ..]), &["a".into(), "b".into(), "c".into()]).unwrap();
                node
            });
            let out: Vec<CovarianceModel> = out.iter().map(|n| n.model().unwrap().clone()).collect();
            for n in &out {
                assert_eq!(n.covariance, out[0].covariance);
                assert!((&n.covariance - &cov).iter().all(|v| v.abs() < 1e-12));
                assert!(n.mean.iter().zip(mean.iter()).all(|(a, b)| (a - b).abs() < 1e-13));
                assert!((n.correlation[[0, 1]] - cov[[0, 1]] / (cov[[0, 0]] * cov[[1, 1]]).sqrt()).abs() < 1e-13);
            }
        }
    }
}
