//! Shared helpers: fixture paths, ELF section extraction, the vmlinux BTF.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use bpfvm_btf::{Btf, BtfExt};
use object::{Object, ObjectSection, ObjectSymbol};

/// Path of a file in `tests/data`.
pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Text of a golden file in `tests/data`.
pub fn golden(name: &str) -> String {
    std::fs::read_to_string(data(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

/// Raw bytes of an ELF section of a fixture object (relocations not
/// applied, as libbpf reads them).
pub fn section(obj: &str, name: &str) -> Vec<u8> {
    let bytes = std::fs::read(data(obj)).expect("fixture object (run tests/data/build.sh)");
    let file = object::File::parse(&*bytes).expect("fixture is ELF");
    let sec = file
        .section_by_name(name)
        .unwrap_or_else(|| panic!("{obj} has no {name} section"));
    sec.data().expect("section data").to_vec()
}

/// A parsed fixture: BTF and BTF.ext.
pub fn fixture(obj: &str) -> (Btf, BtfExt) {
    let btf = Btf::parse(&section(obj, ".BTF")).expect(".BTF parses");
    let ext = BtfExt::parse(&section(obj, ".BTF.ext"), &btf).expect(".BTF.ext parses");
    (btf, ext)
}

/// Function symbols of a fixture: (section name, byte offset, name).
pub fn func_symbols(obj: &str) -> Vec<(String, u64, String)> {
    let bytes = std::fs::read(data(obj)).expect("fixture object");
    let file = object::File::parse(&*bytes).expect("fixture is ELF");
    let mut out = Vec::new();
    for sym in file.symbols() {
        if sym.kind() != object::SymbolKind::Text {
            continue;
        }
        let Some(idx) = sym.section_index() else {
            continue;
        };
        let sec = file.section_by_index(idx).expect("symbol section");
        out.push((
            sec.name().expect("section name").to_string(),
            sym.address(),
            sym.name().expect("symbol name").to_string(),
        ));
    }
    out.sort();
    out
}

/// Slot indices where instructions start in an ELF code section (a `lddw`,
/// opcode 0x18, takes two slots).
pub fn insn_starts(obj: &str, name: &str) -> Vec<u32> {
    let code = section(obj, name);
    let mut starts = Vec::new();
    let mut slot = 0usize;
    while slot * 8 < code.len() {
        starts.push(slot as u32);
        slot += if code[slot * 8] == 0x18 { 2 } else { 1 };
    }
    starts
}

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// The running kernel's BTF, or `None` (with a note on stderr) when this
/// machine has none.
pub fn vmlinux_bytes(test: &str) -> Option<Vec<u8>> {
    match std::fs::read(VMLINUX) {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("SKIP {test}: cannot read {VMLINUX}: {e}");
            None
        }
    }
}

/// Output of `bpftool btf dump file <path> [format c]`, or `None` (with a
/// note) when bpftool is not installed.
pub fn bpftool_dump(test: &str, path: &str, c: bool) -> Option<String> {
    let mut cmd = Command::new("bpftool");
    cmd.args(["btf", "dump", "file", path]);
    if c {
        cmd.args(["format", "c"]);
    }
    let why = match cmd.output() {
        Ok(out) if out.status.success() => {
            return Some(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        Ok(out) => format!("bpftool failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => format!("bpftool not runnable: {e}"),
    };
    // CI (`.ci/run` installs bpftool and sets this) must not skip the comparison.
    assert!(
        std::env::var("BPFVM_REQUIRE_KERNEL").as_deref() != Ok("1"),
        "{test}: BPFVM_REQUIRE_KERNEL=1 but {why}"
    );
    // Past the harness's capture, so the skip is seen.
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIP {test}: {why}");
    None
}
