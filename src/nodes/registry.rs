//! The one registry of node kinds: how each is built from a flow spec and read from a model
//! file, for the built-in kinds ([`super::defined`]) and the kinds a program registers.

use super::define::{Defined, NodeParams};
use super::{Node, NodeSpec};
use crate::error::{Error, Result};
use std::sync::Mutex;

/// How a kind is built from a spec and read from a model file: one entry per kind, for the
/// built-in kinds and the registered ones alike.
pub(crate) struct Entry {
    pub(crate) kind: &'static str,
    pub(crate) aliases: &'static [&'static str],
    pub(crate) usage: &'static str,
    build: fn(&NodeSpec) -> Result<Box<dyn Node>>,
    load: fn(&serde_json::Value) -> Result<Box<dyn Node>>,
}

impl Entry {
    /// The entry of kind `P`.
    pub(crate) fn of<P: NodeParams>() -> Entry {
        Entry {
            kind: P::KIND,
            aliases: P::ALIASES,
            usage: P::USAGE,
            build: |spec| Ok(Box::new(Defined::new(P::from_spec(spec)?))),
            load: |v| Defined::<P>::from_json(v).map(|n| Box::new(n) as Box<dyn Node>),
        }
    }

    /// True when `name` names this kind.
    pub(crate) fn names(&self, name: &str) -> bool {
        self.kind == name || self.aliases.contains(&name)
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
    if let Some(name) = std::iter::once(P::KIND).chain(P::ALIASES.iter().copied()).find(|n| super::is_builtin(n)) {
        return Err(Error::Param(format!("node kind '{name}' is built in")));
    }
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    if reg.iter().any(|e| e.kind == P::KIND) {
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
    reg.iter().find(|e| e.kind == kind).map(|e| e.load(v))
}

/// Registered kinds, for messages.
pub(crate) fn kinds() -> Vec<&'static str> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|e| e.kind).collect()
}

/// Registered kinds' usage lines, for `--help`.
pub(crate) fn usages() -> Vec<&'static str> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|e| if e.usage.is_empty() { e.kind } else { e.usage }).collect()
}
