//! The in-memory type model: one [`Type`] per BTF type id.

use std::fmt;

/// A BTF type id. Id 0 is `void`; real types are numbered from 1 in the
/// order they appear in the type section.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TypeId(pub u32);

impl TypeId {
    /// The `void` type (id 0).
    pub const VOID: TypeId = TypeId(0);

    /// Whether this is the `void` id.
    pub const fn is_void(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for TypeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The kind of a BTF type, numbered as in `include/uapi/linux/btf.h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    /// `BTF_KIND_UNKN` (0): only the implicit `void` type has it.
    Void = 0,
    /// `BTF_KIND_INT`.
    Int = 1,
    /// `BTF_KIND_PTR`.
    Ptr = 2,
    /// `BTF_KIND_ARRAY`.
    Array = 3,
    /// `BTF_KIND_STRUCT`.
    Struct = 4,
    /// `BTF_KIND_UNION`.
    Union = 5,
    /// `BTF_KIND_ENUM` (values up to 32 bits).
    Enum = 6,
    /// `BTF_KIND_FWD`.
    Fwd = 7,
    /// `BTF_KIND_TYPEDEF`.
    Typedef = 8,
    /// `BTF_KIND_VOLATILE`.
    Volatile = 9,
    /// `BTF_KIND_CONST`.
    Const = 10,
    /// `BTF_KIND_RESTRICT`.
    Restrict = 11,
    /// `BTF_KIND_FUNC`.
    Func = 12,
    /// `BTF_KIND_FUNC_PROTO`.
    FuncProto = 13,
    /// `BTF_KIND_VAR`.
    Var = 14,
    /// `BTF_KIND_DATASEC`.
    Datasec = 15,
    /// `BTF_KIND_FLOAT`.
    Float = 16,
    /// `BTF_KIND_DECL_TAG`.
    DeclTag = 17,
    /// `BTF_KIND_TYPE_TAG`.
    TypeTag = 18,
    /// `BTF_KIND_ENUM64`.
    Enum64 = 19,
}

impl Kind {
    /// The kind with this number, if any (0 is [`Kind::Void`]).
    pub const fn from_raw(raw: u8) -> Option<Kind> {
        Some(match raw {
            0 => Kind::Void,
            1 => Kind::Int,
            2 => Kind::Ptr,
            3 => Kind::Array,
            4 => Kind::Struct,
            5 => Kind::Union,
            6 => Kind::Enum,
            7 => Kind::Fwd,
            8 => Kind::Typedef,
            9 => Kind::Volatile,
            10 => Kind::Const,
            11 => Kind::Restrict,
            12 => Kind::Func,
            13 => Kind::FuncProto,
            14 => Kind::Var,
            15 => Kind::Datasec,
            16 => Kind::Float,
            17 => Kind::DeclTag,
            18 => Kind::TypeTag,
            19 => Kind::Enum64,
            _ => return None,
        })
    }

    /// The kind number as stored in `btf_type.info` bits 24-30.
    pub const fn raw(self) -> u8 {
        self as u8
    }

    /// The upper-case name bpftool and the kernel print (`"STRUCT"`,
    /// `"FUNC_PROTO"`, `"UNKN"` for void).
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Void => "UNKN",
            Kind::Int => "INT",
            Kind::Ptr => "PTR",
            Kind::Array => "ARRAY",
            Kind::Struct => "STRUCT",
            Kind::Union => "UNION",
            Kind::Enum => "ENUM",
            Kind::Fwd => "FWD",
            Kind::Typedef => "TYPEDEF",
            Kind::Volatile => "VOLATILE",
            Kind::Const => "CONST",
            Kind::Restrict => "RESTRICT",
            Kind::Func => "FUNC",
            Kind::FuncProto => "FUNC_PROTO",
            Kind::Var => "VAR",
            Kind::Datasec => "DATASEC",
            Kind::Float => "FLOAT",
            Kind::DeclTag => "DECL_TAG",
            Kind::TypeTag => "TYPE_TAG",
            Kind::Enum64 => "ENUM64",
        }
    }
}

/// `BTF_INT_ENCODING` flags of an integer. At most one is set in valid BTF.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IntEncoding {
    /// `BTF_INT_SIGNED`.
    pub signed: bool,
    /// `BTF_INT_CHAR`.
    pub char: bool,
    /// `BTF_INT_BOOL`.
    pub bool: bool,
}

impl IntEncoding {
    /// The 4-bit encoding field.
    pub const fn raw(self) -> u8 {
        (self.signed as u8) | ((self.char as u8) << 1) | ((self.bool as u8) << 2)
    }
}

/// Linkage of a `FUNC` (stored in its `vlen`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Linkage {
    /// `BTF_FUNC_STATIC` (0).
    Static,
    /// `BTF_FUNC_GLOBAL` (1).
    Global,
    /// `BTF_FUNC_EXTERN` (2).
    Extern,
}

impl Linkage {
    /// The stored number.
    pub const fn raw(self) -> u32 {
        match self {
            Linkage::Static => 0,
            Linkage::Global => 1,
            Linkage::Extern => 2,
        }
    }

    /// The linkage with this number, if any.
    pub const fn from_raw(raw: u32) -> Option<Linkage> {
        match raw {
            0 => Some(Linkage::Static),
            1 => Some(Linkage::Global),
            2 => Some(Linkage::Extern),
            _ => None,
        }
    }
}

/// Linkage of a `VAR` (the `btf_var.linkage` word).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VarLinkage {
    /// `BTF_VAR_STATIC` (0).
    Static,
    /// `BTF_VAR_GLOBAL_ALLOCATED` (1).
    Global,
    /// `BTF_VAR_GLOBAL_EXTERN` (2).
    Extern,
}

impl VarLinkage {
    /// The stored number.
    pub const fn raw(self) -> u32 {
        match self {
            VarLinkage::Static => 0,
            VarLinkage::Global => 1,
            VarLinkage::Extern => 2,
        }
    }

    /// The linkage with this number, if any.
    pub const fn from_raw(raw: u32) -> Option<VarLinkage> {
        match raw {
            0 => Some(VarLinkage::Static),
            1 => Some(VarLinkage::Global),
            2 => Some(VarLinkage::Extern),
            _ => None,
        }
    }
}

/// A struct or union member.
///
/// `bit_offset` and `bitfield_size` are decoded from `btf_member.offset`
/// according to the owning type's `kind_flag`: with the flag set the word
/// holds `bitfield_size << 24 | bit_offset`; without it, the whole word is the
/// bit offset and `bitfield_size` is 0 (a bitfield may then still be
/// described by an `INT` with `bits` smaller than its size, the pre-kind_flag
/// encoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Member {
    /// Member name (0 for an anonymous embedded struct/union).
    pub name_off: u32,
    /// Member type.
    pub ty: TypeId,
    /// Offset from the start of the struct, in bits.
    pub bit_offset: u32,
    /// Width of a bitfield in bits, 0 if not a bitfield.
    pub bitfield_size: u32,
}

/// An enumerator of an `ENUM` or `ENUM64`.
///
/// For a 32-bit `ENUM` the stored word is sign-extended when the enum is
/// signed and zero-extended otherwise; for `ENUM64` the value is the 64-bit
/// pattern (`val_hi32 << 32 | val_lo32`) reinterpreted as `i64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EnumValue {
    /// Enumerator name.
    pub name_off: u32,
    /// Enumerator value.
    pub value: i64,
}

/// A `FUNC_PROTO` parameter. A last parameter with `ty == TypeId::VOID`
/// (and no name) marks a variadic function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Param {
    /// Parameter name (0 when unnamed).
    pub name_off: u32,
    /// Parameter type.
    pub ty: TypeId,
}

/// One variable (or function, for `.ksyms`) of a `DATASEC`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VarSecinfo {
    /// The `VAR` (or `FUNC`) type.
    pub ty: TypeId,
    /// Offset within the section in bytes.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
}

