//! Nodes: one file each. A node is trained in three steps that mirror MDP's fork/join and
//! oneDAL's partial/merge/finalize: `begin` (fix the input), `update` (local partial statistics
//! from row chunks), `join` (collective merge across ranks + finalize, identical on all ranks).
//! After training, `execute` maps rows.

pub mod classes;
mod covariance;
pub mod define;
mod fda;
mod hist;
mod gnb;
mod kmeans;
mod layer;
mod mnb;
pub mod linreg;
pub mod moments;
mod pca;
mod poly;
mod ridge;
mod sfa;
mod sfa2;
mod svd;
mod whitening;

pub use covariance::{CovarianceModel, CovarianceNode, CovarianceParams};
pub use fda::{FdaModel, FdaNode, FdaParams};
pub use hist::{HistModel, HistNode, HistParams};
pub use poly::{PolyModel, PolyNode, PolyParams};
pub use sfa::{SfaModel, SfaNode, SfaParams};
pub use sfa2::{Sfa2Model, Sfa2Node, Sfa2Params};
pub use svd::{SvdModel, SvdNode, SvdParams};
pub use gnb::{GnbModel, GnbNode, GnbParams};
pub use kmeans::{Init as KmeansInit, KmeansNode};
pub use layer::LayerNode;
pub use mnb::{MnbModel, MnbNode, MnbParams};
pub use linreg::{LinregModel, LinregNode, LinregParams};
pub use moments::{MomentsModel, MomentsNode, MomentsParams};
pub use pca::{PcaMethod, PcaModel, PcaNode, PcaParams};
pub use ridge::{RidgeModel, RidgeNode, RidgeParams};
pub use whitening::{WhiteningModel, WhiteningNode, WhiteningParams};

use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::io::{Chunk, Schema};
use ndarray::{Array2, ArrayView2};
use std::collections::BTreeMap;

