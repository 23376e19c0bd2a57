//! The dispatch loop.
//!
//! Per run, everything lives on the Rust stack: sixteen 64-bit registers (`r0`–`r10`,
//! padded so that a 4-bit register field indexes without a bounds check), the
//! [`StackMemory`] of all frames, the [`Regions`] table, and the call frames. Per
//! instruction: fetch the pre-decoded [`Op`], count down the budget, dispatch on its
//! [`Code`]. Memory goes through [`Regions`]; the cancel token is polled at backward
//! jumps and calls.
//!
//! A run is a sequence of *segments*, one per stretch of execution in one program: a tail
//! call, or an `exit` back into a frame of another program, ends the segment and the
//! outer loop continues in the other program's pre-decoded form.

use std::sync::atomic::{AtomicBool, Ordering};

use bpfvm_isa::{AluOp, AtomicOp, EndianOp, JmpOp};
use bpfvm_runtime::{
    CallbackRequest, Context, Fault, FaultKind, HelperContext, LoadedProgram, MAX_CALL_FRAMES,
    MAY_GOTO_BUDGET, Regions, RunOptions, RunState, with_run,
};

use crate::compile::{Code, Compiled, Op};
use crate::semantics::{alu32, alu64, endian};
use crate::trace::Tracer;

/// A `bpf_loop` in progress in the frame that called it.
#[derive(Clone, Copy)]
struct LoopState {
    /// The callback's pc.
    pc: usize,
    /// Iterations started so far.
    done: u64,
    /// Iterations asked for.
    total: u64,
    /// The callback's context argument.
    ctx: u64,
    /// The `bpf_for_each_map_elem` walk, if this is one.
    walk: Option<usize>,
    /// The walk's next element index.
    next: usize,
}

/// A caller's state saved by a local call.
#[derive(Clone, Copy)]
struct Frame {
    /// Where `exit` resumes.
    return_pc: usize,
    /// Which program of the run `return_pc` is in (0: the first; see `RunState`).
    return_prog: usize,
    /// `r6`–`r9` of the caller.
    saved: [u64; 4],
    /// This function's `may_goto` counter.
    may_goto: u64,
    /// A `bpf_loop` this frame is running (its callback's exit comes back here).
    looping: Option<LoopState>,
}

impl Frame {
    const ENTRY: Frame = Frame {
        return_pc: 0,
        return_prog: 0,
        saved: [0; 4],
        may_goto: MAY_GOTO_BUDGET,
        looping: None,
    };
}

/// The machine state that survives a switch of program.
struct Machine<'r, 'a> {
    regs: [u64; 16],
    frames: [Frame; MAX_CALL_FRAMES],
    depth: usize,
    pc: usize,
    remaining: u64,
    budget: u64,
    /// The legacy packet (`ldabs`/`ldind`): address and length.
    mem_addr: u64,
    mem_len: u64,
    regions: &'r mut Regions<'a>,
    run: &'r mut RunState<'a>,
}

/// How a segment ended.
enum Segment {
    /// The run is over.
    Done(Result<u64, Fault>),
    /// Continue in program `index` of the run at `machine.pc`.
    Switch(usize),
}

/// Runs `prog` with `ctx`; returns the result and the number of instructions executed.
#[inline(never)]
pub(crate) fn run<T: Tracer>(
    prog: &LoadedProgram,
    ctx: &mut Context<'_>,
    opts: &RunOptions,
    tracer: &mut T,
) -> (Result<u64, Fault>, u64) {
    let slots = prog.program().slots();
    let budget = opts.budget.unwrap_or(u64::MAX);
    let outcome = with_run(prog, ctx, opts, |setup| {
        let mut m = Machine {
            regs: [0u64; 16],
            frames: [Frame::ENTRY; MAX_CALL_FRAMES],
            depth: 0,
            pc: 0,
            remaining: budget,
            budget,
            mem_addr: setup.packet_addr,
            mem_len: setup.packet_len,
            regions: setup.regions,
            run: setup.state,
        };
        m.regs[1] = setup.r1;
        m.regs[2] = setup.r2;
        m.regs[10] = setup.fp;

        let cancel: Option<&AtomicBool> = opts.cancel.as_ref().map(|t| t.flag());
        let result = if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            Err(Fault::at(slots, 0, FaultKind::Cancelled))
        } else {
            let mut segment = segment(
                prog,
                &prog.engine_data(Compiled::new),
                &mut m,
                cancel,
                tracer,
            );
            loop {
                match segment {
                    Segment::Done(r) => break r,
                    Segment::Switch(index) => {
                        m.run.set_current(index);
                        let next = m.run.program_at(index);
                        let p: &LoadedProgram = next.as_deref().unwrap_or(prog);
                        segment = segment_in(p, &mut m, cancel, tracer);
                    }
                }
            }
        };
        (result, m.budget - m.remaining)
    });
    outcome.unwrap_or_else(|kind| (Err(Fault::at(slots, 0, kind)), 0))
}

