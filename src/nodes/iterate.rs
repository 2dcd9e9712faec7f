//! Iterative training (k-means' Lloyd steps): a node supplies one collective step; [`iterate`]
//! owns the loop: the iteration count, the checkpoint after every step and the stop.

use crate::comm::Comm;
use crate::error::Result;

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
/// a step converges or `max_iter` iterations are done; checkpoint after every step.
pub fn iterate<I: Iterative>(comm: &dyn Comm, node: &mut I, mut state: I::State, start: usize, max_iter: usize) -> Result<Outcome<I::State>> {
    let mut it = start;
    while it < max_iter {
        let (next, converged) = node.step(comm, &state, it)?;
        state = next;
        it += 1;
        node.checkpoint(comm, &state, it)?;
        if converged {
            return Ok(Outcome { state, iterations: it, converged: true });
        }
    }
    Ok(Outcome { state, iterations: it, converged: false })
}
