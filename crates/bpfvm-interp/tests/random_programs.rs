//! Random valid bytecode on random memory: every run returns a value or a typed fault.
//! Never a panic, never a hang (the budget ends loops), never a wild access.

use bpfvm_interp::Interpreter;
use bpfvm_runtime::{CancelToken, FaultKind, RunOptions};
use bpfvm_testkit::{raw_build, raw_slot, repair_and_load};
use proptest::prelude::*;

const BUDGET: u64 = 5_000;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_programs_end_in_a_value_or_a_fault(
        parts in prop::collection::vec(raw_slot(), 1..24),
        mem in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let prog = repair_and_load(raw_build(&parts));
        prop_assert!(prog.is_some(), "repair failed");
        let Some((_, prog)) = prog else { return Ok(()) };
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
