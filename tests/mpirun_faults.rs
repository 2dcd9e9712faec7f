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
    let flow = "kmeans(k=32, init=random, seed=1, max_iter=300, tol=0)";
    let (dir, data, _) = kmeans_reference("sigstop", 200_000, 3, flow, 300);
    let (want, got) = (dir.join("full.json"), dir.join("got.json"));

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

#[test]
fn a_checkpointed_kmeans_killed_anywhere_resumes_to_the_same_bits() {
    // kill -9 of a rank (the checkpoint is whatever rank 0 last renamed into place), or SIGTERM
    // / SIGUSR1 to mpirun (it forwards them: the ranks stop after the iteration under way), at
    // several moments; --resume on the same rank count ends at the uninterrupted run's bits.
    let flow = "kmeans(k=48, init=random, n_init=1, seed=5, max_iter=400, tol=0)";
    let (dir, data, want) = kmeans_reference("kmkill", 300_000, 2, flow, 400);
    for (k, (what, delay_ms)) in
        [("kill -9 of rank 1", 100u64), ("kill -9 of rank 0", 400), ("SIGTERM to mpirun", 250), ("SIGUSR1 to mpirun", 50)].into_iter().enumerate()
    {
        let (ck, model) = (dir.join(format!("ck{k}.json")), dir.join(format!("m{k}.json")));
        let args = ["train", "--data", data.to_str().unwrap(), "--flow", flow, "--model", model.to_str().unwrap(), "--checkpoint", ck.to_str().unwrap()];
        let mut child = mpirun_spawn(2, &args);
        let t0 = Instant::now();
        while !ck.exists() {
            assert!(t0.elapsed() < Duration::from_secs(60) && child.try_wait().unwrap().is_none(), "{what}: no checkpoint appeared");
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        let ranks = rank_pids(model.to_str().unwrap());
        match what {
            "kill -9 of rank 1" => signal(ranks[1].1, libc::SIGKILL),
            "kill -9 of rank 0" => signal(ranks[0].1, libc::SIGKILL),
            "SIGTERM to mpirun" => signal(child.id() as i32, libc::SIGTERM),
            _ => signal(child.id() as i32, libc::SIGUSR1),
        }
        let status = wait_at_most(&mut child, Duration::from_secs(30)).unwrap_or_else(|| panic!("{what}: the job did not end"));
        assert!(!status.success(), "{what}: the job exited 0 (it finished before the fault?)");
        assert!(!model.exists(), "{what}: a model was written");
        let at = read_json(&ck)["iteration"].as_u64().unwrap();
        assert!((1..400).contains(&at), "{what}: checkpoint at iteration {at}");
        mpirun(2, &[&args[..], &["--resume"]].concat()).ok();
        let got = node(&read_json(&model), 0).clone();
        assert_eq!(got["centroids"], want["centroids"], "{what} at iteration {at}: the resumed centroids differ");
        assert_eq!((&got["inertia"], &got["n_iter"]), (&want["inertia"], &want["n_iter"]), "{what} at iteration {at}");
        eprintln!("{what}: stopped at iteration {at}; resumed to the same bits");
    }
}
