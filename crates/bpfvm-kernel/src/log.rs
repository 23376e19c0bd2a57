//! The kernel's load log (verifier log for programs, BTF log for BTF) and the
//! grow-on-`ENOSPC` loop both loads share.

use std::os::fd::OwnedFd;

use crate::error::LoadFailure;
use crate::sys::{Attr, Bpf, Cmd, Errno};

/// `BPF_LOG_LEVEL1`: the verifier's verdict and the instructions it walked.
pub const LOG_LEVEL1: u32 = 1;
/// `BPF_LOG_LEVEL2`: also the register state at every instruction.
pub const LOG_LEVEL2: u32 = 2;
/// `BPF_LOG_STATS`: the statistics lines (`processed N insns…`, `verification time…`).
pub const LOG_STATS: u32 = 4;

/// When to ask the kernel for a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogPolicy {
    /// Load without a log; if that fails, load once more at [`LOG_LEVEL1`] to fetch the
    /// reason (what libbpf does: a log slows verification down).
    OnFailure,
    /// Log from the first attempt at this level (an OR of `LOG_*` bits).
    Always(u32),
    /// Never ask for a log.
    Never,
}

/// Log policy and buffer sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOptions {
    /// When to log.
    pub policy: LogPolicy,
    /// First buffer size in bytes (the kernel wants at least 128).
    pub initial_size: usize,
    /// The buffer grows on `ENOSPC` (to the size the kernel reports it needs, or double)
    /// up to this many bytes; past it the log is returned truncated.
    pub max_size: usize,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            policy: LogPolicy::OnFailure,
            initial_size: 64 * 1024,
            max_size: 64 * 1024 * 1024,
        }
    }
}

impl LogOptions {
    /// The default sizes with `policy`.
    pub fn with_policy(policy: LogPolicy) -> LogOptions {
        LogOptions {
            policy,
            ..LogOptions::default()
        }
    }
}

/// Byte offsets of the log fields inside a command's attributes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogFields {
    pub level: usize,
    pub size: usize,
    pub buf: usize,
    pub true_size: usize,
}

/// The smallest log buffer the kernel accepts.
const MIN_LOG_SIZE: usize = 128;
/// The largest log buffer the kernel accepts (`UINT_MAX >> 2`).
const MAX_KERNEL_LOG_SIZE: usize = (u32::MAX >> 2) as usize;

/// Runs a load command (`attr` has every field but the log's), growing the log buffer on
/// `ENOSPC`. Returns the new object and its log.
pub(crate) fn load_with_log(
    bpf: &Bpf,
    cmd: Cmd,
    attr: &Attr,
    fields: LogFields,
    opts: &LogOptions,
) -> Result<(OwnedFd, String), LoadFailure> {
    let first_level = match opts.policy {
        LogPolicy::OnFailure | LogPolicy::Never => 0,
        LogPolicy::Always(level) => level,
    };
    match attempt(bpf, cmd, attr, fields, opts, first_level) {
        Err(failure) if first_level == 0 && opts.policy == LogPolicy::OnFailure => {
            // Ask again, this time for the reason; keep the first errno if the second
            // attempt fails differently only because of the log.
            match attempt(bpf, cmd, attr, fields, opts, LOG_LEVEL1) {
                Ok(loaded) => Ok(loaded),
                Err(mut with_log) => {
                    if with_log.errno == Errno::ENOSPC && failure.errno != Errno::ENOSPC {
                        with_log.errno = failure.errno;
                    }
                    Err(with_log)
                }
            }
        }
        other => other,
    }
}

fn attempt(
    bpf: &Bpf,
    cmd: Cmd,
    template: &Attr,
    fields: LogFields,
    opts: &LogOptions,
    level: u32,
) -> Result<(OwnedFd, String), LoadFailure> {
    let max = opts.max_size.clamp(MIN_LOG_SIZE, MAX_KERNEL_LOG_SIZE);
    let mut size = opts.initial_size.clamp(MIN_LOG_SIZE, max);
    loop {
        let mut buf = if level == 0 {
            Vec::new()
        } else {
            vec![0u8; size]
        };
        let mut attr = template.clone();
        if level != 0 {
            attr.set_u32(fields.level, level);
            attr.set_u32(fields.size, buf.len() as u32);
            attr.set_mut_ptr(fields.buf, &mut buf);
        }
        let result = bpf.call_fd(cmd, &mut attr);
        // The kernel wrote into `buf` through the pointer in `attr`; read it only now,
        // after the call, through the Vec that owns it.
        let log = log_text(&mut buf);
        match result {
            Ok(fd) => return Ok((fd, log)),
            Err(errno) if errno == Errno::ENOSPC && level != 0 && size < max => {
                let wanted = attr.u32(fields.true_size) as usize;
                size = wanted.max(size.saturating_mul(2)).min(max);
            }
            Err(errno) => {
                return Err(LoadFailure {
                    cmd,
                    errno,
                    log,
                    log_truncated: errno == Errno::ENOSPC && level != 0,
                });
            }
        }
    }
}

/// The kernel's reason in a load log: its last line that is not a statistics line
/// (`processed N insns…`, `verification time…`, `stack depth…`).
pub(crate) fn reason_of(log: &str) -> Option<&str> {
    log.lines().rev().map(str::trim).find(|l| {
        !l.is_empty()
            && !l.starts_with("processed ")
            && !l.starts_with("verification time ")
            && !l.starts_with("stack depth ")
    })
}

/// The NUL-terminated text the kernel wrote.
fn log_text(buf: &mut [u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
