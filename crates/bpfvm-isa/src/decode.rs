//! Decoding slots into [`Insn`] and encoding them back.

use std::fmt;

use crate::spec::{self, FieldRule};
use crate::{
    AluOp, AtomicOp, CallKind, EndianOp, Insn, JmpOp, LOAD_ACQ_IMM, LdDwKind, RawInsn, Reg,
    STORE_REL_IMM, Size, Source, Width,
};

/// A field of an instruction slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The destination register field.
    Dst,
    /// The source register field.
    Src,
    /// The 16-bit offset.
    Off,
    /// The 32-bit immediate.
    Imm,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Dst => "dst",
            Field::Src => "src",
            Field::Off => "off",
            Field::Imm => "imm",
        })
    }
}

/// Why one slot (or slot pair) does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// No instruction has this opcode byte.
    #[error("unknown opcode 0x{opcode:02x}")]
    UnknownOpcode {
        /// The opcode byte.
        opcode: u8,
    },
    /// A field the instruction does not use holds a non-zero value.
    #[error("opcode 0x{opcode:02x} uses reserved field {field} (must be 0, is {value:#x})")]
    ReservedField {
        /// The opcode byte.
        opcode: u8,
        /// The field.
        field: Field,
        /// Its value.
        value: i64,
    },
    /// A field that selects the operation holds a value that selects none.
    #[error("opcode 0x{opcode:02x}: {field} {value:#x} selects no instruction")]
    InvalidField {
        /// The opcode byte.
        opcode: u8,
        /// The field.
        field: Field,
        /// Its value.
        value: i64,
    },
    /// A register field names r11–r15.
    #[error("invalid register r{value} in {field}")]
    InvalidRegister {
        /// `Dst` or `Src`.
        field: Field,
        /// The register number (11..=15).
        value: u8,
    },
    /// A `lddw` is the last slot of the program.
    #[error("lddw is missing its second slot")]
    LddwTruncated,
    /// The second slot of a `lddw` has a non-zero field other than `imm`.
    #[error("second slot of lddw must be all zero except imm, but {field} is {value:#x}")]
    LddwBadSecondSlot {
        /// The offending field (`Dst`, `Src`, `Off`, or `Imm` for the opcode byte).
        field: Field,
        /// Its value.
        value: i64,
    },
}

/// Decodes the instruction starting at `slots[0]`. A `lddw` consumes
/// `slots[1]` as well; check [`Insn::slots`].
pub fn decode_one(slots: &[RawInsn]) -> Result<Insn, DecodeErrorKind> {
    let Some(raw) = slots.first() else {
        return Err(DecodeErrorKind::LddwTruncated);
    };
    let Some(row) = spec::lookup(raw) else {
        return Err(diagnose(raw));
    };
    let dst = reg(raw.dst, Field::Dst, row.dst)?;
    let src = reg(raw.src, Field::Src, row.src)?;
    let op = raw.opcode;
    let class = op & 0x07;
    let insn = match class {
        0x04 | 0x07 => decode_alu(raw, dst, src),
        0x05 | 0x06 => decode_jmp(raw, dst, src),
        0x00 => {
            if op == 0x18 {
                let next = slots.get(1).ok_or(DecodeErrorKind::LddwTruncated)?;
                let bad = [
                    (Field::Imm, i64::from(next.opcode)),
                    (Field::Dst, i64::from(next.dst)),
                    (Field::Src, i64::from(next.src)),
                    (Field::Off, i64::from(next.off)),
                ]
                .into_iter()
                .find(|&(_, v)| v != 0);
                if let Some((field, value)) = bad {
                    return Err(DecodeErrorKind::LddwBadSecondSlot { field, value });
                }
                let kind = LdDwKind::from_src(raw.src).ok_or(DecodeErrorKind::InvalidField {
                    opcode: op,
                    field: Field::Src,
                    value: raw.src.into(),
                })?;
                Insn::LdDw {
                    dst,
                    kind,
                    imm: raw.imm,
                    next_imm: next.imm,
                }
            } else if op & 0xe0 == 0x20 {
                Insn::LdAbs {
                    size: Size::from_opcode(op),
                    imm: raw.imm,
                }
            } else {
                Insn::LdInd {
                    size: Size::from_opcode(op),
                    src,
                    imm: raw.imm,
                }
            }
        }
        0x01 => Insn::Load {
            size: Size::from_opcode(op),
            signed: op & 0xe0 == 0x80,
            dst,
            src,
            off: raw.off,
        },
        0x02 => Insn::Store {
            size: Size::from_opcode(op),
            dst,
            off: raw.off,
            src: Source::Imm(raw.imm),
        },
        _ => {
            let size = Size::from_opcode(op);
            if op & 0xe0 == 0x60 {
                Insn::Store {
                    size,
                    dst,
                    off: raw.off,
                    src: Source::Reg(src),
                }
            } else if raw.imm == LOAD_ACQ_IMM {
                Insn::LoadAcquire {
                    size,
                    dst,
                    src,
                    off: raw.off,
                }
            } else if raw.imm == STORE_REL_IMM {
                Insn::StoreRelease {
                    size,
                    dst,
                    src,
                    off: raw.off,
                }
            } else {
                let op = AtomicOp::from_imm(raw.imm).ok_or(DecodeErrorKind::InvalidField {
                    opcode: op,
                    field: Field::Imm,
                    value: raw.imm.into(),
                })?;
                Insn::Atomic {
                    size,
                    op,
                    dst,
                    src,
                    off: raw.off,
                }
            }
        }
    };
    Ok(insn)
}

