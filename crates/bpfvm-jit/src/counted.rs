//! Counted loops: the budget settled for many trips at once.
//!
//! In checked mode every back-edge subtracts its block's length from the fuel and tests
//! the sign (`translate`). For a tight loop that test is a third of the work: the sum
//! loop `r0 += r3; r3 += -1; if r3 != 0 goto -3` runs 9 machine instructions per trip, 3
//! of them the fuel's, and took about 1.85× native Rust's time; strip-mined it runs 6, at
//! native speed (`docs/performance.md`). This pass finds loops whose trip count the code
//! can compute when it enters them, so that the translator can *strip-mine* them (as
//! HotSpot strip-mines counted loops to keep safepoint polls out of them): at the head it
//! works out how many trips the fuel covers, runs that many in a copy of the loop with no
//! fuel test (the *strip*), and subtracts their cost once at the end.
//!
//! A counted loop is one BPF block, from its head to a conditional jump back to the
//! head, such that
//! - every other instruction only computes on registers (ALU, `neg`, byte swaps,
//!   `lddw`), so nothing in a trip can fault, call out or leave the loop but the jump;
//! - the jump is an `if counter != bound goto head`, 64-bit or 32-bit (`JMP32`, which
//!   compares the low halves: what clang emits for an `int` counter with `-mcpu=v3`),
//!   where `bound` is an immediate or another register the loop does not write;
//! - the loop writes `counter` exactly once per trip, by an add or subtract of 1: 64-bit
//!   for a 64-bit jump, 32- or 64-bit for a 32-bit one (either steps the low half by 1).
//!
//! Then after trip `j` the counter holds `v + step·j` (`v` its value at the head; for a
//! 32-bit jump, its low half, modulo 2^32), and the loop leaves after trip
//! `t = (bound − v)·step` (wrapping at the jump's width; `t = 0` means 2^64 or 2^32
//! trips). The strip stops at `v + step·T` instead of `bound`, with `T ≤ t` the trips
//! the fuel pays for: when `T < t` the counter cannot reach `bound` before the strip
//! ends, so the strip's exit test is a single compare, as the loop's own. What the
//! program computes, where it faults and where a budget or cancellation is noticed are
//! unchanged: a strip only ever runs trips whose fuel test would have passed, and the
//! trip after a strip runs in the ordinary, tested code (see `translate`).

use std::collections::BTreeSet;

use bpfvm_isa::{AluOp, Insn, JmpOp, Program, Reg, Source, Width};

/// A loop the translator may strip-mine (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CountedLoop {
    /// The conditional jump back to the head; the loop leaves to the next instruction.
    pub jump: usize,
    /// The register stepped once per trip.
    pub counter: Reg,
    /// `+1` or `-1`.
    pub step: i64,
    /// What the counter is compared with at the jump.
    pub bound: Source,
    /// The jump's width: 32-bit jumps compare (and count) the low halves.
    pub width: Width,
    /// Instructions per trip (what the fuel is charged per trip).
    pub len: usize,
}

