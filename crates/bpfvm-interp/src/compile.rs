//! Pre-decoding: a validated program becomes one flat [`Op`] per slot, built once per
//! [`LoadedProgram`] and cached in it.
//!
//! Each `Op` names one concrete operation ([`Code`]: operation × width × operand kind), so
//! the dispatch loop does one jump per instruction. Immediates are pre-extended to 64
//! bits, jump and call targets are absolute pcs, `lddw` carries its full 64-bit value
//! (a code address already resolved), and the second slot of a `lddw` holds
//! [`Code::Invalid`], which no validated jump reaches.

use bpfvm_isa::{AluOp, AtomicOp, CallKind, EndianOp, Insn, JmpOp, LdDwKind, Size, Source, Width};
use bpfvm_runtime::LoadedProgram;

/// One pre-decoded instruction (16 bytes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Op {
    /// Immediate, pre-extended: sign-extended for ALU, jumps, stores and helper ids; the
    /// whole value for `lddw`.
    pub(crate) imm: u64,
    /// Memory offset (sign-extended `off`), or the absolute target pc of a jump, local
    /// call or `may_goto`.
    pub(crate) off: i32,
    pub(crate) code: Code,
    pub(crate) dst: u8,
    pub(crate) src: u8,
}

impl Op {
    const INVALID: Op = Op {
        imm: 0,
        off: 0,
        code: Code::Invalid,
        dst: 0,
        src: 0,
    };

    /// The absolute target pc of a jump, local call or `may_goto`.
    #[inline(always)]
    pub(crate) fn target(&self) -> usize {
        self.off as u32 as usize
    }
}

/// A program ready for the dispatch loop.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) ops: Box<[Op]>,
}

impl Compiled {
    pub(crate) fn new(prog: &LoadedProgram) -> Compiled {
        let program = prog.program();
        let mut ops = vec![Op::INVALID; program.len()];
        for (pc, insn) in program.iter() {
            if let Some(slot) = ops.get_mut(pc) {
                *slot = lower(prog, pc, insn);
            }
        }
        Compiled {
            ops: ops.into_boxed_slice(),
        }
    }
}

/// Absolute target of a relative branch at `pc` (validated to be in range).
fn target(pc: usize, rel: i64) -> i32 {
    (pc as i64 + 1 + rel) as i32
}

fn sext(imm: i32) -> u64 {
    i64::from(imm) as u64
}

/// Puts a second operand into `src` or `imm`.
fn set_src(op: &mut Op, src: Source) {
    match src {
        Source::Reg(r) => op.src = r.index(),
        Source::Imm(i) => op.imm = sext(i),
    }
}

