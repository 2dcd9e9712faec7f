//! Commands under the limits batch systems set (`ulimit -v`, PBS `vmem`): they run, or fail
//! with one clear message; never an abort.

mod common;
use common::*;
use std::process::Command;

/// `flowmpi args` as one rank under an address-space limit of `kib` KiB.
fn limited(kib: u64, args: &[&str]) -> (i32, String, String) {
    let mut c = Command::new("sh");
    c.arg("-c").arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\"")).arg(BIN).args(args);
    c.env("OMPI_ALLOW_RUN_AS_ROOT", "1").env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1").env("OPENBLAS_NUM_THREADS", "1");
    let o = c.output().unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn one_rank_runs_under_an_address_space_limit() {
    // The allgather reserved 1 GiB + 1 for its send buffer up front: every single-rank command
    // aborted under a limit of ~1.2 GB.
    let dir = scratch("ulimit");
    let m = dir.join("m.json");
    let (code, _, err) = limited(900_000, &["train", "--data", "data/example", "--flow", "moments | pca(n=2)", "--model", m.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = limited(900_000, &["stats", "--data", "data/example"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rows: 4000"), "{out}");
}

#[test]
fn a_state_beyond_the_address_space_limit_is_refused_not_aborted() {
    // The memory guard compared with MemTotal only: hist(bins=4e6) on 8 columns under a
    // limit of ~2.9 GB aborted in an allocation.
    let dir = scratch("ulimit-state");
    let m = dir.join("m.json");
    let (code, _, err) = limited(3_000_000, &["train", "--data", "data/example", "--flow", "hist(bins=4000000)", "--model", m.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("address-space limit (ulimit -v)") && !err.contains("Aborted") && !err.contains("allocation"), "{err}");
    assert!(!m.exists());
}
