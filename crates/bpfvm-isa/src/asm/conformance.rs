//! Parser of the bpf_conformance dialect: `mnemonic operands`, one
//! statement per line, `#` comments, `label:`.
//!
//! Registers are `%r0`–`%r10` (`r0` without `%` is accepted too) and
//! `%r11`–`%r15` for negative tests. A bare mnemonic is 64-bit, a `32`
//! suffix 32-bit (`64` is accepted as well). Memory operands are `[%rN]`,
//! `[%rN+off]`, `[%rN-off]`. Jump targets are labels or `+N`/`-N`.

use super::common::{Cursor, Item, Operand, Parsed, RegArg, build};
use super::lexer::{Span, Statement, Tok};
use super::{AsmError, AsmErrorKind, Dialect};
use crate::disasm::conformance as names;
use crate::{AluOp, AtomicOp, CallKind, EndianOp, JmpOp, LdDwKind, RawInsn, Size, Width};

/// Parses one statement into `items` (labels and at most one instruction).
pub(crate) fn parse(st: &Statement, items: &mut Vec<Item>) -> Result<(), AsmError> {
    let mut c = Cursor::new(st, Dialect::Conformance);
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
    let (word, span) = c.ident("instruction")?;
    let item = instruction(&word, span, &mut c)?;
    c.finish()?;
    items.push(item);
    Ok(())
}

fn unknown(word: &str, span: Span) -> AsmError {
    span.error(AsmErrorKind::UnknownMnemonic {
        mnemonic: word.to_string(),
    })
}

/// `b`, `h`, `w`, `dw`.
fn size_suffix(s: &str) -> Option<Size> {
    Some(match s {
        "b" => Size::B,
        "h" => Size::H,
        "w" => Size::W,
        "dw" => Size::DW,
        _ => return None,
    })
}

/// Splits a `32`/`64` width suffix off a mnemonic (none means 64-bit).
fn width_suffix(word: &str) -> (&str, Width) {
    if let Some(base) = word.strip_suffix("32") {
        (base, Width::W32)
    } else {
        (word.strip_suffix("64").unwrap_or(word), Width::W64)
    }
}

/// The ALU operation named `name` (`add`, `movsx8`…), by the printer's table.
fn alu_op(name: &str) -> Option<AluOp> {
    names::ALU_OPS
        .into_iter()
        .find(|op| names::alu_name(*op) == name)
}

/// The comparison named `name` (`jeq`…), by the printer's table.
fn jmp_op(name: &str) -> Option<JmpOp> {
    JmpOp::ALL
        .into_iter()
        .find(|op| names::jmp_name(*op) == name)
}

/// `[%rN+off]`.
fn mem(c: &mut Cursor<'_>) -> Result<(RegArg, i16), AsmError> {
    c.expect_punct("[")?;
    let r = c.reg()?;
    let off = c.offset()?;
    c.expect_punct("]")?;
    Ok((r, off))
}

fn comma(c: &mut Cursor<'_>) -> Result<(), AsmError> {
    c.expect_punct(",")
}

fn instruction(word: &str, span: Span, c: &mut Cursor<'_>) -> Result<Item, AsmError> {
    let p = match word {
        "exit" => build::exit(),
        ".quad" | ".8byte" => return Ok(Item::Raw(RawInsn::from_u64(c.imm64()?))),
        "ja" => build::ja(false, c.jump()?)?,
        "ja32" | "gotol" => build::ja(true, c.jump()?)?,
        "may_goto" => build::may_goto(c.jump()?)?,
        "call" => call(c)?,
        "callx" => build::callx(c.reg()?),
        "lock" => lock(c)?,
        "lddw" => {
            let d = c.reg()?;
            comma(c)?;
            build::lddw64(d, c.imm64()?)
        }
        "lddw_func" => {
            let d = c.reg()?;
            comma(c)?;
            let target = c.jump()?;
            let next = if c.eat_punct(",") { c.imm32()? } else { 0 };
            build::lddw_func(d, target, next)?
        }
        _ if word.starts_with("lddw_") => {
            let kind = match word {
                "lddw_map_fd" => LdDwKind::MapFd,
                "lddw_map_value" => LdDwKind::MapValue,
                "lddw_btf_var" => LdDwKind::BtfId,
                "lddw_map_idx" => LdDwKind::MapIdx,
                "lddw_map_idx_value" => LdDwKind::MapIdxValue,
                _ => return Err(unknown(word, span)),
            };
            let d = c.reg()?;
            comma(c)?;
            let imm = c.imm32()?;
            let needs_next = matches!(kind, LdDwKind::MapValue | LdDwKind::MapIdxValue);
            let next = if needs_next || c.is_punct(",") {
                comma(c)?;
                c.imm32()?
            } else {
                0
            };
            build::lddw(d, kind, imm, next)
        }
        _ => return shaped(word, span, c).map(Item::Insn),
    };
    Ok(Item::Insn(p))
}

