//! Parser of the LLVM dialect: the C-like notation of `llvm-objdump`,
//! `llvm-mc` and the kernel verifier log.
//!
//! Accepted forms, besides what [`crate::disasm::Syntax::Llvm`] and
//! [`crate::disasm::Syntax::Kernel`] print:
//! - numbers in decimal or hex, registers `r0`–`r15` and `w0`–`w15`;
//!   32-bit (`w`) and 64-bit (`r`) registers are not mixed in one ALU or
//!   jump instruction;
//! - memory operands `(r1 + 4)`, `(r1 - 0x8)`, `(r1 +4)`, `(r1)`;
//! - `call N` (helper), `call label` and `call pc+N` (local, `src` 1),
//!   `call NAME#N` (helper N), `call kernel-function#N` (kfunc, `src` 2),
//!   `callx r2`;
//! - `ld_pseudo r1, SRC, IMM[, NEXT_IMM]` for any pseudo `lddw`, and the
//!   kernel forms `r1 = map[id:N]` (`map[fd:N]` too), `map[id:N][0]+M`,
//!   `map[idx:N]`, `map[idx:N]+M`, `btf_var[N]`, `subprog[+N]`, each with an
//!   optional ` next_imm=M`;
//! - `.quad N` / `.8byte N` for a raw slot; `.text` is ignored.

use super::common::{
    Cursor, Item, Operand, Parsed, RegArg, build, expect_same, expect_width, size_word,
};
use super::lexer::{Span, Statement, Tok};
use super::{AsmError, AsmErrorKind, Dialect};
use crate::{
    AluOp, AtomicOp, CallKind, EndianOp, JmpOp, LdDwKind, RawInsn, Reg, Size, Width,
    disasm::kernel::{alu_symbol, jmp_symbol},
};

/// Parses one statement into `items` (labels and at most one instruction).
pub(crate) fn parse(st: &Statement, items: &mut Vec<Item>) -> Result<(), AsmError> {
    let mut c = Cursor::new(st, Dialect::Llvm);
    while let (Some(Tok::Ident(name)), Some(Tok::Punct(":"))) = (c.peek_nth(0), c.peek_nth(1)) {
        let span = c.span();
        items.push(Item::Label {
            name: name.clone(),
            span,
        });
        c.skip(2);
    }
    if c.at_end() {
        return Ok(());
    }
    if let Some(item) = statement(&mut c)? {
        items.push(item);
    }
    c.finish()
}

fn unsupported(span: Span, what: &'static str) -> AsmError {
    span.error(AsmErrorKind::Unsupported { what })
}

fn statement(c: &mut Cursor<'_>) -> Result<Option<Item>, AsmError> {
    if c.is_punct("*") {
        return store(c).map(|p| Some(Item::Insn(p)));
    }
    if let Some(d) = c.peek_reg() {
        c.skip(1);
        return assignment(d, c).map(|p| Some(Item::Insn(p)));
    }
    let (word, span) = c.ident("instruction")?;
    let p = match word.as_str() {
        ".text" => return Ok(None),
        ".quad" | ".8byte" => return Ok(Some(Item::Raw(RawInsn::from_u64(c.imm64()?)))),
        "exit" => build::exit(),
        "goto" => build::ja(false, c.jump()?)?,
        "gotol" => build::ja(true, c.jump()?)?,
        "may_goto" => build::may_goto(c.jump()?)?,
        "callx" => build::callx(c.reg64()?),
        "call" => call(c)?,
        "if" => cond_jump(c)?,
        "lock" => lock(c)?,
        "store_release" => {
            c.expect_punct("(")?;
            let (size, _) = cast(c, false)?;
            let (d, off) = paren_mem(c)?;
            c.expect_punct(",")?;
            let s = value_reg(c, size)?;
            c.expect_punct(")")?;
            build::store_release(size, d, s, off)
        }
        "ld_pseudo" => {
            let d = c.reg64()?;
            c.expect_punct(",")?;
            let (src, span) = c.signed()?;
            let kind = u8::try_from(src)
                .ok()
                .filter(|&s| s != 0)
                .and_then(LdDwKind::from_src)
                .ok_or_else(|| unsupported(span, "no pseudo lddw has this src (1..=6)"))?;
            c.expect_punct(",")?;
            let imm = c.imm32()?;
            let next = if c.eat_punct(",") { c.imm32()? } else { 0 };
            build::lddw(d, kind, imm, next)
        }
        _ => {
            return Err(span.error(AsmErrorKind::UnknownMnemonic { mnemonic: word }));
        }
    };
    Ok(Some(Item::Insn(p)))
}

