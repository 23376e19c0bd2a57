//! Tail calls made inside a BPF subprogram, on the JIT (plain and blinded) and the
//! interpreter: the tail-called program replaces the subprogram, and its `r0` is the
//! subprogram's. One documented divergence (`docs/jit.md`, `liveness.rs`): the
//! subprogram's caller finds `r1`–`r5` zero on the JIT, the tail-called program's last
//! values on the interpreter.

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

#[test]
fn a_tail_call_inside_a_subprogram_returns_through_it() {
    let slots = Arc::<dyn Map>::from(
        create_map(
            &MapSpec::new(MapType::ProgArray, 4, 4, 1),
            &MapConfig::new(1, 1 << 20),
        )
        .expect("program array"),
    );
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
            ins(0x18, 2, 5, 0, 0),
            ins(0, 0, 0, 0, 0),
            ins(MOV_IMM, 3, 0, 0, 0),
            ins(CALL, 0, 0, 0, 12),
            ins(MOV_IMM, 0, 0, 0, 1000),
            ins(EXIT, 0, 0, 0, 0),
        ],
        vec![Arc::clone(&slots)],
    );
    let array = slots
        .as_any()
        .downcast_ref::<ProgArrayMap>()
        .expect("program array");
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