fn lower(prog: &LoadedProgram, pc: usize, insn: Insn) -> Op {
    let mut op = Op::INVALID;
    match insn {
        Insn::Alu {
            width,
            op: aop,
            dst,
            src,
        } => {
            op.dst = dst.index();
            set_src(&mut op, src);
            op.code = alu_code(width, aop, src);
            // MOVSX only exists with a register source; should an immediate form ever be
            // built, fold the sign extension into the immediate.
            if let (Source::Imm(i), AluOp::MovSx8 | AluOp::MovSx16 | AluOp::MovSx32) = (src, aop) {
                op.imm = match width {
                    Width::W64 => crate::semantics::alu64(aop, 0, sext(i)),
                    Width::W32 => crate::semantics::alu32(aop, 0, sext(i)),
                };
            }
        }
        Insn::Neg { width, dst } => {
            op.dst = dst.index();
            op.code = match width {
                Width::W64 => Code::Neg64,
                Width::W32 => Code::Neg32,
            };
        }
        Insn::Endian { op: eop, bits, dst } => {
            op.dst = dst.index();
            op.code = match (eop, bits) {
                (EndianOp::ToLe, 16) => Code::Le16,
                (EndianOp::ToLe, 32) => Code::Le32,
                (EndianOp::ToLe, _) => Code::Le64,
                (EndianOp::ToBe, 16) => Code::Be16,
                (EndianOp::ToBe, 32) => Code::Be32,
                (EndianOp::ToBe, _) => Code::Be64,
                (EndianOp::Swap, 16) => Code::Swap16,
                (EndianOp::Swap, 32) => Code::Swap32,
                (EndianOp::Swap, _) => Code::Swap64,
            };
        }
        Insn::LdDw {
            dst,
            kind,
            imm,
            next_imm,
        } => {
            op.dst = dst.index();
            op.code = Code::LdDw;
            op.imm = match kind {
                // `LoadedProgram::new` proved the target is an instruction start.
                LdDwKind::Func => prog.code_address(target(pc, i64::from(imm)) as usize),
                // Map references, resolved at load to a handle or a value address.
                LdDwKind::MapFd | LdDwKind::MapIdx | LdDwKind::MapValue | LdDwKind::MapIdxValue => {
                    prog.lddw_value(pc).unwrap_or_default()
                }
                // BTF-id loads are rejected at load; only constants remain.
                _ => Insn::lddw_value(imm, next_imm),
            };
        }
        Insn::Load {
            size,
            signed,
            dst,
            src,
            off,
        } => {
            op.dst = dst.index();
            op.src = src.index();
            op.off = off.into();
            op.code = match (size, signed) {
                (Size::B, false) => Code::LdxB,
                (Size::H, false) => Code::LdxH,
                (Size::W, false) => Code::LdxW,
                (Size::DW, _) => Code::LdxDw,
                (Size::B, true) => Code::LdxSB,
                (Size::H, true) => Code::LdxSH,
                (Size::W, true) => Code::LdxSW,
            };
        }
        Insn::Store {
            size,
            dst,
            off,
            src,
        } => {
            op.dst = dst.index();
            op.off = off.into();
            set_src(&mut op, src);
            op.code = match (size, src) {
                (Size::B, Source::Imm(_)) => Code::StB,
                (Size::H, Source::Imm(_)) => Code::StH,
                (Size::W, Source::Imm(_)) => Code::StW,
                (Size::DW, Source::Imm(_)) => Code::StDw,
                (Size::B, Source::Reg(_)) => Code::StxB,
                (Size::H, Source::Reg(_)) => Code::StxH,
                (Size::W, Source::Reg(_)) => Code::StxW,
                (Size::DW, Source::Reg(_)) => Code::StxDw,
            };
        }
        Insn::Atomic {
            size,
            op: aop,
            dst,
            src,
            off,
        } => {
            op.dst = dst.index();
            op.src = src.index();
            op.off = off.into();
            op.code = atomic_code(size, aop);
        }
        Insn::LoadAcquire {
            size,
            dst,
            src,
            off,
        } => {
            op.dst = dst.index();
            op.src = src.index();
            op.off = off.into();
            op.code = match size {
                Size::B => Code::LoadAcqB,
                Size::H => Code::LoadAcqH,
                Size::W => Code::LoadAcqW,
                Size::DW => Code::LoadAcqDw,
            };
        }
        Insn::StoreRelease {
            size,
            dst,
            src,
            off,
        } => {
            op.dst = dst.index();
            op.src = src.index();
            op.off = off.into();
            op.code = match size {
                Size::B => Code::StoreRelB,
                Size::H => Code::StoreRelH,
                Size::W => Code::StoreRelW,
                Size::DW => Code::StoreRelDw,
            };
        }
        Insn::LdAbs { size, imm } => {
            op.imm = sext(imm);
            op.code = match size {
                Size::B => Code::LdAbsB,
                Size::H => Code::LdAbsH,
                // No 64-bit packet load exists; the decoder never produces one.
                Size::W | Size::DW => Code::LdAbsW,
            };
        }
        Insn::LdInd { size, src, imm } => {
            op.src = src.index();
            op.imm = sext(imm);
            op.code = match size {
                Size::B => Code::LdIndB,
                Size::H => Code::LdIndH,
                Size::W | Size::DW => Code::LdIndW,
            };
        }
        Insn::Ja { off, .. } => {
            op.off = target(pc, off.into());
            op.code = Code::Ja;
        }
        Insn::Jmp {
            width,
            op: jop,
            dst,
            src,
            off,
        } => {
            op.dst = dst.index();
            set_src(&mut op, src);
            op.off = target(pc, off.into());
            op.code = jmp_code(width, jop, src);
        }
        Insn::Call { kind, imm } => match kind {
            CallKind::Local => {
                op.off = target(pc, imm.into());
                op.code = Code::CallLocal;
            }
            CallKind::Helper => {
                op.imm = sext(imm);
                op.code = Code::CallHelper;
            }
            // The load proved a kfunc with this BTF id is registered.
            CallKind::Kfunc => {
                op.imm = sext(imm);
                op.code = Code::CallKfunc;
            }
        },
        Insn::Callx { reg } => {
            op.dst = reg.index();
            op.code = Code::Callx;
        }
        Insn::Exit => op.code = Code::Exit,
        Insn::MayGoto { off } => {
            op.off = target(pc, off.into());
            op.code = Code::MayGoto;
        }
    }
    op
}

