//! `hist(bins=…)`: per-column histograms over all ranks, with bin edges agreed by all: a first
//! pass finds the global minimum and maximum, the edges are numpy's
//! `np.histogram(x, bins)` edges (`linspace(min, max, bins+1)`, or min ± 0.5 for a constant
//! column), and a second pass counts with numpy's rule (right-open bins, the last bin closed).
//! A statistics node: `execute` passes rows through. `flowmpi stats --hist` prints them.

use super::define::{params_from_fields, Kind, NodeParams, Partial, Report, Transform};
use super::NodeSpec;
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::{Chunk, Schema};
use serde::{Deserialize, Serialize};

/// `hist`'s parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistParams {
    /// Bins per column.
    pub bins: usize,
}

/// Ten bins, numpy's default.
impl Default for HistParams {
    fn default() -> Self {
        HistParams { bins: 10 }
    }
}

/// The trained `hist` node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HistModel {
    /// Bin edges per column (bins + 1 each).
    pub edges: Vec<Vec<f64>>,
    /// Counts per column (bins each).
    pub counts: Vec<Vec<u64>>,
}

/// The first pass finds each column's range, the second counts in the bins it gives.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum HistPartial {
    /// Per-column minimum and maximum.
    Range {
        /// Minima.
        min: Vec<f64>,
        /// Maxima.
        max: Vec<f64>,
    },
    /// Per-column counts (bins each, column after column) in the agreed bins.
    Counts {
        /// Bin edges per column.
        edges: Vec<Vec<f64>>,
        /// Counts, column-major by bins.
        counts: Vec<f64>,
    },
}

/// numpy's equal-width bin edges for [lo, hi].
pub fn numpy_edges(lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    let (lo, hi) = if lo == hi { (lo - 0.5, hi + 0.5) } else { (lo, hi) };
    let step = (hi - lo) / bins as f64;
    let mut e: Vec<f64> = (0..=bins).map(|i| i as f64 * step + lo).collect();
    e[bins] = hi;
    e
}

/// numpy's bin of `v` (in range) for equal-width `edges`.
pub fn numpy_bin(v: f64, edges: &[f64]) -> usize {
    let bins = edges.len() - 1;
    let (lo, hi) = (edges[0], edges[bins]);
    let norm = bins as f64 / (hi - lo);
    let mut i = ((v - lo) * norm) as usize;
    if i == bins {
        i -= 1;
    }
    // numpy's correction of the ~1 ulp errors of the computation near the edges.
    if v < edges[i] {
        i -= 1;
    } else if v >= edges[i + 1] && i != bins - 1 {
        i += 1;
    }
    i
}

impl HistParams {
    /// `bins` bins per column.
    pub fn new(bins: usize) -> Result<Self> {
        if bins == 0 {
            return Err(Error::Param("hist: bins must be at least 1".into()));
        }
        Ok(HistParams { bins })
    }
}

impl NodeParams for HistParams {
    const KIND: Kind = Kind::new("hist", &["bins"], "hist(bins=B): per-column histograms, numpy's bins (two passes)").aliases(&["histogram"]).passthrough();
    const PASSES: usize = 2;
    type Partial = HistPartial;
    type Model = HistModel;
    /// `hist(bins=10)`.
    fn from_spec(spec: &NodeSpec) -> Result<Self> {
        Ok(HistParams { bins: spec.get::<usize>("bins")?.unwrap_or(10) })
    }
    fn validate(&self) -> Result<()> {
        Self::new(self.bins).map(|_| ())
    }
    fn spec(&self) -> String {
        format!("hist(bins={})", self.bins)
    }
    fn state_elements(&self, d: usize) -> u128 {
        // Edges and counts per column.
        2 * (self.bins as u128 + 1) * d as u128
    }
    fn partial(&self, schema: &Schema) -> HistPartial {
        let d = schema.x.len();
        HistPartial::Range { min: vec![f64::INFINITY; d], max: vec![f64::NEG_INFINITY; d] }
    }
    fn next_pass(&self, _pass: usize, joined: HistPartial, _schema: &Schema) -> Result<HistPartial> {
        let HistPartial::Range { min, max } = joined else { return Err(Error::Fit("hist: the first pass holds no range".into())) };
        if min.first().is_some_and(|v| v.is_infinite()) {
            return Err(Error::Fit("no data rows on any rank".into()));
        }
        let edges: Vec<Vec<f64>> = min.iter().zip(&max).map(|(lo, hi)| numpy_edges(*lo, *hi, self.bins)).collect();
        Ok(HistPartial::Counts { counts: vec![0.0; edges.len() * self.bins], edges })
    }
    fn finalize(&self, all: HistPartial, _schema: &Schema) -> Result<HistModel> {
        let HistPartial::Counts { edges, counts } = all else { return Err(Error::Fit("hist: the second pass holds no counts".into())) };
        Ok(HistModel { counts: counts.chunks_exact(self.bins).map(|c| c.iter().map(|v| *v as u64).collect()).collect(), edges })
    }
    fn upgrade(node: &serde_json::Value) -> Option<serde_json::Value> {
        params_from_fields(node, &["bins"])
    }
}

