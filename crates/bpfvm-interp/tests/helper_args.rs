//! Helper arguments a program chooses: sizes far beyond any region fault at the call,
//! naming the access, before the host allocates anything of that size.

mod common;

use bpfvm_interp::Interpreter;
use bpfvm_isa::{AluOp, Program};
use bpfvm_runtime::{FaultKind, LoadedProgram, ProgramType, RunOptions};
use common::*;

fn run_kprobe(insns: &[bpfvm_isa::Insn]) -> Result<u64, bpfvm_runtime::Fault> {
    let prog = LoadedProgram::new(
        Program::from_insns(insns).expect("valid"),
        ProgramType::Kernel(bpfvm_abi::ProgramType::Kprobe),
    )
    .expect("loads");
    Interpreter::new().run(&prog, &mut [], &RunOptions::new())
}

#[test]
fn huge_sizes_fault_instead_of_allocating() {
    // get_current_comm(fp - 16, 2^46): 64 TiB into a 16-byte stack slot (allocating it
    // first would abort the host).
    let comm = [
        movr(R1, R10),
        alu64(AluOp::Add, R1, -16),
        lddw(R2, 1 << 46),
        call(16),
        EXIT,
    ];
    let f = run_kprobe(&comm).expect_err("must fault");
    assert_eq!(f.pc, 4); // lddw takes two slots
    assert!(
        matches!(f.kind, FaultKind::OutOfBounds { size, write: true, .. } if size == 1 << 46),
        "{:?}",
        f.kind
    );
    // The same call with a size that fits succeeds and NUL-terminates.
    let ok = [
        movr(R1, R10),
        alu64(AluOp::Add, R1, -16),
        mov(R2, 16),
        call(16),
        ldx(bpfvm_isa::Size::B, R0, R10, -1),
        EXIT,
    ];
    assert_eq!(run_kprobe(&ok), Ok(0));
    // strncmp(fp - 8, 0x7fffffff, "") reads its first string through `read_vec`.
    let strncmp = [
        st(bpfvm_isa::Size::DW, R10, -8, 0),
        movr(R1, R10),
        alu64(AluOp::Add, R1, -8),
        mov(R2, 0x7fff_ffff),
        movr(R3, R10),
        alu64(AluOp::Add, R3, -8),
        call(182),
        EXIT,
    ];
    let f = run_kprobe(&strncmp).expect_err("must fault");
    assert!(
        matches!(
            f.kind,
            FaultKind::OutOfBounds {
                size: 0x7fff_ffff,
                write: false,
                ..
            }
        ),
        "{:?}",
        f.kind
    );
}
