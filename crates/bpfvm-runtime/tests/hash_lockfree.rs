//! Hash maps whose lookups take no lock: readers under run guards racing a writer, and
//! the kernel's limit on the bucket array (`htab_map_alloc`), against the kernel itself.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bpfvm_abi::{MapError, MapSpec, MapType, UPDATE_ANY, UPDATE_EXIST, UPDATE_NOEXIST};
use bpfvm_runtime::maps::{MapConfig, RunGuard, ValueRef, create_map};

const KEYS: u32 = 16;
/// Keys `0..STABLE` are only replaced, never deleted: a reader must always find them.
const STABLE: u32 = 8;
const ROUNDS: u32 = if cfg!(miri) { 2 } else { 2000 };

fn key(k: u32) -> [u8; 4] {
    k.to_ne_bytes()
}

/// 8 words of `k << 32 | version`: complete versions are told from mixes, zeroed blocks
/// and other keys' values.
fn pattern(k: u32, version: u32) -> Vec<u8> {
    ((u64::from(k) << 32) | u64::from(version))
        .to_ne_bytes()
        .repeat(8)
}

/// The value's 8 words, read atomically, as every access to value memory must be.
fn words(v: &ValueRef<'_>) -> [u64; 8] {
    assert!(v.len() >= 64 && v.addr().is_multiple_of(8));
    std::array::from_fn(|i| {
        // SAFETY: 64 bytes, 8-aligned, valid while the guard `v` was found under lives
        // (the caller holds it); every access to value memory is atomic.
        unsafe { AtomicU64::from_ptr(v.as_ptr().cast::<u64>().add(i)) }.load(Ordering::Relaxed)
    })
}

/// Sets its flag when dropped: when the writer is done, or when it panics (so readers
/// waiting for the flag stop, and the test fails instead of hanging).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A map of `KEYS` entries holds `KEYS` keys in `KEYS` buckets, so chains of several
/// nodes are all but certain. Two readers look every key up under run guards while the
/// writer replaces them all and deletes and reinserts the unstable ones: each value seen
/// is one whole version of its own key, and stable keys never go missing.
fn race(map_type: MapType) {
    let config = MapConfig::new(2, 1 << 20);
    let map = create_map(&MapSpec::new(map_type, 4, 64, KEYS), &config).expect("map");
    for k in 0..KEYS {
        map.update(&key(k), &pattern(k, 0), UPDATE_NOEXIST)
            .expect("insert");
    }
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..2)
            .map(|cpu| {
                let (map, done) = (&map, &done);
                s.spawn(move || {
                    let mut found = 0u64;
                    loop {
                        let finished = done.load(Ordering::Relaxed);
                        let guard = RunGuard::pin();
                        // Kept across the whole pass, as a program keeps its pointers.
                        let mut held = Vec::new();
                        for k in 0..KEYS {
                            match map.lookup_value(&key(k), cpu, &guard) {
                                Some(v) => held.push((k, v)),
                                None => assert!(k >= STABLE, "{map_type}: key {k} missing"),
                            }
                        }
                        for (k, v) in &held {
                            let w = words(v);
                            assert!(
                                w.iter().all(|x| *x == w[0]) && w[0] >> 32 == u64::from(*k),
                                "{map_type}: key {k}: {w:x?}"
                            );
                        }
                        found += held.len() as u64;
                        if finished {
                            break found;
                        }
                    }
                })
            })
            .collect();
        let stop = StopOnDrop(&done);
        for round in 1..=ROUNDS {
            for k in 0..KEYS {
                map.update(&key(k), &pattern(k, round), UPDATE_EXIST)
                    .expect("replace");
            }
            for k in STABLE..KEYS {
                if (round + k) % 3 == 0 {
                    map.delete(&key(k)).expect("delete");
                    map.update(&key(k), &pattern(k, round), UPDATE_NOEXIST)
                        .expect("reinsert");
                }
            }
        }
        drop(stop);
        for r in readers {
            assert!(r.join().expect("reader") > 0);
        }
    });
    for k in 0..KEYS {
        assert_eq!(map.lookup(&key(k)), Ok(pattern(k, ROUNDS)), "{map_type}");
    }
    drop(map);
    assert_eq!(config.memory.used(), 0);
}

#[test]
fn hash_readers_see_whole_old_or_new_values_while_a_writer_churns() {
    race(MapType::Hash);
}

#[test]
fn lru_hash_readers_see_whole_old_or_new_values_while_a_writer_churns() {
    race(MapType::LruHash);
}

