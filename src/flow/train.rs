//! Training a flow: [`Flow::train`], the one entry point, and the driver behind it. The nodes
//! train in groups (statistics nodes and the node after them share a pass); each pass is made
//! one of three ways ([`super::pass`]) and ends the same way: partials carried from an earlier
//! training or kept for a later one, the join, the log line.

use super::cached::{self, ThroughCache};
use super::canonical::Canonical;
use super::pass::{Group, Pass};
use super::stream::Stream;
use super::Flow;
use crate::cache::ShardCache;
use crate::comm::{agree, allgather_f64, Comm};
use crate::error::{Error, Result};
use crate::io::{Chunk, Dataset, Schema, Table};
use crate::log::Log;
use crate::nodes::{self, Node};
use ndarray::ArrayView2;
use std::time::Instant;

/// What training did, for logs and the model file.
#[derive(Debug, Clone, Default)]
pub struct TrainReport {
    /// Rows used for training, over all ranks.
    pub rows: u64,
    /// Rows dropped by `--nan skip`, over all ranks.
    pub skipped: u64,
    /// With [`TrainOptions::keep_partials`]: each node's partial statistics of all rows (the
    /// same on every rank), to continue training later; `None` for nodes that keep none.
    pub partials: Vec<Option<Vec<u8>>>,
}

/// What a flow trains on ([`Flow::train`]).
#[derive(Clone, Copy)]
pub enum Rows<'a> {
    /// This rank's part of the shard files, streamed.
    Files(&'a Dataset),
    /// This rank's rows in memory: the features `chunk.x` (columns `schema.x`), and the
    /// targets `chunk.y` (`schema.y`) and labels `chunk.labels` supervised nodes train on.
    Memory(&'a Chunk<'a>, &'a Schema),
}

impl<'a> From<&'a Dataset> for Rows<'a> {
    fn from(data: &'a Dataset) -> Self {
        Rows::Files(data)
    }
}

/// How to train, beyond the rows.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions<'a> {
    /// Where the log lines go and how many (rank 0's; the rank is the communicator's). The
    /// default is quiet.
    pub log: Log,
    /// Keep the rank's rows in memory between passes.
    pub cache_data: bool,
    /// A per-shard cache of partial statistics (`train --cache`): a group of nodes that can keep
    /// per-shard partials reads only the shards whose entries are missing or stale, and merges
    /// every shard's partial in shard order (a warm run gives the cold run's bits).
    pub shards: Option<&'a ShardCache>,
    /// Report every node's merged partial statistics (daal4py's online mode: train more later).
    pub keep_partials: bool,
    /// Partial statistics of rows trained on earlier, per node, added to this training's
    /// (`train --update`).
    pub prior: Vec<Option<Vec<u8>>>,
    /// The same model bits for any rank count: every file's statistics alone, combined in one
    /// canonical tree over the file order ([`crate::canonical`]).
    pub reproducible: bool,
    /// Threads of this rank that work on its rows ([`crate::threads`]); 0: the default layout,
    /// `FLOWMPI_THREADS` or this rank's cores ([`crate::cores::threads_per_rank`]). The model
    /// is the same bits for every count.
    pub threads: usize,
}

