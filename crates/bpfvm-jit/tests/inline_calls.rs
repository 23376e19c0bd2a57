//! Local calls the JIT makes inline (small callees with no memory access, no `r10`,
//! no loop): the interpreter's results and faults, hand-computed, on the JIT and the
//! blinded JIT. The interpreter shares `r0`–`r5` between caller and callee and puts
//! back the caller's `r6`–`r9` at `exit`; it faults at a call that would need a ninth
//! frame; the budget is noticed at calls.

use bpfvm_interp::Interpreter;
use bpfvm_jit::Jit;
use bpfvm_runtime::{FaultKind, LoadedProgram, RunOptions};

mod common;
use common::{load_asm as load, outcome};

/// `translate.rs`'s deepest nesting of inline calls.
const MAX_INLINE_DEPTH: usize = 4;

/// The outcome on the interpreter, checked to be the JIT's and the blinded JIT's.
fn agreed(prog: &LoadedProgram, opts: &RunOptions) -> Result<u64, (FaultKind, usize)> {
    let want = outcome(&Interpreter::new(), prog, opts);
    assert_eq!(outcome(&Jit::new(), prog, opts), want, "jit");
    assert_eq!(
        outcome(&Jit::new().with_constant_blinding(), prog, opts),
        want,
        "blinded jit"
    );
    want
}

/// Whether the JIT compiled a call instruction to one of the program's own functions
/// into the function at pc 0 (the IR names them `fn0`, `fn1`, …; shims are called
/// through `call_indirect`).
fn calls_a_function(prog: &LoadedProgram) -> bool {
    calls_from(prog, 0)
}

/// [`calls_a_function`] for the function at `entry`.
fn calls_from(prog: &LoadedProgram, entry: usize) -> bool {
    let dumps = Jit::new().dump(prog).expect("compiles");
    let f = dumps
        .iter()
        .find(|d| d.entry == entry)
        .expect("a function there");
    f.ir.lines().any(|l| l.contains(" = call fn"))
}

#[test]
fn the_benchmark_calls_are_made_inline() {
    // f(x) = g(3x) + 1, g(y) = (y ^ 0x5a) << 1, summed over x = 1..=10.
    let prog = load(
        "r6 = 0
         r7 = 10
         l: r1 = r7
         call f
         r6 += r0
         r7 += -1
         if r7 != 0 goto l
         r0 = r6
         exit
         f: r1 *= 3
         call g
         r0 += 1
         exit
         g: r0 = r1
         r0 ^= 0x5a
         r0 <<= 1
         exit",
    );
    assert!(!calls_a_function(&prog));
    let want: u64 = (1..=10u64).map(|x| (((3 * x) ^ 0x5a) << 1) + 1).sum();
    assert_eq!(agreed(&prog, &RunOptions::new()), Ok(want));
}

#[test]
fn an_inline_callee_shares_r0_to_r5_and_keeps_r6_to_r9() {
    // f writes r1, r2, r6 and r9; after the call r1 and r2 are f's, r6 and r9 the
    // caller's: 7 + 8 * 16 + 1 * 256 + 2 * 4096 = 8583 (f's r0 = 100 is overwritten).
    let prog = load(
        "r6 = 1
         r9 = 2
         r1 = 3
         call f
         r0 = r1
         r2 *= 16
         r0 += r2
         r6 <<= 8
         r0 += r6
         r9 <<= 12
         r0 += r9
         exit
         f: r1 = 7
         r2 = 8
         r6 = 50
         r9 = 60
         r0 = 100
         exit",
    );
    assert!(!calls_a_function(&prog));
    assert_eq!(agreed(&prog, &RunOptions::new()), Ok(8583));
}

#[test]
fn memory_and_r10_keep_a_callee_out_of_line() {
    // f reads its frame; g reads memory through r1: both are called for real.
    let frame = load(
        "call f
         exit
         f: r0 = *(u64 *)(r10 - 8)
         exit",
    );
    assert!(calls_a_function(&frame));
    // A fresh frame reads as zero.
    assert_eq!(agreed(&frame, &RunOptions::new()), Ok(0));
    let memory = load(
        "r1 = r10
         r1 += -8
         *(u64 *)(r10 - 8) = 42
         call g
         exit
         g: r0 = *(u64 *)(r1 + 0)
         exit",
    );
    assert!(calls_a_function(&memory));
    assert_eq!(agreed(&memory, &RunOptions::new()), Ok(42));
}

