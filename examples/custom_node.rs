//! A node defined outside flowmpi: a min-max scaler, `minmax(lo=0, hi=1)`, as three pieces —
//! Params, Partial (per-column min and max: update with this rank's rows, merge another's) and
//! Model (scale to [lo, hi]) — registered, then trained in a flow with a built-in node over the
//! shipped example data, saved, loaded and executed:
//!
//! ```text
//! cargo build --release --examples
//! mpirun -n 4 target/release/examples/custom_node   # or alone: one rank
//! ```
//!
//! It checks the min and max against a plain read of all files, that every rank holds the same
//! model, and that the saved model executes like the trained flow. Exits non-zero on mismatch.

use flowmpi::io::{Chunk, DataOptions, Dataset, Schema};
use flowmpi::nodes::define::{register, Kind, NodeParams, Partial, Report, Transform};
use flowmpi::nodes::NodeSpec;
use flowmpi::{Comm, Context, Flow, Model, Result};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// Parameters: the output range.
#[derive(Clone, Serialize, Deserialize)]
struct MinMax {
    lo: f64,
    hi: f64,
}

/// Local statistics: per-column minimum and maximum.
#[derive(Serialize, Deserialize)]
struct Range {
    min: Vec<f64>,
    max: Vec<f64>,
}

/// The trained scaler.
#[derive(Serialize, Deserialize)]
struct Scaler {
    lo: f64,
    hi: f64,
    min: Vec<f64>,
    max: Vec<f64>,
}

impl NodeParams for MinMax {
    // Name, the spec keys it reads (any other is refused) and its line in `train --help`.
    const KIND: Kind = Kind::new("minmax", &["lo", "hi"], "minmax(lo=0, hi=1): scale every column to [lo, hi]");
    type Partial = Range;
    type Model = Scaler;
    fn from_spec(spec: &NodeSpec) -> Result<Self> {
        Ok(MinMax { lo: spec.get("lo")?.unwrap_or(0.0), hi: spec.get("hi")?.unwrap_or(1.0) })
    }
    fn spec(&self) -> String {
        format!("minmax(lo={}, hi={})", self.lo, self.hi)
    }
    fn partial(&self, schema: &Schema) -> Range {
        Range { min: vec![f64::INFINITY; schema.x.len()], max: vec![f64::NEG_INFINITY; schema.x.len()] }
    }
    fn finalize(&self, r: Range, _: &Schema) -> Result<Scaler> {
        Ok(Scaler { lo: self.lo, hi: self.hi, min: r.min, max: r.max })
    }
}

impl Partial for Range {
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        for row in chunk.x.rows() {
            for (j, &v) in row.iter().enumerate() {
                self.min[j] = self.min[j].min(v);
                self.max[j] = self.max[j].max(v);
            }
        }
        Ok(())
    }
    fn merge(&mut self, other: Range) {
        self.min.iter_mut().zip(other.min).for_each(|(a, b)| *a = a.min(b));
        self.max.iter_mut().zip(other.max).for_each(|(a, b)| *a = a.max(b));
    }
}

impl Transform for Scaler {
    fn output_names(&self, input: &[String]) -> Vec<String> {
        input.iter().map(|n| format!("{n}_scaled")).collect()
    }
    fn transform(&self, x: ArrayView2<f64>) -> Array2<f64> {
        Array2::from_shape_fn(x.dim(), |(i, j)| {
            let span = (self.max[j] - self.min[j]).max(f64::MIN_POSITIVE);
            self.lo + (x[[i, j]] - self.min[j]) / span * (self.hi - self.lo)
        })
    }
}

impl Report for Scaler {}

fn check(ok: bool, what: &str) {
    if !ok {
        eprintln!("custom_node: MISMATCH: {what}");
        std::process::exit(1);
    }
}

fn main() {
    let ctx = Context::init();
    let comm = ctx.comm();
    register::<MinMax>().expect("register minmax");
    // The example data: the directory given as the first argument, else the repository's (found
    // from where this example was built, so it runs from any directory).
    let dir = std::env::args().nth(1).map(std::path::PathBuf::from).unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/example"));
    let data = match Dataset::open(comm, &DataOptions::new(dir.join("part*.csv").display().to_string())) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("custom_node: {e} (give the example data's directory as the first argument)");
            std::process::exit(2);
        }
    };
    let log = flowmpi::log::Log { level: 0, rank: comm.rank(), progress: flowmpi::log::Style::Off };
    let mut flow = Flow::parse("minmax(lo=-1, hi=1) | pca(n=2)").unwrap();
    let report = flow.train(comm, &data, &flowmpi::flow::TrainOptions { log, ..Default::default() }).expect("training");

    // The reference: every file read plainly, on every rank.
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "csv")).collect();
    files.sort();
    let rows: Vec<Vec<f64>> = files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f).unwrap().lines().skip(1).map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect::<Vec<Vec<f64>>>()
        })
        .collect();
    let model = Model::new(&flow, None, data.names(), report.rows, comm.size());
    let node = &model.nodes[0]; // the model's fields sit beside kind, params and columns
    for j in 0..rows[0].len() {
        let (lo, hi) = rows.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), r| (a.min(r[j]), b.max(r[j])));
        check(node["min"][j].as_f64() == Some(lo) && node["max"][j].as_f64() == Some(hi), &format!("column {j}'s range"));
    }
    check(report.rows == rows.len() as u64, "rows trained on");
    let hashes = model.rank_hashes(comm);
    check(hashes.iter().all(|h| *h == hashes[0]), "the model differs between ranks");

    // Saved and loaded (the registered kind reads back), it executes like the trained flow.
    let path = std::env::temp_dir().join(format!("custom_node_{}.json", std::process::id()));
    let mut name = path.display().to_string().into_bytes();
    comm.bcast_bytes(0, &mut name);
    let path = std::path::PathBuf::from(String::from_utf8(name).unwrap());
    model.save(comm, &path).expect("save");
    let loaded = Model::load(&path).and_then(|m| m.flow()).expect("load");
    let x = Array2::from_shape_fn((5, rows[0].len()), |(i, j)| rows[i * 100][j]);
    let diff = (&loaded.execute(x.view()).expect("execute") - &flow.execute(x.view()).expect("execute")).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    check(diff == 0.0, &format!("the loaded model executes differently (by {diff:e})"));
    let scaled = flow.nodes[0].execute(x.view()).expect("execute");
    check(scaled.iter().all(|v| (-1.0..=1.0).contains(v)), "scaled values within [lo, hi]");
    comm.barrier();
    if comm.rank() == 0 {
        let _ = std::fs::remove_file(&path);
        println!("custom_node: minmax | pca(n=2) trained on {} rows over {} rank(s); all checks passed", report.rows, comm.size());
    }
}
