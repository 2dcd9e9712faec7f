//! `flowmpi score`: quality of a trained supervised or clustering flow on (test) data, joined
//! over all ranks: R² and RMSE for regression, accuracy and the confusion matrix for
//! classification, inertia for k-means.

use crate::comm::{agree, Comm};
use crate::error::{Error, Result};
use crate::flow::Flow;
use crate::io::{Chunk, Dataset, Schema, Table};
use crate::nodes::Task;
use crate::stats::Scatter;
use ndarray::Array2;
use serde::Serialize;
use std::collections::HashMap;

/// Classes up to which `score` computes the confusion matrix (c² counts on every rank); with
/// more, it reports each class's rows and correct predictions only.
pub const MAX_CONFUSION_CLASSES: usize = 256;

/// A joined score.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "task", rename_all = "lowercase")]
pub enum Score {
    /// Per prediction column: R² and RMSE.
    Regression {
        /// Rows scored.
        rows: u64,
        /// Prediction column names.
        columns: Vec<String>,
        /// Coefficient of determination per column.
        r2: Vec<f64>,
        /// Root mean squared error per column.
        rmse: Vec<f64>,
    },
    /// Accuracy and confusion matrix (rows: true class, columns: predicted class).
    Classification {
        /// Rows scored.
        rows: u64,
        /// Class labels.
        classes: Vec<String>,
        /// Fraction predicted right.
        accuracy: f64,
        /// Counts, true × predicted; absent beyond [`MAX_CONFUSION_CLASSES`] classes.
        #[serde(skip_serializing_if = "Option::is_none")]
        confusion: Option<Vec<Vec<u64>>>,
        /// Rows of each true class, and how many of them were predicted right.
        per_class: Vec<[u64; 2]>,
    },
    /// How well a reducing transform (PCA, whitening) keeps the data: the rows are mapped and
    /// mapped back, in the units of the node's input.
    Reconstruction {
        /// Rows scored.
        rows: u64,
        /// Columns of the node's input.
        columns: usize,
        /// Root mean squared reconstruction error over all values.
        rmse: f64,
        /// 1 − Σ‖x − x̂‖² / Σ‖x − x̄‖²: the fraction of the data's total variance the kept
        /// components explain.
        explained_variance: f64,
    },
    /// Sum of squared distances to the nearest centroid.
    Clustering {
        /// Rows scored.
        rows: u64,
        /// Inertia.
        inertia: f64,
    },
}

/// Score the flow's last node on `data` (collective), on the rank's threads
/// (`data.opts.threads`).
pub fn score(comm: &dyn Comm, flow: &Flow, data: &Dataset) -> Result<Score> {
    // (Agreed: a rank that cannot start its threads must not leave the others waiting.)
    let pool = agree(comm, crate::threads::Pool::new(data.opts.threads))?;
    pool.run(|| score_rows(comm, flow, &data.schema(), &mut |f| data.for_each_chunk(f)))
}

/// Score the flow's last node on this rank's rows of a table whose columns are named `columns`
/// (the same on every rank): the targets or the label the last node was trained on are read
/// from their columns, the features from the flow's input columns (collective; a rank may
/// have 0 rows).
pub fn score_table(comm: &dyn Comm, flow: &Flow, table: ndarray::ArrayView2<f64>, columns: &[String], input: &[String]) -> Result<Score> {
    let label = flow.nodes.last().and_then(|n| n.label());
    let table = Table::split(table, columns, &flow.targets(), label.as_deref())?;
    if table.schema.x != input {
        return Err(Error::Model(format!(
            "the model's input columns are [{}] but the table's features are [{}]",
            crate::io::abbreviate_names(input),
            crate::io::abbreviate_names(&table.schema.x)
        )));
    }
    let chunk = table.chunk();
    score_rows(comm, flow, &table.schema, &mut |f| f(&chunk).map(|()| (chunk.rows() as u64, 0)))
}

/// This rank's rows, chunk by chunk, to a visitor: returns (rows, rows skipped).
type Source<'s> = dyn FnMut(&mut dyn FnMut(&Chunk) -> Result<()>) -> Result<(u64, u64)> + 's;

