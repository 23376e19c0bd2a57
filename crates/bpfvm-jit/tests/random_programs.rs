//! Differential testing: random valid programs on random memory run on the interpreter
//! and on the JIT, which must agree on `r0` or the fault (kind, pc, instruction) and on
//! the memory left behind.
//!
//! Two generators:
//! - [`program`]: structured programs that mostly terminate within the budget: bounded
//!   loops (a counter in `r9`), forward jumps (JMP and JMP32, register and immediate),
//!   local functions (calls only to later functions, rarely to itself, which ends in a
//!   call-depth fault; one in four made only of what the JIT makes inline), helper 5
//!   (the only helper of the conformance program type) and unknown helpers, `callx` of
//!   code addresses and of numbers, every ALU operation in 32 and 64 bits with
//!   div/mod/shift corner values, byte swaps, sign-extending moves and loads, atomics
//!   (aligned and not), load-acquire/store-release, legacy packet loads, map lookups,
//!   updates and deletes on an array and on a hash map (in the socket-filter property),
//!   and accesses that hit and miss memory
//!   (`r6` = the memory, plus small offsets), the stack (`r10` - offsets, also above the
//!   frame and below the last one) and wild addresses.
//! - `bpfvm_testkit`'s raw generator: instructions drawn from the whole opcode table with
//!   random operands (as in `bpfvm-interp/tests/random_programs.rs`), repaired until the
//!   loader accepts them; loops there are unbounded, so these often end on the budget.
//!
//! Programs see real host addresses, and each engine has its own stack; both engines
//! run over the same memory buffer, so only a frame address (`r10`) can differ. The
//! structured generator keeps pointers out of data: `r6` (the memory, `r1` at entry) and
//! `r10` are only ever the base of an access (`r6` also gets small constants added); the
//! data registers are `r0`–`r5` and `r7`–`r9`. The raw generator makes every read of
//! `r10` as a value read `r0` instead.

mod common;

use bpfvm_isa::disasm::{Syntax, disassemble};
use bpfvm_isa::{Program, RawInsn};
use bpfvm_runtime::{FaultKind, LoadedProgram, ProgramType, RunOptions};
use bpfvm_testkit::{raw_build, raw_slot, repair_and_load};
use proptest::prelude::*;

use std::sync::Arc;

use bpfvm_runtime::maps::{Map, MapConfig, MapSpec, MapType, RunGuard, create_map};
use bpfvm_runtime::{FixedEnvironment, HelperRegistry, Task};
use common::{Ended, Observed, difference, run_both, run_both_with};
use std::sync::atomic::{AtomicU8, Ordering};

/// Budget of every run: the structured programs need far less (loops of at most 6
/// rounds of at most 8 operations, at most 3 functions).
const BUDGET: u64 = 20_000;

/// Data registers (never a pointer): all but `r6` (the memory) and `r10` (the frame).
const DATA: [u8; 9] = [0, 1, 2, 3, 4, 5, 7, 8, 9];

/// The most functions a program has (the main one included).
const MAX_FUNCS: usize = 3;

#[derive(Debug, Clone, Copy)]
enum Operand {
    Reg(u8),
    Imm(i32),
}

#[derive(Debug, Clone, Copy)]
enum MapAccess {
    Load,
    Store,
    Atomic,
}

#[derive(Debug, Clone, Copy)]
enum Base {
    /// `r6`: the memory (a pointer), or data if the program overwrote it.
    Mem,
    /// `r10`.
    Stack,
    /// A data register: a wild address.
    Wild(u8),
}

impl Base {
    fn reg(self) -> u8 {
        match self {
            Base::Mem => 6,
            Base::Stack => 10,
            Base::Wild(r) => r,
        }
    }
}

