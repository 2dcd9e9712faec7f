//! Distributed stable sort by one key: sample sort over all ranks' rows.
//!
//! Rows are numbered in the global input order (rank 0's rows, then rank 1's, ...: for shard
//! files, the files in order and the rows in file order). Sorting by `(key, global index)`
//! makes every element distinct, so ties keep their input order exactly as
//! `numpy.argsort(kind="stable")` does, and many equal keys cannot pile onto one rank.
//!
//! 1. each rank sorts its rows (a stable local sort);
//! 2. each rank sends up to `SAMPLES` evenly spaced samples, weighted by its row count, so
//!    uneven and empty shards are sampled fairly; all ranks pick the same `size - 1` splitters;
//! 3. one all-to-all moves every row to the rank whose splitter range holds it, where the
//!    sorted runs are merged;
//! 4. a second all-to-all moves the few rows that sampling put on the wrong side of an even
//!    split, so rank `r` ends with exactly rows `N·r/P .. N·(r+1)/P` of the sorted order. The
//!    result is therefore a function of the data alone, not of sampling or timing.
//!
//! Keys must not be NaN (numpy sorts NaN last; we refuse them, naming the row): with `-0.0`
//! and `0.0` they compare as equal, as in numpy.

use crate::comm::{agree, allgather_f64, Comm};
use crate::error::{Error, Result};
use ndarray::{Array2, ArrayView2};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::cmp::Ordering;

/// Samples per rank (at least `size - 1`): more samples, better first split, more traffic.
const SAMPLES: usize = 256;

/// A row in flight: its key, its global index, and what travels with it.
type Rec<T> = (f64, u64, T);

fn order(a: (f64, u64), b: (f64, u64)) -> Ordering {
    a.0.partial_cmp(&b.0).expect("NaN keys are refused before sorting").then(a.1.cmp(&b.1))
}

/// This rank's slice of the globally sorted rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Sorted<T> {
    /// Position of this rank's first row in the sorted order: rank `r` holds positions
    /// `start .. start + keys.len()`, which is `N·r/P .. N·(r+1)/P`.
    pub start: u64,
    /// Rows over all ranks.
    pub total: u64,
    /// The keys, ascending.
    pub keys: Vec<f64>,
    /// Each row's global index in the input order (this rank's part of numpy's argsort).
    pub index: Vec<u64>,
    /// What was passed along with each key.
    pub items: Vec<T>,
}

/// Sort every rank's `(keys[i], items[i])` by key across all ranks (collective). Returns this
/// rank's contiguous slice of the sorted order; ties keep the global input order. A NaN key is
/// an error on every rank naming its global row.
pub fn sort_by_key<T>(comm: &dyn Comm, keys: &[f64], items: Vec<T>) -> Result<Sorted<T>>
where
    T: Serialize + DeserializeOwned,
{
    assert_eq!(keys.len(), items.len(), "one item per key");
    let (rank, size) = (comm.rank(), comm.size());
    let counts: Vec<u64> = allgather_f64(comm, keys.len() as f64).iter().map(|&c| c as u64).collect();
    let offset: u64 = counts[..rank].iter().sum();
    let total: u64 = counts.iter().sum();
    let nan = keys.iter().position(|k| k.is_nan());
    agree(
        comm,
        match nan {
            Some(i) => Err(Error::Param(format!("sort: the key of row {} (rank {rank}'s row {}) is NaN", offset + i as u64 + 1, i + 1))),
            None => Ok(()),
        },
    )?;
    let mut local: Vec<Rec<T>> = keys.iter().zip(items).enumerate().map(|(i, (&k, t))| (k, offset + i as u64, t)).collect();
    // Stable: equal keys keep their index order.
    local.sort_by(|a, b| a.0.partial_cmp(&b.0).expect("not NaN"));
    if size == 1 {
        return Ok(unzip(0, total, local));
    }
    let splitters = splitters(comm, &local, total);
    let mut buckets = Vec::with_capacity(size);
    for s in splitters.iter().rev() {
        let at = local.partition_point(|r| order((r.0, r.1), *s) != Ordering::Greater);
        buckets.push(local.split_off(at));
    }
    buckets.push(local);
    buckets.reverse();
    let mut mine: Vec<Rec<T>> = exchange(comm, buckets)?.into_iter().flatten().collect();
    // The runs from each rank are sorted: the stable merge sort just merges them.
    mine.sort_by(|a, b| order((a.0, a.1), (b.0, b.1)));
    // Even out: rank r keeps exactly positions N·r/P .. N·(r+1)/P.
    let held: Vec<u64> = allgather_f64(comm, mine.len() as f64).iter().map(|&c| c as u64).collect();
    let at: u64 = held[..rank].iter().sum();
    let bound = |t: usize| total * t as u64 / size as u64;
    let mut buckets: Vec<Vec<Rec<T>>> = Vec::with_capacity(size);
    for t in (0..size).rev() {
        let from = bound(t).clamp(at, at + mine.len() as u64) - at;
        buckets.push(mine.split_off(from as usize));
    }
    buckets.reverse();
    let mine: Vec<Rec<T>> = exchange(comm, buckets)?.into_iter().flatten().collect();
    Ok(unzip(bound(rank), total, mine))
}

