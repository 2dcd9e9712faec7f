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

use super::{rows, tagged, untrained, Node, NodeSpec};
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::{Chunk, Schema};
use crate::stats::{allreduce_symmetric, fix_signs, generalized_eigh, syrk_upper, Scatter};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

/// Local partial statistics of SFA.
#[derive(Debug, Clone)]
struct Partial {
    x: Scatter,
    /// Upper triangle of Σẋẋᵀ.
    dd: Array2<f64>,
    dn: u64,
    prev: Option<Array1<f64>>,
    seg_rows: u64,
    first: Option<Array1<f64>>,
    single_row_segment: bool,
    /// The file of the current segment and of the first single-row one, for the message.
    seg_file: Option<String>,
    single_row_file: Option<String>,
    scratch: Vec<f64>,
}

/// The `sfa` node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SfaNode {
    /// Output dimension (slowest features kept); all when `None`.
    pub n: Option<usize>,
    /// Shards are consecutive blocks of one series.
    pub contiguous: bool,
    /// Input column names.
    pub columns: Vec<String>,
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
    #[serde(skip)]
    partial: Option<Partial>,
}

impl SfaNode {
    /// From a flow spec: `sfa(n=K, contiguous=false)`.
    pub fn from_spec(spec: &NodeSpec) -> Result<Self> {
        spec.check_keys(&["n", "contiguous"])?;
        let n = spec.get::<usize>("n")?;
        if n == Some(0) {
            return Err(Error::Param(format!("{}: n must be at least 1", spec.kind)));
        }
        Ok(SfaNode { n, contiguous: spec.get_bool("contiguous", false)?, ..Default::default() })
    }

    /// An untrained node.
    pub fn new(n: Option<usize>, contiguous: bool) -> Self {
        SfaNode { n, contiguous, ..Default::default() }
    }

    pub(crate) fn check_dim(&self, kind: &str, d: usize) -> Result<()> {
        match self.n {
            Some(n) if n > d => Err(Error::Param(format!("{kind}: n={n} is larger than the input dimension {d}"))),
            _ => Ok(()),
        }
    }
}

