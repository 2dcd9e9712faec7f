//! `flowmpi execute`.

use super::DataArgs;
use crate::comm::Comm;
use crate::error::Result;
use crate::jobs::ExecuteJob;
use crate::log::Log;
use clap::Args;
use std::path::PathBuf;

/// `flowmpi execute`.
#[derive(Args, Debug)]
pub struct ExecuteArgs {
    /// The trained model.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Data options (the model's --columns are used unless given).
    #[command(flatten)]
    pub data: DataArgs,
    /// Output per rank, with {rank} (or {}) when running on several ranks, e.g.
    /// 'out/part{rank}.csv'; .npy writes NumPy, .parquet Parquet (numbers as double columns,
    /// class names and --keep columns as strings, snappy, row groups of 65,536 rows), anything
    /// else CSV with a header. The shards
    /// appear together or not at all, within one job: two jobs writing the same --out at the
    /// same time can leave a mix of both jobs' shards, so give concurrent jobs their own.
    #[arg(long, value_name = "PATTERN")]
    pub out: String,
    /// Run the flow backwards: the data holds outputs of the flow (e.g. PCA coordinates) and
    /// the inputs are reconstructed (statistics nodes pass through; PCA/whitening invert).
    #[arg(long)]
    pub inverse: bool,
    /// Classifiers: also write the log-probability of every class.
    #[arg(long)]
    pub proba: bool,
    /// Input columns to carry into the output, before the flow's columns, by header name or
    /// 0-based index, e.g. '--keep id,y' (IDs, the true target). Copied as text from CSV input
    /// (so '1.50' stays '1.50'); .npy output needs them to be numbers.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub keep: Vec<String>,
}

/// Run `flowmpi execute` (collective): [`crate::jobs::execute`].
pub fn execute(comm: &dyn Comm, a: &ExecuteArgs, log: &Log) -> Result<()> {
    let job = ExecuteJob { model: a.model.clone(), out: a.out.clone(), inverse: a.inverse, proba: a.proba, keep: a.keep.clone(), log: *log };
    crate::jobs::execute(comm, a.data.options()?, &job).map(drop)
}
