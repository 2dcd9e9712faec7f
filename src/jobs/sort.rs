//! [`sort`]: every rank's rows sorted by one column over all ranks (a distributed stable sort),
//! written as one contiguous slice of the sorted order per rank.

use crate::comm::{agree, allgather_f64, Comm};
use crate::error::{Error, Result};
use crate::io::{check_output_paths, commit_all, rank_path, select_columns, DataOptions, Dataset, ShardWriter};
use crate::log::{plural, Log};
use std::time::Instant;

/// What to sort by and where to write (`flowmpi sort`'s options).
#[derive(Debug, Clone, Default)]
pub struct SortJob {
    /// The one column to sort by, ascending: header name or 0-based index (a numeric column).
    pub by: String,
    /// The sorted rows, one file per rank with `{rank}`: `.npy` writes NumPy float64, anything
    /// else CSV with a header.
    pub out: Option<String>,
    /// Each sorted row's global row index, one file per rank with `{rank}`: `.npy` writes an
    /// int64 vector, anything else CSV with one column `index`.
    pub argsort: Option<String>,
    /// Text columns (IDs, names) carried along verbatim and written first.
    pub keep: Vec<String>,
    /// Where log lines go (rank 0's); the default is quiet.
    pub log: Log,
}

/// What [`sort`] wrote.
#[derive(Debug, Clone)]
pub struct Sorted {
    /// Rows written by each rank.
    pub rows: Vec<u64>,
    /// Rows skipped for NaN/inf over all ranks (`--nan skip`).
    pub skipped: u64,
    /// The key column's name.
    pub by: String,
}

/// Sort the rows of `data` by one column over all ranks (collective): a stable distributed
/// sort; rank r writes its contiguous slice of the sorted order to its file of `job.out`, and
/// each sorted row's global index to its file of `job.argsort` (numpy's argsort, when the
/// files are concatenated in rank order). The files appear together or not at all.
pub fn sort(comm: &dyn Comm, mut data: DataOptions, job: &SortJob) -> Result<Sorted> {
    let log = Log { rank: comm.rank(), ..job.log };
    let t0 = Instant::now();
    let out = job.out.as_deref().map(|p| rank_path(comm, "--out", p)).transpose()?;
    let idx = job.argsort.as_deref().map(|p| rank_path(comm, "--argsort", p)).transpose()?;
    if out.is_none() && idx.is_none() {
        return Err(Error::Param("sort: give --out for the sorted rows, --argsort for their indices, or both".into()));
    }
    data.keep = job.keep.iter().map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect();
    let data = Dataset::open(comm, &data)?;
    let all_names = data.layout.column_names();
    let by = match select_columns(Some(&job.by), &data.layout).map_err(|m| Error::Param(format!("--by: {m}")))?[..] {
        [one] => one,
        ref several => {
            return Err(Error::Param(format!(
                "--by {:?} names {} columns; sort takes one key column (sorting by several keys is not supported)",
                job.by,
                several.len()
            )))
        }
    };
    let Some(key) = data.columns.iter().position(|&j| j == by) else {
        let why = if data.keep.contains(&by) { "is a --keep (text) column" } else { "is not among the selected --columns" };
        return Err(Error::Param(format!("--by {}: column '{}' {why}; sort by a numeric column that is written", job.by, all_names[by])));
    };
    if let Some(o) = &out {
        check_output_paths(comm, "--out", o, None, &data)?;
    }
    if let Some(i) = &idx {
        check_output_paths(comm, "--argsort", i, out.as_deref().map(|o| ("the --out file", o)), &data)?;
    }
    let mut keys = Vec::new();
    let mut items: Vec<(Vec<f64>, Vec<String>)> = Vec::new();
    let mut bar = crate::progress::Progress::start(&log, "reading", comm.size(), data.local_bytes, data.total_bytes);
    let read = data.for_each_chunk(&mut |c| {
        crate::progress::Progress::chunk(&mut bar, c);
        let k = data.keep.len();
        for (i, row) in c.x.rows().into_iter().enumerate() {
            keys.push(row[key]);
            items.push((row.to_vec(), c.kept.get(i * k..(i + 1) * k).map(<[String]>::to_vec).unwrap_or_default()));
        }
        Ok(())
    });
    drop(bar);
    let (_, skipped) = agree(comm, read)?;
    let t_read = t0.elapsed().as_secs_f64();
    let sorted = crate::par::sort_by_key(comm, &keys, std::mem::take(&mut items))?;
    drop(keys);
    let t_sort = t0.elapsed().as_secs_f64() - t_read;

    let kept: Vec<String> = data.keep.iter().map(|&j| all_names[j].clone()).collect();
    let names: Vec<String> = kept.iter().cloned().chain(data.names()).collect();
    let created = (|| {
        let mut writers = Vec::new();
        if let Some(o) = &out {
            writers.push(ShardWriter::create(o, &names, comm.rank())?.with_text(kept.len()));
        }
        if let Some(i) = &idx {
            writers.push(ShardWriter::create_indices(i, comm.rank())?);
        }
        Ok(writers)
    })();
    let mut writers = agree(comm, created)?;
    let written = (|| {
        if out.is_some() {
            // In pieces, so the flat copy stays small.
            for part in sorted.items.chunks(1 << 14) {
                let vals: Vec<f64> = part.iter().flat_map(|(x, _)| x.iter().copied()).collect();
                let text: Vec<String> = part.iter().flat_map(|(_, t)| t.iter().cloned()).collect();
                writers[0].write_rows_with_text(&text, &vals).map_err(|e| match e {
                    Error::Row { msg, .. } => Error::Param(format!("--out: {msg}")),
                    e => e,
                })?;
            }
        }
        if idx.is_some() {
            writers.last_mut().expect("the --argsort writer").write_indices(&sorted.index)?;
        }
        Ok(())
    })();
    commit_all(comm, writers, written)?;

    let rows = allgather_f64(comm, sorted.keys.len() as f64);
    let mut dropped = [skipped as f64];
    comm.allreduce_sum(&mut dropped);
    log.info(format!(
        "sorted {} by '{}' over {} in {:.3} s (read {:.3} s, sort {:.3} s){}",
        plural(sorted.total, "row"),
        all_names[by],
        plural(comm.size() as u64, "rank"),
        t0.elapsed().as_secs_f64(),
        t_read,
        t_sort,
        if dropped[0] > 0.0 { format!("; {} skipped for NaN/inf", plural(dropped[0] as u64, "row")) } else { String::new() }
    ));
    for (r, n) in rows.iter().enumerate() {
        let files: Vec<String> = [&job.out, &job.argsort].into_iter().flatten().map(|p| crate::io::expand_pattern(p, r, comm.size())).collect();
        log.detail(format!("  rank {r}: {n} rows -> {}", files.join(", ")));
    }
    Ok(Sorted { rows: rows.iter().map(|&n| n as u64).collect(), skipped: dropped[0] as u64, by: all_names[by].clone() })
}
