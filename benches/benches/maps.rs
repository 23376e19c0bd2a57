//! bpfvm's maps, helpers, ring buffer and hooks side by side with the same operations on
//! kernel objects through `bpf(2)`, in one run (this machine's speed swings between runs;
//! compare within one).
//!
//! `cargo bench -p bpfvm-benches --bench maps -- --warm-up-time 1 --measurement-time 3`
//!
//! Groups and rows (`docs/performance.md` says what each contains):
//! - `hash_lookup_host`, `hash_update_host`: one host operation on a 1024-entry `u32 → u64`
//!   hash map; thrpt = operations/s.
//! - `hash_lookup_prog`, `hash_update_prog`: one run of a program making 100 map helper
//!   calls; thrpt = map operations/s.
//! - `ringbuf_output`: one run of a program writing 100 records of 64 bytes with
//!   `bpf_ringbuf_output`, plus the host consuming them; thrpt = records/s.
//! - `hook_fire`: running an empty program once.
//!
//! Kernel rows need `bpf()`; without it they are skipped with the reason printed.

use std::hint::black_box;
use std::sync::Arc;

use bpfvm::{Hook, Program as FacadeProgram};
use bpfvm_benches::maps::{
    HASH_ENTRIES, PACKET_LEN, PROG_OPS, RING_RECORDS, empty_source, filled_hash,
    hash_lookup_source, hash_update_source, load, ringbuf, ringbuf_source,
};
use bpfvm_interp::Interpreter;
use bpfvm_runtime::maps::RingBufMap;
use bpfvm_runtime::{Context, LoadedProgram, Packet, RunOptions, SkBuff};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A socket filter's context, built once outside the timed loop (the benchmark programs
/// never write it).
struct Ctx {
    skb: SkBuff,
    packet: Packet,
}

impl Ctx {
    fn new() -> Ctx {
        Ctx {
            skb: SkBuff::new(),
            packet: Packet::new(&[0; PACKET_LEN], 0, 0),
        }
    }

    fn get(&mut self) -> Context<'_> {
        Context::SkBuff {
            skb: &mut self.skb,
            packet: &mut self.packet,
        }
    }
}

/// Runs `prog` once in bpfvm's interpreter with a socket filter context.
fn bpfvm_run(interp: &Interpreter, prog: &LoadedProgram, ctx: &mut Ctx, opts: &RunOptions) -> u64 {
    interp
        .run_context(black_box(prog), &mut ctx.get(), opts)
        .unwrap_or(u64::MAX)
}

/// Keys cycling over the whole map.
struct Keys(u32);

impl Keys {
    fn next(&mut self) -> [u8; 4] {
        self.0 = (self.0 + 1) % HASH_ENTRIES;
        self.0.to_le_bytes()
    }
}

#[cfg(target_os = "linux")]
mod kernel {
    //! The kernel rows.
    use std::time::{Duration, Instant};

    use super::*;
    use bpfvm_benches::kernel::{KernelRing, filled_hash, load};
    use bpfvm_kernel::{Bpf, Map, Prog, TestRun};
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

    fn test_run(prog: &Prog, repeat: u32) -> Duration {
        match prog.test_run(&mut TestRun {
            data_in: &[0; PACKET_LEN],
            repeat,
            ..TestRun::default()
        }) {
            Ok(r) => r.duration,
            Err(e) => panic!("BPF_PROG_TEST_RUN failed during a benchmark: {e}"),
        }
    }

    /// Largest `repeat` of one test-run call.
    const MAX_REPEAT: u64 = 1 << 20;

