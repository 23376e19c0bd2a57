//! A tiny test for miri:
//! `MIRIFLAGS="-Zmiri-tree-borrows -Zmiri-ignore-leaks" cargo +nightly miri test -p bpfvm-runtime --test maps_miri`.
//! crossbeam-epoch is not compatible with Stacked Borrows (crossbeam runs its own miri CI
//! with Tree Borrows, crossbeam-rs/crossbeam#996), and its global collector keeps queued
//! garbage bags at exit, which miri reports as leaks.
//!
//! What it checks:
//! value memory found under a guard survives the element's deletion, replacement and
//! the map's drop until the guard goes, and host copies race only atomically with
//! program-side atomics; hash lookups walking bucket chains without a lock race with
//! inserts, replaces, deletes and LRU evictions in chains of several nodes.

use std::sync::atomic::{AtomicU64, Ordering};

use bpfvm_abi::{MapSpec, MapType, UPDATE_ANY, UPDATE_EXIST, UPDATE_NOEXIST};
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

fn key(k: u32) -> [u8; 4] {
    k.to_ne_bytes()
}

/// Hash maps of 16 entries hold 16 keys in 16 buckets, so their chains have several nodes
/// (a layout without a collision has odds of about one in a million). One thread looks
/// every key up under a guard while another replaces every key, deletes some and
/// reinserts them; then an LRU map evicts from its chains while a guard holds every
/// value ever found. Values seen are whole (`k`, or `k` tagged as replaced), and what a
/// guard holds stays readable after the map is dropped.
#[test]
fn chains_race_lookups_with_replace_delete_insert_and_eviction() {
    const N: u32 = 16;
    let tagged = |k: u32| u64::from(k) | 1 << 32;
    let config = MapConfig::new(1, 1 << 20);
    let map = create_map(&MapSpec::new(MapType::Hash, 4, 8, N), &config).expect("map");
    for k in 0..N {
        map.update(&key(k), &u64::from(k).to_ne_bytes(), UPDATE_NOEXIST)
            .expect("insert");
    }
    let guard = RunGuard::pin();
    let held: Vec<*mut u8> = (0..N)
        .map(|k| {
            map.lookup_value(&key(k), 0, &guard)
                .expect("value")
                .as_ptr()
        })
        .collect();
    std::thread::scope(|s| {
        s.spawn(|| {
            let guard = RunGuard::pin();
            for k in 0..N {
                if let Some(v) = map.lookup_value(&key(k), 0, &guard) {
                    let n = counter(&v).load(Ordering::Relaxed);
                    assert!(n == u64::from(k) || n == tagged(k), "key {k}: {n:#x}");
                }
            }
        });
        s.spawn(|| {
            for k in 0..N {
                map.update(&key(k), &tagged(k).to_ne_bytes(), UPDATE_EXIST)
                    .expect("replace");
            }
            for k in (0..N).step_by(3) {
                map.delete(&key(k)).expect("delete");
            }
            for k in (0..N).step_by(3) {
                map.update(&key(k), &tagged(k).to_ne_bytes(), UPDATE_NOEXIST)
                    .expect("reinsert");
            }
        });
    });
    for k in 0..N {
        assert_eq!(map.lookup(&key(k)), Ok(tagged(k).to_ne_bytes().to_vec()));
    }
    drop(map);
    for (k, p) in (0..N).zip(&held) {
        // SAFETY: found under `guard`, which still lives; no thread writes it any more.
        let n = unsafe { p.cast::<u64>().read() };
        assert_eq!(
            n,
            u64::from(k),
            "the replaced element's value is kept, unchanged"
        );
    }

    let lru = create_map(&MapSpec::new(MapType::LruHash, 4, 8, 4), &config).expect("lru");
    let mut held = Vec::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            let guard = RunGuard::pin();
            for k in 0..N {
                if let Some(v) = lru.lookup_value(&key(k), 0, &guard) {
                    assert_eq!(counter(&v).load(Ordering::Relaxed), u64::from(k));
                }
            }
        });
        for k in 0..N {
            lru.update(&key(k), &u64::from(k).to_ne_bytes(), UPDATE_ANY)
                .expect("insert");
            held.push(
                lru.lookup_value(&key(k), 0, &guard)
                    .expect("value")
                    .as_ptr(),
            );
        }
    });
    assert_eq!(lru.keys().expect("keys").len(), 4);
    drop(lru);
    for (k, p) in (0..N).zip(&held) {
        // SAFETY: as above.
        let n = unsafe { p.cast::<u64>().read() };
        assert_eq!(n, u64::from(k));
    }
    drop(guard);
    assert_eq!(config.memory.used(), 0);
    for _ in 0..4 {
        RunGuard::pin().flush();
    }
}
