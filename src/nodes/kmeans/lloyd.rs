//! Lloyd iterations: assign every row to its nearest centroid, recompute the centroids, stop
//! when converged.

use super::*;

impl KmeansNode {
    /// Lloyd's iterations from centroids `c` at iteration `start` (collective). `first`: the
    /// first step, already accumulated while the rows were read. Start `r` of `n_init`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn lloyd(&self, comm: &dyn Comm, mut c: Array2<f64>, start: usize, mut first: Option<Step>, labels: &mut [u32], tol: f64, offset: u64, r: usize) -> Result<Run> {
        let d = self.columns.len();
        let initial = c.clone();
        let log = crate::log::global();
        let mut it = start;
        let mut converged = false;
        while it < self.max_iter {
            let step = first.take().unwrap_or_else(|| {
                let mut step = Step::new(self.k, d);
                let mut rest = &mut labels[..];
                for v in self.rows.views() {
                    let (mine, tail) = rest.split_at_mut(v.nrows());
                    Self::assign(&c, v, mine, &mut step);
                    rest = tail;
                }
                step
            });
            let mut flat: Vec<f64> = step.sums.into_iter().chain(step.counts).chain([step.changed]).collect();
            comm.allreduce_sum(&mut flat);
            let (k, kd) = (self.k, self.k * d);
            let mut new = Array2::from_shape_vec((k, d), flat[..kd].to_vec()).unwrap();
            let counts = &flat[kd..kd + k];
            for j in 0..k {
                if counts[j] > 0.0 {
                    new.row_mut(j).mapv_inplace(|v| v / counts[j]);
                }
            }
            let empty: Vec<usize> = (0..k).filter(|&j| counts[j] == 0.0).collect();
            if !empty.is_empty() {
                // Re-seed empty clusters from the rows farthest from their centroids (as
                // scikit-learn: distances to the centroids the rows were just assigned to).
                let dist: Vec<f64> = self.rows.iter().zip(labels.iter()).map(|(row, &j)| sq_dist(row, c.row(j as usize).as_slice().unwrap())).collect();
                let mut order: Vec<usize> = (0..dist.len()).collect();
                order.sort_by(|&a, &b| dist[b].total_cmp(&dist[a]).then(a.cmp(&b)));
                let mut mine = Vec::new();
                for &i in order.iter().take(empty.len()) {
                    mine.push(-dist[i]);
                    mine.push((offset + i as u64) as f64);
                    mine.extend_from_slice(self.rows.row(i));
                }
                let all = Self::gather_rows(comm, &mine, d + 2);
                let mut cand: Vec<_> = all.rows().into_iter().map(|r| (r[0], r[1], r.slice(s![2..]).to_owned())).collect();
                cand.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
                for (j, (_, _, row)) in empty.iter().zip(cand) {
                    new.row_mut(*j).assign(&row);
                }
            }
            let shift: f64 = (&new - &c).iter().map(|v| v * v).sum();
            if log.level >= 2 {
                // The inertia against the centroids this step assigned to (one more collective,
                // only at -v, on every rank alike since the level is the same everywhere).
                let mut inertia = [self.rows.iter().zip(labels.iter()).map(|(row, &j)| sq_dist(row, c.row(j as usize).as_slice().unwrap())).sum::<f64>()];
                comm.allreduce_sum(&mut inertia);
                let of = if self.n_init > 1 { format!(" (start {})", r + 1) } else { String::new() };
                log.detail(format!("kmeans iteration {}{of}: inertia {:.6e}, {} label(s) changed, centroid shift {:.3e} (tol {:.3e})",
                    it + 1, inertia[0], flat[kd + k], shift, tol));
            }
            c = new;
            it += 1;
            self.write_checkpoint(comm, &c, it)?;
            // No label changed: the centroids did not move either. Otherwise stop on tol.
            if flat[kd + k] == 0.0 || shift <= tol {
                converged = true;
                break;
            }
        }
        // As scikit-learn: the inertia is that of the rows relabelled against the final
        // centroids, each distance computed directly.
        let mut inertia = [0.0];
        self.rows.nearest(&c, |_, row, j| inertia[0] += sq_dist(row, c.row(j).as_slice().unwrap()));
        comm.allreduce_sum(&mut inertia);
        Ok(Run { initial, centroids: c, inertia: inertia[0], n_iter: it, converged: it < self.max_iter || converged, start: r })
    }

    /// One Lloyd step over the rows of `x` with their `labels`: relabel them against `c`,
    /// adding to `step`.
    pub(super) fn assign(c: &Array2<f64>, x: ArrayView2<f64>, labels: &mut [u32], step: &mut Step) {
        let d = c.ncols();
        nearest(x, c, |i, row, j| {
            if labels[i] != j as u32 {
                step.changed += 1.0;
                labels[i] = j as u32;
            }
            step.counts[j] += 1.0;
            for (s, v) in step.sums[j * d..(j + 1) * d].iter_mut().zip(row) {
                *s += v;
            }
        });
    }
}
