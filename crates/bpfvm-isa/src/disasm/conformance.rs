//! The conformance printer: the assembly dialect of the bpf_conformance
//! `.data` files (`add32 %r1, 5`, `ldxw %r0, [%r1+4]`, `jeq %r1, 0x2, +1`),
//! with mnemonics from the `mnemonic` column of `isa-spec/opcodes.csv`.
//!
//! Immediates print in decimal, `lddw` constants in hex, jump targets as
//! `+N`/`-N`. Extensions use the spec table's spelling: `may_goto +N`,
//! `ldacqw %r1, [%r2+0]`, `strelw [%r1+0], %r2`, `callx %r2`,
//! `call local +N`, `call runtime N`, `lddw_map_value %r1, FD, OFFSET` and
//! the other `lddw_*` forms, where a `next_imm` the kind does not use is
//! printed as an extra trailing operand.

use crate::{AluOp, AtomicOp, CallKind, EndianOp, Insn, LdDwKind, Reg, Size, Source, Width};

fn suffix(s: Size) -> &'static str {
    match s {
        Size::B => "b",
        Size::H => "h",
        Size::W => "w",
        Size::DW => "dw",
    }
}

fn reg(r: Reg) -> String {
    format!("%r{}", r.index())
}

fn mem(base: Reg, off: i16) -> String {
    format!("[%r{}{off:+}]", base.index())
}

/// Every ALU operation, for looking names up in reverse.
pub(crate) const ALU_OPS: [AluOp; 17] = [
    AluOp::Add,
    AluOp::Sub,
    AluOp::Mul,
    AluOp::Div,
    AluOp::SDiv,
    AluOp::Or,
    AluOp::And,
    AluOp::Lsh,
    AluOp::Rsh,
    AluOp::Mod,
    AluOp::SMod,
    AluOp::Xor,
    AluOp::Mov,
    AluOp::MovSx8,
    AluOp::MovSx16,
    AluOp::MovSx32,
    AluOp::Arsh,
];

/// The mnemonic stem of an ALU operation (`add`, `movsx8`…).
pub(crate) fn alu_name(op: AluOp) -> &'static str {
    match op {
        AluOp::Add => "add",
        AluOp::Sub => "sub",
        AluOp::Mul => "mul",
        AluOp::Div => "div",
        AluOp::SDiv => "sdiv",
        AluOp::Or => "or",
        AluOp::And => "and",
        AluOp::Lsh => "lsh",
        AluOp::Rsh => "rsh",
        AluOp::Mod => "mod",
        AluOp::SMod => "smod",
        AluOp::Xor => "xor",
        AluOp::Mov => "mov",
        AluOp::MovSx8 => "movsx8",
        AluOp::MovSx16 => "movsx16",
        AluOp::MovSx32 => "movsx32",
        AluOp::Arsh => "arsh",
    }
}

/// The mnemonic stem of a comparison (`jeq`…).
pub(crate) fn jmp_name(op: crate::JmpOp) -> &'static str {
    use crate::JmpOp::*;
    match op {
        Eq => "jeq",
        Gt => "jgt",
        Ge => "jge",
        Set => "jset",
        Ne => "jne",
        Sgt => "jsgt",
        Sge => "jsge",
        Lt => "jlt",
        Le => "jle",
        Slt => "jslt",
        Sle => "jsle",
    }
}

/// `, next` when a kind that ignores `next_imm` carries one anyway.
fn extra(next_imm: i32) -> String {
    if next_imm == 0 {
        String::new()
    } else {
        format!(", {next_imm}")
    }
}

