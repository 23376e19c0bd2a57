//! # bpfvm-isa: the BPF instruction set
//!
//! This crate owns everything about single instructions: the 8-byte slot
//! layout ([`RawInsn`]), the decoded form ([`Insn`]), the opcode table
//! generated from `isa-spec/opcodes.csv` ([`spec`]), decoding with
//! reserved-field validation ([`decode_one`]), encoding ([`Insn::encode`]),
//! whole-program structural validation ([`Program`]), the assembler for the
//! LLVM/kernel syntax and the bpf_conformance dialect ([`asm`]), and the
//! disassembler with its LLVM (as `llvm-objdump-19` prints), kernel
//! verifier-log and conformance printers ([`disasm`]).
//!
//! It does no I/O and knows nothing about maps, helpers or execution.
//!
//! ## Invariants
//! - **Architecture Invariant:** an [`Insn`] produced by the decoder re-encodes
//!   to exactly the slots it came from, and matches exactly one row of
//!   [`spec::OPCODES`].
//! - A [`Reg`] is always `r0`–`r10`.
//! - A [`Program`] never contains an undecodable slot, a write to `r10`, a
//!   jump outside the program or into the middle of a `lddw`, or a path that
//!   falls off the end.
//!
//! ```
//! use bpfvm_isa::{Insn, Program, Reg};
//! // mov r0, 42 ; exit
//! let bytes = [0xb7, 0x00, 0, 0, 42, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
//! let prog = Program::from_bytes(&bytes).unwrap();
//! assert_eq!(prog.get(1), Some(Insn::Exit));
//! assert_eq!(prog.get(0).unwrap().written_reg(), Some(Reg::R0));
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod asm;
mod decode;
pub mod disasm;
mod insn;
mod program;
mod raw;
mod reg;
pub mod spec;

pub use asm::{AsmError, AsmErrorKind, Dialect, assemble};
pub use decode::{DecodeErrorKind, Encoded, Field, decode_one};
pub use disasm::{Syntax, disassemble, format_insn, objdump_listing};
pub use insn::{
    AluOp, AtomicOp, CallKind, EndianOp, Insn, JmpOp, LOAD_ACQ_IMM, LdDwKind, STORE_REL_IMM, Size,
    Source, Width,
};
pub use program::{MAX_PROGRAM_SLOTS, Program, ProgramError, ProgramErrorKind};
pub use raw::{RawInsn, SLOT_SIZE, TrailingBytes, slots_from_bytes, slots_to_bytes};
pub use reg::Reg;
pub use spec::{Group, IsaVersion};