fn reg(value: u8, field: Field, rule: FieldRule) -> Result<Reg, DecodeErrorKind> {
    match rule {
        // Fixed register fields (lddw's src kind, call's src kind) are not registers.
        FieldRule::Fixed(_) => Ok(Reg::R0),
        FieldRule::Operand => {
            Reg::new(value).ok_or(DecodeErrorKind::InvalidRegister { field, value })
        }
    }
}

/// Explains why no table row matches: an unknown byte, a reserved field set,
/// or a selector field with no meaning.
fn diagnose(raw: &RawInsn) -> DecodeErrorKind {
    let rows = spec::rows_for(raw.opcode);
    if rows.is_empty() {
        return DecodeErrorKind::UnknownOpcode { opcode: raw.opcode };
    }
    let fields = [
        (
            Field::Dst,
            i64::from(raw.dst),
            rows.iter().map(|r| r.dst).collect::<Vec<_>>(),
        ),
        (
            Field::Src,
            i64::from(raw.src),
            rows.iter().map(|r| r.src).collect(),
        ),
        (
            Field::Off,
            i64::from(raw.off),
            rows.iter().map(|r| r.off).collect(),
        ),
        (
            Field::Imm,
            i64::from(raw.imm),
            rows.iter().map(|r| r.imm).collect(),
        ),
    ];
    // Report against the row that fails on the fewest fields.
    let best = rows
        .iter()
        .min_by_key(|row| {
            [
                (row.dst, raw.dst as i64),
                (row.src, raw.src as i64),
                (row.off, raw.off as i64),
                (row.imm, raw.imm as i64),
            ]
            .iter()
            .filter(|(rule, v)| !rule.accepts(*v))
            .count()
        })
        .copied();
    for (i, (field, value, rules)) in fields.iter().enumerate() {
        let Some(row) = best else { break };
        let rule = [row.dst, row.src, row.off, row.imm][i];
        if rule.accepts(*value) {
            continue;
        }
        // A field that is zero in every row is reserved; one that varies selects the operation.
        let reserved = rules.iter().all(|r| *r == FieldRule::Fixed(0));
        return if reserved {
            DecodeErrorKind::ReservedField {
                opcode: raw.opcode,
                field: *field,
                value: *value,
            }
        } else {
            DecodeErrorKind::InvalidField {
                opcode: raw.opcode,
                field: *field,
                value: *value,
            }
        };
    }
    DecodeErrorKind::UnknownOpcode { opcode: raw.opcode }
}

