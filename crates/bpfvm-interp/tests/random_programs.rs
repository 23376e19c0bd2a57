//! Random valid bytecode on random memory: every run returns a value or a typed fault.
//! Never a panic, never a hang (the budget ends loops), never a wild access.

use bpfvm_interp::Interpreter;
use bpfvm_isa::spec::OPCODES;
use bpfvm_isa::{Program, ProgramErrorKind, RawInsn};
use bpfvm_runtime::{
    CancelToken, FaultKind, LoadErrorKind, LoadedProgram, ProgramType, RunOptions,
};
use proptest::prelude::*;

const BUDGET: u64 = 5_000;

/// Immediates that hit the corners: zero, ±1, widths, extremes, and small jump targets.
fn imm() -> impl Strategy<Value = i32> {
    prop_oneof![
        -4i32..8,
        Just(16),
        Just(32),
        Just(64),
        Just(i32::MIN),
        Just(i32::MAX),
        Just(5),
        any::<i32>(),
    ]
}

/// One instruction drawn from the opcode table, with operands.
fn slot() -> impl Strategy<Value = (usize, u8, u8, i16, i32, i32)> {
    (
        0..OPCODES.len(),
        0u8..11,
        0u8..11,
        prop_oneof![-4i16..6, any::<i16>()],
        imm(),
        imm(),
    )
}

fn build(parts: &[(usize, u8, u8, i16, i32, i32)]) -> Vec<RawInsn> {
    let mut slots = Vec::new();
    for &(row, dst, src, off, imm, next_imm) in parts {
        let Some(info) = OPCODES.get(row) else {
            continue;
        };
        slots.push(info.example(dst, src, off, imm));
        if info.opcode == 0x18 {
            slots.push(RawInsn::new(0, 0, 0, 0, next_imm));
        }
    }
    slots.push(RawInsn::new(0x95, 0, 0, 0, 0));
    slots
}

/// Loads the slots, fixing whatever instruction the validator or the loader names until
/// the program loads: a write to `r10` gets another register, a jump or call that misses
/// gets offset 0, map loads and kfunc calls become plain ones.
fn repair_and_load(mut slots: Vec<RawInsn>) -> Option<LoadedProgram> {
    for _ in 0..200 {
        let program = match Program::from_slots(slots.clone()) {
            Ok(p) => p,
            Err(e) => {
                let raw = slots.get_mut(e.pc)?;
                match e.kind {
                    ProgramErrorKind::FramePointerWrite => {
                        if raw.dst == 10 {
                            raw.dst = 0;
                        }
                        if raw.src == 10 {
                            raw.src = 0;
                        }
                    }
                    ProgramErrorKind::JumpOutOfRange { .. }
                    | ProgramErrorKind::JumpIntoLddw { .. } => {
                        raw.off = 0;
                        raw.imm = 0;
                    }
                    _ => return None,
                }
                continue;
            }
        };
        match LoadedProgram::new(program, ProgramType::Conformance) {
            Ok(p) => return Some(p),
            Err(e) => {
                let raw = slots.get_mut(e.pc)?;
                match e.kind {
                    // Code address of the instruction after the lddw.
                    LoadErrorKind::BadCodeAddress { .. } => raw.imm = 1,
                    _ => raw.src = 0,
                }
            }
        }
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_programs_end_in_a_value_or_a_fault(
        parts in prop::collection::vec(slot(), 1..24),
        mem in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let prog = repair_and_load(build(&parts));
        prop_assert!(prog.is_some(), "repair failed");
        let Some(prog) = prog else { return Ok(()) };
        let len = prog.program().len();
        let interp = Interpreter::new();
        let opts = RunOptions::new().with_budget(BUDGET).with_cancel(CancelToken::new());

        let mut m = mem.clone();
        let (result, executed) = interp.run_with_count(&prog, &mut m, &opts);
        prop_assert!(executed <= BUDGET);
        prop_assert_eq!(m.len(), mem.len());
        if let Err(f) = result {
            prop_assert!(f.pc < len, "fault pc {} outside a program of {}", f.pc, len);
            prop_assert_eq!(Some(f.insn), prog.program().slots().get(f.pc).copied());
            prop_assert!(
                !matches!(f.kind, FaultKind::PcOutOfRange | FaultKind::RegionSetup(_)),
                "engine invariant broken: {}", f
            );
            if let FaultKind::BudgetExhausted { budget } = f.kind {
                prop_assert_eq!((budget, executed), (BUDGET, BUDGET));
            }
        }

        // The traced run sees one step per executed instruction but the faulting one.
        let mut m = mem.clone();
        let mut steps = 0u64;
        let traced = interp.run_traced(&prog, &mut m, &opts, &mut |s| {
            steps += 1;
            assert!(s.changed.len() <= 11);
        });
        prop_assert!(steps <= BUDGET);
        if let Err(f) = traced {
            prop_assert!(f.pc < len);
        }
    }
}
