//! File descriptors never leak: 10,000 kernel test runs, with fresh programs among them,
//! leave the process's open-fd count unchanged. Alone in its own test binary, so no other
//! test opens or closes descriptors while it counts.
#![cfg(target_os = "linux")]

use bpfvm_isa::Program;
use bpfvm_isa::asm::{Dialect, assemble};
use bpfvm_kernel::{KernelEngine, kernel_available_for_test};
use bpfvm_runtime::{Engine, LoadedProgram, ProgramType, RunOptions};

fn loaded(src: &str) -> LoadedProgram {
    let p = Program::from_slots(assemble(src, Dialect::Llvm).expect("assembles")).expect("valid");
    LoadedProgram::new(p, ProgramType::Conformance).expect("loads")
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("procfs").count()
}

#[test]
fn ten_thousand_runs_leak_no_file_descriptors() {
    if !kernel_available_for_test("ten_thousand_runs_leak_no_file_descriptors") {
        return;
    }
    let engine = KernelEngine::new().expect("probed");
    let cached = loaded("r0 = *(u8 *)(r1 + 0)\nexit");
    // Warm up: the probe's objects and the cached program exist before the count.
    engine
        .run(&cached, &mut [1], &RunOptions::new())
        .expect("runs");
    let before = open_fds();
    for i in 0..10_000u32 {
        if i % 10 == 0 {
            // A fresh program each time: load, map creation, run and drop of everything.
            let fresh = loaded("r0 = r2\nexit");
            assert_eq!(engine.run(&fresh, &mut [0; 3], &RunOptions::new()), Ok(3));
        } else {
            let mut mem = [i as u8];
            assert_eq!(
                engine.run(&cached, &mut mem, &RunOptions::new()),
                Ok(u64::from(i as u8))
            );
        }
    }
    // A refused program leaves nothing open either.
    let bad = loaded("r0 = *(u64 *)(r1 + 0)\nexit");
    assert!(engine.run(&bad, &mut [0; 2], &RunOptions::new()).is_err());
    drop(bad);
    assert_eq!(open_fds(), before);
}
