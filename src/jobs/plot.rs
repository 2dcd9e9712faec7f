//! [`plot_sample`]: the flow's first two outputs over a sample of all ranks' rows, drawn by rank
//! 0 as one scatter plot, coloured by predicted class or cluster when the flow ends in a
//! classifier or k-means.
//!
//! Each rank keeps a seeded reservoir sample of its rows' points (memory: the sample, whatever
//! the data's size); the ranks' row counts decide how many points each contributes (in
//! proportion, so the gathered sample is uniform over all rows), and rank 0 gathers them.

use crate::comm::{agree, allgather_f64, Comm};
use crate::error::{Error, Result};
use crate::io::{DataOptions, Dataset};
use crate::log::{plural, Log};
use crate::model::{check_data_columns, Model};
use crate::nodes::{chain::execute_prefix, Task};
use crate::plot::{Figure, Panel};
use ndarray::{ArrayView2, Axis};
use std::path::PathBuf;

/// How to draw a sample of the data through a model (`flowmpi plot --data`'s options).
#[derive(Debug, Clone)]
pub struct PlotJob {
    /// The trained model's file.
    pub model: PathBuf,
    /// The picture: `.svg` or `.png`.
    pub out: PathBuf,
    /// Points drawn, over all ranks.
    pub sample: usize,
    /// Seed of the sample (with the same seed, the same rows on the same rank count).
    pub seed: u64,
    /// Size in pixels.
    pub size: (u32, u32),
    /// Where log lines go (rank 0's).
    pub log: Log,
}

/// What [`plot_sample`] drew.
#[derive(Debug, Clone)]
pub struct Plotted {
    /// Points drawn.
    pub points: usize,
    /// Rows read over all ranks.
    pub rows: u64,
}

/// A small, fast, seedable generator (SplitMix64): the sample need not be cryptographic, only
/// the same for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }
}

/// Run the model's flow over this rank's rows of `data` and draw a sample of the outputs
/// (collective; rank 0 writes the picture).
pub fn plot_sample(comm: &dyn Comm, mut data: DataOptions, job: &PlotJob) -> Result<Plotted> {
    let log = Log { rank: comm.rank(), ..job.log };
    crate::plot::Kind::of(&job.out).map_err(Error::Param)?;
    crate::plot::check_size(job.size)?;
    if job.sample == 0 {
        return Err(Error::Param("--sample 0: draw at least one point".into()));
    }
    let (flow, model) = agree(comm, Model::load_flow(&job.model))?;
    let n = flow.nodes.len();
    // A flow ending in a classifier or k-means: the points are that node's input, coloured by
    // its prediction; any other flow: its output.
    let last = flow.nodes.last().ok_or_else(|| Error::Model("the model has no nodes".into()))?;
    let grouped = matches!(last.task(), Task::Classification | Task::Clustering);
    let (body, axes) = if grouped {
        let axes = if n >= 2 { flow.nodes[n - 2].output_names() } else { model.input_columns.clone() };
        (&flow.nodes[..n - 1], axes)
    } else {
        (&flow.nodes[..], flow.output_names(&model.input_columns))
    };
    let axes: Vec<String> = if body.iter().all(|b| b.passthrough()) { model.input_columns.clone() } else { axes };
    if axes.len() < 2 {
        return Err(Error::Param(format!(
            "the flow's {} has {} column ({}); a scatter plot needs two",
            if grouped { "input to its last node" } else { "output" },
            axes.len(),
            axes.join(", ")
        )));
    }
    let groups: Vec<String> = match (last.task(), last.classes()) {
        (Task::Classification, Some(c)) => c.iter().map(|c| format!("class {c}")).collect(),
        _ => Vec::new(),
    };
    data.model_columns(&model.input_columns);
    let files = Dataset::open(comm, &data)?;
    check_data_columns(&model.input_columns, &files)?;
    // Reservoir sampling (algorithm R) of (x, y, group) over this rank's rows.
    let mut rng = Rng(job.seed ^ (comm.rank() as u64).wrapping_mul(0xA24BAED4963EE407));
    let mut kept: Vec<[f64; 3]> = Vec::with_capacity(job.sample.min(1 << 20));
    let mut seen = 0u64;
    let mut add = |pts: ArrayView2<f64>, group: Option<ArrayView2<f64>>| {
        for (i, row) in pts.axis_iter(Axis(0)).enumerate() {
            let g = group.map_or(0.0, |g| g[[i, 0]]);
            let p = [row[0], row[1], g];
            if kept.len() < job.sample {
                kept.push(p);
            } else {
                let j = rng.below(seen + 1);
                if (j as usize) < job.sample {
                    kept[j as usize] = p;
                }
            }
            seen += 1;
        }
    };
    let mut bar = crate::progress::Progress::start(&log, "sampling", comm.size(), files.local_bytes, files.total_bytes);
    let read = files.for_each_chunk(&mut |x| {
        crate::progress::Progress::chunk(&mut bar, x);
        let pts = execute_prefix(body, x.x)?;
        let pts = pts.as_ref().map_or(x.x, |a| a.view());
        if grouped {
            let pred = last.predict(pts)?;
            add(pts, Some(pred.view()));
        } else {
            add(pts, None);
        }
        Ok(())
    });
    drop(bar);
    agree(comm, read)?;
    // Each rank's share of the sample, in proportion to its rows (largest remainders).
    let counts: Vec<u64> = allgather_f64(comm, seen as f64).into_iter().map(|c| c as u64).collect();
    let total: u64 = counts.iter().sum();
    let quota = shares(&counts, (job.sample as u64).min(total));
    let mine = quota[comm.rank()] as usize;
    // The reservoir in random order, so that its first `mine` points are a uniform sample too.
    for i in (1..kept.len()).rev() {
        kept.swap(i, rng.below(i as u64 + 1) as usize);
    }
    kept.truncate(mine);
    let bytes = bincode::serialize(&kept).expect("points serialise");
    let gathered = comm.gather_bytes(0, &bytes);
    let drawn = if comm.rank() == 0 {
        let mut all: Vec<[f64; 3]> = Vec::new();
        for b in &gathered {
            all.extend(bincode::deserialize::<Vec<[f64; 3]>>(b).map_err(|e| Error::Peer(format!("a rank's sample does not decode: {e}")))?);
        }
        let fig = scatter(&all, &axes, &groups, grouped, total, &flow.spec());
        crate::plot::write(&fig, &job.out, job.size).map(|()| all.len())
    } else {
        Ok(0)
    };
    let drawn = agree(comm, drawn)?;
    log.info(format!("drew {drawn} of {} to {}", plural(total, "row"), job.out.display()));
    Ok(Plotted { points: drawn, rows: total })
}

