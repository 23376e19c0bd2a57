//! [`Btf`]: parsing, validation, queries and serialization of a `.BTF`
//! section.

use std::collections::HashMap;
use std::fmt;

use crate::error::BtfError;
use crate::types::{
    EnumValue, IntEncoding, Kind, Linkage, Member, Param, Type, TypeId, TypeKind, VarLinkage,
    VarSecinfo,
};

/// `0xeB9F`, the BTF (and BTF.ext) magic.
pub const BTF_MAGIC: u16 = 0xeb9f;
/// Size of the `btf_header` this crate writes (and the minimum it reads).
pub const BTF_HEADER_LEN: usize = 24;
/// Size of the fixed part of every type record (`struct btf_type`).
const TYPE_HDR_LEN: usize = 12;
/// libbpf's `MAX_RESOLVE_DEPTH`, the bound on `size_of` chains.
pub(crate) const MAX_RESOLVE_DEPTH: usize = 32;
/// Pointer size for the BPF target.
pub(crate) const PTR_SIZE: u32 = 8;
/// Bound on recursion through nested types (kept well below what the
/// stack allows).
pub(crate) const MAX_NESTING: usize = 256;

/// A parsed `.BTF` section: the type table (id 0 is `void`) and the raw
/// string section.
///
/// Invariants of a `Btf` returned by [`Btf::parse`] (re-checkable with
/// [`Btf::validate`] after edits):
/// - every type id referenced by a type is `< len()`;
/// - every name offset used by a type points at a NUL-terminated UTF-8
///   string inside the string section, which starts and ends with NUL;
/// - no chain of pointers/typedefs/qualifiers/type tags/vars/decl tags/array
///   element types loops, and no struct or union contains itself by value.
///
/// Types added or edited with [`Btf::add_type`] / [`Btf::type_mut`] are not
/// checked until [`Btf::validate`] is called; every query stays panic-free
/// and terminating on invalid content anyway.
#[derive(Clone)]
pub struct Btf {
    types: Vec<Type>,
    strings: Vec<u8>,
    /// Lazily built string → offset index used by [`Btf::add_string`].
    str_index: Option<HashMap<Box<[u8]>, u32>>,
}

impl PartialEq for Btf {
    fn eq(&self, other: &Btf) -> bool {
        self.types == other.types && self.strings == other.strings
    }
}

impl Eq for Btf {}

impl fmt::Debug for Btf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Btf")
            .field("types", &self.types.len())
            .field("string_bytes", &self.strings.len())
            .finish()
    }
}

impl Default for Btf {
    fn default() -> Self {
        Btf::new()
    }
}

/// Little-endian reader over a byte slice that reports truncation.
struct Reader<'a> {
    data: &'a [u8],
}

