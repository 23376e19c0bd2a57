//! CO-RE relocation resolution and instruction patching, following
//! libbpf's `relo_core.c` (`bpf_core_calc_relo_insn`,
//! `bpf_core_patch_insn`) and its candidate search (`bpf_core_add_cands`).
//!
//! The algorithm, in libbpf's terms:
//! 1. parse the relocation's access string against the local BTF into a
//!    *spec* (a list of accessors: named fields and array indices) and the
//!    local value;
//! 2. collect target *candidates*: target types of a compatible kind whose
//!    *essential name* (the name up to a last `___suffix` flavor) equals the
//!    local type's;
//! 3. match the local spec against every candidate (fields by name, through
//!    anonymous members; arrays by bounds; compatibility of field types);
//! 4. compute the target value for each match; all matches must agree,
//!    otherwise the relocation is ambiguous. With no match, existence
//!    relocations yield 0 and the others ask for the instruction to be
//!    *poisoned*.

use std::cell::Cell;

use bpfvm_isa::RawInsn;

use crate::btf::Btf;
use crate::error::BtfError;
use crate::ext::{CoreRelo, CoreReloKind};
use crate::types::{Member, TypeId, TypeKind};

/// libbpf's `BPF_CORE_SPEC_MAX_LEN`: the bound on access-string length and
/// nesting depth.
pub const SPEC_MAX_LEN: usize = 64;
/// Depth budget for the recursive compatibility checks (libbpf userspace
/// uses 32).
const COMPAT_LEVEL: i32 = 32;
/// Bound on the steps of the type comparisons for one relocation, so that
/// adversarial BTF (a DAG of types reached along exponentially many paths)
/// cannot make resolution take forever. Real programs need a tiny fraction.
const MAX_STEPS: u64 = 1_000_000;
/// The helper id libbpf writes into a poisoned instruction (`0xbad2310`,
/// "bad relo"); the kernel verifier reports `invalid func unknown#195896080`
/// if it is reachable.
pub const POISON_HELPER_ID: i32 = 0x0bad_2310;

/// Why a CO-RE relocation could not be resolved or applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The relocation's root type id is not in the local BTF.
    #[error("relocation root type [{type_id}] does not exist in the local BTF")]
    UnknownLocalType {
        /// The missing id.
        type_id: u32,
    },
    /// The access string does not parse or does not fit the local type.
    #[error("relocation on type [{type_id}]: access string {access:?} is invalid: {reason}")]
    BadAccessString {
        /// Root type.
        type_id: u32,
        /// The access string (lossy when not a string).
        access: String,
        /// What is wrong.
        reason: String,
    },
    /// Candidate search needs a named local type (libbpf refuses anonymous
    /// ones).
    #[error("relocation {kind:?} on anonymous type [{type_id}]: candidate search needs a name")]
    AnonymousType {
        /// Root type.
        type_id: u32,
        /// Relocation kind.
        kind: CoreReloKind,
    },
    /// The access string or the type nesting goes past libbpf's bounds
    /// ([`SPEC_MAX_LEN`] accessors, 32 levels of nested type comparison).
    #[error(
        "relocation on type [{type_id}]: deeper than libbpf's bounds ({SPEC_MAX_LEN} accessors, 32 nested type levels)"
    )]
    TooDeep {
        /// Root type.
        type_id: u32,
    },
    /// Comparing the local and target types took more than a fixed budget
    /// of steps (adversarial or absurdly large types).
    #[error("relocation on type [{type_id}]: type comparison exceeded {MAX_STEPS} steps")]
    TooComplex {
        /// Root type.
        type_id: u32,
    },
    /// Two candidates resolve differently.
    #[error(
        "relocation on type [{type_id}]: candidates [{first}] and [{other}] disagree ({reason})"
    )]
    Ambiguous {
        /// Root type.
        type_id: u32,
        /// First matching candidate.
        first: u32,
        /// The disagreeing candidate.
        other: u32,
        /// What differs.
        reason: String,
    },
    /// The relocation kind cannot be computed for this access (e.g. a
    /// shift relocation on an array element, or a bitfield too wide for a
    /// 64-bit load).
    #[error("relocation {kind:?} on type [{type_id}]: {reason}")]
    Unsupported {
        /// Root type.
        type_id: u32,
        /// Relocation kind.
        kind: CoreReloKind,
        /// Why.
        reason: String,
    },
    /// A type in the local or target BTF could not be sized or looked up.
    #[error("relocation on type [{type_id}]: {source}")]
    Btf {
        /// Root type.
        type_id: u32,
        /// The underlying error.
        source: BtfError,
    },
    /// The instruction index is outside the program (or a `lddw` lacks its
    /// second slot).
    #[error("instruction #{idx} is outside the {len}-slot program")]
    InsnOutOfRange {
        /// Instruction index.
        idx: usize,
        /// Program length in slots.
        len: usize,
    },
    /// The instruction does not carry the value the local BTF predicts.
    #[error("instruction #{idx}: found value {found}, expected {expected} (relocating to {new})")]
    UnexpectedValue {
        /// Instruction index.
        idx: usize,
        /// Value in the instruction.
        found: u64,
        /// Local value.
        expected: u64,
        /// Target value.
        new: u64,
    },
    /// The instruction kind cannot carry a relocated value (an ALU with a
    /// register source, a jump, ...).
    #[error("instruction #{idx} (opcode 0x{opcode:02x}) cannot be relocated")]
    UnsupportedInsn {
        /// Instruction index.
        idx: usize,
        /// Its opcode.
        opcode: u8,
    },
    /// A memory offset does not fit the instruction's 16-bit signed field.
    #[error("instruction #{idx}: offset {value} does not fit in 16 bits")]
    OffsetTooBig {
        /// Instruction index.
        idx: usize,
        /// The new offset.
        value: u64,
    },
    /// The load/store size of the instruction is not the local field size.
    #[error("instruction #{idx}: memory access size {found} is not the expected {expected}")]
    UnexpectedMemSize {
        /// Instruction index.
        idx: usize,
        /// Size in the instruction (0 when not a sized access).
        found: u32,
        /// Local field size.
        expected: u32,
    },
    /// The target field size is not 1, 2, 4 or 8.
    #[error("instruction #{idx}: new memory access size {size} is not 1, 2, 4 or 8")]
    InvalidMemSize {
        /// Instruction index.
        idx: usize,
        /// The target size.
        size: u32,
    },
    /// A `lddw` whose reserved fields or second slot are not as a plain
    /// 64-bit immediate load has them.
    #[error("instruction #{idx}: lddw has an unexpected form")]
    MalformedLdImm64 {
        /// Instruction index.
        idx: usize,
    },
}

