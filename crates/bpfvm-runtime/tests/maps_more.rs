//! Host API semantics of queues, stacks, bloom filters, LPM tries, program arrays and
//! maps of maps, with hand-computed expectations (the kernel comparison is
//! `maps_more_vs_kernel.rs`).

use std::sync::Arc;

use bpfvm_abi::{
    F_NO_PREALLOC, F_RDONLY_PROG, F_ZERO_SEED, UPDATE_ANY, UPDATE_EXIST, UPDATE_NOEXIST,
};
use bpfvm_isa::{Program, RawInsn};
use bpfvm_runtime::maps::{
    BloomFilterMap, F_INNER_MAP, LpmTrieMap, Map, MapConfig, MapError, MapOfMaps, MapSpec, MapType,
    ProgArrayMap, QueueStackMap, RunGuard, create_map, jhash, jhash2,
};
use bpfvm_runtime::{LoadedProgram, ProgramType};

fn config() -> MapConfig {
    MapConfig::new(2, 1 << 20)
}

fn errno<T: std::fmt::Debug>(r: Result<T, MapError>) -> i32 {
    r.expect_err("an error").errno()
}

fn u32v(n: u32) -> [u8; 4] {
    n.to_ne_bytes()
}

#[test]
fn queue_is_fifo_full_is_e2big_and_exist_drops_the_oldest() {
    let q = create_map(&MapSpec::new(MapType::Queue, 0, 4, 3), &config()).expect("queue");
    for i in 1..=3 {
        q.push(&u32v(i), UPDATE_ANY).expect("push");
    }
    assert_eq!(errno(q.push(&u32v(4), UPDATE_ANY)), 7, "full: E2BIG");
    assert_eq!(errno(q.push(&u32v(4), UPDATE_NOEXIST)), 22);
    assert_eq!(errno(q.push(&u32v(4), 3)), 22);
    // BPF_EXIST makes room by dropping the oldest (1).
    q.push(&u32v(4), UPDATE_EXIST).expect("push with BPF_EXIST");
    let mut out = [0u8; 4];
    q.peek(&mut out).expect("peek");
    assert_eq!(out, u32v(2));
    // The host's keyless lookup is a peek.
    assert_eq!(q.lookup(&[]).expect("lookup"), u32v(2));
    for want in [2, 3, 4] {
        q.pop(&mut out).expect("pop");
        assert_eq!(out, u32v(want));
    }
    out = [9; 4];
    assert_eq!(q.pop(&mut out), Err(MapError::NotFound));
    assert_eq!(
        out, [0; 4],
        "an empty pop zeroes the buffer, as the kernel does"
    );
    assert_eq!(q.lookup(&[]), Err(MapError::NotFound));
    // No keys.
    assert_eq!(errno(q.lookup(&[0; 4])), 22);
    assert_eq!(errno(q.update(&[0; 4], &u32v(1), UPDATE_ANY)), 22);
    assert_eq!(errno(q.delete(&[])), 22);
    assert_eq!(errno(q.next_key(None)), 22);
    // The host's keyless update is a push.
    q.update(&[], &u32v(7), UPDATE_ANY).expect("update = push");
    let qs = q.as_any().downcast_ref::<QueueStackMap>().expect("queue");
    assert_eq!(qs.len(), 1);
    assert_eq!(errno(qs.lookup_and_delete(1)), 22);
    assert_eq!(qs.lookup_and_delete(0).expect("pop"), u32v(7));
}

#[test]
fn stack_is_lifo_and_exist_drops_the_bottom() {
    let s = create_map(&MapSpec::new(MapType::Stack, 0, 8, 3), &config()).expect("stack");
    for i in 1..=3u64 {
        s.push(&i.to_ne_bytes(), UPDATE_ANY).expect("push");
    }
    assert_eq!(errno(s.push(&[0; 8], UPDATE_ANY)), 7);
    s.push(&4u64.to_ne_bytes(), UPDATE_EXIST).expect("replace");
    let mut out = [0u8; 8];
    for want in [4u64, 3, 2] {
        s.pop(&mut out).expect("pop");
        assert_eq!(u64::from_ne_bytes(out), want);
    }
    assert_eq!(s.pop(&mut out), Err(MapError::NotFound));
    // Wrapping around the ring many times keeps the order.
    for round in 0..10u64 {
        s.push(&round.to_ne_bytes(), UPDATE_ANY).expect("push");
        s.push(&(round + 100).to_ne_bytes(), UPDATE_ANY)
            .expect("push");
        s.pop(&mut out).expect("pop");
        assert_eq!(u64::from_ne_bytes(out), round + 100);
        s.pop(&mut out).expect("pop");
        assert_eq!(u64::from_ne_bytes(out), round);
    }
}

