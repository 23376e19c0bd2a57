//! The LLVM printers: a model of LLVM 19's BPF disassembler (which encodings
//! it decodes, which fields it ignores) and of its instruction printer.
//!
//! [`decode`] works on bytes, not on [`crate::Insn`], because
//! `llvm-objdump` prints many encodings our decoder rejects: it ignores
//! unused fields (`exit` with a non-zero `off`, `call` with any `src`…),
//! accepts register `r11`, and decodes a misaligned position after a run of
//! zero bytes. [`super::format_insn`] re-encodes a valid instruction and
//! prints it through the same model, so the two can never disagree.
//!
//! The model was measured against `llvm-objdump-19` on every opcode byte
//! with single-field variations; `tests/disasm_golden.rs` keeps it honest.
//!
//! One deliberate divergence: load-acquire and store-release (atomic `imm`
//! 0x100 / 0x110) are printed in LLVM 21's syntax
//! (`r0 = load_acquire((u64 *)(r1 + 0x0))`,
//! `store_release((u8 *)(r1 + 0x0), w2)`), where LLVM 19 prints
//! `<unknown>` or, for the 32- and 64-bit forms, misreads them as
//! `lock ... +=` because it only checks bits 4-7 of `imm`.

use std::fmt::Write as _;

/// Which instruction set LLVM decodes with: `--mcpu=v4` enables the ALU32
/// decoder table (`w` registers for sub-64-bit loads, stores and atomics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `llvm-objdump -d --mcpu=v4` (also v3).
    Alu32,
    /// Plain `llvm-objdump -d` (generic CPU).
    Generic,
}

/// What LLVM makes of the bytes at one position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// An instruction of `len` bytes (8 or 16).
    Insn {
        /// Bytes consumed.
        len: usize,
        /// The printed text (after objdump's tab).
        text: String,
        /// Branch displacement in slots, relative to the next slot, for
        /// jumps (objdump annotates their target).
        branch: Option<i64>,
    },
    /// Not decodable; objdump prints `<unknown>` over `len` bytes (8, or 1
    /// when fewer than 8 bytes remain or a `lddw` lacks its second half).
    Unknown {
        /// Bytes consumed.
        len: usize,
    },
}

/// `formatImm` with objdump's hex style: `0x1f`, `-0x1`.
pub(crate) fn hex(v: i64) -> String {
    if v < 0 {
        format!("-0x{:x}", v.unsigned_abs())
    } else {
        format!("0x{v:x}")
    }
}

/// A jump displacement as `printBrTargetOperand` prints it: `+0x3`, `-0x1`.
fn br(v: i64) -> String {
    if v >= 0 {
        format!("+{}", hex(v))
    } else {
        hex(v)
    }
}

/// `rN + 0x8` / `rN - 0x8`, as `printMemOperand` prints it.
fn mem(base: u8, off: i16) -> String {
    let off = i64::from(off);
    if off >= 0 {
        format!("r{base} + {}", hex(off))
    } else {
        format!("r{base} - {}", hex(-off))
    }
}

fn size_name(opcode: u8) -> (&'static str, u32) {
    match opcode & 0x18 {
        0x00 => ("u32", 32),
        0x08 => ("u16", 16),
        0x10 => ("u8", 8),
        _ => ("u64", 64),
    }
}

/// The fields of one slot, read from little-endian bytes.
#[derive(Clone, Copy)]
struct Fields {
    op: u8,
    dst: u8,
    src: u8,
    off: i16,
    imm: i32,
}

fn fields(b: &[u8]) -> Option<Fields> {
    let raw = crate::RawInsn::from_bytes(b.get(..8)?.try_into().ok()?);
    Some(Fields {
        op: raw.opcode,
        dst: raw.dst,
        src: raw.src,
        off: raw.off,
        imm: raw.imm,
    })
}

/// LLVM knows registers r0–r11.
fn reg_ok(r: u8) -> bool {
    r <= 11
}

