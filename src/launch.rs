//! Facts about how the job was launched (which launcher, one node or several, BLAS threads) and
//! sanity checks that catch a binary started by a launcher of a different MPI.

use crate::comm::Comm;
use crate::cores::threads_per_rank;
use crate::log::Log;

/// This process's rank as the launcher set it (Open MPI, MPICH/Hydra, PMIx, Slurm), readable
/// before MPI is initialised; 0 when unknown (a plain run is rank 0).
pub fn launcher_rank() -> usize {
    ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"].iter().find_map(|k| std::env::var(k).ok()?.parse::<usize>().ok()).unwrap_or(0)
}

/// Whether every rank of the job runs on this node, as far as the launcher says (Open MPI's
/// mpirun, Slurm, MPICH/Hydra); a run without a launcher is one rank, so yes.
pub fn single_node() -> bool {
    let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
    if let (Some(local), Some(world)) = (var("OMPI_COMM_WORLD_LOCAL_SIZE"), var("OMPI_COMM_WORLD_SIZE")) {
        return local == world;
    }
    if let Some(nodes) = var("SLURM_STEP_NUM_NODES").or_else(|| var("SLURM_NNODES")) {
        return nodes == 1;
    }
    if let (Some(local), Some(world)) = (var("MPI_LOCALNRANKS"), var("PMI_SIZE")) {
        return local == world;
    }
    ["PMI_SIZE", "PMIX_RANK", "SLURM_PROCID"].iter().all(|k| std::env::var_os(k).is_none())
}

/// On one node, ask Open MPI for its shared-memory path (`pml ob1`: the vader and self
/// transports) unless the user or a config file chose a pml or mtl. Returns whether it did.
///
/// Why: Open MPI 4 first tries its `cm` pml, which probes the network MTLs (libfabric, PSM,
/// PSM2); on a machine without such networks that costs ~0.2 s of MPI_Init per process
/// (`mpirun -n 2 flowmpi train` on the 4,000-row example: 0.33 s → 0.12 s) and on one node it
/// buys nothing. Choosing a pml (`mpirun --mca pml …`, `OMPI_MCA_pml`, `pml = …` in
/// `mca-params.conf`) switches this off. Only the CLI calls it, first thing in `main`: it sets
/// an environment variable, which is only sound while the process has one thread.
pub fn prefer_shared_memory() -> bool {
    if !single_node() || ["OMPI_MCA_pml", "OMPI_MCA_mtl"].iter().any(|k| std::env::var_os(k).is_some()) {
        return false;
    }
    // A config file that *selects* a pml wins; exclusion lists (`pml = ^ucx`, as Debian ships) do
    // not forbid ob1.
    let files = [
        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".openmpi/mca-params.conf")),
        std::env::var_os("OPAL_PREFIX").map(|p| std::path::PathBuf::from(p).join("etc/openmpi-mca-params.conf")),
        Some("/etc/openmpi/openmpi-mca-params.conf".into()),
    ];
    if files.iter().flatten().any(|f| std::fs::read_to_string(f).is_ok_and(|t| selects_pml(&t))) {
        return false;
    }
    std::env::set_var("OMPI_MCA_pml", "ob1");
    true
}

/// Whether an Open MPI `mca-params.conf` text selects a pml (`pml = cm`), as opposed to
/// excluding some (`pml = ^ucx`) or not mentioning it.
fn selects_pml(text: &str) -> bool {
    text.lines().filter_map(|l| l.split_once('=')).any(|(k, v)| k.trim() == "pml" && !v.trim().starts_with('^'))
}

/// Give OpenBLAS [`threads_per_rank`] threads unless the user set OPENBLAS_NUM_THREADS or
/// OMP_NUM_THREADS (BLAS threads of every rank on a node would otherwise oversubscribe it).
pub fn configure_blas_threads() {
    if std::env::var_os("OPENBLAS_NUM_THREADS").is_some() || std::env::var_os("OMP_NUM_THREADS").is_some() {
        return;
    }
    crate::cores::set_blas_threads(threads_per_rank());
}

/// The number of processes the launcher started, from its environment: Open MPI's, Hydra's
/// and PMIx's size variables, or Slurm's task count for an `srun` step. In a batch script
/// outside `srun` (`SLURM_JOB_ID` set, no step id), `SLURM_NTASKS` is the allocation's size, not
/// this process's world, so it is not consulted there.
pub fn launcher_size() -> Option<(&'static str, usize)> {
    let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
    let in_step = std::env::var_os("SLURM_STEP_ID").is_some() || std::env::var_os("SLURM_STEPID").is_some();
    let slurm_ntasks = in_step || std::env::var_os("SLURM_JOB_ID").is_none();
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"]
        .into_iter()
        .filter(|k| *k != "SLURM_NTASKS" || slurm_ntasks)
        .find_map(|k| var(k).map(|n| (k, n)))
}

/// Fail when the launcher and the MPI world disagree: a binary built against another MPI than
/// the launcher's runs as N independent one-rank jobs, each training on its own shard only and
/// all writing the same model — a silently wrong result. `allow` turns the error into a warning.
pub fn check_launch(comm: &dyn Comm, log: &Log, allow: bool) -> crate::Result<()> {
    let Some((var, n)) = launcher_size() else { return Ok(()) };
    if n <= 1 || comm.size() != 1 {
        return Ok(());
    }
    let why = if cfg!(feature = "mpi") {
        "flowmpi was probably built against a different MPI than the launcher's (check `srun --mpi=list` and try \
         `srun --mpi=pmix`, or rebuild with the cluster's mpicc on PATH)"
    } else {
        "this flowmpi was built without MPI (cargo --no-default-features); build it with the default features"
    };
    let what = format!(
        "{var}={n} but the MPI world has 1 rank: the launcher started {n} processes that each run alone, so each \
         would train on its own shard and write the same file. {why}"
    );
    if allow {
        log.warn(format!("{what}; continuing because of --allow-launch-mismatch"));
        return Ok(());
    }
    Err(crate::Error::Param(format!("{what}. Pass --allow-launch-mismatch to run anyway")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_selects_a_pml_only_by_name() {
        assert!(selects_pml("btl = ^openib\npml = cm\n"));
        assert!(selects_pml("pml=ob1"));
        assert!(!selects_pml("pml = ^ucx\nmtl = ^ofi\n"));
        assert!(!selects_pml("# pml = cm\n"));
        assert!(!selects_pml("pml_ob1_priority = 10\n"));
    }
}
