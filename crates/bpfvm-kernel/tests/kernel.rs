//! The kernel layer against the real kernel. Each test returns early, saying why, when
//! `bpf()` is unusable here, and fails instead under `BPFVM_REQUIRE_KERNEL=1`.
#![cfg(target_os = "linux")]

use bpfvm_isa::RawInsn;
use bpfvm_kernel::{
    Bpf, Errno, F_NO_PREALLOC, KernelError, LogOptions, LogPolicy, MapCreate, MapType, ProgLoad,
    ProgType, TestRun, UPDATE_EXIST, UPDATE_NOEXIST, kernel_available_for_test,
};

macro_rules! require_kernel {
    ($test:ident) => {
        if !kernel_available_for_test(stringify!($test)) {
            return;
        }
    };
}

const EXIT: RawInsn = RawInsn::new(0x95, 0, 0, 0, 0);

fn mov(dst: u8, imm: i32) -> RawInsn {
    RawInsn::new(0xb7, dst, 0, 0, imm)
}

fn key(k: u32) -> [u8; 4] {
    k.to_le_bytes()
}

#[test]
fn hash_map_elements() {
    require_kernel!(hash_map_elements);
    let bpf = Bpf::new();
    let m = bpf
        .map_create(&MapCreate::new(MapType::HASH, 4, 8, 16).with_name("t_hash"))
        .expect("hash map");
    assert_eq!(m.lookup(&key(1)).expect("lookup"), None);
    m.update(&key(1), &11u64.to_le_bytes(), UPDATE_NOEXIST)
        .expect("insert");
    m.update(&key(2), &22u64.to_le_bytes(), 0).expect("insert");
    assert_eq!(
        m.lookup(&key(1)).expect("lookup"),
        Some(11u64.to_le_bytes().to_vec())
    );
    // NOEXIST on a present key and EXIST on an absent one are the kernel's EEXIST / ENOENT.
    let e = m
        .update(&key(1), &0u64.to_le_bytes(), UPDATE_NOEXIST)
        .unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EEXIST));
    let e = m
        .update(&key(9), &0u64.to_le_bytes(), UPDATE_EXIST)
        .unwrap_err();
    assert_eq!(e.errno(), Some(Errno::ENOENT));
    let mut keys = m.keys().expect("keys");
    keys.sort();
    assert_eq!(keys, vec![key(1).to_vec(), key(2).to_vec()]);
    assert_eq!(
        m.lookup_and_delete(&key(2), 0).expect("pop"),
        Some(22u64.to_le_bytes().to_vec())
    );
    assert!(m.delete(&key(1)).expect("delete"));
    assert!(!m.delete(&key(1)).expect("delete again"));
    assert_eq!(m.next_key(None).expect("first key"), None);
}

#[test]
fn wrong_sizes_never_reach_the_kernel() {
    require_kernel!(wrong_sizes_never_reach_the_kernel);
    let m = Bpf::new()
        .map_create(&MapCreate::new(MapType::ARRAY, 4, 8, 2))
        .expect("array");
    for e in [
        m.lookup(&[0; 3]).unwrap_err(),
        m.update(&key(0), &[0; 4], 0).unwrap_err(),
        m.lookup_into(&key(0), &mut [0; 16], 0).unwrap_err(),
        m.update_batch(&[0; 6], &[0; 16], 0).unwrap_err(),
    ] {
        assert!(matches!(e, KernelError::Invalid(_)), "{e}");
    }
}

#[test]
fn freeze_makes_a_map_read_only_for_user_space() {
    require_kernel!(freeze_makes_a_map_read_only_for_user_space);
    let m = Bpf::new()
        .map_create(&MapCreate::new(MapType::ARRAY, 4, 4, 1))
        .expect("array");
    m.update(&key(0), &[1, 2, 3, 4], 0).expect("update");
    m.freeze().expect("freeze");
    let e = m.update(&key(0), &[5, 6, 7, 8], 0).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EPERM), "{e}");
    assert_eq!(m.lookup(&key(0)).expect("lookup"), Some(vec![1, 2, 3, 4]));
}