/// One BTF type: its name and its kind-specific data.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Type {
    /// Offset of the name in the string section (0 = anonymous).
    pub name_off: u32,
    /// Kind and kind-specific data.
    pub kind: TypeKind,
}

/// Kind-specific data of a [`Type`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TypeKind {
    /// The implicit type 0.
    Void,
    /// An integer.
    Int {
        /// Storage size in bytes.
        size: u32,
        /// Signed/char/bool flags.
        encoding: IntEncoding,
        /// Bit offset of the value within the storage (legacy bitfields).
        bit_offset: u8,
        /// Number of value bits.
        bits: u8,
    },
    /// A pointer.
    Ptr {
        /// Pointee.
        target: TypeId,
    },
    /// A (possibly zero-length) array.
    Array {
        /// Element type.
        elem: TypeId,
        /// Index type.
        index: TypeId,
        /// Number of elements.
        nelems: u32,
    },
    /// A struct.
    Struct {
        /// Size in bytes.
        size: u32,
        /// Members in declaration order.
        members: Vec<Member>,
    },
    /// A union.
    Union {
        /// Size in bytes.
        size: u32,
        /// Members in declaration order.
        members: Vec<Member>,
    },
    /// An enum with values up to 32 bits.
    Enum {
        /// Size in bytes (1, 2, 4 or 8).
        size: u32,
        /// Whether values are signed (`kind_flag`).
        signed: bool,
        /// Enumerators.
        values: Vec<EnumValue>,
    },
    /// A forward declaration.
    Fwd {
        /// `union X;` rather than `struct X;` (`kind_flag`).
        union: bool,
    },
    /// A typedef.
    Typedef {
        /// Aliased type.
        target: TypeId,
    },
    /// `volatile`.
    Volatile {
        /// Qualified type.
        target: TypeId,
    },
    /// `const`.
    Const {
        /// Qualified type.
        target: TypeId,
    },
    /// `restrict`.
    Restrict {
        /// Qualified type.
        target: TypeId,
    },
    /// A function (a subprogram, not a type).
    Func {
        /// Its `FUNC_PROTO`.
        proto: TypeId,
        /// Linkage (stored in `vlen`).
        linkage: Linkage,
    },
    /// A function signature.
    FuncProto {
        /// Return type (void = 0).
        ret: TypeId,
        /// Parameters.
        params: Vec<Param>,
    },
    /// A global or static variable.
    Var {
        /// Variable type.
        ty: TypeId,
        /// Linkage.
        linkage: VarLinkage,
    },
    /// A data section (`.data`, `.bss`, `.rodata`, `.maps`, `.ksyms`, ...).
    Datasec {
        /// Section size in bytes (0 in compiler output: the loader sets it).
        size: u32,
        /// Variables in the section.
        vars: Vec<VarSecinfo>,
    },
    /// A floating-point type.
    Float {
        /// Size in bytes.
        size: u32,
    },
    /// `btf_decl_tag` attached to a struct/union/func/var/typedef or one of
    /// its members/parameters.
    DeclTag {
        /// Tagged type.
        target: TypeId,
        /// Member/parameter index, or -1 for the type itself.
        component_idx: i32,
        /// `kind_flag`: the name is a verbatim `__attribute__((...))` body
        /// rather than a `btf_decl_tag` string (Linux 6.14+, libbpf
        /// `btf__add_decl_attr`).
        attr: bool,
    },
    /// `btf_type_tag` in a pointer chain.
    TypeTag {
        /// Tagged type.
        target: TypeId,
        /// `kind_flag`: the name is a verbatim `__attribute__((...))` body
        /// rather than a `btf_type_tag` string (Linux 6.14+, libbpf
        /// `btf__add_type_attr`).
        attr: bool,
    },
    /// An enum with 64-bit values.
    Enum64 {
        /// Size in bytes.
        size: u32,
        /// Whether values are signed (`kind_flag`).
        signed: bool,
        /// Enumerators.
        values: Vec<EnumValue>,
    },
}