/// `(u32 *)`; `signed` allows `s8`/`s16`/`s32`.
fn cast(c: &mut Cursor<'_>, signed_ok: bool) -> Result<(Size, bool), AsmError> {
    c.expect_punct("(")?;
    let span = c.span();
    let (word, _) = c.ident("access size (u8, u16, u32, u64)")?;
    let (size, signed) = size_word(&word).ok_or_else(|| {
        span.error(AsmErrorKind::Expected {
            expected: "access size (u8, u16, u32, u64)",
            found: format!("`{word}`"),
        })
    })?;
    if signed && !signed_ok {
        return Err(unsupported(span, "only loads sign-extend"));
    }
    c.expect_punct("*")?;
    c.expect_punct(")")?;
    Ok((size, signed))
}

/// `r1 + 4`, `r1 - 0x8`, `r1 +4`, `r1`.
fn bare_mem(c: &mut Cursor<'_>) -> Result<(RegArg, i16), AsmError> {
    let r = c.reg64()?;
    Ok((r, c.offset()?))
}

/// `(r1 + 4)`.
fn paren_mem(c: &mut Cursor<'_>) -> Result<(RegArg, i16), AsmError> {
    c.expect_punct("(")?;
    let m = bare_mem(c)?;
    c.expect_punct(")")?;
    Ok(m)
}

/// A value register for an access of `size`: `r`, or `w` below 64 bits.
fn value_reg(c: &mut Cursor<'_>, size: Size) -> Result<RegArg, AsmError> {
    let r = c.reg()?;
    if size == Size::DW {
        expect_width(r, true)?;
    }
    Ok(r)
}

fn width_of(r: RegArg) -> Width {
    if r.wide { Width::W64 } else { Width::W32 }
}

/// `*(u32 *)(r1 + 4) = r2 | w2 | imm`.
fn store(c: &mut Cursor<'_>) -> Result<Parsed, AsmError> {
    c.expect_punct("*")?;
    let (size, _) = cast(c, false)?;
    let (d, off) = paren_mem(c)?;
    c.expect_punct("=")?;
    let value = if c.peek_reg().is_some() {
        Operand::Reg(value_reg(c, size)?)
    } else {
        Operand::Imm(c.imm32()?)
    };
    Ok(build::store(size, d, off, value))
}

/// The size of an atomic access: 32 or 64 bits only.
fn atomic_size(size: Size, span: Span) -> Result<Size, AsmError> {
    match size {
        Size::W | Size::DW => Ok(size),
        _ => Err(unsupported(span, "atomic operations are 32- or 64-bit")),
    }
}

/// `lock *(u64 *)(r1 + 0) += r2`.
fn lock(c: &mut Cursor<'_>) -> Result<Parsed, AsmError> {
    c.expect_punct("*")?;
    let span = c.span();
    let (size, _) = cast(c, false)?;
    let size = atomic_size(size, span)?;
    let (d, off) = paren_mem(c)?;
    let op = match c.next().map(|t| &t.tok) {
        Some(Tok::Punct("+=")) => AtomicOp::Add { fetch: false },
        Some(Tok::Punct("|=")) => AtomicOp::Or { fetch: false },
        Some(Tok::Punct("&=")) => AtomicOp::And { fetch: false },
        Some(Tok::Punct("^=")) => AtomicOp::Xor { fetch: false },
        _ => return Err(unsupported(span, "lock takes +=, |=, &= or ^=")),
    };
    let s = value_reg(c, size)?;
    Ok(build::atomic(size, op, d, s, off))
}

