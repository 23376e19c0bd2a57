//! Running one program on the interpreter and on the JIT over the same memory, and
//! comparing what they did.
//!
//! Programs see real host addresses. Both engines get the *same* buffer (its contents
//! reset in between), so an address inside it is the same number on both; the stack is
//! each engine's own, so a fault's address is compared only when the faulting access is
//! not based on `r10`.

#![allow(dead_code)] // each test file uses part of this module

use bpfvm_interp::Interpreter;
use bpfvm_isa::asm::{Dialect, assemble};
use bpfvm_isa::{Program, RawInsn};
use bpfvm_jit::Jit;
use bpfvm_runtime::{Engine, Fault, FaultKind, LoadedProgram, ProgramType, RunError, RunOptions};

/// A test program in LLVM assembler syntax, loaded with the conformance ABI (`r1` = the
/// memory, `r2` = its length).
pub fn load_asm(src: &str) -> LoadedProgram {
    let slots = assemble(src, Dialect::Llvm).expect("test program assembles");
    LoadedProgram::new(
        Program::from_slots(slots).expect("test program decodes"),
        ProgramType::Conformance,
    )
    .expect("test program loads")
}

/// `r0`, or the fault's kind and pc, of a run of `prog` on `engine` with no memory (for
/// programs that compute on registers and the stack only). Any other run error panics.
pub fn outcome(
    engine: &dyn Engine,
    prog: &LoadedProgram,
    opts: &RunOptions,
) -> Result<u64, (FaultKind, usize)> {
    match engine.run(prog, &mut [], opts) {
        Ok(r0) => Ok(r0),
        Err(RunError::Fault(f)) => Err((f.kind, f.pc)),
        Err(e) => panic!("{} run failed: {e}", engine.name()),
    }
}

/// What one engine did: `r0` or the fault, and the memory afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// `r0`, the fault, or another run error as text.
    pub result: Result<u64, Ended>,
    /// The memory after the run.
    pub mem: Vec<u8>,
    /// What the caller's `snapshot` saw after the run (map contents), if anything.
    pub maps: Vec<u8>,
}

/// Why a run gave no `r0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The program faulted.
    Fault(Fault),
    /// The engine refused or failed (never expected of either engine here).
    Error(String),
}

impl std::fmt::Display for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.result {
            Ok(r0) => write!(f, "r0 = {r0:#x}")?,
            Err(Ended::Fault(fault)) => write!(f, "fault {fault}")?,
            Err(Ended::Error(e)) => write!(f, "error {e}")?,
        }
        write!(f, ", mem {:02x?}", self.mem)?;
        if !self.maps.is_empty() {
            write!(f, ", maps {:02x?}", self.maps)?;
        }
        Ok(())
    }
}

pub fn observe(
    engine: &dyn Engine,
    prog: &LoadedProgram,
    buf: &mut [u8],
    opts: &RunOptions,
) -> Observed {
    let result = match engine.run(prog, buf, opts) {
        Ok(r0) => Ok(r0),
        Err(RunError::Fault(f)) => Err(Ended::Fault(f)),
        Err(e) => Err(Ended::Error(e.to_string())),
    };
    Observed {
        result,
        mem: buf.to_vec(),
        maps: Vec::new(),
    }
}

/// Runs `prog` on the interpreter then on the JIT, each over `mem` in the same buffer.
pub fn run_both(prog: &LoadedProgram, mem: &[u8], opts: &RunOptions) -> (Observed, Observed) {
    run_both_with(prog, mem, opts, &|| {}, &Vec::new)
}

/// [`run_both`], calling `reset` before each run (to put the program's maps back) and
/// keeping what `snapshot` returns after it in [`Observed::maps`].
pub fn run_both_with(
    prog: &LoadedProgram,
    mem: &[u8],
    opts: &RunOptions,
    reset: &dyn Fn(),
    snapshot: &dyn Fn() -> Vec<u8>,
) -> (Observed, Observed) {
    let mut buf = mem.to_vec();
    reset();
    let mut interp = observe(&Interpreter::new(), prog, &mut buf, opts);
    interp.maps = snapshot();
    buf.copy_from_slice(mem);
    reset();
    let mut jit = observe(&Jit::new(), prog, &mut buf, opts);
    jit.maps = snapshot();
    (interp, jit)
}