impl Type {
    /// The type's kind.
    pub fn kind(&self) -> Kind {
        self.kind.kind()
    }

    /// Shorthand for building a type.
    pub fn new(name_off: u32, kind: TypeKind) -> Type {
        Type { name_off, kind }
    }
}

impl TypeKind {
    /// The kind of this data.
    pub fn kind(&self) -> Kind {
        match self {
            TypeKind::Void => Kind::Void,
            TypeKind::Int { .. } => Kind::Int,
            TypeKind::Ptr { .. } => Kind::Ptr,
            TypeKind::Array { .. } => Kind::Array,
            TypeKind::Struct { .. } => Kind::Struct,
            TypeKind::Union { .. } => Kind::Union,
            TypeKind::Enum { .. } => Kind::Enum,
            TypeKind::Fwd { .. } => Kind::Fwd,
            TypeKind::Typedef { .. } => Kind::Typedef,
            TypeKind::Volatile { .. } => Kind::Volatile,
            TypeKind::Const { .. } => Kind::Const,
            TypeKind::Restrict { .. } => Kind::Restrict,
            TypeKind::Func { .. } => Kind::Func,
            TypeKind::FuncProto { .. } => Kind::FuncProto,
            TypeKind::Var { .. } => Kind::Var,
            TypeKind::Datasec { .. } => Kind::Datasec,
            TypeKind::Float { .. } => Kind::Float,
            TypeKind::DeclTag { .. } => Kind::DeclTag,
            TypeKind::TypeTag { .. } => Kind::TypeTag,
            TypeKind::Enum64 { .. } => Kind::Enum64,
        }
    }

    /// Members of a struct or union (empty for other kinds).
    pub fn members(&self) -> &[Member] {
        match self {
            TypeKind::Struct { members, .. } | TypeKind::Union { members, .. } => members,
            _ => &[],
        }
    }

    /// Enumerators of an enum or enum64 (empty for other kinds).
    pub fn enum_values(&self) -> &[EnumValue] {
        match self {
            TypeKind::Enum { values, .. } | TypeKind::Enum64 { values, .. } => values,
            _ => &[],
        }
    }

