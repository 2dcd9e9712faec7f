//! `flowmpi train`.

use super::DataArgs;
use crate::cache::ShardCache;
use crate::comm::{agree, Comm};
use crate::error::{Error, Result};
use crate::flow::read_flow_file;
use crate::jobs::TrainJob;
use crate::log::Log;
use crate::model::Model;
use clap::Args;
use std::path::PathBuf;

/// `flowmpi train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Data options.
    #[command(flatten)]
    pub data: DataArgs,
    /// The flow: nodes separated by '|', e.g. 'moments | covariance | pca(n=6)' or
    /// 'pca(var=0.95) | whitening'. The nodes and their parameters are listed below.
    #[arg(long, required_unless_present_any = ["flow_file", "update"], conflicts_with = "flow_file")]
    pub flow: Option<String>,
    /// Read the flow from a TOML or JSON file: `flow = "..."`, or `[[node]]` tables with `kind`.
    #[arg(long, value_name = "FILE")]
    pub flow_file: Option<PathBuf>,
    /// Where rank 0 writes the model (JSON; written atomically, untouched on failure).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Iterative nodes (kmeans): rank 0 writes a checkpoint here after every iteration. SIGTERM
    /// or SIGUSR1 (a time limit, or its warning) then stops the training after the iteration
    /// under way (after the first, when it comes during the initialisation), checkpointed, with
    /// exit status 1; continue with --resume.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Continue iterative nodes from --checkpoint instead of initialising.
    #[arg(long, requires = "checkpoint")]
    pub resume: bool,
    /// Keep this rank's rows in memory after the first pass, for flows that need several
    /// passes (multi-node flows, fda, hist); by default every pass re-reads the shards.
    #[arg(long)]
    pub cache_data: bool,
    /// Keep each shard's partial statistics in DIR (like joblib.Memory): a re-run reads only
    /// the shards that changed (keyed by the nodes, the flow before them, the data options and
    /// each file's path, size, modification time and inode). Nodes of one pass (all but
    /// hist, fda, kmeans and layers); the others read as usual.
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// With --cache: also hash each file's contents into its key, for file systems whose
    /// modification times cannot be trusted (reads every file once, but parses only changed ones).
    #[arg(long, requires = "cache")]
    pub cache_verify: bool,
    /// Store every node's partial statistics in the model, so that `--update` can later add
    /// new data without reading the old (single-pass nodes; the model grows by about one
    /// covariance matrix per node).
    #[arg(long)]
    pub keep_partials: bool,
    /// Continue a model trained with --keep-partials on new data (daal4py's online mode): the
    /// result equals training on the old and the new rows together (to round-off). The flow
    /// and columns are the old model's; --model may name the same file (it is replaced
    /// atomically).
    #[arg(long, value_name = "OLD.json")]
    pub update: Option<PathBuf>,
    /// The same model, bit for bit, for any number of ranks: the statistics of each fixed part
    /// of each file (about 1 MiB, more for wide data) are computed alone and combined in one
    /// fixed order, whichever ranks read them; k-means sums each iteration that way too. Every
    /// node kind and layer; costs about 1.0-1.1x the time. Not with --cache or --cache-data.
    #[arg(long, conflicts_with_all = ["cache", "cache_data"])]
    pub reproducible: bool,
}

/// Run `flowmpi train` (collective): [`crate::jobs::train`].
pub fn train(comm: &dyn Comm, a: &TrainArgs, log: &Log) -> Result<()> {
    let update = a.update.as_ref().map(|p| agree(comm, Model::load(p))).transpose()?;
    let flow = match (&a.flow, &a.flow_file) {
        (Some(f), _) => Some(f.clone()),
        (None, Some(p)) => Some(agree(comm, read_flow_file(p))?),
        (None, None) if update.is_some() => None,
        (None, None) => return Err(Error::Param("give --flow or --flow-file".into())),
    };
    let job = TrainJob {
        flow,
        update,
        save: Some(a.model.clone()),
        checkpoint: a.checkpoint.clone(),
        resume: a.resume,
        cache_data: a.cache_data,
        cache: a.cache.as_ref().map(|dir| ShardCache { dir: dir.clone(), verify: a.cache_verify }),
        keep_partials: a.keep_partials,
        reproducible: a.reproducible,
        log: *log,
    };
    crate::jobs::train(comm, a.data.options()?, &job).map(drop)
}