impl Reader<'_> {
    fn u32_at(&self, off: usize) -> Option<u32> {
        let b = self.data.get(off..off.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

pub(crate) fn read_u32(data: &[u8], off: usize) -> Option<u32> {
    Reader { data }.u32_at(off)
}

/// Checks the first four bytes both `.BTF` and `.BTF.ext` start with: the magic (in
/// little-endian order), version 1 and no flags. `data` must hold at least 4 bytes.
pub(crate) fn check_preamble(data: &[u8], what: &'static str) -> Result<(), BtfError> {
    let magic = read_u16(data, 0).unwrap_or(0);
    if magic == BTF_MAGIC.swap_bytes() {
        return Err(BtfError::BigEndian { what });
    }
    if magic != BTF_MAGIC {
        return Err(BtfError::BadMagic { what, found: magic });
    }
    match (data.get(2).copied(), data.get(3).copied()) {
        (Some(1), Some(0)) => Ok(()),
        (Some(1), Some(flags)) => Err(BtfError::UnsupportedFlags { what, flags }),
        (version, _) => Err(BtfError::UnsupportedVersion {
            what,
            version: version.unwrap_or(0),
        }),
    }
}

pub(crate) fn read_u16(data: &[u8], off: usize) -> Option<u16> {
    let b = data.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

impl Btf {
    /// An empty BTF: just `void` and the empty string.
    pub fn new() -> Btf {
        Btf {
            types: vec![Type::new(0, TypeKind::Void)],
            strings: vec![0],
            str_index: None,
        }
    }

    /// Parses a little-endian `.BTF` section (header, type section, string
    /// section) and validates it (see the type-level invariants).
    ///
    /// Memory use is bounded by a small multiple of `data.len()`: every
    /// count in the input is checked against the bytes that remain before
    /// anything is allocated for it.
    ///
    /// Split BTF (kernel module BTF on top of vmlinux) is not supported. A
    /// header longer than 24 bytes (a newer format's extra fields) is
    /// accepted; the extra fields are ignored and not written back.
    pub fn parse(data: &[u8]) -> Result<Btf, BtfError> {
        const WHAT: &str = "BTF";
        if data.len() < BTF_HEADER_LEN {
            return Err(BtfError::Truncated {
                what: "BTF header",
                offset: 0,
                needed: BTF_HEADER_LEN,
                available: data.len(),
            });
        }
        let r = Reader { data };
        let u32_at = |off| r.u32_at(off).unwrap_or(0);
        check_preamble(data, WHAT)?;
        let hdr_len = u32_at(4);
        if (hdr_len as usize) < BTF_HEADER_LEN || hdr_len as usize > data.len() {
            return Err(BtfError::BadHeaderLen {
                what: WHAT,
                hdr_len,
                data_len: data.len(),
            });
        }
        let (type_off, type_len) = (u32_at(8), u32_at(12));
        let (str_off, str_len) = (u32_at(16), u32_at(20));
        let meta = data.len() - hdr_len as usize;
        let fits = |off: u32, len: u32| u64::from(off) + u64::from(len) <= meta as u64;
        for (what, off, len) in [("type", type_off, type_len), ("string", str_off, str_len)] {
            if !fits(off, len) {
                return Err(BtfError::SectionOutOfBounds {
                    what,
                    off,
                    len,
                    data_len: data.len(),
                });
            }
        }
        let overlap = u64::from(type_off) < u64::from(str_off) + u64::from(str_len)
            && u64::from(str_off) < u64::from(type_off) + u64::from(type_len);
        if overlap {
            return Err(BtfError::SectionOutOfBounds {
                what: "type (overlapping the string section)",
                off: type_off,
                len: type_len,
                data_len: data.len(),
            });
        }
        let types_start = hdr_len as usize + type_off as usize;
        if !types_start.is_multiple_of(4) {
            return Err(BtfError::Misaligned {
                what: "type section",
                offset: types_start,
            });
        }
        let str_start = hdr_len as usize + str_off as usize;
        let strings = &data[str_start..str_start + str_len as usize];
        match strings {
            [] => {
                return Err(BtfError::BadStringSection {
                    offset: str_start,
                    reason: "it is empty",
                });
            }
            [first, ..] if *first != 0 => {
                return Err(BtfError::BadStringSection {
                    offset: str_start,
                    reason: "it does not start with the empty string",
                });
            }
            [.., last] if *last != 0 => {
                return Err(BtfError::BadStringSection {
                    offset: str_start,
                    reason: "its last string is not NUL-terminated",
                });
            }
            _ => {}
        }
        let type_data = &data[types_start..types_start + type_len as usize];
        let types = parse_types(type_data, types_start)?;
        let btf = Btf {
            types,
            strings: strings.to_vec(),
            str_index: None,
        };
        btf.validate()?;
        Ok(btf)
    }

    /// Checks the invariants listed on [`Btf`]: type references in range,
    /// names valid, no loops. [`Btf::parse`] calls it; call it again after
    /// [`Btf::add_type`] / [`Btf::type_mut`] edits.
    pub fn validate(&self) -> Result<(), BtfError> {
        let count = self.types.len();
        let max = (count - 1) as u32;
        let str_len = self.strings.len() as u32;
        for (idx, t) in self.types.iter().enumerate().skip(1) {
            let id = idx as u32;
            let mut err = None;
            t.kind.for_each_ref(|target, site| {
                if err.is_none() && target.0 as usize >= count {
                    err = Some(BtfError::BadTypeRef {
                        id,
                        what: site.to_string(),
                        target: target.0,
                        max,
                    });
                }
            });
            if let Some(e) = err {
                return Err(e);
            }
            if self.string(t.name_off).is_none() {
                return Err(BtfError::BadStringRef {
                    id,
                    what: "its name".to_string(),
                    off: t.name_off,
                    str_len,
                });
            }
            t.kind.for_each_str(|off, site| {
                if err.is_none() && self.string(off).is_none() {
                    err = Some(BtfError::BadStringRef {
                        id,
                        what: format!("{site} name"),
                        off,
                        str_len,
                    });
                }
            });
            if let Some(e) = err {
                return Err(e);
            }
            if let TypeKind::DeclTag { component_idx, .. } = t.kind
                && component_idx < -1
            {
                return Err(BtfError::InvalidType {
                    id,
                    offset: 0,
                    reason: format!("decl tag component_idx {component_idx} is below -1"),
                });
            }
        }
        self.check_chain_loops()?;
        self.check_value_cycles()
    }

    /// Rejects loops along single-successor chains (pointer, typedef,
    /// qualifiers, tags, var, array element).
    fn check_chain_loops(&self) -> Result<(), BtfError> {
        let n = self.types.len();
        // 0 = unvisited, 1 = on the current walk, 2 = known to terminate.
        let mut state = vec![0u8; n];
        let mut path = Vec::new();
        for start in 1..n {
            let mut cur = start;
            path.clear();
            loop {
                match state[cur] {
                    1 => return Err(BtfError::TypeLoop { id: cur as u32 }),
                    2 => break,
                    _ => {}
                }
                state[cur] = 1;
                path.push(cur);
                match chain_next(&self.types[cur].kind) {
                    Some(next) if next.0 != 0 && (next.0 as usize) < n => cur = next.0 as usize,
                    _ => break,
                }
            }
            for &p in &path {
                state[p] = 2;
            }
        }
        Ok(())
    }

    /// Rejects a struct/union that contains itself by value (through
    /// members, array elements, typedefs and qualifiers; pointers break the
    /// containment).
    fn check_value_cycles(&self) -> Result<(), BtfError> {
        let n = self.types.len();
        let mut state = vec![0u8; n];
        // Iterative DFS: (node, next child index).
        let mut stack: Vec<(usize, usize)> = Vec::new();
        for root in 1..n {
            if state[root] != 0 {
                continue;
            }
            state[root] = 1;
            stack.push((root, 0));
            while let Some(&mut (node, ref mut child)) = stack.last_mut() {
                let next = value_child(&self.types[node].kind, *child);
                *child += 1;
                match next {
                    Some(c) => {
                        let c = c.0 as usize;
                        if c == 0 || c >= n {
                            continue;
                        }
                        match state[c] {
                            0 => {
                                state[c] = 1;
                                stack.push((c, 0));
                            }
                            1 => return Err(BtfError::TypeLoop { id: c as u32 }),
                            _ => {}
                        }
                    }
                    None => {
                        state[node] = 2;
                        stack.pop();
                    }
                }
            }
        }
        Ok(())
    }

    /// Serializes to a `.BTF` section: a 24-byte header, the type section,
    /// then the string section. `Btf::parse(&b.to_bytes()) == Ok(b)` for
    /// every `b` that `parse` produced (and for edits that stay within the
    /// encoding's limits: 24-bit vlen and member bit offsets, 8-bit bitfield
    /// sizes; wider values are truncated).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut types = Vec::new();
        for t in self.types.iter().skip(1) {
            encode_type(t, &mut types);
        }
        let mut out = Vec::with_capacity(BTF_HEADER_LEN + types.len() + self.strings.len());
        out.extend_from_slice(&BTF_MAGIC.to_le_bytes());
        out.push(1); // version
        out.push(0); // flags
        for v in [
            BTF_HEADER_LEN as u32,
            0,
            types.len() as u32,
            types.len() as u32,
            self.strings.len() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&types);
        out.extend_from_slice(&self.strings);
        out
    }

    /// Number of type ids including `void`: the largest id plus one.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Whether there are no types besides `void`.
    pub fn is_empty(&self) -> bool {
        self.types.len() <= 1
    }

    /// The type with this id (`TypeId(0)` is `void`).
    pub fn type_by_id(&self, id: TypeId) -> Option<&Type> {
        self.types.get(id.0 as usize)
    }

    /// Mutable access to a type, for libbpf-style fixups (DATASEC sizes, VAR
    /// offsets, sanitizing kinds the kernel lacks). `void` cannot be edited.
    pub fn type_mut(&mut self, id: TypeId) -> Option<&mut Type> {
        if id.0 == 0 {
            return None;
        }
        self.types.get_mut(id.0 as usize)
    }

    /// Every type except `void`, with its id, in id order.
    pub fn types(&self) -> impl Iterator<Item = (TypeId, &Type)> {
        self.types
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, t)| (TypeId(i as u32), t))
    }

    /// The raw string section (starts and ends with NUL).
    pub fn string_section(&self) -> &[u8] {
        &self.strings
    }

    /// The NUL-terminated string at `off` in the string section, if `off`
    /// is inside it and the bytes are UTF-8. Offset 0 is `""`.
    pub fn string(&self, off: u32) -> Option<&str> {
        let rest = self.strings.get(off as usize..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        std::str::from_utf8(&rest[..end]).ok()
    }

    /// The name of a type: `Some("")` when anonymous, `None` when the id or
    /// its name offset is invalid.
    pub fn name_of(&self, id: TypeId) -> Option<&str> {
        self.string(self.type_by_id(id)?.name_off)
    }

    /// The first type (lowest id) of `kind` named `name`.
    pub fn find(&self, kind: Kind, name: &str) -> Option<TypeId> {
        self.types()
            .find(|(_, t)| t.kind() == kind && self.string(t.name_off) == Some(name))
            .map(|(id, _)| id)
    }

    /// Follows `const`/`volatile`/`restrict`/type tags and typedefs to the
    /// first other type, as libbpf's `skip_mods_and_typedefs`. Returns `id`
    /// itself if it is not one of those; stops after `len()` steps on a loop
    /// (in BTF that did not pass [`Btf::validate`]) and on a dangling id.
    pub fn skip_mods_and_typedefs(&self, mut id: TypeId) -> TypeId {
        for _ in 0..self.types.len() {
            match self.type_by_id(id).map(|t| &t.kind) {
                Some(
                    TypeKind::Typedef { target }
                    | TypeKind::Const { target }
                    | TypeKind::Volatile { target }
                    | TypeKind::Restrict { target }
                    | TypeKind::TypeTag { target, .. },
                ) => id = *target,
                _ => break,
            }
        }
        id
    }

    /// Size in bytes of a type, as libbpf's `btf__resolve_size`: follows
    /// typedefs, qualifiers, type/decl tags and vars; an array is `nelems`
    /// times its element; a pointer is 8. Fails for types without a size
    /// (void, forward declarations, functions), for chains deeper than 32,
    /// and when the result does not fit 32 bits.
    pub fn size_of(&self, id: TypeId) -> Result<u64, BtfError> {
        let start = id;
        let mut id = id;
        let mut nelems: u64 = 1;
        for _ in 0..MAX_RESOLVE_DEPTH {
            let t = self.get(id)?;
            let size = match &t.kind {
                TypeKind::Int { size, .. }
                | TypeKind::Struct { size, .. }
                | TypeKind::Union { size, .. }
                | TypeKind::Enum { size, .. }
                | TypeKind::Enum64 { size, .. }
                | TypeKind::Datasec { size, .. }
                | TypeKind::Float { size } => u64::from(*size),
                TypeKind::Ptr { .. } => u64::from(PTR_SIZE),
                TypeKind::Typedef { target }
                | TypeKind::Volatile { target }
                | TypeKind::Const { target }
                | TypeKind::Restrict { target }
                | TypeKind::TypeTag { target, .. }
                | TypeKind::DeclTag { target, .. } => {
                    id = *target;
                    continue;
                }
                TypeKind::Var { ty, .. } => {
                    id = *ty;
                    continue;
                }
                TypeKind::Array {
                    elem, nelems: n, ..
                } => {
                    nelems = nelems.saturating_mul(u64::from(*n));
                    if nelems > u64::from(u32::MAX) {
                        return Err(BtfError::SizeOverflow { id: start.0 });
                    }
                    id = *elem;
                    continue;
                }
                TypeKind::Void
                | TypeKind::Fwd { .. }
                | TypeKind::Func { .. }
                | TypeKind::FuncProto { .. } => {
                    return Err(BtfError::NoSize {
                        id: id.0,
                        kind: t.kind(),
                    });
                }
            };
            let total = nelems.saturating_mul(size);
            if total > u64::from(u32::MAX) {
                return Err(BtfError::SizeOverflow { id: start.0 });
            }
            return Ok(total);
        }
        Err(BtfError::TooDeep {
            id: start.0,
            limit: MAX_RESOLVE_DEPTH,
        })
    }

    /// Alignment in bytes, as libbpf's `btf__align_of` (8-byte pointers; a
    /// struct/union whose layout shows it is packed has alignment 1).
    /// `None` for kinds without alignment, on a struct containing itself
    /// (only possible after unvalidated edits) or past a nesting bound.
    pub fn align_of(&self, id: TypeId) -> Option<u32> {
        self.align_of_memo(id, &mut HashMap::new(), 0)
    }

    /// [`Btf::align_of`] with a memo shared across calls, so that types
    /// reached many times (a DAG of structs) are computed once.
    pub(crate) fn align_of_memo(
        &self,
        id: TypeId,
        memo: &mut HashMap<u32, Option<u32>>,
        depth: usize,
    ) -> Option<u32> {
        if let Some(&known) = memo.get(&id.0) {
            return known;
        }
        if depth > MAX_NESTING {
            return None;
        }
        // In progress: a cycle back here yields `None`.
        memo.insert(id.0, None);
        let t = self.type_by_id(id)?;
        let align = match &t.kind {
            TypeKind::Int { size, .. }
            | TypeKind::Enum { size, .. }
            | TypeKind::Enum64 { size, .. }
            | TypeKind::Float { size } => Some((*size).min(PTR_SIZE)),
            TypeKind::Ptr { .. } => Some(PTR_SIZE),
            TypeKind::Typedef { target }
            | TypeKind::Volatile { target }
            | TypeKind::Const { target }
            | TypeKind::Restrict { target }
            | TypeKind::TypeTag { target, .. } => self.align_of_memo(*target, memo, depth + 1),
            TypeKind::Array { elem, .. } => self.align_of_memo(*elem, memo, depth + 1),
            TypeKind::Struct { size, members } | TypeKind::Union { size, members } => {
                let mut max = 1;
                let mut packed = false;
                for m in members {
                    let a = self.align_of_memo(m.ty, memo, depth + 1)?;
                    if a == 0 {
                        return None;
                    }
                    max = max.max(a);
                    // A field off its natural alignment: the struct is packed.
                    if m.bitfield_size == 0 && m.bit_offset % (8 * a) != 0 {
                        packed = true;
                        break;
                    }
                }
                // A size that is not a multiple of the alignment: packed.
                if packed || size % max != 0 {
                    Some(1)
                } else {
                    Some(max)
                }
            }
            _ => None,
        };
        memo.insert(id.0, align);
        align
    }

    /// Adds a string to the string section (or finds an identical one) and
    /// returns its offset. `""` is offset 0. A string containing NUL is cut
    /// at the first NUL.
    pub fn add_string(&mut self, s: &str) -> u32 {
        let bytes = s.as_bytes();
        let bytes = match bytes.iter().position(|&b| b == 0) {
            Some(n) => &bytes[..n],
            None => bytes,
        };
        if bytes.is_empty() {
            return 0;
        }
        let strings = &self.strings;
        let index = self.str_index.get_or_insert_with(|| {
            let mut map = HashMap::new();
            let mut start = 0usize;
            for (i, &b) in strings.iter().enumerate() {
                if b == 0 {
                    map.entry(strings[start..i].to_vec().into_boxed_slice())
                        .or_insert(start as u32);
                    start = i + 1;
                }
            }
            map
        });
        if let Some(&off) = index.get(bytes) {
            return off;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(bytes);
        self.strings.push(0);
        index.insert(bytes.to_vec().into_boxed_slice(), off);
        off
    }

    /// Appends a type and returns its id. Not validated (see
    /// [`Btf::validate`]).
    pub fn add_type(&mut self, t: Type) -> TypeId {
        let id = TypeId(self.types.len() as u32);
        self.types.push(t);
        id
    }

    /// The type with this id, or [`BtfError::UnknownTypeId`].
    pub(crate) fn get(&self, id: TypeId) -> Result<&Type, BtfError> {
        self.type_by_id(id).ok_or(BtfError::UnknownTypeId {
            id: id.0,
            max: (self.types.len() as u32).saturating_sub(1),
        })
    }

    /// The string at `off`, or `""` when invalid (for printing).
    pub(crate) fn str_or_empty(&self, off: u32) -> &str {
        self.string(off).unwrap_or("")
    }
}

/// The next type along a single-successor chain, for loop detection.
fn chain_next(k: &TypeKind) -> Option<TypeId> {
    match *k {
        TypeKind::Ptr { target }
        | TypeKind::Typedef { target }
        | TypeKind::Volatile { target }
        | TypeKind::Const { target }
        | TypeKind::Restrict { target }
        | TypeKind::TypeTag { target, .. }
        | TypeKind::DeclTag { target, .. } => Some(target),
        TypeKind::Var { ty, .. } => Some(ty),
        TypeKind::Array { elem, .. } => Some(elem),
        _ => None,
    }
}

/// The `i`-th type contained by value in `k`.
fn value_child(k: &TypeKind, i: usize) -> Option<TypeId> {
    match k {
        TypeKind::Struct { members, .. } | TypeKind::Union { members, .. } => {
            members.get(i).map(|m| m.ty)
        }
        TypeKind::Typedef { target }
        | TypeKind::Volatile { target }
        | TypeKind::Const { target }
        | TypeKind::Restrict { target }
        | TypeKind::TypeTag { target, .. }
            if i == 0 =>
        {
            Some(*target)
        }
        TypeKind::Array { elem, .. } if i == 0 => Some(*elem),
        _ => None,
    }
}

/// Parses the type section; `base` is its byte offset in the input (for
/// error messages).
fn parse_types(data: &[u8], base: usize) -> Result<Vec<Type>, BtfError> {
    let mut types = vec![Type::new(0, TypeKind::Void)];
    let mut pos = 0usize;
    while pos < data.len() {
        let id = types.len() as u32;
        let offset = base + pos;
        let left = data.len() - pos;
        if left < TYPE_HDR_LEN {
            return Err(BtfError::TypeTruncated {
                id,
                offset,
                what: "the btf_type header",
                needed: TYPE_HDR_LEN as u64,
                available: left,
            });
        }
        let rec = &data[pos..];
        let word = |i: usize| read_u32(rec, i * 4).unwrap_or(0);
        let (name_off, info, size_or_type) = (word(0), word(1), word(2));
        let raw_kind = ((info >> 24) & 0x7f) as u8;
        let vlen = (info & 0x00ff_ffff) as usize;
        let kflag = info >> 31 == 1;
        let kind = match Kind::from_raw(raw_kind) {
            Some(k) if k != Kind::Void => k,
            _ => {
                return Err(BtfError::UnknownKind {
                    id,
                    offset,
                    kind: raw_kind,
                });
            }
        };
        let (what, elem_size, count) = match kind {
            Kind::Int => ("INT data", 4, 1),
            Kind::Array => ("btf_array", 12, 1),
            Kind::Struct | Kind::Union => ("members", 12, vlen),
            Kind::Enum => ("enumerators", 8, vlen),
            Kind::Enum64 => ("enumerators", 12, vlen),
            Kind::FuncProto => ("parameters", 8, vlen),
            Kind::Var => ("btf_var", 4, 1),
            Kind::Datasec => ("section variables", 12, vlen),
            Kind::DeclTag => ("btf_decl_tag", 4, 1),
            _ => ("", 0, 0),
        };
        let extra = elem_size as u64 * count as u64;
        let avail = left - TYPE_HDR_LEN;
        if extra > avail as u64 {
            return Err(BtfError::TypeTruncated {
                id,
                offset,
                what,
                needed: extra,
                available: avail,
            });
        }
        // Bounded by the check above: `extra` bytes exist.
        let extra = extra as usize;
        let body = &rec[TYPE_HDR_LEN..TYPE_HDR_LEN + extra];
        let bw = |i: usize| read_u32(body, i * 4).unwrap_or(0);
        let invalid = |reason: String| BtfError::InvalidType { id, offset, reason };
        let tk = match kind {
            Kind::Void => TypeKind::Void,
            Kind::Int => {
                let v = bw(0);
                if v & 0xf000_ff00 != 0 || (v >> 24) & 0xf > 7 {
                    return Err(invalid(format!("INT data 0x{v:08x} has reserved bits set")));
                }
                let enc = ((v >> 24) & 0xf) as u8;
                TypeKind::Int {
                    size: size_or_type,
                    encoding: IntEncoding {
                        signed: enc & 1 != 0,
                        char: enc & 2 != 0,
                        bool: enc & 4 != 0,
                    },
                    bit_offset: ((v >> 16) & 0xff) as u8,
                    bits: (v & 0xff) as u8,
                }
            }
            Kind::Ptr => TypeKind::Ptr {
                target: TypeId(size_or_type),
            },
            Kind::Typedef => TypeKind::Typedef {
                target: TypeId(size_or_type),
            },
            Kind::Volatile => TypeKind::Volatile {
                target: TypeId(size_or_type),
            },
            Kind::Const => TypeKind::Const {
                target: TypeId(size_or_type),
            },
            Kind::Restrict => TypeKind::Restrict {
                target: TypeId(size_or_type),
            },
            Kind::TypeTag => TypeKind::TypeTag {
                target: TypeId(size_or_type),
                attr: kflag,
            },
            Kind::Array => TypeKind::Array {
                elem: TypeId(bw(0)),
                index: TypeId(bw(1)),
                nelems: bw(2),
            },
            Kind::Struct | Kind::Union => {
                let mut members = Vec::with_capacity(vlen);
                for i in 0..vlen {
                    let off = bw(i * 3 + 2);
                    let (bit_offset, bitfield_size) = if kflag {
                        (off & 0x00ff_ffff, off >> 24)
                    } else {
                        (off, 0)
                    };
                    members.push(Member {
                        name_off: bw(i * 3),
                        ty: TypeId(bw(i * 3 + 1)),
                        bit_offset,
                        bitfield_size,
                    });
                }
                if kind == Kind::Struct {
                    TypeKind::Struct {
                        size: size_or_type,
                        members,
                    }
                } else {
                    TypeKind::Union {
                        size: size_or_type,
                        members,
                    }
                }
            }
            Kind::Enum => {
                let mut values = Vec::with_capacity(vlen);
                for i in 0..vlen {
                    let raw = bw(i * 2 + 1);
                    let value = if kflag {
                        i64::from(raw as i32)
                    } else {
                        i64::from(raw)
                    };
                    values.push(EnumValue {
                        name_off: bw(i * 2),
                        value,
                    });
                }
                TypeKind::Enum {
                    size: size_or_type,
                    signed: kflag,
                    values,
                }
            }
            Kind::Enum64 => {
                let mut values = Vec::with_capacity(vlen);
                for i in 0..vlen {
                    let lo = u64::from(bw(i * 3 + 1));
                    let hi = u64::from(bw(i * 3 + 2));
                    values.push(EnumValue {
                        name_off: bw(i * 3),
                        value: ((hi << 32) | lo) as i64,
                    });
                }
                TypeKind::Enum64 {
                    size: size_or_type,
                    signed: kflag,
                    values,
                }
            }
            Kind::Fwd => TypeKind::Fwd { union: kflag },
            Kind::Func => {
                let linkage = Linkage::from_raw(vlen as u32)
                    .ok_or_else(|| invalid(format!("FUNC linkage {vlen} is not 0, 1 or 2")))?;
                TypeKind::Func {
                    proto: TypeId(size_or_type),
                    linkage,
                }
            }
            Kind::FuncProto => {
                let mut params = Vec::with_capacity(vlen);
                for i in 0..vlen {
                    params.push(Param {
                        name_off: bw(i * 2),
                        ty: TypeId(bw(i * 2 + 1)),
                    });
                }
                TypeKind::FuncProto {
                    ret: TypeId(size_or_type),
                    params,
                }
            }
            Kind::Var => {
                let l = bw(0);
                let linkage = VarLinkage::from_raw(l)
                    .ok_or_else(|| invalid(format!("VAR linkage {l} is not 0, 1 or 2")))?;
                TypeKind::Var {
                    ty: TypeId(size_or_type),
                    linkage,
                }
            }
            Kind::Datasec => {
                let mut vars = Vec::with_capacity(vlen);
                for i in 0..vlen {
                    vars.push(VarSecinfo {
                        ty: TypeId(bw(i * 3)),
                        offset: bw(i * 3 + 1),
                        size: bw(i * 3 + 2),
                    });
                }
                TypeKind::Datasec {
                    size: size_or_type,
                    vars,
                }
            }
            Kind::Float => TypeKind::Float { size: size_or_type },
            Kind::DeclTag => TypeKind::DeclTag {
                target: TypeId(size_or_type),
                component_idx: bw(0) as i32,
                attr: kflag,
            },
        };
        types.push(Type::new(name_off, tk));
        pos += TYPE_HDR_LEN + extra;
    }
    Ok(types)
}

fn push_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn info(kind: Kind, vlen: usize, kflag: bool) -> u32 {
    (u32::from(kind.raw()) << 24) | (vlen as u32 & 0x00ff_ffff) | (u32::from(kflag) << 31)
}

/// Appends the wire encoding of one type.
fn encode_type(t: &Type, out: &mut Vec<u8>) {
    push_u32(out, t.name_off);
    let k = t.kind();
    match &t.kind {
        TypeKind::Void => {
            push_u32(out, 0);
            push_u32(out, 0);
        }
        TypeKind::Int {
            size,
            encoding,
            bit_offset,
            bits,
        } => {
            push_u32(out, info(k, 0, false));
            push_u32(out, *size);
            push_u32(
                out,
                (u32::from(encoding.raw()) << 24)
                    | (u32::from(*bit_offset) << 16)
                    | u32::from(*bits),
            );
        }
        TypeKind::Ptr { target }
        | TypeKind::Typedef { target }
        | TypeKind::Volatile { target }
        | TypeKind::Const { target }
        | TypeKind::Restrict { target } => {
            push_u32(out, info(k, 0, false));
            push_u32(out, target.0);
        }
        TypeKind::TypeTag { target, attr } => {
            push_u32(out, info(k, 0, *attr));
            push_u32(out, target.0);
        }
        TypeKind::Array {
            elem,
            index,
            nelems,
        } => {
            push_u32(out, info(k, 0, false));
            push_u32(out, 0);
            push_u32(out, elem.0);
            push_u32(out, index.0);
            push_u32(out, *nelems);
        }
        TypeKind::Struct { size, members } | TypeKind::Union { size, members } => {
            let kflag = members.iter().any(|m| m.bitfield_size != 0);
            push_u32(out, info(k, members.len(), kflag));
            push_u32(out, *size);
            for m in members {
                push_u32(out, m.name_off);
                push_u32(out, m.ty.0);
                let off = if kflag {
                    (m.bitfield_size << 24) | (m.bit_offset & 0x00ff_ffff)
                } else {
                    m.bit_offset
                };
                push_u32(out, off);
            }
        }
        TypeKind::Enum {
            size,
            signed,
            values,
        } => {
            push_u32(out, info(k, values.len(), *signed));
            push_u32(out, *size);
            for v in values {
                push_u32(out, v.name_off);
                push_u32(out, v.value as u32);
            }
        }
        TypeKind::Enum64 {
            size,
            signed,
            values,
        } => {
            push_u32(out, info(k, values.len(), *signed));
            push_u32(out, *size);
            for v in values {
                push_u32(out, v.name_off);
                push_u32(out, v.value as u64 as u32);
                push_u32(out, ((v.value as u64) >> 32) as u32);
            }
        }
        TypeKind::Fwd { union } => {
            push_u32(out, info(k, 0, *union));
            push_u32(out, 0);
        }
        TypeKind::Func { proto, linkage } => {
            push_u32(out, info(k, linkage.raw() as usize, false));
            push_u32(out, proto.0);
        }
        TypeKind::FuncProto { ret, params } => {
            push_u32(out, info(k, params.len(), false));
            push_u32(out, ret.0);
            for p in params {
                push_u32(out, p.name_off);
                push_u32(out, p.ty.0);
            }
        }
        TypeKind::Var { ty, linkage } => {
            push_u32(out, info(k, 0, false));
            push_u32(out, ty.0);
            push_u32(out, linkage.raw());
        }
        TypeKind::Datasec { size, vars } => {
            push_u32(out, info(k, vars.len(), false));
            push_u32(out, *size);
            for v in vars {
                push_u32(out, v.ty.0);
                push_u32(out, v.offset);
                push_u32(out, v.size);
            }
        }
        TypeKind::Float { size } => {
            push_u32(out, info(k, 0, false));
            push_u32(out, *size);
        }
        TypeKind::DeclTag {
            target,
            component_idx,
            attr,
        } => {
            push_u32(out, info(k, 0, *attr));
            push_u32(out, target.0);
            push_u32(out, *component_idx as u32);
        }
    }
}