#[test]
fn queue_programs_may_not_write_a_rdonly_prog_queue_and_memory_is_charged() {
    let cfg = config();
    let mut spec = MapSpec::new(MapType::Queue, 0, 16, 10);
    spec.flags = F_RDONLY_PROG;
    let q = create_map(&spec, &cfg).expect("queue");
    assert_eq!(cfg.memory.used(), 11 * 16, "max_entries + 1 slots");
    assert_eq!(errno(q.push(&[0; 16], UPDATE_ANY)), 1);
    q.update(&[], &[1; 16], UPDATE_ANY).expect("the host may");
    drop(q);
    assert_eq!(cfg.memory.used(), 0);
    let mut bad = MapSpec::new(MapType::Queue, 0, 4, 1);
    bad.flags = F_NO_PREALLOC;
    assert_eq!(errno(create_map(&bad, &cfg)), 22);
}

#[test]
fn jhash_is_the_kernels() {
    // lookup3's published check values (`hashlittle`), which the kernel's jhash equals
    // on little-endian machines.
    if cfg!(target_endian = "little") {
        assert_eq!(jhash(b"Four score and seven years ago", 0), 0x1777_0551);
        assert_eq!(jhash(b"Four score and seven years ago", 1), 0xcd62_8161);
    }
    assert_eq!(jhash(b"", 7), 0xdead_beef + 7);
    assert_eq!(jhash2(&[], 7), 0xdead_beef + 7);
}

#[test]
fn bloom_filter_sizing_hashes_and_answers() {
    let bloom = |entries, extra| {
        let mut spec = MapSpec::new(MapType::BloomFilter, 0, 4, entries);
        spec.map_extra = extra;
        spec.flags = F_ZERO_SEED;
        create_map(&spec, &config())
    };
    // n * k / 5 * 7 bits, a power of two, at least 64.
    for (entries, extra, bits, hashes) in [
        (100, 0, 1024, 5),  // 100 * 5 / 5 * 7 = 700
        (4, 1, 64, 1),      // 4 / 5 * 7 = 0
        (1000, 3, 8192, 3), // 3000 / 5 * 7 = 4200
        (10, 15, 256, 15),  // 150 / 5 * 7 = 210
    ] {
        let m = bloom(entries, extra).expect("bloom");
        let b = m.as_any().downcast_ref::<BloomFilterMap>().expect("bloom");
        assert_eq!(
            (b.bit_count(), b.hash_count()),
            (bits, hashes),
            "{entries}/{extra}"
        );
    }
    assert_eq!(errno(bloom(10, 16)), 22, "map_extra has 4 bits");
    let m = bloom(100, 0).expect("bloom");
    let mut v = u32v(42);
    assert_eq!(m.peek(&mut v), Err(MapError::NotFound), "empty");
    for i in 0..50u32 {
        m.push(&u32v(i * 7), UPDATE_ANY).expect("push");
    }
    for i in 0..50u32 {
        let mut v = u32v(i * 7);
        assert_eq!(m.peek(&mut v), Ok(()), "inserted values are always found");
    }
    let absent = (0..1000u32)
        .map(|i| 100_000 + i)
        .filter(|i| {
            let mut v = u32v(*i);
            m.peek(&mut v).is_err()
        })
        .count();
    assert!(absent > 900, "few false positives: {absent} of 1000 absent");
    assert_eq!(errno(m.push(&u32v(1), UPDATE_EXIST)), 22);
    assert_eq!(errno(m.update(&[], &u32v(1), UPDATE_NOEXIST)), 22);
    m.update(&[], &u32v(1), UPDATE_ANY).expect("update = push");
    assert_eq!(errno(m.delete(&[])), 95, "EOPNOTSUPP");
    assert_eq!(errno(m.next_key(None)), 95);
    assert_eq!(errno(m.pop(&mut [0; 4])), 95);
    assert_eq!(errno(m.lookup(&[])), 22);
}

