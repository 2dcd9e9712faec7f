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

/// Threads each rank may use so that ranks × threads ≤ cores: `FLOWMPI_THREADS` if set, else
/// [`default_layout`]'s count; never more than [`max_threads`].
pub fn threads_per_rank() -> usize {
    if let Some(n) = std::env::var("FLOWMPI_THREADS").ok().and_then(|v| v.trim().parse::<usize>().ok()) {
        return n.clamp(1, max_threads());
    }
    default_layout().0
}

/// The default thread count of a rank and why: the cores its affinity mask allows, as they
/// are when the launcher bound the rank to fewer cores than the machine has (`mpirun
/// --bind-to`, `srun --cpu-bind`), else divided among the ranks on this node.
pub fn default_layout() -> (usize, String) {
    let mask = std::thread::available_parallelism().map_or(1, |n| n.get());
    // SAFETY: sysconf only reads a system setting.
    let online = usize::try_from(unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }).unwrap_or(mask).max(1);
    let ranks = local_ranks();
    if mask < online {
        return (mask, format!("the {mask} of {online} cores this rank is bound to"));
    }
    let n = (mask / ranks).max(1);
    (n, format!("{mask} cores / {ranks} rank{} on this node", if ranks == 1 { "" } else { "s" }))
}

/// A `-v` line on who owns this rank's cores: `threads` threads work on the rows (and why that
/// many), each calling BLAS on one thread; with one, OpenBLAS's own threads serve it. Also a
/// warning when the launcher bound the rank to fewer cores than that (the threads would take
/// turns on them), saying how to give it more.
pub fn describe_layout(threads: usize) -> (String, Option<String>) {
    let (default, why) = default_layout();
    let why = match std::env::var("FLOWMPI_THREADS") {
        Ok(v) if v.trim().parse() == Ok(threads) => "FLOWMPI_THREADS".to_string(),
        _ if threads == default => why,
        _ => "--threads".to_string(),
    };
    let line = match (threads, blas_threads()) {
        (1, 1) => format!("threads: 1 per rank ({why}); BLAS on 1 thread"),
        (1, b) => format!("threads: 1 per rank ({why}); BLAS calls on {b} threads"),
        (t, _) => format!("threads: {t} per rank ({why}) work on the rows, each calling BLAS on one thread"),
    };
    let mask = std::thread::available_parallelism().map_or(1, |n| n.get());
    let warning = (threads > mask).then(|| {
        format!(
            "{threads} threads per rank, but the launcher bound this rank to {mask} core{}: they take turns. Give mpirun --bind-to none \
             (or --map-by slot:PE={threads}), srun --cpus-per-task={threads}; or fewer --threads",
            if mask == 1 { "" } else { "s" }
        )
    });
    (line, warning)
}

extern "C" {
    fn openblas_set_num_threads(n: std::os::raw::c_int);
    fn openblas_get_num_threads() -> std::os::raw::c_int;
}

/// Threads OpenBLAS uses for one call.
pub fn blas_threads() -> usize {
    // SAFETY: a plain getter of OpenBLAS.
    usize::try_from(unsafe { openblas_get_num_threads() }).unwrap_or(1).max(1)
}

/// Give OpenBLAS `n` threads per call (process-wide: OpenBLAS has no other setting).
pub fn set_blas_threads(n: usize) {
    // SAFETY: a plain setter of OpenBLAS; the callers change it only from the rank's own
    // thread, between parallel regions.
    unsafe { openblas_set_num_threads(n.clamp(1, 1 << 16) as _) };
}

/// While alive, OpenBLAS runs every call on its caller's thread alone: our threads own the
/// cores, and each calls BLAS on its own part of the rows. OpenBLAS's own threads serving
/// several callers at once would oversubscribe the cores (or serialise the callers).
pub struct BlasOnOneThread(usize);

impl BlasOnOneThread {
    /// BLAS on one thread until dropped.
    pub fn new() -> Self {
        let before = blas_threads();
        if before > 1 {
            set_blas_threads(1);
        }
        BlasOnOneThread(before)
    }
}

impl Default for BlasOnOneThread {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for BlasOnOneThread {
    fn drop(&mut self) {
        if self.0 > 1 {
            set_blas_threads(self.0);
        }
    }
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
