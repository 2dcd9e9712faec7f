//! Nodes anyone can write, outside the crate: three small pieces, as MDP's `_fork`/`_join` and
//! oneDAL's partial / merge / finalize.
//!
//! - [`NodeParams`]: the node's typed parameters, read from the flow spec and checked against the
//!   input; it creates the empty [`Partial`] and finalizes a merged one into the trained model.
//! - [`Partial`]: local statistics: `update` with this rank's rows, `merge` another rank's
//!   (pure: no `Comm`). It travels between ranks by serde.
//! - [`Transform`]: the trained model, immutable: output names and `transform` (or [`Predict`]:
//!   the predictions appended to the input), with its [`Report`]: checks, summary, warnings.
//!
//! The driver ([`Defined`], which implements [`crate::nodes::Node`]) owns the communication: every rank's
//! partial is gathered everywhere and merged in rank order, so the model is identical on every
//! rank, and errors are agreed like every built-in node's. [`register`] makes the kind known to
//! flow specs and model files. See `examples/custom_node.rs`.

pub use super::registry::Kind;
use super::NodeSpec;
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::{Chunk, Schema};
use ndarray::{Array2, ArrayView2};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// For [`NodeParams::check`]: a size parameter (`n=`, `k=`) no larger than the input dimension
/// `d` (`kind` and `key` name them in the message).
pub fn size_fits(kind: &str, key: &str, size: Option<usize>, d: usize) -> Result<()> {
    match size {
        Some(n) if n > d => Err(Error::Param(format!("{kind}: {key}={n} is larger than the input dimension {d}"))),
        _ => Ok(()),
    }
}

/// The columns a node's parameters name besides its features ([`NodeParams::columns`]).
pub enum Columns<'a> {
    /// None: an unsupervised node.
    None,
    /// Regression targets.
    Targets(&'a mut Vec<String>),
    /// The class label (`None` while not given).
    Label(&'a mut Option<String>),
}

/// For [`NodeParams::validate`]: an error unless a count parameter, when given, is at least 1.
pub fn at_least_one(kind: &str, key: &str, value: Option<usize>) -> Result<()> {
    match value {
        Some(0) => Err(Error::Param(format!("{kind}: {key} must be at least 1"))),
        _ => Ok(()),
    }
}

/// A node's parameters: the node kind's entry point.
pub trait NodeParams: Clone + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The kind: its name, spec keys, `--help` line, aliases, task and whether it passes its
    /// input through, e.g. `Kind::new("minmax", &["lo", "hi"], "minmax(lo=0, hi=1): ...")`.
    const KIND: Kind;
    /// Local statistics.
    type Partial: Partial;
    /// The trained model.
    type Model: Transform;
    /// Read the parameters from a flow spec (`kind(key=value, ...)`); the driver has already
    /// refused keys that are not in `KIND.keys`.
    fn from_spec(spec: &NodeSpec) -> Result<Self>;
    /// The spec as written back into model files and logs, e.g. `minmax(lo=0, hi=1)`. It names
    /// every parameter not at its default: it is the model's `flow` line, which `--update`
    /// trains on from ([`crate::nodes::spec_text`] writes one).
    fn spec(&self) -> String;
    /// Refuse parameters out of range or in a combination that cannot train (`n=0`, a
    /// negative smoothing), however they were made: from a spec, as a struct in a program, or
    /// read from a file. `from_spec` only parses; the driver runs this when a node is built
    /// from a spec and again when training begins.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
    /// The columns the parameters name besides the features: regression targets or a class
    /// label. The driver renames those given by index (`target=20`) to the data's names, has
    /// the flow read them beside the features, and stops the training on every rank when one
    /// is not in the data or the label is not given.
    fn columns(&mut self) -> Columns<'_> {
        Columns::None
    }
    /// Check the parameters against the input (e.g. a size larger than the input dimension).
    fn check(&self, _schema: &Schema) -> Result<()> {
        Ok(())
    }
    /// Refuse rows this node cannot take (mnb: a negative count) before they reach the
    /// partial, naming the row with [`Error::Row`] (the driver names the file and line) and the
    /// column by its name in `schema`. Checking here keeps the partial pure statistics: one read
    /// back from a cache or an old model has no schema to name columns with.
    fn check_rows(&self, _chunk: &Chunk, _schema: &Schema) -> Result<()> {
        Ok(())
    }
    /// How many f64 values the partial holds for `d` input columns, so a size that cannot fit
    /// in memory is a clear error before anything is allocated (default: a d × d matrix).
    fn state_elements(&self, d: usize) -> u128 {
        (d as u128) * (d as u128)
    }
    /// The node keeps every row it is given until it trains (k-means): the flow then hands it
    /// memory-mapped NPY rows ([`Chunk::mapped`]) that it can keep without a copy, and it keeps
    /// no per-shard partials.
    const KEEPS_ROWS: bool = false;
    /// Passes over the data the node needs (hist: the range, then the counts; fda: the class
    /// means, then the scatter about them). Each pass after the first starts from
    /// [`NodeParams::next_pass`]; a node of several passes keeps no per-shard partials.
    const PASSES: usize = 1;
    /// The empty partial for inputs with this schema.
    fn partial(&self, schema: &Schema) -> Self::Partial;
    /// Nodes of several passes: the empty partial of pass `pass` (1, 2, ...) from the joined
    /// partial of the pass before, the same on every rank.
    fn next_pass(&self, _pass: usize, _joined: Self::Partial, _schema: &Schema) -> Result<Self::Partial> {
        Err(Error::Fit(format!("{}: a node of one pass has no next pass", Self::KIND.name)))
    }
    /// The first pass's partial, once per training, before the rows arrive: the place to
    /// resolve what the parameters point at (k-means reads a centroid file, which sets k, or
    /// the checkpoint to resume from, into its partial: training state lives in the partial,
    /// never in the parameters). Local; an error ends the training on every rank. The default
    /// is [`NodeParams::partial`].
    fn start(&mut self, schema: &Schema) -> Result<Self::Partial> {
        Ok(self.partial(schema))
    }
    /// Iterative nodes: where to checkpoint, and whether to resume (`train --checkpoint`,
    /// `--resume`). Returns whether the node checkpoints (the default: no, it ignores them).
    fn set_checkpoint(&mut self, _path: Option<std::path::PathBuf>, _resume: bool) -> bool {
        false
    }
    /// Collective: the model from this rank's partial of the last pass. The default joins the
    /// partials of all ranks and finalizes them; an iterative node (k-means) trains on the rows
    /// each rank keeps instead, with [`crate::nodes::iterate`].
    fn train(&self, comm: &dyn Comm, mine: Self::Partial, schema: &Schema) -> Result<Self::Model> {
        let all = crate::comm::agree(comm, mine.join(comm))?;
        self.finalize(all, schema)
    }
    /// The trained model from the merged partial of all ranks.
    fn finalize(&self, all: Self::Partial, schema: &Schema) -> Result<Self::Model>;
    /// This kind's JSON from an older model file in today's layout (see
    /// [`crate::nodes::Node::to_json`]), or None when `node` has it already (the default: every
    /// layout is today's). A new value, not an edit in place, so that reading a current file
    /// does not copy its arrays: a wide model's JSON tree is gigabytes.
    fn upgrade(_node: &serde_json::Value) -> Option<serde_json::Value> {
        None
    }
}

