//! The figure a person would draw for each trained node kind, from the node's model JSON:
//! PCA/whitening explained variance with its cumulative curve, SFA deltas, FDA's generalised
//! eigenvalues, SVD
//! singular values, the correlation matrix of `covariance`, each column's spread for `moments`,
//! one histogram per column, k-means cluster sizes and centroids on their principal axes,
//! regression coefficients per target (and per alpha), naive Bayes priors and per-class means.

use super::figure::{grid_columns, Figure, Panel};
use ndarray::Array2;
use serde_json::Value;

type Made = std::result::Result<Figure, String>;

/// Node kinds that have a figure.
pub const PLOTTABLE: [&str; 14] = ["pca", "whitening", "sfa", "sfa2", "fda", "svd", "covariance", "moments", "hist", "kmeans", "linreg", "ridge", "gnb", "mnb"];

fn nums(v: &Value) -> Vec<f64> {
    v.as_array().map(|a| a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect()).unwrap_or_default()
}

fn rows(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().map(|a| a.iter().map(nums).collect()).unwrap_or_default()
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string)).collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// `n` names: the node's columns when it has `n`, else `prefix1, prefix2, ...`.
fn names(node: &Value, n: usize, prefix: &str) -> Vec<String> {
    let c = strings(&node["columns"]);
    if c.len() == n {
        c
    } else {
        (1..=n).map(|i| format!("{prefix}{i}")).collect()
    }
}

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix}{i}")).collect()
}

fn bars(title: String, x_desc: &str, y_desc: &str, labels: Vec<String>, values: Vec<f64>) -> Panel {
    Panel::Bars { title, x_desc: x_desc.into(), y_desc: y_desc.into(), labels, values, kept: None, line: None, signed: false }
}

fn one(title: String, panel: Panel) -> Figure {
    Figure { title, columns: 1, panels: vec![panel] }
}

/// The figure of `node` (its kind among [`PLOTTABLE`]); `label` names it in the title
/// ("node 2: pca").
pub fn figure(node: &Value, label: &str) -> Made {
    let kind = node["kind"].as_str().unwrap_or("");
    match kind {
        "pca" => pca(node, &format!("PCA — {label}")),
        "whitening" => pca(&node["pca"], &format!("Whitening (its PCA) — {label}")),
        "sfa" => sfa(node, &format!("SFA — {label}")),
        "sfa2" => sfa(&node["sfa"], &format!("SFA2 (quadratic SFA) — {label}")),
        "fda" => {
            let ev = nums(&node["eigenvalues"]);
            let labels = numbered("D", ev.len());
            // MDP's problem, S_W v = λ S_T v: λ is the within-class scatter along v over the total
            // variance, so the smaller, the better v separates the classes.
            let title = "Eigenvalues λ of S_W v = λ S_T v (smaller: the classes stand further apart)".to_string();
            Ok(one(format!("FDA — {label}"), bars(title, "discriminant", "λ (within-class scatter / total variance)", labels, ev)))
        }
        "svd" => {
            let sv = nums(&node["singular_values"]);
            Ok(one(format!("SVD — {label}"), bars("Singular values".into(), "component", "singular value", numbered("SV", sv.len()), sv)))
        }
        "covariance" => {
            let m = rows(&node["correlation"]);
            let n = m.len();
            Ok(one(
                format!("Correlation matrix — {label}"),
                Panel::Heat {
                    title: format!("Pearson correlation of {n} columns ({} rows)", node["count"]),
                    names: names(node, n, "x"),
                    matrix: m,
                    range: (-1.0, 1.0),
                },
            ))
        }
        "moments" => {
            let m = &node["moments"];
            let (min, max, mean, std) = (nums(&m["minimum"]), nums(&m["maximum"]), nums(&m["mean"]), nums(&m["standard_deviation"]));
            let cols = names(node, mean.len(), "x");
            let panels: Vec<Panel> = (0..mean.len()).map(|j| Panel::Spread { title: cols[j].clone(), stats: [min[j], max[j], mean[j], std[j]] }).collect();
            Ok(Figure {
                title: format!("Column spread: min–max line, mean ± std box, mean dot — {label}"),
                columns: grid_columns(panels.len()).clamp(1, 4),
                panels,
            })
        }
        "hist" => {
            let (edges, counts) = (rows(&node["edges"]), rows(&node["counts"]));
            let cols = names(node, counts.len(), "x");
            let panels: Vec<Panel> = edges.into_iter().zip(counts).zip(cols).map(|((edges, counts), title)| Panel::Hist { title, edges, counts }).collect();
            Ok(Figure { title: format!("Histograms (rows per bin) — {label}"), columns: grid_columns(panels.len()), panels })
        }
        "kmeans" => kmeans(node, label),
        "linreg" => {
            let targets = strings(&node["params"]["target"]);
            let panels = regression(node, &node["coefficients"], &node["intercept"], &node["r2"], &targets, None);
            Ok(Figure { title: format!("Linear regression coefficients — {label}"), columns: grid_columns(panels.len()), panels })
        }
        "ridge" => {
            let targets = strings(&node["params"]["target"]);
            let alphas = nums(&node["params"]["alphas"]);
            let fits = node["fits"].as_array().cloned().unwrap_or_default();
            let mut panels = Vec::new();
            for (a, fit) in alphas.iter().zip(&fits) {
                panels.extend(regression(node, &fit["coefficients"], &fit["intercept"], &fit["r2"], &targets, Some(*a)));
            }
            // One row of panels per alpha when there are several targets.
            let columns = if targets.len() > 1 { targets.len() } else { grid_columns(panels.len()) };
            Ok(Figure { title: format!("Ridge regression coefficients — {label}"), columns, panels })
        }
        "gnb" => {
            let theta = rows(&node["theta"]);
            bayes(node, nums(&node["class_prior"]), theta, "mean of the feature in the class", &format!("Gaussian naive Bayes — {label}"))
        }
        "mnb" => {
            let prior = nums(&node["class_log_prior"]).into_iter().map(f64::exp).collect();
            let probs = rows(&node["feature_log_prob"]).into_iter().map(|r| r.into_iter().map(f64::exp).collect()).collect();
            bayes(node, prior, probs, "P(feature | class)", &format!("Multinomial naive Bayes — {label}"))
        }
        other => Err(format!("{label} has no figure (a {other} node; nodes with one: {})", PLOTTABLE.join(", "))),
    }
}