/// The outcome of resolving one relocation: the value the instruction
/// carries now (computed from the local BTF) and the value it must carry
/// for the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoreResolution {
    /// The relocation kind.
    pub kind: CoreReloKind,
    /// Value according to the local BTF (what the compiler put in the
    /// instruction).
    pub local: u64,
    /// Value for the target; `None` means *poison*: no target candidate has
    /// the field/enumerator (or the load cannot be resized safely), and the
    /// instruction must become libbpf's invalid helper call.
    pub target: Option<u64>,
    /// The target candidate type that matched (`None` when none did).
    pub target_type: Option<TypeId>,
    /// Memory access size the target field needs (byte-offset relocations
    /// of whole fields and array elements).
    pub target_size: Option<u32>,
    /// Memory access size of the local field (same cases as `target_size`).
    pub local_size: Option<u32>,
    /// Whether [`patch`] must check the instruction carries `local` first
    /// (libbpf turns this off for bitfields and type ids).
    pub validate: bool,
    /// The load/store size would have to change in a way that loses
    /// information (libbpf poisons the load/store instead).
    pub fail_memsz_adjust: bool,
}

/// One accessor of a spec: a field (with name) or an array index.
#[derive(Clone, Debug)]
struct Accessor<'a> {
    /// The struct/union (field accessor) or array element type.
    type_id: TypeId,
    /// Field index or array index.
    idx: u32,
    /// Field or enumerator name; `None` for an array index.
    name: Option<&'a str>,
}

#[derive(Clone, Debug)]
struct Spec<'a> {
    btf: &'a Btf,
    spec: Vec<Accessor<'a>>,
    root_type_id: TypeId,
    raw_spec: Vec<u32>,
    bit_offset: u64,
}

impl<'a> Spec<'a> {
    fn new(btf: &'a Btf, root: TypeId) -> Spec<'a> {
        Spec {
            btf,
            spec: Vec::new(),
            root_type_id: root,
            raw_spec: Vec::new(),
            bit_offset: 0,
        }
    }
}

/// libbpf's `bpf_core_essential_name_len`: the length of `name` up to the
/// last `X___Y` flavor separator (where X and Y are not `_`).
pub fn essential_name_len(name: &str) -> usize {
    let b = name.as_bytes();
    let n = b.len();
    if n >= 5 {
        for i in (0..=n - 5).rev() {
            if b[i] != b'_'
                && b[i + 1] == b'_'
                && b[i + 2] == b'_'
                && b[i + 3] == b'_'
                && b[i + 4] != b'_'
            {
                return i + 1;
            }
        }
    }
    n
}

fn essential(name: &str) -> &str {
    &name[..essential_name_len(name)]
}

/// Context for errors (the relocation root type) and the step budget.
struct Ctx {
    root: u32,
    kind: CoreReloKind,
    steps: Cell<u64>,
}

impl Ctx {
    /// Takes one step of the budget.
    fn tick(&self) -> Result<(), CoreError> {
        let n = self.steps.get() + 1;
        self.steps.set(n);
        if n > MAX_STEPS {
            return Err(CoreError::TooComplex { type_id: self.root });
        }
        Ok(())
    }

    fn btf(&self, e: BtfError) -> CoreError {
        CoreError::Btf {
            type_id: self.root,
            source: e,
        }
    }

    fn access(&self, access: &str, reason: impl Into<String>) -> CoreError {
        CoreError::BadAccessString {
            type_id: self.root,
            access: access.to_string(),
            reason: reason.into(),
        }
    }

    fn too_deep(&self) -> CoreError {
        CoreError::TooDeep { type_id: self.root }
    }

    fn unsupported(&self, reason: impl Into<String>) -> CoreError {
        CoreError::Unsupported {
            type_id: self.root,
            kind: self.kind,
            reason: reason.into(),
        }
    }
}

fn kind_core_compat(a: &TypeKind, b: &TypeKind) -> bool {
    a.kind() == b.kind() || (a.is_any_enum() && b.is_any_enum())
}

fn ty<'b>(btf: &'b Btf, id: TypeId, ctx: &Ctx) -> Result<&'b TypeKind, CoreError> {
    btf.get(id).map(|t| &t.kind).map_err(|e| ctx.btf(e))
}

fn skip<'b>(btf: &'b Btf, id: TypeId, ctx: &Ctx) -> Result<(TypeId, &'b TypeKind), CoreError> {
    let id = btf.skip_mods_and_typedefs(id);
    Ok((id, ty(btf, id, ctx)?))
}

fn size_of(btf: &Btf, id: TypeId, ctx: &Ctx) -> Result<u64, CoreError> {
    btf.size_of(id).map_err(|e| ctx.btf(e))
}

/// libbpf's `is_flex_arr`: an array of 0 elements that is the last member
/// of the struct named by the previous accessor.
fn is_flex_arr(btf: &Btf, prev: Option<&Accessor<'_>>, nelems: u32) -> bool {
    let Some(acc) = prev else {
        return false;
    };
    if acc.name.is_none() || nelems > 0 {
        return false;
    }
    let vlen = btf
        .type_by_id(acc.type_id)
        .map_or(0, |t| t.kind.members().len());
    vlen > 0 && acc.idx as usize == vlen - 1
}

