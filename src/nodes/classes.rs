//! What the classifiers share: the global class set is the union over all ranks (a class may be
//! missing on some ranks, or on all but one), in a deterministic order; [`PerClass`] keeps a
//! partial per class; [`Classifier`] turns joint log-likelihoods into predictions.

use super::define::{Partial, Predict, Report};
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::Chunk;
use ndarray::{Array2, ArrayView2, Axis};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Numeric labels sort as numbers (so 2 < 10, as scikit-learn's np.unique does); otherwise as
/// text.
pub fn sort_classes(classes: &mut [String]) {
    let numeric: Option<Vec<f64>> = classes.iter().map(|c| c.parse::<f64>().ok()).collect();
    if numeric.is_some() {
        classes.sort_by(|a, b| a.parse::<f64>().unwrap().total_cmp(&b.parse::<f64>().unwrap()));
    } else {
        classes.sort();
    }
}

/// Collective: the sorted union of every rank's local class labels, the same on all ranks.
pub fn union(comm: &dyn Comm, local: &BTreeSet<String>) -> Result<Vec<String>> {
    let all: BTreeSet<String> = crate::comm::allgather(comm, local).into_iter().flatten().collect();
    let mut classes: Vec<String> = all.into_iter().collect();
    if classes.is_empty() {
        return Err(Error::Fit("no data rows on any rank".into()));
    }
    sort_classes(&mut classes);
    Ok(classes)
}

/// One partial per class label. `join` makes the class set the union over all ranks (a rank
/// without a class joins an empty partial for it) and joins each class's partial in class
/// order, so every rank ends with every class.
#[derive(Clone, Serialize, Deserialize)]
pub struct PerClass<T> {
    blank: T,
    by_class: BTreeMap<String, T>,
}

impl<T: Partial + Clone> PerClass<T> {
    /// No classes yet; `blank` is the empty partial of one class.
    pub fn new(blank: T) -> Self {
        PerClass { blank, by_class: BTreeMap::new() }
    }

    /// Update each class's partial with its rows of `chunk` (rows grouped by label).
    pub fn update(&mut self, chunk: &Chunk) -> Result<()> {
        let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, l) in chunk.labels.iter().enumerate() {
            groups.entry(l).or_default().push(i);
        }
        for (label, idx) in groups {
            let rows = chunk.x.select(Axis(0), &idx);
            let part = self.by_class.entry(label.to_string()).or_insert_with(|| self.blank.clone());
            part.update(&Chunk::new(rows.view()))?;
        }
        Ok(())
    }

    /// The classes and their partials, in [`sort_classes`] order; an error without any class.
    pub fn into_sorted(self) -> Result<(Vec<String>, Vec<T>)> {
        let mut classes: Vec<String> = self.by_class.keys().cloned().collect();
        if classes.is_empty() {
            return Err(Error::Fit("no data rows on any rank".into()));
        }
        sort_classes(&mut classes);
        let mut by_class = self.by_class;
        let parts = classes.iter().map(|c| by_class.remove(c).expect("a key")).collect();
        Ok((classes, parts))
    }
}

impl<T: Partial + Clone> Partial for PerClass<T> {
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        PerClass::update(self, chunk)
    }
    fn merge(&mut self, other: Self) {
        for (label, part) in other.by_class {
            match self.by_class.get_mut(&label) {
                Some(mine) => mine.merge(part),
                None => drop(self.by_class.insert(label, part)),
            }
        }
    }
    fn fits(&self, other: &Self) -> Result<()> {
        other.by_class.values().try_for_each(|p| self.blank.fits(p))
    }
    fn join(mut self, comm: &dyn Comm) -> Result<Self> {
        let mut by_class = BTreeMap::new();
        for label in union(comm, &self.by_class.keys().cloned().collect())? {
            let part = self.by_class.remove(&label).unwrap_or_else(|| self.blank.clone());
            by_class.insert(label, part.join(comm)?);
        }
        Ok(PerClass { blank: self.blank, by_class })
    }
}

/// Rows and per-column sums of one class (joined by one allreduce).
#[derive(Clone, Serialize, Deserialize)]
pub struct Counts {
    /// Rows.
    pub n: f64,
    /// Column sums.
    pub sums: Vec<f64>,
}

impl Counts {
    /// No rows of `d` columns.
    pub fn new(d: usize) -> Self {
        Counts { n: 0.0, sums: vec![0.0; d] }
    }
}

