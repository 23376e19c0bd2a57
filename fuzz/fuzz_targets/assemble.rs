//! Any text: both assemblers return slots or an error with a position.
#![no_main]

use bpfvm_isa::asm::{Dialect, assemble};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = assemble(text, Dialect::Llvm);
        let _ = assemble(text, Dialect::Conformance);
    }
});
