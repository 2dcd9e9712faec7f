//! The init/fini guard of a build without MPI (`--no-default-features`): one rank.

use super::SingleComm;

/// The init/fini guard without MPI: the world is this one process. It installs the same panic
/// hook as the MPI build (no half-written output outlives a panic).
pub struct Context {
    comm: SingleComm,
}

impl Context {
    /// A world of one rank.
    pub fn init() -> Context {
        super::install_panic_hook(None);
        Context { comm: SingleComm }
    }

    /// The communicator: this process alone.
    pub fn comm(&self) -> &SingleComm {
        &self.comm
    }
}
