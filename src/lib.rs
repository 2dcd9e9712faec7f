//! flowmpi: SPMD training of MDP-style flows of statistical nodes over sharded data.
//!
//! Every rank reads its own shards, computes local partial statistics, and collectives join them
//! so that the trained model is identical on every rank. The same code runs as one process
//! (no MPI launcher), under `mpirun`/`srun`, or over simulated ranks in tests.
//!
//! Library use follows daal4py's `daalinit()`/`daalfini()`:
//!
//! ```no_run
//! use flowmpi::nodes::{Node, PcaNode, PcaParams};
//! let ctx = flowmpi::Context::init();          // MPI_Init (or borrow an initialised MPI)
//! let comm = ctx.comm();
//! let local = ndarray::Array2::<f64>::zeros((100, 3)); // this rank's rows
//! let names: Vec<String> = vec!["a".into(), "b".into(), "c".into()];
//! let mut pca = PcaNode::new(PcaParams { n: Some(2), ..Default::default() });
//! pca.fit(comm, local.view(), &names).unwrap(); // same model on every rank
//! drop(ctx);                                    // MPI_Finalize (if we initialised)
//! ```
//! See `examples/library.rs` for a complete program.
#![deny(missing_docs)]

pub mod cache;
pub mod cli;
pub mod comm;
/// The CLI's helper: thread counts per rank.
#[doc(hidden)]
pub mod cores;
pub mod error;
pub mod flow;
pub mod io;
pub mod jobs;
mod launch;
pub mod log;
pub mod model;
pub mod nodes;
pub mod panics;
pub mod par;
/// The CLI's helper: progress lines.
#[doc(hidden)]
pub mod plot;
pub mod progress;
pub mod score;
mod spawn;
pub mod stats;
/// Stopping cleanly on a signal: a batch system's time limit, or Ctrl-C in an interactive caller.
pub mod stop;
/// The CLI's helper: `flowmpi map`'s task farm (the library's is [`par`]).
#[doc(hidden)]
pub mod taskfarm;
#[cfg(test)]
mod testing;
pub mod threads;

// What a program needs, at the top: the init/fini guard and communicators, flows and how to
// train them, data, models and errors. Nodes (and `nodes::define` for your own), `par`, `io`
// and `log` are modules of their own.
#[cfg(feature = "mpi")]
pub use comm::MpiComm;
pub use comm::{Comm, Context};
pub use error::{Error, Result};
pub use flow::{Flow, Rows, TrainOptions};
pub use io::{DataOptions, Dataset};
pub use model::Model;
