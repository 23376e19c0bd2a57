//! Program-side lookups and atomic increments on several threads while the host inserts,
//! replaces and deletes other keys: the counts come out exact and nothing crashes.

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bpfvm_abi::{MapSpec, MapType, UPDATE_ANY};
use bpfvm_runtime::maps::{Map, MapConfig, RunGuard, ValueRef, create_map};

// Small under miri (which also runs this test, slowly), larger natively.
const THREADS: usize = if cfg!(miri) { 2 } else { 4 };
const RUNS: u64 = if cfg!(miri) { 8 } else { 2000 };
const INCS_PER_RUN: u64 = if cfg!(miri) { 2 } else { 50 };
const COUNTERS: u32 = 4;

fn key(k: u32) -> [u8; 4] {
    k.to_ne_bytes()
}

/// What a program's `lock xadd` on the value does.
fn fetch_add(v: &ValueRef<'_>, n: u64) {
    assert!(v.len() >= 8 && v.addr().is_multiple_of(8));
    // SAFETY: the value is at least 8 bytes, 8-aligned, valid while the run's guard lives
    // (the caller holds it), and every concurrent access to it is atomic.
    let counter = unsafe { AtomicU64::from_ptr(v.as_ptr().cast::<u64>()) };
    counter.fetch_add(n, Ordering::Relaxed);
}

fn hammer(map: &dyn Map, per_cpu: bool) {
    for k in 0..COUNTERS {
        map.update(&key(k), &vec![0; map.value_len()], UPDATE_ANY)
            .expect("counter");
    }
    let stop = AtomicBool::new(false);
    let start = Barrier::new(THREADS + 1);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|cpu| {
                let (start, map) = (&start, map);
                s.spawn(move || {
                    start.wait();
                    for run in 0..RUNS {
                        // One "run": pin, look up, keep the pointers, increment through them.
                        let guard = RunGuard::pin();
                        let k = key((run % u64::from(COUNTERS)) as u32);
                        let v = map.lookup_value(&k, cpu, &guard).expect("counter present");
                        // A value the host churns: looked up and written while it may vanish.
                        let churn = map.lookup_value(&key(100 + (run % 8) as u32), cpu, &guard);
                        for _ in 0..INCS_PER_RUN {
                            fetch_add(&v, 1);
                            if let Some(c) = &churn {
                                fetch_add(c, 1);
                            }
                        }
                    }
                })
            })
            .collect();
        let (start, stop) = (&start, &stop);
        s.spawn(move || {
            start.wait();
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let k = key(100 + i % 8);
                let value = vec![i as u8; map.value_len()];
                let _ = map.update(&k, &value, UPDATE_ANY);
                if i.is_multiple_of(3) {
                    let _ = map.delete(&key(100 + (i / 3) % 8));
                }
                i = i.wrapping_add(1);
                if i.is_multiple_of(64) {
                    std::thread::yield_now();
                }
            }
        });
        // The churn stops before a worker's panic goes on: otherwise the scope would
        // wait for the churn forever and the test hang instead of failing.
        let joined: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
        stop.store(true, Ordering::Relaxed);
        for j in joined {
            j.expect("worker");
        }
    });
    let mut total = 0;
    for k in 0..COUNTERS {
        let v = map.lookup(&key(k)).expect("counter");
        if per_cpu {
            let stride = map.value_len() / THREADS;
            for slot in v.chunks(stride) {
                total += u64::from_ne_bytes(slot[..8].try_into().expect("8 bytes"));
            }
        } else {
            total += u64::from_ne_bytes(v[..8].try_into().expect("8 bytes"));
        }
    }
    assert_eq!(total, THREADS as u64 * RUNS * INCS_PER_RUN);
}

#[test]
fn counters_are_exact_under_host_churn() {
    let config = MapConfig::new(THREADS, 1 << 24);
    for t in [
        MapType::Hash,
        MapType::LruHash,
        MapType::PercpuHash,
        MapType::LruPercpuHash,
    ] {
        let map = create_map(&MapSpec::new(t, 4, 8, 64), &config).expect("map");
        hammer(map.as_ref(), t.is_per_cpu());
    }
    for t in [MapType::Array, MapType::PercpuArray] {
        // Arrays: the churn keys are overwritten in place (deletes fail with EINVAL).
        let map = create_map(&MapSpec::new(t, 4, 8, 200), &config).expect("map");
        hammer(map.as_ref(), t.is_per_cpu());
    }
}