/// libbpf's `bpf_core_parse_spec`.
fn parse_spec<'a>(btf: &'a Btf, relo: &CoreRelo, ctx: &Ctx) -> Result<Spec<'a>, CoreError> {
    let access = match btf.string(relo.access_str_off) {
        Some(s) => s,
        None => {
            return Err(ctx.access(
                &format!("<string offset {}>", relo.access_str_off),
                "not a string",
            ));
        }
    };
    if access.is_empty() || access.starts_with(':') {
        return Err(ctx.access(access, "empty or starts with ':'"));
    }
    let mut spec = Spec::new(btf, relo.type_id);
    if relo.kind.is_type_based() {
        if access != "0" {
            return Err(ctx.access(access, "type-based relocations must use \"0\""));
        }
        return Ok(spec);
    }
    for part in access.split(':') {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ctx.access(access, format!("{part:?} is not an index")));
        }
        if spec.raw_spec.len() == SPEC_MAX_LEN {
            return Err(ctx.too_deep());
        }
        let idx: u32 = part
            .parse()
            .map_err(|_| ctx.access(access, format!("{part} does not fit 32 bits")))?;
        spec.raw_spec.push(idx);
    }
    let (mut id, t) = skip(btf, relo.type_id, ctx)?;
    let first = spec.raw_spec[0];
    spec.spec.push(Accessor {
        type_id: id,
        idx: first,
        name: None,
    });
    if relo.kind.is_enumval_based() {
        let values = t.enum_values();
        if !t.is_any_enum() || spec.raw_spec.len() > 1 || first as usize >= values.len() {
            return Err(ctx.access(access, "not a single valid enumerator index"));
        }
        let name = btf.str_or_empty(values[first as usize].name_off);
        spec.spec[0].name = Some(name);
        return Ok(spec);
    }
    let sz = size_of(btf, id, ctx)?;
    spec.bit_offset = u64::from(first) * sz * 8;
    for i in 1..spec.raw_spec.len() {
        let (sid, t) = skip(btf, id, ctx)?;
        id = sid;
        let access_idx = spec.raw_spec[i];
        match t {
            TypeKind::Struct { members, .. } | TypeKind::Union { members, .. } => {
                let Some(m) = members.get(access_idx as usize) else {
                    return Err(ctx.access(
                        access,
                        format!("member index {access_idx} out of range for type [{}]", id.0),
                    ));
                };
                spec.bit_offset += u64::from(m.bit_offset);
                if m.name_off != 0 {
                    let name = btf.str_or_empty(m.name_off);
                    if name.is_empty() {
                        return Err(ctx.access(access, "member has an empty name"));
                    }
                    spec.spec.push(Accessor {
                        type_id: id,
                        idx: access_idx,
                        name: Some(name),
                    });
                }
                id = m.ty;
            }
            TypeKind::Array { elem, nelems, .. } => {
                let (eid, _) = skip(btf, *elem, ctx)?;
                id = eid;
                let flex = is_flex_arr(btf, spec.spec.last(), *nelems);
                if !flex && access_idx >= *nelems {
                    return Err(ctx.access(
                        access,
                        format!("array index {access_idx} out of bounds ({nelems} elements)"),
                    ));
                }
                spec.spec.push(Accessor {
                    type_id: id,
                    idx: access_idx,
                    name: None,
                });
                let sz = size_of(btf, id, ctx)?;
                spec.bit_offset += u64::from(access_idx) * sz * 8;
            }
            other => {
                return Err(ctx.access(
                    access,
                    format!(
                        "element {i} lands on type [{}] of kind {}, not a struct, union or array",
                        id.0,
                        other.kind().name()
                    ),
                ));
            }
        }
    }
    Ok(spec)
}

/// libbpf's `bpf_core_fields_are_compat`.
fn fields_are_compat(
    local: &Btf,
    mut local_id: TypeId,
    targ: &Btf,
    mut targ_id: TypeId,
    ctx: &Ctx,
) -> Result<bool, CoreError> {
    for _ in 0..SPEC_MAX_LEN {
        ctx.tick()?;
        let (lid, lt) = skip(local, local_id, ctx)?;
        let (tid, tt) = skip(targ, targ_id, ctx)?;
        if lt.is_composite() && tt.is_composite() {
            return Ok(true);
        }
        if !kind_core_compat(lt, tt) {
            return Ok(false);
        }
        match (lt, tt) {
            (TypeKind::Ptr { .. }, _) | (TypeKind::Float { .. }, _) => return Ok(true),
            (TypeKind::Fwd { .. } | TypeKind::Enum { .. } | TypeKind::Enum64 { .. }, _) => {
                let ln = local.name_of(lid).unwrap_or("");
                let tn = targ.name_of(tid).unwrap_or("");
                let (le, te) = (essential(ln), essential(tn));
                return Ok(le.is_empty() || te.is_empty() || le == te);
            }
            (TypeKind::Int { bit_offset: lo, .. }, TypeKind::Int { bit_offset: to, .. }) => {
                return Ok(*lo == 0 && *to == 0);
            }
            (TypeKind::Array { elem: le, .. }, TypeKind::Array { elem: te, .. }) => {
                local_id = *le;
                targ_id = *te;
            }
            _ => return Ok(false),
        }
    }
    Err(ctx.too_deep())
}

/// libbpf's `bpf_core_match_member`: finds the local accessor's field in
/// target type `targ_id`, descending into anonymous members. On success the
/// target spec gains the accessor and `next` is the field's type.
fn match_member<'a>(
    local: &Btf,
    local_acc: &Accessor<'_>,
    targ: &'a Btf,
    targ_id: TypeId,
    spec: &mut Spec<'a>,
    next: &mut TypeId,
    ctx: &Ctx,
) -> Result<bool, CoreError> {
    let (targ_id, tt) = skip(targ, targ_id, ctx)?;
    let (TypeKind::Struct { members, .. } | TypeKind::Union { members, .. }) = tt else {
        return Ok(false);
    };
    let local_t = ty(local, local_acc.type_id, ctx)?;
    let Some(local_member) = local_t.members().get(local_acc.idx as usize) else {
        return Ok(false);
    };
    let local_name = local.str_or_empty(local_member.name_off);
    for (i, m) in members.iter().enumerate() {
        ctx.tick()?;
        if spec.raw_spec.len() == SPEC_MAX_LEN {
            return Err(ctx.too_deep());
        }
        spec.bit_offset += u64::from(m.bit_offset);
        spec.raw_spec.push(i as u32);
        let targ_name = targ.str_or_empty(m.name_off);
        if targ_name.is_empty() {
            // Anonymous embedded struct/union: look inside.
            let found = match_member(local, local_acc, targ, m.ty, spec, next, ctx)?;
            if found {
                return Ok(true);
            }
        } else if local_name == targ_name {
            spec.spec.push(Accessor {
                type_id: targ_id,
                idx: i as u32,
                name: Some(targ_name),
            });
            *next = m.ty;
            let found = fields_are_compat(local, local_member.ty, targ, m.ty, ctx)?;
            if !found {
                spec.spec.pop();
            }
            return Ok(found);
        }
        spec.bit_offset -= u64::from(m.bit_offset);
        spec.raw_spec.pop();
    }
    Ok(false)
}

