//! The maps' own behaviour, without the kernel: memory accounting, the program-side API,
//! LRU order and iteration while deleting.

use std::sync::Arc;

use bpfvm_abi::{F_RDONLY_PROG, MapError, MapSpec, MapType, UPDATE_ANY, UPDATE_NOEXIST};
use bpfvm_runtime::maps::{MapConfig, MemoryAccountant, RunGuard, create_map};

fn key(k: u32) -> [u8; 4] {
    k.to_ne_bytes()
}

fn read(v: &bpfvm_runtime::ValueRef<'_>) -> Vec<u8> {
    let mut out = vec![0; v.len()];
    // SAFETY: the value's memory is valid for `len` bytes while the guard it was found
    // under lives, which it does for this call; nothing writes it concurrently here.
    unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), out.as_mut_ptr(), v.len()) };
    out
}

#[test]
fn huge_specs_fail_with_an_error_not_an_abort() {
    let config = MapConfig::new(4, 1 << 20);
    for t in [
        MapType::Array,
        MapType::PercpuArray,
        MapType::Hash,
        MapType::LruPercpuHash,
    ] {
        let spec = MapSpec::new(t, 4, 1 << 20, u32::MAX);
        let err = create_map(&spec, &config).expect_err("too big");
        assert!(
            matches!(err, MapError::NoMemory(_) | MapError::TooBig(_)),
            "{t}: {err:?}"
        );
    }
    assert_eq!(config.memory.used(), 0);
    // Even with no cap, an impossible allocation is an error.
    let unlimited = MapConfig::new(1 << 16, u64::MAX);
    let spec = MapSpec::new(MapType::PercpuArray, 4, 1 << 20, u32::MAX);
    assert!(create_map(&spec, &unlimited).is_err());
}

#[test]
fn the_cap_is_shared_and_credited_back() {
    let memory = Arc::new(MemoryAccountant::new(10_000));
    let config = MapConfig::new(2, 0).with_accountant(Arc::clone(&memory));
    let a = create_map(&MapSpec::new(MapType::Array, 4, 8, 1125), &config).expect("9000 bytes");
    assert_eq!(memory.used(), 9000);
    let b = create_map(&MapSpec::new(MapType::Array, 4, 8, 500), &config);
    assert!(matches!(b, Err(MapError::NoMemory(_))));
    // A hash charges per element: it fits at creation but inserts hit the shared cap.
    let h = create_map(&MapSpec::new(MapType::Hash, 4, 8, 20), &config).expect("hash");
    let mut inserted = 0;
    let mut last = Ok(());
    for k in 0..20 {
        last = h.update(&key(k), &[1; 8], UPDATE_ANY);
        if last.is_err() {
            break;
        }
        inserted += 1;
    }
    assert!(matches!(last, Err(MapError::NoMemory(_))), "{last:?}");
    assert!(inserted > 0 && inserted < 20);
    drop(a);
    assert!(h.update(&key(19), &[1; 8], UPDATE_ANY).is_ok());
    drop(h);
    assert_eq!(memory.used(), 0);
}

#[test]
fn program_side_lookup_gives_stable_aligned_value_memory() {
    let config = MapConfig::new(3, 1 << 20);
    for t in [MapType::Array, MapType::Hash, MapType::LruHash] {
        let m = create_map(&MapSpec::new(t, 4, 12, 4), &config).expect("map");
        m.update(&key(1), &[7; 12], UPDATE_ANY).expect("update");
        let guard = RunGuard::pin();
        let a = m.lookup_value(&key(1), 0, &guard).expect("present");
        let b = m.lookup_value(&key(1), 2, &guard).expect("present");
        assert_eq!(a.addr(), b.addr(), "{t}: not per-CPU, one value");
        assert_eq!(a.addr() % 8, 0);
        assert_eq!(a.len(), 12);
        assert!(a.is_writable());
        assert_eq!(read(&a), [7; 12]);
        assert!(m.lookup_value(&key(9), 0, &guard).is_none());
        assert!(m.lookup_value(&[1, 2], 0, &guard).is_none());
    }
}

