//! Plots of what a flow learned (`flowmpi plot`): one figure per trained node kind
//! ([`nodes`]), or the flow's first two outputs over a sample of the data's rows (the
//! collective part is `jobs::plot`), written as SVG or PNG ([`canvas`]).

mod canvas;
mod draw;
pub mod figure;
pub mod nodes;

pub use canvas::Kind;
pub use figure::{Figure, Panel};

use crate::error::{Error, Result};
use crate::model::Model;
use std::path::Path;

/// The default size of a plot, in pixels (SVG user units).
pub const DEFAULT_SIZE: (u32, u32) = (1000, 700);

/// The node `--node` picks (0-based, as `inspect` numbers them), by default the last one with
/// a figure; and its title label ("node 2: pca(n=3)").
pub fn pick_node(model: &Model, node: Option<usize>) -> Result<(usize, String)> {
    let flow = model.flow()?;
    let specs: Vec<String> = flow.nodes.iter().map(|n| n.spec()).collect();
    let kind = |i: usize| model.nodes[i]["kind"].as_str().unwrap_or("").to_string();
    let i = match node {
        Some(i) if i >= model.nodes.len() => {
            return Err(Error::Param(format!("--node {i}: the model has {} node(s), numbered 0 to {}", model.nodes.len(), model.nodes.len().saturating_sub(1))))
        }
        Some(i) => i,
        None => match (0..model.nodes.len()).rev().find(|&i| nodes::PLOTTABLE.contains(&kind(i).as_str())) {
            Some(i) => i,
            None => {
                return Err(Error::Param(format!(
                    "the model's nodes ({}) have no figure; nodes that have one: {}",
                    specs.join(" | "),
                    nodes::PLOTTABLE.join(", ")
                )))
            }
        },
    };
    // A long spec (k-means lists every parameter) is cut: the title must fit the figure.
    Ok((i, format!("node {i}: {}", figure::abbreviate(&specs.get(i).cloned().unwrap_or_else(|| kind(i)), 48))))
}

/// The figure of one trained node of `model` (see [`pick_node`]).
pub fn model_figure(model: &Model, node: Option<usize>) -> Result<Figure> {
    let (i, label) = pick_node(model, node)?;
    nodes::figure(&model.nodes[i], &label).map_err(Error::Param)
}

/// `fig` drawn as the bytes of a `kind` file at `size` pixels (what [`write`] writes; the Python
/// package shows the SVG in a notebook).
pub fn render(fig: &Figure, kind: Kind, size: (u32, u32)) -> Result<Vec<u8>> {
    check_size(size)?;
    canvas::render(fig, kind, size).map_err(Error::Failed)
}

/// `fig` written to `out` (.svg or .png by its name) at `size` pixels, atomically: the file
/// appears whole or not at all.
pub fn write(fig: &Figure, out: &Path, size: (u32, u32)) -> Result<()> {
    let kind = Kind::of(out).map_err(Error::Param)?;
    check_size(size)?;
    let bytes = canvas::render(fig, kind, size).map_err(|m| Error::Output { rank: 0, path: out.display().to_string(), msg: m })?;
    // As every output: a missing directory is made.
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::Output { rank: 0, path: out.display().to_string(), msg: e.to_string() })?;
    }
    crate::io::write_atomic(out, &bytes, 0)
}

/// A size a person can look at: 200 to 10,000 pixels a side.
pub fn check_size((w, h): (u32, u32)) -> Result<()> {
    if !(200..=10_000).contains(&w) || !(200..=10_000).contains(&h) {
        return Err(Error::Param(format!("--size {w}x{h}: each side must be 200 to 10000 pixels")));
    }
    Ok(())
}

/// Parse `--size WxH` (`1000x700`).
pub fn parse_size(s: &str) -> std::result::Result<(u32, u32), String> {
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(|| format!("{s:?}: give WIDTHxHEIGHT in pixels, e.g. 1000x700"))?;
    let px = |v: &str| v.trim().parse::<u32>().map_err(|_| format!("{s:?}: give WIDTHxHEIGHT in pixels, e.g. 1000x700"));
    Ok((px(w)?, px(h)?))
}

#[cfg(test)]
mod tests;
