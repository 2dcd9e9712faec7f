//! Nodes: one file each. A node is trained in three steps that mirror MDP's fork/join and
//! oneDAL's partial/merge/finalize: `begin` (fix the input), `update` (local partial statistics
//! from row chunks), `join` (collective merge across ranks + finalize, identical on all ranks).
//! After training, `execute` maps rows.

pub mod chain;
pub mod classes;
mod covariance;
pub mod define;
mod driver;
mod fda;
mod gnb;
mod hist;
pub mod iterate;
mod kmeans;
mod layer;
pub mod linreg;
mod mnb;
pub mod moments;
mod pca;
mod poly;
mod registry;
mod ridge;
mod sfa;
mod sfa2;
mod shapes;
mod spec;
mod stats_partials;
mod svd;
#[cfg(test)]
mod tests;
mod whitening;

pub(crate) use shapes::{nan_vec, rows, Shapes};
pub(crate) use spec::{caret, split_top_level};
pub use spec::{list_text, spec_text, NodeSpec};

pub use covariance::{CovarianceModel, CovarianceParams};
use define::Defined;
pub use fda::{FdaModel, FdaParams};
pub use gnb::{GnbModel, GnbParams};
pub use hist::{HistModel, HistParams};
pub use kmeans::{Init as KmeansInit, KmeansModel, KmeansParams};
pub use layer::LayerNode;
pub use linreg::{LinregModel, LinregParams};
pub use mnb::{MnbModel, MnbParams};
pub use moments::{MomentsModel, MomentsParams};
pub use pca::{PcaMethod, PcaModel, PcaParams};
pub use poly::{PolyModel, PolyParams};
pub use ridge::{RidgeModel, RidgeParams};
pub use sfa::{SfaModel, SfaParams};
pub use sfa2::{Sfa2Model, Sfa2Params};
pub use svd::{SvdModel, SvdParams};
pub use whitening::{WhiteningModel, WhiteningParams};

/// The `covariance` node.
pub type CovarianceNode = Defined<CovarianceParams>;
/// The `fda` node.
pub type FdaNode = Defined<FdaParams>;
/// The `gnb` node.
pub type GnbNode = Defined<GnbParams>;
/// The `hist` node.
pub type HistNode = Defined<HistParams>;
/// The `linreg` node.
pub type LinregNode = Defined<LinregParams>;
/// The `mnb` node.
pub type MnbNode = Defined<MnbParams>;
/// The `moments` node.
pub type MomentsNode = Defined<MomentsParams>;
/// The `pca` node.
pub type PcaNode = Defined<PcaParams>;
/// The `poly` (`quadratic`) node.
pub type PolyNode = Defined<PolyParams>;
/// The `ridge` node.
pub type RidgeNode = Defined<RidgeParams>;
/// The `sfa` node.
pub type SfaNode = Defined<SfaParams>;
/// The `sfa2` node.
pub type Sfa2Node = Defined<Sfa2Params>;
/// The `svd` node.
pub type SvdNode = Defined<SvdParams>;
/// The `whitening` node.
pub type WhiteningNode = Defined<WhiteningParams>;
/// The `kmeans` node.
pub type KmeansNode = Defined<KmeansParams>;

use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::{Chunk, Schema};
use ndarray::{Array2, ArrayView2};

/// The `format` tag of a flowmpi model file (here, below the model file's code, because a
/// k-means node reads its initial centroids from a model: [`crate::model::FORMAT`]).
pub const MODEL_FORMAT: &str = "flowmpi-model";