/// The register a memory instruction addresses through, if it is one.
fn base_register(insn: RawInsn) -> Option<u8> {
    match insn.opcode & 0x07 {
        // LDX: [src + off]
        0x01 => Some(insn.src),
        // Load-acquire: `dst = [src + off]`.
        0x03 if insn.opcode & 0xe0 == 0xc0 && insn.imm == 0x100 => Some(insn.src),
        // ST, STX (and atomics): [dst + off]
        0x02 | 0x03 => Some(insn.dst),
        _ => None,
    }
}

/// A fault with the address left out where it is an address in the engine's own stack.
fn comparable(f: &Fault) -> Fault {
    let mut f = *f;
    if base_register(f.insn) == Some(10) {
        match &mut f.kind {
            FaultKind::OutOfBounds { addr, .. } | FaultKind::MisalignedAtomic { addr, .. } => {
                *addr = 0;
            }
            _ => {}
        }
    }
    f
}

/// Whether a fault is one whose pc (and the work done before it) may differ between the
/// engines: the JIT notices an exhausted budget or a cancellation only at back-edges and
/// calls.
pub fn is_budget_or_cancel(f: &Fault) -> bool {
    matches!(
        f.kind,
        FaultKind::BudgetExhausted { .. } | FaultKind::Cancelled
    )
}

/// `None` if the JIT did what the interpreter did; otherwise what differs.
///
/// Budget and cancellation faults are compared by kind only (not pc, not memory): the
/// JIT checks them at back-edges and calls only. Any other outcome is compared exactly:
/// `r0` or the fault (pc, instruction, kind with its address, see [`comparable`]), and
/// the memory.
pub fn difference(interp: &Observed, jit: &Observed) -> Option<String> {
    match (&interp.result, &jit.result) {
        (Err(Ended::Fault(a)), Err(Ended::Fault(b))) if is_budget_or_cancel(a) => {
            if a.kind == b.kind {
                None
            } else {
                Some(format!("interpreter: {interp}\njit:         {jit}"))
            }
        }
        (Err(Ended::Fault(a)), Err(Ended::Fault(b))) => {
            if comparable(a) == comparable(b) && interp.mem == jit.mem && interp.maps == jit.maps {
                None
            } else {
                Some(format!("interpreter: {interp}\njit:         {jit}"))
            }
        }
        (a, b) => {
            if a == b && interp.mem == jit.mem && interp.maps == jit.maps {
                None
            } else {
                Some(format!("interpreter: {interp}\njit:         {jit}"))
            }
        }
    }
}

/// Checks that the interpreter, the JIT and the blinded JIT all return `want`.
pub fn all_return(prog: &LoadedProgram, want: u64) {
    let opts = RunOptions::new();
    assert_eq!(outcome(&Interpreter::new(), prog, &opts), Ok(want));
    assert_eq!(outcome(&Jit::new(), prog, &opts), Ok(want));
    let blinded = Jit::new().with_constant_blinding();
    assert_eq!(outcome(&blinded, prog, &opts), Ok(want));
}

/// Runs `prog` with every budget in `budgets` on the JIT (plain and blinded, which must
/// agree) and the interpreter: both return `want` or both fault on the budget, the JIT at
/// `back_edge`, except that the JIT may finish where the interpreter faults (its last
/// check is the last back-edge). Returns how many budgets the JIT and the interpreter
/// faulted for.
pub fn budget_faults(
    prog: &LoadedProgram,
    want: u64,
    back_edge: usize,
    budgets: std::ops::Range<u64>,
) -> (usize, usize) {
    let (mut jit_faults, mut faults) = (0, 0);
    for budget in budgets {
        let opts = RunOptions::new().with_budget(budget);
        let got = outcome(&Jit::new(), prog, &opts);
        let blinded = Jit::new().with_constant_blinding();
        assert_eq!(got, outcome(&blinded, prog, &opts), "budget {budget}");
        let interp = outcome(&Interpreter::new(), prog, &opts);
        match (&got, &interp) {
            (Ok(a), Ok(b)) => assert_eq!((*a, *b), (want, want)),
            (Err((FaultKind::BudgetExhausted { .. }, pc)), Err((b, _))) => {
                assert!(matches!(b, FaultKind::BudgetExhausted { .. }));
                assert_eq!(*pc, back_edge, "budget {budget}");
                jit_faults += 1;
            }
            // Past the budget by the `exit` after the last back-edge.
            (Ok(_), Err(_)) => {}
            _ => panic!("budget {budget}: jit {got:?}, interpreter {interp:?}"),
        }
        faults += usize::from(interp.is_err());
    }
    (jit_faults, faults)
}
