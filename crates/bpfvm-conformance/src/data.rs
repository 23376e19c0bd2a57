//! The bpf_conformance `.data` format.
//!
//! A file is a list of sections, each opened by a line starting with `--`:
//! `-- asm` (assembly in the bpf_conformance dialect), `-- raw` (one 64-bit
//! word per slot; overrides `asm`), `-- mem` (hex bytes), `-- result`
//! (expected `r0`), `-- error` (expected error text). `-- c` and
//! `-- no register offset` are accepted and ignored. `#` starts a comment.

use std::path::Path;

/// What a test expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expectation {
    /// The program runs and returns this `r0`.
    Result(u64),
    /// Loading or running fails with an error containing this text.
    Error(String),
}

/// The program of a test, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Assembly in the bpf_conformance dialect, with the line number its section starts at.
    Asm {
        /// The text.
        text: String,
        /// 1-based file line of the first assembly line.
        first_line: usize,
    },
    /// Raw 64-bit slot words.
    Raw(Vec<u64>),
}

/// One parsed `.data` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    /// The program.
    pub source: Source,
    /// The memory passed to the program (empty when the file has none).
    pub mem: Vec<u8>,
    /// The expected outcome.
    pub expect: Expectation,
    /// Leading `#` comment lines, joined: the test's description.
    pub description: String,
}

/// Why a `.data` file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

/// What is wrong with a `.data` file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// A `-- name` line names no known section.
    #[error("unknown section `-- {0}`")]
    UnknownSection(String),
    /// A section appears twice.
    #[error("section `-- {0}` appears twice")]
    DuplicateSection(String),
    /// Content outside any section.
    #[error("text before the first section")]
    TextBeforeSection,
    /// A `-- mem` token is not a hex byte.
    #[error("`{0}` is not a hex byte")]
    BadMemByte(String),
    /// A `-- raw` token is not a 64-bit hex word.
    #[error("`{0}` is not a 64-bit hex word")]
    BadRawWord(String),
    /// `-- result` is not a 64-bit number.
    #[error("`{0}` is not a 64-bit result (decimal or 0x hex)")]
    BadResult(String),
    /// The file has neither `-- asm` nor `-- raw`.
    #[error("no program: the file has neither `-- asm` nor `-- raw`")]
    NoProgram,
    /// The file has neither `-- result` nor `-- error`, or both.
    #[error("a test needs exactly one of `-- result` and `-- error`")]
    Expectation,
}