#[test]
fn per_cpu_program_updates_touch_one_slot() {
    let config = MapConfig::new(3, 1 << 20);
    for t in [
        MapType::PercpuArray,
        MapType::PercpuHash,
        MapType::LruPercpuHash,
    ] {
        let m = create_map(&MapSpec::new(t, 4, 4, 4), &config).expect("map");
        assert_eq!(m.value_len(), 24, "{t}: 3 slots of 8");
        m.prog_update(&key(0), &[5; 4], UPDATE_ANY, 1)
            .expect("update");
        let mut want = vec![0; 24];
        want[8..12].copy_from_slice(&[5; 4]);
        assert_eq!(m.lookup(&key(0)).expect("lookup"), want, "{t}");
        m.prog_update(&key(0), &[6; 4], UPDATE_ANY, 2)
            .expect("update");
        want[16..20].copy_from_slice(&[6; 4]);
        assert_eq!(m.lookup(&key(0)).expect("lookup"), want, "{t}");
        let guard = RunGuard::pin();
        let v1 = m.lookup_value(&key(0), 1, &guard).expect("slot 1");
        let v2 = m.lookup_value(&key(0), 2, &guard).expect("slot 2");
        assert_eq!((read(&v1), read(&v2)), (vec![5; 4], vec![6; 4]));
        assert_eq!(v2.addr() - v1.addr(), 8);
        assert!(m.lookup_value(&key(0), 3, &guard).is_none(), "no slot 3");
        assert!(m.prog_update(&key(0), &[1; 4], UPDATE_ANY, 3).is_err());
        // Program-side updates take value_size bytes, host-side ones all slots.
        assert!(m.prog_update(&key(0), &[1; 24], UPDATE_ANY, 0).is_err());
        assert!(m.update(&key(0), &[1; 4], UPDATE_ANY).is_err());
    }
}

#[test]
fn read_only_for_programs() {
    let config = MapConfig::new(1, 1 << 20);
    let mut spec = MapSpec::new(MapType::Hash, 4, 8, 4);
    spec.flags = F_RDONLY_PROG;
    let m = create_map(&spec, &config).expect("map");
    m.update(&key(1), &[1; 8], UPDATE_ANY)
        .expect("the host may write");
    let guard = RunGuard::pin();
    assert!(
        !m.lookup_value(&key(1), 0, &guard)
            .expect("value")
            .is_writable()
    );
    assert!(matches!(
        m.prog_update(&key(1), &[1; 8], UPDATE_ANY, 0),
        Err(MapError::NotPermitted(_))
    ));
    assert!(matches!(
        m.prog_delete(&key(1)),
        Err(MapError::NotPermitted(_))
    ));
}

#[test]
fn lru_keeps_the_most_recently_used() {
    let config = MapConfig::new(1, 1 << 20);
    let m = create_map(&MapSpec::new(MapType::LruHash, 4, 8, 4), &config).expect("map");
    for k in 0..4 {
        m.update(&key(k), &[k as u8; 8], UPDATE_NOEXIST)
            .expect("insert");
    }
    // Use 0 by updating it and 1 from a program; a host lookup of 2 does not count
    // (as in the kernel), so 2 is now the least recently used.
    m.update(&key(0), &[0; 8], UPDATE_ANY).expect("update");
    let guard = RunGuard::pin();
    assert!(m.lookup_value(&key(1), 0, &guard).is_some());
    m.lookup(&key(2)).expect("lookup");
    m.update(&key(4), &[4; 8], UPDATE_ANY).expect("evicts");
    let mut keys = m.keys().expect("keys");
    keys.sort();
    assert_eq!(keys, [key(0), key(1), key(3), key(4)].map(|k| k.to_vec()));
    m.update(&key(5), &[5; 8], UPDATE_ANY).expect("evicts 3");
    assert!(m.lookup(&key(3)).is_err());
    assert_eq!(m.keys().expect("keys").len(), 4);
}

#[test]
fn hash_iteration_survives_deleting_the_current_key() {
    let config = MapConfig::new(1, 1 << 20);
    let m = create_map(&MapSpec::new(MapType::Hash, 4, 8, 16), &config).expect("map");
    for k in 0..10 {
        m.update(&key(k), &[0; 8], UPDATE_ANY).expect("insert");
    }
    // The classic delete-while-iterating loop visits every key once the map is empty.
    let mut seen = 0;
    let mut cur = m.next_key(None).ok();
    while let Some(k) = cur {
        let next = m.next_key(Some(&k)).ok();
        m.delete(&k).expect("delete");
        seen += 1;
        cur = next;
    }
    assert_eq!(seen, 10);
    assert_eq!(m.next_key(None), Err(MapError::NotFound));
    // A key that is not there restarts from the first.
    m.update(&key(3), &[0; 8], UPDATE_ANY).expect("insert");
    assert_eq!(m.next_key(Some(&key(99))), Ok(key(3).to_vec()));
    assert_eq!(m.next_key(Some(&key(3))), Err(MapError::NotFound));
}

