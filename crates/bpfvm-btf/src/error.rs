//! The error type for malformed `.BTF` / `.BTF.ext` input and failed type
//! queries.

use crate::types::Kind;

/// Why BTF or BTF.ext bytes were refused, or why a type query could not be
/// answered.
///
/// Every variant names *where*: a byte offset into the section that was being
/// parsed (`offset`, counted from the start of the section, header included)
/// and/or the type id (`id`) whose record is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BtfError {
    /// The input ends before a structure that must be there.
    #[error("truncated {what} at byte offset {offset}: needs {needed} bytes, {available} left")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Byte offset where it starts.
        offset: usize,
        /// Bytes it needs.
        needed: usize,
        /// Bytes that are left.
        available: usize,
    },
    /// The first two bytes are not `0xeB9F` (little-endian).
    #[error("bad {what} magic 0x{found:04x} at byte offset 0 (expected 0xeb9f)")]
    BadMagic {
        /// `"BTF"` or `"BTF.ext"`.
        what: &'static str,
        /// The 16-bit value found.
        found: u16,
    },
    /// The magic is byte-swapped: big-endian BTF, which this crate does not
    /// read.
    #[error(
        "{what} is big-endian (magic 0x9feb at byte offset 0); only little-endian is supported"
    )]
    BigEndian {
        /// `"BTF"` or `"BTF.ext"`.
        what: &'static str,
    },
    /// A version other than 1.
    #[error("unsupported {what} version {version} at byte offset 2 (expected 1)")]
    UnsupportedVersion {
        /// `"BTF"` or `"BTF.ext"`.
        what: &'static str,
        /// The version byte found.
        version: u8,
    },
    /// A non-zero flags byte where none is defined.
    #[error("unsupported {what} flags 0x{flags:02x} at byte offset 3")]
    UnsupportedFlags {
        /// `"BTF"` or `"BTF.ext"`.
        what: &'static str,
        /// The flags byte found.
        flags: u8,
    },
    /// `hdr_len` is smaller than the fields that must be there, or larger
    /// than the input.
    #[error(
        "{what} header length {hdr_len} (byte offset 4) is invalid for {data_len} bytes of input"
    )]
    BadHeaderLen {
        /// `"BTF"` or `"BTF.ext"`.
        what: &'static str,
        /// The declared header length.
        hdr_len: u32,
        /// Length of the whole input.
        data_len: usize,
    },
    /// A sub-section (types, strings, func_info, ...) lies outside the input
    /// or overlaps another.
    #[error(
        "{what} section (offset {off}, length {len}, relative to the header's end) does not fit in {data_len} bytes of input"
    )]
    SectionOutOfBounds {
        /// Which sub-section.
        what: &'static str,
        /// Its offset after the header.
        off: u32,
        /// Its length.
        len: u32,
        /// Length of the whole input.
        data_len: usize,
    },
    /// A sub-section that must be 4-byte aligned is not.
    #[error("{what} at byte offset {offset} is not 4-byte aligned")]
    Misaligned {
        /// Which sub-section.
        what: &'static str,
        /// Its byte offset.
        offset: usize,
    },
    /// The string section is empty, does not start with an empty string or
    /// does not end with a NUL.
    #[error("bad string section at byte offset {offset}: {reason}")]
    BadStringSection {
        /// Byte offset of the string section.
        offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A type record has a kind number this crate does not know.
    #[error("type [{id}] at byte offset {offset}: unknown kind {kind}")]
    UnknownKind {
        /// Type id of the record.
        id: u32,
        /// Byte offset of the record.
        offset: usize,
        /// The kind number found.
        kind: u8,
    },
    /// A type record's fixed or variable-length part runs past the end of
    /// the type section.
    #[error(
        "type [{id}] at byte offset {offset}: {what} needs {needed} bytes but the type section has {available} left"
    )]
    TypeTruncated {
        /// Type id of the record.
        id: u32,
        /// Byte offset of the record.
        offset: usize,
        /// What was being read.
        what: &'static str,
        /// Bytes it needs.
        needed: u64,
        /// Bytes left in the type section.
        available: usize,
    },
    /// A type record has a field value the format forbids.
    #[error("type [{id}] at byte offset {offset}: {reason}")]
    InvalidType {
        /// Type id of the record.
        id: u32,
        /// Byte offset of the record (0 when the type was not parsed from
        /// bytes).
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// A type refers to a type id that does not exist.
    #[error("type [{id}]: {what} refers to type [{target}], but the largest type id is {max}")]
    BadTypeRef {
        /// The referring type.
        id: u32,
        /// Which field refers (e.g. `"member 2"`).
        what: String,
        /// The missing id.
        target: u32,
        /// Largest valid type id.
        max: u32,
    },
    /// A type's name (or a member's, parameter's, enumerator's name) points
    /// outside the string section or at bytes that are not UTF-8.
    #[error(
        "type [{id}]: {what} has string offset {off}, which is not a valid string in the {str_len}-byte string section"
    )]
    BadStringRef {
        /// The referring type.
        id: u32,
        /// Which name (e.g. `"name"`, `"member 3 name"`).
        what: String,
        /// The offending offset.
        off: u32,
        /// Length of the string section.
        str_len: u32,
    },
    /// A chain of pointers, modifiers, typedefs and array element types
    /// leads back to where it started.
    #[error("type [{id}]: type chain loops back to itself")]
    TypeLoop {
        /// A type on the loop.
        id: u32,
    },
    /// A type id that is not in this BTF was passed to a query.
    #[error("type [{id}] does not exist (the largest type id is {max})")]
    UnknownTypeId {
        /// The id asked for.
        id: u32,
        /// Largest valid type id.
        max: u32,
    },
    /// `size_of` was asked for a type that has no size (void, function,
    /// forward declaration, ...).
    #[error("type [{id}] ({kind:?}) has no size")]
    NoSize {
        /// The type without a size.
        id: u32,
        /// Its kind.
        kind: Kind,
    },
    /// A size computation exceeds 32 bits, as libbpf refuses (`-E2BIG`).
    #[error("type [{id}]: size overflows 32 bits")]
    SizeOverflow {
        /// The type whose size overflows.
        id: u32,
    },
    /// A type chain is deeper than the resolver's bound (32, as libbpf).
    #[error("type [{id}]: type chain deeper than {limit} (or looping)")]
    TooDeep {
        /// Where resolution started.
        id: u32,
        /// The bound.
        limit: usize,
    },
    /// A `.BTF.ext` info block is malformed.
    #[error(".BTF.ext {what} at byte offset {offset}: {reason}")]
    BadExt {
        /// `"func_info"`, `"line_info"` or `"core_relo"`.
        what: &'static str,
        /// Byte offset in the `.BTF.ext` section.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
}