    /// Two rows for a program: `kernel_in_kernel` (the kernel's own average per run,
    /// `repeat` runs in one syscall) and `kernel_test_run_wall` (wall time of the same
    /// syscalls ÷ runs: adds the syscall and the context setup, amortised).
    pub fn prog_rows(g: &mut BenchmarkGroup<'_, WallTime>, prog: &Prog) {
        g.bench_function("kernel_in_kernel", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(MAX_REPEAT);
                    total += test_run(prog, n as u32) * n as u32;
                    left -= n;
                }
                total
            })
        });
        g.bench_function("kernel_test_run_wall", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                let mut left = iters;
                while left > 0 {
                    let n = left.min(MAX_REPEAT);
                    test_run(prog, n as u32);
                    left -= n;
                }
                start.elapsed()
            })
        });
    }

    pub fn hash(bpf: &Bpf) -> Map {
        filled_hash(bpf).unwrap_or_else(|e| panic!("kernel hash map: {e}"))
    }

    pub fn prog(bpf: &Bpf, src: &str, maps: &[&Map]) -> Prog {
        load(bpf, src, maps).unwrap_or_else(|e| panic!("kernel program: {e}"))
    }

    pub fn lookup_host(g: &mut BenchmarkGroup<'_, WallTime>, bpf: &Bpf) {
        let map = hash(bpf);
        let mut keys = Keys(0);
        g.bench_function("kernel_bpf_syscall", |b| {
            b.iter(|| map.lookup(black_box(&keys.next())).ok().flatten())
        });
    }

    pub fn update_host(g: &mut BenchmarkGroup<'_, WallTime>, bpf: &Bpf) {
        let map = hash(bpf);
        let mut keys = Keys(0);
        g.bench_function("kernel_bpf_syscall", |b| {
            b.iter(|| map.update(black_box(&keys.next()), &7u64.to_le_bytes(), 0))
        });
    }

    pub fn hash_prog(g: &mut BenchmarkGroup<'_, WallTime>, bpf: &Bpf, src: &str) {
        let map = hash(bpf);
        let p = prog(bpf, src, &[&map]);
        prog_rows(g, &p);
    }

    /// Runs of the ring buffer program per syscall in `kernel_test_run_x32` (3,200
    /// records: 230,400 bytes of the 256 KiB ring).
    const RING_REPEAT: u64 = 32;

    pub fn ring(g: &mut BenchmarkGroup<'_, WallTime>, bpf: &Bpf) {
        let ring = KernelRing::new(bpf).unwrap_or_else(|e| panic!("kernel ring: {e}"));
        let p = prog(bpf, &ringbuf_source(RING_RECORDS), &[ring.map()]);
        let mut sum = 0u64;
        g.bench_function("kernel_test_run_x1", |b| {
            b.iter(|| {
                test_run(&p, 1);
                ring.consume(|r| sum = sum.wrapping_add(u64::from(r[0])))
            })
        });
        g.bench_function("kernel_test_run_x32", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                let mut left = iters;
                while left > 0 {
                    let n = left.min(RING_REPEAT);
                    test_run(&p, n as u32);
                    ring.consume(|r| sum = sum.wrapping_add(u64::from(r[0])));
                    left -= n;
                }
                start.elapsed()
            })
        });
        black_box(sum);
    }

    pub fn empty(g: &mut BenchmarkGroup<'_, WallTime>, bpf: &Bpf) {
        let p = prog(bpf, &empty_source(), &[]);
        g.bench_function("kernel_test_run_x1", |b| b.iter(|| test_run(&p, 1)));
        prog_rows(g, &p);
    }
}

/// Says why there are no kernel rows off Linux.
#[cfg(not(target_os = "linux"))]
fn no_kernel(group: &str) {
    eprintln!("{group}: skipping the kernel rows: bpf() is Linux only");
}

fn hash_lookup_host(c: &mut Criterion) {
    let map = filled_hash().expect("bpfvm hash map");
    let mut g = c.benchmark_group("hash_lookup_host");
    g.throughput(Throughput::Elements(1));
    let mut keys = Keys(0);
    g.bench_function("bpfvm_map", |b| {
        b.iter(|| map.lookup(black_box(&keys.next())).ok())
    });
    #[cfg(target_os = "linux")]
    if let Some(bpf) = kernel::available("hash_lookup_host") {
        kernel::lookup_host(&mut g, &bpf);
    }
    #[cfg(not(target_os = "linux"))]
    no_kernel("hash_lookup_host");
    g.finish();
}

