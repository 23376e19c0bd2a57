//! The decoded instruction: one enum variant per instruction shape, every
//! field already validated and typed.

use crate::Reg;

/// Operand width of ALU and jump instructions: the `ALU`/`JMP32` classes
/// operate on the low 32 bits, `ALU64`/`JMP` on all 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Width {
    /// 32-bit (`ALU`, `JMP32`); ALU results are zero-extended to 64 bits.
    W32,
    /// 64-bit (`ALU64`, `JMP`).
    W64,
}

/// Memory access size (`BPF_SIZE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Size {
    /// 1 byte (`BPF_B`, 0x10).
    B,
    /// 2 bytes (`BPF_H`, 0x08).
    H,
    /// 4 bytes (`BPF_W`, 0x00).
    W,
    /// 8 bytes (`BPF_DW`, 0x18).
    DW,
}

impl Size {
    /// Size in bytes.
    pub const fn bytes(self) -> usize {
        match self {
            Size::B => 1,
            Size::H => 2,
            Size::W => 4,
            Size::DW => 8,
        }
    }

    /// The `BPF_SIZE` bits of the opcode.
    pub const fn bits(self) -> u8 {
        match self {
            Size::W => 0x00,
            Size::H => 0x08,
            Size::B => 0x10,
            Size::DW => 0x18,
        }
    }

    /// Size from the `BPF_SIZE` bits of an opcode.
    pub const fn from_opcode(opcode: u8) -> Size {
        match opcode & 0x18 {
            0x00 => Size::W,
            0x08 => Size::H,
            0x10 => Size::B,
            _ => Size::DW,
        }
    }
}

/// Second operand of ALU, jump and store instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A register (`BPF_X`).
    Reg(Reg),
    /// The sign-extended (or, for 32-bit DIV/MOD, zero-extended) immediate (`BPF_K`).
    Imm(i32),
}

/// ALU operation (`BPF_OP` of the `ALU`/`ALU64` classes, with the `off` variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AluOp {
    /// `dst += src`
    Add,
    /// `dst -= src`
    Sub,
    /// `dst *= src`
    Mul,
    /// Unsigned `dst /= src`; division by zero gives 0.
    Div,
    /// Signed `dst /= src` (off = 1); division by zero gives 0.
    SDiv,
    /// `dst |= src`
    Or,
    /// `dst &= src`
    And,
    /// `dst <<= src` (masked to the width)
    Lsh,
    /// Logical `dst >>= src` (masked)
    Rsh,
    /// Unsigned `dst %= src`; modulo by zero leaves dst unchanged.
    Mod,
    /// Signed `dst %= src` (off = 1), truncating like C.
    SMod,
    /// `dst ^= src`
    Xor,
    /// `dst = src`
    Mov,
    /// `dst = (s8) src` (MOVSX, off = 8)
    MovSx8,
    /// `dst = (s16) src` (MOVSX, off = 16)
    MovSx16,
    /// `dst = (s32) src` (MOVSX, off = 32; 64-bit only)
    MovSx32,
    /// Arithmetic `dst s>>= src` (masked)
    Arsh,
}

impl AluOp {
    /// The `BPF_OP` bits (high nibble of the opcode).
    pub const fn op_bits(self) -> u8 {
        match self {
            AluOp::Add => 0x00,
            AluOp::Sub => 0x10,
            AluOp::Mul => 0x20,
            AluOp::Div | AluOp::SDiv => 0x30,
            AluOp::Or => 0x40,
            AluOp::And => 0x50,
            AluOp::Lsh => 0x60,
            AluOp::Rsh => 0x70,
            AluOp::Mod | AluOp::SMod => 0x90,
            AluOp::Xor => 0xa0,
            AluOp::Mov | AluOp::MovSx8 | AluOp::MovSx16 | AluOp::MovSx32 => 0xb0,
            AluOp::Arsh => 0xc0,
        }
    }

