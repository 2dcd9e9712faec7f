//! How many threads a rank may use: ranks on this node from the launcher's environment, cores
//! ÷ ranks, and the bounds on a count a user asks for. Read before MPI starts and by every layer
//! (data options, the parallel map, BLAS), so it sits at the bottom.

/// Ranks on this node, from the launcher's environment (Open MPI, MPICH/Hydra, Slurm); 1 when
/// unknown.
pub fn local_ranks() -> usize {
    let var = |k: &str| std::env::var(k).ok();
    ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"]
        .iter()
        .find_map(|k| var(k)?.parse::<usize>().ok())
        .or_else(|| {
            // Slurm: this node's entry of a compressed per-node list such as "4(x2),3".
            let node = var("SLURM_NODEID").and_then(|n| n.parse().ok()).unwrap_or(0);
            ["SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE", "SLURM_NTASKS_PER_NODE"].iter().find_map(|k| slurm_tasks_on_node(&var(k)?, node))
        })
        .unwrap_or(1)
        .max(1)
}

/// Entry `node` of Slurm's compressed per-node counts ("4(x2),3" = 4, 4, 3).
fn slurm_tasks_on_node(list: &str, node: usize) -> Option<usize> {
    let mut at = 0;
    for item in list.split(',') {
        let (count, times) = match item.split_once("(x") {
            Some((c, t)) => (c, t.strip_suffix(')')?.parse::<usize>().ok()?),
            None => (item, 1),
        };
        let count = count.trim().parse::<usize>().ok()?;
        if node < at + times {
            return Some(count);
        }
        at += times;
    }
    None
}

/// The most threads a rank starts: 8 per core of this machine, at least 64. More only slow a
/// job down, and far more (`--threads 100000`) fail to spawn, which aborted the process.
pub fn max_threads() -> usize {
    (8 * std::thread::available_parallelism().map_or(1, |n| n.get())).max(64)
}

/// A thread count the user asked for (`what`: the option or variable) if it is 1 to
/// [`max_threads`], else a parameter error that says the range.
pub fn check_threads(n: usize, what: &str) -> crate::error::Result<usize> {
    if (1..=max_threads()).contains(&n) {
        return Ok(n);
    }
    Err(crate::error::Error::Param(format!("{what} {n}: give 1 to {} threads (8 per core of this machine, at least 64)", max_threads())))
}

/// `FLOWMPI_THREADS` checked: unset, or a count [`check_threads`] accepts.
pub fn check_threads_variable() -> crate::error::Result<()> {
    match std::env::var("FLOWMPI_THREADS") {
        Ok(v) => {
            let n = v.trim().parse::<usize>().map_err(|_| crate::error::Error::Param(format!("FLOWMPI_THREADS={v:?} is not a thread count")))?;
            check_threads(n, "FLOWMPI_THREADS").map(drop)
        }
        Err(_) => Ok(()),
    }
}

/// Threads each rank may use so that ranks × threads ≤ cores: `FLOWMPI_THREADS` if set,
/// else available cores ÷ ranks on this node (at least 1); never more than [`max_threads`].
pub fn threads_per_rank() -> usize {
    if let Some(n) = std::env::var("FLOWMPI_THREADS").ok().and_then(|v| v.trim().parse::<usize>().ok()) {
        return n.clamp(1, max_threads());
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / local_ranks()).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_per_node_lists_are_expanded() {
        assert_eq!(slurm_tasks_on_node("4", 0), Some(4));
        assert_eq!(slurm_tasks_on_node("4(x2),3", 1), Some(4));
        assert_eq!(slurm_tasks_on_node("4(x2),3", 2), Some(3));
        assert_eq!(slurm_tasks_on_node("4(x2),3", 3), None);
        assert_eq!(slurm_tasks_on_node("2(x", 0), None);
    }
}
