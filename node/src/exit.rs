//! Exit codes, documented in the README ("Exit codes").

use std::fmt;

/// The category of a failure; `main` maps it to the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 1: anything not classified below (I/O, internal).
    Failure = 1,
    /// 3: malformed input: ids, keys, files, config values.
    BadInput = 3,
    /// 4: a signature, certificate or chain is not trusted (tampered,
    /// foreign-rooted, expired, revoked, weak key, wrong unit or parent).
    Untrusted = 4,
    /// 5: the data dir is missing, not initialised, or already initialised.
    DataDir = 5,
    /// 6: the store is held by another process (the daemon).
    Locked = 6,
    /// 7: the write is not allowed for this unit.
    Forbidden = 7,
    /// 8: `gongjian verify` found the store corrupt.
    Corrupt = 8,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Exit::Failure => "failed",
            Exit::BadInput => "bad input",
            Exit::Untrusted => "not trusted",
            Exit::DataDir => "data dir",
            Exit::Locked => "store locked",
            Exit::Forbidden => "not allowed",
            Exit::Corrupt => "store corrupt",
        })
    }
}

/// Attaches an exit category to an error.
pub trait Coded<T> {
    fn code(self, exit: Exit) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> Coded<T> for Result<T, E> {
    fn code(self, exit: Exit) -> anyhow::Result<T> {
        self.map_err(|e| e.into().context(exit))
    }
}

pub fn bail<T>(exit: Exit, msg: impl fmt::Display) -> anyhow::Result<T> {
    Err(anyhow::anyhow!("{msg}").context(exit))
}
