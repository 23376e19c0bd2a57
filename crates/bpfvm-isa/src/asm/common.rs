//! What both dialects share: the token cursor, registers, numbers with
//! their range checks, jump targets, and one constructor per instruction
//! shape that records which raw field each register operand lands in.

use super::lexer::{Span, Statement, Tok, Token};
use super::{AsmError, AsmErrorKind, Dialect};
use crate::{
    AluOp, AtomicOp, CallKind, EndianOp, Insn, JmpOp, LdDwKind, RawInsn, Reg, Size, Source, Width,
};

/// One assembled statement, before layout.
#[derive(Debug)]
pub(crate) enum Item {
    /// `name:` at the current pc.
    Label {
        /// The label.
        name: String,
        /// Where it is defined.
        span: Span,
    },
    /// An instruction.
    Insn(Parsed),
    /// A `.quad` slot.
    Raw(RawInsn),
}

/// A jump to a label, resolved after layout.
#[derive(Debug)]
pub(crate) struct Target {
    pub name: String,
    pub span: Span,
}

/// An instruction with its register fields as written (0–15) and an
/// unresolved label target.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub insn: Insn,
    pub dst: Option<u8>,
    pub src: Option<u8>,
    pub target: Option<Target>,
}

impl Parsed {
    fn new(insn: Insn) -> Self {
        Parsed {
            insn,
            dst: None,
            src: None,
            target: None,
        }
    }

    fn dst(mut self, r: RegArg) -> Self {
        self.dst = Some(r.field);
        self
    }

    fn src(mut self, r: RegArg) -> Self {
        self.src = Some(r.field);
        self
    }

    fn src_of(self, s: Operand) -> Self {
        match s {
            Operand::Reg(r) => self.src(r),
            Operand::Imm(_) => self,
        }
    }

    /// Applies a jump target: a relative one now, a label after layout.
    pub fn jump(mut self, jump: Jump) -> Result<Self, AsmError> {
        match jump {
            Jump::Label(t) => self.target = Some(t),
            Jump::Rel(offset, span) => {
                super::set_target(&mut self.insn, offset).map_err(|bits| {
                    let max = (1i128 << (bits - 1)) - 1;
                    span.error(AsmErrorKind::OutOfRange {
                        what: "jump offset",
                        value: offset.into(),
                        min: -max - 1,
                        max,
                    })
                })?;
            }
        }
        Ok(self)
    }
}

/// Encodes, then writes register fields that may name r11–r15.
pub(crate) fn encode(insn: Insn, dst: Option<u8>, src: Option<u8>) -> Vec<RawInsn> {
    let mut slots = insn.encode().as_slice().to_vec();
    if let Some(first) = slots.first_mut() {
        if let Some(d) = dst {
            first.dst = d & 0x0f;
        }
        if let Some(s) = src {
            first.src = s & 0x0f;
        }
    }
    slots
}

/// A register as written: its field value (0–15, r11–r15 only for
/// negative tests) and whether it was spelled as 64-bit (`r`) or 32-bit (`w`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RegArg {
    pub field: u8,
    pub wide: bool,
    pub span: Span,
}

impl RegArg {
    /// The register for building an [`Insn`]; r11–r15 become r0 and are
    /// restored in the raw field by [`encode`].
    pub fn reg(self) -> Reg {
        Reg::new(self.field).unwrap_or(Reg::R0)
    }

    pub fn name(self) -> String {
        format!("{}{}", if self.wide { 'r' } else { 'w' }, self.field)
    }
}

/// Reads a register name: `r0`–`r15`, `w0`–`w15` (LLVM), `%r0`–`%r15` or
/// `r0`–`r15` (conformance).
pub(crate) fn reg_name(word: &str, dialect: Dialect) -> Option<(u8, bool)> {
    let (wide, digits) = match dialect {
        Dialect::Conformance => (
            true,
            word.strip_prefix('%').unwrap_or(word).strip_prefix('r')?,
        ),
        Dialect::Llvm => match word.strip_prefix('r') {
            Some(d) => (true, d),
            None => (false, word.strip_prefix('w')?),
        },
    };
    if digits.is_empty() || digits.len() > 2 || (digits.len() == 2 && digits.starts_with('0')) {
        return None;
    }
    let n: u8 = digits.parse().ok()?;
    (n <= 15).then_some((n, wide))
}

/// The second operand of ALU, jump and store instructions.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Operand {
    Reg(RegArg),
    Imm(i32),
}

impl Operand {
    pub fn source(self) -> Source {
        match self {
            Operand::Reg(r) => Source::Reg(r.reg()),
            Operand::Imm(i) => Source::Imm(i),
        }
    }
}

