//! `kmeans`: Lloyd's k-means over all ranks, `kmeans(k=10, init=++, max_iter=300, tol=1e-4,
//! seed=0)`. The node keeps its rank's rows in memory (k-means needs many passes): rows of
//! memory-mapped NPY inputs as views of the map ([`Chunk::mapped`]), other rows as a copy.
//!
//! **Initialisation** is defined on *global row indices* (row i of the concatenated shards), with
//! per-row random numbers hashed from (seed, round, i), so a seed gives the same centroids for
//! any number of ranks and any split of the same rows:
//! - `init=random`: the k rows with the smallest hashed keys (uniform, without replacement);
//! - `init=++`: k-means++ by weighted sampling with exponential keys −ln(u)/D² (the row with the
//!   smallest key is a sample ∝ D²), found with one min-reduction per centre;
//! - `init=parallel`: k-means‖ (`oversampling=2k` points expected per round, `rounds=5`), then
//!   weighted k-means++ on the candidates, on every rank alike;
//! - `init=FILE.csv|FILE.npy`: given centroids (k × d), or `FILE.json`: a model's or a
//!   checkpoint's.
//!
//! `n_init=N` runs N starts (seeds seed, seed+1, ...) in one job and keeps the one of least
//! inertia (scikit-learn's default: 10 for `init=random`, 1 otherwise). Every rank computes the
//! same global inertia, so every rank keeps the same start.
//!
//! **Iterations** follow scikit-learn's Lloyd: assign with distances ‖x‖² − 2x·c + ‖c‖² (BLAS
//! gemm on row blocks), recompute centroids, stop when no label changed or when the squared
//! centroid shift Σ‖Δc‖² ≤ tol × mean feature variance, or after `max_iter`. An empty cluster
//! takes the point farthest from its centroid (over all ranks; ties → lowest global row).
//! Model: centroids, inertia (Σ squared distances to the final centroids), n_iter.
//!
//! `checkpoint=FILE` (or `train --checkpoint FILE`): rank 0 writes centroids and iteration
//! atomically after every iteration; `resume=true` (`--resume`) continues from it.

use super::{rows, tagged, Node, NodeSpec, Task};
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::npy::Mapped;
use crate::io::{Chunk, Schema};
use ndarray::{concatenate, s, Array1, Array2, ArrayView2, Axis, ShapeBuilder};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Rows per BLAS block when computing distances: the block (256 KB at 32 features) and its
/// scores stay in L2 between the gemm and the argmin/sum loop that reads them
/// (`cargo bench --bench kmeans`).
const BLOCK: usize = 1024;

/// How initial centroids are chosen.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// k rows uniformly at random.
    Random,
    /// k-means++.
    #[default]
    PlusPlus,
    /// k-means‖.
    Parallel,
    /// Centroids from a file.
    File(PathBuf),
}

/// A uniform number in (0, 1] from (seed, stream, global row): splitmix64 of the three.
fn uniform(seed: u64, stream: u64, i: u64) -> f64 {
    let mut z = seed
        .wrapping_add(stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(i.wrapping_mul(0xD1B5_4A32_D192_ED03))
        .wrapping_add(0x2545_F491_4F6C_DD1D);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64
}

/// Visits every row of `x` (row-major, `d` columns) in order with the index of its nearest
/// centroid, the argmin over j of ‖c_j‖² − 2 x·c_j (‖x‖² is the same for every j, so it is left
/// out). One BLAS gemm per block of rows gives all those scores at once, computed straight into
/// a k × rows buffer prefilled with ‖c_j‖² (alpha = −2, beta = 1: no separate scaling pass); the
/// argmin then runs across rows, which vectorises. Ties go to the lowest j, as numpy's argmin.
/// `x` may have any row stride (rows of a memory-mapped file with more columns); columns that
/// are not unit-stride are copied first.
fn nearest(x: ArrayView2<f64>, c: &Array2<f64>, visit: impl FnMut(usize, &[f64], usize)) {
    let x = if x.ncols() > 1 && x.strides()[1] != 1 { ndarray::CowArray::from(x.as_standard_layout().into_owned()) } else { x.into() };
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for.
        return unsafe { nearest_avx2(x.view(), c, visit) };
    }
    nearest_any(x.view(), c, visit)
}

/// [`nearest`] compiled for AVX2: the argmin and the caller's per-row work (sums, distances) are
/// the part of a Lloyd step that is not BLAS, and baseline x86-64 (SSE2) runs them as
/// branchy scalar code (`cargo bench --bench kmeans`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn nearest_avx2(x: ArrayView2<f64>, c: &Array2<f64>, visit: impl FnMut(usize, &[f64], usize)) {
    nearest_any(x, c, visit)
}

