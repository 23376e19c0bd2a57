//! `KernelMap`: kernel maps shared between bpfvm interpreter programs and kernel programs
//! (run with `BPF_PROG_TEST_RUN`), with the kernel as the independent truth.
#![cfg(target_os = "linux")]

use std::os::fd::AsRawFd;
use std::sync::Arc;

use bpfvm_isa::{Program, RawInsn};
use bpfvm_kernel::{Bpf, KernelMap, ProgLoad, ProgType, TestRun};
use bpfvm_runtime::maps::{Map, MapConfig, MapError, MapSpec, MapType, RunGuard, create_map};
use bpfvm_runtime::{HelperRegistry, LoadedProgram, ProgramType, RunOptions};

const F_MMAPABLE: u32 = 1 << 10;
const UPDATE_ANY: u64 = 0;
const UPDATE_NOEXIST: u64 = 1;
const UPDATE_EXIST: u64 = 2;

fn ins(op: u8, dst: u8, src: u8, off: i16, imm: i32) -> RawInsn {
    RawInsn::new(op, dst, src, off, imm)
}

/// `r1 = map`: by fd (`src=1`, for the kernel) or by index 0 (`src=5`, for bpfvm).
fn ld_map(kernel_fd: Option<i32>) -> [RawInsn; 2] {
    let (src, imm) = kernel_fd.map_or((5, 0), |fd| (1, fd));
    [ins(0x18, 1, src, 0, imm), ins(0, 0, 0, 0, 0)]
}

/// Looks up key 0 and atomically adds 1 to the u64 at the value; returns 2.
fn counter_prog(kernel_fd: Option<i32>) -> Vec<RawInsn> {
    let mut p = vec![
        ins(0x62, 10, 0, -4, 0), // *(u32 *)(r10 - 4) = 0
        ins(0xbf, 2, 10, 0, 0),  // r2 = r10
        ins(0x07, 2, 0, 0, -4),  // r2 += -4
    ];
    p.extend(ld_map(kernel_fd));
    p.extend([
        ins(0x85, 0, 0, 0, 1), // call bpf_map_lookup_elem
        ins(0x15, 0, 0, 2, 0), // if r0 == 0 goto +2
        ins(0xb7, 1, 0, 0, 1), // r1 = 1
        ins(0xdb, 0, 1, 0, 0), // lock *(u64 *)(r0 + 0) += r1
        ins(0xb7, 0, 0, 0, 2), // r0 = 2
        ins(0x95, 0, 0, 0, 0),
    ]);
    p
}

/// `bpf_map_update_elem(map, &key, &value, BPF_ANY)`; returns the helper's result.
fn update_prog(kernel_fd: Option<i32>, key: u32, value: i32) -> Vec<RawInsn> {
    let mut p = vec![
        ins(0x62, 10, 0, -4, key as i32), // *(u32 *)(r10 - 4) = key
        ins(0x7a, 10, 0, -16, value),     // *(u64 *)(r10 - 16) = value
    ];
    p.extend(ld_map(kernel_fd));
    p.extend([
        ins(0xbf, 2, 10, 0, 0),
        ins(0x07, 2, 0, 0, -4),
        ins(0xbf, 3, 10, 0, 0),
        ins(0x07, 3, 0, 0, -16),
        ins(0xb7, 4, 0, 0, 0),
        ins(0x85, 0, 0, 0, 2), // call bpf_map_update_elem
        ins(0x95, 0, 0, 0, 0),
    ]);
    p
}