impl Flow {
    /// Train every node over all ranks' rows (collective): the one entry point. `rows` is this
    /// rank's part of a [`Dataset`] (shard files, streamed; `&data` converts) or its rows in
    /// memory ([`Rows::Memory`]; a rank may have none). Each node trains on the output of the
    /// trained nodes before it; statistics nodes and the node after them share a pass. The
    /// model is the same on every rank; an error on any rank stops every rank with that rank's
    /// message. `opts` says how (the log, rows kept between passes, the per-shard cache,
    /// partials kept or continued, `--reproducible`).
    pub fn train<'r>(&mut self, comm: &dyn Comm, rows: impl Into<Rows<'r>>, opts: &TrainOptions) -> Result<TrainReport> {
        let log = Log { rank: comm.rank(), ..opts.log };
        let threads = if opts.threads == 0 { Ok(crate::cores::threads_per_rank()) } else { crate::cores::check_threads(opts.threads, "threads") };
        // (Agreed: ranks may ask for different counts, and one that cannot start its threads
        // must not leave the others waiting.)
        let pool = agree(comm, threads.and_then(crate::threads::Pool::new))?;
        pool.run(|| self.train_on(comm, rows.into(), &log, opts))
    }

    /// [`Flow::train`] with the rank's threads in place.
    fn train_on(&mut self, comm: &dyn Comm, rows: Rows, log: &Log, opts: &TrainOptions) -> Result<TrainReport> {
        match rows {
            Rows::Files(data) => {
                if opts.reproducible && opts.cache_data {
                    return Err(Error::Param("--reproducible reads the files anew for every pass: leave out --cache-data".into()));
                }
                let source = Box::new(
                    |mapped: bool, f: &mut dyn FnMut(&Chunk) -> Result<()>| {
                        if mapped {
                            data.for_each_chunk_mapped(f)
                        } else {
                            data.for_each_chunk(f)
                        }
                    },
                );
                let mut stream = Stream::new(source, (data.local_bytes, data.total_bytes), opts.cache_data);
                self.train_passes(comm, data.schema(), &mut stream, Some(data), log, opts)
            }
            Rows::Memory(chunk, schema) => {
                if opts.reproducible || opts.shards.is_some() {
                    return Err(Error::Param("--reproducible and the per-shard cache train on files: give a Dataset".into()));
                }
                let source = Box::new(|_: bool, f: &mut dyn FnMut(&Chunk) -> Result<()>| f(chunk).map(|_| (chunk.rows() as u64, 0)));
                self.train_passes(comm, schema.clone(), &mut Stream::new(source, (0, 0), false), None, log, opts)
            }
        }
    }

    /// Shorthand for [`Flow::train`] on this rank's feature rows `x` (columns named `names`,
    /// the same on every rank), with the process's log ([`crate::log::global`]): daal4py's
    /// `compute(X)` in SPMD mode.
    pub fn fit(&mut self, comm: &dyn Comm, x: ArrayView2<f64>, names: &[String]) -> Result<TrainReport> {
        let schema = Schema::features(names);
        self.train(comm, Rows::Memory(&Chunk::new(x), &schema), &TrainOptions { log: crate::log::global(), ..Default::default() })
    }

    /// Train on this rank's rows of a table whose columns are named `columns` (the same on
    /// every rank), as the command line reads a file: the columns the flow's nodes name as
    /// targets or as the label are read as such (a label's numbers become class names as a CSV
    /// would write them: `1`, `0.5`), the others are the features (collective). Returns the
    /// report and the feature names. A rank may have 0 rows.
    pub fn fit_table(&mut self, comm: &dyn Comm, table: ArrayView2<f64>, columns: &[String], opts: &TrainOptions) -> Result<(TrainReport, Vec<String>)> {
        let table = Table::split(table, columns, &self.targets(), self.label()?.as_deref())?;
        let report = self.train(comm, Rows::Memory(&table.chunk(), &table.schema), opts)?;
        Ok((report, table.schema.x.clone()))
    }

    /// The driver: every group of nodes in turn, as many passes as its nodes ask for, each pass
    /// made by the way that applies; `data`: the files, when training on them.
    fn train_passes(
        &mut self,
        comm: &dyn Comm,
        mut schema: Schema,
        stream: &mut Stream,
        data: Option<&Dataset>,
        log: &Log,
        opts: &TrainOptions,
    ) -> Result<TrainReport> {
        let carry = opts.keep_partials || !opts.prior.is_empty();
        let mut partials: Vec<Option<Vec<u8>>> = vec![None; self.nodes.len()];
        let mut report = TrainReport::default();
        let mut i = 0;
        while i < self.nodes.len() {
            // A node that learns nothing from rows (an expansion) before others is finished
            // without a pass of its own: the next pass reads through it (`quadratic |
            // covariance` read the data twice). A flow that ends in one still reads the data
            // once, so that the model counts and checks its rows.
            if i + 1 < self.nodes.len() && !self.nodes[i].needs_rows() {
                let n = &mut self.nodes[i];
                agree(comm, n.begin(&schema))?;
                n.join(comm)?;
                schema = Schema { x: n.output_names(), ..schema };
                i += 1;
                continue;
            }
            let mut j = i;
            while j + 1 < self.nodes.len() && self.nodes[j].passthrough() {
                j += 1;
            }
            let (done, todo) = self.nodes.split_at_mut(i);
            let nodes = &mut todo[..=j - i];
            let begun: Result<()> = nodes.iter_mut().try_for_each(|n| nodes::check_memory(n.as_ref(), &schema).and_then(|()| n.begin(&schema)));
            agree(comm, begun)?;
            if let Some(n) = nodes.iter().find(|n| carry && !n.keeps_partials()) {
                return Err(Error::Param(format!(
                    "--keep-partials/--update: {} keeps no partial statistics (several passes, or rows kept); train it on all the data instead",
                    n.spec()
                )));
            }
            let active = vec![true; nodes.len()];
            let mut group = Group { done, nodes, active };
            // Multi-phase nodes ask for more passes; the others of the group are done.
            while group.active.iter().any(|a| *a) {
                let label = group.label();
                let t0 = Instant::now();
                let (mut through_cache, mut canonical);
                let pass: &mut dyn Pass = match (data, opts.shards) {
                    (Some(data), Some(store)) if Self::reads_through_cache(stream, &group, &label, log) => {
                        through_cache = ThroughCache { data, store };
                        &mut through_cache
                    }
                    (Some(data), _) if opts.reproducible => {
                        canonical = Canonical { data };
                        &mut canonical
                    }
                    _ => stream,
                };
                let (rows, skipped) = pass.run(comm, &mut group, log)?;
                if carry {
                    carry_partials(comm, group.nodes, i, &opts.prior, opts.keep_partials, &mut partials)?;
                }
                let t1 = Instant::now();
                for (n, a) in group.nodes.iter_mut().zip(group.active.iter_mut()).filter(|(_, a)| **a) {
                    n.join(comm)?;
                    *a = n.another_pass();
                    if !*a {
                        n.warnings().into_iter().for_each(|w| log.warn(w));
                    }
                }
                (report.rows, report.skipped) = log_pass(comm, &label, (rows, skipped), t0, t1, log);
            }
            schema = Schema { x: self.nodes[j].output_names(), ..schema };
            i = j + 1;
        }
        report.partials = partials;
        Ok(report)
    }

    /// With a per-shard cache: whether this pass of `group` reads through it (every node keeps
    /// per-shard partials); rows kept in memory by `cache_data` are cheaper still.
    fn reads_through_cache(stream: &Stream, group: &Group, label: &str, log: &Log) -> bool {
        if stream.in_memory() {
            return false;
        }
        if !cached::applies(group) {
            log.info(format!("--cache: {label} keeps no per-shard statistics (several passes, or rows kept); read without the cache"));
            return false;
        }
        true
    }
}