#[inline(always)]
fn nearest_any(x: ArrayView2<f64>, c: &Array2<f64>, mut visit: impl FnMut(usize, &[f64], usize)) {
    let k = c.nrows();
    let cn: Vec<f64> = c.rows().into_iter().map(|r| r.dot(&r)).collect();
    let n = x.nrows();
    let mut g = Array2::<f64>::zeros((k, BLOCK.min(n)));
    let mut label = vec![0usize; BLOCK.min(n)];
    for start in (0..n).step_by(BLOCK) {
        let m = BLOCK.min(n - start);
        let xb = x.slice(s![start..start + m, ..]);
        let mut gb = g.slice_mut(s![.., ..m]);
        for (mut gj, &v) in gb.rows_mut().into_iter().zip(&cn) {
            gj.fill(v);
        }
        ndarray::linalg::general_mat_mul(-2.0, c, &xb.t(), 1.0, &mut gb);
        // Score of row i for centroid j: gs[j * stride + i].
        let (gs, stride) = (g.as_slice().unwrap(), g.ncols());
        // LANES rows at a time, their running minimum kept in registers across the k
        // centroids; labels as u64 so that the selects have one lane width and vectorise.
        const LANES: usize = 8;
        let full = m - m % LANES;
        for i in (0..full).step_by(LANES) {
            let mut b = [f64::INFINITY; LANES];
            let mut l = [0u64; LANES];
            for j in 0..k {
                let v: &[f64; LANES] = gs[j * stride + i..][..LANES].try_into().unwrap();
                for t in 0..LANES {
                    let closer = v[t] < b[t];
                    b[t] = if closer { v[t] } else { b[t] };
                    l[t] = if closer { j as u64 } else { l[t] };
                }
            }
            for t in 0..LANES {
                label[i + t] = l[t] as usize;
            }
        }
        for (i, l) in label.iter_mut().enumerate().take(m).skip(full) {
            *l = (1..k).fold(0, |b, j| if gs[j * stride + i] < gs[b * stride + i] { j } else { b });
        }
        // While visiting this block, fetch the next one from memory, so the next gemm reads it
        // from cache: otherwise BLAS's packing copy waits for DRAM and nothing overlaps it.
        let next = x.slice(s![start + m..(start + 2 * m).min(n), ..]);
        for (i, (row, &l)) in xb.rows().into_iter().zip(&label).enumerate() {
            if i < next.nrows() {
                for line in next.row(i).iter().step_by(8) {
                    prefetch(line);
                }
            }
            visit(start + i, row.to_slice().expect("unit-stride columns"), l);
        }
    }
}

/// Hint the CPU to bring `v`'s cache line into L2 (not L1: a whole block is coming, and L1 is
/// for the block being worked on).
#[inline(always)]
fn prefetch(v: &f64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it never faults, and `v` is a valid reference anyway.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>((v as *const f64).cast());
    }
}