/// One generated operation (one or a few instructions).
#[derive(Debug, Clone)]
enum Op {
    /// `dst op= src` for add, sub, mul, div, or, and, lsh, rsh, mod, xor, mov, arsh.
    Alu {
        wide: bool,
        op: u8,
        dst: u8,
        src: Operand,
    },
    /// Signed div (`modulo` false) or mod.
    SDiv {
        wide: bool,
        modulo: bool,
        dst: u8,
        src: Operand,
    },
    Neg {
        wide: bool,
        dst: u8,
    },
    MovSx {
        wide: bool,
        bits: i16,
        dst: u8,
        src: u8,
    },
    /// Opcode 0xd4 (to le), 0xdc (to be) or 0xd7 (bswap) of 16/32/64 bits.
    End {
        opcode: u8,
        bits: i32,
        dst: u8,
    },
    LdDw {
        dst: u8,
        value: u64,
    },
    /// `lddw dst, <code address of function func>` (src 4).
    CodeAddr {
        dst: u8,
        func: usize,
    },
    /// Add a small constant to `r6` (keeps it a pointer into or near the memory).
    MovePointer {
        by: i32,
    },
    Load {
        size: u8,
        sx: bool,
        dst: u8,
        base: Base,
        off: i16,
    },
    Store {
        size: u8,
        base: Base,
        off: i16,
        src: Operand,
    },
    /// `imm` is the atomic operation (add/or/and/xor, with fetch, xchg, cmpxchg).
    Atomic {
        wide: bool,
        imm: i32,
        base: Base,
        off: i16,
        src: u8,
    },
    LoadAcquire {
        size: u8,
        dst: u8,
        base: Base,
        off: i16,
    },
    StoreRelease {
        size: u8,
        base: Base,
        off: i16,
        src: u8,
    },
    /// Legacy packet load: `abs` (`LD_ABS imm`) or `LD_IND src + imm`.
    LdPacket {
        abs: bool,
        size: u8,
        src: u8,
        imm: i32,
    },
    /// Conditional forward jump over the next `skip` operations of the block.
    Jump {
        jmp32: bool,
        op: u8,
        dst: u8,
        src: Operand,
        skip: usize,
    },
    /// Unconditional forward jump (`gotol` when `long`).
    Ja {
        long: bool,
        skip: usize,
    },
    /// Call the function `func` (resolved to a later one, or this one when `recurse`).
    Call {
        func: usize,
        recurse: bool,
    },
    Helper {
        id: i32,
    },
    /// `callx reg`; with `code`, `reg` first gets a later function's code address.
    Callx {
        reg: u8,
        code: Option<usize>,
    },
    Exit,
    /// Look up `key` in the array map (4 entries of 16 bytes; key 4 misses) and, if
    /// found, access the value at `off` (a load into `dst`, a store or an atomic of
    /// `src`), then clear `r0` (the value's address). Only in programs with the map.
    MapValue {
        key: i32,
        access: MapAccess,
        off: i16,
        size: u8,
        dst: u8,
        src: Operand,
        imm: i32,
    },
    /// Update `key` of the array map (16 bytes of `src`'s value twice, flags `flags`:
    /// 0–2 valid, 3 and 4 not) or delete it (always `-EINVAL` for an array); key 4 and 5
    /// are past the end. The helper's errno stays in `r0`. Only in programs with the map.
    MapWrite {
        key: i32,
        delete: bool,
        flags: i32,
        src: u8,
    },
    /// The next `len` operations run `rounds` times (counter in `r9`).
    Loop {
        rounds: i32,
        narrow: bool,
        jmp32: bool,
        len: usize,
    },
}

fn data_reg() -> impl Strategy<Value = u8> {
    prop::sample::select(&DATA[..])
}

/// Immediates that hit the corners: zero, ±1, shift widths, extremes.
fn imm() -> impl Strategy<Value = i32> {
    prop_oneof![
        3 => -3i32..8,
        1 => prop::sample::select(&[16, 31, 32, 33, 63, 64, 0xff, 0xffff, i32::MIN, i32::MAX][..]),
        2 => any::<i32>(),
    ]
}

/// 64-bit constants that hit the corners.
fn wide_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        prop::sample::select(
            &[
                0u64,
                1,
                u64::MAX,
                i64::MIN as u64,
                i64::MAX as u64,
                0x8000_0000,
                0xffff_ffff,
                0x1_0000_0000,
                0xffff_ffff_8000_0000,
                0x0123_4567_89ab_cdef,
            ][..]
        ),
        any::<u64>(),
    ]
}

fn operand() -> impl Strategy<Value = Operand> {
    prop_oneof![
        data_reg().prop_map(Operand::Reg),
        imm().prop_map(Operand::Imm)
    ]
}

fn size() -> impl Strategy<Value = u8> {
    prop::sample::select(&[1u8, 2, 4, 8][..])
}

/// A base register and an offset: inside and around the memory, the frame, or wild.
fn address() -> impl Strategy<Value = (Base, i16)> {
    prop_oneof![
        4 => (0i16..8).prop_map(|o| (Base::Mem, o)),
        2 => (-9i16..75).prop_map(|o| (Base::Mem, o)),
        6 => prop_oneof![
            6 => (1i16..=64).prop_map(|k| -8 * k),
            4 => -512i16..0,
            1 => -530i16..-500,
            1 => 0i16..24,
        ]
        .prop_map(|o| (Base::Stack, o)),
        1 => (data_reg(), -4i16..5).prop_map(|(r, o)| (Base::Wild(r), o)),
    ]
}

fn atomic_imm() -> impl Strategy<Value = i32> {
    prop::sample::select(&[0x00, 0x01, 0x40, 0x41, 0x50, 0x51, 0xa0, 0xa1, 0xe1, 0xf1][..])
}

const ALU_OPS: [u8; 12] = [
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x90, 0xa0, 0xb0, 0xc0,
];
const JMP_OPS: [u8; 11] = [
    0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0,
];

