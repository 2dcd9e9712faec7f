//! `moments`: low-order moments per column (daal4py's `low_order_moments`, snake_case names).
//!
//! Variance is the sample variance (n − 1 denominator), `variation` = standard deviation / mean.
//! With a single row in total, variance-based values are undefined (NaN, `null` in the model).
//! A statistics node: `execute` passes rows through unchanged.

use super::define::{Kind, NodeParams, Report, Transform};
use super::{nan_vec, NodeSpec};
use crate::error::Result;
use crate::io::Schema;
use crate::stats::Scatter;
use serde::{Deserialize, Serialize};

/// Per-column low-order moments of all rows on all ranks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Moments {
    pub count: u64,
    pub minimum: Vec<f64>,
    pub maximum: Vec<f64>,
    pub sum: Vec<f64>,
    pub sum_squares: Vec<f64>,
    pub sum_squares_centered: Vec<f64>,
    pub mean: Vec<f64>,
    pub second_order_raw_moment: Vec<f64>,
    #[serde(with = "nan_vec")]
    pub variance: Vec<f64>,
    #[serde(with = "nan_vec")]
    pub standard_deviation: Vec<f64>,
    #[serde(with = "nan_vec")]
    pub variation: Vec<f64>,
}

impl Moments {
    /// Finalize from joined statistics.
    pub fn from_scatter(s: &Scatter) -> Moments {
        let n = s.n as f64;
        let mean = s.mean().to_vec();
        let ssc = s.centered_sq().to_vec();
        let variance: Vec<f64> = ssc.iter().map(|v| if s.n > 1 { v / (n - 1.0) } else { f64::NAN }).collect();
        let sd: Vec<f64> = variance.iter().map(|v| v.sqrt()).collect();
        let raw = s.raw_sq().to_vec();
        Moments {
            count: s.n,
            minimum: s.min.to_vec(),
            maximum: s.max.to_vec(),
            sum: mean.iter().map(|m| m * n).collect(),
            second_order_raw_moment: raw.iter().map(|v| v / n).collect(),
            sum_squares: raw,
            sum_squares_centered: ssc,
            variation: sd.iter().zip(&mean).map(|(s, m)| s / m).collect(),
            standard_deviation: sd,
            variance,
            mean,
        }
    }

    /// The statistics as (name, values) pairs in daal4py's order.
    pub fn table(&self) -> Vec<(&'static str, &[f64])> {
        vec![
            ("minimum", &self.minimum),
            ("maximum", &self.maximum),
            ("sum", &self.sum),
            ("sum_squares", &self.sum_squares),
            ("sum_squares_centered", &self.sum_squares_centered),
            ("mean", &self.mean),
            ("second_order_raw_moment", &self.second_order_raw_moment),
            ("variance", &self.variance),
            ("standard_deviation", &self.standard_deviation),
            ("variation", &self.variation),
        ]
    }
}

/// `moments`' parameters (none).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MomentsParams {}

/// The trained `moments` node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MomentsModel {
    /// The moments of all rows on all ranks.
    pub moments: Moments,
}

impl NodeParams for MomentsParams {
    const KIND: Kind = Kind::new("moments", &[], "moments: per-column count, min, max, sums, mean, variance, std, variation (low_order_moments)")
        .aliases(&["low_order_moments"])
        .passthrough();
    type Partial = Scatter;
    type Model = MomentsModel;
    fn from_spec(_: &NodeSpec) -> Result<Self> {
        Ok(MomentsParams {})
    }
    fn spec(&self) -> String {
        "moments".into()
    }
    fn state_elements(&self, d: usize) -> u128 {
        16 * d as u128
    }
    fn partial(&self, schema: &Schema) -> Scatter {
        Scatter::new(schema.x.len(), false)
    }
    fn finalize(&self, all: Scatter, _: &Schema) -> Result<MomentsModel> {
        Ok(MomentsModel { moments: Moments::from_scatter(&all) })
    }
}

impl Transform for MomentsModel {}

impl Report for MomentsModel {
    fn summary(&self, input: &[String], full: bool) -> Vec<String> {
        vec![format!("{} rows x {} columns; mean {}", self.moments.count, input.len(), short(&self.moments.mean, full))]
    }
}

/// A vector for summaries, rounded: `[0.624434, 0.249699, … (6 more)]`, or every value when
/// `full` (`inspect --full`).
pub(crate) fn short(v: &[f64], full: bool) -> String {
    abbreviate(v.iter().map(|x| format!("{x:.6}")), v.len(), full)
}

/// `[a, b, …]`: the first 6 of `n` items, or all when `full`.
pub(crate) fn abbreviate(items: impl Iterator<Item = String>, n: usize, full: bool) -> String {
    let shown = if full { n } else { 6 };
    let mut out: Vec<String> = items.take(shown).collect();
    if n > shown {
        out.push(format!("… ({} more; inspect --full shows all)", n - shown));
    }
    format!("[{}]", out.join(", "))
}

#[cfg(test)]
mod tests {
    use crate::comm::run_threads;
    use crate::comm::Comm;
    use crate::nodes::Node;
    use ndarray::{array, s};

    #[test]
    fn moments_match_direct_formulas_on_any_rank_count() {
        let x = array![[1.0, -2.0], [3.0, 0.5], [4.0, 8.0], [-1.0, 2.0], [2.5, 2.5]];
        let n = 5.0;
        let mean0 = (1.0 + 3.0 + 4.0 - 1.0 + 2.5) / n;
        let var0 = x.column(0).iter().map(|v| (v - mean0) * (v - mean0)).sum::<f64>() / (n - 1.0);
        for ranks in 1..=4 {
            let out = run_threads(ranks, |c| {
                let (lo, hi) = ((c.rank() * 5) / ranks, ((c.rank() + 1) * 5) / ranks);
                let mut node = crate::nodes::MomentsNode::default();
                node.fit(c, x.slice(s![lo..hi, ..]), &["a".into(), "b".into()]).unwrap();
                node.model().unwrap().moments.clone()
            });
            let m = &out[0];
            assert!(out.iter().all(|o| o == m));
            assert_eq!(m.count, 5);
            assert_eq!(m.minimum, vec![-1.0, -2.0]);
            assert_eq!(m.maximum, vec![4.0, 8.0]);
            assert!((m.mean[0] - mean0).abs() < 1e-14);
            assert!((m.variance[0] - var0).abs() < 1e-13);
            assert!((m.sum_squares[1] - x.column(1).iter().map(|v| v * v).sum::<f64>()).abs() < 1e-12);
            assert!((m.variation[0] - var0.sqrt() / mean0).abs() < 1e-13);
        }
    }
}
