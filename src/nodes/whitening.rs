//! `whitening`: PCA whose outputs have unit sample variance (MDP's WhiteningNode).
//!
//! Same parameters as `pca` (`n`, `var`, `method`). The kept components are divided by the
//! square root of their eigenvalues; a component with a (numerically) zero eigenvalue cannot be
//! whitened and is a clear error that suggests a smaller `n`.

use super::pca::{PcaNode, PcaParams};
use super::{tagged, untrained, Node, NodeSpec};
use crate::comm::Comm;
use crate::io::{Chunk, Schema};
use crate::error::{Error, Result};
use crate::stats::Scatter;
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// The `whitening` node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WhiteningNode {
    /// The underlying PCA (components are unit vectors).
    pub pca: PcaNode,
    /// Whitening matrix: kept components / sqrt(eigenvalue), one per row.
    #[serde(with = "super::rows")]
    pub whitening: Array2<f64>,
    #[serde(skip)]
    partial: Option<Scatter>,
}

impl WhiteningNode {
    /// From a flow spec: same parameters as `pca`.
    pub fn from_spec(spec: &NodeSpec) -> Result<Self> {
        Ok(Self::new(PcaParams::from_spec(spec)?))
    }

    /// An untrained node.
    pub fn new(params: PcaParams) -> Self {
        WhiteningNode { pca: PcaNode::new(params), ..Default::default() }
    }
}

impl Node for WhiteningNode {
    fn kind(&self) -> &'static str {
        "whitening"
    }
    fn spec(&self) -> String {
        self.pca.params.spec("whitening")
    }
    fn begin(&mut self, schema: &Schema) -> Result<()> {
        let names = &schema.x;
        self.pca.check_dim("whitening", names.len())?;
        self.pca.columns = names.to_vec();
        self.partial = Some(Scatter::new(names.len(), true));
        Ok(())
    }
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        self.partial.as_mut().expect("begin() first").update(chunk.x);
        Ok(())
    }
    fn join(&mut self, comm: &dyn Comm) -> Result<()> {
        let mut s = self.partial.take().ok_or_else(|| untrained("whitening"))?;
        s.allreduce(comm)?;
        self.pca.finalize(&s, "whitening")?;
        let k = self.pca.components.nrows();
        let top = self.pca.eigenvalues[0].max(0.0);
        let mut w = self.pca.components.clone();
        for i in 0..k {
            let ev = self.pca.eigenvalues[i];
            if !(ev > top * 1e-12) {
                return Err(Error::Fit(format!(
                    "whitening: component {} has variance {ev:.3e} (the data are rank-deficient); use n={i} or less",
                    i + 1
                )));
            }
            w.row_mut(i).mapv_inplace(|v| v / ev.sqrt());
        }
        self.whitening = w;
        Ok(())
    }
    fn take_partial(&mut self) -> Option<Vec<u8>> {
        super::take_scatter(&mut self.partial)
    }
    fn merge_partial(&mut self, bytes: &[u8]) -> Result<()> {
        super::merge_scatter(&mut self.partial, bytes, "whitening")
    }
    fn input_dim(&self) -> usize {
        self.pca.columns.len()
    }
    fn output_names(&self) -> Vec<String> {
        (0..self.whitening.nrows()).map(|i| format!("w{i}")).collect()
    }
    fn execute(&self, x: ArrayView2<f64>) -> Array2<f64> {
        self.pca.center(x).dot(&self.whitening.t())
    }
    fn inverse(&self, y: ArrayView2<f64>) -> Option<Array2<f64>> {
        // Undo the unit-variance scaling, then the PCA.
        let mut coords = y.to_owned();
        for mut row in coords.rows_mut() {
            for (i, v) in row.iter_mut().enumerate() {
                *v *= self.pca.eigenvalues[i].sqrt();
            }
        }
        Some(self.pca.reconstruct(coords.view()))
    }
    fn summary(&self) -> Vec<String> {
        let mut s = self.pca.summary();
        s[0] = format!("{} (outputs have unit variance)", s[0]);
        s
    }
    fn check_model(&self) -> Result<()> {
        self.pca.check_model()?;
        super::Shapes("whitening").mat("whitening", &self.whitening, self.pca.components.nrows(), self.pca.columns.len())
    }
    fn to_json(&self) -> serde_json::Value {
        tagged("whitening", self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comm::run_threads;
    use crate::stats::two_pass_covariance;
    use ndarray::{s, Array};

    #[test]
    fn whitened_output_has_identity_covariance() {
        let x = Array::from_shape_fn((50, 3), |(i, j)| ((i * (j + 3)) % 17) as f64 * (j as f64 + 1.0) + (i as f64 * 0.3).sin());
        let names: Vec<String> = (0..3).map(|j| format!("c{j}")).collect();
        let out = run_threads(3, |c| {
            let (lo, hi) = ((c.rank() * 50) / 3, ((c.rank() + 1) * 50) / 3);
            let mut node = WhiteningNode::new(PcaParams::default());
            node.fit(c, x.slice(s![lo..hi, ..]), &names).unwrap();
            node
        });
        let y = out[0].execute(x.view());
        let (mean, cov) = two_pass_covariance(y.view());
        assert!(mean.iter().all(|v| v.abs() < 1e-10));
        assert!((&cov - &Array2::<f64>::eye(3)).iter().all(|v| v.abs() < 1e-10));
        assert_eq!(out[1].whitening, out[0].whitening);
        let back = out[0].inverse(y.view()).unwrap();
        assert!((&back - &x).iter().all(|v| v.abs() < 1e-9));
    }

    #[test]
    fn rank_deficient_data_is_a_clear_error() {
        let x = Array::from_shape_fn((20, 2), |(i, j)| i as f64 * (j as f64 + 1.0));
        let mut node = WhiteningNode::new(PcaParams::default());
        let e = node.fit(&crate::comm::SingleComm, x.view(), &["a".into(), "b".into()]).unwrap_err();
        assert!(e.to_string().contains("rank-deficient"), "{e}");
    }
}