/// Every rank's global indices of its slice of the stable sorted order of `keys` (numpy's
/// `argsort(kind="stable")`, cut into even contiguous slices over the ranks).
pub fn argsort(comm: &dyn Comm, keys: &[f64]) -> Result<Vec<u64>> {
    Ok(sort_by_key(comm, keys, vec![(); keys.len()])?.index)
}

/// Sort all ranks' rows by column `col` (collective): this rank's slice of the sorted rows and
/// their global indices.
pub fn sort_by_column(comm: &dyn Comm, rows: ArrayView2<f64>, col: usize) -> Result<(Array2<f64>, Vec<u64>)> {
    let d = rows.ncols();
    if col >= d {
        return Err(Error::Param(format!("sort: column {col} is out of range (the rows have {d})")));
    }
    let keys: Vec<f64> = rows.column(col).to_vec();
    let items: Vec<Vec<f64>> = rows.rows().into_iter().map(|r| r.to_vec()).collect();
    let s = sort_by_key(comm, &keys, items)?;
    let flat: Vec<f64> = s.items.into_iter().flatten().collect();
    let out = Array2::from_shape_vec((s.keys.len(), d), flat).expect("rows of equal width");
    Ok((out, s.index))
}

fn unzip<T>(start: u64, total: u64, recs: Vec<Rec<T>>) -> Sorted<T> {
    let mut s = Sorted { start, total, keys: Vec::with_capacity(recs.len()), index: Vec::with_capacity(recs.len()), items: Vec::with_capacity(recs.len()) };
    for (k, i, t) in recs {
        s.keys.push(k);
        s.index.push(i);
        s.items.push(t);
    }
    s
}

/// `size - 1` splitters, the same on every rank, from weighted samples of every rank's sorted
/// rows: splitter `t` is where the samples' cumulative weight reaches `N·(t+1)/P`.
fn splitters<T>(comm: &dyn Comm, local: &[Rec<T>], total: u64) -> Vec<(f64, u64)> {
    let size = comm.size();
    let n = local.len();
    let s = n.min(SAMPLES.max(size - 1));
    let picks: Vec<(f64, u64)> = (0..s).map(|k| &local[(2 * k + 1) * n / (2 * s)]).map(|r| (r.0, r.1)).collect();
    let weight = if s == 0 { 0.0 } else { n as f64 / s as f64 };
    let mut all: Vec<(f64, u64, f64)> = Vec::new();
    for (w, picks) in crate::comm::allgather(comm, &(weight, picks)) {
        all.extend(picks.into_iter().map(|(k, i)| (k, i, w)));
    }
    all.sort_by(|a, b| order((a.0, a.1), (b.0, b.1)));
    let mut out = Vec::with_capacity(size - 1);
    let mut acc = 0.0;
    let mut it = all.iter();
    for t in 1..size {
        let goal = total as f64 * t as f64 / size as f64;
        let mut last = out.last().copied().unwrap_or((f64::NEG_INFINITY, 0));
        while acc < goal {
            match it.next() {
                Some(&(k, i, w)) => {
                    acc += w;
                    last = (k, i);
                }
                None => break,
            }
        }
        out.push(last);
    }
    out
}