/// A trainable, executable node of a flow. (`Any`: a caller that knows the kind can reach the
/// concrete node, `&*node as &dyn Any`, without a trip through its JSON.)
pub trait Node: Send + Sync + std::any::Any {
    /// Short kind name used in flow specs and model files (`pca`, `moments`, ...).
    fn kind(&self) -> &'static str;
    /// Canonical spec, e.g. `pca(n=3)`.
    fn spec(&self) -> String;
    /// True for statistics nodes whose `execute` is the identity.
    fn passthrough(&self) -> bool {
        false
    }
    /// False for a node that learns nothing from rows (`quadratic`, `poly`): training finalizes
    /// it without a pass over the data.
    fn needs_rows(&self) -> bool {
        true
    }
    /// Target columns this node trains on (regression); the flow reads them beside the features.
    fn targets(&self) -> Vec<String> {
        Vec::new()
    }
    /// Class-label column this node trains on (classification).
    fn label(&self) -> Option<String> {
        None
    }
    /// Rename target and label columns given by index (`linreg(target=20)`) to the data's
    /// column names, once the data is opened, so models and outputs use names.
    fn resolve_columns(&mut self, _name_of: &dyn Fn(&str) -> String) {}
    /// True when the node keeps every row it is given until `join` (k-means): the flow then
    /// hands it memory-mapped NPY rows ([`Chunk::mapped`]) that it can keep without a copy.
    fn keeps_rows(&self) -> bool {
        false
    }
    /// How many f64 values the node's training state holds for `d` input columns (default: a
    /// d × d matrix), so a size parameter that cannot fit in memory is a clear error before
    /// anything is allocated.
    fn state_elements(&self, d: usize) -> u128 {
        (d as u128) * (d as u128)
    }
    /// Start training on inputs with these column names; checks parameters against the
    /// dimension (e.g. `n` larger than the input dimension).
    fn begin(&mut self, schema: &Schema) -> Result<()>;
    /// Accumulate local partial statistics from a chunk of rows (an error here is about the
    /// data, e.g. negative counts for multinomial naive Bayes).
    fn update(&mut self, chunk: &Chunk) -> Result<()>;
    /// Collective: merge the partials of all ranks and finalize the model (same on all ranks).
    fn join(&mut self, comm: &dyn Comm) -> Result<()>;
    /// After training: things the user should know about the result (e.g. k-means stopped by
    /// `max_iter`); the flow prints them as warnings on rank 0.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
    /// After `join`: true when the node needs one more pass over the data (multi-phase nodes
    /// such as `hist`: min/max, then counts; `fda`: class means, then scatter).
    fn another_pass(&self) -> bool {
        false
    }
    /// Input dimension.
    fn input_dim(&self) -> usize;
    /// Names of the output columns (after training).
    fn output_names(&self) -> Vec<String>;
    /// What the node's output means, for `flowmpi score`.
    fn task(&self) -> Task {
        Task::Transform
    }
    /// Predictions only (supervised and clustering nodes): targets, class index, or cluster
    /// id and distance. `execute` writes them next to the input columns.
    fn predict(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        self.execute(x)
    }
    /// Class labels, for classifiers: `predict`'s first column holds an index into them.
    fn classes(&self) -> Option<&[String]> {
        None
    }
    /// Classifiers: also output per-class log-probabilities.
    fn set_proba(&mut self, _on: bool) {}
    /// Iterative nodes: write a checkpoint every iteration / resume from it. Returns whether the
    /// node checkpoints (the default: no).
    fn set_checkpoint(&mut self, _path: Option<std::path::PathBuf>, _resume: bool) -> bool {
        false
    }
    /// True when the node keeps partial statistics that [`Node::take_partial`] can hand out
    /// (nodes of one pass that keep no rows), for the per-shard cache and `--keep-partials`.
    fn keeps_partials(&self) -> bool {
        false
    }
    /// True when the node trains under `train --reproducible`: [`Node::end_leaf`],
    /// [`Node::take_partial`] and [`Node::merge_partial`] work within any pass.
    fn reproducible(&self) -> bool {
        false
    }
    /// `train --reproducible`: the rows given since the last call are leaf `index` of the
    /// canonical order ([`crate::canonical`]). Returns their statistics, leaving empty ones
    /// (the default: [`Node::take_partial`]); a node that keeps its rows returns none,
    /// remembers where the leaf ends and sums per leaf when it trains
    /// ([`crate::comm::tree::sum`]).
    fn end_leaf(&mut self, _index: u64) -> Result<Option<Vec<u8>>> {
        self.take_partial().map(Some)
    }
    /// Per-shard cache (`train --cache`): the local statistics gathered since `begin` (or the
    /// last take) as bytes, leaving empty ones. An error for a node that keeps none.
    fn take_partial(&mut self) -> Result<Vec<u8>> {
        Err(Error::Fit(format!("{} keeps no partial statistics", self.spec())))
    }
    /// Merge statistics from [`Node::take_partial`] into the local ones.
    fn merge_partial(&mut self, _bytes: &[u8]) -> Result<()> {
        Err(Error::Fit(format!("{} keeps no partial statistics", self.spec())))
    }
    /// Map rows through the trained node: an error when it is not trained or `x` has not its
    /// input's column count.
    fn execute(&self, x: ArrayView2<f64>) -> Result<Array2<f64>>;
    /// Map outputs back to inputs, where the node can (`None` otherwise). Statistics nodes are
    /// the identity; PCA and whitening reconstruct from the kept components.
    fn inverse(&self, y: ArrayView2<f64>) -> Option<Array2<f64>> {
        self.passthrough().then(|| y.to_owned())
    }
    /// A node read from a model file: check that its arrays agree in shape with each other and
    /// with its columns and hold finite values, so a damaged or hand-edited model is a clear
    /// error instead of a panic in `execute`.
    fn check_model(&self) -> Result<()> {
        Ok(())
    }
    /// Human-readable summary lines for `flowmpi inspect`: long arrays cut to their first
    /// values, or every value when `full` (`inspect --full`).
    fn summary(&self, full: bool) -> Vec<String>;
    /// Trained state as JSON (kind, parameters and arrays).
    fn to_json(&self) -> serde_json::Value;

