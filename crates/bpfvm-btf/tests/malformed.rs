//! Malformed `.BTF` input: each defect is refused with the error that names
//! it and where it is. Hand-assembled bytes, so the expected error is known.

use bpfvm_btf::{Btf, BtfError, IntEncoding, Kind, Member, Type, TypeId, TypeKind};

/// Assembles a `.BTF` section from type words and a string table.
fn btf_bytes(types: &[u32], strings: &[u8]) -> Vec<u8> {
    let type_len = (types.len() * 4) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(&0xeb9fu16.to_le_bytes());
    out.extend_from_slice(&[1, 0]);
    for w in [24, 0, type_len, type_len, strings.len() as u32] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    for w in types {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(strings);
    out
}

fn info(kind: u32, vlen: u32, kflag: bool) -> u32 {
    (kind << 24) | vlen | ((kflag as u32) << 31)
}

const STRS: &[u8] = b"\0int\0s\0";
/// [1] INT 'int' size=4 signed
const INT: [u32; 4] = [1, 1 << 24, 4, (1 << 24) | 32];

#[test]
fn well_formed_baseline_parses() {
    let mut t = INT.to_vec();
    t.extend([5, info(4, 1, false), 4, 1, 1, 0]); // struct s { int int; }
    let btf = Btf::parse(&btf_bytes(&t, STRS)).unwrap();
    assert_eq!(btf.len(), 3);
    assert_eq!(btf.format_c(TypeId(2)), "struct s {\n\tint int;\n};");
}

#[test]
fn truncated_header() {
    let b = btf_bytes(&INT, STRS);
    assert!(matches!(
        Btf::parse(&b[..10]),
        Err(BtfError::Truncated {
            what: "BTF header",
            available: 10,
            ..
        })
    ));
    assert!(matches!(Btf::parse(&[]), Err(BtfError::Truncated { .. })));
}

#[test]
fn bad_magic_version_flags() {
    let mut b = btf_bytes(&INT, STRS);
    b[0] = 0x12;
    assert!(matches!(
        Btf::parse(&b),
        Err(BtfError::BadMagic { found: 0xeb12, .. })
    ));
    let mut b = btf_bytes(&INT, STRS);
    b.swap(0, 1);
    assert!(matches!(Btf::parse(&b), Err(BtfError::BigEndian { .. })));
    let mut b = btf_bytes(&INT, STRS);
    b[2] = 2;
    assert!(matches!(
        Btf::parse(&b),
        Err(BtfError::UnsupportedVersion { version: 2, .. })
    ));
    let mut b = btf_bytes(&INT, STRS);
    b[3] = 1;
    assert!(matches!(
        Btf::parse(&b),
        Err(BtfError::UnsupportedFlags { flags: 1, .. })
    ));
}

#[test]
fn bad_header_len_and_sections() {
    let mut b = btf_bytes(&INT, STRS);
    b[4..8].copy_from_slice(&16u32.to_le_bytes());
    assert!(matches!(
        Btf::parse(&b),
        Err(BtfError::BadHeaderLen { hdr_len: 16, .. })
    ));
    let mut b = btf_bytes(&INT, STRS);
    b[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(Btf::parse(&b), Err(BtfError::BadHeaderLen { .. })));
    // string section runs past the end
    let mut b = btf_bytes(&INT, STRS);
    b[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        Btf::parse(&b),
        Err(BtfError::SectionOutOfBounds { what: "string", .. })
    ));
    // type section overlapping the strings
    let mut b = btf_bytes(&INT, STRS);
    b[16..20].copy_from_slice(&8u32.to_le_bytes());
    b[20..24].copy_from_slice(&4u32.to_le_bytes());
    assert!(matches!(
        Btf::parse(&b),
        Err(BtfError::SectionOutOfBounds { .. })
    ));
    // misaligned type section
    let mut b = btf_bytes(&INT, STRS);
    b[8..12].copy_from_slice(&2u32.to_le_bytes());
    b[12..16].copy_from_slice(&0u32.to_le_bytes());
    assert!(matches!(
        Btf::parse(&b),
        Err(BtfError::Misaligned { offset: 26, .. })
    ));
}

