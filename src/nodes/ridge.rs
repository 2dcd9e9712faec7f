//! `ridge`: ridge regression, `ridge(alpha=1.0, target=y)`; the intercept is not penalised
//! (`intercept=false` drops it). `alpha` may be a list, `alpha=[0.1,1,10]`: one model per alpha
//! from the same single pass over the data (the joined centred cross-products are shared).
//!
//! Model: alphas, and per alpha the coefficients, intercepts, training R² and RMSE. `execute`
//! appends `<target>_pred` (or `<target>_pred@<alpha>` for several alphas) to the rows.

use super::linreg::{solve_normal, target_indices, target_params, Fit};
use super::{tagged, untrained, Node, NodeSpec, Task};
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::{Chunk, Schema};
use crate::stats::Scatter;
use ndarray::{concatenate, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

/// The `ridge` node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RidgeNode {
    /// Target column names.
    pub target: Vec<String>,
    /// Fit an (unpenalised) intercept.
    pub fit_intercept: bool,
    /// Regularisation strengths.
    pub alphas: Vec<f64>,
    /// Feature names.
    pub columns: Vec<String>,
    /// Training rows over all ranks.
    pub count: u64,
    /// One fit per alpha.
    pub fits: Vec<Fit>,
    #[serde(skip)]
    idx: Vec<usize>,
    #[serde(skip)]
    partial: Option<Scatter>,
}

impl RidgeNode {
    /// From a flow spec: `ridge(alpha=1.0 | alpha=[...], target=y, intercept=true)`.
    pub fn from_spec(spec: &NodeSpec) -> Result<Self> {
        spec.check_keys(&["alpha", "target", "intercept"])?;
        let (target, intercept) = target_params(spec)?;
        let alphas = match spec.get_list("alpha") {
            None => vec![1.0],
            Some(l) => l
                .iter()
                .map(|a| a.parse::<f64>().map_err(|_| Error::Param(format!("ridge: alpha {a:?} is not a number"))))
                .collect::<Result<Vec<f64>>>()?,
        };
        if let Some(a) = alphas.iter().find(|a| !(**a >= 0.0) || !a.is_finite()) {
            return Err(Error::Param(format!("ridge: alpha must be >= 0, got {a}")));
        }
        if alphas.is_empty() {
            return Err(Error::Param("ridge: alpha list is empty".into()));
        }
        Ok(RidgeNode { target, fit_intercept: intercept, alphas, ..Default::default() })
    }

    fn suffix(&self, k: usize) -> String {
        if self.alphas.len() == 1 { String::new() } else { format!("@{}", self.alphas[k]) }
    }
}

