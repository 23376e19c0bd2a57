//! Counted loops, which checked mode strip-mines (`src/counted.rs`): the same results as
//! the interpreter, and budgets, refills and cancellation noticed exactly where the loop
//! with a fuel test on every back-edge noticed them.
//!
//! The JIT notices an exhausted budget at back-edges and calls (`docs/jit.md`, step 4):
//! in the programs here, a block of `prefix` instructions and then a loop of `len`
//! instructions run `t` times before a one-instruction `exit`, so the JIT faults, at the
//! loop's jump, exactly when `prefix + t·len` exceeds the budget, and the interpreter when
//! `prefix + t·len + 1` does.

use std::time::Duration;

use bpfvm_interp::Interpreter;
use bpfvm_jit::Jit;
use bpfvm_runtime::{CancelToken, FaultKind, LoadedProgram, RunOptions};
use proptest::prelude::*;

mod common;
use common::{load_asm as load, outcome};

/// The JIT's outcome (plain and blinded, which must agree) for a program whose loop,
/// jumping back at `jump`, runs `total` instructions up to its last back-edge, checked
/// against the rule in the module doc and against the interpreter.
fn checked(
    prog: &LoadedProgram,
    opts: &RunOptions,
    total: u64,
    jump: usize,
) -> Result<u64, (FaultKind, usize)> {
    let got = outcome(&Jit::new(), prog, opts);
    let blinded = outcome(&Jit::new().with_constant_blinding(), prog, opts);
    assert_eq!(got, blinded, "blinded jit");
    let interp = outcome(&Interpreter::new(), prog, opts);
    match opts.budget {
        Some(budget) if total > budget => {
            assert_eq!(got, Err((FaultKind::BudgetExhausted { budget }, jump)));
            assert!(interp.is_err(), "interpreter {interp:?}");
        }
        Some(budget) if total == budget => {
            // The exit is one past the budget: only the interpreter notices.
            assert!(
                got.is_ok() && interp.is_err(),
                "jit {got:?}, interpreter {interp:?}"
            );
        }
        _ => assert_eq!(got, interp),
    }
    got
}

/// `r0 = n + (n - 1) + … + 1`, counting `r3` down to 0: prefix 2, 3 instructions per
/// trip, the jump at pc 4.
fn sum_loop(n: i32) -> LoadedProgram {
    load(&format!(
        "r0 = 0
         r3 = {n}
         l: r0 += r3
         r3 += -1
         if r3 != 0 goto l
         exit"
    ))
}

#[test]
fn the_sum_loop_adds_up_and_stops_where_its_budget_runs_out() {
    // Small: every budget around the loop's 2 + 3·10 = 32 instructions.
    let prog = sum_loop(10);
    for budget in 0..40 {
        let got = checked(&prog, &RunOptions::new().with_budget(budget), 32, 4);
        assert_eq!(got.is_ok(), budget >= 32, "budget {budget}");
    }
    assert_eq!(checked(&prog, &RunOptions::new(), 32, 4), Ok(55));

    // Large: 300,002 instructions, over four refills of the JIT's 65,536-instruction fuel
    // chunk; budgets at chunk boundaries and around the end, each residue modulo 3.
    let n = 100_000u64;
    let prog = sum_loop(n as i32);
    let total = 2 + 3 * n;
    assert_eq!(
        checked(&prog, &RunOptions::new(), total, 4),
        Ok(n * (n + 1) / 2)
    );
    let chunk = 65_536;
    for budget in [
        1,
        chunk - 1,
        chunk,
        chunk + 1,
        2 * chunk + 2,
        4 * chunk,
        total - 3,
        total - 2,
        total - 1,
        total,
        total + 1,
    ] {
        let got = checked(&prog, &RunOptions::new().with_budget(budget), total, 4);
        assert_eq!(got.ok(), (budget >= total).then_some(n * (n + 1) / 2));
    }
}