fn source(raw: &RawInsn, src: Reg) -> Source {
    if raw.opcode & 0x08 != 0 {
        Source::Reg(src)
    } else {
        Source::Imm(raw.imm)
    }
}

fn decode_alu(raw: &RawInsn, dst: Reg, src: Reg) -> Insn {
    let width = if raw.opcode & 0x07 == 0x07 {
        Width::W64
    } else {
        Width::W32
    };
    let op = match raw.opcode & 0xf0 {
        0x00 => AluOp::Add,
        0x10 => AluOp::Sub,
        0x20 => AluOp::Mul,
        0x30 if raw.off == 1 => AluOp::SDiv,
        0x30 => AluOp::Div,
        0x40 => AluOp::Or,
        0x50 => AluOp::And,
        0x60 => AluOp::Lsh,
        0x70 => AluOp::Rsh,
        0x80 => return Insn::Neg { width, dst },
        0x90 if raw.off == 1 => AluOp::SMod,
        0x90 => AluOp::Mod,
        0xa0 => AluOp::Xor,
        0xb0 => match raw.off {
            8 => AluOp::MovSx8,
            16 => AluOp::MovSx16,
            32 => AluOp::MovSx32,
            _ => AluOp::Mov,
        },
        0xc0 => AluOp::Arsh,
        _ => {
            let op = match raw.opcode {
                0xd7 => EndianOp::Swap,
                0xdc => EndianOp::ToBe,
                _ => EndianOp::ToLe,
            };
            return Insn::Endian {
                op,
                bits: raw.imm as u8,
                dst,
            };
        }
    };
    Insn::Alu {
        width,
        op,
        dst,
        src: source(raw, src),
    }
}

fn decode_jmp(raw: &RawInsn, dst: Reg, src: Reg) -> Insn {
    let width = if raw.opcode & 0x07 == 0x06 {
        Width::W32
    } else {
        Width::W64
    };
    match raw.opcode {
        0x05 => Insn::Ja {
            off: raw.off.into(),
            long: false,
        },
        0x06 => Insn::Ja {
            off: raw.imm,
            long: true,
        },
        0x85 => {
            let kind = match raw.src {
                1 => CallKind::Local,
                2 => CallKind::Kfunc,
                _ => CallKind::Helper,
            };
            Insn::Call { kind, imm: raw.imm }
        }
        0x8d => Insn::Callx { reg: dst },
        0x95 => Insn::Exit,
        0xe5 => Insn::MayGoto { off: raw.off },
        op => {
            // The table admits only the eleven comparison op bits here.
            let cmp = JmpOp::from_op_bits(op & 0xf0).unwrap_or(JmpOp::Eq);
            Insn::Jmp {
                width,
                op: cmp,
                dst,
                src: source(raw, src),
                off: raw.off,
            }
        }
    }
}

/// The slots of an encoded instruction: one, or two for `lddw`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoded {
    slots: [RawInsn; 2],
    len: usize,
}

impl Encoded {
    /// The slots.
    pub fn as_slice(&self) -> &[RawInsn] {
        &self.slots[..self.len]
    }
}