/// Send `buckets[t]` to rank `t` (this rank's own bucket stays in memory); what every rank sent
/// here, in rank order.
fn exchange<T>(comm: &dyn Comm, mut buckets: Vec<Vec<Rec<T>>>) -> Result<Vec<Vec<Rec<T>>>>
where
    T: Serialize + DeserializeOwned,
{
    let rank = comm.rank();
    let own = std::mem::take(&mut buckets[rank]);
    let out: Vec<Vec<u8>> =
        buckets.iter().enumerate().map(|(t, b)| if t == rank || b.is_empty() { Vec::new() } else { bincode::serialize(b).expect("rows encode") }).collect();
    drop(buckets);
    let got = comm.alltoall_bytes(&out);
    drop(out);
    let mut runs = Vec::with_capacity(got.len());
    let mut own = Some(own);
    for (r, b) in got.into_iter().enumerate() {
        if r == rank {
            runs.push(own.take().expect("own bucket"));
        } else if b.is_empty() {
            runs.push(Vec::new());
        } else {
            runs.push(bincode::deserialize(&b).map_err(|e| Error::Fit(format!("sort: rows from rank {r} do not decode: {e}")))?);
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comm::run_threads;

    /// The reference: a stable argsort of the concatenated keys, as numpy's.
    fn stable_argsort(keys: &[f64]) -> Vec<u64> {
        let mut idx: Vec<u64> = (0..keys.len() as u64).collect();
        idx.sort_by(|&a, &b| keys[a as usize].partial_cmp(&keys[b as usize]).unwrap());
        idx
    }

    /// Deterministic pseudo-random keys with many ties (and signed zeros).
    fn keys(n: usize, seed: u64) -> Vec<f64> {
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                match (x >> 33) % 10 {
                    0 => 0.0,
                    1 => -0.0,
                    2 => 7.5,
                    v => ((x >> 40) % 50) as f64 - 20.0 + v as f64 * 0.25,
                }
            })
            .collect()
    }

    /// Cut `n` rows into `p` uneven shards, the second one empty when there are several.
    fn shards(n: usize, p: usize) -> Vec<std::ops::Range<usize>> {
        let weights: Vec<usize> = (0..p).map(|r| if r == 1 { 0 } else { r * r + 1 }).collect();
        let sum: usize = weights.iter().sum();
        let mut at = 0;
        (0..p)
            .map(|r| {
                let end = if r + 1 == p { n } else { at + n * weights[r] / sum };
                let s = at..end;
                at = end;
                s
            })
            .collect()
    }

    #[test]
    fn argsort_equals_a_stable_serial_argsort_on_1_to_8_ranks() {
        for n in [0usize, 1, 5, 37, 1000, 4099] {
            let all = keys(n, n as u64);
            let want = stable_argsort(&all);
            for p in 1..=8 {
                let parts = shards(n, p);
                let got = run_threads(p, |c| {
                    let r = parts[c.rank()].clone();
                    let s = sort_by_key(c, &all[r.clone()], all[r].to_vec()).unwrap();
                    (s.start, s.total, s.index, s.keys, s.items)
                });
                let mut cat = Vec::new();
                for (r, (start, total, index, k, items)) in got.into_iter().enumerate() {
                    assert_eq!(total, n as u64);
                    assert_eq!(start, n as u64 * r as u64 / p as u64, "n={n} p={p}: rank {r} does not start at its even share");
                    assert_eq!(index.len() as u64, n as u64 * (r as u64 + 1) / p as u64 - start);
                    for (j, &i) in index.iter().enumerate() {
                        assert_eq!(k[j].to_bits(), all[i as usize].to_bits(), "the key travels with its index");
                        assert_eq!(items[j].to_bits(), all[i as usize].to_bits(), "the item travels with its index");
                    }
                    cat.extend(index);
                }
                assert_eq!(cat, want, "n={n} p={p}");
            }
        }
    }

    #[test]
    fn all_equal_keys_keep_the_input_order_and_split_evenly() {
        let got = run_threads(3, |c| {
            let n = [10usize, 0, 2][c.rank()];
            sort_by_key(c, &vec![1.0; n], vec![(); n]).unwrap().index
        });
        assert_eq!(got, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9, 10, 11]]);
    }

    #[test]
    fn rows_sort_by_a_column_and_nan_is_refused_everywhere() {
        let got = run_threads(2, |c| {
            let rows = if c.rank() == 0 { ndarray::array![[3.0, 30.0], [1.0, 10.0]] } else { ndarray::array![[2.0, 20.0], [1.0, 11.0], [0.5, 5.0]] };
            sort_by_column(c, rows.view(), 0).unwrap()
        });
        assert_eq!(got[0].0, ndarray::array![[0.5, 5.0], [1.0, 10.0]]);
        assert_eq!(got[0].1, vec![4, 1]);
        assert_eq!(got[1].0, ndarray::array![[1.0, 11.0], [2.0, 20.0], [3.0, 30.0]]);
        assert_eq!(got[1].1, vec![3, 2, 0]);
        let errs = run_threads(3, |c| {
            let k = if c.rank() == 2 { vec![1.0, f64::NAN] } else { vec![0.0] };
            argsort(c, &k).unwrap_err().to_string()
        });
        for e in &errs {
            assert!(e.contains("row 4 (rank 2's row 2) is NaN"), "{e}");
        }
    }
}
