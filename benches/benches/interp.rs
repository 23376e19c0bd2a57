//! bpfvm's interpreter, rbpf's interpreter and native Rust on the same programs, in one
//! run (this machine's speed swings between runs; compare within one).
//!
//! `cargo bench -p bpfvm-benches -- --warm-up-time 1 --measurement-time 3`
//!
//! Each group's throughput is set to the instructions one run executes, so criterion's
//! "thrpt" is instructions per second for the engines (the native baseline executes no
//! BPF instructions; read its time only).

use std::hint::black_box;

use bpfvm_benches::{
    FNV_LEN, SUM_N, empty, fnv_input, fnv1a, fnv1a_insns, fnv1a_native, sum_loop, sum_loop_insns,
    sum_loop_native,
};
use bpfvm_interp::Interpreter;
use bpfvm_isa::Program;
use bpfvm_runtime::{LoadedProgram, ProgramType, RunOptions};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn load(bytes: &[u8]) -> LoadedProgram {
    let program = Program::from_bytes(bytes).expect("benchmark bytecode is valid");
    LoadedProgram::new(program, ProgramType::Conformance).expect("benchmark program loads")
}

fn rbpf_vm(bytes: &[u8]) -> rbpf::EbpfVmMbuff<'_> {
    rbpf::EbpfVmMbuff::new(Some(bytes)).expect("rbpf accepts the benchmark bytecode")
}

fn sum(c: &mut Criterion) {
    let bytes = sum_loop(SUM_N);
    let prog = load(&bytes);
    let vm = rbpf_vm(&bytes);
    let interp = Interpreter::new();
    let opts = RunOptions::new();
    let mut g = c.benchmark_group("sum_loop_1e6");
    g.throughput(Throughput::Elements(sum_loop_insns(SUM_N)));
    g.bench_function("bpfvm_interp", |b| {
        b.iter(|| interp.run(black_box(&prog), &mut [], &opts))
    });
    g.bench_function("rbpf_interp", |b| {
        b.iter(|| vm.execute_program(black_box(&[]), &[]).ok())
    });
    g.bench_function("native", |b| b.iter(|| sum_loop_native(black_box(SUM_N))));
    g.finish();
}

fn fnv(c: &mut Criterion) {
    let bytes = fnv1a(FNV_LEN as i32);
    let prog = load(&bytes);
    let vm = rbpf_vm(&bytes);
    let interp = Interpreter::new();
    let opts = RunOptions::new();
    let mut data = fnv_input(FNV_LEN);
    let mut g = c.benchmark_group("fnv1a_1KiB");
    g.throughput(Throughput::Elements(fnv1a_insns(FNV_LEN)));
    g.bench_function("bpfvm_interp", |b| {
        b.iter(|| interp.run(black_box(&prog), black_box(&mut data), &opts))
    });
    g.bench_function("rbpf_interp", |b| {
        b.iter(|| vm.execute_program(black_box(&data), &[]).ok())
    });
    g.bench_function("native", |b| b.iter(|| fnv1a_native(black_box(&data))));
    g.finish();
}

fn empty_run(c: &mut Criterion) {
    let bytes = empty();
    let prog = load(&bytes);
    let vm = rbpf_vm(&bytes);
    let interp = Interpreter::new();
    let opts = RunOptions::new();
    let mut g = c.benchmark_group("empty_run");
    g.bench_function("bpfvm_interp", |b| {
        b.iter(|| interp.run(black_box(&prog), &mut [], &opts))
    });
    g.bench_function("rbpf_interp", |b| {
        b.iter(|| vm.execute_program(black_box(&[]), &[]).ok())
    });
    g.finish();
}

criterion_group!(benches, sum, fnv, empty_run);
criterion_main!(benches);
