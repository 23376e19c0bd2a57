//! Coalesced window tests: one test for a run of accesses through one pointer.
//!
//! A packet parser reads a dozen header fields through the same register (`r1 + 12`,
//! `r1 + 14`, `r1 + 23`, ...), each behind its own inline window test in checked mode.
//! This pass finds such runs in one function: a *leader* access through register `X`,
//! and *members*, later accesses through `X` of the same kind (loads, or stores) reached
//! from it without `X` being written and without a call. The translator then tests the
//! span of all of them once, just before the leader, and on success continues in a
//! second copy of the code from the leader on (the *fast version*: the rest of the
//! leader's block, then the [`Group::blocks`]), where the leader and the members access
//! memory directly. When the span test fails, the ordinary code runs, every access tested
//! on its own, so faults and their pcs are exactly the interpreter's. (When the leader's
//! region is not the window yet, the first pass fails the span test, and the leader's
//! slow path in the ordinary code makes it the window: the next pass is fast. Testing
//! the span after the leader's own tested access instead, as the JIT first did, saves
//! that first pass and costs every other one the leader's test: about 7 instructions
//! per packet of the parser benchmark.)
//!
//! Why the leader and a member need no test in the fast version: the span test found
//! `[X + lo, X + hi)` inside the plain window (writable, for stores) with `X`'s value at
//! the leader. Fast-version code is entered only from that successful test and leaves it for
//! any block that writes `X` or calls (those blocks are not duplicated; when the rest of
//! the leader's block holds such an instruction, no member follows it and that block is
//! the whole fast version), so at the leader and at a member `X` still holds that value.
//! Regions do not move or lose permissions during a run except through calls (a
//! ring-buffer record ends at `bpf_ringbuf_submit`), so the member's bytes, inside the
//! tested span, are still in a plain region that allows the access, and a direct access
//! does what the checked access's fast path or slow path would do. Only plain loads and
//! stores take part (atomics and acquire/release keep their own aligned tests), and no
//! access through `r10`.
//!
//! Invariants: groups are disjoint (an access is the leader or a member of at most one
//! group), a block is duplicated for at most one group, and each group's span is at most
//! [`MAX_SPAN`] bytes and its fast version at most [`MAX_COPY`] instructions, so the
//! duplication stays a fraction of the function.

use std::collections::{BTreeMap, BTreeSet};

use bpfvm_isa::{Insn, Program, Reg, Size};

use crate::liveness;

/// The widest span one test covers (bytes): the headers a parser reads; a wider span
/// would more often fail for short packets and send every member to the ordinary code.
pub(crate) const MAX_SPAN: i64 = 256;

/// The most instructions one group's fast version copies (the rest of the leader's
/// block and the duplicated blocks).
pub(crate) const MAX_COPY: usize = 96;

/// One coalesced test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    /// The pc of the first access, where the span is tested.
    pub leader: usize,
    /// The pointer register.
    pub base: Reg,
    /// Stores (tested against the writable window) or loads.
    pub store: bool,
    /// The span tested, as offsets from the base: `[lo, hi)`.
    pub lo: i64,
    pub hi: i64,
    /// The later accesses the span covers (the leader not included).
    pub members: BTreeSet<usize>,
    /// The leaders of the blocks copied into the fast version (after the rest of the
    /// leader's block), in pc order.
    pub blocks: BTreeSet<usize>,
}

/// The groups of one function, by leader pc.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    by_leader: BTreeMap<usize, Group>,
    /// Every leader and member.
    grouped: BTreeSet<usize>,
}

/// A plain access that may join a group: its base, offset, size and kind.
fn access(insn: Insn) -> Option<(Reg, i64, u64, bool)> {
    let (base, off, size, store) = match insn {
        Insn::Load { src, off, size, .. } => (src, off, size, false),
        Insn::Store { dst, off, size, .. } => (dst, off, size, true),
        _ => return None,
    };
    (base != Reg::R10).then_some((base, i64::from(off), size_bytes(size), store))
}

fn size_bytes(size: Size) -> u64 {
    size.bytes() as u64
}

/// Whether `insn` ends what a test of a span through `base` proves: it writes `base`, or
/// it calls something (which may end a region, and which writes `r0`–`r5`).
fn kills(pc: usize, insn: Insn, base: Reg) -> bool {
    if matches!(
        insn,
        Insn::Call { .. } | Insn::Callx { .. } | Insn::LdAbs { .. } | Insn::LdInd { .. }
    ) {
        return true;
    }
    let (_, defs) = liveness::uses_defs(pc, insn, |_| 0);
    defs & liveness::bit(base) != 0
}

