//! Initial centroids: random, k-means++, k-means‖, or from a file or a model, defined on global
//! row indices so a seed gives the same centroids for any rank count.

use super::*;

impl Trainer<'_> {
    /// Collective: pick the globally best (key, row) among every rank's `local` candidate
    /// (smallest key, ties → smallest global row); returns that row, same on all ranks.
    pub(super) fn global_min(comm: &dyn Comm, local: Option<(f64, u64, Vec<f64>)>, d: usize) -> Option<(f64, u64, Vec<f64>)> {
        let pack = |c: &Option<(f64, u64, Vec<f64>)>| -> Vec<u8> {
            match c {
                None => Vec::new(),
                Some((k, i, r)) => [k.to_le_bytes(), (*i as f64).to_le_bytes()].concat().into_iter().chain(r.iter().flat_map(|v| v.to_le_bytes())).collect(),
            }
        };
        let all = comm.allgather_bytes(&pack(&local));
        all.iter()
            .filter(|b| b.len() == 8 * (d + 2))
            .map(|b| {
                let v: Vec<f64> = b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect();
                (v[0], v[1] as u64, v[2..].to_vec())
            })
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
    }

    /// Gather rows from every rank (rank order), as a matrix.
    pub(super) fn gather_rows(comm: &dyn Comm, rows: &[f64], d: usize) -> Array2<f64> {
        let mine: Vec<u8> = rows.iter().flat_map(|v| v.to_le_bytes()).collect();
        let all: Vec<f64> =
            comm.allgather_bytes(&mine).iter().flat_map(|b| b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect::<Vec<_>>()).collect();
        Array2::from_shape_vec((all.len() / d.max(1), d), all).unwrap()
    }

    pub(super) fn init_random(&self, comm: &dyn Comm, offset: u64, seed: u64) -> Array2<f64> {
        let d = self.columns.len();
        let x = &self.rows;
        let mut keyed: Vec<(f64, u64, usize)> = (0..x.len()).map(|i| (uniform(seed, 0, offset + i as u64), offset + i as u64, i)).collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        keyed.truncate(self.p.k);
        let mut mine = Vec::new();
        for (key, g, i) in &keyed {
            mine.push(*key);
            mine.push(*g as f64);
            mine.extend_from_slice(x.row(*i));
        }
        let all = Self::gather_rows(comm, &mine, d + 2);
        let mut cand: Vec<_> = all.rows().into_iter().map(|r| (r[0], r[1] as u64, r.slice(s![2..]).to_owned())).collect();
        cand.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut c = Array2::zeros((self.p.k, d));
        for (j, (_, _, row)) in cand.into_iter().take(self.p.k).enumerate() {
            c.row_mut(j).assign(&row);
        }
        c
    }

    /// k-means++ over `x` (local rows with global offsets and weights), stream `base`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn plusplus(&self, comm: &dyn Comm, x: &Rows, offset: u64, weight: Option<&[f64]>, seed: u64, base: u64, k: usize) -> Array2<f64> {
        let d = self.columns.len();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(u, v)| u * v).sum::<f64>();
        let xn: Vec<f64> = x.iter().map(|r| dot(r, r)).collect();
        let w = |i: usize| weight.map_or(1.0, |w| w[i]);
        let mut d2 = vec![f64::INFINITY; x.len()];
        let mut c = Array2::zeros((k, d));
        // Greedy k-means++ (as scikit-learn): after the first centre, draw 2 + ln k candidates
        // by D² and keep the one that lowers the potential Σ min D² the most; plain k-means++
        // often leaves two centres in one blob.
        let trials = 2 + (k as f64).ln() as usize;
        for j in 0..k {
            let mut cands: Vec<Array1<f64>> = Vec::new();
            for t in 0..if j == 0 { 1 } else { trials } {
                let stream = (base << 40) | ((j as u64) << 8) | t as u64;
                let local = (0..x.len())
                    .filter(|&i| w(i) > 0.0 && d2[i] > 0.0)
                    .map(|i| {
                        let u = uniform(seed, stream, offset + i as u64);
                        // Exponential race: min of −ln(u)/weight samples ∝ weight (D² after the first).
                        let wt = if j == 0 { w(i) } else { w(i) * d2[i] };
                        (-u.ln() / wt, offset + i as u64, i)
                    })
                    .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
                    .map(|(key, g, i)| (key, g, x.row(i).to_vec()));
                if let Some((_, _, r)) = Self::global_min(comm, local, d) {
                    cands.push(Array1::from(r));
                }
            }
            let row = match cands.len() {
                0 => c.row(j - 1).to_owned(), // fewer distinct points than k: repeat
                1 => cands.remove(0),
                _ => {
                    let cn: Vec<f64> = cands.iter().map(|r| r.dot(r)).collect();
                    let pot = x.sum(comm, cands.len(), |range, pot| {
                        for (i, xr) in range.clone().zip(x.iter_in(range)) {
                            for (t, r) in cands.iter().enumerate() {
                                pot[t] += w(i) * d2[i].min((xn[i] - 2.0 * dot(xr, r.as_slice().unwrap()) + cn[t]).max(0.0));
                            }
                        }
                    });
                    let best = (0..pot.len()).min_by(|&a, &b| pot[a].total_cmp(&pot[b]).then(a.cmp(&b))).unwrap();
                    cands.swap_remove(best)
                }
            };
            c.row_mut(j).assign(&row);
            let (row, rn) = (row.as_slice().unwrap(), row.dot(&row));
            for (i, xr) in x.iter().enumerate() {
                d2[i] = d2[i].min((xn[i] - 2.0 * dot(xr, row) + rn).max(0.0));
            }
        }
        c
    }

    pub(super) fn init_parallel(&self, comm: &dyn Comm, offset: u64, seed: u64) -> Array2<f64> {
        let d = self.columns.len();
        let x = &self.rows;
        let l = self.p.oversampling.unwrap_or(2.0 * self.p.k as f64);
        let mut cand = self.plusplus(comm, x, offset, None, seed, 1, 1);
        for round in 0..self.p.rounds {
            let mut d2 = Vec::with_capacity(x.len());
            x.nearest(0..x.len(), &cand, |_, row, j| d2.push(sq_dist(row, cand.row(j).as_slice().unwrap())));
            let phi = x.sum(comm, 1, |range, phi| phi[0] = d2[range].iter().sum::<f64>());
            if phi[0] == 0.0 {
                break;
            }
            let mut picked = Vec::new();
            for (i, v) in d2.iter().enumerate() {
                if uniform(seed, 100 + round as u64, offset + i as u64) <= l * v / phi[0] {
                    picked.extend_from_slice(x.row(i));
                }
            }
            let new = Self::gather_rows(comm, &picked, d);
            cand = ndarray::concatenate![Axis(0), cand, new];
        }
        // Weight each candidate by the rows nearest to it, then k-means++ on the candidates.
        let mut weight = vec![0.0; cand.nrows()];
        x.nearest(0..x.len(), &cand, |_, _, j| weight[j] += 1.0);
        comm.allreduce_sum(&mut weight);
        let single = crate::comm::SingleComm;
        self.plusplus(&single, &Rows::from_array(&cand), 0, Some(&weight), seed, 1000, self.p.k)
    }
}

