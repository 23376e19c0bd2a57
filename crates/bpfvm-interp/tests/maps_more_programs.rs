//! Programs using queues, stacks, bloom filters, LPM tries, maps of maps and program arrays
//! through the interpreter: push/pop/peek (helpers 87/88/89), `bpf_map_lookup_elem` on a
//! trie and through an array of maps, and `bpf_tail_call` (helper 12) up to the kernel's
//! `MAX_TAIL_CALL_CNT` (33). Expected values are computed by hand.

use std::sync::Arc;

use bpfvm_abi::{F_NO_PREALLOC, F_ZERO_SEED, UPDATE_ANY};
use bpfvm_isa::{Program, RawInsn};
use bpfvm_runtime::maps::{Map, MapConfig, MapOfMaps, MapSpec, MapType, ProgArrayMap, create_map};
use bpfvm_runtime::{HelperRegistry, LoadedProgram, ProgramType, RunOptions};

fn ins(op: u8, dst: u8, src: u8, off: i16, imm: i32) -> RawInsn {
    RawInsn::new(op, dst, src, off, imm)
}

/// `dst = maps[index]` (`lddw src=5`).
fn ld_map(dst: u8, index: i32) -> [RawInsn; 2] {
    [ins(0x18, dst, 5, 0, index), ins(0, 0, 0, 0, 0)]
}

const MOV_IMM: u8 = 0xb7;
const MOV_REG: u8 = 0xbf;
const ADD_IMM: u8 = 0x07;
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;
const STDW_IMM: u8 = 0x7a;
const STW_IMM: u8 = 0x62;
const STXDW: u8 = 0x7b;
const LDXDW: u8 = 0x79;
const LDXW: u8 = 0x61;

/// `r2 = r10 + off`.
fn stack_ptr(reg: u8, off: i32) -> [RawInsn; 2] {
    [ins(MOV_REG, reg, 10, 0, 0), ins(ADD_IMM, reg, 0, 0, off)]
}

fn load(insns: Vec<RawInsn>, maps: Vec<Arc<dyn Map>>) -> Arc<LoadedProgram> {
    let ty = ProgramType::Kernel(bpfvm_abi::ProgramType::SocketFilter);
    Arc::new(
        LoadedProgram::with_maps(
            Program::from_slots(insns).expect("valid program"),
            ty,
            Arc::new(HelperRegistry::for_program_type(ty)),
            maps,
        )
        .expect("loads"),
    )
}

fn run(prog: &LoadedProgram, mem: &mut [u8]) -> u64 {
    bpfvm_interp::Interpreter::new()
        .run(prog, mem, &RunOptions::new())
        .expect("runs")
}

fn map(spec: &MapSpec) -> Arc<dyn Map> {
    Arc::from(create_map(spec, &MapConfig::new(1, 1 << 20)).expect("map"))
}

fn u64_at(mem: &[u8], i: usize) -> u64 {
    u64::from_ne_bytes(mem[8 * i..8 * i + 8].try_into().expect("8 bytes"))
}

/// Pushes 10, 20, 30 into a 2-entry map (the third with `BPF_ANY` fails with `-E2BIG`),
/// pops, peeks, pops, and pops the empty map (`-ENOENT`, buffer zeroed), storing each
/// result in the memory: `[push3, pop1, peek, pop2, pop3 ret, pop3 buffer]`.
fn queue_program() -> Vec<RawInsn> {
    let mut p = vec![ins(MOV_REG, 9, 1, 0, 0)]; // r9 = mem
    for v in [10, 20, 30] {
        p.push(ins(STDW_IMM, 10, 0, -8, v));
        p.extend(ld_map(1, 0));
        p.extend(stack_ptr(2, -8));
        p.push(ins(MOV_IMM, 3, 0, 0, 0));
        p.push(ins(CALL, 0, 0, 0, 87));
    }
    p.push(ins(STXDW, 9, 0, 0, 0)); // mem[0] = last push's return
    for (slot, helper) in [(1, 88), (2, 89), (3, 88), (4, 88)] {
        p.push(ins(STDW_IMM, 10, 0, -16, -1)); // poison the buffer
        p.extend(ld_map(1, 0));
        p.extend(stack_ptr(2, -16));
        p.push(ins(CALL, 0, 0, 0, helper));
        p.push(ins(LDXDW, 1, 10, -16, 0));
        if slot == 4 {
            p.push(ins(STXDW, 9, 0, 8 * slot, 0)); // the return value
            p.push(ins(STXDW, 9, 1, 8 * (slot + 1), 0)); // the buffer
        } else {
            p.push(ins(STXDW, 9, 1, 8 * slot, 0)); // the value
        }
    }
    p.push(ins(MOV_IMM, 0, 0, 0, 0));
    p.push(ins(EXIT, 0, 0, 0, 0));
    p
}

