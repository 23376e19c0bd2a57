//! Which registers cross a local call through memory.
//!
//! The interpreter runs every BPF function on one register file: a callee sees its
//! caller's `r0` and `r6`–`r9` (and must leave `r6`–`r9` as it found them, which the
//! engines do for it), and the caller sees the callee's `r1`–`r5` after the call. The JIT
//! passes `r1`–`r5` in as native arguments and `r0` out as the native result; the rest go
//! through the run record (`JitRun::in_regs`, `JitRun::ret_regs`). Code that clang
//! compiled never reads those registers across a call (the kernel's verifier forbids it),
//! so that memory traffic is usually dead. This module finds, with a liveness analysis
//! over the whole program, which of them can be read:
//!
//! - `inputs` of a function: the registers among `r0`, `r6`–`r9` whose value at its entry
//!   it may read before writing them. Its callers store those; it loads them.
//! - `outputs` of a function: the registers among `r1`–`r5` that some caller may read
//!   after calling it before writing them. It stores those at `exit`; its callers load
//!   them.
//!
//! Both are fixed points over the call graph (a call uses what the callee may read
//! before writing it, arguments included, and defines `r0`–`r5`; an `exit` uses `r0`
//! and the function's outputs). The runtime enters pc 0 (a run, a tail call) with `r0`, `r6`–`r9` zero in
//! `in_regs`, so pc 0's inputs are exact too; it reads no outputs of pc 0. When the
//! program can make a function's address (`lddw src=4`: callbacks, `callx`) or call one
//! (`callx`), every function takes everything, and helper calls hand `r0` and `r6`–`r9`
//! over (the first callback sees them) and take `r1`–`r5` back (the last callback's);
//! otherwise a helper leaves `r1`–`r5` zero, as the interpreter does.
//!
//! One divergence follows (documented in `docs/jit.md`): after a tail call made inside a
//! BPF subprogram, the subprogram's caller finds `r1`–`r5` zero, where the interpreter
//! leaves the tail-called program's last values there. Reading them is reading
//! registers a call scratched, which the kernel's verifier rejects.

use std::collections::BTreeMap;

use bpfvm_isa::{AluOp, AtomicOp, CallKind, Insn, LdDwKind, Program, Reg, Source};

/// A set of registers `r0`–`r9`, bit `i` for `ri`.
pub(crate) type RegSet = u16;

/// `r0`, `r6`–`r9`: what a callee may see of its caller.
pub(crate) const CALLEE_VISIBLE: RegSet = 0b11_1100_0001;
/// `r1`–`r5`: what a caller may see of its callee.
pub(crate) const ARGS: RegSet = 0b11_1110;
/// `r0`–`r5`: what a call defines.
const CALL_DEFS: RegSet = 0b11_1111;

pub(crate) fn bit(r: Reg) -> RegSet {
    match r.index() {
        i @ 0..=9 => 1 << i,
        _ => 0, // r10, the frame pointer: not a variable
    }
}

/// The registers crossing calls through the run record, per function.
#[derive(Debug, Clone)]
pub(crate) struct CallRegs {
    /// Entry pc → (the registers the function may read before writing them, its
    /// outputs).
    functions: BTreeMap<usize, (RegSet, RegSet)>,
    /// Whether callbacks (or `callx`) are possible: helper calls then hand over and take
    /// back the registers as a local call with everything live.
    pub callbacks: bool,
    /// Whether any instruction of the program names `r10`. When none does, no code of the
    /// program can reach the stack but through the runtime (an address it makes up), so
    /// frame 0 need not be zeroed before the runtime builds the run's regions.
    pub names_fp: bool,
}