/// Initial centroids from a CSV or NPY file of k rows, or a JSON model or checkpoint.
pub(super) fn init_file(path: &std::path::Path, d: usize) -> Result<Array2<f64>> {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
        return init_from_model(path, d);
    }
    let mut opts = crate::io::DataOptions::new(path.display().to_string());
    opts.block_bytes = 1 << 20;
    let data = crate::io::Dataset::open(&crate::comm::SingleComm, &opts).map_err(|e| Error::Param(format!("kmeans init file: {e}")))?;
    let mut vals = Vec::new();
    data.for_each_chunk(&mut |c| {
        vals.extend(c.x.iter());
        Ok(())
    })
    .map_err(|e| Error::Param(format!("kmeans init file: {e}")))?;
    if data.dim() != d {
        return Err(Error::Param(format!("kmeans init file {} has {} columns, the data has {d}", path.display(), data.dim())));
    }
    Ok(Array2::from_shape_vec((vals.len() / d, d), vals).unwrap())
}

/// Initial centroids from a JSON file: a flowmpi model whose last k-means node gives its
/// centroids (e.g. to continue a training on new data), or a k-means checkpoint.
fn init_from_model(path: &std::path::Path, d: usize) -> Result<Array2<f64>> {
    let bad = |m: String| Error::Param(format!("kmeans init file {}: {m}", path.display()));
    let text = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let v: serde_json::Value = serde_json::from_slice(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let centroids = match v.get("format").and_then(|f| f.as_str()) {
        Some("flowmpi-kmeans-checkpoint") => v.get("centroids").cloned(),
        Some(crate::nodes::MODEL_FORMAT) => v["nodes"].as_array().and_then(|n| n.iter().rev().find(|n| n["kind"] == "kmeans")).map(|n| n["centroids"].clone()),
        _ => {
            return Err(bad("a JSON init file must be a flowmpi model with a kmeans node, or a k-means checkpoint; \
                             centroids can also come from a CSV or NPY file of k rows"
                .into()))
        }
    }
    .ok_or_else(|| bad("the model has no kmeans node".into()))?;
    let rows: Vec<Vec<f64>> = serde_json::from_value(centroids).map_err(|e| bad(format!("centroids: {e}")))?;
    if rows.is_empty() || rows.iter().any(|r| r.len() != d || r.iter().any(|x| !x.is_finite())) {
        return Err(bad(format!("its centroids must be rows of {d} finite values (the data has {d} columns)")));
    }
    Ok(Array2::from_shape_vec((rows.len(), d), rows.concat()).expect("checked shape"))
}