fn alu_op(bits: u8) -> Option<&'static str> {
    Some(match bits {
        0x00 => "+=",
        0x10 => "-=",
        0x20 => "*=",
        0x30 => "/=",
        0x40 => "|=",
        0x50 => "&=",
        0x60 => "<<=",
        0x70 => ">>=",
        0x90 => "%=",
        0xa0 => "^=",
        0xb0 => "=",
        0xc0 => "s>>=",
        _ => return None,
    })
}

fn jmp_op(bits: u8) -> Option<&'static str> {
    Some(match bits {
        0x10 => "==",
        0x20 => ">",
        0x30 => ">=",
        0x40 => "&",
        0x50 => "!=",
        0x60 => "s>",
        0x70 => "s>=",
        0xa0 => "<",
        0xb0 => "<=",
        0xc0 => "s<",
        0xd0 => "s<=",
        _ => return None,
    })
}

/// Decodes the instruction at the start of `bytes` the way LLVM 19 does.
pub(crate) fn decode(bytes: &[u8], mode: Mode) -> Decoded {
    let Some(f) = fields(bytes) else {
        return Decoded::Unknown { len: 1 };
    };
    let one = |text: String| Decoded::Insn {
        len: 8,
        text,
        branch: None,
    };
    let text = match f.op & 0x07 {
        0x04 | 0x07 => alu(f),
        0x05 | 0x06 => {
            return match jmp(f) {
                Some((text, branch)) => Decoded::Insn {
                    len: 8,
                    text,
                    branch,
                },
                None => Decoded::Unknown { len: 8 },
            };
        }
        0x00 => return ld(f, bytes),
        0x01 => ldx(f, mode),
        0x02 => st(f),
        _ => stx(f, mode),
    };
    match text {
        Some(t) => one(t),
        None => Decoded::Unknown { len: 8 },
    }
}

fn alu(f: Fields) -> Option<String> {
    let is64 = f.op & 0x07 == 0x07;
    let w = if is64 { 'r' } else { 'w' };
    let x = f.op & 0x08 != 0;
    let (d, s) = (f.dst, f.src);
    match f.op & 0xf0 {
        0xd0 => {
            // le/be (ALU class) and bswap (ALU64, K only); always printed with r.
            let name = match (is64, x) {
                (false, false) => "le",
                (false, true) => "be",
                (true, false) => "bswap",
                (true, true) => return None,
            };
            let ok = matches!(f.imm, 16 | 32 | 64) && reg_ok(d);
            ok.then(|| format!("r{d} = {name}{} r{d}", f.imm))
        }
        0x80 => (!x && reg_ok(d)).then(|| format!("{w}{d} = -{w}{d}")),
        bits => {
            let op = alu_op(bits)?;
            if !reg_ok(d) {
                return None;
            }
            let signed_divmod = matches!(bits, 0x30 | 0x90) && f.off == 1;
            let op = match (signed_divmod, bits) {
                (true, 0x30) => "s/=",
                (true, _) => "s%=",
                _ => op,
            };
            if x {
                if !reg_ok(s) {
                    return None;
                }
                match (bits, f.off) {
                    (_, 0) => Some(format!("{w}{d} {op} {w}{s}")),
                    (0x30 | 0x90, 1) => Some(format!("{w}{d} {op} {w}{s}")),
                    (0xb0, 8) => Some(format!("{w}{d} = (s8){w}{s}")),
                    (0xb0, 16) => Some(format!("{w}{d} = (s16){w}{s}")),
                    (0xb0, 32) if is64 => Some(format!("r{d} = (s32)r{s}")),
                    (0xb0, 1) if is64 => Some(format!(
                        "r{d} = addr_space_cast(r{s}, {}, {})",
                        hex(i64::from((f.imm as u32) >> 16)),
                        hex(i64::from(f.imm as u32 & 0xffff))
                    )),
                    _ => None,
                }
            } else {
                let ok = f.off == 0 || signed_divmod;
                ok.then(|| format!("{w}{d} {op} {}", hex(f.imm.into())))
            }
        }
    }
}

