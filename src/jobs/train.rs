//! [`train`]: a flow trained on shard files into a model, or an old model continued on new
//! rows (`update`, daal4py's online mode).

use crate::cache::ShardCache;
use crate::comm::{agree, Comm};
use crate::error::{Error, Result};
use crate::flow::{Flow, TrainOptions, TrainReport};
use crate::io::{check_not_an_input, check_output_dir, DataOptions, Dataset};
use crate::log::{plural, Log};
use crate::model::Model;
use std::path::PathBuf;
use std::time::Instant;

/// What to train and how (`flowmpi train`'s options).
#[derive(Debug, Clone, Default)]
pub struct TrainJob {
    /// The flow, e.g. `"moments | covariance | pca(n=6)"`; `None` with `update`: the old
    /// model's.
    pub flow: Option<String>,
    /// Continue this model (trained with `keep_partials`) on new rows: the result equals
    /// training on the old and new rows together, to round-off. Its flow and columns are used.
    pub update: Option<Model>,
    /// Where rank 0 writes the model (atomically; untouched on failure), checked before
    /// training: its directory exists and it is none of the input files. `None`: not written.
    pub save: Option<PathBuf>,
    /// Iterative nodes (kmeans): rank 0 writes a checkpoint here after every iteration.
    pub checkpoint: Option<PathBuf>,
    /// Continue iterative nodes from `checkpoint` instead of initialising.
    pub resume: bool,
    /// Keep this rank's rows in memory after the first pass (flows of several passes).
    pub cache_data: bool,
    /// Keep each shard's partial statistics here (joblib.Memory's idea): a re-run reads only the
    /// shards that changed.
    pub cache: Option<ShardCache>,
    /// Store every node's partial statistics in the model, so that `update` can add rows later.
    pub keep_partials: bool,
    /// The same model, bit for bit, for any number of ranks.
    pub reproducible: bool,
    /// Where log lines go (rank 0's); the default is quiet.
    pub log: Log,
}

/// A trained model and what training did.
pub struct Trained {
    /// The model, the same on every rank.
    pub model: Model,
    /// Rows, skipped rows, partials.
    pub report: TrainReport,
}

