//! Tail duplication (`tails.rs`): a small join block that jumps reach gets a copy per
//! `goto` and per conditional jump. The copies must compute what the interpreter
//! computes and notice an exhausted budget at the same back-edge, with the same pc, as
//! the original block.

use bpfvm_jit::Jit;
use bpfvm_runtime::LoadedProgram;

mod common;
use common::{all_return, budget_faults, load_asm as load};

/// Six rounds of a four-way switch on `r7 & 3`. The join (pc 14, `r7 += -1; if r7 != 0
/// goto l`) is reached by three `goto`s (pcs 7, 9, 12) and a fall-through (pc 13).
const SWITCH: &str = "r0 = 0
    r7 = 6
    l: r4 = r7
    r4 &= 3
    if r4 > 1 goto hi
    if r4 > 0 goto one
    r0 += 1
    goto join
    one: r0 ^= 2
    goto join
    hi: if r4 > 2 goto three
    r0 *= 3
    goto join
    three: r0 += 5
    join: r7 += -1
    if r7 != 0 goto l
    exit";

/// The pc of the join's back-edge.
const BACK_EDGE: usize = 15;

/// How many conditional branches the JIT's code for the function at pc 0 makes.
fn brifs(prog: &LoadedProgram) -> usize {
    let dumps = Jit::new().dump(prog).expect("compiles");
    let f = dumps.iter().find(|d| d.entry == 0).expect("the function");
    f.ir.lines().filter(|l| l.contains(" brif ")).count()
}

#[test]
fn each_goto_into_the_join_gets_a_copy_that_computes_the_same() {
    let prog = load(SWITCH);
    // The join's fuel test and back-edge in the original (which the fall-through
    // reaches) and in each goto's copy: 4 * 2; without copies, 2. (The tree's three
    // compares are one jump table, `switches.rs`, which has no `brif`.)
    assert_eq!(brifs(&prog), 8);
    // r4 = 2, 1, 0, 3, 2, 1: r0 = 0 * 3 = 0, ^ 2 = 2, + 1 = 3, + 5 = 8, * 3 = 24, ^ 2 = 26.
    all_return(&prog, 26);
}

#[test]
fn the_budget_runs_out_at_the_back_edge_in_every_copy() {
    // Instructions: 2 before the loop; per round 3 at its head, then 5 (cases 0, 1 and
    // 2: a compare or two, the case, its goto, the join) or 4 (case 3), the cases
    // running 2, 1, 0, 3, 2, 1: the back-edges come after 10, 18, 26, 33, 41 and 49
    // instructions, and `exit` is the 50th. The JIT notices an exhausted budget at a
    // back-edge (`docs/jit.md`, step 4): it faults at pc 15 for budgets below 49, each
    // copy's test and the original's in turn; the interpreter for budgets below 50.
    let prog = load(SWITCH);
    assert_eq!(budget_faults(&prog, 26, BACK_EDGE, 1..60), (48, 49));
}

/// A parser's loop: eight rounds of checks on `r7 & 3` that leave early for `next` (pc
/// 8, `r7 += -1; if r7 != 0 goto l`) from pcs 4 and 6, or fall into it from pc 7.
const EARLY_EXITS: &str = "r0 = 0
    r7 = 8
    l: r4 = r7
    r4 &= 3
    if r4 == 0 goto next
    r0 += 1
    if r4 == 1 goto next
    r0 += 10
    next: r7 += -1
    if r7 != 0 goto l
    exit";

#[test]
fn each_early_exit_gets_a_copy_that_computes_the_same() {
    let prog = load(EARLY_EXITS);
    // The two checks, then the join's fuel test and back-edge in the original (the
    // fall-through's) and in each check's copy: 2 + 3 * 2. Without copies: 2 + 2.
    assert_eq!(brifs(&prog), 8);
    // r4 = 0, 3, 2, 1, 0, 3, 2, 1: r0 gains 0, 11, 11, 1 twice over.
    all_return(&prog, 46);
}

#[test]
fn the_budget_runs_out_at_the_back_edge_after_every_exit() {
    // Instructions: 2 before the loop; per round 3 at its head (pcs 2–4), then the
    // join's 2 after an exit at pc 4 (r4 = 0: 5 in all), pcs 5 and 6 and the join after
    // an exit at pc 6 (r4 = 1: 7), or pcs 5–7 and the join (8). With r4 = 0, 3, 2, 1
    // twice, the back-edges come after 7, 15, 23, 30, 35, 43, 51 and 58 instructions,
    // and `exit` is the 59th: the JIT faults at pc 9 for budgets below 58, the
    // interpreter for budgets below 59.
    let prog = load(EARLY_EXITS);
    assert_eq!(budget_faults(&prog, 46, 9, 1..70), (57, 58));
}