/// The score over the rows `source` hands out (their names: `schema`).
fn score_rows(comm: &dyn Comm, flow: &Flow, schema: &Schema, source: &mut Source) -> Result<Score> {
    let (last, prefix) = flow.nodes.split_last().ok_or_else(|| Error::Model("empty flow".into()))?;
    let task = last.task();
    let reconstructs = !last.passthrough() && last.inverse(Array2::zeros((0, last.output_names().len())).view()).is_some();
    if task == Task::Transform && !reconstructs {
        return Err(Error::Model(format!(
            "the flow ends in {}, which has nothing to score: score needs a regression (linreg, ridge), a classifier \
             (mnb, gnb), k-means, or a reducing transform (pca, whitening: reconstruction error)",
            last.spec()
        )));
    }
    let targets = last.targets();
    let tidx: Vec<usize> = targets
        .iter()
        .map(|t| schema.y.iter().position(|y| y == t).ok_or_else(|| Error::Model(format!("the data has no target column '{t}'"))))
        .collect::<Result<_>>()?;
    let names = if task == Task::Transform { Vec::new() } else { last.output_names().get(last.input_dim()..).unwrap_or_default().to_vec() };
    let classes: Vec<String> = last.classes().map(|c| c.to_vec()).unwrap_or_default();
    let class_of: HashMap<&str, usize> = classes.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
    let c = classes.len();
    let p = names.len();
    // Local accumulators.
    let mut sse = vec![0.0; p];
    let mut truth: Vec<Scatter> = (0..p).map(|_| Scatter::new(1, false)).collect();
    // The matrix only for a readable number of classes: 40,000 classes made a 12.8 GB one.
    let full = c <= MAX_CONFUSION_CLASSES;
    let mut confusion = vec![0.0; if full { c * c } else { 0 }];
    let mut per_class = vec![0.0; 2 * c];
    let mut inertia = 0.0;
    let mut rows = 0u64;
    // Reconstruction: Σ‖x − x̂‖² and the input's own scatter (for its total variance).
    let mut lost = 0.0;
    let mut input = Scatter::new(last.input_dim(), false);
    let local = source(&mut |chunk| {
        let mapped = crate::nodes::chain::execute_prefix(prefix, chunk.x)?;
        let pred = last.predict(mapped.as_ref().map_or(chunk.x, |a| a.view()))?;
        rows += chunk.rows() as u64;
        match task {
            Task::Regression => {
                for k in 0..p {
                    let y = chunk.y.column(tidx[k % tidx.len()]);
                    sse[k] += y.iter().zip(pred.column(k)).map(|(a, b)| (a - b) * (a - b)).sum::<f64>();
                    truth[k].update(y.insert_axis(ndarray::Axis(1)));
                }
            }
            Task::Classification => {
                for (i, l) in chunk.labels.iter().enumerate() {
                    let t = *class_of.get(l.as_str()).ok_or_else(|| {
                        let msg = format!("label '{l}' is not one of the model's {}", crate::nodes::classes::describe(&classes, false));
                        match chunk.origin {
                            Some(o) => o.error(i, msg),
                            None => Error::Fit(format!("rank {}: {msg}", comm.rank())),
                        }
                    })?;
                    let predicted = pred[[i, 0]] as usize;
                    if full {
                        confusion[t * c + predicted] += 1.0;
                    }
                    per_class[2 * t] += 1.0;
                    per_class[2 * t + 1] += f64::from(u8::from(predicted == t));
                }
            }
            Task::Clustering => inertia += pred.column(1).iter().map(|d| d * d).sum::<f64>(),
            Task::Transform => {
                let x = mapped.as_ref().map_or(chunk.x, |a| a.view());
                let back = last.inverse(last.execute(x)?.view()).ok_or_else(|| Error::Model("no inverse".into()))?;
                lost += (&x - &back).iter().map(|v| v * v).sum::<f64>();
                input.update(x);
            }
        }
        Ok(())
    });
    agree(comm, local)?;
    let mut n = [rows as f64];
    comm.allreduce_sum(&mut n);
    let rows = n[0] as u64;
    if rows == 0 {
        return Err(Error::Fit("no data rows on any rank".into()));
    }
    Ok(match task {
        Task::Regression => {
            comm.allreduce_sum(&mut sse);
            let mut r2 = Vec::new();
            for (k, t) in truth.iter_mut().enumerate() {
                t.allreduce(comm)?;
                let sst = t.centered_sq()[0];
                r2.push(if sst > 0.0 { 1.0 - sse[k] / sst } else { f64::NAN });
            }
            Score::Regression { rows, columns: names, r2, rmse: sse.iter().map(|s| (s / rows as f64).sqrt()).collect() }
        }
        Task::Classification => {
            comm.allreduce_sum(&mut confusion);
            comm.allreduce_sum(&mut per_class);
            let right: f64 = (0..c).map(|i| per_class[2 * i + 1]).sum();
            Score::Classification {
                rows,
                classes,
                accuracy: right / rows as f64,
                confusion: full.then(|| confusion.chunks(c.max(1)).map(|r| r.iter().map(|v| *v as u64).collect()).collect()),
                per_class: per_class.chunks(2).map(|p| [p[0] as u64, p[1] as u64]).collect(),
            }
        }
        Task::Clustering => {
            let mut s = [inertia];
            comm.allreduce_sum(&mut s);
            Score::Clustering { rows, inertia: s[0] }
        }
        Task::Transform => {
            let mut s = [lost];
            comm.allreduce_sum(&mut s);
            input.allreduce(comm)?;
            let total: f64 = input.centered_sq().iter().sum();
            let d = last.input_dim();
            Score::Reconstruction {
                rows,
                columns: d,
                rmse: (s[0] / (rows as f64 * d as f64)).sqrt(),
                explained_variance: if total > 0.0 { 1.0 - s[0] / total } else { f64::NAN },
            }
        }
    })
}

