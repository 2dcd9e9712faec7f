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
            let heads: Vec<usize> =
                r.stdout.lines().filter_map(|l| l.strip_prefix("== task ")).map(|l| l.split(' ').next().unwrap().parse().unwrap()).collect();
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

#[test]
fn a_time_limit_signal_prints_what_finished_and_resume_runs_the_rest() {
    // Without --logs the output of finished tasks lived only in memory: a SIGTERM lost it and
    // the summary. Now no task starts after the signal, running ones are killed, and rank 0
    // prints what finished, in task order, before the job ends.
    let dir = scratch("farm-sigterm");
    let tasks = task_file(&dir, 40);
    let (journal, ran) = (dir.join("journal.tsv"), dir.join("ran.txt"));
    let cmd = format!("sleep 0.3; echo ran {{index}} >> {}; echo out {{index}}", ran.display());
    let base = ["map", "--threads", "1", "--tasks", tasks.to_str().unwrap(), "--journal", journal.to_str().unwrap()];
    let mut c = Command::new("mpirun");
    c.args(["--oversubscribe", "-n", "2", BIN]).args(base).args(["--", "sh", "-c", &cmd]);
    c.env("OMPI_ALLOW_RUN_AS_ROOT", "1").env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1").env("OMPI_MCA_btl_vader_single_copy_mechanism", "none");
    c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = c.spawn().unwrap();
    let t0 = Instant::now();
    let journaled = |p: &std::path::Path| std::fs::read_to_string(p).map_or(0, |t| t.lines().count());
    while journaled(&journal) < 4 {
        assert!(t0.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    let ranks = rank_pids(journal.to_str().unwrap());
    assert_eq!(ranks.len(), 2, "{ranks:?}");
    let signalled = Instant::now();
    ranks.iter().for_each(|&(_, pid)| signal(pid, libc::SIGTERM));
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(signalled.elapsed() < Duration::from_secs(20), "took {:?} to stop", signalled.elapsed());
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not started (stopped by a signal)"), "{stderr}");
    assert!(stderr.contains("--resume runs the rest"), "{stderr}");
    // Every task that finished has its output printed, in task order.
    let done: Vec<usize> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .filter_map(|l| l.split('\t').collect::<Vec<_>>().get(..2).filter(|f| f[1] == "exit 0").and_then(|f| f[0].parse().ok()))
        .collect();
    assert!(!done.is_empty() && done.len() < 40, "{done:?}");
    let printed: Vec<usize> = stdout.lines().filter_map(|l| l.strip_prefix("out ")).map(|i| i.parse().unwrap()).collect();
    let mut want = done.clone();
    want.sort();
    assert_eq!(printed, want, "{stdout}");
    // The rest runs on --resume; every task ran to its end exactly once in all.
    let r = mpirun(2, &[&base[..], &["--resume", "--", "sh", "-c", &cmd]].concat());
    r.ok();
    let mut count: HashMap<usize, usize> = HashMap::new();
    for l in std::fs::read_to_string(&ran).unwrap().lines() {
        *count.entry(l.strip_prefix("ran ").unwrap().parse().unwrap()).or_default() += 1;
    }
    assert_eq!(count.len(), 40, "{count:?}");
}

#[test]
fn task_lines_reach_the_command_as_fields_quoted_or_appended() {
    let dir = scratch("farm-words");
    let tasks = dir.join("t.txt");
    std::fs::write(&tasks, "a b\nit's\nx; touch injected.txt\n").unwrap();
    let t = tasks.to_str().unwrap();
    // {q}: one shell word whatever the line holds; nothing in it runs.
    let r = mpirun(2, &["map", "--tasks", t, "--", "sh", "-c", "printf '[%s]\\n' {q}"]);
    let out = r.ok().stdout.clone();
    for want in ["[a b]", "[it's]", "[x; touch injected.txt]"] {
        assert!(out.contains(want), "{want} in\n{out}");
    }
    assert!(!std::path::Path::new("injected.txt").exists() && !dir.join("injected.txt").exists());
    // No placeholder: the line is the last argument.
    let r = mpirun(2, &["map", "--tasks", t, "--", "printf", "<%s>\\n"]);
    assert!(r.ok().stdout.contains("<it's>"), "{}", r.stdout);
    // Fields; a line with too few is refused before anything runs.
    std::fs::write(&tasks, "1 2\n3 4\n").unwrap();
    let r = mpirun(2, &["map", "--tasks", t, "--", "printf", "%s+%s\\n", "{2}", "{1}"]);
    let out = r.ok().stdout.clone();
    assert!(out.contains("2+1") && out.contains("4+3"), "{out}");
    let r = mpirun(2, &["map", "--tasks", t, "--", "echo", "{3}"]);
    one_error(&r, &["the command uses {3}, but task 0 ('1 2') has 2 fields"]);
    // A failed task's command is printed quoted, ready to paste.
    std::fs::write(&tasks, "it's here\n").unwrap();
    let r = mpirun(1, &["map", "--tasks", t, "--", "sh", "-c", "exit 3", "{}"]);
    assert!(r.stderr.contains(r#"task 0 exit 3 after"#) && r.stderr.contains(r#"sh -c 'exit 3' 'it'\''s here'"#), "{}", r.stderr);
}

#[test]
fn journal_and_logs_are_written_safely_or_the_map_stops() {
    let dir = scratch("farm-safe-files");
    let tasks = task_file(&dir, 6);
    let t = tasks.to_str().unwrap();
    // A journal that cannot be written (a full disk) stops the map with a clear error: before,
    // exit 0 with an empty journal, and --resume ran everything again.
    let r = mpirun(2, &["map", "--tasks", t, "--journal", "/dev/full", "--", "true"]);
    one_error(&r, &["--journal: cannot record task", "No space left on device"]);
    // Planted symlinks are never written through: the journal's and a task log's.
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("j.tsv")).unwrap();
    let r = mpirun(2, &["map", "--tasks", t, "--journal", dir.join("j.tsv").to_str().unwrap(), "--", "true"]);
    one_error(&r, &["is a symbolic link; flowmpi does not write through one"]);
    std::fs::create_dir(dir.join("logs")).unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("logs/task2.log")).unwrap();
    let logs = dir.join("logs/task{index}.log");
    let r = mpirun(2, &["map", "--tasks", t, "--logs", logs.to_str().unwrap(), "--", "echo", "{}"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("task 2 not started") && r.stderr.contains("is a symbolic link"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(std::fs::read_to_string(dir.join("logs/task3.log")).unwrap(), "t9\n");
}

#[test]
fn map_draws_a_progress_line_of_tasks_done() {
    // --progress always printed nothing for map.
    let dir = scratch("farm-progress");
    let tasks = task_file(&dir, 10);
    let r = mpirun_with(
        2,
        &["--progress", "always", "map", "--threads", "1", "--tasks", tasks.to_str().unwrap(), "--", "sh", "-c", "sleep 0.3"],
        &[("FLOWMPI_PROGRESS_EVERY", "0.2")],
    );
    let done: Vec<u64> =
        r.ok().stderr.lines().filter_map(|l| l.strip_prefix("flowmpi: map: ")?.split_once(" of 10 done (").map(|(n, _)| n.parse().unwrap())).collect();
    assert!(done.len() >= 2, "{}", r.stderr);
    assert!(done.windows(2).all(|w| w[0] <= w[1]) && *done.last().unwrap() <= 10, "{done:?}");
    // Off by default in a log (not a terminal) and with -q.
    let r = mpirun(2, &["-q", "--progress", "always", "map", "--tasks", tasks.to_str().unwrap(), "--", "true"]);
    assert!(!r.ok().stderr.contains("done ("), "{}", r.stderr);
}

/// A rank killed with SIGKILL (the OOM killer, a node's cgroup) takes its running task with it:
/// the task does not run on, unowned, after the job is gone.
#[test]
fn a_task_dies_with_its_rank() {
    let dir = scratch("farmorphan");
    let tasks = task_file(&dir, 2);
    let pids = dir.join("pids");
    std::fs::create_dir(&pids).unwrap();
    let script = format!("echo $$ > {}/{{index}}; exec sleep 60", pids.display());
    let mut job = mpirun_spawn(2, &["map", "--tasks", tasks.to_str().unwrap(), "--", "sh", "-c", &script]);
    let t0 = Instant::now();
    while files_in(&pids).len() < 2 && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let task_pids: Vec<i32> = files_in(&pids).iter().map(|f| std::fs::read_to_string(pids.join(f)).unwrap().trim().parse().unwrap()).collect();
    assert_eq!(task_pids.len(), 2, "the tasks did not start");
    let alive = |pid: i32| std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.rsplit(')').next().unwrap().trim_start().starts_with('Z'));
    assert!(task_pids.iter().all(|p| alive(*p)));
    for (_, pid) in rank_pids(dir.to_str().unwrap()) {
        signal(pid, libc::SIGKILL);
    }
    let t0 = Instant::now();
    while task_pids.iter().any(|p| alive(*p)) && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = wait_at_most(&mut job, Duration::from_secs(30));
    let left: Vec<&i32> = task_pids.iter().filter(|p| alive(**p)).collect();
    for p in &left {
        signal(**p, libc::SIGKILL);
    }
    assert!(left.is_empty(), "tasks {left:?} outlived their ranks");
}
