//! Compare trees dispatched through a jump table (`switches.rs`): every value, in the
//! table or past it, must reach the leaf the tree reaches, and the budget must run out
//! where it does through the tree.

use bpfvm_interp::Interpreter;
use bpfvm_jit::Jit;
use bpfvm_runtime::{LoadedProgram, RunOptions};

mod common;
use common::{all_return, budget_faults, load_asm as load, outcome, run_both};

/// An eight-way switch on `r1`, a tree of seven compares as clang lays it out, whose
/// case `k` (7 for every value above 6) ends with `r0 = 10 + k`, then `tail`.
fn switch8(tail: &str) -> String {
    switch8_on("r1", tail)
}

/// [`switch8`] on register `r`.
fn switch8_on(r: &str, tail: &str) -> String {
    let s = "if R > 3 goto a4\nif R > 1 goto a2\nif R > 0 goto c1\nr0 = 10\nTAIL\n\
             c1:\nr0 = 11\nTAIL\na2:\nif R > 2 goto c3\nr0 = 12\nTAIL\nc3:\nr0 = 13\nTAIL\n\
             a4:\nif R > 5 goto a6\nif R > 4 goto c5\nr0 = 14\nTAIL\nc5:\nr0 = 15\nTAIL\n\
             a6:\nif R > 6 goto c7\nr0 = 16\nTAIL\nc7:\nr0 = 17\nTAIL\n";
    s.replace('R', r).replace("TAIL", tail)
}

/// Whether the JIT's code for the function at pc 0 of `prog` jumps through a table.
fn has_table(jit: &Jit, prog: &LoadedProgram) -> bool {
    let dumps = jit.dump(prog).expect("compiles");
    let f = dumps.iter().find(|d| d.entry == 0).expect("the function");
    f.ir.contains("br_table")
}

#[test]
fn every_value_reaches_its_case_through_the_table() {
    // Values in the table, the first past it, and values whose low 32 bits are in the
    // table: they go to the default, case 7, as through the tree.
    for v in (0..=8).chain([0xffff_ffff, 0x1_0000_0001, u64::MAX]) {
        let prog = load(&format!("r1 = {v:#x} ll\n{}", switch8("exit")));
        assert!(has_table(&Jit::new(), &prog), "{v:#x}");
        // Constant blinding keeps the tree: the table's length is the program's.
        assert!(!has_table(&Jit::new().with_constant_blinding(), &prog));
        all_return(&prog, 10 + v.min(7));
    }
}

#[test]
fn the_budget_runs_out_at_the_back_edge_after_every_case() {
    // Ten rounds over the cases of r7 & 7 (r7 = 10, 9, …, 1): the leaves charge the
    // compares they skipped, so the JIT's fuel at the back-edge (pc 39) is the tree's.
    let body = switch8("goto next");
    let src = format!(
        "r6 = 0\nr7 = 10\nl:\nr1 = r7\nr1 &= 7\n{body}next:\nr6 += r0\nr7 += -1\n\
         if r7 != 0 goto l\nr0 = r6\nexit\n"
    );
    let prog = load(&src);
    assert!(has_table(&Jit::new(), &prog));
    // Σ over r7 = 10..1 of 10 + (r7 & 7).
    let want: u64 = (1..=10u64).map(|r7| 10 + (r7 & 7)).sum();
    all_return(&prog, want);
    // The interpreter's count of a whole run; the JIT's last check is the back-edge of
    // the tenth round, two instructions before the end (`r0 = r6`, `exit`).
    let (result, total) = Interpreter::new().run_with_count(&prog, &mut [], &RunOptions::new());
    assert_eq!(result, Ok(want));
    let back_edge = src
        .lines()
        .filter(|l| !l.ends_with(':'))
        .position(|l| l == "if r7 != 0 goto l")
        .expect("the back-edge");
    let total = usize::try_from(total).expect("small");
    assert_eq!(
        budget_faults(&prog, want, back_edge, 1..total as u64 + 5),
        (total - 3, total - 1)
    );
    // And through the tree (blinded), the same.
    let blinded = Jit::new().with_constant_blinding();
    for budget in [1, total as u64 / 2, total as u64 - 3, total as u64 - 2] {
        let opts = RunOptions::new().with_budget(budget);
        assert_eq!(
            outcome(&Jit::new(), &prog, &opts),
            outcome(&blinded, &prog, &opts),
            "budget {budget}"
        );
    }
}