/// Parses a number as the public suite writes them: `0x` hex or decimal, optionally negative.
pub fn parse_u64(text: &str) -> Option<u64> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let v = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => t.parse::<u64>().ok()?,
    };
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Parses hex bytes separated by any whitespace (`00 01 ff`, or the plugin's `00  01  ff  `).
pub fn parse_hex_bytes(text: &str) -> Result<Vec<u8>, String> {
    text.split_whitespace()
        .map(|tok| {
            if tok.len() == 2 {
                u8::from_str_radix(tok, 16).map_err(|_| tok.to_string())
            } else {
                Err(tok.to_string())
            }
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Asm,
    Raw,
    Mem,
    Result,
    Error,
    Ignored,
}

impl TestCase {
    /// Parses the text of a `.data` file.
    pub fn parse(text: &str) -> Result<TestCase, ParseError> {
        let mut section: Option<Section> = None;
        let mut seen: Vec<String> = Vec::new();
        let mut asm = String::new();
        let mut asm_first_line = 0;
        let mut has_asm = false;
        let mut raw: Option<Vec<u64>> = None;
        let mut mem = Vec::new();
        let mut result: Option<u64> = None;
        let mut error: Option<String> = None;
        let mut description = String::new();

        for (i, line) in text.lines().enumerate() {
            let lineno = i + 1;
            let err = |kind| ParseError { line: lineno, kind };
            let trimmed = line.trim();
            if let Some(name) = trimmed.strip_prefix("--") {
                let name = name.trim().to_string();
                if seen.contains(&name) {
                    return Err(err(ParseErrorKind::DuplicateSection(name)));
                }
                let s = match name.as_str() {
                    "asm" => {
                        has_asm = true;
                        asm_first_line = lineno + 1;
                        Section::Asm
                    }
                    "raw" => {
                        raw = Some(Vec::new());
                        Section::Raw
                    }
                    "mem" => Section::Mem,
                    "result" => Section::Result,
                    "error" => {
                        error = Some(String::new());
                        Section::Error
                    }
                    "c" | "no register offset" => Section::Ignored,
                    _ => return Err(err(ParseErrorKind::UnknownSection(name))),
                };
                seen.push(name);
                section = Some(s);
                continue;
            }
            if section == Some(Section::Asm) {
                // Comments and blank lines stay, so assembler line numbers map back to the file.
                asm.push_str(line);
                asm.push('\n');
                continue;
            }
            let content = match trimmed.find('#') {
                Some(pos) => trimmed[..pos].trim(),
                None => trimmed,
            };
            if content.is_empty() {
                if section.is_none()
                    && let Some(comment) = trimmed.strip_prefix('#')
                {
                    if !description.is_empty() {
                        description.push(' ');
                    }
                    description.push_str(comment.trim());
                }
                continue;
            }
            match section {
                None => return Err(err(ParseErrorKind::TextBeforeSection)),
                Some(Section::Asm | Section::Ignored) => {}
                Some(Section::Raw) => {
                    for tok in content.split_whitespace() {
                        let w = parse_u64(tok)
                            .ok_or_else(|| err(ParseErrorKind::BadRawWord(tok.into())))?;
                        raw.get_or_insert_with(Vec::new).push(w);
                    }
                }
                Some(Section::Mem) => {
                    mem.extend(
                        parse_hex_bytes(content).map_err(|t| err(ParseErrorKind::BadMemByte(t)))?,
                    );
                }
                Some(Section::Result) => {
                    let v = parse_u64(content)
                        .ok_or_else(|| err(ParseErrorKind::BadResult(content.into())))?;
                    result = Some(v);
                }
                Some(Section::Error) => {
                    let e = error.get_or_insert_with(String::new);
                    if !e.is_empty() {
                        e.push(' ');
                    }
                    e.push_str(content);
                }
            }
        }
        let last_line = text.lines().count().max(1);
        let source = match (raw, has_asm) {
            (Some(words), _) => Source::Raw(words),
            (None, true) => Source::Asm {
                text: asm,
                first_line: asm_first_line,
            },
            (None, false) => {
                return Err(ParseError {
                    line: last_line,
                    kind: ParseErrorKind::NoProgram,
                });
            }
        };
        let expect = match (result, error) {
            (Some(v), None) => Expectation::Result(v),
            (None, Some(e)) => Expectation::Error(e),
            _ => {
                return Err(ParseError {
                    line: last_line,
                    kind: ParseErrorKind::Expectation,
                });
            }
        };
        Ok(TestCase {
            source,
            mem,
            expect,
            description,
        })
    }

    /// Reads and parses a `.data` file.
    pub fn read(path: &Path) -> Result<TestCase, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        TestCase::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_public_suite_shape() {
        let text = "# Adds two numbers\n-- asm\nmov %r0, 1\nadd %r0, 2 # trailing\nexit\n-- mem\n00 01\n02\n-- result\n0x3\n";
        let t = TestCase::parse(text).expect("parses");
        assert_eq!(t.mem, vec![0, 1, 2]);
        assert_eq!(t.expect, Expectation::Result(3));
        assert_eq!(t.description, "Adds two numbers");
        let Source::Asm { text, first_line } = t.source else {
            panic!("asm")
        };
        assert_eq!(first_line, 3);
        assert!(text.starts_with("mov %r0, 1\n"));
    }

    #[test]
    fn raw_overrides_asm_and_ignored_sections() {
        let text = "-- asm\nexit\n-- raw\n0x0000000000000095\n-- c\nint x = 1;\n-- no register offset\n-- error\nbad thing\n";
        let t = TestCase::parse(text).expect("parses");
        assert_eq!(t.source, Source::Raw(vec![0x95]));
        assert_eq!(t.expect, Expectation::Error("bad thing".into()));
    }

    #[test]
    fn typed_errors_with_lines() {
        assert_eq!(
            TestCase::parse("-- asm\nexit\n-- mem\n0g\n-- result\n0").unwrap_err(),
            ParseError {
                line: 4,
                kind: ParseErrorKind::BadMemByte("0g".into())
            }
        );
        assert_eq!(
            TestCase::parse("-- bogus\n").unwrap_err().kind,
            ParseErrorKind::UnknownSection("bogus".into())
        );
        assert_eq!(
            TestCase::parse("-- asm\nexit\n").unwrap_err().kind,
            ParseErrorKind::Expectation
        );
        assert_eq!(
            TestCase::parse("-- result\n1\n").unwrap_err().kind,
            ParseErrorKind::NoProgram
        );
        assert_eq!(parse_u64("-1"), Some(u64::MAX));
        assert_eq!(parse_u64("0xffffffffffffffff"), Some(u64::MAX));
        assert_eq!(parse_u64("18446744073709551616"), None);
    }
}
