//! A whole program: decoded, with its control flow checked.

use std::fmt;

use crate::decode::{DecodeErrorKind, decode_one};
use crate::{Insn, RawInsn, Reg, slots_from_bytes};

/// The most slots a program may have (the kernel's limit for privileged programs).
pub const MAX_PROGRAM_SLOTS: usize = 1_000_000;

/// Why a program is rejected at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProgramErrorKind {
    /// The instruction does not decode.
    #[error(transparent)]
    Decode(#[from] DecodeErrorKind),
    /// The program has no instructions.
    #[error("program is empty")]
    Empty,
    /// The bytecode is not a whole number of slots.
    #[error("bytecode length {len} is not a multiple of 8")]
    TrailingBytes {
        /// Length in bytes.
        len: usize,
    },
    /// The program has more slots than [`MAX_PROGRAM_SLOTS`].
    #[error("program has {len} instructions, more than the limit of {MAX_PROGRAM_SLOTS}")]
    TooLong {
        /// Number of slots.
        len: usize,
    },
    /// The instruction writes the read-only frame pointer `r10`.
    #[error("instruction writes the read-only frame pointer r10")]
    FramePointerWrite,
    /// A jump or local call targets a pc outside the program.
    #[error("jump target {target} is outside the program (0..{len})")]
    JumpOutOfRange {
        /// The target pc (may be negative).
        target: i64,
        /// Number of slots.
        len: usize,
    },
    /// A jump or local call targets the second slot of a `lddw`.
    #[error("jump target {target} is the second half of a lddw")]
    JumpIntoLddw {
        /// The target pc.
        target: usize,
    },
    /// The last instruction can fall through past the end of the program.
    #[error(
        "last instruction is not an exit or unconditional jump: execution can fall off the end"
    )]
    FallsOffEnd,
}

/// A load-time rejection, at a program counter (slot index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub struct ProgramError {
    /// Slot index of the offending instruction.
    pub pc: usize,
    /// The offending slot, when there is one.
    pub raw: Option<RawInsn>,
    /// What is wrong.
    pub kind: ProgramErrorKind,
}

impl fmt::Display for ProgramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pc {}", self.pc)?;
        if let Some(raw) = self.raw {
            write!(f, " (")?;
            for (i, b) in raw.to_bytes().iter().enumerate() {
                write!(f, "{}{b:02x}", if i == 0 { "" } else { " " })?;
            }
            write!(f, ")")?;
        }
        write!(f, ": {}", self.kind)
    }
}

/// A validated program: every slot decodes, no instruction writes `r10`,
/// every jump and local call lands on an instruction start inside the
/// program, and execution cannot fall off the end.
///
/// Program counters count 8-byte slots, as jump offsets do; a `lddw`
/// occupies two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    slots: Vec<RawInsn>,
    /// `insns[pc]` is the instruction starting at `pc`, `None` for the second slot of a `lddw`.
    insns: Vec<Option<Insn>>,
}

impl Program {
    /// Validates little-endian bytecode.
    pub fn from_bytes(bytes: &[u8]) -> Result<Program, ProgramError> {
        let slots = slots_from_bytes(bytes).map_err(|e| ProgramError {
            pc: bytes.len() / 8,
            raw: None,
            kind: ProgramErrorKind::TrailingBytes { len: e.len },
        })?;
        Program::from_slots(slots)
    }

    /// Validates a sequence of slots.
    pub fn from_slots(slots: Vec<RawInsn>) -> Result<Program, ProgramError> {
        let len = slots.len();
        let at = |pc: usize, kind: ProgramErrorKind| ProgramError {
            pc,
            raw: slots.get(pc).copied(),
            kind,
        };
        if len == 0 {
            return Err(at(0, ProgramErrorKind::Empty));
        }
        if len > MAX_PROGRAM_SLOTS {
            return Err(at(0, ProgramErrorKind::TooLong { len }));
        }
        let mut insns = Vec::with_capacity(len);
        let mut pc = 0;
        while pc < len {
            let insn = decode_one(&slots[pc..]).map_err(|k| at(pc, k.into()))?;
            if insn.written_reg() == Some(Reg::FP) {
                return Err(at(pc, ProgramErrorKind::FramePointerWrite));
            }
            insns.push(Some(insn));
            if insn.slots() == 2 {
                insns.push(None);
            }
            pc += insn.slots();
        }
        for (pc, insn) in insns.iter().enumerate() {
            let Some(insn) = insn else { continue };
            if let Some(off) = insn.branch_offset() {
                let target = pc as i64 + 1 + off;
                if target < 0 || target >= len as i64 {
                    return Err(at(pc, ProgramErrorKind::JumpOutOfRange { target, len }));
                }
                if insns[target as usize].is_none() {
                    return Err(at(
                        pc,
                        ProgramErrorKind::JumpIntoLddw {
                            target: target as usize,
                        },
                    ));
                }
            }
        }
        let last = insns.iter().rposition(Option::is_some).unwrap_or(0);
        if !matches!(insns[last], Some(Insn::Exit | Insn::Ja { .. })) {
            return Err(at(last, ProgramErrorKind::FallsOffEnd));
        }
        Ok(Program { slots, insns })
    }

    /// Builds and validates a program from decoded instructions.
    pub fn from_insns(insns: &[Insn]) -> Result<Program, ProgramError> {
        let slots = insns
            .iter()
            .flat_map(|i| i.encode().as_slice().to_vec())
            .collect();
        Program::from_slots(slots)
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Always false: an empty program is rejected.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The raw slots.
    pub fn slots(&self) -> &[RawInsn] {
        &self.slots
    }

    /// The instruction starting at `pc` (`None` past the end or inside a `lddw`).
    pub fn get(&self, pc: usize) -> Option<Insn> {
        self.insns.get(pc).copied().flatten()
    }

    /// Every instruction with its pc.
    pub fn iter(&self) -> impl Iterator<Item = (usize, Insn)> + '_ {
        self.insns
            .iter()
            .enumerate()
            .filter_map(|(pc, i)| i.map(|i| (pc, i)))
    }

    /// The bytecode.
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::slots_to_bytes(&self.slots)
    }
}
