//! Any bytes: program validation returns a program or a typed error, and a
//! valid program disassembles and re-assembles to itself.
#![no_main]

use bpfvm_isa::asm::{Dialect, assemble};
use bpfvm_isa::disasm::{Syntax, disassemble};
use bpfvm_isa::Program;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(prog) = Program::from_bytes(data) {
        let text = disassemble(prog.slots(), Syntax::Conformance);
        let again = assemble(&text, Dialect::Conformance).expect("disassembly re-assembles");
        assert_eq!(again, prog.slots());
    }
});
