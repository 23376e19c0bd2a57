//! Step-by-step tracing: what each executed instruction changed.

use bpfvm_isa::{Insn, Reg};

/// One executed instruction, reported after it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceStep {
    /// Its pc.
    pub pc: usize,
    /// The instruction.
    pub insn: Insn,
    /// The registers it changed, with their new values.
    pub changed: ChangedRegs,
    /// The call depth it ran at (0 for the outermost function).
    pub frame: usize,
}

/// The registers one instruction changed, with their new values, in register order.
/// A fixed array: building one allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ChangedRegs {
    regs: [(Reg, u64); Reg::COUNT],
    len: u8,
}

impl ChangedRegs {
    /// Compares two register files (`r0`–`r10`).
    pub(crate) fn diff(before: &[u64], after: &[u64]) -> ChangedRegs {
        let mut changed = ChangedRegs {
            regs: [(Reg::R0, 0); Reg::COUNT],
            len: 0,
        };
        for ((reg, b), a) in Reg::all().zip(before).zip(after) {
            if b != a
                && let Some(slot) = changed.regs.get_mut(usize::from(changed.len))
            {
                *slot = (reg, *a);
                changed.len += 1;
            }
        }
        changed
    }

    /// The changes as a slice.
    pub fn as_slice(&self) -> &[(Reg, u64)] {
        &self.regs[..usize::from(self.len).min(Reg::COUNT)]
    }

    /// The changes.
    pub fn iter(&self) -> impl Iterator<Item = (Reg, u64)> + '_ {
        self.as_slice().iter().copied()
    }

    /// The new value of `reg`, if it changed.
    pub fn get(&self, reg: Reg) -> Option<u64> {
        self.iter().find(|(r, _)| *r == reg).map(|(_, v)| v)
    }

    /// Number of changed registers.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for ChangedRegs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("{")?;
        for (i, (r, v)) in self.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{r}: {v:#x}")?;
        }
        f.write_str("}")
    }
}

/// Receives the steps of a run. The dispatch loop is compiled once per tracer type, so
/// [`NoTrace`] costs nothing.
pub(crate) trait Tracer {
    /// Whether the loop should snapshot registers and report steps at all.
    const ENABLED: bool;
    /// Called after each executed instruction.
    fn step(&mut self, pc: usize, frame: usize, before: &[u64], after: &[u64]);
}

/// No tracing.
pub(crate) struct NoTrace;

impl Tracer for NoTrace {
    const ENABLED: bool = false;
    #[inline(always)]
    fn step(&mut self, _: usize, _: usize, _: &[u64], _: &[u64]) {}
}

/// Tracing into a callback.
pub(crate) struct FnTrace<'p, 'f> {
    pub(crate) program: &'p bpfvm_isa::Program,
    pub(crate) on_step: &'f mut dyn FnMut(&TraceStep),
}

impl Tracer for FnTrace<'_, '_> {
    const ENABLED: bool = true;
    fn step(&mut self, pc: usize, frame: usize, before: &[u64], after: &[u64]) {
        if let Some(insn) = self.program.get(pc) {
            (self.on_step)(&TraceStep {
                pc,
                insn,
                changed: ChangedRegs::diff(before, after),
                frame,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_lists_changes_in_register_order() {
        let before = [0u64; 16];
        let mut after = before;
        after[0] = 5;
        after[10] = 9;
        after[12] = 1; // beyond r10: ignored
        let c = ChangedRegs::diff(&before, &after);
        assert_eq!(c.as_slice(), &[(Reg::R0, 5), (Reg::R10, 9)]);
        assert_eq!(c.get(Reg::R10), Some(9));
        assert_eq!(c.get(Reg::R1), None);
        assert_eq!(c.len(), 2);
        assert!(ChangedRegs::diff(&before, &before).is_empty());
        assert_eq!(format!("{c:?}"), "{r0: 0x5, r10: 0x9}");
    }
}
