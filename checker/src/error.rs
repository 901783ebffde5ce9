//! Errors for bad input and bad usage (exit code 3).

use std::fmt;
use std::path::PathBuf;

/// Why a history could not be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// The file could not be read.
    Io { path: PathBuf, reason: String },
    /// The input is malformed at `line` (1-based); `expected` says what was wanted.
    Parse {
        path: PathBuf,
        line: usize,
        expected: String,
    },
    /// The options are inconsistent (unknown model, bad initial value, ...).
    Usage(String),
}

impl CheckError {
    pub fn parse(line: usize, expected: impl Into<String>) -> CheckError {
        CheckError::Parse {
            path: PathBuf::new(),
            line,
            expected: expected.into(),
        }
    }

    /// Fills in the file name of a parse or I/O error raised before it was known.
    pub fn with_path(self, p: &std::path::Path) -> CheckError {
        match self {
            CheckError::Parse {
                path,
                line,
                expected,
            } if path.as_os_str().is_empty() => CheckError::Parse {
                path: p.to_path_buf(),
                line,
                expected,
            },
            CheckError::Io { path, reason } if path.as_os_str().is_empty() => CheckError::Io {
                path: p.to_path_buf(),
                reason,
            },
            other => other,
        }
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Io { path, reason } => write!(f, "{}: {reason}", path.display()),
            CheckError::Parse {
                path,
                line,
                expected,
            } => {
                let name = if path.as_os_str().is_empty() {
                    "<input>".to_string()
                } else {
                    path.display().to_string()
                };
                write!(f, "{name}:{line}: expected {expected}")
            }
            CheckError::Usage(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for CheckError {}
