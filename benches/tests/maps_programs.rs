//! The map, ring buffer and hook benchmark programs compute what `benches/maps.rs` claims
//! they do, in bpfvm and in the kernel: the lookup program returns the hand-computed sum
//! of the values it looks up, the update program stores what it says, the ring buffer
//! program writes its records, and the empty program returns 0 from every hook slot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bpfvm::{Hook, Program as FacadeProgram};
use bpfvm_benches::maps::{
    PACKET_LEN, PROG_OPS, RING_RECORDS, empty_source, fill_value, filled_hash, hash_lookup_source,
    hash_update_source, load, lookup_sum, prog_key, record, ringbuf, ringbuf_source,
};
use bpfvm_interp::Interpreter;
use bpfvm_runtime::maps::{Map, RingBufMap};
use bpfvm_runtime::{Context, LoadedProgram, Packet, RunOptions, SkBuff};

fn run(prog: &LoadedProgram) -> u64 {
    let mut skb = SkBuff::new();
    let mut packet = Packet::new(&[0; PACKET_LEN], 0, 0);
    let mut ctx = Context::SkBuff {
        skb: &mut skb,
        packet: &mut packet,
    };
    Interpreter::new()
        .run_context(prog, &mut ctx, &RunOptions::new())
        .expect("runs")
}

fn u64_at(map: &dyn Map, key: u32) -> u64 {
    let v = map.lookup(&key.to_le_bytes()).expect("present");
    u64::from_le_bytes(v.try_into().expect("8 bytes"))
}

#[test]
fn hand_computed_lookup_sum() {
    // sum over i < 100 of (70 i + 3) = 70 * 4950 + 300.
    assert_eq!(lookup_sum(PROG_OPS), 346_800);
    assert_eq!(fill_value(prog_key(99)), 6933);
}

#[test]
fn bpfvm_lookup_program_sums_the_values() {
    let map = filled_hash().unwrap();
    let prog = load(&hash_lookup_source(PROG_OPS), vec![map]).unwrap();
    assert_eq!(run(&prog), 346_800);
}

#[test]
fn bpfvm_update_program_stores_its_values() {
    let map = filled_hash().unwrap();
    let prog = load(&hash_update_source(PROG_OPS), vec![map.clone()]).unwrap();
    assert_eq!(run(&prog), u64::from(PROG_OPS), "every update succeeds");
    for i in 0..PROG_OPS {
        assert_eq!(u64_at(map.as_ref(), prog_key(i)), u64::from(i));
    }
    // A key the program does not touch keeps its fill value.
    assert_eq!(u64_at(map.as_ref(), 5), fill_value(5));
}

#[test]
fn bpfvm_ringbuf_program_writes_its_records() {
    let map = ringbuf().unwrap();
    let prog = load(&ringbuf_source(RING_RECORDS), vec![map.clone()]).unwrap();
    let rb = map
        .as_any()
        .downcast_ref::<RingBufMap>()
        .unwrap()
        .consumer();
    for _ in 0..3 {
        assert_eq!(run(&prog), u64::from(RING_RECORDS));
        let mut seen = Vec::new();
        assert_eq!(rb.consume(|r| seen.push(r.to_vec())), RING_RECORDS as usize);
        let want: Vec<Vec<u8>> = (0..RING_RECORDS).map(record).collect();
        assert_eq!(seen, want);
    }
}

#[test]
fn bpfvm_empty_program_through_hooks() {
    let prog = Arc::new(load(&empty_source(), Vec::new()).unwrap());
    assert_eq!(run(&prog), 0);
    let p = FacadeProgram::from_loaded("empty", prog);
    for n in [0usize, 1, 4] {
        let hook = Hook::new("bench");
        for _ in 0..n {
            hook.attach(&p);
        }
        let mut skb = SkBuff::new();
        let mut packet = Packet::new(&[0; PACKET_LEN], 0, 0);
        let mut ctx = Context::SkBuff {
            skb: &mut skb,
            packet: &mut packet,
        };
        assert_eq!(hook.fire(&mut ctx).unwrap(), vec![0; n]);
    }
}

#[cfg(target_os = "linux")]
mod kernel {
    use super::*;
    use bpfvm_benches::kernel::{KernelRing, filled_hash, load};
    use bpfvm_kernel::{Bpf, Prog, TestRun};

    fn test_run(prog: &Prog, repeat: u32) -> u32 {
        prog.test_run(&mut TestRun {
            data_in: &[0; PACKET_LEN],
            repeat,
            ..TestRun::default()
        })
        .expect("test run")
        .retval
    }

    fn k_u64_at(map: &bpfvm_kernel::Map, key: u32) -> u64 {
        let v = map.lookup(&key.to_le_bytes()).unwrap().expect("present");
        u64::from_le_bytes(v.try_into().expect("8 bytes"))
    }

    #[test]
    fn kernel_lookup_program_sums_the_values() {
        if !bpfvm_kernel::kernel_available_for_test("kernel_lookup_program_sums_the_values") {
            return;
        }
        let bpf = Bpf::new();
        let map = filled_hash(&bpf).unwrap();
        let prog = load(&bpf, &hash_lookup_source(PROG_OPS), &[&map]).unwrap();
        assert_eq!(test_run(&prog, 1), 346_800);
        assert_eq!(
            test_run(&prog, 1000),
            346_800,
            "every repeat sees the same map"
        );
    }

    #[test]
    fn kernel_update_program_stores_its_values() {
        if !bpfvm_kernel::kernel_available_for_test("kernel_update_program_stores_its_values") {
            return;
        }
        let bpf = Bpf::new();
        let map = filled_hash(&bpf).unwrap();
        let prog = load(&bpf, &hash_update_source(PROG_OPS), &[&map]).unwrap();
        assert_eq!(test_run(&prog, 100), PROG_OPS);
        for i in 0..PROG_OPS {
            assert_eq!(k_u64_at(&map, prog_key(i)), u64::from(i));
        }
        assert_eq!(k_u64_at(&map, 5), fill_value(5));
    }

    #[test]
    fn kernel_ringbuf_program_writes_its_records() {
        if !bpfvm_kernel::kernel_available_for_test("kernel_ringbuf_program_writes_its_records") {
            return;
        }
        let bpf = Bpf::new();
        let ring = KernelRing::new(&bpf).unwrap();
        let prog = load(&bpf, &ringbuf_source(RING_RECORDS), &[ring.map()]).unwrap();
        let want: Vec<Vec<u8>> = (0..RING_RECORDS).map(record).collect();
        // Enough rounds to wrap the 256 KiB ring several times (7,200 bytes a run).
        for _ in 0..100 {
            assert_eq!(test_run(&prog, 1), RING_RECORDS);
            let mut seen = Vec::new();
            assert_eq!(
                ring.consume(|r| seen.push(r.to_vec())),
                RING_RECORDS as usize
            );
            assert_eq!(seen, want);
        }
        // 32 runs in one syscall: 3,200 records, all there.
        assert_eq!(test_run(&prog, 32), RING_RECORDS);
        let mut n = 0;
        ring.consume(|r| {
            assert_eq!(r, record(n % RING_RECORDS).as_slice());
            n += 1;
        });
        assert_eq!(n, 32 * RING_RECORDS);
    }

    #[test]
    fn kernel_empty_program_returns_zero() {
        if !bpfvm_kernel::kernel_available_for_test("kernel_empty_program_returns_zero") {
            return;
        }
        let bpf = Bpf::new();
        let prog = load(&bpf, &empty_source(), &[]).unwrap();
        assert_eq!(test_run(&prog, 1), 0);
    }
}
