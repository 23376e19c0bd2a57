//! Our own suite in `conformance-tests/`: every test passes on the
//! interpreter, and every encoding of `isa-spec/opcodes.csv` is exercised by
//! at least one test. (`tests/kernel.rs` holds the suite against the kernel.)

use std::collections::BTreeSet;
use std::path::PathBuf;

use bpfvm_conformance::run::{Filter, Report};
use bpfvm_conformance::suite::{load_suite, rows_used};
use bpfvm_interp::Interpreter;
use bpfvm_isa::spec::OPCODES;

fn suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance-tests")
}

#[test]
fn whole_suite_passes_on_the_interpreter() {
    let tests = load_suite(&suite_dir()).expect("suite directory is readable");
    assert!(tests.len() >= 300, "only {} tests", tests.len());
    let report = Report::run(
        &tests,
        &[&Interpreter::new()],
        &Filter::default(),
        &mut |_| {},
    );
    let failures = report.failure_lines();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        report.skip_lines().is_empty(),
        "unexpected skips: {:?}",
        report.skip_lines()
    );
}

#[test]
fn every_opcode_of_the_spec_is_covered() {
    let tests = load_suite(&suite_dir()).expect("suite directory is readable");
    let mut used = BTreeSet::new();
    for t in &tests {
        let slots = t
            .slots
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: {e}", t.name));
        for row in rows_used(slots) {
            used.insert((row.opcode, row.mnemonic));
        }
    }
    let missing: Vec<String> = OPCODES
        .iter()
        .filter(|r| !used.contains(&(r.opcode, r.mnemonic)))
        .map(|r| format!("0x{:02x} {} ({})", r.opcode, r.mnemonic, r.operands))
        .collect();
    assert!(
        missing.is_empty(),
        "encodings no test uses:\n{}",
        missing.join("\n")
    );
}