/// Looks up `key` and returns the u64 value (9999 when absent); with `store`, first
/// writes `store` into the value it found.
fn lookup_prog(kernel_fd: Option<i32>, key: u32, store: Option<i32>) -> Vec<RawInsn> {
    let mut p = vec![
        ins(0x62, 10, 0, -4, key as i32),
        ins(0xbf, 2, 10, 0, 0),
        ins(0x07, 2, 0, 0, -4),
    ];
    p.extend(ld_map(kernel_fd));
    p.extend([
        ins(0x85, 0, 0, 0, 1),
        ins(0x55, 0, 0, 2, 0), // if r0 != 0 goto +2
        ins(0xb7, 0, 0, 0, 9999),
        ins(0x95, 0, 0, 0, 0),
    ]);
    if let Some(v) = store {
        p.push(ins(0x7a, 0, 0, 0, v)); // *(u64 *)(r0 + 0) = v
    }
    p.extend([
        ins(0x79, 0, 0, 0, 0), // r0 = *(u64 *)(r0 + 0)
        ins(0x95, 0, 0, 0, 0),
    ]);
    p
}

fn bpfvm_prog(insns: Vec<RawInsn>, map: Arc<KernelMap>) -> LoadedProgram {
    let ty = ProgramType::Kernel(bpfvm_abi::ProgramType::Xdp);
    LoadedProgram::with_maps(
        Program::from_slots(insns).expect("valid program"),
        ty,
        Arc::new(HelperRegistry::for_program_type(ty)),
        vec![map as Arc<dyn Map>],
    )
    .expect("loads")
}

fn run_bpfvm(prog: &LoadedProgram) -> u64 {
    bpfvm_interp::Interpreter::new()
        .run(prog, &mut [0u8; 16], &RunOptions::new())
        .expect("runs")
}

fn kernel_prog(insns: &[RawInsn]) -> bpfvm_kernel::Prog {
    Bpf::new()
        .prog_load(&ProgLoad::new(ProgType::XDP, insns))
        .expect("the kernel loads the program")
}

fn run_kernel(prog: &bpfvm_kernel::Prog, repeat: u32) -> u32 {
    prog.test_run(&mut TestRun {
        data_in: &[0; 64],
        repeat,
        ..TestRun::default()
    })
    .expect("test run")
    .retval
}

fn u64_of(v: &[u8]) -> u64 {
    u64::from_ne_bytes(v[..8].try_into().expect("8 bytes"))
}

/// (a) A kernel program and a bpfvm program, concurrently, atomically add to the same
/// counter in an mmapable array: the final value is the exact sum.
#[test]
fn mmapable_array_counter_is_shared() {
    if !bpfvm_kernel::kernel_available_for_test("mmapable_array_counter_is_shared") {
        return;
    }
    let mut spec = MapSpec::new(MapType::Array, 4, 8, 1);
    spec.flags = F_MMAPABLE;
    let map = Arc::new(KernelMap::create(&Bpf::new(), &spec).expect("create"));
    assert!(map.is_shared_memory());
    let fd = map.kernel_map().fd().as_raw_fd();
    let kprog = kernel_prog(&counter_prog(Some(fd)));
    let uprog = bpfvm_prog(counter_prog(None), map.clone());

    const KERNEL_RUNS: u32 = 200_000;
    const BPFVM_RUNS: u64 = 20_000;
    let kernel = std::thread::spawn(move || run_kernel(&kprog, KERNEL_RUNS));
    for _ in 0..BPFVM_RUNS {
        assert_eq!(run_bpfvm(&uprog), 2);
    }
    assert_eq!(kernel.join().expect("kernel thread"), 2);
    let want = u64::from(KERNEL_RUNS) + BPFVM_RUNS;
    println!(
        "counter after {KERNEL_RUNS} kernel runs and {BPFVM_RUNS} bpfvm runs: {}",
        u64_of(&map.lookup(&0u32.to_ne_bytes()).expect("lookup"))
    );
    // Through the syscall, and through the shared mapping (direct value access).
    assert_eq!(
        u64_of(&map.lookup(&0u32.to_ne_bytes()).expect("lookup")),
        want
    );
    let (ptr, len, writable) = map.direct_value().expect("single-element mmapable array");
    assert_eq!((len, writable, ptr.as_ptr().addr() % 4096), (8, true, 0));
    // SAFETY: the mapping lives as long as `map`; the value is 8 aligned bytes.
    let direct = unsafe { std::ptr::read_volatile(ptr.as_ptr().cast::<u64>()) };
    assert_eq!(direct, want);
}