fn op() -> impl Strategy<Value = Op> {
    let wide = any::<bool>();
    prop_oneof![
        12 => (wide, prop::sample::select(&ALU_OPS[..]), data_reg(), operand())
            .prop_map(|(wide, op, dst, src)| Op::Alu { wide, op, dst, src }),
        3 => (wide, any::<bool>(), data_reg(), operand())
            .prop_map(|(wide, modulo, dst, src)| Op::SDiv { wide, modulo, dst, src }),
        1 => (wide, data_reg()).prop_map(|(wide, dst)| Op::Neg { wide, dst }),
        2 => (wide, prop::sample::select(&[8i16, 16, 32][..]), data_reg(), data_reg())
            .prop_map(|(wide, bits, dst, src)| Op::MovSx {
                wide,
                bits: if wide { bits } else { bits.min(16) },
                dst,
                src
            }),
        2 => (
            prop::sample::select(&[0xd4u8, 0xdc, 0xd7][..]),
            prop::sample::select(&[16, 32, 64][..]),
            data_reg()
        )
            .prop_map(|(opcode, bits, dst)| Op::End { opcode, bits, dst }),
        3 => (data_reg(), wide_value()).prop_map(|(dst, value)| Op::LdDw { dst, value }),
        1 => (data_reg(), 0..MAX_FUNCS).prop_map(|(dst, func)| Op::CodeAddr { dst, func }),
        1 => (-9i32..10).prop_map(|by| Op::MovePointer { by }),
        8 => (size(), any::<bool>(), data_reg(), address()).prop_map(|(size, sx, dst, (base, off))| {
            Op::Load { size, sx: sx && size < 8, dst, base, off }
        }),
        8 => (size(), address(), operand())
            .prop_map(|(size, (base, off), src)| Op::Store { size, base, off, src }),
        4 => (wide, atomic_imm(), address(), data_reg()).prop_map(|(wide, imm, (base, off), src)| {
            Op::Atomic { wide, imm, base, off, src }
        }),
        1 => (size(), data_reg(), address())
            .prop_map(|(size, dst, (base, off))| Op::LoadAcquire { size, dst, base, off }),
        1 => (size(), address(), data_reg())
            .prop_map(|(size, (base, off), src)| Op::StoreRelease { size, base, off, src }),
        1 => (any::<bool>(), prop::sample::select(&[1u8, 2, 4][..]), data_reg(), -2i32..70)
            .prop_map(|(abs, size, src, imm)| Op::LdPacket { abs, size, src, imm }),
        8 => (any::<bool>(), prop::sample::select(&JMP_OPS[..]), data_reg(), operand(), 0usize..6)
            .prop_map(|(jmp32, op, dst, src, skip)| Op::Jump { jmp32, op, dst, src, skip }),
        1 => (any::<bool>(), 0usize..4).prop_map(|(long, skip)| Op::Ja { long, skip }),
        2 => (0..MAX_FUNCS, prop::bool::weighted(0.05))
            .prop_map(|(func, recurse)| Op::Call { func, recurse }),
        2 => prop_oneof![12 => Just(5), 1 => Just(1), 1 => Just(6), 1 => Just(-1)]
            .prop_map(|id| Op::Helper { id }),
        2 => (data_reg(), prop::option::weighted(0.7, 0..MAX_FUNCS))
            .prop_map(|(reg, code)| Op::Callx { reg, code }),
        1 => Just(Op::Exit),
        3 => (
            0i32..5,
            prop::sample::select(&[MapAccess::Load, MapAccess::Store, MapAccess::Atomic][..]),
            -3i16..20,
            size(),
            (data_reg(), operand(), atomic_imm())
        )
            .prop_map(|(key, access, off, size, (dst, src, imm))| Op::MapValue {
                key,
                access,
                off,
                size,
                dst,
                src,
                imm
            }),
        2 => (0i32..6, prop::bool::weighted(0.25), 0i32..5, data_reg())
            .prop_map(|(key, delete, flags, src)| Op::MapWrite { key, delete, flags, src }),
        3 => (1i32..7, any::<bool>(), any::<bool>(), 1usize..9)
            .prop_map(|(rounds, narrow, jmp32, len)| Op::Loop { rounds, narrow, jmp32, len }),
    ]
}

/// Where a jump or a call goes, resolved once the whole program is laid out.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// A unit index.
    Unit(usize),
    /// A function's entry.
    Func(usize),
}

/// One instruction (or an `lddw` pair) whose offset or immediate may still be symbolic.
#[derive(Debug, Clone, Copy)]
enum Unit {
    Plain(RawInsn),
    Wide(RawInsn, RawInsn),
    /// A jump: `off` (or `imm` for `gotol`) becomes the distance to the target.
    Jump(RawInsn, Target),
    /// A local call (`imm` becomes the distance).
    Call(Target),
    /// `lddw dst, code address` (src 4; `imm` becomes the distance).
    CodeAddr(u8, Target),
}

impl Unit {
    fn slots(self) -> usize {
        match self {
            Unit::Wide(..) | Unit::CodeAddr(..) => 2,
            _ => 1,
        }
    }
}

fn insn(opcode: u8, dst: u8, src: u8, off: i16, imm: i32) -> Unit {
    Unit::Plain(RawInsn::new(opcode, dst, src, off, imm))
}

/// Opcode size bits of a load or store of `size` bytes.
fn size_bits(size: u8) -> u8 {
    match size {
        1 => 0x10,
        2 => 0x08,
        4 => 0x00,
        _ => 0x18,
    }
}

