//! Tail duplication: small join blocks copied into the jumps that reach them.
//!
//! A C `switch` or `if`/`else` compiles to arms that each end with `goto join`, and a
//! parser to checks that each leave with `if (…) goto next`, where the join is often a
//! few instructions ending in the loop's back-edge (`i--; if i != 0 goto loop`).
//! Translated block for block, that costs twice:
//! - every arm takes two jumps per trip: its `goto` into the join, and the join's
//!   back-edge;
//! - a join is entered with the fuel each way in has counted, so every check that can
//!   leave for it computes that value (a `lea` from the fuel at the loop's head) before
//!   its branch, whether it leaves or not: the fuel is one variable, and the join's
//!   block takes it as a parameter.
//!
//! This pass finds joins worth copying, so that the translator can give each `goto` and
//! each conditional jump into one its own copy of the join's code. A `goto`'s copy is
//! laid out right after the `goto`'s block, and the jump goes away; a conditional jump's
//! copy is laid out at the end of the function (its fall-through stays next). Each copy
//! has one way in, so the fuel it is entered with is the path's own count, which
//! Cranelift computes in the copy, merged with the join's: the checks before the branch
//! compute nothing for it. This is LLVM's and GCC's tail duplication. In `--bench
//! engines` (`docs/performance.md`), the switch's two-instruction join copied into its
//! sixteen cases took a run from 2.49–2.52 to 2.07–2.29 µs (alternating timed runs) and
//! from 23,788 to 21,866 instructions (callgrind), before `switches` made its compare
//! tree a jump table; the parser's three-instruction join
//! copied into its six early exits took it from 1,432 to 1,284 instructions, and from
//! 54.9–73.9 ns (mean 64.9) to 47.5–58.9 ns (mean 53.8) over the same 24 placements of
//! the code.
//!
//! A block starting at leader `B` is a *tail* when
//! - it is not the function's entry, and no jump back (from `B` or a later pc) reaches
//!   it: a loop's head is never copied, so every copy is straight-line code that ends
//!   where `B` ends, and copies never nest (the translator does not copy from a copy);
//! - it has at least two ways in, one to [`MAX_COPIES`] of them jumps (`goto`s and
//!   conditional jumps; fall-throughs, which run into the block laid out next, and
//!   `may_goto`s keep going to the original);
//! - it holds at most [`MAX_TAIL_INSNS`] instructions, each an ALU operation on registers
//!   (`neg` and byte swaps too), ending with a `goto`, a conditional jump or `exit`, or
//!   falling into the next block. Nothing in it can fault, call out or read memory, so a
//!   copy behaves as the original in every way the interpreter can observe: the same
//!   instructions at the same pcs, charged to the fuel on entry, with a back-edge's fuel
//!   test at the same pc.

use std::collections::{BTreeMap, BTreeSet};

use bpfvm_isa::{Insn, Program};

/// The most instructions a tail holds, its jump included.
pub(crate) const MAX_TAIL_INSNS: usize = 4;

/// The most jumps into one tail that get copies. (A jump in a coalesced group's code is
/// translated twice, into the group's fast version and its tested copy, so a tail may
/// get up to twice as many copies.)
pub(crate) const MAX_COPIES: usize = 32;

/// The ways into one pc of a function.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ways {
    /// Every way in: jumps, `may_goto`s, a conditional jump's fall-through, and a fall
    /// into a leader.
    pub all: usize,
    /// The `goto`s and conditional jumps among them (their targets, not fall-throughs).
    pub jumps: usize,
    /// Whether one of them comes from the pc itself or a later one.
    pub backward: bool,
}

/// The ways into each pc of the function whose pcs are `reachable` and whose block
/// leaders are `leaders` (a pc no way reaches but its function's entry has none).
pub(crate) fn ways_in(
    program: &Program,
    reachable: &BTreeSet<usize>,
    leaders: &BTreeSet<usize>,
) -> BTreeMap<usize, Ways> {
    let mut ways: BTreeMap<usize, Ways> = BTreeMap::new();
    let mut edge = |from: usize, to: usize, jump: bool| {
        let w = ways.entry(to).or_default();
        w.all += 1;
        w.jumps += usize::from(jump);
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
            Insn::Jmp { off, .. } => {
                edge(pc, target(i64::from(off)), true);
                edge(pc, next, false);
            }
            Insn::MayGoto { off } => {
                edge(pc, target(i64::from(off)), false);
                edge(pc, next, false);
            }
            _ if leaders.contains(&next) => edge(pc, next, false),
            _ => {}
        }
    }
    ways
}

/// The tails (see the module doc) among `leaders`, the block leaders of the function
/// whose pcs are `reachable` and which starts at `entry`; `ways` are [`ways_in`]'s.
pub(crate) fn find(
    program: &Program,
    entry: usize,
    leaders: &BTreeSet<usize>,
    ways: &BTreeMap<usize, Ways>,
) -> BTreeSet<usize> {
    leaders
        .iter()
        .copied()
        .filter(|&b| {
            b != entry
                && ways.get(&b).is_some_and(|w| {
                    !w.backward && w.all >= 2 && (1..=MAX_COPIES).contains(&w.jumps)
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

    /// The tails of `src`, a function from pc 0.
    fn tails_of(src: &str) -> BTreeSet<usize> {
        let (program, reachable, leaders) = crate::test_cfg::function(src);
        find(
            &program,
            0,
            &leaders,
            &ways_in(&program, &reachable, &leaders),
        )
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
    fn finds_the_join_that_early_exits_leave_for() {
        // A parser's checks: pcs 2 and 4 jump to `next` (pc 6), pc 5 falls into it.
        let src = "r7 = 9\nl:\nr4 = r7\nif r4 == 0 goto next\nr0 += 1\nif r4 == 1 goto next\n\
                   r0 += 10\nnext:\nr7 += -1\nif r7 != 0 goto l\nexit\n";
        assert_eq!(tails_of(src), BTreeSet::from([6]));
        // One conditional jump and its own fall-through are two ways in too.
        let src = "if r1 == 0 goto j\nj:\nr0 = 1\nexit\n";
        assert_eq!(tails_of(src), BTreeSet::from([1]));
    }

    #[test]
    fn refuses_joins_no_jump_copies_and_blocks_with_one_way_in() {
        let cases = [
            // A `may_goto` and a fall-through.
            "may_goto j\nr0 = 2\nj:\nr0 += 1\nexit\n",
            // One goto, the only way in.
            "r0 = 1\ngoto j\nj:\nr0 += 1\nexit\n",
        ];
        for src in cases {
            assert_eq!(tails_of(src), BTreeSet::new(), "{src}");
        }
    }
}
