//! What a k-means rank keeps while its rows arrive (the node's partial): the rows, and the
//! statistics it can gather on the way.

use super::{Rows, Trainer};
use crate::comm::Comm;
use crate::error::Result;
use crate::io::Chunk;
use crate::nodes::define::Partial;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

/// What a rank keeps while its rows arrive: the rows themselves, and, when the centroids are
/// known before the rows (a file, a checkpoint), the first Lloyd step against them,
/// accumulated while the rows are still in cache instead of in one more pass over memory.
pub struct KmeansPartial {
    pub(super) rows: Rows,
    /// Label of every local row (u32::MAX before the first step).
    pub(super) labels: Vec<u32>,
    /// Given centroids (a file's, or a checkpoint's with its iteration) and the first step's
    /// sums, accumulated while the rows are read.
    pub(super) early: Option<(Array2<f64>, usize, Vec<f64>)>,
    /// A resumed checkpoint's record of the start's initial centroids.
    pub(super) resumed_initial: Option<Array2<f64>>,
    /// No step is taken at or after this iteration (a checkpoint of a finished training).
    pub(super) max_iter: usize,
    /// The feature variances for `tol`: of the rows so far, and under `train --reproducible`
    /// of every leaf before them (with its index).
    pub(super) var: Option<crate::stats::Scatter>,
    pub(super) var_leaves: Vec<(u64, crate::stats::Scatter)>,
}

impl Partial for KmeansPartial {
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        self.rows.push(chunk.x, chunk.mapped);
        self.labels.resize(self.labels.len() + chunk.x.nrows(), u32::MAX);
        if let Some((c, it, step)) = &mut self.early {
            if *it < self.max_iter {
                let n = chunk.x.nrows();
                let labels = self.labels.len() - n;
                // In fixed parts on the rank's threads, their sums added in part order.
                let x = chunk.x;
                let parts = crate::threads::map_parts_with(x.ncols(), &mut self.labels[labels..], |r, mine| {
                    let mut sums = vec![0.0; step.len()];
                    Trainer::assign(c, x.slice(ndarray::s![r, ..]), mine, &mut sums);
                    sums
                });
                for sums in parts {
                    step.iter_mut().zip(sums).for_each(|(a, b)| *a += b);
                }
            }
        }
        if let Some(var) = &mut self.var {
            var.update(chunk.x);
        }
        Ok(())
    }
    fn end_leaf(&mut self, index: u64) {
        self.rows.end_leaf(index);
        if let Some(var) = &mut self.var {
            let d = var.dim();
            self.var_leaves.push((index, std::mem::replace(var, crate::stats::Scatter::new(d, false))));
        }
    }
    fn merge(&mut self, _other: Self) {
        // Never called: a node that keeps its rows keeps no partials to merge (no --cache, no
        // --keep-partials), and trains without a join.
        unreachable!("k-means partials are not merged")
    }
}

// The partial holds the rows (some of them borrowed from memory maps): it is never stored or
// sent, so it has no byte form.
impl Serialize for KmeansPartial {
    fn serialize<S: serde::Serializer>(&self, _s: S) -> std::result::Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("k-means keeps its rows in memory; they are not stored"))
    }
}

impl<'de> Deserialize<'de> for KmeansPartial {
    fn deserialize<D: serde::Deserializer<'de>>(_d: D) -> std::result::Result<Self, D::Error> {
        Err(serde::de::Error::custom("k-means keeps its rows in memory; they are not stored"))
    }
}

/// `train --reproducible`: the mean feature variance (population) from every leaf's
/// statistics, as [`crate::stats::Scatter::allreduce`] forms it (the sums about the global
/// mean), but added in the canonical tree (collective).
pub(super) fn canonical_variance(comm: &dyn Comm, leaves: Vec<(u64, crate::stats::Scatter)>, d: usize, total: f64) -> f64 {
    let sums = leaves.iter().map(|(i, s)| (*i, if s.n == 0 { vec![0.0; d] } else { (s.mean() * s.n as f64).to_vec() })).collect();
    let mean = Array1::from(crate::comm::tree::sum(comm, d, sums)) / total;
    let sq = leaves
        .into_iter()
        .map(|(i, mut s)| {
            s.reshift(&mean);
            (i, s.sum.iter().chain(&s.sq).copied().collect())
        })
        .collect();
    let sq = crate::comm::tree::sum(comm, 2 * d, sq);
    (0..d).map(|j| (sq[d + j] - sq[j] * sq[j] / total).max(0.0) / total).sum::<f64>() / d as f64
}
