//! A file's columns as found on disk, and the `--columns` selection among them.

use serde::{Deserialize, Serialize};

/// Columns of a file as found on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    /// Fields per row.
    pub ncols: usize,
    /// Header names (CSV with a header), else `None`.
    pub names: Option<Vec<String>>,
}

impl Layout {
    /// Column names, `x0, x1, ...` when the file has none.
    pub fn column_names(&self) -> Vec<String> {
        self.names.clone().unwrap_or_else(|| (0..self.ncols).map(|j| format!("x{j}")).collect())
    }
}

/// Parse a `--columns` spec against a layout into column indices.
pub fn select_columns(spec: Option<&str>, layout: &Layout) -> std::result::Result<Vec<usize>, String> {
    let Some(spec) = spec.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok((0..layout.ncols).collect());
    };
    let names = layout.column_names();
    let index_of = |tok: &str| -> std::result::Result<usize, String> {
        if let Some(n) = &layout.names {
            let mut at = n.iter().enumerate().filter(|(_, x)| *x == tok).map(|(i, _)| i);
            match (at.next(), at.next()) {
                (Some(i), None) => return Ok(i),
                // Taking the first would silently read another column than the user meant.
                (Some(i), Some(k)) => return Err(format!("the header names columns {i} and {k} both '{tok}': select them by 0-based index")),
                _ => {}
            }
        }
        if let Ok(i) = tok.parse::<usize>() {
            return if i < layout.ncols { Ok(i) } else { Err(format!("column index {i} is out of range (the data has {} columns)", layout.ncols)) };
        }
        if let Some(i) = names.iter().position(|x| x == tok) {
            return Ok(i);
        }
        // The names are bounded: a file of 100,000 columns listed them all (790 KB of message).
        const SHOWN: usize = 12;
        let mut shown: Vec<String> = names.iter().take(SHOWN).map(|n| crate::io::printable(n)).collect();
        if names.len() > SHOWN {
            shown.push(format!("… {} more", names.len() - SHOWN));
        }
        let shown = shown.join(", ");
        Err(format!("no column named {} (the {} columns are {shown})", crate::io::quote(tok.as_bytes()), names.len()))
    };
    let mut out = Vec::new();
    for tok in spec.split(',').map(str::trim) {
        match tok.split_once('-') {
            Some((a, b)) if !a.is_empty() && !b.is_empty() && layout.names.as_ref().is_none_or(|n| !n.iter().any(|x| x == tok)) => {
                let (i, j) = (index_of(a.trim())?, index_of(b.trim())?);
                if i > j {
                    return Err(format!("empty column range '{tok}'"));
                }
                out.extend(i..=j);
            }
            _ => out.push(index_of(tok)?),
        }
    }
    for (k, j) in out.iter().enumerate() {
        if out[..k].contains(j) {
            return Err(format!("column '{}' is selected twice", names[*j]));
        }
    }
    Ok(out)
}

/// An error naming two of `chosen` (column indices) that share a header name, or `None`. A model
/// names its columns and `execute` finds them by name, so a name must say which column it is.
pub fn duplicate_name(chosen: &[usize], layout: &Layout) -> Option<String> {
    let names = layout.names.as_ref()?;
    // One map, not a pairwise scan: a data set may have millions of columns.
    let mut first: std::collections::HashMap<&str, usize> = std::collections::HashMap::with_capacity(chosen.len());
    for &j in chosen {
        match first.insert(&names[j], j) {
            Some(i) if i != j => {
                let (i, j) = (i.min(j), i.max(j));
                return Some(format!("columns {i} and {j} (0-based) are both named '{}': rename one, or leave one out with --columns", names[j]));
            }
            _ => {}
        }
    }
    None
}

/// Column names for a message: all of up to 8, else the first 4 and the last 2.
pub fn abbreviate_names(names: &[String]) -> String {
    if names.len() <= 8 {
        names.join(", ")
    } else {
        format!("{}, ... , {}", names[..4].join(", "), names[names.len() - 2..].join(", "))
    }
}
