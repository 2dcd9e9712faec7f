//! `sfa(n=…)`: slow feature analysis (MDP's SFANode) over all ranks.
//!
//! Rows are time-ordered within a shard file. The time derivative is the difference of
//! consecutive rows *within* a file: a file boundary is a break in the series, as each MDP data
//! chunk is, and a file split among ranks is still one series (a rank whose rows continue a file
//! is differenced with the last row of the rank before, so any rank count gives one rank's
//! result). With `contiguous=true` the files are consecutive blocks of one series in rank/file
//! order: every seam is differenced that way (a halo exchange), so the result equals SFA on the
//! whole unsplit series.
//!
//! Joined statistics: the covariance of x (n − 1) and the second moment of ẋ about 0
//! (Σẋẋᵀ/(m − 1), as MDP). The generalised eigenproblem Ċ v = λ C v is solved with C's
//! Cholesky factor; the `n` slowest (smallest λ) are kept, normalised to unit variance.
//! Rank-deficient input (singular C, e.g. after a quadratic expansion of redundant inputs) is a
//! clear error suggesting a PCA with `var=` before SFA. Model: delta values (λ), eta values
//! (√λ/2π), the projection (columns = features; each with its largest entry positive), the mean.

use super::define::{params_from_fields, size_fits, Kind, NodeParams, Partial, Report, Transform};
use super::{rows, spec_text, NodeSpec};
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::{Chunk, Schema};
use crate::stats::{allreduce_symmetric, fix_signs, generalized_eigh, syrk_upper, Scatter};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

/// `sfa`'s parameters (and `sfa2`'s).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SfaParams {
    /// Output dimension (slowest features kept); all when `None`.
    pub n: Option<usize>,
    /// Shards are consecutive blocks of one series.
    pub contiguous: bool,
}

/// The trained `sfa` node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SfaModel {
    /// Training rows over all ranks.
    pub count: u64,
    /// Mean of the input.
    pub mean: Vec<f64>,
    /// Delta values (generalised eigenvalues), ascending, of the kept features.
    pub delta: Vec<f64>,
    /// Eta values √delta / 2π.
    pub eta: Vec<f64>,
    /// Projection, one row per slow feature (k × d): y = (x − mean)·projectionᵀ.
    #[serde(with = "rows")]
    pub projection: Array2<f64>,
}

/// SFA's statistics of a stretch of rows in time order: the moments of x, the time
/// differences' second moment, and the rows at both ends (so that a later stretch of the same
/// series can be joined on with the difference across the seam).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SfaPartial {
    contiguous: bool,
    x: Scatter,
    /// Upper triangle of Σẋẋᵀ.
    dd: Array2<f64>,
    dn: u64,
    first: Option<Array1<f64>>,
    last: Option<Array1<f64>>,
    /// The first file continues one begun before it (a later part of a file split among
    /// ranks, or among `--reproducible`'s leaves).
    continues: bool,
    /// The files at both ends (at most two).
    ends: Files,
    /// The file of the last row.
    last_file: Option<String>,
}

thread_local! {
    /// The differences of one chunk's rows, reused by every partial on this thread: a fresh
    /// partial per part of a chunk ([`crate::threads`]) would otherwise grow a new buffer,
    /// faulting in its pages, each time.
    static DIFFS: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Rows of one file (a shard without one: `None`) seen by a partial, and the rank that read its
/// first ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FileRows {
    file: Option<String>,
    rows: u64,
    rank: usize,
}

/// The files of a stretch of rows, for the check that no file has a single row (no time
/// derivative): the files at both ends, which a neighbouring stretch may continue, and the
/// first complete one between them that has a single row.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Files {
    ends: Vec<FileRows>,
    single_row: Option<FileRows>,
}

impl Files {
    /// Append the files of a later stretch (`continues`: its first file is our last one,
    /// continued).
    fn add(&mut self, later: Files, continues: bool) {
        self.single_row = self.single_row.take().or(later.single_row);
        for (k, f) in later.ends.into_iter().enumerate() {
            match self.ends.last_mut() {
                Some(last) if k == 0 && continues && last.file == f.file => last.rows += f.rows,
                _ => self.ends.push(f),
            }
            if self.ends.len() > 2 {
                let done = self.ends.remove(1);
                if done.rows == 1 && self.single_row.is_none() {
                    self.single_row = Some(done);
                }
            }
        }
    }

    /// A file of a single row, once every stretch is added.
    fn single_row(self) -> Option<FileRows> {
        self.single_row.or_else(|| self.ends.into_iter().find(|f| f.rows == 1))
    }
}

