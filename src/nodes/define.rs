//! Nodes anyone can write, outside the crate: three small pieces, as MDP's `_fork`/`_join` and
//! oneDAL's partial / merge / finalize.
//!
//! - [`NodeParams`]: the node's typed parameters, read from the flow spec and checked against the
//!   input; it creates the empty [`Partial`] and finalizes a merged one into the trained model.
//! - [`Partial`]: local statistics: `update` with this rank's rows, `merge` another rank's
//!   (pure: no `Comm`). It travels between ranks by serde.
//! - [`Transform`]: the trained model, immutable: output names and `transform`.
//!
//! The driver ([`Defined`], which implements [`Node`]) owns the communication: every rank's
//! partial is gathered everywhere and merged in rank order, so the model is identical on every
//! rank, and errors are agreed like every built-in node's. [`register`] makes the kind known to
//! flow specs and model files. See `examples/custom_node.rs`.

use super::{Node, NodeSpec};
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::{Chunk, Schema};
use ndarray::{Array2, ArrayView2};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// A node's parameters: the node kind's entry point.
pub trait NodeParams: Clone + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Kind name in flow specs and model files (lower case, letters, digits and `_`).
    const KIND: &'static str;
    /// Local statistics.
    type Partial: Partial;
    /// The trained model.
    type Model: Transform;
    /// Read the parameters from a flow spec (`kind(key=value, ...)`); refuse unknown keys with
    /// [`NodeSpec::check_keys`].
    fn from_spec(spec: &NodeSpec) -> Result<Self>;
    /// The spec as written back into model files and logs, e.g. `minmax(lo=0, hi=1)`.
    fn spec(&self) -> String;
    /// Check the parameters against the input (e.g. a size larger than the input dimension).
    fn check(&self, _schema: &Schema) -> Result<()> {
        Ok(())
    }
    /// The empty partial for inputs with this schema.
    fn partial(&self, schema: &Schema) -> Self::Partial;
    /// The trained model from the merged partial of all ranks.
    fn finalize(&self, all: Self::Partial, schema: &Schema) -> Result<Self::Model>;
}

/// Local statistics of a node.
pub trait Partial: Serialize + DeserializeOwned + Send + Sync {
    /// Accumulate a chunk of this rank's rows (an error is about the data: name the row with
    /// [`Error::Row`] and the driver names the file and line).
    fn update(&mut self, chunk: &Chunk) -> Result<()>;
    /// Merge another partial into this one, as if this one had seen its rows too.
    fn merge(&mut self, other: Self);
}