/// `prefixlen` + IPv4 address key.
fn v4(prefixlen: u32, a: [u8; 4]) -> Vec<u8> {
    let mut k = prefixlen.to_ne_bytes().to_vec();
    k.extend(a);
    k
}

fn lpm(max_entries: u32, cfg: &MapConfig) -> Box<dyn Map> {
    let mut spec = MapSpec::new(MapType::LpmTrie, 8, 4, max_entries);
    spec.flags = F_NO_PREALLOC;
    create_map(&spec, cfg).expect("lpm trie")
}

#[test]
fn lpm_trie_matches_the_longest_prefix_and_iterates_in_postorder() {
    let cfg = config();
    let t = lpm(8, &cfg);
    // The example at the top of the kernel's lpm_trie.c.
    t.update(&v4(16, [192, 168, 0, 0]), &u32v(1), UPDATE_ANY)
        .expect("1");
    t.update(&v4(24, [192, 168, 0, 0]), &u32v(2), UPDATE_ANY)
        .expect("2");
    t.update(&v4(24, [192, 168, 128, 0]), &u32v(3), UPDATE_ANY)
        .expect("3");
    t.update(&v4(24, [192, 168, 1, 0]), &u32v(5), UPDATE_ANY)
        .expect("5");
    let look = |a: [u8; 4]| {
        t.lookup(&v4(32, a))
            .map(|v| u32::from_ne_bytes([v[0], v[1], v[2], v[3]]))
    };
    assert_eq!(look([192, 168, 0, 5]), Ok(2));
    assert_eq!(look([192, 168, 1, 7]), Ok(5));
    assert_eq!(look([192, 168, 2, 1]), Ok(1));
    assert_eq!(look([192, 168, 128, 9]), Ok(3));
    assert_eq!(look([192, 169, 0, 0]), Err(MapError::NotFound));
    // A shorter lookup prefix only sees prefixes it covers.
    assert_eq!(t.lookup(&v4(20, [192, 168, 0, 0])).map(|v| v[0]), Ok(1));
    assert_eq!(t.lookup(&v4(33, [192, 168, 0, 0])), Err(MapError::NotFound));
    // Postorder: more specific first (the kernel's comment lists this order).
    assert_eq!(
        t.keys().expect("keys"),
        vec![
            v4(24, [192, 168, 0, 0]),
            v4(24, [192, 168, 1, 0]),
            v4(24, [192, 168, 128, 0]),
            v4(16, [192, 168, 0, 0]),
        ]
    );
    // A key that is not there restarts at the leftmost element.
    assert_eq!(
        t.next_key(Some(&v4(8, [10, 0, 0, 0]))),
        Ok(v4(24, [192, 168, 0, 0]))
    );
    // Exact-match update and delete.
    assert_eq!(
        t.update(&v4(16, [192, 168, 9, 9]), &u32v(9), UPDATE_NOEXIST),
        Err(MapError::Exists)
    );
    assert_eq!(
        t.update(&v4(23, [192, 168, 0, 0]), &u32v(9), UPDATE_EXIST),
        Err(MapError::NotFound)
    );
    assert_eq!(errno(t.update(&v4(33, [0; 4]), &u32v(9), UPDATE_ANY)), 22);
    assert_eq!(errno(t.update(&v4(8, [0; 4]), &u32v(9), 4)), 22);
    assert_eq!(
        t.delete(&v4(23, [192, 168, 0, 0])),
        Err(MapError::NotFound),
        "intermediate"
    );
    t.delete(&v4(24, [192, 168, 0, 0])).expect("delete");
    assert_eq!(look([192, 168, 0, 5]), Ok(1));
    assert_eq!(errno(t.delete(&v4(33, [0; 4]))), 22);
    let lpm = t.as_any().downcast_ref::<LpmTrieMap>().expect("trie");
    assert_eq!(lpm.len(), 3);
}

