//! One error type for the whole crate. Every variant prints as a sentence a user can act on,
//! naming the rank, file and line where the problem was found.

use std::fmt;

/// Where in the input a data error was found.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Location {
    /// MPI rank that read the input.
    pub rank: usize,
    /// File that holds the bad input.
    pub path: String,
    /// 1-based line (CSV) or row (NPY) number, when known.
    pub line: Option<u64>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "rank {}: {}, line {}", self.rank, self.path, l),
            None => write!(f, "rank {}: {}", self.rank, self.path),
        }
    }
}

/// All errors flowmpi reports. Serialisable, so that the error agreement hands every rank the
/// failing rank's error itself (its rank, file and line too), not only its text.
#[derive(Debug, Clone, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum Error {
    /// A parameter, flow spec or command-line value is invalid.
    #[error("invalid parameter: {0}")]
    Param(String),
    /// Input data is unreadable or malformed.
    #[error("{loc}: {msg}")]
    Data {
        /// Where the problem is.
        loc: Location,
        /// What is wrong.
        msg: String,
    },
    /// The joined data does not allow the computation (too few rows, rank-deficient, ...).
    #[error("{0}")]
    Fit(String),
    /// A model file cannot be read or written, or does not fit the data.
    #[error("model: {0}")]
    Model(String),
    /// Output could not be written.
    #[error("rank {rank}: cannot write {path}: {msg}")]
    Output {
        /// Rank that failed.
        rank: usize,
        /// Output path.
        path: String,
        /// OS or format message.
        msg: String,
    },
    /// A node's complaint about one row of the chunk it was given (0-based within the chunk);
    /// the driver turns it into a [`Error::Data`] naming the file and line.
    #[error("row {row} of the chunk: {msg}")]
    Row {
        /// Row index within the chunk.
        row: usize,
        /// What is wrong with it.
        msg: String,
    },
    /// Standard output was closed by its reader (`| head`): the command ends quietly.
    #[error("standard output was closed")]
    ClosedPipe,
    /// Another rank failed with an error this build could not decode; its message.
    #[error("{0}")]
    Peer(String),
    /// Work the user gave failed (e.g. tasks of a task farm); the message says what.
    #[error("{0}")]
    Failed(String),
    /// A signal (a batch system's time limit) stopped an iterative training after a step whose
    /// checkpoint is written; the message says how to continue.
    #[error("{0}")]
    Stopped(String),
    /// Ctrl-C interrupted the work ([`crate::stop::interrupt`]) on this rank or another.
    #[error("interrupted (Ctrl-C)")]
    Interrupted,
    /// An item of a parallel map failed (the lowest failing item).
    #[error("item {index} (run by rank {rank}) failed: {msg}")]
    Item {
        /// The item's index in the input.
        index: usize,
        /// The rank that ran it.
        rank: usize,
        /// Its error, or its panic message.
        msg: String,
    },
}

impl Error {
    /// A data error at `path` (optionally `line`) read by `rank`.
    pub fn data(rank: usize, path: impl Into<String>, line: Option<u64>, msg: impl Into<String>) -> Self {
        Error::Data { loc: Location { rank, path: path.into(), line }, msg: msg.into() }
    }

    /// This error about a row of a part of a chunk, as one about the chunk: the part began at
    /// row `start` of it ([`Error::Row`] counts from the top of what the node was given).
    pub fn rows_from(self, start: usize) -> Self {
        match self {
            Error::Row { row, msg } => Error::Row { row: row + start, msg },
            e => e,
        }
    }
}

/// Result alias used across flowmpi.
pub type Result<T> = std::result::Result<T, Error>;
