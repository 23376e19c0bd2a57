//! Differential tests for queues, stacks, bloom filters, LPM tries, program arrays and
//! maps of maps: the same operations on a bpfvm map and a kernel map of the same spec give
//! the same result (Ok, or the same errno) at each step and the same final contents.
#![cfg(target_os = "linux")]

use std::os::fd::AsRawFd;
use std::sync::Arc;

use bpfvm_abi::{
    F_NO_COMMON_LRU, F_NO_PREALLOC, F_RDONLY, F_RDONLY_PROG, F_WRONLY, F_ZERO_SEED, MapError,
    MapSpec, MapType, UPDATE_ANY, UPDATE_EXIST, UPDATE_NOEXIST,
};
use bpfvm_kernel::{Bpf, KernelError, MapCreate};
use bpfvm_runtime::maps::{
    BloomFilterMap, F_INNER_MAP, Map, MapConfig, MapOfMaps, ProgArrayMap, QueueStackMap, create_map,
};

type Outcome<T> = Result<T, i32>;

fn ours<T>(r: Result<T, MapError>) -> Outcome<T> {
    r.map_err(|e| e.errno())
}

fn theirs<T>(r: Result<T, KernelError>) -> Outcome<T> {
    r.map_err(|e| e.errno().map_or(-1, |e| e.0))
}

/// `Ok(Some(v))` / `Ok(None)` (ENOENT) from the kernel layer, as an outcome.
fn found<T>(r: Result<Option<T>, KernelError>) -> Outcome<T> {
    theirs(r).and_then(|v| v.ok_or(2))
}

fn config() -> MapConfig {
    MapConfig::new(bpfvm_kernel::possible_cpus().expect("cpus"), 64 << 20)
}

fn kernel_create(
    spec: &MapSpec,
    inner: Option<&bpfvm_kernel::Map>,
) -> Result<bpfvm_kernel::Map, KernelError> {
    let mut req = MapCreate::new(
        bpfvm_kernel::MapType(spec.map_type as u32),
        spec.key_size,
        spec.value_size,
        spec.max_entries,
    )
    .with_flags(spec.flags)
    .with_map_extra(spec.map_extra);
    if let Some(inner) = inner {
        req = req.with_inner_map(inner.fd());
    }
    Bpf::new().map_create(&req)
}

/// A small deterministic generator (xorshift), so sequences are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn spec(t: MapType, k: u32, v: u32, n: u32, flags: u32) -> MapSpec {
    let mut s = MapSpec::new(t, k, v, n);
    s.flags = flags;
    s
}