/// libbpf's `__bpf_core_types_are_compat`.
fn types_are_compat(
    local: &Btf,
    mut local_id: TypeId,
    targ: &Btf,
    mut targ_id: TypeId,
    level: i32,
    ctx: &Ctx,
) -> Result<bool, CoreError> {
    if !kind_core_compat(ty(local, local_id, ctx)?, ty(targ, targ_id, ctx)?) {
        return Ok(false);
    }
    for _ in 0..32 {
        ctx.tick()?;
        let (_, lt) = skip(local, local_id, ctx)?;
        let (_, tt) = skip(targ, targ_id, ctx)?;
        if !kind_core_compat(lt, tt) {
            return Ok(false);
        }
        match (lt, tt) {
            (
                TypeKind::Void
                | TypeKind::Struct { .. }
                | TypeKind::Union { .. }
                | TypeKind::Enum { .. }
                | TypeKind::Fwd { .. }
                | TypeKind::Enum64 { .. },
                _,
            ) => return Ok(true),
            (TypeKind::Int { bit_offset: lo, .. }, TypeKind::Int { bit_offset: to, .. }) => {
                return Ok(*lo == 0 && *to == 0);
            }
            (TypeKind::Ptr { target: l }, TypeKind::Ptr { target: t }) => {
                local_id = *l;
                targ_id = *t;
            }
            (TypeKind::Array { elem: l, .. }, TypeKind::Array { elem: t, .. }) => {
                local_id = *l;
                targ_id = *t;
            }
            (
                TypeKind::FuncProto {
                    ret: lret,
                    params: lp,
                },
                TypeKind::FuncProto {
                    ret: tret,
                    params: tp,
                },
            ) => {
                if lp.len() != tp.len() {
                    return Ok(false);
                }
                for (l, t) in lp.iter().zip(tp) {
                    if level <= 0 {
                        return Err(ctx.too_deep());
                    }
                    let l = local.skip_mods_and_typedefs(l.ty);
                    let t = targ.skip_mods_and_typedefs(t.ty);
                    if !types_are_compat(local, l, targ, t, level - 1, ctx)? {
                        return Ok(false);
                    }
                }
                local_id = local.skip_mods_and_typedefs(*lret);
                targ_id = targ.skip_mods_and_typedefs(*tret);
            }
            _ => return Ok(false),
        }
    }
    Err(ctx.too_deep())
}

/// libbpf's `bpf_core_names_match`.
fn names_match(local: &Btf, local_off: u32, targ: &Btf, targ_off: u32) -> bool {
    let ln = local.str_or_empty(local_off);
    let tn = targ.str_or_empty(targ_off);
    if tn.is_empty() {
        return ln.is_empty();
    }
    essential(ln) == essential(tn)
}

/// libbpf's `bpf_core_enums_match`.
fn enums_match(
    local: &Btf,
    lt: &TypeKind,
    lsize: u32,
    targ: &Btf,
    tt: &TypeKind,
    tsize: u32,
) -> bool {
    if lsize != tsize {
        return false;
    }
    let (lv, tv) = (lt.enum_values(), tt.enum_values());
    if lv.len() > tv.len() {
        return false;
    }
    lv.iter().all(|l| {
        tv.iter()
            .any(|t| names_match(local, l.name_off, targ, t.name_off))
    })
}

fn enum_size(t: &TypeKind) -> u32 {
    match t {
        TypeKind::Enum { size, .. } | TypeKind::Enum64 { size, .. } => *size,
        _ => 0,
    }
}

/// libbpf's `bpf_core_composites_match`.
fn composites_match(
    local: &Btf,
    lm: &[Member],
    targ: &Btf,
    tm: &[Member],
    behind_ptr: bool,
    level: i32,
    ctx: &Ctx,
) -> Result<bool, CoreError> {
    if lm.len() > tm.len() {
        return Ok(false);
    }
    for l in lm {
        let mut matched = false;
        for t in tm {
            ctx.tick()?;
            if !names_match(local, l.name_off, targ, t.name_off) {
                continue;
            }
            if types_match(local, l.ty, targ, t.ty, behind_ptr, level - 1, ctx)? {
                matched = true;
                break;
            }
        }
        if !matched {
            return Ok(false);
        }
    }
    Ok(true)
}