fn segment_in<T: Tracer>(
    prog: &LoadedProgram,
    m: &mut Machine<'_, '_>,
    cancel: Option<&AtomicBool>,
    tracer: &mut T,
) -> Segment {
    segment(prog, &prog.engine_data(Compiled::new), m, cancel, tracer)
}

/// Runs `prog` from `m.pc` until the run ends or switches program.
#[inline(never)]
fn segment<T: Tracer>(
    prog: &LoadedProgram,
    compiled: &Compiled,
    m: &mut Machine<'_, '_>,
    cancel: Option<&AtomicBool>,
    tracer: &mut T,
) -> Segment {
    let slots = prog.program().slots();
    let helpers = prog.helpers();
    let ops: &[Op] = &compiled.ops;
    let budget = m.budget;
    let mut remaining = m.remaining;
    let mut regs = m.regs;
    let mut pc = m.pc;
    let mut depth = m.depth;
    let mem_addr = m.mem_addr;
    let mem_len = m.mem_len;
    let prog_index = m.run.current();

    // Ends the segment, saving the machine state.
    macro_rules! save {
        () => {{
            m.remaining = remaining;
            m.regs = regs;
            m.pc = pc;
            m.depth = depth;
        }};
    }
    macro_rules! done {
        ($result:expr) => {{
            save!();
            return Segment::Done($result);
        }};
    }
    macro_rules! fault {
        ($pc:expr, $kind:expr) => {
            done!(Err(Fault::at(slots, $pc, $kind)))
        };
    }

    loop {
        let Some(&op) = ops.get(pc) else {
            fault!(pc, FaultKind::PcOutOfRange)
        };
        if remaining == 0 {
            fault!(pc, FaultKind::BudgetExhausted { budget })
        }
        remaining -= 1;
        let cur = pc;
        pc += 1;
        let before = if T::ENABLED { regs } else { [0; 16] };
        let frame_before = depth;
        let d = usize::from(op.dst) & 0xf;
        let s = usize::from(op.src) & 0xf;

        macro_rules! trace_step {
            () => {
                if T::ENABLED {
                    tracer.step(cur, frame_before, &before[..11], &regs[..11]);
                }
            };
        }
        macro_rules! poll {
            () => {
                if let Some(c) = cancel {
                    if c.load(Ordering::Relaxed) {
                        fault!(cur, FaultKind::Cancelled);
                    }
                }
            };
        }
        macro_rules! try_mem {
            ($e:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(kind) => fault!(cur, kind),
                }
            };
        }
        macro_rules! alu {
            (64, $op:ident, imm) => {
                regs[d] = alu64(AluOp::$op, regs[d], op.imm)
            };
            (64, $op:ident, reg) => {
                regs[d] = alu64(AluOp::$op, regs[d], regs[s])
            };
            (32, $op:ident, imm) => {
                regs[d] = alu32(AluOp::$op, regs[d], op.imm)
            };
            (32, $op:ident, reg) => {
                regs[d] = alu32(AluOp::$op, regs[d], regs[s])
            };
        }
        macro_rules! jump_to {
            ($target:expr) => {{
                let target = $target;
                if target <= cur {
                    poll!();
                }
                pc = target;
            }};
        }
        macro_rules! jmp {
            (64, $op:ident, imm) => {
                if JmpOp::$op.eval64(regs[d], op.imm) {
                    jump_to!(op.target())
                }
            };
            (64, $op:ident, reg) => {
                if JmpOp::$op.eval64(regs[d], regs[s]) {
                    jump_to!(op.target())
                }
            };
            (32, $op:ident, imm) => {
                if JmpOp::$op.eval32(regs[d], op.imm) {
                    jump_to!(op.target())
                }
            };
            (32, $op:ident, reg) => {
                if JmpOp::$op.eval32(regs[d], regs[s]) {
                    jump_to!(op.target())
                }
            };
        }
        // Address of `[reg + off]`.
        macro_rules! addr {
            ($reg:expr) => {
                regs[$reg].wrapping_add(i64::from(op.off) as u64)
            };
        }
        macro_rules! load {
            ($t:ty) => {
                regs[d] = try_mem!(m.regions.load_zx::<$t>(addr!(s)))
            };
            ($t:ty, signed $st:ty) => {
                regs[d] = try_mem!(m.regions.load::<$t>(addr!(s))) as $st as i64 as u64
            };
        }
        macro_rules! store {
            ($t:ty, $value:expr) => {
                try_mem!(m.regions.store::<$t>(addr!(d), $value as $t))
            };
        }
        macro_rules! atomic {
            (32, $aop:expr) => {{
                let aop = $aop;
                let old =
                    try_mem!(
                        m.regions
                            .atomic32(addr!(d), aop, regs[s] as u32, regs[0] as u32)
                    );
                write_back(&mut regs, aop, s, u64::from(old));
            }};
            (64, $aop:expr) => {{
                let aop = $aop;
                let old = try_mem!(m.regions.atomic64(addr!(d), aop, regs[s], regs[0]));
                write_back(&mut regs, aop, s, old);
            }};
        }
        // Legacy packet load: `mem` is the packet; out of bounds ends the program with 0.
        macro_rules! ld_packet {
            ($t:ty, $offset:expr) => {{
                let offset: i32 = $offset;
                let size = std::mem::size_of::<$t>() as u64;
                let in_bounds = offset >= 0 && offset as u64 + size <= mem_len;
                if !in_bounds {
                    regs[0] = 0;
                    trace_step!();
                    done!(Ok(0));
                }
                let v = try_mem!(m.regions.load::<$t>(mem_addr + offset as u64));
                regs[0] = u64::from(<$t>::from_be(v));
            }};
        }
        macro_rules! call_local {
            ($target:expr) => {{
                let target = $target;
                if depth + 1 >= MAX_CALL_FRAMES {
                    fault!(cur, FaultKind::CallDepthExceeded);
                }
                if let Some(f) = m.frames.get_mut(depth) {
                    f.return_pc = pc;
                    f.return_prog = prog_index;
                    f.saved = [regs[6], regs[7], regs[8], regs[9]];
                }
                depth += 1;
                if let Some(f) = m.frames.get_mut(depth) {
                    f.may_goto = MAY_GOTO_BUDGET;
                    f.looping = None;
                }
                regs[10] = try_mem!(m.regions.set_stack_depth(depth));
                pc = target;
                poll!();
            }};
        }
        // Calls a helper (or kfunc), then acts on what it asked of the engine.
        macro_rules! call {
            ($helper:expr, $id:expr) => {{
                let helper = $helper;
                let args = [regs[1], regs[2], regs[3], regs[4], regs[5]];
                let mut hctx = HelperContext {
                    regions: &mut *m.regions,
                    run: &mut *m.run,
                    id: $id as u32,
                };
                regs[0] = try_mem!(helper.call(&mut hctx, args));
                // Scratch the argument registers, as documented on `HelperRegistry`.
                regs[1] = 0;
                regs[2] = 0;
                regs[3] = 0;
                regs[4] = 0;
                regs[5] = 0;
                if let Some(next) = m.run.tail_call.take() {
                    // The callee replaces this function: same frame, r1 = ctx.
                    regs = [0; 16];
                    regs[1] = args[0];
                    regs[10] = try_mem!(m.regions.set_stack_depth(depth));
                    if let Some(f) = m.frames.get_mut(depth) {
                        f.may_goto = MAY_GOTO_BUDGET;
                    }
                    let index = try_mem!(m.run.enter_tail_call(next, m.regions));
                    pc = 0;
                    trace_step!();
                    save!();
                    return Segment::Switch(index);
                }
                if let Some(CallbackRequest {
                    pc: cb,
                    iterations,
                    ctx,
                    for_each,
                }) = m.run.callback.take()
                {
                    // The first call's arguments, if there is a first call.
                    let first = match for_each {
                        None if iterations > 0 => Some((0, [0, ctx, 0, 0])),
                        None => None,
                        Some(w) => m
                            .run
                            .for_each_args(w, 0, m.regions)
                            .map(|(i, [map, k, v])| (i, [map, k, v, ctx])),
                    };
                    if let Some((index, args)) = first {
                        if let Some(f) = m.frames.get_mut(depth) {
                            f.looping = Some(LoopState {
                                pc: cb,
                                done: 1,
                                total: iterations,
                                ctx,
                                walk: for_each,
                                next: index + 1,
                            });
                        }
                        [regs[1], regs[2], regs[3], regs[4]] = args;
                        call_local!(cb);
                    }
                }
                poll!();
            }};
        }
        macro_rules! call_helper {
            ($id:expr) => {{
                let id: i64 = $id;
                let Some(helper) = helpers.get(id) else {
                    fault!(cur, FaultKind::UnknownHelper { id });
                };
                call!(helper, id)
            }};
        }

        match op.code {
            Code::Add64Imm => alu!(64, Add, imm),
            Code::Add64Reg => alu!(64, Add, reg),
            Code::Sub64Imm => alu!(64, Sub, imm),
            Code::Sub64Reg => alu!(64, Sub, reg),
            Code::Mul64Imm => alu!(64, Mul, imm),
            Code::Mul64Reg => alu!(64, Mul, reg),
            Code::Div64Imm => alu!(64, Div, imm),
            Code::Div64Reg => alu!(64, Div, reg),
            Code::SDiv64Imm => alu!(64, SDiv, imm),
            Code::SDiv64Reg => alu!(64, SDiv, reg),
            Code::Or64Imm => alu!(64, Or, imm),
            Code::Or64Reg => alu!(64, Or, reg),
            Code::And64Imm => alu!(64, And, imm),
            Code::And64Reg => alu!(64, And, reg),
            Code::Lsh64Imm => alu!(64, Lsh, imm),
            Code::Lsh64Reg => alu!(64, Lsh, reg),
            Code::Rsh64Imm => alu!(64, Rsh, imm),
            Code::Rsh64Reg => alu!(64, Rsh, reg),
            Code::Mod64Imm => alu!(64, Mod, imm),
            Code::Mod64Reg => alu!(64, Mod, reg),
            Code::SMod64Imm => alu!(64, SMod, imm),
            Code::SMod64Reg => alu!(64, SMod, reg),
            Code::Xor64Imm => alu!(64, Xor, imm),
            Code::Xor64Reg => alu!(64, Xor, reg),
            Code::Mov64Imm => alu!(64, Mov, imm),
            Code::Mov64Reg => alu!(64, Mov, reg),
            Code::Arsh64Imm => alu!(64, Arsh, imm),
            Code::Arsh64Reg => alu!(64, Arsh, reg),
            Code::MovSx8To64 => alu!(64, MovSx8, reg),
            Code::MovSx16To64 => alu!(64, MovSx16, reg),
            Code::MovSx32To64 => alu!(64, MovSx32, reg),
            Code::Neg64 => regs[d] = (regs[d] as i64).wrapping_neg() as u64,

            Code::Add32Imm => alu!(32, Add, imm),
            Code::Add32Reg => alu!(32, Add, reg),
            Code::Sub32Imm => alu!(32, Sub, imm),
            Code::Sub32Reg => alu!(32, Sub, reg),
            Code::Mul32Imm => alu!(32, Mul, imm),
            Code::Mul32Reg => alu!(32, Mul, reg),
            Code::Div32Imm => alu!(32, Div, imm),
            Code::Div32Reg => alu!(32, Div, reg),
            Code::SDiv32Imm => alu!(32, SDiv, imm),
            Code::SDiv32Reg => alu!(32, SDiv, reg),
            Code::Or32Imm => alu!(32, Or, imm),
            Code::Or32Reg => alu!(32, Or, reg),
            Code::And32Imm => alu!(32, And, imm),
            Code::And32Reg => alu!(32, And, reg),
            Code::Lsh32Imm => alu!(32, Lsh, imm),
            Code::Lsh32Reg => alu!(32, Lsh, reg),
            Code::Rsh32Imm => alu!(32, Rsh, imm),
            Code::Rsh32Reg => alu!(32, Rsh, reg),
            Code::Mod32Imm => alu!(32, Mod, imm),
            Code::Mod32Reg => alu!(32, Mod, reg),
            Code::SMod32Imm => alu!(32, SMod, imm),
            Code::SMod32Reg => alu!(32, SMod, reg),
            Code::Xor32Imm => alu!(32, Xor, imm),
            Code::Xor32Reg => alu!(32, Xor, reg),
            Code::Mov32Imm => alu!(32, Mov, imm),
            Code::Mov32Reg => alu!(32, Mov, reg),
            Code::Arsh32Imm => alu!(32, Arsh, imm),
            Code::Arsh32Reg => alu!(32, Arsh, reg),
            Code::MovSx8To32 => alu!(32, MovSx8, reg),
            Code::MovSx16To32 => alu!(32, MovSx16, reg),
            Code::Neg32 => regs[d] = u64::from((regs[d] as i32).wrapping_neg() as u32),

            Code::Le16 => regs[d] = endian(EndianOp::ToLe, 16, regs[d]),
            Code::Le32 => regs[d] = endian(EndianOp::ToLe, 32, regs[d]),
            Code::Le64 => regs[d] = endian(EndianOp::ToLe, 64, regs[d]),
            Code::Be16 => regs[d] = endian(EndianOp::ToBe, 16, regs[d]),
            Code::Be32 => regs[d] = endian(EndianOp::ToBe, 32, regs[d]),
            Code::Be64 => regs[d] = endian(EndianOp::ToBe, 64, regs[d]),
            Code::Swap16 => regs[d] = endian(EndianOp::Swap, 16, regs[d]),
            Code::Swap32 => regs[d] = endian(EndianOp::Swap, 32, regs[d]),
            Code::Swap64 => regs[d] = endian(EndianOp::Swap, 64, regs[d]),

            Code::LdDw => {
                regs[d] = op.imm;
                pc += 1; // over the second slot
            }
            Code::LdxB => load!(u8),
            Code::LdxH => load!(u16),
            Code::LdxW => load!(u32),
            Code::LdxDw => load!(u64),
            Code::LdxSB => load!(u8, signed i8),
            Code::LdxSH => load!(u16, signed i16),
            Code::LdxSW => load!(u32, signed i32),
            Code::StB => store!(u8, op.imm),
            Code::StH => store!(u16, op.imm),
            Code::StW => store!(u32, op.imm),
            Code::StDw => store!(u64, op.imm),
            Code::StxB => store!(u8, regs[s]),
            Code::StxH => store!(u16, regs[s]),
            Code::StxW => store!(u32, regs[s]),
            Code::StxDw => store!(u64, regs[s]),

            Code::Atomic32Add => atomic!(32, AtomicOp::Add { fetch: false }),
            Code::Atomic32Or => atomic!(32, AtomicOp::Or { fetch: false }),
            Code::Atomic32And => atomic!(32, AtomicOp::And { fetch: false }),
            Code::Atomic32Xor => atomic!(32, AtomicOp::Xor { fetch: false }),
            Code::Atomic32FetchAdd => atomic!(32, AtomicOp::Add { fetch: true }),
            Code::Atomic32FetchOr => atomic!(32, AtomicOp::Or { fetch: true }),
            Code::Atomic32FetchAnd => atomic!(32, AtomicOp::And { fetch: true }),
            Code::Atomic32FetchXor => atomic!(32, AtomicOp::Xor { fetch: true }),
            Code::Atomic32Xchg => atomic!(32, AtomicOp::Xchg),
            Code::Atomic32CmpXchg => atomic!(32, AtomicOp::CmpXchg),
            Code::Atomic64Add => atomic!(64, AtomicOp::Add { fetch: false }),
            Code::Atomic64Or => atomic!(64, AtomicOp::Or { fetch: false }),
            Code::Atomic64And => atomic!(64, AtomicOp::And { fetch: false }),
            Code::Atomic64Xor => atomic!(64, AtomicOp::Xor { fetch: false }),
            Code::Atomic64FetchAdd => atomic!(64, AtomicOp::Add { fetch: true }),
            Code::Atomic64FetchOr => atomic!(64, AtomicOp::Or { fetch: true }),
            Code::Atomic64FetchAnd => atomic!(64, AtomicOp::And { fetch: true }),
            Code::Atomic64FetchXor => atomic!(64, AtomicOp::Xor { fetch: true }),
            Code::Atomic64Xchg => atomic!(64, AtomicOp::Xchg),
            Code::Atomic64CmpXchg => atomic!(64, AtomicOp::CmpXchg),
            Code::LoadAcqB => regs[d] = try_mem!(m.regions.load_acquire(addr!(s), 1)),
            Code::LoadAcqH => regs[d] = try_mem!(m.regions.load_acquire(addr!(s), 2)),
            Code::LoadAcqW => regs[d] = try_mem!(m.regions.load_acquire(addr!(s), 4)),
            Code::LoadAcqDw => regs[d] = try_mem!(m.regions.load_acquire(addr!(s), 8)),
            Code::StoreRelB => try_mem!(m.regions.store_release(addr!(d), 1, regs[s])),
            Code::StoreRelH => try_mem!(m.regions.store_release(addr!(d), 2, regs[s])),
            Code::StoreRelW => try_mem!(m.regions.store_release(addr!(d), 4, regs[s])),
            Code::StoreRelDw => try_mem!(m.regions.store_release(addr!(d), 8, regs[s])),

            Code::LdAbsB => ld_packet!(u8, op.imm as i32),
            Code::LdAbsH => ld_packet!(u16, op.imm as i32),
            Code::LdAbsW => ld_packet!(u32, op.imm as i32),
            Code::LdIndB => ld_packet!(u8, (regs[s] as i32).wrapping_add(op.imm as i32)),
            Code::LdIndH => ld_packet!(u16, (regs[s] as i32).wrapping_add(op.imm as i32)),
            Code::LdIndW => ld_packet!(u32, (regs[s] as i32).wrapping_add(op.imm as i32)),

            Code::Ja => jump_to!(op.target()),
            Code::Jeq64Imm => jmp!(64, Eq, imm),
            Code::Jeq64Reg => jmp!(64, Eq, reg),
            Code::Jeq32Imm => jmp!(32, Eq, imm),
            Code::Jeq32Reg => jmp!(32, Eq, reg),
            Code::Jgt64Imm => jmp!(64, Gt, imm),
            Code::Jgt64Reg => jmp!(64, Gt, reg),
            Code::Jgt32Imm => jmp!(32, Gt, imm),
            Code::Jgt32Reg => jmp!(32, Gt, reg),
            Code::Jge64Imm => jmp!(64, Ge, imm),
            Code::Jge64Reg => jmp!(64, Ge, reg),
            Code::Jge32Imm => jmp!(32, Ge, imm),
            Code::Jge32Reg => jmp!(32, Ge, reg),
            Code::Jset64Imm => jmp!(64, Set, imm),
            Code::Jset64Reg => jmp!(64, Set, reg),
            Code::Jset32Imm => jmp!(32, Set, imm),
            Code::Jset32Reg => jmp!(32, Set, reg),
            Code::Jne64Imm => jmp!(64, Ne, imm),
            Code::Jne64Reg => jmp!(64, Ne, reg),
            Code::Jne32Imm => jmp!(32, Ne, imm),
            Code::Jne32Reg => jmp!(32, Ne, reg),
            Code::Jsgt64Imm => jmp!(64, Sgt, imm),
            Code::Jsgt64Reg => jmp!(64, Sgt, reg),
            Code::Jsgt32Imm => jmp!(32, Sgt, imm),
            Code::Jsgt32Reg => jmp!(32, Sgt, reg),
            Code::Jsge64Imm => jmp!(64, Sge, imm),
            Code::Jsge64Reg => jmp!(64, Sge, reg),
            Code::Jsge32Imm => jmp!(32, Sge, imm),
            Code::Jsge32Reg => jmp!(32, Sge, reg),
            Code::Jlt64Imm => jmp!(64, Lt, imm),
            Code::Jlt64Reg => jmp!(64, Lt, reg),
            Code::Jlt32Imm => jmp!(32, Lt, imm),
            Code::Jlt32Reg => jmp!(32, Lt, reg),
            Code::Jle64Imm => jmp!(64, Le, imm),
            Code::Jle64Reg => jmp!(64, Le, reg),
            Code::Jle32Imm => jmp!(32, Le, imm),
            Code::Jle32Reg => jmp!(32, Le, reg),
            Code::Jslt64Imm => jmp!(64, Slt, imm),
            Code::Jslt64Reg => jmp!(64, Slt, reg),
            Code::Jslt32Imm => jmp!(32, Slt, imm),
            Code::Jslt32Reg => jmp!(32, Slt, reg),
            Code::Jsle64Imm => jmp!(64, Sle, imm),
            Code::Jsle64Reg => jmp!(64, Sle, reg),
            Code::Jsle32Imm => jmp!(32, Sle, imm),
            Code::Jsle32Reg => jmp!(32, Sle, reg),

            Code::CallHelper => call_helper!(op.imm as i64),
            Code::CallKfunc => {
                let id = op.imm as i64;
                let Some(helper) = helpers.kfunc(id) else {
                    fault!(cur, FaultKind::UnknownHelper { id });
                };
                call!(helper, id)
            }
            Code::CallLocal => call_local!(op.target()),
            Code::Callx => {
                let value = regs[d];
                match prog.pc_of_code_address(value) {
                    Some(target) => call_local!(target),
                    None => call_helper!(value as i64),
                }
            }
            Code::Exit => {
                if depth == 0 {
                    trace_step!();
                    done!(Ok(regs[0]));
                }
                depth -= 1;
                let Some(&f) = m.frames.get(depth) else {
                    fault!(cur, FaultKind::PcOutOfRange);
                };
                [regs[6], regs[7], regs[8], regs[9]] = f.saved;
                regs[10] = try_mem!(m.regions.set_stack_depth(depth));
                if let Some(mut l) = f.looping {
                    // A `bpf_loop` or `bpf_for_each_map_elem` callback returned: stop on
                    // non-zero or after the last element (returning the calls made), or
                    // call it again.
                    let again = if regs[0] != 0 || l.done >= l.total {
                        None
                    } else {
                        match l.walk {
                            None => Some((l.next, [l.done, l.ctx, 0, 0])),
                            Some(w) => m
                                .run
                                .for_each_args(w, l.next, m.regions)
                                .map(|(i, [map, k, v])| (i, [map, k, v, l.ctx])),
                        }
                    };
                    match again {
                        None => {
                            if let Some(fr) = m.frames.get_mut(depth) {
                                fr.looping = None;
                            }
                            regs[0] = l.done;
                        }
                        Some((index, args)) => {
                            [regs[1], regs[2], regs[3], regs[4]] = args;
                            l.done += 1;
                            l.next = index + 1;
                            if let Some(fr) = m.frames.get_mut(depth) {
                                fr.looping = Some(l);
                            }
                            pc = f.return_pc;
                            trace_step!();
                            call_local!(l.pc);
                            continue;
                        }
                    }
                }
                pc = f.return_pc;
                if f.return_prog != prog_index {
                    trace_step!();
                    save!();
                    return Segment::Switch(f.return_prog);
                }
            }
            Code::MayGoto => {
                if let Some(f) = m.frames.get_mut(depth) {
                    if f.may_goto == 0 {
                        jump_to!(op.target());
                    } else {
                        f.may_goto -= 1;
                    }
                }
            }
            Code::Invalid => fault!(cur, FaultKind::PcOutOfRange),
        }
        trace_step!();
    }
}

/// Writes an atomic's fetched old value back: `r0` for cmpxchg, `src` for the fetching
/// operations and xchg, nothing otherwise.
#[inline(always)]
fn write_back(regs: &mut [u64; 16], op: AtomicOp, src: usize, old: u64) {
    match op {
        AtomicOp::CmpXchg => regs[0] = old,
        _ if op.fetches() => regs[src & 0xf] = old,
        _ => {}
    }
}