/// A trainable, executable node of a flow.
pub trait Node: Send + Sync {
    /// Short kind name used in flow specs and model files (`pca`, `moments`, ...).
    fn kind(&self) -> &'static str;
    /// Canonical spec, e.g. `pca(n=3)`.
    fn spec(&self) -> String;
    /// True for statistics nodes whose `execute` is the identity.
    fn passthrough(&self) -> bool {
        false
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
    fn predict(&self, x: ArrayView2<f64>) -> Array2<f64> {
        self.execute(x)
    }
    /// Class labels, for classifiers: `predict`'s first column holds an index into them.
    fn classes(&self) -> Option<&[String]> {
        None
    }
    /// Classifiers: also output per-class log-probabilities.
    fn set_proba(&mut self, _on: bool) {}
    /// Iterative nodes: write a checkpoint every iteration / resume from it.
    fn set_checkpoint(&mut self, _path: Option<std::path::PathBuf>, _resume: bool) {}
    /// True when the node keeps partial statistics that [`Node::take_partial`] can hand out
    /// (nodes of one pass that keep no rows), for the per-shard cache and `--keep-partials`.
    fn keeps_partials(&self) -> bool {
        false
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
    /// Map rows through the trained node.
    fn execute(&self, x: ArrayView2<f64>) -> Array2<f64>;
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
    /// Human-readable summary lines for `flowmpi inspect`.
    fn summary(&self) -> Vec<String>;
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
    let total = physical_memory();
    if bytes > total as u128 {
        return Err(Error::Param(format!(
            "{}: on {} input columns its state needs {:.3e} bytes, more than this machine's {:.1} GiB of memory; \
             choose a smaller size parameter or reduce the input first (e.g. pca)",
            node.spec(),
            schema.x.len(),
            bytes as f64,
            total as f64 / (1u64 << 30) as f64
        )));
    }
    Ok(())
}

/// Physical memory in bytes (`MemTotal`), or 1 TiB when it cannot be read.
fn physical_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| t.lines().find(|l| l.starts_with("MemTotal:"))?.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(1 << 40, |kib| kib * 1024)
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

/// A node as written in a flow spec: `pca(n=3, method=corr)`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    /// Node kind.
    pub kind: String,
    /// Parameters as written.
    pub params: BTreeMap<String, String>,
    /// The text between the parentheses, as written (layers parse their own).
    pub args: String,
}

impl NodeSpec {
    /// Parse `kind` or `kind(key=value, ...)`.
    pub fn parse(text: &str) -> Result<NodeSpec> {
        let t = text.trim();
        let (kind, args) = match t.find('(') {
            Some(i) => {
                let rest = t[i + 1..].trim_end();
                let inner = rest.strip_suffix(')').ok_or_else(|| Error::Param(format!("missing ')' in {t:?}")))?;
                (&t[..i], inner)
            }
            None => (t, ""),
        };
        let kind = kind.trim().to_ascii_lowercase();
        if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::Param(format!("bad node name in {t:?}")));
        }
        let mut params = BTreeMap::new();
        if layer::is_layer(&kind) {
            // `layer(pca(n=3) @ 0-9, ...)` holds node specs, not key=value pairs.
            return Ok(NodeSpec { kind, params, args: args.to_string() });
        }
        for kv in split_top_level(args).iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').ok_or_else(|| Error::Param(format!("expected key=value, got {kv:?} in {t:?}")))?;
            params.insert(k.trim().to_string(), v.trim().trim_matches(['"', '\'']).to_string());
        }
        Ok(NodeSpec { kind, params, args: args.to_string() })
    }

    /// A list parameter: `target=[y0,y1]`, `target="y0,y1"`, `target=y0;y1` or one value.
    pub fn get_list(&self, key: &str) -> Option<Vec<String>> {
        self.params.get(key).map(|v| {
            v.trim_matches(['[', ']']).split([',', ';']).map(|s| s.trim().trim_matches(['"', '\'']).to_string()).filter(|s| !s.is_empty()).collect()
        })
    }

    /// A boolean parameter (`true/false`, `yes/no`, `1/0`).
    pub fn get_bool(&self, key: &str, default: bool) -> Result<bool> {
        match self.params.get(key).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if ["true", "yes", "1", "on"].contains(&v.as_str()) => Ok(true),
            Some(v) if ["false", "no", "0", "off"].contains(&v.as_str()) => Ok(false),
            Some(v) => Err(Error::Param(format!("{}: {key} must be true or false, not {v:?}", self.kind))),
        }
    }

    /// Fail on parameters the node does not know.
    pub fn check_keys(&self, allowed: &[&str]) -> Result<()> {
        for k in self.params.keys() {
            if !allowed.contains(&k.as_str()) {
                let list = if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") };
                return Err(Error::Param(format!("{}: unknown parameter '{k}' (known: {list})", self.kind)));
            }
        }
        Ok(())
    }

    /// A parameter parsed as `T`, if given.
    pub fn get<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>> {
        self.params
            .get(key)
            .map(|v| v.parse::<T>().map_err(|_| Error::Param(format!("{}: cannot use {v:?} as {key}", self.kind))))
            .transpose()
    }
}

/// Split on commas outside brackets, parentheses and quotes.
pub(crate) fn split_top_level(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut quote, mut start) = (Vec::new(), 0i32, None, 0);
    for (i, c) in s.char_indices() {
        match (c, quote) {
            ('"' | '\'', None) => quote = Some(c),
            (q, Some(open)) if q == open => quote = None,
            ('[' | '(', None) => depth += 1,
            (']' | ')', None) => depth -= 1,
            (',', None) if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// The built-in kinds that implement [`Node`] themselves: kind, aliases, usage line.
const OWN: [(&str, &[&str], &str); 3] = [
    (
        "kmeans",
        &["k_means"],
        "kmeans(k=K, init=random|++|parallel|FILE, n_init=N, max_iter=300, tol=1e-4, seed=0): Lloyd's k-means",
    ),
    ("layer", &[], "layer(NODE @ COLUMNS, ...): nodes side by side on column groups, outputs concatenated, e.g. layer(pca(n=3) @ 0-9, sfa(n=2) @ [x10; x12])"),
    ("clone", &[], "clone(NODE, groups=G): one node trained on G equal column groups (their rows stacked), applied to each"),
];

/// Names of the node kinds this process knows: built in, then registered.
pub fn kinds() -> Vec<&'static str> {
    defined().iter().map(|e| e.kind).chain(OWN.iter().map(|o| o.0)).chain(define::kinds()).collect()
}

/// The node list of `flowmpi train --help`: one usage line per kind.
pub fn help() -> String {
    let defined = defined();
    let lines = defined.iter().map(|e| e.usage).chain(OWN.iter().map(|o| o.2)).chain(define::usages());
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
fn defined() -> [define::Entry; 14] {
    use define::Entry;
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
        "kmeans" | "k_means" => Box::new(KmeansNode::from_spec(spec)?),
        "layer" | "clone" => Box::new(LayerNode::from_spec(spec)?),
        k => {
            if let Some(node) = define::build(spec) {
                return node;
            }
            return Err(Error::Param(format!("unknown node '{k}' (known: {})", kinds().join(", "))));
        }
    })
}

