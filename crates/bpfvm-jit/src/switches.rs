//! Compare trees on one register, dispatched through a jump table.
//!
//! BPF has no indirect jump, so clang compiles a dense C `switch` to a binary tree of
//! compares: `if r > 7 goto hi; if r > 3 goto …`, four levels for sixteen cases. Each
//! level is a conditional branch whose direction the case value picks. Native code
//! jumps through a table instead, one indirect branch per switch. This pass finds such
//! trees so that the translator can do the same with Cranelift's `br_table`: in
//! `--bench engines` the switch took 2.07–2.29 µs per run as a tree and 1.23–1.38 µs
//! through a table (alternating timed runs; native Rust, whose `match` is a jump
//! table, 1.04–1.10 µs; `docs/performance.md`).
//!
//! A *tree* is rooted at an `if r > K goto t` (64-bit, unsigned, `K` a non-negative
//! immediate, `t` forward). Its two successors are *nodes* when they are one-instruction
//! blocks `if r > K' goto t'` on the same register that only their parent reaches, and
//! *leaves* otherwise; every leaf must be reachable only from its parent too. Each node
//! splits the values its parent sends it at its `K`, so the leaves' ranges partition
//! the `u64`s: the leaf of the top range (`> K` of its last node) is the table's
//! default, and the others fill the table, one entry per value from 0 to the largest
//! `K`. A tree is used when it has at least [`MIN_LEAVES`] leaves and its table at most
//! [`MAX_TABLE`] entries.
//!
//! What the interpreter can observe does not change. The nodes' compares have no
//! effect but the branch (no register written, no fault possible), a node is never a
//! back-edge or a call (so no budget test happens in a tree), and each leaf charges the
//! fuel of the nodes on its path (`Tree::path`) with its own instructions on entry: the
//! fuel at the next back-edge or call, where the budget is noticed, is what it was
//! through the tree.

use std::collections::{BTreeMap, BTreeSet};

use bpfvm_isa::{Insn, JmpOp, Program, Reg, Source, Width};

use crate::tails::Ways;

/// The fewest leaves worth a table (a tree of three compares or more).
pub(crate) const MIN_LEAVES: usize = 4;

/// The most table entries (the largest `K` + 1).
pub(crate) const MAX_TABLE: usize = 256;

/// A compare tree (see the module doc), by its root's pc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tree {
    /// The register compared.
    pub reg: Reg,
    /// The leaf for each value `0..table.len()`.
    pub table: Vec<usize>,
    /// The leaf for every larger value.
    pub default: usize,
    /// The nodes below the root: their blocks are never run.
    pub nodes: BTreeSet<usize>,
    /// For each leaf, the nodes on its path from the root (the root excluded): the
    /// instructions the tree would have run on the way, charged at the leaf.
    pub path: BTreeMap<usize, usize>,
}

/// `if r > K goto t` (64-bit, unsigned, `K` a non-negative immediate) at `pc`: `r`, `K`
/// and `t`.
fn compare(program: &Program, pc: usize) -> Option<(Reg, u64, usize)> {
    match program.get(pc)? {
        Insn::Jmp {
            width: Width::W64,
            op: JmpOp::Gt,
            dst,
            src: Source::Imm(k),
            off,
        } => {
            let k = u64::try_from(k).ok()?;
            let t = usize::try_from(i64::try_from(pc).ok()? + 1 + i64::from(off)).ok()?;
            Some((dst, k, t))
        }
        _ => None,
    }
}

/// The trees (see the module doc) of the function whose pcs are `reachable` and whose
/// block leaders are `leaders`, by root; `ways` are [`crate::tails::ways_in`]'s.
pub(crate) fn find(
    program: &Program,
    reachable: &BTreeSet<usize>,
    leaders: &BTreeSet<usize>,
    ways: &BTreeMap<usize, Ways>,
) -> BTreeMap<usize, Tree> {
    let only_parent =
        |pc: usize| reachable.contains(&pc) && ways.get(&pc).is_some_and(|w| w.all == 1);
    // In pc order: a node comes after its parent (it is its fall-through or a forward
    // target), so a tree's nodes are known before any of them is reached as a root.
    let mut trees = BTreeMap::new();
    let mut inner: BTreeSet<usize> = BTreeSet::new();
    for &root in reachable {
        if inner.contains(&root) {
            continue;
        }
        if let Some(tree) = tree_at(program, root, leaders, &only_parent) {
            inner.extend(tree.nodes.iter().copied());
            trees.insert(root, tree);
        }
    }
    trees
}