    /// Fit on one local block of feature rows (library use: the rank's own `ndarray`),
    /// collectively.
    fn fit(&mut self, comm: &dyn Comm, x: ArrayView2<f64>, names: &[String]) -> Result<()> {
        self.fit_chunk(comm, &Chunk::new(x), &Schema::features(names))
    }

    /// Fit on one local chunk with targets and/or labels, collectively.
    fn fit_chunk(&mut self, comm: &dyn Comm, chunk: &Chunk, schema: &Schema) -> Result<()> {
        crate::comm::agree(comm, check_memory(self, schema).and_then(|()| self.begin(schema)))?;
        loop {
            let updated = self.update(chunk);
            crate::comm::agree(comm, updated)?;
            self.join(comm)?;
            if !self.another_pass() {
                return Ok(());
            }
        }
    }
}

/// Fail clearly when `node`'s training state for `schema` would not fit in this machine's memory
/// (a `hist(bins=1e11)`, `kmeans(k=1e9)` or a quadratic expansion of 10,000 columns), instead
/// of an allocation failure that aborts every rank without a word.
pub fn check_memory(node: &(impl Node + ?Sized), schema: &Schema) -> Result<()> {
    let bytes = node.state_elements(schema.x.len()).saturating_mul(8);
    // Copies of the state live at once while the ranks join it and the model is written
    // (measured: hist(bins=4e6) on 8 columns, a 512 MB state, needs 3 to 4 GB of address
    // space; bins=4e5, 51 MB, 0.6 to 0.8 GB), beside what MPI and BLAS map.
    let needed = bytes.saturating_mul(STATE_COPIES).saturating_add(BASE_BYTES);
    let (total, what) = usable_memory();
    if needed > total as u128 {
        return Err(Error::Param(format!(
            "{}: on {} input columns its state takes {:.3e} bytes, and training it needs about {:.1} GiB ({STATE_COPIES} \
             copies while the ranks join it, and the process), more than the {:.1} GiB {what}; choose a smaller size \
             parameter or reduce the input first (e.g. pca)",
            node.spec(),
            schema.x.len(),
            bytes as f64,
            needed as f64 / (1u64 << 30) as f64,
            total as f64 / (1u64 << 30) as f64
        )));
    }
    Ok(())
}

/// Copies of a node's state that training holds at its peak (see [`check_memory`]).
const STATE_COPIES: u128 = 6;
/// What the process maps besides the state (MPI, BLAS buffers, the binary).
const BASE_BYTES: u128 = 400 << 20;

/// The memory this process may use, and what sets it: the smallest of the machine's
/// (`MemTotal`), the address-space limit (`ulimit -v`, PBS `vmem`) and the cgroup's
/// (`memory.max`: Slurm's `--mem`, containers). Comparing with `MemTotal` alone let a state
/// that could never be allocated abort the process instead.
fn usable_memory() -> (u64, &'static str) {
    let mut best = (1u64 << 40, "assumed");
    let mut take = |bytes: Option<u64>, what| {
        if let Some(b) = bytes.filter(|b| *b < best.0) {
            best = (b, what);
        }
    };
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    take(
        meminfo.and_then(|t| t.lines().find(|l| l.starts_with("MemTotal:"))?.split_whitespace().nth(1)?.parse::<u64>().ok()).map(|k| k * 1024),
        "of this machine's memory",
    );
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct we pass; no other memory is touched.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) } == 0 && lim.rlim_cur != libc::RLIM_INFINITY {
        take(Some(lim.rlim_cur), "of this process's address-space limit (ulimit -v)");
    }
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok();
    take(cgroup.and_then(|t| t.trim().parse::<u64>().ok()), "of this job's memory limit (cgroup memory.max)");
    best
}