impl Partial for Counts {
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        self.n += chunk.rows() as f64;
        for (s, col) in self.sums.iter_mut().zip(chunk.x.sum_axis(Axis(0))) {
            *s += col;
        }
        Ok(())
    }
    fn merge(&mut self, other: Self) {
        self.n += other.n;
        self.sums.iter_mut().zip(other.sums).for_each(|(a, b)| *a += b);
    }
    fn fits(&self, other: &Self) -> Result<()> {
        match other.sums.len() == self.sums.len() {
            true => Ok(()),
            false => Err(Error::Fit(format!("class counts of {} columns, expected {}", other.sums.len(), self.sums.len()))),
        }
    }
    fn join(mut self, comm: &dyn Comm) -> Result<Self> {
        let mut flat: Vec<f64> = std::iter::once(self.n).chain(self.sums.iter().copied()).collect();
        comm.allreduce_sum(&mut flat);
        self.n = flat[0];
        self.sums.copy_from_slice(&flat[1..]);
        Ok(self)
    }
}

/// A trained classifier, given by its joint log-likelihoods; implementing it gives the
/// [`Predict`]: the class index (into [`Classifier::classes`]) and, for `execute --proba`, the
/// normalised log-probability of every class.
pub trait Classifier: Report + Serialize + DeserializeOwned + Send + Sync {
    /// The label column's name (the prediction column is `<label>_pred`).
    fn label(&self) -> &str;
    /// Class labels, sorted.
    fn classes(&self) -> &[String];
    /// Unnormalised log P(class, row): rows × classes.
    fn joint_log_likelihood(&self, x: ArrayView2<f64>) -> Array2<f64>;
}

impl<T: Classifier> Predict for T {
    fn prediction_names(&self) -> Vec<String> {
        vec![format!("{}_pred", self.label())]
    }
    fn predict(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let jll = self.joint_log_likelihood(x);
        let best = |row: ndarray::ArrayView1<f64>| row.iter().enumerate().fold((0, f64::NEG_INFINITY), |b, (k, &v)| if v > b.1 { (k, v) } else { b }).0;
        Array2::from_shape_fn((jll.nrows(), 1), |(i, _)| best(jll.row(i)) as f64)
    }
    fn classes(&self) -> Option<&[String]> {
        Some(Classifier::classes(self))
    }
    fn log_proba(&self, x: ArrayView2<f64>) -> Option<Array2<f64>> {
        let mut jll = self.joint_log_likelihood(x);
        for mut row in jll.rows_mut() {
            let lse = logsumexp(&row.to_vec());
            row -= lse;
        }
        Some(jll)
    }
}

/// `3 classes [a, b, c]`, for `flowmpi inspect` (the first few, unless `full`).
pub fn describe(classes: &[String], full: bool) -> String {
    format!("{} classes {}", classes.len(), super::moments::abbreviate(classes.iter().cloned(), classes.len(), full))
}

/// A warning when there are more classes than half the training rows (most classes hold one
/// row): the label column is most likely a measurement, not a class, and the model is
/// meaningless.
pub fn label_warnings(kind: &str, classes: usize, rows: f64) -> Vec<String> {
    if classes > 2 && classes as f64 > rows / 2.0 {
        return vec![format!(
            "{kind}: {classes} classes from {rows} training rows, so most classes hold a single row: \
             is the label column a measurement rather than a class?"
        )];
    }
    Vec::new()
}

/// Prior probabilities given as a parameter: positive, one per class, summing to 1.
pub fn check_priors(kind: &str, priors: &Option<Vec<f64>>, classes: usize) -> Result<()> {
    if let Some(p) = priors {
        if p.len() != classes {
            return Err(Error::Fit(format!("{kind}: {} priors given for {classes} classes", p.len())));
        }
        if p.iter().any(|v| v.is_nan() || *v <= 0.0) || (p.iter().sum::<f64>() - 1.0).abs() > 1e-9 {
            return Err(Error::Fit(format!("{kind}: priors must be positive and sum to 1, got {p:?}")));
        }
    }
    Ok(())
}

/// Parse `priors=[0.2,0.8]`.
pub fn parse_priors(spec: &super::NodeSpec) -> Result<Option<Vec<f64>>> {
    spec.get_list("priors")
        .map(|l| l.iter().map(|v| v.parse::<f64>().map_err(|_| Error::Param(format!("{}: prior {v:?} is not a number", spec.kind)))).collect())
        .transpose()
}

/// log Σ exp(v), stable.
pub fn logsumexp(v: &[f64]) -> f64 {
    let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comm::run_threads;

    #[test]
    fn union_over_ranks_with_missing_classes() {
        let out = run_threads(3, |c| {
            let local: BTreeSet<String> = match c.rank() {
                0 => ["10", "2"].iter().map(|s| s.to_string()).collect(),
                1 => BTreeSet::new(),
                _ => ["1"].iter().map(|s| s.to_string()).collect(),
            };
            union(c, &local).unwrap()
        });
        assert!(out.iter().all(|v| v == &vec!["1".to_string(), "2".into(), "10".into()]));
        let mut words = vec!["b".to_string(), "a".into(), "10".into()];
        sort_classes(&mut words);
        assert_eq!(words, vec!["10", "a", "b"]);
    }
}