struct Builder {
    units: Vec<Unit>,
    /// The program has the array map (index 0).
    map: bool,
    /// Function entries, by function index (filled as functions are laid out).
    funcs: Vec<usize>,
    nfuncs: usize,
}

impl Builder {
    fn push(&mut self, u: Unit) {
        self.units.push(u);
    }

    /// A map helper call as compilers lay it out: `*(u32 *)(r10 - 4) = key`,
    /// `r2 = r10 - 4`; with `flags` (an update) also `r3 = r10 - 24` (the value) and
    /// `r4 = flags`; `r1` = the map; `call id`.
    fn map_call(&mut self, key: i32, id: i32, flags: Option<i32>) {
        self.push(insn(0x62, 10, 0, -4, key));
        self.push(insn(0xbf, 2, 10, 0, 0));
        self.push(insn(0x07, 2, 0, 0, -4));
        if let Some(flags) = flags {
            self.push(insn(0xbf, 3, 10, 0, 0));
            self.push(insn(0x07, 3, 0, 0, -24));
            self.push(insn(0xb7, 4, 0, 0, flags));
        }
        self.push(Unit::Wide(
            RawInsn::new(0x18, 1, 5, 0, 0),
            RawInsn::new(0, 0, 0, 0, 0),
        ));
        self.push(insn(0x85, 0, 0, 0, id));
    }

    /// In a loop body `r9` is the counter: writes go to `r8` instead.
    fn w(reg: u8, in_loop: bool) -> u8 {
        if in_loop && reg == 9 { 8 } else { reg }
    }

    /// Lays out a block of operations of function `func`.
    fn block(&mut self, ops: &[Op], func: usize, in_loop: bool) {
        // Unit index where each operation starts (and where the block ends), for jumps.
        let mut starts = vec![0usize; ops.len() + 1];
        // Operations that open a loop, with the index past their body; jumps from outside
        // a body into it land on the loop's start instead.
        let mut enclosing: Vec<Option<usize>> = vec![None; ops.len() + 1];
        let mut pending: Vec<(usize, usize)> = Vec::new(); // (unit, target op index)
        let mut i = 0;
        while i < ops.len() {
            starts[i] = self.units.len();
            let op = &ops[i];
            match *op {
                Op::Loop {
                    rounds,
                    narrow,
                    jmp32,
                    len,
                } if !in_loop => {
                    let end = (i + 1 + len).min(ops.len());
                    for e in enclosing.iter_mut().take(end).skip(i + 1) {
                        *e = Some(i);
                    }
                    self.push(insn(0xb7, 9, 0, 0, rounds));
                    let top = self.units.len();
                    self.block(&ops[i + 1..end], func, true);
                    // `r9 += -1` (32 or 64 bits), then `if r9 != 0 goto top` (JMP or JMP32).
                    self.push(insn(if narrow { 0x04 } else { 0x07 }, 9, 0, 0, -1));
                    let class = if jmp32 { 0x06 } else { 0x05 };
                    self.push(Unit::Jump(
                        RawInsn::new(class | 0x50, 9, 0, 0, 0),
                        Target::Unit(top),
                    ));
                    let start = starts[i];
                    for s in starts.iter_mut().take(end).skip(i + 1) {
                        *s = start;
                    }
                    i = end;
                    continue;
                }
                Op::Loop { .. } => {} // no nested loops: nothing
                _ => self.op(op, func, in_loop, i, &mut pending),
            }
            i += 1;
        }
        starts[ops.len()] = self.units.len();
        for (unit, target) in pending {
            let t = match enclosing.get(target).copied().flatten() {
                Some(loop_op) => starts[loop_op],
                None => starts[target.min(ops.len())],
            };
            if let Some(Unit::Jump(_, tgt)) = self.units.get_mut(unit) {
                *tgt = Target::Unit(t);
            }
        }
    }