/// Outputs of a polynomial expansion of degree `degree` over `n` inputs, C(n + degree, degree) − 1,
/// saturating instead of overflowing.
pub fn poly_outputs(n: usize, degree: usize) -> u128 {
    let mut c: u128 = 1;
    for i in 1..=degree as u128 {
        c = c.saturating_mul(n as u128 + i) / i;
        if c == u128::MAX {
            break;
        }
    }
    c.saturating_sub(1)
}

/// What a node's output is, which decides how `flowmpi score` scores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// A transformation (no score).
    Transform,
    /// Predicts the numeric targets: R² and RMSE.
    Regression,
    /// Predicts a class: accuracy and confusion matrix.
    Classification,
    /// Assigns clusters: inertia.
    Clustering,
}

/// The built-in kinds that implement [`Node`] themselves: kind, aliases, usage line.
const OWN: [(&str, &[&str], &str); 2] = [
    ("layer", &[], "layer(NODE @ COLUMNS, ...): nodes side by side on column groups (they may overlap or leave columns out), outputs concatenated; nodes separated by ',', a group's columns by ';' in brackets; indices count the layer's input columns from 0 (after --columns and earlier nodes, not the file's), names are safer: layer(pca(n=3) @ 0-9, sfa(n=2) @ [x10; x12])"),
    ("clone", &[], "clone(NODE, groups=G): one node trained on G equal column groups (their rows stacked), applied to each"),
];

/// Names of the node kinds this process knows: built in, then registered.
pub fn kinds() -> Vec<&'static str> {
    defined().iter().map(|e| e.kind.name).chain(OWN.iter().map(|o| o.0)).chain(registry::kinds()).collect()
}

/// The node list of `flowmpi train --help`: one usage line per kind.
pub fn help() -> String {
    let defined = defined();
    let lines = defined.iter().map(|e| e.kind.usage).chain(OWN.iter().map(|o| o.2)).chain(registry::usages());
    let mut out = String::from("Nodes (flow specs are 'node | node(key=value, ...) | ...'):\n");
    for l in lines {
        out.push_str("  ");
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// The built-in kinds written as Params → Partial → Model ([`define`]); the others still
/// implement [`Node`] themselves.
fn defined() -> [registry::Entry; 15] {
    use registry::Entry;
    [
        Entry::of::<MomentsParams>(),
        Entry::of::<CovarianceParams>(),
        Entry::of::<PcaParams>(),
        Entry::of::<WhiteningParams>(),
        Entry::of::<RidgeParams>(),
        Entry::of::<GnbParams>(),
        Entry::of::<MnbParams>(),
        Entry::of::<LinregParams>(),
        Entry::of::<SvdParams>(),
        Entry::of::<PolyParams>(),
        Entry::of::<SfaParams>(),
        Entry::of::<Sfa2Params>(),
        Entry::of::<HistParams>(),
        Entry::of::<FdaParams>(),
        Entry::of::<KmeansParams>(),
    ]
}

/// True when `name` is a built-in kind or one of its aliases.
pub(crate) fn is_builtin(name: &str) -> bool {
    OWN.iter().any(|o| o.0 == name || o.1.contains(&name)) || defined().iter().any(|e| e.names(name))
}

/// Build an untrained node from its spec.
pub fn build(spec: &NodeSpec) -> Result<Box<dyn Node>> {
    if let Some(e) = defined().iter().find(|e| e.names(&spec.kind)) {
        return e.build(spec);
    }
    Ok(match spec.kind.as_str() {
        "layer" | "clone" => Box::new(LayerNode::from_spec(spec)?),
        k => {
            if let Some(node) = registry::build(spec) {
                return node;
            }
            return Err(Error::Param(format!("unknown node '{k}' (known: {})", kinds().join(", "))));
        }
    })
}

/// Rebuild a trained node from its model-file JSON.
pub fn from_json(v: &serde_json::Value) -> Result<Box<dyn Node>> {
    let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    if let Some(e) = defined().iter().find(|e| e.kind.name == kind) {
        return e.load(v);
    }
    Ok(match kind {
        "layer" => Box::new(LayerNode::from_json(v)?),
        k => match registry::load(k, v) {
            Some(node) => node?,
            None => {
                return Err(Error::Model(format!(
                    "unknown node kind '{k}' (a node defined by a program: load the model with that program, which registers it)"
                )))
            }
        },
    })
}

/// "not trained" error for nodes used before training.
pub(crate) fn untrained(kind: &str) -> Error {
    Error::Model(format!("{kind} node is not trained"))
}
