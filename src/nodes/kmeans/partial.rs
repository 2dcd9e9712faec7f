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
        let (x, n) = (chunk.x, chunk.x.nrows());
        let held = self.rows.hold(x, chunk.mapped);
        let labels = self.labels.len();
        self.labels.resize(labels + n, u32::MAX);
        let early = self.early.as_ref().filter(|(_, it, _)| *it < self.max_iter);
        let (d, var) = (x.ncols(), self.var.is_some());
        // In fixed parts on the rank's threads, each part's copy of the rows (unless a memory
        // map holds them), first Lloyd step and variance, kept or added in part order: the same
        // bits for any thread count.
        let parts = crate::threads::map_parts_with(d, &mut self.labels[labels..], |r, mine| {
            let part = x.slice(ndarray::s![r, ..]);
            let copy = (!held).then(|| super::store::copy_rows(part));
            let step = early.map(|(c, _, step)| {
                let mut sums = vec![0.0; step.len()];
                Trainer::assign(c, part, mine, &mut sums);
                sums
            });
            let var = var.then(|| {
                let mut s = crate::stats::Scatter::new(d, false);
                s.update(part);
                s
            });
            (copy, step, var)
        });
        for (copy, sums, var) in parts {
            if let Some(copy) = copy {
                self.rows.push_owned(copy);
            }
            if let (Some(sums), Some((_, _, step))) = (sums, &mut self.early) {
                step.iter_mut().zip(sums).for_each(|(a, b)| *a += b);
            }
            if let (Some(part), Some(all)) = (var, &mut self.var) {
                all.merge(&part);
            }
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
