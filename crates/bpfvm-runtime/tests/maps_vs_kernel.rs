//! Differential tests: the same operations on a bpfvm map and a kernel map of the same
//! spec give the same result (Ok, or the same errno) at each step and the same final
//! contents (compared as sets: hash iteration orders differ).
#![cfg(target_os = "linux")]

use std::collections::BTreeMap;

use bpfvm_abi::{
    F_NO_COMMON_LRU, F_NO_PREALLOC, F_RDONLY, F_WRONLY, F_ZERO_SEED, MapError, MapSpec, MapType,
    UPDATE_ANY, UPDATE_EXIST, UPDATE_NOEXIST,
};
use bpfvm_kernel::{Bpf, KernelError, MapCreate};
use bpfvm_runtime::maps::{Map, MapConfig, create_map};
use proptest::prelude::*;

/// A result reduced to what the kernel can tell: the value, or the errno.
type Outcome<T> = Result<T, i32>;

fn ours<T>(r: Result<T, MapError>) -> Outcome<T> {
    r.map_err(|e| e.errno())
}

fn theirs<T>(r: Result<T, KernelError>) -> Outcome<T> {
    r.map_err(|e| e.errno().map_or(-1, |e| e.0))
}

struct Pair {
    spec: MapSpec,
    ours: Box<dyn Map>,
    kernel: bpfvm_kernel::Map,
}

fn cpus() -> usize {
    bpfvm_kernel::possible_cpus().expect("possible CPUs")
}

impl Pair {
    fn new(spec: MapSpec) -> Pair {
        let config = MapConfig::new(cpus(), 64 << 20);
        let ours = create_map(&spec, &config).expect("bpfvm map");
        let kernel = Bpf::new()
            .map_create(
                &MapCreate::new(
                    bpfvm_kernel::MapType(spec.map_type as u32),
                    spec.key_size,
                    spec.value_size,
                    spec.max_entries,
                )
                .with_flags(spec.flags),
            )
            .expect("kernel map");
        assert_eq!(ours.value_len(), kernel.value_len(), "host value length");
        Pair { spec, ours, kernel }
    }

    fn is_hash(&self) -> bool {
        !matches!(self.spec.map_type, MapType::Array | MapType::PercpuArray)
    }

    fn apply(&self, op: &Op, step: usize) {
        let key = op.key().to_ne_bytes();
        match op {
            Op::Update(_, seed, flags) => {
                let value = value_of(*seed, self.ours.value_len());
                let a = ours(self.ours.update(&key, &value, *flags));
                let b = theirs(self.kernel.update(&key, &value, *flags));
                assert_eq!(a, b, "step {step}: {op:?}");
            }
            Op::Delete(_) => {
                let a = ours(self.ours.delete(&key));
                let b =
                    theirs(self.kernel.delete(&key)).and_then(|d| if d { Ok(()) } else { Err(2) });
                assert_eq!(a, b, "step {step}: {op:?}");
            }
            Op::Lookup(_) => {
                let a = ours(self.ours.lookup(&key));
                let b = theirs(self.kernel.lookup(&key)).and_then(|v| v.ok_or(2));
                assert_eq!(a, b, "step {step}: {op:?}");
            }
            Op::NextKey(_) => {
                let a = ours(self.ours.next_key(Some(&key)));
                let b = theirs(self.kernel.next_key(Some(&key))).and_then(|v| v.ok_or(2));
                if self.is_hash() {
                    // Orders differ; both must find some key exactly when the map is not
                    // empty and the key is absent, or both fail alike for an absent key
                    // in an empty map.
                    if self.kernel.lookup(&key).ok().flatten().is_none() {
                        assert_eq!(a.is_ok(), b.is_ok(), "step {step}: {op:?}");
                    }
                } else {
                    assert_eq!(a, b, "step {step}: {op:?}");
                }
            }
        }
        let a = ours(self.ours.next_key(None));
        let b = theirs(self.kernel.next_key(None)).and_then(|v| v.ok_or(2));
        assert_eq!(a.is_ok(), b.is_ok(), "step {step}: emptiness after {op:?}");
    }

    fn contents_ours(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let keys = self.ours.keys().expect("our keys");
        keys.into_iter()
            .map(|k| {
                let v = self.ours.lookup(&k).expect("our value");
                (k, v)
            })
            .collect()
    }

    fn contents_kernel(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let keys = self.kernel.keys().expect("kernel keys");
        keys.into_iter()
            .map(|k| {
                let v = self
                    .kernel
                    .lookup(&k)
                    .expect("kernel lookup")
                    .expect("value");
                (k, v)
            })
            .collect()
    }

    fn assert_same_contents(&self) {
        assert_eq!(
            self.contents_ours(),
            self.contents_kernel(),
            "final contents"
        );
    }
}