fn alu_code(width: Width, op: AluOp, src: Source) -> Code {
    use Code::*;
    // [64-bit imm, 64-bit reg, 32-bit imm, 32-bit reg]
    let codes = match op {
        AluOp::Add => [Add64Imm, Add64Reg, Add32Imm, Add32Reg],
        AluOp::Sub => [Sub64Imm, Sub64Reg, Sub32Imm, Sub32Reg],
        AluOp::Mul => [Mul64Imm, Mul64Reg, Mul32Imm, Mul32Reg],
        AluOp::Div => [Div64Imm, Div64Reg, Div32Imm, Div32Reg],
        AluOp::SDiv => [SDiv64Imm, SDiv64Reg, SDiv32Imm, SDiv32Reg],
        AluOp::Or => [Or64Imm, Or64Reg, Or32Imm, Or32Reg],
        AluOp::And => [And64Imm, And64Reg, And32Imm, And32Reg],
        AluOp::Lsh => [Lsh64Imm, Lsh64Reg, Lsh32Imm, Lsh32Reg],
        AluOp::Rsh => [Rsh64Imm, Rsh64Reg, Rsh32Imm, Rsh32Reg],
        AluOp::Mod => [Mod64Imm, Mod64Reg, Mod32Imm, Mod32Reg],
        AluOp::SMod => [SMod64Imm, SMod64Reg, SMod32Imm, SMod32Reg],
        AluOp::Xor => [Xor64Imm, Xor64Reg, Xor32Imm, Xor32Reg],
        AluOp::Mov => [Mov64Imm, Mov64Reg, Mov32Imm, Mov32Reg],
        AluOp::Arsh => [Arsh64Imm, Arsh64Reg, Arsh32Imm, Arsh32Reg],
        // The immediate forms carry the extension folded into `imm` (see `lower`).
        AluOp::MovSx8 => [Mov64Imm, MovSx8To64, Mov64Imm, MovSx8To32],
        AluOp::MovSx16 => [Mov64Imm, MovSx16To64, Mov64Imm, MovSx16To32],
        AluOp::MovSx32 => [Mov64Imm, MovSx32To64, Mov64Imm, Mov32Reg],
    };
    codes[form_index(width, src)]
}

/// Index into the `[64-bit imm, 64-bit reg, 32-bit imm, 32-bit reg]` code tables.
fn form_index(width: Width, src: Source) -> usize {
    match (width, src) {
        (Width::W64, Source::Imm(_)) => 0,
        (Width::W64, Source::Reg(_)) => 1,
        (Width::W32, Source::Imm(_)) => 2,
        (Width::W32, Source::Reg(_)) => 3,
    }
}