#[test]
fn create_checks_match_the_kernel() {
    if !bpfvm_kernel::kernel_available_for_test("create_checks_match_the_kernel") {
        return;
    }
    let cfg = config();
    let mut cases = vec![
        spec(MapType::Queue, 0, 4, 4, 0),
        spec(MapType::Queue, 0, 4, 4, F_NO_PREALLOC),
        spec(MapType::Queue, 0, 4, 4, F_ZERO_SEED),
        spec(MapType::Stack, 0, 4, 4, F_RDONLY_PROG),
        spec(MapType::Stack, 0, 4, 4, F_RDONLY | F_WRONLY),
        spec(MapType::Stack, 4, 4, 4, 0),
        spec(MapType::Queue, 0, 0, 4, 0),
        spec(MapType::BloomFilter, 0, 4, 4, 0),
        spec(MapType::BloomFilter, 0, 4, 4, F_ZERO_SEED | F_RDONLY_PROG),
        spec(MapType::BloomFilter, 0, 4, 4, F_NO_PREALLOC),
        spec(MapType::BloomFilter, 4, 4, 4, 0),
        spec(MapType::LpmTrie, 8, 4, 4, F_NO_PREALLOC),
        spec(MapType::LpmTrie, 8, 4, 4, 0),
        spec(MapType::LpmTrie, 8, 4, 4, F_NO_PREALLOC | F_ZERO_SEED),
        spec(MapType::LpmTrie, 4, 4, 4, F_NO_PREALLOC),
        spec(MapType::LpmTrie, 5, 4, 4, F_NO_PREALLOC),
        spec(MapType::LpmTrie, 260, 4, 4, F_NO_PREALLOC),
        spec(MapType::LpmTrie, 261, 4, 4, F_NO_PREALLOC),
        spec(MapType::LpmTrie, 8, 4, 4, F_NO_PREALLOC | F_RDONLY_PROG),
        spec(MapType::ProgArray, 4, 4, 4, 0),
        spec(MapType::ProgArray, 4, 4, 4, F_RDONLY_PROG),
        spec(MapType::ProgArray, 4, 4, 4, F_RDONLY),
        spec(MapType::ProgArray, 4, 4, 4, F_INNER_MAP),
        spec(MapType::ProgArray, 4, 4, 4, 1 << 10),
        spec(MapType::ProgArray, 4, 4, 4, F_NO_PREALLOC),
        spec(MapType::ProgArray, 4, 8, 4, 0),
        spec(MapType::PercpuArray, 4, 8, 4, F_INNER_MAP),
        spec(MapType::Array, 4, 8, 4, F_INNER_MAP),
        spec(MapType::Array, 4, 8, 4, 1 << 11),
        spec(MapType::PercpuArray, 4, 8, 4, 1 << 11),
    ];
    for extra in [1, 15, 16] {
        let mut s = spec(MapType::BloomFilter, 0, 4, 4, 0);
        s.map_extra = extra;
        cases.push(s);
    }
    for s in &cases {
        let a = ours(create_map(s, &cfg)).map(drop);
        let b = theirs(kernel_create(s, None)).map(drop);
        assert_eq!(a, b, "{s:?}");
    }
    // Maps of maps: with an inner template.
    let inner = spec(MapType::Array, 4, 8, 4, 0);
    let kinner = kernel_create(&inner, None).expect("kernel inner");
    for (t, k, flags) in [
        (MapType::ArrayOfMaps, 4, 0),
        (MapType::ArrayOfMaps, 4, F_RDONLY_PROG),
        (MapType::ArrayOfMaps, 4, F_INNER_MAP),
        (MapType::ArrayOfMaps, 4, F_NO_PREALLOC),
        (MapType::HashOfMaps, 8, 0),
        (MapType::HashOfMaps, 8, F_NO_PREALLOC),
        (MapType::HashOfMaps, 8, F_NO_COMMON_LRU),
        (MapType::HashOfMaps, 8, F_ZERO_SEED),
    ] {
        let mut s = spec(t, k, 4, 4, flags);
        s.inner = Some(Box::new(inner.clone()));
        let a = ours(create_map(&s, &cfg)).map(drop);
        let b = theirs(kernel_create(&s, Some(&kinner))).map(drop);
        assert_eq!(a, b, "{s:?}");
    }
    // Two levels.
    let mut outer = spec(MapType::ArrayOfMaps, 4, 4, 4, 0);
    outer.inner = Some(Box::new(inner.clone()));
    let kouter = kernel_create(&outer, Some(&kinner)).expect("kernel outer");
    let mut nested = spec(MapType::ArrayOfMaps, 4, 4, 4, 0);
    nested.inner = Some(Box::new(outer));
    assert_eq!(
        ours(create_map(&nested, &cfg)).map(drop),
        theirs(kernel_create(&nested, Some(&kouter))).map(drop)
    );
}

/// Pushes, pops, peeks and the keyless error cases, in a reproducible random order, on a
/// queue and a stack of 3 entries; then both are drained.
#[test]
fn queue_and_stack_sequences_match_the_kernel() {
    if !bpfvm_kernel::kernel_available_for_test("queue_and_stack_sequences_match_the_kernel") {
        return;
    }
    let cfg = config();
    for t in [MapType::Queue, MapType::Stack] {
        for value_size in [4u32, 7] {
            let s = spec(t, 0, value_size, 3, 0);
            let mine = create_map(&s, &cfg).expect("ours");
            let qs = mine
                .as_any()
                .downcast_ref::<QueueStackMap>()
                .expect("queue");
            let k = kernel_create(&s, None).expect("kernel");
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ value_size as u64 ^ t as u64);
            for step in 0..600 {
                let what = rng.below(10);
                let v: Vec<u8> = (0..value_size)
                    .map(|i| (step as u8).wrapping_add(i as u8))
                    .collect();
                let (a, b) = match what {
                    0..=3 => {
                        let flags = [UPDATE_ANY, UPDATE_ANY, UPDATE_EXIST, UPDATE_NOEXIST, 3, 4]
                            [rng.below(6) as usize];
                        (
                            ours(mine.update(&[], &v, flags)).map(|()| Vec::new()),
                            theirs(k.update(&[], &v, flags)).map(|()| Vec::new()),
                        )
                    }
                    4 | 5 => {
                        let flags = if rng.below(8) == 0 { 1 } else { 0 };
                        (
                            ours(qs.lookup_and_delete(flags)),
                            found(k.lookup_and_delete(&[], flags)),
                        )
                    }
                    6 | 7 => (ours(mine.lookup(&[])), found(k.lookup(&[]))),
                    8 => (
                        ours(mine.delete(&[])).map(|()| Vec::new()),
                        theirs(k.delete(&[])).and_then(|d| if d { Ok(Vec::new()) } else { Err(2) }),
                    ),
                    _ => (ours(mine.next_key(None)), found(k.next_key(None))),
                };
                assert_eq!(a, b, "{t} step {step} op {what}");
            }
            loop {
                let a = ours(qs.lookup_and_delete(0));
                let b = found(k.lookup_and_delete(&[], 0));
                assert_eq!(a, b, "{t} draining");
                if a.is_err() {
                    break;
                }
            }
        }
    }
}