/// Whether a stretch that `continues` with files `later` is one series with a stretch whose last
/// row is from `last_file`: its first row is in its first file, continued from that one.
fn continued(last_file: &Option<String>, continues: bool, later: &Files) -> bool {
    continues && later.ends.first().is_some_and(|f| f.rows > 0 && f.file == *last_file)
}

impl SfaPartial {
    /// No rows yet, of `d` columns.
    pub(crate) fn new(d: usize, contiguous: bool) -> Self {
        SfaPartial {
            contiguous,
            x: Scatter::new(d, true),
            dd: Array2::zeros((d, d)),
            dn: 0,
            first: None,
            last: None,
            continues: false,
            ends: Files::default(),
            last_file: None,
        }
    }

    /// Add the time difference `later − earlier`.
    fn add_difference(&mut self, later: &Array1<f64>, earlier: &Array1<f64>) {
        let diff: Vec<f64> = later.iter().zip(earlier).map(|(a, b)| a - b).collect();
        syrk_upper(&diff, 1, diff.len(), &mut self.dd);
        self.dn += 1;
    }
}

impl Partial for SfaPartial {
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        let x = chunk.x;
        let d = x.ncols();
        if chunk.segment_start || self.ends.ends.is_empty() {
            if self.ends.ends.is_empty() {
                self.continues = !chunk.segment_start;
            }
            let file = FileRows { file: chunk.origin.map(|o| o.path.display().to_string()), rows: 0, rank: chunk.origin.map_or(0, |o| o.rank) };
            self.ends.add(Files { ends: vec![file], single_row: None }, !chunk.segment_start);
            if !self.contiguous {
                self.last = None;
            }
        }
        if x.nrows() == 0 {
            return Ok(());
        }
        if self.first.is_none() {
            self.first = Some(x.row(0).to_owned());
        }
        self.x.update(x);
        // Differences of consecutive rows, including the previous chunk's last row.
        let m = DIFFS.with_borrow_mut(|diffs| {
            diffs.clear();
            diffs.reserve(x.len());
            if let Some(prev) = &self.last {
                diffs.extend(x.row(0).iter().zip(prev.iter()).map(|(a, b)| a - b));
            }
            for i in 1..x.nrows() {
                diffs.extend(x.row(i).iter().zip(x.row(i - 1).iter()).map(|(a, b)| a - b));
            }
            let m = diffs.len() / d;
            syrk_upper(diffs, m, d, &mut self.dd);
            m
        });
        self.dn += m as u64;
        self.last = Some(x.row(x.nrows() - 1).to_owned());
        let file = self.ends.ends.last_mut().expect("a file was added above");
        file.rows += x.nrows() as u64;
        self.last_file = file.file.clone();
        Ok(())
    }
    /// `other`'s rows follow this partial's in time: the seam between them is one more
    /// difference when `other` continues our last file, or with `contiguous`.
    fn merge(&mut self, other: Self) {
        if let (Some(f), Some(l)) = (&other.first, &self.last) {
            if self.contiguous || continued(&self.last_file, other.continues, &other.ends) {
                let (f, l) = (f.clone(), l.clone());
                self.add_difference(&f, &l);
            }
        }
        if self.ends.ends.is_empty() {
            self.continues = other.continues;
        }
        self.ends.add(other.ends, other.continues);
        if other.x.n == 0 {
            return;
        }
        self.first = self.first.take().or(other.first);
        self.x.merge(&other.x);
        self.dd += &other.dd;
        self.dn += other.dn;
        self.last = other.last;
        self.last_file = other.last_file;
    }
    fn fits(&self, other: &Self) -> Result<()> {
        self.x.fits(&other.x)?;
        match other.dd.dim() == self.dd.dim() && other.contiguous == self.contiguous {
            true => Ok(()),
            false => Err(Error::Fit("sfa: a partial of another shape".into())),
        }
    }
    /// A halo exchange: each rank's first row is differenced with the last row of the nearest
    /// earlier rank that has rows, when its rows continue that rank's file (or with
    /// `contiguous`); single-row files are an error (it names the rank and file), found from
    /// every rank's files at both ends; then the sums are allreduced.
    fn join(mut self, comm: &dyn Comm) -> Result<Self> {
        let ends = (self.first.as_ref().map(|f| f.to_vec()), self.last.as_ref().map(|l| l.to_vec()), self.continues, self.ends.clone(), self.last_file.clone());
        let all = crate::comm::allgather(comm, &ends);
        // Every rank's files, added in rank order (the same on every rank), and the seam before
        // this rank's first row.
        let mut files = Files::default();
        let mut earlier: Option<(&Vec<f64>, &Option<String>)> = None;
        for (r, (first, last, continues, ends, last_file)) in all.iter().enumerate() {
            if let (true, Some(first), Some((prev, prev_file))) = (r == comm.rank(), first, earlier) {
                if self.contiguous || continued(prev_file, *continues, ends) {
                    self.add_difference(&Array1::from(first.clone()), &Array1::from(prev.clone()));
                }
            }
            files.add(ends.clone(), *continues);
            if let Some(last) = last {
                earlier = Some((last, last_file));
            }
        }
        let why = "sfa: this shard has a single row, so no time derivative (give shards of 2+ rows, or contiguous=true)";
        let single = files.single_row().filter(|_| !self.contiguous);
        let single = match single {
            Some(FileRows { file: Some(f), rank, .. }) => Err(Error::data(rank, f, None, why)),
            Some(FileRows { rank, .. }) => Err(Error::Fit(format!("rank {rank}: {why}"))),
            None => Ok(()),
        };
        crate::comm::agree(comm, single)?;
        self.x.allreduce(comm)?;
        let mut dn = [self.dn as f64];
        self.dd = allreduce_symmetric(comm, &self.dd, &mut dn);
        self.dn = dn[0] as u64;
        Ok(self)
    }
}

