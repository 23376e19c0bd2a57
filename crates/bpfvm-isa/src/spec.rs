//! The opcode table, generated at build time from `isa-spec/opcodes.csv`.
//!
//! Each row is one encoding: an opcode byte plus the values of `dst`, `src`,
//! `off` and `imm` it requires. A field is either an operand (any value, for
//! registers any of `r0`–`r10`) or fixed: reserved fields are fixed to 0 and
//! selector fields (the `src` of `lddw`, the `imm` of atomics, the `off` of
//! `sdiv`…) to the value that selects the row. An instruction is valid exactly
//! when some row matches it; [`lookup`] finds that row.

use std::fmt;

use crate::RawInsn;

/// What a row requires of one instruction field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRule {
    /// The field is an operand: any value (a register field must still name `r0`–`r10`).
    Operand,
    /// The field must hold exactly this value.
    Fixed(i64),
}

impl FieldRule {
    /// Whether `value` satisfies the rule.
    pub const fn accepts(self, value: i64) -> bool {
        match self {
            FieldRule::Operand => true,
            FieldRule::Fixed(v) => v == value,
        }
    }
}

/// Instruction class (the low 3 bits of the opcode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// 0: non-standard loads (`lddw`, legacy packet loads).
    Ld,
    /// 1: loads into a register.
    Ldx,
    /// 2: stores of an immediate.
    St,
    /// 3: stores of a register, atomics.
    Stx,
    /// 4: 32-bit arithmetic.
    Alu,
    /// 5: 64-bit jumps, calls, exit.
    Jmp,
    /// 6: 32-bit jumps.
    Jmp32,
    /// 7: 64-bit arithmetic.
    Alu64,
}

/// Conformance group (RFC 9669 §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    /// 32-bit base instructions (mandatory).
    Base32,
    /// 64-bit base instructions.
    Base64,
    /// 32-bit atomics.
    Atomic32,
    /// 64-bit atomics.
    Atomic64,
    /// 32-bit multiplication, division and modulo.
    Divmul32,
    /// 64-bit multiplication, division and modulo.
    Divmul64,
    /// Legacy packet access (historical).
    Packet,
}

impl Group {
    /// Every group, in RFC order.
    pub const ALL: [Group; 7] = [
        Group::Base32,
        Group::Base64,
        Group::Atomic32,
        Group::Atomic64,
        Group::Divmul32,
        Group::Divmul64,
        Group::Packet,
    ];

    /// The RFC's name for the group.
    pub const fn name(self) -> &'static str {
        match self {
            Group::Base32 => "base32",
            Group::Base64 => "base64",
            Group::Atomic32 => "atomic32",
            Group::Atomic64 => "atomic64",
            Group::Divmul32 => "divmul32",
            Group::Divmul64 => "divmul64",
            Group::Packet => "packet",
        }
    }

    /// The group with this name.
    pub fn from_name(name: &str) -> Option<Group> {
        Group::ALL.into_iter().find(|g| g.name() == name)
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// ISA version (clang's `-mcpu=v1..v4`) that introduced an encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IsaVersion {
    /// The original eBPF instruction set.
    V1,
    /// Adds JLT, JLE, JSLT, JSLE.
    V2,
    /// Adds the JMP32 class and the fetching atomics.
    V3,
    /// Adds sign-extending loads and moves, SDIV/SMOD, BSWAP, `gotol`, load-acquire/store-release.
    V4,
}

impl IsaVersion {
    /// Every version, oldest first.
    pub const ALL: [IsaVersion; 4] = [
        IsaVersion::V1,
        IsaVersion::V2,
        IsaVersion::V3,
        IsaVersion::V4,
    ];

    /// `v1`..`v4`.
    pub const fn name(self) -> &'static str {
        match self {
            IsaVersion::V1 => "v1",
            IsaVersion::V2 => "v2",
            IsaVersion::V3 => "v3",
            IsaVersion::V4 => "v4",
        }
    }
}

impl fmt::Display for IsaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One row of the opcode table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpcodeInfo {
    /// The opcode byte.
    pub opcode: u8,
    /// Rule for the `dst` register field.
    pub dst: FieldRule,
    /// Rule for the `src` register field.
    pub src: FieldRule,
    /// Rule for the `off` field.
    pub off: FieldRule,
    /// Rule for the `imm` field.
    pub imm: FieldRule,
    /// Instruction class.
    pub class: Class,
    /// Mnemonic in the bpf_conformance assembly dialect.
    pub mnemonic: &'static str,
    /// Operand form in that dialect (`dst, [src+off]`…).
    pub operands: &'static str,
    /// Conformance group.
    pub group: Group,
    /// ISA version that introduced it.
    pub version: IsaVersion,
    /// A Linux extension outside RFC 9669.
    pub extension: bool,
    /// One-line semantics.
    pub semantics: &'static str,
}

impl OpcodeInfo {
    /// Whether the slot satisfies every fixed field of this row (register ranges aside).
    pub const fn matches(&self, raw: &RawInsn) -> bool {
        self.opcode == raw.opcode
            && self.dst.accepts(raw.dst as i64)
            && self.src.accepts(raw.src as i64)
            && self.off.accepts(raw.off as i64)
            && self.imm.accepts(raw.imm as i64)
    }

    /// A slot that matches this row, with the given operand values where the
    /// row takes operands (register values are taken modulo 11).
    pub const fn example(&self, dst: u8, src: u8, off: i16, imm: i32) -> RawInsn {
        const fn pick(rule: FieldRule, operand: i64) -> i64 {
            match rule {
                FieldRule::Operand => operand,
                FieldRule::Fixed(v) => v,
            }
        }
        RawInsn::new(
            self.opcode,
            pick(self.dst, (dst % 11) as i64) as u8,
            pick(self.src, (src % 11) as i64) as u8,
            pick(self.off, off as i64) as i16,
            pick(self.imm, imm as i64) as i32,
        )
    }
}

include!(concat!(env!("OUT_DIR"), "/opcode_table.rs"));

/// The rows for one opcode byte (empty when the byte is not an opcode).
pub fn rows_for(opcode: u8) -> &'static [OpcodeInfo] {
    let start = OPCODE_INDEX[opcode as usize] as usize;
    let end = OPCODE_INDEX[opcode as usize + 1] as usize;
    &OPCODES[start..end]
}

/// The table row describing this slot, if the encoding is valid.
pub fn lookup(raw: &RawInsn) -> Option<&'static OpcodeInfo> {
    rows_for(raw.opcode).iter().find(|row| row.matches(raw))
}
