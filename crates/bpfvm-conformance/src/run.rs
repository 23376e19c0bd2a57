//! Running tests on engines and reporting per group and ISA version.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use bpfvm_isa::RawInsn;
use bpfvm_isa::spec::{Group, IsaVersion};
use bpfvm_runtime::{Engine, RunError, RunOptions};

use crate::data::Expectation;
use crate::divergence::explain;
use crate::suite::{Test, load};

/// The outcome of one test on one engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Behaved as expected.
    Pass,
    /// Did not; the text says how.
    Fail(String),
    /// Not run; the text says why.
    Skip(String),
    /// Did not behave as expected, in a way listed in [`crate::divergence::DIVERGENCES`].
    Known {
        /// The divergence's id.
        divergence: &'static str,
        /// What the engine did.
        detail: String,
    },
}

impl Outcome {
    fn index(&self) -> usize {
        match self {
            Outcome::Pass => 0,
            Outcome::Fail(_) => 1,
            Outcome::Skip(_) => 2,
            Outcome::Known { .. } => 3,
        }
    }
}

/// Why a run produced no `r0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFailure {
    /// The message.
    pub text: String,
    /// The engine's own loader refused the program (the kernel's verifier): its words
    /// are not bpfvm's, so any such refusal satisfies a test's `-- error`.
    pub refused_by_engine: bool,
}

/// What one engine did with one test: `r0` or why not, and the memory afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// `r0`, or the failure.
    pub result: Result<u64, RunFailure>,
    /// The test memory after the run.
    pub mem: Vec<u8>,
}

impl Observed {
    /// A short description for reports.
    pub fn describe(&self) -> String {
        match &self.result {
            Ok(r0) => format!("r0 = {r0:#x}"),
            Err(f) => f.text.clone(),
        }
    }

    /// Whether two engines did the same: the same `r0` and memory, or both failed.
    pub fn agrees_with(&self, other: &Observed) -> bool {
        match (&self.result, &other.result) {
            (Ok(a), Ok(b)) => a == b && self.mem == other.mem,
            (Err(_), Err(_)) => true,
            _ => false,
        }
    }
}

/// Which tests to run.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Skip tests using any of these groups.
    pub exclude_groups: BTreeSet<Group>,
    /// Skip tests needing a newer ISA version than this.
    pub max_version: Option<IsaVersion>,
    /// Instruction budget per run, so a runaway test fails instead of hanging.
    pub budget: Option<u64>,
}

/// Budget per test run when the caller sets none: generous for any test of
/// the suite, small enough that an accidental infinite loop ends in seconds.
pub const DEFAULT_BUDGET: u64 = 100_000_000;

/// Runs one test on one engine: what it did, or why it was not run.
pub fn observe(test: &Test, engine: &dyn Engine, filter: &Filter) -> Result<Observed, Outcome> {
    let case = match &test.case {
        Ok(c) => c,
        Err(e) => return Err(Outcome::Fail(format!("unreadable test: {e}"))),
    };
    if let Some(g) = test.groups().intersection(&filter.exclude_groups).next() {
        return Err(Outcome::Skip(format!("uses excluded group {g}")));
    }
    if let Some(max) = filter.max_version
        && test.class.version > max
    {
        return Err(Outcome::Skip(format!(
            "needs ISA {} (limit {max})",
            test.class.version
        )));
    }
    let slots = test.slots.as_ref().map_err(|e| Outcome::Fail(e.clone()))?;
    let mut mem = case.mem.clone();
    let opts = RunOptions {
        budget: Some(filter.budget.unwrap_or(DEFAULT_BUDGET)),
        ..RunOptions::default()
    };
    let result = execute(engine, slots, &mut mem, &opts);
    Ok(Observed { result, mem })
}

/// Runs `slots` on `engine` over `mem`: engines that judge bytecode themselves get it
/// unvalidated ([`Engine::run_unvalidated`]); the others get it through bpfvm's loader.
pub fn execute(
    engine: &dyn Engine,
    slots: &[RawInsn],
    mem: &mut [u8],
    opts: &RunOptions,
) -> Result<u64, RunFailure> {
    match engine.run_unvalidated(slots, mem, opts) {
        Some(r) => r.map_err(run_failure),
        None => match load(slots) {
            Ok(prog) => engine.run(&prog, mem, opts).map_err(run_failure),
            Err(text) => Err(RunFailure {
                text,
                refused_by_engine: false,
            }),
        },
    }
}

fn run_failure(e: RunError) -> RunFailure {
    RunFailure {
        refused_by_engine: matches!(e, RunError::Refused { .. }),
        text: e.to_string(),
    }
}

/// Runs one test on one engine and judges it (without consulting the divergence list).
pub fn run_test(test: &Test, engine: &dyn Engine, filter: &Filter) -> Outcome {
    match (observe(test, engine, filter), &test.case) {
        (Ok(obs), Ok(case)) => judge(&case.expect, &obs.result),
        (Err(outcome), _) => outcome,
        (Ok(_), Err(e)) => Outcome::Fail(format!("unreadable test: {e}")),
    }
}

