//! [`Defined`]: the generic SPMD driver that runs a [`NodeParams`] kind as a flow [`Node`]. It
//! owns the communication (joins, agreed errors, passes, collective training), the per-shard
//! partials and the model file's layout.

use super::define::{Columns, NodeParams, Partial, Report, Transform};
use super::{Node, NodeSpec, Task};
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::{Chunk, Schema};
use ndarray::{Array2, ArrayView2};
use serde::Deserialize;

/// Run a node's own code (its statistics, its fit), a panic becoming this rank's error: every
/// caller agrees errors over the ranks, so a panicking node ends training with an error on
/// every rank, in a library as in the CLI (see [`crate::panics`]).
fn guarded<T>(kind: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    crate::panics::catch(f).unwrap_or_else(|m| Err(Error::Fit(format!("node {kind} panicked: {m}"))))
}

/// The generic driver: a [`NodeParams`] kind as a flow [`Node`].
///
/// In model files a node is one JSON object: `kind`, `params` (the [`NodeParams`]), `columns`
/// (the input column names) and the model's own fields beside them. A model that needs its
/// parameters (a target's name for its prediction column) may hold them in a field named
/// `params`: it is the same JSON entry, written once.
pub struct Defined<P: NodeParams> {
    params: P,
    columns: Vec<String>,
    model: Option<P::Model>,
    /// While training: the input, the partial and the pass it belongs to (0, 1, ...).
    training: Option<(Schema, P::Partial, usize)>,
    /// After the first pass: the pass's empty partial, encoded, which `take_partial` leaves
    /// (an empty partial of a later pass holds what the earlier passes found).
    fresh: Vec<u8>,
    /// `execute --proba`: classifiers also write their class log-probabilities.
    proba: bool,
}

impl<P: NodeParams + Default> Default for Defined<P> {
    fn default() -> Self {
        Defined::new(P::default())
    }
}

impl<P: NodeParams> Defined<P> {
    /// An untrained node with these parameters.
    pub fn new(params: P) -> Self {
        Defined { params, columns: Vec::new(), model: None, training: None, proba: false, fresh: Vec::new() }
    }

    /// An untrained node from a flow spec (`pca(n=3)`).
    pub fn from_spec(spec: &NodeSpec) -> Result<Self> {
        spec.check_keys(P::KIND.keys)?;
        let params = P::from_spec(spec)?;
        params.validate()?;
        Ok(Defined::new(params))
    }

    /// The parameters.
    pub fn params(&self) -> &P {
        &self.params
    }

    /// The trained model (None before training).
    pub fn model(&self) -> Option<&P::Model> {
        self.model.as_ref()
    }

    /// The input column names (after training).
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Read a node from its model-file JSON (older layouts through [`NodeParams::upgrade`]).
    pub fn from_json(v: &serde_json::Value) -> Result<Self> {
        let upgraded = P::upgrade(v);
        let v = upgraded.as_ref().unwrap_or(v);
        let bad = |e: serde_json::Error| Error::Model(format!("node '{}': {e}", P::KIND.name));
        let empty = serde_json::json!({});
        let params = P::deserialize(v.get("params").unwrap_or(&empty)).map_err(bad)?;
        let columns = Vec::<String>::deserialize(v.get("columns").unwrap_or(&serde_json::Value::Null)).map_err(bad)?;
        let model = P::Model::deserialize(v).map_err(bad)?;
        Ok(Defined { params, columns, model: Some(model), training: None, proba: false, fresh: Vec::new() })
    }

    /// `out` with the class log-probabilities of rows `x` appended, under `--proba`.
    fn with_proba(&self, out: Array2<f64>, x: ArrayView2<f64>) -> Array2<f64> {
        match self.proba.then(|| self.model.as_ref().and_then(|m| m.log_proba(x))).flatten() {
            Some(logp) => ndarray::concatenate![ndarray::Axis(1), out, logp],
            None => out,
        }
    }

