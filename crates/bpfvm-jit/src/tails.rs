//! Tail duplication: small join blocks copied into the `goto`s that jump to them.
//!
//! A C `switch` or `if`/`else` compiles to arms that each end with `goto join`, where
//! `join` is often a few instructions ending in the loop's back-edge (`i--; if i != 0
//! goto loop`). Translated block for block, every arm then takes two jumps per trip:
//! its `goto` into the join, and the join's back-edge. This pass finds joins worth
//! copying, so that the translator can give each `goto` into one its own copy of the
//! join's code, laid out right after the `goto`'s block: the jump goes away, and the
//! copy's instruction count merges with the arm's fuel charge. This is LLVM's and GCC's
//! tail duplication, for the same reason: in the switch of `--bench engines`, copying its
//! two-instruction join into the sixteen cases took a run from 2.49–2.52 to 2.07–2.29 µs
//! (alternating timed runs) and from 23,788 to 21,866 instructions (callgrind;
//! `docs/performance.md`).
//!
//! A block starting at leader `B` is a *tail* when
//! - it is not the function's entry, and no jump back (from `B` or a later pc) reaches
//!   it: a loop's head is never copied, so every copy is straight-line code that ends
//!   where `B` ends, and copies never nest (the translator does not copy from a copy);
//! - it has at least two ways in, one to [`MAX_COPIES`] of them `goto`s;
//! - it holds at most [`MAX_TAIL_INSNS`] instructions, each an ALU operation on registers
//!   (`neg` and byte swaps too), ending with a `goto`, a conditional jump or `exit`, or
//!   falling into the next block. Nothing in it can fault, call out or read memory, so a
//!   copy behaves as the original in every way the interpreter can observe: the same
//!   instructions at the same pcs, charged to the fuel on entry, with a back-edge's fuel
//!   test at the same pc.
//!
//! Only `goto`s get copies. A fall-through already runs into the block laid out next,
//! and a conditional jump into a copy would still jump (its other side falls through).
//! Copying for those too, in the parser of `--bench engines` (whose join is reached by
//! seven conditional jumps and one fall-through), saved 6 of 1,432 instructions per run,
//! took one more callee-saved register, and ran no faster.

use std::collections::{BTreeMap, BTreeSet};

use bpfvm_isa::{Insn, Program};

/// The most instructions a tail holds, its jump included.
pub(crate) const MAX_TAIL_INSNS: usize = 4;

/// The most copies of one tail (the `goto`s into it).
pub(crate) const MAX_COPIES: usize = 32;

/// The ways into one leader.
#[derive(Default)]
struct Ways {
    all: usize,
    gotos: usize,
    backward: bool,
}

/// The tails (see the module doc) among `leaders`, the block leaders of the function
/// whose pcs are `reachable` and which starts at `entry`.
pub(crate) fn find(
    program: &Program,
    entry: usize,
    reachable: &BTreeSet<usize>,
    leaders: &BTreeSet<usize>,
) -> BTreeSet<usize> {
    let mut ways: BTreeMap<usize, Ways> = BTreeMap::new();
    let mut edge = |from: usize, to: usize, goto: bool| {
        let w = ways.entry(to).or_default();
        w.all += 1;
        w.gotos += usize::from(goto);
        w.backward |= to <= from;
    };
    for &pc in reachable {
        let Some(insn) = program.get(pc) else {
            continue;
        };
        let next = pc + insn.slots();
        let target = |off: i64| usize::try_from(pc as i64 + 1 + off).unwrap_or(usize::MAX);
        match insn {
            Insn::Exit => {}
            Insn::Ja { off, .. } => edge(pc, target(i64::from(off)), true),
            Insn::Jmp { off, .. } | Insn::MayGoto { off } => {
                edge(pc, target(i64::from(off)), false);
                edge(pc, next, false);
            }
            _ if leaders.contains(&next) => edge(pc, next, false),
            _ => {}
        }
    }
    leaders
        .iter()
        .copied()
        .filter(|&b| {
            b != entry
                && ways.get(&b).is_some_and(|w| {
                    !w.backward && w.all >= 2 && (1..=MAX_COPIES).contains(&w.gotos)
                })
                && short_and_plain(program, b, leaders)
        })
        .collect()
}