/// libbpf's `__bpf_core_types_match`.
fn types_match(
    local: &Btf,
    mut local_id: TypeId,
    targ: &Btf,
    mut targ_id: TypeId,
    mut behind_ptr: bool,
    level: i32,
    ctx: &Ctx,
) -> Result<bool, CoreError> {
    if level <= 0 {
        return Err(ctx.too_deep());
    }
    for _ in 0..32 {
        ctx.tick()?;
        let (lid, lt) = skip(local, local_id, ctx)?;
        let (tid, tt) = skip(targ, targ_id, ctx)?;
        let lname = local.type_by_id(lid).map_or(0, |t| t.name_off);
        let tname = targ.type_by_id(tid).map_or(0, |t| t.name_off);
        if !names_match(local, lname, targ, tname) {
            return Ok(false);
        }
        let (lk, tk) = (lt.kind(), tt.kind());
        match lt {
            TypeKind::Void => return Ok(lk == tk),
            TypeKind::Fwd { union: lu } => {
                return Ok(match tt {
                    TypeKind::Fwd { union: tu } => lu == tu,
                    TypeKind::Struct { .. } if behind_ptr => !lu,
                    TypeKind::Union { .. } if behind_ptr => *lu,
                    _ => false,
                });
            }
            TypeKind::Enum { .. } | TypeKind::Enum64 { .. } => {
                if !tt.is_any_enum() {
                    return Ok(false);
                }
                return Ok(enums_match(
                    local,
                    lt,
                    enum_size(lt),
                    targ,
                    tt,
                    enum_size(tt),
                ));
            }
            TypeKind::Struct { members: lm, .. } | TypeKind::Union { members: lm, .. } => {
                if behind_ptr {
                    if lk == tk {
                        return Ok(true);
                    }
                    return Ok(match tt {
                        TypeKind::Fwd { union } => (lk == crate::types::Kind::Union) == *union,
                        _ => false,
                    });
                }
                if lk != tk {
                    return Ok(false);
                }
                return composites_match(local, lm, targ, tt.members(), behind_ptr, level, ctx);
            }
            TypeKind::Int {
                size: ls,
                encoding: le,
                ..
            } => {
                return Ok(match tt {
                    TypeKind::Int {
                        size: ts,
                        encoding: te,
                        ..
                    } => ls == ts && le.signed == te.signed,
                    _ => false,
                });
            }
            TypeKind::Ptr { target } => {
                let TypeKind::Ptr { target: t } = tt else {
                    return Ok(false);
                };
                behind_ptr = true;
                local_id = *target;
                targ_id = *t;
            }
            TypeKind::Array { elem, nelems, .. } => {
                let TypeKind::Array {
                    elem: te,
                    nelems: tn,
                    ..
                } = tt
                else {
                    return Ok(false);
                };
                if nelems != tn {
                    return Ok(false);
                }
                local_id = *elem;
                targ_id = *te;
            }
            TypeKind::FuncProto { ret, params } => {
                let TypeKind::FuncProto {
                    ret: tret,
                    params: tparams,
                } = tt
                else {
                    return Ok(false);
                };
                if params.len() != tparams.len() {
                    return Ok(false);
                }
                for (l, t) in params.iter().zip(tparams) {
                    if !types_match(local, l.ty, targ, t.ty, behind_ptr, level - 1, ctx)? {
                        return Ok(false);
                    }
                }
                local_id = *ret;
                targ_id = *tret;
            }
            _ => return Ok(false),
        }
    }
    Err(ctx.too_deep())
}

/// libbpf's `bpf_core_spec_match`: `Ok(None)` when the candidate does not
/// match.
fn spec_match<'a>(
    local_spec: &Spec<'_>,
    kind: CoreReloKind,
    targ: &'a Btf,
    targ_id: TypeId,
    ctx: &Ctx,
) -> Result<Option<Spec<'a>>, CoreError> {
    let mut ts = Spec::new(targ, targ_id);
    if kind.is_type_based() {
        let ok = if kind == CoreReloKind::TypeMatches {
            types_match(
                local_spec.btf,
                local_spec.root_type_id,
                targ,
                targ_id,
                false,
                COMPAT_LEVEL,
                ctx,
            )?
        } else {
            types_are_compat(
                local_spec.btf,
                local_spec.root_type_id,
                targ,
                targ_id,
                COMPAT_LEVEL,
                ctx,
            )?
        };
        return Ok(ok.then_some(ts));
    }
    if kind.is_enumval_based() {
        let (tid, tt) = skip(targ, targ_id, ctx)?;
        if !tt.is_any_enum() {
            return Ok(None);
        }
        let local_name = local_spec.spec[0].name.unwrap_or("");
        let local_ess = essential(local_name);
        for (i, v) in tt.enum_values().iter().enumerate() {
            let tn = targ.str_or_empty(v.name_off);
            if essential(tn) == local_ess {
                ts.spec.push(Accessor {
                    type_id: tid,
                    idx: i as u32,
                    name: Some(tn),
                });
                ts.raw_spec.push(i as u32);
                return Ok(Some(ts));
            }
        }
        return Ok(None);
    }
    let mut targ_id = targ_id;
    for (i, local_acc) in local_spec.spec.iter().enumerate() {
        let (tid, tt) = skip(targ, targ_id, ctx)?;
        targ_id = tid;
        if local_acc.name.is_some() {
            let mut next = TypeId::VOID;
            if !match_member(
                local_spec.btf,
                local_acc,
                targ,
                targ_id,
                &mut ts,
                &mut next,
                ctx,
            )? {
                return Ok(None);
            }
            targ_id = next;
        } else {
            if i > 0 {
                let TypeKind::Array { elem, nelems, .. } = tt else {
                    return Ok(None);
                };
                let flex = is_flex_arr(targ, ts.spec.last(), *nelems);
                if !flex && local_acc.idx >= *nelems {
                    return Ok(None);
                }
                targ_id = targ.skip_mods_and_typedefs(*elem);
                ty(targ, targ_id, ctx)?;
            }
            if ts.raw_spec.len() == SPEC_MAX_LEN {
                return Err(ctx.too_deep());
            }
            ts.spec.push(Accessor {
                type_id: targ_id,
                idx: local_acc.idx,
                name: None,
            });
            ts.raw_spec.push(local_acc.idx);
            let sz = size_of(targ, targ_id, ctx)?;
            ts.bit_offset += u64::from(local_acc.idx) * sz * 8;
        }
    }
    Ok(Some(ts))
}

/// Result of computing one side of a relocation.
#[derive(Clone, Copy, Debug, Default)]
struct Calc {
    val: u64,
    size: u32,
    type_id: TypeId,
}