/// Rebuild a trained node from its model-file JSON.
pub fn from_json(v: &serde_json::Value) -> Result<Box<dyn Node>> {
    let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    if let Some(e) = defined().iter().find(|e| e.kind == kind) {
        return e.load(v);
    }
    let bad = |e: serde_json::Error| Error::Model(format!("node '{kind}': {e}"));
    Ok(match kind {
        "kmeans" => Box::new(serde_json::from_value::<KmeansNode>(v.clone()).map_err(bad)?),
        "layer" => Box::new(LayerNode::from_json(v)?),
        k => match define::load(k, v) {
            Some(node) => node?,
            None => return Err(Error::Model(format!(
                "unknown node kind '{k}' (a node defined by a program: load the model with that program, which registers it)"))),
        },
    })
}

/// Serialize a node struct and tag it with its kind.
pub(crate) fn tagged<T: serde::Serialize>(kind: &str, node: &T) -> serde_json::Value {
    let mut v = serde_json::to_value(node).expect("node serialises");
    if let Some(m) = v.as_object_mut() {
        m.insert("kind".into(), kind.into());
    }
    v
}

/// Matrices are stored in model files as lists of rows: readable and easy to load in numpy.
pub(crate) mod rows {
    use ndarray::Array2;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialize as a list of rows.
    pub fn serialize<S: Serializer>(a: &Array2<f64>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(a.rows().into_iter().map(|r| r.to_vec()))
    }

    /// Deserialize from a list of rows.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Array2<f64>, D::Error> {
        let rows: Vec<Vec<f64>> = Vec::deserialize(d)?;
        let ncols = rows.first().map_or(0, |r| r.len());
        if rows.iter().any(|r| r.len() != ncols) {
            return Err(serde::de::Error::custom("ragged matrix"));
        }
        Array2::from_shape_vec((rows.len(), ncols), rows.concat()).map_err(serde::de::Error::custom)
    }
}

/// Vectors that may hold NaN (written as JSON null, read back as NaN).
pub(crate) mod nan_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialize, NaN as null.
    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|x| if x.is_nan() { None } else { Some(*x) }))
    }

    /// Deserialize, null as NaN.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let v: Vec<Option<f64>> = Vec::deserialize(d)?;
        Ok(v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
    }
}

/// Shape and value checks of a trained node's arrays, for [`Node::check_model`].
pub(crate) struct Shapes<'a>(pub &'a str);