/// `want` split among ranks holding `counts` rows, in proportion (largest remainders; ties to
/// the lower rank), never more than a rank has.
fn shares(counts: &[u64], want: u64) -> Vec<u64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return vec![0; counts.len()];
    }
    let exact: Vec<f64> = counts.iter().map(|&c| c as f64 * want as f64 / total as f64).collect();
    let mut out: Vec<u64> = exact.iter().zip(counts).map(|(e, &c)| (e.floor() as u64).min(c)).collect();
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b)));
    let mut left = want.saturating_sub(out.iter().sum());
    for &r in order.iter().cycle().take(counts.len() * 2) {
        if left == 0 {
            break;
        }
        if out[r] < counts[r] {
            out[r] += 1;
            left -= 1;
        }
    }
    out
}

/// The scatter figure of the gathered points.
fn scatter(all: &[[f64; 3]], axes: &[String], groups: &[String], grouped: bool, total: u64, spec: &str) -> Figure {
    let points: Vec<(f64, f64)> = all.iter().map(|p| (p[0], p[1])).collect();
    let (group, names) = if grouped {
        let ids: Vec<usize> = all.iter().map(|p| p[2].max(0.0) as usize).collect();
        let k = ids.iter().copied().max().map_or(0, |m| m + 1).max(groups.len());
        let names: Vec<String> = (0..k).map(|j| groups.get(j).cloned().unwrap_or_else(|| format!("cluster {j}"))).collect();
        (ids, names)
    } else {
        (Vec::new(), Vec::new())
    };
    Figure {
        title: format!("{}: {} of {} rows", crate::plot::figure::abbreviate(spec, 70), points.len(), total),
        columns: 1,
        panels: vec![Panel::Points {
            title: if grouped { "coloured by the last node's prediction".into() } else { String::new() },
            x_desc: axes[0].clone(),
            y_desc: axes[1].clone(),
            points,
            group,
            groups: names,
            radius: Vec::new(),
            tags: Vec::new(),
        }],
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn shares_are_proportional_and_sum_to_the_sample() {
        assert_eq!(super::shares(&[100, 0, 300], 4), vec![1, 0, 3]);
        assert_eq!(super::shares(&[1, 1, 1], 2), vec![1, 1, 0]);
        assert_eq!(super::shares(&[5, 2], 7), vec![5, 2]);
        assert_eq!(super::shares(&[0, 0], 5), vec![0, 0]);
        let s = super::shares(&[700, 0, 300, 2], 500);
        assert_eq!(s.iter().sum::<u64>(), 500);
        assert_eq!(s, vec![349, 0, 150, 1]);
    }
}