#[test]
fn unsupported_types_are_refused() {
    let spec = MapSpec::new(MapType::StackTrace, 4, 8, 4);
    assert!(matches!(
        create_map(&spec, &MapConfig::default()),
        Err(MapError::NotSupported(_))
    ));
}

#[test]
fn large_lru_evicts_in_batches_but_keeps_recent_keys() {
    let config = MapConfig::new(1, 1 << 24);
    let m = create_map(&MapSpec::new(MapType::LruHash, 4, 8, 1000), &config).expect("map");
    for k in 1..5000u32 {
        m.update(&key(k), &[1; 8], UPDATE_ANY).expect("insert");
        if k.is_multiple_of(10) {
            // Key 1 is used by programs all the time: it must survive.
            let guard = RunGuard::pin();
            assert!(
                m.lookup_value(&key(1), 0, &guard).is_some(),
                "hot key at {k}"
            );
        }
    }
    let n = m.keys().expect("keys").len();
    assert!(n <= 1000 && n > 900, "{n} elements");
    for k in 4100..5000u32 {
        assert!(m.lookup(&key(k)).is_ok(), "recent key {k} evicted");
    }
}

#[test]
fn program_side_errors_are_the_host_side_ones() {
    use bpfvm_abi::UPDATE_EXIST;
    let config = MapConfig::new(2, 1 << 20);
    for t in [MapType::Hash, MapType::PercpuHash] {
        let m = create_map(&MapSpec::new(t, 4, 8, 2), &config).expect("map");
        assert_eq!(
            m.prog_update(&key(1), &[1; 8], UPDATE_EXIST, 0),
            Err(MapError::NotFound)
        );
        m.prog_update(&key(1), &[1; 8], UPDATE_NOEXIST, 0)
            .expect("insert");
        assert_eq!(
            m.prog_update(&key(1), &[1; 8], UPDATE_NOEXIST, 1),
            Err(MapError::Exists)
        );
        m.prog_update(&key(2), &[2; 8], UPDATE_ANY, 1)
            .expect("insert");
        assert!(matches!(
            m.prog_update(&key(3), &[3; 8], UPDATE_ANY, 0),
            Err(MapError::TooBig(_))
        ));
        assert!(matches!(
            m.prog_update(&key(1), &[3; 8], 4, 0),
            Err(MapError::Invalid(_))
        ));
        m.prog_delete(&key(1)).expect("delete");
        assert_eq!(m.prog_delete(&key(1)), Err(MapError::NotFound));
    }
    let a = create_map(&MapSpec::new(MapType::Array, 4, 8, 2), &config).expect("map");
    assert!(matches!(
        a.prog_update(&key(2), &[0; 8], UPDATE_ANY, 0),
        Err(MapError::TooBig(_))
    ));
    assert!(matches!(a.prog_delete(&key(0)), Err(MapError::Invalid(_))));
}

/// Keys that differ in one byte are different elements, whatever the key size: 4 and 8
/// bytes compare as one integer, other sizes byte by byte.
#[test]
fn keys_differing_in_one_byte_are_distinct_at_every_size() {
    let config = MapConfig::new(1, u64::MAX);
    for size in [1usize, 3, 4, 5, 8, 12, 16, 64] {
        let map = create_map(&MapSpec::new(MapType::Hash, size as u32, 8, 1024), &config)
            .expect("hash map");
        // The zero key, and one key per byte position differing from it in that byte.
        let mut keys = vec![vec![0u8; size]];
        for pos in 0..size {
            let mut k = vec![0u8; size];
            k[pos] = 0x80;
            keys.push(k);
        }
        for (i, k) in keys.iter().enumerate() {
            map.update(k, &(i as u64).to_ne_bytes(), UPDATE_NOEXIST)
                .unwrap_or_else(|e| panic!("size {size}, key {i}: {e:?}"));
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(
                map.lookup(k),
                Ok((i as u64).to_ne_bytes().to_vec()),
                "size {size}"
            );
        }
        // Deleting one leaves the others, and iteration still visits each once.
        map.delete(&keys[1]).expect("delete");
        assert_eq!(map.lookup(&keys[1]), Err(MapError::NotFound));
        assert_eq!(map.lookup(&keys[0]), Ok(0u64.to_ne_bytes().to_vec()));
        let mut seen = 0;
        let mut cur = None;
        while let Ok(next) = map.next_key(cur.as_deref()) {
            seen += 1;
            cur = Some(next);
        }
        assert_eq!(seen, keys.len() - 1, "size {size}");
    }
}