/// ‖a − b‖², computed directly (no cancellation, unlike the expanded form).
fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    // Four partial sums, so that the loop vectorises (a single running sum must stay in order).
    let mut acc = [0.0; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| (x - y) * (x - y)).sum();
    for (x, y) in ca.zip(cb) {
        for t in 0..4 {
            acc[t] += (x[t] - y[t]) * (x[t] - y[t]);
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// The rank's rows, kept for the Lloyd passes, in input order: blocks copied from the chunks
/// (row-major) and blocks borrowed from memory-mapped NPY inputs (row stride = the file's
/// column count; no copy, no fresh pages).
#[derive(Debug, Clone, Default)]
struct Rows {
    d: usize,
    n: usize,
    blocks: Vec<Block>,
}

#[derive(Debug, Clone)]
enum Block {
    Owned(Vec<f64>),
    Mapped { map: Mapped, start: usize, rows: usize, stride: usize },
}

impl Rows {
    fn new(d: usize) -> Self {
        Rows { d, n: 0, blocks: Vec::new() }
    }

    /// All rows of `x` as one copied block.
    fn from_array(x: &Array2<f64>) -> Self {
        let mut r = Rows::new(x.ncols());
        r.push(x.view(), None);
        r
    }

    fn len(&self) -> usize {
        self.n
    }

    /// Keep a chunk's rows: by holding its memory map when `x` lies in one, else by copying.
    fn push(&mut self, x: ArrayView2<f64>, mapped: Option<&Mapped>) {
        let n = x.nrows();
        if n == 0 {
            return;
        }
        self.n += n;
        // Rows of a mapped view: unit-stride columns, rows `stride` apart (a one-row view may
        // report any row stride: it joins a block whatever the block's stride).
        let stride = usize::try_from(x.strides()[0]).ok().filter(|&s| s >= self.d);
        let stride = if n == 1 { stride.or(Some(self.d)) } else { stride };
        let start = mapped.and_then(|m| m.offset_of(x.as_ptr()));
        if let (Some(map), Some(start), Some(stride), true) = (mapped, start, stride, x.ncols() <= 1 || x.strides()[1] == 1) {
            // Consecutive chunks of one file extend one block.
            if let Some(Block::Mapped { map: m, start: s, rows, stride: st }) = self.blocks.last_mut() {
                if m.same(map) && (*st == stride || n == 1) && *s + *rows * *st == start {
                    *rows += n;
                    return;
                }
            }
            self.blocks.push(Block::Mapped { map: map.clone(), start, rows: n, stride });
            return;
        }
        if !matches!(self.blocks.last(), Some(Block::Owned(_))) {
            self.blocks.push(Block::Owned(Vec::new()));
        }
        let Some(Block::Owned(v)) = self.blocks.last_mut() else { unreachable!() };
        for row in x.rows() {
            match row.as_slice() {
                Some(r) => v.extend_from_slice(r),
                None => v.extend(row.iter()),
            }
        }
    }

    /// The blocks as views.
    fn views(&self) -> impl Iterator<Item = ArrayView2<'_, f64>> + '_ {
        let d = self.d;
        self.blocks.iter().map(move |b| match b {
            Block::Owned(v) => ArrayView2::from_shape((v.len() / d.max(1), d), v).unwrap(),
            Block::Mapped { map, start, rows, stride } => {
                ArrayView2::from_shape((*rows, d).strides((*stride, 1)), &map.values()[*start..]).unwrap()
            }
        })
    }

    /// Every row, in order.
    fn iter(&self) -> impl Iterator<Item = &[f64]> + '_ {
        self.views().flat_map(|v| (0..v.nrows()).map(move |i| v.index_axis_move(Axis(0), i).to_slice().unwrap()))
    }

    /// Row `i` (walks the blocks: a rank has one per input file).
    fn row(&self, mut i: usize) -> &[f64] {
        for v in self.views() {
            if i < v.nrows() {
                return v.index_axis_move(Axis(0), i).to_slice().unwrap();
            }
            i -= v.nrows();
        }
        panic!("row index out of range")
    }

    /// [`nearest`] over every block; `visit` gets the row's index among all rows.
    fn nearest(&self, c: &Array2<f64>, mut visit: impl FnMut(usize, &[f64], usize)) {
        let mut base = 0;
        for v in self.views() {
            let n = v.nrows();
            nearest(v, c, |i, row, j| visit(base + i, row, j));
            base += n;
        }
    }
}

/// The `kmeans` node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KmeansNode {
    /// Number of clusters.
    pub k: usize,
    /// Initialisation.
    pub init: Init,
    /// Iteration limit.
    pub max_iter: usize,
    /// Relative tolerance (scikit-learn's).
    pub tol: f64,
    /// Seed of the initialisation (of the first start; start r uses seed + r).
    pub seed: u64,
    /// Number of seeded starts; the one of least inertia is kept.
    #[serde(default = "one")]
    pub n_init: usize,
    /// Which start (0-based) the model is from.
    #[serde(default)]
    pub best_start: usize,
    /// k-means‖ points expected per round.
    pub oversampling: Option<f64>,
    /// k-means‖ rounds.
    pub rounds: usize,
    /// Feature names.
    pub columns: Vec<String>,
    /// Final centroids (k × d).
    #[serde(with = "rows")]
    pub centroids: Array2<f64>,
    /// Initial centroids (k × d).
    #[serde(with = "rows")]
    pub initial_centroids: Array2<f64>,
    /// Σ squared distance of every row to its centroid.
    pub inertia: f64,
    /// Lloyd iterations run.
    pub n_iter: usize,
    /// Whether the iterations stopped by the tolerance (not by `max_iter`); models written
    /// before this field existed read as converged.
    #[serde(default = "converged_default")]
    pub converged: bool,
    /// Training rows over all ranks.
    pub count: u64,
    #[serde(skip)]
    checkpoint: Option<PathBuf>,
    #[serde(skip)]
    resume: bool,
    #[serde(skip)]
    rows: Rows,
    /// Label of every local row (u32::MAX before the first step).
    #[serde(skip)]
    labels: Vec<u32>,
    /// Centroids known before the rows (a centroid file, or a checkpoint to resume from) with
    /// their iteration number, and the first Lloyd step against them, accumulated while the rows
    /// arrive (still in cache) instead of in one more pass over memory.
    #[serde(skip)]
    early: Option<(Array2<f64>, usize, Step)>,
    /// The feature variances for `tol`, accumulated while the rows arrive.
    #[serde(skip)]
    var: Option<crate::stats::Scatter>,
}

/// What one Lloyd step accumulates over a rank's rows: per-cluster sums (k × d, row-major) and
/// counts, and how many labels changed.
#[derive(Debug, Clone, Default)]
struct Step {
    sums: Vec<f64>,
    counts: Vec<f64>,
    changed: f64,
}

impl Step {
    fn new(k: usize, d: usize) -> Self {
        Step { sums: vec![0.0; k * d], counts: vec![0.0; k], changed: 0.0 }
    }
}

/// The outcome of one start (initialisation and iterations).
struct Run {
    initial: Array2<f64>,
    centroids: Array2<f64>,
    inertia: f64,
    n_iter: usize,
    converged: bool,
    start: usize,
}

