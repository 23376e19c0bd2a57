//! Every way a run can fail, each as a typed fault at the right pc.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bpfvm_interp::Interpreter;
use bpfvm_isa::{AluOp, AtomicOp, Insn, Program, Size};
use bpfvm_runtime::{
    CancelToken, Fault, FaultKind, Helper, HelperRegistry, LoadedProgram, ProgramType, RunOptions,
};
use common::*;

fn kind(insns: &[Insn], mem: &mut [u8]) -> (usize, FaultKind) {
    let f = run_mem(insns, mem).expect_err("program must fault");
    (f.pc, f.kind)
}

#[test]
fn out_of_bounds_names_address_size_and_direction() {
    let mut mem = [0u8; 4];
    let addr = mem.as_ptr() as u64;
    assert_eq!(
        kind(&[mov(R0, 0), ldx(Size::W, R0, R1, 1), EXIT], &mut mem),
        (
            1,
            FaultKind::OutOfBounds {
                addr: addr + 1,
                size: 4,
                write: false
            }
        )
    );
    assert_eq!(
        kind(&[stx(Size::DW, R1, -8, R0), EXIT], &mut mem),
        (
            0,
            FaultKind::OutOfBounds {
                addr: addr - 8,
                size: 8,
                write: true
            }
        )
    );
    // Without memory r1 is 0: a null dereference.
    assert_eq!(
        kind(&[ldx(Size::B, R0, R1, 0), EXIT], &mut []),
        (
            0,
            FaultKind::OutOfBounds {
                addr: 0,
                size: 1,
                write: false
            }
        )
    );
    // Below the frame and at the frame pointer itself.
    for prog in [
        [st(Size::B, R10, -513, 0), EXIT],
        [ldx(Size::B, R0, R10, 0), EXIT],
    ] {
        let (pc, k) = kind(&prog, &mut []);
        assert_eq!(pc, 0);
        assert!(matches!(k, FaultKind::OutOfBounds { size: 1, .. }), "{k:?}");
    }
    // An atomic checks bounds as a write.
    let (_, k) = kind(
        &[
            atomic(Size::W, AtomicOp::Add { fetch: false }, R1, 4, R0),
            EXIT,
        ],
        &mut mem,
    );
    assert_eq!(
        k,
        FaultKind::OutOfBounds {
            addr: addr + 4,
            size: 4,
            write: true
        }
    );
}

#[test]
fn misaligned_atomics_fault() {
    let (pc, k) = kind(
        &[
            mov(R1, 1),
            atomic(Size::DW, AtomicOp::Add { fetch: true }, R10, -12, R1),
            EXIT,
        ],
        &mut [],
    );
    assert_eq!(pc, 1);
    assert!(
        matches!(k, FaultKind::MisalignedAtomic { addr, size: 8 } if addr % 8 == 4),
        "{k:?}"
    );
    let acquire = Insn::LoadAcquire {
        size: Size::W,
        dst: R0,
        src: R10,
        off: -6,
    };
    let (_, k) = kind(&[acquire, EXIT], &mut []);
    assert!(
        matches!(k, FaultKind::MisalignedAtomic { size: 4, .. }),
        "{k:?}"
    );
}

#[test]
fn unknown_helpers_fault_at_the_call() {
    assert_eq!(
        kind(&[mov(R0, 0), call(6), EXIT], &mut []),
        (1, FaultKind::UnknownHelper { id: 6 })
    );
    assert_eq!(
        kind(&[call(-5), EXIT], &mut []),
        (0, FaultKind::UnknownHelper { id: -5 })
    );
    assert_eq!(
        kind(&[mov(R3, -1), Insn::Callx { reg: R3 }, EXIT], &mut []),
        (1, FaultKind::UnknownHelper { id: -1 })
    );
}

