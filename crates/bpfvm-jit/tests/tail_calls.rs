//! Tail calls on the JIT (plain and blinded) and the interpreter. Made inside a BPF
//! subprogram: the tail-called program replaces the subprogram, and its `r0` is the
//! subprogram's. One documented divergence (`docs/jit.md`, `liveness.rs`): the
//! subprogram's caller finds `r1`–`r5` zero on the JIT, the tail-called program's last
//! values on the interpreter. Into a program with global data of its own: the program
//! reads it (it used to fault: only the first program's global data was in the run's
//! regions), and 33 tail calls into one such program add its data once.

use std::sync::Arc;

use bpfvm_interp::Interpreter;
use bpfvm_isa::{Program, RawInsn};
use bpfvm_jit::Jit;
use bpfvm_runtime::maps::{Map, MapConfig, MapSpec, MapType, ProgArrayMap, create_map};
use bpfvm_runtime::{Engine, HelperRegistry, LoadedProgram, ProgramType, RunOptions};

fn ins(op: u8, dst: u8, src: u8, off: i16, imm: i32) -> RawInsn {
    RawInsn::new(op, dst, src, off, imm)
}

const MOV_IMM: u8 = 0xb7;
const MOV_REG: u8 = 0xbf;
const ADD_REG: u8 = 0x0f;
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;

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

/// `bpf_tail_call(r1, map[map], 0)`: `r2` = the program's map `map` (an `lddw` of a map
/// index), `r3` = 0, the call.
fn tail_call(map: i32) -> [RawInsn; 4] {
    [
        ins(0x18, 2, 5, 0, map),
        ins(0, 0, 0, 0, 0),
        ins(MOV_IMM, 3, 0, 0, 0),
        ins(CALL, 0, 0, 0, 12),
    ]
}

fn prog_array(map: &Arc<dyn Map>) -> &ProgArrayMap {
    map.as_any()
        .downcast_ref::<ProgArrayMap>()
        .expect("program array")
}

/// A map of `map_type` with 4-byte keys, `value_size`-byte values and one slot: the
/// program array of these tests, or a program's global data (libbpf's `.data`).
fn one_slot_map(map_type: MapType, value_size: u32) -> Arc<dyn Map> {
    let spec = MapSpec::new(map_type, 4, value_size, 1);
    Arc::from(create_map(&spec, &MapConfig::new(1, 1 << 20)).expect("map"))
}

#[test]
fn a_tail_call_inside_a_subprogram_returns_through_it() {
    let slots = one_slot_map(MapType::ProgArray, 4);
    // The target: r2 = 5 ; r0 = 40 ; exit.
    let target = load(
        vec![
            ins(MOV_IMM, 2, 0, 0, 5),
            ins(MOV_IMM, 0, 0, 0, 40),
            ins(EXIT, 0, 0, 0, 0),
        ],
        vec![],
    );
    // pc 0: r6 = r1 ; r2 = 7 ; call sub ; r0 += r2 ; exit
    // sub (pc 5): r1 = r6 ; r2 = slots ; r3 = 0 ; call bpf_tail_call ; r0 = 1000 ; exit
    let caller = load(
        vec![
            ins(MOV_REG, 6, 1, 0, 0),
            ins(MOV_IMM, 2, 0, 0, 7),
            ins(CALL, 0, 1, 0, 2),
            ins(ADD_REG, 0, 2, 0, 0),
            ins(EXIT, 0, 0, 0, 0),
            ins(MOV_REG, 1, 6, 0, 0),
        ]
        .into_iter()
        .chain(tail_call(0))
        .chain([ins(MOV_IMM, 0, 0, 0, 1000), ins(EXIT, 0, 0, 0, 0)])
        .collect(),
        vec![Arc::clone(&slots)],
    );
    let array = prog_array(&slots);
    let opts = RunOptions::new().with_budget(10_000);
    let run = |engine: &dyn Engine| engine.run(&caller, &mut [0u8; 8], &opts);

    // An empty slot: the call fails and, as every helper call, leaves r1-r5 zero; the
    // subprogram returns 1000 and the caller adds that r2, 0.
    assert_eq!(run(&Interpreter::new()), Ok(1000));
    assert_eq!(run(&Jit::new()), Ok(1000));

    array.set(0, Arc::clone(&target)).expect("set");
    // The target's r0 (40) is the subprogram's. The caller then adds r2: the target's 5
    // on the interpreter (one register file), 0 on the JIT (the documented divergence).
    assert_eq!(
        Interpreter::new().run(&caller, &mut [0u8; 8], &opts),
        Ok(45)
    );
    assert_eq!(run(&Jit::new()), Ok(40));
    assert_eq!(run(&Jit::new().with_constant_blinding()), Ok(40));
    // Break the cycle program -> map -> program.
    array.clear(0).expect("clear");
}