fn pca(node: &Value, title: &str) -> Made {
    let ev = nums(&node["eigenvalues"]);
    let total: f64 = ev.iter().filter(|v| **v > 0.0).sum();
    let ratio: Vec<f64> = ev.iter().map(|v| if total > 0.0 { v.max(0.0) / total } else { 0.0 }).collect();
    let cumulative: Vec<f64> = ratio
        .iter()
        .scan(0.0, |s, r| {
            *s += r;
            Some(*s)
        })
        .collect();
    let kept = node["components"].as_array().map_or(ev.len(), Vec::len);
    let method = node["params"]["method"].as_str().map(|m| format!(", {m} matrix")).unwrap_or_default();
    Ok(one(
        title.to_string(),
        Panel::Bars {
            title: format!("Variance explained per component ({kept} of {} kept{method})", ev.len()),
            x_desc: "principal component".into(),
            y_desc: "fraction of the total variance".into(),
            labels: numbered("PC", ev.len()),
            values: ratio,
            kept: Some(kept),
            line: Some(("cumulative".into(), cumulative)),
            signed: false,
        },
    ))
}

fn sfa(node: &Value, title: &str) -> Made {
    let delta = nums(&node["delta"]);
    Ok(one(
        title.to_string(),
        bars("Delta per slow feature (mean squared time derivative; smaller = slower)".into(), "slow feature", "delta", numbered("SF", delta.len()), delta),
    ))
}

/// Coefficient panels, one per target, of one fit.
fn regression(node: &Value, coef: &Value, intercept: &Value, r2: &Value, targets: &[String], alpha: Option<f64>) -> Vec<Panel> {
    let (coef, intercept, r2) = (rows(coef), nums(intercept), nums(r2));
    coef.into_iter()
        .enumerate()
        .map(|(t, c)| {
            let target = targets.get(t).cloned().unwrap_or_else(|| format!("target {}", t + 1));
            let alpha = alpha.map(|a| format!(", alpha {}", super::draw::number(a))).unwrap_or_default();
            let fit = match (r2.get(t), intercept.get(t)) {
                (Some(r), Some(b)) => format!(" (R² {r:.4}, intercept {})", super::draw::number(*b)),
                _ => String::new(),
            };
            let labels = names(node, c.len(), "x");
            Panel::Bars {
                title: format!("{target}{alpha}{fit}"),
                x_desc: "feature".into(),
                y_desc: "coefficient".into(),
                labels,
                values: c,
                kept: None,
                line: None,
                signed: true,
            }
        })
        .collect()
}