#[test]
fn programs_push_pop_and_peek_queues_and_stacks() {
    let e2big = (-7i64) as u64;
    let enoent = (-2i64) as u64;
    for (t, pop1, peek, pop2) in [(MapType::Queue, 10, 20, 20), (MapType::Stack, 20, 10, 10)] {
        let q = map(&MapSpec::new(t, 0, 8, 2));
        let prog = load(queue_program(), vec![Arc::clone(&q)]);
        let mut mem = [0u8; 48];
        assert_eq!(run(&prog, &mut mem), 0);
        let got: Vec<u64> = (0..6).map(|i| u64_at(&mem, i)).collect();
        assert_eq!(got, vec![e2big, pop1, peek, pop2, enoent, 0], "{t}");
        assert!(q.lookup(&[]).is_err(), "{t} is empty afterwards");
    }
}

#[test]
fn programs_push_and_peek_bloom_filters() {
    let mut spec = MapSpec::new(MapType::BloomFilter, 0, 8, 100);
    spec.flags = F_ZERO_SEED;
    let bloom = map(&spec);
    // Push 42, then peek 42 (0) and 43 (-ENOENT unless a false positive: asked of the
    // host first); returns (peek 42) * 0x10000 + (peek 43 & 0xffff).
    let mut p = vec![ins(STDW_IMM, 10, 0, -8, 42)];
    p.extend(ld_map(1, 0));
    p.extend(stack_ptr(2, -8));
    p.push(ins(MOV_IMM, 3, 0, 0, 0));
    p.push(ins(CALL, 0, 0, 0, 87));
    p.push(ins(MOV_REG, 6, 0, 0, 0));
    for v in [42, 43] {
        p.push(ins(STDW_IMM, 10, 0, -8, v));
        p.extend(ld_map(1, 0));
        p.extend(stack_ptr(2, -8));
        p.push(ins(CALL, 0, 0, 0, 89));
        p.push(ins(STXDW, 10, 0, if v == 42 { -16 } else { -24 }, 0));
    }
    p.push(ins(LDXDW, 7, 10, -16, 0));
    p.push(ins(LDXDW, 8, 10, -24, 0));
    // r0 = push ret | peek42 << 16 | (peek43 & 0xffff) << 32
    p.extend([
        ins(0x57, 6, 0, 0, 0xffff), // r6 &= 0xffff
        ins(0x57, 7, 0, 0, 0xffff),
        ins(0x67, 7, 0, 0, 16), // r7 <<= 16
        ins(0x57, 8, 0, 0, 0xffff),
        ins(0x67, 8, 0, 0, 32),
        ins(MOV_REG, 0, 6, 0, 0),
        ins(0x4f, 0, 7, 0, 0), // r0 |= r7
        ins(0x4f, 0, 8, 0, 0),
        ins(EXIT, 0, 0, 0, 0),
    ]);
    let prog = load(p, vec![Arc::clone(&bloom)]);
    let r = run(&prog, &mut [0u8; 8]);
    let mut q = 43u64.to_ne_bytes();
    let peek43: u64 = if bloom.peek(&mut q).is_ok() {
        0
    } else {
        0xfffe
    };
    assert_eq!(r, peek43 << 32, "push 0, peek 42 0, peek 43 -ENOENT");
}

/// Looks up `{32, addr}` in the trie and returns the u32 value, or 0 when nothing matches.
fn lpm_lookup_program(addr: [u8; 4]) -> Vec<RawInsn> {
    let mut p = vec![
        ins(STW_IMM, 10, 0, -8, 32),
        ins(STW_IMM, 10, 0, -4, i32::from_ne_bytes(addr)),
    ];
    p.extend(ld_map(1, 0));
    p.extend(stack_ptr(2, -8));
    p.extend([
        ins(CALL, 0, 0, 0, 1),
        ins(0x55, 0, 0, 1, 0), // if r0 != 0 goto +1
        ins(EXIT, 0, 0, 0, 0),
        ins(LDXW, 0, 0, 0, 0),
        ins(EXIT, 0, 0, 0, 0),
    ]);
    p
}

#[test]
fn programs_look_up_the_longest_prefix() {
    let mut spec = MapSpec::new(MapType::LpmTrie, 8, 4, 8);
    spec.flags = F_NO_PREALLOC;
    let trie = map(&spec);
    let key = |len: u32, a: [u8; 4]| {
        let mut k = len.to_ne_bytes().to_vec();
        k.extend(a);
        k
    };
    trie.update(&key(8, [10, 0, 0, 0]), &1u32.to_ne_bytes(), UPDATE_ANY)
        .expect("10/8");
    trie.update(&key(16, [10, 1, 0, 0]), &2u32.to_ne_bytes(), UPDATE_ANY)
        .expect("10.1/16");
    trie.update(&key(32, [10, 1, 2, 3]), &3u32.to_ne_bytes(), UPDATE_ANY)
        .expect("10.1.2.3/32");
    for (addr, want) in [
        ([10, 1, 2, 3], 3),
        ([10, 1, 2, 4], 2),
        ([10, 2, 3, 4], 1),
        ([11, 0, 0, 0], 0),
    ] {
        let prog = load(lpm_lookup_program(addr), vec![Arc::clone(&trie)]);
        assert_eq!(run(&prog, &mut [0u8; 8]), want, "{addr:?}");
    }
}