fn jmp(f: Fields) -> Option<(String, Option<i64>)> {
    let is64 = f.op & 0x07 == 0x05;
    let x = f.op & 0x08 != 0;
    let (d, s) = (f.dst, f.src);
    let off = i64::from(f.off);
    match (is64, f.op) {
        (true, 0x05) => Some((format!("goto {}", br(off)), Some(off))),
        (false, 0x06) => {
            let imm = i64::from(f.imm);
            Some((format!("gotol {}", br(imm)), Some(imm)))
        }
        (true, 0x85) => Some((format!("call {}", hex(f.imm.into())), None)),
        (true, 0x8d) => reg_ok(d).then(|| (format!("callx r{d}"), None)),
        (true, 0x95) => (f.imm == 0).then(|| ("exit".to_string(), None)),
        (true, 0xe5) => Some((format!("may_goto {}", br(off)), Some(off))),
        _ => {
            let op = jmp_op(f.op & 0xf0)?;
            let w = if is64 { 'r' } else { 'w' };
            if !reg_ok(d) {
                return None;
            }
            let rhs = if x {
                if !reg_ok(s) {
                    return None;
                }
                format!("{w}{s}")
            } else {
                hex(f.imm.into())
            };
            Some((format!("if {w}{d} {op} {rhs} goto {}", br(off)), Some(off)))
        }
    }
}

fn ld(f: Fields, bytes: &[u8]) -> Decoded {
    let unknown = Decoded::Unknown { len: 8 };
    let (size, _) = size_name(f.op);
    let text = match f.op {
        0x18 => {
            if f.off != 0 || !reg_ok(f.dst) {
                return unknown;
            }
            // The decoder accepts the first half before looking for the second.
            let Some(hi) = bytes.get(12..16).and_then(|b| <[u8; 4]>::try_from(b).ok()) else {
                return Decoded::Unknown { len: 1 };
            };
            let hi = u32::from_le_bytes(hi);
            let text = if f.src == 0 {
                let v = (u64::from(hi) << 32) | u64::from(f.imm as u32);
                format!("r{} = {} ll", f.dst, hex(v as i64))
            } else {
                // LLVM folds the second half into the `src` operand, then
                // prints that operand truncated to 32 bits: next_imm is lost.
                // The immediate is zero-extended (`0xffffffff`, not `-0x1`).
                format!(
                    "ld_pseudo\tr{}, {}, {}",
                    f.dst,
                    hex(f.src.into()),
                    hex((f.imm as u32).into())
                )
            };
            return Decoded::Insn {
                len: 16,
                text,
                branch: None,
            };
        }
        0x20 | 0x28 | 0x30 => format!("r0 = *({size} *)skb[{}]", hex(f.imm.into())),
        0x40 | 0x48 | 0x50 if reg_ok(f.src) => format!("r0 = *({size} *)skb[r{}]", f.src),
        _ => return unknown,
    };
    Decoded::Insn {
        len: 8,
        text,
        branch: None,
    }
}

fn ldx(f: Fields, mode: Mode) -> Option<String> {
    if !reg_ok(f.dst) || !reg_ok(f.src) {
        return None;
    }
    let (size, bits) = size_name(f.op);
    match f.op & 0xe0 {
        0x60 => {
            let w = if mode == Mode::Alu32 && bits < 64 {
                'w'
            } else {
                'r'
            };
            Some(format!("{w}{} = *({size} *)({})", f.dst, mem(f.src, f.off)))
        }
        0x80 if bits < 64 => Some(format!("r{} = *(s{bits} *)({})", f.dst, mem(f.src, f.off))),
        _ => None,
    }
}

fn st(f: Fields) -> Option<String> {
    let (size, _) = size_name(f.op);
    (f.op & 0xe0 == 0x60 && reg_ok(f.dst))
        .then(|| format!("*({size} *)({}) = {}", mem(f.dst, f.off), hex(f.imm.into())))
}