impl Shapes<'_> {
    fn fail(&self, what: String) -> Error {
        Error::Model(format!("node {}: {what} (the model file is damaged or was edited; train it again)", self.0))
    }
    /// At least `min` of something.
    pub fn at_least(&self, name: &str, got: usize, min: usize) -> Result<()> {
        if got < min {
            return Err(self.fail(format!("{name} has {got} entries, expected at least {min}")));
        }
        Ok(())
    }
    /// Exactly `want` of something.
    pub fn count(&self, name: &str, got: usize, want: usize) -> Result<()> {
        if got != want {
            return Err(self.fail(format!("{name} has {got} entries, expected {want}")));
        }
        Ok(())
    }
    /// A vector of `len` finite values.
    pub fn vec(&self, name: &str, v: &[f64], len: usize) -> Result<()> {
        self.values(name, v.len(), len, v.iter(), |x| x.is_finite())
    }
    /// A `rows` × `cols` matrix of finite values.
    pub fn mat(&self, name: &str, m: &Array2<f64>, rows: usize, cols: usize) -> Result<()> {
        self.matrix(name, m, rows, cols, |x| x.is_finite())
    }
    fn matrix(&self, name: &str, m: &Array2<f64>, rows: usize, cols: usize, ok: fn(&f64) -> bool) -> Result<()> {
        if m.dim() != (rows, cols) {
            return Err(self.fail(format!("{name} is {}x{}, expected {rows}x{cols}", m.nrows(), m.ncols())));
        }
        self.values(name, 0, 0, m.iter(), ok)
    }
    /// A matrix of 1 to `cols` rows of `cols` finite values (components, projections).
    pub fn rows(&self, name: &str, m: &Array2<f64>, cols: usize) -> Result<()> {
        if m.nrows() == 0 || m.nrows() > cols.max(1) {
            return Err(self.fail(format!("{name} has {} rows, expected 1 to {cols}", m.nrows())));
        }
        self.mat(name, m, m.nrows(), cols)
    }
    /// Log-probabilities: −∞ is a valid value, NaN is not.
    pub fn log_vec(&self, name: &str, v: &[f64], len: usize) -> Result<()> {
        self.values(name, v.len(), len, v.iter(), |x| !x.is_nan() && *x != f64::INFINITY)
    }
    /// A `rows` × `cols` matrix of log-probabilities.
    pub fn log_mat(&self, name: &str, m: &Array2<f64>, rows: usize, cols: usize) -> Result<()> {
        self.matrix(name, m, rows, cols, |x| !x.is_nan() && *x != f64::INFINITY)
    }
    fn values<'v>(&self, name: &str, got: usize, want: usize, mut v: impl Iterator<Item = &'v f64>, ok: fn(&f64) -> bool) -> Result<()> {
        if got != want {
            return Err(self.fail(format!("{name} has {got} entries, expected {want}")));
        }
        match v.position(|x| !ok(x)) {
            Some(i) => Err(self.fail(format!("{name} holds a non-finite value at position {i}"))),
            None => Ok(()),
        }
    }
}