fn bayes(node: &Value, prior: Vec<f64>, per_class: Vec<Vec<f64>>, y_desc: &str, title: &str) -> Made {
    let classes = strings(&node["classes"]);
    let d = per_class.first().map_or(0, Vec::len);
    let features = names(node, d, "x");
    let series = classes.iter().map(|c| format!("class {c}")).zip(per_class).collect();
    Ok(Figure {
        title: title.to_string(),
        columns: 2,
        panels: vec![
            bars("Class priors".into(), "class", "prior probability", classes, prior),
            Panel::Lines { title: "Per-class feature values".into(), x_desc: "feature".into(), y_desc: y_desc.into(), labels: features, series },
        ],
    })
}

/// The two leading principal axes of the rows of `c` (centred), with the fraction of their
/// spread each explains: (k × 2 coordinates, fractions).
fn principal_plane(c: &Array2<f64>) -> (Vec<(f64, f64)>, [f64; 2]) {
    use ndarray_linalg::{Eigh, UPLO};
    let (k, d) = c.dim();
    let mean = c.mean_axis(ndarray::Axis(0)).unwrap_or_else(|| ndarray::Array1::zeros(d));
    let x = c - &mean;
    if d == 1 || k < 2 {
        return (x.column(0).iter().map(|&v| (v, 0.0)).collect(), [1.0, 0.0]);
    }
    let cov = x.t().dot(&x);
    let Ok((vals, vecs)) = cov.eigh(UPLO::Lower) else { return (x.rows().into_iter().map(|r| (r[0], r[1])).collect(), [0.0, 0.0]) };
    let total: f64 = vals.iter().map(|v| v.max(0.0)).sum::<f64>().max(f64::MIN_POSITIVE);
    let (a, b) = (vecs.column(d - 1), vecs.column(d - 2));
    let pts = x.rows().into_iter().map(|r| (r.dot(&a), r.dot(&b))).collect();
    (pts, [vals[d - 1].max(0.0) / total, vals[d - 2].max(0.0) / total])
}

fn kmeans(node: &Value, label: &str) -> Made {
    let c = rows(&node["centroids"]);
    let (k, d) = (c.len(), c.first().map_or(0, Vec::len));
    let m = Array2::from_shape_vec((k, d), c.into_iter().flatten().collect()).map_err(|e| e.to_string())?;
    let sizes = nums(&node["cluster_sizes"]);
    let names = numbered("c", k);
    let (pts, frac) = principal_plane(&m);
    let biggest = sizes.iter().copied().fold(1.0, f64::max);
    // Marker area in proportion to the cluster's size; smaller markers for many clusters.
    let largest = 4.0 + 14.0 * (8.0 / k.max(1) as f64).sqrt().min(1.0);
    let radius: Vec<f64> = if sizes.len() == k { sizes.iter().map(|s| 3.0 + (largest - 3.0) * (s / biggest).sqrt()).collect() } else { Vec::new() };
    let mut panels = Vec::new();
    if sizes.len() == k {
        panels.push(bars(format!("Cluster sizes ({} rows)", node["count"]), "cluster", "rows", names.clone(), sizes));
    }
    panels.push(Panel::Points {
        title: format!("Centroids on their first two principal axes ({d} features)"),
        x_desc: format!("axis 1 ({:.0}% of the centroids' spread)", 100.0 * frac[0]),
        y_desc: format!("axis 2 ({:.0}%)", 100.0 * frac[1]),
        points: pts,
        group: (0..k).collect(),
        groups: Vec::new(),
        radius,
        tags: names,
    });
    let conv = if node["converged"].as_bool() == Some(false) { ", not converged" } else { "" };
    Ok(Figure {
        title: format!(
            "k-means, k = {k} (inertia {}, {} iterations{conv}) — {label}",
            super::draw::number(node["inertia"].as_f64().unwrap_or(f64::NAN)),
            node["n_iter"]
        ),
        columns: panels.len(),
        panels,
    })
}