/// Local statistics of a node.
pub trait Partial: Serialize + DeserializeOwned + Send + Sync {
    /// True for the partial of a node that learns nothing from rows (an expansion fixed by its
    /// parameters): the flow trains it without reading the data for it.
    const EMPTY: bool = false;
    /// Accumulate a chunk of this rank's rows (an error is about the data: name the row with
    /// [`Error::Row`] and the driver names the file and line).
    fn update(&mut self, chunk: &Chunk) -> Result<()>;
    /// Merge another partial into this one, as if this one had seen its rows too.
    fn merge(&mut self, other: Self);
    /// An error unless `other` (read from bytes: a cache entry, an old model) has this
    /// partial's shape, so that [`Partial::merge`] may assume it.
    fn fits(&self, _other: &Self) -> Result<()> {
        Ok(())
    }
    /// Collective: the partial of all ranks, bit-identical on every rank. The default gathers
    /// every rank's partial everywhere and merges them in rank order, which any partial can
    /// do; statistics that are sums override it with an allreduce (payload independent of the
    /// number of ranks), as [`crate::stats::Scatter`] does.
    fn join(self, comm: &dyn Comm) -> Result<Self>
    where
        Self: Sized,
    {
        gather_merge(comm, self)
    }
    /// A partial that keeps its rows ([`NodeParams::KEEPS_ROWS`]), under `train
    /// --reproducible`: the rows so far end leaf `index` of the canonical order, so that
    /// training can sum per leaf with [`crate::comm::tree::sum`]. The default ignores it.
    fn end_leaf(&mut self, _index: u64) {}
    /// Bytes for the per-shard cache and for models that keep their partials (default:
    /// bincode of the serde form).
    fn encode(&self) -> Result<Vec<u8>> {
        bincode::serialize(self).map_err(|e| Error::Fit(format!("cannot encode a partial: {e}")))
    }
    /// Read bytes written by [`Partial::encode`].
    fn decode(bytes: &[u8]) -> Result<Self>
    where
        Self: Sized,
    {
        bincode::deserialize(bytes).map_err(|e| Error::Fit(format!("a partial does not decode: {e}")))
    }
}

/// The partial of a node that needs no statistics (an expansion fixed by its parameters).
impl Partial for () {
    const EMPTY: bool = true;
    fn update(&mut self, _chunk: &Chunk) -> Result<()> {
        Ok(())
    }
    fn merge(&mut self, _other: Self) {}
    fn join(self, _comm: &dyn Comm) -> Result<Self> {
        Ok(())
    }
}