    /// The value of the `off` field that selects this variant.
    pub const fn off_field(self) -> i16 {
        match self {
            AluOp::SDiv | AluOp::SMod => 1,
            AluOp::MovSx8 => 8,
            AluOp::MovSx16 => 16,
            AluOp::MovSx32 => 32,
            _ => 0,
        }
    }
}

/// Byte-order operation (`BPF_END`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndianOp {
    /// Convert to little endian (0xd4): a truncation on little-endian hosts.
    ToLe,
    /// Convert to big endian (0xdc).
    ToBe,
    /// Unconditional byte swap (0xd7, ALU64 class, ISA v4).
    Swap,
}

/// Conditional jump comparison (`BPF_OP` of `JMP`/`JMP32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JmpOp {
    /// `==`
    Eq,
    /// unsigned `>`
    Gt,
    /// unsigned `>=`
    Ge,
    /// `dst & src != 0`
    Set,
    /// `!=`
    Ne,
    /// signed `>`
    Sgt,
    /// signed `>=`
    Sge,
    /// unsigned `<` (v2)
    Lt,
    /// unsigned `<=` (v2)
    Le,
    /// signed `<` (v2)
    Slt,
    /// signed `<=` (v2)
    Sle,
}

impl JmpOp {
    /// Every comparison, in opcode order.
    pub const ALL: [JmpOp; 11] = [
        JmpOp::Eq,
        JmpOp::Gt,
        JmpOp::Ge,
        JmpOp::Set,
        JmpOp::Ne,
        JmpOp::Sgt,
        JmpOp::Sge,
        JmpOp::Lt,
        JmpOp::Le,
        JmpOp::Slt,
        JmpOp::Sle,
    ];

    /// The `BPF_OP` bits.
    pub const fn op_bits(self) -> u8 {
        match self {
            JmpOp::Eq => 0x10,
            JmpOp::Gt => 0x20,
            JmpOp::Ge => 0x30,
            JmpOp::Set => 0x40,
            JmpOp::Ne => 0x50,
            JmpOp::Sgt => 0x60,
            JmpOp::Sge => 0x70,
            JmpOp::Lt => 0xa0,
            JmpOp::Le => 0xb0,
            JmpOp::Slt => 0xc0,
            JmpOp::Sle => 0xd0,
        }
    }

    /// The comparison for these `BPF_OP` bits.
    pub const fn from_op_bits(bits: u8) -> Option<JmpOp> {
        Some(match bits {
            0x10 => JmpOp::Eq,
            0x20 => JmpOp::Gt,
            0x30 => JmpOp::Ge,
            0x40 => JmpOp::Set,
            0x50 => JmpOp::Ne,
            0x60 => JmpOp::Sgt,
            0x70 => JmpOp::Sge,
            0xa0 => JmpOp::Lt,
            0xb0 => JmpOp::Le,
            0xc0 => JmpOp::Slt,
            0xd0 => JmpOp::Sle,
            _ => return None,
        })
    }

    /// Evaluates the comparison on 64-bit operands.
    #[inline(always)]
    pub const fn eval64(self, a: u64, b: u64) -> bool {
        match self {
            JmpOp::Eq => a == b,
            JmpOp::Gt => a > b,
            JmpOp::Ge => a >= b,
            JmpOp::Set => a & b != 0,
            JmpOp::Ne => a != b,
            JmpOp::Sgt => (a as i64) > (b as i64),
            JmpOp::Sge => (a as i64) >= (b as i64),
            JmpOp::Lt => a < b,
            JmpOp::Le => a <= b,
            JmpOp::Slt => (a as i64) < (b as i64),
            JmpOp::Sle => (a as i64) <= (b as i64),
        }
    }

