//! Flows: chains of nodes, trained one after the other, each on the output of the trained nodes
//! before it (MDP's ParallelFlow). Statistics nodes pass rows through unchanged, so a run of
//! them and the node after them train in the same pass over the data.

use crate::cache::ShardCache;
use crate::comm::{agree, allgather_f64, Comm};
use crate::error::{Error, Result};
use crate::io::{Chunk, Dataset, Schema};
use crate::log::Log;
use crate::nodes::{self, Node};
use crate::progress::Progress;
use ndarray::{Array2, ArrayView2};
use std::time::Instant;

mod text;
pub use text::{parse_flow, read_flow_file};

/// A chain of nodes.
pub struct Flow {
    /// The nodes, in order.
    pub nodes: Vec<Box<dyn Node>>,
}

/// Hands a rank's rows to a visitor chunk by chunk (memory-mapped NPY views when asked and
/// possible): returns (rows, rows skipped).
type RowSource<'a> = dyn FnMut(bool, &mut dyn FnMut(&Chunk) -> Result<()>) -> Result<(u64, u64)> + 'a;

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
}

impl Flow {
    /// Target columns the flow's nodes train on (union, in order of appearance).
    pub fn targets(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in self.nodes.iter().flat_map(|n| n.targets()) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }

    /// The one label column the flow's nodes train on.
    pub fn label(&self) -> Result<Option<String>> {
        let mut labels: Vec<String> = self.nodes.iter().filter_map(|n| n.label()).collect();
        labels.dedup();
        match labels.len() {
            0 | 1 => Ok(labels.pop()),
            _ => Err(Error::Param(format!("nodes use different label columns: {}", labels.join(", ")))),
        }
    }

    /// Name the target and label columns the nodes gave by index after the opened data's
    /// columns (`linreg(target=5)` trains on, and writes, the column's name).
    pub fn resolve_columns(&mut self, data: &Dataset) {
        let names = data.layout.column_names();
        let name_of = |spec: &str| match crate::io::select_columns(Some(spec), &data.layout).ok().as_deref() {
            Some([j]) => names[*j].clone(),
            _ => spec.to_string(),
        };
        for n in self.nodes.iter_mut() {
            n.resolve_columns(&name_of);
        }
    }

    /// Build an untrained flow from a spec like `pca(n=10) | whitening`.
    pub fn parse(spec: &str) -> Result<Flow> {
        let nodes = parse_flow(spec)?.iter().map(nodes::build).collect::<Result<_>>()?;
        Ok(Flow { nodes })
    }

    /// The canonical flow spec.
    pub fn spec(&self) -> String {
        self.nodes.iter().map(|n| n.spec()).collect::<Vec<_>>().join(" | ")
    }

    /// Output column names of the trained flow.
    pub fn output_names(&self, input: &[String]) -> Vec<String> {
        self.nodes.last().map_or_else(|| input.to_vec(), |n| n.output_names())
    }

    /// Map rows through the whole trained flow.
    pub fn execute(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        // Statistics nodes pass rows through unexecuted; each node that maps them checks that
        // it is trained and gets its input's column count.
        Ok(nodes::chain::execute_prefix(&self.nodes, x)?.unwrap_or_else(|| x.to_owned()))
    }

    /// Map outputs of the trained flow back to its inputs (nodes inverted in reverse order).
    pub fn inverse(&self, y: ArrayView2<f64>) -> Result<Array2<f64>> {
        let mut out = y.to_owned();
        for n in self.nodes.iter().rev() {
            out = n.inverse(out.view()).ok_or_else(|| Error::Model(format!("node {} has no inverse", n.spec())))?;
        }
        Ok(out)
    }

    /// Check up front that every node can be inverted.
    pub fn check_invertible(&self) -> Result<()> {
        let probe = Array2::zeros((0, self.nodes.last().map_or(0, |n| n.output_names().len())));
        self.inverse(probe.view()).map(|_| ())
    }