#[test]
fn batch_operations_walk_a_hash_map() {
    require_kernel!(batch_operations_walk_a_hash_map);
    let m = Bpf::new()
        .map_create(&MapCreate::new(MapType::HASH, 4, 4, 64).with_flags(F_NO_PREALLOC))
        .expect("hash map");
    let keys: Vec<u8> = (0..10u32).flat_map(|k| k.to_le_bytes()).collect();
    let values: Vec<u8> = (0..10u32).flat_map(|k| (k * 100).to_le_bytes()).collect();
    assert_eq!(m.update_batch(&keys, &values, 0).expect("update batch"), 10);
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let b = m.lookup_batch(token.as_ref(), 3).expect("lookup batch");
        for i in 0..b.count {
            let k = u32::from_le_bytes(b.keys[i * 4..i * 4 + 4].try_into().expect("4"));
            let v = u32::from_le_bytes(b.values[i * 4..i * 4 + 4].try_into().expect("4"));
            seen.push((k, v));
        }
        match b.next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, (0..10).map(|k| (k, k * 100)).collect::<Vec<_>>());
    assert_eq!(m.delete_batch(&keys[..20]).expect("delete batch"), 5);
    assert_eq!(m.keys().expect("keys").len(), 5);
}

#[test]
fn per_cpu_values_have_one_slot_per_possible_cpu() {
    require_kernel!(per_cpu_values_have_one_slot_per_possible_cpu);
    let cpus = bpfvm_kernel::possible_cpus().expect("cpus");
    let m = Bpf::new()
        .map_create(&MapCreate::new(MapType::PERCPU_ARRAY, 4, 4, 1))
        .expect("percpu array");
    assert_eq!(m.value_len(), 8 * cpus);
    let value: Vec<u8> = (0..m.value_len() as u8).collect();
    m.update(&key(0), &value, 0).expect("update");
    let back = m.lookup(&key(0)).expect("lookup").expect("present");
    // Each CPU's slot keeps its 4 value bytes; the padding to 8 reads back as zero.
    for cpu in 0..cpus {
        assert_eq!(back[cpu * 8..cpu * 8 + 4], value[cpu * 8..cpu * 8 + 4]);
    }
}

#[test]
fn bad_map_requests_get_the_kernels_errno() {
    require_kernel!(bad_map_requests_get_the_kernels_errno);
    let bpf = Bpf::new();
    let e = bpf
        .map_create(&MapCreate::new(MapType::ARRAY, 4, 0, 1))
        .unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EINVAL), "zero-length value: {e}");
    let e = bpf
        .map_create(&MapCreate::new(MapType(9999), 4, 4, 1))
        .unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EINVAL), "unknown map type: {e}");
    let e = bpf
        .map_create(&MapCreate::new(MapType::HASH, 4, 4, 0))
        .unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EINVAL), "no entries: {e}");
    let e = bpf
        .map_create(&MapCreate::new(MapType::ARRAY, 4, 4, 1).with_name("bad name"))
        .unwrap_err();
    assert!(matches!(e, KernelError::Invalid(_)), "{e}");
}

#[test]
fn rejected_programs_carry_errno_and_log() {
    require_kernel!(rejected_programs_carry_errno_and_log);
    let bpf = Bpf::new();
    // `exit` with r0 never written: the verifier's classic "R0 !read_ok".
    let e = bpf
        .prog_load(&ProgLoad::new(ProgType::XDP, &[EXIT]))
        .unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EACCES));
    let KernelError::Load(f) = &e else {
        panic!("{e}")
    };
    assert_eq!(f.reason(), Some("R0 !read_ok"), "log: {}", f.log);
    assert!(e.to_string().contains("R0 !read_ok"));

    let e = bpf
        .prog_load(&ProgLoad::new(ProgType(999), &[mov(0, 0), EXIT]))
        .unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EINVAL), "unknown program type: {e}");

    let huge = vec![mov(0, 0); 1_000_001];
    let e = bpf
        .prog_load(&ProgLoad::new(ProgType::XDP, &huge))
        .unwrap_err();
    assert_eq!(e.errno(), Some(Errno::E2BIG), "oversized program: {e}");

    let e = bpf
        .prog_load(&ProgLoad::new(ProgType::XDP, &[]))
        .unwrap_err();
    assert_eq!(e.errno(), Some(Errno::E2BIG), "empty program: {e}");
}

/// A program whose level-2 log is far larger than 128 bytes: 200 distinct states.
fn chatty_program() -> Vec<RawInsn> {
    let mut p = vec![mov(0, 0)];
    for i in 0..200 {
        p.push(RawInsn::new(0x07, 0, 0, 0, i)); // r0 += i
    }
    p.push(EXIT);
    p
}