#[test]
fn programs_reach_inner_maps_through_an_array_of_maps() {
    let inner_spec = MapSpec::new(MapType::Array, 4, 8, 4);
    let mut spec = MapSpec::new(MapType::ArrayOfMaps, 4, 4, 2);
    spec.inner = Some(Box::new(inner_spec.clone()));
    let outer = map(&spec);
    let inner = map(&inner_spec);
    inner
        .update(&2u32.to_ne_bytes(), &77u64.to_ne_bytes(), UPDATE_ANY)
        .expect("inner value");
    outer
        .as_any()
        .downcast_ref::<MapOfMaps>()
        .expect("map of maps")
        .set(&0u32.to_ne_bytes(), Arc::clone(&inner))
        .expect("set");
    // inner = lookup(outer, &key); v = lookup(inner, &2); *v += 1; return *v
    // (outer key `k`; 1000 when the outer lookup fails).
    let program = |k: i32| {
        let mut p = vec![ins(STW_IMM, 10, 0, -4, k)];
        p.extend(ld_map(1, 0));
        p.extend(stack_ptr(2, -4));
        p.extend([
            ins(CALL, 0, 0, 0, 1),
            ins(0x55, 0, 0, 2, 0), // if r0 != 0 goto +2
            ins(MOV_IMM, 0, 0, 0, 1000),
            ins(EXIT, 0, 0, 0, 0),
            ins(MOV_REG, 1, 0, 0, 0),
            ins(STW_IMM, 10, 0, -8, 2),
        ]);
        p.extend(stack_ptr(2, -8));
        p.extend([
            ins(CALL, 0, 0, 0, 1),
            ins(0x55, 0, 0, 1, 0),
            ins(EXIT, 0, 0, 0, 0),
            ins(LDXDW, 1, 0, 0, 0),
            ins(ADD_IMM, 1, 0, 0, 1),
            ins(STXDW, 0, 1, 0, 0),
            ins(MOV_REG, 0, 1, 0, 0),
            ins(EXIT, 0, 0, 0, 0),
        ]);
        load(p, vec![Arc::clone(&outer)])
    };
    assert_eq!(run(&program(0), &mut [0u8; 8]), 78);
    assert_eq!(run(&program(1), &mut [0u8; 8]), 1000, "empty slot");
    assert_eq!(run(&program(2), &mut [0u8; 8]), 1000, "out of range");
    assert_eq!(
        inner.lookup(&2u32.to_ne_bytes()).expect("value"),
        78u64.to_ne_bytes(),
        "the program's write is in the inner map"
    );
}

/// A program that counts its executions in `mem[0]` and tail-calls slot 0 of the program
/// array: with itself in slot 0 it runs 1 + 33 times (the kernel's `MAX_TAIL_CALL_CNT`),
/// then the 34th tail call falls through and it returns the count.
#[test]
fn tail_calls_stop_after_33() {
    let pa = map(&MapSpec::new(MapType::ProgArray, 4, 4, 2));
    let mut p = vec![
        ins(MOV_REG, 6, 1, 0, 0),
        ins(LDXDW, 0, 6, 0, 0),
        ins(ADD_IMM, 0, 0, 0, 1),
        ins(STXDW, 6, 0, 0, 0),
        ins(LDXDW, 3, 6, 8, 0), // r3 = slot (mem[1])
        ins(MOV_REG, 1, 6, 0, 0),
    ];
    p.extend(ld_map(2, 0));
    p.extend([
        ins(CALL, 0, 0, 0, 12),
        ins(LDXDW, 0, 6, 0, 0),
        ins(EXIT, 0, 0, 0, 0),
    ]);
    let prog = load(p, vec![Arc::clone(&pa)]);
    let slots = pa
        .as_any()
        .downcast_ref::<ProgArrayMap>()
        .expect("prog array");
    slots.set(0, Arc::clone(&prog)).expect("set");
    let mut mem = [0u8; 16];
    assert_eq!(run(&prog, &mut mem), 34);
    // An empty slot, or an index out of range, falls through at once.
    for slot in [1u64, 2, u64::MAX] {
        let mut mem = [0u8; 16];
        mem[8..].copy_from_slice(&slot.to_ne_bytes());
        assert_eq!(run(&prog, &mut mem), 1, "slot {slot}");
    }
    // Break the cycle program -> map -> program.
    slots.clear(0).expect("clear");
}