    fn op(
        &mut self,
        op: &Op,
        func: usize,
        in_loop: bool,
        index: usize,
        pending: &mut Vec<(usize, usize)>,
    ) {
        let w = |r| Builder::w(r, in_loop);
        let alu = |wide: bool, op: u8, dst: u8, src: Operand, off: i16| match src {
            Operand::Reg(s) => insn(op | if wide { 0x0f } else { 0x0c }, dst, s, off, 0),
            Operand::Imm(k) => insn(op | if wide { 0x07 } else { 0x04 }, dst, 0, off, k),
        };
        let u = match *op {
            Op::Alu { wide, op, dst, src } => alu(wide, op, w(dst), src, 0),
            Op::SDiv {
                wide,
                modulo,
                dst,
                src,
            } => alu(wide, if modulo { 0x90 } else { 0x30 }, w(dst), src, 1),
            Op::Neg { wide, dst } => insn(if wide { 0x87 } else { 0x84 }, w(dst), 0, 0, 0),
            Op::MovSx {
                wide,
                bits,
                dst,
                src,
            } => insn(if wide { 0xbf } else { 0xbc }, w(dst), src, bits, 0),
            Op::End { opcode, bits, dst } => insn(opcode, w(dst), 0, 0, bits),
            Op::LdDw { dst, value } => Unit::Wide(
                RawInsn::new(0x18, w(dst), 0, 0, value as u32 as i32),
                RawInsn::new(0, 0, 0, 0, (value >> 32) as u32 as i32),
            ),
            Op::CodeAddr { dst, func } => Unit::CodeAddr(w(dst), Target::Func(func)),
            Op::MovePointer { by } => insn(0x07, 6, 0, 0, by),
            Op::Load {
                size,
                sx,
                dst,
                base,
                off,
            } => {
                let mode = if sx { 0x80 } else { 0x60 };
                insn(mode | size_bits(size) | 0x01, w(dst), base.reg(), off, 0)
            }
            Op::Store {
                size,
                base,
                off,
                src,
            } => match src {
                Operand::Reg(s) => insn(0x63 | size_bits(size), base.reg(), s, off, 0),
                Operand::Imm(k) => insn(0x62 | size_bits(size), base.reg(), 0, off, k),
            },
            Op::Atomic {
                wide,
                imm,
                base,
                off,
                src,
            } => {
                // Fetching operations write `src` (cmpxchg writes `r0`).
                let src = if imm & 1 == 1 && imm != 0xf1 {
                    w(src)
                } else {
                    src
                };
                insn(if wide { 0xdb } else { 0xc3 }, base.reg(), src, off, imm)
            }
            Op::LoadAcquire {
                size,
                dst,
                base,
                off,
            } => insn(0xc3 | size_bits(size), w(dst), base.reg(), off, 0x100),
            Op::StoreRelease {
                size,
                base,
                off,
                src,
            } => insn(0xc3 | size_bits(size), base.reg(), src, off, 0x110),
            Op::LdPacket {
                abs,
                size,
                src,
                imm,
            } => {
                let mode = if abs { 0x20 } else { 0x40 };
                insn(mode | size_bits(size), 0, if abs { 0 } else { src }, 0, imm)
            }
            Op::Jump {
                jmp32,
                op,
                dst,
                src,
                skip,
            } => {
                let class = if jmp32 { 0x06 } else { 0x05 };
                let raw = match src {
                    Operand::Reg(s) => RawInsn::new(class | op | 0x08, dst, s, 0, 0),
                    Operand::Imm(k) => RawInsn::new(class | op, dst, 0, 0, k),
                };
                pending.push((self.units.len(), index + 1 + skip));
                Unit::Jump(raw, Target::Unit(0))
            }
            Op::Ja { long, skip } => {
                pending.push((self.units.len(), index + 1 + skip));
                Unit::Jump(
                    RawInsn::new(if long { 0x06 } else { 0x05 }, 0, 0, 0, 0),
                    Target::Unit(0),
                )
            }
            Op::Call { func: f, recurse } => {
                let target = if recurse {
                    func
                } else if f > func && f < self.nfuncs {
                    f
                } else if func + 1 < self.nfuncs {
                    func + 1
                } else {
                    // No later function: call helper 5 instead.
                    self.push(insn(0x85, 0, 0, 0, 5));
                    return;
                };
                Unit::Call(Target::Func(target))
            }
            Op::MapValue { .. } if !self.map => return,
            Op::MapValue {
                key,
                access,
                off,
                size,
                dst,
                src,
                imm,
            } => {
                self.map_call(key, 1, None);
                // if r0 == 0 skip the access.
                let access = match access {
                    MapAccess::Load => insn(
                        0x61 | size_bits(size),
                        w(if dst == 0 { 7 } else { dst }),
                        0,
                        off,
                        0,
                    ),
                    MapAccess::Store => match src {
                        Operand::Reg(s) => insn(
                            0x63 | size_bits(size),
                            0,
                            if s == 0 { 7 } else { s },
                            off,
                            0,
                        ),
                        Operand::Imm(k) => insn(0x62 | size_bits(size), 0, 0, off, k),
                    },
                    MapAccess::Atomic => {
                        let s = match src {
                            Operand::Reg(0) | Operand::Imm(_) => 7,
                            Operand::Reg(s) => s,
                        };
                        let s = if imm & 1 == 1 && imm != 0xf1 { w(s) } else { s };
                        insn(if size == 8 { 0xdb } else { 0xc3 }, 0, s, off, imm)
                    }
                };
                self.push(insn(0x15, 0, 0, 1, 0));
                self.push(access);
                // r0 = 0: the value's address is not data.
                self.push(insn(0xb7, 0, 0, 0, 0));
                return;
            }
            Op::MapWrite { .. } if !self.map => return,
            Op::MapWrite {
                key,
                delete,
                flags,
                src,
            } => {
                if delete {
                    self.map_call(key, 3, None);
                } else {
                    // The value at r10 - 24: src twice, stored before r2–r4 change (they
                    // may be src).
                    self.push(insn(0x7b, 10, src, -24, 0));
                    self.push(insn(0x7b, 10, src, -16, 0));
                    self.map_call(key, 2, Some(flags));
                }
                return;
            }
            Op::Helper { id } => insn(0x85, 0, 0, 0, id),
            Op::Callx { reg, code } => {
                if let Some(f) = code {
                    // A later function's code address (or a helper call if none).
                    if f > func && f < self.nfuncs {
                        self.push(Unit::CodeAddr(w(reg), Target::Func(f)));
                    } else {
                        self.push(insn(0xb7, w(reg), 0, 0, 5));
                    }
                }
                insn(0x8d, w(reg), 0, 0, 0)
            }
            Op::Exit => insn(0x95, 0, 0, 0, 0),
            Op::Loop { .. } => return,
        };
        self.push(u);
    }
}

