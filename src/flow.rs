//! Flows: chains of nodes, trained one after the other, each on the output of the trained nodes
//! before it (MDP's ParallelFlow). Statistics nodes pass rows through unchanged, so a run of
//! them and the node after them train in the same pass over the data.

use crate::cache::ShardCache;
use crate::comm::{agree, allgather_f64, Comm};
use crate::error::{Error, Result};
use crate::io::{Chunk, Dataset, Schema};
use crate::log::Log;
use crate::progress::Progress;
use crate::nodes::{self, Node, NodeSpec};
use ndarray::{Array2, ArrayView2};
use std::time::Instant;

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

/// How to train, beyond the data.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions<'a> {
    /// Keep the rank's rows in memory between passes.
    pub cache_data: bool,
    /// A per-shard cache of partial statistics ([`Flow::train_cached`]).
    pub shards: Option<&'a ShardCache>,
    /// Report every node's merged partial statistics (daal4py's online mode: train more later).
    pub keep_partials: bool,
    /// Partial statistics of rows trained on earlier, per node, added to this training's
    /// (`train --update`).
    pub prior: Vec<Option<Vec<u8>>>,
}

/// Split a flow spec `a(..) | b(..)` into node specs.
pub fn parse_flow(spec: &str) -> Result<Vec<NodeSpec>> {
    let parts: Vec<&str> = spec.split('|').map(str::trim).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(Error::Param(format!("empty node in flow {spec:?}")));
    }
    parts.into_iter().map(NodeSpec::parse).collect()
}