/// [`Partial::join`]'s default: every rank's partial, merged in rank order on every rank (the
/// same bits everywhere).
pub fn gather_merge<T: Partial>(comm: &dyn Comm, mine: T) -> Result<T> {
    let bytes = mine.encode()?;
    drop(mine);
    let mut merged: Option<T> = None;
    for (r, b) in comm.allgather_bytes(&bytes).iter().enumerate() {
        let p = T::decode(b).map_err(|e| Error::Fit(format!("rank {r}'s partial: {e}")))?;
        match merged.as_mut() {
            None => merged = Some(p),
            Some(m) => m.merge(p),
        }
    }
    Ok(merged.expect("at least one rank"))
}

/// What every trained model tells besides its output: whether it is consistent, lines for
/// `flowmpi inspect`, and warnings. The defaults say nothing (`impl Report for M {}`).
pub trait Report {
    /// A model read from a file: check its arrays against each other and the input columns
    /// (shapes, finite values), so a damaged model is a clear error instead of a panic.
    fn check_loaded(&self, _input: &[String]) -> Result<()> {
        Ok(())
    }
    /// Lines for `flowmpi inspect` (`input`: the input column names; `full`: every value of
    /// long arrays, `inspect --full`, else their first few).
    fn summary(&self, _input: &[String], _full: bool) -> Vec<String> {
        Vec::new()
    }
    /// What the user should know about the result (k-means stopped by `max_iter`); the flow
    /// prints them as warnings.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A trained node. The defaults pass the input through unchanged, which is what a statistics
/// node (a [`Kind`] marked `passthrough`) is; a node that maps its rows implements
/// `output_names` and `transform`.
pub trait Transform: Report + Serialize + DeserializeOwned + Send + Sync {
    /// Output column names for these input column names.
    fn output_names(&self, input: &[String]) -> Vec<String> {
        input.to_vec()
    }
    /// Map rows.
    fn transform(&self, x: ArrayView2<f64>) -> Array2<f64> {
        x.to_owned()
    }
    /// Map outputs back to inputs, where the model can (PCA reconstructs).
    fn inverse(&self, _y: ArrayView2<f64>) -> Option<Array2<f64>> {
        None
    }
    /// The predictions alone (targets, class, cluster); a plain transform's are its output.
    fn predict(&self, x: ArrayView2<f64>) -> Array2<f64> {
        self.transform(x)
    }
    /// Classifiers: the class labels; the first prediction column holds an index into them.
    fn classes(&self) -> Option<&[String]> {
        None
    }
    /// Classifiers: each row's log-probability of every class (rows × classes), written after
    /// the predictions by `execute --proba`.
    fn log_proba(&self, _x: ArrayView2<f64>) -> Option<Array2<f64>> {
        None
    }
}

/// A trained supervised or clustering model. Its output is its input with the predictions
/// appended, `[x | predict(x)]`, as `flowmpi execute` writes it: implementing `Predict` gives
/// the [`Transform`].
pub trait Predict: Report + Serialize + DeserializeOwned + Send + Sync {
    /// Names of the prediction columns (`y_pred`, ...).
    fn prediction_names(&self) -> Vec<String>;
    /// The predictions for rows `x`, one row each.
    fn predict(&self, x: ArrayView2<f64>) -> Array2<f64>;
    /// As [`Transform::classes`].
    fn classes(&self) -> Option<&[String]> {
        None
    }
    /// As [`Transform::log_proba`].
    fn log_proba(&self, _x: ArrayView2<f64>) -> Option<Array2<f64>> {
        None
    }
}

impl<T: Predict> Transform for T {
    fn output_names(&self, input: &[String]) -> Vec<String> {
        input.iter().cloned().chain(self.prediction_names()).collect()
    }
    fn transform(&self, x: ArrayView2<f64>) -> Array2<f64> {
        ndarray::concatenate![ndarray::Axis(1), x, Predict::predict(self, x)]
    }
    fn predict(&self, x: ArrayView2<f64>) -> Array2<f64> {
        Predict::predict(self, x)
    }
    fn classes(&self) -> Option<&[String]> {
        Predict::classes(self)
    }
    fn log_proba(&self, x: ArrayView2<f64>) -> Option<Array2<f64>> {
        Predict::log_proba(self, x)
    }
}

/// For [`NodeParams::upgrade`]: format v1 wrote a node's parameters beside its model's
/// fields; gather the keys `names` into today's `params` (when the file has none).
pub fn params_from_fields(node: &serde_json::Value, names: &[&str]) -> Option<serde_json::Value> {
    if node.get("params").is_some() {
        return None;
    }
    let params: serde_json::Map<_, _> = names.iter().filter_map(|k| Some((k.to_string(), node.get(*k)?.clone()))).collect();
    let mut node = node.clone();
    node["params"] = params.into();
    Some(node)
}

pub use super::driver::Defined;
pub use super::registry::register;
