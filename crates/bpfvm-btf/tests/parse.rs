//! `Btf::parse` against independent truth: bpftool's raw dump of the same
//! objects (golden files from `tests/data/build.sh`) and of the running
//! kernel's BTF, and byte-exact re-serialization.

mod common;

use bpfvm_btf::{Btf, Kind, TypeId, TypeKind};
use common::*;

fn check_raw_dump(obj: &str, golden_name: &str) {
    let btf = Btf::parse(&section(obj, ".BTF")).expect(".BTF parses");
    let ours = btf.dump_raw();
    let theirs = golden(golden_name);
    for (i, (a, b)) in ours.lines().zip(theirs.lines()).enumerate() {
        assert_eq!(a, b, "{obj}: line {} differs from bpftool", i + 1);
    }
    assert_eq!(
        ours.lines().count(),
        theirs.lines().count(),
        "{obj}: line count"
    );
    assert_eq!(ours, theirs);
}

#[test]
fn types_fixture_dump_matches_bpftool() {
    check_raw_dump("types.o", "types.btf.raw");
}

#[test]
fn core_fixture_dump_matches_bpftool() {
    check_raw_dump("core.o", "core.btf.raw");
}

#[test]
fn fixtures_reserialize_byte_for_byte() {
    for obj in ["types.o", "core.o"] {
        let bytes = section(obj, ".BTF");
        let btf = Btf::parse(&bytes).unwrap();
        assert_eq!(btf.to_bytes(), bytes, "{obj}");
        assert_eq!(Btf::parse(&btf.to_bytes()).unwrap(), btf);
    }
}

#[test]
fn types_fixture_has_every_kind() {
    let btf = Btf::parse(&section("types.o", ".BTF")).unwrap();
    let kinds: std::collections::BTreeSet<Kind> = btf.types().map(|(_, t)| t.kind()).collect();
    for k in [
        Kind::Int,
        Kind::Ptr,
        Kind::Array,
        Kind::Struct,
        Kind::Union,
        Kind::Enum,
        Kind::Fwd,
        Kind::Typedef,
        Kind::Volatile,
        Kind::Const,
        Kind::Restrict,
        Kind::Func,
        Kind::FuncProto,
        Kind::Var,
        Kind::Datasec,
        Kind::Float,
        Kind::DeclTag,
        Kind::TypeTag,
        Kind::Enum64,
    ] {
        assert!(kinds.contains(&k), "types.o has no {k:?}");
    }
}

#[test]
fn types_fixture_queries() {
    let btf = Btf::parse(&section("types.o", ".BTF")).unwrap();
    // Sizes as clang laid them out (cross-checked with the raw dump).
    let outer = btf.find(Kind::Struct, "outer").unwrap();
    assert_eq!(btf.size_of(outer).unwrap(), 216);
    let bits = btf.find(Kind::Struct, "bits").unwrap();
    let TypeKind::Struct { members, .. } = &btf.type_by_id(bits).unwrap().kind else {
        panic!()
    };
    let d = members
        .iter()
        .find(|m| btf.string(m.name_off) == Some("d"))
        .unwrap();
    assert_eq!((d.bit_offset, d.bitfield_size), (15, 40));
    // typedef const volatile chain down to unsigned int
    let cv = btf.find(Kind::Typedef, "cv_u32_t").unwrap();
    let base = btf.skip_mods_and_typedefs(cv);
    assert_eq!(btf.name_of(base), Some("unsigned int"));
    assert_eq!(btf.size_of(cv).unwrap(), 4);
    // int matrix[2][3]
    let TypeKind::Struct { members, .. } = &btf.type_by_id(outer).unwrap().kind else {
        panic!()
    };
    let matrix = members
        .iter()
        .find(|m| btf.string(m.name_off) == Some("matrix"))
        .unwrap();
    assert_eq!(btf.size_of(matrix.ty).unwrap(), 24);
    // pointers are 8 bytes, functions and forward declarations have no size
    let next = members
        .iter()
        .find(|m| btf.string(m.name_off) == Some("next"))
        .unwrap();
    assert_eq!(btf.size_of(next.ty).unwrap(), 8);
    assert!(btf.size_of(btf.find(Kind::Func, "prog").unwrap()).is_err());
    assert!(btf.size_of(btf.find(Kind::Fwd, "opaque").unwrap()).is_err());
    assert!(btf.size_of(TypeId::VOID).is_err());
    // a VAR resolves to its type's size
    assert_eq!(
        btf.size_of(btf.find(Kind::Var, "global_outer").unwrap())
            .unwrap(),
        216
    );
    // enum values: signed, unsigned, 64-bit
    let neg64 = btf.find(Kind::Enum64, "neg64").unwrap();
    assert_eq!(
        btf.type_by_id(neg64).unwrap().kind.enum_values()[0].value,
        i64::MIN
    );
    let signed = btf.find(Kind::Enum, "signed_enum").unwrap();
    assert_eq!(
        btf.type_by_id(signed).unwrap().kind.enum_values()[0].value,
        -3
    );
    // the extern ksym function's linkage
    let f = btf.find(Kind::Func, "bpf_extern_func").unwrap();
    assert!(matches!(
        btf.type_by_id(f).unwrap().kind,
        TypeKind::Func {
            linkage: bpfvm_btf::Linkage::Extern,
            ..
        }
    ));
    assert_eq!(btf.name_of(TypeId::VOID), Some(""));
    assert_eq!(btf.len(), btf.types().count() + 1);
}

#[test]
fn vmlinux_parses_and_knows_task_struct() {
    let Some(bytes) = vmlinux_bytes("vmlinux_parses_and_knows_task_struct") else {
        return;
    };
    let btf = Btf::parse(&bytes).unwrap();
    assert!(btf.len() > 10_000, "only {} types", btf.len());
    let task = btf
        .find(Kind::Struct, "task_struct")
        .expect("struct task_struct");
    let TypeKind::Struct { members, size } = &btf.type_by_id(task).unwrap().kind else {
        panic!()
    };
    assert!(*size > 1000);
    let pid = members
        .iter()
        .find(|m| btf.string(m.name_off) == Some("pid"))
        .expect("task_struct.pid");
    assert_eq!(btf.type_by_id(pid.ty).unwrap().kind(), Kind::Typedef);
    assert_eq!(btf.name_of(pid.ty), Some("pid_t"));
    assert_eq!(btf.size_of(pid.ty).unwrap(), 4);
    assert_eq!(pid.bit_offset % 32, 0);
    // byte-exact round trip of the kernel's own encoding
    assert_eq!(btf.to_bytes(), bytes);
}

#[test]
fn vmlinux_dump_matches_bpftool() {
    let test = "vmlinux_dump_matches_bpftool";
    let Some(bytes) = vmlinux_bytes(test) else {
        return;
    };
    let Some(theirs) = bpftool_dump(test, VMLINUX, false) else {
        return;
    };
    let btf = Btf::parse(&bytes).unwrap();
    let ours = btf.dump_raw();
    for (i, (a, b)) in ours.lines().zip(theirs.lines()).enumerate() {
        assert_eq!(a, b, "vmlinux: line {} differs from bpftool", i + 1);
    }
    assert_eq!(ours.lines().count(), theirs.lines().count());
}
