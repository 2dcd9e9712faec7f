//! `flowmpi map`: a task farm. Each line of a task file is one task; each task runs a command
//! (with `{}` → the line and `{index}` → its 0-based index) as a child process of some rank,
//! scheduled by [`crate::par`]. Every task's output is kept (a log file per task, or printed in
//! task order at the end), with its exit status and seconds. A journal records finished tasks
//! (one appended line each, under the job-wide lock) so that `--resume` skips them after the job
//! was killed.

use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::par::{Ctx, Options};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Output kept in memory per task when there is no log file; beyond it, the end is cut.
const KEEP_OUTPUT: usize = 64 << 10;

/// What a task farm runs.
#[derive(Debug, Clone)]
pub struct Farm {
    /// The command and its arguments, with `{}` and `{index}` placeholders.
    pub command: Vec<String>,
    /// Log file pattern with `{index}`; `None`: output kept and printed at the end.
    pub logs: Option<String>,
    /// Journal of finished tasks.
    pub journal: Option<PathBuf>,
    /// Skip tasks the journal records as done (exit 0).
    pub resume: bool,
    /// Seconds a task may run before it is killed.
    pub timeout: Option<f64>,
}

/// How a task ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Outcome {
    /// It exited with this code.
    Exit(i32),
    /// A signal ended it.
    Signal(i32),
    /// It ran past the timeout and was killed.
    Timeout,
    /// It could not be started.
    NotStarted(String),
    /// The journal says it finished in an earlier run.
    Skipped,
}

impl Outcome {
    /// Whether the task counts as done.
    pub fn ok(&self) -> bool {
        matches!(self, Outcome::Exit(0) | Outcome::Skipped)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Exit(c) => write!(f, "exit {c}"),
            Outcome::Signal(s) => write!(f, "killed by signal {s}"),
            Outcome::Timeout => write!(f, "timed out"),
            Outcome::NotStarted(e) => write!(f, "not started: {e}"),
            Outcome::Skipped => write!(f, "done earlier (journal)"),
        }
    }
}

/// One task's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Done {
    /// The rank that ran it.
    pub rank: usize,
    /// How it ended.
    pub outcome: Outcome,
    /// Wall seconds.
    pub seconds: f64,
    /// Its output (stdout and stderr interleaved), when not written to a log file.
    pub output: Option<String>,
}

/// The command line of task `index` with line `task`.
pub fn substitute(command: &[String], index: usize, task: &str) -> Vec<String> {
    command.iter().map(|a| a.replace("{index}", &index.to_string()).replace("{}", task)).collect()
}

/// Process groups of running tasks, killed when this rank is told to stop.
static RUNNING: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Kill every running task of this process (on SIGTERM/SIGINT: a job at its time limit must
/// not leave tasks running on the node).
pub fn kill_running() {
    for pgid in RUNNING.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        // SAFETY: kill(2) on a process group we created; no memory is involved.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

/// Read a journal: index → the task line it recorded as done.
fn read_journal(path: &Path) -> Result<HashMap<usize, String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(Error::Param(format!("--journal {}: {e}", path.display()))),
    };
    let mut done = HashMap::new();
    for line in text.lines() {
        // index \t outcome \t seconds \t task; a torn last line (a crash mid-write) is ignored.
        let f: Vec<&str> = line.splitn(4, '\t').collect();
        if let [i, "exit 0", _, task] = f[..] {
            if let Ok(i) = i.parse() {
                done.insert(i, task.to_string());
            }
        }
    }
    Ok(done)
}

/// Run `task` (index `i`) as a child process, to its log or captured.
fn run_task(farm: &Farm, ctx: &Ctx, i: usize, task: &str, journal: Option<&Mutex<std::fs::File>>) -> Done {
    let t0 = Instant::now();
    let argv = substitute(&farm.command, i, task);
    let log_path = farm.logs.as_ref().map(|p| PathBuf::from(p.replace("{index}", &i.to_string())));
    let (outcome, output) = match spawn_and_wait(&argv, log_path.as_deref(), farm.timeout) {
        Ok((o, out)) => (o, out),
        Err(e) => (Outcome::NotStarted(e.to_string()), None),
    };
    let seconds = t0.elapsed().as_secs_f64();
    if let Some(j) = journal {
        // The job-wide lock: one line at a time, whichever rank or file system.
        ctx.critical(|| {
            let mut f = j.lock().unwrap();
            let line = format!("{i}\t{outcome}\t{seconds:.3}\t{}\n", task.replace(['\t', '\n'], " "));
            let _ = f.write_all(line.as_bytes()).and_then(|()| f.sync_data());
        });
    }
    Done { rank: ctx.rank(), outcome, seconds, output }
}

