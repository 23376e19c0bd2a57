//! Any bytes as an ELF object: the loader returns an object or a typed error, and never
//! allocates past its limits. Seed the corpus with `conformance-tests/elf/*.o`.
#![no_main]

use bpfvm_object::{LoadOptions, load};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = LoadOptions {
        allow_unresolved_externs: true,
        ..LoadOptions::default()
    };
    let _ = load(data, &opts);
});