/// A jump target as written.
#[derive(Debug)]
pub(crate) enum Jump {
    Rel(i64, Span),
    Label(Target),
}

/// Walks the tokens of one statement.
pub(crate) struct Cursor<'a> {
    toks: &'a [Token],
    pos: usize,
    end: Span,
    pub dialect: Dialect,
}

impl<'a> Cursor<'a> {
    pub fn new(st: &'a Statement, dialect: Dialect) -> Self {
        Cursor {
            toks: &st.tokens,
            pos: 0,
            end: st.end,
            dialect,
        }
    }

    pub fn peek(&self) -> Option<&'a Token> {
        self.toks.get(self.pos)
    }

    pub fn peek_nth(&self, n: usize) -> Option<&'a Tok> {
        self.toks.get(self.pos + n).map(|t| &t.tok)
    }

    pub fn next(&mut self) -> Option<&'a Token> {
        let t = self.toks.get(self.pos);
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    pub fn skip(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.toks.len());
    }

    /// Where the next token starts, or the end of the statement.
    pub fn span(&self) -> Span {
        self.peek().map_or(self.end, |t| t.span)
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }

    /// "expected `what`, found …" at the next token.
    pub fn expected(&self, what: &'static str) -> AsmError {
        let found = self
            .peek()
            .map_or_else(|| "end of line".to_string(), Token::describe);
        self.span().error(AsmErrorKind::Expected {
            expected: what,
            found,
        })
    }

    pub fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek().map(|t| &t.tok), Some(Tok::Punct(q)) if *q == p)
    }

    pub fn eat_punct(&mut self, p: &str) -> bool {
        let hit = self.is_punct(p);
        if hit {
            self.pos += 1;
        }
        hit
    }

    pub fn expect_punct(&mut self, p: &'static str) -> Result<(), AsmError> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            Err(self.expected(quoted(p)))
        }
    }

    pub fn is_word(&self, w: &str) -> bool {
        matches!(self.peek().map(|t| &t.tok), Some(Tok::Ident(s)) if s == w)
    }

    pub fn eat_word(&mut self, w: &str) -> bool {
        let hit = self.is_word(w);
        if hit {
            self.pos += 1;
        }
        hit
    }

    pub fn expect_word(&mut self, w: &'static str) -> Result<(), AsmError> {
        if self.eat_word(w) {
            Ok(())
        } else {
            Err(self.expected(quoted(w)))
        }
    }

    /// The next identifier.
    pub fn ident(&mut self, what: &'static str) -> Result<(String, Span), AsmError> {
        match self.peek() {
            Some(Token {
                tok: Tok::Ident(s),
                span,
            }) => {
                self.pos += 1;
                Ok((s.clone(), *span))
            }
            _ => Err(self.expected(what)),
        }
    }

    /// Errors unless every token was used.
    pub fn finish(&self) -> Result<(), AsmError> {
        if self.at_end() {
            Ok(())
        } else {
            Err(self.expected("end of statement"))
        }
    }

    /// The next token, if it is a register.
    pub fn peek_reg(&self) -> Option<RegArg> {
        match self.peek() {
            Some(Token {
                tok: Tok::Ident(s),
                span,
            }) => reg_name(s, self.dialect).map(|(field, wide)| RegArg {
                field,
                wide,
                span: *span,
            }),
            _ => None,
        }
    }

    pub fn reg(&mut self) -> Result<RegArg, AsmError> {
        let r = self.peek_reg().ok_or_else(|| self.expected("register"))?;
        self.pos += 1;
        Ok(r)
    }

    /// A 64-bit (`r`) register.
    pub fn reg64(&mut self) -> Result<RegArg, AsmError> {
        let r = self.reg()?;
        expect_width(r, true)?;
        Ok(r)
    }

    /// Whether a (signed) number follows.
    pub fn at_number(&self) -> bool {
        match self.peek_nth(0) {
            Some(Tok::Num(_)) => true,
            Some(Tok::Punct("+" | "-")) => matches!(self.peek_nth(1), Some(Tok::Num(_))),
            _ => false,
        }
    }

    /// An optionally signed number.
    pub fn signed(&mut self) -> Result<(i128, Span), AsmError> {
        let span = self.span();
        let neg = if self.eat_punct("-") {
            true
        } else {
            self.eat_punct("+");
            false
        };
        match self.peek() {
            Some(Token {
                tok: Tok::Num(n), ..
            }) => {
                self.pos += 1;
                let v = i128::from(*n);
                Ok((if neg { -v } else { v }, span))
            }
            _ => Err(self.expected("number")),
        }
    }

    /// A number in `min..=max`.
    pub fn int(&mut self, what: &'static str, min: i128, max: i128) -> Result<i128, AsmError> {
        let (v, span) = self.signed()?;
        in_range(v, span, what, min, max)
    }

    /// A 32-bit immediate: signed, or unsigned up to `0xffffffff` (wraps).
    pub fn imm32(&mut self) -> Result<i32, AsmError> {
        let v = self.int("32-bit immediate", i32::MIN.into(), u32::MAX.into())?;
        Ok(v as u32 as i32)
    }

    /// A 64-bit immediate: signed, or unsigned up to `u64::MAX` (wraps).
    pub fn imm64(&mut self) -> Result<u64, AsmError> {
        let v = self.int("64-bit immediate", i64::MIN.into(), u64::MAX.into())?;
        Ok(v as u64)
    }

    /// A `+off` / `-off` memory offset (the sign token is required unless
    /// the offset is absent). `+ -4` (the kernel's `skb[r1 + -4]`) is accepted.
    pub fn offset(&mut self) -> Result<i16, AsmError> {
        let span = self.span();
        let neg = if self.eat_punct("-") {
            true
        } else if self.eat_punct("+") {
            false
        } else {
            return Ok(0);
        };
        let (v, _) = self.signed()?;
        let v = if neg { -v } else { v };
        Ok(in_range(v, span, "offset", i16::MIN.into(), i16::MAX.into())? as i16)
    }

    /// A register or a 32-bit immediate.
    pub fn operand(&mut self) -> Result<Operand, AsmError> {
        if let Some(r) = self.peek_reg() {
            self.pos += 1;
            Ok(Operand::Reg(r))
        } else if self.at_number() {
            Ok(Operand::Imm(self.imm32()?))
        } else {
            Err(self.expected("register or number"))
        }
    }

    /// A jump target: `+3`, `-1`, `3`, a label, and in the LLVM dialect `pc+3`.
    pub fn jump(&mut self) -> Result<Jump, AsmError> {
        if self.dialect == Dialect::Llvm
            && self.is_word("pc")
            && matches!(self.peek_nth(1), Some(Tok::Punct("+" | "-")))
        {
            self.pos += 1;
        }
        if self.at_number() {
            let (v, span) = self.signed()?;
            let v = in_range(v, span, "jump offset", i32::MIN.into(), i32::MAX.into())?;
            return Ok(Jump::Rel(v as i64, span));
        }
        match self.peek() {
            Some(Token {
                tok: Tok::Ident(name),
                span,
            }) if self.peek_reg().is_none() => {
                self.pos += 1;
                Ok(Jump::Label(Target {
                    name: name.clone(),
                    span: *span,
                }))
            }
            _ => Err(self.expected("jump target")),
        }
    }
}

