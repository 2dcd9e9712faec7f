//! `ridge`: ridge regression, `ridge(alpha=1.0, target=y)`; the intercept is not penalised
//! (`intercept=false` drops it). `alpha` may be a list, `alpha=[0.1,1,10]`: one model per alpha
//! from the same single pass over the data (the joined centred cross-products are shared).
//!
//! Model: alphas, and per alpha the coefficients, intercepts, training R² and RMSE. `execute`
//! appends `<target>_pred` (or `<target>_pred@<alpha>` for several alphas) to the rows.

use super::define::{Columns, Kind, NodeParams, Partial, Predict, Report};
use super::linreg::{solve_normal, target_params, Fit};
use super::{NodeSpec, Task};
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::{Chunk, Schema};
use crate::stats::Scatter;
use ndarray::{Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

/// `ridge`'s parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RidgeParams {
    /// Target column names.
    pub target: Vec<String>,
    /// Fit an (unpenalised) intercept.
    pub fit_intercept: bool,
    /// Regularisation strengths.
    pub alphas: Vec<f64>,
}

/// alpha 1 with an intercept (scikit-learn's); the target must be given.
impl Default for RidgeParams {
    fn default() -> Self {
        RidgeParams { target: Vec::new(), fit_intercept: true, alphas: vec![1.0] }
    }
}

/// The trained `ridge` node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RidgeModel {
    /// The parameters (targets and alphas name the prediction columns).
    pub params: RidgeParams,
    /// Training rows over all ranks.
    pub count: u64,
    /// One fit per alpha.
    pub fits: Vec<Fit>,
}

/// The statistics of `[x | targets]`; `idx` picks the targets from the chunk's target columns.
#[derive(Serialize, Deserialize)]
pub struct RidgePartial {
    joint: Scatter,
    #[serde(skip)]
    idx: Vec<usize>,
}

impl NodeParams for RidgeParams {
    const KIND: Kind =
        Kind::new("ridge", &["alpha", "target", "intercept"], "ridge(alpha=1 | alpha=[..], target=y, intercept=true): ridge regression, one model per alpha")
            .task(Task::Regression);
    type Partial = RidgePartial;
    type Model = RidgeModel;
    /// `ridge(alpha=1.0 | alpha=[...], target=y, intercept=true)`.
    fn from_spec(spec: &NodeSpec) -> Result<Self> {
        let (target, intercept) = target_params(spec)?;
        let alphas = match spec.get_list("alpha") {
            None => vec![1.0],
            Some(l) => {
                l.iter().map(|a| a.parse::<f64>().map_err(|_| Error::Param(format!("ridge: alpha {a:?} is not a number")))).collect::<Result<Vec<f64>>>()?
            }
        };
        Ok(RidgeParams { target, fit_intercept: intercept, alphas })
    }
    fn validate(&self) -> Result<()> {
        crate::nodes::linreg::check_target("ridge", &self.target)?;
        if let Some(a) = self.alphas.iter().find(|a| !a.is_finite() || **a < 0.0) {
            return Err(Error::Param(format!("ridge: alpha must be >= 0, got {a}")));
        }
        if self.alphas.is_empty() {
            return Err(Error::Param("ridge: alpha list is empty".into()));
        }
        Ok(())
    }
    fn spec(&self) -> String {
        let alphas: Vec<String> = self.alphas.iter().map(|a| a.to_string()).collect();
        let a = if alphas.len() == 1 { alphas[0].clone() } else { format!("[{}]", alphas.join(",")) };
        format!("ridge(alpha={a}, target=[{}]{})", self.target.join(","), if self.fit_intercept { "" } else { ", intercept=false" })
    }
    fn columns(&mut self) -> Columns<'_> {
        Columns::Targets(&mut self.target)
    }
    fn partial(&self, schema: &Schema) -> RidgePartial {
        let idx = schema.target_indices("ridge", &self.target).unwrap_or_default();
        RidgePartial { joint: Scatter::new(schema.x.len() + idx.len(), true), idx }
    }
    fn finalize(&self, all: RidgePartial, schema: &Schema) -> Result<RidgeModel> {
        let (s, d) = (all.joint, schema.x.len());
        let fits = self.alphas.iter().map(|&a| solve_normal(&s, d, a, self.fit_intercept, "ridge")).collect::<Result<_>>()?;
        Ok(RidgeModel { params: self.clone(), count: s.n, fits })
    }
    /// Before format v2 the parameters sat beside the model's fields.
    fn upgrade(node: &serde_json::Value) -> Option<serde_json::Value> {
        super::define::params_from_fields(node, &["target", "fit_intercept", "alphas"])
    }
}