/// Bloom filters with a zero seed answer every query exactly as the kernel's do: the same
/// bits are set, so the same false positives appear (this checks the hashing, jhash2 for
/// value sizes that are multiples of 4 and jhash otherwise, and the bit array size).
#[test]
fn bloom_filters_answer_like_the_kernel() {
    if !bpfvm_kernel::kernel_available_for_test("bloom_filters_answer_like_the_kernel") {
        return;
    }
    let cfg = config();
    for (value_size, entries, extra) in [
        (4u32, 16u32, 0u64),
        (8, 40, 3),
        (5, 10, 1),
        (13, 100, 7),
        (2, 3, 15),
    ] {
        let mut s = spec(MapType::BloomFilter, 0, value_size, entries, F_ZERO_SEED);
        s.map_extra = extra;
        let mine = create_map(&s, &cfg).expect("ours");
        let bloom = mine
            .as_any()
            .downcast_ref::<BloomFilterMap>()
            .expect("bloom");
        let k = kernel_create(&s, None).expect("kernel");
        let value = |i: u32| -> Vec<u8> {
            (0..value_size)
                .map(|j| (i.wrapping_mul(2_654_435_761) >> (j % 4 * 8)) as u8 ^ j as u8)
                .collect()
        };
        // Error cases.
        for flags in [UPDATE_NOEXIST, UPDATE_EXIST, 4] {
            assert_eq!(
                ours(mine.update(&[], &value(0), flags)),
                theirs(k.update(&[], &value(0), flags))
            );
        }
        assert_eq!(
            ours(mine.delete(&[])),
            theirs(k.delete(&[])).and_then(|d| if d { Ok(()) } else { Err(2) }),
            "delete"
        );
        assert_eq!(
            ours(mine.next_key(None)).map(drop),
            found(k.next_key(None)).map(drop),
            "next_key"
        );
        // A host pop is ENOTSUPP in the kernel (only queues, stacks and hashes have
        // lookup-and-delete); the program-side op bpfvm implements is EOPNOTSUPP.
        assert_eq!(
            found(k.lookup_and_delete(&[], 0)).map(drop),
            Err(524),
            "host pop"
        );
        assert_eq!(
            ours(mine.pop(&mut vec![0; value_size as usize])),
            Err(95),
            "pop"
        );
        let inserted = entries;
        for i in 0..inserted {
            assert_eq!(
                ours(mine.update(&[], &value(i), UPDATE_ANY)),
                theirs(k.update(&[], &value(i), UPDATE_ANY))
            );
        }
        let mut positives = 0;
        for i in 0..3000 {
            let mut q = value(i);
            let a = bloom.contains(&q).is_ok();
            let b = k.lookup_into(&[], &mut q, 0).expect("kernel peek");
            assert_eq!(a, b, "value {i} (size {value_size}, {extra} hashes)");
            if i < inserted {
                assert!(a, "inserted values are found");
            } else if a {
                positives += 1;
            }
        }
        // The comparison above is only meaningful if some false positives occurred.
        assert!(
            positives > 0 || extra == 15,
            "no false positives to compare ({value_size})"
        );
    }
    // A random seed: inserted values are still found on both.
    let s = spec(MapType::BloomFilter, 0, 4, 8, 0);
    let mine = create_map(&s, &cfg).expect("ours");
    let k = kernel_create(&s, None).expect("kernel");
    for i in 0..8u32 {
        mine.update(&[], &i.to_ne_bytes(), UPDATE_ANY)
            .expect("ours");
        k.update(&[], &i.to_ne_bytes(), UPDATE_ANY).expect("kernel");
        let mut q = i.to_ne_bytes();
        assert_eq!(mine.peek(&mut q), Ok(()));
        assert!(k.lookup_into(&[], &mut q, 0).expect("kernel"));
    }
}

fn lpm_key(prefixlen: u32, data: &[u8]) -> Vec<u8> {
    let mut k = prefixlen.to_ne_bytes().to_vec();
    k.extend_from_slice(data);
    k
}

