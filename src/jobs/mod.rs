//! What the command line's commands do, as library functions: each takes a communicator, the
//! data options and its own options struct, and does the whole job (checks before any work,
//! the collective work, outputs written atomically, the log lines), so the CLI, the Python
//! package and any program call the same code. Every function is collective: all ranks call
//! it, and an error on any rank is returned on every rank.

mod execute;
mod plot;
mod sort;
mod train;

pub use execute::{execute, ExecuteJob, Executed};
pub use plot::{plot_sample, PlotJob, Plotted};
pub use sort::{sort, SortJob, Sorted};
pub use train::{train, updatable, TrainJob, Trained};