/// `if r1 > r2 goto +3`.
fn cond_jump(c: &mut Cursor<'_>) -> Result<Parsed, AsmError> {
    let d = c.reg()?;
    let op = match c.peek().map(|t| &t.tok) {
        Some(Tok::Punct(p)) => JmpOp::ALL.into_iter().find(|op| jmp_symbol(*op) == *p),
        _ => None,
    }
    .ok_or_else(|| c.expected("comparison"))?;
    c.skip(1);
    let s = c.operand()?;
    if let Operand::Reg(s) = s {
        expect_width(s, d.wide)?;
    }
    c.expect_word("goto")?;
    build::jmp(width_of(d), op, d, s, c.jump()?)
}

/// The forms after `call`.
fn call(c: &mut Cursor<'_>) -> Result<Parsed, AsmError> {
    if c.at_number() {
        return Ok(build::call(CallKind::Helper, c.imm32()?));
    }
    // The kernel's `call name#id` and `call kernel-function#id`.
    let kfunc_dash = c.is_word("kernel")
        && matches!(c.peek_nth(1), Some(Tok::Punct("-")))
        && matches!(c.peek_nth(2), Some(Tok::Ident(w)) if w == "function")
        && matches!(c.peek_nth(3), Some(Tok::Punct("#")));
    if kfunc_dash {
        c.skip(4);
        return Ok(build::call(CallKind::Kfunc, c.imm32()?));
    }
    if let (Some(Tok::Ident(name)), Some(Tok::Punct("#"))) = (c.peek_nth(0), c.peek_nth(1)) {
        let kind = if name == "kfunc" {
            CallKind::Kfunc
        } else {
            CallKind::Helper
        };
        c.skip(2);
        return Ok(build::call(kind, c.imm32()?));
    }
    if c.peek_reg().is_some() {
        return Err(unsupported(
            c.span(),
            "a call through a register is `callx`",
        ));
    }
    build::call_local(c.jump()?)
}

/// Everything that starts `rD` / `wD`.
fn assignment(d: RegArg, c: &mut Cursor<'_>) -> Result<Parsed, AsmError> {
    let width = width_of(d);
    let op = match c.peek().map(|t| &t.tok) {
        Some(Tok::Punct("=")) => None,
        Some(Tok::Punct(p)) => Some(
            crate::disasm::conformance::ALU_OPS
                .into_iter()
                .filter(|op| !matches!(op, AluOp::Mov | AluOp::MovSx8 | AluOp::MovSx16))
                .find(|op| alu_symbol(*op) == *p)
                .ok_or_else(|| c.expected("assignment operator"))?,
        ),
        _ => return Err(c.expected("assignment operator")),
    };
    c.skip(1);
    if let Some(op) = op {
        let s = c.operand()?;
        if let Operand::Reg(s) = s {
            expect_width(s, d.wide)?;
        }
        return Ok(build::alu(width, op, d, s));
    }
    // `=`: a move, load or one of the named forms.
    if let Some(s) = c.peek_reg() {
        c.skip(1);
        expect_width(s, d.wide)?;
        return Ok(build::alu(width, AluOp::Mov, d, Operand::Reg(s)));
    }
    if c.is_punct("-") && c.peek_nth(1).is_some_and(|t| matches!(t, Tok::Ident(_))) {
        c.skip(1);
        let s = c.reg()?;
        expect_same(s, d)?;
        return Ok(build::neg(width, d));
    }
    if c.at_number() {
        let sign = usize::from(c.is_punct("-") || c.is_punct("+"));
        if matches!(c.peek_nth(sign + 1), Some(Tok::Ident(w)) if w == "ll") {
            expect_width(d, true)?;
            let v = c.imm64()?;
            c.skip(1);
            return Ok(build::lddw64(d, v));
        }
        return Ok(build::alu(width, AluOp::Mov, d, Operand::Imm(c.imm32()?)));
    }
    if c.is_punct("(") {
        return movsx(d, c);
    }
    if c.eat_punct("*") {
        return load(d, c);
    }
    let (word, span) = c.ident("value")?;
    named(d, &word, span, c)
}

