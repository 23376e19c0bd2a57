//! The decoder checked against `isa-spec/opcodes.csv`: every listed encoding
//! decodes (and re-encodes to itself), every unlisted opcode byte and every
//! non-zero reserved field is rejected with an error naming the field.

use bpfvm_isa::spec::{self, FieldRule, OPCODES};
use bpfvm_isa::{DecodeErrorKind, Field, Insn, RawInsn, decode_one};

const OPERAND_SAMPLES: [(u8, u8, i16, i32); 4] = [
    (0, 0, 0, 0),
    (1, 2, 3, 4),
    (10, 9, -1, -1),
    (5, 10, i16::MIN, i32::MAX),
];

fn decode(raw: RawInsn) -> Result<Insn, DecodeErrorKind> {
    decode_one(&[raw, RawInsn::default()])
}

#[test]
fn csv_rows_all_reach_the_table() {
    let csv = include_str!("../../../isa-spec/opcodes.csv");
    let rows = csv.lines().skip(1).filter(|l| !l.trim().is_empty()).count();
    assert_eq!(rows, OPCODES.len());
    // Spot checks against RFC 9669 (independent of the CSV).
    let row = spec::lookup(&RawInsn::new(0x3f, 1, 2, 1, 0)).expect("sdiv64 reg");
    assert_eq!(
        (row.mnemonic, row.group.name(), row.version.name()),
        ("sdiv", "divmul64", "v4")
    );
    let row = spec::lookup(&RawInsn::new(0xc3, 1, 2, 0, 0xf1)).expect("cmpxchg32");
    assert_eq!(row.group.name(), "atomic32");
    assert!(
        spec::lookup(&RawInsn::new(0x8d, 2, 0, 0, 0))
            .expect("callx")
            .extension
    );
}

#[test]
fn every_listed_encoding_decodes_and_round_trips() {
    for row in OPCODES {
        for (dst, src, off, imm) in OPERAND_SAMPLES {
            let raw = row.example(dst, src, off, imm);
            let insn = decode(raw).unwrap_or_else(|e| panic!("{} ({raw:?}): {e}", row.mnemonic));
            let enc = insn.encode();
            assert_eq!(enc.as_slice()[0], raw, "{} re-encodes", row.mnemonic);
            assert_eq!(
                insn.info(),
                Some(row),
                "{} maps back to its row",
                row.mnemonic
            );
        }
    }
}

#[test]
fn every_unlisted_opcode_byte_is_rejected() {
    let mut unlisted = 0;
    for op in 0..=255u8 {
        if !spec::rows_for(op).is_empty() {
            continue;
        }
        unlisted += 1;
        for (dst, src, off, imm) in OPERAND_SAMPLES {
            let raw = RawInsn::new(op, dst % 11, src % 11, off, imm);
            assert_eq!(
                decode(raw),
                Err(DecodeErrorKind::UnknownOpcode { opcode: op })
            );
        }
    }
    // 256 bytes minus the distinct opcodes of the table.
    assert!(unlisted > 100, "{unlisted}");
}

#[test]
fn every_nonzero_reserved_field_is_rejected() {
    let mut checked = 0;
    for row in OPCODES {
        let base = row.example(1, 2, 3, 4);
        let fields = [
            (Field::Dst, row.dst),
            (Field::Src, row.src),
            (Field::Off, row.off),
            (Field::Imm, row.imm),
        ];
        for (field, rule) in fields {
            let FieldRule::Fixed(fixed) = rule else {
                continue;
            };
            for delta in [1i64, 3, 0x10, -1] {
                let mut raw = base;
                let v = fixed.wrapping_add(delta);
                match field {
                    Field::Dst => raw.dst = (v & 0xf) as u8,
                    Field::Src => raw.src = (v & 0xf) as u8,
                    Field::Off => raw.off = v as i16,
                    Field::Imm => raw.imm = v as i32,
                }
                if spec::lookup(&raw).is_some() {
                    continue; // the new value selects another listed instruction
                }
                checked += 1;
                match decode(raw) {
                    Err(
                        DecodeErrorKind::ReservedField { field: f, .. }
                        | DecodeErrorKind::InvalidField { field: f, .. },
                    ) => {
                        assert_eq!(f, field, "{}: wrong field named for {raw:?}", row.mnemonic)
                    }
                    other => panic!(
                        "{}: {raw:?} with {field} changed gave {other:?}",
                        row.mnemonic
                    ),
                }
            }
        }
    }
    assert!(checked > 500, "{checked}");
}

#[test]
fn registers_above_r10_are_rejected() {
    for row in OPCODES {
        if row.dst == FieldRule::Operand {
            let mut raw = row.example(1, 2, 3, 4);
            raw.dst = 11;
            assert_eq!(
                decode(raw),
                Err(DecodeErrorKind::InvalidRegister {
                    field: Field::Dst,
                    value: 11
                })
            );
        }
        if row.src == FieldRule::Operand {
            let mut raw = row.example(1, 2, 3, 4);
            raw.src = 15;
            assert_eq!(
                decode(raw),
                Err(DecodeErrorKind::InvalidRegister {
                    field: Field::Src,
                    value: 15
                })
            );
        }
    }
}

#[test]
fn lddw_pairing() {
    let first = RawInsn::new(0x18, 1, 0, 0, 7);
    assert_eq!(decode_one(&[first]), Err(DecodeErrorKind::LddwTruncated));
    let bad = RawInsn::new(0x18, 0, 0, 0, 0);
    assert!(matches!(
        decode_one(&[first, bad]),
        Err(DecodeErrorKind::LddwBadSecondSlot {
            field: Field::Imm,
            value: 0x18
        })
    ));
    let bad = RawInsn::new(0, 3, 0, 0, 0);
    assert!(matches!(
        decode_one(&[first, bad]),
        Err(DecodeErrorKind::LddwBadSecondSlot {
            field: Field::Dst,
            ..
        })
    ));
    let ok = decode_one(&[first, RawInsn::new(0, 0, 0, 0, 1)]).expect("valid lddw");
    assert_eq!(
        ok,
        Insn::LdDw {
            dst: bpfvm_isa::Reg::R1,
            kind: bpfvm_isa::LdDwKind::Imm,
            imm: 7,
            next_imm: 1
        }
    );
}
