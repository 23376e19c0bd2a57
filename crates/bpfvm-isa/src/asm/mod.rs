//! The assembler: text in one of two dialects to raw instruction slots.
//!
//! - [`Dialect::Conformance`]: the bpf_conformance `.data` dialect
//!   (`mov32 %r0, 1`, `ldxw %r0, [%r1+4]`, `jeq %r1, 2, label`), with the
//!   mnemonics of `isa-spec/opcodes.csv` for the extensions.
//! - [`Dialect::Llvm`]: what `llvm-objdump`, `llvm-mc`, bpftool and the
//!   kernel verifier log print (`w0 = *(u32 *)(r1 + 0x4)`,
//!   `if r1 > r2 goto +3`, `goto pc+2`, `call bpf_map_lookup_elem#1`).
//!
//! Both dialects accept labels (`name:`, alone or before an instruction),
//! relative targets (`+3`, `-1`, and `pc+3` in the LLVM dialect), a raw
//! slot as `.quad 0x...` (the form [`crate::disasm::disassemble`] prints for
//! undecodable slots), and a leading listing number (`  12: `, and in the
//! LLVM dialect the verifier log's `(b7)` opcode), which is ignored, so
//! every listing that module prints assembles back.
//!
//! The result is raw slots, not a validated [`crate::Program`]: negative
//! tests assemble jumps out of the program and the fake registers
//! `r11`–`r15`, which [`crate::Program::from_slots`] then rejects. What the
//! assembler does refuse is text no encoding can express (a 32-bit
//! `(s32)` move, `w1 += r2`, an offset beyond 16 bits).
//!
//! The two parsers only read syntax; operand checks, label resolution and
//! encoding are shared (`common.rs`, this file), and encoding itself is
//! [`crate::Insn::encode`].
//!
//! ```
//! use bpfvm_isa::asm::{Dialect, assemble};
//! let a = assemble("mov32 %r0, 1\nja +0\nexit", Dialect::Conformance).unwrap();
//! let b = assemble("w0 = 1\ngoto +0\nexit", Dialect::Llvm).unwrap();
//! assert_eq!(a, b);
//! let err = assemble("exit\nr0 = *(u32 *)(r1 + 70000)", Dialect::Llvm).unwrap_err();
//! assert_eq!((err.line, err.column), (2, 18));
//! ```

mod common;
mod conformance;
mod lexer;
mod llvm;

use std::collections::HashMap;
use std::fmt;

use crate::{CallKind, Insn, LdDwKind, RawInsn};
use common::{Item, Parsed, Target};

/// Which assembly dialect the source is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// LLVM / kernel notation: `r0 = *(u32 *)(r1 + 4)`.
    Llvm,
    /// The bpf_conformance dialect: `ldxw %r0, [%r1+4]`.
    Conformance,
}

/// An assembly error, at a 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct AsmError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// What is wrong.
    pub kind: AsmErrorKind,
}

impl fmt::Display for AsmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.kind
        )
    }
}

/// Why a statement does not assemble.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsmErrorKind {
    /// A character no token starts with.
    #[error("unexpected character {ch:?}")]
    UnexpectedChar {
        /// The character.
        ch: char,
    },
    /// A malformed or too large number.
    #[error("invalid number `{text}`")]
    InvalidNumber {
        /// The text as written.
        text: String,
    },
    /// Something else stands where the grammar needs a particular thing.
    #[error("expected {expected}, found {found}")]
    Expected {
        /// What was needed.
        expected: &'static str,
        /// What was there (`` `tok` `` or `end of line`).
        found: String,
    },
    /// An unknown mnemonic or statement form.
    #[error("unknown instruction `{mnemonic}`")]
    UnknownMnemonic {
        /// The word.
        mnemonic: String,
    },
    /// A number outside the range of its field.
    #[error("{value} is out of range for {what} ({min}..={max})")]
    OutOfRange {
        /// The field (`offset`, `32-bit immediate`…).
        what: &'static str,
        /// The value written.
        value: i128,
        /// Smallest accepted.
        min: i128,
        /// Largest accepted.
        max: i128,
    },
    /// Operands mix `w` and `r` registers, or use the wrong one.
    #[error("register {found} has the wrong width here (expected a {expected} register)")]
    WidthMismatch {
        /// `w` (32-bit) or `r` (64-bit).
        expected: &'static str,
        /// The register written.
        found: String,
    },
    /// A register that must repeat another one (`r1 = -r1`) or be fixed (`r0`).
    #[error("expected register {expected}, found {found}")]
    RegisterMismatch {
        /// The register required.
        expected: String,
        /// The register written.
        found: String,
    },
    /// A well-formed statement that no encoding expresses.
    #[error("{what}")]
    Unsupported {
        /// Explanation.
        what: &'static str,
    },
    /// A jump to a label never defined.
    #[error("undefined label `{label}`")]
    UndefinedLabel {
        /// The label.
        label: String,
    },
    /// A label defined twice.
    #[error("label `{label}` is already defined on line {first_line}")]
    DuplicateLabel {
        /// The label.
        label: String,
        /// Where it was first defined.
        first_line: usize,
    },
    /// A label too far away for the jump's offset field.
    #[error("`{label}` is {offset} slots away, too far for a {bits}-bit offset")]
    TargetOutOfRange {
        /// The label.
        label: String,
        /// The offset it would need.
        offset: i64,
        /// Width of the field (16 or 32).
        bits: u8,
    },
}

