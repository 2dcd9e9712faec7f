//! `whitening`: PCA whose outputs have unit sample variance (MDP's crate::nodes::WhiteningNode).
//!
//! Same parameters as `pca` (`n`, `var`, `method`). The kept components are divided by the
//! square root of their eigenvalues; a component with a (numerically) zero eigenvalue cannot be
//! whitened and is a clear error that suggests a smaller `n`.

use super::define::{size_fits, Kind, NodeParams, Report, Transform};
use super::pca::{PcaModel, PcaParams};
use super::NodeSpec;
use crate::error::{Error, Result};
use crate::io::Schema;
use crate::stats::Scatter;
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// `whitening`'s parameters: `pca`'s.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WhiteningParams(pub PcaParams);

/// The trained `whitening` node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WhiteningModel {
    /// The underlying PCA (components are unit vectors).
    pub pca: PcaModel,
    /// Whitening matrix: kept components / sqrt(eigenvalue), one per row.
    #[serde(with = "super::rows")]
    pub whitening: Array2<f64>,
}

impl NodeParams for WhiteningParams {
    const KIND: Kind = Kind::new("whitening", &["n", "var", "method"], "whitening(n=K | var=F): PCA scaled to unit variance").aliases(&["whiten"]);
    type Partial = Scatter;
    type Model = WhiteningModel;
    fn from_spec(spec: &NodeSpec) -> Result<Self> {
        PcaParams::from_spec(spec).map(WhiteningParams)
    }
    fn validate(&self) -> Result<()> {
        self.0.validate_as("whitening")
    }
    fn spec(&self) -> String {
        self.0.spec_as("whitening")
    }
    fn check(&self, schema: &Schema) -> Result<()> {
        size_fits("whitening", "n", self.0.n, schema.x.len())
    }
    fn partial(&self, schema: &Schema) -> Scatter {
        Scatter::new(schema.x.len(), true)
    }
    fn finalize(&self, all: Scatter, schema: &Schema) -> Result<WhiteningModel> {
        let pca = self.0.fit(&all, &schema.x, "whitening")?;
        let top = pca.eigenvalues[0].max(0.0);
        let mut w = pca.components.clone();
        for (i, mut row) in w.rows_mut().into_iter().enumerate() {
            let ev = pca.eigenvalues[i];
            if ev.is_nan() || ev <= top * 1e-12 {
                return Err(Error::Fit(if i == 0 {
                    format!(
                        "whitening: the data have no variance in any direction (largest eigenvalue {ev:.3e}: constant columns?); there is nothing to whiten"
                    )
                } else {
                    format!("whitening: component {} has variance {ev:.3e} (the data are rank-deficient); use n={i} or less", i + 1)
                }));
            }
            row.mapv_inplace(|v| v / ev.sqrt());
        }
        Ok(WhiteningModel { pca, whitening: w })
    }
    /// Model files before format v2 kept the parameters and the input columns inside `pca`.
    fn upgrade(node: &serde_json::Value) -> Option<serde_json::Value> {
        if node.get("params").is_some() {
            return None;
        }
        let mut node = node.clone();
        for key in ["params", "columns"] {
            if let Some(v) = node.get("pca").and_then(|p| p.get(key)).cloned() {
                node[key] = v;
            }
        }
        Some(node)
    }
}

impl Transform for WhiteningModel {
    fn output_names(&self, _: &[String]) -> Vec<String> {
        (0..self.whitening.nrows()).map(|i| format!("w{i}")).collect()
    }
    fn transform(&self, x: ArrayView2<f64>) -> Array2<f64> {
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
}

impl Report for WhiteningModel {
    fn summary(&self, input: &[String], full: bool) -> Vec<String> {
        let mut s = self.pca.summary(input, full);
        s[0] = format!("{} (outputs have unit variance)", s[0]);
        s
    }
    fn check_loaded(&self, input: &[String]) -> Result<()> {
        self.pca.check_loaded(input)?;
        super::Shapes("whitening").mat("whitening", &self.whitening, self.pca.components.nrows(), input.len())
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
    fn whitened_output_has_identity_covariance() {
        let x = Array::from_shape_fn((50, 3), |(i, j)| ((i * (j + 3)) % 17) as f64 * (j as f64 + 1.0) + (i as f64 * 0.3).sin());
        let names: Vec<String> = (0..3).map(|j| format!("c{j}")).collect();
        let out = run_threads(3, |c| {
            let (lo, hi) = ((c.rank() * 50) / 3, ((c.rank() + 1) * 50) / 3);
            let mut node = crate::nodes::WhiteningNode::default();
            node.fit(c, x.slice(s![lo..hi, ..]), &names).unwrap();
            node
        });
        let y = out[0].execute(x.view()).unwrap();
        let (mean, cov) = two_pass_covariance(y.view());
        assert!(mean.iter().all(|v| v.abs() < 1e-10));
        assert!((&cov - &Array2::<f64>::eye(3)).iter().all(|v| v.abs() < 1e-10));
        assert_eq!(out[1].model().unwrap().whitening, out[0].model().unwrap().whitening);
        let back = out[0].inverse(y.view()).unwrap();
        assert!((&back - &x).iter().all(|v| v.abs() < 1e-9));
    }

    #[test]
    fn rank_deficient_data_is_a_clear_error() {
        let x = Array::from_shape_fn((20, 2), |(i, j)| i as f64 * (j as f64 + 1.0));
        let mut node = crate::nodes::WhiteningNode::default();
        let e = node.fit(&crate::comm::SingleComm, x.view(), &["a".into(), "b".into()]).unwrap_err();
        assert!(e.to_string().contains("rank-deficient"), "{e}");
    }
}