/// The end of a pass (collective): count the rows over all ranks and log them with the times
/// (`t0`: the pass began, `t1`: its join began). Returns (rows, skipped) over all ranks.
fn log_pass(comm: &dyn Comm, label: &str, (rows, skipped): (u64, u64), t0: Instant, t1: Instant, log: &Log) -> (u64, u64) {
    let read_s = (t1 - t0).as_secs_f64();
    let mut totals = [rows as f64, skipped as f64];
    comm.allreduce_sum(&mut totals);
    let (all_rows, all_skipped) = (totals[0] as u64, totals[1] as u64);
    let per_rank_rows = allgather_f64(comm, rows as f64);
    let per_rank_s = allgather_f64(comm, read_s);
    log.info(format!(
        // "join and fit": an iterative node (k-means) runs all its iterations there.
        "trained {label}: {all_rows} rows{} in {:.3} s (read and local statistics {:.3} s, join and fit {:.3} s)",
        if all_skipped > 0 { format!(" ({all_skipped} skipped for NaN/inf)") } else { String::new() },
        t0.elapsed().as_secs_f64(),
        per_rank_s.iter().cloned().fold(0.0, f64::max),
        t1.elapsed().as_secs_f64()
    ));
    for (r, (n, s)) in per_rank_rows.iter().zip(&per_rank_s).enumerate() {
        log.detail(format!("  rank {r}: {n} rows, {s:.3} s"));
    }
    (all_rows, all_skipped)
}

/// Before a group's join (collective): add the earlier training's partials (`prior`, by flow
/// node index; on rank 0 only, so they count once) and, with `keep`, record each node's partial
/// of all rows in `out`. The join then sees rank 0 holding the whole partial and the others
/// none, which sums to the same statistics.
fn carry_partials(
    comm: &dyn Comm,
    group: &mut [Box<dyn Node>],
    first: usize,
    prior: &[Option<Vec<u8>>],
    keep: bool,
    out: &mut [Option<Vec<u8>>],
) -> Result<()> {
    for (k, n) in group.iter_mut().enumerate() {
        let added = match prior.get(first + k) {
            // The old rows come first (a time series continues); rank 0's new rows follow.
            Some(Some(p)) if comm.rank() == 0 => {
                let new = n.take_partial();
                new.and_then(|new| n.merge_partial(p).and_then(|()| n.merge_partial(&new)))
                    .map_err(|e| Error::Model(format!("--update: the old model's partial for {}: {e}", n.spec())))
            }
            _ => Ok(()),
        };
        agree(comm, added)?;
        if keep {
            let mine = agree(comm, n.take_partial())?;
            for b in comm.allgather_bytes(&mine) {
                n.merge_partial(&b)?;
            }
            let all = agree(comm, n.take_partial())?;
            if comm.rank() == 0 {
                n.merge_partial(&all)?;
            }
            out[first + k] = Some(all);
        }
    }
    Ok(())
}
