//! Facts about how the job was launched: ranks per node, threads per rank, and sanity checks
//! that catch a binary started by a launcher of a different MPI.

use crate::comm::Comm;
use crate::log::Log;

/// Ranks on this node, from the launcher's environment (Open MPI, MPICH/Hydra, Slurm); 1 when
/// unknown.
pub fn local_ranks() -> usize {
    ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"]
        .iter()
        .find_map(|k| std::env::var(k).ok()?.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1)
}

/// This process's rank as the launcher set it (Open MPI, MPICH/Hydra, PMIx, Slurm), readable
/// before MPI is initialised; 0 when unknown (a plain run is rank 0).
pub fn launcher_rank() -> usize {
    ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"]
        .iter()
        .find_map(|k| std::env::var(k).ok()?.parse::<usize>().ok())
        .unwrap_or(0)
}

/// Threads each rank may use so that ranks × threads ≤ cores: `FLOWMPI_THREADS` if set,
/// else available cores ÷ ranks on this node (at least 1).
pub fn threads_per_rank() -> usize {
    if let Some(n) = std::env::var("FLOWMPI_THREADS").ok().and_then(|v| v.parse::<usize>().ok()) {
        return n.max(1);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / local_ranks()).max(1)
}

/// Give OpenBLAS [`threads_per_rank`] threads unless the user set OPENBLAS_NUM_THREADS or
/// OMP_NUM_THREADS (BLAS threads of every rank on a node would otherwise oversubscribe it).
pub fn configure_blas_threads() {
    if std::env::var_os("OPENBLAS_NUM_THREADS").is_some() || std::env::var_os("OMP_NUM_THREADS").is_some() {
        return;
    }
    extern "C" {
        fn openblas_set_num_threads(n: std::os::raw::c_int);
    }
    // SAFETY: a plain setter of OpenBLAS, called before any BLAS work.
    unsafe { openblas_set_num_threads(threads_per_rank() as _) };
}

/// Warn when the launcher and the MPI world disagree: a binary built against another MPI than
/// the launcher's runs as N independent one-rank jobs, each training on its own shard only.
pub fn check_launch(comm: &dyn Comm, log: &Log) {
    for var in ["SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"] {
        if let Some(n) = std::env::var(var).ok().and_then(|v| v.parse::<usize>().ok()) {
            if n > 1 && comm.size() == 1 {
                log.warn(format!(
                    "{var}={n} but the MPI world has 1 rank: every process is running alone. flowmpi was \
                     probably built against a different MPI than the launcher (check `srun --mpi=list`, or \
                     rebuild with the cluster's mpicc on PATH)."
                ));
                return;
            }
        }
    }
}
