//! [`execute`]: rows of shard files mapped through a trained model into shard files of the
//! outputs, one per rank, committed together.

use crate::comm::{agree, allgather_f64, Comm};
use crate::error::{Error, Result};
use crate::io::{check_output_paths, commit_all, expand_pattern, rank_path, DataOptions, Dataset, ShardWriter};
use crate::log::{plural, Log};
use crate::model::{check_data_columns, Model};
use crate::progress::Progress;
use std::path::PathBuf;
use std::time::Instant;

/// How to execute a model (`flowmpi execute`'s options).
#[derive(Debug, Clone, Default)]
pub struct ExecuteJob {
    /// The trained model's file.
    pub model: PathBuf,
    /// Output per rank, with `{rank}` (or `{}`) when there are several ranks, e.g.
    /// `out/part{rank}.csv`; `.npy` writes NumPy, anything else CSV with a header. The files
    /// appear together or not at all.
    pub out: String,
    /// Run the flow backwards: the rows are outputs of the flow; the inputs are reconstructed.
    pub inverse: bool,
    /// Classifiers: also write the log-probability of every class.
    pub proba: bool,
    /// Input columns carried into the output before the flow's (by name or 0-based index),
    /// copied as text from CSV.
    pub keep: Vec<String>,
    /// Where log lines go (rank 0's); the default is quiet.
    pub log: Log,
}

/// What [`execute`] wrote.
#[derive(Debug, Clone)]
pub struct Executed {
    /// Rows written by each rank.
    pub rows: Vec<u64>,
    /// Rows skipped for NaN/inf over all ranks (`--nan skip`).
    pub skipped: u64,
    /// The output columns, kept columns first.
    pub columns: Vec<String>,
}

/// Map this rank's rows of `data` through the model `job.model` (the model's input columns are
/// read unless `data.columns` picks them) and write them to this rank's file of `job.out`
/// (collective). Checked before any row is read: the columns are the model's, no output is an
/// input file, the model or another rank's output.
pub fn execute(comm: &dyn Comm, mut data: DataOptions, job: &ExecuteJob) -> Result<Executed> {
    let t0 = Instant::now();
    let log = Log { rank: comm.rank(), ..job.log };
    let (mut flow, model) = agree(comm, Model::load_flow(&job.model))?;
    if let Some(last) = flow.nodes.last_mut() {
        if job.proba && last.classes().is_none() {
            return Err(Error::Param(format!(
                "--proba: the flow ends in {}, which is not a classifier (mnb, gnb) and has no class probabilities",
                last.spec()
            )));
        }
        last.set_proba(job.proba);
    }
    let output_columns = flow.output_names(&model.input_columns);
    let out = rank_path(comm, "--out", &job.out)?;
    let (expect, produce) = if job.inverse {
        flow.check_invertible()?;
        (&model.output_columns, &model.input_columns)
    } else {
        // Features are picked by the names the model was trained on (targets or labels in
        // the data are then simply not read).
        data.model_columns(&model.input_columns);
        (&model.input_columns, &output_columns)
    };
    data.keep = job.keep.iter().map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect();
    let files = Dataset::open(comm, &data)?;
    check_data_columns(expect, &files)?;
    check_output_paths(comm, "--out", &out, Some(("the model", &job.model)), &files)?;
    let labels = flow.nodes.last().filter(|_| !job.inverse).and_then(|n| n.classes().map(|c| (n.input_dim(), c.to_vec())));
    let all_names = files.layout.column_names();
    let kept: Vec<String> = files.keep.iter().map(|&j| all_names[j].clone()).collect();
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
    let mut bar = Progress::start(&log, "executing", comm.size(), files.local_bytes, files.total_bytes);
    // Each chunk's rows mapped part by part on the rank's threads, written in order.
    let pool = agree(comm, crate::threads::Pool::new(data.threads))?;
    let written = pool.run(|| {
        files.for_each_chunk(&mut |x| {
            Progress::chunk(&mut bar, x);
            let y = if job.inverse { flow.inverse(x.x)? } else { flow.execute(x.x)? };
            writer.write_rows_with_text(x.kept, y.as_standard_layout().as_slice().expect("standard layout")).map_err(|e| match (e, x.origin) {
                (Error::Row { row, msg }, Some(o)) => o.error(row, msg),
                (e, _) => e,
            })
        })
    });
    drop(bar);
    let (rows, skipped) = commit_all(comm, vec![writer], written)?;
    let all = allgather_f64(comm, rows as f64);
    let skipped = {
        let mut s = [skipped as f64];
        comm.allreduce_sum(&mut s);
        s[0] as u64
    };
    log.info(format!(
        "wrote {} rows x {} columns to {} in {:.3} s{}",
        all.iter().sum::<f64>(),
        names.len(),
        job.out,
        t0.elapsed().as_secs_f64(),
        if skipped > 0 { format!(" ({} skipped for NaN/inf)", plural(skipped, "row")) } else { String::new() }
    ));
    for (r, n) in all.iter().enumerate() {
        log.detail(format!("  rank {r}: {n} rows -> {}", expand_pattern(&job.out, r, comm.size())));
    }
    Ok(Executed { rows: all.iter().map(|&n| n as u64).collect(), skipped, columns: names })
}