#[test]
fn bad_string_sections() {
    for (strs, reason) in [
        (&b""[..], "it is empty"),
        (b"x\0", "it does not start with the empty string"),
        (b"\0int", "its last string is not NUL-terminated"),
    ] {
        let b = btf_bytes(&[], strs);
        match Btf::parse(&b) {
            Err(BtfError::BadStringSection { reason: r, offset }) => {
                assert_eq!(r, reason);
                assert_eq!(offset, 24);
            }
            other => panic!("{strs:?}: {other:?}"),
        }
    }
}

#[test]
fn unknown_kind_names_id_and_offset() {
    let mut t = INT.to_vec();
    t.extend([0, info(25, 0, false), 0]);
    match Btf::parse(&btf_bytes(&t, STRS)) {
        Err(BtfError::UnknownKind { id, offset, kind }) => {
            assert_eq!((id, offset, kind), (2, 24 + 16, 25));
        }
        other => panic!("{other:?}"),
    }
    // kind 0 is not a valid record either
    let t = [0, 0, 0];
    assert!(matches!(
        Btf::parse(&btf_bytes(&t, STRS)),
        Err(BtfError::UnknownKind { id: 1, kind: 0, .. })
    ));
}

#[test]
fn absurd_vlen_is_refused_before_allocating() {
    // a struct claiming 16M members in a few bytes
    let t = [0, info(4, 0x00ff_ffff, false), 8, 0, 0];
    match Btf::parse(&btf_bytes(&t, STRS)) {
        Err(BtfError::TypeTruncated {
            id,
            needed,
            available,
            ..
        }) => {
            assert_eq!(id, 1);
            assert_eq!(needed, 0x00ff_ffff * 12);
            assert_eq!(available, 8);
        }
        other => panic!("{other:?}"),
    }
    // a record cut in its fixed part
    let t = [0, info(2, 0, false)];
    assert!(matches!(
        Btf::parse(&btf_bytes(&t, STRS)),
        Err(BtfError::TypeTruncated { id: 1, .. })
    ));
}

#[test]
fn dangling_type_ids_are_named() {
    let mut t = INT.to_vec();
    t.extend([5, info(4, 2, false), 8, 0, 1, 0, 0, 7, 32]); // member 1 -> [7]
    match Btf::parse(&btf_bytes(&t, STRS)) {
        Err(BtfError::BadTypeRef {
            id,
            what,
            target,
            max,
        }) => {
            assert_eq!((id, target, max), (2, 7, 2));
            assert_eq!(what, "member 1");
        }
        other => panic!("{other:?}"),
    }
    let mut t = INT.to_vec();
    t.extend([0, info(2, 0, false), 99]); // ptr -> [99]
    assert!(matches!(
        Btf::parse(&btf_bytes(&t, STRS)),
        Err(BtfError::BadTypeRef {
            id: 2,
            target: 99,
            ..
        })
    ));
}

#[test]
fn bad_string_offsets_are_named() {
    let t = [100, 1 << 24, 4, 32];
    assert!(matches!(
        Btf::parse(&btf_bytes(&t, STRS)),
        Err(BtfError::BadStringRef {
            id: 1,
            off: 100,
            ..
        })
    ));
    let mut t = INT.to_vec();
    t.extend([0, info(6, 1, false), 4, 999, 0]); // enumerator name
    match Btf::parse(&btf_bytes(&t, STRS)) {
        Err(BtfError::BadStringRef { id, what, off, .. }) => {
            assert_eq!((id, off), (2, 999));
            assert_eq!(what, "enumerator 0 name");
        }
        other => panic!("{other:?}"),
    }
    // a name that is not UTF-8
    let t = [1, 1 << 24, 4, 32];
    assert!(matches!(
        Btf::parse(&btf_bytes(&t, b"\0\xff\xfe\0")),
        Err(BtfError::BadStringRef { id: 1, off: 1, .. })
    ));
}