/// The conformance-dialect text of one instruction.
pub(crate) fn format(insn: &Insn) -> String {
    match *insn {
        Insn::Alu {
            width,
            op,
            dst,
            src,
        } => {
            let name = alu_name(op);
            // movsx spells both widths: movsx832, movsx1664…
            let w = match (width, op) {
                (Width::W32, AluOp::MovSx8 | AluOp::MovSx16 | AluOp::MovSx32) => "32",
                (Width::W64, AluOp::MovSx8 | AluOp::MovSx16 | AluOp::MovSx32) => "64",
                (Width::W32, _) => "32",
                (Width::W64, _) => "",
            };
            let rhs = match src {
                Source::Reg(r) => reg(r),
                Source::Imm(i) => i.to_string(),
            };
            format!("{name}{w} {}, {rhs}", reg(dst))
        }
        Insn::Neg { width, dst } => {
            let w = if width == Width::W32 { "32" } else { "" };
            format!("neg{w} {}", reg(dst))
        }
        Insn::Endian { op, bits, dst } => {
            let name = match op {
                EndianOp::ToLe => "le",
                EndianOp::ToBe => "be",
                EndianOp::Swap => "bswap",
            };
            format!("{name}{bits} {}", reg(dst))
        }
        Insn::LdDw {
            dst,
            kind,
            imm,
            next_imm,
        } => {
            let d = reg(dst);
            match kind {
                LdDwKind::Imm => format!("lddw {d}, 0x{:x}", Insn::lddw_value(imm, next_imm)),
                LdDwKind::MapFd => format!("lddw_map_fd {d}, {imm}{}", extra(next_imm)),
                LdDwKind::MapValue => format!("lddw_map_value {d}, {imm}, {next_imm}"),
                LdDwKind::BtfId => format!("lddw_btf_var {d}, {imm}{}", extra(next_imm)),
                LdDwKind::Func => format!("lddw_func {d}, {imm:+}{}", extra(next_imm)),
                LdDwKind::MapIdx => format!("lddw_map_idx {d}, {imm}{}", extra(next_imm)),
                LdDwKind::MapIdxValue => {
                    format!("lddw_map_idx_value {d}, {imm}, {next_imm}")
                }
            }
        }
        Insn::Load {
            size,
            signed,
            dst,
            src,
            off,
        } => {
            let s = if signed { "s" } else { "" };
            format!("ldx{s}{} {}, {}", suffix(size), reg(dst), mem(src, off))
        }
        Insn::Store {
            size,
            dst,
            off,
            src,
        } => match src {
            Source::Imm(i) => format!("st{} {}, {i}", suffix(size), mem(dst, off)),
            Source::Reg(r) => format!("stx{} {}, {}", suffix(size), mem(dst, off), reg(r)),
        },
        Insn::Atomic {
            size,
            op,
            dst,
            src,
            off,
        } => {
            let w = if size == Size::W { "32" } else { "" };
            let (fetch, name) = match op {
                AtomicOp::Add { fetch } => (fetch, "add"),
                AtomicOp::Or { fetch } => (fetch, "or"),
                AtomicOp::And { fetch } => (fetch, "and"),
                AtomicOp::Xor { fetch } => (fetch, "xor"),
                AtomicOp::Xchg => (false, "xchg"),
                AtomicOp::CmpXchg => (false, "cmpxchg"),
            };
            let f = if fetch { "fetch " } else { "" };
            format!("lock {f}{name}{w} {}, {}", mem(dst, off), reg(src))
        }
        Insn::LoadAcquire {
            size,
            dst,
            src,
            off,
        } => format!("ldacq{} {}, {}", suffix(size), reg(dst), mem(src, off)),
        Insn::StoreRelease {
            size,
            dst,
            src,
            off,
        } => format!("strel{} {}, {}", suffix(size), mem(dst, off), reg(src)),
        Insn::LdAbs { size, imm } => format!("ldabs{} {imm}", suffix(size)),
        Insn::LdInd { size, src, imm } => format!("ldind{} {}, {imm}", suffix(size), reg(src)),
        Insn::Ja { off, long: false } => format!("ja {off:+}"),
        Insn::Ja { off, long: true } => format!("ja32 {off:+}"),
        Insn::Jmp {
            width,
            op,
            dst,
            src,
            off,
        } => {
            let w = if width == Width::W32 { "32" } else { "" };
            let rhs = match src {
                Source::Reg(r) => reg(r),
                Source::Imm(i) => i.to_string(),
            };
            format!("{}{w} {}, {rhs}, {off:+}", jmp_name(op), reg(dst))
        }
        Insn::Call { kind, imm } => match kind {
            CallKind::Helper => format!("call {imm}"),
            CallKind::Local => format!("call local {imm:+}"),
            CallKind::Kfunc => format!("call runtime {imm}"),
        },
        Insn::Callx { reg: r } => format!("callx {}", reg(r)),
        Insn::Exit => "exit".to_string(),
        Insn::MayGoto { off } => format!("may_goto {off:+}"),
    }
}
