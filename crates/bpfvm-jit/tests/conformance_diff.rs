//! Every `.data` test of `conformance-tests/` (the negative ones too, where bpfvm's loader
//! accepts the program) runs on the interpreter and on the JIT over the same memory: both
//! must give the same `r0` or the same fault (kind, pc and instruction; for a budget or
//! cancellation fault the kind only) and leave the same memory. The JIT runs twice: plain
//! and with constant blinding.
//!
//! This is independent of the tests' own expectations (which `bpfvm conformance` checks):
//! it also covers what a test does not state, such as the memory a program leaves and the
//! exact fault of a negative test.

mod common;

use std::path::PathBuf;

use bpfvm_conformance::suite::{load, load_suite};
use bpfvm_jit::Jit;
use bpfvm_runtime::RunOptions;

use common::{difference, observe, run_both};

/// Enough for every test of the suite (the longest loops run some thousands of
/// instructions); small enough that a runaway test ends at once.
const BUDGET: u64 = 1_000_000;

#[test]
fn every_conformance_test_runs_the_same_on_the_interpreter_and_the_jit() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance-tests");
    let tests = load_suite(&root).expect("conformance-tests/ readable");
    let opts = RunOptions::new().with_budget(BUDGET);
    let mut compared = 0;
    let mut not_loaded = Vec::new();
    let mut failures = Vec::new();
    for test in &tests {
        let case = match &test.case {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{}: unreadable: {e}", test.name));
                continue;
            }
        };
        let prog = match test.slots.as_deref().map_err(Clone::clone).and_then(load) {
            Ok(p) => p,
            Err(why) => {
                // A negative test of the loader: neither engine gets to run it.
                not_loaded.push(format!("{}: {why}", test.name));
                continue;
            }
        };
        let (interp, jit) = run_both(&prog, &case.mem, &opts);
        compared += 1;
        if let Some(d) = difference(&interp, &jit) {
            failures.push(format!("{}:\n{d}", test.name));
        }
        // And with constant blinding: the same semantics with every immediate hidden.
        let blinded = Jit::new().with_constant_blinding();
        let hardened = observe(&blinded, &prog, &mut case.mem.clone(), &opts);
        if let Some(d) = difference(&interp, &hardened) {
            failures.push(format!("{} (constant blinding):\n{d}", test.name));
        }
    }
    eprintln!(
        "{compared} tests compared; {} not loadable (loader negatives)",
        not_loaded.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {compared} tests differ:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // The suite has 619 tests, 140 of them negatives the loader refuses.
    assert!(compared >= 470, "only {compared} tests ran");
    assert!(
        not_loaded.iter().all(|l| l.starts_with("negative/")),
        "tests outside negative/ that do not load:\n{}",
        not_loaded.join("\n")
    );
}
