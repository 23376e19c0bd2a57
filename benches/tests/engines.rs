//! The programs of `benches/engines.rs` compute the same result on every engine, equal
//! to native Rust and to hand-computed values, and execute exactly the instructions the
//! benchmark's throughput claims (counted by bpfvm's interpreter, which counts exactly).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bpfvm_benches::engines::{
    CALLS_N, EngineProgram, FNV_LEN, SUM_N, compile_source, lookups_insns, lookups_native,
    native_map, parser_input, parser_native, programs,
};
use bpfvm_benches::maps::{
    PACKET_LEN, PROG_OPS, filled_hash, hash_lookup_source, load, lookup_sum,
};
use bpfvm_interp::Interpreter;
use bpfvm_isa::Program;
use bpfvm_jit::Jit;
use bpfvm_runtime::{
    Context, Engine, FaultKind, LoadedProgram, Packet, ProgramType, RunError, RunOptions, SkBuff,
};

fn loaded(p: &EngineProgram) -> LoadedProgram {
    let program = Program::from_slots(p.slots().expect("assembles")).expect("a program");
    LoadedProgram::new(program, ProgramType::Conformance).expect("loads")
}

/// rbpf's three engines on `bytes` with `mem` in `r1`.
fn rbpf_all(name: &str, bytes: &[u8], mem: &[u8]) -> Vec<(&'static str, Option<u64>)> {
    rbpf_engines(name, bytes, mem, true)
}

/// `x86`: whether to include rbpf's x86 JIT, which writes into one fixed 4 KiB page and
/// panics when the code does not fit.
fn rbpf_engines(
    name: &str,
    bytes: &[u8],
    mem: &[u8],
    x86: bool,
) -> Vec<(&'static str, Option<u64>)> {
    let mut out = Vec::new();
    #[cfg(windows)]
    let _ = x86;
    let mut vm = rbpf::EbpfVmMbuff::new(Some(bytes)).expect("rbpf accepts it");
    out.push((
        "rbpf_interp",
        Some(vm.execute_program(mem, &[]).expect(name)),
    ));
    // rbpf has no x86 JIT on Windows.
    #[cfg(not(windows))]
    if x86 {
        let mut raw = rbpf::EbpfVmRaw::new(Some(bytes)).expect("rbpf accepts it");
        raw.jit_compile().expect("rbpf's x86 JIT compiles it");
        let mut copy = mem.to_vec();
        // SAFETY: the program was checked by rbpf's interpreter above on the same input
        // (it stays inside it); the copy outlives the call.
        let x86 = unsafe { raw.execute_program_jit(&mut copy) }.expect(name);
        out.push(("rbpf_jit_x86", Some(x86)));
    }
    let cranelift = match vm.cranelift_compile() {
        Ok(()) => {
            let mut copy = mem.to_vec();
            Some(
                vm.execute_program_cranelift(&mut copy, &mut [])
                    .expect(name),
            )
        }
        Err(e) => {
            eprintln!("{name}: rbpf's Cranelift JIT refuses it: {e}");
            None
        }
    };
    out.push(("rbpf_cranelift", cranelift));
    out
}

#[test]
fn every_engine_computes_the_expected_result_in_the_claimed_instructions() {
    for p in programs() {
        let data = p.input.bytes().to_vec();
        assert_eq!((p.native)(&data), p.expected, "{}: native", p.name);
        let prog = loaded(&p);

        let (r, n) =
            Interpreter::new().run_with_count(&prog, &mut data.clone(), &RunOptions::new());
        assert_eq!(r, Ok(p.expected), "{}: bpfvm interp", p.name);
        assert_eq!(n, p.insns, "{}: instructions per run", p.name);
        assert_eq!(
            Jit::new().run(&prog, &mut data.clone(), &RunOptions::new()),
            Ok(p.expected),
            "{}: bpfvm jit",
            p.name
        );

        let bytes = p.bytes().unwrap();
        for (engine, got) in rbpf_all(p.name, &bytes, &data) {
            match got {
                Some(v) => assert_eq!(v, p.expected, "{}: {engine}", p.name),
                // rbpf 0.4.1's Cranelift backend only calls helpers (no `src` 1 calls).
                None => assert_eq!((p.name, engine), ("local_calls_1000", "rbpf_cranelift")),
            }
        }
    }
}

#[test]
fn hand_computed_values() {
    let all = programs();
    let by = |name: &str| all.iter().find(|p| p.name == name).unwrap().clone();
    assert_eq!(by("sum_loop_1e5").expected, 5_000_050_000);
    assert_eq!(SUM_N, 100_000);
    assert_eq!(by("sum_loop_1e5").insns, 300_005);
    assert_eq!(by("fnv1a_1KiB").insns, 9 + 6 * u64::from(FNV_LEN));
    // Eight packet kinds, two of which (SYN to 80 and to 443) count: 32 / 8 * 2.
    assert_eq!(parser_native(&parser_input()), 8);
    assert_eq!(by("packet_parser_32").expected, 8);
    // Per 8 packets: SYN to 80: 22 instructions, to 443: 23, SYN-ACK: 21, UDP: 15,
    // IPv6: 8, fragment: 13, IP options: 10, port 22: 19 (131); 4 rounds, plus 6.
    assert_eq!(by("packet_parser_32").insns, 4 * 131 + 6);
    // Σ_{i=1}^{N} (((3i) ^ 0x5a) << 1) + 1, summed independently here.
    let want: u64 = (1..=u64::from(CALLS_N))
        .map(|i| (((3 * i) ^ 0x5a) << 1) + 1)
        .sum();
    assert_eq!(by("local_calls_1000").expected, want);
    assert_eq!(by("local_calls_1000").insns, 13_006);
    assert_eq!(by("switch_16_1000").insns, 14_006);
}