/// Mnemonics built from a stem and a size or width suffix.
fn shaped(word: &str, span: Span, c: &mut Cursor<'_>) -> Result<Parsed, AsmError> {
    for (stem, op) in [
        ("le", EndianOp::ToLe),
        ("be", EndianOp::ToBe),
        ("bswap", EndianOp::Swap),
        ("swap", EndianOp::Swap),
    ] {
        if let Some(bits @ ("16" | "32" | "64")) = word.strip_prefix(stem) {
            let bits = bits.parse().unwrap_or(64);
            return Ok(build::endian(op, bits, c.reg()?));
        }
    }
    // Memory access: the stem, then b/h/w/dw.
    for stem in [
        "ldxs", "ldx", "ldacq", "ldabs", "ldind", "strel", "stx", "st",
    ] {
        let Some(size) = word.strip_prefix(stem).and_then(size_suffix) else {
            continue;
        };
        let packet_dw = matches!(stem, "ldabs" | "ldind") && size == Size::DW;
        if packet_dw || (stem == "ldxs" && size == Size::DW) {
            return Err(span.error(AsmErrorKind::Unsupported {
                what: "no 64-bit form of this load exists",
            }));
        }
        return Ok(match stem {
            "ldxs" | "ldx" | "ldacq" => {
                let d = c.reg()?;
                comma(c)?;
                let (s, off) = mem(c)?;
                match stem {
                    "ldacq" => build::load_acquire(size, d, s, off),
                    _ => build::load(size, stem == "ldxs", d, s, off),
                }
            }
            "ldabs" => build::ldabs(size, c.imm32()?),
            "ldind" => {
                let s = c.reg()?;
                comma(c)?;
                build::ldind(size, s, c.imm32()?)
            }
            _ => {
                let (d, off) = mem(c)?;
                comma(c)?;
                match stem {
                    "strel" => build::store_release(size, d, c.reg()?, off),
                    "stx" => build::store(size, d, off, Operand::Reg(c.reg()?)),
                    _ => build::store(size, d, off, Operand::Imm(c.imm32()?)),
                }
            }
        });
    }
    let (base, width) = width_suffix(word);
    if let Some(op) = jmp_op(base) {
        let d = c.reg()?;
        comma(c)?;
        let s = c.operand()?;
        comma(c)?;
        return build::jmp(width, op, d, s, c.jump()?);
    }
    if base == "neg" {
        return Ok(build::neg(width, c.reg()?));
    }
    let op = alu_op(base).ok_or_else(|| unknown(word, span))?;
    if width == Width::W32 && op == AluOp::MovSx32 {
        return Err(span.error(AsmErrorKind::Unsupported {
            what: "a 32-bit move sign-extends only from 8 or 16 bits",
        }));
    }
    let d = c.reg()?;
    comma(c)?;
    let s = c.operand()?;
    let movsx = matches!(op, AluOp::MovSx8 | AluOp::MovSx16 | AluOp::MovSx32);
    if movsx && matches!(s, Operand::Imm(_)) {
        return Err(span.error(AsmErrorKind::Unsupported {
            what: "a sign-extending move takes a register",
        }));
    }
    Ok(build::alu(width, op, d, s))
}

/// `call N`, `call helper N`, `call local target`, `call runtime N`, `call %rN`.
fn call(c: &mut Cursor<'_>) -> Result<Parsed, AsmError> {
    if c.eat_word("local") {
        return build::call_local(c.jump()?);
    }
    let kind = if c.eat_word("runtime") {
        CallKind::Kfunc
    } else {
        c.eat_word("helper");
        CallKind::Helper
    };
    if kind == CallKind::Helper
        && let Some(r) = c.peek_reg()
    {
        c.skip(1);
        return Ok(build::callx(r));
    }
    Ok(build::call(kind, c.imm32()?))
}

/// `lock [fetch] op[32] [%rD+off], %rS`.
fn lock(c: &mut Cursor<'_>) -> Result<Parsed, AsmError> {
    let fetch = c.eat_word("fetch");
    let (word, span) = c.ident("atomic operation")?;
    let (base, width) = width_suffix(&word);
    let op = match base {
        "add" => AtomicOp::Add { fetch },
        "or" => AtomicOp::Or { fetch },
        "and" => AtomicOp::And { fetch },
        "xor" => AtomicOp::Xor { fetch },
        "xchg" => AtomicOp::Xchg,
        "cmpxchg" => AtomicOp::CmpXchg,
        _ => return Err(unknown(&word, span)),
    };
    let size = if width == Width::W32 {
        Size::W
    } else {
        Size::DW
    };
    let (d, off) = mem(c)?;
    comma(c)?;
    Ok(build::atomic(size, op, d, c.reg()?, off))
}
