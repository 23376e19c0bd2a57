//! [`BtfExt`]: the `.BTF.ext` section (function info, line info and CO-RE
//! relocations, grouped by ELF section).

use crate::btf::{Btf, check_preamble, read_u32};
use crate::error::BtfError;
use crate::types::{Kind, TypeId};

/// Minimum `.BTF.ext` header: magic, version, flags, hdr_len and the
/// func_info/line_info offset/length pairs.
const EXT_HDR_MIN: u32 = 24;
/// Header length from which the core_relo offset/length pair is present.
const EXT_HDR_CORE: u32 = 32;
/// Size of one BPF instruction slot.
const INSN_SIZE: u32 = 8;

/// A parsed `.BTF.ext` section.
///
/// Every record's offsets are as stored in the ELF object: `insn_off` is a
/// **byte** offset from the start of the ELF section named by
/// [`ExtSection::section`] (libbpf divides by 8 and rebases per program
/// before handing func/line info to the kernel, which wants instruction
/// indices relative to the loaded program).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtfExt {
    /// `bpf_func_info` records per ELF section.
    pub func_info: Vec<ExtSection<FuncInfo>>,
    /// `bpf_line_info` records per ELF section.
    pub line_info: Vec<ExtSection<LineInfo>>,
    /// `bpf_core_relo` records per ELF section (empty when the header has
    /// no core_relo fields).
    pub core_relos: Vec<ExtSection<CoreRelo>>,
    /// Record size of the func_info block as stored (the kernel's
    /// `func_info_rec_size`); 0 when the block is absent.
    pub func_info_rec_size: u32,
    /// Record size of the line_info block as stored (the kernel's
    /// `line_info_rec_size`); 0 when the block is absent.
    pub line_info_rec_size: u32,
    /// Record size of the core_relo block as stored; 0 when absent.
    pub core_relo_rec_size: u32,
}

/// The records of one ELF section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtSection<T> {
    /// ELF section name (e.g. `"xdp"`, `".text"`), resolved through the
    /// `.BTF` string table.
    pub section: String,
    /// Records in stored order.
    pub records: Vec<T>,
}

/// `struct bpf_func_info`: a function starts at `insn_off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FuncInfo {
    /// Byte offset of the function's first instruction in its ELF section.
    pub insn_off: u32,
    /// Its `FUNC` type.
    pub type_id: TypeId,
}

/// `struct bpf_line_info`: source position of the instruction at
/// `insn_off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LineInfo {
    /// Byte offset of the instruction in its ELF section.
    pub insn_off: u32,
    /// Source file name (offset in the `.BTF` string table).
    pub file_name_off: u32,
    /// Source line text (offset in the `.BTF` string table).
    pub line_off: u32,
    /// Line number (upper 22 bits of `line_col`).
    pub line: u32,
    /// Column (lower 10 bits of `line_col`).
    pub col: u32,
}

impl LineInfo {
    /// The packed `line_col` word (`line << 10 | col`).
    pub fn line_col(&self) -> u32 {
        (self.line << 10) | (self.col & 0x3ff)
    }
}

/// `struct bpf_core_relo`: one CO-RE relocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CoreRelo {
    /// Byte offset of the instruction to patch in its ELF section.
    pub insn_off: u32,
    /// Root type in the local (object) BTF.
    pub type_id: TypeId,
    /// Access string (`"0:1:2"`), offset in the `.BTF` string table.
    pub access_str_off: u32,
    /// What to compute.
    pub kind: CoreReloKind,
}

/// `enum bpf_core_relo_kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum CoreReloKind {
    /// Field byte offset.
    FieldByteOffset = 0,
    /// Field size in bytes.
    FieldByteSize = 1,
    /// Whether the field exists in the target.
    FieldExists = 2,
    /// Whether the field is signed.
    FieldSigned = 3,
    /// Left shift for bitfield extraction from a u64.
    FieldLshiftU64 = 4,
    /// Right shift for bitfield extraction from a u64.
    FieldRshiftU64 = 5,
    /// Type id in the local BTF.
    TypeIdLocal = 6,
    /// Type id in the target BTF.
    TypeIdTarget = 7,
    /// Whether the type exists in the target.
    TypeExists = 8,
    /// Type size in bytes.
    TypeSize = 9,
    /// Whether the enumerator exists in the target.
    EnumvalExists = 10,
    /// Enumerator value in the target.
    EnumvalValue = 11,
    /// Whether the type matches the target's (stricter than exists).
    TypeMatches = 12,
}