impl SfaParams {
    /// The model from joined statistics.
    pub(crate) fn solve(&self, p: SfaPartial) -> Result<SfaModel> {
        let d = p.dd.nrows();
        if p.dn < 2 {
            return Err(Error::Fit("sfa: fewer than 2 time differences in total".into()));
        }
        let dcov = p.dd / (p.dn as f64 - 1.0);
        let cov = p.x.covariance()?;
        let (vals, vecs) = generalized_eigh(&dcov, &cov, "sfa: the input covariance matrix")
            .map_err(|e| Error::Fit(format!("{e}; reduce the input first, e.g. pca(var=0.9999) | sfa")))?;
        let keep = self.n.unwrap_or(d);
        let mut projection = vecs.t().slice_axis(Axis(0), (0..keep).into()).to_owned();
        fix_signs(&mut projection);
        let delta: Vec<f64> = vals.iter().take(keep).copied().collect();
        if delta.iter().any(|v| *v < 0.0) {
            return Err(Error::Fit(format!("sfa: negative delta values {delta:?}: the input is rank-deficient; reduce it first (pca)")));
        }
        let eta = delta.iter().map(|v| v.sqrt() / (2.0 * std::f64::consts::PI)).collect();
        Ok(SfaModel { count: p.x.n, mean: p.x.mean().to_vec(), delta, eta, projection })
    }
}

impl NodeParams for SfaParams {
    const KIND: Kind = Kind::new("sfa", &["n", "contiguous"], "sfa(n=K, contiguous=false): slow feature analysis");
    type Partial = SfaPartial;
    type Model = SfaModel;
    /// `sfa(n=K, contiguous=false)` (and `sfa2`'s).
    fn from_spec(spec: &NodeSpec) -> Result<Self> {
        Ok(SfaParams { n: spec.get("n")?, contiguous: spec.get_bool("contiguous", false)? })
    }
    fn validate(&self) -> Result<()> {
        crate::nodes::define::at_least_one("sfa", "n", self.n)
    }
    fn spec(&self) -> String {
        spec_text("sfa", &[("n", self.n.map(|n| n.to_string())), ("contiguous", self.contiguous.then(|| "true".to_string()))])
    }
    fn check(&self, schema: &Schema) -> Result<()> {
        size_fits("sfa", "n", self.n, schema.x.len())
    }
    fn partial(&self, schema: &Schema) -> SfaPartial {
        SfaPartial::new(schema.x.len(), self.contiguous)
    }
    fn finalize(&self, all: SfaPartial, _schema: &Schema) -> Result<SfaModel> {
        self.solve(all)
    }
    fn upgrade(node: &serde_json::Value) -> Option<serde_json::Value> {
        params_from_fields(node, &["n", "contiguous"])
    }
}

impl Transform for SfaModel {
    fn output_names(&self, _input: &[String]) -> Vec<String> {
        (0..self.projection.nrows()).map(|i| format!("sf{i}")).collect()
    }
    fn transform(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let centred = &x - &Array1::from(self.mean.clone());
        centred.dot(&self.projection.t())
    }
}

impl Report for SfaModel {
    fn summary(&self, input: &[String], full: bool) -> Vec<String> {
        vec![
            format!("{} -> {} slow features, trained on {} rows", input.len(), self.projection.nrows(), self.count),
            format!("delta values {}", super::moments::short(&self.delta, full)),
        ]
    }
    fn check_loaded(&self, input: &[String]) -> Result<()> {
        let (s, d) = (super::Shapes("sfa"), input.len());
        s.rows("projection", &self.projection, d)?;
        s.vec("mean", &self.mean, d)
    }
}
