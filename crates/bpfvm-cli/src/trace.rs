//! `bpfvm run --trace`: one line per executed instruction, with the
//! registers it changed — a learner's view of execution.

use bpfvm_interp::{Interpreter, TraceStep};
use bpfvm_runtime::{Fault, LoadedProgram, RunOptions};

/// Runs on the interpreter, printing each step as it executes.
pub fn run_traced(prog: &LoadedProgram, mem: &mut [u8], opts: &RunOptions) -> Result<u64, Fault> {
    println!("{:>5}  {:<2} {:<40} changed", "pc", "fr", "instruction");
    Interpreter::new().run_traced(prog, mem, opts, &mut |step: &TraceStep| {
        let changed: Vec<String> = step
            .changed
            .iter()
            .map(|(reg, value)| format!("{reg}={value:#x}"))
            .collect();
        println!(
            "{:>5}  {:<2} {:<40} {}",
            step.pc,
            step.frame,
            crate::insn_text(&step.insn),
            changed.join(" ")
        );
    })
}