impl Partial for RidgePartial {
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        self.joint.update_joint(chunk.x, chunk.y, &self.idx);
        Ok(())
    }
    fn merge(&mut self, other: Self) {
        self.joint.merge(&other.joint);
    }
    fn fits(&self, other: &Self) -> Result<()> {
        Partial::fits(&self.joint, &other.joint)
    }
    fn join(self, comm: &dyn Comm) -> Result<Self> {
        Ok(RidgePartial { joint: self.joint.join(comm)?, idx: self.idx })
    }
    // The layout of format v1's kept partials and cache entries: the joint statistics alone.
    fn encode(&self) -> Result<Vec<u8>> {
        self.joint.encode()
    }
    fn decode(bytes: &[u8]) -> Result<Self> {
        Ok(RidgePartial { joint: Scatter::decode(bytes)?, idx: Vec::new() })
    }
}

impl RidgeModel {
    fn suffix(&self, k: usize) -> String {
        if self.params.alphas.len() == 1 {
            String::new()
        } else {
            format!("@{}", self.params.alphas[k])
        }
    }
}

impl Predict for RidgeModel {
    fn prediction_names(&self) -> Vec<String> {
        let preds = (0..self.params.alphas.len()).flat_map(|k| self.params.target.iter().map(move |t| (k, t)));
        preds.map(|(k, t)| format!("{t}_pred{}", self.suffix(k))).collect()
    }
    fn predict(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let parts: Vec<Array2<f64>> = self.fits.iter().map(|f| f.predict(x)).collect();
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        ndarray::concatenate(Axis(1), &views).expect("same rows")
    }
}

impl Report for RidgeModel {
    fn summary(&self, input: &[String], _full: bool) -> Vec<String> {
        let mut out = vec![format!(
            "{} features -> {} target(s), {} alpha(s), trained on {} rows",
            input.len(),
            self.params.target.len(),
            self.params.alphas.len(),
            self.count
        )];
        for (k, f) in self.fits.iter().enumerate() {
            for (j, t) in self.params.target.iter().enumerate() {
                out.push(format!("alpha {}: {t}: intercept {:.6}, R² {:.6}, RMSE {:.6}", self.params.alphas[k], f.intercept[j], f.r2[j], f.rmse[j]));
            }
        }
        out
    }
    fn check_loaded(&self, input: &[String]) -> Result<()> {
        if self.fits.len() != self.params.alphas.len() {
            return Err(Error::Model(format!("ridge: {} fits for {} alphas", self.fits.len(), self.params.alphas.len())));
        }
        self.fits.iter().try_for_each(|f| f.check("ridge", self.params.target.len(), input.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodes::Node;
    use ndarray::{s, Array, Array1};
    use ndarray_linalg::Solve;

    #[test]
    fn ridge_matches_the_closed_form_and_alpha_zero_is_least_squares() {
        let x = Array::from_shape_fn((80, 2), |(i, j)| ((i * (j + 3)) as f64 * 0.21).sin() + j as f64);
        let y = Array::from_shape_fn((80, 1), |(i, _)| 3.0 + 2.0 * x[[i, 0]] - x[[i, 1]] + 0.1 * (i as f64).cos());
        let schema = Schema { x: vec!["a".into(), "b".into()], y: vec!["y".into()], label: None };
        let params = RidgeParams::from_spec(&NodeSpec::parse("ridge(alpha=[0,2.5], target=y)").unwrap()).unwrap();
        let out = crate::comm::run_threads(3, |c| {
            let (lo, hi) = (c.rank() * 80 / 3, (c.rank() + 1) * 80 / 3);
            let mut n = crate::nodes::RidgeNode::new(params.clone());
            n.fit_chunk(
                c,
                &Chunk { x: x.slice(s![lo..hi, ..]), y: y.slice(s![lo..hi, ..]), labels: &[], kept: &[], segment_start: true, origin: None, mapped: None },
                &schema,
            )
            .unwrap();
            n
        });
        let node = &out[0];
        let model = node.model().unwrap();
        let xm = x.mean_axis(Axis(0)).unwrap();
        let ym = y.mean_axis(Axis(0)).unwrap();
        let xc = &x - &xm;
        let yc = (&y - &ym).column(0).to_owned();
        for (k, alpha) in [0.0, 2.5].iter().enumerate() {
            let a = xc.t().dot(&xc) + Array2::<f64>::eye(2) * *alpha;
            let b: Array1<f64> = a.solve(&xc.t().dot(&yc)).unwrap();
            let f = &model.fits[k];
            assert!((f.coefficients.row(0).to_owned() - &b).iter().all(|v| v.abs() < 1e-10));
            assert!((f.intercept[0] - (ym[0] - xm.dot(&b))).abs() < 1e-10);
        }
        assert_eq!(node.output_names()[2..], ["y_pred@0".to_string(), "y_pred@2.5".to_string()]);
        assert!(RidgeParams::from_spec(&NodeSpec::parse("ridge(alpha=-1, target=y)").unwrap()).unwrap().validate().is_err());
    }
}