/// Assembles `source` into instruction slots (a `lddw` gives two).
///
/// Labels may be used before they are defined. In the conformance dialect
/// the first `exit` also defines the label `exit`, unless the source
/// defines one itself.
pub fn assemble(source: &str, dialect: Dialect) -> Result<Vec<RawInsn>, AsmError> {
    let statements = lexer::lex(source, dialect)?;
    let mut items = Vec::new();
    for st in &statements {
        match dialect {
            Dialect::Llvm => llvm::parse(st, &mut items)?,
            Dialect::Conformance => conformance::parse(st, &mut items)?,
        }
    }
    link(items, dialect == Dialect::Conformance)
}

/// Lays out the items, resolves labels and encodes.
fn link(items: Vec<Item>, implicit_exit: bool) -> Result<Vec<RawInsn>, AsmError> {
    let mut labels: HashMap<String, (usize, usize)> = HashMap::new();
    let mut pc = 0usize;
    let mut first_exit = None;
    let mut placed = Vec::new();
    for item in items {
        match item {
            Item::Label { name, span } => {
                if let Some(&(_, first_line)) = labels.get(&name) {
                    return Err(span.error(AsmErrorKind::DuplicateLabel {
                        label: name,
                        first_line,
                    }));
                }
                labels.insert(name, (pc, span.line));
            }
            Item::Raw(raw) => {
                placed.push((pc, Item::Raw(raw)));
                pc += 1;
            }
            Item::Insn(p) => {
                if p.insn == Insn::Exit && first_exit.is_none() {
                    first_exit = Some(pc);
                }
                let n = p.insn.slots();
                placed.push((pc, Item::Insn(p)));
                pc += n;
            }
        }
    }
    if implicit_exit && let Some(at) = first_exit {
        labels.entry("exit".to_string()).or_insert((at, 0));
    }
    let mut out = Vec::with_capacity(pc);
    for (pc, item) in placed {
        match item {
            Item::Raw(raw) => out.push(raw),
            Item::Insn(p) => out.extend(resolve(pc, p, &labels)?),
            Item::Label { .. } => {}
        }
    }
    Ok(out)
}

/// Fills in a label target, encodes, and writes the raw register fields
/// (which may name r11–r15).
fn resolve(
    pc: usize,
    p: Parsed,
    labels: &HashMap<String, (usize, usize)>,
) -> Result<Vec<RawInsn>, AsmError> {
    let mut insn = p.insn;
    if let Some(Target { name, span }) = p.target {
        let &(at, _) = labels.get(&name).ok_or_else(|| {
            span.error(AsmErrorKind::UndefinedLabel {
                label: name.clone(),
            })
        })?;
        let offset = at as i64 - (pc as i64 + 1);
        set_target(&mut insn, offset).map_err(|bits| {
            span.error(AsmErrorKind::TargetOutOfRange {
                label: name,
                offset,
                bits,
            })
        })?;
    }
    Ok(common::encode(insn, p.dst, p.src))
}

/// Stores a relative target in the field the instruction keeps it in;
/// `Err(bits)` when it does not fit.
pub(crate) fn set_target(insn: &mut Insn, offset: i64) -> Result<(), u8> {
    let narrow = i16::try_from(offset).map_err(|_| 16u8);
    let wide = i32::try_from(offset).map_err(|_| 32u8);
    match insn {
        Insn::Ja { off, long: true } => *off = wide?,
        Insn::Ja { off, long: false } => *off = narrow?.into(),
        Insn::Jmp { off, .. } | Insn::MayGoto { off } => *off = narrow?,
        Insn::Call {
            kind: CallKind::Local,
            imm,
        }
        | Insn::LdDw {
            kind: LdDwKind::Func,
            imm,
            ..
        } => *imm = wide?,
        _ => {}
    }
    Ok(())
}
