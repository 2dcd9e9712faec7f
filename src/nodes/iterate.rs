//! Iterative training (k-means' Lloyd steps): a node supplies one collective step; [`iterate`]
//! owns the loop: the iteration count, the checkpoint after every step and the stop.
//!
//! A job at its time limit gets SIGTERM (or, with Slurm's `--signal`, a warning signal first).
//! While a checkpointed iteration runs, [`crate::stop::request_stop`] turns that signal into a stop after
//! the current step: its checkpoint is written, every rank agrees to stop at the same step, and
//! the training ends with [`Error::Stopped`] (`--resume` continues from there), so the job
//! loses at most the step under way. A checkpointed node arms the stop before its
//! initialisation too, so a signal that comes then stops the loop after its first step.

use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::stop::Armed;

/// Collective: did a stop signal ([`crate::stop::request_stop`]) and did Ctrl-C
/// ([`crate::stop::interrupt`]) reach any rank? One reduction of two flags per step.
fn signalled(comm: &dyn Comm) -> (bool, bool) {
    let flag = |on: bool| if on { 1.0 } else { 0.0 };
    let mut flags = [flag(crate::stop::requested()), flag(crate::stop::interrupted())];
    comm.allreduce_max(&mut flags);
    (flags[0] > 0.0, flags[1] > 0.0)
}

/// One collective step of an iterative training.
pub trait Iterative {
    /// What the steps improve (k-means: the centroids).
    type State;
    /// Collective: the state one step after `state`, at iteration `it` (from 0), and whether
    /// the training has converged.
    fn step(&mut self, comm: &dyn Comm, state: &Self::State, it: usize) -> Result<(Self::State, bool)>;
    /// Collective: save `state` after `done` iterations, when the node keeps a checkpoint.
    fn checkpoint(&self, _comm: &dyn Comm, _state: &Self::State, _done: usize) -> Result<()> {
        Ok(())
    }
    /// Where the checkpoint goes, when the node keeps one: a signal then stops the loop after
    /// a step instead of ending the process.
    fn checkpoint_path(&self) -> Option<&std::path::Path> {
        None
    }
}

/// Where [`iterate`] stopped.
pub struct Outcome<S> {
    /// The last state.
    pub state: S,
    /// Iterations done (counting those before `start`).
    pub iterations: usize,
    /// Stopped because a step converged (not by `max_iter`).
    pub converged: bool,
}

/// Collective: step from `state`, which is `start` iterations old (a resumed checkpoint), until
/// a step converges or `max_iter` iterations are done; checkpoint after every step, and with a
/// checkpoint, stop after the step during which a signal came ([`crate::stop::request_stop`]);
/// Ctrl-C ([`crate::stop::interrupt`]) on any rank ends it after the step with
/// [`Error::Interrupted`].
pub fn iterate<I: Iterative>(comm: &dyn Comm, node: &mut I, mut state: I::State, start: usize, max_iter: usize) -> Result<Outcome<I::State>> {
    let armed = node.checkpoint_path().map(|p| (p.to_path_buf(), Armed::new()));
    let mut it = start;
    while it < max_iter {
        let (next, converged) = node.step(comm, &state, it)?;
        state = next;
        it += 1;
        node.checkpoint(comm, &state, it)?;
        if converged {
            return Ok(Outcome { state, iterations: it, converged: true });
        }
        if it == max_iter {
            break;
        }
        let (stop, interrupted) = signalled(comm);
        if interrupted {
            return Err(Error::Interrupted);
        }
        if let Some((path, _)) = armed.as_ref().filter(|_| stop) {
            crate::stop::mark_stopped();
            return Err(Error::Stopped(format!(
                "stopped by a signal after iteration {it} of at most {max_iter}; {} holds it: run the same training with --resume to continue",
                path.display()
            )));
        }
    }
    Ok(Outcome { state, iterations: it, converged: false })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Halves the distance to 1 each step, converged within `tol`; records its checkpoints.
    struct Halve {
        tol: f64,
        saved: RefCell<Vec<(f64, usize)>>,
        path: Option<std::path::PathBuf>,
    }

    impl Iterative for Halve {
        type State = f64;
        fn step(&mut self, _comm: &dyn Comm, x: &f64, it: usize) -> Result<(f64, bool)> {
            // Every earlier step's checkpoint is written before the next step starts.
            if let Some(&(_, done)) = self.saved.borrow().last() {
                assert_eq!(done, it);
            }
            let next = 1.0 + (x - 1.0) / 2.0;
            Ok((next, (next - 1.0).abs() <= self.tol))
        }
        fn checkpoint(&self, _comm: &dyn Comm, x: &f64, done: usize) -> Result<()> {
            self.saved.borrow_mut().push((*x, done));
            Ok(())
        }
        fn checkpoint_path(&self) -> Option<&std::path::Path> {
            self.path.as_deref()
        }
    }

    fn run(tol: f64, x: f64, start: usize, max_iter: usize) -> (f64, usize, bool, Vec<(f64, usize)>) {
        let mut h = Halve { tol, saved: RefCell::new(Vec::new()), path: None };
        let out = iterate(&crate::comm::SingleComm, &mut h, x, start, max_iter).unwrap();
        (out.state, out.iterations, out.converged, h.saved.into_inner())
    }

    #[test]
    fn the_loop_stops_on_convergence_or_max_iter_and_checkpoints_every_step() {
        // 9 → 5 → 3 → 2 → 1.5 → 1.25: within 0.3 after 5 steps, each checkpointed.
        let (x, it, conv, saved) = run(0.3, 9.0, 0, 100);
        assert_eq!((x, it, conv), (1.25, 5, true));
        assert_eq!(saved, vec![(5.0, 1), (3.0, 2), (2.0, 3), (1.5, 4), (1.25, 5)]);
        // The iteration limit first: not converged.
        let (x, it, conv, _) = run(0.3, 9.0, 0, 3);
        assert_eq!((x, it, conv), (2.0, 3, false));
        // Resumed after 3 iterations: counts on from 3; two steps from 2.0 are enough.
        let (x, it, conv, saved) = run(0.3, 2.0, 3, 10);
        assert_eq!((x, it, conv), (1.25, 5, true));
        assert_eq!(saved, vec![(1.5, 4), (1.25, 5)]);
        // A checkpoint of a finished training takes no step and writes nothing.
        assert_eq!(run(0.0, 2.0, 10, 10), (2.0, 10, false, vec![]));
    }

    #[test]
    fn a_signal_before_the_loop_of_an_armed_training_stops_it_after_its_first_step() {
        // As k-means with a checkpoint: armed before its initialisation, during which the
        // signal comes. (The only test here that signals: the flags are process-wide.)
        let outer = Armed::new();
        assert!(crate::stop::request_stop(), "an armed training keeps the signal");
        let mut h = Halve { tol: 0.0, saved: RefCell::new(Vec::new()), path: Some("ck.json".into()) };
        let err = iterate(&crate::comm::SingleComm, &mut h, 9.0, 0, 100).err().expect("stopped");
        assert!(err.to_string().contains("stopped by a signal after iteration 1 of at most 100"), "{err}");
        assert_eq!(h.saved.into_inner(), vec![(5.0, 1)]);
        drop(outer);
        assert_eq!(crate::stop::armed(), 0);
    }
}