    /// The single type this one points at, for the kinds that have one:
    /// pointer, typedef, the three qualifiers, type tag, func (its proto),
    /// var, decl tag and array (its element type).
    pub fn referenced(&self) -> Option<TypeId> {
        match *self {
            TypeKind::Ptr { target }
            | TypeKind::Typedef { target }
            | TypeKind::Volatile { target }
            | TypeKind::Const { target }
            | TypeKind::Restrict { target }
            | TypeKind::TypeTag { target, .. }
            | TypeKind::DeclTag { target, .. } => Some(target),
            TypeKind::Func { proto, .. } => Some(proto),
            TypeKind::Var { ty, .. } => Some(ty),
            TypeKind::Array { elem, .. } => Some(elem),
            _ => None,
        }
    }

    /// Whether this is `const`, `volatile`, `restrict` or a type tag (what
    /// libbpf's `btf_is_mod` calls a modifier).
    pub fn is_modifier(&self) -> bool {
        matches!(
            self,
            TypeKind::Const { .. }
                | TypeKind::Volatile { .. }
                | TypeKind::Restrict { .. }
                | TypeKind::TypeTag { .. }
        )
    }

    /// Whether this is a struct or union.
    pub fn is_composite(&self) -> bool {
        matches!(self, TypeKind::Struct { .. } | TypeKind::Union { .. })
    }

    /// Whether this is an enum or enum64.
    pub fn is_any_enum(&self) -> bool {
        matches!(self, TypeKind::Enum { .. } | TypeKind::Enum64 { .. })
    }

    /// Every type id this type refers to, with a description of the field.
    pub(crate) fn for_each_ref(&self, mut f: impl FnMut(TypeId, RefSite)) {
        match self {
            TypeKind::Void
            | TypeKind::Int { .. }
            | TypeKind::Enum { .. }
            | TypeKind::Enum64 { .. }
            | TypeKind::Fwd { .. }
            | TypeKind::Float { .. } => {}
            TypeKind::Ptr { target }
            | TypeKind::Typedef { target }
            | TypeKind::Volatile { target }
            | TypeKind::Const { target }
            | TypeKind::Restrict { target }
            | TypeKind::TypeTag { target, .. }
            | TypeKind::DeclTag { target, .. } => f(*target, RefSite::Type),
            TypeKind::Func { proto, .. } => f(*proto, RefSite::Type),
            TypeKind::Var { ty, .. } => f(*ty, RefSite::Type),
            TypeKind::Array { elem, index, .. } => {
                f(*elem, RefSite::Elem);
                f(*index, RefSite::Index);
            }
            TypeKind::Struct { members, .. } | TypeKind::Union { members, .. } => {
                for (i, m) in members.iter().enumerate() {
                    f(m.ty, RefSite::Member(i));
                }
            }
            TypeKind::FuncProto { ret, params } => {
                f(*ret, RefSite::Return);
                for (i, p) in params.iter().enumerate() {
                    f(p.ty, RefSite::Param(i));
                }
            }
            TypeKind::Datasec { vars, .. } => {
                for (i, v) in vars.iter().enumerate() {
                    f(v.ty, RefSite::SecVar(i));
                }
            }
        }
    }

    /// Every string offset this type's data uses besides the type name.
    pub(crate) fn for_each_str(&self, mut f: impl FnMut(u32, RefSite)) {
        match self {
            TypeKind::Struct { members, .. } | TypeKind::Union { members, .. } => {
                for (i, m) in members.iter().enumerate() {
                    f(m.name_off, RefSite::Member(i));
                }
            }
            TypeKind::Enum { values, .. } | TypeKind::Enum64 { values, .. } => {
                for (i, v) in values.iter().enumerate() {
                    f(v.name_off, RefSite::Enumerator(i));
                }
            }
            TypeKind::FuncProto { params, .. } => {
                for (i, p) in params.iter().enumerate() {
                    f(p.name_off, RefSite::Param(i));
                }
            }
            _ => {}
        }
    }
}

/// Which field of a type holds a reference (for error messages).
#[derive(Clone, Copy, Debug)]
pub(crate) enum RefSite {
    Type,
    Elem,
    Index,
    Return,
    Member(usize),
    Param(usize),
    SecVar(usize),
    Enumerator(usize),
}

impl fmt::Display for RefSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefSite::Type => f.write_str("its type field"),
            RefSite::Elem => f.write_str("the array element type"),
            RefSite::Index => f.write_str("the array index type"),
            RefSite::Return => f.write_str("the return type"),
            RefSite::Member(i) => write!(f, "member {i}"),
            RefSite::Param(i) => write!(f, "parameter {i}"),
            RefSite::SecVar(i) => write!(f, "section variable {i}"),
            RefSite::Enumerator(i) => write!(f, "enumerator {i}"),
        }
    }
}