/// "not trained" error for nodes used before training.
pub(crate) fn untrained(kind: &str) -> Error {
    Error::Model(format!("{kind} node is not trained"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parsing() {
        let s = NodeSpec::parse(" PCA( n = 3, method=corr ) ").unwrap();
        assert_eq!(s.kind, "pca");
        assert_eq!(s.params["n"], "3");
        assert_eq!(s.params["method"], "corr");
        assert!(NodeSpec::parse("pca(n=3").is_err());
        let r = NodeSpec::parse("ridge(alpha=[0.1, 1,10], target=\"y0,y1\", intercept=false)").unwrap();
        assert_eq!(r.get_list("alpha").unwrap(), vec!["0.1", "1", "10"]);
        assert_eq!(r.get_list("target").unwrap(), vec!["y0", "y1"]);
        assert!(!r.get_bool("intercept", true).unwrap());
        assert!(NodeSpec::parse("pca(3)").is_err());
        assert!(build(&NodeSpec::parse("pca(m=3)").unwrap()).is_err());
        assert!(build(&NodeSpec::parse("nope").unwrap()).is_err());
    }

    use crate::testing::numbers;

    #[test]
    fn the_help_lists_every_kind_and_every_kind_builds() {
        let help = help();
        for k in kinds() {
            assert!(help.lines().any(|l| l.trim_start().starts_with(k) || l.contains(&format!("| {k}("))), "{k} missing from:\n{help}");
        }
        for e in defined() {
            assert!(!e.usage.is_empty() && e.usage.contains(':'), "{}: no usage line", e.kind);
            // Every name a usage line starts with parses (with the parameters it needs).
            for name in std::iter::once(e.kind).chain(e.aliases.iter().copied()) {
                let err = build(&NodeSpec::parse(name).unwrap()).err().map(|e| e.to_string()).unwrap_or_default();
                assert!(!err.contains("unknown node"), "{name}: {err}");
            }
        }
    }

    #[test]
    fn partials_merge_to_the_union_on_random_splits() {
        // merge(partial(A), partial(B), ...) = partial(A ∪ B ∪ ...): the property the per-shard
        // cache and --update rest on, for every node that keeps partials, with empty pieces and
        // merges in any order.
        let n = 211;
        let x = ndarray::Array2::from_shape_fn((n, 4), |(i, j)| 1e4 * (j == 0) as u8 as f64 + ((i * 37 + j * 11) % 17) as f64 * 0.3 + (i as f64 * 0.7 + j as f64).sin() + 1.0);
        let y = ndarray::Array2::from_shape_fn((n, 1), |(i, _)| 2.0 * x[[i, 1]] - x[[i, 2]] + (i as f64).cos());
        let labels: Vec<String> = (0..n).map(|i| ["p", "q", "r"][(i * i) % 7 % 3].to_string()).collect();
        let schema = Schema { x: ["a", "b", "c", "d"].map(String::from).to_vec(), y: vec!["t".into()], label: Some("k".into()) };
        let chunk = |r: std::ops::Range<usize>| Chunk { x: x.slice(ndarray::s![r.clone(), ..]), y: y.slice(ndarray::s![r.clone(), ..]), labels: &labels[r], ..Chunk::new(x.view()) };
        let comm = crate::comm::SingleComm;
        let mut state = 12345u64;
        let mut rand = |m: usize| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as usize % m
        };
        for spec in [
            "moments",
            "covariance",
            "pca(n=2)",
            "whitening(n=2)",
            "ridge(alpha=0.5, target=t)",
            "gnb(label=k)",
            "mnb(label=k)",
            "linreg(target=t)",
            "linreg(target=t, method=qr)",
            "linreg(target=t, method=qr, intercept=false)",
            "svd(k=3)",
            "sfa(n=2, contiguous=true)",
            "sfa2(n=2, contiguous=true)",
        ] {
            // SFA's rows are a time series: its pieces merge in time order (a piece boundary
            // is a shard boundary, which without `contiguous` breaks the series).
            let ordered = spec.starts_with("sfa");
            // sfa2 expands a column near 1e4 to 1e8-sized products: its ill-conditioned
            // generalised eigenproblem turns the sums' round-off into ~4e-6 of each entry (a
            // seam difference lost would move them by ~1e-3).
            let rel = if spec.starts_with("sfa2") { 2e-5 } else { 0.0 };
            let mut whole = build(&NodeSpec::parse(spec).unwrap()).unwrap();
            whole.begin(&schema).unwrap();
            whole.update(&chunk(0..n)).unwrap();
            whole.join(&comm).unwrap();
            let mut want = Vec::new();
            numbers(&whole.to_json(), &mut want);
            let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for _ in 0..6 {
                let mut cuts: Vec<usize> = (0..rand(6)).map(|_| rand(n + 1)).chain([0, n]).collect();
                cuts.sort();
                let mut node = build(&NodeSpec::parse(spec).unwrap()).unwrap();
                node.begin(&schema).unwrap();
                let mut parts = Vec::new();
                for w in cuts.windows(2) {
                    node.update(&chunk(w[0]..w[1])).unwrap();
                    parts.push(node.take_partial().unwrap());
                }
                if rand(2) == 1 && !ordered {
                    parts.reverse();
                }
                for p in &parts {
                    node.merge_partial(p).unwrap();
                }
                node.join(&comm).unwrap();
                let mut got = Vec::new();
                numbers(&node.to_json(), &mut got);
                assert_eq!(got.len(), want.len(), "{spec}");
                for (a, b) in got.iter().zip(&want) {
                    assert!((a - b).abs() <= 1e-11 * scale + rel * b.abs(), "{spec}, cuts {cuts:?}: {a} vs {b}");
                }
            }
        }
    }
}