/// Whether the block at `b` has at most [`MAX_TAIL_INSNS`] instructions, all ALU
/// operations on registers but a last `goto`, conditional jump or `exit` (or none, the
/// block falling into the next).
fn short_and_plain(program: &Program, b: usize, leaders: &BTreeSet<usize>) -> bool {
    let mut pc = b;
    for _ in 0..MAX_TAIL_INSNS {
        let Some(insn) = program.get(pc) else {
            return false;
        };
        match insn {
            Insn::Ja { .. } | Insn::Jmp { .. } | Insn::Exit => return true,
            Insn::Alu { .. } | Insn::Neg { .. } | Insn::Endian { .. } => {}
            _ => return false,
        }
        pc += insn.slots();
        if leaders.contains(&pc) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfvm_isa::asm::{Dialect, assemble};

    /// The tails of `src`, a function from pc 0 (its reachable pcs and leaders found as
    /// the translator finds them).
    fn tails_of(src: &str) -> BTreeSet<usize> {
        let program =
            Program::from_slots(assemble(src, Dialect::Llvm).expect("assembles")).expect("valid");
        let mut reachable = BTreeSet::new();
        let mut leaders = BTreeSet::from([0]);
        let mut work = vec![0];
        while let Some(pc) = work.pop() {
            let Some(insn) = program.get(pc) else {
                continue;
            };
            if !reachable.insert(pc) {
                continue;
            }
            let next = pc + insn.slots();
            match insn {
                Insn::Exit => {}
                Insn::Ja { off, .. } => {
                    let t = (pc as i64 + 1 + i64::from(off)) as usize;
                    leaders.insert(t);
                    work.push(t);
                }
                Insn::Jmp { off, .. } => {
                    let t = (pc as i64 + 1 + i64::from(off)) as usize;
                    leaders.extend([t, next]);
                    work.extend([t, next]);
                }
                _ => work.push(next),
            }
        }
        find(&program, 0, &reachable, &leaders)
    }

    #[test]
    fn finds_the_join_of_a_switch_in_a_loop() {
        // pcs: 0 r0, 1 r7, 2 l:, 3 if, 4 r0 +=, 5 goto, 6 r0 ^=, 7 join: r7, 8 if, 9 exit.
        let src = "r0 = 0\nr7 = 9\nl:\nr4 = r7\nif r4 > 3 goto b\nr0 += 1\ngoto join\n\
                   b:\nr0 ^= 5\njoin:\nr7 += -1\nif r7 != 0 goto l\nexit\n";
        assert_eq!(tails_of(src), BTreeSet::from([7]));
    }

    #[test]
    fn finds_a_join_that_exits_or_falls_into_the_next_block() {
        // The join `r0 += 1; exit` (pc 4), reached by a goto and a fall-through.
        let src = "if r1 == 0 goto a\nr0 = 2\ngoto j\na:\nr0 = 3\nj:\nr0 += 1\nexit\n";
        assert_eq!(tails_of(src), BTreeSet::from([4]));
        // A join with no jump of its own: it falls into the loop at `k` (pc 5), which is
        // no tail (a jump back reaches it).
        let src = "if r1 == 0 goto a\nr0 = 2\ngoto j\na:\nr0 = 3\nj:\nr0 += 1\n\
                   k:\nr0 *= 3\nif r0 < 99 goto k\nexit\n";
        assert_eq!(tails_of(src), BTreeSet::from([4]));
    }

    #[test]
    fn refuses_loop_heads_long_blocks_and_blocks_that_touch_memory_or_call() {
        // `j` has a goto and a fall-through in, as in the test above (where `r0 += 1;
        // exit` is a tail); what follows `j:` here makes it none.
        let ways_in = "if r1 == 0 goto a\nr0 = 2\ngoto j\na:\nr0 = 3\nj:\n";
        let bodies = [
            // A loop head: the jump back reaches it.
            "r0 += 1\nif r0 < 9 goto j\nexit\n",
            // Five instructions.
            "r0 += 1\nr0 += 1\nr0 += 1\nr0 += 1\nexit\n",
            // A load, a call.
            "r0 = *(u8 *)(r10 - 1)\nexit\n",
            "call 5\nexit\n",
        ];
        for body in bodies {
            let src = format!("{ways_in}{body}");
            assert_eq!(tails_of(&src), BTreeSet::new(), "{src}");
        }
    }

    #[test]
    fn refuses_joins_no_goto_enters_and_blocks_with_one_way_in() {
        let cases = [
            // A conditional jump and its fall-through; a jump and a fall-through.
            "if r1 == 0 goto j\nj:\nr0 = 1\nexit\n",
            "if r1 == 0 goto j\nr0 = 2\nj:\nr0 += 1\nexit\n",
            // One goto, the only way in.
            "r0 = 1\ngoto j\nj:\nr0 += 1\nexit\n",
        ];
        for src in cases {
            assert_eq!(tails_of(src), BTreeSet::new(), "{src}");
        }
    }
}