/// Read a flow from a TOML or JSON file: either `flow = "pca(n=3) | whitening"` or a list of
/// nodes, `[[node]]` tables (TOML) / `"nodes": [...]` (JSON), each with `kind` and parameters.
pub fn read_flow_file(path: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Param(format!("--flow-file {}: {e}", path.display())))?;
    let bad = |m: String| Error::Param(format!("--flow-file {}: {m}", path.display()));
    let value: serde_json::Value = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?
    } else {
        let t: toml::Value = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        serde_json::to_value(t).map_err(|e| bad(e.to_string()))?
    };
    if let Some(f) = value.get("flow").and_then(|f| f.as_str()) {
        return Ok(f.to_string());
    }
    let list = value.get("node").or_else(|| value.get("nodes")).and_then(|v| v.as_array())
        .ok_or_else(|| bad("expected `flow = \"...\"` or a list of nodes ([[node]] with kind = ...)".into()))?;
    let mut specs = Vec::new();
    for n in list {
        let obj = n.as_object().ok_or_else(|| bad("each node must be a table".into()))?;
        let kind = obj.get("kind").and_then(|k| k.as_str()).ok_or_else(|| bad("a node has no `kind`".into()))?;
        let args: Vec<String> = obj.iter().filter(|(k, _)| *k != "kind").map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        }).collect();
        specs.push(if args.is_empty() { kind.to_string() } else { format!("{kind}({})", args.join(", ")) });
    }
    if specs.is_empty() {
        return Err(bad("the flow has no nodes".into()));
    }
    Ok(specs.join(" | "))
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

    /// Map rows through `nodes` (statistics nodes cost nothing); `None` when all pass through.
    pub(crate) fn execute_prefix(nodes: &[Box<dyn Node>], x: ArrayView2<f64>) -> Option<Array2<f64>> {
        let mut out: Option<Array2<f64>> = None;
        for n in nodes.iter().filter(|n| !n.passthrough()) {
            out = Some(n.execute(out.as_ref().map_or(x, |a| a.view())));
        }
        out
    }

    /// Map rows through the whole trained flow.
    pub fn execute(&self, x: ArrayView2<f64>) -> Array2<f64> {
        Self::execute_prefix(&self.nodes, x).unwrap_or_else(|| x.to_owned())
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

    /// Train every node over all ranks' data (collective). Each pass streams the rank's shards
    /// (or, with `cache`, the rows kept in memory after the first pass); errors on any rank stop
    /// every rank with that rank's message.
    pub fn train(&mut self, comm: &dyn Comm, data: &Dataset, log: &Log) -> Result<TrainReport> {
        self.train_with(comm, data, log, false)
    }

    /// [`Flow::train`], optionally keeping the rank's rows in memory between passes.
    pub fn train_with(&mut self, comm: &dyn Comm, data: &Dataset, log: &Log, cache: bool) -> Result<TrainReport> {
        self.train_cached(comm, data, log, cache, None)
    }

    /// [`Flow::train_with`], with a per-shard cache of partial statistics: a group of nodes
    /// that can keep per-shard partials ([`Node::take_partial`]) reads only the shards whose
    /// entries are missing or stale, and merges every shard's partial in shard order (so a
    /// warm run gives the same bits as the cold run that filled the cache).
    pub fn train_cached(&mut self, comm: &dyn Comm, data: &Dataset, log: &Log, cache: bool, shards: Option<&ShardCache>) -> Result<TrainReport> {
        self.train_opts(comm, data, log, &TrainOptions { cache_data: cache, shards, ..Default::default() })
    }

    /// Train with every option ([`TrainOptions`]).
    pub fn train_opts(&mut self, comm: &dyn Comm, data: &Dataset, log: &Log, opts: &TrainOptions) -> Result<TrainReport> {
        let mut source = |mapped: bool, f: &mut dyn FnMut(&Chunk) -> Result<()>| {
            if mapped { data.for_each_chunk_mapped(f) } else { data.for_each_chunk(f) }
        };
        self.train_source(comm, data.schema(), (data.local_bytes, data.total_bytes), &mut source, log, opts, Some(data))
    }

    /// Train every node on this rank's rows in memory (collective; library use): features `x`
    /// with column `names`; every rank passes its own block (it may be empty) with the same
    /// names. Like [`Flow::train`] on files: the same model on every rank, errors agreed.
    pub fn fit(&mut self, comm: &dyn Comm, x: ArrayView2<f64>, names: &[String]) -> Result<TrainReport> {
        self.fit_chunk(comm, &Chunk::new(x), &Schema::features(names))
    }

    /// [`Flow::fit`] with targets and/or labels: `chunk.y` holds the columns `schema.y` (the
    /// regression targets the flow names), `chunk.labels` one class label per row.
    pub fn fit_chunk(&mut self, comm: &dyn Comm, chunk: &Chunk, schema: &Schema) -> Result<TrainReport> {
        let mut source = |_: bool, f: &mut dyn FnMut(&Chunk) -> Result<()>| f(chunk).map(|_| (chunk.rows() as u64, 0));
        self.train_source(comm, schema.clone(), (0, 0), &mut source, &crate::log::global(), &TrainOptions::default(), None)
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
            let mut j = i;
            while j + 1 < self.nodes.len() && self.nodes[j].passthrough() {
                j += 1;
            }
            let (done, todo) = self.nodes.split_at_mut(i);
            let group = &mut todo[..=j - i];
            let begun: Result<()> = group.iter_mut().try_for_each(|n| nodes::check_memory(n.as_ref(), &schema).and_then(|()| n.begin(&schema)));
            agree(comm, begun)?;
            if carry {
                if let Some(k) = (0..group.len()).find(|&k| group[k].take_partial().is_none()) {
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
                    Some(_) if !keeps && group.iter_mut().all(|n| n.take_partial().is_some()) => shards,
                    Some(_) => {
                        log.info(format!("--cache: {label} keeps no per-shard statistics (several passes, or rows kept); read without the cache"));
                        None
                    }
                    None => None,
                };
                if let Some((data, store)) = through_cache {
                    let context = cache_context(done, group, data);
                    let local = cached_pass(comm, data, store, &context, done, group, &active, &mut bar);
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
                let mut visit = |chunk: &Chunk| -> Result<()> {
                    Progress::chunk(&mut bar, chunk);
                    feed(comm, done, group, &active, chunk)
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
            "trained {label}: {} rows{} in {:.3} s (read+local {:.3} s, join {:.3} s)",
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
fn carry_partials(comm: &dyn Comm, group: &mut [Box<dyn Node>], first: usize, prior: &[Option<Vec<u8>>], keep: bool, out: &mut [Option<Vec<u8>>]) -> Result<()> {
    for (k, n) in group.iter_mut().enumerate() {
        let added = match prior.get(first + k) {
            Some(Some(p)) if comm.rank() == 0 => n.merge_partial(p).map_err(|e| Error::Model(format!("--update: the old model's partial for {}: {e}", n.spec()))),
            _ => Ok(()),
        };
        agree(comm, added)?;
        if keep {
            let mine = n.take_partial().expect("checked when the group began");
            for b in comm.allgather_bytes(&mine) {
                n.merge_partial(&b)?;
            }
            let all = n.take_partial().expect("checked when the group began");
            if comm.rank() == 0 {
                n.merge_partial(&all)?;
            }
            out[first + k] = Some(all);
        }
    }
    Ok(())
}

/// Hand a chunk to the active nodes of `group`, after the trained nodes before it (`done`).
fn feed(comm: &dyn Comm, done: &[Box<dyn Node>], group: &mut [Box<dyn Node>], active: &[bool], chunk: &Chunk) -> Result<()> {
    let prefixed = Flow::execute_prefix(done, chunk.x);
    let c = Chunk { x: prefixed.as_ref().map_or(chunk.x, |a| a.view()), mapped: if prefixed.is_some() { None } else { chunk.mapped }, ..*chunk };
    for (n, _) in group.iter_mut().zip(active).filter(|(_, a)| **a) {
        n.update(&c).map_err(|e| match (e, c.origin) {
            // A complaint about one row: name its file and line.
            (Error::Row { row, msg }, Some(o)) => o.error(row, msg),
            (e @ Error::Data { .. }, _) => e,
            (e, _) => Error::Fit(format!("rank {}: {e}", comm.rank())),
        })?;
    }
    Ok(())
}

/// What a group's cached partials depend on besides the shard: flowmpi's version, the nodes,
/// the trained flow before them, and the options that change what is read.
fn cache_context(done: &[Box<dyn Node>], group: &[Box<dyn Node>], data: &Dataset) -> String {
    let upstream = serde_json::to_vec(&done.iter().map(|n| n.to_json()).collect::<Vec<_>>()).expect("json");
    let mut opts = serde_json::to_value(&data.opts).expect("options serialise");
    if let Some(o) = opts.as_object_mut() {
        o.remove("spec"); // the shard's identity is its file, however the glob was written
    }
    format!(
        "flowmpi {}\nnodes {}\nupstream {:016x}\ncolumns {:?} targets {:?} label {:?}\noptions {opts} nan {:?}",
        env!("CARGO_PKG_VERSION"),
        group.iter().map(|n| n.spec()).collect::<Vec<_>>().join(" | "),
        crate::cache::fnv(&upstream, 0xcbf29ce484222325),
        data.columns,
        data.targets,
        data.label,
        data.opts.nan
    )
}

/// One pass through the cache: per shard, its stored partials or a read of the shard (stored
/// afterwards); the group's statistics are then the shards' merged in shard order, whether
/// they came from the cache or not. Returns (rows, skipped, shards from the cache, damaged
/// entries). Local.
#[allow(clippy::too_many_arguments)]
fn cached_pass(
    comm: &dyn Comm,
    data: &Dataset,
    store: &ShardCache,
    context: &str,
    done: &[Box<dyn Node>],
    group: &mut [Box<dyn Node>],
    active: &[bool],
    bar: &mut Option<Progress>,
) -> Result<(u64, u64, u64, u64)> {
    use crate::cache::{Entry, Lookup};
    let (mut rows, mut skipped, mut hits, mut damaged, mut before) = (0, 0, 0, 0, 0);
    let take = |group: &mut [Box<dyn Node>]| -> Vec<Vec<u8>> { group.iter_mut().map(|n| n.take_partial().expect("cacheable")).collect() };
    for src in &data.sources {
        let key = store.key(context, src, comm.rank())?;
        // The shards so far, set aside: the group reads this shard into empty statistics.
        let acc = take(group);
        let entry = match store.load(&key) {
            Lookup::Hit(e) if e.parts.len() == group.len() => {
                hits += 1;
                e
            }
            found => {
                damaged += u64::from(!matches!(found, Lookup::Miss));
                let (r, s) = data.only(src).for_each_chunk(&mut |c| {
                    // Progress counts the bytes of the shards before this one too.
                    let origin = c.origin.map(|o| crate::io::Origin { read: o.read + before, ..o.clone() });
                    Progress::chunk(bar, &Chunk { origin: origin.as_ref(), ..*c });
                    feed(comm, done, group, active, c)
                })?;
                let e = Entry { rows: r, skipped: s, parts: take(group) };
                store.store(&key, &e, comm.rank())?;
                e
            }
        };
        for ((n, a), p) in group.iter_mut().zip(&acc).zip(&entry.parts) {
            n.merge_partial(a)?;
            n.merge_partial(p).map_err(|e| Error::Fit(format!("rank {}: --cache entry for {}: {e}", comm.rank(), src.path.display())))?;
        }
        rows += entry.rows;
        skipped += entry.skipped;
        before += crate::io::source_bytes(src);
    }
    Ok((rows, skipped, hits, damaged))
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
        Chunk { x: self.x.view(), y: self.y.view(), labels: &self.labels, kept: &[], segment_start: self.segment_start, origin: self.origin.as_ref(), mapped: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_spec_roundtrip() {
        let f = Flow::parse("moments | covariance | pca(n=2) | whitening").unwrap();
        assert_eq!(f.spec(), "moments | covariance | pca(n=2) | whitening");
        assert!(Flow::parse("pca(n=2) || whitening").is_err());
    }

    #[test]
    fn flow_file_forms() {
        let dir = std::env::temp_dir().join(format!("flowmpi-flowfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let t = dir.join("f.toml");
        std::fs::write(&t, "[[node]]\nkind = \"pca\"\nn = 3\n[[node]]\nkind = \"whitening\"\n").unwrap();
        assert_eq!(read_flow_file(&t).unwrap(), "pca(n=3) | whitening");
        let j = dir.join("f.json");
        std::fs::write(&j, r#"{"flow": "moments | pca(var=0.9)"}"#).unwrap();
        assert_eq!(read_flow_file(&j).unwrap(), "moments | pca(var=0.9)");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
mod spmd_tests {
    //! Whole flows over the in-process thread Comm: 1..8 simulated ranks reading real shard files
    //! (uneven, one empty, one with a single row) give the single-rank model.
    use super::*;
    use crate::comm::run_threads;
    use crate::io::DataOptions;
    use crate::model::Model;

    fn write_shards(dir: &std::path::Path) {
        let sizes = [37usize, 0, 1, 120, 9];
        let mut row = 0usize;
        for (s, &n) in sizes.iter().enumerate() {
            let mut text = String::from("a,b,c,d\n");
            for _ in 0..n {
                let t = row as f64;
                text.push_str(&format!(
                    "{},{},{},{}\n",
                    (t * 0.37).sin() * 3.0 + 100.0,
                    (t * 0.37).sin() + (t * 1.3).cos(),
                    (t * 0.05).cos() * 0.5,
                    (t * 2.1).sin() * 0.25 - 7.0
                ));
                row += 1;
            }
            std::fs::write(dir.join(format!("part{s}.csv")), text).unwrap();
        }
    }

    /// Every row of the shards `write_shards` wrote, read plainly, in order.
    fn all_rows(dir: &std::path::Path) -> Array2<f64> {
        let mut rows: Vec<f64> = Vec::new();
        for s in 0..5 {
            let text = std::fs::read_to_string(dir.join(format!("part{s}.csv"))).unwrap();
            text.lines().skip(1).for_each(|l| rows.extend(l.split(',').map(|v| v.parse::<f64>().unwrap())));
        }
        Array2::from_shape_vec((rows.len() / 4, 4), rows).unwrap()
    }

    fn numbers(v: &serde_json::Value, out: &mut Vec<f64>) {
        match v {
            serde_json::Value::Number(n) => out.push(n.as_f64().unwrap()),
            serde_json::Value::Array(a) => a.iter().for_each(|x| numbers(x, out)),
            serde_json::Value::Object(m) => m.values().for_each(|x| numbers(x, out)),
            _ => {}
        }
    }

    #[test]
    fn flows_on_1_to_8_simulated_ranks_equal_the_single_rank_model() {
        let dir = std::env::temp_dir().join(format!("flowmpi-spmd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_shards(&dir);
        let mut opts = DataOptions::new(dir.join("part*.csv").to_str().unwrap());
        opts.block_bytes = 1024; // many chunks per shard
        let spec = "moments | covariance | pca(n=3) | whitening";
        let train = |ranks: usize| {
            run_threads(ranks, |c| {
                let data = crate::io::Dataset::open(c, &opts).unwrap();
                let mut flow = Flow::parse(spec).unwrap();
                let report = flow.train(c, &data, &Log { level: 0, rank: c.rank(), progress: crate::progress::Style::Off }).unwrap();
                Model::new(&flow, None, data.names(), report.rows, c.size())
            })
        };
        let one = train(1).remove(0);
        let mut reference = Vec::new();
        numbers(&serde_json::Value::Array(one.nodes.clone()), &mut reference);
        assert_eq!(one.training_rows, 167);
        for ranks in 2..=8 {
            let models = train(ranks);
            for m in &models {
                assert_eq!(m.hash(), models[0].hash(), "ranks disagree with {ranks} ranks");
            }
            let mut got = Vec::new();
            numbers(&serde_json::Value::Array(models[0].nodes.clone()), &mut got);
            assert_eq!(got.len(), reference.len());
            for (i, (a, b)) in got.iter().zip(&reference).enumerate() {
                assert!((a - b).abs() <= 1e-10 * b.abs().max(1.0), "{ranks} ranks, value {i}: {a} vs {b}");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn saved_models_load_back_bit_for_bit() {
        // serde_json parses floats exactly only with its float_roundtrip feature: without it a
        // loaded model was off in the last bit, so `execute` differed from the trained flow.
        let dir = std::env::temp_dir().join(format!("flowmpi-roundtrip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_shards(&dir);
        let opts = DataOptions::new(dir.join("part*.csv").to_str().unwrap());
        for spec in ["moments | covariance | pca(n=3) | whitening", "sfa(n=2, contiguous=true)", "kmeans(k=3, seed=1)", "poly(degree=2) | svd(k=2)", "layer(pca(n=2) @ a-b, whitening @ [c; d])", "clone(pca(n=1), groups=2) | covariance"] {
            let (flow, model) = run_threads(1, |c| {
                let data = crate::io::Dataset::open(c, &opts).unwrap();
                let mut flow = Flow::parse(spec).unwrap();
                let report = flow.train(c, &data, &Log { level: 0, rank: 0, progress: crate::progress::Style::Off }).unwrap();
                let model = Model::new(&flow, None, data.names(), report.rows, 1);
                (flow, model)
            })
            .remove(0);
            let path = dir.join("m.json");
            std::fs::write(&path, model.to_bytes()).unwrap();
            let loaded = Model::load(&path).unwrap();
            assert_eq!(loaded.to_bytes(), model.to_bytes(), "{spec}: the model changes on a save/load cycle");
            let x = ndarray::Array2::from_shape_fn((7, 4), |(i, j)| 100.0 * u8::from(j == 0) as f64 + (i * 4 + j) as f64 * 0.173);
            let (a, b) = (flow.execute(x.view()), loaded.flow().unwrap().execute(x.view()));
            assert!(a.iter().zip(b.iter()).all(|(p, q)| p.to_bits() == q.to_bits()), "{spec}: execute differs after loading");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_flow_fitted_from_arrays_equals_one_trained_on_the_files() {
        let dir = std::env::temp_dir().join(format!("flowmpi-fit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_shards(&dir);
        let opts = DataOptions::new(dir.join("part*.csv").to_str().unwrap());
        let spec = "moments | covariance | pca(n=3) | whitening";
        let files = run_threads(1, |c| {
            let data = crate::io::Dataset::open(c, &opts).unwrap();
            let mut flow = Flow::parse(spec).unwrap();
            let r = flow.train(c, &data, &Log { level: 0, rank: 0, progress: crate::progress::Style::Off }).unwrap();
            (Model::new(&flow, None, data.names(), r.rows, 1), data.names())
        })
        .remove(0);
        let all = all_rows(&dir);
        let mut want = Vec::new();
        numbers(&serde_json::Value::Array(files.0.nodes.clone()), &mut want);
        for ranks in 1..=6 {
            let models = run_threads(ranks, |c| {
                // Uneven blocks, the last rank's empty.
                let n = all.nrows();
                let cut = |r: usize| if r >= ranks - 1 && ranks > 1 { n } else { n * r * r / (ranks * ranks) };
                let mine = all.slice(ndarray::s![cut(c.rank())..cut(c.rank() + 1).max(cut(c.rank())), ..]);
                let mut flow = Flow::parse(spec).unwrap();
                let r = flow.fit(c, mine, &files.1).unwrap();
                Model::new(&flow, None, files.1.clone(), r.rows, ranks)
            });
            for m in &models {
                assert_eq!(m.hash(), models[0].hash(), "{ranks} ranks disagree");
                assert_eq!(m.training_rows, 167);
            }
            let mut got = Vec::new();
            numbers(&serde_json::Value::Array(models[0].nodes.clone()), &mut got);
            assert_eq!(got.len(), want.len());
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!((a - b).abs() <= 1e-10 * b.abs().max(1.0), "{ranks} ranks, value {i}: {a} vs {b}");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn layers_equal_their_nodes_trained_alone_on_each_group() {
        let dir = std::env::temp_dir().join(format!("flowmpi-layer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_shards(&dir);
        let quiet = |r| Log { level: 0, rank: r, progress: crate::progress::Style::Off };
        let train = |ranks: usize, spec: &str, columns: Option<&str>| {
            let mut opts = DataOptions::new(dir.join("part*.csv").to_str().unwrap());
            opts.columns = columns.map(String::from);
            opts.block_bytes = 1024;
            run_threads(ranks, |c| {
                let data = crate::io::Dataset::open(c, &opts).unwrap();
                let mut flow = Flow::parse(spec).unwrap();
                flow.train(c, &data, &quiet(c.rank())).unwrap();
                flow
            })
        };
        let x = ndarray::Array2::from_shape_fn((9, 4), |(i, j)| 100.0 * u8::from(j == 0) as f64 + (i * 4 + j) as f64 * 0.31);
        // A multi-pass node (hist) beside a one-pass one, against each trained alone.
        for ranks in 1..=4 {
            let layer = train(ranks, "layer(pca(n=2) @ a-b, hist(bins=5) @ [c; d])", None);
            let pca = train(ranks, "pca(n=2)", Some("a,b")).remove(0);
            let hist = train(ranks, "hist(bins=5)", Some("c,d")).remove(0);
            for f in &layer {
                let v = f.nodes[0].to_json();
                assert_eq!(v["nodes"][0], pca.nodes[0].to_json(), "{ranks} ranks: the layer's pca");
                assert_eq!(v["nodes"][1], hist.nodes[0].to_json(), "{ranks} ranks: the layer's hist");
            }
            let want = ndarray::concatenate(ndarray::Axis(1), &[pca.execute(x.slice(ndarray::s![.., 0..2])).view(), hist.execute(x.slice(ndarray::s![.., 2..4])).view()]).unwrap();
            assert_eq!(layer[0].execute(x.view()), want);
            assert_eq!(layer[0].output_names(&[]), ["pc0", "pc1", "c", "d"]);
        }
        // A clone layer: one node on the groups' rows stacked.
        let all = all_rows(&dir);
        let stacked = ndarray::concatenate(ndarray::Axis(0), &[all.slice(ndarray::s![.., 0..2]), all.slice(ndarray::s![.., 2..4])]).unwrap();
        let alone = run_threads(1, |c| {
            let mut f = Flow::parse("covariance").unwrap();
            f.fit(c, stacked.view(), &["a".into(), "b".into()]).unwrap();
            f
        })
        .remove(0);
        let (mut want, mut got) = (Vec::new(), Vec::new());
        numbers(&alone.nodes[0].to_json(), &mut want);
        for ranks in [1, 3] {
            let clone = train(ranks, "clone(covariance, groups=2)", None).remove(0);
            got.clear();
            numbers(&clone.nodes[0].to_json()["nodes"][0], &mut got);
            assert_eq!(got.len(), want.len());
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{ranks} ranks: clone {a} vs stacked {b}");
            }
            assert_eq!(clone.output_names(&[]), ["g0_a", "g0_b", "g1_a", "g1_b"]);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
