//! A clean stop asked by a signal: a batch system's time limit (SIGTERM) or Slurm's warning
//! before it (`--signal`, SIGUSR1/SIGUSR2).
//!
//! Work that can stop cleanly arms the stop while it runs ([`Armed`]): a checkpointed k-means
//! stops after its current step, a task farm starts no new task and reports what finished.
//! The signal handler calls [`request_stop`]; when nothing is armed, it ends the process as the
//! signal would instead.
//!
//! An interactive caller (the Python package, while a call runs) turns Ctrl-C into
//! [`interrupt`] instead: a training then ends at its next chunk or iteration with
//! [`crate::Error::Interrupted`], agreed over the ranks like any other error, so none hangs.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Work that can stop cleanly, under way in this process, nested (k-means arms its whole
/// training, and its loop arms itself).
static ARMED: AtomicUsize = AtomicUsize::new(0);
/// A signal asked it to stop.
static STOP: AtomicBool = AtomicBool::new(false);
/// It stopped for a signal, and the process is ending with what it kept.
static STOPPED: AtomicBool = AtomicBool::new(false);
/// Ctrl-C asked the running work to end now ([`interrupt`]).
static INTERRUPT: AtomicBool = AtomicBool::new(false);

/// For a SIGINT handler of an interactive caller: ask the running work to end at its next
/// chunk of rows or iteration with [`crate::Error::Interrupted`]. Async-signal-safe (one atomic
/// store); the caller clears it with [`clear_interrupt`] before its next call.
pub fn interrupt() {
    INTERRUPT.store(true, Ordering::SeqCst);
}

/// Whether [`interrupt`] was called since the last [`clear_interrupt`] (local).
pub fn interrupted() -> bool {
    INTERRUPT.load(Ordering::SeqCst)
}

/// Forget an earlier [`interrupt`].
pub fn clear_interrupt() {
    INTERRUPT.store(false, Ordering::SeqCst);
}

/// For a signal handler: ask the armed work to stop. False when none runs; the caller then
/// ends the process as the signal would. True too once one has stopped for a signal: a rank's
/// own signal may be handled only after another rank's has already stopped every rank, and it
/// must not then kill the rank.
pub fn request_stop() -> bool {
    STOP.store(true, Ordering::SeqCst);
    ARMED.load(Ordering::SeqCst) > 0 || STOPPED.load(Ordering::SeqCst)
}

/// Whether a signal asked this process to stop (local; agree over the ranks before acting).
pub fn requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Record that the work stopped for a signal (the process ends with what it kept).
pub(crate) fn mark_stopped() {
    STOPPED.store(true, Ordering::SeqCst);
}

/// Arms [`request_stop`] while it lives. Checkpointed work arms itself before what precedes
/// its loop (k-means' initialisation can take minutes): a signal then is kept, and the loop
/// stops after its first step, which saves the initialisation, instead of the process ending
/// with nothing saved.
pub struct Armed;

impl Armed {
    /// Arm; the outermost clears an earlier stop.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        // Only the outermost clears an earlier training's stop: an inner one keeps the
        // signal that came while the outer one was armed.
        if ARMED.load(Ordering::SeqCst) == 0 {
            STOP.store(false, Ordering::SeqCst);
        }
        ARMED.fetch_add(1, Ordering::SeqCst);
        Armed
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        ARMED.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How many [`Armed`] live (tests).
#[cfg(test)]
pub(crate) fn armed() -> usize {
    ARMED.load(Ordering::SeqCst)
}