#[test]
fn lpm_trie_full_is_enospc_replacing_is_fine_and_memory_is_charged() {
    let cfg = config();
    let t = lpm(2, &cfg);
    t.update(&v4(8, [10, 0, 0, 0]), &u32v(1), UPDATE_ANY)
        .expect("1");
    let one = cfg.memory.used();
    assert!(one > 0);
    t.update(&v4(8, [11, 0, 0, 0]), &u32v(2), UPDATE_ANY)
        .expect("2");
    assert_eq!(cfg.memory.used(), 2 * one);
    assert_eq!(
        errno(t.update(&v4(8, [12, 0, 0, 0]), &u32v(3), UPDATE_ANY)),
        28,
        "ENOSPC"
    );
    t.update(&v4(8, [11, 0, 0, 0]), &u32v(4), UPDATE_ANY)
        .expect("replace when full");
    assert_eq!(
        errno(t.update(&v4(8, [12, 0, 0, 0]), &u32v(3), UPDATE_EXIST)),
        2
    );
    t.delete(&v4(8, [10, 0, 0, 0])).expect("delete");
    assert_eq!(cfg.memory.used(), one);
    drop(t);
    assert_eq!(cfg.memory.used(), 0);
    let mut prealloc = MapSpec::new(MapType::LpmTrie, 8, 4, 2);
    assert_eq!(
        errno(create_map(&prealloc, &cfg)),
        22,
        "BPF_F_NO_PREALLOC is required"
    );
    prealloc.flags = F_NO_PREALLOC;
    prealloc.key_size = 4;
    assert_eq!(errno(create_map(&prealloc, &cfg)), 22, "no data bytes");
    prealloc.key_size = 261;
    assert_eq!(
        errno(create_map(&prealloc, &cfg)),
        22,
        "256 data bytes at most"
    );
}

#[test]
fn lpm_trie_values_stay_put_for_a_run() {
    let cfg = config();
    let t = lpm(4, &cfg);
    let key = v4(24, [10, 1, 2, 0]);
    t.update(&key, &u32v(1), UPDATE_ANY).expect("insert");
    let guard = RunGuard::pin();
    let v = t
        .lookup_value(&v4(32, [10, 1, 2, 3]), 0, &guard)
        .expect("match");
    assert_eq!((v.len(), v.addr() % 8, v.is_writable()), (4, 0, true));
    t.update(&key, &u32v(2), UPDATE_ANY).expect("replace");
    t.delete(&key).expect("delete");
    // SAFETY: the value was found under `guard`, which is still pinned.
    let old = unsafe { std::ptr::read_volatile(v.as_ptr().cast::<u32>()) };
    assert_eq!(old, 1, "the old value stays readable until the run ends");
    drop(guard);
    assert!(t.lookup_value(&key, 0, &RunGuard::pin()).is_none());
}

fn trivial_program() -> Arc<LoadedProgram> {
    let insns = vec![
        RawInsn::new(0xb7, 0, 0, 0, 7),
        RawInsn::new(0x95, 0, 0, 0, 0),
    ];
    let prog = Program::from_slots(insns).expect("valid");
    Arc::new(LoadedProgram::new(prog, ProgramType::Conformance).expect("loads"))
}

#[test]
fn prog_array_slots() {
    let m = create_map(&MapSpec::new(MapType::ProgArray, 4, 4, 3), &config()).expect("prog array");
    let pa = m
        .as_any()
        .downcast_ref::<ProgArrayMap>()
        .expect("prog array");
    let p = trivial_program();
    assert!(m.program_at(1).is_none());
    pa.set(1, Arc::clone(&p)).expect("set");
    assert!(Arc::ptr_eq(&m.program_at(1).expect("slot 1"), &p));
    assert!(m.program_at(3).is_none());
    assert_eq!(errno(pa.set(3, Arc::clone(&p))), 7, "E2BIG past the end");
    assert_eq!(errno(m.lookup(&u32v(1))), 524, "no fds to report");
    assert_eq!(errno(m.update(&u32v(1), &u32v(5), UPDATE_ANY)), 524);
    assert_eq!(errno(m.prog_update(&u32v(1), &u32v(5), UPDATE_ANY, 0)), 524);
    assert_eq!(
        m.keys().expect("keys").len(),
        3,
        "every index, like an array"
    );
    m.delete(&u32v(1)).expect("delete clears");
    assert!(m.program_at(1).is_none());
    assert_eq!(m.delete(&u32v(1)), Err(MapError::NotFound));
    assert_eq!(errno(pa.clear(5)), 7);
    let mut bad = MapSpec::new(MapType::ProgArray, 4, 4, 3);
    bad.flags = F_RDONLY_PROG;
    assert_eq!(errno(create_map(&bad, &config())), 22);
}

