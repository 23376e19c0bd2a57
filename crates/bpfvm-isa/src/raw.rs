//! The raw 8-byte instruction slot, exactly as it lies in memory.
//!
//! This is the only place that knows the bit layout of `struct bpf_insn`
//! (`opcode:8 | dst:4 | src:4 | off:s16 | imm:s32`, little endian, RFC 9669 §3).
//! Everything above works on [`crate::Insn`].

use crate::Reg;

/// Size in bytes of one instruction slot.
pub const SLOT_SIZE: usize = 8;

/// One 8-byte instruction slot, fields unvalidated.
///
/// `dst` and `src` are the raw 4-bit register fields (0..=15); whether they
/// name a real register is decided by the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RawInsn {
    /// The opcode byte.
    pub opcode: u8,
    /// Destination register field (low nibble of byte 1).
    pub dst: u8,
    /// Source register field (high nibble of byte 1).
    pub src: u8,
    /// Signed 16-bit offset.
    pub off: i16,
    /// Signed 32-bit immediate.
    pub imm: i32,
}

impl RawInsn {
    /// Builds a slot from its fields; register fields are masked to 4 bits.
    pub const fn new(opcode: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        Self {
            opcode,
            dst: dst & 0x0f,
            src: src & 0x0f,
            off,
            imm,
        }
    }

    /// Builds a slot whose register fields are real registers.
    pub const fn with_regs(opcode: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Self {
        Self::new(opcode, dst.index(), src.index(), off, imm)
    }

    /// Reads a slot from its 8-byte little-endian encoding.
    pub const fn from_bytes(b: [u8; SLOT_SIZE]) -> Self {
        Self {
            opcode: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Writes the slot in its 8-byte little-endian encoding.
    pub const fn to_bytes(self) -> [u8; SLOT_SIZE] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [
            self.opcode,
            (self.src << 4) | (self.dst & 0x0f),
            off[0],
            off[1],
            imm[0],
            imm[1],
            imm[2],
            imm[3],
        ]
    }

    /// The slot as one little-endian 64-bit word (the `-- raw` form of the
    /// bpf_conformance format).
    pub const fn to_u64(self) -> u64 {
        u64::from_le_bytes(self.to_bytes())
    }

    /// Reads a slot from one little-endian 64-bit word.
    pub const fn from_u64(word: u64) -> Self {
        Self::from_bytes(word.to_le_bytes())
    }
}

/// Splits bytecode into slots. Fails when the length is not a multiple of 8.
pub fn slots_from_bytes(bytes: &[u8]) -> Result<Vec<RawInsn>, TrailingBytes> {
    let chunks = bytes.chunks_exact(SLOT_SIZE);
    if !chunks.remainder().is_empty() {
        return Err(TrailingBytes { len: bytes.len() });
    }
    Ok(chunks
        .map(|c| {
            let mut b = [0u8; SLOT_SIZE];
            b.copy_from_slice(c);
            RawInsn::from_bytes(b)
        })
        .collect())
}

/// Concatenates slots into bytecode.
pub fn slots_to_bytes(slots: &[RawInsn]) -> Vec<u8> {
    slots.iter().flat_map(|s| s.to_bytes()).collect()
}

/// Bytecode whose length is not a whole number of 8-byte slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bytecode length {len} is not a multiple of 8 (one instruction slot)")]
pub struct TrailingBytes {
    /// The offending length in bytes.
    pub len: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_rfc_section_3() {
        // `r1 = *(u32 *)(r2 + 0x10)`: opcode 0x61, dst 1 (low nibble), src 2 (high nibble).
        let raw = RawInsn::new(0x61, 1, 2, 0x10, -2);
        assert_eq!(
            raw.to_bytes(),
            [0x61, 0x21, 0x10, 0x00, 0xfe, 0xff, 0xff, 0xff]
        );
        assert_eq!(RawInsn::from_bytes(raw.to_bytes()), raw);
        assert_eq!(raw.to_u64(), 0xffff_fffe_0010_2161);
    }

    #[test]
    fn trailing_bytes_rejected() {
        assert_eq!(slots_from_bytes(&[0; 9]), Err(TrailingBytes { len: 9 }));
        assert_eq!(slots_from_bytes(&[0; 16]).map(|v| v.len()), Ok(2));
    }
}