impl KmeansNode {
    /// From a flow spec.
    pub fn from_spec(spec: &NodeSpec) -> Result<Self> {
        spec.check_keys(&["k", "init", "n_init", "max_iter", "tol", "seed", "oversampling", "rounds", "checkpoint", "resume"])?;
        let init = match spec.params.get("init").map(String::as_str) {
            None | Some("++") | Some("plusplus") | Some("k-means++") => Init::PlusPlus,
            Some("random") => Init::Random,
            Some("parallel") | Some("k-means||") | Some("||") => Init::Parallel,
            Some(f) => Init::File(PathBuf::from(f)),
        };
        let k = spec.get::<usize>("k")?.unwrap_or(0);
        if k == 0 && !matches!(init, Init::File(_)) {
            return Err(Error::Param("kmeans: give k >= 1, e.g. kmeans(k=8)".into()));
        }
        let tol = spec.get::<f64>("tol")?.unwrap_or(1e-4);
        if !(tol >= 0.0) {
            return Err(Error::Param(format!("kmeans: tol must be >= 0, got {tol}")));
        }
        // scikit-learn's n_init="auto": 10 starts for random init, one otherwise.
        let n_init = spec.get::<usize>("n_init")?.unwrap_or(if init == Init::Random { 10 } else { 1 });
        if n_init == 0 {
            return Err(Error::Param("kmeans: n_init must be >= 1".into()));
        }
        if n_init > 1 && matches!(init, Init::File(_)) {
            return Err(Error::Param("kmeans: n_init > 1 needs a random initialisation (random, ++ or parallel); \
                                     centroids from a file are one start".into()));
        }
        Ok(KmeansNode {
            k,
            init,
            n_init,
            max_iter: spec.get::<usize>("max_iter")?.unwrap_or(300).max(1),
            tol,
            seed: spec.get::<u64>("seed")?.unwrap_or(0),
            oversampling: spec.get::<f64>("oversampling")?,
            rounds: spec.get::<usize>("rounds")?.unwrap_or(5).max(1),
            checkpoint: spec.params.get("checkpoint").map(PathBuf::from),
            resume: spec.get_bool("resume", false)?,
            ..Default::default()
        })
    }

