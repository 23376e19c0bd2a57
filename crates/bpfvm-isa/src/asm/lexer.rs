//! Splits source text into statements of tokens, each token with its
//! 1-based line and column (counted in characters).
//!
//! One lexer serves both dialects; they differ only in comments, statement
//! separators and the `%` register prefix:
//! - Conformance: `#` starts a comment anywhere; one statement per line;
//!   `%r1` is one identifier.
//! - LLVM: `//` starts a comment; `#` starts one at the start of a
//!   statement or after whitespace (so the kernel's `call name#1` lexes as
//!   tokens); `;` separates statements; `%=` is an operator.

use super::{AsmError, AsmErrorKind, Dialect};

/// A position in the source, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub line: usize,
    pub column: usize,
}

impl Span {
    pub(crate) fn error(self, kind: AsmErrorKind) -> AsmError {
        AsmError {
            line: self.line,
            column: self.column,
            kind,
        }
    }
}

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A name: mnemonic, register, label, directive (`.quad`).
    Ident(String),
    /// An unsigned number, decimal or `0x` hex; signs are separate tokens.
    Num(u64),
    /// An operator or punctuation mark (`+=`, `(`, `,`…).
    Punct(&'static str),
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub span: Span,
}

impl Token {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match &self.tok {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Num(n) => format!("`{n}`"),
            Tok::Punct(p) => format!("`{p}`"),
        }
    }
}

/// One statement: its tokens and the position just past its end (for
/// "expected …, found end of line" errors).
#[derive(Debug, Clone)]
pub(crate) struct Statement {
    pub tokens: Vec<Token>,
    pub end: Span,
}

/// Operators, longest first so that the first match is the longest.
const PUNCT: &[&str] = &[
    "<<=", ">>=", "+=", "-=", "*=", "/=", "|=", "&=", "%=", "^=", "==", "!=", ">=", "<=", "=", ">",
    "<", "&", "(", ")", "[", "]", "*", "+", "-", ",", ":", "#", "/", "%", "|", "^", "!",
];

/// Operators that a lone `s` turns into a signed one (`s>>=`, `s<`…).
const SIGNED: &[&str] = &[">>=", "/=", "%=", ">=", "<=", ">", "<"];

fn is_ident_start(c: char, dialect: Dialect) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '.' || (c == '%' && dialect == Dialect::Conformance)
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '$'
}

fn parse_number(text: &str) -> Option<u64> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

/// Whether `chars[i..]` starts with `p`.
fn at(chars: &[char], i: usize, p: &str) -> bool {
    p.chars()
        .enumerate()
        .all(|(k, pc)| chars.get(i + k) == Some(&pc))
}

/// Length of a listing prefix at the start of a line, to be skipped: the
/// pc `  12:` that [`crate::disasm::disassemble`] prints and, in the LLVM
/// dialect, the verifier log's opcode `(b7)` (after the pc or alone).
fn listing_prefix(chars: &[char], dialect: Dialect) -> usize {
    let ws = |mut i: usize| {
        while chars.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        i
    };
    let start = ws(0);
    let mut end = start;
    while chars.get(end).is_some_and(char::is_ascii_digit) {
        end += 1;
    }
    // Characters to skip so far, and where an opcode annotation would start.
    let (mut skip, at) = if end > start && chars.get(end) == Some(&':') {
        (end + 1, ws(end + 1))
    } else {
        (0, start)
    };
    let hex2 = |k: usize| chars.get(k).is_some_and(char::is_ascii_hexdigit);
    if dialect == Dialect::Llvm
        && chars.get(at) == Some(&'(')
        && hex2(at + 1)
        && hex2(at + 2)
        && chars.get(at + 3) == Some(&')')
    {
        skip = at + 4;
    }
    skip
}

/// Splits `source` into non-empty statements.
pub(crate) fn lex(source: &str, dialect: Dialect) -> Result<Vec<Statement>, AsmError> {
    let mut out = Vec::new();
    for (i, line) in source.lines().enumerate() {
        lex_line(line, i + 1, dialect, &mut out)?;
    }
    Ok(out)
}

