//! C-syntax printing of single types, following the rules of libbpf's
//! `btf_dump.c` (what `bpftool btf dump ... format c` prints): the same
//! declarator construction, inline anonymous structs/unions/enums, explicit
//! padding members and `__attribute__((packed))` detection.
//!
//! What differs from a whole-file `bpftool btf dump format c`: each call
//! prints one type on its own, so there are no forward declarations, no
//! dependency ordering and no `___2` renaming of duplicate names.

use std::collections::HashMap;

use crate::btf::{Btf, PTR_SIZE};
use crate::types::{Kind, Linkage, Type, TypeId, TypeKind, VarLinkage};

/// Nesting bound for inline definitions and declarator chains, so that
/// hand-built cyclic BTF cannot recurse without end.
const MAX_DEPTH: usize = 64;
/// Bound on the length of one declarator chain.
const MAX_CHAIN: usize = 1024;
/// Bound on the work of one call (declarations and definitions emitted), so
/// that a DAG of types referenced many times cannot blow up exponentially.
const MAX_STEPS: usize = 200_000;
/// Bound on the output of one call.
const MAX_OUTPUT: usize = 4 << 20;

impl Btf {
    /// A C declaration of the type, as `bpftool btf dump format c` would
    /// print it:
    ///
    /// - struct/union/enum/enum64: the full definition with members, ending
    ///   in `;` (an anonymous one prints as `struct { ... };`);
    /// - forward declaration: `struct X;` / `union X;`;
    /// - typedef: `typedef <declaration of the target> NAME;`;
    /// - func: its prototype, `static`/`extern` for those linkages, e.g.
    ///   `static int helper(struct outer *o, int n);`;
    /// - var: `static`/`extern` as linkage says, then `TYPE NAME;`;
    /// - datasec: a comment naming the section, then one declaration per
    ///   variable with its offset and size in a comment;
    /// - decl tag: the attribute and, in a comment, what it is attached to;
    /// - anything else (int, float, pointer, array, qualifier, type tag,
    ///   function prototype, void): the type as an abstract declarator, e.g.
    ///   `const char *`, `int[4]`, `int (*)(void *)`, with no `;`.
    ///
    /// Unknown ids print as `/* unknown type [N] */`.
    pub fn format_c(&self, id: TypeId) -> String {
        let mut p = Printer {
            btf: self,
            out: String::new(),
            depth: 0,
            steps: 0,
            align_memo: HashMap::new(),
        };
        let Some(t) = self.type_by_id(id) else {
            return format!("/* unknown type [{}] */", id.0);
        };
        match &t.kind {
            TypeKind::Struct { .. } | TypeKind::Union { .. } => {
                p.struct_def(id, t, 0);
                p.out.push(';');
            }
            TypeKind::Enum { .. } | TypeKind::Enum64 { .. } => {
                p.enum_def(t, 0);
                p.out.push(';');
            }
            TypeKind::Fwd { union } => {
                p.out.push_str(if *union { "union " } else { "struct " });
                p.out.push_str(self.str_or_empty(t.name_off));
                p.out.push(';');
            }
            TypeKind::Typedef { target } => {
                let name = self.str_or_empty(t.name_off);
                if target.is_void() && name == "__gnuc_va_list" {
                    p.out.push_str("typedef __builtin_va_list __gnuc_va_list");
                } else {
                    p.out.push_str("typedef ");
                    p.type_decl(*target, name, 0);
                }
                p.out.push(';');
            }
            TypeKind::Func { proto, linkage } => {
                match linkage {
                    Linkage::Static => p.out.push_str("static "),
                    Linkage::Extern => p.out.push_str("extern "),
                    Linkage::Global => {}
                }
                p.type_decl(*proto, self.str_or_empty(t.name_off), 0);
                p.out.push(';');
            }
            TypeKind::Var { ty, linkage } => {
                p.var_decl(t.name_off, *ty, *linkage);
                p.out.push(';');
            }
            TypeKind::Datasec { size, vars } => {
                p.out.push_str(&format!(
                    "/* section {} (size {size}) */",
                    self.str_or_empty(t.name_off)
                ));
                for v in vars {
                    p.out.push('\n');
                    match self.type_by_id(v.ty).map(|vt| (vt, &vt.kind)) {
                        Some((vt, TypeKind::Var { ty, linkage })) => {
                            p.var_decl(vt.name_off, *ty, *linkage);
                        }
                        Some((vt, TypeKind::Func { proto, .. })) => {
                            p.out.push_str("extern ");
                            p.type_decl(*proto, self.str_or_empty(vt.name_off), 0);
                        }
                        _ => p.out.push_str(&format!("/* type [{}] */", v.ty.0)),
                    }
                    p.out
                        .push_str(&format!("; /* offset {}, size {} */", v.offset, v.size));
                }
            }
            TypeKind::DeclTag {
                target,
                component_idx,
                attr,
            } => {
                let name = self.str_or_empty(t.name_off);
                if *attr {
                    p.out.push_str(&format!("__attribute__(({name}))"));
                } else {
                    p.out
                        .push_str(&format!("__attribute__((btf_decl_tag(\"{name}\")))"));
                }
                let what = self.str_or_empty(self.type_by_id(*target).map_or(0, |t| t.name_off));
                if *component_idx >= 0 {
                    p.out.push_str(&format!(
                        " /* on component {component_idx} of [{}] {what} */",
                        target.0
                    ));
                } else {
                    p.out.push_str(&format!(" /* on [{}] {what} */", target.0));
                }
            }
            _ => p.type_decl(id, "", 0),
        }
        p.out
    }
}

