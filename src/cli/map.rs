//! `flowmpi map`: the task farm's command line.

use super::plural;
use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::log::Log;
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

/// `flowmpi map`.
#[derive(Args, Debug)]
#[command(after_help = "Each task is one line of --tasks (blank lines and lines starting with # are skipped). In the \
command, {} is the line, {index} its 0-based index, {1}, {2}, ... its whitespace-separated fields, and {q} \
the line quoted for a shell; a command without any of them gets the line as its last argument. The \
command runs directly, no shell: for pipes or redirections use sh -c with {q}, never {}, inside the \
shell code (sh -c 'wc -l < {q}'), so that a line holding ; or ' stays one word. Exit status 0 is \
success. At the end rank 0 prints every \
task's output in task order (or they are in --logs files) and a summary; the exit status is 1 if \
any task failed.\n\nAt a time limit (SIGTERM) the running tasks are killed and no task starts; after Slurm's \
--signal warning (SIGUSR1/2) no task starts and the running ones may finish. Either way the output \
of what finished and the summary are printed. The same command plus --resume, given --journal, \
continues: finished tasks are skipped, failed and stopped ones run again.")]
pub struct MapArgs {
    /// The task file: one task per line.
    #[arg(long, value_name = "FILE")]
    pub tasks: PathBuf,
    /// 'dynamic': one task at a time to whichever rank is free (uneven task times); 'guided':
    /// shrinking blocks of tasks (many short tasks); 'static': contiguous blocks per rank.
    #[arg(long, default_value = "dynamic", value_parser = ["dynamic", "guided", "static"])]
    pub schedule: String,
    /// Tasks run at once per rank (default: cores / ranks on the node, or $FLOWMPI_THREADS).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Write each task's output (stdout and stderr) to this file, with {index}, e.g.
    /// 'logs/task{index}.log'. Default: kept (up to 64 KB per task) and printed at the end.
    #[arg(long, value_name = "PATTERN")]
    pub logs: Option<String>,
    /// Record every finished task in this file (appended, one line per task, flushed).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Skip the tasks --journal records as done (after a job was killed).
    #[arg(long)]
    pub resume: bool,
    /// Kill a task that runs longer than this many seconds (it counts as failed).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `flowmpi map`: the task farm.
pub fn map(comm: &dyn Comm, a: &MapArgs, log: &Log) -> Result<()> {
    use crate::taskfarm::{read_tasks, Farm};
    use std::io::Write;
    let t0 = Instant::now();
    // Rank 0 reads the task file; every rank gets the same list.
    let read = (comm.rank() == 0).then(|| {
        read_tasks(&a.tasks).map_err(|e| match e {
            Error::Param(m) => m, // becomes an Error::Param again on every rank: say "invalid parameter" once
            e => e.to_string(),
        })
    });
    let tasks = crate::comm::broadcast(comm, 0, read.as_ref()).map_err(Error::Param)?;
    if let Some(p) = a.logs.as_deref().filter(|p| !p.contains("{index}") && tasks.len() > 1) {
        return Err(Error::Param(format!("--logs {p:?} has no {{index}}: every task would write the same file")));
    }
    if !(a.timeout.is_none_or(|t| t > 0.0)) {
        return Err(Error::Param("--timeout must be > 0 seconds".into()));
    }
    crate::comm::agree(comm, if comm.rank() == 0 { check_files(a, tasks.len()) } else { Ok(()) })?;
    // Without --logs each task's output goes to a temporary file first: a missing or read-only
    // TMPDIR made every task fail with "not started: No such file or directory", which reads
    // as "command not found".
    let scratch = match &a.logs {
        None => tempfile::tempfile().map(drop).map_err(|e| Error::Output {
            rank: comm.rank(),
            path: std::env::temp_dir().display().to_string(),
            msg: format!("cannot create a temporary file for the tasks' output ({e}); set TMPDIR to a writable directory, or give --logs"),
        }),
        Some(_) => Ok(()),
    };
    crate::comm::agree(comm, scratch)?;
    let need = crate::taskfarm::fields_used(&a.command);
    if let Some((i, t)) = tasks.iter().enumerate().find(|(_, t)| t.split_whitespace().count() < need) {
        return Err(Error::Param(format!(
            "the command uses {{{need}}}, but task {i} ({}) has {}",
            crate::io::quote(t.as_bytes()),
            plural(t.split_whitespace().count() as u64, "field")
        )));
    }
    let farm = Farm { command: a.command.clone(), logs: a.logs.clone(), journal: a.journal.clone(), resume: a.resume, timeout: a.timeout };
    let schedule = match a.schedule.as_str() {
        "static" => crate::par::Schedule::Static,
        "guided" => crate::par::Schedule::Guided { chunk: 1 },
        _ => crate::par::Schedule::Dynamic { chunk: 1 },
    };
    let threads = a.threads.map(|n| crate::cores::check_threads(n, "--threads")).transpose()?.unwrap_or(0);
    let opts = crate::par::Options { schedule, threads, serial: None, progress: Some("map".into()) };
    log.info(format!("map: {} on {}: {}", plural(tasks.len() as u64, "task"), plural(comm.size() as u64, "rank"), a.command.join(" ")));
    let done = crate::taskfarm::run(comm, &farm, &tasks, &opts)?;
    if comm.rank() != 0 {
        return finish_map(&done, comm.size());
    }
    let mut out = std::io::stdout().lock();
    for (i, d) in done.iter().enumerate() {
        if let Some(text) = &d.output {
            let _ = writeln!(out, "== task {i} (rank {}, {}, {:.2} s): {}", d.rank, d.outcome, d.seconds, tasks[i]);
            let _ = out.write_all(text.as_bytes());
        }
    }
    let _ = out.flush();
    use crate::taskfarm::Outcome;
    let stopped = done.iter().filter(|d| d.outcome == Outcome::Stopped).count();
    let failed: Vec<usize> = (0..done.len()).filter(|&i| !done[i].outcome.ok() && done[i].outcome != Outcome::Stopped).collect();
    let skipped = done.iter().filter(|d| d.outcome == Outcome::Skipped).count();
    log.info(format!(
        "map: {} done ({} from the journal), {} failed{}, in {:.3} s",
        done.len() - failed.len() - stopped,
        skipped,
        failed.len(),
        if stopped > 0 { format!(", {stopped} not started (stopped by a signal)") } else { String::new() },
        t0.elapsed().as_secs_f64()
    ));
    // Failed commands quoted for a shell, so that one can be pasted to try it again; the first
    // few only (a broken command fails every task).
    const SHOWN: usize = 20;
    for &i in failed.iter().take(SHOWN) {
        let argv = crate::taskfarm::substitute(&a.command, i, &tasks[i]);
        log.warn(format!(
            "task {i} {} after {:.2} s: {}",
            done[i].outcome,
            done[i].seconds,
            argv.iter().map(|w| crate::taskfarm::shell_quote(w)).collect::<Vec<_>>().join(" ")
        ));
    }
    if failed.len() > SHOWN {
        log.warn(format!("... and {} more failed tasks", failed.len() - SHOWN));
    }
    log.info("  rank  tasks  busy s");
    for r in 0..comm.size() {
        let mine: Vec<&crate::taskfarm::Done> = done.iter().filter(|d| d.rank == r && d.outcome != crate::taskfarm::Outcome::Skipped).collect();
        log.info(format!("  {r:>4}  {:>5}  {:>6.2}", mine.len(), mine.iter().map(|d| d.seconds).sum::<f64>() + 0.0));
    }
    finish_map(&done, comm.size())
}

/// The exit of a task farm: an error when a signal stopped it or any task failed (the same on
/// every rank).
fn finish_map(done: &[crate::taskfarm::Done], _ranks: usize) -> Result<()> {
    let stopped = done.iter().filter(|d| d.outcome == crate::taskfarm::Outcome::Stopped).count();
    if stopped > 0 {
        return Err(Error::Stopped(format!(
            "stopped by a signal with {stopped} of {} not started; with --journal, the same command with --resume runs the rest",
            plural(done.len() as u64, "task")
        )));
    }
    let failed = done.iter().filter(|d| !d.outcome.ok()).count();
    if failed > 0 {
        return Err(Error::Failed(format!("{failed} of {} failed (listed above)", plural(done.len() as u64, "task"))));
    }
    Ok(())
}

/// Refuse files of a map that would destroy each other: a journal that is the task file (its
/// lines would become tasks on --resume), or task logs that are the task file, the journal, or
/// one file for several tasks (`lg/{index}/../all.log`: each task truncates the others' log).
/// Paths are compared resolved (symlinks followed, `..` applied) and by inode.
fn check_files(a: &MapArgs, tasks: usize) -> Result<()> {
    let same = crate::io::same_file;
    if let Some(j) = a.journal.as_deref().filter(|j| same(j, &a.tasks)) {
        return Err(Error::Param(format!("--journal {} is the --tasks file: its lines would become tasks; journal elsewhere", j.display())));
    }
    let Some(pattern) = &a.logs else { return Ok(()) };
    let mut seen = std::collections::HashMap::new();
    for i in 0..tasks {
        let log = PathBuf::from(pattern.replace("{index}", &i.to_string()));
        for (what, other) in [("the --tasks file", Some(&a.tasks)), ("the --journal", a.journal.as_ref())] {
            if other.is_some_and(|o| same(&log, o)) {
                return Err(Error::Param(format!("--logs: task {i}'s log {} is {what}; write the logs elsewhere", log.display())));
            }
        }
        if let Some(first) = seen.insert(crate::io::resolve_path(&log), i) {
            return Err(Error::Param(format!("--logs {pattern:?}: tasks {first} and {i} would both write {}; every task needs its own file", log.display())));
        }
    }
    Ok(())
}