/// The mapping's layout is the kernel's: element `i` at `i * round_up(value_size, 8)`;
/// a host update through the syscall shows at the program's pointer, and the pointer
/// stays valid under the guard after the map is dropped.
#[test]
fn mmapped_layout_and_lifetime() {
    if !bpfvm_kernel::kernel_available_for_test("mmapped_layout_and_lifetime") {
        return;
    }
    let mut spec = MapSpec::new(MapType::Array, 4, 12, 5);
    spec.flags = F_MMAPABLE;
    let map = KernelMap::create(&Bpf::new(), &spec).expect("create");
    assert!(map.direct_value().is_none(), "only single-element arrays");
    let value: Vec<u8> = (1..=12).collect();
    map.update(&3u32.to_ne_bytes(), &value, UPDATE_ANY)
        .expect("update");
    let guard = RunGuard::pin();
    let v0 = map.lookup_value(&0u32.to_ne_bytes(), 0, &guard).expect("0");
    let v3 = map.lookup_value(&3u32.to_ne_bytes(), 0, &guard).expect("3");
    assert!(map.lookup_value(&5u32.to_ne_bytes(), 0, &guard).is_none());
    assert_eq!(v3.addr() - v0.addr(), 3 * 16);
    let (p3, len) = (v3.as_ptr(), v3.len());
    drop(map);
    // SAFETY: the mapping is unmapped only after `guard` is dropped.
    let seen = unsafe { std::slice::from_raw_parts(p3, len) }.to_vec();
    assert_eq!(seen, value);
    drop(guard);
}

/// (b) A bpfvm program's `bpf_map_update_elem` is seen by a kernel program's lookup, and
/// a kernel program's update by a bpfvm program's `bpf_map_lookup_elem`; program writes
/// to a copied value are not propagated.
#[test]
fn hash_updates_cross_both_ways() {
    if !bpfvm_kernel::kernel_available_for_test("hash_updates_cross_both_ways") {
        return;
    }
    let spec = MapSpec::new(MapType::Hash, 4, 8, 8);
    let map = Arc::new(KernelMap::create(&Bpf::new(), &spec).expect("create"));
    assert!(!map.is_shared_memory());
    let fd = map.kernel_map().fd().as_raw_fd();

    // bpfvm writes key 1, the kernel reads it.
    assert_eq!(
        run_bpfvm(&bpfvm_prog(update_prog(None, 1, 42), map.clone())),
        0
    );
    assert_eq!(
        run_kernel(&kernel_prog(&lookup_prog(Some(fd), 1, None)), 1),
        42
    );

    // The kernel writes key 2, bpfvm reads it.
    let missing = bpfvm_prog(lookup_prog(None, 2, None), map.clone());
    assert_eq!(run_bpfvm(&missing), 9999);
    assert_eq!(
        run_kernel(&kernel_prog(&update_prog(Some(fd), 2, 77)), 1),
        0
    );
    assert_eq!(run_bpfvm(&missing), 77);

    // A bpfvm program's store into its copy is its own: the kernel still has 77.
    let store = bpfvm_prog(lookup_prog(None, 2, Some(5)), map.clone());
    assert_eq!(run_bpfvm(&store), 5);
    assert_eq!(u64_of(&map.lookup(&2u32.to_ne_bytes()).expect("2")), 77);
    assert_eq!(
        run_kernel(&kernel_prog(&lookup_prog(Some(fd), 2, None)), 1),
        77
    );
}

