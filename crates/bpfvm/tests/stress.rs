//! Concurrency stress test of the embedding API: four threads fire one [`bpfvm::Hook`]
//! 1,000,000 times in total while a fifth (host) thread inserts, replaces and deletes
//! other keys of the same hash map and reads the program's counters — on the interpreter,
//! then again on the JIT.
//!
//! The program (bytecode, no ELF) counts events per key in a hash map — lookup, then
//! `lock xadd` on the value; on a miss `bpf_map_update_elem(BPF_NOEXIST)` with 1, and on
//! `-EEXIST` (another thread inserted first) back to the lookup — and counts every event
//! in `total[0]` (array) and in this CPU's slot of a per-CPU array. The expected counts are
//! computed here from the same deterministic event sequences the threads fire.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bpfvm::Hook;
use bpfvm_abi::{MapSpec, MapType, UPDATE_ANY, UPDATE_NOEXIST};
use bpfvm_isa::asm::{Dialect, assemble};
use bpfvm_runtime::{
    Context, HelperRegistry, LoadedProgram, Map, MapConfig, ProgramType, create_map,
};

const THREADS: usize = 4;
const FIRES_PER_THREAD: u32 = 250_000;
/// Program keys are `0..PROGRAM_KEYS`; the host churns `CHURN_BASE..CHURN_BASE+CHURN_KEYS`.
const PROGRAM_KEYS: u32 = 61;
const CHURN_BASE: u32 = 1_000_000;
const CHURN_KEYS: u32 = 200;

/// Thread `t`'s `i`-th event key: a deterministic, uneven spread over the program keys.
fn event_key(t: usize, i: u32) -> u32 {
    let x = (i as u64)
        .wrapping_mul(2_654_435_761)
        .wrapping_add(t as u64 * 40_503);
    ((x ^ (x >> 13)) % PROGRAM_KEYS as u64) as u32
}

/// maps[0] = `counts` (hash u32 -> u64), maps[1] = `total` (array: [0] events, [1] lost
/// insert races, i.e. `-EEXIST` retries), maps[2] = per-CPU array.
const PROGRAM: &str = "
    r6 = r1
    r7 = *(u32 *)(r6 + 0)
    *(u32 *)(r10 - 4) = r7
    *(u64 *)(r10 - 16) = 1
lookup:
    r1 = map[idx:0]
    r2 = r10
    r2 += -4
    call 1
    if r0 == 0 goto insert
    r1 = 1
    lock *(u64 *)(r0 + 0) += r1
    goto totals
insert:
    r1 = map[idx:0]
    r2 = r10
    r2 += -4
    r3 = r10
    r3 += -16
    r4 = 1
    call 2
    if r0 == 0 goto totals
    if r0 == -17 goto raced
    r0 = 1
    exit
raced:
    *(u32 *)(r10 - 8) = 1
    r1 = map[idx:1]
    r2 = r10
    r2 += -8
    call 1
    if r0 == 0 goto fail
    r1 = 1
    lock *(u64 *)(r0 + 0) += r1
    goto lookup
totals:
    *(u32 *)(r10 - 8) = 0
    r1 = map[idx:1]
    r2 = r10
    r2 += -8
    call 1
    if r0 == 0 goto fail
    r1 = 1
    lock *(u64 *)(r0 + 0) += r1
    r1 = map[idx:2]
    r2 = r10
    r2 += -8
    call 1
    if r0 == 0 goto fail
    r1 = 1
    lock *(u64 *)(r0 + 0) += r1
    r0 = 0
    exit
fail:
    r0 = 2
    exit
";

fn read_u64(bytes: &[u8]) -> u64 {
    u64::from_ne_bytes(bytes[..8].try_into().expect("8 bytes"))
}

/// Both engines, one after the other (the worker slots of the second four threads are
/// 4..8, which map to slots 0..4 again): the JIT reaches map values through its inline
/// atomic path, the interpreter through the runtime's.
#[test]
fn four_threads_fire_a_million_events_while_the_host_churns_the_map() {
    stress("interp");
    stress("jit");
}

