//! A flow's text: `a(..) | b(..)` on the command line, or a TOML / JSON flow file.

use crate::error::{Error, Result};
use crate::nodes::NodeSpec;

/// How deep layers may nest in a flow. Deeper flows overflowed the stack (~5,000 levels) or
/// trained into model files deeper than JSON readers take (serde_json stops at 128 levels),
/// which nothing could read back; no real flow comes near this.
pub const MAX_NESTING: usize = 16;

/// Split a flow spec `a(..) | b(..)` into node specs.
pub fn parse_flow(spec: &str) -> Result<Vec<NodeSpec>> {
    let mut depth = 0usize;
    for (at, c) in spec.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_NESTING {
            return Err(Error::Param(format!("the flow nests parentheses or brackets deeper than {MAX_NESTING} levels (at byte {at})")));
        }
    }
    let parts: Vec<&str> = spec.split('|').map(str::trim).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(Error::Param(format!("empty node in flow {spec:?}")));
    }
    // A node's error points at the node in the flow when the flow has several.
    parts
        .into_iter()
        .map(|p| {
            NodeSpec::parse(p).map_err(|e| match e {
                Error::Param(m) if spec.contains('|') => {
                    Error::Param(format!("{m}{}", crate::nodes::caret(spec, p.as_ptr() as usize - spec.as_ptr() as usize)))
                }
                e => e,
            })
        })
        .collect()
}

/// Read a flow from a TOML or JSON file: either `flow = "pca(n=3) | whitening"` or a list of
/// nodes, `[[node]]` tables (TOML) / `"nodes": [...]` (JSON), each with `kind` and parameters.
pub fn read_flow_file(path: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Param(format!("--flow-file {}: {e}", path.display())))?;
    let bad = |m: String| Error::Param(format!("--flow-file {}: {m}", path.display()));
    let value: serde_json::Value = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?
    } else {
        let t: toml::Value = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        serde_json::to_value(t).map_err(|e| bad(e.to_string()))?
    };
    if let Some(f) = value.get("flow").and_then(|f| f.as_str()) {
        return Ok(f.to_string());
    }
    let list = value
        .get("node")
        .or_else(|| value.get("nodes"))
        .and_then(|v| v.as_array())
        .ok_or_else(|| bad("expected `flow = \"...\"` or a list of nodes ([[node]] with kind = ...)".into()))?;
    let mut specs = Vec::new();
    for n in list {
        let obj = n.as_object().ok_or_else(|| bad("each node must be a table".into()))?;
        let kind = obj.get("kind").and_then(|k| k.as_str()).ok_or_else(|| bad("a node has no `kind`".into()))?;
        let args: Vec<String> = obj
            .iter()
            .filter(|(k, _)| *k != "kind")
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect();
        specs.push(if args.is_empty() { kind.to_string() } else { format!("{kind}({})", args.join(", ")) });
    }
    if specs.is_empty() {
        return Err(bad("the flow has no nodes".into()));
    }
    Ok(specs.join(" | "))
}
