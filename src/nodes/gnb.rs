//! `gnb`: Gaussian naive Bayes, `gnb(label=class)` (scikit-learn's GaussianNB). Per-class means
//! and variances are joined with the same stable shifted sums as `moments`, so classes split
//! across ranks (or present on one rank only) merge exactly. Variances are population
//! variances (n denominator) plus `var_smoothing` (1e-9) × the largest feature variance, as in
//! scikit-learn. Priors are learned unless `priors=[...]` is given.
//!
//! Model: classes, class_count, class_prior, theta (means), var. `execute` appends the
//! predicted class (and, with `--proba`, per-class log-probabilities).

use super::classes::{check_priors, parse_priors, Classifier, PerClass};
use super::define::{params_from_fields, Columns, Kind, NodeParams, Partial, Report};
use super::{list_text, rows, spec_text, NodeSpec, Task};
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::{Chunk, Schema};
use crate::stats::Scatter;
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// `gnb`'s parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GnbParams {
    /// Label column.
    pub label: Option<String>,
    /// Fraction of the largest variance added to all variances.
    pub var_smoothing: f64,
    /// Given class priors.
    pub priors: Option<Vec<f64>>,
}

/// scikit-learn's defaults (var_smoothing 1e-9, priors from the data); the label must be given.
impl Default for GnbParams {
    fn default() -> Self {
        GnbParams { label: None, var_smoothing: 1e-9, priors: None }
    }
}

/// The trained `gnb` node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GnbModel {
    /// The parameters (the label names the prediction column).
    pub params: GnbParams,
    /// Class labels, sorted.
    pub classes: Vec<String>,
    /// Rows per class.
    pub class_count: Vec<f64>,
    /// Prior per class.
    pub class_prior: Vec<f64>,
    /// Per-class feature means (classes × features).
    #[serde(with = "rows")]
    pub theta: Array2<f64>,
    /// Per-class feature variances incl. smoothing (classes × features).
    #[serde(with = "rows")]
    pub var: Array2<f64>,
    /// The smoothing added to every variance.
    pub epsilon: f64,
}

/// Per-class moments, and the moments of all rows (for the smoothing).
#[derive(Clone, Serialize, Deserialize)]
pub struct GnbPartial {
    overall: Scatter,
    classes: PerClass<Scatter>,
}

impl NodeParams for GnbParams {
    const KIND: Kind = Kind::new("gnb", &["label", "var_smoothing", "priors"], "gnb(label=c, var_smoothing=1e-9, priors=[..]): Gaussian naive Bayes")
        .aliases(&["gaussian_nb"])
        .task(Task::Classification);
    type Partial = GnbPartial;
    type Model = GnbModel;
    /// `gnb(label=class, var_smoothing=1e-9, priors=[...])`.
    fn from_spec(spec: &NodeSpec) -> Result<Self> {
        let var_smoothing = spec.get::<f64>("var_smoothing")?.unwrap_or(1e-9);
        Ok(GnbParams { label: spec.params.get("label").cloned(), var_smoothing, priors: parse_priors(spec)? })
    }
    fn validate(&self) -> Result<()> {
        if self.var_smoothing.is_nan() || self.var_smoothing < 0.0 {
            return Err(Error::Param(format!("gnb: var_smoothing must be >= 0, got {}", self.var_smoothing)));
        }
        Ok(())
    }
    fn spec(&self) -> String {
        let smoothing = (self.var_smoothing != 1e-9).then(|| self.var_smoothing.to_string());
        spec_text("gnb", &[("label", self.label.clone()), ("var_smoothing", smoothing), ("priors", self.priors.as_deref().map(list_text))])
    }
    fn columns(&mut self) -> Columns<'_> {
        Columns::Label(&mut self.label)
    }
    fn state_elements(&self, d: usize) -> u128 {
        4 * d as u128
    }
    fn partial(&self, schema: &Schema) -> GnbPartial {
        let d = schema.x.len();
        GnbPartial { overall: Scatter::new(d, false), classes: PerClass::new(Scatter::new(d, false)) }
    }
    fn finalize(&self, all: GnbPartial, schema: &Schema) -> Result<GnbModel> {
        let d = schema.x.len();
        let (classes, parts) = all.classes.into_sorted()?;
        let c = classes.len();
        check_priors("gnb", &self.priors, c)?;
        let n = all.overall.n as f64;
        let max_var = all.overall.centered_sq().iter().fold(0.0f64, |m, v| m.max(v / n));
        let epsilon = self.var_smoothing * max_var;
        let (mut theta, mut var) = (Array2::zeros((c, d)), Array2::zeros((c, d)));
        let mut class_count = vec![0.0; c];
        for (k, s) in parts.iter().enumerate() {
            let nk = s.n as f64;
            class_count[k] = nk;
            theta.row_mut(k).assign(&s.mean());
            var.row_mut(k).assign(&s.centered_sq().mapv(|v| v / nk + epsilon));
        }
        let class_prior = match &self.priors {
            Some(p) => p.clone(),
            None => class_count.iter().map(|v| v / n).collect(),
        };
        if let Some(j) = (0..d).find(|&j| var.column(j).iter().any(|v| *v <= 0.0)) {
            return Err(Error::Fit(format!("gnb: column '{}' has zero variance within a class; raise var_smoothing", schema.x[j])));
        }
        Ok(GnbModel { params: self.clone(), classes, class_count, class_prior, theta, var, epsilon })
    }
    fn upgrade(node: &serde_json::Value) -> Option<serde_json::Value> {
        params_from_fields(node, &["label", "var_smoothing", "priors"])
    }
}