/// Per-CPU kinds: a program update touches only its CPU's slot of the kernel's value.
#[test]
fn percpu_slots_are_kernel_cpus() {
    if !bpfvm_kernel::kernel_available_for_test("percpu_slots_are_kernel_cpus") {
        return;
    }
    let spec = MapSpec::new(MapType::PercpuHash, 4, 4, 4);
    let map = KernelMap::create(&Bpf::new(), &spec).expect("create");
    let cpus = map.cpus();
    assert_eq!(map.value_len(), 8 * cpus);
    let key = 9u32.to_ne_bytes();
    let cpu = cpus - 1;
    map.prog_update(&key, &7u32.to_ne_bytes(), UPDATE_ANY, cpu)
        .expect("prog update");
    let all = map.lookup(&key).expect("lookup");
    for c in 0..cpus {
        let want = if c == cpu { 7u32 } else { 0 };
        assert_eq!(all[c * 8..c * 8 + 4], want.to_ne_bytes(), "slot {c}");
    }
    let guard = RunGuard::pin();
    let v = map.lookup_value(&key, cpu, &guard).expect("present");
    assert_eq!(v.len(), 4);
    // SAFETY: the copy lives until `guard` is dropped.
    assert_eq!(unsafe { std::ptr::read(v.as_ptr().cast::<u32>()) }, 7);
    assert!(map.lookup_value(&key, cpus, &guard).is_none());
}

/// (c) The same operations fail with the same `MapError`s as the user-space maps.
#[test]
fn errors_match_userspace_maps() {
    if !bpfvm_kernel::kernel_available_for_test("errors_match_userspace_maps") {
        return;
    }
    let config = MapConfig::new(2, 1 << 20);
    let errno = |r: Result<(), MapError>| r.err().map(|e| e.errno());
    let errno_v = |r: Result<Vec<u8>, MapError>| r.err().map(|e| e.errno());
    for spec in [
        MapSpec::new(MapType::Hash, 4, 8, 2),
        MapSpec::new(MapType::Array, 4, 8, 2),
    ] {
        let ours = create_map(&spec, &config).expect("user space");
        let kernel = KernelMap::create(&Bpf::new(), &spec).expect("kernel");
        let k = |n: u32| n.to_ne_bytes();
        let v = 1u64.to_ne_bytes();
        let mut cases = Vec::new();
        for m in [&*ours, &kernel as &dyn Map] {
            cases.push(vec![
                errno_v(m.lookup(&k(5))),
                errno(m.update(&k(0), &v, UPDATE_EXIST)),
                errno(m.update(&k(0), &v, UPDATE_ANY)),
                errno(m.update(&k(0), &v, UPDATE_NOEXIST)),
                errno(m.update(&k(1), &v, UPDATE_NOEXIST)),
                errno(m.update(&k(2), &v, UPDATE_ANY)),
                errno(m.update(&k(0), &v, 8)),
                errno(m.update(&k(0), &v[..4], UPDATE_ANY)),
                errno(m.delete(&k(7))),
                // The end of an iteration (each map's own order: the kernel's is its
                // bucket order, user space's the key-byte order).
                errno_v(m.next_key(m.keys().expect("keys").last().map(|l| &l[..]))),
            ]);
        }
        assert_eq!(cases[0], cases[1], "{}", spec.map_type);
        // The kernel's answers, written out: ENOENT 2, EEXIST 17, E2BIG 7, EINVAL 22.
        let want = if spec.map_type == MapType::Hash {
            [2, 2, 0, 17, 0, 7, 22, 22, 2, 2]
        } else {
            // Array elements always exist: EXIST succeeds, NOEXIST fails, index 2 of 2
            // is E2BIG, delete is EINVAL.
            [2, 0, 0, 17, 17, 7, 22, 22, 22, 2]
        };
        let want: Vec<Option<i32>> = want.iter().map(|&e| (e != 0).then_some(e)).collect();
        assert_eq!(cases[1], want, "{}", spec.map_type);
    }
}