impl CoreReloKind {
    /// The kind with this number, if any.
    pub const fn from_raw(raw: u32) -> Option<CoreReloKind> {
        Some(match raw {
            0 => CoreReloKind::FieldByteOffset,
            1 => CoreReloKind::FieldByteSize,
            2 => CoreReloKind::FieldExists,
            3 => CoreReloKind::FieldSigned,
            4 => CoreReloKind::FieldLshiftU64,
            5 => CoreReloKind::FieldRshiftU64,
            6 => CoreReloKind::TypeIdLocal,
            7 => CoreReloKind::TypeIdTarget,
            8 => CoreReloKind::TypeExists,
            9 => CoreReloKind::TypeSize,
            10 => CoreReloKind::EnumvalExists,
            11 => CoreReloKind::EnumvalValue,
            12 => CoreReloKind::TypeMatches,
            _ => return None,
        })
    }

    /// The stored number.
    pub const fn raw(self) -> u32 {
        self as u32
    }

    /// libbpf's (and llvm-objdump's) short name: `"byte_off"`,
    /// `"field_exists"`, `"enumval_value"`, ...
    pub const fn name(self) -> &'static str {
        match self {
            CoreReloKind::FieldByteOffset => "byte_off",
            CoreReloKind::FieldByteSize => "byte_sz",
            CoreReloKind::FieldExists => "field_exists",
            CoreReloKind::FieldSigned => "signed",
            CoreReloKind::FieldLshiftU64 => "lshift_u64",
            CoreReloKind::FieldRshiftU64 => "rshift_u64",
            CoreReloKind::TypeIdLocal => "local_type_id",
            CoreReloKind::TypeIdTarget => "target_type_id",
            CoreReloKind::TypeExists => "type_exists",
            CoreReloKind::TypeSize => "type_size",
            CoreReloKind::EnumvalExists => "enumval_exists",
            CoreReloKind::EnumvalValue => "enumval_value",
            CoreReloKind::TypeMatches => "type_matches",
        }
    }

    /// Field-based kinds (0-5).
    pub const fn is_field_based(self) -> bool {
        (self as u32) <= 5
    }

    /// Type-based kinds (local/target id, exists, size, matches).
    pub const fn is_type_based(self) -> bool {
        matches!(
            self,
            CoreReloKind::TypeIdLocal
                | CoreReloKind::TypeIdTarget
                | CoreReloKind::TypeExists
                | CoreReloKind::TypeSize
                | CoreReloKind::TypeMatches
        )
    }

    /// Enumerator-based kinds (exists, value).
    pub const fn is_enumval_based(self) -> bool {
        matches!(
            self,
            CoreReloKind::EnumvalExists | CoreReloKind::EnumvalValue
        )
    }
}

/// One info block as located by the header.
struct Block {
    what: &'static str,
    off: u32,
    len: u32,
    min_rec: u32,
}

impl BtfExt {
    /// Parses a little-endian `.BTF.ext` section. Section names and string
    /// offsets are checked against `btf`'s string table, type ids against
    /// its type count (func_info types must be `FUNC`s), instruction offsets
    /// must be multiples of 8, and CO-RE relocation kinds must be known.
    ///
    /// Record sizes larger than the known structures are accepted (the
    /// extra bytes are skipped); smaller ones, or sizes not a multiple of 4,
    /// are refused, as libbpf does.
    pub fn parse(data: &[u8], btf: &Btf) -> Result<BtfExt, BtfError> {
        const WHAT: &str = "BTF.ext";
        if data.len() < 8 {
            return Err(BtfError::Truncated {
                what: "BTF.ext header",
                offset: 0,
                needed: 8,
                available: data.len(),
            });
        }
        check_preamble(data, WHAT)?;
        let hdr_len = read_u32(data, 4).unwrap_or(0);
        if hdr_len < EXT_HDR_MIN || hdr_len as usize > data.len() {
            return Err(BtfError::BadHeaderLen {
                what: WHAT,
                hdr_len,
                data_len: data.len(),
            });
        }
        let word = |i: usize| read_u32(data, i).unwrap_or(0);
        let mut blocks = vec![
            Block {
                what: "func_info",
                off: word(8),
                len: word(12),
                min_rec: 8,
            },
            Block {
                what: "line_info",
                off: word(16),
                len: word(20),
                min_rec: 16,
            },
        ];
        if hdr_len >= EXT_HDR_CORE {
            blocks.push(Block {
                what: "core_relo",
                off: word(24),
                len: word(28),
                min_rec: 16,
            });
        }
        let mut ext = BtfExt {
            func_info: Vec::new(),
            line_info: Vec::new(),
            core_relos: Vec::new(),
            func_info_rec_size: 0,
            line_info_rec_size: 0,
            core_relo_rec_size: 0,
        };
        for b in &blocks {
            let Some((rec_size, sections)) = split_block(data, hdr_len, b, btf)? else {
                continue;
            };
            match b.what {
                "func_info" => {
                    ext.func_info_rec_size = rec_size;
                    ext.func_info = convert(sections, |rec, at| func_info(rec, at, btf))?;
                }
                "line_info" => {
                    ext.line_info_rec_size = rec_size;
                    ext.line_info = convert(sections, |rec, at| line_info(rec, at, btf))?;
                }
                _ => {
                    ext.core_relo_rec_size = rec_size;
                    ext.core_relos = convert(sections, |rec, at| core_relo(rec, at, btf))?;
                }
            }
        }
        Ok(ext)
    }

