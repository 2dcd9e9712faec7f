//! `flowmpi stats`: per-column moments (and histograms) of the data.

use super::stdout::outln;
use super::DataArgs;
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::flow::Flow;
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
    let opts = a.data.options(None)?;
    let data = Dataset::open(comm, &opts)?;
    let spec = if a.hist { format!("moments | hist(bins={})", a.bins) } else { "moments".to_string() };
    let mut flow = Flow::parse(&spec)?;
    let report = flow.train(comm, &data, &Log { level: 0, ..*log })?;
    let node = MomentsNode::from_json(&flow.nodes[0].to_json())?;
    let m = &node.model().ok_or_else(|| Error::Fit("no moments were computed".into()))?.moments;
    let dropped = if report.skipped > 0 { format!(" ({} rows with NaN/inf/missing values skipped)", report.skipped) } else { String::new() };
    log.info(format!("{} over {} in {:.3} s{dropped}", crate::log::plural(m.count as u64, "row"), crate::log::plural(comm.size() as u64, "rank"), t0.elapsed().as_secs_f64()));
    if comm.rank() == 0 {
        if a.json {
            let mut v = node.to_json();
            v["skipped"] = report.skipped.into();
            if a.hist {
                v["hist"] = flow.nodes[1].to_json();
            }
            outln!("{}", serde_json::to_string_pretty(&v).expect("json"))?;
        } else {
            super::stdout::print(&moments_table(node.columns(), m, report.skipped))?;
            if a.hist {
                outln!("\nhistograms ({} bins):", a.bins)?;
                for line in flow.nodes[1].summary() {
                    outln!("  {line}")?;
                }
            }
        }
    }
    Ok(())
}

/// A human table: one row per column, one column per statistic.
fn moments_table(names: &[String], m: &crate::nodes::moments::Moments, skipped: u64) -> String {
    let stats = m.table();
    let heads: Vec<&str> = ["column"].into_iter().chain(stats.iter().map(|(n, _)| *n)).collect();
    let mut rows: Vec<Vec<String>> = vec![heads.iter().map(|s| s.to_string()).collect()];
    for (j, name) in names.iter().enumerate() {
        let mut r = vec![name.clone()];
        r.extend(stats.iter().map(|(_, v)| format!("{:.6e}", v[j])));
        rows.push(r);
    }
    let widths: Vec<usize> = (0..heads.len()).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let mut out = format!("rows: {}\n", m.count);
    if skipped > 0 {
        out.push_str(&format!("skipped: {skipped} rows with NaN/inf/missing values (--nan skip)\n"));
    }
    for r in rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(s, w)| format!("{s:>w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

