//! `mnb`: multinomial naive Bayes, `mnb(label=class, alpha=1.0)` (scikit-learn's MultinomialNB).
//! Features are counts (non-negative). The class set is the union over all ranks; class priors
//! are learned (`fit_prior=true`, default), uniform (`fit_prior=false`) or given
//! (`priors=[...]`, in class order).
//!
//! Model: classes, class_count, feature_count, class_log_prior, feature_log_prob with
//! feature_log_prob = log(count + α) − log(Σ(count + α)). `execute` appends the predicted class
//! (and, with `--proba`, the log-probability of each class).

use super::classes::{check_priors, logsumexp, parse_priors, require_label, union};
use super::{rows, tagged, Node, NodeSpec, Task};
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::{Chunk, Schema};
use ndarray::{concatenate, Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `mnb` node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MnbNode {
    /// Label column.
    pub label: Option<String>,
    /// Additive (Laplace/Lidstone) smoothing.
    pub alpha: f64,
    /// Learn class priors from the data.
    pub fit_prior: bool,
    /// Given class priors.
    pub priors: Option<Vec<f64>>,
    /// Feature names.
    pub columns: Vec<String>,
    /// Class labels, sorted.
    pub classes: Vec<String>,
    /// Rows per class.
    pub class_count: Vec<f64>,
    /// Summed feature counts per class (classes × features).
    #[serde(with = "rows")]
    pub feature_count: Array2<f64>,
    /// log prior per class.
    pub class_log_prior: Vec<f64>,
    /// log P(feature | class) (classes × features).
    #[serde(with = "rows")]
    pub feature_log_prob: Array2<f64>,
    /// Also output per-class log-probabilities.
    #[serde(skip)]
    pub proba: bool,
    #[serde(skip)]
    local: BTreeMap<String, (f64, Array1<f64>)>,
}

impl MnbNode {
    /// From a flow spec: `mnb(label=class, alpha=1.0, fit_prior=true, priors=[...])`.
    pub fn from_spec(spec: &NodeSpec) -> Result<Self> {
        spec.check_keys(&["label", "alpha", "fit_prior", "priors"])?;
        let alpha = spec.get::<f64>("alpha")?.unwrap_or(1.0);
        if !(alpha >= 0.0) {
            return Err(Error::Param(format!("mnb: alpha must be >= 0, got {alpha}")));
        }
        Ok(MnbNode {
            label: spec.params.get("label").cloned(),
            alpha,
            fit_prior: spec.get_bool("fit_prior", true)?,
            priors: parse_priors(spec)?,
            ..Default::default()
        })
    }

    /// Joint log-likelihood per class (rows × classes).
    fn jll(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let mut j = x.dot(&self.feature_log_prob.t());
        for mut row in j.rows_mut() {
            row += &Array1::from(self.class_log_prior.clone());
        }
        j
    }
}

/// Predicted class index, then (optionally) normalised log-probabilities, per row.
pub(crate) fn class_outputs(jll: &Array2<f64>, proba: bool) -> Array2<f64> {
    let c = jll.ncols();
    let mut out = Array2::zeros((jll.nrows(), 1 + if proba { c } else { 0 }));
    for (i, row) in jll.rows().into_iter().enumerate() {
        let best = row.iter().enumerate().fold((0, f64::NEG_INFINITY), |b, (k, &v)| if v > b.1 { (k, v) } else { b });
        out[[i, 0]] = best.0 as f64;
        if proba {
            let lse = logsumexp(row.as_slice().unwrap_or(&row.to_vec()));
            for k in 0..c {
                out[[i, 1 + k]] = row[k] - lse;
            }
        }
    }
    out
}

impl Node for MnbNode {
    fn kind(&self) -> &'static str {
        "mnb"
    }
    fn spec(&self) -> String {
        format!("mnb(label={}, alpha={})", self.label.clone().unwrap_or_default(), self.alpha)
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
            return Err(Error::Param("mnb: give the label column, e.g. mnb(label=class)".into()));
        }
        require_label("mnb", &self.label, schema)?;
        self.columns = schema.x.clone();
        self.local.clear();
        Ok(())
    }
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        let d = self.columns.len();
        for (i, (row, label)) in chunk.x.rows().into_iter().zip(chunk.labels).enumerate() {
            if let Some((j, v)) = row.iter().enumerate().find(|(_, v)| **v < 0.0) {
                return Err(Error::Row { row: i, msg: format!(
                    "mnb: column '{}' holds the negative value {v}; multinomial naive Bayes needs counts (try gnb)",
                    self.columns[j]
                ) });
            }
            let e = self.local.entry(label.clone()).or_insert_with(|| (0.0, Array1::zeros(d)));
            e.0 += 1.0;
            e.1 += &row;
        }
        Ok(())
    }
    fn join(&mut self, comm: &dyn Comm) -> Result<()> {
        let d = self.columns.len();
        let classes = union(comm, &self.local.keys().cloned().collect())?;
        let c = classes.len();
        let mut flat = vec![0.0; c * (d + 1)];
        for (k, name) in classes.iter().enumerate() {
            if let Some((n, sums)) = self.local.get(name) {
                flat[k * (d + 1)] = *n;
                flat[k * (d + 1) + 1..(k + 1) * (d + 1)].copy_from_slice(sums.as_slice().unwrap());
            }
        }
        comm.allreduce_sum(&mut flat);
        check_priors("mnb", &self.priors, c)?;
        let all = Array2::from_shape_vec((c, d + 1), flat).unwrap();
        self.class_count = all.column(0).to_vec();
        self.feature_count = all.slice(ndarray::s![.., 1..]).to_owned();
        let total: f64 = self.class_count.iter().sum();
        self.class_log_prior = match (&self.priors, self.fit_prior) {
            (Some(p), _) => p.iter().map(|v| v.ln()).collect(),
            (None, true) => self.class_count.iter().map(|n| (n / total).ln()).collect(),
            (None, false) => vec![-(c as f64).ln(); c],
        };
        let smoothed = self.feature_count.mapv(|v| v + self.alpha);
        let denom = smoothed.sum_axis(Axis(1));
        self.feature_log_prob = Array2::from_shape_fn((c, d), |(k, j)| smoothed[[k, j]].ln() - denom[k].ln());
        self.classes = classes;
        self.local.clear();
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
            "{} count features, {} classes [{}], alpha {}, trained on {} rows",
            self.columns.len(),
            self.classes.len(),
            self.classes.join(", "),
            self.alpha,
            self.class_count.iter().sum::<f64>()
        )]
    }
    fn check_model(&self) -> Result<()> {
        let (s, c, d) = (super::Shapes("mnb"), self.classes.len(), self.columns.len());
        s.at_least("classes", c, 1)?;
        s.log_vec("class_log_prior", &self.class_log_prior, c)?;
        s.log_mat("feature_log_prob", &self.feature_log_prob, c, d)
    }
    fn resolve_columns(&mut self, name_of: &dyn Fn(&str) -> String) {
        self.label = self.label.as_deref().map(name_of);
    }
    fn to_json(&self) -> serde_json::Value {
        tagged("mnb", self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comm::run_threads;
    use ndarray::{array, s};

    #[test]
    fn counts_and_log_probs_match_the_formulas_with_a_class_on_one_rank_only() {
        let x = array![[1.0, 0.0, 3.0], [2.0, 1.0, 0.0], [0.0, 4.0, 1.0], [3.0, 0.0, 0.0], [0.0, 2.0, 2.0]];
        let labels: Vec<String> = ["a", "b", "b", "a", "c"].iter().map(|s| s.to_string()).collect();
        let schema = Schema { x: vec!["f0".into(), "f1".into(), "f2".into()], y: vec![], label: Some("class".into()) };
        let out = run_threads(3, |c| {
            let (lo, hi) = [(0, 2), (2, 4), (4, 5)][c.rank()];
            let mut n = MnbNode::from_spec(&NodeSpec::parse("mnb(label=class, alpha=0.5)").unwrap()).unwrap();
            let chunk = Chunk { x: x.slice(s![lo..hi, ..]), y: ArrayView2::from_shape((hi - lo, 0), &[]).unwrap(), labels: &labels[lo..hi], kept: &[], segment_start: true, origin: None, mapped: None };
            n.fit_chunk(c, &chunk, &schema).unwrap();
            n
        });
        let n = &out[0];
        assert_eq!(n.classes, vec!["a", "b", "c"]);
        assert_eq!(n.class_count, vec![2.0, 2.0, 1.0]);
        assert_eq!(n.feature_count.row(0).to_vec(), vec![4.0, 0.0, 3.0]);
        let want = (0.0f64 + 0.5).ln() - (7.0f64 + 1.5).ln();
        assert!((n.feature_log_prob[[0, 1]] - want).abs() < 1e-15);
        assert!((n.class_log_prior[2] - (0.2f64).ln()).abs() < 1e-15);
        assert!(out.iter().all(|o| o.feature_log_prob == n.feature_log_prob));
        for (i, row) in x.rows().into_iter().enumerate() {
            let scores: Vec<f64> = (0..3).map(|k| n.class_log_prior[k] + (0..3).map(|j| row[j] * n.feature_log_prob[[k, j]]).sum::<f64>()).collect();
            let best = (0..3).fold(0, |b, k| if scores[k] > scores[b] { k } else { b });
            assert_eq!(n.predict(x.slice(s![i..i + 1, ..])).row(0)[0], best as f64);
        }
    }

    #[test]
    fn given_priors_replace_learned_ones_and_are_checked() {
        let x = array![[1.0, 0.0], [0.0, 2.0]];
        let labels: Vec<String> = vec!["a".into(), "b".into()];
        let schema = Schema { x: vec!["f0".into(), "f1".into()], y: vec![], label: Some("class".into()) };
        let chunk = Chunk { x: x.view(), y: ArrayView2::from_shape((2, 0), &[]).unwrap(), labels: &labels, kept: &[], segment_start: true, origin: None, mapped: None };
        let mut n = MnbNode::from_spec(&NodeSpec::parse("mnb(label=class, priors=[0.9,0.1])").unwrap()).unwrap();
        n.fit_chunk(&crate::comm::SingleComm, &chunk, &schema).unwrap();
        assert!((n.class_log_prior[0] - 0.9f64.ln()).abs() < 1e-15);
        let mut bad = MnbNode::from_spec(&NodeSpec::parse("mnb(label=class, priors=[0.5,0.2])").unwrap()).unwrap();
        assert!(bad.fit_chunk(&crate::comm::SingleComm, &chunk, &schema).unwrap_err().to_string().contains("sum to 1"));
    }
}