    /// Stop when a target or label column the parameters name is not in the input.
    fn check_columns(&mut self, schema: &Schema) -> Result<()> {
        let kind = P::KIND.name;
        match self.params.columns() {
            Columns::Targets(t) => schema.target_indices(kind, t).map(drop),
            Columns::Label(None) => Err(Error::Param(format!("{kind}: give the label column, e.g. {kind}(label=class)"))),
            Columns::Label(Some(l)) if schema.label.as_ref() != Some(l) => Err(Error::Param(format!("{kind}: the label column '{l}' is not in the data"))),
            _ => Ok(()),
        }
    }

    /// The model, or an error naming the node: executing an untrained node is a caller's
    /// mistake to report, not a panic.
    fn trained(&self) -> Result<&P::Model> {
        self.model.as_ref().ok_or_else(|| super::untrained(P::KIND.name))
    }
}

impl<P: NodeParams> Node for Defined<P> {
    fn kind(&self) -> &'static str {
        P::KIND.name
    }
    fn spec(&self) -> String {
        self.params.spec()
    }
    fn passthrough(&self) -> bool {
        P::KIND.passthrough
    }
    fn needs_rows(&self) -> bool {
        !<P::Partial as Partial>::EMPTY
    }
    fn task(&self) -> Task {
        P::KIND.task
    }
    fn targets(&self) -> Vec<String> {
        match self.params.clone().columns() {
            Columns::Targets(t) => t.clone(),
            _ => Vec::new(),
        }
    }
    fn label(&self) -> Option<String> {
        match self.params.clone().columns() {
            Columns::Label(l) => l.clone(),
            _ => None,
        }
    }
    fn resolve_columns(&mut self, name_of: &dyn Fn(&str) -> String) {
        match self.params.columns() {
            Columns::Targets(t) => t.iter_mut().for_each(|c| *c = name_of(c)),
            Columns::Label(Some(l)) => *l = name_of(l),
            _ => {}
        }
    }
    fn predict(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        let model = self.trained()?;
        if x.ncols() != self.columns.len() {
            return Err(Error::Model(format!("{}: rows of {} columns, but it was trained on {}", P::KIND.name, x.ncols(), self.columns.len())));
        }
        Ok(self.with_proba(model.predict(x), x))
    }
    fn classes(&self) -> Option<&[String]> {
        self.model.as_ref()?.classes()
    }
    fn set_proba(&mut self, on: bool) {
        self.proba = on;
    }
    fn state_elements(&self, d: usize) -> u128 {
        self.params.state_elements(d)
    }
    fn begin(&mut self, schema: &Schema) -> Result<()> {
        self.check_columns(schema)?;
        let partial = guarded(P::KIND.name, || {
            self.params.validate()?;
            self.params.check(schema)?;
            self.params.start(schema)
        })?;
        self.columns = schema.x.clone();
        self.training = Some((schema.clone(), partial, 0));
        Ok(())
    }
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        let (schema, partial, pass) = self.training.as_mut().ok_or_else(|| super::untrained(P::KIND.name))?;
        let (params, fresh, pass) = (&self.params, &self.fresh, *pass);
        guarded(P::KIND.name, || {
            params.check_rows(chunk, schema)?;
            if P::KEEPS_ROWS || crate::threads::parts(chunk.rows(), chunk.x.ncols()).len() < 2 {
                return partial.update(chunk);
            }
            // Each part into an empty partial of this pass, on the rank's threads; merged in
            // part order, so that the thread count changes no bit.
            let each = crate::threads::map_parts(chunk.rows(), chunk.x.ncols(), |r| {
                let mut p = if pass == 0 { params.partial(schema) } else { P::Partial::decode(fresh)? };
                p.update(&chunk.part(r.clone())).map_err(|e| e.rows_from(r.start))?;
                Ok::<_, Error>(p)
            });
            for p in each {
                partial.merge(p?);
            }
            Ok(())
        })
    }
    fn join(&mut self, comm: &dyn Comm) -> Result<()> {
        let (schema, mine, pass) = self.training.take().ok_or_else(|| super::untrained(P::KIND.name))?;
        if pass + 1 < P::PASSES {
            let all = crate::comm::agree(comm, guarded(P::KIND.name, || mine.join(comm)))?;
            let next = crate::comm::agree(comm, guarded(P::KIND.name, || self.params.next_pass(pass + 1, all, &schema)))?;
            self.fresh = crate::comm::agree(comm, guarded(P::KIND.name, || next.encode()))?;
            self.training = Some((schema, next, pass + 1));
            return Ok(());
        }
        let model = crate::comm::agree(comm, guarded(P::KIND.name, || self.params.train(comm, mine, &schema)))?;
        self.model = Some(model);
        Ok(())
    }
    fn another_pass(&self) -> bool {
        // After a join, training goes on only when another pass began.
        self.training.is_some()
    }
    fn keeps_partials(&self) -> bool {
        P::PASSES == 1 && !P::KEEPS_ROWS
    }
    fn keeps_rows(&self) -> bool {
        P::KEEPS_ROWS
    }
    fn set_checkpoint(&mut self, path: Option<std::path::PathBuf>, resume: bool) -> bool {
        self.params.set_checkpoint(path, resume)
    }
    fn warnings(&self) -> Vec<String> {
        self.model.as_ref().map(|m| m.warnings()).unwrap_or_default()
    }
    fn reproducible(&self) -> bool {
        true
    }
    fn end_leaf(&mut self, index: u64) -> Result<Option<Vec<u8>>> {
        if !P::KEEPS_ROWS {
            return self.take_partial().map(Some);
        }
        let (_, partial, _) = self.training.as_mut().ok_or_else(|| super::untrained(P::KIND.name))?;
        partial.end_leaf(index);
        Ok(None)
    }
    fn take_partial(&mut self) -> Result<Vec<u8>> {
        if P::KEEPS_ROWS {
            return Err(Error::Fit(format!("{} keeps no partial statistics (it keeps rows)", self.spec())));
        }
        let (schema, partial, pass) = self.training.as_mut().ok_or_else(|| super::untrained(P::KIND.name))?;
        let empty = if *pass == 0 { self.params.partial(schema) } else { P::Partial::decode(&self.fresh)? };
        std::mem::replace(partial, empty).encode()
    }
    fn merge_partial(&mut self, bytes: &[u8]) -> Result<()> {
        let (_, partial, _) = self.training.as_mut().ok_or_else(|| super::untrained(P::KIND.name))?;
        let other = P::Partial::decode(bytes)?;
        partial.fits(&other)?;
        partial.merge(other);
        Ok(())
    }
    fn input_dim(&self) -> usize {
        self.columns.len()
    }
    fn output_names(&self) -> Vec<String> {
        match &self.model {
            _ if P::KIND.passthrough => self.columns.clone(),
            Some(m) => {
                let logp = m.classes().filter(|_| self.proba).unwrap_or_default().iter().map(|c| format!("logp_{c}"));
                m.output_names(&self.columns).into_iter().chain(logp).collect()
            }
            None => Vec::new(),
        }
    }
    fn execute(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        let model = self.trained()?;
        if x.ncols() != self.columns.len() {
            return Err(Error::Model(format!("{}: rows of {} columns, but it was trained on {}", P::KIND.name, x.ncols(), self.columns.len())));
        }
        if P::KIND.passthrough {
            return Ok(x.to_owned());
        }
        Ok(self.with_proba(model.transform(x), x))
    }
    fn inverse(&self, y: ArrayView2<f64>) -> Option<Array2<f64>> {
        if P::KIND.passthrough {
            return Some(y.to_owned());
        }
        self.model.as_ref()?.inverse(y)
    }
    fn check_model(&self) -> Result<()> {
        match &self.model {
            Some(m) => m.check_loaded(&self.columns),
            None => Err(Error::Model(format!("node {}: the model file holds no trained model", P::KIND.name))),
        }
    }
    fn summary(&self, full: bool) -> Vec<String> {
        match &self.model {
            Some(m) => m.summary(&self.columns, full),
            None => vec!["not trained".into()],
        }
    }
    fn to_json(&self) -> serde_json::Value {
        let mut node = serde_json::Map::new();
        node.insert("kind".into(), P::KIND.name.into());
        node.insert("params".into(), serde_json::to_value(&self.params).expect("parameters serialise"));
        node.insert("columns".into(), self.columns.clone().into());
        if let Some(serde_json::Value::Object(fields)) = self.model.as_ref().map(|m| serde_json::to_value(m).expect("a model serialises")) {
            node.extend(fields);
        }
        serde_json::Value::Object(node)
    }
}