    /// The func_info records of one ELF section.
    pub fn func_info_for(&self, section: &str) -> &[FuncInfo] {
        find_section(&self.func_info, section)
    }

    /// The line_info records of one ELF section.
    pub fn line_info_for(&self, section: &str) -> &[LineInfo] {
        find_section(&self.line_info, section)
    }

    /// The CO-RE relocations of one ELF section.
    pub fn core_relos_for(&self, section: &str) -> &[CoreRelo] {
        find_section(&self.core_relos, section)
    }
}

fn find_section<'a, T>(secs: &'a [ExtSection<T>], name: &str) -> &'a [T] {
    secs.iter()
        .find(|s| s.section == name)
        .map_or(&[], |s| &s.records)
}

/// Raw records of one section: name and `(byte offset, record bytes)`.
type RawSection<'a> = (String, Vec<(usize, &'a [u8])>);

/// Splits one info block into per-section record slices, checking the
/// framing. `None` when the block is absent (length 0).
fn split_block<'a>(
    data: &'a [u8],
    hdr_len: u32,
    b: &Block,
    btf: &Btf,
) -> Result<Option<(u32, Vec<RawSection<'a>>)>, BtfError> {
    if b.len == 0 {
        return Ok(None);
    }
    let start = u64::from(hdr_len) + u64::from(b.off);
    if !b.off.is_multiple_of(4) {
        return Err(BtfError::Misaligned {
            what: b.what,
            offset: start as usize,
        });
    }
    if start + u64::from(b.len) > data.len() as u64 {
        return Err(BtfError::SectionOutOfBounds {
            what: b.what,
            off: b.off,
            len: b.len,
            data_len: data.len(),
        });
    }
    let start = start as usize;
    let block = &data[start..start + b.len as usize];
    let bad = |offset: usize, reason: String| BtfError::BadExt {
        what: b.what,
        offset,
        reason,
    };
    let rec_size =
        read_u32(block, 0).ok_or_else(|| bad(start, "the record size word is missing".into()))?;
    if rec_size < b.min_rec || !rec_size.is_multiple_of(4) {
        return Err(bad(
            start,
            format!(
                "record size {rec_size} is not a multiple of 4 of at least {}",
                b.min_rec
            ),
        ));
    }
    if block.len() == 4 {
        return Err(bad(start, "the block has no sections".into()));
    }
    let mut pos = 4usize;
    let mut sections = Vec::new();
    while pos < block.len() {
        let at = start + pos;
        if block.len() - pos < 8 {
            return Err(bad(
                at,
                "section header (sec_name_off, num_info) is truncated".into(),
            ));
        }
        let name_off = read_u32(block, pos).unwrap_or(0);
        let num = read_u32(block, pos + 4).unwrap_or(0);
        if num == 0 {
            return Err(bad(at, "section has zero records".into()));
        }
        let total = u64::from(num) * u64::from(rec_size);
        let left = (block.len() - pos - 8) as u64;
        if total > left {
            return Err(bad(
                at,
                format!("{num} records of {rec_size} bytes need {total} bytes, {left} left"),
            ));
        }
        let name = match btf.string(name_off) {
            Some(s) if !s.is_empty() => s.to_string(),
            _ => {
                return Err(bad(
                    at,
                    format!("section name offset {name_off} is not a non-empty string in .BTF"),
                ));
            }
        };
        pos += 8;
        // `num` records exist (checked above), so this allocation is
        // bounded by the input length.
        let mut recs = Vec::with_capacity(num as usize);
        for _ in 0..num {
            recs.push((start + pos, &block[pos..pos + rec_size as usize]));
            pos += rec_size as usize;
        }
        sections.push((name, recs));
    }
    Ok(Some((rec_size, sections)))
}

