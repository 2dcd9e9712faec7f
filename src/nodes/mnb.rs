//! `mnb`: multinomial naive Bayes, `mnb(label=class, alpha=1.0)` (scikit-learn's MultinomialNB).
//! Features are counts (non-negative). The class set is the union over all ranks; class priors
//! are learned (`fit_prior=true`, default), uniform (`fit_prior=false`) or given
//! (`priors=[...]`, in class order).
//!
//! Model: classes, class_count, feature_count, class_log_prior, feature_log_prob with
//! feature_log_prob = log(count + α) − log(Σ(count + α)). `execute` appends the predicted class
//! (and, with `--proba`, the log-probability of each class).

use super::classes::{check_priors, parse_priors, Classifier, Counts, PerClass};
use super::define::{params_from_fields, Columns, Kind, NodeParams, Report};
use super::{list_text, rows, spec_text, NodeSpec, Task};
use crate::error::{Error, Result};
use crate::io::{Chunk, Schema};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

/// `mnb`'s parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MnbParams {
    /// Label column.
    pub label: Option<String>,
    /// Additive (Laplace/Lidstone) smoothing.
    pub alpha: f64,
    /// Learn class priors from the data.
    pub fit_prior: bool,
    /// Given class priors.
    pub priors: Option<Vec<f64>>,
}

/// scikit-learn's defaults (alpha 1, priors learnt); the label must be given.
impl Default for MnbParams {
    fn default() -> Self {
        MnbParams { label: None, alpha: 1.0, fit_prior: true, priors: None }
    }
}

/// The trained `mnb` node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MnbModel {
    /// The parameters (the label names the prediction column).
    pub params: MnbParams,
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
}

impl NodeParams for MnbParams {
    const KIND: Kind =
        Kind::new("mnb", &["label", "alpha", "fit_prior", "priors"], "mnb(label=c, alpha=1, fit_prior=true, priors=[..]): multinomial naive Bayes")
            .aliases(&["multinomial_nb"])
            .task(Task::Classification);
    type Partial = PerClass<Counts>;
    type Model = MnbModel;
    /// `mnb(label=class, alpha=1.0, fit_prior=true, priors=[...])`.
    fn from_spec(spec: &NodeSpec) -> Result<Self> {
        let alpha = spec.get::<f64>("alpha")?.unwrap_or(1.0);
        Ok(MnbParams { label: spec.params.get("label").cloned(), alpha, fit_prior: spec.get_bool("fit_prior", true)?, priors: parse_priors(spec)? })
    }
    fn validate(&self) -> Result<()> {
        if self.alpha.is_nan() || self.alpha < 0.0 {
            return Err(Error::Param(format!("mnb: alpha must be >= 0, got {}", self.alpha)));
        }
        Ok(())
    }
    fn spec(&self) -> String {
        let fit_prior = (!self.fit_prior).then(|| "false".to_string());
        let priors = self.priors.as_deref().map(list_text);
        spec_text("mnb", &[("label", self.label.clone()), ("alpha", Some(self.alpha.to_string())), ("fit_prior", fit_prior), ("priors", priors)])
    }
    fn columns(&mut self) -> Columns<'_> {
        Columns::Label(&mut self.label)
    }
    fn state_elements(&self, d: usize) -> u128 {
        4 * d as u128
    }
    fn check_rows(&self, chunk: &Chunk, schema: &Schema) -> Result<()> {
        for (i, row) in chunk.x.rows().into_iter().enumerate() {
            if let Some((j, v)) = row.iter().enumerate().find(|(_, v)| **v < 0.0) {
                return Err(Error::Row {
                    row: i,
                    msg: format!("mnb: column '{}' holds the negative value {v}; multinomial naive Bayes needs counts (try gnb)", schema.x[j]),
                });
            }
        }
        Ok(())
    }
    fn partial(&self, schema: &Schema) -> PerClass<Counts> {
        PerClass::new(Counts::new(schema.x.len()))
    }
    fn finalize(&self, all: PerClass<Counts>, schema: &Schema) -> Result<MnbModel> {
        let d = schema.x.len();
        let (classes, parts) = all.into_sorted()?;
        let c = classes.len();
        check_priors("mnb", &self.priors, c)?;
        let class_count: Vec<f64> = parts.iter().map(|p| p.n).collect();
        let feature_count = Array2::from_shape_fn((c, d), |(k, j)| parts[k].sums[j]);
        let total: f64 = class_count.iter().sum();
        let class_log_prior = match (&self.priors, self.fit_prior) {
            (Some(p), _) => p.iter().map(|v| v.ln()).collect(),
            (None, true) => class_count.iter().map(|n| (n / total).ln()).collect(),
            (None, false) => vec![-(c as f64).ln(); c],
        };
        let smoothed = feature_count.mapv(|v| v + self.alpha);
        let denom = smoothed.sum_axis(Axis(1));
        let feature_log_prob = Array2::from_shape_fn((c, d), |(k, j)| smoothed[[k, j]].ln() - denom[k].ln());
        Ok(MnbModel { params: self.clone(), classes, class_count, feature_count, class_log_prior, feature_log_prob })
    }
    fn upgrade(node: &serde_json::Value) -> Option<serde_json::Value> {
        params_from_fields(node, &["label", "alpha", "fit_prior", "priors"])
    }
}

