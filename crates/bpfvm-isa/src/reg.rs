//! Registers.

use std::fmt;

/// A BPF register, `r0` to `r10`. The invariant `index <= 10` holds for every value.
///
/// `r0` holds return values, `r1`–`r5` arguments, `r6`–`r9` are callee-saved
/// and `r10` is the read-only frame pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reg(u8);

impl Reg {
    /// Return value.
    pub const R0: Reg = Reg(0);
    /// First argument.
    pub const R1: Reg = Reg(1);
    /// Second argument.
    pub const R2: Reg = Reg(2);
    /// Third argument.
    pub const R3: Reg = Reg(3);
    /// Fourth argument.
    pub const R4: Reg = Reg(4);
    /// Fifth argument.
    pub const R5: Reg = Reg(5);
    /// Callee-saved.
    pub const R6: Reg = Reg(6);
    /// Callee-saved.
    pub const R7: Reg = Reg(7);
    /// Callee-saved.
    pub const R8: Reg = Reg(8);
    /// Callee-saved.
    pub const R9: Reg = Reg(9);
    /// Read-only frame pointer.
    pub const R10: Reg = Reg(10);
    /// The frame pointer, `r10`.
    pub const FP: Reg = Reg::R10;
    /// Number of registers.
    pub const COUNT: usize = 11;

    /// The register with this number, if it exists (0..=10).
    pub const fn new(index: u8) -> Option<Reg> {
        if index <= 10 { Some(Reg(index)) } else { None }
    }

    /// The register number, always 0..=10.
    pub const fn index(self) -> u8 {
        self.0
    }

    /// Every register, `r0` first.
    pub fn all() -> impl Iterator<Item = Reg> {
        (0..=10).map(Reg)
    }
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}