fn stress(engine: &str) {
    let config = MapConfig::new(THREADS, 1 << 24);
    let counts: Arc<dyn Map> = create_map(&MapSpec::new(MapType::Hash, 4, 8, 512), &config)
        .expect("counts")
        .into();
    let total: Arc<dyn Map> = create_map(&MapSpec::new(MapType::Array, 4, 8, 2), &config)
        .expect("total")
        .into();
    let percpu: Arc<dyn Map> = create_map(&MapSpec::new(MapType::PercpuArray, 4, 8, 1), &config)
        .expect("percpu")
        .into();

    let slots = assemble(PROGRAM, Dialect::Llvm).expect("assembles");
    let program = bpfvm_isa::Program::from_slots(slots).expect("valid program");
    let kind = bpfvm_abi::ProgramType::RawTracepoint;
    let loaded = LoadedProgram::with_maps(
        program,
        ProgramType::Kernel(kind),
        Arc::new(HelperRegistry::for_program_type(ProgramType::Kernel(kind))),
        vec![counts.clone(), total.clone(), percpu.clone()],
    )
    .expect("loads");
    let hook = Hook::new("event").with_cpus(THREADS);
    let program = bpfvm::Program::from_loaded("count_events", Arc::new(loaded));
    let program = match engine {
        "jit" => program.with_jit().expect("compiles"),
        _ => program,
    };
    assert_eq!(program.engine_name(), engine);
    hook.attach(&program);

    let done = AtomicBool::new(false);
    let started = Instant::now();
    let host_rounds = std::thread::scope(|s| {
        let firers: Vec<_> = (0..THREADS)
            .map(|t| {
                let hook = &hook;
                s.spawn(move || {
                    let mut event = [0u8; 8];
                    for i in 0..FIRES_PER_THREAD {
                        event[..4].copy_from_slice(&event_key(t, i).to_ne_bytes());
                        let out = hook
                            .fire(&mut Context::Struct {
                                bytes: &mut event,
                                writable: false,
                            })
                            .expect("fire");
                        assert_eq!(out, [0], "thread {t} event {i}");
                    }
                })
            })
            .collect();
        let host = s.spawn(|| {
            let mut last = vec![0u64; PROGRAM_KEYS as usize];
            let mut rounds = 0u64;
            while !done.load(Ordering::Acquire) {
                for c in 0..CHURN_KEYS {
                    let k = (CHURN_BASE + c).to_ne_bytes();
                    let v = (rounds ^ c as u64).to_ne_bytes();
                    match (rounds + c as u64) % 3 {
                        0 => counts.update(&k, &v, UPDATE_ANY).expect("churn insert"),
                        // Replacing allocates a new element; deleting a missing key is ENOENT.
                        1 => drop(counts.update(&k, &v, UPDATE_NOEXIST)),
                        _ => drop(counts.delete(&k)),
                    }
                }
                for (key, seen) in last.iter_mut().enumerate() {
                    let now = counts
                        .lookup(&(key as u32).to_ne_bytes())
                        .map_or(0, |v| read_u64(&v));
                    assert!(now >= *seen, "key {key} went from {seen} to {now}");
                    *seen = now;
                }
                rounds += 1;
            }
            rounds
        });
        for f in firers {
            f.join().expect("firing thread");
        }
        done.store(true, Ordering::Release);
        host.join().expect("host thread")
    });
    let elapsed = started.elapsed();
    println!(
        "{engine}: {} fires on {THREADS} threads in {elapsed:?}; host churn rounds: {host_rounds}",
        THREADS as u64 * FIRES_PER_THREAD as u64
    );

    let mut expected: HashMap<u32, u64> = HashMap::new();
    for t in 0..THREADS {
        for i in 0..FIRES_PER_THREAD {
            *expected.entry(event_key(t, i)).or_default() += 1;
        }
    }
    let fires = THREADS as u64 * FIRES_PER_THREAD as u64;
    assert_eq!(expected.values().sum::<u64>(), fires);
    let mut sum = 0;
    for key in 0..PROGRAM_KEYS {
        let got = counts
            .lookup(&key.to_ne_bytes())
            .map_or(0, |v| read_u64(&v));
        assert_eq!(got, expected.get(&key).copied().unwrap_or(0), "key {key}");
        sum += got;
    }
    assert_eq!(sum, fires);
    assert_eq!(
        read_u64(&total.lookup(&0u32.to_ne_bytes()).expect("total[0]")),
        fires
    );
    // Not asserted (it depends on scheduling): how often the -EEXIST retry path ran.
    let races = read_u64(&total.lookup(&1u32.to_ne_bytes()).expect("total[1]"));
    println!("insert races retried: {races}");
    assert!(races <= u64::from(PROGRAM_KEYS) * (THREADS as u64 - 1));
    let per_cpu = percpu.lookup(&0u32.to_ne_bytes()).expect("per-CPU slots");
    let slots: Vec<u64> = per_cpu.chunks(8).map(read_u64).collect();
    assert_eq!(slots.len(), THREADS);
    assert_eq!(slots.iter().sum::<u64>(), fires);
    // This binary's only firing threads are these four per engine, so they took worker
    // slots 0..4 (the interpreter's) or 4..8, which modulo the 4 slots are 0..4 again:
    // one slot each.
    assert!(
        slots.iter().all(|&n| n == FIRES_PER_THREAD as u64),
        "{slots:?}"
    );
    // The churn keys are still consistent: every present one holds 8 bytes.
    for c in 0..CHURN_KEYS {
        if let Ok(v) = counts.lookup(&(CHURN_BASE + c).to_ne_bytes()) {
            assert_eq!(v.len(), 8);
        }
    }
}
