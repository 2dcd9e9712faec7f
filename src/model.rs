//! The model file: versioned JSON holding the flow spec, input columns, training row count and
//! every node's trained state. Rank 0 writes it atomically; every rank can read it.

use crate::comm::{agree, Comm};
use crate::error::{Error, Result};
use crate::flow::Flow;
use crate::nodes;
use serde::{Deserialize, Serialize};
use std::path::Path;

mod layout;

/// Identifies our files.
pub const FORMAT: &str = crate::nodes::MODEL_FORMAT;
/// Bumped when the layout changes incompatibly. v2: a `whitening` node keeps its `params` and
/// `columns` beside its `pca`, as every node does (v1 files are read).
pub const FORMAT_VERSION: u32 = 2;

/// A trained flow as stored on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Model {
    /// Always [`FORMAT`].
    pub format: String,
    /// Layout version, [`FORMAT_VERSION`].
    pub format_version: u32,
    /// flowmpi version that wrote the file.
    pub flowmpi_version: String,
    /// The flow spec.
    pub flow: String,
    /// The `--columns` selection used for training (re-used by `execute`).
    pub columns: Option<String>,
    /// Names of the input columns.
    pub input_columns: Vec<String>,
    /// Input dimension.
    pub input_dim: usize,
    /// Names of the output columns.
    pub output_columns: Vec<String>,
    /// Rows used for training, over all ranks.
    pub training_rows: u64,
    /// Number of ranks that trained it; absent (`None`) for `train --reproducible`, whose model
    /// is the same file, byte for byte, whatever the rank count (so `cmp` and checksums agree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranks: Option<usize>,
    /// Trained nodes, in flow order.
    pub nodes: Vec<serde_json::Value>,
}

impl Model {
    /// Capture a trained flow.
    pub fn new(flow: &Flow, columns: Option<String>, input_columns: Vec<String>, training_rows: u64, ranks: usize) -> Model {
        Model {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            flowmpi_version: env!("CARGO_PKG_VERSION").into(),
            flow: flow.spec(),
            columns,
            input_dim: input_columns.len(),
            output_columns: flow.output_names(&input_columns),
            input_columns,
            training_rows,
            ranks: Some(ranks),
            nodes: flow.nodes.iter().map(|n| n.to_json()).collect(),
        }
    }

    /// Pretty JSON bytes (see [`Model::write_to`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_to(&mut v).expect("model serialises");
        v
    }

    /// Pretty JSON, as [`Model::to_bytes`], streamed into `w`; arrays of numbers or strings
    /// stay on one line, so a matrix takes a line per row.
    pub fn write_to(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        self.serialize(&mut serde_json::Serializer::with_formatter(&mut *w, layout::Layout::default()))?;
        w.write_all(b"\n")
    }

    /// FNV-1a hash of the nodes' trained state: equal hashes on all ranks = identical models.
    /// It walks the JSON tree and hashes each number's bits, tagged with its kind; formatting
    /// the numbers as text to hash them took as long as writing a wide model's file.
    pub fn hash(&self) -> u64 {
        use crate::cache::fnv;
        use serde_json::Value;
        fn walk(v: &Value, h: u64) -> u64 {
            let sized = |tag: &[u8], len: usize, h: u64| fnv(&(len as u64).to_le_bytes(), fnv(tag, h));
            match v {
                Value::Null => fnv(b"z", h),
                Value::Bool(b) => fnv(&[b'b', *b as u8], h),
                Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                    _ if n.is_f64() => fnv(&n.as_f64().unwrap_or(f64::NAN).to_bits().to_le_bytes(), fnv(b"f", h)),
                    (Some(u), _) => fnv(&u.to_le_bytes(), fnv(b"u", h)),
                    (None, Some(i)) => fnv(&i.to_le_bytes(), fnv(b"i", h)),
                    (None, None) => fnv(n.to_string().as_bytes(), fnv(b"?", h)),
                },
                Value::String(s) => fnv(s.as_bytes(), sized(b"s", s.len(), h)),
                Value::Array(a) => a.iter().fold(sized(b"[", a.len(), h), |h, x| walk(x, h)),
                Value::Object(o) => o.iter().fold(sized(b"{", o.len(), h), |h, (k, x)| walk(x, fnv(k.as_bytes(), sized(b"k", k.len(), h)))),
            }
        }
        self.nodes.iter().fold(0xcbf29ce484222325, |h, n| walk(n, h))
    }

    /// Collective: every rank's [`Model::hash`], in rank order; they must all be equal (the
    /// joins are deterministic), so a difference is a bug worth reporting.
    pub fn rank_hashes(&self, comm: &dyn Comm) -> Vec<u64> {
        crate::comm::allgather(comm, &self.hash())
    }

    /// Collective: rank 0 writes `path` atomically; every rank returns the same result.
    pub fn save(&self, comm: &dyn Comm, path: &Path) -> Result<()> {
        let local = if comm.rank() == 0 { crate::io::write_atomic_with(path, 0, &mut |w| self.write_to(w)) } else { Ok(()) };
        agree(comm, local)
    }

    /// Read and check a model file.
    pub fn load(path: &Path) -> Result<Model> {
        let cannot = |e: std::io::Error| Error::Model(format!("cannot read {}: {e}", path.display()));
        let file = std::fs::File::open(path).map_err(cannot)?;
        // Parsed from a read-only map: a wide model's text (most of a gigabyte) is then page
        // cache shared by the ranks of a node, not a copy in each. SAFETY: flowmpi replaces
        // model files by rename, never in place; another program truncating the file while it
        // is parsed would end this process with SIGBUS, as with numpy.memmap.
        let text = match unsafe { memmap2::Mmap::map(&file) } {
            Ok(map) => Text::Mapped(map),
            // An empty file cannot be mapped; it fails below as any other non-model does.
            Err(_) => Text::Read(std::fs::read(path).map_err(cannot)?),
        };
        let m: Model = serde_json::from_slice(text.bytes()).map_err(|e| Error::Model(format!("{} is not a flowmpi model: {e}", path.display())))?;
        if m.format != FORMAT || m.format_version > FORMAT_VERSION {
            return Err(Error::Model(format!(
                "{}: format {} v{} is not supported by this flowmpi ({} v{FORMAT_VERSION})",
                path.display(),
                m.format,
                m.format_version,
                FORMAT
            )));
        }
        Ok(m)
    }

    /// Read a model file and rebuild its trained flow, for running it: the model returned keeps
    /// the metadata but not the nodes' JSON, which the flow has turned into arrays (a wide
    /// model's JSON tree is as large again as the arrays).
    pub fn load_flow(path: &Path) -> Result<(Flow, Model)> {
        let m = Model::load(path)?;
        Ok((m.flow()?, Model { nodes: Vec::new(), ..m }))
    }

    /// Store each node's partial statistics (`train --keep-partials`), as hex in the node's
    /// `partial` field, so a later `train --update` can add rows without the old data.
    pub fn set_partials(&mut self, partials: &[Option<Vec<u8>>]) {
        for (node, p) in self.nodes.iter_mut().zip(partials) {
            if let (Some(obj), Some(bytes)) = (node.as_object_mut(), p) {
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                obj.insert("partial".into(), hex.into());
            }
        }
    }

    /// The partial statistics [`Model::set_partials`] stored, per node (None where none).
    pub fn partials(&self) -> Result<Vec<Option<Vec<u8>>>> {
        self.nodes
            .iter()
            .map(|n| match n.get("partial").and_then(|p| p.as_str()) {
                None => Ok(None),
                Some(h) if h.len() % 2 == 0 && h.is_ascii() => (0..h.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&h[i..i + 2], 16))
                    .collect::<std::result::Result<Vec<u8>, _>>()
                    .map(Some)
                    .map_err(|_| Error::Model("a node's partial statistics are damaged".into())),
                Some(_) => Err(Error::Model("a node's partial statistics are damaged".into())),
            })
            .collect()
    }

    /// Rebuild the trained flow, checking every node's arrays and that each node's input is
    /// the previous node's output.
    pub fn flow(&self) -> Result<Flow> {
        let flow = Flow { nodes: self.nodes.iter().map(nodes::from_json).collect::<Result<_>>()? };
        if self.input_columns.len() != self.input_dim {
            return Err(Error::Model(format!("input_dim is {} but {} input columns are named", self.input_dim, self.input_columns.len())));
        }
        let mut width = self.input_dim;
        for (i, n) in flow.nodes.iter().enumerate() {
            n.check_model()?;
            if n.input_dim() != width {
                return Err(Error::Model(format!(
                    "node {i} ({}) takes {} columns but receives {width} (the model file is damaged or was edited)",
                    n.kind(),
                    n.input_dim()
                )));
            }
            width = n.output_names().len();
        }
        if flow.nodes.is_empty() {
            return Err(Error::Model("the model has no nodes".into()));
        }
        Ok(flow)
    }
}

