//! `flowmpi map` (the task farm) under real `mpirun -n 1..4`: every task once, output in task
//! order, failures listed and the exit non-zero, timeouts, and a job killed with SIGKILL then
//! resumed from its journal.

mod common;
use common::*;
use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

fn task_file(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let p = dir.join("tasks.txt");
    let body: String = (0..n).map(|i| format!("t{}\n", i * 3)).collect();
    std::fs::write(&p, format!("# a comment\n\n{body}")).unwrap();
    p
}

#[test]
fn every_task_runs_once_and_output_comes_in_task_order() {
    let dir = scratch("farm");
    let tasks = task_file(&dir, 10);
    for n in [1, 2, 3, 4] {
        for schedule in ["dynamic", "static"] {
            let ran = dir.join(format!("ran{n}{schedule}.txt"));
            // Task 4 fails; uneven times; each appends its index to a file.
            let cmd = format!("echo {{index}} >> {}; sleep 0.0$(( {{index}} % 3 )); echo 'out {{}}'; test {{index}} != 4 || exit 3", ran.display());
            let r = mpirun(n, &["map", "--tasks", tasks.to_str().unwrap(), "--schedule", schedule, "--", "sh", "-c", &cmd]);
            assert_ne!(r.code, 0, "a task failed: the job must fail\n{}", r.stderr);
            assert!(r.stderr.contains("task 4 exit 3"), "{}", r.stderr);
            assert!(r.stderr.contains("1 of 10 tasks failed"), "{}", r.stderr);
            let heads: Vec<usize> = r.stdout.lines().filter_map(|l| l.strip_prefix("== task ")).map(|l| l.split(' ').next().unwrap().parse().unwrap()).collect();
            assert_eq!(heads, (0..10).collect::<Vec<_>>(), "{n} ranks {schedule}\n{}", r.stdout);
            for i in 0..10 {
                assert!(r.stdout.contains(&format!("out t{}\n", i * 3)), "{}", r.stdout);
            }
            let mut seen: Vec<usize> = std::fs::read_to_string(&ran).unwrap().lines().map(|l| l.parse().unwrap()).collect();
            seen.sort();
            assert_eq!(seen, (0..10).collect::<Vec<_>>(), "{n} ranks {schedule}: every task exactly once");
        }
    }
    // All good: exit 0; --logs keeps each task's output in its own file.
    let logs = dir.join("logs/task{index}.log");
    let r = mpirun(3, &["map", "--tasks", tasks.to_str().unwrap(), "--logs", logs.to_str().unwrap(), "--", "sh", "-c", "echo {index}:{}; echo err >&2"]);
    r.ok();
    for i in 0..10 {
        assert_eq!(std::fs::read_to_string(dir.join(format!("logs/task{i}.log"))).unwrap(), format!("{i}:t{}\nerr\n", i * 3));
    }
    one_error(&mpirun(2, &["map", "--tasks", tasks.to_str().unwrap(), "--logs", "x.log", "--", "true"]), &["has no {index}"]);
    let e = one_error(&mpirun(2, &["map", "--tasks", dir.join("none.txt").to_str().unwrap(), "--", "true"]), &["--tasks", "none.txt"]);
    assert_eq!(e.matches("invalid parameter").count(), 1, "{e}");
    let r = mpirun(2, &["map", "--tasks", tasks.to_str().unwrap(), "--", "/no/such/program"]);
    assert!(r.stderr.contains("not started"), "{}", r.stderr);
}

#[test]
fn a_task_past_its_timeout_is_killed_and_counts_as_failed() {
    let dir = scratch("farmtimeout");
    let tasks = task_file(&dir, 3);
    let t0 = Instant::now();
    let r = mpirun(2, &["map", "--tasks", tasks.to_str().unwrap(), "--timeout", "1", "--", "sh", "-c", "test {index} != 1 || sleep 60"]);
    assert!(t0.elapsed() < Duration::from_secs(30), "the timeout did not stop the task");
    assert!(r.stderr.contains("task 1 timed out"), "{}", r.stderr);
    assert!(r.stderr.contains("1 of 3 tasks failed"), "{}", r.stderr);
}