/// `r1 = (s8)r2`.
fn movsx(d: RegArg, c: &mut Cursor<'_>) -> Result<Parsed, AsmError> {
    c.expect_punct("(")?;
    let span = c.span();
    let (word, _) = c.ident("s8, s16 or s32")?;
    let op = match (word.as_str(), d.wide) {
        ("s8", _) => AluOp::MovSx8,
        ("s16", _) => AluOp::MovSx16,
        ("s32", true) => AluOp::MovSx32,
        ("s32", false) => {
            return Err(unsupported(
                span,
                "a 32-bit move sign-extends only from 8 or 16 bits",
            ));
        }
        _ => return Err(c.expected("s8, s16 or s32")),
    };
    c.expect_punct(")")?;
    let s = c.reg()?;
    expect_width(s, d.wide)?;
    Ok(build::alu(width_of(d), op, d, Operand::Reg(s)))
}

/// After `rD = *`: `(u32 *)(r1 + 4)` or `(u8 *)skb[...]`.
fn load(d: RegArg, c: &mut Cursor<'_>) -> Result<Parsed, AsmError> {
    let span = c.span();
    let (size, signed) = cast(c, true)?;
    if c.eat_word("skb") {
        expect_same(d, packet_dst(d))?;
        if signed || size == Size::DW {
            return Err(unsupported(span, "packet loads are u8, u16 or u32"));
        }
        c.expect_punct("[")?;
        let p = if let Some(s) = c.peek_reg() {
            c.skip(1);
            expect_width(s, true)?;
            // `skb[r1]`, `skb[r1 + 4]`, `skb[r1 - 4]`, the kernel's `skb[r1 + -4]`.
            c.eat_punct("+");
            let imm = if c.at_number() { c.imm32()? } else { 0 };
            build::ldind(size, s, imm)
        } else {
            build::ldabs(size, c.imm32()?)
        };
        c.expect_punct("]")?;
        return Ok(p);
    }
    let (s, off) = paren_mem(c)?;
    if !d.wide && (signed || size == Size::DW) {
        return Err(d.span.error(AsmErrorKind::WidthMismatch {
            expected: "64-bit (r)",
            found: d.name(),
        }));
    }
    if signed && size == Size::DW {
        return Err(unsupported(span, "there is no s64 load"));
    }
    Ok(build::load(size, signed, d, s, off))
}

/// `r0`, the implicit destination of packet loads.
fn packet_dst(d: RegArg) -> RegArg {
    RegArg {
        field: Reg::R0.index(),
        wide: true,
        ..d
    }
}

/// The `rD = name(...)` and `rD = name[...]` forms.
fn named(d: RegArg, word: &str, span: Span, c: &mut Cursor<'_>) -> Result<Parsed, AsmError> {
    for (stem, op) in [
        ("le", EndianOp::ToLe),
        ("be", EndianOp::ToBe),
        ("bswap", EndianOp::Swap),
    ] {
        if let Some(bits @ ("16" | "32" | "64")) = word.strip_prefix(stem) {
            expect_width(d, true)?;
            let s = c.reg()?;
            expect_same(s, d)?;
            return Ok(build::endian(op, bits.parse().unwrap_or(64), d));
        }
    }
    if let Some(p) = lddw_named(d, word, c)? {
        return Ok(p);
    }
    if word == "load_acquire" {
        c.expect_punct("(")?;
        let (size, _) = cast(c, false)?;
        let (s, off) = paren_mem(c)?;
        c.expect_punct(")")?;
        if size == Size::DW {
            expect_width(d, true)?;
        }
        return Ok(build::load_acquire(size, d, s, off));
    }
    atomic_named(d, word, span, c)
}

