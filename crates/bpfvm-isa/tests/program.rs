//! Whole-program validation: the load-time rejections the kernel also makes.

use bpfvm_isa::{Program, ProgramErrorKind, RawInsn};

fn prog(slots: &[RawInsn]) -> Result<Program, bpfvm_isa::ProgramError> {
    Program::from_slots(slots.to_vec())
}

const EXIT: RawInsn = RawInsn::new(0x95, 0, 0, 0, 0);

#[test]
fn rejects_with_pc() {
    // mov r10, 1
    let e = prog(&[RawInsn::new(0xb7, 10, 0, 0, 1), EXIT]).unwrap_err();
    assert_eq!((e.pc, e.kind), (0, ProgramErrorKind::FramePointerWrite));
    // ja +5 out of range
    let e = prog(&[RawInsn::new(0x05, 0, 0, 5, 0), EXIT]).unwrap_err();
    assert_eq!(
        (e.pc, e.kind),
        (0, ProgramErrorKind::JumpOutOfRange { target: 6, len: 2 })
    );
    // ja -2 before start
    let e = prog(&[EXIT, RawInsn::new(0x05, 0, 0, -3, 0)]).unwrap_err();
    assert_eq!(
        (e.pc, e.kind),
        (1, ProgramErrorKind::JumpOutOfRange { target: -1, len: 2 })
    );
    // jump into the second half of lddw
    let e = prog(&[
        RawInsn::new(0x05, 0, 0, 1, 0),
        RawInsn::new(0x18, 0, 0, 0, 1),
        RawInsn::default(),
        EXIT,
    ])
    .unwrap_err();
    assert_eq!(
        (e.pc, e.kind),
        (0, ProgramErrorKind::JumpIntoLddw { target: 2 })
    );
    // falls off the end
    let e = prog(&[RawInsn::new(0xb7, 0, 0, 0, 1)]).unwrap_err();
    assert_eq!((e.pc, e.kind), (0, ProgramErrorKind::FallsOffEnd));
    assert_eq!(prog(&[]).unwrap_err().kind, ProgramErrorKind::Empty);
    // cmpxchg writes r0, fetch-add writes src: r10 as src of a fetch is a write to r10.
    let e = prog(&[RawInsn::new(0xdb, 1, 10, 0, 0x01), EXIT]).unwrap_err();
    assert_eq!(e.kind, ProgramErrorKind::FramePointerWrite);
    // a plain store through r10 is fine
    assert!(prog(&[RawInsn::new(0x7a, 10, 0, -8, 1), EXIT]).is_ok());
    assert!(
        e.to_string()
            .starts_with("pc 0 (db a1 00 00 01 00 00 00): "),
        "{e}"
    );
}

#[test]
fn trailing_bytes() {
    let e = Program::from_bytes(&[0x95, 0, 0, 0, 0, 0, 0, 0, 1]).unwrap_err();
    assert_eq!(e.kind, ProgramErrorKind::TrailingBytes { len: 9 });
}

mod random {
    use bpfvm_isa::spec::OPCODES;
    use bpfvm_isa::{Program, RawInsn, slots_to_bytes};
    use proptest::prelude::*;

    /// Slots whose opcode is a real one (so validation gets past "unknown
    /// opcode") but whose other fields are arbitrary.
    fn near_valid_slot() -> impl Strategy<Value = RawInsn> {
        (
            0..OPCODES.len(),
            any::<u8>(),
            any::<u8>(),
            any::<i16>(),
            any::<i32>(),
        )
            .prop_map(|(row, d, s, off, imm)| {
                RawInsn::new(OPCODES[row].opcode, d & 0xf, s & 0xf, off, imm)
            })
    }

    /// A validated program re-encodes to its own bytes and every instruction start decodes.
    fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
        match Program::from_bytes(bytes) {
            Ok(p) => {
                prop_assert_eq!(p.to_bytes(), bytes.to_vec());
                let re: Vec<RawInsn> = p
                    .iter()
                    .flat_map(|(_, i)| i.encode().as_slice().to_vec())
                    .collect();
                prop_assert_eq!(re, p.slots().to_vec());
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn random_bytes_validate_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            check(&bytes)?;
        }

        #[test]
        fn near_valid_programs_validate_or_fail_cleanly(slots in prop::collection::vec(near_valid_slot(), 1..32)) {
            check(&slots_to_bytes(&slots))?;
        }
    }
}
