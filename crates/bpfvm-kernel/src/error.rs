//! Typed errors of the kernel layer.

use std::fmt;

use crate::sys::{Cmd, Errno};

/// Every way a request to the kernel can fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// A `bpf(2)` command failed with `errno`.
    #[error("{cmd} failed: {errno}")]
    Syscall {
        /// The command.
        cmd: Cmd,
        /// What the kernel returned.
        errno: Errno,
    },
    /// `BPF_PROG_LOAD` or `BPF_BTF_LOAD` failed; the kernel's log says why.
    #[error("{0}")]
    Load(Box<LoadFailure>),
    /// `BPF_PROG_TEST_RUN` produced more output than the buffer given for it.
    #[error("BPF_PROG_TEST_RUN: the {what} output needs {needed} bytes, the buffer has {given}")]
    OutputTooSmall {
        /// `"data"` or `"context"`.
        what: &'static str,
        /// Bytes the kernel wanted to write.
        needed: u32,
        /// Bytes the buffer holds.
        given: usize,
    },
    /// A failure while doing something larger (loading one map of an object…).
    #[error("{context}: {error}")]
    Context {
        /// What was being done.
        context: String,
        /// How it failed.
        error: Box<KernelError>,
    },
    /// Refused before reaching the kernel, because the kernel would have read or written
    /// memory that is not there (a key of the wrong size) or cannot take it at all.
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl KernelError {
    /// The errno, when the kernel returned one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            KernelError::Syscall { errno, .. } => Some(*errno),
            KernelError::Load(f) => Some(f.errno),
            KernelError::OutputTooSmall { .. } => Some(Errno::ENOSPC),
            KernelError::Context { error, .. } => error.errno(),
            KernelError::Invalid(_) => None,
        }
    }

    /// The kernel's log, for load failures.
    pub fn log(&self) -> Option<&str> {
        match self {
            KernelError::Load(f) => Some(&f.log),
            KernelError::Context { error, .. } => error.log(),
            _ => None,
        }
    }

    pub(crate) fn syscall(cmd: Cmd) -> impl Fn(Errno) -> KernelError {
        move |errno| KernelError::Syscall { cmd, errno }
    }
}

/// A failed `BPF_PROG_LOAD` or `BPF_BTF_LOAD`: the errno and the kernel's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadFailure {
    /// Which command.
    pub cmd: Cmd,
    /// What the kernel returned (`EACCES` for a verifier rejection, `EINVAL` for a
    /// malformed request, `E2BIG` for too many instructions…).
    pub errno: Errno,
    /// The log, as far as the kernel wrote it (empty when it wrote none).
    pub log: String,
    /// The log did not fit in the largest buffer allowed and was cut.
    pub log_truncated: bool,
}

impl LoadFailure {
    /// The kernel's reason: the last line of the log that is not a statistics line.
    pub fn reason(&self) -> Option<&str> {
        crate::log::reason_of(&self.log)
    }
}

impl fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.cmd, self.errno)?;
        match self.reason() {
            Some(r) => write!(f, ": {r}")?,
            None => f.write_str(" (the kernel wrote no log)")?,
        }
        if self.log_truncated {
            f.write_str(" [log truncated]")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_is_the_last_line_before_the_statistics() {
        let f = LoadFailure {
            cmd: Cmd::PROG_LOAD,
            errno: Errno::EACCES,
            log: "0: R1=ctx() R10=fp0\n0: (95) exit\nR0 !read_ok\nprocessed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n".into(),
            log_truncated: false,
        };
        assert_eq!(f.reason(), Some("R0 !read_ok"));
        assert_eq!(
            KernelError::Load(Box::new(f)).to_string(),
            "BPF_PROG_LOAD: EACCES (Permission denied): R0 !read_ok"
        );
        let empty = LoadFailure {
            cmd: Cmd::PROG_LOAD,
            errno: Errno::EINVAL,
            log: String::new(),
            log_truncated: false,
        };
        assert!(empty.to_string().ends_with("(the kernel wrote no log)"));
    }
}
