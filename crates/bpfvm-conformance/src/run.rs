//! Running tests on engines and reporting per group and ISA version.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use bpfvm_isa::spec::{Group, IsaVersion};
use bpfvm_runtime::{Engine, RunOptions};

use crate::data::Expectation;
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
}

impl Outcome {
    fn index(&self) -> usize {
        match self {
            Outcome::Pass => 0,
            Outcome::Fail(_) => 1,
            Outcome::Skip(_) => 2,
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

/// Runs one test on one engine.
pub fn run_test(test: &Test, engine: &dyn Engine, filter: &Filter) -> Outcome {
    let case = match &test.case {
        Ok(c) => c,
        Err(e) => return Outcome::Fail(format!("unreadable test: {e}")),
    };
    if let Some(g) = test.groups().intersection(&filter.exclude_groups).next() {
        return Outcome::Skip(format!("uses excluded group {g}"));
    }
    if let Some(max) = filter.max_version
        && test.class.version > max
    {
        return Outcome::Skip(format!("needs ISA {} (limit {max})", test.class.version));
    }
    let result = test
        .slots
        .clone()
        .and_then(|slots| load(&slots))
        .and_then(|prog| {
            let mut mem = case.mem.clone();
            let opts = RunOptions {
                budget: Some(filter.budget.unwrap_or(DEFAULT_BUDGET)),
                ..RunOptions::default()
            };
            engine
                .run(&prog, &mut mem, &opts)
                .map_err(|e| e.to_string())
        });
    judge(&case.expect, result)
}

/// Compares an outcome with the expectation: an expected error matches when
/// its text is part of the actual message (error texts differ between runtimes).
pub fn judge(expect: &Expectation, actual: Result<u64, String>) -> Outcome {
    match (expect, actual) {
        (Expectation::Result(want), Ok(got)) if *want == got => Outcome::Pass,
        (Expectation::Result(want), Ok(got)) => {
            Outcome::Fail(format!("expected r0 = {want:#x}, got {got:#x}"))
        }
        (Expectation::Result(want), Err(e)) => {
            Outcome::Fail(format!("expected r0 = {want:#x}, got {e}"))
        }
        (Expectation::Error(want), Ok(got)) => {
            Outcome::Fail(format!("expected error `{want}`, got r0 = {got:#x}"))
        }
        (Expectation::Error(want), Err(e)) if e.contains(want.as_str()) => Outcome::Pass,
        (Expectation::Error(want), Err(e)) => {
            Outcome::Fail(format!("expected error `{want}`, got {e}"))
        }
    }
}

/// Results of a suite on several engines.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Engine names, in column order.
    pub engines: Vec<String>,
    /// Per test (suite order): its name, class, and one outcome per engine.
    pub results: Vec<(String, crate::suite::TestClass, Vec<Outcome>)>,
}

impl Report {
    /// Runs every test on every engine; `progress` is called after each test with its name.
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
            let outcomes = engines.iter().map(|e| run_test(test, *e, filter)).collect();
            report
                .results
                .push((test.name.clone(), test.class, outcomes));
            progress(&test.name);
        }
        report
    }

    /// Number of failures over all engines.
    pub fn failures(&self) -> usize {
        self.results
            .iter()
            .flat_map(|(_, _, o)| o)
            .filter(|o| matches!(o, Outcome::Fail(_)))
            .count()
    }

    /// One line per failed test and engine.
    pub fn failure_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (name, _, outcomes) in &self.results {
            for (engine, o) in self.engines.iter().zip(outcomes) {
                if let Outcome::Fail(why) = o {
                    lines.push(format!("FAIL {name} [{engine}]: {why}"));
                }
            }
        }
        lines
    }

    /// One line per skipped test and engine.
    pub fn skip_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (name, _, outcomes) in &self.results {
            for (engine, o) in self.engines.iter().zip(outcomes) {
                if let Outcome::Skip(why) = o {
                    lines.push(format!("SKIP {name} [{engine}]: {why}"));
                }
            }
        }
        lines
    }

    /// Counts `[pass, fail, skip]` per row key and engine.
    fn tally<K: Ord>(
        &self,
        key: impl Fn(&crate::suite::TestClass) -> K,
    ) -> BTreeMap<K, Vec<[usize; 3]>> {
        let mut rows: BTreeMap<K, Vec<[usize; 3]>> = BTreeMap::new();
        for (_, class, outcomes) in &self.results {
            let row = rows
                .entry(key(class))
                .or_insert_with(|| vec![[0; 3]; self.engines.len()]);
            for (cell, o) in row.iter_mut().zip(outcomes) {
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
        rows: impl Iterator<Item = (String, &'a Vec<[usize; 3]>)>,
        total: &BTreeMap<(), Vec<[usize; 3]>>,
    ) {
        let _ = write!(out, "{title:<12}");
        for e in &self.engines {
            let _ = write!(out, "  {:^17}", e);
        }
        out.push('\n');
        let _ = write!(out, "{:<12}", "");
        for _ in &self.engines {
            let _ = write!(out, "  {:>5} {:>5} {:>5}", "pass", "fail", "skip");
        }
        out.push('\n');
        let write_row = |out: &mut String, label: &str, cells: &[[usize; 3]]| {
            let _ = write!(out, "{label:<12}");
            for c in cells {
                let _ = write!(out, "  {:>5} {:>5} {:>5}", c[0], c[1], c[2]);
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