/// Whether `insn` ends its basic block.
fn ends_block(insn: Insn) -> bool {
    matches!(
        insn,
        Insn::Exit | Insn::Ja { .. } | Insn::Jmp { .. } | Insn::MayGoto { .. }
    )
}

/// The span being built for one leader.
struct Span {
    base: Reg,
    store: bool,
    lo: i64,
    hi: i64,
    members: BTreeSet<usize>,
}

impl Span {
    /// Takes the access at `pc` if it goes through the same register, is of the same
    /// kind, and keeps the span within [`MAX_SPAN`].
    fn offer(&mut self, pc: usize, insn: Insn, taken: &BTreeSet<usize>) {
        let Some((base, off, size, store)) = access(insn) else {
            return;
        };
        if base != self.base || store != self.store || taken.contains(&pc) {
            return;
        }
        let (lo, hi) = (self.lo.min(off), self.hi.max(off + size as i64));
        if hi - lo <= MAX_SPAN {
            (self.lo, self.hi) = (lo, hi);
            self.members.insert(pc);
        }
    }
}

impl Groups {
    /// Finds the groups of the function whose reachable pcs and block leaders are given.
    pub(crate) fn new(
        program: &Program,
        reachable: &BTreeSet<usize>,
        leaders: &BTreeSet<usize>,
    ) -> Groups {
        // The block each reachable pc belongs to.
        let mut block_of = BTreeMap::new();
        let mut current = None;
        for &pc in reachable {
            if leaders.contains(&pc) {
                current = Some(pc);
            }
            if let Some(leader) = current {
                block_of.insert(pc, leader);
            }
        }
        // The cap on the whole function's copies: a quarter of it, and at least one group.
        let mut budget = (reachable.len() / 4).max(MAX_COPY);
        let mut taken = BTreeSet::new(); // leaders and members
        let mut copied = BTreeSet::new(); // blocks duplicated by some group
        let mut by_leader = BTreeMap::new();
        for &pc in reachable {
            let Some(insn) = program.get(pc) else {
                continue;
            };
            let Some((base, off, size, store)) = access(insn) else {
                continue;
            };
            if taken.contains(&pc) || budget == 0 {
                continue;
            }
            let mut span = Span {
                base,
                store,
                lo: off,
                hi: off + size as i64,
                members: BTreeSet::new(),
            };
            // The rest of the leader's block.
            // (Every walk stops past `limit` instructions: a long block holding many
            // accesses must not cost its length once per access.)
            let limit = MAX_COPY.min(budget);
            let mut copy = 0;
            let mut next = pc + insn.slots();
            let mut open = !kills(pc, insn, base) && !ends_block(insn);
            while open && !leaders.contains(&next) && reachable.contains(&next) {
                let Some(i) = program.get(next) else { break };
                copy += 1;
                if copy > limit {
                    break;
                }
                span.offer(next, i, &taken);
                if kills(next, i, base) {
                    open = false;
                    break;
                }
                next += i.slots();
                if ends_block(i) {
                    break;
                }
            }
            let rest = copy;
            if rest > limit {
                continue;
            }
            // Blocks reached from there without a write of the base or a call.
            let mut blocks = BTreeSet::new();
            if open {
                let home = block_of.get(&pc).copied();
                let mut work = successors(program, pc, leaders);
                while let Some(b) = work.pop() {
                    if Some(b) == home || blocks.contains(&b) || copied.contains(&b) {
                        continue;
                    }
                    let Some(body) = block_body(program, b, leaders, reachable, limit - copy)
                    else {
                        continue;
                    };
                    if body.iter().any(|&(p, i)| kills(p, i, base)) {
                        continue;
                    }
                    copy += body.len();
                    for &(p, i) in &body {
                        span.offer(p, i, &taken);
                    }
                    blocks.insert(b);
                    work.extend(successors(program, b, leaders));
                }
            }
            prune(program, &mut blocks, &span, leaders, reachable);
            if span.members.is_empty() {
                continue;
            }
            let copy = rest
                + blocks
                    .iter()
                    .filter_map(|&b| block_body(program, b, leaders, reachable, usize::MAX))
                    .map(|body| body.len())
                    .sum::<usize>();
            budget = budget.saturating_sub(copy);
            taken.insert(pc);
            taken.extend(span.members.iter().copied());
            copied.extend(blocks.iter().copied());
            by_leader.insert(
                pc,
                Group {
                    leader: pc,
                    base,
                    store,
                    lo: span.lo,
                    hi: span.hi,
                    members: span.members,
                    blocks,
                },
            );
        }
        Groups {
            by_leader,
            grouped: taken,
        }
    }