impl Classifier for MnbModel {
    fn label(&self) -> &str {
        self.params.label.as_deref().unwrap_or("class")
    }
    fn classes(&self) -> &[String] {
        &self.classes
    }
    fn joint_log_likelihood(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let mut j = x.dot(&self.feature_log_prob.t());
        for mut row in j.rows_mut() {
            row += &Array1::from(self.class_log_prior.clone());
        }
        j
    }
}

impl Report for MnbModel {
    fn warnings(&self) -> Vec<String> {
        super::classes::label_warnings("mnb", self.classes.len(), self.class_count.iter().sum())
    }
    fn summary(&self, input: &[String], full: bool) -> Vec<String> {
        let rows = self.class_count.iter().sum::<f64>();
        vec![format!("{} count features, {}, alpha {}, trained on {rows} rows", input.len(), super::classes::describe(&self.classes, full), self.params.alpha)]
    }
    fn check_loaded(&self, input: &[String]) -> Result<()> {
        let (s, c, d) = (super::Shapes("mnb"), self.classes.len(), input.len());
        s.at_least("classes", c, 1)?;
        s.log_vec("class_log_prior", &self.class_log_prior, c)?;
        s.log_mat("feature_log_prob", &self.feature_log_prob, c, d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comm::{run_threads, Comm};
    use crate::nodes::define::Predict;
    use crate::nodes::Node;
    use ndarray::{array, s};

    fn node(spec: &str) -> crate::nodes::MnbNode {
        crate::nodes::MnbNode::from_spec(&NodeSpec::parse(spec).unwrap()).unwrap()
    }

    #[test]
    fn counts_and_log_probs_match_the_formulas_with_a_class_on_one_rank_only() {
        let x = array![[1.0, 0.0, 3.0], [2.0, 1.0, 0.0], [0.0, 4.0, 1.0], [3.0, 0.0, 0.0], [0.0, 2.0, 2.0]];
        let labels: Vec<String> = ["a", "b", "b", "a", "c"].iter().map(|s| s.to_string()).collect();
        let schema = Schema { x: vec!["f0".into(), "f1".into(), "f2".into()], y: vec![], label: Some("class".into()) };
        let out = run_threads(3, |c| {
            let (lo, hi) = [(0, 2), (2, 4), (4, 5)][c.rank()];
            let mut n = node("mnb(label=class, alpha=0.5)");
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
            assert_eq!(Predict::predict(n, x.slice(s![i..i + 1, ..])).row(0)[0], best as f64);
        }
    }

    #[test]
    fn given_priors_replace_learned_ones_and_are_checked() {
        let x = array![[1.0, 0.0], [0.0, 2.0]];
        let labels: Vec<String> = vec!["a".into(), "b".into()];
        let schema = Schema { x: vec!["f0".into(), "f1".into()], y: vec![], label: Some("class".into()) };
        let chunk =
            Chunk { x: x.view(), y: ArrayView2::from_shape((2, 0), &[]).unwrap(), labels: &labels, kept: &[], segment_start: true, origin: None, mapped: None };
        let mut n = node("mnb(label=class, priors=[0.9,0.1])");
        n.fit_chunk(&crate::comm::SingleComm, &chunk, &schema).unwrap();
        assert!((n.model().unwrap().class_log_prior[0] - 0.9f64.ln()).abs() < 1e-15);
        let mut bad = node("mnb(label=class, priors=[0.5,0.2])");
        assert!(bad.fit_chunk(&crate::comm::SingleComm, &chunk, &schema).unwrap_err().to_string().contains("sum to 1"));
    }

    #[test]
    fn a_negative_count_is_refused_naming_its_row_and_column() {
        let x = array![[1.0, 0.0], [0.0, 2.0], [3.0, -0.5]];
        let labels: Vec<String> = vec!["a".into(), "b".into(), "a".into()];
        let schema = Schema { x: vec!["f0".into(), "words".into()], y: vec![], label: Some("class".into()) };
        let chunk =
            Chunk { x: x.view(), y: ArrayView2::from_shape((3, 0), &[]).unwrap(), labels: &labels, kept: &[], segment_start: true, origin: None, mapped: None };
        match node("mnb(label=class)").fit_chunk(&crate::comm::SingleComm, &chunk, &schema).unwrap_err() {
            Error::Row { row, msg } => {
                assert_eq!(row, 2);
                assert!(msg.contains("column 'words' holds the negative value -0.5"), "{msg}");
            }
            e => panic!("not a row error: {e}"),
        }
    }
}