    /// Evaluates the comparison on the low 32 bits (JMP32).
    #[inline(always)]
    pub const fn eval32(self, a: u64, b: u64) -> bool {
        let (a, b) = (a as u32, b as u32);
        match self {
            JmpOp::Eq => a == b,
            JmpOp::Gt => a > b,
            JmpOp::Ge => a >= b,
            JmpOp::Set => a & b != 0,
            JmpOp::Ne => a != b,
            JmpOp::Sgt => (a as i32) > (b as i32),
            JmpOp::Sge => (a as i32) >= (b as i32),
            JmpOp::Lt => a < b,
            JmpOp::Le => a <= b,
            JmpOp::Slt => (a as i32) < (b as i32),
            JmpOp::Sle => (a as i32) <= (b as i32),
        }
    }
}

/// Atomic read-modify-write operation (`BPF_ATOMIC` mode, selected by `imm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AtomicOp {
    /// `*(dst + off) += src`; with `fetch`, `src` receives the old value.
    Add {
        /// `BPF_FETCH` (imm | 0x01).
        fetch: bool,
    },
    /// `*(dst + off) |= src`.
    Or {
        /// `BPF_FETCH`.
        fetch: bool,
    },
    /// `*(dst + off) &= src`.
    And {
        /// `BPF_FETCH`.
        fetch: bool,
    },
    /// `*(dst + off) ^= src`.
    Xor {
        /// `BPF_FETCH`.
        fetch: bool,
    },
    /// Exchange: `src` gets the old value, memory gets `src`.
    Xchg,
    /// Compare-and-exchange with `r0`: if memory equals `r0`, store `src`;
    /// `r0` receives the old value either way.
    CmpXchg,
}

impl AtomicOp {
    /// The `imm` field encoding this operation.
    pub const fn imm(self) -> i32 {
        match self {
            AtomicOp::Add { fetch } => fetch as i32,
            AtomicOp::Or { fetch } => 0x40 | fetch as i32,
            AtomicOp::And { fetch } => 0x50 | fetch as i32,
            AtomicOp::Xor { fetch } => 0xa0 | fetch as i32,
            AtomicOp::Xchg => 0xe1,
            AtomicOp::CmpXchg => 0xf1,
        }
    }

    /// The operation encoded by this `imm`, if any.
    pub const fn from_imm(imm: i32) -> Option<AtomicOp> {
        Some(match imm {
            0x00 => AtomicOp::Add { fetch: false },
            0x01 => AtomicOp::Add { fetch: true },
            0x40 => AtomicOp::Or { fetch: false },
            0x41 => AtomicOp::Or { fetch: true },
            0x50 => AtomicOp::And { fetch: false },
            0x51 => AtomicOp::And { fetch: true },
            0xa0 => AtomicOp::Xor { fetch: false },
            0xa1 => AtomicOp::Xor { fetch: true },
            0xe1 => AtomicOp::Xchg,
            0xf1 => AtomicOp::CmpXchg,
            _ => return None,
        })
    }

    /// Whether the old value is written back to a register.
    pub const fn fetches(self) -> bool {
        match self {
            AtomicOp::Add { fetch }
            | AtomicOp::Or { fetch }
            | AtomicOp::And { fetch }
            | AtomicOp::Xor { fetch } => fetch,
            AtomicOp::Xchg | AtomicOp::CmpXchg => true,
        }
    }
}

/// `imm` of a load-acquire (`BPF_LOAD_ACQ`, Linux extension).
pub const LOAD_ACQ_IMM: i32 = 0x100;
/// `imm` of a store-release (`BPF_STORE_REL`, Linux extension).
pub const STORE_REL_IMM: i32 = 0x110;

/// What the 64-bit immediate of a `lddw` means, from its `src` field (RFC 9669 §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LdDwKind {
    /// src 0: the immediate itself.
    Imm,
    /// src 1 (`BPF_PSEUDO_MAP_FD`): a map, by file descriptor in `imm`.
    MapFd,
    /// src 2 (`BPF_PSEUDO_MAP_VALUE`): address of a map value, map by fd in `imm`, offset in `next_imm`.
    MapValue,
    /// src 3 (`BPF_PSEUDO_BTF_ID`): address of a kernel variable by BTF id.
    BtfId,
    /// src 4 (`BPF_PSEUDO_FUNC`): address of code, `imm` is relative to the next instruction.
    Func,
    /// src 5 (`BPF_PSEUDO_MAP_IDX`): a map, by index into the program's map table.
    MapIdx,
    /// src 6 (`BPF_PSEUDO_MAP_IDX_VALUE`): a map value, map by index, offset in `next_imm`.
    MapIdxValue,
}