    /// Whether the access at `pc` is a group's leader or member.
    pub(crate) fn in_group(&self, pc: usize) -> bool {
        self.grouped.contains(&pc)
    }

    /// Whether the code at `pc` is part of a group's fast version: the leader's block
    /// from the leader on, or a block the fast version copies (`leaders`: the
    /// function's block leaders).
    pub(crate) fn covers(&self, pc: usize, leaders: &BTreeSet<usize>) -> bool {
        self.by_leader.values().any(|g| {
            g.blocks.contains(&pc)
                || (g.leader <= pc && leaders.range(g.leader + 1..).next().is_none_or(|&n| pc < n))
        })
    }

    /// The group `pc` leads.
    pub(crate) fn led_by(&self, pc: usize) -> Option<&Group> {
        self.by_leader.get(&pc)
    }

    /// The distinct spans tested (`hi - lo` bytes, and whether for stores).
    pub(crate) fn spans(&self) -> BTreeSet<(u64, bool)> {
        self.by_leader
            .values()
            .map(|g| ((g.hi - g.lo) as u64, g.store))
            .collect()
    }
}

/// The instructions of the block led by `leader` (it must be reachable), if there are at
/// most `cap` of them.
fn block_body(
    program: &Program,
    leader: usize,
    leaders: &BTreeSet<usize>,
    reachable: &BTreeSet<usize>,
    cap: usize,
) -> Option<Vec<(usize, Insn)>> {
    if !reachable.contains(&leader) {
        return None;
    }
    let mut body = Vec::new();
    let mut pc = leader;
    while let Some(insn) = program.get(pc) {
        if body.len() == cap {
            return None; // longer than `cap`
        }
        body.push((pc, insn));
        pc += insn.slots();
        if ends_block(insn) || leaders.contains(&pc) {
            break;
        }
    }
    Some(body)
}

/// The leaders of the blocks that follow the block holding `from` (scanning from it):
/// the targets of the block's last instruction, or the next leader it falls into.
fn successors(program: &Program, from: usize, leaders: &BTreeSet<usize>) -> Vec<usize> {
    let mut pc = from;
    while let Some(insn) = program.get(pc) {
        let next = pc + insn.slots();
        // Jump offsets count from the next slot (a jump is one slot).
        let target = |off: i64| usize::try_from(pc as i64 + 1 + off).ok();
        match insn {
            Insn::Exit => return vec![],
            Insn::Ja { off, .. } => return target(i64::from(off)).into_iter().collect(),
            Insn::Jmp { off, .. } | Insn::MayGoto { off } => {
                return target(i64::from(off)).into_iter().chain([next]).collect();
            }
            _ if leaders.contains(&next) => return vec![next],
            _ => pc = next,
        }
    }
    vec![]
}