/// libbpf's `bpf_core_calc_field_relo`. `Ok(None)` means poison.
fn calc_field(
    kind: CoreReloKind,
    spec: Option<&Spec<'_>>,
    validate: Option<&mut bool>,
    ctx: &Ctx,
) -> Result<Option<Calc>, CoreError> {
    let mut out = Calc::default();
    if kind == CoreReloKind::FieldExists {
        out.val = u64::from(spec.is_some());
        return Ok(Some(out));
    }
    let Some(spec) = spec else {
        return Ok(None);
    };
    let btf = spec.btf;
    let Some(acc) = spec.spec.last() else {
        return Err(ctx.unsupported("empty field spec"));
    };
    if acc.name.is_none() {
        // An array element (or the root itself): a[n].
        let sz = size_of(btf, acc.type_id, ctx)?;
        match kind {
            CoreReloKind::FieldByteOffset => {
                out.val = spec.bit_offset / 8;
                out.size = sz as u32;
                out.type_id = acc.type_id;
            }
            CoreReloKind::FieldByteSize => out.val = sz,
            _ => return Err(ctx.unsupported("cannot be applied to an array element")),
        }
        if let Some(v) = validate {
            *v = true;
        }
        return Ok(Some(out));
    }
    let t = ty(btf, acc.type_id, ctx)?;
    let Some(m) = t.members().get(acc.idx as usize) else {
        return Err(ctx.unsupported("field index out of range"));
    };
    let (field_type_id, mt) = skip(btf, m.ty, ctx)?;
    let bit_off = spec.bit_offset;
    let mut bit_sz = u64::from(m.bitfield_size);
    let bitfield = bit_sz > 0;
    let (byte_off, byte_sz);
    if bitfield {
        let mut sz = u64::from(sized(mt));
        if sz == 0 {
            return Err(ctx.unsupported("bitfield of a type without a size"));
        }
        let mut off = bit_off / 8 / sz * sz;
        while bit_off + bit_sz - off * 8 > sz * 8 {
            if sz >= 8 {
                return Err(ctx.unsupported("bitfield cannot be read with a 64-bit load"));
            }
            sz *= 2;
            off = bit_off / 8 / sz * sz;
        }
        byte_sz = sz;
        byte_off = off;
    } else {
        byte_sz = size_of(btf, field_type_id, ctx)?;
        byte_off = spec.bit_offset / 8;
        bit_sz = byte_sz * 8;
    }
    let mut v = !bitfield;
    match kind {
        CoreReloKind::FieldByteOffset => {
            out.val = byte_off;
            if !bitfield {
                out.size = byte_sz as u32;
                out.type_id = field_type_id;
            }
        }
        CoreReloKind::FieldByteSize => out.val = byte_sz,
        CoreReloKind::FieldSigned => {
            let signed = match mt {
                TypeKind::Enum { signed, .. } | TypeKind::Enum64 { signed, .. } => *signed,
                TypeKind::Int { encoding, .. } => encoding.signed,
                _ => false,
            };
            out.val = u64::from(signed);
            v = true;
        }
        CoreReloKind::FieldLshiftU64 => {
            // libbpf computes the shifts in 32-bit unsigned arithmetic.
            out.val = u64::from(64u32.wrapping_sub((bit_off + bit_sz - byte_off * 8) as u32));
        }
        CoreReloKind::FieldRshiftU64 => {
            out.val = u64::from(64u32.wrapping_sub(bit_sz as u32));
            v = true;
        }
        _ => return Err(ctx.unsupported("not a field relocation")),
    }
    if let Some(validate) = validate {
        *validate = v;
    }
    Ok(Some(out))
}

/// The `size` field of kinds that have one (what libbpf reads as
/// `t->size`).
fn sized(t: &TypeKind) -> u32 {
    match t {
        TypeKind::Int { size, .. }
        | TypeKind::Enum { size, .. }
        | TypeKind::Enum64 { size, .. }
        | TypeKind::Struct { size, .. }
        | TypeKind::Union { size, .. }
        | TypeKind::Float { size }
        | TypeKind::Datasec { size, .. } => *size,
        _ => 0,
    }
}

/// libbpf's `bpf_core_calc_type_relo`.
fn calc_type(
    kind: CoreReloKind,
    spec: Option<&Spec<'_>>,
    validate: Option<&mut bool>,
    ctx: &Ctx,
) -> Result<u64, CoreError> {
    let mut v = true;
    let val = match spec {
        None => 0,
        Some(spec) => match kind {
            CoreReloKind::TypeIdTarget => {
                v = false;
                u64::from(spec.root_type_id.0)
            }
            CoreReloKind::TypeExists | CoreReloKind::TypeMatches => 1,
            CoreReloKind::TypeSize => size_of(spec.btf, spec.root_type_id, ctx)?,
            _ => return Err(ctx.unsupported("not a type relocation")),
        },
    };
    if let Some(validate) = validate {
        *validate = v;
    }
    Ok(val)
}

/// libbpf's `bpf_core_calc_enumval_relo`. `Ok(None)` means poison.
fn calc_enumval(
    kind: CoreReloKind,
    spec: Option<&Spec<'_>>,
    ctx: &Ctx,
) -> Result<Option<u64>, CoreError> {
    match kind {
        CoreReloKind::EnumvalExists => Ok(Some(u64::from(spec.is_some()))),
        CoreReloKind::EnumvalValue => {
            let Some(spec) = spec else {
                return Ok(None);
            };
            let acc = &spec.spec[0];
            let t = ty(spec.btf, acc.type_id, ctx)?;
            let v = t
                .enum_values()
                .get(acc.idx as usize)
                .ok_or_else(|| ctx.unsupported("enumerator index out of range"))?;
            Ok(Some(match t {
                // libbpf reads the 32-bit value as `__s32` into a `__u64`:
                // sign-extended, whatever the enum's signedness.
                TypeKind::Enum { .. } => v.value as i32 as i64 as u64,
                _ => v.value as u64,
            }))
        }
        _ => Err(ctx.unsupported("not an enumerator relocation")),
    }
}

