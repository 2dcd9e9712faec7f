//! The one registry of node kinds: how each is built from a flow spec and read from a model
//! file, for the built-in kinds ([`super::defined`]) and the kinds a program registers.

use super::define::{Defined, NodeParams};
use super::{Node, NodeSpec, Task};
use crate::error::{Error, Result};
use std::sync::Mutex;

/// A node kind as flow specs, model files and `train --help` know it ([`NodeParams::KIND`]).
/// Built with [`Kind::new`] and the `const` modifiers, so a kind's identity is one line.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// Name in flow specs and model files (lower case, letters, digits and `_`).
    pub name: &'static str,
    /// The spec keys the kind reads: a spec with any other key is refused before
    /// [`NodeParams::from_spec`] runs, naming the known ones.
    pub keys: &'static [&'static str],
    /// One line for `flowmpi train --help`'s node list: the spec with its parameters and what
    /// the node does, e.g. `pca(n=K | var=F, method=cov|corr): principal components`.
    pub usage: &'static str,
    /// Other names the flow parser accepts (`cov` for `covariance`).
    pub aliases: &'static [&'static str],
    /// What the output means, for `flowmpi score` (predictors: implement
    /// [`Predict`](super::define::Predict)).
    pub task: Task,
    /// A statistics node: its output is its input (moments, covariance), so a flow skips it
    /// when executing and `inverse` is the identity.
    pub passthrough: bool,
}

impl Kind {
    /// A transform named `name` that reads the spec keys `keys`, described by `usage`.
    pub const fn new(name: &'static str, keys: &'static [&'static str], usage: &'static str) -> Kind {
        Kind { name, keys, usage, aliases: &[], task: Task::Transform, passthrough: false }
    }
    /// Also accepted under `aliases` in flow specs.
    pub const fn aliases(self, aliases: &'static [&'static str]) -> Kind {
        Kind { aliases, ..self }
    }
    /// Its output means `task` (regression, classification, clustering).
    pub const fn task(self, task: Task) -> Kind {
        Kind { task, ..self }
    }
    /// A statistics node, whose output is its input.
    pub const fn passthrough(self) -> Kind {
        Kind { passthrough: true, ..self }
    }
    /// True when `name` names this kind.
    pub fn names(&self, name: &str) -> bool {
        self.name == name || self.aliases.contains(&name)
    }
}

/// How a kind is built from a spec and read from a model file: one entry per kind, for the
/// built-in kinds and the registered ones alike.
pub(crate) struct Entry {
    pub(crate) kind: Kind,
    build: fn(&NodeSpec) -> Result<Box<dyn Node>>,
    load: fn(&serde_json::Value) -> Result<Box<dyn Node>>,
}

impl Entry {
    /// The entry of kind `P`.
    pub(crate) fn of<P: NodeParams>() -> Entry {
        Entry {
            kind: P::KIND,
            build: |spec| Ok(Box::new(Defined::<P>::from_spec(spec)?)),
            load: |v| Defined::<P>::from_json(v).map(|n| Box::new(n) as Box<dyn Node>),
        }
    }

    /// True when `name` names this kind.
    pub(crate) fn names(&self, name: &str) -> bool {
        self.kind.names(name)
    }

    /// Build an untrained node from its spec.
    pub(crate) fn build(&self, spec: &NodeSpec) -> Result<Box<dyn Node>> {
        (self.build)(spec)
    }

    /// Read a trained node from model-file JSON.
    pub(crate) fn load(&self, v: &serde_json::Value) -> Result<Box<dyn Node>> {
        (self.load)(v)
    }
}

static REGISTRY: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// Make the node kind `P` known to flow specs (`Flow::parse`) and model files (`Model::flow`)
/// in this process. Call it on every rank before parsing a flow; registering twice is harmless.
/// A kind may not shadow a built-in one.
pub fn register<P: NodeParams>() -> Result<()> {
    if let Some(name) = std::iter::once(P::KIND.name).chain(P::KIND.aliases.iter().copied()).find(|n| super::is_builtin(n)) {
        return Err(Error::Param(format!("node kind '{name}' is built in")));
    }
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    if reg.iter().any(|e| e.kind.name == P::KIND.name) {
        return Ok(());
    }
    reg.push(Entry::of::<P>());
    Ok(())
}

/// Build a registered kind from its spec (None: not registered).
pub(crate) fn build(spec: &NodeSpec) -> Option<Result<Box<dyn Node>>> {
    let reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    reg.iter().find(|e| e.names(&spec.kind)).map(|e| e.build(spec))
}

/// Read a registered kind from model-file JSON (None: not registered).
pub(crate) fn load(kind: &str, v: &serde_json::Value) -> Option<Result<Box<dyn Node>>> {
    let reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    reg.iter().find(|e| e.kind.name == kind).map(|e| e.load(v))
}

/// Registered kinds, for messages.
pub(crate) fn kinds() -> Vec<&'static str> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|e| e.kind.name).collect()
}

/// Registered kinds' usage lines, for `--help`.
pub(crate) fn usages() -> Vec<&'static str> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|e| if e.kind.usage.is_empty() { e.kind.name } else { e.kind.usage }).collect()
}