#[test]
fn a_tail_called_program_reads_its_own_global_data() {
    let slots = one_slot_map(MapType::ProgArray, 4);
    // The target's global data: a one-element array (what libbpf makes of `.data`),
    // holding 77, which the root program does not reference.
    let data = one_slot_map(MapType::Array, 8);
    data.update(&0u32.to_le_bytes(), &77u64.to_le_bytes(), 0)
        .expect("fill");
    // The target: r1 = &data[0] (lddw of a map value) ; r0 = *(u64 *)(r1 + 0) ; exit.
    let target = load(
        vec![
            ins(0x18, 1, 2, 0, 0),
            ins(0, 0, 0, 0, 0),
            ins(0x79, 0, 1, 0, 0),
            ins(EXIT, 0, 0, 0, 0),
        ],
        vec![Arc::clone(&data)],
    );
    // The root: r2 = slots ; r3 = 0 ; call bpf_tail_call ; r0 = 1000 ; exit.
    let root = load(
        tail_call(0)
            .into_iter()
            .chain([ins(MOV_IMM, 0, 0, 0, 1000), ins(EXIT, 0, 0, 0, 0)])
            .collect(),
        vec![Arc::clone(&slots)],
    );
    let array = prog_array(&slots);
    array.set(0, Arc::clone(&target)).expect("set");
    let opts = RunOptions::new().with_budget(10_000);
    let run = |engine: &dyn Engine| engine.run(&root, &mut [0u8; 8], &opts);
    assert_eq!(run(&Interpreter::new()), Ok(77));
    assert_eq!(run(&Jit::new()), Ok(77));
    assert_eq!(run(&Jit::new().with_constant_blinding()), Ok(77));
    array.clear(0).expect("clear");
}

#[test]
fn a_program_tail_calling_itself_33_times_counts_in_its_global_data() {
    // Each entry adds its global data to the run's regions once: 33 entries of one
    // program must not fill the 16-entry table (the kernel allows 33 tail calls).
    let slots = one_slot_map(MapType::ProgArray, 4);
    let data = one_slot_map(MapType::Array, 8);
    // r6 = r1 ; r7 = &data[0] ; data[0] += 1 ; tail-call slot 0 (itself) ; when that
    // fails (the 34th), r0 = data[0] ; exit.
    let counter = load(
        vec![
            ins(MOV_REG, 6, 1, 0, 0),
            ins(0x18, 7, 2, 0, 0),
            ins(0, 0, 0, 0, 0),
            ins(0x79, 0, 7, 0, 0),
            ins(0x07, 0, 0, 0, 1),
            ins(0x7b, 7, 0, 0, 0),
            ins(MOV_REG, 1, 6, 0, 0),
        ]
        .into_iter()
        .chain(tail_call(1))
        .chain([ins(0x79, 0, 7, 0, 0), ins(EXIT, 0, 0, 0, 0)])
        .collect(),
        vec![Arc::clone(&data), Arc::clone(&slots)],
    );
    let array = prog_array(&slots);
    array.set(0, Arc::clone(&counter)).expect("set");
    let opts = RunOptions::new().with_budget(10_000);
    for engine in [
        &Interpreter::new() as &dyn Engine,
        &Jit::new(),
        &Jit::new().with_constant_blinding(),
    ] {
        data.update(&0u32.to_le_bytes(), &0u64.to_le_bytes(), 0)
            .expect("reset");
        // The first run plus 33 tail calls: 34 entries.
        assert_eq!(
            engine.run(&counter, &mut [0u8; 8], &opts),
            Ok(34),
            "{}",
            engine.name()
        );
    }
    array.clear(0).expect("clear");
}
