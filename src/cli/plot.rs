//! `flowmpi plot`: a trained node's figure (no MPI needed), or with `--data` the flow's first
//! two outputs over a sample of the rows of all ranks (collective).

use super::ReadArgs;
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::jobs::{plot_sample, PlotJob};
use crate::log::Log;
use crate::model::Model;
use clap::Args;
use std::path::PathBuf;

/// `flowmpi plot`.
#[derive(Args, Debug)]
#[command(after_help = "Figures by node kind: pca/whitening: variance explained per component with the cumulative curve; \
sfa/sfa2: delta per slow feature; fda: eigenvalues; svd: singular values; covariance: the correlation matrix as a heat map; \
moments: each column's min-max, mean and standard deviation; hist: one histogram per column; kmeans: cluster sizes and the \
centroids on their first two principal axes; linreg/ridge: coefficients by feature (a panel per target and alpha); gnb/mnb: \
class priors and per-class feature means (probabilities).\n\nExamples:\n  flowmpi plot model.json -o pca.svg\n  \
flowmpi plot model.json --node 0 -o corr.png --size 1200x1000\n  mpirun -n 4 flowmpi plot --model model.json --data 'shards/*.csv' -o scatter.png")]
pub struct PlotArgs {
    /// The model file (or --model).
    #[arg(value_name = "MODEL", conflicts_with = "model")]
    pub model_file: Option<PathBuf>,
    /// The model file.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<PathBuf>,
    /// The picture to write: .svg or .png (by its name); written whole or not at all.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub out: PathBuf,
    /// Which node to draw, 0-based as `flowmpi inspect` numbers them. Default: the last node
    /// that has a figure.
    #[arg(long, value_name = "N", conflicts_with = "data")]
    pub node: Option<usize>,
    /// Width x height in pixels (SVG: user units).
    #[arg(long, value_name = "WxH", default_value = "1000x700", value_parser = crate::plot::parse_size)]
    pub size: (u32, u32),
    /// With --data: points drawn, a seeded uniform sample of all ranks' rows.
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub sample: usize,
    /// With --data: the sample's seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Draw the flow's first two outputs for a sample of these rows (coloured by class or
    /// cluster when the flow ends in a classifier or k-means) instead of a node's figure; every
    /// rank reads its shards, as in `execute` (the same SPEC forms).
    #[arg(long, value_name = "SPEC")]
    pub data: Option<String>,
    /// How to read --data.
    #[command(flatten)]
    pub read: ReadArgs,
}

impl PlotArgs {
    fn model_path(&self) -> Result<&PathBuf> {
        self.model_file.as_ref().or(self.model.as_ref()).ok_or_else(|| Error::Param("give the model file: flowmpi plot MODEL -o FILE".into()))
    }

    /// Whether this plot reads data (then every rank takes part).
    pub fn reads_data(&self) -> bool {
        self.data.is_some()
    }
}

/// A node's figure, drawn from the model file alone (one process).
pub fn plot_model(a: &PlotArgs, log: &Log) -> Result<()> {
    let path = a.model_path()?;
    crate::plot::Kind::of(&a.out).map_err(Error::Param)?;
    let model = Model::load(path)?;
    let fig = crate::plot::model_figure(&model, a.node)?;
    crate::plot::write(&fig, &a.out, a.size)?;
    log.info(format!("wrote {}: {}", a.out.display(), fig.title));
    Ok(())
}

/// The scatter plot of a sample of the data's rows through the flow (collective).
pub fn plot_data(comm: &dyn Comm, a: &PlotArgs, log: &Log) -> Result<()> {
    let data = a.read.options(a.data.as_deref().expect("plot_data is called with --data"))?;
    let job = PlotJob { model: a.model_path()?.clone(), out: a.out.clone(), sample: a.sample, seed: a.seed, size: a.size, log: *log };
    plot_sample(comm, data, &job).map(|_| ())
}