#[test]
fn loops_are_refused() {
    // [1] ptr -> [2] const -> [1]
    let t = [0, info(2, 0, false), 2, 0, info(10, 0, false), 1];
    assert!(matches!(
        Btf::parse(&btf_bytes(&t, STRS)),
        Err(BtfError::TypeLoop { .. })
    ));
    // [1] typedef -> itself
    let t = [1, info(8, 0, false), 1];
    assert!(matches!(
        Btf::parse(&btf_bytes(&t, STRS)),
        Err(BtfError::TypeLoop { id: 1 })
    ));
    // [1] struct s { [2] x; }, [2] array of [1]: contains itself by value
    let t = [
        5,
        info(4, 1, false),
        8,
        1,
        2,
        0,
        0,
        info(3, 0, false),
        0,
        1,
        1,
        2,
    ];
    assert!(matches!(
        Btf::parse(&btf_bytes(&t, STRS)),
        Err(BtfError::TypeLoop { .. })
    ));
    // but a struct pointing to itself is fine: struct s { struct s *next; }
    let t = [5, info(4, 1, false), 8, 1, 2, 0, 0, info(2, 0, false), 1];
    Btf::parse(&btf_bytes(&t, STRS)).unwrap();
}

#[test]
fn bad_field_values() {
    // INT with reserved bits set
    let t = [1, 1 << 24, 4, 0x0000_0100 | 32];
    assert!(matches!(
        Btf::parse(&btf_bytes(&t, STRS)),
        Err(BtfError::InvalidType { id: 1, .. })
    ));
    // FUNC with linkage 3
    let t = [0, info(13, 0, false), 0, 1, info(12, 3, false), 1];
    assert!(matches!(
        Btf::parse(&btf_bytes(&t, STRS)),
        Err(BtfError::InvalidType { id: 2, .. })
    ));
    // VAR with linkage 7
    let mut t = INT.to_vec();
    t.extend([1, info(14, 0, false), 1, 7]);
    assert!(matches!(
        Btf::parse(&btf_bytes(&t, STRS)),
        Err(BtfError::InvalidType { id: 2, .. })
    ));
}

#[test]
fn errors_read_well() {
    let t = [0, info(4, 0x00ff_ffff, false), 8, 0, 0];
    let msg = Btf::parse(&btf_bytes(&t, STRS)).unwrap_err().to_string();
    assert_eq!(
        msg,
        "type [1] at byte offset 24: members needs 201326580 bytes but the type section has 8 left"
    );
}

#[test]
fn queries_terminate_on_edited_loops() {
    // Edits are not validated; queries must still terminate.
    let mut btf = Btf::new();
    let a = btf.add_type(Type::new(0, TypeKind::Typedef { target: TypeId(2) }));
    let b = btf.add_type(Type::new(0, TypeKind::Const { target: a }));
    assert!(btf.validate().is_err());
    let end = btf.skip_mods_and_typedefs(a);
    assert!(end == a || end == b);
    assert!(matches!(btf.size_of(a), Err(BtfError::TooDeep { .. })));
    let _ = btf.format_c(a);
    let _ = btf.format_c(b);
    // an anonymous struct containing itself by value
    let s = btf.add_type(Type::new(
        0,
        TypeKind::Struct {
            size: 4,
            members: vec![Member {
                name_off: 0,
                ty: TypeId(3),
                bit_offset: 0,
                bitfield_size: 0,
            }],
        },
    ));
    assert_eq!(s, TypeId(3));
    let _ = btf.format_c(s);
    assert_eq!(btf.align_of(s), None);
}