/// Compares a result with the expectation: an expected error matches when
/// its text is part of bpfvm's message, or when the engine's own loader refused the
/// program (error texts differ between runtimes).
pub fn judge(expect: &Expectation, actual: &Result<u64, RunFailure>) -> Outcome {
    match (expect, actual) {
        (Expectation::Result(want), Ok(got)) if want == got => Outcome::Pass,
        (Expectation::Result(want), Ok(got)) => {
            Outcome::Fail(format!("expected r0 = {want:#x}, got {got:#x}"))
        }
        (Expectation::Result(want), Err(e)) => {
            Outcome::Fail(format!("expected r0 = {want:#x}, got {}", e.text))
        }
        (Expectation::Error(want), Ok(got)) => {
            Outcome::Fail(format!("expected error `{want}`, got r0 = {got:#x}"))
        }
        (Expectation::Error(want), Err(e))
            if e.refused_by_engine || e.text.contains(want.as_str()) =>
        {
            Outcome::Pass
        }
        (Expectation::Error(want), Err(e)) => {
            Outcome::Fail(format!("expected error `{want}`, got {}", e.text))
        }
    }
}

/// Engines that did different things with one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    /// The engine that differs from the first engine.
    pub engine: String,
    /// What each did.
    pub detail: String,
    /// The listed divergence that explains it, if any.
    pub known: Option<&'static str>,
}

/// One test's results.
#[derive(Debug, Clone)]
pub struct TestResult {
    /// Test name.
    pub name: String,
    /// Its table row.
    pub class: crate::suite::TestClass,
    /// One outcome per engine.
    pub outcomes: Vec<Outcome>,
    /// Engines that disagree with the first engine.
    pub disagreements: Vec<Disagreement>,
}

/// Results of a suite on several engines.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Engine names, in column order.
    pub engines: Vec<String>,
    /// Per test, in suite order.
    pub results: Vec<TestResult>,
}

impl Report {
    /// Runs every test on every engine, judges each against the test's expectation and
    /// the divergence list, and compares the engines with the first one. `progress` is
    /// called after each test with its name.
    pub fn run(
        tests: &[Test],
        engines: &[&dyn Engine],
        filter: &Filter,
        progress: &mut dyn FnMut(&str),
    ) -> Report {
        let mut report = Report {
            engines: engines.iter().map(|e| e.name().to_string()).collect(),
            results: Vec::new(),
        };
        for test in tests {
            report.results.push(run_one(test, engines, filter));
            progress(&test.name);
        }
        report
    }

    /// Failures over all engines plus unexplained disagreements between engines.
    pub fn failures(&self) -> usize {
        self.failure_lines().len()
    }