#[test]
fn a_tree_in_a_groups_fast_version_stays_a_tree() {
    // The loads at pcs 0 and 2 through r1 are one group; its fast version copies the
    // block from pc 2, which ends with the tree's root (pc 4): that tree keeps its
    // compares, and the result is the interpreter's for every case and for a short
    // memory (a fault at pc 2).
    let prog = load(&format!(
        "r2 = *(u8 *)(r1 + 0)\nif r2 == 99 goto odd\nr3 = *(u8 *)(r1 + 1)\nr4 = r2\n{}\
         odd:\nr0 = 99\nexit\n",
        switch8_on("r4", "r0 += r3\nexit")
    ));
    assert!(!has_table(&Jit::new(), &prog));
    let mems: [&[u8]; 6] = [&[0, 5], &[3, 5], &[7, 5], &[200, 5], &[99, 5], &[1]];
    for mem in mems {
        let (interp, jit) = run_both(&prog, mem, &RunOptions::new());
        assert_eq!(interp, jit, "memory {mem:?}");
    }
}

/// A random compare tree on `r1` over `[lo, hi]` (`hi` = `None`: every larger value),
/// its leaves numbered in order from `next`: the source, and each leaf's range.
fn random_tree(
    rng: &mut u64,
    lo: u64,
    hi: Option<u64>,
    depth: u32,
    next: &mut u64,
    leaves: &mut Vec<(u64, Option<u64>, u64)>,
) -> String {
    let mut roll = |n: u64| {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        *rng % n
    };
    let room = hi.map_or(40, |hi| hi - lo);
    if depth == 0 || room == 0 || roll(4) == 0 {
        let id = *next;
        *next += 1;
        leaves.push((lo, hi, id));
        return format!("r0 = {id}\nexit\n");
    }
    let k = lo + roll(room.min(40));
    let label = format!("n{lo}_{k}_{depth}");
    let left = random_tree(rng, lo, Some(k), depth - 1, next, leaves);
    let right = random_tree(rng, k + 1, hi, depth - 1, next, leaves);
    format!("if r1 > {k} goto {label}\n{left}{label}:\n{right}")
}

#[test]
fn random_trees_agree_with_the_interpreter_on_every_value() {
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut tables = 0;
    for _ in 0..200 {
        let mut leaves = Vec::new();
        let tree = random_tree(&mut rng, 0, None, 5, &mut 0, &mut leaves);
        // The value comes from memory, so one compile serves every value.
        let prog = load(&format!("r1 = *(u64 *)(r1 + 0)\n{tree}"));
        tables += usize::from(has_table(&Jit::new(), &prog));
        let max = leaves.iter().filter_map(|l| l.1).max().unwrap_or(0);
        for v in (0..=max + 1).chain([1 << 32, (1 << 32) + 1, u64::MAX]) {
            let want = leaves
                .iter()
                .find(|&&(lo, hi, _)| lo <= v && hi.is_none_or(|hi| v <= hi))
                .expect("the leaves cover every value")
                .2;
            let (interp, jit) = run_both(&prog, &v.to_le_bytes(), &RunOptions::new());
            assert_eq!(interp.result, Ok(want), "{tree}value {v:#x}");
            assert_eq!(jit.result, Ok(want), "{tree}value {v:#x}");
        }
    }
    // Trees of four leaves or more get a table; most of these do.
    assert!(tables > 100, "{tables} of 200 trees got a table");
}