impl CallRegs {
    /// The analysis for `program`, whose functions start at `entries` (pc 0 first).
    pub(crate) fn new(program: &Program, entries: &[usize]) -> CallRegs {
        let callbacks = program.iter().any(|(_, insn)| {
            matches!(
                insn,
                Insn::Callx { .. }
                    | Insn::LdDw {
                        kind: LdDwKind::Func,
                        ..
                    }
            )
        });
        let names_fp = program.iter().any(|(_, insn)| names_fp(insn));
        let full = (CALLEE_VISIBLE | ARGS, ARGS);
        let mut functions: BTreeMap<usize, (RegSet, RegSet)> = entries
            .iter()
            .map(|&pc| (pc, if callbacks { full } else { (0, 0) }))
            .collect();
        if callbacks {
            return CallRegs {
                functions,
                callbacks,
                names_fp,
            };
        }
        let bodies: Vec<(usize, Body)> = entries
            .iter()
            .map(|&pc| (pc, Body::new(program, pc)))
            .collect();
        // Inputs and outputs only grow: iterate until nothing changes.
        loop {
            let mut changed = false;
            let mut outputs: BTreeMap<usize, RegSet> = BTreeMap::new();
            for (entry, body) in &bodies {
                let live = body.live_in(program, &functions);
                let reads = live.get(entry).copied().unwrap_or(0);
                let slot = functions.entry(*entry).or_insert((0, 0));
                if slot.0 | reads != slot.0 {
                    slot.0 |= reads;
                    changed = true;
                }
                for (&pc, &callee) in &body.calls {
                    *outputs.entry(callee).or_default() |= body.live_after(pc, &live) & ARGS;
                }
            }
            for (callee, out) in outputs {
                let slot = functions.entry(callee).or_insert((0, 0));
                if slot.1 | out != slot.1 {
                    slot.1 |= out;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        CallRegs {
            functions,
            callbacks,
            names_fp,
        }
    }

    /// The inputs of the function at `entry` (everything for an unknown entry).
    pub(crate) fn inputs(&self, entry: usize) -> RegSet {
        self.functions
            .get(&entry)
            .map_or(CALLEE_VISIBLE, |f| f.0 & CALLEE_VISIBLE)
    }

    /// Whether only direct calls enter the function at `entry`, so that it may take the
    /// JIT's internal convention (see `translate`): every function but pc 0, unless
    /// callbacks are possible.
    pub(crate) fn internal(&self, entry: usize) -> bool {
        !self.callbacks && entry != 0 && self.functions.contains_key(&entry)
    }

    /// The argument registers (`r1`–`r5`) the function at `entry` may read before writing
    /// them: the internal convention passes only those.
    pub(crate) fn arguments(&self, entry: usize) -> RegSet {
        self.functions.get(&entry).map_or(ARGS, |f| f.0 & ARGS)
    }

    /// The outputs of the function at `entry` (everything for an unknown entry).
    pub(crate) fn outputs(&self, entry: usize) -> RegSet {
        self.functions.get(&entry).map_or(ARGS, |f| f.1)
    }
}

/// One function's instructions: the pcs reachable from its entry, their successors, and
/// its direct local calls (pc → callee entry).
struct Body {
    entry: usize,
    succs: BTreeMap<usize, Vec<usize>>,
    calls: BTreeMap<usize, usize>,
}

impl Body {
    fn new(program: &Program, entry: usize) -> Body {
        let mut succs = BTreeMap::new();
        let mut calls = BTreeMap::new();
        let mut work = vec![entry];
        while let Some(pc) = work.pop() {
            if succs.contains_key(&pc) {
                continue;
            }
            let Some(insn) = program.get(pc) else {
                continue; // past the end: a fault, which reads nothing
            };
            let next = pc + insn.slots();
            let target = |off: i64| usize::try_from(pc as i64 + 1 + off).ok();
            let s: Vec<usize> = match insn {
                Insn::Exit => vec![],
                Insn::Ja { off, .. } => target(i64::from(off)).into_iter().collect(),
                Insn::Jmp { off, .. } | Insn::MayGoto { off } => {
                    let mut v: Vec<usize> = target(i64::from(off)).into_iter().collect();
                    v.push(next);
                    v
                }
                Insn::Call {
                    kind: CallKind::Local,
                    imm,
                } => {
                    if let Some(t) = target(i64::from(imm)) {
                        calls.insert(pc, t);
                    }
                    vec![next]
                }
                _ => vec![next],
            };
            work.extend(s.iter().copied());
            succs.insert(pc, s);
        }
        Body {
            entry,
            succs,
            calls,
        }
    }

    /// Live registers before each instruction, given every function's inputs and
    /// outputs so far.
    fn live_in(
        &self,
        program: &Program,
        functions: &BTreeMap<usize, (RegSet, RegSet)>,
    ) -> BTreeMap<usize, RegSet> {
        let mut preds: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (&pc, s) in &self.succs {
            for &t in s {
                preds.entry(t).or_default().push(pc);
            }
        }
        let outputs = functions.get(&self.entry).map_or(ARGS, |f| f.1);
        let mut live: BTreeMap<usize, RegSet> = self.succs.keys().map(|&pc| (pc, 0)).collect();
        let mut work: Vec<usize> = self.succs.keys().copied().collect();
        while let Some(pc) = work.pop() {
            let Some(insn) = program.get(pc) else {
                continue;
            };
            let after = self.live_after(pc, &live);
            let (uses, defs) = uses_defs(pc, insn, |callee| {
                functions
                    .get(&callee)
                    .map_or(CALLEE_VISIBLE | ARGS, |f| f.0)
            });
            let uses = if matches!(insn, Insn::Exit) {
                uses | outputs
            } else {
                uses
            };
            let before = (after & !defs) | uses;
            if live.get(&pc) != Some(&before) {
                live.insert(pc, before);
                work.extend(preds.get(&pc).into_iter().flatten().copied());
            }
        }
        live
    }

    /// Live registers after the instruction at `pc` (for a call: once it returns).
    fn live_after(&self, pc: usize, live: &BTreeMap<usize, RegSet>) -> RegSet {
        self.succs
            .get(&pc)
            .into_iter()
            .flatten()
            .map(|t| live.get(t).copied().unwrap_or(0))
            .fold(0, |a, b| a | b)
    }
}

/// Whether `insn` names `r10` (reads it: no validated program writes it).
pub(crate) fn names_fp(insn: Insn) -> bool {
    let fp = |r: Reg| r == Reg::R10;
    let fp_src = |s: Source| s == Source::Reg(Reg::R10);
    match insn {
        Insn::Alu { dst, src, .. } | Insn::Store { dst, src, .. } | Insn::Jmp { dst, src, .. } => {
            fp(dst) || fp_src(src)
        }
        Insn::Neg { dst, .. } | Insn::Endian { dst, .. } | Insn::LdDw { dst, .. } => fp(dst),
        Insn::Load { dst, src, .. }
        | Insn::Atomic { dst, src, .. }
        | Insn::LoadAcquire { dst, src, .. }
        | Insn::StoreRelease { dst, src, .. } => fp(dst) || fp(src),
        Insn::LdInd { src, .. } => fp(src),
        Insn::Callx { reg } => fp(reg),
        Insn::LdAbs { .. }
        | Insn::Ja { .. }
        | Insn::Call { .. }
        | Insn::Exit
        | Insn::MayGoto { .. } => false,
    }
}

/// The registers `insn` at `pc` reads and writes (`r0`–`r9`); `reads` gives the
/// registers a local callee may read before writing them, by its entry pc (the
/// arguments it ignores need not be exact, nor the caller's registers it does not see).
pub(crate) fn uses_defs(
    pc: usize,
    insn: Insn,
    reads: impl Fn(usize) -> RegSet,
) -> (RegSet, RegSet) {
    let src_bit = |s: Source| match s {
        Source::Reg(r) => bit(r),
        Source::Imm(_) => 0,
    };
    match insn {
        Insn::Alu { op, dst, src, .. } => {
            let reads_dst = !matches!(
                op,
                AluOp::Mov | AluOp::MovSx8 | AluOp::MovSx16 | AluOp::MovSx32
            );
            let d = bit(dst);
            (src_bit(src) | if reads_dst { d } else { 0 }, d)
        }
        Insn::Neg { dst, .. } | Insn::Endian { dst, .. } => (bit(dst), bit(dst)),
        Insn::LdDw { dst, .. } => (0, bit(dst)),
        Insn::Load { dst, src, .. } | Insn::LoadAcquire { dst, src, .. } => (bit(src), bit(dst)),
        Insn::Store { dst, src, .. } => (bit(dst) | src_bit(src), 0),
        Insn::StoreRelease { dst, src, .. } => (bit(dst) | bit(src), 0),
        Insn::Atomic { op, dst, src, .. } => {
            let mut uses = bit(dst) | bit(src);
            let mut defs = 0;
            if op == AtomicOp::CmpXchg {
                uses |= bit(Reg::R0);
                defs |= bit(Reg::R0);
            } else if op.fetches() {
                defs |= bit(src);
            }
            (uses, defs)
        }
        // The packet comes from the run's context (the kernel's implicit `r6`).
        Insn::LdAbs { .. } => (bit(Reg::R6), bit(Reg::R0)),
        Insn::LdInd { src, .. } => (bit(src) | bit(Reg::R6), bit(Reg::R0)),
        Insn::Ja { .. } | Insn::MayGoto { .. } => (0, 0),
        Insn::Jmp { dst, src, .. } => (bit(dst) | src_bit(src), 0),
        Insn::Call {
            kind: CallKind::Local,
            imm,
        } => {
            let callee = usize::try_from(pc as i64 + 1 + i64::from(imm)).unwrap_or(usize::MAX);
            (reads(callee), CALL_DEFS)
        }
        // Helpers and kfuncs read at most `r1`–`r5` (no callbacks here: see `CallRegs`).
        Insn::Call { .. } => (ARGS, CALL_DEFS),
        Insn::Callx { reg } => (bit(reg) | ARGS | CALLEE_VISIBLE, CALL_DEFS),
        Insn::Exit => (bit(Reg::R0), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfvm_isa::asm::{Dialect, assemble};

    fn regs(list: &[u8]) -> RegSet {
        list.iter().fold(0, |s, &r| s | 1 << r)
    }

    fn analyse(src: &str) -> (CallRegs, Vec<usize>) {
        let slots = assemble(src, Dialect::Llvm).expect("test program assembles");
        let program = Program::from_slots(slots).expect("test program decodes");
        let mut entries = vec![0];
        for (pc, insn) in program.iter() {
            if let Insn::Call {
                kind: CallKind::Local,
                imm,
            } = insn
            {
                entries.push((pc as i64 + 1 + i64::from(imm)) as usize);
            }
        }
        entries.sort_unstable();
        entries.dedup();
        (CallRegs::new(&program, &entries), entries)
    }

    #[test]
    fn compiled_code_passes_nothing_through_memory() {
        // The benchmark's call pattern: f reads only its argument r1 and calls g; no
        // caller reads r1-r5 after a call, no callee reads r0 or r6-r9.
        let (c, entries) = analyse(
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
             exit",
        );
        assert_eq!(entries, vec![0, 9, 13]);
        for &f in &entries {
            assert_eq!(c.inputs(f), 0, "inputs of {f}");
            assert_eq!(c.outputs(f), 0, "outputs of {f}");
        }
        assert_eq!(c.arguments(9), regs(&[1]));
        assert_eq!(c.arguments(13), regs(&[1]));
        assert!(c.internal(9) && c.internal(13) && !c.internal(0));
    }

    #[test]
    fn registers_read_across_a_call_are_found() {
        // The caller reads r2 after the call and r6 is read by the callee before it
        // writes it; g leaves r2 untouched, so g's caller's r2 flows through it: r2 is
        // f's output, and so g's, and g reads it (its argument). g never writes r0
        // either: it returns f's r0, an input of g.
        let (c, _) = analyse(
            "r6 = 5
             r2 = 7
             call f
             r0 += r2
             exit
             f: r0 = r6
             call g
             exit
             g: r3 = 1
             exit",
        );
        // f = pc 5, g = pc 8.
        assert_eq!(c.inputs(5), regs(&[6]));
        assert_eq!(c.outputs(5), regs(&[2]));
        assert_eq!(c.outputs(8), regs(&[2]));
        assert_eq!(c.arguments(8), regs(&[2]));
        assert_eq!(c.inputs(8), regs(&[0]));
        // pc 0 is entered with zeros by the runtime: nothing it reads is missing.
        assert_eq!(c.inputs(0), 0);
    }

    #[test]
    fn a_register_read_in_a_loop_after_a_call_is_an_output() {
        // r3 is read at the loop's head, after the call of the previous iteration.
        let (c, _) = analyse(
            "r3 = 0
             r4 = 3
             l: r0 = r3
             call f
             r4 += -1
             if r4 != 0 goto l
             exit
             f: r3 += 1
             exit",
        );
        // r4 is read after the call too: in the shared register file it is f's r4, which
        // f does not write, so the caller's r4 goes in and comes back out.
        assert_eq!(c.outputs(7), regs(&[3, 4]));
        assert_eq!(c.arguments(7), regs(&[3, 4]));
    }

    #[test]
    fn function_addresses_make_every_function_take_everything() {
        let (c, _) = analyse(
            "r1 = subprog[f]
             call f
             exit
             f: r0 = 0
             exit",
        );
        assert!(c.callbacks);
        assert_eq!(c.inputs(4), CALLEE_VISIBLE);
        assert_eq!(c.outputs(4), ARGS);
        assert!(!c.internal(4));
    }

    #[test]
    fn a_program_names_r10_through_any_operand_of_any_function() {
        // Without r10 anywhere (r1 is the only pointer), and then with r10 in one place
        // each: as an ALU source, a jump operand, a load's base, a store's base, an
        // atomic's base, and in a callee only.
        let body = "r2 = *(u8 *)(r1 + 0)
                    call f
                    exit
                    f: r0 = 1
                    exit";
        assert!(!analyse(body).0.names_fp);
        for with_fp in [
            "r3 = r10",
            "if r10 > r1 goto +0",
            "r3 = *(u64 *)(r10 - 8)",
            "*(u64 *)(r10 - 8) = r1",
            "lock *(u64 *)(r10 - 8) += r1",
        ] {
            let src = format!("{with_fp}\n{body}");
            assert!(analyse(&src).0.names_fp, "{with_fp}");
        }
        let in_callee = body.replace("f: r0 = 1", "f: r0 = r10");
        assert!(analyse(&in_callee).0.names_fp);
    }
}