impl LdDwKind {
    /// The `src` field encoding this kind.
    pub const fn src(self) -> u8 {
        match self {
            LdDwKind::Imm => 0,
            LdDwKind::MapFd => 1,
            LdDwKind::MapValue => 2,
            LdDwKind::BtfId => 3,
            LdDwKind::Func => 4,
            LdDwKind::MapIdx => 5,
            LdDwKind::MapIdxValue => 6,
        }
    }

    /// The kind for this `src` field.
    pub const fn from_src(src: u8) -> Option<LdDwKind> {
        Some(match src {
            0 => LdDwKind::Imm,
            1 => LdDwKind::MapFd,
            2 => LdDwKind::MapValue,
            3 => LdDwKind::BtfId,
            4 => LdDwKind::Func,
            5 => LdDwKind::MapIdx,
            6 => LdDwKind::MapIdxValue,
            _ => return None,
        })
    }
}

/// What a `call` (0x85) targets, from its `src` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// src 0: a helper function by id (per program type).
    Helper,
    /// src 1 (`BPF_PSEUDO_CALL`): a local function; `imm` is relative to the next instruction.
    Local,
    /// src 2 (`BPF_PSEUDO_KFUNC_CALL`): a platform function by BTF id.
    Kfunc,
}

impl CallKind {
    /// The `src` field for this kind.
    pub const fn src(self) -> u8 {
        match self {
            CallKind::Helper => 0,
            CallKind::Local => 1,
            CallKind::Kfunc => 2,
        }
    }
}

