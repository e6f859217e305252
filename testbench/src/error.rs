//! The one error type of the testbench: every variant names the command, file or object
//! that failed, so a failing end-to-end test says what went wrong without a debugger.

use std::io;
use std::time::Duration;

/// Why a testbench operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command ran and exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line, as run.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr (trimmed).
        stderr: String,
    },
    /// A command could not be started at all (missing program, permissions).
    #[error("could not start `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The OS error.
        source: io::Error,
    },
    /// A command or a condition did not complete within its bound; whatever ran was killed.
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout {
        /// The command or the condition waited for.
        what: String,
        /// The bound that expired.
        timeout: Duration,
    },
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the file or address.
        what: String,
        /// The OS error.
        source: io::Error,
    },
    /// A parameter is out of range or inconsistent.
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// The parameter, e.g. `TopologyBuilder::backends`.
        what: String,
        /// Why it is refused.
        detail: String,
    },
    /// A tool printed something we could not understand.
    #[error("could not parse output of {tool}: {detail}")]
    Parse {
        /// The tool, e.g. `dig`.
        tool: String,
        /// What was wrong, with the offending text.
        detail: String,
    },
}

impl Error {
    /// Builds an [`Error::Io`] naming what was being done.
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// Builds an [`Error::Invalid`].
    pub fn invalid(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            detail: detail.into(),
        }
    }
}

/// Result alias of the testbench.
pub type Result<T> = std::result::Result<T, Error>;