/// libbpf's `bpf_core_calc_relo`: both sides of one relocation for one
/// target spec (`None` = no candidate).
fn calc_relo(
    kind: CoreReloKind,
    local_spec: &Spec<'_>,
    targ_spec: Option<&Spec<'_>>,
    ctx: &Ctx,
) -> Result<CoreResolution, CoreError> {
    let mut res = CoreResolution {
        kind,
        local: 0,
        target: None,
        target_type: targ_spec.map(|s| s.root_type_id),
        target_size: None,
        local_size: None,
        validate: true,
        fail_memsz_adjust: false,
    };
    if kind.is_field_based() {
        let mut validate = true;
        let Some(orig) = calc_field(kind, Some(local_spec), Some(&mut validate), ctx)? else {
            return Err(ctx.unsupported("local field cannot be computed"));
        };
        res.validate = validate;
        res.local = orig.val;
        res.local_size = (orig.size != 0).then_some(orig.size);
        let Some(new) = calc_field(kind, targ_spec, None, ctx)? else {
            return Ok(res); // poison
        };
        res.target = Some(new.val);
        res.target_size = (new.size != 0).then_some(new.size);
        if orig.size != new.size {
            let ot = local_spec.btf.type_by_id(orig.type_id).map(|t| &t.kind);
            let nt = targ_spec
                .and_then(|s| s.btf.type_by_id(new.type_id))
                .map(|t| &t.kind);
            let safe = match (ot, nt) {
                (Some(TypeKind::Ptr { .. }), Some(TypeKind::Ptr { .. })) => true,
                (
                    Some(TypeKind::Int { encoding: a, .. }),
                    Some(TypeKind::Int { encoding: b, .. }),
                ) => a.raw() != 1 && b.raw() != 1,
                _ => false,
            };
            res.fail_memsz_adjust = !safe;
        }
    } else if kind.is_type_based() {
        let mut validate = true;
        res.local = calc_type(kind, Some(local_spec), Some(&mut validate), ctx)?;
        res.validate = validate;
        res.target = Some(calc_type(kind, targ_spec, None, ctx)?);
    } else {
        let Some(orig) = calc_enumval(kind, Some(local_spec), ctx)? else {
            return Err(ctx.unsupported("local enumerator cannot be computed"));
        };
        res.local = orig;
        res.target = calc_enumval(kind, targ_spec, ctx)?;
    }
    Ok(res)
}

/// Target candidates for local type `local_id`, as libbpf's
/// `bpf_core_add_cands`: target types of a CO-RE-compatible kind (enum and
/// enum64 are interchangeable) whose essential name equals the local one,
/// in id order. Empty for an anonymous or unknown local type.
pub fn candidates(local: &Btf, local_id: TypeId, target: &Btf) -> Vec<TypeId> {
    let Some(lt) = local.type_by_id(local_id) else {
        return Vec::new();
    };
    let lname = essential(local.str_or_empty(lt.name_off));
    if lname.is_empty() {
        return Vec::new();
    }
    target
        .types()
        .filter(|(_, t)| kind_core_compat(&t.kind, &lt.kind))
        .filter(|(_, t)| {
            let n = target.str_or_empty(t.name_off);
            !n.is_empty() && essential(n) == lname
        })
        .map(|(id, _)| id)
        .collect()
}

