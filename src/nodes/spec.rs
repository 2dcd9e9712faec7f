//! Flow specs of one node: `pca(n=3, method=corr)`.

use crate::error::{Error, Result};
use std::collections::BTreeMap;

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
                let inner = rest.strip_suffix(')').ok_or_else(|| Error::Param(format!("missing ')' in {}", q(t))))?;
                (&t[..i], inner)
            }
            None => (t, ""),
        };
        let kind = kind.trim().to_ascii_lowercase();
        if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::Param(format!("bad node name in {}", q(t))));
        }
        let mut params = BTreeMap::new();
        if super::layer::is_layer(&kind) {
            // `layer(pca(n=3) @ 0-9, ...)` holds node specs, not key=value pairs.
            return Ok(NodeSpec { kind, params, args: args.to_string() });
        }
        for kv in split_top_level(args).iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').ok_or_else(|| Error::Param(format!("expected key=value, got {} in {}", q(kv), q(t))))?;
            params.insert(k.trim().to_string(), v.trim().trim_matches(['"', '\'']).to_string());
        }
        Ok(NodeSpec { kind, params, args: args.to_string() })
    }

    /// A list parameter: `target=[y0,y1]`, `target="y0,y1"`, `target=y0;y1` or one value.
    pub fn get_list(&self, key: &str) -> Option<Vec<String>> {
        self.params
            .get(key)
            .map(|v| v.trim_matches(['[', ']']).split([',', ';']).map(|s| s.trim().trim_matches(['"', '\'']).to_string()).filter(|s| !s.is_empty()).collect())
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

    /// A count parameter (`n`, `k`, `bins`...), if given: a whole number of at least 1.
    pub fn count(&self, key: &str) -> Result<Option<usize>> {
        match self.get::<usize>(key)? {
            Some(0) => Err(Error::Param(format!("{}: {key} must be at least 1", self.kind))),
            n => Ok(n),
        }
    }

    /// A parameter parsed as `T`, if given.
    pub fn get<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>> {
        self.params.get(key).map(|v| v.parse::<T>().map_err(|_| Error::Param(format!("{}: cannot use {} as {key}", self.kind, q(v))))).transpose()
    }
}

/// A spec as written back into model files and cache keys: `kind(key=value, ...)` of the
/// parameters given (`Some`), in this order; `kind` alone when none is. Lists as `[a,b]`.
pub fn spec_text(kind: &str, params: &[(&str, Option<String>)]) -> String {
    let given: Vec<String> = params.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}"))).collect();
    if given.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}({})", given.join(", "))
    }
}

/// `[a,b,c]` for [`spec_text`].
pub fn list_text<T: std::fmt::Display>(items: &[T]) -> String {
    format!("[{}]", items.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(","))
}

/// `text` on a line of its own with a caret under byte `at` below it, for parse errors that
/// point at the place (cut to 100 characters around it, so a long flow stays readable).
pub(crate) fn caret(text: &str, at: usize) -> String {
    let at = at.min(text.len());
    let before = text[..at].chars().count();
    let skip = before.saturating_sub(60);
    let shown: String = text.chars().skip(skip).take(100).collect();
    let lead = if skip > 0 { "…" } else { "" };
    format!("\n    {lead}{}\n    {}^", crate::io::printable(&shown), " ".repeat(before - skip + lead.chars().count()))
}

/// Spec text in a message: quoted and cut (a flow file of megabytes was echoed whole).
fn q(text: &str) -> String {
    crate::io::quote(text.as_bytes())
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
