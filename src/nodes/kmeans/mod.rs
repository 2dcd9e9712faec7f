//! `kmeans`: Lloyd's k-means over all ranks, `kmeans(k=10, init=++, max_iter=300, tol=1e-4,
//! seed=0)`. The node keeps its rank's rows in memory (k-means needs many passes): rows of
//! memory-mapped NPY inputs as views of the map ([`crate::io::Chunk::mapped`]), other rows as a copy.
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

use super::define::{params_from_fields, Kind, NodeParams, Predict, Report};
use super::{rows, NodeSpec, Task};
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::npy::Mapped;
use crate::io::Schema;
use ndarray::{s, Array1, Array2, ArrayView2, Axis, ShapeBuilder};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

mod checkpoint;
mod init;
mod kernel;
mod lloyd;
mod partial;
mod store;
#[cfg(test)]
mod tests;

use kernel::*;
use partial::{canonical_variance, KmeansPartial};
use store::*;

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

/// `kmeans`' parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KmeansParams {
    /// Number of clusters (from the centroid file when `init` is one and k is not given).
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
    /// k-means‖ points expected per round.
    pub oversampling: Option<f64>,
    /// k-means‖ rounds.
    pub rounds: usize,
    /// Where rank 0 writes a checkpoint after every iteration (`checkpoint=FILE`, or `train
    /// --checkpoint`): an option of this training, never written to a model.
    #[serde(skip)]
    pub checkpoint: Option<PathBuf>,
    /// Resume from [`KmeansParams::checkpoint`] instead of initialising (`resume=true`, `train
    /// --resume`); never written to a model.
    #[serde(skip)]
    pub resume: bool,
}

/// scikit-learn's defaults: 8 clusters from k-means++, one start, at most 300 Lloyd steps,
/// tolerance 1e-4, seed 0 (k-means‖: 5 rounds of 2k points).
impl Default for KmeansParams {
    fn default() -> Self {
        KmeansParams {
            k: 8,
            init: Init::PlusPlus,
            max_iter: 300,
            tol: 1e-4,
            seed: 0,
            n_init: 1,
            oversampling: None,
            rounds: 5,
            checkpoint: None,
            resume: false,
        }
    }
}

/// The trained `kmeans` node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KmeansModel {
    /// The parameters.
    pub params: KmeansParams,
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
    /// Which start (0-based) the model is from.
    #[serde(default)]
    pub best_start: usize,
    /// Rows nearest each final centroid, over all ranks (empty in models written before it).
    #[serde(default)]
    pub cluster_sizes: Vec<u64>,
}

/// What one Lloyd step accumulates over a set of rows, flat so that it sums across ranks in
/// one reduction: per-cluster sums (k × d, row-major), per-cluster counts, and how many labels
/// changed.
pub(super) fn new_step(k: usize, d: usize) -> Vec<f64> {
    vec![0.0; k * d + k + 1]
}

/// The outcome of one start (initialisation and iterations).
pub(super) struct Run {
    initial: Array2<f64>,
    centroids: Array2<f64>,
    inertia: f64,
    sizes: Vec<u64>,
    n_iter: usize,
    converged: bool,
    start: usize,
}

impl KmeansParams {
    /// The spec's `init`.
    fn init_text(&self) -> String {
        match &self.init {
            Init::Random => "random".to_string(),
            Init::PlusPlus => "++".to_string(),
            Init::Parallel => "parallel".to_string(),
            Init::File(p) => p.display().to_string(),
        }
    }
}