/// Train `job.flow` on the rows of `data` (collective) and return the model (written to
/// `job.save` when given). Targets and labels the flow names are read beside the features; with
/// `update`, the old model's columns are read and its kept partials added.
pub fn train(comm: &dyn Comm, mut data: DataOptions, job: &TrainJob) -> Result<Trained> {
    let t0 = Instant::now();
    let log = Log { rank: comm.rank(), ..job.log };
    let old = job.update.as_ref().map(|m| -> Result<_> { Ok((m, m.partials()?, m.flow()?.spec())) }).transpose();
    let old = agree(comm, old)?;
    let spec = match (&job.flow, &old) {
        (Some(f), _) => f.clone(),
        (None, Some((_, _, was))) => was.clone(),
        (None, None) => return Err(Error::Param("give the flow to train, e.g. 'pca(n=3)'".into())),
    };
    let mut flow = Flow::parse(&spec)?;
    if let Some((_, partials, was)) = &old {
        check_update(&flow, was, partials)?;
    } else if job.keep_partials {
        updatable(&flow, "--keep-partials")?;
    }
    let checkpoints = flow.nodes.iter_mut().fold(false, |any, n| n.set_checkpoint(job.checkpoint.clone(), job.resume) | any);
    if job.checkpoint.is_some() && !checkpoints {
        return Err(Error::Param(format!("--checkpoint: no node of the flow '{spec}' checkpoints (only kmeans does, outside a layer); drop --checkpoint")));
    }
    if let Some(p) = &job.save {
        check_output_dir(comm, p, "model")?;
    }
    if let Some((m, _, _)) = &old {
        data.model_columns(&m.input_columns);
    }
    data.targets = flow.targets();
    data.label = flow.label()?;
    let files = Dataset::open(comm, &data)?;
    if let Some((m, _, _)) = &old {
        if files.names() != m.input_columns && files.layout.names.is_some() {
            return Err(Error::Model(format!(
                "--update: the old model was trained on [{}] but the data gives [{}]",
                m.input_columns.join(", "),
                files.names().join(", ")
            )));
        }
    }
    for (flag, path) in [("--model", &job.save), ("--checkpoint", &job.checkpoint)] {
        if let Some(p) = path {
            check_not_an_input(comm, flag, p, &files)?;
        }
    }
    flow.resolve_columns(&files);
    log.info(format!("{}; data {:?}: {}; flow {}", plural(comm.size() as u64, "rank"), data.spec, plural(files.dim() as u64, "feature column"), flow.spec()));
    let opts = TrainOptions {
        log,
        cache_data: job.cache_data,
        shards: job.cache.as_ref(),
        keep_partials: job.keep_partials || old.is_some(),
        prior: old.as_ref().map(|(_, p, _)| p.clone()).unwrap_or_default(),
        reproducible: job.reproducible,
        threads: data.threads,
    };
    let (layout, crowded) = crate::cores::describe_layout(data.threads);
    log.detail(layout);
    crowded.into_iter().for_each(|w| log.warn(w));
    let report = flow.train(comm, &files, &opts)?;
    let t_write = Instant::now();
    let earlier_rows = old.as_ref().map_or(0, |(m, _, _)| m.training_rows);
    let columns = old.as_ref().map_or(data.columns.clone(), |(m, _, _)| m.columns.clone());
    let mut model = Model::new(&flow, columns, files.names(), earlier_rows + report.rows, comm.size());
    model.set_partials(&report.partials);
    if job.reproducible {
        model.ranks = None;
    }
    if old.is_some() {
        log.info(format!("--update: {} earlier rows + {} new", earlier_rows, report.rows));
    }
    let hashes = model.rank_hashes(comm);
    for (r, h) in hashes.iter().enumerate() {
        log.detail(format!("  rank {r}: model hash {h:016x}"));
    }
    if hashes.iter().any(|h| *h != hashes[0]) {
        log.warn("the trained model differs between ranks (see -v); please report this");
    }
    if let Some(p) = &job.save {
        model.save(comm, p)?;
        log.info(format!(
            "wrote {} ({}, {} -> {} dims, {}) in {:.3} s ({:.3} s in all)",
            p.display(),
            plural(model.nodes.len() as u64, "node"),
            model.input_dim,
            model.output_columns.len(),
            plural(model.training_rows, "row"),
            t_write.elapsed().as_secs_f64(),
            t0.elapsed().as_secs_f64()
        ));
    }
    Ok(Trained { model, report })
}

/// `update`: the old model must have kept its partials, and its flow must be one pass over the
/// input columns (statistics nodes, then one node), so the old partials still apply. `was`:
/// the flow it was trained as, from its nodes' parameters (the `flow` line of an old model
/// file can leave some out, and training on from it would silently change the model).
fn check_update(flow: &Flow, was: &str, partials: &[Option<Vec<u8>>]) -> Result<()> {
    if flow.spec() != was {
        return Err(Error::Param(format!("--update: the model was trained as {was:?}, not {:?}; leave out --flow (the flow is the model's)", flow.spec())));
    }
    if partials.iter().any(Option::is_none) {
        return Err(Error::Param(
            "--update: the model was trained without --keep-partials, so the old rows would have to be read again; train on all the data".into(),
        ));
    }
    updatable(flow, "--update")
}

/// Whether a flow can be continued on new rows: every node keeps partial statistics, and only
/// the last one is not a statistics node (an earlier one feeds later nodes, whose training new
/// rows would change). Checked when a model is trained with `keep_partials` too, so the
/// refusal does not wait for the update (`flag`: the option that asked, for the message).
pub fn updatable(flow: &Flow, flag: &str) -> Result<()> {
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