/// A decoded, validated instruction. `lddw` is one value spanning two slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Insn {
    /// Arithmetic and moves (`ALU`/`ALU64` classes, except NEG and END).
    Alu {
        /// 32- or 64-bit.
        width: Width,
        /// The operation.
        op: AluOp,
        /// Destination (and first operand).
        dst: Reg,
        /// Second operand.
        src: Source,
    },
    /// `dst = -dst` (0x84 / 0x87).
    Neg {
        /// 32- or 64-bit.
        width: Width,
        /// The register negated in place.
        dst: Reg,
    },
    /// Byte-order conversion or swap of the low `bits` bits; the rest is zeroed.
    Endian {
        /// Which conversion.
        op: EndianOp,
        /// 16, 32 or 64.
        bits: u8,
        /// The register converted in place.
        dst: Reg,
    },
    /// `dst = imm64` and its pseudo forms (two slots).
    LdDw {
        /// Destination.
        dst: Reg,
        /// What the immediate means.
        kind: LdDwKind,
        /// Low 32 bits (first slot's `imm`).
        imm: i32,
        /// High 32 bits (second slot's `imm`).
        next_imm: i32,
    },
    /// `dst = *(size *)(src + off)`, zero- or (`signed`, ISA v4) sign-extended.
    Load {
        /// Access size.
        size: Size,
        /// MEMSX: sign-extend to 64 bits.
        signed: bool,
        /// Destination.
        dst: Reg,
        /// Base address register.
        src: Reg,
        /// Offset added to the base.
        off: i16,
    },
    /// `*(size *)(dst + off) = src` (`ST` with an immediate, `STX` with a register).
    Store {
        /// Access size.
        size: Size,
        /// Base address register.
        dst: Reg,
        /// Offset added to the base.
        off: i16,
        /// Value stored.
        src: Source,
    },
    /// Atomic read-modify-write on `*(size *)(dst + off)` (size W or DW).
    Atomic {
        /// W or DW.
        size: Size,
        /// The operation.
        op: AtomicOp,
        /// Base address register.
        dst: Reg,
        /// Operand, and receiver of the old value when fetching.
        src: Reg,
        /// Offset added to the base.
        off: i16,
    },
    /// `dst = load_acquire((size *)(src + off))` (Linux extension).
    LoadAcquire {
        /// Access size.
        size: Size,
        /// Destination.
        dst: Reg,
        /// Base address register.
        src: Reg,
        /// Offset.
        off: i16,
    },
    /// `store_release((size *)(dst + off), src)` (Linux extension).
    StoreRelease {
        /// Access size.
        size: Size,
        /// Base address register.
        dst: Reg,
        /// Value stored.
        src: Reg,
        /// Offset.
        off: i16,
    },
    /// Legacy packet load `r0 = ntoh(*(size *)(skb->data + imm))` (`BPF_ABS`).
    LdAbs {
        /// B, H or W.
        size: Size,
        /// Packet offset.
        imm: i32,
    },
    /// Legacy packet load `r0 = ntoh(*(size *)(skb->data + src + imm))` (`BPF_IND`).
    LdInd {
        /// B, H or W.
        size: Size,
        /// Register added to the offset.
        src: Reg,
        /// Packet offset.
        imm: i32,
    },
    /// Unconditional jump. `long` is `gotol` (JMP32 class, offset in `imm`).
    Ja {
        /// Target relative to the next instruction.
        off: i32,
        /// Encoded as `gotol` (0x06) rather than `goto` (0x05).
        long: bool,
    },
    /// Conditional jump.
    Jmp {
        /// JMP32 compares the low 32 bits.
        width: Width,
        /// Comparison.
        op: JmpOp,
        /// Left operand.
        dst: Reg,
        /// Right operand.
        src: Source,
        /// Target relative to the next instruction.
        off: i16,
    },
    /// Function call.
    Call {
        /// Helper, local function or kfunc.
        kind: CallKind,
        /// Helper id, relative target or BTF id.
        imm: i32,
    },
    /// `callx reg` (0x8d, Linux extension): call the helper whose id is in the register.
    Callx {
        /// Holds the target.
        reg: Reg,
    },
    /// Return `r0` from the current function.
    Exit,
    /// `may_goto +off` (0xe5, Linux extension): jump when the loop budget is exhausted.
    MayGoto {
        /// Target relative to the next instruction.
        off: i16,
    },
}

impl Insn {
    /// Number of 8-byte slots this instruction occupies (2 for `lddw`).
    pub const fn slots(&self) -> usize {
        match self {
            Insn::LdDw { .. } => 2,
            _ => 1,
        }
    }

    /// The 64-bit value of a `lddw`'s immediate pair.
    pub const fn lddw_value(imm: i32, next_imm: i32) -> u64 {
        (imm as u32 as u64) | ((next_imm as u32 as u64) << 32)
    }

    /// The jump offset (relative to the next instruction) if this is a jump, `may_goto` or a local call.
    pub const fn branch_offset(&self) -> Option<i64> {
        match *self {
            Insn::Ja { off, .. } => Some(off as i64),
            Insn::Jmp { off, .. } | Insn::MayGoto { off } => Some(off as i64),
            Insn::Call {
                kind: CallKind::Local,
                imm,
            } => Some(imm as i64),
            _ => None,
        }
    }

    /// The register this instruction writes, if any (not counting memory or calls' r1–r5 clobbers).
    pub const fn written_reg(&self) -> Option<Reg> {
        match *self {
            Insn::Alu { dst, .. }
            | Insn::Neg { dst, .. }
            | Insn::Endian { dst, .. }
            | Insn::LdDw { dst, .. }
            | Insn::Load { dst, .. }
            | Insn::LoadAcquire { dst, .. } => Some(dst),
            Insn::Atomic {
                op: AtomicOp::CmpXchg,
                ..
            } => Some(Reg::R0),
            Insn::Atomic { op, src, .. } if op.fetches() => Some(src),
            Insn::LdAbs { .. } | Insn::LdInd { .. } | Insn::Call { .. } | Insn::Callx { .. } => {
                Some(Reg::R0)
            }
            _ => None,
        }
    }
}
