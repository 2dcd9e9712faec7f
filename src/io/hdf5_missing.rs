//! HDF5 input in a flowmpi built without the `hdf5` feature: the same interface as `hdf5.rs`,
//! whose every call says how to get a flowmpi that reads HDF5.

use crate::error::{Error, Result};
use std::path::Path;

/// Attributes that may name a dataset's columns (see the `hdf5` feature's module).
pub const NAME_ATTRIBUTES: [&str; 3] = ["columns", "column_names", "names"];

/// An opened dataset (never made without the `hdf5` feature).
pub struct Table {
    /// Rows.
    pub rows: u64,
    /// Columns.
    pub cols: usize,
    /// Column names.
    pub names: Option<Vec<String>>,
}

/// Always an error: this build has no HDF5 library.
pub fn open(path: &Path, _dataset: Option<&str>, rank: usize) -> Result<Table> {
    Err(Error::data(
        rank,
        path.display().to_string(),
        None,
        "is HDF5, and this flowmpi was built without HDF5 (build it with the cargo feature 'hdf5', on by default, and libhdf5-dev installed)".to_string(),
    ))
}

/// Never reached: [`open`] fails first.
pub fn read_rows(_t: &Table, path: &Path, _lo: u64, _hi: u64, _block_rows: usize, rank: usize, _f: &mut dyn FnMut(&[f64], u64) -> Result<()>) -> Result<()> {
    open(path, None, rank).map(|_| ())
}
