//! Every engine on the same programs, in one run: bpfvm's interpreter and JIT (checked
//! mode), `rbpf` 0.4.1's interpreter, x86 JIT and Cranelift JIT, the kernel's JIT (through
//! `BPF_PROG_TEST_RUN` with `repeat`), and native Rust. Then JIT compile times.
//!
//! `cargo bench -p bpfvm-benches --bench engines -- --warm-up-time 1 --measurement-time 3`
//!
//! Groups (`docs/performance.md`, "Engines", says what each contains):
//! - `sum_loop_1e5`, `fnv1a_1KiB`, `packet_parser_32`, `local_calls_1000`,
//!   `switch_16_1000`: one run of the program; thrpt = BPF instructions/s.
//! - `map_lookups_100`: one run of the 100-lookup program of `--bench maps` (no `rbpf`
//!   rows: `rbpf` has no maps).
//! - `jit_compile_N` (N = 10, 100, 1000, 10000 instructions): compiling one program;
//!   thrpt = instructions compiled/s.
//!
//! Rows `rbpf_cranelift` of `local_calls_1000` are missing: `rbpf` 0.4.1's Cranelift
//! backend has no BPF-to-BPF calls (it treats every `call` as a helper call and refuses
//! the program). The verified-mode JIT has no rows yet (it needs the static verifier).

use std::hint::black_box;

use bpfvm_benches::engines::{EngineProgram, compile_source, lookups_native, native_map, programs};
use bpfvm_benches::maps::{
    PACKET_LEN, PROG_OPS, assemble_source, filled_hash, hash_lookup_source, load,
};
use bpfvm_interp::Interpreter;
use bpfvm_isa::Program;
use bpfvm_jit::Jit;
use bpfvm_runtime::{Context, Engine, LoadedProgram, Packet, ProgramType, RunOptions, SkBuff};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

#[cfg(target_os = "linux")]
mod kernel {
    //! The kernel rows.
    use bpfvm_kernel::{Bpf, Prog};
    use criterion::BenchmarkGroup;
    use criterion::measurement::WallTime;

    /// The kernel, or `None` after printing why the kernel rows are skipped.
    pub fn available(group: &str) -> Option<Bpf> {
        match bpfvm_kernel::probe() {
            Ok(()) => Some(Bpf::new()),
            Err(why) => {
                eprintln!("{group}: skipping the kernel rows: {why}");
                None
            }
        }
    }

    /// `kernel_jit`: the kernel's own time per run (`BPF_PROG_TEST_RUN`'s `duration`).
    pub fn row(g: &mut BenchmarkGroup<'_, WallTime>, prog: &Prog, packet: &[u8]) {
        g.bench_function("kernel_jit", |b| {
            b.iter_custom(|iters| {
                bpfvm_benches::kernel::in_kernel_time(prog, packet, iters)
                    .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN failed during a benchmark: {e}"))
            })
        });
    }
}

fn loaded(slots: Vec<bpfvm_isa::RawInsn>) -> LoadedProgram {
    let program = Program::from_slots(slots).expect("benchmark bytecode is valid");
    LoadedProgram::new(program, ProgramType::Conformance).expect("benchmark program loads")
}

fn run_group(c: &mut Criterion, p: &EngineProgram) {
    let slots = p.slots().expect("benchmark source assembles");
    let bytes = bpfvm_isa::slots_to_bytes(&slots);
    let prog = loaded(slots);
    let interp = Interpreter::new();
    let jit = Jit::new();
    jit.compile(&prog)
        .expect("bpfvm's JIT compiles the benchmark");
    let opts = RunOptions::new();
    let mut data = p.input.bytes().to_vec();

    let mut g = c.benchmark_group(p.name);
    g.throughput(Throughput::Elements(p.insns));
    if p.insns > 100_000 {
        // A run of the sum loop takes up to milliseconds in the interpreters: fewer,
        // flat samples keep the group within its measurement time.
        g.sample_size(20);
        g.sampling_mode(criterion::SamplingMode::Flat);
    }
    g.bench_function("bpfvm_interp", |b| {
        b.iter(|| interp.run(black_box(&prog), black_box(&mut data), &opts))
    });
    g.bench_function("bpfvm_jit", |b| {
        b.iter(|| jit.run(black_box(&prog), black_box(&mut data), &opts))
    });

    let mut mbuff_vm = rbpf::EbpfVmMbuff::new(Some(&bytes)).expect("rbpf accepts the bytecode");
    g.bench_function("rbpf_interp", |b| {
        b.iter(|| mbuff_vm.execute_program(black_box(&data), &[]).ok())
    });
    // rbpf has no x86 JIT on Windows.
    #[cfg(not(windows))]
    {
        let mut raw_vm = rbpf::EbpfVmRaw::new(Some(&bytes)).expect("rbpf accepts the bytecode");
        raw_vm
            .jit_compile()
            .expect("rbpf's x86 JIT compiles the benchmark");
        let (ptr, len) = (data.as_mut_ptr(), data.len());
        g.bench_function("rbpf_jit_x86", |b| {
            b.iter(|| {
                // SAFETY: `ptr, len` is `data`, alive and not otherwise borrowed during this
                // benchmark; rbpf ties the slice to the VM's lifetime, so each call gets a
                // fresh slice over it. The program stays inside its input (checked against
                // every engine by `tests/engines.rs`); rbpf's JIT has no memory checks.
                let mem = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
                // SAFETY: as above; the program was compiled by `jit_compile` just before.
                unsafe { raw_vm.execute_program_jit(black_box(mem)) }.ok()
            })
        });
    }
    match mbuff_vm.cranelift_compile() {
        Ok(()) => {
            g.bench_function("rbpf_cranelift", |b| {
                b.iter(|| {
                    mbuff_vm
                        .execute_program_cranelift(black_box(&mut data), &mut [])
                        .ok()
                })
            });
        }
        Err(e) => eprintln!("{}: no rbpf_cranelift row: {e}", p.name),
    }

    #[cfg(target_os = "linux")]
    if let Some(bpf) = kernel::available(p.name) {
        let prog = bpfvm_benches::kernel::load_tc(&bpf, &p.kernel_source())
            .unwrap_or_else(|e| panic!("{}: the kernel refuses it: {e}", p.name));
        kernel::row(&mut g, &prog, &bpfvm_benches::kernel::packet_for(&p.input));
    }

    let native = p.native;
    g.bench_function("native", |b| b.iter(|| native(black_box(&data))));
    g.finish();
}