    /// Collective: pick the globally best (key, row) among every rank's `local` candidate
    /// (smallest key, ties → smallest global row); returns that row, same on all ranks.
    fn global_min(comm: &dyn Comm, local: Option<(f64, u64, Vec<f64>)>, d: usize) -> Option<(f64, u64, Vec<f64>)> {
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
    fn gather_rows(comm: &dyn Comm, rows: &[f64], d: usize) -> Array2<f64> {
        let mine: Vec<u8> = rows.iter().flat_map(|v| v.to_le_bytes()).collect();
        let all: Vec<f64> = comm.allgather_bytes(&mine).iter().flat_map(|b| b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect::<Vec<_>>()).collect();
        Array2::from_shape_vec((all.len() / d.max(1), d), all).unwrap()
    }

    fn init_random(&self, comm: &dyn Comm, offset: u64, seed: u64) -> Array2<f64> {
        let d = self.columns.len();
        let x = &self.rows;
        let mut keyed: Vec<(f64, u64, usize)> = (0..x.len()).map(|i| (uniform(seed, 0, offset + i as u64), offset + i as u64, i)).collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        keyed.truncate(self.k);
        let mut mine = Vec::new();
        for (key, g, i) in &keyed {
            mine.push(*key);
            mine.push(*g as f64);
            mine.extend_from_slice(x.row(*i));
        }
        let all = Self::gather_rows(comm, &mine, d + 2);
        let mut cand: Vec<_> = all.rows().into_iter().map(|r| (r[0], r[1] as u64, r.slice(s![2..]).to_owned())).collect();
        cand.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut c = Array2::zeros((self.k, d));
        for (j, (_, _, row)) in cand.into_iter().take(self.k).enumerate() {
            c.row_mut(j).assign(&row);
        }
        c
    }

    /// k-means++ over `x` (local rows with global offsets and weights), stream `base`.
    #[allow(clippy::too_many_arguments)]
    fn plusplus(&self, comm: &dyn Comm, x: &Rows, offset: u64, weight: Option<&[f64]>, seed: u64, base: u64, k: usize) -> Array2<f64> {
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
                    let mut pot = vec![0.0; cands.len()];
                    let cn: Vec<f64> = cands.iter().map(|r| r.dot(r)).collect();
                    for (i, xr) in x.iter().enumerate() {
                        for (t, r) in cands.iter().enumerate() {
                            pot[t] += w(i) * d2[i].min((xn[i] - 2.0 * dot(xr, r.as_slice().unwrap()) + cn[t]).max(0.0));
                        }
                    }
                    comm.allreduce_sum(&mut pot);
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

    fn init_parallel(&self, comm: &dyn Comm, offset: u64, seed: u64) -> Array2<f64> {
        let d = self.columns.len();
        let x = &self.rows;
        let l = self.oversampling.unwrap_or(2.0 * self.k as f64);
        let mut cand = self.plusplus(comm, x, offset, None, seed, 1, 1);
        for round in 0..self.rounds {
            let mut d2 = Vec::with_capacity(x.len());
            x.nearest(&cand, |_, row, j| d2.push(sq_dist(row, cand.row(j).as_slice().unwrap())));
            let mut phi = [d2.iter().sum::<f64>()];
            comm.allreduce_sum(&mut phi);
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
            cand = concatenate![Axis(0), cand, new];
        }
        // Weight each candidate by the rows nearest to it, then k-means++ on the candidates.
        let mut weight = vec![0.0; cand.nrows()];
        x.nearest(&cand, |_, _, j| weight[j] += 1.0);
        comm.allreduce_sum(&mut weight);
        let single = crate::comm::SingleComm;
        self.plusplus(&single, &Rows::from_array(&cand), 0, Some(&weight), seed, 1000, self.k)
    }

    fn init_file(&self, path: &std::path::Path, d: usize) -> Result<Array2<f64>> {
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
            return self.init_from_model(path, d);
        }
        let mut opts = crate::io::DataOptions::new(path.display().to_string());
        opts.block_bytes = 1 << 20;
        let data = crate::io::Dataset::open(&crate::comm::SingleComm, &opts)
            .map_err(|e| Error::Param(format!("kmeans init file: {e}")))?;
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
    fn init_from_model(&self, path: &std::path::Path, d: usize) -> Result<Array2<f64>> {
        let bad = |m: String| Error::Param(format!("kmeans init file {}: {m}", path.display()));
        let text = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let v: serde_json::Value = serde_json::from_slice(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let centroids = match v.get("format").and_then(|f| f.as_str()) {
            Some("flowmpi-kmeans-checkpoint") => v.get("centroids").cloned(),
            Some(crate::model::FORMAT) => v["nodes"].as_array().and_then(|n| n.iter().rev().find(|n| n["kind"] == "kmeans")).map(|n| n["centroids"].clone()),
            _ => return Err(bad("a JSON init file must be a flowmpi model with a kmeans node, or a k-means checkpoint; \
                                 centroids can also come from a CSV or NPY file of k rows".into())),
        }
        .ok_or_else(|| bad("the model has no kmeans node".into()))?;
        let rows: Vec<Vec<f64>> = serde_json::from_value(centroids).map_err(|e| bad(format!("centroids: {e}")))?;
        if rows.is_empty() || rows.iter().any(|r| r.len() != d || r.iter().any(|x| !x.is_finite())) {
            return Err(bad(format!("its centroids must be rows of {d} finite values (the data has {d} columns)")));
        }
        Ok(Array2::from_shape_vec((rows.len(), d), rows.concat()).expect("checked shape"))
    }

    fn write_checkpoint(&self, comm: &dyn Comm, c: &Array2<f64>, iteration: usize) -> Result<()> {
        let Some(path) = &self.checkpoint else { return Ok(()) };
        let local = if comm.rank() == 0 {
            let rows: Vec<Vec<f64>> = c.rows().into_iter().map(|r| r.to_vec()).collect();
            let body = serde_json::json!({"format": "flowmpi-kmeans-checkpoint", "iteration": iteration, "k": c.nrows(), "columns": self.columns, "centroids": rows});
            crate::io::write_atomic(path, &serde_json::to_vec_pretty(&body).unwrap(), 0)
        } else {
            Ok(())
        };
        crate::comm::agree(comm, local)
    }

    fn read_checkpoint(&self, d: usize) -> Result<(Array2<f64>, usize)> {
        let path = self.checkpoint.as_ref().ok_or_else(|| Error::Param("kmeans: --resume needs --checkpoint FILE".into()))?;
        let text = std::fs::read(path).map_err(|e| Error::Param(format!("kmeans: cannot resume from {}: {e}", path.display())))?;
        let v: serde_json::Value = serde_json::from_slice(&text).map_err(|e| Error::Param(format!("kmeans: {} is not a checkpoint: {e}", path.display())))?;
        let rows: Vec<Vec<f64>> = serde_json::from_value(v["centroids"].clone()).map_err(|e| Error::Param(format!("kmeans checkpoint: {e}")))?;
        if rows.len() != self.k || rows.iter().any(|r| r.len() != d) {
            return Err(Error::Param(format!("kmeans: checkpoint {} holds {} centroids of another shape", path.display(), rows.len())));
        }
        Ok((Array2::from_shape_vec((self.k, d), rows.concat()).unwrap(), v["iteration"].as_u64().unwrap_or(0) as usize))
    }

    /// Lloyd's iterations from centroids `c` at iteration `start` (collective). `first`: the
    /// first step, already accumulated while the rows were read. Start `r` of `n_init`.
    #[allow(clippy::too_many_arguments)]
    fn lloyd(&self, comm: &dyn Comm, mut c: Array2<f64>, start: usize, mut first: Option<Step>, labels: &mut [u32], tol: f64, offset: u64, r: usize) -> Result<Run> {
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
    fn assign(c: &Array2<f64>, x: ArrayView2<f64>, labels: &mut [u32], step: &mut Step) {
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

fn converged_default() -> bool {
    true
}

fn one() -> usize {
    1
}

impl Node for KmeansNode {
    fn warnings(&self) -> Vec<String> {
        if self.converged {
            return Vec::new();
        }
        vec![format!(
            "kmeans stopped at max_iter={} without converging (tol={}); the centroids may still move: raise max_iter",
            self.max_iter, self.tol
        )]
    }
    fn kind(&self) -> &'static str {
        "kmeans"
    }
    fn spec(&self) -> String {
        let init = match &self.init {
            Init::Random => "random".to_string(),
            Init::PlusPlus => "++".to_string(),
            Init::Parallel => "parallel".to_string(),
            Init::File(p) => p.display().to_string(),
        };
        format!("kmeans(k={}, init={init}, n_init={}, max_iter={}, tol={}, seed={})", self.k, self.n_init, self.max_iter, self.tol, self.seed)
    }
    fn task(&self) -> Task {
        Task::Clustering
    }
    fn keeps_rows(&self) -> bool {
        true
    }
    fn set_checkpoint(&mut self, path: Option<PathBuf>, resume: bool) {
        if path.is_some() {
            self.checkpoint = path;
        }
        self.resume |= resume;
    }
    fn state_elements(&self, d: usize) -> u128 {
        // Centroids, their sums, the previous centroids and a gemm block of 1024 rows × k.
        (4 * d as u128 + 1024) * self.k.max(1) as u128
    }
    fn begin(&mut self, schema: &Schema) -> Result<()> {
        if self.checkpoint.is_some() && self.n_init > 1 {
            // A checkpoint holds one start's centroids; resuming several starts would need all.
            return Err(Error::Param(format!(
                "kmeans: a checkpoint follows one start, but n_init={}: give n_init=1 (with init=++ or parallel, \
                 whose single start is good on most data)", self.n_init)));
        }
        self.columns = schema.x.clone();
        self.rows = Rows::new(schema.x.len());
        if let Init::File(p) = &self.init {
            let c = self.init_file(p, schema.x.len())?;
            if self.k != 0 && self.k != c.nrows() {
                return Err(Error::Param(format!("kmeans: k={} but {} holds {} centroids", self.k, p.display(), c.nrows())));
            }
            self.k = c.nrows();
            self.initial_centroids = c;
        }
        let d = schema.x.len();
        self.labels.clear();
        self.early = if self.resume {
            let (c, it) = self.read_checkpoint(d)?;
            Some((c, it, Step::new(self.k, d)))
        } else if matches!(self.init, Init::File(_)) {
            Some((self.initial_centroids.clone(), 0, Step::new(self.k, d)))
        } else {
            None
        };
        self.var = (self.tol > 0.0).then(|| crate::stats::Scatter::new(d, false));
        Ok(())
    }
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        self.rows.push(chunk.x, chunk.mapped);
        self.labels.resize(self.labels.len() + chunk.x.nrows(), u32::MAX);
        if let Some((c, it, step)) = &mut self.early {
            if *it < self.max_iter {
                let n = chunk.x.nrows();
                let labels = self.labels.len() - n;
                Self::assign(c, chunk.x, &mut self.labels[labels..], step);
            }
        }
        if let Some(var) = &mut self.var {
            var.update(chunk.x);
        }
        Ok(())
    }
    fn join(&mut self, comm: &dyn Comm) -> Result<()> {
        let d = self.columns.len();
        let n_local = self.rows.len() as f64;
        let counts = crate::comm::allgather_f64(comm, n_local);
        let total: f64 = counts.iter().sum();
        let offset = counts[..comm.rank()].iter().sum::<f64>() as u64;
        if (total as usize) < self.k {
            return Err(Error::Fit(format!("kmeans: k={} is larger than the number of rows ({total})", self.k)));
        }
        self.count = total as u64;
        // scikit-learn's tolerance: tol × mean of the feature variances (population).
        let tol = match self.var.take() {
            Some(mut var) => {
                var.allreduce(comm)?;
                self.tol * var.centered_sq().iter().map(|v| v / total).sum::<f64>() / d as f64
            }
            None => 0.0,
        };

        let early = self.early.take();
        // Several seeded starts (seed, seed+1, ...) keep the one of least inertia, as
        // scikit-learn's n_init; given centroids or a checkpoint are one start.
        let starts = if early.is_some() { 1 } else { self.n_init.max(1) };
        let mut first = early.map(|(c, it, step)| (c, it, Some(step)));
        let mut labels = std::mem::take(&mut self.labels);
        let mut best: Option<Run> = None;
        for r in 0..starts {
            let (c, start, step) = match first.take() {
                Some(e) => e,
                None => {
                    let seed = self.seed.wrapping_add(r as u64);
                    let c = match &self.init {
                        Init::Random => self.init_random(comm, offset, seed),
                        Init::PlusPlus => self.plusplus(comm, &self.rows, offset, None, seed, 1, self.k),
                        Init::Parallel => self.init_parallel(comm, offset, seed),
                        Init::File(_) => unreachable!("centroid files are read in begin"),
                    };
                    labels.fill(u32::MAX);
                    (c, 0, None)
                }
            };
            let run = self.lloyd(comm, c, start, step, &mut labels, tol, offset, r)?;
            if starts > 1 {
                crate::log::global().detail(format!(
                    "kmeans start {}/{starts} (seed {}): inertia {:.6e} after {} iteration(s)",
                    r + 1, self.seed.wrapping_add(r as u64), run.inertia, run.n_iter));
            }
            // Inertia is a global sum, identical on every rank: every rank keeps the same start.
            if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
                best = Some(run);
            }
        }
        let best = best.expect("at least one start");
        if !self.resume {
            self.initial_centroids = best.initial;
        }
        self.best_start = best.start;
        self.inertia = best.inertia;
        self.converged = best.converged;
        self.n_iter = best.n_iter;
        self.centroids = best.centroids;
        self.rows = Rows::default();
        Ok(())
    }
    fn input_dim(&self) -> usize {
        self.columns.len()
    }
    fn output_names(&self) -> Vec<String> {
        self.columns.iter().cloned().chain(["cluster".to_string(), "distance".to_string()]).collect()
    }
    fn predict(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let c = &self.centroids;
        let mut out = Array2::zeros((x.nrows(), 2));
        nearest(x, c, |i, row, j| {
            out[[i, 0]] = j as f64;
            out[[i, 1]] = sq_dist(row, c.row(j).as_slice().unwrap()).sqrt();
        });
        out
    }
    fn execute(&self, x: ArrayView2<f64>) -> Array2<f64> {
        concatenate![Axis(1), x, self.predict(x)]
    }
    fn summary(&self) -> Vec<String> {
        let starts = if self.n_init > 1 { format!(" (best of {} starts: seed {})", self.n_init, self.seed + self.best_start as u64) } else { String::new() };
        vec![format!(
            "k={} on {} features, {} rows: inertia {:.6e} after {} iteration(s){starts}",
            self.k,
            self.columns.len(),
            self.count,
            self.inertia,
            self.n_iter
        )]
    }
    fn check_model(&self) -> Result<()> {
        let s = super::Shapes("kmeans");
        s.at_least("centroids", self.centroids.nrows(), 1)?;
        s.mat("centroids", &self.centroids, self.centroids.nrows(), self.columns.len())
    }
    fn to_json(&self) -> serde_json::Value {
        tagged("kmeans", self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comm::run_threads;
    use ndarray::Array;

    fn blobs() -> Array2<f64> {
        Array::from_shape_fn((300, 2), |(i, j)| {
            let c = [(0.0, 0.0), (5.0, 5.0), (0.0, 6.0)][i % 3];
            let u = uniform(42, j as u64, i as u64) - 0.5;
            (if j == 0 { c.0 } else { c.1 }) + u
        })
    }

    fn fit(ranks: usize, spec: &str, x: &Array2<f64>, cuts: &[usize]) -> Vec<KmeansNode> {
        let schema = Schema::features(&["a".into(), "b".into()]);
        run_threads(ranks, |c| {
            let (lo, hi) = (cuts[c.rank()], cuts[c.rank() + 1]);
            let mut n = KmeansNode::from_spec(&NodeSpec::parse(spec).unwrap()).unwrap();
            n.fit_chunk(c, &Chunk::new(x.slice(s![lo..hi, ..])), &schema).unwrap();
            n
        })
    }

    #[test]
    fn init_is_the_same_for_any_rank_count_and_split() {
        let x = blobs();
        for init in ["random", "++", "parallel"] {
            let spec = format!("kmeans(k=3, init={init}, seed=7, max_iter=1)");
            let one = fit(1, &spec, &x, &[0, 300]).remove(0);
            for cuts in [vec![0, 150, 300], vec![0, 0, 299, 300], vec![0, 10, 20, 200, 300]] {
                let out = fit(cuts.len() - 1, &spec, &x, &cuts);
                for n in &out {
                    assert_eq!(n.initial_centroids, one.initial_centroids, "{init} with cuts {cuts:?}");
                }
            }
        }
    }

    #[test]
    fn lloyd_finds_the_blobs_and_agrees_across_ranks() {
        let x = blobs();
        let out = fit(3, "kmeans(k=3, init=++, seed=1)", &x, &[0, 50, 50, 300]);
        let n = &out[0];
        assert!(out.iter().all(|o| o.centroids == n.centroids && o.n_iter == n.n_iter));
        let mut cs: Vec<(f64, f64)> = n.centroids.rows().into_iter().map(|r| (r[0], r[1])).collect();
        cs.sort_by_key(|c| (c.0.round() as i64, c.1.round() as i64));
        for (got, want) in cs.iter().zip([(0.0, 0.0), (0.0, 6.0), (5.0, 5.0)]) {
            assert!((got.0 - want.0).abs() < 0.1 && (got.1 - want.1).abs() < 0.1, "{cs:?}");
        }
        // Inertia is the sum of squared distances to the final centroids.
        let p = n.predict(x.view());
        let direct: f64 = p.column(1).iter().map(|v| v * v).sum();
        assert!((direct - n.inertia).abs() < 1e-9 * n.inertia);
    }

    #[test]
    fn nearest_agrees_with_brute_force_over_several_blocks() {
        // 2.5 blocks of rows, 5 columns (not a multiple of the 8 lanes), k = 7.
        let (n, d, k) = (2 * BLOCK + BLOCK / 2 + 3, 5, 7);
        let x: Vec<f64> = (0..n * d).map(|i| uniform(1, 0, i as u64) * 10.0).collect();
        let c = Array::from_shape_fn((k, d), |(j, t)| uniform(2, j as u64, t as u64) * 10.0);
        let mut seen = Vec::new();
        let xv = ArrayView2::from_shape((n, d), &x).unwrap();
        nearest(xv, &c, |i, row, j| seen.push((i, row.to_vec(), j)));
        assert_eq!(seen.len(), n);
        // The portable build of the kernel gives the same labels as the dispatched one.
        let mut portable = Vec::new();
        nearest_any(xv, &c, |_, _, j| portable.push(j));
        assert_eq!(portable, seen.iter().map(|s| s.2).collect::<Vec<_>>());
        for (want_i, (i, row, j)) in seen.into_iter().enumerate() {
            assert_eq!(i, want_i);
            assert_eq!(row, &x[i * d..(i + 1) * d]);
            let dist: Vec<f64> = c.rows().into_iter().map(|cr| row.iter().zip(cr).map(|(a, b)| (a - b) * (a - b)).sum()).collect();
            let best = (0..k).fold(0, |b, t| if dist[t] < dist[b] { t } else { b });
            assert!(j == best || (dist[j] - dist[best]).abs() < 1e-9, "row {i}: got {j}, want {best} ({dist:?})");
            assert!((sq_dist(&row, c.row(j).as_slice().unwrap()) - dist[j]).abs() < 1e-9);
        }
    }

    #[test]
    fn the_first_step_taken_while_reading_chunks_matches_one_pass() {
        // Known centroids (a file): the first Lloyd step and the tol variances are accumulated
        // chunk by chunk in update(); the result must not depend on how the rows were chunked.
        let x = blobs();
        let dir = std::env::temp_dir().join(format!("flowmpi-km-chunks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let init = dir.join("init.csv");
        std::fs::write(&init, "a,b\n1,1\n4,4\n0,5\n").unwrap();
        let spec = NodeSpec::parse(&format!("kmeans(init={}, tol=1e-3)", init.display())).unwrap();
        let schema = Schema::features(&["a".into(), "b".into()]);
        let fit_in = |cuts: &[usize]| {
            let mut n = KmeansNode::from_spec(&spec).unwrap();
            n.begin(&schema).unwrap();
            for w in cuts.windows(2) {
                n.update(&Chunk::new(x.slice(s![w[0]..w[1], ..]))).unwrap();
            }
            n.join(&crate::comm::SingleComm).unwrap();
            n
        };
        let one = fit_in(&[0, 300]);
        let many = fit_in(&[0, 1, 7, 7, 150, 299, 300]);
        assert_eq!(one.n_iter, many.n_iter);
        assert!(one.centroids.iter().zip(&many.centroids).all(|(a, b)| (a - b).abs() < 1e-12));
        assert!((one.inertia - many.inertia).abs() < 1e-9 * one.inertia);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn mapped_npy_rows_are_kept_as_one_block_per_file_without_a_copy() {
        let dir = std::env::temp_dir().join(format!("flowmpi-km-mapped-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cols, rows_per_file) = (5, [7usize, 4]);
        let mut want = Vec::new();
        for (f, &n) in rows_per_file.iter().enumerate() {
            let vals: Vec<f64> = (0..n * cols).map(|i| (f * 100 + i) as f64).collect();
            want.extend(vals.chunks(cols).map(|r| r[1..4].to_vec()));
            let mut w = crate::io::npy::NpyWriter::create(std::fs::File::create(dir.join(format!("p{f}.npy"))).unwrap(), cols).unwrap();
            w.write_rows(&vals).unwrap();
            w.finish().unwrap();
        }
        let mut opts = crate::io::DataOptions::new(dir.join("p*.npy").display().to_string());
        opts.columns = Some("1-3".into());
        opts.block_bytes = 80; // two rows per chunk
        let data = crate::io::Dataset::open(&crate::comm::SingleComm, &opts).unwrap();
        let mut kept = Rows::new(3);
        data.for_each_chunk_mapped(&mut |c| {
            kept.push(c.x, c.mapped);
            Ok(())
        })
        .unwrap();
        assert_eq!(kept.len(), 11);
        assert_eq!(kept.blocks.len(), 2);
        assert!(kept.blocks.iter().all(|b| matches!(b, Block::Mapped { .. })));
        assert_eq!(kept.iter().map(|r| r.to_vec()).collect::<Vec<_>>(), want);
        assert_eq!(kept.row(7), &want[7][..]);
        // The same rows copied from plain chunks: one owned block.
        let mut copied = Rows::new(3);
        data.for_each_chunk(&mut |c| {
            copied.push(c.x, c.mapped);
            Ok(())
        })
        .unwrap();
        assert!(matches!(copied.blocks[..], [Block::Owned(_)]));
        assert_eq!(copied.iter().map(|r| r.to_vec()).collect::<Vec<_>>(), want);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn k_larger_than_rows_is_an_error_everywhere() {
        let x = blobs();
        let schema = Schema::features(&["a".into(), "b".into()]);
        let out = run_threads(2, |c| {
            let mut n = KmeansNode::from_spec(&NodeSpec::parse("kmeans(k=500)").unwrap()).unwrap();
            n.fit_chunk(c, &Chunk::new(x.slice(s![c.rank() * 150..(c.rank() + 1) * 150, ..])), &schema).unwrap_err().to_string()
        });
        assert!(out.iter().all(|m| m.contains("larger than the number of rows")), "{out:?}");
    }

    #[test]
    fn an_empty_cluster_takes_the_farthest_row() {
        let x = blobs();
        let dir = std::env::temp_dir().join(format!("flowmpi-km-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // The third start is far from every row: its cluster is empty after the first step.
        let init = dir.join("init.csv");
        std::fs::write(&init, "a,b\n0,0\n5,5\n100,100\n").unwrap();
        let spec = format!("kmeans(init={}, max_iter=1)", init.display());
        let n = fit(2, &spec, &x, &[0, 100, 300]).remove(0);
        // With one iteration, the empty cluster's centroid is the row farthest from its centroid.
        let c = n.centroids.row(2).to_owned();
        assert!(x.rows().into_iter().any(|r| r == c), "{c:?} is not a data row");
        assert!(c[1] > 5.0, "the farthest rows are in the blob at (0, 6): {c:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