fn value_of(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

#[derive(Debug, Clone)]
enum Op {
    Update(u32, u8, u64),
    Delete(u32),
    Lookup(u32),
    NextKey(u32),
}

impl Op {
    fn key(&self) -> u32 {
        match self {
            Op::Update(k, ..) | Op::Delete(k) | Op::Lookup(k) | Op::NextKey(k) => *k,
        }
    }
}

fn op_strategy(keys: u32) -> impl Strategy<Value = Op> {
    let flags = prop_oneof![
        4 => Just(UPDATE_ANY),
        3 => Just(UPDATE_NOEXIST),
        3 => Just(UPDATE_EXIST),
        1 => Just(3u64),
        1 => Just(4u64),
        1 => Just(8u64),
    ];
    prop_oneof![
        6 => (0..keys, any::<u8>(), flags).prop_map(|(k, s, f)| Op::Update(k, s, f)),
        3 => (0..keys).prop_map(Op::Delete),
        2 => (0..keys).prop_map(Op::Lookup),
        1 => (0..keys).prop_map(Op::NextKey),
    ]
}

fn run(spec: MapSpec, ops: &[Op]) {
    let pair = Pair::new(spec);
    for (i, op) in ops.iter().enumerate() {
        pair.apply(op, i);
    }
    pair.assert_same_contents();
}

fn spec(map_type: MapType, value_size: u32, max_entries: u32, flags: u32) -> MapSpec {
    let mut s = MapSpec::new(map_type, 4, value_size, max_entries);
    s.flags = flags;
    s
}

/// The scripted error cases of every non-LRU kind.
#[test]
fn scripted_error_cases_match_the_kernel() {
    if !bpfvm_kernel::kernel_available_for_test("scripted_error_cases_match_the_kernel") {
        return;
    }
    use Op::*;
    let hash_script = [
        Lookup(1),
        Delete(1),
        Update(1, 1, UPDATE_EXIST),
        Update(1, 1, UPDATE_NOEXIST),
        Update(1, 2, UPDATE_NOEXIST),
        Update(1, 3, UPDATE_EXIST),
        Update(2, 4, UPDATE_ANY),
        Update(3, 5, UPDATE_ANY),
        Update(4, 6, UPDATE_ANY),
        Update(5, 7, UPDATE_ANY), // full: E2BIG
        Update(4, 8, UPDATE_ANY), // replace while full: Ok
        Update(4, 9, 3),          // bad flags
        Update(4, 9, 4),          // F_LOCK without a spin lock
        Delete(2),
        Delete(2),
        Update(5, 7, UPDATE_NOEXIST),
        NextKey(99),
        Lookup(5),
    ];
    for (t, flags) in [
        (MapType::Hash, F_ZERO_SEED),
        (MapType::Hash, F_ZERO_SEED | F_NO_PREALLOC),
        (MapType::PercpuHash, F_ZERO_SEED),
        (MapType::PercpuHash, F_ZERO_SEED | F_NO_PREALLOC),
    ] {
        run(spec(t, 12, 4, flags), &hash_script);
    }
    let array_script = [
        Lookup(0),
        Lookup(4),
        Update(4, 1, UPDATE_ANY), // out of range
        Update(0, 1, UPDATE_NOEXIST),
        Update(0, 1, UPDATE_EXIST),
        Update(3, 2, UPDATE_ANY),
        Update(1, 2, 3),
        Update(1, 2, 4),
        Delete(0),
        Delete(9),
        NextKey(0),
        NextKey(3),
        NextKey(4),
        NextKey(1000),
        Lookup(3),
    ];
    for t in [MapType::Array, MapType::PercpuArray] {
        run(spec(t, 12, 4, 0), &array_script);
    }
}

/// Host access flags and create-time flag checks.
#[test]
fn access_and_create_flags_match_the_kernel() {
    if !bpfvm_kernel::kernel_available_for_test("access_and_create_flags_match_the_kernel") {
        return;
    }
    for t in [MapType::Hash, MapType::Array] {
        let ro = Pair::new(spec(t, 8, 4, F_RDONLY));
        let key = 0u32.to_ne_bytes();
        let v = [0u8; 8];
        assert_eq!(
            ours(ro.ours.update(&key, &v, 0)),
            theirs(ro.kernel.update(&key, &v, 0))
        );
        assert_eq!(
            ours(ro.ours.delete(&key)).err(),
            theirs(ro.kernel.delete(&key)).err()
        );
        let wo = Pair::new(spec(t, 8, 4, F_WRONLY));
        assert_eq!(
            ours(wo.ours.update(&key, &v, 0)),
            theirs(wo.kernel.update(&key, &v, 0))
        );
        assert_eq!(
            ours(wo.ours.lookup(&key)).err(),
            theirs(wo.kernel.lookup(&key)).err()
        );
    }
    let config = MapConfig::new(cpus(), 64 << 20);
    for t in [
        MapType::Hash,
        MapType::Array,
        MapType::PercpuArray,
        MapType::PercpuHash,
        MapType::LruHash,
        MapType::LruPercpuHash,
    ] {
        for flags in [
            F_NO_PREALLOC,
            F_ZERO_SEED,
            F_NO_COMMON_LRU,
            F_RDONLY | F_WRONLY,
            1 << 10,
            1 << 15,
        ] {
            let s = spec(t, 8, 4, flags);
            let a = ours(create_map(&s, &config).map(drop));
            let b = theirs(
                Bpf::new()
                    .map_create(
                        &MapCreate::new(bpfvm_kernel::MapType(t as u32), 4, 8, 4).with_flags(flags),
                    )
                    .map(drop),
            );
            assert_eq!(a, b, "{t} with flags {flags:#x}");
        }
    }
}

/// Size limits at creation: hash keys up to the BPF stack, per-CPU values up to the
/// kernel's per-CPU unit.
#[test]
fn create_size_limits_match_the_kernel() {
    if !bpfvm_kernel::kernel_available_for_test("create_size_limits_match_the_kernel") {
        return;
    }
    let config = MapConfig::new(cpus(), 1 << 30);
    let cases = [
        (MapType::Hash, 512, 8),
        (MapType::Hash, 513, 8),
        (MapType::LruHash, 513, 8),
        (MapType::PercpuHash, 4, 32768),
        (MapType::PercpuHash, 4, 32761),
        (MapType::PercpuHash, 4, 32769),
        (MapType::PercpuArray, 4, 32768),
        (MapType::PercpuArray, 4, 32769),
        (MapType::LruPercpuHash, 4, 32769),
        (MapType::Array, 4, 32769),
        (MapType::Array, 8, 8),
        (MapType::Hash, 0, 8),
        (MapType::Hash, 4, 0),
    ];
    for (t, key_size, value_size) in cases {
        let s = MapSpec::new(t, key_size, value_size, 1);
        let a = ours(create_map(&s, &config).map(drop));
        let b = theirs(
            Bpf::new()
                .map_create(&MapCreate::new(
                    bpfvm_kernel::MapType(t as u32),
                    key_size,
                    value_size,
                    1,
                ))
                .map(drop),
        );
        assert_eq!(a, b, "{t} key {key_size} value {value_size}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_hash_ops_match_the_kernel(
        ops in prop::collection::vec(op_strategy(7), 1..60),
        percpu in any::<bool>(),
        no_prealloc in any::<bool>(),
        value_size in prop_oneof![Just(4u32), Just(8), Just(13)],
    ) {
        if !bpfvm_kernel::kernel_available_for_test("random_hash_ops_match_the_kernel") {
            return Ok(());
        }
        let t = if percpu { MapType::PercpuHash } else { MapType::Hash };
        let flags = F_ZERO_SEED | if no_prealloc { F_NO_PREALLOC } else { 0 };
        run(spec(t, value_size, 4, flags), &ops);
    }

    #[test]
    fn random_array_ops_match_the_kernel(
        ops in prop::collection::vec(op_strategy(7), 1..60),
        percpu in any::<bool>(),
        value_size in prop_oneof![Just(4u32), Just(8), Just(13)],
    ) {
        if !bpfvm_kernel::kernel_available_for_test("random_array_ops_match_the_kernel") {
            return Ok(());
        }
        let t = if percpu { MapType::PercpuArray } else { MapType::Array };
        run(spec(t, value_size, 5, 0), &ops);
    }

    /// LRU maps: the same errnos at each step (LRU inserts never fail), at most
    /// max_entries elements on both sides, and the last key written present on both.
    #[test]
    fn random_lru_ops_keep_the_kernel_bounds(
        ops in prop::collection::vec(op_strategy(12), 1..60),
        percpu in any::<bool>(),
    ) {
        if !bpfvm_kernel::kernel_available_for_test("random_lru_ops_keep_the_kernel_bounds") {
            return Ok(());
        }
        let t = if percpu { MapType::LruPercpuHash } else { MapType::LruHash };
        let pair = Pair::new(spec(t, 8, 4, 0));
        for (i, op) in ops.iter().enumerate() {
            let key = op.key().to_ne_bytes();
            match op {
                Op::Update(_, seed, flags) => {
                    let value = value_of(*seed, pair.ours.value_len());
                    let a = ours(pair.ours.update(&key, &value, *flags));
                    let b = theirs(pair.kernel.update(&key, &value, *flags));
                    // Eviction choices differ, so EEXIST/ENOENT may too; flag errors and
                    // success of plain inserts may not.
                    if *flags == UPDATE_ANY || *flags > UPDATE_EXIST {
                        prop_assert_eq!(a, b, "step {}: {:?}", i, op);
                    }
                    if a.is_ok() {
                        prop_assert_eq!(pair.ours.lookup(&key).ok(), Some(value.clone()));
                    }
                    if b.is_ok() {
                        prop_assert_eq!(pair.kernel.lookup(&key).ok().flatten(), Some(value));
                    }
                }
                Op::Delete(_) => {
                    let _ = pair.ours.delete(&key);
                    let _ = pair.kernel.delete(&key);
                }
                Op::Lookup(_) | Op::NextKey(_) => {}
            }
            prop_assert!(pair.ours.keys().expect("keys").len() <= 4);
            prop_assert!(pair.kernel.keys().expect("keys").len() <= 4);
        }
    }
}