#[test]
fn a_short_packet_stops_the_parser() {
    let parser = programs()
        .into_iter()
        .find(|p| p.name == "packet_parser_32")
        .unwrap();
    let prog = loaded(&parser);
    // Only 2.5 packets: the third fails the bounds check.
    let mut data = parser_input()[..160].to_vec();
    assert_eq!(parser_native(&data), 2);
    // The entry computes the end from the full length, so run with a zero tail instead:
    // packets 3.. are all-zero, not IPv4, and counted by neither.
    data.resize(parser_input().len(), 0);
    assert_eq!(
        Interpreter::new().run(&prog, &mut data.clone(), &RunOptions::new()),
        Ok(2)
    );
    assert_eq!(Jit::new().run(&prog, &mut data, &RunOptions::new()), Ok(2));
}

fn skb_run(engine: &dyn Engine, prog: &LoadedProgram, opts: &RunOptions) -> Result<u64, RunError> {
    let mut skb = SkBuff::new();
    let mut packet = Packet::new(&[0; PACKET_LEN], 0, 0);
    let mut ctx = Context::SkBuff {
        skb: &mut skb,
        packet: &mut packet,
    };
    engine.run_context(prog, &mut ctx, opts)
}

#[test]
fn map_lookup_program_on_both_bpfvm_engines_and_native() {
    let prog = load(&hash_lookup_source(PROG_OPS), vec![filled_hash().unwrap()]).unwrap();
    assert_eq!(lookups_native(&native_map()), lookup_sum(PROG_OPS));
    let interp = Interpreter::new();
    for engine in [&interp as &dyn Engine, &Jit::new()] {
        assert_eq!(
            skb_run(engine, &prog, &RunOptions::new()),
            Ok(lookup_sum(PROG_OPS))
        );
    }
    // The interpreter's budget is exact: the program takes lookups_insns() instructions.
    let budget = |n| RunOptions {
        budget: Some(n),
        ..RunOptions::new()
    };
    assert_eq!(
        skb_run(&interp, &prog, &budget(lookups_insns())),
        Ok(lookup_sum(PROG_OPS))
    );
    match skb_run(&interp, &prog, &budget(lookups_insns() - 1)) {
        Err(RunError::Fault(f)) => {
            assert!(matches!(f.kind, FaultKind::BudgetExhausted { .. }), "{f:?}")
        }
        other => panic!("expected the budget to run out, got {other:?}"),
    }
}

#[test]
fn compile_programs_have_the_asked_size_and_run_everywhere() {
    for n in [10usize, 100, 1000, 10_000] {
        let slots = bpfvm_benches::maps::assemble_source(&compile_source(n)).unwrap();
        assert_eq!(slots.len(), n);
        let program = Program::from_slots(slots.clone()).unwrap();
        let prog = LoadedProgram::new(program, ProgramType::Conformance).unwrap();
        let want = Interpreter::new()
            .run(&prog, &mut [], &RunOptions::new())
            .unwrap();
        assert_eq!(Jit::new().run(&prog, &mut [], &RunOptions::new()), Ok(want));
        let bytes = bpfvm_isa::slots_to_bytes(&slots);
        for (engine, got) in rbpf_engines("compile", &bytes, &[], n <= 100) {
            assert_eq!(got, Some(want), "{n} instructions: {engine}");
        }
    }
}

#[cfg(target_os = "linux")]
mod kernel {
    use super::*;
    use bpfvm_benches::kernel::{filled_hash as kernel_hash, load as load_sk, load_tc, packet_for};
    use bpfvm_kernel::{Bpf, TestRun, kernel_available_for_test};

    #[test]
    fn the_kernel_computes_the_same_results() {
        if !kernel_available_for_test("the_kernel_computes_the_same_results") {
            return;
        }
        let bpf = Bpf::new();
        for p in programs() {
            let prog = load_tc(&bpf, &p.kernel_source())
                .unwrap_or_else(|e| panic!("{}: the kernel refuses it: {e}", p.name));
            let packet = packet_for(&p.input);
            let r = prog
                .test_run(&mut TestRun {
                    data_in: &packet,
                    repeat: 1,
                    ..TestRun::default()
                })
                .unwrap();
            assert_eq!(
                u64::from(r.retval),
                p.expected & 0xffff_ffff,
                "{}: kernel",
                p.name
            );
        }
        let map = kernel_hash(&bpf).unwrap();
        let prog = load_sk(&bpf, &hash_lookup_source(PROG_OPS), &[&map]).unwrap();
        let r = prog
            .test_run(&mut TestRun {
                data_in: &[0; PACKET_LEN],
                repeat: 1,
                ..TestRun::default()
            })
            .unwrap();
        assert_eq!(u64::from(r.retval), lookup_sum(PROG_OPS));
    }
}
