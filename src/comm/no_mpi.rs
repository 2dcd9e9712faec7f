//! The init/fini guard of a build without MPI (`--no-default-features`): one rank.

use super::SingleComm;

/// The init/fini guard without MPI: the world is this one process.
pub struct Context {
    comm: SingleComm,
}

impl Context {
    /// A world of one rank.
    pub fn init() -> Context {
        Context { comm: SingleComm }
    }

    /// What ends the whole job after an uncaught panic: nothing to do with one process.
    pub fn job_abort(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
        None
    }

    /// The communicator: this process alone.
    pub fn comm(&self) -> &SingleComm {
        &self.comm
    }
}