/// Adopting a pinned map shares it with whoever pinned it.
#[test]
fn adopt_from_pin_and_fd() {
    if !bpfvm_kernel::kernel_available_for_test("adopt_from_pin_and_fd") {
        return;
    }
    let bpf = Bpf::new();
    let spec = MapSpec::new(MapType::Hash, 4, 8, 4);
    let a = KernelMap::create(&bpf, &spec).expect("create");
    a.update(&1u32.to_ne_bytes(), &5u64.to_ne_bytes(), UPDATE_ANY)
        .expect("update");
    let fd = a.kernel_map().fd().try_clone_to_owned().expect("dup");
    let b = KernelMap::from_fd(&bpf, fd).expect("adopt fd");
    assert_eq!(b.spec(), &spec);
    assert_eq!(u64_of(&b.lookup(&1u32.to_ne_bytes()).expect("1")), 5);
    let dir = std::path::Path::new("/sys/fs/bpf");
    if !dir.is_dir() {
        println!("skipping the pin half: no BPF filesystem at /sys/fs/bpf");
        return;
    }
    let path = dir.join(format!("bpfvm_shared_map_test_{}", std::process::id()));
    if let Err(e) = a.kernel_map().pin(&path) {
        println!("skipping the pin half: {e}");
        return;
    }
    let c = KernelMap::from_pin(&bpf, &path);
    let _ = std::fs::remove_file(&path);
    let c = c.expect("adopt pin");
    c.update(&2u32.to_ne_bytes(), &6u64.to_ne_bytes(), UPDATE_NOEXIST)
        .expect("update");
    assert_eq!(u64_of(&a.lookup(&2u32.to_ne_bytes()).expect("2")), 6);
}

/// Queues and bloom filters through the host API: the kernel's push/pop/peek semantics.
#[test]
fn queue_and_bloom_filter() {
    if !bpfvm_kernel::kernel_available_for_test("queue_and_bloom_filter") {
        return;
    }
    let bpf = Bpf::new();
    let q = KernelMap::create(&bpf, &MapSpec::new(MapType::Queue, 0, 4, 2)).expect("queue");
    q.push(&1u32.to_ne_bytes(), UPDATE_ANY).expect("push 1");
    q.push(&2u32.to_ne_bytes(), UPDATE_ANY).expect("push 2");
    assert!(matches!(
        q.push(&3u32.to_ne_bytes(), UPDATE_ANY),
        Err(MapError::TooBig(_))
    ));
    let mut out = [0u8; 4];
    q.peek(&mut out).expect("peek");
    assert_eq!(u32::from_ne_bytes(out), 1);
    q.pop(&mut out).expect("pop");
    assert_eq!(u32::from_ne_bytes(out), 1);
    q.pop(&mut out).expect("pop");
    assert_eq!(u32::from_ne_bytes(out), 2);
    assert_eq!(q.pop(&mut out), Err(MapError::NotFound));

    let bloom =
        KernelMap::create(&bpf, &MapSpec::new(MapType::BloomFilter, 0, 8, 1000)).expect("bloom");
    bloom.push(&5u64.to_ne_bytes(), UPDATE_ANY).expect("push");
    assert_eq!(bloom.peek(&mut 5u64.to_ne_bytes()), Ok(()));
    // One element in 1000 entries' worth of bits: a false positive here is vanishingly rare.
    assert_eq!(bloom.peek(&mut 6u64.to_ne_bytes()), Err(MapError::NotFound));
}

/// The kernel refuses to freeze an array while a writable mapping of it exists.
#[test]
fn freeze_is_refused_while_mapped_writable() {
    if !bpfvm_kernel::kernel_available_for_test("freeze_is_refused_while_mapped_writable") {
        return;
    }
    let mut spec = MapSpec::new(MapType::Array, 4, 8, 1);
    spec.flags = F_MMAPABLE;
    let map = KernelMap::create(&Bpf::new(), &spec).expect("create");
    let err = map.kernel_map().freeze().expect_err("mapped writable");
    assert_eq!(err.errno(), Some(bpfvm_kernel::Errno(16)), "EBUSY: {err}");
}