/// A job killed with SIGKILL half-way (as a batch system does), then run again with --resume:
/// every task has run, and no task the journal recorded runs twice.
#[test]
fn a_killed_job_resumes_from_its_journal() {
    let dir = scratch("farmresume");
    let tasks = task_file(&dir, 16);
    let ran = dir.join("ran.txt");
    let journal = dir.join("journal.tsv");
    let cmd = format!("sleep 0.3; echo {{index}} >> {}", ran.display());
    let args = |resume: bool| {
        let mut a = vec!["map".to_string(), "--tasks".into(), tasks.display().to_string(), "--journal".into(), journal.display().to_string()];
        if resume {
            a.push("--resume".into());
        }
        a.extend(["--".into(), "sh".into(), "-c".into(), cmd.clone()]);
        a
    };
    // The whole job in its own session, killed at once with SIGKILL.
    let mut c = Command::new("setsid");
    c.args(["mpirun", "--oversubscribe", "-n", "2", BIN]).args(args(false));
    c.env("OMPI_ALLOW_RUN_AS_ROOT", "1").env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1").env("OMPI_MCA_btl_vader_single_copy_mechanism", "none");
    c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut job = c.spawn().unwrap();
    let t0 = Instant::now();
    let journaled = |p: &std::path::Path| std::fs::read_to_string(p).map_or(0, |t| t.lines().count());
    while journaled(&journal) < 4 {
        assert!(t0.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Everything in the job's session: mpirun, the ranks (Open MPI gives each its own process
    // group) and their tasks, as a batch system's cgroup kill would.
    let sid = job.id().to_string();
    Command::new("pkill").args(["-KILL", "-s", &sid]).status().unwrap();
    let _ = job.wait();
    std::thread::sleep(Duration::from_millis(500));
    // The tasks journaled as done: a task killed before its rank is journaled as killed (and
    // runs again), depending on the order in which the kill reaches the processes.
    let before: Vec<usize> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.get(1) == Some(&"exit 0")).then(|| f[0].parse().ok()).flatten()
        })
        .collect();
    assert!(before.len() < 16, "the job finished before it was killed");
    let args = args(true);
    let r = mpirun(3, &args.iter().map(String::as_str).collect::<Vec<_>>());
    r.ok();
    assert!(r.stderr.contains(&format!("({} from the journal)", before.len())), "{}", r.stderr);
    let mut count: HashMap<usize, usize> = HashMap::new();
    for l in std::fs::read_to_string(&ran).unwrap().lines() {
        *count.entry(l.parse().unwrap()).or_default() += 1;
    }
    for i in 0..16 {
        let c = count.get(&i).copied().unwrap_or(0);
        if before.contains(&i) {
            assert_eq!(c, 1, "task {i} was journaled, then ran again");
        } else {
            // Killed between its last line and its journal entry, a task runs again (rare).
            assert!((1..=2).contains(&c), "task {i} ran {c} times");
        }
    }
    // A journal from another task list is refused.
    std::fs::write(&tasks, "other\n").unwrap();
    one_error(&mpirun(2, &args.iter().map(String::as_str).collect::<Vec<_>>()), &["written for another task list"]);
}

#[test]
fn map_files_that_would_destroy_each_other_are_refused() {
    // A journal or a log that is the task list, or one log for several tasks, lost data with
    // exit 0 before.
    let dir = scratch("farm-files");
    let tasks = task_file(&dir, 4);
    let before = std::fs::read(&tasks).unwrap();
    let t = tasks.to_str().unwrap();
    let d = dir.to_str().unwrap();
    std::fs::create_dir_all(dir.join("lg")).unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--journal".into(), t.into()], "is the --tasks file: its lines would become tasks"),
        (vec!["--journal".into(), format!("{d}/lg/../tasks.txt")], "is the --tasks file"),
        (vec!["--logs".into(), format!("{d}/lg/../tasks{{index}}.txt")], "task 0's log"),
        (vec!["--logs".into(), format!("{d}/lg/{{index}}/../all.log")], "tasks 0 and 1 would both write"),
        (vec!["--journal".into(), format!("{d}/j.tsv"), "--logs".into(), format!("{d}/j{{index}}.tsv")], ""),
    ];
    std::fs::rename(&tasks, dir.join("tasks0.txt")).unwrap();
    let tasks = dir.join("tasks0.txt");
    let t = tasks.to_str().unwrap().to_string();
    for (extra, msg) in cases {
        let mut args = vec!["map".to_string(), "--tasks".into(), t.clone()];
        args.extend(extra.iter().map(|s| s.replace("tasks.txt", "tasks0.txt")));
        args.extend(["--".into(), "true".into()]);
        let r = mpirun(2, &args.iter().map(String::as_str).collect::<Vec<_>>());
        if msg.is_empty() {
            r.ok();
        } else {
            one_error(&r, &[msg]);
        }
        assert_eq!(std::fs::read(&tasks).unwrap(), before, "{extra:?} changed the task list");
        assert!(!dir.join("lg/all.log").exists() && !dir.join("all.log").exists());
    }
}