impl Insn {
    /// Encodes the instruction into its slot(s). `decode_one(encode(i)) == i`
    /// for every instruction the decoder produces.
    pub fn encode(&self) -> Encoded {
        let one = |raw: RawInsn| Encoded {
            slots: [raw, RawInsn::default()],
            len: 1,
        };
        let r0 = Reg::R0;
        match *self {
            Insn::Alu {
                width,
                op,
                dst,
                src,
            } => {
                let class = match width {
                    Width::W32 => 0x04,
                    Width::W64 => 0x07,
                };
                let (srcbit, sreg, imm) = match src {
                    Source::Reg(r) => (0x08, r, 0),
                    Source::Imm(i) => (0x00, r0, i),
                };
                one(RawInsn::with_regs(
                    class | srcbit | op.op_bits(),
                    dst,
                    sreg,
                    op.off_field(),
                    imm,
                ))
            }
            Insn::Neg { width, dst } => {
                let class = if width == Width::W32 { 0x04 } else { 0x07 };
                one(RawInsn::with_regs(class | 0x80, dst, r0, 0, 0))
            }
            Insn::Endian { op, bits, dst } => {
                let opcode = match op {
                    EndianOp::ToLe => 0xd4,
                    EndianOp::ToBe => 0xdc,
                    EndianOp::Swap => 0xd7,
                };
                one(RawInsn::with_regs(opcode, dst, r0, 0, bits.into()))
            }
            Insn::LdDw {
                dst,
                kind,
                imm,
                next_imm,
            } => Encoded {
                slots: [
                    RawInsn::new(0x18, dst.index(), kind.src(), 0, imm),
                    RawInsn::new(0, 0, 0, 0, next_imm),
                ],
                len: 2,
            },
            Insn::Load {
                size,
                signed,
                dst,
                src,
                off,
            } => {
                let mode = if signed { 0x80 } else { 0x60 };
                one(RawInsn::with_regs(
                    0x01 | mode | size.bits(),
                    dst,
                    src,
                    off,
                    0,
                ))
            }
            Insn::Store {
                size,
                dst,
                off,
                src,
            } => match src {
                Source::Imm(imm) => one(RawInsn::with_regs(0x62 | size.bits(), dst, r0, off, imm)),
                Source::Reg(s) => one(RawInsn::with_regs(0x63 | size.bits(), dst, s, off, 0)),
            },
            Insn::Atomic {
                size,
                op,
                dst,
                src,
                off,
            } => one(RawInsn::with_regs(
                0xc3 | size.bits(),
                dst,
                src,
                off,
                op.imm(),
            )),
            Insn::LoadAcquire {
                size,
                dst,
                src,
                off,
            } => one(RawInsn::with_regs(
                0xc3 | size.bits(),
                dst,
                src,
                off,
                LOAD_ACQ_IMM,
            )),
            Insn::StoreRelease {
                size,
                dst,
                src,
                off,
            } => one(RawInsn::with_regs(
                0xc3 | size.bits(),
                dst,
                src,
                off,
                STORE_REL_IMM,
            )),
            Insn::LdAbs { size, imm } => one(RawInsn::new(0x20 | size.bits(), 0, 0, 0, imm)),
            Insn::LdInd { size, src, imm } => {
                one(RawInsn::with_regs(0x40 | size.bits(), r0, src, 0, imm))
            }
            Insn::Ja { off, long: false } => one(RawInsn::new(0x05, 0, 0, off as i16, 0)),
            Insn::Ja { off, long: true } => one(RawInsn::new(0x06, 0, 0, 0, off)),
            Insn::Jmp {
                width,
                op,
                dst,
                src,
                off,
            } => {
                let class = if width == Width::W32 { 0x06 } else { 0x05 };
                let (srcbit, sreg, imm) = match src {
                    Source::Reg(r) => (0x08, r, 0),
                    Source::Imm(i) => (0x00, r0, i),
                };
                one(RawInsn::with_regs(
                    class | srcbit | op.op_bits(),
                    dst,
                    sreg,
                    off,
                    imm,
                ))
            }
            Insn::Call { kind, imm } => one(RawInsn::new(0x85, 0, kind.src(), 0, imm)),
            Insn::Callx { reg } => one(RawInsn::with_regs(0x8d, reg, r0, 0, 0)),
            Insn::Exit => one(RawInsn::new(0x95, 0, 0, 0, 0)),
            Insn::MayGoto { off } => one(RawInsn::new(0xe5, 0, 0, off, 0)),
        }
    }

    /// The opcode-table row of this instruction, or `None` when the value
    /// was built by hand with fields no encoding allows (a 7-bit byte swap,
    /// a 32-bit `MovSx32`…).
    pub fn info(&self) -> Option<&'static spec::OpcodeInfo> {
        self.encode().as_slice().first().and_then(spec::lookup)
    }
}
