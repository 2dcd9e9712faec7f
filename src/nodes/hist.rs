//! `hist(bins=…)`: per-column histograms over all ranks, with bin edges agreed by all: a first
//! pass finds the global minimum and maximum, the edges are numpy's
//! `np.histogram(x, bins)` edges (`linspace(min, max, bins+1)`, or min ± 0.5 for a constant
//! column), and a second pass counts with numpy's rule (right-open bins, the last bin closed).
//! A statistics node: `execute` passes rows through. `flowmpi stats --hist` prints them.

use super::{tagged, Node, NodeSpec};
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::{Chunk, Schema};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// The `hist` node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HistNode {
    /// Bins per column.
    pub bins: usize,
    /// Column names.
    pub columns: Vec<String>,
    /// Bin edges per column (bins + 1 each).
    pub edges: Vec<Vec<f64>>,
    /// Counts per column (bins each).
    pub counts: Vec<Vec<u64>>,
    #[serde(skip)]
    phase: usize,
    #[serde(skip)]
    min: Vec<f64>,
    #[serde(skip)]
    max: Vec<f64>,
    #[serde(skip)]
    local: Vec<f64>,
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

impl HistNode {
    /// From a flow spec: `hist(bins=10)`.
    pub fn from_spec(spec: &NodeSpec) -> Result<Self> {
        spec.check_keys(&["bins"])?;
        Self::new(spec.get::<usize>("bins")?.unwrap_or(10))
    }

    /// A node with `bins` bins per column.
    pub fn new(bins: usize) -> Result<Self> {
        if bins == 0 {
            return Err(Error::Param("hist: bins must be at least 1".into()));
        }
        Ok(HistNode { bins, ..Default::default() })
    }
}

impl Node for HistNode {
    fn kind(&self) -> &'static str {
        "hist"
    }
    fn spec(&self) -> String {
        format!("hist(bins={})", self.bins)
    }
    fn passthrough(&self) -> bool {
        true
    }
    fn state_elements(&self, d: usize) -> u128 {
        // Edges and counts per column.
        2 * (self.bins as u128 + 1) * d as u128
    }
    fn begin(&mut self, schema: &Schema) -> Result<()> {
        let d = schema.x.len();
        self.columns = schema.x.clone();
        self.phase = 0;
        self.min = vec![f64::INFINITY; d];
        self.max = vec![f64::NEG_INFINITY; d];
        Ok(())
    }
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        let d = self.columns.len();
        for row in chunk.x.rows() {
            for j in 0..d {
                let v = row[j];
                if self.phase == 0 {
                    self.min[j] = self.min[j].min(v);
                    self.max[j] = self.max[j].max(v);
                } else {
                    self.local[j * self.bins + numpy_bin(v, &self.edges[j])] += 1.0;
                }
            }
        }
        Ok(())
    }
    fn join(&mut self, comm: &dyn Comm) -> Result<()> {
        let d = self.columns.len();
        if self.phase == 0 {
            comm.allreduce_min(&mut self.min);
            comm.allreduce_max(&mut self.max);
            if self.min.first().is_some_and(|v| v.is_infinite()) {
                return Err(Error::Fit("no data rows on any rank".into()));
            }
            self.edges = (0..d).map(|j| numpy_edges(self.min[j], self.max[j], self.bins)).collect();
            self.local = vec![0.0; d * self.bins];
            self.phase = 1;
            return Ok(());
        }
        comm.allreduce_sum(&mut self.local);
        self.counts = self.local.chunks_exact(self.bins).map(|c| c.iter().map(|v| *v as u64).collect()).collect();
        self.phase = 2;
        Ok(())
    }
    fn another_pass(&self) -> bool {
        self.phase == 1
    }
    fn input_dim(&self) -> usize {
        self.columns.len()
    }
    fn output_names(&self) -> Vec<String> {
        self.columns.clone()
    }
    fn execute(&self, x: ArrayView2<f64>) -> Array2<f64> {
        x.to_owned()
    }
    fn summary(&self) -> Vec<String> {
        self.columns
            .iter()
            .enumerate()
            .map(|(j, c)| format!("{c}: [{:.6}, {:.6}] counts {:?}", self.edges[j][0], self.edges[j][self.bins], self.counts[j]))
            .collect()
    }
    fn to_json(&self) -> serde_json::Value {
        tagged("hist", self)
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
