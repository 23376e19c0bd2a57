//! Any valid program with any memory: the JIT does what the checked interpreter does.
//! Both run over the same buffer (its contents put back in between), so an address in
//! it is the same number for both; they must agree on `r0` or the fault (pc,
//! instruction, kind with its address) and on the memory left behind.
//!
//! Two differences are allowed, as in `crates/bpfvm-jit/tests/common`: each engine has
//! its own stack, so programs that use `r10` other than as the base of an access (its
//! value could reach `r0`, memory or a comparison) are skipped, and a fault's address is
//! not compared when the access was based on `r10`; and the JIT notices an exhausted
//! budget only at back-edges and calls, so a run that ends on the budget on either
//! engine is not compared further.
#![no_main]

use bpfvm_interp::Interpreter;
use bpfvm_isa::{Insn, Program, Reg, Source};
use bpfvm_jit::Jit;
use bpfvm_runtime::{
    Engine, Fault, FaultKind, LoadedProgram, ProgramType, RunError, RunOptions,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (mem_len, rest) = data.split_at(data.len().min(1));
    let mem_len = mem_len.first().copied().unwrap_or(0) as usize;
    let (mem, code) = rest.split_at(rest.len().min(mem_len));
    let Ok(program) = Program::from_bytes(code) else { return };
    if program.iter().any(|(_, insn)| reads_frame_pointer(insn)) {
        return;
    }
    let Ok(prog) = LoadedProgram::new(program, ProgramType::Conformance) else { return };
    let opts = RunOptions { budget: Some(100_000), ..RunOptions::default() };
    let mut buf = mem.to_vec();
    let interp = Engine::run(&Interpreter::new(), &prog, &mut buf, &opts);
    // The same buffer (the same addresses) with its contents put back.
    let interp_mem = buf.clone();
    buf.copy_from_slice(mem);
    let jit = Engine::run(&Jit::new(), &prog, &mut buf, &opts);
    let ended_on_budget = |r: &Result<u64, RunError>| {
        matches!(r, Err(RunError::Fault(Fault { kind: FaultKind::BudgetExhausted { .. }, .. })))
    };
    if ended_on_budget(&interp) || ended_on_budget(&jit) {
        return;
    }
    match (&interp, &jit) {
        (Err(RunError::Fault(a)), Err(RunError::Fault(b))) => {
            assert_eq!(comparable(a, &prog), comparable(b, &prog), "faults differ");
        }
        _ => assert_eq!(interp, jit, "results differ"),
    }
    assert_eq!(interp_mem, buf, "memory differs");
});

/// Whether `insn` reads `r10` as a value rather than as the base of a memory access.
fn reads_frame_pointer(insn: Insn) -> bool {
    let fp = |s: Source| matches!(s, Source::Reg(Reg::R10));
    match insn {
        Insn::Alu { src, .. } => fp(src),
        Insn::Jmp { dst, src, .. } => dst == Reg::R10 || fp(src),
        Insn::Store { src, .. } => fp(src),
        Insn::StoreRelease { src, .. } | Insn::Atomic { src, .. } => src == Reg::R10,
        Insn::Callx { reg } => reg == Reg::R10,
        Insn::LdInd { src, .. } => src == Reg::R10,
        _ => false,
    }
}

/// A fault with its address left out when the faulting access was based on `r10` (an
/// address in the engine's own stack).
fn comparable(f: &Fault, prog: &LoadedProgram) -> Fault {
    let mut f = *f;
    let base_is_fp = match prog.program().get(f.pc) {
        Some(Insn::Load { src, .. } | Insn::LoadAcquire { src, .. }) => src == Reg::R10,
        Some(Insn::Store { dst, .. } | Insn::StoreRelease { dst, .. } | Insn::Atomic { dst, .. }) => {
            dst == Reg::R10
        }
        _ => false,
    };
    if base_is_fp {
        if let FaultKind::OutOfBounds { addr, .. } | FaultKind::MisalignedAtomic { addr, .. } =
            &mut f.kind
        {
            *addr = 0;
        }
    }
    f
}