/// A literal token as an error message names it: `` `,` ``.
fn quoted(t: &'static str) -> &'static str {
    match t {
        "(" => "`(`",
        ")" => "`)`",
        "[" => "`[`",
        "]" => "`]`",
        "*" => "`*`",
        "+" => "`+`",
        "," => "`,`",
        ":" => "`:`",
        "=" => "`=`",
        "goto" => "`goto`",
        other => other,
    }
}

pub(crate) fn in_range(
    v: i128,
    span: Span,
    what: &'static str,
    min: i128,
    max: i128,
) -> Result<i128, AsmError> {
    if (min..=max).contains(&v) {
        Ok(v)
    } else {
        Err(span.error(AsmErrorKind::OutOfRange {
            what,
            value: v,
            min,
            max,
        }))
    }
}

/// Errors unless `r` has the required width.
pub(crate) fn expect_width(r: RegArg, wide: bool) -> Result<(), AsmError> {
    if r.wide == wide {
        Ok(())
    } else {
        Err(r.span.error(AsmErrorKind::WidthMismatch {
            expected: if wide { "64-bit (r)" } else { "32-bit (w)" },
            found: r.name(),
        }))
    }
}

/// Errors unless `r` is the register `expected` (same number and width).
pub(crate) fn expect_same(r: RegArg, expected: RegArg) -> Result<(), AsmError> {
    if r.field == expected.field && r.wide == expected.wide {
        Ok(())
    } else {
        Err(r.span.error(AsmErrorKind::RegisterMismatch {
            expected: expected.name(),
            found: r.name(),
        }))
    }
}

/// The constructors: one per instruction shape, shared by both parsers.
pub(crate) mod build {
    use super::*;

    pub fn alu(width: Width, op: AluOp, dst: RegArg, src: Operand) -> Parsed {
        Parsed::new(Insn::Alu {
            width,
            op,
            dst: dst.reg(),
            src: src.source(),
        })
        .dst(dst)
        .src_of(src)
    }

    pub fn neg(width: Width, dst: RegArg) -> Parsed {
        Parsed::new(Insn::Neg {
            width,
            dst: dst.reg(),
        })
        .dst(dst)
    }

    pub fn endian(op: EndianOp, bits: u8, dst: RegArg) -> Parsed {
        Parsed::new(Insn::Endian {
            op,
            bits,
            dst: dst.reg(),
        })
        .dst(dst)
    }

    pub fn lddw(dst: RegArg, kind: LdDwKind, imm: i32, next_imm: i32) -> Parsed {
        Parsed::new(Insn::LdDw {
            dst: dst.reg(),
            kind,
            imm,
            next_imm,
        })
        .dst(dst)
    }

    pub fn lddw64(dst: RegArg, value: u64) -> Parsed {
        lddw(
            dst,
            LdDwKind::Imm,
            value as u32 as i32,
            (value >> 32) as u32 as i32,
        )
    }

    pub fn load(size: Size, signed: bool, dst: RegArg, src: RegArg, off: i16) -> Parsed {
        Parsed::new(Insn::Load {
            size,
            signed,
            dst: dst.reg(),
            src: src.reg(),
            off,
        })
        .dst(dst)
        .src(src)
    }

    pub fn store(size: Size, dst: RegArg, off: i16, src: Operand) -> Parsed {
        Parsed::new(Insn::Store {
            size,
            dst: dst.reg(),
            off,
            src: src.source(),
        })
        .dst(dst)
        .src_of(src)
    }

    pub fn atomic(size: Size, op: AtomicOp, dst: RegArg, src: RegArg, off: i16) -> Parsed {
        Parsed::new(Insn::Atomic {
            size,
            op,
            dst: dst.reg(),
            src: src.reg(),
            off,
        })
        .dst(dst)
        .src(src)
    }

    pub fn load_acquire(size: Size, dst: RegArg, src: RegArg, off: i16) -> Parsed {
        Parsed::new(Insn::LoadAcquire {
            size,
            dst: dst.reg(),
            src: src.reg(),
            off,
        })
        .dst(dst)
        .src(src)
    }

    pub fn store_release(size: Size, dst: RegArg, src: RegArg, off: i16) -> Parsed {
        Parsed::new(Insn::StoreRelease {
            size,
            dst: dst.reg(),
            src: src.reg(),
            off,
        })
        .dst(dst)
        .src(src)
    }

    pub fn ldabs(size: Size, imm: i32) -> Parsed {
        Parsed::new(Insn::LdAbs { size, imm })
    }

    pub fn ldind(size: Size, src: RegArg, imm: i32) -> Parsed {
        Parsed::new(Insn::LdInd {
            size,
            src: src.reg(),
            imm,
        })
        .src(src)
    }

    pub fn ja(long: bool, target: Jump) -> Result<Parsed, AsmError> {
        Parsed::new(Insn::Ja { off: 0, long }).jump(target)
    }

    pub fn jmp(
        width: Width,
        op: JmpOp,
        dst: RegArg,
        src: Operand,
        target: Jump,
    ) -> Result<Parsed, AsmError> {
        Parsed::new(Insn::Jmp {
            width,
            op,
            dst: dst.reg(),
            src: src.source(),
            off: 0,
        })
        .dst(dst)
        .src_of(src)
        .jump(target)
    }

    pub fn may_goto(target: Jump) -> Result<Parsed, AsmError> {
        Parsed::new(Insn::MayGoto { off: 0 }).jump(target)
    }

    pub fn call(kind: CallKind, imm: i32) -> Parsed {
        Parsed::new(Insn::Call { kind, imm })
    }

    pub fn call_local(target: Jump) -> Result<Parsed, AsmError> {
        call(CallKind::Local, 0).jump(target)
    }

    pub fn lddw_func(dst: RegArg, target: Jump, next_imm: i32) -> Result<Parsed, AsmError> {
        lddw(dst, LdDwKind::Func, 0, next_imm).jump(target)
    }

    pub fn callx(reg: RegArg) -> Parsed {
        Parsed::new(Insn::Callx { reg: reg.reg() }).dst(reg)
    }

    pub fn exit() -> Parsed {
        Parsed::new(Insn::Exit)
    }
}

/// The `(u8 *)` / `u32` size names of the LLVM dialect (and `s8`… when
/// `signed` is allowed).
pub(crate) fn size_word(word: &str) -> Option<(Size, bool)> {
    Some(match word {
        "u8" => (Size::B, false),
        "u16" => (Size::H, false),
        "u32" => (Size::W, false),
        "u64" => (Size::DW, false),
        "s8" => (Size::B, true),
        "s16" => (Size::H, true),
        "s32" => (Size::W, true),
        _ => return None,
    })
}
