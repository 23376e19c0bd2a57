//! `Btf::format_c` against `bpftool btf dump file X format c` (libbpf's
//! btf_dump): for the fixtures (golden headers from build.sh) and for the
//! running kernel's BTF (bpftool run live), every top-level declaration
//! bpftool prints must be exactly what `format_c` prints for that type.
//!
//! Allowed differences, each explained:
//! - bpftool 7.1 links libbpf 1.1, which prints a 1-byte enum without the
//!   ` __attribute__((mode(byte)))` (and an 8-byte enum whose values fit in
//!   32 bits without ` __attribute__((mode(word)))`) that newer libbpf adds
//!   so the C compiler keeps the enum's size; `format_c` prints them, and
//!   the comparison removes them.
//! - A whole-file dump renames the second and later types sharing a name
//!   to `name___2`, ... ; `format_c` prints one type and never renames.
//!   Blocks that mention such a renamed name are not compared (the vmlinux
//!   test counts them and requires them to be few).
//! - Forward declarations (`struct X;`) that bpftool emits for a struct
//!   defined later are ordering artefacts, not types of their own.

mod common;

use std::collections::{HashMap, HashSet};

use bpfvm_btf::{Btf, Kind, TypeKind};
use common::*;

/// Top-level declarations of a bpftool C header, without the
/// `__VMLINUX_H__` guard and the preserve_access_index pragmas.
fn blocks(header: &str) -> Vec<String> {
    header
        .split("\n\n")
        .map(str::trim)
        .filter(|b| !b.is_empty() && !b.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn normalize(ours: &str) -> String {
    ours.replace(" __attribute__((mode(byte)))", "")
        .replace(" __attribute__((mode(word)))", "")
}

struct Outcome {
    compared: usize,
    renamed: usize,
    /// Declarations where `format_c` adds a `mode(...)` attribute.
    mode_attrs: usize,
    mismatches: Vec<String>,
}

fn compare(btf: &Btf, header: &str) -> Outcome {
    // What format_c prints for every type bpftool would print at top level.
    let mut ours: HashMap<String, Vec<String>> = HashMap::new();
    let mut names: HashMap<(&'static str, String), usize> = HashMap::new();
    for (id, t) in btf.types() {
        let keyword = match &t.kind {
            TypeKind::Struct { .. } => "struct",
            TypeKind::Union { .. } => "union",
            TypeKind::Enum { .. } | TypeKind::Enum64 { .. } => "enum",
            TypeKind::Typedef { .. } => "typedef",
            TypeKind::Fwd { union } => {
                if *union {
                    "union"
                } else {
                    "struct"
                }
            }
            _ => continue,
        };
        let name = btf.name_of(id).unwrap_or("").to_string();
        if t.kind() != Kind::Fwd && !name.is_empty() {
            *names.entry((keyword, name.clone())).or_default() += 1;
        }
        let text = normalize(&btf.format_c(id));
        let first_line = text.lines().next().unwrap_or("").to_string();
        ours.entry(first_line).or_default().push(text);
    }
    let mut out = Outcome {
        compared: 0,
        renamed: 0,
        mode_attrs: 0,
        mismatches: Vec::new(),
    };
    out.mode_attrs = btf
        .types()
        .filter(|(_, t)| t.kind.is_any_enum())
        .filter(|(id, _)| btf.format_c(*id).contains("__attribute__((mode("))
        .count();
    let struct_names: HashSet<String> = btf
        .types()
        .filter(|(_, t)| matches!(t.kind(), Kind::Struct | Kind::Union))
        .filter_map(|(id, _)| btf.name_of(id).map(str::to_string))
        .collect();
    for block in blocks(header) {
        if block.contains("___") {
            // possibly a `___2` rename of a duplicate name; only skip when
            // the BTF really has duplicates
            let dup = names.values().any(|&n| n > 1);
            if dup
                && block
                    .split(|c: char| !c.is_alphanumeric() && c != '_')
                    .any(|w| {
                        w.rsplit_once("___")
                            .is_some_and(|(_, n)| n.parse::<u32>().is_ok())
                    })
            {
                out.renamed += 1;
                continue;
            }
        }
        let first_line = block.lines().next().unwrap_or("").to_string();
        // forward declaration of a struct/union defined elsewhere
        if !block.contains('\n') && !block.starts_with("typedef") && !block.starts_with("enum") {
            let name = block
                .trim_end_matches(';')
                .split(' ')
                .nth(1)
                .unwrap_or("")
                .to_string();
            let fwd_match = ours.get(&first_line).is_some_and(|v| v.contains(&block));
            if !fwd_match && !struct_names.contains(&name) {
                out.mismatches
                    .push(format!("forward declaration of unknown type: {block}"));
            }
            out.compared += 1;
            continue;
        }
        match ours.get(&first_line) {
            Some(cands) if cands.contains(&block) => {}
            Some(cands) => out.mismatches.push(format!(
                "bpftool:\n{block}\nformat_c:\n{}",
                cands.join("\n--- or ---\n")
            )),
            None => out
                .mismatches
                .push(format!("no type prints as the start of:\n{block}")),
        }
        out.compared += 1;
    }
    out
}

fn check_fixture(obj: &str, header: &str) {
    let btf = Btf::parse(&section(obj, ".BTF")).expect(".BTF parses");
    let out = compare(&btf, &golden(header));
    assert!(out.mismatches.is_empty(), "{}", out.mismatches.join("\n\n"));
    assert_eq!(out.renamed, 0);
    if obj == "types.o" {
        // `enum tiny` is 1 byte (packed), `enum big_enum` is an ENUM64 that
        // needs no attribute.
        assert_eq!(out.mode_attrs, 1);
    }
    assert!(
        out.compared > 5,
        "only {} declarations compared",
        out.compared
    );
}

#[test]
fn types_fixture_matches_bpftool_c() {
    check_fixture("types.o", "types.btf.h");
}

#[test]
fn core_fixture_matches_bpftool_c() {
    check_fixture("core.o", "core.btf.h");
}

#[test]
fn vmlinux_matches_bpftool_c() {
    let test = "vmlinux_matches_bpftool_c";
    let Some(bytes) = vmlinux_bytes(test) else {
        return;
    };
    let Some(header) = bpftool_dump(test, VMLINUX, true) else {
        return;
    };
    let btf = Btf::parse(&bytes).expect("vmlinux parses");
    let out = compare(&btf, &header);
    let shown: Vec<_> = out.mismatches.iter().take(5).cloned().collect();
    assert!(
        out.mismatches.is_empty(),
        "{} of {} declarations differ, first ones:\n{}",
        out.mismatches.len(),
        out.compared,
        shown.join("\n\n")
    );
    assert!(out.compared > 10_000);
    assert!(
        out.renamed * 100 < out.compared,
        "{} renamed blocks skipped",
        out.renamed
    );
    eprintln!(
        "vmlinux: {} declarations identical to bpftool's, {} skipped as ___N renames, \
         {} enums with a mode() attribute bpftool 7.1 omits",
        out.compared, out.renamed, out.mode_attrs
    );
}

/// Kinds bpftool does not print at top level, checked against what the C
/// source of `tests/data/types.c` declares.
#[test]
fn declarations_of_functions_variables_and_sections() {
    let btf = Btf::parse(&section("types.o", ".BTF")).expect(".BTF parses");
    let c = |kind, name| btf.format_c(btf.find(kind, name).expect(name));
    assert_eq!(
        c(Kind::Func, "helper"),
        "static int helper(struct outer *o, int n);"
    );
    assert_eq!(c(Kind::Func, "global_fn"), "int global_fn(struct bits *b);");
    assert_eq!(
        c(Kind::Func, "bpf_extern_func"),
        "extern void bpf_extern_func(int);"
    );
    assert_eq!(c(Kind::Func, "prog"), "int prog(void *ctx);");
    assert_eq!(c(Kind::Var, "global_counter"), "int global_counter;");
    assert_eq!(c(Kind::Var, "static_bss"), "static __u64 static_bss;");
    assert_eq!(c(Kind::Var, "rodata_cfg"), "volatile const int rodata_cfg;");
    assert_eq!(
        c(Kind::Var, "bpf_extern_ksym"),
        "extern int bpf_extern_ksym;"
    );
    assert_eq!(c(Kind::Var, "LICENSE"), "char LICENSE[4];");
    assert_eq!(
        c(Kind::Datasec, ".data"),
        "/* section .data (size 0) */\nint global_counter; /* offset 0, size 4 */"
    );
    assert_eq!(
        c(Kind::Datasec, ".ksyms"),
        "/* section .ksyms (size 0) */\n\
         extern void bpf_extern_func(int); /* offset 0, size 0 */\n\
         extern int bpf_extern_ksym; /* offset 0, size 4 */"
    );
    assert_eq!(
        c(Kind::DeclTag, "bits_tag"),
        "__attribute__((btf_decl_tag(\"bits_tag\"))) /* on [49] bits */"
    );
    assert_eq!(
        c(Kind::DeclTag, "param_tag"),
        "__attribute__((btf_decl_tag(\"param_tag\"))) /* on component 0 of [70] helper */"
    );
    // Abstract declarators of the member types of `struct outer`.
    let outer = btf.find(Kind::Struct, "outer").expect("outer");
    let member = |name: &str| {
        let m = btf
            .type_by_id(outer)
            .expect("outer")
            .kind
            .members()
            .iter()
            .find(|m| btf.string(m.name_off) == Some(name))
            .expect(name)
            .ty;
        btf.format_c(m)
    };
    assert_eq!(member("name"), "const char *");
    assert_eq!(member("cptr"), "char * const");
    assert_eq!(member("handlers"), "int (*[4])(int, long)");
    assert_eq!(member("matrix"), "int[2][3]");
    assert_eq!(
        member("tagged"),
        "int __attribute__((btf_type_tag(\"user\"))) *"
    );
    // a typedef prints as its declaration
    assert_eq!(
        member("cb"),
        "typedef int (*callback_t)(void *, const char *, ...);"
    );
    assert_eq!(member("tail"), "char[0]");
    let cb = btf.find(Kind::Typedef, "callback_t").expect("callback_t");
    let TypeKind::Typedef { target } = btf.type_by_id(cb).expect("cb").kind else {
        panic!()
    };
    assert_eq!(btf.format_c(target), "int (*)(void *, const char *, ...)");
    assert_eq!(btf.format_c(bpfvm_btf::TypeId::VOID), "void");
    assert_eq!(
        btf.format_c(bpfvm_btf::TypeId(9999)),
        "/* unknown type [9999] */"
    );
}
