//! A tiny test for miri:
//! `MIRIFLAGS="-Zmiri-tree-borrows -Zmiri-ignore-leaks" cargo +nightly miri test -p bpfvm-runtime --test maps_miri`.
//! crossbeam-epoch is not compatible with Stacked Borrows (crossbeam runs its own miri CI
//! with Tree Borrows, crossbeam-rs/crossbeam#996), and its global collector keeps queued
//! garbage bags at exit, which miri reports as leaks.
//!
//! What it checks:
//! value memory found under a guard survives the element's deletion, replacement and
//! the map's drop until the guard goes, and host copies race only atomically with
//! program-side atomics.

use std::sync::atomic::{AtomicU64, Ordering};

use bpfvm_abi::{MapSpec, MapType, UPDATE_ANY};
use bpfvm_runtime::maps::{MapConfig, RunGuard, ValueRef, create_map};

fn counter<'v>(v: &'v ValueRef<'_>) -> &'v AtomicU64 {
    assert!(v.len() >= 8 && v.addr().is_multiple_of(8));
    // SAFETY: 8 bytes, 8-aligned, valid while the guard `v` was found under lives (it
    // outlives `'v`), and every concurrent access to these bytes is atomic.
    unsafe { AtomicU64::from_ptr(v.as_ptr().cast::<u64>()) }
}

#[test]
fn values_outlive_delete_replace_and_drop_under_a_guard() {
    let config = MapConfig::new(2, 1 << 16);
    for t in [MapType::Hash, MapType::PercpuHash, MapType::Array] {
        let map = create_map(&MapSpec::new(t, 4, 8, 2), &config).expect("map");
        let k = 1u32.to_ne_bytes();
        map.update(&k, &vec![0; map.value_len()], UPDATE_ANY)
            .expect("insert");
        let guard = RunGuard::pin();
        let v = map.lookup_value(&k, 1, &guard).expect("value");
        // Raw pointer kept, as a program keeps it in a register.
        let addr = v.as_ptr();
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..3 {
                    counter(&v).fetch_add(1, Ordering::Relaxed);
                }
            });
            s.spawn(|| {
                // Host copies of the same value race with the increments, atomically.
                let _ = map.lookup(&k);
                let _ = map.update(&k, &vec![9; map.value_len()], UPDATE_ANY);
                let _ = map.delete(&k);
            });
        });
        drop(map);
        // The map is gone, yet the memory is still there for this run.
        // SAFETY: `addr` came from a lookup under `guard`, which still lives.
        let n = unsafe { addr.cast::<u64>().read_volatile() };
        assert!(n >= 3, "{t}: {n}");
        drop(guard);
    }
    // Give the collector a chance to free what was deferred.
    for _ in 0..4 {
        RunGuard::pin().flush();
    }
}
