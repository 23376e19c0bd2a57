//! `bpftool btf dump file X` (raw format) text, for comparing against
//! bpftool and for humans.

use std::fmt::Write;

use crate::btf::Btf;
use crate::types::{Kind, Linkage, TypeId, TypeKind, VarLinkage};

impl Btf {
    /// The raw dump `bpftool btf dump file X` (bpftool 7.x) prints: one
    /// `[id] KIND 'name' ...` line per type with tab-indented member,
    /// enumerator, parameter and section-variable lines, each line ending in
    /// a newline. (Like bpftool's, the output repeats each name wherever it
    /// is used: its size is at most the number of members times the
    /// longest name.)
    pub fn dump_raw(&self) -> String {
        let mut out = String::new();
        for (id, _) in self.types() {
            self.dump_raw_type(id, &mut out);
        }
        out
    }

    /// One type of [`Btf::dump_raw`] (including the trailing newline).
    pub fn dump_raw_type(&self, id: TypeId, out: &mut String) {
        let Some(t) = self.type_by_id(id) else {
            return;
        };
        let _ = write!(
            out,
            "[{}] {} '{}'",
            id.0,
            t.kind().name(),
            self.raw_name(t.name_off)
        );
        match &t.kind {
            TypeKind::Void => {}
            TypeKind::Int {
                size,
                encoding,
                bit_offset,
                bits,
            } => {
                let enc = match encoding.raw() {
                    0 => "(none)",
                    1 => "SIGNED",
                    2 => "CHAR",
                    4 => "BOOL",
                    _ => "UNKN",
                };
                let _ = write!(
                    out,
                    " size={size} bits_offset={bit_offset} nr_bits={bits} encoding={enc}"
                );
            }
            TypeKind::Ptr { target }
            | TypeKind::Typedef { target }
            | TypeKind::Volatile { target }
            | TypeKind::Const { target }
            | TypeKind::Restrict { target }
            | TypeKind::TypeTag { target, .. } => {
                let _ = write!(out, " type_id={}", target.0);
            }
            TypeKind::Array {
                elem,
                index,
                nelems,
            } => {
                let _ = write!(
                    out,
                    " type_id={} index_type_id={} nr_elems={nelems}",
                    elem.0, index.0
                );
            }
            TypeKind::Struct { size, members } | TypeKind::Union { size, members } => {
                let _ = write!(out, " size={size} vlen={}", members.len());
                for m in members {
                    let _ = write!(
                        out,
                        "\n\t'{}' type_id={} bits_offset={}",
                        self.raw_name(m.name_off),
                        m.ty.0,
                        m.bit_offset
                    );
                    if m.bitfield_size != 0 {
                        let _ = write!(out, " bitfield_size={}", m.bitfield_size);
                    }
                }
            }
            TypeKind::Enum {
                size,
                signed,
                values,
            } => {
                let enc = if *signed { "SIGNED" } else { "UNSIGNED" };
                let _ = write!(out, " encoding={enc} size={size} vlen={}", values.len());
                for v in values {
                    let name = self.raw_name(v.name_off);
                    if *signed {
                        let _ = write!(out, "\n\t'{name}' val={}", v.value as i32);
                    } else {
                        let _ = write!(out, "\n\t'{name}' val={}", v.value as u32);
                    }
                }
            }
            TypeKind::Enum64 {
                size,
                signed,
                values,
            } => {
                let enc = if *signed { "SIGNED" } else { "UNSIGNED" };
                let _ = write!(out, " encoding={enc} size={size} vlen={}", values.len());
                for v in values {
                    let name = self.raw_name(v.name_off);
                    if *signed {
                        let _ = write!(out, "\n\t'{name}' val={}LL", v.value);
                    } else {
                        let _ = write!(out, "\n\t'{name}' val={}ULL", v.value as u64);
                    }
                }
            }
            TypeKind::Fwd { union } => {
                let _ = write!(out, " fwd_kind={}", if *union { "union" } else { "struct" });
            }
            TypeKind::Func { proto, linkage } => {
                let l = match linkage {
                    Linkage::Static => "static",
                    Linkage::Global => "global",
                    Linkage::Extern => "extern",
                };
                let _ = write!(out, " type_id={} linkage={l}", proto.0);
            }
            TypeKind::FuncProto { ret, params } => {
                let _ = write!(out, " ret_type_id={} vlen={}", ret.0, params.len());
                for p in params {
                    let _ = write!(
                        out,
                        "\n\t'{}' type_id={}",
                        self.raw_name(p.name_off),
                        p.ty.0
                    );
                }
            }
            TypeKind::Var { ty, linkage } => {
                let l = match linkage {
                    VarLinkage::Static => "static",
                    VarLinkage::Global => "global",
                    VarLinkage::Extern => "extern",
                };
                let _ = write!(out, " type_id={}, linkage={l}", ty.0);
            }
            TypeKind::Datasec { size, vars } => {
                let _ = write!(out, " size={size} vlen={}", vars.len());
                for v in vars {
                    let _ = write!(
                        out,
                        "\n\ttype_id={} offset={} size={}",
                        v.ty.0, v.offset, v.size
                    );
                    if let Some(vt) = self.type_by_id(v.ty) {
                        let kind = if vt.kind() == Kind::Void {
                            "UNKN"
                        } else {
                            vt.kind().name()
                        };
                        let _ = write!(out, " ({kind} '{}')", self.raw_name(vt.name_off));
                    }
                }
            }
            TypeKind::Float { size } => {
                let _ = write!(out, " size={size}");
            }
            TypeKind::DeclTag {
                target,
                component_idx,
                ..
            } => {
                let _ = write!(out, " type_id={} component_idx={component_idx}", target.0);
            }
        }
        out.push('\n');
    }

    /// A name as bpftool prints it: `(anon)` for offset 0, `(invalid)` for
    /// a bad offset.
    fn raw_name(&self, off: u32) -> &str {
        if off == 0 {
            return "(anon)";
        }
        self.string(off).unwrap_or("(invalid)")
    }
}
