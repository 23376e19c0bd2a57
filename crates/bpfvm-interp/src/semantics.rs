//! The arithmetic of RFC 9669 as pure functions on register values.
//!
//! The dispatch loop calls these with a constant operation, so each call folds into the
//! one machine operation it names. Keeping them apart makes the corner cases testable
//! without running programs.

use bpfvm_isa::{AluOp, EndianOp};

/// `dst = dst op src` for the 64-bit ALU class. `b` is the register value or the
/// sign-extended immediate.
#[inline(always)]
pub(crate) fn alu64(op: AluOp, a: u64, b: u64) -> u64 {
    match op {
        AluOp::Add => a.wrapping_add(b),
        AluOp::Sub => a.wrapping_sub(b),
        AluOp::Mul => a.wrapping_mul(b),
        // Division by zero gives 0.
        AluOp::Div => a.checked_div(b).unwrap_or(0),
        // INT_MIN / -1 wraps to INT_MIN.
        AluOp::SDiv if b == 0 => 0,
        AluOp::SDiv => (a as i64).wrapping_div(b as i64) as u64,
        AluOp::Or => a | b,
        AluOp::And => a & b,
        // `wrapping_sh*` mask the amount to 0..=63, as the RFC requires.
        AluOp::Lsh => a.wrapping_shl(b as u32),
        AluOp::Rsh => a.wrapping_shr(b as u32),
        // Modulo by zero leaves dst unchanged.
        AluOp::Mod => a.checked_rem(b).unwrap_or(a),
        // Truncating like C; INT_MIN % -1 is 0.
        AluOp::SMod if b == 0 => a,
        AluOp::SMod => (a as i64).wrapping_rem(b as i64) as u64,
        AluOp::Xor => a ^ b,
        AluOp::Mov => b,
        AluOp::MovSx8 => b as i8 as i64 as u64,
        AluOp::MovSx16 => b as i16 as i64 as u64,
        AluOp::MovSx32 => b as i32 as i64 as u64,
        AluOp::Arsh => (a as i64).wrapping_shr(b as u32) as u64,
    }
}

/// `dst = dst op src` for the 32-bit ALU class: the low 32 bits of both operands, the
/// result zero-extended. DIV/MOD read `b` as u32 and SDIV/SMOD as s32, which for an
/// immediate is the same bits.
#[inline(always)]
pub(crate) fn alu32(op: AluOp, a: u64, b: u64) -> u64 {
    let (x, y) = (a as u32, b as u32);
    let r = match op {
        AluOp::Add => x.wrapping_add(y),
        AluOp::Sub => x.wrapping_sub(y),
        AluOp::Mul => x.wrapping_mul(y),
        AluOp::Div => x.checked_div(y).unwrap_or(0),
        AluOp::SDiv if y == 0 => 0,
        AluOp::SDiv => (x as i32).wrapping_div(y as i32) as u32,
        AluOp::Or => x | y,
        AluOp::And => x & y,
        AluOp::Lsh => x.wrapping_shl(y),
        AluOp::Rsh => x.wrapping_shr(y),
        // Modulo by zero keeps the low 32 bits; the upper ones are zeroed like any ALU32 result.
        AluOp::Mod => x.checked_rem(y).unwrap_or(x),
        AluOp::SMod if y == 0 => x,
        AluOp::SMod => (x as i32).wrapping_rem(y as i32) as u32,
        AluOp::Xor => x ^ y,
        // MovSx32 has no 32-bit encoding; as a plain move it is the identity on 32 bits.
        AluOp::Mov | AluOp::MovSx32 => y,
        AluOp::MovSx8 => y as i8 as i32 as u32,
        AluOp::MovSx16 => y as i16 as i32 as u32,
        AluOp::Arsh => (x as i32).wrapping_shr(y) as u32,
    };
    u64::from(r)
}

