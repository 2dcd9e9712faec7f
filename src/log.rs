//! Rank-0 logging to stderr: phases with row counts and timings; `-v` adds per-rank detail.

/// Write one line to stderr; a closed stderr (`2>&1 | head`) is ignored rather than a panic,
/// as `eprintln!` would make of it.
pub(crate) fn to_stderr(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Log verbosity and the rank that speaks.
#[derive(Debug, Clone, Copy)]
pub struct Log {
    /// 0 = quiet, 1 = normal, 2 = verbose.
    pub level: u8,
    /// This process's rank; only rank 0 prints.
    pub rank: usize,
    /// How rank 0 shows progress on long passes.
    pub progress: crate::progress::Style,
}

impl Log {
    /// Print at normal verbosity (rank 0 only).
    pub fn info(&self, msg: impl AsRef<str>) {
        if self.rank == 0 && self.level >= 1 {
            to_stderr(&format!("flowmpi: {}", msg.as_ref()));
        }
    }

    /// Print at `-v` (rank 0 only).
    pub fn detail(&self, msg: impl AsRef<str>) {
        if self.rank == 0 && self.level >= 2 {
            to_stderr(&format!("flowmpi: {}", msg.as_ref()));
        }
    }

    /// Print a warning (rank 0 only, even with `-q`).
    pub fn warn(&self, msg: impl AsRef<str>) {
        if self.rank == 0 {
            to_stderr(&format!("flowmpi: warning: {}", msg.as_ref()));
        }
    }
}

static GLOBAL: std::sync::Mutex<Log> = std::sync::Mutex::new(Log { level: 0, rank: 0, progress: crate::progress::Style::Off });

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