/// The tree rooted at `root`, if it is one.
fn tree_at(
    program: &Program,
    root: usize,
    leaders: &BTreeSet<usize>,
    only_parent: &impl Fn(usize) -> bool,
) -> Option<Tree> {
    let (reg, _, _) = compare(program, root)?;
    // (lo, hi, leaf, nodes on the path below the root)
    let mut leaves: Vec<(u64, u64, usize, usize)> = Vec::new();
    let mut nodes = BTreeSet::new();
    let mut work = vec![(root, 0u64, u64::MAX, 0usize)];
    while let Some((node, lo, hi, depth)) = work.pop() {
        let (_, k, target) = compare(program, node)?;
        if k < lo || k >= hi || target <= node {
            return None;
        }
        for (child, lo, hi) in [(node + 1, lo, k), (target, k + 1, hi)] {
            if !only_parent(child) {
                return None;
            }
            match compare(program, child) {
                Some((r, _, _)) if r == reg && leaders.contains(&(child + 1)) => {
                    nodes.insert(child);
                    work.push((child, lo, hi, depth + 1));
                }
                _ => leaves.push((lo, hi, child, depth)),
            }
        }
    }
    if leaves.len() < MIN_LEAVES {
        return None;
    }
    leaves.sort_unstable();
    let &(top_lo, _, default, _) = leaves.last()?;
    if usize::try_from(top_lo).ok()? > MAX_TABLE {
        return None;
    }
    let mut table = Vec::new();
    for &(lo, hi, leaf, _) in &leaves[..leaves.len() - 1] {
        table.extend((lo..=hi).map(|_| leaf));
    }
    let path = leaves.iter().map(|&(_, _, leaf, d)| (leaf, d)).collect();
    Some(Tree {
        reg,
        table,
        default,
        nodes,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trees of `src`, a function from pc 0.
    fn trees_of(src: &str) -> BTreeMap<usize, Tree> {
        let (program, reachable, leaders) = crate::test_cfg::function(src);
        let ways = crate::tails::ways_in(&program, &reachable, &leaders);
        find(&program, &reachable, &leaders, &ways)
    }

    /// A four-way switch on r1 whose cases set r0 to 10, 11, 12, 13 and end at `out`.
    /// pcs: 0 `if > 1`, 1 `if > 0`, 2 case 0, 3 goto, 4 case 1, 5 goto, 6 `if > 2`,
    /// 7 case 2, 8 goto, 9 case 3, 10 out: exit.
    const FOUR: &str = "if r1 > 1 goto hi\nif r1 > 0 goto c1\nr0 = 10\ngoto out\n\
                        c1:\nr0 = 11\ngoto out\nhi:\nif r1 > 2 goto c3\nr0 = 12\ngoto out\n\
                        c3:\nr0 = 13\nout:\nexit\n";

    #[test]
    fn finds_a_four_way_switch() {
        let tree = Tree {
            reg: Reg::R1,
            table: vec![2, 4, 7],
            default: 9,
            nodes: BTreeSet::from([1, 6]),
            path: BTreeMap::from([(2, 1), (4, 1), (7, 1), (9, 1)]),
        };
        assert_eq!(trees_of(FOUR), BTreeMap::from([(0, tree)]));
    }

    #[test]
    fn refuses_what_a_table_cannot_replace() {
        let cases = [
            // Three leaves only.
            "if r1 > 1 goto hi\nif r1 > 0 goto c1\nr0 = 10\nexit\nc1:\nr0 = 11\nexit\n\
             hi:\nr0 = 12\nexit\n",
            // Another register below the root.
            "if r1 > 1 goto hi\nif r2 > 0 goto c1\nr0 = 10\nexit\nc1:\nr0 = 11\nexit\n\
             hi:\nif r1 > 2 goto c3\nr0 = 12\nexit\nc3:\nr0 = 13\nexit\n",
            // Signed compares.
            "if r1 s> 1 goto hi\nif r1 s> 0 goto c1\nr0 = 10\nexit\nc1:\nr0 = 11\nexit\n\
             hi:\nif r1 s> 2 goto c3\nr0 = 12\nexit\nc3:\nr0 = 13\nexit\n",
            // A leaf that another jump reaches too.
            "if r1 > 1 goto hi\nif r1 > 0 goto c1\nr0 = 10\nexit\nc1:\nr0 = 11\nexit\n\
             hi:\nif r1 > 2 goto c1\nr0 = 12\nexit\n",
            // A compare that does not split its range (r1 > 1 again below r1 <= 1).
            "if r1 > 1 goto hi\nif r1 > 1 goto c1\nr0 = 10\nexit\nc1:\nr0 = 11\nexit\n\
             hi:\nif r1 > 2 goto c3\nr0 = 12\nexit\nc3:\nr0 = 13\nexit\n",
            // A table of 1,001 entries.
            "if r1 > 999 goto hi\nif r1 > 0 goto c1\nr0 = 10\nexit\nc1:\nr0 = 11\nexit\n\
             hi:\nif r1 > 1000 goto c3\nr0 = 12\nexit\nc3:\nr0 = 13\nexit\n",
        ];
        for src in cases {
            assert_eq!(trees_of(src), BTreeMap::new(), "{src}");
        }
    }
}