/// A generated program: its functions' operations and the prologue's constants.
#[derive(Debug, Clone)]
struct Generated {
    /// `r0`, `r1`, `r7`–`r9` at the start of the main function (`r2`–`r5` are left as
    /// the engines set them).
    init: [u64; 5],
    funcs: Vec<Vec<Op>>,
}

fn program() -> impl Strategy<Value = Generated> {
    (
        prop::array::uniform5(wide_value()),
        prop::collection::vec(function(), 1..=MAX_FUNCS),
    )
        .prop_map(|(init, funcs)| Generated { init, funcs })
}

/// A function's operations: any, or (one time in four) only those of a function the JIT
/// makes inline at its calls (`translate.rs`, `inlinable`: no memory, no loop, no
/// helper, no `r10`), so that inline calls are common in the generated programs.
fn function() -> impl Strategy<Value = Vec<Op>> {
    prop_oneof![
        3 => prop::collection::vec(op(), 0..20),
        1 => prop::collection::vec(pure_op(), 0..12),
    ]
}

/// An operation an inline callee may hold.
fn pure_op() -> impl Strategy<Value = Op> {
    op().prop_filter("an operation an inline callee may hold", |op| {
        matches!(
            op,
            Op::Alu { .. }
                | Op::SDiv { .. }
                | Op::Neg { .. }
                | Op::MovSx { .. }
                | Op::End { .. }
                | Op::LdDw { .. }
                | Op::Jump { .. }
                | Op::Ja { .. }
                | Op::Call { recurse: false, .. }
                | Op::Exit
        )
    })
}

/// Lays `g` out as slots: main (prologue `r6 = r1`, constants, body, `exit`), then each
/// other function (body, `exit`).
fn assemble(g: &Generated, map: bool) -> Vec<RawInsn> {
    let mut b = Builder {
        units: Vec::new(),
        map,
        funcs: vec![0; g.funcs.len()],
        nfuncs: g.funcs.len(),
    };
    b.push(insn(0xbf, 6, 1, 0, 0));
    for (reg, value) in [0u8, 1, 7, 8, 9].into_iter().zip(g.init) {
        b.push(Unit::Wide(
            RawInsn::new(0x18, reg, 0, 0, value as u32 as i32),
            RawInsn::new(0, 0, 0, 0, (value >> 32) as u32 as i32),
        ));
    }
    for (f, ops) in g.funcs.iter().enumerate() {
        if f > 0 {
            b.funcs[f] = b.units.len();
        }
        b.block(ops, f, false);
        b.push(insn(0x95, 0, 0, 0, 0));
    }
    // Slot position of each unit.
    let mut pos = Vec::with_capacity(b.units.len() + 1);
    let mut at = 0usize;
    for u in &b.units {
        pos.push(at);
        at += u.slots();
    }
    pos.push(at);
    let slot_of = |t: Target| match t {
        Target::Unit(u) => pos[u.min(pos.len() - 1)],
        Target::Func(f) => pos[b.funcs.get(f).copied().unwrap_or(0)],
    };
    let mut slots = Vec::with_capacity(at);
    for (i, u) in b.units.iter().enumerate() {
        let here = pos[i];
        match *u {
            Unit::Plain(r) => slots.push(r),
            Unit::Wide(a, c) => slots.extend([a, c]),
            Unit::Jump(mut r, t) => {
                let dist = slot_of(t) as i64 - here as i64 - 1;
                if r.opcode == 0x06 {
                    r.imm = dist as i32;
                } else {
                    r.off = dist as i16;
                }
                slots.push(r);
            }
            Unit::Call(t) => {
                let dist = slot_of(t) as i64 - here as i64 - 1;
                slots.push(RawInsn::new(0x85, 0, 1, 0, dist as i32));
            }
            Unit::CodeAddr(dst, t) => {
                let dist = slot_of(t) as i64 - here as i64 - 1;
                slots.extend([
                    RawInsn::new(0x18, dst, 4, 0, dist as i32),
                    RawInsn::new(0, 0, 0, 0, 0),
                ]);
            }
        }
    }
    slots
}

fn load(slots: &[RawInsn]) -> Result<LoadedProgram, String> {
    let program = Program::from_slots(slots.to_vec()).map_err(|e| e.to_string())?;
    LoadedProgram::new(program, ProgramType::Conformance).map_err(|e| e.to_string())
}

