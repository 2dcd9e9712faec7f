//! A library caller's view of a panic: a node whose own code panics (on one rank, or on all)
//! ends training with an `Error` on every rank, and the process and the communicator live on
//! (no abort hook: the library installs none). Ranks are threads (`ThreadComm`), the way a
//! host program's threads would call it.

use flowmpi::comm::run_threads;
use flowmpi::io::{Chunk, Schema};
use flowmpi::nodes::define::{register, Kind, NodeParams, Partial, Report, Transform};
use flowmpi::nodes::NodeSpec;
use flowmpi::{Comm, Flow, Result};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// A node that panics in its statistics on a row holding `at`, or in its fit when `in_fit`.
#[derive(Clone, Serialize, Deserialize)]
struct Panicky {
    at: f64,
    in_fit: bool,
}

#[derive(Serialize, Deserialize)]
struct Count(f64, f64);

#[derive(Serialize, Deserialize)]
struct Fitted(f64);

impl NodeParams for Panicky {
    const KIND: Kind = Kind::new("panicky", &["at", "in_fit"], "panicky(at=13, in_fit=0): panics, for a test");
    type Partial = Count;
    type Model = Fitted;
    fn from_spec(spec: &NodeSpec) -> Result<Self> {
        Ok(Panicky { at: spec.get("at")?.unwrap_or(13.0), in_fit: spec.get::<f64>("in_fit")?.unwrap_or(0.0) != 0.0 })
    }
    fn spec(&self) -> String {
        format!("panicky(at={}, in_fit={})", self.at, self.in_fit as u8)
    }
    fn partial(&self, _: &Schema) -> Count {
        Count(0.0, self.at)
    }
    fn finalize(&self, c: Count, _: &Schema) -> Result<Fitted> {
        if self.in_fit {
            panic!("fit of {} rows", c.0);
        }
        Ok(Fitted(c.0))
    }
}

impl Partial for Count {
    fn update(&mut self, chunk: &Chunk) -> Result<()> {
        if chunk.x.iter().any(|v| *v == self.1) {
            panic!("met the value {}", self.1);
        }
        self.0 += chunk.rows() as f64;
        Ok(())
    }
    fn merge(&mut self, other: Count) {
        self.0 += other.0;
    }
}

impl Transform for Fitted {
    fn output_names(&self, input: &[String]) -> Vec<String> {
        input.to_vec()
    }
    fn transform(&self, x: ArrayView2<f64>) -> Array2<f64> {
        x.to_owned()
    }
}

impl Report for Fitted {}

#[test]
fn a_panicking_node_is_an_error_on_every_rank_and_the_process_lives_on() {
    register::<Panicky>().expect("register");
    let names = vec!["a".to_string(), "b".to_string()];
    for ranks in 1..=4 {
        let out = run_threads(ranks, |comm| {
            // Rank 1 (or the only rank) holds the value that makes the node panic; rank 2 none.
            let rows = if comm.rank() == 2 { 0 } else { 3 };
            let x = Array2::from_shape_fn((rows, 2), |(i, j)| if comm.rank() == 1.min(ranks - 1) && i == 2 && j == 1 { 13.0 } else { (i + j) as f64 });
            let mut flow = Flow::parse("panicky(at=13)").unwrap();
            let in_update = flow.fit(comm, x.view(), &names).err().map(|e| e.to_string());
            let mut flow = Flow::parse("panicky(at=-1, in_fit=1)").unwrap();
            let in_fit = flow.fit(comm, x.view(), &names).err().map(|e| e.to_string());
            // The communicator still works: a healthy flow trains on the same rows.
            let mut flow = Flow::parse("moments").unwrap();
            let after = flow.fit(comm, x.view(), &names).map(|r| r.rows);
            (in_update, in_fit, after)
        });
        let total = (0..ranks).map(|r| if r == 2 { 0 } else { 3 }).sum::<u64>();
        for (r, (in_update, in_fit, after)) in out.into_iter().enumerate() {
            let e = in_update.unwrap_or_else(|| panic!("{ranks} ranks, rank {r}: no error from a panic in update"));
            assert!(e.contains("node panicky panicked: met the value 13"), "{ranks} ranks, rank {r}: {e}");
            let e = in_fit.unwrap_or_else(|| panic!("{ranks} ranks, rank {r}: no error from a panic in the fit"));
            assert!(e.contains(&format!("node panicky panicked: fit of {total} rows")), "{ranks} ranks, rank {r}: {e}");
            assert_eq!(after.unwrap(), total, "{ranks} ranks, rank {r}: training after the panics");
        }
    }
}
