//! How the input is given: shard spec, format, columns, and the reader's options.

use super::NanPolicy;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// File format of a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Delimited text.
    Csv,
    /// NumPy `.npy`.
    Npy,
    /// Apache Parquet (`.parquet`, `.pq`).
    Parquet,
    /// HDF5 (`.h5`, `.hdf5`, `.he5`): one numeric dataset per file.
    Hdf5,
}

/// Extensions read as HDF5.
pub const HDF5_EXTENSIONS: [&str; 3] = ["h5", "hdf5", "he5"];

impl Format {
    /// Format from a path's extension (`.npy` → NPY, anything else → CSV), after a compression
    /// extension (`.csv.gz`).
    pub fn from_path(p: &Path) -> Format {
        match crate::io::compressed::inner(p).extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("npy") => Format::Npy,
            Some(e) if e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq") => Format::Parquet,
            Some(e) if HDF5_EXTENSIONS.iter().any(|h| e.eq_ignore_ascii_case(h)) => Format::Hdf5,
            _ => Format::Csv,
        }
    }
}

/// How to find and parse the input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataOptions {
    /// The `--data` spec (pattern, glob, directory or file).
    pub spec: String,
    /// Force a format instead of choosing by extension.
    pub format: Option<Format>,
    /// The HDF5 dataset to read (`/group/name`); `None`: a file's only dataset. `--data
    /// 'run.h5:/group/name'` sets it too ([`DataOptions::split_dataset`]).
    #[serde(default)]
    pub dataset: Option<String>,
    /// Force header on/off for CSV (auto-detected when `None`).
    pub header: Option<bool>,
    /// CSV delimiter (`,` by default, tab for `.tsv`).
    pub delimiter: Option<u8>,
    /// Column selection (`x0,x3`, `0-5`, names and indices mixed); when `None`, all columns
    /// that are not targets or the label.
    pub columns: Option<String>,
    /// Columns left out of the selection (text columns: IDs, timestamps), by name or index,
    /// with ranges; `None`: none.
    #[serde(default)]
    pub exclude: Option<String>,
    /// Numeric target columns (regression), by name or index.
    pub targets: Vec<String>,
    /// Class-label column (kept as text), by name or index.
    pub label: Option<String>,
    /// NaN/inf handling.
    #[serde(skip)]
    pub nan: NanPolicy,
    /// Bytes per read block (memory per rank is about 2× this plus the node state).
    #[serde(skip)]
    pub block_bytes: usize,
    /// Threads of this rank: they parse CSV blocks, accumulate the statistics and map rows
    /// ([`crate::threads`]); the default is [`crate::cores::threads_per_rank`].
    #[serde(skip)]
    pub threads: usize,
    /// Accept a `{rank}` pattern that also matches files beyond the last rank (they are not read).
    #[serde(skip)]
    pub allow_unread: bool,
    /// Where `columns` came from, for messages when it was not the user's `--columns` (e.g.
    /// "the model's input columns").
    #[serde(skip)]
    pub columns_from: Option<String>,
    /// Columns carried through as text (`execute --keep`), by name or index, in output order.
    #[serde(skip)]
    pub keep: Vec<String>,
}

impl DataOptions {
    /// Options with defaults for a `--data` spec; parser threads as the command line's default:
    /// `FLOWMPI_THREADS`, else this node's cores ÷ its ranks.
    pub fn new(spec: impl Into<String>) -> Self {
        DataOptions {
            spec: spec.into(),
            format: None,
            dataset: None,
            header: None,
            delimiter: None,
            columns: None,
            exclude: None,
            targets: Vec::new(),
            label: None,
            nan: NanPolicy::Error,
            block_bytes: 4 << 20,
            threads: crate::cores::threads_per_rank(),
            allow_unread: false,
            columns_from: None,
            keep: Vec::new(),
        }
    }
}

impl DataOptions {
    /// These options with an HDF5 dataset path taken off the end of the spec: `run.h5:/grid/T`
    /// (or `runs/*.h5:/grid/T`) reads dataset `/grid/T`. Only a spec whose part before `:/` ends
    /// in an HDF5 extension is split, so other paths holding `:/` are left alone.
    pub fn split_dataset(&self) -> crate::error::Result<DataOptions> {
        let mut o = self.clone();
        if let Some(at) = self.spec.rfind(":/") {
            let (file, ds) = (&self.spec[..at], &self.spec[at + 1..]);
            let h5 = Path::new(file).extension().and_then(|e| e.to_str()).is_some_and(|e| HDF5_EXTENSIONS.iter().any(|h| e.eq_ignore_ascii_case(h)));
            if h5 || self.format == Some(Format::Hdf5) {
                if let Some(given) = self.dataset.as_deref().filter(|g| *g != ds) {
                    return Err(crate::error::Error::Param(format!("--data names dataset {ds:?} and --dataset {given:?}: give one")));
                }
                o.spec = file.to_string();
                o.dataset = Some(ds.to_string());
            }
        }
        Ok(o)
    }

    /// Read the columns a model was trained on (`names`), unless [`DataOptions::columns`]
    /// already picks some: rows for a model must give its columns, in its order.
    pub fn model_columns(&mut self, names: &[String]) {
        if self.columns.is_none() {
            self.columns = Some(names.join(","));
            self.columns_from = Some("the model was trained on these columns, which the data must have".into());
        }
    }
}
