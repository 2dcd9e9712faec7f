//! `flowmpi train`.

use super::{check_not_an_input, check_output_dir, plural, DataArgs};
use crate::comm::{agree, Comm};
use crate::error::{Error, Result};
use crate::flow::{read_flow_file, Flow};
use crate::io::Dataset;
use crate::log::Log;
use crate::model::Model;
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Instant;

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

/// The flow an old model was trained as, from its nodes' parameters: the `flow` line of a model
/// written before specs named every parameter can leave some out (`gnb(label=c)` for a
/// `var_smoothing=0.5`), and training on from it would silently change the model.
fn trained_as(old: &Model) -> Result<String> {
    Ok(old.flow()?.spec())
}

/// `train --update`: the old model must have kept its partials, and its flow must be one pass
/// over the input columns (statistics nodes, then one node), so the old partials still apply.
fn check_update(flow: &Flow, was: &str, partials: &[Option<Vec<u8>>], path: &Path) -> Result<()> {
    let p = path.display();
    if flow.spec() != was {
        return Err(Error::Param(format!("--update {p}: it was trained as {was:?}, not {:?}; leave out --flow", flow.spec())));
    }
    if partials.iter().any(Option::is_none) {
        return Err(Error::Param(format!(
            "--update {p}: it was trained without --keep-partials, so the old rows would have to be read again; train on all the data"
        )));
    }
    updatable(flow, "--update")
}

/// A flow `train --update` can continue: every node keeps partial statistics, and only the
/// last one is not a statistics node (an earlier one feeds later nodes, whose training new
/// rows would change). Checked when the model is trained with `--keep-partials` too, so the
/// refusal does not wait for the update (`flag`: the option that asked).
fn updatable(flow: &Flow, flag: &str) -> Result<()> {
    let spec = flow.spec();
    if let Some(n) = flow.nodes.iter().find(|n| !n.keeps_partials()) {
        return Err(Error::Param(format!(
            "{flag}: {} keeps no partial statistics (it reads the data more than once or iterates over the rows), so \
             {spec} cannot be updated with new rows; train it on all the data",
            n.spec()
        )));
    }
    if let Some(n) = flow.nodes.iter().rev().skip(1).find(|n| !n.passthrough()) {
        return Err(Error::Param(format!(
            "{flag}: {} feeds later nodes, so new rows would change what they were trained on; {spec} cannot be \
             updated: train it on all the data",
            n.spec()
        )));
    }
    Ok(())
}

/// Run `flowmpi train` (collective).
pub fn train(comm: &dyn Comm, a: &TrainArgs, log: &Log) -> Result<()> {
    let t0 = Instant::now();
    let old = match &a.update {
        Some(p) => Some(agree(comm, Model::load(p).and_then(|m| Ok((m.partials()?, trained_as(&m)?, m))))?),
        None => None,
    };
    let spec = match (&a.flow, &a.flow_file, &old) {
        (Some(f), _, _) => f.clone(),
        (None, Some(p), _) => agree(comm, read_flow_file(p))?,
        (None, None, Some((_, was, _))) => was.clone(),
        (None, None, None) => return Err(Error::Param("give --flow or --flow-file".into())),
    };
    let mut flow = Flow::parse(&spec)?;
    if let (Some((partials, was, _)), Some(p)) = (&old, &a.update) {
        check_update(&flow, was, partials, p)?;
    } else if a.keep_partials {
        updatable(&flow, "--keep-partials")?;
    }
    let checkpoints = flow.nodes.iter_mut().fold(false, |any, n| n.set_checkpoint(a.checkpoint.clone(), a.resume) | any);
    if a.checkpoint.is_some() && !checkpoints {
        return Err(Error::Param(format!("--checkpoint: no node of the flow '{spec}' checkpoints (only kmeans does, outside a layer); drop --checkpoint")));
    }
    check_output_dir(comm, &a.model, "model")?;
    let trained_on = old.as_ref().map(|(_, _, m)| m.input_columns.join(","));
    let mut opts = a.data.options(trained_on.as_deref())?;
    opts.targets = flow.targets();
    opts.label = flow.label()?;
    let data = Dataset::open(comm, &opts)?;
    if let Some((_, _, m)) = &old {
        if data.names() != m.input_columns && data.layout.names.is_some() {
            return Err(Error::Model(format!(
                "--update: the old model was trained on [{}] but the data gives [{}]",
                m.input_columns.join(", "),
                data.names().join(", ")
            )));
        }
    }
    check_not_an_input(comm, "--model", &a.model, &data)?;
    if let Some(c) = &a.checkpoint {
        check_not_an_input(comm, "--checkpoint", c, &data)?;
    }
    flow.resolve_columns(&data);
    log.info(format!("{}; data {:?}: {}; flow {}", plural(comm.size() as u64, "rank"), opts.spec, plural(data.dim() as u64, "feature column"), flow.spec()));
    let shard_cache = a.cache.as_ref().map(|dir| crate::cache::ShardCache { dir: dir.clone(), verify: a.cache_verify });
    let train_opts = crate::flow::TrainOptions {
        log: *log,
        cache_data: a.cache_data,
        shards: shard_cache.as_ref(),
        keep_partials: a.keep_partials || old.is_some(),
        prior: old.as_ref().map(|(p, _, _)| p.clone()).unwrap_or_default(),
        reproducible: a.reproducible,
    };
    let report = flow.train(comm, &data, &train_opts)?;
    let t_write = Instant::now();
    let earlier_rows = old.as_ref().map_or(0, |(_, _, m)| m.training_rows);
    let columns = old.as_ref().map_or(opts.columns.clone(), |(_, _, m)| m.columns.clone());
    let mut model = Model::new(&flow, columns, data.names(), earlier_rows + report.rows, comm.size());
    model.set_partials(&report.partials);
    if a.reproducible {
        model.ranks = None;
    }
    if old.is_some() {
        log.info(format!("--update: {} earlier rows + {} new", earlier_rows, report.rows));
    }
    let hashes = model.rank_hashes(comm);
    let same = hashes.iter().all(|h| h == &hashes[0]);
    for (r, h) in hashes.iter().enumerate() {
        log.detail(format!("  rank {r}: model hash {h:016x}"));
    }
    if !same {
        log.warn("the trained model differs between ranks (see -v); please report this");
    }
    model.save(comm, &a.model)?;
    log.info(format!(
        "wrote {} ({}, {} -> {} dims, {}) in {:.3} s ({:.3} s in all)",
        a.model.display(),
        plural(model.nodes.len() as u64, "node"),
        model.input_dim,
        model.output_columns.len(),
        plural(model.training_rows, "row"),
        t_write.elapsed().as_secs_f64(),
        t0.elapsed().as_secs_f64()
    ));
    Ok(())
}
