//! `gnb`: Gaussian naive Bayes, `gnb(label=class)` (scikit-learn's GaussianNB). Per-class means
//! and variances are joined with the same stable shifted sums as `moments`, so classes split
//! across ranks (or present on one rank only) merge exactly. Variances are population
//! variances (n denominator) plus `var_smoothing` (1e-9) × the largest feature variance, as in
//! scikit-learn. Priors are learned unless `priors=[...]` is given.
//!
//! Model: classes, class_count, class_prior, theta (means), var. `execute` appends the
//! predicted class (and, with `--proba`, per-class log-probabilities).

use super::classes::{check_priors, parse_priors, require_label, union};
use super::mnb::class_outputs;
use super::{rows, tagged, Node, NodeSpec, Task};
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::{Chunk, Schema};
use crate::stats::Scatter;
use ndarray::{concatenate, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `gnb` node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GnbNode {
    /// Label column.
    pub label: Option<String>,
    /// Fraction of the largest variance added to all variances.
    pub var_smoothing: f64,
    /// Given class priors.
    pub priors: Option<Vec<f64>>,
    /// Feature names.
    pub columns: Vec<String>,
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
    /// Also output per-class log-probabilities.
    #[serde(skip)]
    pub proba: bool,
    #[serde(skip)]
    local: BTreeMap<String, Scatter>,
    #[serde(skip)]
    overall: Option<Scatter>,
}

impl GnbNode {
    /// From a flow spec: `gnb(label=class, var_smoothing=1e-9, priors=[...])`.
    pub fn from_spec(spec: &NodeSpec) -> Result<Self> {
        spec.check_keys(&["label", "var_smoothing", "priors"])?;
        let var_smoothing = spec.get::<f64>("var_smoothing")?.unwrap_or(1e-9);
        if !(var_smoothing >= 0.0) {
            return Err(Error::Param(format!("gnb: var_smoothing must be >= 0, got {var_smoothing}")));
        }
        Ok(GnbNode { label: spec.params.get("label").cloned(), var_smoothing, priors: parse_priors(spec)?, ..Default::default() })
    }

    fn jll(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let (c, d) = self.theta.dim();
        let consts: Vec<f64> = (0..c)
            .map(|k| self.class_prior[k].ln() - 0.5 * (0..d).map(|j| (2.0 * std::f64::consts::PI * self.var[[k, j]]).ln()).sum::<f64>())
            .collect();
        Array2::from_shape_fn((x.nrows(), c), |(i, k)| {
            consts[k] - 0.5 * (0..d).map(|j| (x[[i, j]] - self.theta[[k, j]]).powi(2) / self.var[[k, j]]).sum::<f64>()
        })
    }
}

impl Node for GnbNode {
    fn kind(&self) -> &'static str {
        "gnb"
    }
    fn spec(&self) -> String {
        format!("gnb(label={})", self.label.clone().unwrap_or_default())
    }
    fn label(&self) -> Option<String> {
        self.label.clone()
    }
    fn task(&self) -> Task {
        Task::Classification
    }
    fn classes(&self) -> Option<&[String]> {
        Some(&self.classes)
    }
    fn set_proba(&mut self, on: bool) {
        self.proba = on;
    }
    fn state_elements(&self, d: usize) -> u128 {
        4 * d as u128
    }
    fn begin(&mut self, schema: &Schema) -> Result<()> {
        if self.label.is_none() {
            return Err(Error::Param("gnb: give the label column, e.g. gnb(label=class)".into()));
        }
        require_label("gnb", &self.label, schema)?;
        self.columns = schema.x.clone();
        self.local.clear();
        self.overall = Some(Scatter::new(self.columns.len(), false));
        Ok(())
    }
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        let d = self.columns.len();
        self.overall.as_mut().expect("begin() first").update(chunk.x);
        // Group the chunk's rows by class, then one update per class.
        let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, l) in chunk.labels.iter().enumerate() {
            groups.entry(l).or_default().push(i);
        }
        for (label, idx) in groups {
            let rows = chunk.x.select(Axis(0), &idx);
            self.local.entry(label.to_string()).or_insert_with(|| Scatter::new(d, false)).update(rows.view());
        }
        Ok(())
    }
    fn join(&mut self, comm: &dyn Comm) -> Result<()> {
        let d = self.columns.len();
        let classes = union(comm, &self.local.keys().cloned().collect())?;
        let c = classes.len();
        check_priors("gnb", &self.priors, c)?;
        let mut overall = self.overall.take().expect("begin() first");
        overall.allreduce(comm)?;
        let n = overall.n as f64;
        let max_var = overall.centered_sq().iter().fold(0.0f64, |m, v| m.max(v / n));
        self.epsilon = self.var_smoothing * max_var;
        self.theta = Array2::zeros((c, d));
        self.var = Array2::zeros((c, d));
        self.class_count = vec![0.0; c];
        for (k, name) in classes.iter().enumerate() {
            let mut s = self.local.remove(name).unwrap_or_else(|| Scatter::new(d, false));
            s.allreduce(comm)?;
            let nk = s.n as f64;
            self.class_count[k] = nk;
            self.theta.row_mut(k).assign(&s.mean());
            self.var.row_mut(k).assign(&s.centered_sq().mapv(|v| v / nk + self.epsilon));
        }
        self.class_prior = match &self.priors {
            Some(p) => p.clone(),
            None => self.class_count.iter().map(|v| v / n).collect(),
        };
        if let Some(j) = (0..d).find(|&j| self.var.column(j).iter().any(|v| *v <= 0.0)) {
            return Err(Error::Fit(format!("gnb: column '{}' has zero variance within a class; raise var_smoothing", self.columns[j])));
        }
        self.classes = classes;
        Ok(())
    }
    fn input_dim(&self) -> usize {
        self.columns.len()
    }
    fn output_names(&self) -> Vec<String> {
        super::classes::output_names(&self.columns, &self.label, &self.classes, self.proba)
    }
    fn predict(&self, x: ArrayView2<f64>) -> Array2<f64> {
        class_outputs(&self.jll(x), self.proba)
    }
    fn execute(&self, x: ArrayView2<f64>) -> Array2<f64> {
        concatenate![Axis(1), x, self.predict(x)]
    }
    fn summary(&self) -> Vec<String> {
        vec![format!(
            "{} features, {} classes [{}], trained on {} rows",
            self.columns.len(),
            self.classes.len(),
            self.classes.join(", "),
            self.class_count.iter().sum::<f64>()
        )]
    }
    fn check_model(&self) -> Result<()> {
        let (s, c, d) = (super::Shapes("gnb"), self.classes.len(), self.columns.len());
        s.at_least("classes", c, 1)?;
        s.vec("class_prior", &self.class_prior, c)?;
        s.mat("theta", &self.theta, c, d)?;
        s.mat("var", &self.var, c, d)
    }
    fn resolve_columns(&mut self, name_of: &dyn Fn(&str) -> String) {
        self.label = self.label.as_deref().map(name_of);
    }
    fn to_json(&self) -> serde_json::Value {
        tagged("gnb", self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comm::run_threads;
    use ndarray::{array, s};

    #[test]
    fn class_means_and_variances_join_across_ranks() {
        let x = array![[1.0, 10.0], [3.0, 14.0], [2.0, 0.0], [5.0, 12.0], [4.0, 2.0], [0.0, 1.0]];
        let labels: Vec<String> = ["u", "u", "v", "u", "v", "v"].iter().map(|s| s.to_string()).collect();
        let schema = Schema { x: vec!["a".into(), "b".into()], y: vec![], label: Some("k".into()) };
        for ranks in [1, 2, 4] {
            let out = run_threads(ranks, |c| {
                let (lo, hi) = (c.rank() * 6 / ranks, (c.rank() + 1) * 6 / ranks);
                let mut n = GnbNode::from_spec(&NodeSpec::parse("gnb(label=k)").unwrap()).unwrap();
                let chunk = Chunk { x: x.slice(s![lo..hi, ..]), y: ArrayView2::from_shape((hi - lo, 0), &[]).unwrap(), labels: &labels[lo..hi], kept: &[], segment_start: true, origin: None, mapped: None };
                n.fit_chunk(c, &chunk, &schema).unwrap();
                n
            });
            let n = &out[0];
            assert_eq!(n.classes, vec!["u", "v"]);
            assert!((n.theta[[0, 0]] - 3.0).abs() < 1e-14 && (n.theta[[1, 1]] - 1.0).abs() < 1e-14);
            // population variance of u's column a: values 1, 3, 5 -> 8/3
            assert!((n.var[[0, 0]] - n.epsilon - 8.0 / 3.0).abs() < 1e-12);
            assert_eq!(n.predict(x.view()).column(0).to_vec(), vec![0.0, 0.0, 1.0, 0.0, 1.0, 1.0]);
        }
    }
}
