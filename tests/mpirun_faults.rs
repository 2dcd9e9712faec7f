//! Faults a batch job meets, on real `mpirun` jobs: a rank killed outright (not rank 0, and
//! rank 0), the launcher told to stop (SIGTERM, SIGINT: a time limit, a Ctrl-C), and a rank
//! stalled for 20 s. The job must end promptly and non-zero, keep the previous model byte for
//! byte, leave no temporary file and no process behind; a stalled rank only delays it.
mod common;
use common::*;
use std::time::{Duration, Instant};

/// A k-means that trains for minutes unless stopped, writing `model` (which holds "OLD").
fn long_training(dir: &std::path::Path) -> (std::process::Child, String) {
    let data = dir.join("x.npy");
    write_npy(&data, 200_000, 8);
    let model = dir.join("m.json");
    std::fs::write(&model, "OLD").unwrap();
    let flow = "kmeans(k=32, init=random, seed=1, max_iter=100000, tol=0)";
    let child = mpirun_spawn(3, &["train", "--data", data.to_str().unwrap(), "--flow", flow, "--model", model.to_str().unwrap()]);
    (child, model.to_str().unwrap().to_string())
}

/// The three ranks, once they have trained for a while.
fn ranks_under_way(marker: &str) -> Vec<(usize, i32)> {
    let t0 = Instant::now();
    while rank_pids(marker).len() < 3 {
        assert!(t0.elapsed() < Duration::from_secs(60), "the ranks never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500));
    rank_pids(marker)
}

/// After the fault: ended within `limit`, non-zero, old model intact, no temporary, no rank left.
fn ended_cleanly(child: &mut std::process::Child, dir: &std::path::Path, marker: &str, what: &str, limit: Duration) {
    let t0 = Instant::now();
    let status = wait_at_most(child, Duration::from_secs(60)).unwrap_or_else(|| panic!("{what}: the job still ran after 60 s"));
    assert!(t0.elapsed() < limit, "{what}: the job took {:?} to end", t0.elapsed());
    eprintln!("{what}: the job ended in {:?}", t0.elapsed());
    assert!(!status.success(), "{what}: the job exited 0");
    assert_eq!(std::fs::read_to_string(dir.join("m.json")).unwrap(), "OLD", "{what}: the previous model changed");
    assert_eq!(files_in(dir), ["m.json", "x.npy"], "{what}: files left behind");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(rank_pids(marker), [], "{what}: ranks left running");
}

#[test]
fn a_rank_killed_outright_ends_the_job_and_keeps_the_old_model() {
    for victim in [1, 0] {
        let dir = scratch(&format!("kill9-{victim}"));
        let (mut child, marker) = long_training(&dir);
        let ranks = ranks_under_way(&marker);
        assert!(child.try_wait().unwrap().is_none(), "the training ended before the fault");
        signal(ranks[victim].1, libc::SIGKILL);
        ended_cleanly(&mut child, &dir, &marker, &format!("kill -9 of rank {victim}"), Duration::from_secs(10));
    }
}

#[test]
fn sigterm_or_sigint_to_mpirun_ends_the_job_and_keeps_the_old_model() {
    for (sig, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let dir = scratch(&format!("launcher-{name}"));
        let (mut child, marker) = long_training(&dir);
        ranks_under_way(&marker);
        assert!(child.try_wait().unwrap().is_none(), "the training ended before the signal");
        signal(child.id() as i32, sig);
        ended_cleanly(&mut child, &dir, &marker, &format!("{name} to mpirun"), Duration::from_secs(10));
    }
}

#[test]
fn a_rank_stopped_for_20_s_only_delays_the_job() {
    let dir = scratch("sigstop");
    let data = dir.join("x.npy");
    write_npy(&data, 200_000, 8);
    let flow = "kmeans(k=32, init=random, seed=1, max_iter=300, tol=0)";
    let (want, got) = (dir.join("want.json"), dir.join("got.json"));
    mpirun(3, &["train", "--data", data.to_str().unwrap(), "--flow", flow, "--model", want.to_str().unwrap()]).ok();
    assert_eq!(node(&read_json(&want), 0)["n_iter"], 300, "the run must still iterate when the rank stops");

    let marker = got.to_str().unwrap();
    let mut child = mpirun_spawn(3, &["train", "--data", data.to_str().unwrap(), "--flow", flow, "--model", marker]);
    let t0 = Instant::now();
    while rank_pids(marker).len() < 3 {
        assert!(t0.elapsed() < Duration::from_secs(60), "the ranks never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let rank1 = rank_pids(marker)[1].1;
    signal(rank1, libc::SIGSTOP);
    assert!(child.try_wait().unwrap().is_none(), "the training ended before the stop");
    std::thread::sleep(Duration::from_secs(20));
    assert!(child.try_wait().unwrap().is_none(), "the job ended while a rank was stopped");
    signal(rank1, libc::SIGCONT);
    let status = wait_at_most(&mut child, Duration::from_secs(120)).expect("the job never ended after SIGCONT");
    assert!(status.success(), "the job failed after SIGCONT");
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&want).unwrap(), "the model differs from an undisturbed run's");
}