struct Printer<'a> {
    btf: &'a Btf,
    out: String,
    depth: usize,
    steps: usize,
    align_memo: HashMap<u32, Option<u32>>,
}

fn pfx(out: &mut String, lvl: usize) {
    for _ in 0..lvl {
        out.push('\t');
    }
}

fn roundup(x: i64, y: i64) -> i64 {
    let y = y.max(1);
    (x + y - 1) / y * y
}

impl Printer<'_> {
    fn name(&self, off: u32) -> &str {
        self.btf.str_or_empty(off)
    }

    fn var_decl(&mut self, name_off: u32, ty: TypeId, linkage: VarLinkage) {
        match linkage {
            VarLinkage::Static => self.out.push_str("static "),
            VarLinkage::Extern => self.out.push_str("extern "),
            VarLinkage::Global => {}
        }
        let name = self.btf.str_or_empty(name_off);
        self.type_decl(ty, name, 0);
    }

    fn align_of(&mut self, id: TypeId) -> i64 {
        i64::from(
            self.btf
                .align_of_memo(id, &mut self.align_memo, 0)
                .unwrap_or(0),
        )
    }

    fn spent(&self) -> bool {
        self.steps > MAX_STEPS || self.out.len() > MAX_OUTPUT
    }

    /// Takes one step of the work budget; `false` (after marking the
    /// output) when it is spent or the output is too long.
    fn step(&mut self) -> bool {
        self.steps += 1;
        if self.steps > MAX_STEPS || self.out.len() > MAX_OUTPUT || self.depth > MAX_DEPTH {
            if !self.out.ends_with("/* ... */") {
                self.out.push_str("/* ... */");
            }
            return false;
        }
        true
    }

    /// libbpf's `btf_is_struct_packed`: a non-bitfield member off its
    /// natural alignment, or a size that is not a multiple of the largest
    /// member alignment.
    fn is_packed(&mut self, size: u32, members: &[crate::types::Member]) -> bool {
        let mut max_align = 1;
        for m in members {
            let a = self.align_of(m.ty);
            if a != 0 && m.bitfield_size == 0 && i64::from(m.bit_offset) % (8 * a) != 0 {
                return true;
            }
            max_align = max_align.max(a);
        }
        i64::from(size) % max_align != 0
    }

    fn struct_def(&mut self, id: TypeId, t: &Type, lvl: usize) {
        let (is_struct, size, members) = match &t.kind {
            TypeKind::Struct { size, members } => (true, *size, members),
            TypeKind::Union { size, members } => (false, *size, members),
            _ => return,
        };
        if !self.step() {
            return;
        }
        self.depth += 1;
        let align = self.align_of(id);
        let packed = is_struct && self.is_packed(size, members);
        self.out
            .push_str(if is_struct { "struct" } else { "union" });
        if t.name_off != 0 {
            self.out.push(' ');
            self.out.push_str(self.btf.str_or_empty(t.name_off));
        }
        self.out.push_str(" {");
        let mut off: i64 = 0;
        let mut prev_bitfield = false;
        for m in members {
            if self.spent() {
                break;
            }
            let m_sz = i64::from(m.bitfield_size);
            let m_off = i64::from(m.bit_offset);
            let m_align = if packed { 1 } else { self.align_of(m.ty) };
            let in_bitfield = prev_bitfield && m_sz != 0;
            self.bit_padding(off, m_off, m_align, in_bitfield, lvl + 1);
            self.out.push('\n');
            pfx(&mut self.out, lvl + 1);
            let fname = self.btf.str_or_empty(m.name_off);
            self.type_decl(m.ty, fname, lvl + 1);
            if m_sz != 0 {
                self.out.push_str(&format!(": {m_sz}"));
                off = m_off + m_sz;
                prev_bitfield = true;
            } else {
                let sz = self.btf.size_of(m.ty).map_or(0, |s| s as i64);
                off = m_off + sz * 8;
                prev_bitfield = false;
            }
            self.out.push(';');
        }
        if is_struct {
            self.bit_padding(off, i64::from(size) * 8, align, false, lvl + 1);
        }
        if !members.is_empty() || size != 0 {
            self.out.push('\n');
            pfx(&mut self.out, lvl);
        }
        self.out.push('}');
        if packed {
            self.out.push_str(" __attribute__((packed))");
        }
        self.depth -= 1;
    }

    /// libbpf's `btf_dump_emit_bit_padding`: explicit unnamed bitfields for
    /// gaps the compiler would not recreate by natural alignment.
    fn bit_padding(
        &mut self,
        mut cur_off: i64,
        next_off: i64,
        next_align: i64,
        in_bitfield: bool,
        lvl: usize,
    ) {
        const PADS: [(&str, i64); 4] = [
            ("long", PTR_SIZE as i64 * 8),
            ("int", 32),
            ("short", 16),
            ("char", 8),
        ];
        if cur_off >= next_off {
            return;
        }
        let mut new_off = 0;
        let (mut pad_type, mut pad_bits) = PADS[PADS.len() - 1];
        for (name, bits) in PADS {
            pad_type = name;
            pad_bits = bits;
            new_off = roundup(cur_off, bits);
            if new_off <= next_off {
                break;
            }
        }
        if new_off > cur_off && new_off <= next_off {
            if in_bitfield
                || (new_off == next_off && roundup(cur_off, next_align * 8) != new_off)
                || (new_off != next_off && next_off - new_off <= new_off - cur_off)
            {
                self.out.push('\n');
                pfx(&mut self.out, lvl);
                let n = if in_bitfield { new_off - cur_off } else { 0 };
                self.out.push_str(&format!("{pad_type}: {n};"));
            }
            cur_off = new_off;
        }
        while cur_off != next_off {
            // a gap of billions of bits is possible in (bad) BTF
            if self.out.len() > MAX_OUTPUT {
                self.out.push_str("/* ... */");
                return;
            }
            let bits = (next_off - cur_off).min(pad_bits);
            if bits == pad_bits {
                self.out.push('\n');
                pfx(&mut self.out, lvl);
                self.out.push_str(&format!("{pad_type}: {pad_bits};"));
                cur_off += bits;
                continue;
            }
            for &(name, pbits) in PADS.iter().rev() {
                pad_type = name;
                pad_bits = pbits;
                if pbits < bits {
                    continue;
                }
                self.out.push('\n');
                pfx(&mut self.out, lvl);
                self.out.push_str(&format!("{name}: {bits};"));
                cur_off += bits;
                break;
            }
        }
    }

    fn enum_def(&mut self, t: &Type, lvl: usize) {
        let (size, signed, values, is64) = match &t.kind {
            TypeKind::Enum {
                size,
                signed,
                values,
            } => (*size, *signed, values, false),
            TypeKind::Enum64 {
                size,
                signed,
                values,
            } => (*size, *signed, values, true),
            _ => return,
        };
        self.out.push_str("enum");
        if t.name_off != 0 {
            self.out.push(' ');
            self.out.push_str(self.btf.str_or_empty(t.name_off));
        }
        if values.is_empty() {
            return;
        }
        self.out.push_str(" {");
        for v in values {
            self.out.push('\n');
            pfx(&mut self.out, lvl + 1);
            let name = self.name(v.name_off).to_string();
            let val = match (is64, signed) {
                (false, true) => format!("{}", v.value as i32),
                (false, false) => format!("{}", v.value as u32),
                (true, true) => format!("{}LL", v.value),
                (true, false) => format!("{}ULL", v.value as u64),
            };
            self.out.push_str(&format!("{name} = {val},"));
        }
        self.out.push('\n');
        pfx(&mut self.out, lvl);
        self.out.push('}');
        // Sizes the compiler would not pick by itself (newer libbpf).
        if size == 1 {
            self.out.push_str(" __attribute__((mode(byte)))");
        } else if size == 8 {
            let needs_word = !is64 || values.iter().all(|v| (v.value as u64) >> 32 == 0);
            if needs_word {
                self.out.push_str(" __attribute__((mode(word)))");
            }
        }
    }

    /// libbpf's `btf_dump_emit_type_decl`: the declaration of `fname` with
    /// type `id` (an abstract declarator when `fname` is empty).
    fn type_decl(&mut self, id: TypeId, fname: &str, lvl: usize) {
        if !self.step() {
            return;
        }
        self.depth += 1;
        let mut stack = Vec::new();
        let mut id = id;
        loop {
            stack.push(id);
            if id.is_void() || stack.len() > MAX_CHAIN {
                break;
            }
            let Some(t) = self.btf.type_by_id(id) else {
                break;
            };
            match &t.kind {
                TypeKind::Ptr { target }
                | TypeKind::Volatile { target }
                | TypeKind::Const { target }
                | TypeKind::Restrict { target }
                | TypeKind::TypeTag { target, .. } => id = *target,
                TypeKind::FuncProto { ret, .. } => id = *ret,
                TypeKind::Array { elem, .. } => id = *elem,
                _ => break,
            }
        }
        self.type_chain(&mut stack, fname, lvl);
        self.depth -= 1;
    }

    fn kind_of(&self, id: TypeId) -> Option<Kind> {
        self.btf.type_by_id(id).map(|t| t.kind())
    }

    /// Pops `const`/`volatile`/`restrict` off the stack top, printing them
    /// in prefix position.
    fn emit_mods(&mut self, decls: &mut Vec<TypeId>) {
        while let Some(&id) = decls.last() {
            let s = match self.kind_of(id) {
                Some(Kind::Volatile) => "volatile ",
                Some(Kind::Const) => "const ",
                Some(Kind::Restrict) => "restrict ",
                _ => return,
            };
            self.out.push_str(s);
            decls.pop();
        }
    }

    /// Drops qualifiers and type tags off the stack top.
    fn drop_mods(&self, decls: &mut Vec<TypeId>) {
        while let Some(&id) = decls.last() {
            match self.btf.type_by_id(id) {
                Some(t) if t.kind.is_modifier() => {
                    decls.pop();
                }
                _ => return,
            }
        }
    }

    fn emit_name(&mut self, name: &str, last_was_ptr: bool) {
        if !name.is_empty() && !last_was_ptr {
            self.out.push(' ');
        }
        self.out.push_str(name);
    }

    fn type_chain(&mut self, decls: &mut Vec<TypeId>, fname: &str, lvl: usize) {
        let mut last_was_ptr = true;
        while let Some(id) = decls.pop() {
            if id.is_void() {
                self.emit_mods(decls);
                self.out.push_str("void");
                last_was_ptr = false;
                continue;
            }
            let Some(t) = self.btf.type_by_id(id) else {
                self.out.push_str(&format!("/* unknown type [{}] */", id.0));
                return;
            };
            match &t.kind {
                TypeKind::Int { .. } | TypeKind::Float { .. } => {
                    self.emit_mods(decls);
                    self.out.push_str(self.btf.str_or_empty(t.name_off));
                }
                TypeKind::Struct { .. } | TypeKind::Union { .. } => {
                    self.emit_mods(decls);
                    if t.name_off == 0 {
                        self.struct_def(id, t, lvl);
                    } else {
                        let kw = if t.kind() == Kind::Struct {
                            "struct "
                        } else {
                            "union "
                        };
                        self.out.push_str(kw);
                        self.out.push_str(self.btf.str_or_empty(t.name_off));
                    }
                }
                TypeKind::Enum { .. } | TypeKind::Enum64 { .. } => {
                    self.emit_mods(decls);
                    if t.name_off == 0 {
                        self.enum_def(t, lvl);
                    } else {
                        self.out.push_str("enum ");
                        self.out.push_str(self.btf.str_or_empty(t.name_off));
                    }
                }
                TypeKind::Fwd { union } => {
                    self.emit_mods(decls);
                    self.out.push_str(if *union { "union " } else { "struct " });
                    self.out.push_str(self.btf.str_or_empty(t.name_off));
                }
                TypeKind::Typedef { .. } => {
                    self.emit_mods(decls);
                    self.out.push_str(self.btf.str_or_empty(t.name_off));
                }
                TypeKind::Ptr { .. } => {
                    self.out.push_str(if last_was_ptr { "*" } else { " *" });
                }
                TypeKind::Volatile { .. } => self.out.push_str(" volatile"),
                TypeKind::Const { .. } => self.out.push_str(" const"),
                TypeKind::Restrict { .. } => self.out.push_str(" restrict"),
                TypeKind::TypeTag { attr, .. } => {
                    self.emit_mods(decls);
                    let name = self.btf.str_or_empty(t.name_off);
                    if *attr {
                        self.out.push_str(&format!(" __attribute__(({name}))"));
                    } else {
                        self.out
                            .push_str(&format!(" __attribute__((btf_type_tag(\"{name}\")))"));
                    }
                }
                TypeKind::Array { nelems, .. } => {
                    self.drop_mods(decls);
                    let Some(&next) = decls.last() else {
                        self.emit_name(fname, last_was_ptr);
                        self.out.push_str(&format!("[{nelems}]"));
                        return;
                    };
                    let multidim = self.kind_of(next) == Some(Kind::Array);
                    if !fname.is_empty() && !last_was_ptr {
                        self.out.push(' ');
                    }
                    if !multidim {
                        self.out.push('(');
                    }
                    self.type_chain(decls, fname, lvl);
                    if !multidim {
                        self.out.push(')');
                    }
                    self.out.push_str(&format!("[{nelems}]"));
                    return;
                }
                TypeKind::FuncProto { params, .. } => {
                    self.drop_mods(decls);
                    if decls.is_empty() {
                        self.emit_name(fname, last_was_ptr);
                    } else {
                        self.out.push_str(" (");
                        self.type_chain(decls, fname, lvl);
                        self.out.push(')');
                    }
                    self.out.push('(');
                    if params.is_empty() || (params.len() == 1 && params[0].ty.is_void()) {
                        self.out.push_str("void)");
                        return;
                    }
                    for (i, p) in params.iter().enumerate() {
                        if self.spent() {
                            break;
                        }
                        if i > 0 {
                            self.out.push_str(", ");
                        }
                        if i == params.len() - 1 && p.ty.is_void() {
                            self.out.push_str("...");
                            break;
                        }
                        let name = self.btf.str_or_empty(p.name_off);
                        self.type_decl(p.ty, name, lvl);
                    }
                    self.out.push(')');
                    return;
                }
                _ => {
                    self.out.push_str(&format!(
                        "/* unexpected {} [{}] in a declaration */",
                        t.kind().name(),
                        id.0
                    ));
                    return;
                }
            }
            last_was_ptr = t.kind() == Kind::Ptr;
        }
        self.emit_name(fname, last_was_ptr);
    }
}