/// Random updates (every flag), deletes, exact lookups and next-key calls on tries with
/// 1- and 4-byte data and few entries (so prefixes nest, split and fill the trie); after
/// every step the keys in iteration order (the kernel's postorder) must be identical, and
/// at the end lookups of every 1-byte address, and of many 4-byte ones, must agree.
#[test]
fn lpm_tries_match_the_kernel() {
    if !bpfvm_kernel::kernel_available_for_test("lpm_tries_match_the_kernel") {
        return;
    }
    let cfg = config();
    for (data_size, max_entries, seed) in [(1usize, 6u32, 1u64), (1, 40, 2), (4, 8, 3), (4, 64, 4)]
    {
        let s = spec(
            MapType::LpmTrie,
            4 + data_size as u32,
            4,
            max_entries,
            F_NO_PREALLOC,
        );
        let mine = create_map(&s, &cfg).expect("ours");
        let k = kernel_create(&s, None).expect("kernel");
        let mut rng = Rng(0x1234_5678_9abc_def0 ^ seed);
        let max_prefix = 8 * data_size as u64;
        let random_key = |rng: &mut Rng| {
            let prefixlen = if rng.below(20) == 0 {
                max_prefix + 1
            } else {
                rng.below(max_prefix + 1)
            } as u32;
            // Few distinct high bits so that prefixes share paths.
            let data: Vec<u8> = (0..data_size)
                .map(|i| {
                    if i == 0 {
                        (rng.below(8) as u8) << 5 | rng.below(4) as u8
                    } else {
                        rng.below(3) as u8
                    }
                })
                .collect();
            lpm_key(prefixlen, &data)
        };
        for step in 0..800u32 {
            let key = random_key(&mut rng);
            let what = rng.below(10);
            let v = step.to_ne_bytes();
            let (a, b) = match what {
                0..=4 => {
                    let flags = [UPDATE_ANY, UPDATE_ANY, UPDATE_NOEXIST, UPDATE_EXIST, 3]
                        [rng.below(5) as usize];
                    (
                        ours(mine.update(&key, &v, flags)).map(|()| Vec::new()),
                        theirs(k.update(&key, &v, flags)).map(|()| Vec::new()),
                    )
                }
                5 | 6 => (
                    ours(mine.delete(&key)).map(|()| Vec::new()),
                    theirs(k.delete(&key)).and_then(|d| if d { Ok(Vec::new()) } else { Err(2) }),
                ),
                7 | 8 => (ours(mine.lookup(&key)), found(k.lookup(&key))),
                _ => (
                    ours(mine.next_key(Some(&key))),
                    found(k.next_key(Some(&key))),
                ),
            };
            assert_eq!(a, b, "data {data_size} step {step} op {what} key {key:?}");
            assert_eq!(
                mine.keys().expect("our keys"),
                k.keys().expect("kernel keys"),
                "iteration order after step {step}"
            );
        }
        // Longest-prefix-match lookups of many addresses, at every prefix length.
        let queries: Vec<Vec<u8>> = if data_size == 1 {
            (0..=255u8).map(|b| vec![b]).collect()
        } else {
            (0..4000u32)
                .map(|i| {
                    let x = i.wrapping_mul(2_654_435_761);
                    vec![
                        (x >> 24) as u8 & 0xe3,
                        (x >> 8) as u8 % 3,
                        x as u8 % 3,
                        (x >> 16) as u8,
                    ]
                })
                .collect()
        };
        for q in &queries {
            for prefixlen in [max_prefix as u32, max_prefix as u32 / 2, 3] {
                let key = lpm_key(prefixlen, q);
                assert_eq!(
                    ours(mine.lookup(&key)),
                    found(k.lookup(&key)),
                    "lookup {key:?}"
                );
            }
        }
    }
}

