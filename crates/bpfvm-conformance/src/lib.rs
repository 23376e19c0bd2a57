//! # bpfvm-conformance: one test corpus, every engine
//!
//! Owns the bpf_conformance `.data` format ([`data`]), suites of such files
//! and their classification by conformance group and ISA version ([`suite`]),
//! running a suite on every available engine with a per-group report and a
//! comparison of the engines ([`run`]), the one list of known divergences
//! ([`divergence`]), the engine registry by name ([`engines`]), and the
//! bpf_conformance plugin protocol ([`plugin`]) that lets the public runner
//! drive bpfvm.
//!
//! Invariants: a test file that does not parse, assemble or load is a
//! reported outcome, never a panic; every test runs with an instruction
//! budget, so a runaway program fails instead of hanging the suite; an
//! expected error matches when its text is contained in ours, or when an
//! engine's own loader (the kernel's verifier) refused the program; a result
//! that differs from the expectation or from the first engine is a failure
//! unless a [`divergence::DIVERGENCES`] entry explains it.
//!
//! ```
//! use bpfvm_conformance::{data::TestCase, run::{Filter, Outcome, run_test}, suite::Test};
//! let case = TestCase::parse("-- asm\nmov %r0, 7\nexit\n-- result\n0x7\n").unwrap();
//! let test = Test::new("seven.data".into(), Ok(case));
//! let interp = bpfvm_interp::Interpreter::new();
//! assert_eq!(run_test(&test, &interp, &Filter::default()), Outcome::Pass);
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod data;
pub mod divergence;
pub mod engines;
pub mod plugin;
pub mod run;
pub mod suite;
