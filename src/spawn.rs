//! Start a task's process cheaply, in its own process group, and tied to the life of its rank.
//!
//! `std::process::Command` starts a child with `posix_spawn` (a `vfork`-like clone that shares
//! the parent's memory until `exec`) unless it is given a `pre_exec` closure; then it must
//! `fork`, which copies the page tables of the whole rank: about 1 ms per task for a rank with
//! a few hundred MB mapped, the cost `flowmpi map` paid for every task. We need one call before
//! `exec` that posix_spawn has no attribute for: `prctl(PR_SET_PDEATHSIG)`, so that a task dies
//! when its rank is killed (by mpirun or the batch system) instead of running on unowned. So we
//! do what glibc's posix_spawn does, with that call added: `clone(CLONE_VM | CLONE_VFORK)` on a
//! small stack of our own, and in the child only system calls until `execve`.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

/// Stack of the child between `clone` and `execve`: it calls a handful of system calls.
const CHILD_STACK: usize = 64 << 10;

/// A started task: its pid, which is also its process group.
#[derive(Debug)]
pub struct Child {
    pid: libc::pid_t,
    status: Option<ExitStatus>,
}

/// What the child needs, prepared by the parent (the child must not allocate). The parent is
/// suspended until the child calls `execve` or exits, so the child may write `failed`.
#[repr(C)]
struct Plan {
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    stdin: libc::c_int,
    output: libc::c_int,
    parent: libc::pid_t,
    /// Set by the child: the step that failed and its errno.
    failed: (libc::c_int, libc::c_int),
}

/// Steps of the child, named in an error.
const STEPS: [&str; 4] = ["", "redirect the task's output", "start its process group", "execute it"];

extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `Plan`, alive while the parent waits for our exec or exit
    // (CLONE_VFORK). Only async-signal-safe system calls follow: no allocation, no locks.
    unsafe {
        let plan = &mut *(arg as *mut Plan);
        let fail = |plan: &mut Plan, step: libc::c_int| -> libc::c_int {
            plan.failed = (step, *libc::__errno_location());
            libc::_exit(127)
        };
        // Die with the rank. If it died between clone and here, the signal was missed.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        if libc::getppid() != plan.parent {
            libc::_exit(137);
        }
        if libc::setpgid(0, 0) != 0 {
            return fail(plan, 2);
        }
        if libc::dup2(plan.stdin, 0) < 0 || libc::dup2(plan.output, 1) < 0 || libc::dup2(plan.output, 2) < 0 {
            return fail(plan, 1);
        }
        // The task starts with default signal handling and nothing blocked: Rust ignores
        // SIGPIPE in this process, and the parent blocked every signal around the clone.
        // The raw call: glibc's wrapper refuses its own signals (32, 33), which may be ignored
        // here too. The kernel's struct, all zero: SIG_DFL, no flags, empty mask.
        let dfl = [0u64; 4];
        for sig in 1..65 {
            libc::syscall(libc::SYS_rt_sigaction, sig, dfl.as_ptr(), std::ptr::null_mut::<u64>(), 8usize);
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::execve(plan.path, plan.argv, plan.envp);
        fail(plan, 3)
    }
}

/// Where `program` is: itself if it names a path, else the first executable of that name on
/// `PATH` (as `execvp` would find it; searched here because the child must not allocate).
fn resolve(program: &str) -> io::Result<PathBuf> {
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(program);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(io::Error::new(io::ErrorKind::NotFound, format!("{program}: command not found on PATH")))
}

fn is_executable(p: &Path) -> bool {
    let Ok(c) = CString::new(p.as_os_str().as_bytes()) else { return false };
    // SAFETY: access(2) reads a NUL-terminated path we own.
    p.is_file() && unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0
}

fn c_string(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the command or the environment"))
}

