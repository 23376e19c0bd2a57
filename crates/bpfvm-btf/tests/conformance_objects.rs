//! The ELF fixtures of `conformance-tests/elf` (maintained with the loader,
//! built by clang-19, loaded into Linux 6.18 through libbpf): every `.BTF`
//! parses, re-serializes byte for byte and dumps exactly as bpftool does;
//! every `.BTF.ext` parses; the two objects with broken BTF are refused
//! with the right error. Skipped when that directory is absent.

mod common;

use std::path::{Path, PathBuf};

use bpfvm_btf::{Btf, BtfError, BtfExt};
use object::{Object, ObjectSection};

fn dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance-tests/elf");
    if d.is_dir() {
        Some(d)
    } else {
        eprintln!("SKIP: {} is absent", d.display());
        None
    }
}

fn sections(path: &Path) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let bytes = std::fs::read(path).expect("object");
    let file = object::File::parse(&*bytes).expect("ELF");
    let get = |name| {
        file.section_by_name(name)
            .map(|s| s.data().expect("data").to_vec())
    };
    (get(".BTF"), get(".BTF.ext"))
}

#[test]
fn every_fixture_parses_round_trips_and_dumps_like_bpftool() {
    let Some(dir) = dir() else {
        return;
    };
    let mut objs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "o"))
        .collect();
    objs.sort();
    let mut checked = 0;
    for obj in &objs {
        let (Some(btf_bytes), ext_bytes) = sections(obj) else {
            continue;
        };
        let name = obj.display().to_string();
        let btf = Btf::parse(&btf_bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(btf.to_bytes(), btf_bytes, "{name}");
        if let Some(ext) = ext_bytes {
            BtfExt::parse(&ext, &btf).unwrap_or_else(|e| panic!("{name} .BTF.ext: {e}"));
        }
        if let Some(theirs) = common::bpftool_dump("conformance objects", &name, false) {
            assert_eq!(btf.dump_raw(), theirs, "{name}");
        }
        for (id, _) in btf.types() {
            let _ = btf.format_c(id);
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} objects with BTF");
}

#[test]
fn broken_btf_is_refused() {
    let Some(dir) = dir() else {
        return;
    };
    let (btf, _) = sections(&dir.join("broken/bad_btf_magic.o"));
    assert!(matches!(
        Btf::parse(&btf.expect(".BTF")),
        Err(BtfError::BadMagic { found: 0, .. })
    ));
    let (btf, _) = sections(&dir.join("broken/corrupted_btf.o"));
    match Btf::parse(&btf.expect(".BTF")) {
        Err(e @ BtfError::SectionOutOfBounds { what: "type", .. }) => {
            assert!(e.to_string().contains("type section"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}
