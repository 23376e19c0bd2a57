//! Hash maps whose lookups take no lock, through the public API: an LRU map evicting
//! while readers hold values, and the kernel's limit on the bucket array
//! (`htab_map_alloc`) against the kernel itself. (Readers racing a writer, and the limit
//! as our own checks see it, are unit tests in `maps/hash.rs`.)

use std::sync::atomic::{AtomicU64, Ordering};

use bpfvm_abi::{MapSpec, MapType, UPDATE_ANY};
use bpfvm_runtime::maps::{MapConfig, RunGuard, ValueRef, create_map};

/// Keys inserted into the 4-entry LRU map.
const KEYS: u32 = 16;

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

#[cfg(target_os = "linux")]
mod kernel {
    use bpfvm_abi::{F_NO_PREALLOC, MapError, MapSpec, MapType};
    use bpfvm_kernel::{Bpf, KernelMap};
    use bpfvm_runtime::maps::{MapConfig, create_map};

    fn ours(spec: &MapSpec, cap: u64) -> Result<(), i32> {
        let config = MapConfig::new(bpfvm_kernel::possible_cpus().expect("cpus"), cap);
        create_map(spec, &config)
            .map(drop)
            .map_err(|e: MapError| e.errno())
    }

    fn theirs(spec: &MapSpec) -> Result<(), i32> {
        KernelMap::create(&Bpf::new(), spec)
            .map(drop)
            .map_err(|e: MapError| e.errno())
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