#[test]
fn a_ninth_frame_faults_at_its_call_inline_or_not() {
    // pc 0 runs in frame 0 and calls f1; f_i runs in frame i and calls f_(i+1) with
    // `call; r0 += 1; exit` (its call at pc 2 + 3 * (i - 1)); the last is `r0 = 0;
    // exit`. Frames are 0..=7: f7's call (pc 20) to f8 faults. The first levels are
    // made inline (up to MAX_INLINE_DEPTH), the deeper ones are real calls.
    let chain = |last: usize| {
        let mut src = String::from("call f1\nexit\n");
        for i in 1..last {
            src.push_str(&format!("f{i}: call f{}\nr0 += 1\nexit\n", i + 1));
        }
        src.push_str(&format!("f{last}: r0 = 0\nexit\n"));
        load(&src)
    };
    let prog = chain(8);
    assert!(!calls_a_function(&prog) || MAX_INLINE_DEPTH < 8);
    assert_eq!(
        agreed(&prog, &RunOptions::new()),
        Err((FaultKind::CallDepthExceeded, 20))
    );
    // f7 a leaf: eight frames suffice, and the six `r0 += 1` run.
    assert_eq!(agreed(&chain(7), &RunOptions::new()), Ok(6));
    // Short enough to be inline entirely: f1 … f3.
    let short = chain(3);
    assert!(!calls_a_function(&short));
    assert_eq!(agreed(&short, &RunOptions::new()), Ok(2));
    // Real calls (h_i reads r10) down to frame `real`, whose function calls the inline
    // chain i1 -> i2 -> i3. h_i is 4 instructions from pc 2 + 4 * (i - 1), then i1, i2
    // (`call; r0 += 1; exit`) and i3 (`r0 = 0; exit`).
    let deep = |real: usize| {
        let mut src = String::from("call h1\nexit\n");
        for i in 1..=real {
            let next = if i == real {
                "i1".to_string()
            } else {
                format!("h{}", i + 1)
            };
            src.push_str(&format!("h{i}: r1 = r10\ncall {next}\nr0 += 1\nexit\n"));
        }
        src.push_str("i1: call i2\nr0 += 1\nexit\ni2: call i3\nr0 += 1\nexit\n");
        src.push_str("i3: r0 = 0\nexit\n");
        load(&src)
    };
    // h5 in frame 5: i1 would run in 6, i2 in 7, i3 in 8: i2's call (pc 25) faults,
    // inline in h5's code (pc 18).
    let prog = deep(5);
    assert!(calls_from(&prog, 14) && !calls_from(&prog, 18));
    assert_eq!(
        agreed(&prog, &RunOptions::new()),
        Err((FaultKind::CallDepthExceeded, 25))
    );
    // h4 in frame 4: i3 runs in frame 7; r0 counts h1 … h4, i1 and i2.
    assert_eq!(agreed(&deep(4), &RunOptions::new()), Ok(6));
}

#[test]
fn the_budget_runs_out_at_the_same_call_inline_or_not() {
    // A loop of 5 rounds around a call of a 3-instruction callee, made inline or (the
    // callee reading r10) not: 1 + 5 * (3 + 3) + 1 = 32 instructions. The JIT notices an
    // exhausted budget at a call or back-edge (the interpreter at the instruction it
    // could not run; `docs/jit.md`, step 4): for every budget, the inline call must stop
    // where the real call does, and the interpreter must fault whenever the JIT does.
    let program = |callee_reads: &str| {
        load(&format!(
            "r6 = 5
             l: call f
             r6 += -1
             if r6 != 0 goto l
             exit
             f: r0 = r6
             r1 = {callee_reads}
             exit"
        ))
    };
    let inline = program("r0");
    let real = program("r10");
    assert!(!calls_a_function(&inline) && calls_a_function(&real));
    let (mut jit_faults, mut faults) = (0, 0);
    for budget in 1..45 {
        let opts = RunOptions::new().with_budget(budget);
        let got = outcome(&Jit::new(), &inline, &opts);
        assert_eq!(got, outcome(&Jit::new(), &real, &opts), "budget {budget}");
        let blinded = Jit::new().with_constant_blinding();
        assert_eq!(got, outcome(&blinded, &inline, &opts), "budget {budget}");
        let interp = outcome(&Interpreter::new(), &inline, &opts);
        match (&got, &interp) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err((a, _)), Err((b, _))) => {
                assert_eq!(a, b);
                assert!(matches!(a, FaultKind::BudgetExhausted { .. }));
                jit_faults += 1;
            }
            // Past the budget by the straight-line tail after the last call.
            (Ok(_), Err(_)) => {}
            (Err(_), Ok(_)) => panic!("budget {budget}: jit {got:?}, interpreter {interp:?}"),
        }
        faults += usize::from(interp.is_err());
    }
    // The JIT's last check is the fifth round's back-edge, after 1 + 5 * 6 = 31
    // instructions: it stops for budgets below 31; the interpreter below 32.
    assert_eq!((jit_faults, faults), (30, 31));
}

#[test]
fn a_callee_over_64_instructions_stays_a_call() {
    // f adds 1 to r0 `n` times: 64 instructions in all are inline, 65 are not.
    let prog = |n: usize| {
        let mut src = String::from("r0 = 0\ncall f\nexit\nf: ");
        src.push_str(&"r0 += 1\n".repeat(n));
        src.push_str("exit\n");
        load(&src)
    };
    let (small, large) = (prog(63), prog(64));
    assert!(!calls_a_function(&small) && calls_a_function(&large));
    assert_eq!(agreed(&small, &RunOptions::new()), Ok(63));
    assert_eq!(agreed(&large, &RunOptions::new()), Ok(64));
}