/// Memory: empty, one byte, a word, 64 bytes, or any length up to 80.
fn memory() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => Just(0usize),
        1 => Just(1),
        2 => Just(8),
        3 => Just(64),
        3 => 0usize..80,
    ]
    .prop_flat_map(|len| prop::collection::vec(any::<u8>(), len))
}

fn listing(slots: &[RawInsn]) -> String {
    disassemble(slots, Syntax::Llvm)
}

/// Runs both engines; a readable report of the difference, if any.
fn compare(
    slots: &[RawInsn],
    prog: &LoadedProgram,
    mem: &[u8],
) -> Result<(Observed, Observed), String> {
    let opts = RunOptions::new().with_budget(BUDGET);
    let (interp, jit) = run_both(prog, mem, &opts);
    // (The JIT may notice an exhausted budget late, never early: where the interpreter
    // finished, a JIT budget fault is a difference.)
    match difference(&interp, &jit) {
        None => Ok((interp, jit)),
        Some(d) => Err(format!(
            "{d}\nmemory in: {mem:02x?}\nprogram ({} slots):\n{}",
            slots.len(),
            listing(slots)
        )),
    }
}

/// Cases per property: `PROPTEST_CASES` if set (for long local hunts), else `default`.
/// The generators reject some draws (`prop_filter`), about one per case at most, so the
/// limit on rejections grows with the cases: proptest's fixed default (65,536) stopped a
/// hunt of 60,000 cases.
fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        max_local_rejects: 65_536_u32.max(n.saturating_mul(4)),
        ..ProptestConfig::with_cases(n)
    }
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn structured_programs_run_the_same_on_both_engines(g in program(), mem in memory()) {
        let slots = assemble(&g, false);
        let prog = load(&slots);
        prop_assert!(prog.is_ok(), "generated program refused: {:?}\n{}", prog.err(), listing(&slots));
        let Ok(prog) = prog else { return Ok(()) };
        if let Err(report) = compare(&slots, &prog, &mem) {
            prop_assert!(false, "{}", report);
        }
    }
}

/// The initial values of the test maps' keys 0–3: 16 bytes each.
fn map_values() -> Vec<[u8; 16]> {
    (0..4u8)
        .map(|k| std::array::from_fn(|i| k * 16 + i as u8))
        .collect()
}

/// A 4-entry map of `map_type` (array or hash) with 4-byte keys and 16-byte values.
fn test_map(map_type: MapType) -> Arc<dyn Map> {
    let spec = MapSpec::new(map_type, 4, 16, 4);
    Arc::from(create_map(&spec, &MapConfig::new(1, 1 << 20)).expect("map"))
}

/// Puts a test map back as [`map_values`] has it: keys 0–3 with their values, nothing
/// else. A hash key still present gets its value written in place, so that its address
/// stays the one the previous run saw; a deleted one is inserted again (a new address).
fn reset_map(map: &dyn Map) {
    // Keys a program added first: a full map takes no key back.
    if map.spec().map_type == MapType::Hash {
        for k in 4..6u32 {
            let _ = map.delete(&k.to_ne_bytes());
        }
    }
    let guard = RunGuard::pin();
    for (k, v) in map_values().iter().enumerate() {
        let key = (k as u32).to_ne_bytes();
        match map.lookup_value(&key, 0, &guard) {
            Some(value) if map.spec().map_type == MapType::Hash => {
                for (i, b) in v.iter().enumerate() {
                    // SAFETY: `value` is 16 bytes, valid while `guard` lives; map memory
                    // is accessed only atomically.
                    let byte = unsafe { AtomicU8::from_ptr(value.as_ptr().add(i)) };
                    byte.store(*b, Ordering::Relaxed);
                }
            }
            _ => map.update(&key, v, 0).expect("reset"),
        }
    }
}

/// What a test map holds for keys 0–5 (`0xee` for an absent one).
fn map_contents(map: &dyn Map) -> Vec<u8> {
    (0..6u32)
        .flat_map(|k| map.lookup(&k.to_ne_bytes()).unwrap_or_else(|_| vec![0xee]))
        .collect()
}

/// A fault's address on a map value cannot be compared across the engines' runs when the
/// first run deleted or replaced the element and the reset put it back elsewhere: the
/// addresses of out-of-bounds and misaligned atomic accesses are forgotten (kind, pc and
/// instruction still compared).
fn without_addresses(mut o: Observed) -> Observed {
    if let Err(Ended::Fault(f)) = &mut o.result
        && let FaultKind::OutOfBounds { addr, .. } | FaultKind::MisalignedAtomic { addr, .. } =
            &mut f.kind
    {
        *addr = 0;
    }
    o
}