/// Drops the copied blocks that hold no member and lead to no kept block: copying them
/// buys nothing. (The span is unchanged: every block holding a member is kept.)
fn prune(
    program: &Program,
    blocks: &mut BTreeSet<usize>,
    span: &Span,
    leaders: &BTreeSet<usize>,
    reachable: &BTreeSet<usize>,
) {
    let holds_member = |b: usize| {
        block_body(program, b, leaders, reachable, usize::MAX)
            .is_some_and(|body| body.iter().any(|(p, _)| span.members.contains(p)))
    };
    let mut keep: BTreeSet<usize> = blocks
        .iter()
        .copied()
        .filter(|&b| holds_member(b))
        .collect();
    loop {
        let more: Vec<usize> = blocks
            .iter()
            .copied()
            .filter(|b| !keep.contains(b))
            .filter(|&b| {
                successors(program, b, leaders)
                    .iter()
                    .any(|s| keep.contains(s))
            })
            .collect();
        if more.is_empty() {
            break;
        }
        keep.extend(more);
    }
    *blocks = keep;
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfvm_isa::asm::{Dialect, assemble};

    /// The groups of a one-function program.
    fn groups(src: &str) -> Vec<Group> {
        let slots = assemble(src, Dialect::Llvm).expect("test program assembles");
        let program = Program::from_slots(slots).expect("test program decodes");
        // Every pc is reachable in these programs, which jump only conditionally; leaders:
        // 0, jump targets, and the instructions after jumps.
        let reachable: BTreeSet<usize> = program.iter().map(|(pc, _)| pc).collect();
        let mut leaders = BTreeSet::from([0]);
        for (pc, insn) in program.iter() {
            if let Insn::Jmp { off, .. } = insn {
                leaders.insert((pc as i64 + 1 + i64::from(off)) as usize);
                leaders.insert(pc + 1);
            }
        }
        let g = Groups::new(&program, &reachable, &leaders);
        g.by_leader.into_values().collect()
    }

    /// A group of loads through r1.
    fn loads(leader: usize, (lo, hi): (i64, i64), members: &[usize], blocks: &[usize]) -> Group {
        Group {
            leader,
            base: Reg::R1,
            store: false,
            lo,
            hi,
            members: members.iter().copied().collect(),
            blocks: blocks.iter().copied().collect(),
        }
    }

    #[test]
    fn a_header_parser_is_one_group() {
        // The benchmark's parser without its entry. pcs: 3 ldh +12, 5 ldb +14, 7 ldh +20,
        // 10 ldb +23, 12 ldh +36, 16 ldb +47; blocks start at 0, 3, 5, 7, 10, 12, 15, 16,
        // 19, 20 and 23. The block at 20 writes r1 and is not copied; the one at 19 holds
        // no member and leads only there, so copying it buys nothing.
        let src = "parse:
            r3 = r1
            r3 += 54
            if r3 > r2 goto out
            r4 = *(u16 *)(r1 + 12)
            if r4 != 8 goto next
            r4 = *(u8 *)(r1 + 14)
            if r4 != 0x45 goto next
            r4 = *(u16 *)(r1 + 20)
            r4 &= 0xff3f
            if r4 != 0 goto next
            r4 = *(u8 *)(r1 + 23)
            if r4 != 6 goto next
            r4 = *(u16 *)(r1 + 36)
            r4 = be16 r4
            if r4 == 80 goto port
            if r4 != 443 goto next
            port:
            r4 = *(u8 *)(r1 + 47)
            r4 &= 0x12
            if r4 != 2 goto next
            r6 += 1
            next:
            r1 += 64
            r7 += -1
            if r7 != 0 goto parse
            out:
            r0 = r6
            exit";
        assert_eq!(
            groups(src),
            vec![loads(
                3,
                (12, 48),
                &[5, 7, 10, 12, 16],
                &[5, 7, 10, 12, 15, 16]
            )]
        );
    }

    #[test]
    fn a_write_of_the_base_or_a_call_ends_a_group() {
        // r1 written at pc 1: pc 2 starts a new group with pc 3.
        let src = "r0 = *(u8 *)(r1 + 0)
            r1 += 8
            r2 = *(u8 *)(r1 + 0)
            r3 = *(u8 *)(r1 + 4)
            exit";
        assert_eq!(groups(src), vec![loads(2, (0, 5), &[3], &[])]);
        // A helper call between two loads through r6: no group.
        let src = "r0 = *(u8 *)(r6 + 0)
            call 5
            r0 = *(u8 *)(r6 + 1)
            exit";
        assert_eq!(groups(src), vec![]);
        // A load into its own base ends the group at once.
        let src = "r1 = *(u64 *)(r1 + 0)
            r0 = *(u8 *)(r1 + 1)
            exit";
        assert_eq!(groups(src), vec![]);
    }

    #[test]
    fn loads_and_stores_group_apart_and_spans_are_capped() {
        // The store at pc 1 is alone of its kind; the loads at 0 and 2 group.
        let src = "r0 = *(u8 *)(r1 + 0)
            *(u8 *)(r1 + 1) = r0
            r0 = *(u16 *)(r1 + 2)
            exit";
        assert_eq!(groups(src), vec![loads(0, (0, 4), &[2], &[])]);
        // 0..301 is wider than MAX_SPAN; 0..256 is not.
        let src = "r0 = *(u8 *)(r1 + 0)
            r0 = *(u8 *)(r1 + 300)
            exit";
        assert_eq!(groups(src), vec![]);
        let src = "r0 = *(u8 *)(r1 + 0)
            r0 = *(u64 *)(r1 + 248)
            exit";
        assert_eq!(groups(src), vec![loads(0, (0, 256), &[1], &[])]);
        // A member more than MAX_COPY instructions after the leader is not taken.
        let far = |n: usize| {
            let mut src = String::from("r0 = *(u8 *)(r1 + 0)\n");
            src.push_str(&"r2 += 1\n".repeat(n));
            src.push_str("r0 = *(u8 *)(r1 + 1)\nexit");
            groups(&src)
        };
        let members = MAX_COPY - 2; // the member itself and `exit` are copied too
        assert_eq!(far(members), vec![loads(0, (0, 2), &[members + 1], &[])]);
        assert_eq!(far(MAX_COPY), vec![]);
        // Accesses through r10 never group.
        let src = "r0 = *(u8 *)(r10 + 8)
            r0 = *(u8 *)(r10 + 9)
            exit";
        assert_eq!(groups(src), vec![]);
    }
}
