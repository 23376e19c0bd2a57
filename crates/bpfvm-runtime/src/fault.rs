//! Run-time faults: why a run ended without returning `r0`.

use std::fmt;

use bpfvm_isa::RawInsn;

use crate::{MAX_CALL_FRAMES, RegionError};

/// A run that ended abnormally, at the instruction that caused it.
///
/// Displays as `pc 7 (61 21 10 00 00 00 00 00): out-of-bounds 4-byte read at 0x10: …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("pc {pc} ({}): {kind}", SlotBytes(*.insn))]
pub struct Fault {
    /// Slot index of the faulting instruction (for [`FaultKind::BudgetExhausted`], the
    /// instruction that was not executed; for [`FaultKind::Cancelled`], the jump or call
    /// where the token was polled).
    pub pc: usize,
    /// The raw slot at `pc` (all zero when `pc` is outside the program).
    pub insn: RawInsn,
    /// What went wrong.
    pub kind: FaultKind,
}

impl Fault {
    /// A fault at `pc` of a program whose slots are `slots`.
    pub fn at(slots: &[RawInsn], pc: usize, kind: FaultKind) -> Fault {
        Fault {
            pc,
            insn: slots.get(pc).copied().unwrap_or_default(),
            kind,
        }
    }
}

/// Why a run faulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FaultKind {
    /// A load, store or atomic touched bytes outside every memory region of the run (or
    /// wrote to a read-only one).
    #[error(
        "out-of-bounds {size}-byte {} at {addr:#x}: not inside any region the program may {}",
        if *.write { "write" } else { "read" },
        if *.write { "write" } else { "read" }
    )]
    OutOfBounds {
        /// First byte of the access.
        addr: u64,
        /// Access size in bytes.
        size: usize,
        /// A store (or the write half of an atomic) rather than a load.
        write: bool,
    },
    /// An atomic operation (or load-acquire / store-release) on an address that is not a
    /// multiple of its size. The kernel requires natural alignment for atomics and so do
    /// we: host atomic instructions need it.
    #[error("misaligned {size}-byte atomic access at {addr:#x}: atomics need natural alignment")]
    MisalignedAtomic {
        /// First byte of the access.
        addr: u64,
        /// Access size in bytes.
        size: usize,
    },
    /// `call` or `callx` named a helper id this program type does not provide.
    #[error("unknown helper id {id} for this program type")]
    UnknownHelper {
        /// The id (for `callx`, the register's value as a signed number).
        id: i64,
    },
    /// A helper rejected its arguments.
    #[error("helper {id} failed: {reason}")]
    HelperFailed {
        /// The helper id.
        id: u32,
        /// Why.
        reason: &'static str,
    },
    /// The run executed its whole instruction budget.
    #[error("instruction budget of {budget} exhausted")]
    BudgetExhausted {
        /// The budget given in [`crate::RunOptions::budget`].
        budget: u64,
    },
    /// The host cancelled the run through its [`crate::CancelToken`].
    #[error("cancelled by the host")]
    Cancelled,
    /// A local call would open a ninth frame.
    #[error("call depth exceeds {MAX_CALL_FRAMES} frames")]
    CallDepthExceeded,
    /// Execution reached a pc that is not an instruction start. A validated program never
    /// does; this exists so that an engine bug is a fault rather than a crash.
    #[error("program counter is not an instruction of the program")]
    PcOutOfRange,
    /// A load or store of the program type's context that its field rules forbid (a
    /// field that is not readable or writable, a wrong width, an offset between fields).
    #[error(
        "invalid {size}-byte context {} at offset {offset}: the program type's field rules forbid it",
        if *.write { "write" } else { "read" }
    )]
    ContextAccess {
        /// Offset in the context struct.
        offset: u32,
        /// Access size in bytes.
        size: usize,
        /// A store rather than a load.
        write: bool,
    },
    /// The engine could not set up the run's memory regions.
    #[error("cannot set up the run's memory: {0}")]
    RegionSetup(#[from] RegionError),
}

/// Formats a slot as its eight bytes in hex, as `ProgramError` does.
pub(crate) struct SlotBytes(pub(crate) RawInsn);

impl fmt::Display for SlotBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.to_bytes().iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_pc_bytes_and_access() {
        let f = Fault {
            pc: 7,
            insn: RawInsn::new(0x61, 1, 2, 0x10, 0),
            kind: FaultKind::OutOfBounds {
                addr: 0x10,
                size: 4,
                write: false,
            },
        };
        assert_eq!(
            f.to_string(),
            "pc 7 (61 21 10 00 00 00 00 00): out-of-bounds 4-byte read at 0x10: \
             not inside any region the program may read"
        );
        let f = Fault::at(&[], 3, FaultKind::Cancelled);
        assert_eq!(f.insn, RawInsn::default());
        assert_eq!(
            f.to_string(),
            "pc 3 (00 00 00 00 00 00 00 00): cancelled by the host"
        );
    }
}