proptest! {
    #![proptest_config(cases(128))]

    /// The same programs as a socket filter with a map, an array and then a hash map:
    /// map-value accesses (the JIT's atomic slow path) and the kernel helpers
    /// (`bpf_map_lookup_elem` by key, `bpf_map_update_elem` with valid and invalid flags
    /// and `bpf_map_delete_elem`, keys in the frame as the JIT calls them directly,
    /// `map_calls.rs`: in the hash map, after a run's first lookup, by walking the
    /// bucket's chain in the code; helper 5 `bpf_ktime_get_ns` on a stopped clock, 6
    /// `bpf_trace_printk`, 1 with a number for a map).
    #[test]
    fn structured_programs_with_a_map_run_the_same_on_both_engines(
        g in program(),
        mem in memory(),
    ) {
        let slots = assemble(&g, true);
        for map_type in [MapType::Array, MapType::Hash] {
            let map = test_map(map_type);
            let ty = ProgramType::Kernel(bpfvm_abi::ProgramType::SocketFilter);
            let prog = Program::from_slots(slots.clone()).map_err(|e| e.to_string()).and_then(|p| {
                LoadedProgram::with_maps(p, ty, Arc::new(HelperRegistry::for_program_type(ty)), vec![map.clone()])
                    .map_err(|e| e.to_string())
            });
            prop_assert!(prog.is_ok(), "generated program refused: {:?}\n{}", prog.err(), listing(&slots));
            let Ok(prog) = prog else { return Ok(()) };
            let env = Arc::new(FixedEnvironment::new(5_000, 0, 1, Task::with_comm(1, 1, 0, 0, "diff")));
            let opts = RunOptions::new().with_budget(BUDGET).with_env(env);
            let reset = || reset_map(&*map);
            let snapshot = || map_contents(&*map);
            let (mut interp, mut jit) = run_both_with(&prog, &mem, &opts, &reset, &snapshot);
            if map_type == MapType::Hash {
                (interp, jit) = (without_addresses(interp), without_addresses(jit));
            }
            if let Some(d) = difference(&interp, &jit) {
                prop_assert!(false, "{map_type:?}: {}\nmemory in: {:02x?}\n{}", d, mem, listing(&slots));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Instructions from the whole opcode table (`bpfvm-testkit`).

/// Makes every read of `r10` as a value (rather than as an access's base) read `r0`:
/// each engine has its own stack, so a frame address in `r0`, in memory or in a branch
/// condition would make the engines differ without a bug. (`r1`, the memory, is the same
/// buffer on both.)
fn scrub_frame_pointer(slots: &mut [RawInsn]) {
    for r in slots {
        let class = r.opcode & 0x07;
        match class {
            // LDX: `src` is the base. ST: `dst` is the base.
            0x01 | 0x02 => {}
            // lddw, legacy packet loads (`src` of LD_IND is a value); STX and atomics
            // (`dst` is the base, `src` a value, except load-acquire's `src` base).
            0x00 | 0x03 => {
                let acquire = class == 0x03 && r.opcode & 0xe0 == 0xc0 && r.imm == 0x100;
                if r.src == 10 && !acquire {
                    r.src = 0;
                }
            }
            // ALU, JMP, JMP32, ALU64.
            _ => {
                if r.src == 10 {
                    r.src = 0;
                }
                if r.dst == 10 {
                    r.dst = 0;
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn table_programs_run_the_same_on_both_engines(
        parts in prop::collection::vec(raw_slot(), 1..24),
        mem in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut slots = raw_build(&parts);
        scrub_frame_pointer(&mut slots);
        let repaired = repair_and_load(slots);
        prop_assert!(repaired.is_some(), "repair failed");
        let Some((slots, prog)) = repaired else { return Ok(()) };
        let opts = RunOptions::new().with_budget(BUDGET);
        let (interp, jit) = run_both(&prog, &mem, &opts);
        if let Some(d) = difference(&interp, &jit) {
            prop_assert!(false, "{}\nmemory in: {:02x?}\n{}", d, mem, listing(&slots));
        }
        // A budget fault only where the interpreter ran out too.
        let interp_budget = matches!(&interp.result, Err(Ended::Fault(f)) if matches!(f.kind, FaultKind::BudgetExhausted { .. }));
        let jit_budget = matches!(&jit.result, Err(Ended::Fault(f)) if matches!(f.kind, FaultKind::BudgetExhausted { .. }));
        prop_assert_eq!(interp_budget, jit_budget);
    }
}

#[test]
#[ignore = "statistics of the structured generator, for tuning"]
fn structured_outcome_statistics() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut hist: std::collections::BTreeMap<String, usize> = Default::default();
    let mut lens = 0usize;
    let n = 2000;
    for _ in 0..n {
        let g = program().new_tree(&mut runner).expect("tree").current();
        let mem = memory().new_tree(&mut runner).expect("tree").current();
        let slots = assemble(&g, false);
        lens += slots.len();
        let prog = load(&slots).expect("loads");
        let (i, _) = run_both(&prog, &mem, &RunOptions::new().with_budget(BUDGET));
        let key = match &i.result {
            Ok(_) => "value".to_string(),
            Err(Ended::Fault(f)) => {
                let k = format!("{:?}", f.kind);
                k.split([' ', '{', '(']).next().unwrap_or("").to_string()
            }
            Err(Ended::Error(e)) => e.clone(),
        };
        *hist.entry(key).or_default() += 1;
    }
    eprintln!("mean slots {}; {hist:#?}", lens / n);
}
