//! `flowmpi stats`: per-column moments (and histograms) of the data.

use super::stdout::outln;
use super::DataArgs;
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::flow::{Flow, TrainOptions};
use crate::io::Dataset;
use crate::log::Log;
use crate::nodes::{MomentsNode, Node};
use clap::Args;
use std::time::Instant;

/// `flowmpi stats`.
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Data options.
    #[command(flatten)]
    pub data: DataArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also print per-column histograms (edges agreed over all ranks).
    #[arg(long)]
    pub hist: bool,
    /// Bins per histogram.
    #[arg(long, default_value_t = 10)]
    pub bins: usize,
}

/// Run `flowmpi stats` (collective).
pub fn stats(comm: &dyn Comm, a: &StatsArgs, log: &Log) -> Result<()> {
    let t0 = Instant::now();
    let opts = a.data.options()?;
    let data = Dataset::open(comm, &opts)?;
    let spec = if a.hist { format!("moments | hist(bins={})", a.bins) } else { "moments".to_string() };
    let mut flow = Flow::parse(&spec)?;
    let report = flow.train(comm, &data, &TrainOptions { log: Log { level: 0, ..*log }, ..Default::default() })?;
    let node = (&*flow.nodes[0] as &dyn std::any::Any).downcast_ref::<MomentsNode>().expect("the flow's first node is moments");
    let m = &node.model().ok_or_else(|| Error::Fit("no moments were computed".into()))?.moments;
    let dropped = if report.skipped > 0 { format!(" ({} rows with NaN/inf/missing values skipped)", report.skipped) } else { String::new() };
    log.info(format!(
        "{} over {} in {:.3} s{dropped}",
        crate::log::plural(m.count as u64, "row"),
        crate::log::plural(comm.size() as u64, "rank"),
        t0.elapsed().as_secs_f64()
    ));
    if comm.rank() == 0 {
        if a.json {
            let mut v = node.to_json();
            v["skipped"] = report.skipped.into();
            if a.hist {
                v["hist"] = flow.nodes[1].to_json();
            }
            outln!("{}", serde_json::to_string_pretty(&v).expect("json"))?;
        } else {
            moments_table(node.columns(), m, report.skipped)?;
            if a.hist {
                outln!("\nhistograms ({} bins):", a.bins)?;
                for line in flow.nodes[1].summary(false) {
                    outln!("  {line}")?;
                }
            }
        }
    }
    Ok(())
}

/// Print a human table: one row per column, one column per statistic, each right-aligned to
/// its widest entry. Line by line: a file with millions of columns must not hold the table.
fn moments_table(names: &[String], m: &crate::nodes::moments::Moments, skipped: u64) -> Result<()> {
    let stats = m.table();
    let mut widths = vec![names.iter().map(|n| n.chars().count()).max().unwrap_or(0).max("column".len())];
    for (head, v) in &stats {
        widths.push(widest(v).max(head.len()));
    }
    outln!("rows: {}", m.count)?;
    if skipped > 0 {
        outln!("skipped: {skipped} rows with NaN/inf/missing values (--nan skip)")?;
    }
    // Printed in pieces of about 64 KiB: neither the whole table nor a system call per line.
    // Right-aligned cells: a line never ends in spaces.
    use std::fmt::Write;
    let mut piece = format!("{:>w$}", "column", w = widths[0]);
    for ((head, _), w) in stats.iter().zip(&widths[1..]) {
        let _ = write!(piece, "  {head:>w$}");
    }
    piece.push('\n');
    for (j, name) in names.iter().enumerate() {
        let _ = write!(piece, "{name:>w$}", w = widths[0]);
        for ((_, v), w) in stats.iter().zip(&widths[1..]) {
            let _ = write!(piece, "  {:>w$.6e}", v[j]);
        }
        piece.push('\n');
        if piece.len() >= 1 << 16 {
            super::stdout::print(&piece)?;
            piece.clear();
        }
    }
    super::stdout::print(&piece)?;
    Ok(())
}

/// The width of the widest `{:.6e}` of `v`, formatting only the values that can be widest: the
/// width is the sign plus the exponent's digits (and its sign), and the exponent after rounding
/// grows with |x|, so per sign only the largest and the smallest nonzero |x| (and any zero, NaN
/// or infinity) are candidates.
fn widest(v: &[f64]) -> usize {
    // Per sign: smallest nonzero finite, largest finite, a zero, a non-finite value.
    let mut extremes: [[Option<f64>; 4]; 2] = [[None; 4]; 2];
    for &x in v {
        let e = &mut extremes[x.is_sign_negative() as usize];
        let a = x.abs();
        let slot = if !x.is_finite() {
            3
        } else if a == 0.0 {
            2
        } else {
            e[0] = Some(e[0].map_or(x, |m: f64| if a < m.abs() { x } else { m }));
            1
        };
        e[slot] = match (slot, e[slot]) {
            (1, Some(m)) if m.abs() >= a => Some(m),
            _ => Some(x),
        };
    }
    extremes.iter().flatten().flatten().map(|x| format!("{x:.6e}").len()).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::widest;

    #[test]
    fn widest_is_the_width_of_the_widest_formatted_value() {
        let brute = |v: &[f64]| v.iter().map(|x| format!("{x:.6e}").len()).max().unwrap_or(0);
        // Values whose exponent changes when rounded to 7 digits, both signs, zeros, non-finite.
        let special = [9.9999996e9, 9.9999994e9, -9.99999996e-10, 0.0, -0.0, 1e-300, -1e300, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 5e-324];
        let mut seed = 12345u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            seed >> 11
        };
        for trial in 0..2000 {
            let n = 1 + (next() % 6) as usize;
            let v: Vec<f64> = (0..n)
                .map(|_| match next() % 3 {
                    0 => special[(next() % special.len() as u64) as usize],
                    _ => {
                        let mag = 10f64.powi((next() % 40) as i32 - 20) * (next() % 100_000) as f64 / 9_999.9;
                        if next() % 2 == 0 {
                            mag
                        } else {
                            -mag
                        }
                    }
                })
                .collect();
            assert_eq!(widest(&v), brute(&v), "trial {trial}: {v:?}");
        }
        assert_eq!(widest(&[]), 0);
    }
}