/// The counted loop whose head is `head`, when the block starting there is one.
/// `leaders` are the block leaders of the code being translated.
pub(crate) fn find(
    program: &Program,
    head: usize,
    leaders: &BTreeSet<usize>,
) -> Option<CountedLoop> {
    let mut pc = head;
    let mut len = 0;
    // The counter's writes are checked once the jump names it.
    let mut writes: Vec<(Reg, Option<(Width, i64)>)> = Vec::new();
    loop {
        let insn = program.get(pc)?;
        len += 1;
        match insn {
            Insn::Jmp {
                width: jump_width,
                op: JmpOp::Ne,
                dst,
                src,
                off,
            } => {
                if i64::try_from(pc).ok()? + 1 + i64::from(off) != i64::try_from(head).ok()? {
                    return None;
                }
                if let Source::Reg(b) = src
                    && (b == dst || writes.iter().any(|&(r, _)| r == b))
                {
                    return None;
                }
                let mut steps = writes.iter().filter(|&&(r, _)| r == dst);
                let step = match (steps.next(), steps.next()) {
                    // A 32-bit step under a 64-bit compare would never reach a bound
                    // above 2^32 - 1: not counted.
                    (Some(&(_, Some((step_width, step)))), None)
                        if step_width == Width::W64 || jump_width == Width::W32 =>
                    {
                        step
                    }
                    _ => return None,
                };
                return Some(CountedLoop {
                    jump: pc,
                    counter: dst,
                    step,
                    bound: src,
                    width: jump_width,
                    len,
                });
            }
            Insn::Alu {
                width,
                op,
                dst,
                src,
                ..
            } => {
                let step = match (op, src) {
                    (AluOp::Add, Source::Imm(1)) | (AluOp::Sub, Source::Imm(-1)) => Some(1),
                    (AluOp::Add, Source::Imm(-1)) | (AluOp::Sub, Source::Imm(1)) => Some(-1),
                    _ => None,
                };
                writes.push((dst, step.map(|s| (width, s))));
            }
            Insn::Neg { dst, .. } | Insn::Endian { dst, .. } | Insn::LdDw { dst, .. } => {
                writes.push((dst, None));
            }
            _ => return None,
        }
        if insn.written_reg() == Some(Reg::R10) {
            return None; // refused by validation; not worth reasoning about here
        }
        pc += insn.slots();
        if leaders.contains(&pc) {
            // The block ends (a jump lands here) before any jump back to the head.
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfvm_isa::asm::{Dialect, assemble};

    /// The counted loop at `head` of `src` (leaders: `head` and each jump's target
    /// and fall-through, as the translator finds them).
    fn find_in(src: &str, head: usize) -> Option<CountedLoop> {
        let program =
            Program::from_slots(assemble(src, Dialect::Llvm).expect("assembles")).expect("valid");
        let mut leaders = BTreeSet::from([0, head]);
        let mut pc = 0;
        while let Some(insn) = program.get(pc) {
            if let Insn::Jmp { off, .. } = insn {
                leaders.insert((pc as i64 + 1 + i64::from(off)) as usize);
                leaders.insert(pc + 1);
            }
            pc += insn.slots();
        }
        find(&program, head, &leaders)
    }

    #[test]
    fn finds_the_sum_loop_counting_down() {
        let src = "r0 = 0\nr3 = 10\nl:\nr0 += r3\nr3 += -1\nif r3 != 0 goto l\nexit\n";
        assert_eq!(
            find_in(src, 2),
            Some(CountedLoop {
                jump: 4,
                counter: Reg::R3,
                step: -1,
                bound: Source::Imm(0),
                width: Width::W64,
                len: 3,
            })
        );
    }

    #[test]
    fn finds_a_loop_counting_up_to_a_register_with_lddw_in_its_body() {
        let src = "r1 = 0\nr2 = 7\nl:\nr4 = 0x123456789 ll\nr0 ^= r4\nr1 -= -1\n\
                   if r1 != r2 goto l\nexit\n";
        assert_eq!(
            find_in(src, 2),
            Some(CountedLoop {
                jump: 6,
                counter: Reg::R1,
                step: 1,
                bound: Source::Reg(Reg::R2),
                width: Width::W64,
                len: 4,
            })
        );
    }

    #[test]
    fn finds_32_bit_counters_under_32_bit_jumps() {
        // clang's `int` counter with -mcpu=v3; the step may be 32- or 64-bit.
        for step in ["w1 += 1", "r1 += 1"] {
            let src = format!("w1 = 0\nl:\nw0 += w1\n{step}\nif w1 != 100 goto l\nexit\n");
            assert_eq!(
                find_in(&src, 1),
                Some(CountedLoop {
                    jump: 3,
                    counter: Reg::R1,
                    step: 1,
                    bound: Source::Imm(100),
                    width: Width::W32,
                    len: 3,
                }),
                "{step}"
            );
        }
    }

    #[test]
    fn refuses_what_the_strip_could_not_count() {
        let cases = [
            // A memory access can fault (and is tested), a call can do anything.
            "l:\nr0 = *(u8 *)(r1 + 0)\nr3 += -1\nif r3 != 0 goto l\nexit\n",
            "l:\ncall 5\nr3 += -1\nif r3 != 0 goto l\nexit\n",
            // The counter stepped twice, by 2, by a 32-bit add under a 64-bit compare, or
            // also written otherwise.
            "l:\nr3 += -1\nr3 += -1\nif r3 != 0 goto l\nexit\n",
            "l:\nr3 += -2\nif r3 != 0 goto l\nexit\n",
            "l:\nw3 += -1\nif r3 != 0 goto l\nexit\n",
            "l:\nr3 += -1\nr3 &= 7\nif r3 != 0 goto l\nexit\n",
            "l:\nr0 += 1\nif r3 != 0 goto l\nexit\n",
            // The bound written in the loop, or the counter itself.
            "l:\nr3 += -1\nr2 += 1\nif r3 != r2 goto l\nexit\n",
            "l:\nr3 += -1\nif r3 != r3 goto l\nexit\n",
            // Other conditions: another comparison, a jump elsewhere.
            "l:\nr3 += -1\nif r3 > 0 goto l\nexit\n",
            "l:\nw3 += -1\nif w3 < 9 goto l\nexit\n",
            "l:\nr3 += -1\nif r3 != 0 goto +0\nexit\n",
        ];
        for src in cases {
            assert_eq!(find_in(src, 0), None, "{src}");
        }
    }

    #[test]
    fn refuses_a_block_that_another_jump_enters_midway() {
        // `m` is a leader inside the loop: the head's block ends before the jump.
        let src = "if r1 == 0 goto m\nl:\nr0 += 1\nm:\nr3 += -1\nif r3 != 0 goto l\nexit\n";
        assert_eq!(find_in(src, 1), None);
        // The block from `m` is not a loop to `m`.
        assert_eq!(find_in(src, 2), None);
    }
}
