//! The embedding API on the ELF fixtures: static map initializers, globals, errors.

use bpfvm::{Error, Object, OpenObject};

fn fixture(name: &str) -> String {
    format!(
        "{}/../../conformance-tests/elf/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn static_initializers_fill_program_arrays_and_maps_of_maps() {
    let object = Object::load_file(fixture("maps_btf.o")).expect("loads");
    let jump = object.map("jump_table").expect("jump_table");
    let tail = object.program("xdp_tail").expect("xdp_tail");
    let slot1 = jump.map().program_at(1).expect("slot 1 holds a program");
    assert!(std::sync::Arc::ptr_eq(&slot1, tail.loaded()));
    assert!(jump.map().program_at(0).is_none());
    let outer = object.map("outer_array").expect("outer_array");
    let inner_a = object.map("inner_a").expect("inner_a");
    let got = outer
        .map()
        .lookup_inner(&0u32.to_ne_bytes())
        .expect("slot 0");
    assert!(std::sync::Arc::ptr_eq(&got, inner_a.map()));
}

#[test]
fn globals_are_found_by_name_and_sized() {
    let mut open = OpenObject::open_file(fixture("globals.o")).expect("opens");
    open.set_global_value("cfg_multiplier", &5u32).expect("set");
    let e = open
        .set_global_value("cfg_multiplier", &5u64)
        .expect_err("wrong size");
    assert!(matches!(e, Error::Global { .. }), "{e}");
    assert!(e.to_string().contains("4 bytes"), "{e}");
    let e = open
        .set_global_value("no_such_var", &1u32)
        .expect_err("missing");
    assert!(e.to_string().contains("no_such_var"), "{e}");
    let object = open.load().expect("loads");
    let e = object.program("nope").expect_err("no program");
    assert!(
        e.to_string().contains("xdp_globals"),
        "lists the programs: {e}"
    );
    let e = object.map("nope").expect_err("no map");
    assert!(matches!(e, Error::NoMap { .. }), "{e}");
}

#[test]
fn a_missing_file_is_a_typed_error() {
    let e = Object::load_file("/nonexistent/x.o").expect_err("missing");
    assert!(matches!(e, Error::Io { .. }), "{e}");
    let e = OpenObject::open_bytes("junk", b"not an elf".to_vec()).expect_err("junk");
    assert!(matches!(e, Error::Object(_)), "{e}");
}
