//! Rank-0 log lines: phases with row counts and timings; `-v` adds per-rank detail.
//!
//! Lines go through the `log` crate's facade (target `"flowmpi"`: warnings at `Warn`, normal
//! lines at `Info`, `-v` detail at `Debug`), so a host program captures, silences or redirects
//! them with any logger (`env_logger`, `pyo3-log` into Python's `logging`, its own); a library
//! caller that installs none sees nothing. The `flowmpi` command installs [`StderrLogger`],
//! which prints them as `flowmpi: ...` on stderr.

use std::io::IsTerminal;

/// Write one line to stderr; a closed stderr (`2>&1 | head`) is ignored rather than a panic,
/// as `eprintln!` would make of it.
pub(crate) fn to_stderr(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Not at all.
    Off,
    /// One line redrawn in place (a terminal).
    Bar,
    /// A plain line every 10 seconds (a log file).
    Lines,
}

impl Style {
    /// The style for `--progress auto|always|never`: auto draws when stderr is a terminal, or
    /// under Open MPI when `mpirun`'s stderr is (a rank's own stderr is then a pipe to mpirun,
    /// which forwards it as it comes).
    pub fn choose(mode: &str) -> Style {
        let tty = std::io::stderr().is_terminal() || launcher_on_terminal();
        match mode {
            "never" => Style::Off,
            "always" if !tty => Style::Lines,
            _ if tty => Style::Bar,
            _ => Style::Off,
        }
    }
}

/// Whether this process was started by Open MPI's launcher whose own stderr is a terminal.
fn launcher_on_terminal() -> bool {
    if std::env::var_os("OMPI_COMM_WORLD_RANK").is_none() {
        return false;
    }
    let parent = std::os::unix::process::parent_id();
    std::fs::read_link(format!("/proc/{parent}/fd/2")).is_ok_and(|p| p.starts_with("/dev/pts") || p.starts_with("/dev/tty"))
}

/// Log verbosity and the rank that speaks. The default is quiet.
#[derive(Debug, Clone, Copy)]
pub struct Log {
    /// 0 = quiet, 1 = normal, 2 = verbose.
    pub level: u8,
    /// This process's rank; only rank 0 prints.
    pub rank: usize,
    /// How rank 0 shows progress on long passes.
    pub progress: Style,
}

impl Log {
    fn emit(&self, level: ::log::Level, min: u8, msg: &str) {
        if self.rank == 0 && self.level >= min {
            ::log::log!(target: "flowmpi", level, "{msg}");
        }
    }

    /// A line at normal verbosity (rank 0 only).
    pub fn info(&self, msg: impl AsRef<str>) {
        self.emit(::log::Level::Info, 1, msg.as_ref());
    }

    /// A line at `-v` (rank 0 only).
    pub fn detail(&self, msg: impl AsRef<str>) {
        self.emit(::log::Level::Debug, 2, msg.as_ref());
    }

    /// A warning (rank 0 only, even with `-q`).
    pub fn warn(&self, msg: impl AsRef<str>) {
        self.emit(::log::Level::Warn, 0, msg.as_ref());
    }
}

/// The `flowmpi` command's logger: flowmpi's lines on stderr as `flowmpi: ...` (warnings as
/// `flowmpi: warning: ...`), other crates' lines dropped. [`Log`]'s level does the filtering.
pub struct StderrLogger;

impl StderrLogger {
    /// Install it as the process's logger (once; a second call changes nothing).
    pub fn install() {
        static LOGGER: StderrLogger = StderrLogger;
        if ::log::set_logger(&LOGGER).is_ok() {
            ::log::set_max_level(::log::LevelFilter::Debug);
        }
    }
}

impl ::log::Log for StderrLogger {
    fn enabled(&self, m: &::log::Metadata) -> bool {
        m.target() == "flowmpi"
    }
    fn log(&self, r: &::log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        match r.level() {
            ::log::Level::Error | ::log::Level::Warn => to_stderr(&format!("flowmpi: warning: {}", r.args())),
            _ => to_stderr(&format!("flowmpi: {}", r.args())),
        }
    }
    fn flush(&self) {}
}

impl Default for Log {
    fn default() -> Self {
        Log { level: 0, rank: 0, progress: Style::Off }
    }
}

static GLOBAL: std::sync::Mutex<Log> = std::sync::Mutex::new(Log { level: 0, rank: 0, progress: Style::Off });

/// The process's log for code that is not handed one (a node's iterations): silent until the
/// command line (or a library user) sets it with [`set_global`].
pub fn global() -> Log {
    *GLOBAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Set the process's log (see [`global`]).
pub fn set_global(log: Log) {
    *GLOBAL.lock().unwrap_or_else(|e| e.into_inner()) = log;
}

/// "1 row", "2 rows".
pub fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}