/// A full LRU map evicting while readers hold values they found: what they hold stays
/// readable, and the map keeps `max_entries` elements.
#[test]
fn lru_eviction_under_readers() {
    let config = MapConfig::new(1, 1 << 20);
    let map = create_map(&MapSpec::new(MapType::LruHash, 4, 64, 4), &config).expect("map");
    let guard = RunGuard::pin();
    let mut held = Vec::new();
    for k in 0..KEYS {
        map.update(&key(k), &pattern(k, 1), UPDATE_ANY)
            .expect("insert");
        held.push((k, map.lookup_value(&key(k), 0, &guard).expect("value")));
    }
    for (k, v) in &held {
        assert_eq!(words(v), [(u64::from(*k) << 32) | 1; 8]);
    }
    assert_eq!(map.keys().expect("keys").len(), 4);
    drop(held);
    drop(guard);
    drop(map);
    assert_eq!(config.memory.used(), 0);
}

/// The kernel's limit, as our own checks see it: more than 2^27 entries is `E2BIG`
/// whatever the cap (no bucket array is even tried), 2^27 is up to the cap.
#[test]
fn more_than_2_pow_27_entries_is_too_big() {
    let unlimited = MapConfig::new(1, u64::MAX);
    for t in [
        MapType::Hash,
        MapType::PercpuHash,
        MapType::LruHash,
        MapType::LruPercpuHash,
    ] {
        for n in [(1 << 27) + 1, 1 << 31, u32::MAX] {
            let err = create_map(&MapSpec::new(t, 4, 8, n), &unlimited).expect_err("too big");
            assert!(matches!(err, MapError::TooBig(_)), "{t} {n}: {err:?}");
            assert_eq!(err.errno(), 7, "E2BIG");
        }
        let err = create_map(
            &MapSpec::new(t, 4, 8, 1 << 27),
            &MapConfig::new(1, 512 << 20),
        )
        .expect_err("over the cap");
        assert!(matches!(err, MapError::NoMemory(_)), "{t}: {err:?}");
    }
    assert_eq!(unlimited.memory.used(), 0);
}

#[cfg(target_os = "linux")]
mod kernel {
    use bpfvm_abi::{F_NO_PREALLOC, MapError, MapSpec, MapType};
    use bpfvm_kernel::{Bpf, KernelError, MapCreate};
    use bpfvm_runtime::maps::{MapConfig, create_map};

    fn ours(spec: &MapSpec, cap: u64) -> Result<(), i32> {
        let config = MapConfig::new(bpfvm_kernel::possible_cpus().expect("cpus"), cap);
        create_map(spec, &config)
            .map(drop)
            .map_err(|e: MapError| e.errno())
    }

    fn theirs(spec: &MapSpec) -> Result<(), i32> {
        Bpf::new()
            .map_create(
                &MapCreate::new(
                    bpfvm_kernel::MapType(spec.map_type as u32),
                    spec.key_size,
                    spec.value_size,
                    spec.max_entries,
                )
                .with_flags(spec.flags),
            )
            .map(drop)
            .map_err(|e: KernelError| e.errno().map_or(-1, |e| e.0))
    }

    fn spec(t: MapType, max_entries: u32, flags: u32) -> MapSpec {
        let mut s = MapSpec::new(t, 4, 8, max_entries);
        s.flags = flags;
        s
    }

    /// `htab_map_alloc` refuses more than `U32_MAX / sizeof(struct bucket)` buckets (and
    /// more than 2^31 entries) with `E2BIG`, before allocating anything: so do we, with
    /// an unlimited cap. A map well under the limit is fine on both sides (not
    /// preallocated, so the kernel allocates only its 16 MiB of buckets).
    #[test]
    fn the_bucket_limit_matches_the_kernel() {
        if !bpfvm_kernel::kernel_available_for_test("the_bucket_limit_matches_the_kernel") {
            return;
        }
        for t in [
            MapType::Hash,
            MapType::PercpuHash,
            MapType::LruHash,
            MapType::LruPercpuHash,
        ] {
            for n in [(1 << 27) + 1, 1 << 28, (1 << 31) + 1, u32::MAX] {
                let s = spec(t, n, 0);
                let b = theirs(&s);
                assert_eq!(b, Err(7), "{t} {n}: the kernel says E2BIG");
                assert_eq!(ours(&s, u64::MAX), b, "{t} {n}");
            }
        }
        let s = spec(MapType::Hash, 1 << 20, F_NO_PREALLOC);
        assert_eq!(ours(&s, 1 << 30), Ok(()));
        assert_eq!(theirs(&s), Ok(()));
    }

    /// The boundary itself: the kernel takes 2^27 entries (2 GiB of its buckets, so run
    /// by hand: `cargo test --test hash_lockfree -- --ignored`), as do we under a large
    /// enough cap (1 GiB of ours).
    #[test]
    #[ignore = "allocates 2 GiB of kernel buckets and 1 GiB of ours"]
    fn the_largest_map_the_kernel_allows_is_allowed() {
        if !bpfvm_kernel::kernel_available_for_test("the_largest_map_the_kernel_allows_is_allowed")
        {
            return;
        }
        let s = spec(MapType::Hash, 1 << 27, F_NO_PREALLOC);
        assert_eq!(theirs(&s), Ok(()));
        assert_eq!(ours(&s, u64::MAX), Ok(()));
    }
}