impl Node for SfaNode {
    fn kind(&self) -> &'static str {
        "sfa"
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
    fn begin(&mut self, schema: &Schema) -> Result<()> {
        let d = schema.x.len();
        self.check_dim("sfa", d)?;
        self.columns = schema.x.clone();
        self.partial = Some(Partial {
            x: Scatter::new(d, true),
            dd: Array2::zeros((d, d)),
            dn: 0,
            prev: None,
            seg_rows: 0,
            first: None,
            single_row_segment: false,
            seg_file: None,
            single_row_file: None,
            scratch: Vec::new(),
        });
        Ok(())
    }
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        let p = self.partial.as_mut().expect("begin() first");
        let x = chunk.x;
        let d = x.ncols();
        if chunk.segment_start && !self.contiguous {
            if p.seg_rows == 1 && !p.single_row_segment {
                p.single_row_segment = true;
                p.single_row_file = p.seg_file.clone();
            }
            p.seg_file = chunk.origin.map(|o| o.path.display().to_string());
            p.prev = None;
            p.seg_rows = 0;
        }
        if x.nrows() == 0 {
            return Ok(());
        }
        if p.first.is_none() {
            p.first = Some(x.row(0).to_owned());
        }
        p.x.update(x);
        // Differences of consecutive rows, including the previous chunk's last row.
        p.scratch.clear();
        if let Some(prev) = &p.prev {
            p.scratch.extend(x.row(0).iter().zip(prev.iter()).map(|(a, b)| a - b));
        }
        for i in 1..x.nrows() {
            p.scratch.extend(x.row(i).iter().zip(x.row(i - 1).iter()).map(|(a, b)| a - b));
        }
        let m = p.scratch.len() / d;
        syrk_upper(&p.scratch, m, d, &mut p.dd);
        p.dn += m as u64;
        p.prev = Some(x.row(x.nrows() - 1).to_owned());
        p.seg_rows += x.nrows() as u64;
        Ok(())
    }
    fn join(&mut self, comm: &dyn Comm) -> Result<()> {
        let mut p = self.partial.take().ok_or_else(|| untrained("sfa"))?;
        let d = self.columns.len();
        if !self.contiguous && p.seg_rows == 1 && !p.single_row_segment {
            p.single_row_segment = true;
            p.single_row_file = p.seg_file.clone();
        }
        let single = crate::comm::agree(
            comm,
            if p.single_row_segment {
                let why = "sfa: this shard has a single row, so no time derivative (give shards of 2+ rows, or contiguous=true)";
                Err(match &p.single_row_file {
                    Some(f) => Error::data(comm.rank(), f, None, why),
                    None => Error::Fit(format!("rank {}: {why}", comm.rank())),
                })
            } else {
                Ok(())
            },
        );
        single?;
        if self.contiguous {
            // Halo: every rank learns each rank's first and last rows; a rank's first row is
            // differenced with the last row of the nearest earlier rank that has rows.
            let mine: Vec<u8> = match (&p.first, &p.prev) {
                (Some(f), Some(l)) => f.iter().chain(l.iter()).flat_map(|v| v.to_le_bytes()).collect(),
                _ => Vec::new(),
            };
            let all = comm.allgather_bytes(&mine);
            if !mine.is_empty() {
                let earlier = all[..comm.rank()].iter().rev().find(|b| !b.is_empty());
                if let Some(b) = earlier {
                    let vals: Vec<f64> = b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect();
                    let last = &vals[d..];
                    let first = p.first.as_ref().unwrap();
                    let diff: Vec<f64> = first.iter().zip(last).map(|(a, b)| a - b).collect();
                    syrk_upper(&diff, 1, d, &mut p.dd);
                    p.dn += 1;
                }
            }
        }
        p.x.allreduce(comm)?;
        let mut dn = [p.dn as f64];
        let dd = allreduce_symmetric(comm, &p.dd, &mut dn);
        let dn = dn[0];
        if dn < 2.0 {
            return Err(Error::Fit("sfa: fewer than 2 time differences in total".into()));
        }
        let dcov = dd / (dn - 1.0);
        let cov = p.x.covariance()?;
        let (vals, vecs) = generalized_eigh(&dcov, &cov, "sfa: the input covariance matrix")
            .map_err(|e| Error::Fit(format!("{e}; reduce the input first, e.g. pca(var=0.9999) | sfa")))?;
        let keep = self.n.unwrap_or(d);
        let mut proj = vecs.t().slice_axis(Axis(0), (0..keep).into()).to_owned();
        fix_signs(&mut proj);
        self.delta = vals.iter().take(keep).copied().collect();
        if self.delta.iter().any(|v| *v < 0.0) {
            return Err(Error::Fit(format!("sfa: negative delta values {:?}: the input is rank-deficient; reduce it first (pca)", self.delta)));
        }
        self.eta = self.delta.iter().map(|v| v.sqrt() / (2.0 * std::f64::consts::PI)).collect();
        self.projection = proj;
        self.mean = p.x.mean().to_vec();
        self.count = p.x.n;
        Ok(())
    }
    fn input_dim(&self) -> usize {
        self.columns.len()
    }
    fn output_names(&self) -> Vec<String> {
        (0..self.projection.nrows()).map(|i| format!("sf{i}")).collect()
    }
    fn execute(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let centred = &x - &Array1::from(self.mean.clone());
        centred.dot(&self.projection.t())
    }
    fn summary(&self) -> Vec<String> {
        vec![
            format!("{} -> {} slow features{}, trained on {} rows", self.columns.len(), self.projection.nrows(), if self.contiguous { " (contiguous series)" } else { "" }, self.count),
            format!("delta values {}", super::moments::short(&self.delta)),
        ]
    }
    fn check_model(&self) -> Result<()> {
        let (s, d) = (super::Shapes("sfa"), self.columns.len());
        s.rows("projection", &self.projection, d)?;
        s.vec("mean", &self.mean, d)
    }
    fn to_json(&self) -> serde_json::Value {
        tagged("sfa", self)
    }
}