fn convert<T>(
    sections: Vec<RawSection<'_>>,
    f: impl Fn(&[u8], usize) -> Result<T, BtfError>,
) -> Result<Vec<ExtSection<T>>, BtfError> {
    sections
        .into_iter()
        .map(|(section, recs)| {
            let records = recs
                .into_iter()
                .map(|(at, rec)| f(rec, at))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ExtSection { section, records })
        })
        .collect()
}

fn rec_word(rec: &[u8], i: usize) -> u32 {
    read_u32(rec, i * 4).unwrap_or(0)
}

fn check_insn_off(what: &'static str, insn_off: u32, at: usize) -> Result<(), BtfError> {
    if !insn_off.is_multiple_of(INSN_SIZE) {
        return Err(BtfError::BadExt {
            what,
            offset: at,
            reason: format!("insn_off {insn_off} is not a multiple of 8"),
        });
    }
    Ok(())
}

fn check_type(what: &'static str, id: u32, at: usize, btf: &Btf) -> Result<TypeId, BtfError> {
    if id as usize >= btf.len() {
        return Err(BtfError::BadExt {
            what,
            offset: at,
            reason: format!(
                "type_id {id} does not exist (the largest is {})",
                btf.len().saturating_sub(1)
            ),
        });
    }
    Ok(TypeId(id))
}

fn check_str(what: &'static str, off: u32, at: usize, btf: &Btf) -> Result<u32, BtfError> {
    if off as usize >= btf.string_section().len() {
        return Err(BtfError::BadExt {
            what,
            offset: at,
            reason: format!(
                "string offset {off} is outside the {}-byte .BTF string section",
                btf.string_section().len()
            ),
        });
    }
    Ok(off)
}

fn func_info(rec: &[u8], at: usize, btf: &Btf) -> Result<FuncInfo, BtfError> {
    let insn_off = rec_word(rec, 0);
    check_insn_off("func_info", insn_off, at)?;
    let type_id = check_type("func_info", rec_word(rec, 1), at, btf)?;
    let kind = btf.type_by_id(type_id).map(|t| t.kind());
    if kind != Some(Kind::Func) {
        return Err(BtfError::BadExt {
            what: "func_info",
            offset: at,
            reason: format!(
                "type_id {type_id} is a {}, not a FUNC",
                kind.map_or("?", |k| k.name())
            ),
        });
    }
    Ok(FuncInfo { insn_off, type_id })
}

fn line_info(rec: &[u8], at: usize, btf: &Btf) -> Result<LineInfo, BtfError> {
    let insn_off = rec_word(rec, 0);
    check_insn_off("line_info", insn_off, at)?;
    let file_name_off = check_str("line_info", rec_word(rec, 1), at, btf)?;
    let line_off = check_str("line_info", rec_word(rec, 2), at, btf)?;
    let line_col = rec_word(rec, 3);
    Ok(LineInfo {
        insn_off,
        file_name_off,
        line_off,
        line: line_col >> 10,
        col: line_col & 0x3ff,
    })
}

fn core_relo(rec: &[u8], at: usize, btf: &Btf) -> Result<CoreRelo, BtfError> {
    let insn_off = rec_word(rec, 0);
    check_insn_off("core_relo", insn_off, at)?;
    let type_id = check_type("core_relo", rec_word(rec, 1), at, btf)?;
    let access_str_off = check_str("core_relo", rec_word(rec, 2), at, btf)?;
    let raw = rec_word(rec, 3);
    let kind = CoreReloKind::from_raw(raw).ok_or_else(|| BtfError::BadExt {
        what: "core_relo",
        offset: at,
        reason: format!("unknown relocation kind {raw}"),
    })?;
    Ok(CoreRelo {
        insn_off,
        type_id,
        access_str_off,
        kind,
    })
}
