//! A tiny instruction builder and runner for the interpreter's tests.
#![allow(dead_code, reason = "each test file uses a different subset")]

use bpfvm_interp::Interpreter;
use bpfvm_isa::{
    AluOp, AtomicOp, CallKind, EndianOp, Insn, JmpOp, LdDwKind, Program, Reg, Size, Source, Width,
};
use bpfvm_runtime::{Fault, LoadedProgram, ProgramType, RunOptions};

pub const R0: Reg = Reg::R0;
pub const R1: Reg = Reg::R1;
pub const R2: Reg = Reg::R2;
pub const R3: Reg = Reg::R3;
pub const R4: Reg = Reg::R4;
pub const R5: Reg = Reg::R5;
pub const R6: Reg = Reg::R6;
pub const R7: Reg = Reg::R7;
pub const R8: Reg = Reg::R8;
pub const R9: Reg = Reg::R9;
pub const R10: Reg = Reg::R10;

pub fn alu64(op: AluOp, dst: Reg, imm: i32) -> Insn {
    Insn::Alu {
        width: Width::W64,
        op,
        dst,
        src: Source::Imm(imm),
    }
}
pub fn alu64r(op: AluOp, dst: Reg, src: Reg) -> Insn {
    Insn::Alu {
        width: Width::W64,
        op,
        dst,
        src: Source::Reg(src),
    }
}
pub fn alu32(op: AluOp, dst: Reg, imm: i32) -> Insn {
    Insn::Alu {
        width: Width::W32,
        op,
        dst,
        src: Source::Imm(imm),
    }
}
pub fn alu32r(op: AluOp, dst: Reg, src: Reg) -> Insn {
    Insn::Alu {
        width: Width::W32,
        op,
        dst,
        src: Source::Reg(src),
    }
}
pub fn mov(dst: Reg, imm: i32) -> Insn {
    alu64(AluOp::Mov, dst, imm)
}
pub fn movr(dst: Reg, src: Reg) -> Insn {
    alu64r(AluOp::Mov, dst, src)
}
pub fn neg(width: Width, dst: Reg) -> Insn {
    Insn::Neg { width, dst }
}
pub fn endian(op: EndianOp, bits: u8, dst: Reg) -> Insn {
    Insn::Endian { op, bits, dst }
}
pub fn lddw(dst: Reg, value: u64) -> Insn {
    Insn::LdDw {
        dst,
        kind: LdDwKind::Imm,
        imm: value as u32 as i32,
        next_imm: (value >> 32) as u32 as i32,
    }
}
pub fn ldx(size: Size, dst: Reg, src: Reg, off: i16) -> Insn {
    Insn::Load {
        size,
        signed: false,
        dst,
        src,
        off,
    }
}
pub fn ldxs(size: Size, dst: Reg, src: Reg, off: i16) -> Insn {
    Insn::Load {
        size,
        signed: true,
        dst,
        src,
        off,
    }
}
pub fn st(size: Size, dst: Reg, off: i16, imm: i32) -> Insn {
    Insn::Store {
        size,
        dst,
        off,
        src: Source::Imm(imm),
    }
}
pub fn stx(size: Size, dst: Reg, off: i16, src: Reg) -> Insn {
    Insn::Store {
        size,
        dst,
        off,
        src: Source::Reg(src),
    }
}
pub fn atomic(size: Size, op: AtomicOp, dst: Reg, off: i16, src: Reg) -> Insn {
    Insn::Atomic {
        size,
        op,
        dst,
        src,
        off,
    }
}
pub fn jmp(op: JmpOp, dst: Reg, imm: i32, off: i16) -> Insn {
    Insn::Jmp {
        width: Width::W64,
        op,
        dst,
        src: Source::Imm(imm),
        off,
    }
}
pub fn jmpr(op: JmpOp, dst: Reg, src: Reg, off: i16) -> Insn {
    Insn::Jmp {
        width: Width::W64,
        op,
        dst,
        src: Source::Reg(src),
        off,
    }
}
pub fn jmp32(op: JmpOp, dst: Reg, imm: i32, off: i16) -> Insn {
    Insn::Jmp {
        width: Width::W32,
        op,
        dst,
        src: Source::Imm(imm),
        off,
    }
}
pub fn ja(off: i16) -> Insn {
    Insn::Ja {
        off: off.into(),
        long: false,
    }
}
pub fn call(id: i32) -> Insn {
    Insn::Call {
        kind: CallKind::Helper,
        imm: id,
    }
}
pub fn call_local(rel: i32) -> Insn {
    Insn::Call {
        kind: CallKind::Local,
        imm: rel,
    }
}
pub const EXIT: Insn = Insn::Exit;

pub fn load(insns: &[Insn]) -> LoadedProgram {
    let program = Program::from_insns(insns).expect("test program is valid");
    LoadedProgram::new(program, ProgramType::Conformance).expect("test program loads")
}

/// Runs with a generous budget so that a broken loop fails instead of hanging.
pub fn run_mem(insns: &[Insn], mem: &mut [u8]) -> Result<u64, Fault> {
    Interpreter::new().run(
        &load(insns),
        mem,
        &RunOptions::new().with_budget(100_000_000),
    )
}

pub fn run(insns: &[Insn]) -> Result<u64, Fault> {
    run_mem(insns, &mut [])
}

/// Runs and expects a result.
pub fn r0(insns: &[Insn]) -> u64 {
    run(insns).expect("program runs")
}
