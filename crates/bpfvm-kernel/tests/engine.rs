//! The kernel engine against the real kernel (skips, saying why, without `bpf()`; fails
//! instead under `BPFVM_REQUIRE_KERNEL=1`).
#![cfg(target_os = "linux")]

use bpfvm_isa::asm::{Dialect, assemble};
use bpfvm_isa::{Program, RawInsn};
use bpfvm_kernel::{KernelEngine, Placement, kernel_available_for_test};
use bpfvm_runtime::{Engine, LoadedProgram, ProgramType, RunError, RunOptions};

macro_rules! engine {
    ($test:ident) => {
        if !kernel_available_for_test(stringify!($test)) {
            return;
        }
    };
}

fn slots(src: &str) -> Vec<RawInsn> {
    assemble(src, Dialect::Llvm).expect("assembles")
}

fn loaded(src: &str) -> LoadedProgram {
    let p = Program::from_slots(slots(src)).expect("valid");
    LoadedProgram::new(p, ProgramType::Conformance).expect("loads")
}

fn kernel() -> KernelEngine {
    KernelEngine::new().expect("probed")
}

#[test]
fn packet_memory_is_read_and_written_in_place() {
    engine!(packet_memory_is_read_and_written_in_place);
    let prog = loaded(
        "r0 = *(u32 *)(r1 + 0)\n\
         *(u8 *)(r1 + 4) = 0x77\n\
         r0 += r2\n\
         exit",
    );
    let mut mem = [1, 0, 0, 0, 9];
    assert_eq!(
        Placement::choose(prog.program().slots(), mem.len()),
        Placement::Packet
    );
    let r0 = kernel()
        .run(&prog, &mut mem, &RunOptions::new())
        .expect("runs");
    assert_eq!(r0, 1 + 5);
    assert_eq!(mem, [1, 0, 0, 0, 0x77]);
}

#[test]
fn the_full_64_bits_of_r0_come_back() {
    engine!(the_full_64_bits_of_r0_come_back);
    let prog = loaded("r0 = 0x123456789abcdef0 ll\nexit");
    assert_eq!(
        kernel().run(&prog, &mut [], &RunOptions::new()),
        Ok(0x1234_5678_9abc_def0)
    );
}

#[test]
fn atomics_on_memory_use_a_map_value() {
    engine!(atomics_on_memory_use_a_map_value);
    let prog = loaded(
        "r2 = 5\n\
         r2 = atomic_fetch_add((u64 *)(r1 + 0), r2)\n\
         r0 = r2\n\
         exit",
    );
    let mut mem = 40u64.to_le_bytes();
    assert_eq!(
        Placement::choose(prog.program().slots(), 8),
        Placement::MapValue
    );
    assert_eq!(kernel().run(&prog, &mut mem, &RunOptions::new()), Ok(40));
    assert_eq!(u64::from_le_bytes(mem), 45);
}

#[test]
fn legacy_packet_loads_run_as_a_socket_filter() {
    engine!(legacy_packet_loads_run_as_a_socket_filter);
    let prog = loaded("r0 = *(u16 *)skb[1]\nexit");
    assert_eq!(
        Placement::choose(prog.program().slots(), 4),
        Placement::SocketFilter
    );
    // Network byte order: bytes 1 and 2, big-endian.
    assert_eq!(
        kernel().run(&prog, &mut [0x11, 0x22, 0x33, 0x44], &RunOptions::new()),
        Ok(0x2233)
    );
    // Out of bounds: the kernel ends the program with 0.
    assert_eq!(
        kernel().run(&prog, &mut [0x11, 0x22], &RunOptions::new()),
        Ok(0)
    );
}

#[test]
fn the_verifier_refuses_with_its_reason() {
    engine!(the_verifier_refuses_with_its_reason);
    // Reads one byte past the 4 bytes of memory.
    let prog = loaded("r0 = *(u8 *)(r1 + 4)\nexit");
    let e = kernel()
        .run(&prog, &mut [0; 4], &RunOptions::new())
        .unwrap_err();
    let RunError::Refused { engine, reason } = &e else {
        panic!("{e}")
    };
    assert_eq!(*engine, "kernel");
    assert!(
        reason.contains("EACCES") && reason.contains("outside of the packet"),
        "{reason}"
    );
}

#[test]
fn helper_ids_are_the_kernels() {
    engine!(helper_ids_are_the_kernels);
    // Helper 5 is ktime_get_ns in the kernel: a large, growing value, not r1.
    let prog = loaded("r1 = 7\ncall 5\nexit");
    let a = kernel()
        .run(&prog, &mut [], &RunOptions::new())
        .expect("runs");
    let b = kernel()
        .run(&prog, &mut [], &RunOptions::new())
        .expect("runs");
    assert!(a != 7 && b > a, "{a} {b}");
}

#[test]
fn raw_bytecode_goes_to_the_kernel_unvalidated() {
    engine!(raw_bytecode_goes_to_the_kernel_unvalidated);
    // A jump past the end: bpfvm's loader rejects it; here the kernel does.
    let e = kernel()
        .run_slots(&slots("goto +5\nexit"), &mut [])
        .unwrap_err();
    assert!(matches!(e, RunError::Refused { .. }), "{e}");
    assert!(e.to_string().contains("jump out of range"), "{e}");
}