#[test]
fn counted_loops_are_strip_mined_and_others_are_not() {
    // The strip's head divides the fuel by the loop's length (Cranelift IR `udiv`,
    // before optimization); nothing else in these programs divides.
    let strips = |prog: &LoadedProgram| {
        let dumps = Jit::new().dump(prog).expect("compiles");
        dumps
            .iter()
            .map(|d| d.ir.matches("udiv").count())
            .sum::<usize>()
    };
    assert_eq!(strips(&sum_loop(10)), 1);
    // clang's `int` counter (-mcpu=v3): compared at 32 bits, here wrapping from
    // 0xffff_fff0 to 5 in 21 trips of 3 (prefix 2, the jump at pc 4).
    for step in ["w3 += 1", "r3 += 1"] {
        let narrow = load(&format!(
            "w0 = 0\nr3 = -16\nl: w0 += 2\n{step}\nif w3 != 5 goto l\nexit"
        ));
        assert_eq!(strips(&narrow), 1, "{step}");
        for budget in [None, Some(0), Some(64), Some(65), Some(66)] {
            let opts = match budget {
                Some(b) => RunOptions::new().with_budget(b),
                None => RunOptions::new(),
            };
            let got = checked(&narrow, &opts, 2 + 21 * 3, 4);
            assert_eq!(
                got.ok(),
                budget.is_none_or(|b| b >= 65).then_some(42),
                "{step}"
            );
        }
    }
    // Stepped by 2, or with a memory access in the body: one fuel test per trip.
    let by_two = load("r0 = 0\nr3 = 10\nl: r0 += r3\nr3 += -2\nif r3 != 0 goto l\nexit");
    assert_eq!(strips(&by_two), 0);
    let reads = load(
        "r0 = 0\nr3 = 10\nl: r4 = *(u8 *)(r1 + 0)\nr0 += r4\nr3 += -1\nif r3 != 0 goto l\nexit",
    );
    assert_eq!(strips(&reads), 0);
}

#[test]
fn counting_up_to_a_register_with_constants_in_the_body() {
    // r1 from 3 up to r2 = 1003 by `r1 -= -1`: 1,000 trips of 4 (an `lddw` is one
    // instruction), prefix 4. r0 mixes a 64-bit constant in on every trip.
    let prog = load(
        "r0 = 1
         r1 = 3
         r2 = 1003
         r5 = 0
         l: r4 = 0x123456789abcdef ll
         r0 *= r4
         r1 -= -1
         if r1 != r2 goto l
         exit",
    );
    let mut want = 1u64;
    for _ in 0..1000 {
        want = want.wrapping_mul(0x0123_4567_89ab_cdef);
    }
    assert_eq!(checked(&prog, &RunOptions::new(), 4 + 4000, 8), Ok(want));
    for budget in [0, 3, 4, 7, 8, 9, 2000, 4003, 4004, 4005] {
        let got = checked(&prog, &RunOptions::new().with_budget(budget), 4004, 8);
        assert_eq!(got.ok(), (budget >= 4004).then_some(want));
    }
}

#[test]
fn a_loop_entered_at_its_bound_runs_until_the_budget_ends_it() {
    // r3 starts at the bound: the first trip leaves it at 2^64 - 1, so the loop would
    // run 2^64 trips. The budget ends it at the jump, after many strips.
    let prog = load(
        "r3 = 0
         l: r3 += -1
         if r3 != 0 goto l
         exit",
    );
    let budget = 1_000_000;
    let got = outcome(&Jit::new(), &prog, &RunOptions::new().with_budget(budget));
    assert_eq!(got, Err((FaultKind::BudgetExhausted { budget }, 2)));
    assert_eq!(
        outcome(
            &Interpreter::new(),
            &prog,
            &RunOptions::new().with_budget(budget)
        ),
        Err((
            FaultKind::BudgetExhausted { budget },
            1 + (budget as usize - 1) % 2
        ))
    );

    // Without a budget, another thread's cancellation ends it, at the jump too.
    let jit = Jit::new();
    jit.compile(&prog).expect("compiles");
    let token = CancelToken::new();
    let canceller = bpfvm_testkit::cancel_after(&token, Duration::from_millis(100));
    let got = outcome(&jit, &prog, &RunOptions::new().with_cancel(token));
    canceller.join().expect("canceller");
    assert_eq!(got, Err((FaultKind::Cancelled, 2)));
}