fn jmp_code(width: Width, op: JmpOp, src: Source) -> Code {
    use Code::*;
    // [64-bit imm, 64-bit reg, 32-bit imm, 32-bit reg]
    let codes = match op {
        JmpOp::Eq => [Jeq64Imm, Jeq64Reg, Jeq32Imm, Jeq32Reg],
        JmpOp::Gt => [Jgt64Imm, Jgt64Reg, Jgt32Imm, Jgt32Reg],
        JmpOp::Ge => [Jge64Imm, Jge64Reg, Jge32Imm, Jge32Reg],
        JmpOp::Set => [Jset64Imm, Jset64Reg, Jset32Imm, Jset32Reg],
        JmpOp::Ne => [Jne64Imm, Jne64Reg, Jne32Imm, Jne32Reg],
        JmpOp::Sgt => [Jsgt64Imm, Jsgt64Reg, Jsgt32Imm, Jsgt32Reg],
        JmpOp::Sge => [Jsge64Imm, Jsge64Reg, Jsge32Imm, Jsge32Reg],
        JmpOp::Lt => [Jlt64Imm, Jlt64Reg, Jlt32Imm, Jlt32Reg],
        JmpOp::Le => [Jle64Imm, Jle64Reg, Jle32Imm, Jle32Reg],
        JmpOp::Slt => [Jslt64Imm, Jslt64Reg, Jslt32Imm, Jslt32Reg],
        JmpOp::Sle => [Jsle64Imm, Jsle64Reg, Jsle32Imm, Jsle32Reg],
    };
    codes[form_index(width, src)]
}

fn atomic_code(size: Size, op: AtomicOp) -> Code {
    use Code::*;
    // [32-bit, 64-bit]
    let codes = match op {
        AtomicOp::Add { fetch: false } => [Atomic32Add, Atomic64Add],
        AtomicOp::Or { fetch: false } => [Atomic32Or, Atomic64Or],
        AtomicOp::And { fetch: false } => [Atomic32And, Atomic64And],
        AtomicOp::Xor { fetch: false } => [Atomic32Xor, Atomic64Xor],
        AtomicOp::Add { fetch: true } => [Atomic32FetchAdd, Atomic64FetchAdd],
        AtomicOp::Or { fetch: true } => [Atomic32FetchOr, Atomic64FetchOr],
        AtomicOp::And { fetch: true } => [Atomic32FetchAnd, Atomic64FetchAnd],
        AtomicOp::Xor { fetch: true } => [Atomic32FetchXor, Atomic64FetchXor],
        AtomicOp::Xchg => [Atomic32Xchg, Atomic64Xchg],
        AtomicOp::CmpXchg => [Atomic32CmpXchg, Atomic64CmpXchg],
    };
    // Atomics are W or DW only; the decoder produces nothing else.
    codes[usize::from(size == Size::DW)]
}