#[test]
fn helpers_fail_with_their_own_fault() {
    let mut helpers = HelperRegistry::new();
    helpers
        .register(Helper::native(1, "refuses", |_, _| {
            Err(FaultKind::HelperFailed {
                id: 1,
                reason: "bad argument",
            })
        }))
        .expect("id in range");
    helpers
        .register(Helper::native(2, "reads_r1", |ctx, args| {
            ctx.regions.load::<u64>(args[0])
        }))
        .expect("id in range");
    let program = Program::from_insns(&[call(2), call(1), EXIT]).expect("valid");
    let prog = LoadedProgram::with_helpers(program, ProgramType::Conformance, Arc::new(helpers))
        .expect("loads");
    let interp = Interpreter::new();
    let mut mem = 0x1122u64.to_ne_bytes();
    let f = interp
        .run(&prog, &mut mem, &RunOptions::new())
        .expect_err("helper 1 refuses");
    assert_eq!(
        (f.pc, f.kind),
        (
            1,
            FaultKind::HelperFailed {
                id: 1,
                reason: "bad argument"
            }
        )
    );
    // Helper 2 reads 8 bytes at r1: out of bounds with 4 bytes of memory.
    let f = interp
        .run(&prog, &mut [0; 4], &RunOptions::new())
        .expect_err("helper 2 reads past the end");
    assert!(
        matches!(
            f,
            Fault {
                pc: 0,
                kind: FaultKind::OutOfBounds {
                    size: 8,
                    write: false,
                    ..
                },
                ..
            }
        ),
        "{f:?}"
    );
}

#[test]
fn budget_stops_an_infinite_loop() {
    let prog = load(&[mov(R0, 0), alu64(AluOp::Add, R0, 1), ja(-2), EXIT]);
    let interp = Interpreter::new();
    let (r, n) = interp.run_with_count(&prog, &mut [], &RunOptions::new().with_budget(1000));
    let f = r.expect_err("budget runs out");
    assert_eq!(f.kind, FaultKind::BudgetExhausted { budget: 1000 });
    assert_eq!(n, 1000);
    // pc 0, then (1, 2) repeated: instruction k >= 2 is at pc 1 when k is even, so the
    // 1001st, which does not run, is the `ja` at pc 2.
    assert_eq!(f.pc, 2);
    assert_eq!(
        interp
            .run(&prog, &mut [], &RunOptions::new().with_budget(0))
            .map_err(|f| (f.pc, f.kind)),
        Err((0, FaultKind::BudgetExhausted { budget: 0 }))
    );
}

#[test]
fn cancellation_stops_an_infinite_loop() {
    let prog = load(&[mov(R0, 0), alu64(AluOp::Add, R0, 1), ja(-2), EXIT]);
    let token = CancelToken::new();
    let canceller = bpfvm_testkit::cancel_after(&token, Duration::from_millis(20));
    let f = Interpreter::new()
        .run(
            &prog,
            &mut [],
            &RunOptions::new().with_cancel(token.clone()),
        )
        .expect_err("cancelled");
    canceller.join().expect("canceller thread");
    assert_eq!(f.kind, FaultKind::Cancelled);
    // Polled at the backward jump.
    assert_eq!(f.pc, 2);
    assert!(token.is_cancelled());
    // A token cancelled before the run stops it before the first instruction.
    let f = Interpreter::new()
        .run(
            &load(&[mov(R0, 1), EXIT]),
            &mut [],
            &RunOptions::new().with_cancel(token),
        )
        .expect_err("cancelled");
    assert_eq!((f.pc, f.kind), (0, FaultKind::Cancelled));
}

#[test]
fn a_ninth_frame_faults() {
    // pc 0 calls itself forever: frames 0..=7 exist, the call from frame 7 faults.
    let prog = load(&[call_local(-1), EXIT]);
    let mut deepest = 0;
    let f = Interpreter::new()
        .run_traced(&prog, &mut [], &RunOptions::new(), &mut |s| {
            deepest = deepest.max(s.frame)
        })
        .expect_err("too deep");
    assert_eq!((f.pc, f.kind), (0, FaultKind::CallDepthExceeded));
    assert_eq!(deepest, 6); // the call at depth 6 opened frame 7, whose call faulted
}

#[test]
fn fault_display_names_the_instruction() {
    let f = run(&[mov(R0, 0), call(6), EXIT]).expect_err("faults");
    assert_eq!(
        f.to_string(),
        "pc 1 (85 00 00 00 06 00 00 00): unknown helper id 6 for this program type"
    );
}