fn stx(f: Fields, mode: Mode) -> Option<String> {
    if !reg_ok(f.dst) || !reg_ok(f.src) {
        return None;
    }
    let (size, bits) = size_name(f.op);
    let w = if mode == Mode::Alu32 && bits < 64 {
        'w'
    } else {
        'r'
    };
    let (d, s, addr) = (f.dst, f.src, mem(f.dst, f.off));
    match f.op & 0xe0 {
        0x60 => Some(format!("*({size} *)({addr}) = {w}{s}")),
        0xc0 => {
            // Linux extension, printed as LLVM 21 does (see the module docs).
            if f.imm == crate::LOAD_ACQ_IMM {
                return Some(format!(
                    "{w}{d} = load_acquire(({size} *)({}))",
                    mem(s, f.off)
                ));
            }
            if f.imm == crate::STORE_REL_IMM {
                return Some(format!("store_release(({size} *)({addr}), {w}{s})"));
            }
            let lo = f.imm as u8;
            let (op, fetch) = (lo >> 4, lo & 0x0f == 1);
            match (bits, mode) {
                (64, _) | (32, Mode::Alu32) => {}
                (32, Mode::Generic) if op == 0 => {
                    return Some(format!("lock *(u32 *)({addr}) += r{s}"));
                }
                _ => return None,
            }
            let (xchg, cmpxchg) = if bits == 64 {
                ("xchg_64", "cmpxchg_64")
            } else {
                ("xchg32_32", "cmpxchg32_32")
            };
            let (name, sym) = match op {
                0x0 => ("add", "+="),
                0x4 => ("or", "|="),
                0x5 => ("and", "&="),
                0xa => ("xor", "^="),
                0xe if fetch => return Some(format!("{w}{s} = {xchg}({addr}, {w}{s})")),
                0xf if fetch => {
                    return Some(format!("{w}0 = {cmpxchg}({addr}, {w}0, {w}{s})"));
                }
                _ => return None,
            };
            if fetch {
                Some(format!(
                    "{w}{s} = atomic_fetch_{name}(({size} *)({addr}), {w}{s})"
                ))
            } else {
                Some(format!("lock *({size} *)({addr}) {sym} {w}{s}"))
            }
        }
        _ => None,
    }
}

/// `llvm-objdump -d` output for a section holding `bytes`, from the
/// `<SECTION>:` symbol line on (see [`super::objdump_listing`]).
pub(crate) fn listing(bytes: &[u8], section: &str, mode: Mode) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:016x} <{section}>:", 0);
    let mut index = 0usize;
    while index < bytes.len() {
        let rest = bytes.get(index..).unwrap_or_default();
        // objdump skips runs of at least 8 zero bytes, in multiples of 4.
        let zeros = rest.iter().take_while(|&&b| b == 0).count();
        if zeros >= 8 {
            out.push_str("\t\t...\n");
            index += zeros & !3;
            continue;
        }
        let decoded = decode(rest, mode);
        let len = match &decoded {
            Decoded::Insn { len, .. } | Decoded::Unknown { len } => *len,
        }
        .clamp(1, rest.len());
        let raw = rest.get(..len).unwrap_or_default();
        let _ = write!(out, "{:>8}:\t", index / 8);
        for (i, b) in raw.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            let _ = write!(out, "{sep}{b:02x}");
        }
        match decoded {
            Decoded::Insn { text, branch, .. } => {
                let _ = write!(out, "\t{text}");
                if let Some(disp) = branch {
                    // Target = address + 8 + disp * 8, wrapping like objdump's u64.
                    let target = (index as u64)
                        .wrapping_add(8)
                        .wrapping_add((disp as u64).wrapping_mul(8));
                    if target == 0 {
                        let _ = write!(out, " <{section}>");
                    } else {
                        let _ = write!(out, " <{section}+0x{target:x}>");
                    }
                }
            }
            Decoded::Unknown { .. } => out.push_str("\t<unknown>"),
        }
        out.push('\n');
        index += len;
    }
    out
}

/// The LLVM text of the instruction at the start of `slots` bytes; `None`
/// when LLVM cannot decode it.
pub(crate) fn text_of(bytes: &[u8], mode: Mode) -> Option<String> {
    match decode(bytes, mode) {
        Decoded::Insn { text, .. } => Some(text),
        Decoded::Unknown { .. } => None,
    }
}
