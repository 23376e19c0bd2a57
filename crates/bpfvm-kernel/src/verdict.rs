//! The kernel verifier's verdict as data: accepted or not, the log, and the statistics the
//! kernel prints (processed instructions, verification time, stack depth, states).

use std::time::Duration;

use crate::error::KernelError;
use crate::log::{LOG_LEVEL1, LOG_STATS, LogOptions, LogPolicy};
use crate::prog::{ProgInfo, ProgLoad};
use crate::sys::{Bpf, Errno};

/// What the kernel's verifier said about a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The program loaded.
    pub accepted: bool,
    /// The errno of a rejection (`EACCES` for a verifier "no", `EINVAL` for a malformed
    /// program, `E2BIG` when the complexity limit was hit…).
    pub errno: Option<Errno>,
    /// The verifier's log.
    pub log: String,
    /// The log did not fit the largest buffer and was cut.
    pub log_truncated: bool,
    /// The statistics lines of the log.
    pub stats: VerifierStats,
    /// For an accepted program, what `BPF_OBJ_GET_INFO_BY_FD` reports (its
    /// `verified_insns` is the kernel's processed-instruction count).
    pub info: Option<ProgInfo>,
}

impl Verdict {
    /// The kernel's reason for a rejection: the last log line that is not a statistic.
    pub fn reason(&self) -> Option<&str> {
        if self.accepted {
            return None;
        }
        crate::log::reason_of(&self.log)
    }
}

/// The verifier's statistics, parsed from its log (`None` where the log lacks a line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifierStats {
    /// `processed N insns`: instructions the verifier walked, revisits included.
    pub processed_insns: Option<u32>,
    /// `(limit N)`: the complexity limit.
    pub insn_limit: Option<u32>,
    /// `max_states_per_insn`
    pub max_states_per_insn: Option<u32>,
    /// `total_states`
    pub total_states: Option<u32>,
    /// `peak_states`
    pub peak_states: Option<u32>,
    /// `mark_read`
    pub mark_read: Option<u32>,
    /// `verification time N usec`
    pub verification_time: Option<Duration>,
    /// `stack depth A+B+…`: bytes of stack per function (main first).
    pub stack_depth: Vec<u32>,
}

impl VerifierStats {
    /// Reads the statistics lines of a verifier log.
    pub fn parse(log: &str) -> VerifierStats {
        let mut s = VerifierStats::default();
        for line in log.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("verification time ") {
                s.verification_time = rest
                    .strip_suffix(" usec")
                    .and_then(|n| n.trim().parse().ok())
                    .map(Duration::from_micros);
            } else if let Some(rest) = line.strip_prefix("stack depth ") {
                s.stack_depth = rest
                    .split('+')
                    .map_while(|n| n.trim().parse().ok())
                    .collect();
            } else if line.starts_with("processed ") {
                let words: Vec<&str> = line.split_whitespace().collect();
                let after = |key: &str| {
                    words
                        .iter()
                        .position(|w| *w == key)
                        .and_then(|i| words.get(i + 1))
                        .and_then(|w| w.trim_end_matches(')').parse().ok())
                };
                s.processed_insns = after("processed");
                s.insn_limit = after("(limit");
                s.max_states_per_insn = after("max_states_per_insn");
                s.total_states = after("total_states");
                s.peak_states = after("peak_states");
                s.mark_read = after("mark_read");
            }
        }
        s
    }
}

impl Bpf {
    /// Loads `req` to hear the verifier's verdict, with a log at `BPF_LOG_LEVEL1 |
    /// BPF_LOG_STATS` plus `extra_level` bits (say [`crate::LOG_LEVEL2`] for the register
    /// state at every instruction). The program is unloaded again. A rejection is an
    /// `Ok` verdict; `Err` means the request never reached the verifier's judgement
    /// (refused before the syscall).
    pub fn verify(&self, req: &ProgLoad<'_>, extra_level: u32) -> Result<Verdict, KernelError> {
        let mut req = req.clone();
        req.log = LogOptions {
            policy: LogPolicy::Always(LOG_LEVEL1 | LOG_STATS | extra_level),
            ..req.log
        };
        match self.prog_load(&req) {
            Ok(prog) => Ok(Verdict {
                accepted: true,
                errno: None,
                stats: VerifierStats::parse(prog.log()),
                log: prog.log().to_string(),
                log_truncated: false,
                info: prog.info().ok(),
            }),
            Err(KernelError::Load(f)) => Ok(Verdict {
                accepted: false,
                errno: Some(f.errno),
                stats: VerifierStats::parse(&f.log),
                log: f.log,
                log_truncated: f.log_truncated,
                info: None,
            }),
            Err(other) => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_statistics_the_kernel_prints() {
        let log = "func#0 @0\n0: R1=ctx() R10=fp0\n0: (b7) r0 = 0\n1: (95) exit\n\
                   verification time 17 usec\nstack depth 8+16\n\
                   processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 0\n";
        let s = VerifierStats::parse(log);
        assert_eq!(s.processed_insns, Some(2));
        assert_eq!(s.insn_limit, Some(1_000_000));
        assert_eq!(
            (s.total_states, s.peak_states, s.mark_read),
            (Some(1), Some(1), Some(0))
        );
        assert_eq!(s.max_states_per_insn, Some(0));
        assert_eq!(s.verification_time, Some(Duration::from_micros(17)));
        assert_eq!(s.stack_depth, vec![8, 16]);
        assert_eq!(
            VerifierStats::parse("R0 !read_ok"),
            VerifierStats::default()
        );
    }
}
