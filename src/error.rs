//! The one error type of the program, and the exit codes it maps to.
//!
//! Every failure carries the context a user needs (which file, which name,
//! what to do next); `main` prints it once and exits with `exit_code()`.

use std::path::PathBuf;

/// Success.
pub const EXIT_OK: i32 = 0;
/// The operation failed, or (healthcheck) something was unhealthy.
pub const EXIT_FAILURE: i32 = 1;
/// Bad input: usage, an invalid name or value, an unparsable registry.
pub const EXIT_USAGE: i32 = 2;
/// No process of that name is registered.
pub const EXIT_NO_SUCH_PROCESS: i32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{path}: not a valid registry (line {line}, column {column}: {reason}); \
         the file was left untouched: fix it by hand or restore it"
    )]
    RegistryCorrupt {
        path: PathBuf,
        line: usize,
        column: usize,
        reason: String,
    },

    #[error("invalid name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },

    #[error("{0}")]
    Invalid(String),

    /// A workspace file or directory that another user could control: using
    /// it would run their commands as us (as git refuses a foreign repository).
    #[error("refusing {path}: {reason}; {risk}. {fix}")]
    Untrusted {
        path: PathBuf,
        reason: String,
        /// What another user could do through it.
        risk: &'static str,
        fix: String,
    },

    #[error(
        "no process named {name:?} in {registry}; see `process-guardian status` for the registered names"
    )]
    NoSuchProcess { name: String, registry: PathBuf },

    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{0}")]
    Failed(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::RegistryCorrupt { .. }
            | Error::InvalidName { .. }
            | Error::Invalid(_)
            | Error::Untrusted { .. } => EXIT_USAGE,
            Error::NoSuchProcess { .. } => EXIT_NO_SUCH_PROCESS,
            Error::Io { .. } | Error::Failed(_) => EXIT_FAILURE,
        }
    }

    /// Wraps an I/O error with the operation and the path it concerned.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