impl Partial for HistPartial {
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        match self {
            HistPartial::Range { min, max } => {
                for row in chunk.x.rows() {
                    for (j, v) in row.iter().enumerate() {
                        min[j] = min[j].min(*v);
                        max[j] = max[j].max(*v);
                    }
                }
            }
            HistPartial::Counts { edges, counts } => {
                let bins = counts.len() / edges.len().max(1);
                for row in chunk.x.rows() {
                    for (j, v) in row.iter().enumerate() {
                        counts[j * bins + numpy_bin(*v, &edges[j])] += 1.0;
                    }
                }
            }
        }
        Ok(())
    }
    fn merge(&mut self, other: Self) {
        match (self, other) {
            (HistPartial::Range { min, max }, HistPartial::Range { min: lo, max: hi }) => {
                min.iter_mut().zip(lo).for_each(|(a, b)| *a = a.min(b));
                max.iter_mut().zip(hi).for_each(|(a, b)| *a = a.max(b));
            }
            (HistPartial::Counts { counts, .. }, HistPartial::Counts { counts: more, .. }) => counts.iter_mut().zip(more).for_each(|(a, b)| *a += b),
            _ => unreachable!("partials of one pass"),
        }
    }
    fn join(mut self, comm: &dyn Comm) -> Result<Self> {
        match &mut self {
            HistPartial::Range { min, max } => {
                comm.allreduce_min(min);
                comm.allreduce_max(max);
            }
            HistPartial::Counts { counts, .. } => comm.allreduce_sum(counts),
        }
        Ok(self)
    }
}

impl Transform for HistModel {}

impl Report for HistModel {
    fn summary(&self, input: &[String], _full: bool) -> Vec<String> {
        let range = |e: &Vec<f64>| (e[0], e[e.len() - 1]);
        input.iter().zip(&self.edges).zip(&self.counts).map(|((c, e), n)| format!("{c}: [{:.6}, {:.6}] counts {n:?}", range(e).0, range(e).1)).collect()
    }
    fn check_loaded(&self, input: &[String]) -> Result<()> {
        let s = super::Shapes("hist");
        s.count("edges", self.edges.len(), input.len())?;
        s.count("counts", self.counts.len(), input.len())?;
        for (j, (e, n)) in self.edges.iter().zip(&self.counts).enumerate() {
            s.at_least(&format!("counts of column {j}"), n.len(), 1)?;
            s.vec(&format!("edges of column {j}"), e, n.len() + 1)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_binning_rules() {
        let e = numpy_edges(0.0, 1.0, 4);
        assert_eq!(e, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(numpy_bin(0.0, &e), 0);
        assert_eq!(numpy_bin(0.25, &e), 1);
        assert_eq!(numpy_bin(0.9999, &e), 3);
        assert_eq!(numpy_bin(1.0, &e), 3); // the last bin is closed
        assert_eq!(numpy_edges(2.0, 2.0, 2), vec![1.5, 2.0, 2.5]);
    }
}