fn lex_line(
    line: &str,
    line_no: usize,
    dialect: Dialect,
    out: &mut Vec<Statement>,
) -> Result<(), AsmError> {
    let chars: Vec<char> = line.chars().collect();
    let span = |i: usize| Span {
        line: line_no,
        column: i + 1,
    };
    let mut tokens = Vec::new();
    let mut i = listing_prefix(&chars, dialect);
    let mut after_space = true;
    let flush = |tokens: &mut Vec<Token>, out: &mut Vec<Statement>, end: Span| {
        if !tokens.is_empty() {
            out.push(Statement {
                tokens: std::mem::take(tokens),
                end,
            });
        }
    };
    while let Some(&c) = chars.get(i) {
        if c.is_whitespace() {
            after_space = true;
            i += 1;
            continue;
        }
        let comment = match dialect {
            Dialect::Conformance => c == '#',
            Dialect::Llvm => at(&chars, i, "//") || (c == '#' && after_space),
        };
        if comment {
            break;
        }
        if c == ';' && dialect == Dialect::Llvm {
            flush(&mut tokens, out, span(i));
            after_space = true;
            i += 1;
            continue;
        }
        after_space = false;
        let start = i;
        if is_ident_start(c, dialect) {
            let mut end = i + 1;
            while chars.get(end).is_some_and(|&c| is_ident_char(c)) {
                end += 1;
            }
            let word: String = chars.get(i..end).unwrap_or_default().iter().collect();
            i = end;
            // `s>` and friends: the signed comparison and ALU operators.
            let signed = (word == "s")
                .then(|| SIGNED.iter().find(|op| at(&chars, i, op)))
                .flatten();
            if let Some(op) = signed {
                let combined = match *op {
                    ">>=" => "s>>=",
                    "/=" => "s/=",
                    "%=" => "s%=",
                    ">=" => "s>=",
                    "<=" => "s<=",
                    ">" => "s>",
                    _ => "s<",
                };
                i += op.len();
                tokens.push(Token {
                    tok: Tok::Punct(combined),
                    span: span(start),
                });
                continue;
            }
            tokens.push(Token {
                tok: Tok::Ident(word),
                span: span(start),
            });
        } else if c.is_ascii_digit() {
            let mut end = i + 1;
            while chars.get(end).is_some_and(|&c| c.is_ascii_alphanumeric()) {
                end += 1;
            }
            let text: String = chars.get(i..end).unwrap_or_default().iter().collect();
            let value = parse_number(&text)
                .ok_or_else(|| span(start).error(AsmErrorKind::InvalidNumber { text }))?;
            i = end;
            tokens.push(Token {
                tok: Tok::Num(value),
                span: span(start),
            });
        } else if let Some(p) = PUNCT.iter().find(|p| at(&chars, i, p)) {
            i += p.len();
            tokens.push(Token {
                tok: Tok::Punct(p),
                span: span(start),
            });
        } else {
            return Err(span(start).error(AsmErrorKind::UnexpectedChar { ch: c }));
        }
    }
    flush(&mut tokens, out, span(chars.len()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str, d: Dialect) -> Vec<Vec<Tok>> {
        lex(s, d)
            .expect("lexes")
            .into_iter()
            .map(|st| st.tokens.into_iter().map(|t| t.tok).collect())
            .collect()
    }

    #[test]
    fn llvm_operators_and_comments() {
        use Tok::*;
        assert_eq!(
            toks(
                "if w1 s<= 0x10 goto -1 # c\nr0 s>>= r1; exit // x",
                Dialect::Llvm
            ),
            vec![
                vec![
                    Ident("if".into()),
                    Ident("w1".into()),
                    Punct("s<="),
                    Num(16),
                    Ident("goto".into()),
                    Punct("-"),
                    Num(1)
                ],
                vec![Ident("r0".into()), Punct("s>>="), Ident("r1".into())],
                vec![Ident("exit".into())],
            ]
        );
        assert_eq!(
            toks("  12: (0f) exit\n3: exit\n(95) exit", Dialect::Llvm),
            vec![vec![Ident("exit".into())]; 3]
        );
        assert_eq!(
            toks("call bpf_x#1", Dialect::Llvm),
            vec![vec![
                Ident("call".into()),
                Ident("bpf_x".into()),
                Punct("#"),
                Num(1)
            ]]
        );
    }

    #[test]
    fn conformance_registers_and_positions() {
        let st = lex("  ldxw %r0, [%r1-4] # x", Dialect::Conformance).expect("lexes");
        let t = &st[0].tokens;
        assert_eq!(t[1].tok, Tok::Ident("%r0".into()));
        assert_eq!(t[1].span, Span { line: 1, column: 8 });
        assert_eq!(t.len(), 8);
        let err = lex("mov %r0, 1\nmov %r0, 0x1g", Dialect::Conformance).expect_err("bad");
        assert_eq!((err.line, err.column), (2, 10));
    }
}
