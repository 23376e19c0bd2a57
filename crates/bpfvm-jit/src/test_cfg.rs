//! For unit tests: a function's reachable pcs and block leaders, found from pc 0 as
//! the translator's `explore` finds them, for a program in LLVM assembler syntax.

use std::collections::BTreeSet;

use bpfvm_isa::asm::{Dialect, assemble};
use bpfvm_isa::{Insn, Program};

/// `src` as a program, with the pcs reachable from pc 0 (calls continue at the next
/// instruction) and the leaders among them (pc 0, jump targets, and the instruction
/// after a conditional jump or `may_goto`).
pub(crate) fn function(src: &str) -> (Program, BTreeSet<usize>, BTreeSet<usize>) {
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
        let target = |off: i64| (pc as i64 + 1 + off) as usize;
        match insn {
            Insn::Exit => {}
            Insn::Ja { off, .. } => {
                leaders.insert(target(i64::from(off)));
                work.push(target(i64::from(off)));
            }
            Insn::Jmp { off, .. } | Insn::MayGoto { off } => {
                leaders.extend([target(i64::from(off)), next]);
                work.extend([target(i64::from(off)), next]);
            }
            _ => work.push(next),
        }
    }
    (program, reachable, leaders)
}