#[test]
fn the_log_buffer_grows_until_the_whole_log_fits() {
    require_kernel!(the_log_buffer_grows_until_the_whole_log_fits);
    let insns = chatty_program();
    let log = LogOptions {
        policy: LogPolicy::Always(bpfvm_kernel::LOG_LEVEL2),
        initial_size: 128,
        max_size: 16 << 20,
    };
    let prog = Bpf::new()
        .prog_load(&ProgLoad::new(ProgType::XDP, &insns).with_log(log))
        .expect("loads once the log fits");
    assert!(prog.log().len() > 4096, "{} bytes", prog.log().len());
    assert!(prog.log().contains("201: (95) exit"), "{}", prog.log());

    // With a cap too small for the log, the load reports ENOSPC and a truncated log.
    let small = LogOptions {
        max_size: 1024,
        ..log
    };
    let e = Bpf::new()
        .prog_load(&ProgLoad::new(ProgType::XDP, &insns).with_log(small))
        .unwrap_err();
    let KernelError::Load(f) = &e else {
        panic!("{e}")
    };
    assert_eq!(f.errno, Errno::ENOSPC);
    assert!(f.log_truncated && !f.log.is_empty() && f.log.len() < 1024);
}

#[test]
fn verdicts_report_the_kernels_counts() {
    require_kernel!(verdicts_report_the_kernels_counts);
    let bpf = Bpf::new();
    let insns = chatty_program();
    let v = bpf
        .verify(&ProgLoad::new(ProgType::XDP, &insns), 0)
        .expect("verdict");
    assert!(v.accepted, "{}", v.log);
    // A straight line of 202 instructions is walked once.
    assert_eq!(v.stats.processed_insns, Some(202));
    assert_eq!(v.info.as_ref().map(|i| i.verified_insns), Some(202));
    assert_eq!(v.stats.insn_limit, Some(1_000_000));
    assert!(v.stats.verification_time.is_some());
    assert_eq!(v.stats.stack_depth, vec![0]);

    let v = bpf
        .verify(&ProgLoad::new(ProgType::XDP, &[EXIT]), 0)
        .expect("verdict");
    assert!(!v.accepted);
    assert_eq!(v.errno, Some(Errno::EACCES));
    assert_eq!(v.reason(), Some("R0 !read_ok"));
    assert_eq!(v.stats.processed_insns, Some(1));
}

#[test]
fn test_run_passes_data_in_and_out() {
    require_kernel!(test_run_passes_data_in_and_out);
    // r2 = data ; r3 = data_end ; r4 = r2 + 2 ; if r4 > r3 goto out ;
    // *(u8 *)(r2 + 1) = 0x5a ; r0 = *(u8 *)(r2 + 0) ; exit ; out: r0 = 0 ; exit
    let insns = [
        RawInsn::new(0x61, 2, 1, 0, 0),
        RawInsn::new(0x61, 3, 1, 4, 0),
        RawInsn::new(0xbf, 4, 2, 0, 0),
        RawInsn::new(0x07, 4, 0, 0, 2),
        RawInsn::new(0x2d, 4, 3, 3, 0),
        RawInsn::new(0x72, 2, 0, 1, 0x5a),
        RawInsn::new(0x71, 0, 2, 0, 0),
        EXIT,
        mov(0, 0),
        EXIT,
    ];
    let prog = Bpf::new()
        .prog_load(&ProgLoad::new(ProgType::XDP, &insns).with_name("t_data"))
        .expect("load");
    let data_in: Vec<u8> = (1..=20).collect();
    let mut out = vec![0; 20];
    let r = prog
        .test_run(&mut TestRun {
            data_in: &data_in,
            data_out: Some(&mut out),
            repeat: 100,
            ..TestRun::default()
        })
        .expect("run");
    assert_eq!(r.retval, 1);
    assert_eq!(r.data_size_out, 20);
    assert_eq!(out[..3], [1, 0x5a, 3]);
    let info = prog.info().expect("info");
    assert_eq!(
        (info.prog_type, info.name.as_str()),
        (ProgType::XDP, "t_data")
    );
    assert_eq!(info.xlated_len as usize, insns.len() * 8);

    let mut short = vec![0; 4];
    let e = prog
        .test_run(&mut TestRun {
            data_in: &data_in,
            data_out: Some(&mut short),
            ..TestRun::default()
        })
        .unwrap_err();
    assert!(
        matches!(
            e,
            KernelError::OutputTooSmall {
                needed: 20,
                given: 4,
                ..
            }
        ),
        "{e}"
    );
}

/// Minimal BTF: one `int` (4 bytes, signed) type.
fn int_btf() -> Vec<u8> {
    btf_blob(b"\0int\0", &int_type())
}

/// Type 1: `int`, with its name at string offset 1.
fn int_type() -> Vec<u8> {
    let mut types = Vec::new();
    types.extend(1u32.to_le_bytes()); // name_off: "int"
    types.extend((1u32 << 24).to_le_bytes()); // kind INT, vlen 0
    types.extend(4u32.to_le_bytes()); // size
    types.extend(((1u32 << 24) | 32).to_le_bytes()); // encoding SIGNED, offset 0, 32 bits
    types
}

