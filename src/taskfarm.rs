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
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
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
    /// Not started: a signal (a time limit) stopped the job first.
    Stopped,
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
            Outcome::Stopped => write!(f, "not started: the job was stopped by a signal"),
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

/// The command line of task `index` with line `task`: in every argument `{}` is the line,
/// `{index}` its index, `{1}`, `{2}`, ... its whitespace-separated fields (GNU parallel's
/// `--colsep ' '`) and `{q}` the line quoted for a shell (`sh -c 'wc -l {q}'` is safe whatever
/// the line holds). A command without any of them gets the line as its last argument, as
/// `xargs` and GNU parallel do. Other braces are left as they are.
pub fn substitute(command: &[String], index: usize, task: &str) -> Vec<String> {
    let fields: Vec<&str> = task.split_whitespace().collect();
    let mut out: Vec<String> = command
        .iter()
        .map(|arg| {
            expand(arg, |name| match name {
                "" => Some(task.to_string()),
                "index" => Some(index.to_string()),
                "q" => Some(shell_quote(task)),
                n => n.parse::<usize>().ok().filter(|&n| n >= 1).map(|n| fields.get(n - 1).copied().unwrap_or_default().to_string()),
            })
        })
        .collect();
    if !command.iter().any(|a| has_placeholder(a)) {
        out.push(task.to_string());
    }
    out
}

/// `arg` with every `{name}` that `value` knows replaced, in one pass (a line that holds
/// `{index}` itself is not expanded again).
fn expand(arg: &str, mut value: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').and_then(|close| value(&after[..close]).map(|v| (v, close))) {
            Some((v, close)) => {
                out.push_str(&v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether `arg` holds a placeholder [`substitute`] replaces.
fn has_placeholder(arg: &str) -> bool {
    let mut any = false;
    expand(arg, |name| {
        let known = matches!(name, "" | "index" | "q") || name.parse::<usize>().is_ok_and(|n| n >= 1);
        any |= known;
        known.then(String::new)
    });
    any
}

/// The highest field `{N}` the command uses (0: none).
pub fn fields_used(command: &[String]) -> usize {
    let mut most = 0;
    for arg in command {
        expand(arg, |name| {
            let n = name.parse::<usize>().ok().filter(|&n| n >= 1)?;
            most = most.max(n);
            Some(String::new())
        });
    }
    most
}

/// `s` as one word for a POSIX shell: as it is when it holds only safe characters, else in
/// single quotes (a `'` inside written `'\''`).
pub fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
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

/// Open an output of the farm (a task's log, the journal) without following a symlink at its
/// name: a planted link must not make us truncate or append to its target. `append` keeps
/// what is there (the journal), else the file is truncated.
fn open_output(path: &Path, append: bool) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    o.create(true).custom_flags(libc::O_NOFOLLOW);
    if append {
        o.append(true);
    } else {
        o.write(true).truncate(true);
    }
    o.open(path).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => std::io::Error::other(format!("{} is a symbolic link; flowmpi does not write through one", path.display())),
        _ => e,
    })
}

/// Run `task` (index `i`) as a child process, to its log or captured. An error only when the
/// journal cannot record it: the map must stop then, or `--resume` would run it again.
fn run_task(farm: &Farm, ctx: &Ctx, i: usize, task: &str, journal: Option<&Mutex<std::fs::File>>) -> std::result::Result<Done, String> {
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
        let written = ctx.critical(|| {
            let mut f = j.lock().unwrap_or_else(|e| e.into_inner());
            let line = format!("{i}\t{outcome}\t{seconds:.3}\t{}\n", task.replace(['\t', '\n'], " "));
            f.write_all(line.as_bytes()).and_then(|()| f.sync_data())
        });
        written.map_err(|e| format!("--journal: cannot record task {i} ({e}); the map stops, since --resume would run unrecorded tasks again"))?;
    }
    Ok(Done { rank: ctx.rank(), outcome, seconds, output })
}

fn spawn_and_wait(argv: &[String], log: Option<&Path>, timeout: Option<f64>) -> std::io::Result<(Outcome, Option<String>)> {
    let (file, captured) = match log {
        Some(p) => {
            if let Some(d) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(d)?;
            }
            (open_output(p, false)?, None)
        }
        None => {
            let f = tempfile::tempfile()?;
            (f.try_clone()?, Some(f))
        }
    };
    // A task dies with its rank (a rank killed by the batch system must not leave tasks behind).
    let mut child = crate::spawn::spawn(argv, &file)?;
    drop(file);
    let pid = child.id();
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
        Some(p) => Some(Mutex::new(open_output(p, true).map_err(|e| Error::Param(format!("--journal {}: {e}", p.display())))?)),
        None => None,
    };
    let items: Vec<(usize, &String)> = tasks.iter().enumerate().collect();
    // A time limit's signal stops the farm cleanly: no task starts after it, and the tasks
    // that finished are reported (and journaled) as usual.
    let _armed = crate::stop::Armed::new();
    crate::par::parallelize_with(comm, &items, opts, |ctx, &(i, task)| {
        let outcome = if done_before.contains_key(&i) {
            Outcome::Skipped
        } else if crate::stop::requested() {
            Outcome::Stopped
        } else {
            return run_task(farm, ctx, i, task, journal.as_ref());
        };
        Ok::<_, String>(Done { rank: ctx.rank(), outcome, seconds: 0.0, output: None })
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

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn placeholders_are_substituted() {
        let cmd = words(&["sh", "-c", "echo {} > out{index}.txt"]);
        assert_eq!(substitute(&cmd, 7, "a b"), ["sh", "-c", "echo a b > out7.txt"]);
        // Fields, a quoted line, unknown braces kept, one pass only.
        let cmd = words(&["run", "--in={1}", "{2}{3}", "{x}", "{0}", "{}"]);
        assert_eq!(substitute(&cmd, 0, " p  q{index} "), ["run", "--in=p", "q{index}", "{x}", "{0}", " p  q{index} "]);
        assert_eq!(fields_used(&cmd), 3);
        // No placeholder: the line is appended, as xargs does.
        assert_eq!(substitute(&words(&["echo", "hello"]), 3, "it's"), ["echo", "hello", "it's"]);
        assert_eq!(fields_used(&words(&["echo"])), 0);
    }

    #[test]
    fn a_quoted_line_is_one_word_to_the_shell() {
        for line in ["plain-name_1.csv", "it's", "x; exit 7", "$(exit 9)", "a\\b 'c' \"d\"", ""] {
            let cmd = words(&["sh", "-c", "printf %s {q}"]);
            let out = std::process::Command::new("sh").args(&substitute(&cmd, 0, line)[1..]).output().unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), line, "{line:?}");
        }
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
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