#[test]
fn an_inner_counted_loop_inside_an_outer_loop() {
    // 50 rounds of an inner loop of 7 trips: the inner loop is entered 50 times, with the
    // fuel left over from the one before. r0 = 50 · (1 + … + 7) = 1400. Prefix 2; each
    // round 2 (the block before the inner loop) + 7·3 + 2 (the outer loop's jump block).
    let prog = load(
        "r0 = 0
         r6 = 50
         outer: r3 = 7
         r4 = 0
         inner: r0 += r3
         r3 += -1
         if r3 != r4 goto inner
         r6 += -1
         if r6 != 0 goto outer
         exit",
    );
    assert_eq!(outcome(&Jit::new(), &prog, &RunOptions::new()), Ok(1400));
    for budget in 0..(2 + 50 * 25 + 2) {
        let opts = RunOptions::new().with_budget(budget);
        let got = outcome(&Jit::new(), &prog, &opts);
        assert_eq!(
            got,
            outcome(&Jit::new().with_constant_blinding(), &prog, &opts)
        );
        // The JIT notices at the first jump back (inner at pc 6, outer at pc 8) whose
        // count passes the budget: after `2 + 25·r + 2 + 3·k` at the inner one in round
        // r (k = 1..=7), `2 + 25·(r + 1)` at the outer one.
        let mut want = Ok(1400);
        'rounds: for r in 0..50u64 {
            for k in 1..=7 {
                if 2 + 25 * r + 2 + 3 * k > budget {
                    want = Err((FaultKind::BudgetExhausted { budget }, 6));
                    break 'rounds;
                }
            }
            if 2 + 25 * (r + 1) > budget {
                want = Err((FaultKind::BudgetExhausted { budget }, 8));
                break;
            }
        }
        assert_eq!(got, want, "budget {budget}");
    }
}

/// An ALU instruction of the loop bodies below on `r0`, `r1` or `r2` (never the counter
/// `r3` or the bound `r4`).
fn body_insn() -> impl Strategy<Value = String> {
    let ops = prop::sample::select(vec![
        "+=", "-=", "*=", "/=", "%=", "|=", "&=", "^=", "<<=", ">>=", "s>>=", "=",
    ]);
    let dst = prop::sample::select(vec!["r0", "r1", "r2", "w0", "w1"]);
    let src = prop_oneof![
        prop::sample::select(vec!["r0", "r1", "r2", "r3", "r4"]).prop_map(str::to_string),
        (-70i32..70).prop_map(|i| i.to_string()),
    ];
    (dst, ops, src).prop_map(|(d, op, s)| {
        // 32-bit destinations take 32-bit sources.
        let s = if d.starts_with('w') {
            s.replace('r', "w")
        } else {
            s
        };
        format!("{d} {op} {s}")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random bodies around a counter stepped up or down towards an immediate or a
    /// register bound, compared at 64 or 32 bits (then stepped by a 32- or 64-bit add),
    /// from random starts, under random budgets: the interpreter's results, and faults
    /// where the module doc's rule puts them.
    #[test]
    fn random_counted_loops_agree_with_the_interpreter(
        body in prop::collection::vec(body_insn(), 0..6),
        at in 0usize..6,
        up in any::<bool>(),
        trips in 1u64..3000,
        start in any::<i32>(),
        bound_in_reg in any::<bool>(),
        narrow in prop::option::of(any::<bool>()),
        inits in prop::array::uniform3(any::<i32>()),
        budget_share in prop::option::of(0u64..=1100),
    ) {
        // `narrow`: a 32-bit compare, with a 32-bit (true) or 64-bit step. Its bound
        // wraps at 32 bits; a 64-bit one must not wrap.
        let delta = if up { trips as i64 } else { -(trips as i64) };
        let bound = match narrow {
            Some(_) => i64::from((start as i64 + delta) as i32),
            None => start as i64 + delta,
        };
        prop_assume!(i32::try_from(bound).is_ok());
        let reg = if narrow == Some(true) { "w3" } else { "r3" };
        let step = format!("{reg} {} 1", if up { "+=" } else { "-=" });
        let mut lines = body.clone();
        lines.insert(at.min(body.len()), step);
        let (counter, bound_reg) = if narrow.is_some() { ("w3", "w4") } else { ("r3", "r4") };
        let cmp = if bound_in_reg { bound_reg.to_string() } else { bound.to_string() };
        let src = format!(
            "r0 = {}\nr1 = {}\nr2 = {}\nr3 = {start}\nr4 = {bound}\nl: {}\n\
             if {counter} != {cmp} goto l\nexit\n",
            inits[0], inits[1], inits[2], lines.join("\n"),
        );
        let prog = load(&src);
        let len = lines.len() as u64 + 1;
        let total = 5 + trips * len;
        let opts = match budget_share {
            // Budgets spread over 0 ..= 1.1 × what the loop needs.
            Some(share) => RunOptions::new().with_budget(total * share / 1000),
            None => RunOptions::new(),
        };
        let got = checked(&prog, &opts, total, 5 + lines.len());
        prop_assert_eq!(got.is_ok(), opts.budget.is_none_or(|b| b >= total));
    }
}