#[test]
fn size_overflow_is_an_error() {
    let mut btf = Btf::new();
    let name = btf.add_string("int");
    let int = btf.add_type(Type::new(
        name,
        TypeKind::Int {
            size: 4,
            encoding: IntEncoding::default(),
            bit_offset: 0,
            bits: 32,
        },
    ));
    let big = btf.add_type(Type::new(
        0,
        TypeKind::Array {
            elem: int,
            index: int,
            nelems: 0x4000_0000,
        },
    ));
    assert!(matches!(
        btf.size_of(big),
        Err(BtfError::SizeOverflow { .. })
    ));
    let ok = btf.add_type(Type::new(
        0,
        TypeKind::Array {
            elem: int,
            index: int,
            nelems: 0x3fff_ffff,
        },
    ));
    assert_eq!(btf.size_of(ok).unwrap(), 0xffff_fffc);
    assert!(matches!(
        btf.size_of(TypeId(99)),
        Err(BtfError::UnknownTypeId { id: 99, .. })
    ));
    assert_eq!(btf.find(Kind::Int, "int"), Some(int));
    assert_eq!(btf.find(Kind::Struct, "int"), None);
}

#[test]
fn add_string_deduplicates() {
    let bytes = btf_bytes(&INT, STRS);
    let mut btf = Btf::parse(&bytes).unwrap();
    assert_eq!(btf.add_string(""), 0);
    assert_eq!(btf.add_string("int"), 1);
    let x = btf.add_string("xyz");
    assert_eq!(btf.string(x), Some("xyz"));
    assert_eq!(btf.add_string("xyz"), x);
    assert_eq!(btf.add_string("ab\0cd"), btf.add_string("ab"));
    assert!(btf.type_mut(TypeId::VOID).is_none());
    let again = Btf::parse(&btf.to_bytes()).unwrap();
    assert_eq!(again, btf);
}

/// Types shared along exponentially many paths (a DAG, valid BTF): printing
/// and alignment stay cheap and bounded.
#[test]
fn dags_of_shared_types_stay_cheap() {
    let start = std::time::Instant::now();
    let mut btf = Btf::new();
    let name = btf.add_string("int");
    let int = btf.add_type(Type::new(
        name,
        TypeKind::Int {
            size: 4,
            encoding: IntEncoding::default(),
            bit_offset: 0,
            bits: 32,
        },
    ));
    let a = btf.add_string("a");
    let b = btf.add_string("b");
    // 60 levels of anonymous structs with two members of the level below
    let mut prev = int;
    for _ in 0..60 {
        let m = |name_off| Member {
            name_off,
            ty: prev,
            bit_offset: 0,
            bitfield_size: 0,
        };
        prev = btf.add_type(Type::new(
            0,
            TypeKind::Struct {
                size: 4,
                members: vec![m(a), m(b)],
            },
        ));
    }
    // ... and 60 levels of function pointers taking two of the level below
    let mut fptr = int;
    for _ in 0..60 {
        let proto = btf.add_type(Type::new(
            0,
            TypeKind::FuncProto {
                ret: int,
                params: vec![
                    bpfvm_btf::Param {
                        name_off: 0,
                        ty: fptr,
                    },
                    bpfvm_btf::Param {
                        name_off: 0,
                        ty: fptr,
                    },
                ],
            },
        ));
        fptr = btf.add_type(Type::new(0, TypeKind::Ptr { target: proto }));
    }
    btf.validate().expect("a DAG is valid BTF");
    let btf = Btf::parse(&btf.to_bytes()).expect("round trip");
    assert_eq!(btf.align_of(prev), Some(4));
    for id in [prev, fptr] {
        let c = btf.format_c(id);
        assert!(c.len() <= (4 << 20) + 4096, "{} bytes", c.len());
        assert!(c.contains("/* ... */"), "output was cut");
    }
    assert!(start.elapsed().as_secs() < 30, "took {:?}", start.elapsed());
}

/// A member at a bit offset of billions: the padding it implies is cut.
#[test]
fn huge_padding_is_cut() {
    let mut t = INT.to_vec();
    t.extend([5, info(4, 1, false), 0x2000_0000, 1, 1, 0xf000_0000]);
    let btf = Btf::parse(&btf_bytes(&t, STRS)).expect("valid");
    let c = btf.format_c(TypeId(2));
    assert!(c.starts_with("struct s {\n\tlong: 64;"));
    assert!(c.len() <= (4 << 20) + 4096);
    assert!(c.contains("/* ... */"));
}
