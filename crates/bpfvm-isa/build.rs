//! Generates the opcode table from `isa-spec/opcodes.csv`, the one
//! machine-readable description of every encoding. The decoder's validity
//! rules, the per-group conformance report and the docs all read this table.

use std::fmt::Write as _;
use std::path::PathBuf;

fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

fn rule(field: &str, operand_word: &str, line: usize) -> String {
    if field == operand_word {
        return "FieldRule::Operand".to_string();
    }
    let value = if let Some(hex) = field.strip_prefix("0x") {
        i64::from_str_radix(hex, 16)
    } else {
        field.parse::<i64>()
    };
    match value {
        Ok(v) => format!("FieldRule::Fixed({v})"),
        Err(_) => panic!("isa-spec/opcodes.csv line {line}: bad field value {field:?}"),
    }
}

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let spec = manifest.join("../../isa-spec/opcodes.csv");
    println!("cargo::rerun-if-changed={}", spec.display());
    let text = std::fs::read_to_string(&spec)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", spec.display()));

    let mut rows: Vec<(u8, String)> = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let f = split_csv_line(line);
        assert_eq!(
            f.len(),
            12,
            "isa-spec/opcodes.csv line {}: expected 12 fields",
            i + 1
        );
        let opcode = u8::from_str_radix(f[0].trim_start_matches("0x"), 16)
            .unwrap_or_else(|_| panic!("isa-spec/opcodes.csv line {}: bad opcode", i + 1));
        let class = match f[5].as_str() {
            "LD" => "Class::Ld",
            "LDX" => "Class::Ldx",
            "ST" => "Class::St",
            "STX" => "Class::Stx",
            "ALU" => "Class::Alu",
            "JMP" => "Class::Jmp",
            "JMP32" => "Class::Jmp32",
            "ALU64" => "Class::Alu64",
            other => panic!("line {}: unknown class {other}", i + 1),
        };
        let group = match f[8].as_str() {
            "base32" => "Group::Base32",
            "base64" => "Group::Base64",
            "atomic32" => "Group::Atomic32",
            "atomic64" => "Group::Atomic64",
            "divmul32" => "Group::Divmul32",
            "divmul64" => "Group::Divmul64",
            "packet" => "Group::Packet",
            other => panic!("line {}: unknown group {other}", i + 1),
        };
        let version = match f[9].as_str() {
            "v1" => "IsaVersion::V1",
            "v2" => "IsaVersion::V2",
            "v3" => "IsaVersion::V3",
            "v4" => "IsaVersion::V4",
            other => panic!("line {}: unknown version {other}", i + 1),
        };
        let extension = match f[10].as_str() {
            "yes" => true,
            "no" => false,
            other => panic!("line {}: extension must be yes or no, not {other}", i + 1),
        };
        let entry = format!(
            "OpcodeInfo {{ opcode: 0x{opcode:02x}, dst: {}, src: {}, off: {}, imm: {}, class: {class}, mnemonic: {:?}, operands: {:?}, group: {group}, version: {version}, extension: {extension}, semantics: {:?} }}",
            rule(&f[1], "reg", i + 1),
            rule(&f[2], "reg", i + 1),
            rule(&f[3], "off", i + 1),
            rule(&f[4], "imm", i + 1),
            f[6],
            f[7],
            f[11],
        );
        rows.push((opcode, entry));
    }
    // Stable sort keeps the file's order within one opcode.
    rows.sort_by_key(|(op, _)| *op);

    let mut out = String::new();
    out.push_str("/// Every encoding of `isa-spec/opcodes.csv`, sorted by opcode byte.\n");
    out.push_str("pub static OPCODES: &[OpcodeInfo] = &[\n");
    for (_, e) in &rows {
        let _ = writeln!(out, "    {e},");
    }
    out.push_str("];\n\n");
    let index: Vec<u16> = (0..=256usize)
        .map(|op| rows.iter().take_while(|(o, _)| (*o as usize) < op).count() as u16)
        .collect();
    out.push_str(
        "/// `OPCODES[OPCODE_INDEX[op]..OPCODE_INDEX[op + 1]]` are the rows of opcode byte `op`.\n",
    );
    let _ = writeln!(
        out,
        "pub(crate) static OPCODE_INDEX: [u16; 257] = {index:?};"
    );

    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("opcode_table.rs");
    std::fs::write(&dest, out).unwrap_or_else(|e| panic!("cannot write {}: {e}", dest.display()));
}
