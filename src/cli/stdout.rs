//! What the commands print on standard output. A reader that goes away (`flowmpi inspect m.json
//! | head -n1`) ends the command quietly, as it ends any Unix tool, instead of the panic that
//! `println!` makes of a closed pipe (Rust ignores SIGPIPE).

use crate::error::{Error, Result};
use std::io::Write;

/// Write `text` to standard output and flush it; a closed pipe is [`Error::ClosedPipe`], which
/// `main` turns into a quiet exit.
pub(crate) fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(|e| match e.kind() {
        std::io::ErrorKind::BrokenPipe => Error::ClosedPipe,
        _ => Error::Output { rank: 0, path: "standard output".into(), msg: e.to_string() },
    })
}

/// `println!` for the commands: formats a line and [`print`]s it, returning its `Result`.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::stdout::print(&format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;