impl Partial for GnbPartial {
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        self.overall.update(chunk.x);
        self.classes.update(chunk)
    }
    fn merge(&mut self, other: Self) {
        self.overall.merge(&other.overall);
        self.classes.merge(other.classes);
    }
    fn fits(&self, other: &Self) -> Result<()> {
        self.overall.fits(&other.overall)?;
        self.classes.fits(&other.classes)
    }
    fn join(self, comm: &dyn Comm) -> Result<Self> {
        Ok(GnbPartial { overall: self.overall.join(comm)?, classes: self.classes.join(comm)? })
    }
}

impl Classifier for GnbModel {
    fn label(&self) -> &str {
        self.params.label.as_deref().unwrap_or("class")
    }
    fn classes(&self) -> &[String] {
        &self.classes
    }
    fn joint_log_likelihood(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let (c, d) = self.theta.dim();
        let consts: Vec<f64> =
            (0..c).map(|k| self.class_prior[k].ln() - 0.5 * (0..d).map(|j| (2.0 * std::f64::consts::PI * self.var[[k, j]]).ln()).sum::<f64>()).collect();
        Array2::from_shape_fn((x.nrows(), c), |(i, k)| {
            consts[k] - 0.5 * (0..d).map(|j| (x[[i, j]] - self.theta[[k, j]]).powi(2) / self.var[[k, j]]).sum::<f64>()
        })
    }
}

impl Report for GnbModel {
    fn warnings(&self) -> Vec<String> {
        super::classes::label_warnings("gnb", self.classes.len(), self.class_count.iter().sum())
    }
    fn summary(&self, input: &[String], full: bool) -> Vec<String> {
        vec![format!("{} features, {}, trained on {} rows", input.len(), super::classes::describe(&self.classes, full), self.class_count.iter().sum::<f64>())]
    }
    fn check_loaded(&self, input: &[String]) -> Result<()> {
        let (s, c, d) = (super::Shapes("gnb"), self.classes.len(), input.len());
        s.at_least("classes", c, 1)?;
        s.vec("class_prior", &self.class_prior, c)?;
        s.mat("theta", &self.theta, c, d)?;
        s.mat("var", &self.var, c, d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comm::run_threads;
    use crate::nodes::define::Predict;
    use crate::nodes::Node;
    use ndarray::{array, s};

    #[test]
    fn class_means_and_variances_join_across_ranks() {
        let x = array![[1.0, 10.0], [3.0, 14.0], [2.0, 0.0], [5.0, 12.0], [4.0, 2.0], [0.0, 1.0]];
        let labels: Vec<String> = ["u", "u", "v", "u", "v", "v"].iter().map(|s| s.to_string()).collect();
        let schema = Schema { x: vec!["a".into(), "b".into()], y: vec![], label: Some("k".into()) };
        for ranks in [1, 2, 4] {
            let out = run_threads(ranks, |c| {
                let (lo, hi) = (c.rank() * 6 / ranks, (c.rank() + 1) * 6 / ranks);
                let mut n = crate::nodes::GnbNode::from_spec(&NodeSpec::parse("gnb(label=k)").unwrap()).unwrap();
                let chunk = Chunk {
                    x: x.slice(s![lo..hi, ..]),
                    y: ArrayView2::from_shape((hi - lo, 0), &[]).unwrap(),
                    labels: &labels[lo..hi],
                    kept: &[],
                    segment_start: true,
                    origin: None,
                    mapped: None,
                };
                n.fit_chunk(c, &chunk, &schema).unwrap();
                n.model().unwrap().clone()
            });
            let n = &out[0];
            assert_eq!(n.classes, vec!["u", "v"]);
            assert!((n.theta[[0, 0]] - 3.0).abs() < 1e-14 && (n.theta[[1, 1]] - 1.0).abs() < 1e-14);
            // population variance of u's column a: values 1, 3, 5 -> 8/3
            assert!((n.var[[0, 0]] - n.epsilon - 8.0 / 3.0).abs() < 1e-12);
            assert_eq!(Predict::predict(n, x.view()).column(0).to_vec(), vec![0.0, 0.0, 1.0, 0.0, 1.0, 1.0]);
        }
    }
}