/// A model file's bytes, mapped or read.
enum Text {
    Mapped(memmap2::Mmap),
    Read(Vec<u8>),
}

impl Text {
    fn bytes(&self) -> &[u8] {
        match self {
            Text::Mapped(m) => m,
            Text::Read(v) => v,
        }
    }
}

/// The data's feature columns must be the ones the model was trained on (`expect`: its input
/// columns, or its output columns for an inverse), in its order: by name when the data has a
/// header, by count without one. `--columns` may pick them from a file that has more, never
/// swap or replace them (that gives a silently wrong result).
pub fn check_data_columns(expect: &[String], data: &crate::io::Dataset) -> Result<()> {
    let names_match = data.names() == expect || (data.layout.names.is_none() && data.dim() == expect.len());
    if names_match {
        return Ok(());
    }
    Err(Error::Model(format!(
        "the model expects columns [{}] but the data gives [{}]",
        crate::io::abbreviate_names(expect),
        crate::io::abbreviate_names(&data.names())
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_sees_every_value_and_where_it_sits() {
        let flow = Flow::parse("moments").unwrap();
        let model = |nodes: serde_json::Value| Model { nodes: nodes.as_array().unwrap().clone(), ..Model::new(&flow, None, vec![], 0, 1) };
        let base = serde_json::json!([{"kind": "pca", "m": [[1.5, -0.0], [2.0, 3.0]], "n": 2, "s": "ab"}]);
        let h = model(base.clone()).hash();
        assert_eq!(h, model(base).hash());
        for other in [
            serde_json::json!([{"kind": "pca", "m": [[1.5, 0.0], [2.0, 3.0]], "n": 2, "s": "ab"}]),
            serde_json::json!([{"kind": "pca", "m": [[1.5, -0.0, 2.0], [3.0]], "n": 2, "s": "ab"}]),
            serde_json::json!([{"kind": "pca", "m": [[1.5, -0.0], [2.0, 3.0]], "n": 2.0, "s": "ab"}]),
            serde_json::json!([{"kind": "pca", "m": [[1.5, -0.0], [2.0, 3.0]], "n": 2, "s": "a", "b": null}]),
            serde_json::json!([{"kind": "pca", "m": [[1.5, -0.0], [2.0, 3.0]], "n": 2, "t": "ab"}]),
            serde_json::json!([{"kind": "pca", "m": [[1.5, -0.0], [2.0, 3.0]], "n": 2}, {"s": "ab"}]),
        ] {
            assert_ne!(model(other.clone()).hash(), h, "{other}");
        }
    }
}