fn engine_programs(c: &mut Criterion) {
    for p in programs() {
        run_group(c, &p);
    }
}

fn map_lookups(c: &mut Criterion) {
    let prog = load(
        &hash_lookup_source(PROG_OPS),
        vec![filled_hash().expect("bpfvm hash map")],
    )
    .expect("bpfvm program");
    let interp = Interpreter::new();
    let jit = Jit::new();
    jit.compile(&prog)
        .expect("bpfvm's JIT compiles the benchmark");
    let opts = RunOptions::new();
    // The socket filter's context, built once (the program never writes it).
    let mut skb = SkBuff::new();
    let mut packet = Packet::new(&[0; PACKET_LEN], 0, 0);
    let mut g = c.benchmark_group("map_lookups_100");
    g.throughput(Throughput::Elements(bpfvm_benches::engines::lookups_insns()));
    for (name, engine) in [
        ("bpfvm_interp", &interp as &dyn Engine),
        ("bpfvm_jit", &jit),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut ctx = Context::SkBuff {
                    skb: &mut skb,
                    packet: &mut packet,
                };
                engine.run_context(black_box(&prog), &mut ctx, &opts).ok()
            })
        });
    }
    eprintln!("map_lookups_100: no rbpf rows: rbpf has no maps");
    #[cfg(target_os = "linux")]
    if let Some(bpf) = kernel::available("map_lookups_100") {
        let map = bpfvm_benches::kernel::filled_hash(&bpf)
            .unwrap_or_else(|e| panic!("kernel hash map: {e}"));
        let prog = bpfvm_benches::kernel::load(&bpf, &hash_lookup_source(PROG_OPS), &[&map])
            .unwrap_or_else(|e| panic!("kernel program: {e}"));
        kernel::row(&mut g, &prog, &[0; PACKET_LEN]);
    }
    let map = native_map();
    g.bench_function("native", |b| b.iter(|| lookups_native(black_box(&map))));
    g.finish();
}

fn compile_times(c: &mut Criterion) {
    let jit = Jit::new();
    for n in [10usize, 100, 1000, 10_000] {
        let slots = assemble_source(&compile_source(n)).expect("compile benchmark assembles");
        let bytes = bpfvm_isa::slots_to_bytes(&slots);
        let prog = loaded(slots.clone());
        // Pays the per-process setup (the host ISA) before timing.
        jit.compile(&prog.clone()).expect("bpfvm's JIT compiles it");
        let mut g = c.benchmark_group(format!("jit_compile_{n}"));
        g.throughput(Throughput::Elements(n as u64));
        if n >= 1000 {
            // Compiles of thousands of instructions take milliseconds.
            g.sample_size(10);
            g.sampling_mode(criterion::SamplingMode::Flat);
        }
        // A clone starts with an empty engine cache: each iteration compiles afresh. The
        // clone is made, and dropped (freeing its code), outside the timing.
        g.bench_function("bpfvm_jit", |b| {
            b.iter_batched(
                || prog.clone(),
                |p| {
                    black_box(jit.compile(&p)).ok();
                    p
                },
                BatchSize::SmallInput,
            )
        });
        // rbpf builds its Cranelift ISA and JIT module anew for every compile.
        let mut vm = rbpf::EbpfVmMbuff::new(Some(&bytes)).expect("rbpf accepts it");
        g.bench_function("rbpf_cranelift", |b| {
            b.iter(|| black_box(vm.cranelift_compile()).ok())
        });
        // rbpf's x86 JIT writes into one fixed 4 KiB page and panics when the code does
        // not fit: 1,000 instructions do not.
        #[cfg(not(windows))]
        if n <= 100 {
            g.bench_function("rbpf_jit_x86", |b| {
                b.iter(|| black_box(vm.jit_compile()).ok())
            });
        }
        #[cfg(target_os = "linux")]
        if let Some(bpf) = kernel::available("jit_compile") {
            // Verifier + the kernel's JIT: one BPF_PROG_LOAD (the fd closes outside the
            // timing).
            g.bench_function("kernel_load", |b| {
                b.iter_batched(
                    || (),
                    |()| {
                        bpf.prog_load(
                            &bpfvm_kernel::ProgLoad::new(bpfvm_kernel::ProgType::SCHED_CLS, &slots)
                                .with_license("GPL"),
                        )
                        .ok()
                    },
                    BatchSize::SmallInput,
                )
            });
        }
        g.finish();
    }
}

criterion_group!(benches, engine_programs, map_lookups, compile_times);
criterion_main!(benches);