impl NodeParams for KmeansParams {
    const KIND: Kind = Kind::new(
        "kmeans",
        &["k", "init", "n_init", "max_iter", "tol", "seed", "oversampling", "rounds", "checkpoint", "resume"],
        "kmeans(k=K, init=random|++|parallel|FILE, n_init=N, max_iter=300, tol=1e-4, seed=0): Lloyd's k-means",
    )
    .aliases(&["k_means"])
    .task(Task::Clustering);
    const KEEPS_ROWS: bool = true;
    type Partial = KmeansPartial;
    type Model = KmeansModel;
    /// `kmeans(k=10, init=++, n_init=1, max_iter=300, tol=1e-4, seed=0, oversampling=, rounds=5,
    /// checkpoint=FILE, resume=false)`.
    fn from_spec(spec: &NodeSpec) -> Result<Self> {
        let init = match spec.params.get("init").map(String::as_str) {
            None | Some("++") | Some("plusplus") | Some("k-means++") => Init::PlusPlus,
            Some("random") => Init::Random,
            Some("parallel") | Some("k-means||") | Some("||") => Init::Parallel,
            Some(f) => Init::File(PathBuf::from(f)),
        };
        let k = spec.get::<usize>("k")?.unwrap_or(0);
        let tol = spec.get::<f64>("tol")?.unwrap_or(1e-4);
        // scikit-learn's n_init="auto": 10 starts for random init, one otherwise.
        let n_init = spec.get::<usize>("n_init")?.unwrap_or(if init == Init::Random { 10 } else { 1 });
        Ok(KmeansParams {
            k,
            init,
            n_init,
            max_iter: spec.get::<usize>("max_iter")?.unwrap_or(300),
            tol,
            seed: spec.get::<u64>("seed")?.unwrap_or(0),
            oversampling: spec.get::<f64>("oversampling")?,
            rounds: spec.get::<usize>("rounds")?.unwrap_or(5),
            checkpoint: spec.params.get("checkpoint").map(PathBuf::from),
            resume: spec.get_bool("resume", false)?,
        })
    }
    fn validate(&self) -> Result<()> {
        let file = matches!(self.init, Init::File(_));
        if self.k == 0 && !file {
            return Err(Error::Param("kmeans: give k >= 1, e.g. kmeans(k=8)".into()));
        }
        if self.tol.is_nan() || self.tol < 0.0 {
            return Err(Error::Param(format!("kmeans: tol must be >= 0, got {}", self.tol)));
        }
        if self.n_init == 0 {
            return Err(Error::Param("kmeans: n_init must be >= 1".into()));
        }
        if self.n_init > 1 && file {
            return Err(Error::Param(
                "kmeans: n_init > 1 needs a random initialisation (random, ++ or parallel); \
                                     centroids from a file are one start"
                    .into(),
            ));
        }
        crate::nodes::define::at_least_one("kmeans", "max_iter", Some(self.max_iter))?;
        crate::nodes::define::at_least_one("kmeans", "rounds", Some(self.rounds))?;
        if let Some(o) = self.oversampling {
            if !(o > 0.0 && o.is_finite()) {
                return Err(Error::Param(format!("kmeans: oversampling must be > 0, got {o}")));
            }
        }
        Ok(())
    }
    fn spec(&self) -> String {
        let s =
            format!("kmeans(k={}, init={}, n_init={}, max_iter={}, tol={}, seed={}", self.k, self.init_text(), self.n_init, self.max_iter, self.tol, self.seed);
        // k-means‖'s settings only when they are not the defaults, as specs before them read.
        let oversampling = self.oversampling.map(|o| format!(", oversampling={o}")).unwrap_or_default();
        let rounds = if self.rounds != 5 { format!(", rounds={}", self.rounds) } else { String::new() };
        format!("{s}{oversampling}{rounds})")
    }
    fn state_elements(&self, d: usize) -> u128 {
        // Centroids, their sums, the previous centroids and a gemm block of 1024 rows × k.
        (4 * d as u128 + 1024) * self.k.max(1) as u128
    }
    fn check(&self, _schema: &Schema) -> Result<()> {
        if self.checkpoint.is_some() && self.n_init > 1 {
            // A checkpoint holds one start's centroids; resuming several starts would need all.
            return Err(Error::Param(format!(
                "kmeans: a checkpoint follows one start, but n_init={}: give n_init=1 (with init=++ or parallel, \
                 whose single start is good on most data)",
                self.n_init
            )));
        }
        Ok(())
    }
    /// The first pass's partial: the centroids of a file or of the checkpoint to resume from
    /// are read here (a file's count is k), so that the first step sums while rows are read.
    fn start(&mut self, schema: &Schema) -> Result<KmeansPartial> {
        let d = schema.x.len();
        let mut early = None;
        if let Init::File(p) = &self.init {
            let c = init::init_file(p, d)?;
            if self.k != 0 && self.k != c.nrows() {
                return Err(Error::Param(format!("kmeans: k={} but {} holds {} centroids", self.k, p.display(), c.nrows())));
            }
            self.k = c.nrows();
            early = Some((c, 0));
        }
        let mut resumed_initial = None;
        if self.resume {
            let (c, it, initial) = self.read_checkpoint(d)?;
            early = Some((c, it));
            resumed_initial = initial;
        }
        let mut partial = self.partial(schema);
        partial.early = early.map(|(c, it)| (c, it, new_step(self.k, d)));
        partial.resumed_initial = resumed_initial;
        Ok(partial)
    }
    fn set_checkpoint(&mut self, path: Option<PathBuf>, resume: bool) -> bool {
        if path.is_some() {
            self.checkpoint = path;
        }
        self.resume |= resume;
        true
    }
    fn partial(&self, schema: &Schema) -> KmeansPartial {
        let d = schema.x.len();
        KmeansPartial {
            rows: Rows::new(d),
            labels: Vec::new(),
            early: None,
            resumed_initial: None,
            max_iter: self.max_iter,
            var: (self.tol > 0.0).then(|| crate::stats::Scatter::new(d, false)),
            var_leaves: Vec::new(),
        }
    }
    /// Lloyd's iterations over the rows every rank keeps (collective).
    fn train(&self, comm: &dyn Comm, mut mine: KmeansPartial, schema: &Schema) -> Result<KmeansModel> {
        // With a checkpoint, a time-limit warning during the initialisation stops the loop
        // after its first step (checkpointed) rather than ending the process.
        let _armed = self.checkpoint.as_ref().map(|_| crate::stop::Armed::new());
        let d = schema.x.len();
        // Under `train --reproducible` (on any rank, so on all), every sum over the rows is
        // formed per leaf and added in the canonical tree.
        let canonical = mine.rows.agree_leaves(comm);
        let n_local = mine.rows.len() as f64;
        let counts = crate::comm::allgather_f64(comm, n_local);
        let total: f64 = counts.iter().sum();
        let offset = counts[..comm.rank()].iter().sum::<f64>() as u64;
        if (total as usize) < self.k {
            return Err(Error::Fit(format!("kmeans: k={} is larger than the number of rows ({total})", self.k)));
        }
        // scikit-learn's tolerance: tol × mean of the feature variances (population).
        let tol = match mine.var.take() {
            Some(_) if canonical => self.tol * canonical_variance(comm, std::mem::take(&mut mine.var_leaves), d, total),
            Some(mut var) => {
                var.allreduce(comm)?;
                self.tol * var.centered_sq().iter().map(|v| v / total).sum::<f64>() / d as f64
            }
            None => 0.0,
        };
        let t = Trainer { p: self, columns: &schema.x, rows: &mine.rows, resumed_initial: mine.resumed_initial.as_ref() };
        // Several seeded starts (seed, seed+1, ...) keep the one of least inertia, as
        // scikit-learn's n_init; given centroids or a checkpoint are one start.
        let starts = if mine.early.is_some() { 1 } else { self.n_init.max(1) };
        let mut labels = std::mem::take(&mut mine.labels);
        // The first step accumulated while reading is one sum over all leaves: under
        // --reproducible it is taken again, per leaf.
        if canonical {
            labels.fill(u32::MAX);
        }
        let mut first = mine.early.take().map(|(c, it, step)| (c, it, Some(step).filter(|_| !canonical)));
        let mut best: Option<Run> = None;
        for r in 0..starts {
            let (c, start, step) = match first.take() {
                Some(e) => e,
                None => {
                    let seed = self.seed.wrapping_add(r as u64);
                    let c = match &self.init {
                        Init::Random => t.init_random(comm, offset, seed),
                        Init::PlusPlus => t.plusplus(comm, t.rows, offset, None, seed, 1, self.k),
                        Init::Parallel => t.init_parallel(comm, offset, seed),
                        Init::File(_) => unreachable!("centroid files are read in start"),
                    };
                    labels.fill(u32::MAX);
                    (c, 0, None)
                }
            };
            let run = t.lloyd(comm, c, start, step, &mut labels, tol, offset, r)?;
            if starts > 1 {
                crate::log::global().detail(format!(
                    "kmeans start {}/{starts} (seed {}): inertia {:.6e} after {} iteration(s)",
                    r + 1,
                    self.seed.wrapping_add(r as u64),
                    run.inertia,
                    run.n_iter
                ));
            }
            // Inertia is a global sum, identical on every rank: every rank keeps the same start.
            if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
                best = Some(run);
            }
        }
        let best = best.ok_or_else(|| Error::Fit("kmeans: no start ran".into()))?;
        Ok(KmeansModel {
            params: KmeansParams { checkpoint: None, resume: false, ..self.clone() },
            initial_centroids: best.initial,
            best_start: best.start,
            inertia: best.inertia,
            cluster_sizes: best.sizes,
            converged: best.converged,
            n_iter: best.n_iter,
            centroids: best.centroids,
            count: total as u64,
        })
    }
    fn finalize(&self, _all: KmeansPartial, _schema: &Schema) -> Result<KmeansModel> {
        // Never called: `train` iterates over the rows each rank keeps instead.
        Err(Error::Fit("kmeans trains by iterating (NodeParams::train), not from a joined partial".into()))
    }
    fn upgrade(node: &serde_json::Value) -> Option<serde_json::Value> {
        params_from_fields(node, &["k", "init", "n_init", "max_iter", "tol", "seed", "oversampling", "rounds"])
    }
}

