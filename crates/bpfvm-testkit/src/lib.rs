//! Test support shared by the engines' tests: programs drawn from the whole opcode table
//! with random operands, then repaired until the validator and the loader accept them
//! (`bpfvm-interp`'s robustness test, `bpfvm-jit`'s interpreter/JIT differential), and a
//! thread that cancels a run (their cancellation tests).
//!
//! What it owns: the raw generator ([`raw_slot`], [`raw_build`]), the repair loop
//! ([`repair_and_load`]) and [`cancel_after`]. Invariants: every program it returns
//! loaded as [`ProgramType::Conformance`] (so it is a program the engines must run
//! without a panic: a value or a typed fault), and it ends in `exit`; its loops are
//! unbounded, so tests run them with a budget. A development crate only
//! (`publish = false`): nothing in the runtime depends on it.

use bpfvm_isa::spec::OPCODES;
use bpfvm_isa::{Program, ProgramErrorKind, RawInsn};
use std::thread::JoinHandle;
use std::time::Duration;

use bpfvm_runtime::{CancelToken, LoadErrorKind, LoadedProgram, ProgramType};
use proptest::prelude::*;

/// One raw instruction's choices: the row of [`OPCODES`], `dst`, `src`, `off`, `imm`, and
/// the second slot's `imm` (used by `lddw` only).
pub type RawPart = (usize, u8, u8, i16, i32, i32);

/// Immediates that hit the corners: zero, ±1, shift widths, extremes, small jump
/// targets, and anything.
pub fn raw_imm() -> impl Strategy<Value = i32> {
    prop_oneof![
        -4i32..8,
        Just(16),
        Just(32),
        Just(64),
        Just(i32::MIN),
        Just(i32::MAX),
        Just(5),
        any::<i32>(),
    ]
}

/// One instruction drawn from the opcode table, with operands (registers up to `r10`).
pub fn raw_slot() -> impl Strategy<Value = RawPart> {
    (
        0..OPCODES.len(),
        0u8..11,
        0u8..11,
        prop_oneof![-4i16..6, any::<i16>()],
        raw_imm(),
        raw_imm(),
    )
}

/// The slots of `parts` (two for `lddw`), then `exit`.
pub fn raw_build(parts: &[RawPart]) -> Vec<RawInsn> {
    let mut slots = Vec::new();
    for &(row, dst, src, off, imm, next_imm) in parts {
        let Some(info) = OPCODES.get(row) else {
            continue;
        };
        slots.push(info.example(dst, src, off, imm));
        if info.opcode == 0x18 {
            slots.push(RawInsn::new(0, 0, 0, 0, next_imm));
        }
    }
    slots.push(RawInsn::new(0x95, 0, 0, 0, 0));
    slots
}

/// Loads the slots, fixing whatever instruction the validator or the loader names until
/// the program loads: a write to `r10` gets another register, a jump or call that misses
/// gets offset 0, map loads and kfunc calls become plain ones, a code address points to
/// the instruction after its `lddw`. Returns the repaired slots with the program, or
/// `None` when an error has no repair (or 200 rounds did not suffice).
pub fn repair_and_load(mut slots: Vec<RawInsn>) -> Option<(Vec<RawInsn>, LoadedProgram)> {
    for _ in 0..200 {
        let program = match Program::from_slots(slots.clone()) {
            Ok(p) => p,
            Err(e) => {
                let raw = slots.get_mut(e.pc)?;
                match e.kind {
                    ProgramErrorKind::FramePointerWrite => {
                        if raw.dst == 10 {
                            raw.dst = 0;
                        }
                        if raw.src == 10 {
                            raw.src = 0;
                        }
                    }
                    ProgramErrorKind::JumpOutOfRange { .. }
                    | ProgramErrorKind::JumpIntoLddw { .. } => {
                        raw.off = 0;
                        raw.imm = 0;
                    }
                    _ => return None,
                }
                continue;
            }
        };
        match LoadedProgram::new(program, ProgramType::Conformance) {
            Ok(p) => return Some((slots, p)),
            Err(e) => {
                let raw = slots.get_mut(e.pc)?;
                match e.kind {
                    LoadErrorKind::BadCodeAddress { .. } => raw.imm = 1,
                    _ => raw.src = 0,
                }
            }
        }
    }
    None
}

/// Cancels `token` from another thread after `delay`: a run started meanwhile must stop
/// with a cancellation fault. Join the handle after the run.
pub fn cancel_after(token: &CancelToken, delay: Duration) -> JoinHandle<()> {
    let token = token.clone();
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        token.cancel();
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-made cases of each repair: the loader's verdict on the result is the truth.
    #[test]
    fn repairs_make_loadable_programs() {
        // `r10 = 1` (a frame-pointer write) becomes `r0 = 1`.
        let (slots, _) = repair_and_load(vec![
            RawInsn::new(0xb7, 10, 0, 0, 1),
            RawInsn::new(0x95, 0, 0, 0, 0),
        ])
        .expect("repaired");
        assert_eq!(slots[0], RawInsn::new(0xb7, 0, 0, 0, 1));
        // `goto +100` misses: it becomes `goto +0`.
        let (slots, _) = repair_and_load(vec![
            RawInsn::new(0x05, 0, 0, 100, 0),
            RawInsn::new(0x95, 0, 0, 0, 0),
        ])
        .expect("repaired");
        assert_eq!(slots[0], RawInsn::new(0x05, 0, 0, 0, 0));
        // A map-fd `lddw` (no maps here) becomes a plain one.
        let (slots, prog) = repair_and_load(vec![
            RawInsn::new(0x18, 1, 1, 0, 7),
            RawInsn::new(0, 0, 0, 0, 0),
            RawInsn::new(0x95, 0, 0, 0, 0),
        ])
        .expect("repaired");
        assert_eq!(slots[0].src, 0);
        assert_eq!(prog.program().len(), 3);
        // An opcode the validator does not know has no repair.
        assert!(repair_and_load(vec![RawInsn::new(0xff, 0, 0, 0, 0)]).is_none());
    }

    #[test]
    fn raw_build_ends_in_exit_and_gives_lddw_two_slots() {
        let lddw = OPCODES
            .iter()
            .position(|i| i.opcode == 0x18)
            .expect("lddw row");
        let slots = raw_build(&[(lddw, 1, 0, 0, 1, 2), (usize::MAX, 0, 0, 0, 0, 0)]);
        assert_eq!(
            slots.len(),
            3,
            "lddw's two slots and exit; the unknown row is skipped"
        );
        assert_eq!(slots[1], RawInsn::new(0, 0, 0, 0, 2));
        assert_eq!(slots[2], RawInsn::new(0x95, 0, 0, 0, 0));
    }
}
