//! Programs using maps while another thread deletes and replaces the same keys, small
//! enough for miri:
//! `MIRIFLAGS="-Zmiri-tree-borrows -Zmiri-ignore-leaks" cargo +nightly miri test -p bpfvm-runtime --test maps_programs_miri`
//! (why these flags: see `maps_miri.rs`). It also runs as an ordinary test.
//!
//! Two threads run a program through the interpreter — `bpf_map_lookup_elem` (a value
//! found under the run's guard, added to the run's regions with `add_shared`), then a
//! `lock xadd`, an atomic fetch-add, a plain store and a plain load through that pointer;
//! on a miss `bpf_map_update_elem(BPF_NOEXIST)`; or `bpf_map_delete_elem` — while the host
//! replaces, deletes and reads the same keys. Miri checks that no value memory is freed
//! under a running program and that every cross-thread access is atomic.

use std::sync::{Arc, Barrier};

use bpfvm_abi::{MapSpec, MapType, UPDATE_ANY};
use bpfvm_interp::Interpreter;
use bpfvm_isa::asm::{Dialect, assemble};
use bpfvm_runtime::{
    Context, HelperRegistry, LoadedProgram, Map, MapConfig, ProgramType, RunGuard, RunOptions,
    create_map,
};

/// Fewer operations under miri, which is slow.
const RUNS: u32 = if cfg!(miri) { 40 } else { 2_000 };
const KEYS: u32 = 2;

/// Event: u32 key at 0, u32 op at 4 (0 = count, 1 = delete). Returns
/// `1 << 32 | value` after counting into a found value, `-ret` of the insert or delete.
const PROGRAM: &str = "
    r6 = r1
    r7 = *(u32 *)(r6 + 0)
    *(u32 *)(r10 - 4) = r7
    *(u64 *)(r10 - 16) = 1
    *(u64 *)(r10 - 8) = 0
    r8 = *(u32 *)(r6 + 4)
    if r8 == 1 goto delete
    r1 = map[idx:0]
    r2 = r10
    r2 += -4
    call 1
    if r0 == 0 goto insert
    r1 = 1
    lock *(u64 *)(r0 + 0) += r1
    r1 = 1
    r1 = atomic_fetch_add((u64 *)(r0 + 0), r1)
    *(u64 *)(r0 + 8) = r7
    r0 = *(u64 *)(r0 + 0)
    r1 = 1
    r1 <<= 32
    r0 |= r1
    exit
insert:
    r1 = map[idx:0]
    r2 = r10
    r2 += -4
    r3 = r10
    r3 += -16
    r4 = 1
    call 2
    r0 = -r0
    exit
delete:
    r1 = map[idx:0]
    r2 = r10
    r2 += -4
    call 3
    r0 = -r0
    exit
";

fn load(map: Arc<dyn Map>) -> LoadedProgram {
    let slots = assemble(PROGRAM, Dialect::Llvm).expect("assembles");
    let program = bpfvm_isa::Program::from_slots(slots).expect("valid program");
    let kind = ProgramType::Kernel(bpfvm_abi::ProgramType::RawTracepoint);
    LoadedProgram::with_maps(
        program,
        kind,
        Arc::new(HelperRegistry::for_program_type(kind)),
        vec![map],
    )
    .expect("loads")
}

/// Runs the program `RUNS` times on `cpu`; `deletes` makes every third run a delete.
/// Returns how many runs counted into a found value, inserted, lost an insert race, and
/// deleted.
fn program_thread(
    prog: &LoadedProgram,
    map_type: MapType,
    cpu: usize,
    deletes: bool,
    start: &Barrier,
) -> [u32; 4] {
    let mut paths = [0; 4];
    start.wait();
    let opts = RunOptions::new().with_cpu(cpu).with_budget(10_000);
    for i in 0..RUNS {
        let key = i % KEYS;
        let op = u32::from(deletes && i % 3 == 2);
        let mut event = [0u8; 8];
        event[..4].copy_from_slice(&key.to_ne_bytes());
        event[4..].copy_from_slice(&op.to_ne_bytes());
        let r = Interpreter::new()
            .run_context(
                prog,
                &mut Context::Struct {
                    bytes: &mut event,
                    writable: false,
                },
                &opts,
            )
            .expect("program runs");
        let ok = if op == 1 {
            paths[3] += u32::from(r == 0);
            // 0, -ENOENT (already gone), or -EINVAL (array elements cannot be deleted).
            matches!(r, 0 | 2) || (map_type == MapType::Array && r == 22)
        } else if r >> 32 == 1 {
            paths[0] += 1;
            // Counted into a found value: both adds landed, whatever the host wrote (>= 1).
            r & 0xffff_ffff >= 2
        } else {
            paths[1] += u32::from(r == 0);
            paths[2] += u32::from(r == 17);
            // Inserted, or lost the insert to another thread or the host (-EEXIST).
            matches!(r, 0 | 17)
        };
        assert!(ok, "{map_type} cpu {cpu} run {i} op {op}: {r:#x}");
    }
    paths
}

#[test]
fn programs_count_while_the_host_deletes_and_replaces_the_same_keys() {
    let config = MapConfig::new(2, 1 << 16);
    for t in [
        MapType::Hash,
        MapType::PercpuHash,
        MapType::LruHash,
        MapType::Array,
    ] {
        let map: Arc<dyn Map> = create_map(&MapSpec::new(t, 4, 16, 4), &config)
            .expect("map")
            .into();
        let prog = load(map.clone());
        let start = Barrier::new(3);
        let paths = std::thread::scope(|s| {
            let a = s.spawn(|| program_thread(&prog, t, 0, false, &start));
            let b = s.spawn(|| program_thread(&prog, t, 1, true, &start));
            s.spawn(|| {
                let mut value = vec![0u8; map.value_len()];
                start.wait();
                for i in 0..RUNS {
                    let k = (i % KEYS).to_ne_bytes();
                    match i % 3 {
                        0 => {
                            // Every slot's first word >= 1, so counted values stay >= 2.
                            for slot in value.chunks_mut(8).step_by(2) {
                                slot.copy_from_slice(&100u64.to_ne_bytes());
                            }
                            map.update(&k, &value, UPDATE_ANY).expect("host update");
                        }
                        1 => {
                            let _ = map.delete(&k);
                        }
                        _ => {
                            if let Ok(v) = map.lookup(&k) {
                                assert_eq!(v.len(), map.value_len());
                            }
                        }
                    }
                }
            });
            let (a, b) = (a.join().expect("thread"), b.join().expect("thread"));
            [0, 1, 2, 3].map(|i| a[i] + b[i])
        });
        println!(
            "{t}: found {}, inserted {}, lost insert races {}, deleted {}",
            paths[0], paths[1], paths[2], paths[3]
        );
        // Values were found (and counted into) while the other threads churned.
        assert!(paths[0] > 0, "{t}: {paths:?}");
        // What is left is readable and whole.
        for k in 0..KEYS {
            if let Ok(v) = map.lookup(&k.to_ne_bytes()) {
                assert_eq!(v.len(), map.value_len(), "{t}");
            }
        }
        drop(prog);
        drop(map);
    }
    // Give the collector a chance to free what was deferred.
    for _ in 0..4 {
        RunGuard::pin().flush();
    }
}