impl Node for RidgeNode {
    fn kind(&self) -> &'static str {
        "ridge"
    }
    fn spec(&self) -> String {
        let alphas: Vec<String> = self.alphas.iter().map(|a| a.to_string()).collect();
        let a = if alphas.len() == 1 { alphas[0].clone() } else { format!("[{}]", alphas.join(",")) };
        format!("ridge(alpha={a}, target=[{}]{})", self.target.join(","), if self.fit_intercept { "" } else { ", intercept=false" })
    }
    fn targets(&self) -> Vec<String> {
        self.target.clone()
    }
    fn task(&self) -> Task {
        Task::Regression
    }
    fn begin(&mut self, schema: &Schema) -> Result<()> {
        self.idx = target_indices("ridge", &self.target, schema)?;
        self.columns = schema.x.clone();
        self.partial = Some(Scatter::new(schema.x.len() + self.idx.len(), true));
        Ok(())
    }
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        self.partial.as_mut().expect("begin() first").update_joint(chunk.x, chunk.y, &self.idx);
        Ok(())
    }
    fn join(&mut self, comm: &dyn Comm) -> Result<()> {
        let mut s = self.partial.take().ok_or_else(|| untrained("ridge"))?;
        s.allreduce(comm)?;
        self.count = s.n;
        let d = self.columns.len();
        self.fits = self.alphas.iter().map(|&a| solve_normal(&s, d, a, self.fit_intercept, "ridge")).collect::<Result<_>>()?;
        Ok(())
    }
    fn take_partial(&mut self) -> Option<Vec<u8>> {
        super::take_scatter(&mut self.partial)
    }
    fn merge_partial(&mut self, bytes: &[u8]) -> Result<()> {
        super::merge_scatter(&mut self.partial, bytes, "ridge")
    }
    fn input_dim(&self) -> usize {
        self.columns.len()
    }
    fn output_names(&self) -> Vec<String> {
        let preds = (0..self.alphas.len()).flat_map(|k| self.target.iter().map(move |t| (k, t)));
        self.columns.iter().cloned().chain(preds.map(|(k, t)| format!("{t}_pred{}", self.suffix(k)))).collect()
    }
    fn predict(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let parts: Vec<Array2<f64>> = self.fits.iter().map(|f| f.predict(x)).collect();
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        ndarray::concatenate(Axis(1), &views).expect("same rows")
    }
    fn execute(&self, x: ArrayView2<f64>) -> Array2<f64> {
        concatenate![Axis(1), x, self.predict(x)]
    }
    fn summary(&self) -> Vec<String> {
        let mut out = vec![format!("{} features -> {} target(s), {} alpha(s), trained on {} rows", self.columns.len(), self.target.len(), self.alphas.len(), self.count)];
        for (k, f) in self.fits.iter().enumerate() {
            for (j, t) in self.target.iter().enumerate() {
                out.push(format!("alpha {}: {t}: intercept {:.6}, R² {:.6}, RMSE {:.6}", self.alphas[k], f.intercept[j], f.r2[j], f.rmse[j]));
            }
        }
        out
    }
    fn check_model(&self) -> Result<()> {
        if self.fits.len() != self.alphas.len() {
            return Err(Error::Model(format!("ridge: {} fits for {} alphas", self.fits.len(), self.alphas.len())));
        }
        self.fits.iter().try_for_each(|f| f.check("ridge", self.target.len(), self.columns.len()))
    }
    fn resolve_columns(&mut self, name_of: &dyn Fn(&str) -> String) {
        self.target = self.target.iter().map(|t| name_of(t)).collect();
    }
    fn to_json(&self) -> serde_json::Value {
        tagged("ridge", self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array, Array1};
    use ndarray_linalg::Solve;

    #[test]
    fn ridge_matches_the_closed_form_and_alpha_zero_is_least_squares() {
        let x = Array::from_shape_fn((80, 2), |(i, j)| ((i * (j + 3)) as f64 * 0.21).sin() + j as f64);
        let y = Array::from_shape_fn((80, 1), |(i, _)| 3.0 + 2.0 * x[[i, 0]] - x[[i, 1]] + 0.1 * (i as f64).cos());
        let schema = Schema { x: vec!["a".into(), "b".into()], y: vec!["y".into()], label: None };
        let mut node = RidgeNode::from_spec(&NodeSpec::parse("ridge(alpha=[0,2.5], target=y)").unwrap()).unwrap();
        let out = crate::comm::run_threads(3, |c| {
            let (lo, hi) = (c.rank() * 80 / 3, (c.rank() + 1) * 80 / 3);
            let mut n = node.clone();
            n.fit_chunk(c, &Chunk { x: x.slice(s![lo..hi, ..]), y: y.slice(s![lo..hi, ..]), labels: &[], kept: &[], segment_start: true, origin: None, mapped: None }, &schema).unwrap();
            n
        });
        node = out[0].clone();
        let xm = x.mean_axis(Axis(0)).unwrap();
        let ym = y.mean_axis(Axis(0)).unwrap();
        let xc = &x - &xm;
        let yc = (&y - &ym).column(0).to_owned();
        for (k, alpha) in [0.0, 2.5].iter().enumerate() {
            let a = xc.t().dot(&xc) + Array2::<f64>::eye(2) * *alpha;
            let b: Array1<f64> = a.solve(&xc.t().dot(&yc)).unwrap();
            let f = &node.fits[k];
            assert!((f.coefficients.row(0).to_owned() - &b).iter().all(|v| v.abs() < 1e-10));
            assert!((f.intercept[0] - (ym[0] - xm.dot(&b))).abs() < 1e-10);
        }
        assert_eq!(node.output_names()[2..], ["y_pred@0".to_string(), "y_pred@2.5".to_string()]);
        assert!(RidgeNode::from_spec(&NodeSpec::parse("ridge(alpha=-1, target=y)").unwrap()).is_err());
    }
}