/// Every concrete operation of the dispatch loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub(crate) enum Code {
    // ALU64, immediate and register operand.
    Add64Imm,
    Add64Reg,
    Sub64Imm,
    Sub64Reg,
    Mul64Imm,
    Mul64Reg,
    Div64Imm,
    Div64Reg,
    SDiv64Imm,
    SDiv64Reg,
    Or64Imm,
    Or64Reg,
    And64Imm,
    And64Reg,
    Lsh64Imm,
    Lsh64Reg,
    Rsh64Imm,
    Rsh64Reg,
    Mod64Imm,
    Mod64Reg,
    SMod64Imm,
    SMod64Reg,
    Xor64Imm,
    Xor64Reg,
    Mov64Imm,
    Mov64Reg,
    Arsh64Imm,
    Arsh64Reg,
    MovSx8To64,
    MovSx16To64,
    MovSx32To64,
    Neg64,
    // ALU (32-bit).
    Add32Imm,
    Add32Reg,
    Sub32Imm,
    Sub32Reg,
    Mul32Imm,
    Mul32Reg,
    Div32Imm,
    Div32Reg,
    SDiv32Imm,
    SDiv32Reg,
    Or32Imm,
    Or32Reg,
    And32Imm,
    And32Reg,
    Lsh32Imm,
    Lsh32Reg,
    Rsh32Imm,
    Rsh32Reg,
    Mod32Imm,
    Mod32Reg,
    SMod32Imm,
    SMod32Reg,
    Xor32Imm,
    Xor32Reg,
    Mov32Imm,
    Mov32Reg,
    Arsh32Imm,
    Arsh32Reg,
    MovSx8To32,
    MovSx16To32,
    Neg32,
    // Byte order.
    Le16,
    Le32,
    Le64,
    Be16,
    Be32,
    Be64,
    Swap16,
    Swap32,
    Swap64,
    // Loads and stores.
    LdDw,
    LdxB,
    LdxH,
    LdxW,
    LdxDw,
    LdxSB,
    LdxSH,
    LdxSW,
    StB,
    StH,
    StW,
    StDw,
    StxB,
    StxH,
    StxW,
    StxDw,
    // Atomics.
    Atomic32Add,
    Atomic32Or,
    Atomic32And,
    Atomic32Xor,
    Atomic32FetchAdd,
    Atomic32FetchOr,
    Atomic32FetchAnd,
    Atomic32FetchXor,
    Atomic32Xchg,
    Atomic32CmpXchg,
    Atomic64Add,
    Atomic64Or,
    Atomic64And,
    Atomic64Xor,
    Atomic64FetchAdd,
    Atomic64FetchOr,
    Atomic64FetchAnd,
    Atomic64FetchXor,
    Atomic64Xchg,
    Atomic64CmpXchg,
    LoadAcqB,
    LoadAcqH,
    LoadAcqW,
    LoadAcqDw,
    StoreRelB,
    StoreRelH,
    StoreRelW,
    StoreRelDw,
    // Legacy packet loads.
    LdAbsB,
    LdAbsH,
    LdAbsW,
    LdIndB,
    LdIndH,
    LdIndW,
    // Jumps.
    Ja,
    Jeq64Imm,
    Jeq64Reg,
    Jeq32Imm,
    Jeq32Reg,
    Jgt64Imm,
    Jgt64Reg,
    Jgt32Imm,
    Jgt32Reg,
    Jge64Imm,
    Jge64Reg,
    Jge32Imm,
    Jge32Reg,
    Jset64Imm,
    Jset64Reg,
    Jset32Imm,
    Jset32Reg,
    Jne64Imm,
    Jne64Reg,
    Jne32Imm,
    Jne32Reg,
    Jsgt64Imm,
    Jsgt64Reg,
    Jsgt32Imm,
    Jsgt32Reg,
    Jsge64Imm,
    Jsge64Reg,
    Jsge32Imm,
    Jsge32Reg,
    Jlt64Imm,
    Jlt64Reg,
    Jlt32Imm,
    Jlt32Reg,
    Jle64Imm,
    Jle64Reg,
    Jle32Imm,
    Jle32Reg,
    Jslt64Imm,
    Jslt64Reg,
    Jslt32Imm,
    Jslt32Reg,
    Jsle64Imm,
    Jsle64Reg,
    Jsle32Imm,
    Jsle32Reg,
    // Calls and control.
    CallHelper,
    CallKfunc,
    CallLocal,
    Callx,
    Exit,
    MayGoto,
    /// The second slot of a `lddw`: never executed.
    Invalid,
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfvm_isa::{Program, spec::OPCODES};
    use bpfvm_runtime::ProgramType;

    #[test]
    fn op_is_16_bytes() {
        assert_eq!(std::mem::size_of::<Op>(), 16);
    }

    /// Every row of the opcode table lowers to its own operation (but `goto`/`gotol`).
    #[test]
    fn every_opcode_row_lowers() {
        let mut seen = std::collections::HashMap::new();
        for row in OPCODES {
            let raw = row.example(1, 2, 0, 0);
            let insn = match bpfvm_isa::decode_one(&[raw, Default::default()]) {
                Ok(i) => i,
                Err(e) => panic!("{} does not decode: {e}", row.mnemonic),
            };
            if matches!(
                insn,
                Insn::LdDw { kind, .. } if kind != LdDwKind::Imm
            ) || matches!(
                insn,
                Insn::Call {
                    kind: CallKind::Kfunc | CallKind::Local,
                    ..
                }
            ) {
                continue;
            }
            let prog = Program::from_insns(&[insn, Insn::Exit]).expect("valid");
            let loaded = LoadedProgram::new(prog, ProgramType::Conformance).expect("loads");
            let op = lower(&loaded, 0, insn);
            assert_ne!(op.code, Code::Invalid, "{}", row.mnemonic);
            // `goto` and `gotol` differ only in where the offset sits.
            if op.code == Code::Ja {
                continue;
            }
            if let Some(prev) = seen.insert(op.code, (row.mnemonic, row.operands)) {
                panic!(
                    "{} {} and {} {} share {:?}",
                    prev.0, prev.1, row.mnemonic, row.operands, op.code
                );
            }
        }
    }
}