#[test]
fn maps_of_maps_check_the_inner_template() {
    let cfg = config();
    let inner = MapSpec::new(MapType::Array, 4, 8, 4);
    let mut spec = MapSpec::new(MapType::ArrayOfMaps, 4, 4, 2);
    spec.inner = Some(Box::new(inner.clone()));
    let outer = create_map(&spec, &cfg).expect("array of maps");
    let aom = outer
        .as_any()
        .downcast_ref::<MapOfMaps>()
        .expect("map of maps");
    let a: Arc<dyn Map> = Arc::from(create_map(&inner, &cfg).expect("inner"));
    aom.set(&u32v(0), Arc::clone(&a)).expect("matching inner");
    assert!(Arc::ptr_eq(
        &outer.lookup_inner(&u32v(0)).expect("inner"),
        &a
    ));
    assert!(outer.lookup_inner(&u32v(1)).is_none());
    assert!(outer.lookup_inner(&u32v(2)).is_none());
    for (t, k, v, n) in [
        (MapType::Hash, 4, 8, 4),
        (MapType::Array, 4, 16, 4),
        (MapType::Array, 4, 8, 5),
    ] {
        let other: Arc<dyn Map> =
            Arc::from(create_map(&MapSpec::new(t, k, v, n), &cfg).expect("other"));
        assert_eq!(errno(aom.set(&u32v(1), other)), 22, "{t} {k}/{v}/{n}");
    }
    assert_eq!(errno(aom.set(&u32v(2), Arc::clone(&a))), 7);
    assert_eq!(
        errno(aom.set_with_flags(&u32v(1), Arc::clone(&a), UPDATE_NOEXIST)),
        22
    );
    assert_eq!(errno(outer.lookup(&u32v(0))), 524);
    assert_eq!(outer.lookup(&u32v(1)), Err(MapError::NotFound));
    outer.delete(&u32v(0)).expect("delete");
    assert_eq!(outer.delete(&u32v(0)), Err(MapError::NotFound));
    assert_eq!(errno(outer.delete(&u32v(2))), 7);

    // BPF_F_INNER_MAP on an array template lets max_entries differ.
    let mut inner = MapSpec::new(MapType::Array, 4, 8, 4);
    inner.flags = F_INNER_MAP;
    let mut hspec = MapSpec::new(MapType::HashOfMaps, 8, 4, 1);
    hspec.inner = Some(Box::new(inner.clone()));
    let houter = create_map(&hspec, &cfg).expect("hash of maps");
    let hom = houter
        .as_any()
        .downcast_ref::<MapOfMaps>()
        .expect("hash of maps");
    inner.max_entries = 100;
    let big: Arc<dyn Map> = Arc::from(create_map(&inner, &cfg).expect("inner"));
    let key = 5u64.to_ne_bytes();
    hom.set(&key, Arc::clone(&big)).expect("any max_entries");
    assert_eq!(
        hom.set_with_flags(&key, Arc::clone(&big), UPDATE_NOEXIST),
        Err(MapError::Exists)
    );
    assert_eq!(
        errno(hom.set(&6u64.to_ne_bytes(), Arc::clone(&big))),
        7,
        "full"
    );
    assert_eq!(houter.keys().expect("keys"), vec![key.to_vec()]);
    assert!(Arc::ptr_eq(
        &houter.lookup_inner(&key).expect("inner"),
        &big
    ));

    // Two levels are refused.
    let mut nested = MapSpec::new(MapType::ArrayOfMaps, 4, 4, 1);
    nested.inner = Some(Box::new(spec.clone()));
    assert_eq!(errno(create_map(&nested, &cfg)), 22);
}
