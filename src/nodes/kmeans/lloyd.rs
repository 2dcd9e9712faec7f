//! Lloyd iterations: assign every row to its nearest centroid, recompute the centroids, stop
//! when converged.

use super::*;
use crate::nodes::iterate::{iterate, Iterative};

/// One start's Lloyd iterations over the node's rows.
struct Lloyd<'a, 'b> {
    node: &'a Trainer<'b>,
    /// The first step, accumulated while the rows were read.
    first: Option<Vec<f64>>,
    /// Every local row's cluster.
    labels: &'a mut [u32],
    /// Stop when the squared centroid shift is at most this.
    tol: f64,
    /// Global index of this rank's first row.
    offset: u64,
    /// Which of the n_init starts.
    start: usize,
    /// The centroids this start began from, recorded in every checkpoint.
    initial: &'a Array2<f64>,
}

impl Iterative for Lloyd<'_, '_> {
    type State = Array2<f64>;

    /// Assign every row to its nearest centroid in `c`, recompute the centroids; converged when
    /// no label changed or the centroids moved less than `tol`.
    fn step(&mut self, comm: &dyn Comm, c: &Array2<f64>, it: usize) -> Result<(Array2<f64>, bool)> {
        let node = self.node;
        let d = node.columns.len();
        let log = crate::log::global();
        let (k, kd) = (node.p.k, node.p.k * d);
        let flat = match self.first.take() {
            Some(mut step) => {
                comm.allreduce_sum(&mut step);
                step
            }
            None => node.rows.sum_with(comm, kd + k + 1, self.labels, |range, step, labels| {
                let mut rest = labels;
                for v in node.rows.views_in(range) {
                    let (mine, tail) = rest.split_at_mut(v.nrows());
                    Trainer::assign(c, v, mine, step);
                    rest = tail;
                }
            }),
        };
        let mut new = Array2::from_shape_vec((k, d), flat[..kd].to_vec()).unwrap();
        let counts = &flat[kd..kd + k];
        for (mut row, &n) in new.rows_mut().into_iter().zip(counts) {
            if n > 0.0 {
                row.mapv_inplace(|v| v / n);
            }
        }
        let empty: Vec<usize> = (0..k).filter(|&j| counts[j] == 0.0).collect();
        if !empty.is_empty() {
            // Re-seed empty clusters from the rows farthest from their centroids (as
            // scikit-learn: distances to the centroids the rows were just assigned to).
            let dist: Vec<f64> = node.rows.iter().zip(self.labels.iter()).map(|(row, &j)| sq_dist(row, c.row(j as usize).as_slice().unwrap())).collect();
            let mut order: Vec<usize> = (0..dist.len()).collect();
            order.sort_by(|&a, &b| dist[b].total_cmp(&dist[a]).then(a.cmp(&b)));
            let mut mine = Vec::new();
            for &i in order.iter().take(empty.len()) {
                mine.push(-dist[i]);
                mine.push((self.offset + i as u64) as f64);
                mine.extend_from_slice(node.rows.row(i));
            }
            let all = Trainer::gather_rows(comm, &mine, d + 2);
            let mut cand: Vec<_> = all.rows().into_iter().map(|r| (r[0], r[1], r.slice(s![2..]).to_owned())).collect();
            cand.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
            for (j, (_, _, row)) in empty.iter().zip(cand) {
                new.row_mut(*j).assign(&row);
            }
        }
        let shift: f64 = (&new - c).iter().map(|v| v * v).sum();
        if log.level >= 2 {
            // The inertia against the centroids this step assigned to (one more collective,
            // only at -v, on every rank alike since the level is the same everywhere).
            let inertia = node.rows.sum(comm, 1, |range, acc| {
                let rows = node.rows.iter_in(range.clone());
                acc[0] = rows.zip(&self.labels[range]).map(|(row, &j)| sq_dist(row, c.row(j as usize).as_slice().unwrap())).sum::<f64>();
            });
            let of = if node.p.n_init > 1 { format!(" (start {})", self.start + 1) } else { String::new() };
            log.detail(format!(
                "kmeans iteration {}{of}: inertia {:.6e}, {} label(s) changed, centroid shift {:.3e} (tol {:.3e})",
                it + 1,
                inertia[0],
                flat[kd + k],
                shift,
                self.tol
            ));
        }
        // No label changed: the centroids did not move either. Otherwise stop on tol.
        Ok((new, flat[kd + k] == 0.0 || shift <= self.tol))
    }

    fn checkpoint(&self, comm: &dyn Comm, c: &Array2<f64>, done: usize) -> Result<()> {
        self.node.write_checkpoint(comm, c, done, self.initial)
    }
    fn checkpoint_path(&self) -> Option<&std::path::Path> {
        self.node.p.checkpoint.as_deref()
    }
}

impl Trainer<'_> {
    /// Lloyd's iterations from centroids `c` at iteration `start` (collective). `first`: the
    /// first step, already accumulated while the rows were read. Start `r` of `n_init`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn lloyd(
        &self,
        comm: &dyn Comm,
        c: Array2<f64>,
        start: usize,
        first: Option<Vec<f64>>,
        labels: &mut [u32],
        tol: f64,
        offset: u64,
        r: usize,
    ) -> Result<Run> {
        // Resumed: the centroids the start began from, as the checkpoint recorded them (an old
        // checkpoint without them: none); else the centroids given.
        let initial = match (start, self.resumed_initial) {
            (0, _) => c.clone(),
            (_, resumed) => resumed.cloned().unwrap_or_default(),
        };
        let out = iterate(comm, &mut Lloyd { node: self, first, labels, tol, offset, start: r, initial: &initial }, c, start, self.p.max_iter)?;
        let c = out.state;
        // As scikit-learn: the inertia is that of the rows relabelled against the final
        // centroids, each distance computed directly.
        // The same pass counts the rows nearest each centroid (the clusters' sizes).
        let k = c.nrows();
        let sums = self.rows.sum(comm, 1 + k, |range, acc| {
            self.rows.nearest(range, &c, |_, row, j| {
                acc[0] += sq_dist(row, c.row(j).as_slice().unwrap());
                acc[1 + j] += 1.0;
            })
        });
        let sizes = sums[1..].iter().map(|&n| n as u64).collect();
        Ok(Run { initial, centroids: c, inertia: sums[0], sizes, n_iter: out.iterations, converged: out.converged, start: r })
    }

    /// One Lloyd step over the rows of `x` with their `labels`: relabel them against `c`,
    /// adding to `step` (laid out as [`new_step`]'s).
    pub(super) fn assign(c: &Array2<f64>, x: ArrayView2<f64>, labels: &mut [u32], step: &mut [f64]) {
        let (k, d) = (c.nrows(), c.ncols());
        let (sums, rest) = step.split_at_mut(k * d);
        let (counts, changed) = rest.split_at_mut(k);
        let mut moved = 0.0;
        nearest(x, c, |i, row, j| {
            if labels[i] != j as u32 {
                moved += 1.0;
                labels[i] = j as u32;
            }
            counts[j] += 1.0;
            for (s, v) in sums[j * d..(j + 1) * d].iter_mut().zip(row) {
                *s += v;
            }
        });
        changed[0] += moved;
    }
}
