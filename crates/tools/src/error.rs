use std::path::PathBuf;

use crate::exit_code;

/// Why a tool could not produce a report at all.
///
/// A report with failed checks or leaks is not an error: it is a normal outcome whose
/// exit code comes from the report. These are the cases where there is nothing to
/// report.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The command line is wrong; maps to exit code 2.
    #[error("{0}")]
    Usage(String),

    /// A line of an input file (origins or paths list) is unusable.
    #[error("{path}, line {line}: {message}")]
    InvalidLine {
        path: PathBuf,
        line: usize,
        message: String,
    },

    /// An input file is empty once comments and blank lines are dropped.
    #[error("{path}: {what} list is empty")]
    EmptyFile { path: PathBuf, what: &'static str },

    #[error("cannot read {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot write {path}: {source}")]
    WriteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `--cacert` names a file that holds no usable certificate.
    #[error("--cacert {path}: {reason}")]
    Certificates { path: PathBuf, reason: String },

    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },

    /// Something inside the tool broke (a worker task panicked, a histogram could not
    /// be built); reported rather than unwrapped so the process still exits cleanly.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ToolError {
    /// The process exit code this error should end the command with.
    pub fn exit_code(&self) -> i32 {
        match self {
            ToolError::Usage(_) => exit_code::USAGE,
            _ => exit_code::FAILED,
        }
    }
}

/// Writes a finished report (stdout, or a test's buffer).
pub(crate) fn write_report(out: &mut impl std::io::Write, text: &str) -> Result<(), ToolError> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|err| ToolError::Internal(format!("writing the report: {err}")))
}
