//! What a node sees of the data: [`Chunk`]s of row-aligned features, targets and labels, with
//! where they came from ([`Origin`], so a node's complaint names the file and line), and the
//! [`Schema`] of their names. The I/O layer produces them; nodes consume them.

use crate::error::{Error, Result};
use ndarray::ArrayView2;
use std::path::PathBuf;

/// One block of a rank's rows: the feature columns, the target columns (regression) and the
/// class labels (classification), row-aligned.
#[derive(Debug, Clone, Copy)]
pub struct Chunk<'a> {
    /// Features, rows × d.
    pub x: ArrayView2<'a, f64>,
    /// Targets, rows × t (t = 0 without targets).
    pub y: ArrayView2<'a, f64>,
    /// Labels, one per row (empty without a label column).
    pub labels: &'a [String],
    /// The `keep` columns' text, row by row ([`crate::io::Dataset::keep`] per row; empty without).
    pub kept: &'a [String],
    /// True for the first chunk of a shard file: time-series nodes (SFA) do not difference
    /// across this boundary. A later part of a file split among the ranks starts with `false`:
    /// its rows continue the file's series.
    pub segment_start: bool,
    /// Where the rows come from (file, and where in it), so a node's complaint about a row can
    /// name the file and line; `None` for rows that are not read from a file.
    pub origin: Option<&'a Origin>,
    /// The memory map `x` points into, when it does (see [`crate::io::Dataset::for_each_chunk_mapped`]):
    /// a node may keep `x` by holding the map. Whoever hands on a chunk with another `x` must
    /// clear it.
    pub mapped: Option<&'a crate::io::npy::Mapped>,
}

impl<'a> Chunk<'a> {
    /// Features only.
    pub fn new(x: ArrayView2<'a, f64>) -> Self {
        Chunk { x, y: ArrayView2::from_shape((x.nrows(), 0), &[]).unwrap(), labels: &[], kept: &[], segment_start: true, origin: None, mapped: None }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.x.nrows()
    }

    /// Rows `r` of this chunk as a chunk of their own (a part a thread works on,
    /// [`crate::threads`]): it starts a segment only where this chunk does, and it holds no
    /// memory map (a node that keeps rows gets whole chunks).
    pub fn part(&self, r: std::ops::Range<usize>) -> Chunk<'a> {
        let per = |len: usize| if self.rows() == 0 { 0 } else { len / self.rows() };
        let (l, k) = (per(self.labels.len()), per(self.kept.len()));
        Chunk {
            x: self.x.slice_move(ndarray::s![r.clone(), ..]),
            y: self.y.slice_move(ndarray::s![r.clone(), ..]),
            labels: self.labels.get(r.start * l..r.end * l).unwrap_or_default(),
            kept: self.kept.get(r.start * k..r.end * k).unwrap_or_default(),
            segment_start: self.segment_start && r.start == 0,
            origin: self.origin,
            mapped: None,
        }
    }
}

/// Where a chunk's rows are in their file.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    /// The rank that read them.
    pub rank: usize,
    /// The file.
    pub path: PathBuf,
    /// CSV: the byte offset the chunk's lines start at; NPY: the index of its first row.
    pub start: u64,
    /// Whether `start` is a CSV byte offset (else an NPY row index).
    pub csv: bool,
    /// Bytes of this rank's input read before this chunk (over all its sources), for progress.
    pub read: u64,
}

impl Origin {
    /// The data error "`msg`" about row `row` (0-based) of the chunk, located at its file and
    /// line (CSV) or row (NPY).
    pub fn error(&self, row: usize, msg: impl Into<String>) -> Error {
        let path = self.path.display().to_string();
        if self.csv {
            return Error::data(self.rank, path, crate::io::csv::line_of_row(&self.path, self.start, row as u64), msg);
        }
        Error::data(self.rank, path, None, format!("row {}: {}", self.start + row as u64 + 1, msg.into()))
    }
}

/// Names of what a node sees: feature columns, target columns and the label column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schema {
    /// Feature names.
    pub x: Vec<String>,
    /// Target names.
    pub y: Vec<String>,
    /// Label column name.
    pub label: Option<String>,
}

impl Schema {
    /// Features only.
    pub fn features(names: &[String]) -> Self {
        Schema { x: names.to_vec(), ..Default::default() }
    }

    /// Where the `targets` stand in `y`; `kind` names the node in the error.
    pub fn target_indices(&self, kind: &str, targets: &[String]) -> Result<Vec<usize>> {
        let find = |t: &String| self.y.iter().position(|y| y == t);
        targets.iter().map(|t| find(t).ok_or_else(|| Error::Param(format!("{kind}: target column '{t}' is not in the data")))).collect()
    }
}
