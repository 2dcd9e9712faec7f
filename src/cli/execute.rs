//! `flowmpi execute`.

use super::{check_model_columns, check_output_paths, rank_path, DataArgs};
use crate::comm::{agree, allgather_f64, Comm};
use crate::error::{Error, Result};
use crate::io::{commit_all, expand_pattern, Dataset, ShardWriter};
use crate::log::Log;
use crate::model::Model;
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

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
    /// 'out/part{rank}.csv'; .npy writes NumPy, anything else CSV with a header. The shards
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

/// Run `flowmpi execute` (collective).
pub fn execute(comm: &dyn Comm, a: &ExecuteArgs, log: &Log) -> Result<()> {
    let t0 = Instant::now();
    let loaded = Model::load_flow(&a.model);
    let (mut flow, model) = agree(comm, loaded)?;
    if let Some(last) = flow.nodes.last_mut() {
        if a.proba && last.classes().is_none() {
            return Err(Error::Param(format!(
                "--proba: the flow ends in {}, which is not a classifier (mnb, gnb) and has no class probabilities",
                last.spec()
            )));
        }
        last.set_proba(a.proba);
    }
    let output_columns = flow.output_names(&model.input_columns);
    let out = rank_path(comm, "--out", &a.out)?;
    let (expect, produce) = if a.inverse {
        flow.check_invertible()?;
        (&model.output_columns, &model.input_columns)
    } else {
        (&model.input_columns, &output_columns)
    };
    // Features are picked by the names the model was trained on (targets or labels in the data
    // are then simply not read).
    let trained_on = model.input_columns.join(",");
    let mut opts = a.data.options(if a.inverse { None } else { Some(&trained_on) })?;
    opts.keep = a.keep.iter().map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect();
    let data = Dataset::open(comm, &opts)?;
    check_model_columns(expect, &data)?;
    check_output_paths(comm, "--out", &out, Some(("the model", &a.model)), &data)?;
    let labels = flow.nodes.last().filter(|_| !a.inverse).and_then(|n| n.classes().map(|c| (n.input_dim(), c.to_vec())));
    let all_names = data.layout.column_names();
    let kept: Vec<String> = data.keep.iter().map(|&j| all_names[j].clone()).collect();
    if let Some(k) = kept.iter().find(|k| produce.contains(k)) {
        return Err(Error::Param(format!("--keep {k}: the output already has a column '{k}'")));
    }
    let names: Vec<String> = kept.iter().chain(produce.iter()).cloned().collect();
    let created = ShardWriter::create(&out, &names, comm.rank()).map(|w| {
        match labels {
            Some((col, names)) => w.with_labels(col, names),
            None => w,
        }
        .with_text(kept.len())
    });
    let mut writer = agree(comm, created)?;
    let mut bar = crate::progress::Progress::start(log, "executing", comm.size(), data.local_bytes, data.total_bytes);
    let written = data.for_each_chunk(&mut |x| {
        crate::progress::Progress::chunk(&mut bar, x);
        let y = if a.inverse { flow.inverse(x.x)? } else { flow.execute(x.x)? };
        writer.write_rows_with_text(x.kept, y.as_standard_layout().as_slice().expect("standard layout")).map_err(|e| match (e, x.origin) {
            (Error::Row { row, msg }, Some(o)) => o.error(row, msg),
            (e, _) => e,
        })
    });
    drop(bar);
    let (rows, skipped) = commit_all(comm, vec![writer], written)?;
    let all = allgather_f64(comm, rows as f64);
    let total: f64 = all.iter().sum();
    let skipped = {
        let mut s = [skipped as f64];
        comm.allreduce_sum(&mut s);
        s[0]
    };
    log.info(format!(
        "wrote {} rows x {} columns to {} in {:.3} s{}",
        total,
        names.len(),
        a.out,
        t0.elapsed().as_secs_f64(),
        if skipped > 0.0 { format!(" ({} skipped for NaN/inf)", super::plural(skipped as u64, "row")) } else { String::new() }
    ));
    for (r, n) in all.iter().enumerate() {
        log.detail(format!("  rank {r}: {n} rows -> {}", expand_pattern(&a.out, r, comm.size())));
    }
    Ok(())
}
