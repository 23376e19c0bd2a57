//! Any valid program with any memory: the checked interpreter returns r0 or
//! a typed fault (a budget keeps loops finite).
#![no_main]

use bpfvm_interp::Interpreter;
use bpfvm_isa::Program;
use bpfvm_runtime::{LoadedProgram, ProgramType, RunOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (mem_len, rest) = data.split_at(data.len().min(1));
    let mem_len = mem_len.first().copied().unwrap_or(0) as usize;
    let (mem, code) = rest.split_at(rest.len().min(mem_len));
    let Ok(program) = Program::from_bytes(code) else { return };
    let Ok(prog) = LoadedProgram::new(program, ProgramType::Conformance) else { return };
    let mut mem = mem.to_vec();
    let opts = RunOptions { budget: Some(100_000), ..RunOptions::default() };
    let _ = Interpreter::new().run(&prog, &mut mem, &opts);
});