/// Resolves one CO-RE relocation of `local` against `target` (candidates by
/// essential name, as libbpf: name up to "___"), returning the value for
/// the local and the target side (`None` on the target side = no candidate:
/// the instruction must be poisoned as libbpf does).
///
/// `local` and `target` may be the same BTF (then every target value
/// equals the local one).
pub fn resolve(local: &Btf, relo: &CoreRelo, target: &Btf) -> Result<CoreResolution, CoreError> {
    let ctx = Ctx {
        root: relo.type_id.0,
        kind: relo.kind,
        steps: Cell::new(0),
    };
    let lt = local
        .type_by_id(relo.type_id)
        .ok_or(CoreError::UnknownLocalType {
            type_id: relo.type_id.0,
        })?;
    let local_spec = parse_spec(local, relo, &ctx)?;
    if relo.kind == CoreReloKind::TypeIdLocal {
        return Ok(type_id_local(relo));
    }
    if local.str_or_empty(lt.name_off).is_empty() {
        return Err(CoreError::AnonymousType {
            type_id: relo.type_id.0,
            kind: relo.kind,
        });
    }
    let mut best: Option<(CoreResolution, Spec<'_>)> = None;
    for cand in candidates(local, relo.type_id, target) {
        let Some(cand_spec) = spec_match(&local_spec, relo.kind, target, cand, &ctx)? else {
            continue;
        };
        let res = calc_relo(relo.kind, &local_spec, Some(&cand_spec), &ctx)?;
        match &best {
            None => best = Some((res, cand_spec)),
            Some((first, first_spec)) => {
                let first_id = first.target_type.map_or(0, |t| t.0);
                if cand_spec.bit_offset != first_spec.bit_offset {
                    return Err(CoreError::Ambiguous {
                        type_id: relo.type_id.0,
                        first: first_id,
                        other: cand.0,
                        reason: format!(
                            "field bit offset {} != {}",
                            first_spec.bit_offset, cand_spec.bit_offset
                        ),
                    });
                }
                if res.target != first.target {
                    return Err(CoreError::Ambiguous {
                        type_id: relo.type_id.0,
                        first: first_id,
                        other: cand.0,
                        reason: format!("value {:?} != {:?}", first.target, res.target),
                    });
                }
            }
        }
    }
    match best {
        Some((res, _)) => Ok(res),
        None => calc_relo(relo.kind, &local_spec, None, &ctx),
    }
}

/// Resolves a relocation with the local root type as the only candidate:
/// the "target" is the object's own type, so every value is what the
/// local BTF gives (what the compiler put in the instruction, except where
/// libbpf does not validate: bitfield offsets/sizes/left shifts, type ids).
///
/// This is for running an object where its own types are the truth (no
/// target BTF). Unlike [`resolve`] with `target == local`, it does not
/// search candidates by essential name, so flavors of a type in the same
/// object (`task_struct` and `task_struct___new`) cannot make it ambiguous.
pub fn resolve_local(local: &Btf, relo: &CoreRelo) -> Result<CoreResolution, CoreError> {
    let ctx = Ctx {
        root: relo.type_id.0,
        kind: relo.kind,
        steps: Cell::new(0),
    };
    local
        .type_by_id(relo.type_id)
        .ok_or(CoreError::UnknownLocalType {
            type_id: relo.type_id.0,
        })?;
    let local_spec = parse_spec(local, relo, &ctx)?;
    if relo.kind == CoreReloKind::TypeIdLocal {
        return Ok(type_id_local(relo));
    }
    let target_spec = spec_match(&local_spec, relo.kind, local, relo.type_id, &ctx)?;
    calc_relo(relo.kind, &local_spec, target_spec.as_ref(), &ctx)
}

/// `TYPE_ID_LOCAL` needs no candidate: both sides are the local id, and the
/// instruction is not validated (ids may change when objects are linked).
fn type_id_local(relo: &CoreRelo) -> CoreResolution {
    let id = u64::from(relo.type_id.0);
    CoreResolution {
        kind: relo.kind,
        local: id,
        target: Some(id),
        target_type: Some(relo.type_id),
        target_size: None,
        local_size: None,
        validate: false,
        fail_memsz_adjust: false,
    }
}

const BPF_LD: u8 = 0x00;
const BPF_LDX: u8 = 0x01;
const BPF_ST: u8 = 0x02;
const BPF_STX: u8 = 0x03;
const BPF_ALU: u8 = 0x04;
const BPF_ALU64: u8 = 0x07;
const BPF_X: u8 = 0x08;
const LDDW: u8 = 0x18;
const CALL: u8 = 0x85;

fn poison_insn(insn: &mut RawInsn) {
    *insn = RawInsn {
        opcode: CALL,
        dst: 0,
        src: 0,
        off: 0,
        imm: POISON_HELPER_ID,
    };
}

fn size_bytes(opcode: u8) -> u32 {
    match opcode & 0x18 {
        0x18 => 8,
        0x00 => 4,
        0x08 => 2,
        _ => 1,
    }
}

fn size_code(bytes: u32) -> Option<u8> {
    match bytes {
        8 => Some(0x18),
        4 => Some(0x00),
        2 => Some(0x08),
        1 => Some(0x10),
        _ => None,
    }
}

fn poison(slots: &mut [RawInsn], idx: usize) -> Result<(), CoreError> {
    let len = slots.len();
    if slots[idx].opcode == LDDW {
        let second = slots
            .get_mut(idx + 1)
            .ok_or(CoreError::InsnOutOfRange { idx: idx + 1, len })?;
        poison_insn(second);
    }
    poison_insn(&mut slots[idx]);
    Ok(())
}

/// Patches the instruction at `slots[idx]` (ALU imm, LDX/ST/STX off, LDDW
/// imm; load size for byte-size changes) as libbpf's
/// `bpf_core_patch_insn` does; a poisoned relocation turns the instruction
/// into libbpf's poison call (`call 0xbad2310`), both slots of a `lddw`.
///
/// When `res.validate` is set the instruction must carry `res.local`
/// (otherwise [`CoreError::UnexpectedValue`]). On error nothing is changed.
pub fn patch(slots: &mut [RawInsn], idx: usize, res: &CoreResolution) -> Result<(), CoreError> {
    let len = slots.len();
    let insn = *slots
        .get(idx)
        .ok_or(CoreError::InsnOutOfRange { idx, len })?;
    let Some(new_val) = res.target else {
        return poison(slots, idx);
    };
    let orig_val = res.local;
    let class = insn.opcode & 0x07;
    match class {
        BPF_ALU | BPF_ALU64 => {
            if insn.opcode & BPF_X != 0 {
                return Err(CoreError::UnsupportedInsn {
                    idx,
                    opcode: insn.opcode,
                });
            }
            let found = insn.imm as i64 as u64;
            if res.validate && found != orig_val {
                return Err(CoreError::UnexpectedValue {
                    idx,
                    found,
                    expected: orig_val,
                    new: new_val,
                });
            }
            slots[idx].imm = new_val as u32 as i32;
        }
        BPF_LDX | BPF_ST | BPF_STX => {
            let found = insn.off as i64 as u64;
            if res.validate && found != orig_val {
                return Err(CoreError::UnexpectedValue {
                    idx,
                    found,
                    expected: orig_val,
                    new: new_val,
                });
            }
            if new_val > i16::MAX as u64 {
                return Err(CoreError::OffsetTooBig {
                    idx,
                    value: new_val,
                });
            }
            if res.fail_memsz_adjust {
                return poison(slots, idx);
            }
            let orig_sz = res.local_size.unwrap_or(0);
            let new_sz = res.target_size.unwrap_or(0);
            let mut opcode = insn.opcode;
            if new_sz != orig_sz {
                let have = size_bytes(insn.opcode);
                if have != orig_sz {
                    return Err(CoreError::UnexpectedMemSize {
                        idx,
                        found: have,
                        expected: orig_sz,
                    });
                }
                let code =
                    size_code(new_sz).ok_or(CoreError::InvalidMemSize { idx, size: new_sz })?;
                opcode = (insn.opcode & 0xe0) | code | class;
            }
            slots[idx].off = new_val as i16;
            slots[idx].opcode = opcode;
        }
        BPF_LD => {
            let second = slots.get(idx + 1).copied();
            let ok = insn.opcode == LDDW
                && insn.src == 0
                && insn.off == 0
                && matches!(second, Some(s) if s.opcode == 0 && s.dst == 0 && s.src == 0 && s.off == 0);
            let Some(second) = second.filter(|_| ok) else {
                return Err(CoreError::MalformedLdImm64 { idx });
            };
            let found = u64::from(insn.imm as u32) | (u64::from(second.imm as u32) << 32);
            if res.validate && found != orig_val {
                return Err(CoreError::UnexpectedValue {
                    idx,
                    found,
                    expected: orig_val,
                    new: new_val,
                });
            }
            slots[idx].imm = new_val as u32 as i32;
            slots[idx + 1].imm = (new_val >> 32) as u32 as i32;
        }
        _ => {
            return Err(CoreError::UnsupportedInsn {
                idx,
                opcode: insn.opcode,
            });
        }
    }
    Ok(())
}