    /// Train every node over all ranks' rows (collective): the one entry point. `rows` is this
    /// rank's part of a [`Dataset`] (shard files, streamed; `&data` converts) or its rows in
    /// memory ([`Rows::Memory`]; a rank may have none). Each node trains on the output of the
    /// trained nodes before it; statistics nodes and the node after them share a pass. The
    /// model is the same on every rank; an error on any rank stops every rank with that rank's
    /// message. `opts` says how (the log, rows kept between passes, the per-shard cache,
    /// partials kept or continued, `--reproducible`).
    pub fn train<'r>(&mut self, comm: &dyn Comm, rows: impl Into<Rows<'r>>, opts: &TrainOptions) -> Result<TrainReport> {
        let log = Log { rank: comm.rank(), ..opts.log };
        match rows.into() {
            Rows::Files(data) => {
                let mut source = |mapped: bool, f: &mut dyn FnMut(&Chunk) -> Result<()>| {
                    if mapped {
                        data.for_each_chunk_mapped(f)
                    } else {
                        data.for_each_chunk(f)
                    }
                };
                self.train_source(comm, data.schema(), (data.local_bytes, data.total_bytes), &mut source, &log, opts, Some(data))
            }
            Rows::Memory(chunk, schema) => {
                if opts.reproducible || opts.shards.is_some() {
                    return Err(Error::Param("--reproducible and the per-shard cache train on files: give a Dataset".into()));
                }
                let mut source = |_: bool, f: &mut dyn FnMut(&Chunk) -> Result<()>| f(chunk).map(|_| (chunk.rows() as u64, 0));
                self.train_source(comm, schema.clone(), (0, 0), &mut source, &log, opts, None)
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

    /// The training driver: `source(mapped, f)` hands this rank's rows to `f` chunk by chunk
    /// (memory-mapped NPY views when `mapped` and it can) and returns (rows, rows skipped);
    /// `data`: the files, for the per-shard cache.
    #[allow(clippy::too_many_arguments)]
    fn train_source(
        &mut self,
        comm: &dyn Comm,
        mut schema: Schema,
        bytes: (u64, u64),
        source: &mut RowSource,
        log: &Log,
        opts: &TrainOptions,
        data: Option<&Dataset>,
    ) -> Result<TrainReport> {
        let cache = opts.cache_data;
        let shards = data.zip(opts.shards);
        let carry = opts.keep_partials || !opts.prior.is_empty();
        let mut partials: Vec<Option<Vec<u8>>> = vec![None; self.nodes.len()];
        let mut report = TrainReport::default();
        let mut cached: Option<Vec<OwnedChunk>> = None;
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
            let group = &mut todo[..=j - i];
            let begun: Result<()> = group.iter_mut().try_for_each(|n| nodes::check_memory(n.as_ref(), &schema).and_then(|()| n.begin(&schema)));
            agree(comm, begun)?;
            if carry {
                if let Some(k) = (0..group.len()).find(|&k| !group[k].keeps_partials()) {
                    return Err(Error::Param(format!(
                        "--keep-partials/--update: {} keeps no partial statistics (several passes, or rows kept); train it on all the data instead",
                        group[k].spec()
                    )));
                }
            }
            // Multi-phase nodes ask for more passes; the others of the group are done.
            let mut active = vec![true; group.len()];
            while active.iter().any(|a| *a) {
                let label = group.iter().zip(&active).filter(|(_, a)| **a).map(|(n, _)| n.spec()).collect::<Vec<_>>().join(", ");
                let t0 = Instant::now();
                // Raw rows to a node that keeps them: let it keep mapped NPY rows.
                let keeps = i == 0 && group.iter().any(|n| n.keeps_rows());
                let mut bar = match cached {
                    None => Progress::start(log, format!("reading for {label}"), comm.size(), bytes.0, bytes.1),
                    Some(_) => None,
                };
                // A group whose nodes all keep per-shard partials reads through the cache.
                let through_cache = match shards {
                    // Rows kept in memory by --cache-data are already cheaper than the cache.
                    Some(_) if cached.is_some() => None,
                    Some(_) if !keeps && group.iter().all(|n| n.keeps_partials()) => shards,
                    Some(_) => {
                        log.info(format!("--cache: {label} keeps no per-shard statistics (several passes, or rows kept); read without the cache"));
                        None
                    }
                    None => None,
                };
                if let Some((data, store)) = through_cache {
                    let context = crate::cache::context(done, group, data);
                    let local = crate::cache::pass(comm, data, store, &context, done, group, &active, &mut bar);
                    drop(bar);
                    let (rows, skipped, hits, damaged) = agree(comm, local)?;
                    let mut counts = [hits as f64, damaged as f64, data.sources.len() as f64];
                    comm.allreduce_sum(&mut counts);
                    log.info(format!(
                        "--cache {}: {} of {} shards from the cache{}",
                        store.dir().display(),
                        counts[0],
                        counts[2],
                        if counts[1] > 0.0 { format!(" ({} damaged entries ignored and rewritten)", counts[1]) } else { String::new() }
                    ));
                    if carry {
                        carry_partials(comm, group, i, &opts.prior, opts.keep_partials, &mut partials)?;
                    }
                    Self::finish_pass(comm, &mut report, group, &mut active, rows, skipped, &label, t0, log)?;
                    continue;
                }
                if let Some(data) = data.filter(|_| opts.reproducible) {
                    let why = crate::canonical::unsupported(group).or(cache.then(|| "--reproducible reads the files anew: leave out --cache-data".to_string()));
                    agree(comm, why.map_or(Ok(()), |w| Err(Error::Param(w))))?;
                    let local = crate::canonical::pass(comm, data, done, group, &active, keeps, &mut bar);
                    drop(bar);
                    let (rows, skipped) = local?;
                    if carry {
                        carry_partials(comm, group, i, &opts.prior, opts.keep_partials, &mut partials)?;
                    }
                    Self::finish_pass(comm, &mut report, group, &mut active, rows, skipped, &label, t0, log)?;
                    continue;
                }
                let mut visit = |chunk: &Chunk| -> Result<()> {
                    Progress::chunk(&mut bar, chunk);
                    nodes::chain::feed(comm, done, group, &active, chunk)
                };
                let local = match &cached {
                    Some(chunks) => chunks.iter().try_for_each(|c| visit(&c.view())).map(|_| (report_rows(chunks), 0)),
                    None if cache => {
                        let mut keep = Vec::new();
                        let r = source(false, &mut |c| {
                            keep.push(OwnedChunk::from(c));
                            visit(c)
                        });
                        cached = Some(keep);
                        r
                    }
                    None => source(keeps, &mut visit),
                };
                drop(bar);
                let (rows, skipped) = agree(comm, local)?;
                if carry {
                    carry_partials(comm, group, i, &opts.prior, opts.keep_partials, &mut partials)?;
                }
                Self::finish_pass(comm, &mut report, group, &mut active, rows, skipped, &label, t0, log)?;
            }
            schema = Schema { x: self.nodes[j].output_names(), ..schema };
            i = j + 1;
        }
        report.partials = partials;
        Ok(report)
    }
}

impl Flow {
    /// The end of a pass: join the active nodes (collective), count rows, log.
    #[allow(clippy::too_many_arguments)]
    fn finish_pass(
        comm: &dyn Comm,
        report: &mut TrainReport,
        group: &mut [Box<dyn Node>],
        active: &mut [bool],
        rows: u64,
        skipped: u64,
        label: &str,
        t0: Instant,
        log: &Log,
    ) -> Result<()> {
        let read_s = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        for (n, a) in group.iter_mut().zip(active.iter_mut()) {
            if *a {
                n.join(comm)?;
                *a = n.another_pass();
                if !*a {
                    n.warnings().into_iter().for_each(|w| log.warn(w));
                }
            }
        }
        let mut totals = [rows as f64, skipped as f64];
        comm.allreduce_sum(&mut totals);
        report.rows = totals[0] as u64;
        report.skipped = totals[1] as u64;
        let per_rank_rows = allgather_f64(comm, rows as f64);
        let per_rank_s = allgather_f64(comm, read_s);
        log.info(format!(
            // "join and fit": an iterative node (k-means) runs all its iterations there.
            "trained {label}: {} rows{} in {:.3} s (read and local statistics {:.3} s, join and fit {:.3} s)",
            report.rows,
            if report.skipped > 0 { format!(" ({} skipped for NaN/inf)", report.skipped) } else { String::new() },
            t0.elapsed().as_secs_f64(),
            per_rank_s.iter().cloned().fold(0.0, f64::max),
            t1.elapsed().as_secs_f64()
        ));
        for (r, (n, s)) in per_rank_rows.iter().zip(&per_rank_s).enumerate() {
            log.detail(format!("  rank {r}: {n} rows, {s:.3} s"));
        }
        Ok(())
    }
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

fn report_rows(chunks: &[OwnedChunk]) -> u64 {
    chunks.iter().map(|c| c.x.nrows() as u64).sum()
}

/// A chunk kept in memory by `--cache-data`.
struct OwnedChunk {
    x: Array2<f64>,
    y: Array2<f64>,
    labels: Vec<String>,
    segment_start: bool,
    origin: Option<crate::io::Origin>,
}

impl OwnedChunk {
    fn from(c: &Chunk) -> Self {
        OwnedChunk { x: c.x.to_owned(), y: c.y.to_owned(), labels: c.labels.to_vec(), segment_start: c.segment_start, origin: c.origin.cloned() }
    }

    fn view(&self) -> Chunk<'_> {
        Chunk {
            x: self.x.view(),
            y: self.y.view(),
            labels: &self.labels,
            kept: &[],
            segment_start: self.segment_start,
            origin: self.origin.as_ref(),
            mapped: None,
        }
    }
}

#[cfg(test)]
mod spmd_tests;
#[cfg(test)]
mod tests;