#[test]
fn maps_of_maps_match_the_kernel() {
    if !bpfvm_kernel::kernel_available_for_test("maps_of_maps_match_the_kernel") {
        return;
    }
    let cfg = config();
    let template = spec(MapType::Array, 4, 8, 4, 0);
    let candidates = [
        spec(MapType::Array, 4, 8, 4, 0),
        spec(MapType::Array, 4, 8, 5, 0),
        spec(MapType::Array, 4, 16, 4, 0),
        spec(MapType::Array, 4, 8, 4, F_RDONLY),
        spec(MapType::Array, 4, 8, 4, F_RDONLY_PROG),
        spec(MapType::Hash, 4, 8, 4, 0),
        spec(MapType::PercpuArray, 4, 8, 4, 0),
    ];
    for (outer_type, key_size) in [(MapType::ArrayOfMaps, 4u32), (MapType::HashOfMaps, 4)] {
        for template_flags in [0, F_INNER_MAP] {
            let mut template = template.clone();
            template.flags = template_flags;
            let mut outer = spec(outer_type, key_size, 4, 2, 0);
            outer.inner = Some(Box::new(template.clone()));
            let kt = kernel_create(&template, None).expect("kernel template");
            let k = kernel_create(&outer, Some(&kt)).expect("kernel outer");
            let mine = create_map(&outer, &cfg).expect("ours");
            let mom = mine
                .as_any()
                .downcast_ref::<MapOfMaps>()
                .expect("map of maps");
            let mut script = Vec::new();
            for (i, c) in candidates.iter().enumerate() {
                script.push((i as u32 % 3, c.clone(), UPDATE_ANY));
            }
            let same = template.clone();
            script.extend([
                (0, same.clone(), UPDATE_NOEXIST),
                (1, same.clone(), UPDATE_EXIST),
                (2, same.clone(), UPDATE_ANY),
                (3, same.clone(), UPDATE_ANY),
                (1, same.clone(), UPDATE_ANY),
                (3, same.clone(), UPDATE_ANY),
                (0, same.clone(), UPDATE_EXIST),
            ]);
            for (step, (key, inner, flags)) in script.into_iter().enumerate() {
                let kinner = kernel_create(&inner, None).expect("kernel inner");
                let oinner: Arc<dyn Map> = Arc::from(create_map(&inner, &cfg).expect("our inner"));
                let key = key.to_ne_bytes();
                let a = ours(mom.set_with_flags(&key, oinner, flags));
                let fd = kinner.fd().as_raw_fd() as u32;
                let b = theirs(k.update(&key, &fd.to_ne_bytes(), flags));
                assert_eq!(
                    a, b,
                    "{outer_type} template {template_flags:#x} step {step}: {inner:?} flags {flags}"
                );
            }
            for key in [0u32, 1, 2, 3] {
                let key = key.to_ne_bytes();
                // Presence: the kernel answers an id, bpfvm the map itself.
                let a = mine.lookup_inner(&key).is_some();
                let b = k.lookup(&key).ok().flatten().is_some();
                assert_eq!(a, b, "{outer_type} presence of {key:?}");
            }
            let mut ours_keys = mine.keys().expect("our keys");
            let mut kernel_keys = k.keys().expect("kernel keys");
            ours_keys.sort();
            kernel_keys.sort();
            assert_eq!(ours_keys, kernel_keys, "{outer_type} keys");
            for key in [0u32, 1, 1, 3, 7] {
                let key = key.to_ne_bytes();
                let a = ours(mine.delete(&key));
                let b = theirs(k.delete(&key)).and_then(|d| if d { Ok(()) } else { Err(2) });
                assert_eq!(a, b, "{outer_type} delete {key:?}");
            }
        }
    }
}

/// Program array slots without programs: out-of-range and flag errors on update, delete
/// of empty and out-of-range slots, iteration.
#[test]
fn prog_array_errors_match_the_kernel() {
    if !bpfvm_kernel::kernel_available_for_test("prog_array_errors_match_the_kernel") {
        return;
    }
    let s = spec(MapType::ProgArray, 4, 4, 3, 0);
    let mine = create_map(&s, &config()).expect("ours");
    let pa = mine
        .as_any()
        .downcast_ref::<ProgArrayMap>()
        .expect("prog array");
    let k = kernel_create(&s, None).expect("kernel");
    // Index checks come before the fd is looked at.
    let bad_fd = u32::MAX.to_ne_bytes();
    let program = Arc::new(
        bpfvm_runtime::LoadedProgram::new(
            bpfvm_isa::Program::from_slots(vec![
                bpfvm_isa::RawInsn::new(0xb7, 0, 0, 0, 0),
                bpfvm_isa::RawInsn::new(0x95, 0, 0, 0, 0),
            ])
            .expect("valid"),
            bpfvm_runtime::ProgramType::Conformance,
        )
        .expect("loads"),
    );
    assert_eq!(
        ours(pa.set(3, Arc::clone(&program))),
        theirs(k.update(&3u32.to_ne_bytes(), &bad_fd, UPDATE_ANY))
    );
    for key in [0u32, 2, 3, 100] {
        let key = key.to_ne_bytes();
        let a = ours(mine.delete(&key));
        let b = theirs(k.delete(&key)).and_then(|d| if d { Ok(()) } else { Err(2) });
        assert_eq!(a, b, "delete {key:?}");
    }
    assert_eq!(mine.keys().expect("ours"), k.keys().expect("kernel"));
}
