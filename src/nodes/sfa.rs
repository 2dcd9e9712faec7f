//! `sfa(n=…)`: slow feature analysis (MDP's SFANode) over all ranks.
//!
//! Rows are time-ordered within a shard. The time derivative is the difference of consecutive
//! rows *within* a shard: a shard boundary is a break in the series, as each MDP data chunk is.
//! With `contiguous=true` the shards are consecutive blocks of one series in rank/shard order:
//! each rank's first row is differenced with the last row of the previous rank that has rows (a
//! halo exchange), so the result equals SFA on the whole unsplit series.
//!
//! Joined statistics: the covariance of x (n − 1) and the second moment of ẋ about 0
//! (Σẋẋᵀ/(m − 1), as MDP). The generalised eigenproblem Ċ v = λ C v is solved with C's
//! Cholesky factor; the `n` slowest (smallest λ) are kept, normalised to unit variance.
//! Rank-deficient input (singular C, e.g. after a quadratic expansion of redundant inputs) is a
//! clear error suggesting a PCA with `var=` before SFA. Model: delta values (λ), eta values
//! (√λ/2π), the projection (columns = features; each with its largest entry positive), the mean.

use super::define::{params_from_fields, Kind, NodeParams, Partial, Report, Transform};
use super::{rows, NodeSpec};
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
    /// Rows of the current segment (shard) and its file.
    seg_rows: u64,
    seg_file: Option<String>,
    /// A segment of one row was seen (no time derivative), and its file.
    single_row: Option<Option<String>>,
    #[serde(skip)]
    scratch: Vec<f64>,
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
            seg_rows: 0,
            seg_file: None,
            single_row: None,
            scratch: Vec::new(),
        }
    }

    /// The current segment ends (a new shard begins): remember it when it had a single row.
    fn end_segment(&mut self) {
        if !self.contiguous && self.seg_rows == 1 && self.single_row.is_none() {
            self.single_row = Some(self.seg_file.clone());
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
        if chunk.segment_start && !self.contiguous {
            self.end_segment();
            self.seg_file = chunk.origin.map(|o| o.path.display().to_string());
            self.last = None;
            self.seg_rows = 0;
        }
        if x.nrows() == 0 {
            return Ok(());
        }
        if self.first.is_none() {
            self.first = Some(x.row(0).to_owned());
        }
        self.x.update(x);
        // Differences of consecutive rows, including the previous chunk's last row.
        self.scratch.clear();
        if let Some(prev) = &self.last {
            self.scratch.extend(x.row(0).iter().zip(prev.iter()).map(|(a, b)| a - b));
        }
        for i in 1..x.nrows() {
            self.scratch.extend(x.row(i).iter().zip(x.row(i - 1).iter()).map(|(a, b)| a - b));
        }
        let m = self.scratch.len() / d;
        syrk_upper(&self.scratch, m, d, &mut self.dd);
        self.dn += m as u64;
        self.last = Some(x.row(x.nrows() - 1).to_owned());
        self.seg_rows += x.nrows() as u64;
        Ok(())
    }
    /// `other`'s rows follow this partial's in time: with `contiguous` the seam between them
    /// is one more difference.
    fn merge(&mut self, mut other: Self) {
        if other.x.n == 0 {
            self.single_row = self.single_row.take().or(other.single_row);
            return;
        }
        if self.x.n == 0 {
            other.single_row = self.single_row.take().or(other.single_row);
            *self = other;
            return;
        }
        match (&other.first, &self.last) {
            (Some(f), Some(l)) if self.contiguous => {
                let (f, l) = (f.clone(), l.clone());
                self.add_difference(&f, &l);
            }
            _ => self.end_segment(),
        }
        self.x.merge(&other.x);
        self.dd += &other.dd;
        self.dn += other.dn;
        self.last = other.last;
        self.seg_rows = other.seg_rows;
        self.seg_file = other.seg_file;
        self.single_row = self.single_row.take().or(other.single_row);
    }
    fn fits(&self, other: &Self) -> Result<()> {
        self.x.fits(&other.x)?;
        match other.dd.dim() == self.dd.dim() && other.contiguous == self.contiguous {
            true => Ok(()),
            false => Err(Error::Fit("sfa: a partial of another shape".into())),
        }
    }
    /// Agree on single-row shards first (an error names the rank and file); with `contiguous`
    /// each rank's first row is differenced with the last row of the nearest earlier rank that
    /// has rows (a halo exchange); then the sums are allreduced.
    fn join(mut self, comm: &dyn Comm) -> Result<Self> {
        self.end_segment();
        let why = "sfa: this shard has a single row, so no time derivative (give shards of 2+ rows, or contiguous=true)";
        let single = match &self.single_row {
            Some(Some(f)) => Err(Error::data(comm.rank(), f, None, why)),
            Some(None) => Err(Error::Fit(format!("rank {}: {why}", comm.rank()))),
            None => Ok(()),
        };
        crate::comm::agree(comm, single)?;
        if self.contiguous {
            let ends = self.first.clone().zip(self.last.clone()).map(|(f, l)| (f.to_vec(), l.to_vec()));
            let all = crate::comm::allgather(comm, &ends);
            let earlier = all[..comm.rank()].iter().rev().find_map(|e| e.as_ref());
            if let (Some(first), Some((_, last))) = (self.first.clone(), earlier) {
                self.add_difference(&first, &Array1::from(last.clone()));
            }
        }
        self.x.allreduce(comm)?;
        let mut dn = [self.dn as f64];
        self.dd = allreduce_symmetric(comm, &self.dd, &mut dn);
        self.dn = dn[0] as u64;
        Ok(self)
    }
}

impl SfaParams {
    pub(crate) fn check_dim(&self, kind: &str, d: usize) -> Result<()> {
        match self.n {
            Some(n) if n > d => Err(Error::Param(format!("{kind}: n={n} is larger than the input dimension {d}"))),
            _ => Ok(()),
        }
    }

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
        Ok(SfaParams { n: spec.count("n")?, contiguous: spec.get_bool("contiguous", false)? })
    }
    fn spec(&self) -> String {
        let mut a = Vec::new();
        if let Some(n) = self.n {
            a.push(format!("n={n}"));
        }
        if self.contiguous {
            a.push("contiguous=true".into());
        }
        if a.is_empty() { "sfa".into() } else { format!("sfa({})", a.join(", ")) }
    }
    fn check(&self, schema: &Schema) -> Result<()> {
        self.check_dim("sfa", schema.x.len())
    }
    fn partial(&self, schema: &Schema) -> SfaPartial {
        SfaPartial::new(schema.x.len(), self.contiguous)
    }
    fn finalize(&self, all: SfaPartial, _schema: &Schema) -> Result<SfaModel> {
        self.solve(all)
    }
    fn upgrade(node: &mut serde_json::Value) {
        params_from_fields(node, &["n", "contiguous"]);
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
    fn summary(&self, input: &[String]) -> Vec<String> {
        vec![
            format!("{} -> {} slow features, trained on {} rows", input.len(), self.projection.nrows(), self.count),
            format!("delta values {}", super::moments::short(&self.delta)),
        ]
    }
    fn check(&self, input: &[String]) -> Result<()> {
        let (s, d) = (super::Shapes("sfa"), input.len());
        s.rows("projection", &self.projection, d)?;
        s.vec("mean", &self.mean, d)
    }
}