/// A trained node.
pub trait Transform: Serialize + DeserializeOwned + Send + Sync {
    /// Output column names for these input column names.
    fn output_names(&self, input: &[String]) -> Vec<String>;
    /// Map rows.
    fn transform(&self, x: ArrayView2<f64>) -> Array2<f64>;
    /// Lines for `flowmpi inspect`.
    fn summary(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The generic driver: a [`NodeParams`] kind as a flow [`Node`].
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Defined<P: NodeParams> {
    params: P,
    #[serde(default)]
    input_columns: Vec<String>,
    model: Option<P::Model>,
    #[serde(skip)]
    training: Option<(Schema, P::Partial)>,
}

impl<P: NodeParams> Defined<P> {
    /// An untrained node with these parameters.
    pub fn new(params: P) -> Self {
        Defined { params, input_columns: Vec::new(), model: None, training: None }
    }

    /// The trained model (None before training).
    pub fn model(&self) -> Option<&P::Model> {
        self.model.as_ref()
    }
}

impl<P: NodeParams> Node for Defined<P> {
    fn kind(&self) -> &'static str {
        P::KIND
    }
    fn spec(&self) -> String {
        self.params.spec()
    }
    fn begin(&mut self, schema: &Schema) -> Result<()> {
        self.params.check(schema)?;
        self.input_columns = schema.x.clone();
        self.training = Some((schema.clone(), self.params.partial(schema)));
        Ok(())
    }
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        let (_, partial) = self.training.as_mut().ok_or_else(|| super::untrained(P::KIND))?;
        partial.update(chunk)
    }
    fn join(&mut self, comm: &dyn Comm) -> Result<()> {
        let (schema, mine) = self.training.take().ok_or_else(|| super::untrained(P::KIND))?;
        let bytes = bincode::serialize(&mine).map_err(|e| Error::Fit(format!("{}: cannot encode the partial: {e}", P::KIND)))?;
        drop(mine);
        // Merged in rank order on every rank: the same bits everywhere.
        let mut merged: Option<P::Partial> = None;
        for (r, b) in comm.allgather_bytes(&bytes).iter().enumerate() {
            let p: P::Partial = bincode::deserialize(b).map_err(|e| Error::Fit(format!("{}: rank {r}'s partial does not decode: {e}", P::KIND)))?;
            match merged.as_mut() {
                None => merged = Some(p),
                Some(m) => m.merge(p),
            }
        }
        let merged = merged.expect("at least one rank");
        let model = crate::comm::agree(comm, self.params.finalize(merged, &schema))?;
        self.model = Some(model);
        Ok(())
    }
    fn take_partial(&mut self) -> Option<Vec<u8>> {
        let (schema, partial) = self.training.as_mut()?;
        let old = std::mem::replace(partial, self.params.partial(schema));
        bincode::serialize(&old).ok()
    }
    fn merge_partial(&mut self, bytes: &[u8]) -> Result<()> {
        let (_, partial) = self.training.as_mut().ok_or_else(|| super::untrained(P::KIND))?;
        let other: P::Partial = bincode::deserialize(bytes).map_err(|e| Error::Fit(format!("{}: a stored partial does not decode: {e}", P::KIND)))?;
        partial.merge(other);
        Ok(())
    }
    fn input_dim(&self) -> usize {
        self.input_columns.len()
    }
    fn output_names(&self) -> Vec<String> {
        self.model.as_ref().map(|m| m.output_names(&self.input_columns)).unwrap_or_default()
    }
    fn execute(&self, x: ArrayView2<f64>) -> Array2<f64> {
        self.model.as_ref().expect("a trained node").transform(x)
    }
    fn check_model(&self) -> Result<()> {
        match self.model {
            Some(_) => Ok(()),
            None => Err(Error::Model(format!("node {}: the model file holds no trained model", P::KIND))),
        }
    }
    fn summary(&self) -> Vec<String> {
        self.model.as_ref().map(Transform::summary).unwrap_or_default()
    }
    fn to_json(&self) -> serde_json::Value {
        super::tagged(P::KIND, self)
    }
}

/// How a registered kind is built from a spec and read from a model file.
struct Entry {
    kind: &'static str,
    build: fn(&NodeSpec) -> Result<Box<dyn Node>>,
    load: fn(&serde_json::Value) -> Result<Box<dyn Node>>,
}

static REGISTRY: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// Make the node kind `P` known to flow specs (`Flow::parse`) and model files (`Model::flow`)
/// in this process. Call it on every rank before parsing a flow; registering twice is harmless.
/// A kind may not shadow a built-in one.
pub fn register<P: NodeParams>() -> Result<()> {
    if super::KINDS.contains(&P::KIND) {
        return Err(Error::Param(format!("node kind '{}' is built in", P::KIND)));
    }
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    if reg.iter().any(|e| e.kind == P::KIND) {
        return Ok(());
    }
    reg.push(Entry {
        kind: P::KIND,
        build: |spec| Ok(Box::new(Defined::new(P::from_spec(spec)?))),
        load: |v| {
            serde_json::from_value::<Defined<P>>(v.clone())
                .map(|n| Box::new(n) as Box<dyn Node>)
                .map_err(|e| Error::Model(format!("node '{}': {e}", P::KIND)))
        },
    });
    Ok(())
}

/// Build a registered kind from its spec (None: not registered).
pub(crate) fn build(spec: &NodeSpec) -> Option<Result<Box<dyn Node>>> {
    let reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    reg.iter().find(|e| e.kind == spec.kind).map(|e| (e.build)(spec))
}

/// Read a registered kind from model-file JSON (None: not registered).
pub(crate) fn load(kind: &str, v: &serde_json::Value) -> Option<Result<Box<dyn Node>>> {
    let reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    reg.iter().find(|e| e.kind == kind).map(|e| (e.load)(v))
}

/// Registered kinds, for messages.
pub(crate) fn kinds() -> Vec<&'static str> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|e| e.kind).collect()
}