fn hash_update_host(c: &mut Criterion) {
    let map = filled_hash().expect("bpfvm hash map");
    let mut g = c.benchmark_group("hash_update_host");
    g.throughput(Throughput::Elements(1));
    let mut keys = Keys(0);
    g.bench_function("bpfvm_map", |b| {
        b.iter(|| map.update(black_box(&keys.next()), &7u64.to_le_bytes(), 0))
    });
    #[cfg(target_os = "linux")]
    if let Some(bpf) = kernel::available("hash_update_host") {
        kernel::update_host(&mut g, &bpf);
    }
    #[cfg(not(target_os = "linux"))]
    no_kernel("hash_update_host");
    g.finish();
}

fn hash_prog(c: &mut Criterion, group: &str, src: &str) {
    let map = filled_hash().expect("bpfvm hash map");
    let prog = load(src, vec![map]).expect("bpfvm program");
    let interp = Interpreter::new();
    let opts = RunOptions::new();
    let mut ctx = Ctx::new();
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(u64::from(PROG_OPS)));
    g.bench_function("bpfvm_interp", |b| {
        b.iter(|| bpfvm_run(&interp, &prog, &mut ctx, &opts))
    });
    #[cfg(target_os = "linux")]
    if let Some(bpf) = kernel::available(group) {
        kernel::hash_prog(&mut g, &bpf, src);
    }
    #[cfg(not(target_os = "linux"))]
    no_kernel(group);
    g.finish();
}

fn hash_lookup_prog(c: &mut Criterion) {
    hash_prog(c, "hash_lookup_prog", &hash_lookup_source(PROG_OPS));
}

fn hash_update_prog(c: &mut Criterion) {
    hash_prog(c, "hash_update_prog", &hash_update_source(PROG_OPS));
}

fn ringbuf_output(c: &mut Criterion) {
    let map = ringbuf().expect("bpfvm ring buffer");
    let prog = load(&ringbuf_source(RING_RECORDS), vec![map.clone()]).expect("bpfvm program");
    let rb = map
        .as_any()
        .downcast_ref::<RingBufMap>()
        .expect("a ring buffer");
    let consumer = rb.consumer();
    let interp = Interpreter::new();
    let opts = RunOptions::new();
    let mut ctx = Ctx::new();
    let mut g = c.benchmark_group("ringbuf_output");
    g.throughput(Throughput::Elements(u64::from(RING_RECORDS)));
    let mut sum = 0u64;
    g.bench_function("bpfvm_interp", |b| {
        b.iter(|| {
            bpfvm_run(&interp, &prog, &mut ctx, &opts);
            consumer.consume(|r| sum = sum.wrapping_add(u64::from(r[0])))
        })
    });
    black_box(sum);
    #[cfg(target_os = "linux")]
    if let Some(bpf) = kernel::available("ringbuf_output") {
        kernel::ring(&mut g, &bpf);
    }
    #[cfg(not(target_os = "linux"))]
    no_kernel("ringbuf_output");
    g.finish();
}

fn hook_fire(c: &mut Criterion) {
    let prog = Arc::new(load(&empty_source(), Vec::new()).expect("bpfvm program"));
    let interp = Interpreter::new();
    let opts = RunOptions::new();
    let mut ctx = Ctx::new();
    let mut g = c.benchmark_group("hook_fire");
    g.bench_function("bpfvm_interp_run", |b| {
        b.iter(|| bpfvm_run(&interp, &prog, &mut ctx, &opts))
    });
    let program = FacadeProgram::from_loaded("empty", prog);
    for n in [0usize, 1, 4] {
        let hook = Hook::new("bench");
        for _ in 0..n {
            hook.attach(&program);
        }
        g.bench_function(format!("bpfvm_hook_fire_{n}"), |b| {
            b.iter(|| black_box(&hook).fire(&mut ctx.get()).map(|v| v.len()))
        });
    }
    #[cfg(target_os = "linux")]
    if let Some(bpf) = kernel::available("hook_fire") {
        kernel::empty(&mut g, &bpf);
    }
    #[cfg(not(target_os = "linux"))]
    no_kernel("hook_fire");
    g.finish();
}

criterion_group!(
    benches,
    hash_lookup_host,
    hash_update_host,
    hash_lookup_prog,
    hash_update_prog,
    ringbuf_output,
    hook_fire
);
criterion_main!(benches);
