//! Finding tests, building their programs and classifying them by
//! conformance group and ISA version.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use bpfvm_isa::asm::{Dialect, assemble};
use bpfvm_isa::spec::{self, Group, IsaVersion};
use bpfvm_isa::{Program, RawInsn};
use bpfvm_runtime::{LoadedProgram, ProgramType};

use crate::data::{Source, TestCase};

/// One test of a suite.
#[derive(Debug, Clone)]
pub struct Test {
    /// Path relative to the suite root, `/`-separated (the test's name).
    pub name: String,
    /// The parsed file, or why it does not parse.
    pub case: Result<TestCase, String>,
    /// The slots of the program, or why it does not assemble.
    pub slots: Result<Vec<RawInsn>, String>,
    /// How the test is counted in the report.
    pub class: TestClass,
}

/// The row a test is counted in: the most demanding conformance group its
/// program uses (or "extensions"), and the newest ISA version it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TestClass {
    /// Category for the per-group table.
    pub category: Category,
    /// The newest ISA version among the program's instructions.
    pub version: IsaVersion,
}

/// Category of a test in the per-group table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// The most demanding RFC 9669 group its instructions belong to.
    Group(Group),
    /// Uses a Linux extension (`callx`, `may_goto`, load-acquire/store-release).
    Extensions,
    /// The program has no valid instruction at all (a negative test of raw bytes).
    Invalid,
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Category::Group(g) => f.write_str(g.name()),
            Category::Extensions => f.write_str("extensions"),
            Category::Invalid => f.write_str("invalid"),
        }
    }
}

/// Groups ordered from most to least demanding: a test counts in the first it uses.
const GROUP_PRIORITY: [Group; 7] = [
    Group::Packet,
    Group::Atomic64,
    Group::Atomic32,
    Group::Divmul64,
    Group::Divmul32,
    Group::Base64,
    Group::Base32,
];

/// The table rows of every valid instruction slot in `slots` (second halves of `lddw` skipped).
pub fn rows_used(slots: &[RawInsn]) -> Vec<&'static spec::OpcodeInfo> {
    let mut rows = Vec::new();
    let mut pc = 0;
    while pc < slots.len() {
        let raw = slots[pc];
        match spec::lookup(&raw) {
            Some(row) => {
                rows.push(row);
                pc += if raw.opcode == 0x18 { 2 } else { 1 };
            }
            None => pc += 1,
        }
    }
    rows
}

/// The groups a program uses.
pub fn groups_used(slots: &[RawInsn]) -> BTreeSet<Group> {
    rows_used(slots).iter().map(|r| r.group).collect()
}

fn classify(slots: &[RawInsn]) -> TestClass {
    let rows = rows_used(slots);
    let version = rows
        .iter()
        .map(|r| r.version)
        .max()
        .unwrap_or(IsaVersion::V1);
    let category = if rows.is_empty() {
        Category::Invalid
    } else if rows.iter().any(|r| r.extension) {
        Category::Extensions
    } else {
        let used: BTreeSet<Group> = rows.iter().map(|r| r.group).collect();
        GROUP_PRIORITY
            .into_iter()
            .find(|g| used.contains(g))
            .map_or(Category::Invalid, Category::Group)
    };
    TestClass { category, version }
}

/// The program slots of a test case.
pub fn slots_of(case: &TestCase) -> Result<Vec<RawInsn>, String> {
    match &case.source {
        Source::Raw(words) => Ok(words.iter().map(|w| RawInsn::from_u64(*w)).collect()),
        Source::Asm { text, first_line } => assemble(text, Dialect::Conformance).map_err(|e| {
            format!(
                "assembly error at line {}, column {}: {}",
                e.line + first_line - 1,
                e.column,
                e.kind
            )
        }),
    }
}

/// Validates and loads slots as a conformance-type program.
pub fn load(slots: &[RawInsn]) -> Result<LoadedProgram, String> {
    let program = Program::from_slots(slots.to_vec()).map_err(|e| format!("load error: {e}"))?;
    LoadedProgram::new(program, ProgramType::Conformance).map_err(|e| format!("load error: {e}"))
}

impl Test {
    /// Builds a test from a case already read.
    pub fn new(name: String, case: Result<TestCase, String>) -> Test {
        let slots = case.as_ref().map_err(Clone::clone).and_then(slots_of);
        let class = classify(slots.as_deref().unwrap_or(&[]));
        Test {
            name,
            case,
            slots,
            class,
        }
    }

    /// The groups the test's program uses.
    pub fn groups(&self) -> BTreeSet<Group> {
        groups_used(self.slots.as_deref().unwrap_or(&[]))
    }
}

/// Every `.data` file under `dir`, recursively, sorted by path.
pub fn discover(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "data") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads every test under `dir` (a single `.data` file is a suite of one).
pub fn load_suite(dir: &Path) -> std::io::Result<Vec<Test>> {
    let files = if dir.is_file() {
        vec![dir.to_path_buf()]
    } else {
        discover(dir)?
    };
    Ok(files
        .into_iter()
        .map(|path| {
            let rel = path.strip_prefix(dir).unwrap_or(&path);
            let name = if rel.as_os_str().is_empty() {
                path.file_name().map_or_else(
                    || path.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                )
            } else {
                rel.components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/")
            };
            Test::new(name, TestCase::read(&path))
        })
        .collect())
}