/// Start `argv` with stdin from /dev/null and stdout and stderr into `output`, in a new process
/// group (its pid), killed when the calling thread's process dies.
pub fn spawn(argv: &[String], output: &File) -> io::Result<Child> {
    let Some(program) = argv.first() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
    };
    let path = c_string(resolve(program)?.as_os_str())?;
    let args = argv.iter().map(|a| c_string(OsStr::new(a))).collect::<io::Result<Vec<_>>>()?;
    let env = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.into_vec());
            c_string(OsStr::from_bytes(&kv))
        })
        .collect::<io::Result<Vec<_>>>()?;
    let mut argp: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argp.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    let null = File::open("/dev/null")?;
    let mut plan = Plan {
        path: path.as_ptr(),
        argv: argp.as_ptr(),
        envp: envp.as_ptr(),
        stdin: null.as_raw_fd(),
        output: output.as_raw_fd(),
        // SAFETY: getpid(2) has no preconditions.
        parent: unsafe { libc::getpid() },
        failed: (0, 0),
    };
    let mut stack = vec![0u8; CHILD_STACK];
    // The stack grows down on every Linux target we build for: pass its (aligned) top.
    let top = ((stack.as_mut_ptr() as usize + CHILD_STACK) & !15) as *mut libc::c_void;
    // SAFETY: signals are blocked around the clone so that none of our handlers runs in the
    // child on the shared memory; the child (child_main) only makes system calls, on its own
    // stack, reading `plan`, and this thread is suspended until it has exec'd or exited.
    let pid = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let pid = libc::clone(child_main, top, libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD, &mut plan as *mut Plan as *mut libc::c_void);
        let err = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if pid < 0 {
            return Err(err);
        }
        pid
    };
    let mut child = Child { pid, status: None };
    let (step, errno) = plan.failed;
    if step != 0 {
        let _ = child.wait();
        let e = io::Error::from_raw_os_error(errno);
        return Err(io::Error::new(e.kind(), format!("cannot {}: {e}", STEPS[step as usize])));
    }
    Ok(child)
}

impl Child {
    /// The child's pid (and process group).
    pub fn id(&self) -> libc::pid_t {
        self.pid
    }

    fn wait_flags(&mut self, flags: libc::c_int) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let mut status = 0;
        loop {
            // SAFETY: waitpid(2) on our own child, writing into a local.
            let r = unsafe { libc::waitpid(self.pid, &mut status, flags) };
            if r == self.pid {
                self.status = Some(ExitStatus::from_raw(status));
                return Ok(self.status);
            }
            if r == 0 {
                return Ok(None);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Wait for the child to end.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        Ok(self.wait_flags(0)?.expect("waitpid without WNOHANG returns a status"))
    }

    /// The child's status if it has ended, without waiting.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.wait_flags(libc::WNOHANG)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek};

    fn run(argv: &[&str]) -> (io::Result<ExitStatus>, String) {
        let mut out = tempfile::tempfile().unwrap();
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let status = spawn(&argv, &out).and_then(|mut c| c.wait());
        let mut text = String::new();
        out.seek(io::SeekFrom::Start(0)).unwrap();
        out.read_to_string(&mut text).unwrap();
        (status, text)
    }

    #[test]
    fn runs_a_command_from_path_with_its_arguments_and_output() {
        let (status, text) = run(&["sh", "-c", "echo out $1; echo err >&2; exit 3", "sh", "a b"]);
        assert_eq!(status.unwrap().code(), Some(3));
        assert_eq!(text, "out a b\nerr\n");
    }

    #[test]
    fn the_task_has_its_own_process_group_default_signals_and_our_environment() {
        // SAFETY: set_var in a test; no other test reads this variable.
        unsafe { std::env::set_var("FLOWMPI_SPAWN_TEST", "x y") };
        // SIGPIPE is ignored in a Rust process; the task must get it back (so `yes | head` ends).
        let (status, text) = run(&["sh", "-c", "echo $FLOWMPI_SPAWN_TEST; cut -d' ' -f5 /proc/$$/stat; echo $$; grep SigIgn /proc/$$/status"]);
        assert!(status.unwrap().success());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "x y");
        assert_eq!(lines[1].trim(), lines[2].trim(), "the task leads its own process group");
        assert_eq!(lines[3], "SigIgn:\t0000000000000000");
    }

    #[test]
    fn a_missing_command_is_an_error_not_a_child() {
        let (status, _) = run(&["no-such-command-flowmpi"]);
        let e = status.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("no-such-command-flowmpi"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("not-executable");
        std::fs::write(&plain, "echo hi\n").unwrap();
        let (status, _) = run(&[plain.to_str().unwrap()]);
        let e = status.unwrap_err();
        assert!(e.to_string().contains("cannot execute it") && e.kind() == io::ErrorKind::PermissionDenied, "{e}");
    }
}