    /// One line per failed test and engine, and per unexplained disagreement.
    pub fn failure_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for r in &self.results {
            for (engine, o) in self.engines.iter().zip(&r.outcomes) {
                if let Outcome::Fail(why) = o {
                    lines.push(format!("FAIL {} [{engine}]: {why}", r.name));
                }
            }
            for d in r.disagreements.iter().filter(|d| d.known.is_none()) {
                lines.push(format!(
                    "DISAGREE {} [{}]: {} (not a listed divergence)",
                    r.name, d.engine, d.detail
                ));
            }
        }
        lines
    }

    /// One line per skipped test and engine.
    pub fn skip_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for r in &self.results {
            for (engine, o) in self.engines.iter().zip(&r.outcomes) {
                if let Outcome::Skip(why) = o {
                    lines.push(format!("SKIP {} [{engine}]: {why}", r.name));
                }
            }
        }
        lines
    }

    /// One line per test where an engine did something else than the test expects or
    /// than the first engine did, explained by a listed divergence.
    pub fn known_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for r in &self.results {
            for (engine, o) in self.engines.iter().zip(&r.outcomes) {
                if let Outcome::Known { divergence, detail } = o {
                    lines.push(format!(
                        "KNOWN {} [{engine}]: {detail} (known divergence `{divergence}`)",
                        r.name
                    ));
                }
            }
            for d in &r.disagreements {
                if let Some(id) = d.known {
                    let already = r.outcomes.iter().any(
                        |o| matches!(o, Outcome::Known { divergence, .. } if *divergence == id),
                    );
                    if !already {
                        lines.push(format!(
                            "KNOWN {} [{}]: {} (known divergence `{id}`)",
                            r.name, d.engine, d.detail
                        ));
                    }
                }
            }
        }
        lines
    }

    /// How many tests each listed divergence explained, per engine.
    pub fn divergence_counts(&self) -> BTreeMap<(&'static str, String), usize> {
        let mut counts = BTreeMap::new();
        for r in &self.results {
            let mut ids = BTreeSet::new();
            for (engine, o) in self.engines.iter().zip(&r.outcomes) {
                if let Outcome::Known { divergence, .. } = o {
                    ids.insert((*divergence, engine.clone()));
                }
            }
            for d in &r.disagreements {
                if let Some(id) = d.known {
                    ids.insert((id, d.engine.clone()));
                }
            }
            for key in ids {
                *counts.entry(key).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Tests where engines disagree: `(explained, unexplained)`.
    pub fn disagreement_counts(&self) -> (usize, usize) {
        let mut counts = (0, 0);
        for r in &self.results {
            for d in &r.disagreements {
                if d.known.is_some() {
                    counts.0 += 1;
                } else {
                    counts.1 += 1;
                }
            }
        }
        counts
    }

    /// Counts `[pass, fail, skip]` per row key and engine.
    fn tally<K: Ord>(
        &self,
        key: impl Fn(&crate::suite::TestClass) -> K,
    ) -> BTreeMap<K, Vec<[usize; 4]>> {
        let mut rows: BTreeMap<K, Vec<[usize; 4]>> = BTreeMap::new();
        for r in &self.results {
            let row = rows
                .entry(key(&r.class))
                .or_insert_with(|| vec![[0; 4]; self.engines.len()]);
            for (cell, o) in row.iter_mut().zip(&r.outcomes) {
                cell[o.index()] += 1;
            }
        }
        rows
    }

    /// The per-group and per-ISA-version tables, with totals.
    pub fn tables(&self) -> String {
        let mut out = String::new();
        let by_group = self.tally(|c| c.category);
        let by_version = self.tally(|c| c.version);
        let total = self.tally(|_| ());
        self.table(
            &mut out,
            "group",
            by_group.iter().map(|(k, v)| (k.to_string(), v)),
            &total,
        );
        out.push('\n');
        self.table(
            &mut out,
            "ISA",
            by_version.iter().map(|(k, v)| (k.name().to_string(), v)),
            &total,
        );
        out
    }

    fn table<'a>(
        &self,
        out: &mut String,
        title: &str,
        rows: impl Iterator<Item = (String, &'a Vec<[usize; 4]>)>,
        total: &BTreeMap<(), Vec<[usize; 4]>>,
    ) {
        let _ = write!(out, "{title:<12}");
        for e in &self.engines {
            let _ = write!(out, "  {:^23}", e);
        }
        out.push('\n');
        let _ = write!(out, "{:<12}", "");
        for _ in &self.engines {
            let _ = write!(
                out,
                "  {:>5} {:>5} {:>5} {:>5}",
                "pass", "fail", "skip", "known"
            );
        }
        out.push('\n');
        let write_row = |out: &mut String, label: &str, cells: &[[usize; 4]]| {
            let _ = write!(out, "{label:<12}");
            for c in cells {
                let _ = write!(out, "  {:>5} {:>5} {:>5} {:>5}", c[0], c[1], c[2], c[3]);
            }
            out.push('\n');
        };
        for (label, cells) in rows {
            write_row(out, &label, cells);
        }
        if let Some(cells) = total.get(&()) {
            write_row(out, "total", cells);
        }
    }
}

/// Runs one test on every engine; judges, consults the divergence list, compares.
fn run_one(test: &Test, engines: &[&dyn Engine], filter: &Filter) -> TestResult {
    let slots = test.slots.as_deref().unwrap_or(&[]);
    let observed: Vec<Result<Observed, Outcome>> =
        engines.iter().map(|e| observe(test, *e, filter)).collect();
    let outcomes = engines
        .iter()
        .zip(&observed)
        .map(|(engine, obs)| match (obs, &test.case) {
            (Err(outcome), _) => outcome.clone(),
            (Ok(_), Err(e)) => Outcome::Fail(format!("unreadable test: {e}")),
            (Ok(obs), Ok(case)) => match judge(&case.expect, &obs.result) {
                Outcome::Fail(why) => match explain(engine.name(), slots, obs) {
                    Some(d) => Outcome::Known {
                        divergence: d.id,
                        detail: obs.describe(),
                    },
                    None => Outcome::Fail(why),
                },
                other => other,
            },
        })
        .collect();
    let mut disagreements = Vec::new();
    if let Some(Ok(reference)) = observed.first() {
        for (engine, obs) in engines.iter().zip(&observed).skip(1) {
            let Ok(obs) = obs else { continue };
            if obs.agrees_with(reference) {
                continue;
            }
            let detail = if reference.result.is_ok() && reference.result == obs.result {
                format!(
                    "memory differs: {} has {:02x?}, {} has {:02x?}",
                    engines[0].name(),
                    reference.mem,
                    engine.name(),
                    obs.mem
                )
            } else {
                format!(
                    "{}: {}; {}: {}",
                    engines[0].name(),
                    reference.describe(),
                    engine.name(),
                    obs.describe()
                )
            };
            disagreements.push(Disagreement {
                engine: engine.name().to_string(),
                detail,
                known: explain(engine.name(), slots, obs).map(|d| d.id),
            });
        }
    }
    TestResult {
        name: test.name.clone(),
        class: test.class,
        outcomes,
        disagreements,
    }
}
