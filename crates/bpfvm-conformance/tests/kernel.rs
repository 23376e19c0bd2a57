//! The kernel checks our expectations: every test of `conformance-tests/` runs on the
//! interpreter and in the Linux kernel. Every positive test the kernel accepts must give
//! the expected `r0` there, every negative test must be rejected there too, and the two
//! engines must agree, unless a divergence of `divergence.rs` explains the difference.
//! Skips (saying why) without `bpf()`; fails instead under `BPFVM_REQUIRE_KERNEL=1`.
#![cfg(target_os = "linux")]

use std::path::PathBuf;

use bpfvm_conformance::data::{Expectation, TestCase};
use bpfvm_conformance::run::{Filter, Outcome, Report};
use bpfvm_conformance::suite::{Test, load_suite};
use bpfvm_interp::Interpreter;
use bpfvm_kernel::{KernelEngine, kernel_available_for_test};
use bpfvm_runtime::Engine;

fn suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance-tests")
}

#[test]
fn the_kernel_confirms_every_expectation_of_our_suite() {
    if !kernel_available_for_test("the_kernel_confirms_every_expectation_of_our_suite") {
        return;
    }
    let tests = load_suite(&suite_dir()).expect("suite directory is readable");
    let kernel = KernelEngine::new().expect("probed");
    let engines: [&dyn Engine; 2] = [&Interpreter::new(), &kernel];
    let report = Report::run(&tests, &engines, &Filter::default(), &mut |_| {});
    let failures = report.failure_lines();
    assert!(
        failures.is_empty(),
        "{} failures or unexplained disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The kernel really judged the suite: most tests pass there outright, and no
    // divergence is stretched over a large part of it.
    let kernel_passes = report
        .results
        .iter()
        .filter(|r| r.outcomes[1] == Outcome::Pass)
        .count();
    assert!(
        kernel_passes * 100 >= tests.len() * 90,
        "{kernel_passes} of {}",
        tests.len()
    );
    for ((id, _), n) in report.divergence_counts() {
        assert!(
            n <= 10,
            "divergence {id} explains {n} tests: too broad to be a corner"
        );
    }
}

#[test]
fn a_wrong_expectation_cannot_survive_the_kernel() {
    if !kernel_available_for_test("a_wrong_expectation_cannot_survive_the_kernel") {
        return;
    }
    let kernel = KernelEngine::new().expect("probed");
    // Correct: the kernel agrees.
    let good = "-- asm\nmov %r0, 3\nlsh %r0, 2\nexit\n-- result\n0xc\n";
    // Wrong by one, as a slip in the suite would be.
    let wrong = good.replace("0xc", "0xd");
    // A negative test the kernel would happily run.
    let not_an_error = "-- asm\nmov %r0, 1\nexit\n-- error\nanything\n";
    let outcome = |text: &str| {
        let test = Test::new(
            "t.data".into(),
            TestCase::parse(text).map_err(|e| e.to_string()),
        );
        let report = Report::run(&[test], &[&kernel], &Filter::default(), &mut |_| {});
        report.results[0].outcomes[0].clone()
    };
    assert_eq!(outcome(good), Outcome::Pass);
    assert!(
        matches!(outcome(&wrong), Outcome::Fail(_)),
        "{:?}",
        outcome(&wrong)
    );
    assert!(matches!(outcome(not_an_error), Outcome::Fail(_)));
    assert!(matches!(
        TestCase::parse(&wrong).map(|c| c.expect),
        Ok(Expectation::Result(0xd))
    ));
}