/// Byte-order conversion of the low `bits` bits (16, 32, anything else meaning 64); the
/// upper bits are zeroed. Correct on hosts of either byte order.
#[inline(always)]
pub(crate) fn endian(op: EndianOp, bits: u8, a: u64) -> u64 {
    match (op, bits) {
        (EndianOp::ToLe, 16) => u64::from((a as u16).to_le()),
        (EndianOp::ToLe, 32) => u64::from((a as u32).to_le()),
        (EndianOp::ToLe, _) => a.to_le(),
        (EndianOp::ToBe, 16) => u64::from((a as u16).to_be()),
        (EndianOp::ToBe, 32) => u64::from((a as u32).to_be()),
        (EndianOp::ToBe, _) => a.to_be(),
        (EndianOp::Swap, 16) => u64::from((a as u16).swap_bytes()),
        (EndianOp::Swap, 32) => u64::from((a as u32).swap_bytes()),
        (EndianOp::Swap, _) => a.swap_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AluOp::*;

    const MIN64: u64 = i64::MIN as u64;
    const NEG1: u64 = u64::MAX;
    const MIN32: u64 = 0x8000_0000;

    #[test]
    fn division_by_zero() {
        // RFC 9669 §4.1: DIV/SDIV by zero → 0; MOD/SMOD by zero → dst unchanged (ALU64),
        // dst's low 32 bits (ALU).
        assert_eq!(alu64(Div, 7, 0), 0);
        assert_eq!(alu64(SDiv, 7, 0), 0);
        assert_eq!(alu64(Mod, 7, 0), 7);
        assert_eq!(alu64(SMod, NEG1, 0), NEG1);
        assert_eq!(alu32(Div, 0x1_0000_0007, 0), 0);
        assert_eq!(alu32(SDiv, 7, 0), 0);
        assert_eq!(alu32(Mod, 0xdead_0000_0007, 0), 7);
        assert_eq!(alu32(SMod, 0xffff_ffff_ffff_fff9, 0), 0xffff_fff9);
        // A 32-bit divisor is the low 32 bits: 0x1_0000_0000 is zero.
        assert_eq!(alu32(Div, 9, 0x1_0000_0000), 0);
        assert_eq!(alu32(Mod, 9, 0x1_0000_0000), 9);
    }

    #[test]
    fn signed_overflow() {
        assert_eq!(alu64(SDiv, MIN64, NEG1), MIN64);
        assert_eq!(alu64(SMod, MIN64, NEG1), 0);
        assert_eq!(alu32(SDiv, MIN32, NEG1), MIN32);
        assert_eq!(alu32(SMod, MIN32, NEG1), 0);
        // Upper bits of the operands do not matter for the 32-bit forms.
        assert_eq!(alu32(SDiv, 0xffff_ffff_8000_0000, 0xffff_ffff), MIN32);
    }

    #[test]
    fn signed_division_truncates_like_c() {
        let n = |v: i64| v as u64;
        assert_eq!(alu64(SMod, n(-13), 3), n(-1));
        assert_eq!(alu64(SMod, 13, n(-3)), 1);
        assert_eq!(alu64(SDiv, n(-13), 3), n(-4));
        assert_eq!(alu32(SMod, n(-13), 3), 0xffff_ffff);
        assert_eq!(alu32(SDiv, n(-13), 3), 0xffff_fffc);
        // Unsigned division sees -13 as a huge number.
        assert_eq!(alu64(Div, n(-13), 3), 0x5555_5555_5555_5551);
        assert_eq!(alu32(Div, n(-13), 3), 0x5555_5551);
        // ALU64 with the immediate -1 sign-extended: u64::MAX divides nothing below it.
        assert_eq!(alu64(Div, 5, n(-1)), 0);
        assert_eq!(alu64(Mod, 5, n(-1)), 5);
    }

    #[test]
    fn shifts_are_masked() {
        assert_eq!(alu64(Lsh, 1, 65), 2);
        assert_eq!(alu64(Rsh, 4, 66), 1);
        assert_eq!(alu64(Arsh, MIN64, 63 + 64), NEG1);
        assert_eq!(alu32(Lsh, 1, 33), 2);
        assert_eq!(alu32(Rsh, 0xffff_ffff_0000_0004, 34), 1);
        assert_eq!(alu32(Arsh, 0x8000_0000, 31), 0xffff_ffff);
        assert_eq!(alu32(Arsh, 0x8000_0000, 32), 0x8000_0000);
        assert_eq!(alu32(Lsh, 0x8000_0001, 1), 2);
    }

    #[test]
    fn alu32_zero_extends() {
        assert_eq!(alu32(Add, 0xffff_ffff, 1), 0);
        assert_eq!(alu32(Sub, 0, 1), 0xffff_ffff);
        assert_eq!(alu32(Mov, 0, NEG1), 0xffff_ffff);
        assert_eq!(alu32(Mul, 0x1_0000_0002, 3), 6);
        assert_eq!(alu32(Xor, 0xffff_0000_0000_0000, 0), 0);
    }

    #[test]
    fn sign_extending_moves() {
        assert_eq!(alu64(MovSx8, 0, 0x80), 0xffff_ffff_ffff_ff80);
        assert_eq!(alu64(MovSx16, 0, 0x1_7fff), 0x7fff);
        assert_eq!(alu64(MovSx16, 0, 0x8000), 0xffff_ffff_ffff_8000);
        assert_eq!(alu64(MovSx32, 0, 0x8000_0000), 0xffff_ffff_8000_0000);
        // 32-bit destination: sign-extend into 32 bits, then zero-extend.
        assert_eq!(alu32(MovSx8, 0, 0xff), 0xffff_ffff);
        assert_eq!(alu32(MovSx16, 0, 0x8000), 0xffff_8000);
        assert_eq!(alu32(MovSx8, 0, 0x7f), 0x7f);
    }

    #[test]
    fn byte_order() {
        let v = 0x0123_4567_89ab_cdef;
        if cfg!(target_endian = "little") {
            assert_eq!(endian(EndianOp::ToLe, 16, v), 0xcdef);
            assert_eq!(endian(EndianOp::ToLe, 32, v), 0x89ab_cdef);
            assert_eq!(endian(EndianOp::ToLe, 64, v), v);
            assert_eq!(endian(EndianOp::ToBe, 16, v), 0xefcd);
            assert_eq!(endian(EndianOp::ToBe, 32, v), 0xefcd_ab89);
            assert_eq!(endian(EndianOp::ToBe, 64, v), 0xefcd_ab89_6745_2301);
        }
        assert_eq!(endian(EndianOp::Swap, 16, v), 0xefcd);
        assert_eq!(endian(EndianOp::Swap, 32, v), 0xefcd_ab89);
        assert_eq!(endian(EndianOp::Swap, 64, v), 0xefcd_ab89_6745_2301);
    }
}