impl Score {
    /// A table for people.
    pub fn table(&self) -> String {
        match self {
            Score::Regression { rows, columns, r2, rmse } => {
                let w = columns.iter().map(|c| c.len()).max().unwrap_or(6).max(6);
                let mut s = format!("rows: {rows}\n{:<w$}  {:>12}  {:>14}\n", "column", "R2", "RMSE");
                for k in 0..columns.len() {
                    s.push_str(&format!("{:<w$}  {:>12.8}  {:>14.6e}\n", columns[k], r2[k], rmse[k]));
                }
                s
            }
            Score::Classification { rows, classes, accuracy, confusion: None, .. } => format!(
                "rows: {rows}\naccuracy: {accuracy:.6}\nconfusion matrix omitted: {} classes (at most {MAX_CONFUSION_CLASSES} are shown); \
                 --json gives every class's rows and correct predictions\n",
                classes.len()
            ),
            Score::Classification { rows, classes, accuracy, confusion: Some(confusion), .. } => {
                let w = classes.iter().map(|c| c.len()).chain(confusion.iter().flatten().map(|v| v.to_string().len())).max().unwrap_or(1).max(4);
                let mut s = format!("rows: {rows}\naccuracy: {accuracy:.6}\nconfusion matrix (rows: true class, columns: predicted)\n{:>w$}", "");
                for c in classes {
                    s.push_str(&format!("  {c:>w$}"));
                }
                s.push('\n');
                for (c, row) in classes.iter().zip(confusion) {
                    s.push_str(&format!("{c:>w$}"));
                    for v in row {
                        s.push_str(&format!("  {v:>w$}"));
                    }
                    s.push('\n');
                }
                s
            }
            Score::Reconstruction { rows, columns, rmse, explained_variance } => {
                format!("rows: {rows}\ncolumns: {columns}\nreconstruction RMSE: {rmse:.10e}\nexplained variance: {explained_variance:.10}\n")
            }
            Score::Clustering { rows, inertia } => format!("rows: {rows}\ninertia: {inertia:.10e}\n"),
        }
    }
}
