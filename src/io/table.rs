//! A rank's rows handed over in memory as one table with named columns, split as the command
//! line splits a file: the target and label columns a flow names, and the features (the rest).

use super::{Chunk, Schema};
use crate::error::{Error, Result};
use ndarray::{Array2, ArrayView2, Axis};

/// A table's columns split into features, targets and labels.
pub struct Table<'a> {
    table: ArrayView2<'a, f64>,
    /// The feature columns, copied out when the table has other columns too.
    x: Option<Array2<f64>>,
    y: Array2<f64>,
    labels: Vec<String>,
    /// The names of the features, targets and label.
    pub schema: Schema,
}

impl<'a> Table<'a> {
    /// Split `table` (columns named `columns`, the same on every rank) into the `targets`, the
    /// `label` (its numbers become class names as a CSV would write them: `1`, `0.5`) and the
    /// features. A name missing from `columns`, a name given twice, or a count other than the
    /// table's is an error.
    pub fn split(table: ArrayView2<'a, f64>, columns: &[String], targets: &[String], label: Option<&str>) -> Result<Self> {
        if columns.len() != table.ncols() {
            return Err(Error::Param(format!("{} column names for rows of {} columns", columns.len(), table.ncols())));
        }
        if let Some((i, c)) = columns.iter().enumerate().find(|(i, c)| columns[..*i].contains(c)) {
            return Err(Error::Param(format!("column '{c}' is named twice (column {i})")));
        }
        let index = |name: &str, what: &str| {
            columns
                .iter()
                .position(|c| c == name)
                .ok_or_else(|| Error::Param(format!("the {what} column '{name}' is not among the columns [{}]", super::abbreviate_names(columns))))
        };
        let y: Vec<usize> = targets.iter().map(|t| index(t, "target")).collect::<Result<_>>()?;
        let l = label.map(|n| index(n, "label")).transpose()?;
        let features: Vec<usize> = (0..columns.len()).filter(|j| !y.contains(j) && Some(*j) != l).collect();
        let x = (features.len() != columns.len()).then(|| table.select(Axis(1), &features));
        let labels = l.map(|j| table.column(j).iter().map(|v| format!("{v}")).collect()).unwrap_or_default();
        let schema = Schema { x: features.iter().map(|&j| columns[j].clone()).collect(), y: targets.to_vec(), label: label.map(String::from) };
        Ok(Table { table, x, y: table.select(Axis(1), &y), labels, schema })
    }

    /// The rows as one chunk.
    pub fn chunk(&self) -> Chunk<'_> {
        Chunk { x: self.x.as_ref().map_or(self.table, |x| x.view()), y: self.y.view(), labels: &self.labels, ..Chunk::new(self.table) }
    }
}