/// `atomic_fetch_add(...)`, `xchg_64(...)`, `cmpxchg32_32(...)` and the
/// kernel's `atomic64_*` spellings.
fn atomic_named(d: RegArg, word: &str, span: Span, c: &mut Cursor<'_>) -> Result<Parsed, AsmError> {
    let unknown = || {
        span.error(AsmErrorKind::UnknownMnemonic {
            mnemonic: word.to_string(),
        })
    };
    // (operation, fixed size from the name, C-style `((u64 *)(r1 + 0), …)` arguments)
    let (op, fixed, typed) = match word {
        "xchg_64" => (AtomicOp::Xchg, Some(Size::DW), false),
        "xchg32_32" => (AtomicOp::Xchg, Some(Size::W), false),
        "cmpxchg_64" => (AtomicOp::CmpXchg, Some(Size::DW), false),
        "cmpxchg32_32" => (AtomicOp::CmpXchg, Some(Size::W), false),
        _ => {
            let (rest, fixed) = match word.strip_prefix("atomic64_") {
                Some(r) => (r, Some(Size::DW)),
                None => (word.strip_prefix("atomic_").ok_or_else(unknown)?, None),
            };
            let op = match rest {
                "fetch_add" => AtomicOp::Add { fetch: true },
                "fetch_or" => AtomicOp::Or { fetch: true },
                "fetch_and" => AtomicOp::And { fetch: true },
                "fetch_xor" => AtomicOp::Xor { fetch: true },
                "xchg" => AtomicOp::Xchg,
                "cmpxchg" => AtomicOp::CmpXchg,
                _ => return Err(unknown()),
            };
            (op, fixed, true)
        }
    };
    c.expect_punct("(")?;
    let (size, base, off) = if typed {
        let cast_span = c.span();
        let (size, _) = cast(c, false)?;
        let size = atomic_size(size, cast_span)?;
        if fixed.is_some_and(|f| f != size) {
            return Err(unsupported(cast_span, "atomic64_* operations are 64-bit"));
        }
        let (b, off) = paren_mem(c)?;
        (size, b, off)
    } else {
        let (b, off) = bare_mem(c)?;
        (fixed.unwrap_or(Size::DW), b, off)
    };
    if size == Size::DW {
        expect_width(d, true)?;
    }
    c.expect_punct(",")?;
    if op == AtomicOp::CmpXchg {
        // `r0 = cmpxchg(addr, r0, src)`: r0 is implied by the encoding.
        let r0 = RegArg { field: 0, ..d };
        expect_same(d, r0)?;
        let cmp = c.reg()?;
        expect_same(cmp, d)?;
        c.expect_punct(",")?;
    }
    let s = c.reg()?;
    if op == AtomicOp::CmpXchg {
        expect_width(s, d.wide)?;
    } else {
        expect_same(s, d)?;
    }
    c.expect_punct(")")?;
    Ok(build::atomic(size, op, base, s, off))
}

/// The kernel/bpftool pseudo `lddw` forms; `None` when `word` is not one.
fn lddw_named(d: RegArg, word: &str, c: &mut Cursor<'_>) -> Result<Option<Parsed>, AsmError> {
    let (kind, imm, next, jump) = match word {
        "map" => {
            c.expect_punct("[")?;
            let span = c.span();
            let (key, _) = c.ident("fd, id or idx")?;
            let by_idx = match key.as_str() {
                "fd" | "id" => false,
                "idx" => true,
                _ => return Err(unsupported(span, "maps are named by fd, id or idx")),
            };
            c.expect_punct(":")?;
            let imm = c.imm32()?;
            c.expect_punct("]")?;
            let mut value = false;
            if !by_idx && c.eat_punct("[") {
                c.int("map key", 0, 0)?;
                c.expect_punct("]")?;
                value = true;
            }
            let next = if value || c.is_punct("+") {
                c.expect_punct("+")?;
                value = true;
                c.imm32()?
            } else {
                0
            };
            let kind = match (by_idx, value) {
                (false, false) => LdDwKind::MapFd,
                (false, true) => LdDwKind::MapValue,
                (true, false) => LdDwKind::MapIdx,
                (true, true) => LdDwKind::MapIdxValue,
            };
            (kind, imm, next, None)
        }
        "btf_var" => {
            c.expect_punct("[")?;
            let imm = c.imm32()?;
            c.expect_punct("]")?;
            (LdDwKind::BtfId, imm, 0, None)
        }
        "subprog" => {
            c.expect_punct("[")?;
            let j = c.jump()?;
            c.expect_punct("]")?;
            (LdDwKind::Func, 0, 0, Some(j))
        }
        _ => return Ok(None),
    };
    expect_width(d, true)?;
    let uses_next = matches!(kind, LdDwKind::MapValue | LdDwKind::MapIdxValue);
    let next = if !uses_next && c.eat_word("next_imm") {
        c.expect_punct("=")?;
        c.imm32()?
    } else {
        next
    };
    match jump {
        Some(j) => build::lddw_func(d, j, next).map(Some),
        None => Ok(Some(build::lddw(d, kind, imm, next))),
    }
}