/// A BTF blob: header, `types`, `strings`.
fn btf_blob(strings: &[u8], types: &[u8]) -> Vec<u8> {
    let mut btf = Vec::new();
    btf.extend(0xeb9fu16.to_le_bytes());
    btf.extend([1, 0]); // version, flags
    btf.extend(24u32.to_le_bytes()); // hdr_len
    btf.extend(0u32.to_le_bytes()); // type_off
    btf.extend((types.len() as u32).to_le_bytes());
    btf.extend((types.len() as u32).to_le_bytes()); // str_off
    btf.extend((strings.len() as u32).to_le_bytes());
    btf.extend(types);
    btf.extend(strings);
    btf
}

#[test]
fn func_info_line_info_and_fd_array_reach_the_kernel() {
    require_kernel!(func_info_line_info_and_fd_array_reach_the_kernel);
    let bpf = Bpf::new();
    // Strings: "int" at 1, "prog" at 5, "t.c" at 10, "r0 = 0;" at 14.
    let strings = b"\0int\0prog\0t.c\0r0 = 0;\0";
    let mut types = int_type();
    types.extend(0u32.to_le_bytes()); // [2] FUNC_PROTO, anonymous
    types.extend((13u32 << 24).to_le_bytes()); // kind FUNC_PROTO, no params
    types.extend(1u32.to_le_bytes()); // returns int
    types.extend(5u32.to_le_bytes()); // [3] FUNC "prog"
    types.extend((12u32 << 24).to_le_bytes()); // kind FUNC, static linkage
    types.extend(2u32.to_le_bytes()); // of type [2]
    let btf = bpf
        .btf_load(&btf_blob(strings, &types), &LogOptions::default())
        .expect("BTF with a function");

    // r1 = map_by_index(0) ll ; r0 = 0 ; exit  (`lddw src=5` indexes fd_array)
    let insns = [
        RawInsn::new(0x18, 1, 5, 0, 0),
        RawInsn::new(0, 0, 0, 0, 0),
        mov(0, 0),
        EXIT,
    ];
    let func_info: Vec<u8> = [0u32, 3].iter().flat_map(|v| v.to_le_bytes()).collect();
    // insn_off 0, file "t.c", line "r0 = 0;", line 7 column 3.
    let line_info: Vec<u8> = [0u32, 10, 14, (7 << 10) | 3]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let map = bpf
        .map_create(&MapCreate::new(MapType::ARRAY, 4, 4, 1))
        .expect("map");
    let fds = [map.fd()];
    let load = |with_fds: bool| {
        let req = ProgLoad::new(ProgType::XDP, &insns)
            .with_btf(
                btf.fd(),
                Some(bpfvm_kernel::BtfRecords {
                    rec_size: 8,
                    data: &func_info,
                }),
                Some(bpfvm_kernel::BtfRecords {
                    rec_size: 16,
                    data: &line_info,
                }),
            )
            .with_fd_array(if with_fds { &fds } else { &[] }, false);
        bpf.verify(&req, 0).expect("verdict")
    };
    let v = load(true);
    assert!(v.accepted, "{}", v.log);
    // Without the fd array the map index resolves to nothing.
    let v = load(false);
    assert!(!v.accepted);
    assert!(
        v.reason().is_some_and(|r| r.contains("fd_array")),
        "{}",
        v.log
    );
    // Func info pointing at a type that is not a function is the kernel's EINVAL.
    let bad_func: Vec<u8> = [0u32, 1].iter().flat_map(|v| v.to_le_bytes()).collect();
    let req = ProgLoad::new(ProgType::XDP, &insns[2..]).with_btf(
        btf.fd(),
        Some(bpfvm_kernel::BtfRecords {
            rec_size: 8,
            data: &bad_func,
        }),
        None,
    );
    let e = bpf.prog_load(&req).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EINVAL), "{e}");
}

#[test]
fn btf_loads_and_types_a_map() {
    require_kernel!(btf_loads_and_types_a_map);
    let bpf = Bpf::new();
    let btf = bpf
        .btf_load(&int_btf(), &LogOptions::default())
        .expect("valid BTF");
    bpf.map_create(&MapCreate::new(MapType::HASH, 4, 4, 4).with_btf(btf.fd(), 1, 1))
        .expect("map typed by BTF");
    let mut bad = int_btf();
    bad[0] = 0; // magic
    let e = bpf.btf_load(&bad, &LogOptions::default()).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EINVAL), "{e}");
    assert!(e.log().is_some_and(|l| !l.is_empty()), "{e}");
}
