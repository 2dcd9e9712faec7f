//! `flowmpi sort`: every rank's rows sorted by one column over all ranks (a distributed stable
//! sort), written as one contiguous slice of the sorted order per rank.

use super::DataArgs;
use crate::comm::Comm;
use crate::error::Result;
use crate::jobs::SortJob;
use crate::log::Log;
use clap::Args;

/// `flowmpi sort`.
#[derive(Args, Debug)]
#[command(after_help = "Rows are numbered in the global input order: the files in order (rank 0's, then rank 1's, \
...; a glob's files sorted by name), rows in file order, rows dropped by --nan skip not counted. The \
sort is stable, as numpy.argsort(kind='stable'): equal keys keep that order. Rank r writes rows \
N*r/P to N*(r+1)/P of the sorted order, so concatenating the files in rank order gives the whole \
sorted data, and the --argsort files concatenated are numpy's argsort of the column.\n\nEvery rank \
holds its rows in memory (about twice their size as float64 while exchanging). The output files \
appear all together or not at all.\n\nExample:\n  mpirun -n 4 flowmpi sort --data 'data/part*.csv' \
--by time --keep id --out 'sorted/part{rank}.csv' --argsort 'sorted/idx{rank}.npy'")]
pub struct SortArgs {
    /// Data options (--columns picks the numeric columns written; default all but --keep's).
    #[command(flatten)]
    pub data: DataArgs,
    /// The one column to sort by, ascending: header name or 0-based index (a numeric column).
    /// A list or range ('a,b', '1-2') is refused: sorting by several keys is not supported.
    #[arg(long, value_name = "COLUMN")]
    pub by: String,
    /// The sorted rows, one file per rank with {rank}, e.g. 'sorted/part{rank}.csv': .npy
    /// writes NumPy float64, .parquet Parquet (--keep columns as strings), anything else CSV
    /// with a header.
    #[arg(long, value_name = "PATTERN", required_unless_present = "argsort")]
    pub out: Option<String>,
    /// Each sorted row's global row index, one file per rank with {rank}: .npy writes an int64
    /// vector (numpy's argsort), .parquet one INT64 column 'index', anything else CSV with one
    /// column 'index'.
    #[arg(long, value_name = "PATTERN")]
    pub argsort: Option<String>,
    /// Text columns (IDs, names) carried along verbatim and written first, e.g. '--keep id'.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub keep: Vec<String>,
}

/// Run `flowmpi sort` (collective): [`crate::jobs::sort`].
pub fn sort(comm: &dyn Comm, a: &SortArgs, log: &Log) -> Result<()> {
    let job = SortJob { by: a.by.clone(), out: a.out.clone(), argsort: a.argsort.clone(), keep: a.keep.clone(), log: *log };
    crate::jobs::sort(comm, a.data.options()?, &job).map(drop)
}
