//! Class labels shared by the classifiers: the global class set is the union over all ranks (a
//! class may be missing on some ranks, or on all but one), in a deterministic order.

use crate::comm::Comm;
use crate::error::{Error, Result};
use std::collections::BTreeSet;

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

/// Index of the label column among a schema's columns, with a clear error.
pub fn require_label(kind: &str, label: &Option<String>, schema: &crate::io::Schema) -> Result<()> {
    match (&schema.label, label) {
        (Some(have), Some(want)) if have == want => Ok(()),
        _ => Err(Error::Param(format!("{kind}: the label column {label:?} is not in the data"))),
    }
}

/// Prior probabilities given as a parameter: positive, one per class, summing to 1.
pub fn check_priors(kind: &str, priors: &Option<Vec<f64>>, classes: usize) -> Result<()> {
    if let Some(p) = priors {
        if p.len() != classes {
            return Err(Error::Fit(format!("{kind}: {} priors given for {classes} classes", p.len())));
        }
        if p.iter().any(|v| !(*v > 0.0)) || (p.iter().sum::<f64>() - 1.0).abs() > 1e-9 {
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

/// Output columns of a classifier: the features, `<label>_pred`, and with `proba` one
/// `logp_<class>` per class.
pub fn output_names(columns: &[String], label: &Option<String>, classes: &[String], proba: bool) -> Vec<String> {
    let mut names = columns.to_vec();
    names.push(format!("{}_pred", label.clone().unwrap_or_else(|| "class".into())));
    if proba {
        names.extend(classes.iter().map(|c| format!("logp_{c}")));
    }
    names
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