/// One training's view: the parameters, the input columns and this rank's rows.
pub(super) struct Trainer<'a> {
    p: &'a KmeansParams,
    columns: &'a [String],
    rows: &'a Rows,
    /// Resumed: the checkpoint's record of the start's initial centroids, so that a resumed
    /// model reports the same `initial_centroids` as an uninterrupted run (checkpoints older
    /// than that record have none: then the model's are empty).
    resumed_initial: Option<&'a Array2<f64>>,
}

fn converged_default() -> bool {
    true
}

fn one() -> usize {
    1
}

impl Predict for KmeansModel {
    fn prediction_names(&self) -> Vec<String> {
        vec!["cluster".to_string(), "distance".to_string()]
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
}

impl Report for KmeansModel {
    fn summary(&self, input: &[String], _full: bool) -> Vec<String> {
        let p = &self.params;
        let starts = if p.n_init > 1 { format!(" (best of {} starts: seed {})", p.n_init, p.seed + self.best_start as u64) } else { String::new() };
        vec![format!(
            "k={} on {} features, {} rows: inertia {:.6e} after {} iteration(s){starts}",
            self.centroids.nrows(),
            input.len(),
            self.count,
            self.inertia,
            self.n_iter
        )]
    }
    fn check_loaded(&self, input: &[String]) -> Result<()> {
        let s = super::Shapes("kmeans");
        s.at_least("centroids", self.centroids.nrows(), 1)?;
        s.mat("centroids", &self.centroids, self.centroids.nrows(), input.len())
    }
    fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if !self.converged {
            w.push(format!(
                "kmeans stopped at max_iter={} without converging (tol={}); the centroids may still move: raise max_iter",
                self.params.max_iter, self.params.tol
            ));
        }
        // Fewer distinct points than k (duplicate rows): some centroids coincide, and their
        // clusters split one group arbitrarily (scikit-learn warns alike).
        let k = self.centroids.nrows();
        let distinct: std::collections::HashSet<Vec<u64>> =
            self.centroids.rows().into_iter().map(|r| r.iter().map(|v| (v + 0.0).to_bits()).collect()).collect();
        if distinct.len() < k {
            w.push(format!("kmeans found {} distinct centroids for k={k}: the data has fewer distinct points than k (duplicate rows?)", distinct.len()));
        }
        w
    }
}