fn spawn_and_wait(argv: &[String], log: Option<&Path>, timeout: Option<f64>) -> std::io::Result<(Outcome, Option<String>)> {
    let (file, captured) = match log {
        Some(p) => {
            if let Some(d) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(d)?;
            }
            (std::fs::File::create(p)?, None)
        }
        None => {
            let f = tempfile::tempfile()?;
            (f.try_clone()?, Some(f))
        }
    };
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).stdin(Stdio::null()).stdout(file.try_clone()?).stderr(file).process_group(0);
    // SAFETY: prctl in the child before exec; async-signal-safe. The task dies with its rank
    // (a rank killed by the batch system must not leave tasks behind).
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let pid = child.id() as i32;
    RUNNING.lock().unwrap().push(pid);
    let t0 = Instant::now();
    let status = loop {
        if timeout.is_none() {
            break Some(child.wait()?);
        }
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if timeout.is_some_and(|t| t0.elapsed().as_secs_f64() > t) {
            // SAFETY: kill(2) on the task's own process group.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    RUNNING.lock().unwrap().retain(|p| *p != pid);
    let outcome = match status {
        None => Outcome::Timeout,
        Some(s) => match (s.code(), s.signal()) {
            (Some(c), _) => Outcome::Exit(c),
            (None, Some(sig)) => Outcome::Signal(sig),
            _ => Outcome::Exit(-1),
        },
    };
    let output = match captured {
        Some(mut f) => {
            use std::io::Seek;
            f.seek(std::io::SeekFrom::Start(0))?;
            let total = f.metadata()?.len();
            let mut buf = Vec::new();
            f.take(KEEP_OUTPUT as u64 + 1).read_to_end(&mut buf)?;
            let mut text = String::from_utf8_lossy(&buf[..buf.len().min(KEEP_OUTPUT)]).into_owned();
            if total as usize > KEEP_OUTPUT {
                text.push_str(&format!("\n[output cut at {KEEP_OUTPUT} of {total} bytes: use --logs to keep it all]\n"));
            }
            Some(text)
        }
        None => None,
    };
    Ok((outcome, output))
}

/// Run every task over all ranks (collective). Returns every task's record in task order, on
/// every rank.
pub fn run(comm: &dyn Comm, farm: &Farm, tasks: &[String], opts: &Options) -> Result<Vec<Done>> {
    let done_before = match (&farm.journal, farm.resume) {
        (Some(j), true) => read_journal(j)?,
        (None, true) => return Err(Error::Param("--resume needs --journal FILE".into())),
        _ => HashMap::new(),
    };
    for (i, task) in &done_before {
        match tasks.get(*i) {
            Some(t) if t.replace(['\t', '\n'], " ") == *task => {}
            _ => {
                let there = match tasks.get(*i) {
                    Some(t) => format!("the task list has {} there", crate::io::quote(t.as_bytes())),
                    None => format!("the task list has only {}", crate::log::plural(tasks.len() as u64, "task")),
                };
                return Err(Error::Param(format!(
                    "--resume: the journal records task {i} as {}, but {there}: it was written for another task list",
                    crate::io::quote(task.as_bytes())
                )));
            }
        }
    }
    let journal = match &farm.journal {
        Some(p) => Some(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| Error::Param(format!("--journal {}: {e}", p.display())))?,
        )),
        None => None,
    };
    let items: Vec<(usize, &String)> = tasks.iter().enumerate().collect();
    crate::par::parallelize_with(comm, &items, opts, |ctx, &(i, task)| {
        if done_before.contains_key(&i) {
            return Ok::<_, String>(Done { rank: ctx.rank(), outcome: Outcome::Skipped, seconds: 0.0, output: None });
        }
        Ok(run_task(farm, ctx, i, task, journal.as_ref()))
    })
}

/// The task lines of a task file: one per line; blank lines and `#` comments are not tasks.
pub fn read_tasks(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Param(format!("--tasks {}: {e}", path.display())))?;
    Ok(text.lines().map(|l| l.trim_end_matches('\r')).filter(|l| !l.trim().is_empty() && !l.starts_with('#')).map(String::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_substituted() {
        let cmd: Vec<String> = ["sh", "-c", "echo {} > out{index}.txt"].map(String::from).to_vec();
        assert_eq!(substitute(&cmd, 7, "a b"), ["sh", "-c", "echo a b > out7.txt"]);
    }

    #[test]
    fn tasks_run_with_status_output_and_timeout() {
        let farm = |cmd: &str, timeout| Farm { command: vec!["sh".into(), "-c".into(), cmd.into()], logs: None, journal: None, resume: false, timeout };
        let tasks: Vec<String> = vec!["0".into(), "3".into()];
        let opts = Options { threads: 2, serial: Some(false), ..Options::default() };
        let got = run(&crate::comm::SingleComm, &farm("echo out{index}; echo err >&2; exit {}", None), &tasks, &opts).unwrap();
        assert_eq!(got[0].outcome, Outcome::Exit(0));
        assert_eq!(got[1].outcome, Outcome::Exit(3));
        assert_eq!(got[1].output.as_deref(), Some("out1\nerr\n"));
        let slow = run(&crate::comm::SingleComm, &farm("sleep {}", Some(0.3)), &["0".to_string(), "30".to_string()], &opts).unwrap();
        assert_eq!(slow[0].outcome, Outcome::Exit(0));
        assert_eq!(slow[1].outcome, Outcome::Timeout);
        assert!(slow[1].seconds < 5.0);
    }
}
