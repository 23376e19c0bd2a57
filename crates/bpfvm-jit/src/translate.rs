//! One BPF function → one Cranelift function.
//!
//! The function holds every instruction reachable from its entry by jumps and
//! fall-through (calls continue at the next instruction). Each *leader* (the entry, a jump
//! target, the instruction after a branch) starts a Cranelift block; `r0`–`r9` are
//! Cranelift variables, `r10` is the frame-pointer parameter (no validated program writes
//! it). At each block's entry the block's instruction count is subtracted from the
//! fuel; back-edges and calls test the fuel's sign, and when it has run out the runtime
//! checks the cancel flag and refills the fuel from the budget (or faults). A counted
//! loop (`counted`) is strip-mined: trips the fuel pays for run in a copy of the loop
//! without the test (`counted_loop`). A jump into a small join block (`tails`) goes into
//! a copy of that block's code of its own: a `goto`'s laid out right after it (`goto`),
//! so the jump disappears, a conditional jump's at the function's end (`tail_copy`). A
//! compare tree (`switches`) becomes a `br_table` at its root (`dispatch`); its nodes get
//! no code, and each leaf charges the nodes on its path to the fuel with its own
//! instructions.
//!
//! Memory: `[r10 + off]` with `-512 <= off <= -size` is inside the current frame, which is
//! always reachable, so it is accessed directly. Every other access is tested inline,
//! one subtract and one compare each, against (1) the fast-path window (a copy of the
//! plain region the run hit last), (2) the reachable stack (frames `0..=depth`; left out
//! for a program that never names `r10`, which has no pointer into it), (3) the shared
//! window (the last region hit when it is a map value: aligned accesses only, with atomic
//! instructions). Outside all three it
//! calls the runtime, which checks the access against every region and faults or succeeds
//! exactly as the interpreter does. That slow-path call goes through a trampoline with
//! Cranelift's `PreserveAll` convention (it saves what the native call clobbers; built once
//! per process) that takes only the run pointer, the arguments being stored in the run
//! record, so a loop's values stay in registers across the cold call. Only the first
//! test and the plain access are laid out in the hot code; the other tests are cold. The
//! window's bounds are variables, reloaded from the run record after each call. Where a
//! run of accesses goes through one register (a parser's header fields), `coalesce`
//! finds it: the whole span is tested once, before the first access, and a second copy
//! of the code from there (the *fast version*) makes them all without a test. The
//! accesses of such groups read the window's bounds from the run record at their tests
//! instead (they run only when the span test failed); the span test compares with a
//! limit per span, a variable too, so it is one subtract and one compare as well. The
//! slow paths read the function's depth (and from it the frame pointer) from the run
//! record, where a function with checked accesses writes it at its entry and after each
//! call, which leaves their registers free in loops that do not use them.
//!
//! Calls: a function only direct calls reach takes the internal convention (the run, the
//! caller's `fp` and depth, the fuel and the argument registers it reads; `r0` and the
//! fuel back); the others `JitFn`'s (`code.rs`). Registers cross calls through the run record
//! only where `liveness` finds them readable. A small callee with no memory access, loop,
//! `may_goto` or helper call is translated inline at the call instead (`inline`): the
//! same register variables, `r6`–`r9` restored at its exit, the call's depth check and
//! fuel test kept at the call's pc.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use bpfvm_abi::F_RDONLY_PROG;
use bpfvm_isa::{
    AluOp, AtomicOp, CallKind, EndianOp, Insn, JmpOp, LdDwKind, Reg, Size, Source, Width,
};
use bpfvm_runtime::maps::HashWalk;
use bpfvm_runtime::{
    ArrayMap, HashTabMap, LoadedProgram, MAX_CALL_FRAMES, MAY_GOTO_BUDGET, STACK_FRAME_SIZE,
};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    AbiParam, AtomicRmwOp, Block, BlockArg, FuncRef, Function, InstBuilder, JumpTableData,
    MemFlagsData, SigRef, Signature, Type, Value, types,
};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_jit::JITModule;
use cranelift_module::{FuncId, Module};

use crate::coalesce::{Group, Groups};
use crate::counted;
use crate::liveness::{ARGS, CALLEE_VISIBLE, CallRegs, RegSet};
use crate::map_calls::{self, DirectCall, MapHelper};
use crate::runtime::{self, JitRun, RAISE_DEPTH, RAISE_PC, STATUS_TAIL_RETURN, VALUE_LOG};
use crate::switches::{self, Tree};
use crate::tails;

const I8: Type = types::I8;
const I16: Type = types::I16;
const I32: Type = types::I32;
const I64: Type = types::I64;

/// The registers `JitRun::in_regs` holds, in its order.
const IN_REGS: [usize; 5] = [0, 6, 7, 8, 9];

/// The runtime functions generated code calls, with their native signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Shim {
    Load,
    Store,
    Atomic,
    LoadAcquire,
    StoreRelease,
    LdPacket,
    Enter,
    Raise,
    Poll,
    Helper,
    Kfunc,
    Callx,
    /// `bpf_map_lookup_elem`, `bpf_map_update_elem` and `bpf_map_delete_elem` with a
    /// known map and arguments in the frame (`map_calls`).
    MapLookup,
    MapUpdate,
    MapDelete,
    /// `bpf_map_lookup_elem` on a known hash-family map or array: the map and the key's
    /// address, the map's lookup inline in the shim (`runtime::jit_lookup_in`).
    HashLookup,
    ArrayLookup,
    /// Takes in the values the code's own walks of hash maps logged, when the log is
    /// full (`runtime::jit_take_values`).
    TakeValues,
}

impl Shim {
    /// The shims called on cold paths (a local call's first visit to a frame, slow-path
    /// memory accesses, the fuel poll): the code calls them through a trampoline that
    /// preserves every register, so that the cold call does not force the function's
    /// values out of registers.
    pub(crate) const TRAMPOLINED: [Shim; 8] = [
        Shim::Enter,
        Shim::Load,
        Shim::Store,
        Shim::Atomic,
        Shim::LoadAcquire,
        Shim::StoreRelease,
        Shim::LdPacket,
        Shim::Poll,
    ];

    const ALL: [Shim; 18] = [
        Shim::Load,
        Shim::Store,
        Shim::Atomic,
        Shim::LoadAcquire,
        Shim::StoreRelease,
        Shim::LdPacket,
        Shim::Enter,
        Shim::Raise,
        Shim::Poll,
        Shim::Helper,
        Shim::Kfunc,
        Shim::Callx,
        Shim::MapLookup,
        Shim::MapUpdate,
        Shim::MapDelete,
        Shim::HashLookup,
        Shim::ArrayLookup,
        Shim::TakeValues,
    ];

    /// Parameters (all 64-bit, the run pointer first) and whether it returns a value.
    fn shape(self) -> (usize, bool) {
        match self {
            Shim::LdPacket => (4, true),
            Shim::Load | Shim::LoadAcquire => (5, true),
            Shim::Store | Shim::StoreRelease => (6, false),
            Shim::Atomic => (7, true),
            Shim::Enter => (3, true),
            Shim::Raise => (3, false),
            Shim::Poll => (2, false),
            Shim::HashLookup | Shim::ArrayLookup => (3, true),
            Shim::TakeValues => (1, true),
            Shim::Helper
            | Shim::Kfunc
            | Shim::Callx
            | Shim::MapLookup
            | Shim::MapUpdate
            | Shim::MapDelete => (9, true),
        }
    }

    /// The trampolines' signature: the run pointer alone, no result (`PreserveAll`
    /// returns none; arguments come from `JitRun::slow_args`, the value goes back through
    /// `JitRun::result`).
    pub(crate) fn trampoline_signature() -> Signature {
        let mut sig = Signature::new(CallConv::PreserveAll);
        sig.params.push(AbiParam::new(I64));
        sig
    }

    fn address(self) -> usize {
        match self {
            Shim::Load => runtime::jit_load as *const () as usize,
            Shim::Store => runtime::jit_store as *const () as usize,
            Shim::Atomic => runtime::jit_atomic as *const () as usize,
            Shim::LoadAcquire => runtime::jit_load_acquire as *const () as usize,
            Shim::StoreRelease => runtime::jit_store_release as *const () as usize,
            Shim::LdPacket => runtime::jit_ld_packet as *const () as usize,
            Shim::Enter => runtime::jit_enter as *const () as usize,
            Shim::Raise => runtime::jit_raise as *const () as usize,
            Shim::Poll => runtime::jit_poll as *const () as usize,
            Shim::Helper => runtime::jit_helper as *const () as usize,
            Shim::Kfunc => runtime::jit_kfunc as *const () as usize,
            Shim::Callx => runtime::jit_callx as *const () as usize,
            Shim::MapLookup => runtime::jit_map_lookup as *const () as usize,
            Shim::MapUpdate => runtime::jit_map_update as *const () as usize,
            Shim::MapDelete => runtime::jit_map_delete as *const () as usize,
            Shim::HashLookup => runtime::jit_lookup_in::<HashTabMap> as *const () as usize,
            Shim::ArrayLookup => runtime::jit_lookup_in::<ArrayMap> as *const () as usize,
            Shim::TakeValues => runtime::jit_take_values as *const () as usize,
        }
    }
}

/// The shims' signatures for one compilation, in `Shim::ALL` order (the declaration
/// order, so a shim's discriminant is its index).
pub(crate) struct Shims {
    sigs: [Signature; Shim::ALL.len()],
}

/// Builds the body of the trampoline of `shim`: loads the shim's arguments from
/// `JitRun::slow_args`, calls it with the native convention, puts its result (if any) in
/// `JitRun::result`, returns. Being `PreserveAll`, it saves whatever the call clobbers.
pub(crate) fn build_trampoline(
    shim: Shim,
    shims: &Shims,
    func: &mut Function,
    fbc: &mut FunctionBuilderContext,
    frontend: TargetFrontendConfig,
) -> Result<(), String> {
    let mut b = FunctionBuilder::new(func, fbc);
    let sig = b.import_signature(shims.signature(shim).clone());
    let block = b.create_block();
    b.append_block_params_for_function_params(block);
    b.switch_to_block(block);
    b.seal_block(block);
    let run = *b
        .block_params(block)
        .first()
        .ok_or("trampoline without the run pointer")?;
    let mut args = vec![run];
    for i in 0..shim.shape().0 - 1 {
        let offset = JitRun::OFFSETS.slow_args + 8 * i as i32;
        args.push(b.ins().load(I64, MemFlagsData::trusted(), run, offset));
    }
    let addr = b.ins().iconst(I64, shim.address() as i64);
    let call = b.ins().call_indirect(sig, addr, &args);
    if let Some(&v) = b.inst_results(call).first() {
        b.ins()
            .store(MemFlagsData::trusted(), v, run, JitRun::OFFSETS.result);
    }
    b.ins().return_(&[]);
    b.finalize(frontend);
    Ok(())
}

impl Shims {
    pub(crate) fn new(call_conv: CallConv) -> Shims {
        Shims {
            sigs: Shim::ALL.map(|s| {
                let (params, ret) = s.shape();
                let mut sig = Signature::new(call_conv);
                sig.params
                    .extend(std::iter::repeat_n(AbiParam::new(I64), params));
                if ret {
                    sig.returns.push(AbiParam::new(I64));
                }
                sig
            }),
        }
    }

    /// The native signature of `shim`.
    pub(crate) fn signature(&self, shim: Shim) -> &Signature {
        &self.sigs[shim as usize]
    }
}

/// What a function may call: the BPF functions of its module by entry pc, and the
/// process-wide slow-path trampolines by shim (their addresses).
pub(crate) struct Callees<'m> {
    pub functions: &'m [(usize, FuncId)],
    pub trampolines: &'m [(Shim, usize)],
}

/// Translates the function starting at one pc.
pub(crate) struct FunctionTranslator<'p> {
    prog: &'p LoadedProgram,
    shims: &'p Shims,
    calls: &'p CallRegs,
    entry: usize,
    /// The constant-blinding key (0: no blinding).
    blind_key: u64,
}

/// How an instruction leaves its block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Falls through to the next instruction.
    Next,
    /// The block is closed (jump, branch, exit).
    Closed,
}

impl<'p> FunctionTranslator<'p> {
    pub(crate) fn new(
        prog: &'p LoadedProgram,
        shims: &'p Shims,
        calls: &'p CallRegs,
        entry: usize,
        blind_key: u64,
    ) -> Self {
        FunctionTranslator {
            prog,
            shims,
            calls,
            entry,
            blind_key,
        }
    }

    /// Fills `func` (whose signature is set); with `dump`, returns the IR's text.
    pub(crate) fn translate(
        &self,
        func: &mut Function,
        fbc: &mut FunctionBuilderContext,
        module: &mut JITModule,
        Callees {
            functions,
            trampolines,
        }: Callees<'_>,
        frontend: TargetFrontendConfig,
        dump: bool,
    ) -> Result<Option<String>, String> {
        let (reachable, leaders) = self.explore(self.entry);
        let groups = Groups::new(self.prog.program(), &reachable, &leaders);
        let direct_calls = map_calls::direct_calls(self.prog, &reachable, &leaders);
        let ways = tails::ways_in(self.prog.program(), &reachable, &leaders);
        let tails = tails::find(self.prog.program(), self.entry, &leaders, &ways);
        // Compare trees become jump tables, except where a group's fast version would
        // copy them, and under constant blinding (a table's length comes from the
        // program's immediates).
        let trees: BTreeMap<usize, Tree> = if self.blind_key == 0 {
            let mut trees = switches::find(self.prog.program(), &reachable, &leaders, &ways);
            trees.retain(|&root, tree| {
                // The root's block (from its leader), the nodes and the leaves.
                let block = leaders.range(..=root).next_back().copied();
                let mut pcs = block
                    .iter()
                    .chain(tree.nodes.iter())
                    .chain(tree.path.keys());
                !groups.covers(root, &leaders) && !pcs.any(|&pc| groups.covers(pc, &leaders))
            });
            trees
        } else {
            BTreeMap::new()
        };
        let shape = Rc::new(Shape {
            reachable,
            leaders,
            tails,
        });
        let mut b = FunctionBuilder::new(func, fbc);
        let mut local_funcs = BTreeMap::new();
        for &(pc, id) in functions {
            local_funcs.insert(pc, module.declare_func_in_func(id, b.func));
        }
        let tramps: BTreeMap<Shim, usize> = trampolines.iter().copied().collect();

        let start = b.create_block();
        b.append_block_params_for_function_params(start);
        b.switch_to_block(start);
        b.seal_block(start);
        let params = b.block_params(start).to_vec();
        let internal = self.calls.internal(self.entry);
        // `JitFn`: (run, r1–r5, fp, depth); internal: (run, the caller's fp and depth, fuel,
        // the argument registers the function reads).
        let (run, fp, depth, fuel, args) = match (internal, &params[..]) {
            (false, &[run, r1, r2, r3, r4, r5, fp, depth]) => {
                (run, fp, depth, None, [r1, r2, r3, r4, r5].map(Some))
            }
            (true, &[run, caller_fp, caller_depth, fuel, ref passed @ ..]) => {
                // This frame is just below the caller's.
                let fp = b.ins().iadd_imm_s(caller_fp, -(STACK_FRAME_SIZE as i64));
                let depth = b.ins().iadd_imm_s(caller_depth, 1);
                let mut passed = passed.iter().copied();
                let reads = self.calls.arguments(self.entry);
                let args = std::array::from_fn(|i| {
                    if reads & (1 << (i + 1)) != 0 {
                        passed.next()
                    } else {
                        None
                    }
                });
                (run, fp, depth, Some(fuel), args)
            }
            _ => return Err("unexpected function signature".into()),
        };
        let regs: [Variable; 10] = std::array::from_fn(|_| b.declare_var(I64));
        let remaining = b.declare_var(I64);
        let may_goto = b.declare_var(I64);
        // The window's base and the limits this function's accesses test one by one,
        // kept in variables (registers, mostly). A group's accesses (`coalesce`) in the
        // ordinary code read theirs from the run record instead (they run when the span
        // test failed, rarely); the span tests use the base and a limit per span.
        let used = self.window_uses(&shape.reachable, &groups);
        let spans: BTreeMap<(u64, bool), Variable> = groups
            .spans()
            .into_iter()
            .map(|span| (span, b.declare_var(I64)))
            .collect();
        // Whether the function makes checked accesses (then it needs the window's base,
        // and its slow paths the depth, below).
        let checks = used.iter().any(|&u| u) || !spans.is_empty();
        let fast: [Option<Variable>; 9] = std::array::from_fn(|i| {
            let needed = if i == 0 { checks } else { used[i - 1] };
            needed.then(|| b.declare_var(I64))
        });
        let trusted = MemFlagsData::trusted();
        let off = JitRun::OFFSETS;
        for (i, v) in args.into_iter().enumerate() {
            // An argument the function does not read before writing it: any value.
            let v = v.unwrap_or_else(|| b.ins().iconst(I64, 0));
            b.def_var(regs[i + 1], v);
        }
        // The caller's registers this function may read (`liveness`); the others are
        // written before any read.
        let inputs = self.calls.inputs(self.entry);
        for (slot, reg) in IN_REGS.into_iter().enumerate() {
            let v = if inputs & (1 << reg) != 0 {
                b.ins()
                    .load(I64, trusted, run, off.in_regs + 8 * slot as i32)
            } else {
                b.ins().iconst(I64, 0)
            };
            b.def_var(regs[reg], v);
        }
        let rem = match fuel {
            Some(fuel) => fuel,
            None => b.ins().load(I64, trusted, run, off.remaining),
        };
        b.def_var(remaining, rem);
        let mg = b.ins().iconst(I64, MAY_GOTO_BUDGET as i64);
        b.def_var(may_goto, mg);
        // Constant blinding: the key is loaded from the run record, so that Cranelift
        // cannot fold `(imm ^ key) ^ key` back into `imm`.
        let blind = (self.blind_key != 0).then(|| {
            let key = b.ins().load(I64, trusted, run, off.blind_key);
            (key, self.blind_key)
        });

        let blocks: BTreeMap<usize, Block> = shape
            .leaders
            .iter()
            .map(|&pc| (pc, b.create_block()))
            .collect();
        let unwind = b.create_block();

        // The slow paths of checked accesses read the function's depth (and from it the
        // frame pointer) from the run record, so that neither holds a register in code
        // that does not use it (a parser's loop, which reaches the stack only through
        // `r10`, if at all): a function with such accesses writes it here and after each
        // call.
        let tracks_depth = checks;
        if tracks_depth {
            b.ins().store(trusted, depth, run, off.depth_now);
        }
        let mut cx = Cx {
            b,
            run,
            fp,
            tracks_depth,
            depth,
            regs,
            remaining,
            may_goto,
            fast,
            spans,
            blocks,
            unwind,
            out_of_range: BTreeMap::new(),
            shims: self.shims,
            calls: self.calls,
            blind,
            internal,
            outputs: self.calls.outputs(self.entry),
            sig_refs: BTreeMap::new(),
            local_funcs,
            trampolines: tramps,
            trampoline_sig: None,
            shape: Rc::clone(&shape),
            inlined: Vec::new(),
            groups: &groups,
            direct_calls: &direct_calls,
            fast_version: None,
            fast_blocks: BTreeMap::new(),
            in_tail: false,
            tail_copies: Vec::new(),
            trees: &trees,
        };
        cx.reload_fast();
        let first = cx.block_for(self.entry);
        cx.b.ins().jump(first, &[]);

        // Every reachable leader, in pc order, but a tree's nodes, which its table
        // replaces.
        let nodes: BTreeSet<usize> = trees.values().flat_map(|t| t.nodes.clone()).collect();
        for &leader in shape.leaders.difference(&nodes) {
            let block = cx.block_for(leader);
            cx.b.switch_to_block(block);
            self.fill(&mut cx, leader, true);
        }

        // The tails' copies that conditional jumps go to.
        for (copy, pc) in std::mem::take(&mut cx.tail_copies) {
            cx.b.seal_block(copy);
            cx.b.switch_to_block(copy);
            self.fill_tail(&mut cx, pc);
        }

        // Fall-throughs and jumps to pcs that are not instructions: fault there.
        let pending: Vec<(usize, Block)> = cx.out_of_range.iter().map(|(&p, &b)| (p, b)).collect();
        for (pc, block) in pending {
            cx.b.switch_to_block(block);
            cx.raise(RAISE_PC, pc);
        }
        cx.b.switch_to_block(cx.unwind);
        let zero = cx.b.ins().iconst(I64, 0);
        if internal {
            // A negative fuel sends the caller to its status check.
            let empty = cx.b.ins().iconst(I64, -1);
            cx.b.ins().return_(&[zero, empty]);
        } else {
            cx.b.ins().return_(&[zero]);
        }

        // Internal blocks were sealed as soon as their predecessors were known (cheaper SSA
        // construction); leaders, fault blocks and the unwind block are sealed now.
        cx.b.seal_all_blocks();
        cx.b.finalize(frontend);
        Ok(dump.then(|| func.display().to_string()))
    }

    /// The pcs reachable from `entry` without following calls, and the leaders among
    /// them.
    fn explore(&self, entry: usize) -> (BTreeSet<usize>, BTreeSet<usize>) {
        let (reachable, leaders, _) = self.walk(entry, usize::MAX);
        (reachable, leaders)
    }

    /// [`Self::explore`], stopping once more than `limit` pcs are found; the flag says
    /// whether the walk finished (otherwise the sets are partial).
    fn walk(&self, entry: usize, limit: usize) -> (BTreeSet<usize>, BTreeSet<usize>, bool) {
        let program = self.prog.program();
        let mut reachable = BTreeSet::new();
        let mut leaders = BTreeSet::from([entry]);
        let mut work = vec![entry];
        while let Some(pc) = work.pop() {
            if !reachable.insert(pc) {
                continue;
            }
            if reachable.len() > limit {
                return (reachable, leaders, false);
            }
            let Some(insn) = program.get(pc) else {
                continue; // past the end: a fault block
            };
            let next = pc + insn.slots();
            let mut succ = |t: usize, leader: bool, work: &mut Vec<usize>| {
                if leader {
                    leaders.insert(t);
                }
                work.push(t);
            };
            match insn {
                Insn::Exit => {}
                Insn::Ja { off, .. } => succ(branch(pc, i64::from(off)), true, &mut work),
                Insn::Jmp { off, .. } | Insn::MayGoto { off } => {
                    succ(branch(pc, i64::from(off)), true, &mut work);
                    succ(next, true, &mut work);
                }
                _ => succ(next, false, &mut work),
            }
        }
        // Out-of-range successors are not instructions: they get fault blocks, not code.
        leaders.retain(|&pc| program.get(pc).is_some());
        reachable.retain(|&pc| program.get(pc).is_some());
        (reachable, leaders, true)
    }

    /// Fills the current block with the instructions from `pc` to the end of its BPF
    /// block (its terminator, or the next leader): the whole block (`whole`, first
    /// taking its instruction count from the fuel), or its rest from `pc` on.
    /// A counted loop's head (`counted`) gets the strip-mined loop instead.
    fn fill(&self, cx: &mut Cx<'_>, pc: usize, whole: bool) {
        if whole && cx.inlined.is_empty() {
            let shape = cx.shape();
            if let Some(lp) = counted::find(self.prog.program(), pc, &shape.leaders) {
                self.counted_loop(cx, pc, &lp);
                return;
            }
        }
        self.fill_code(cx, pc, whole);
    }

    /// [`Self::fill`] without the counted-loop case.
    fn fill_code(&self, cx: &mut Cx<'_>, pc: usize, whole: bool) {
        let shape = cx.shape();
        let (leaders, reachable) = (&shape.leaders, &shape.reachable);
        if !whole && (leaders.contains(&pc) || !reachable.contains(&pc)) {
            // The rest is empty: on to the next block.
            let target = cx.block_for(pc);
            cx.b.ins().jump(target, &[]);
            return;
        }
        if whole {
            // A tree's leaf also charges the tree's nodes on its way (`switches`).
            let path = match (cx.inlined.is_empty(), cx.in_tail) {
                (true, false) => cx.trees.values().find_map(|t| t.path.get(&pc).copied()),
                _ => None,
            };
            let count = self.block_len(pc, leaders) + path.unwrap_or(0);
            let rem = cx.b.use_var(cx.remaining);
            let rem = cx.b.ins().iadd_imm_s(rem, -(count as i64));
            cx.b.def_var(cx.remaining, rem);
        }
        self.fill_rest(cx, pc);
    }

    /// The code from `pc` (included, even when it starts a block) to the end of its
    /// block, whose fuel was charged at the block's entry.
    fn fill_rest(&self, cx: &mut Cx<'_>, mut pc: usize) {
        let program = self.prog.program();
        let shape = cx.shape();
        let (leaders, reachable) = (&shape.leaders, &shape.reachable);
        loop {
            let Some(insn) = program.get(pc) else {
                // Only a fall-through past the end gets here.
                let target = cx.block_for(pc);
                cx.b.ins().jump(target, &[]);
                return;
            };
            let groups = cx.groups;
            if cx.fast_version.is_none()
                && cx.inlined.is_empty()
                && let Some(group) = groups.led_by(pc)
            {
                self.lead(cx, group);
            }
            let flow = self.insn(cx, pc, insn);
            let next = pc + insn.slots();
            if flow == Flow::Closed {
                return;
            }
            if leaders.contains(&next) || !reachable.contains(&next) {
                let target = cx.block_for(next);
                cx.b.ins().jump(target, &[]);
                return;
            }
            pc = next;
        }
    }

    /// A `goto` to `target`, closing the current block: when `target` is a tail
    /// (`tails`), into a copy of its code laid out right after the current block (the
    /// jump then disappears), else to its block.
    fn goto(&self, cx: &mut Cx<'_>, target: usize) {
        if !cx.copies(target) {
            let block = cx.block_for(target);
            cx.b.ins().jump(block, &[]);
            return;
        }
        let copy = cx.new_tail_block();
        cx.b.ins().jump(copy, &[]);
        cx.b.seal_block(copy);
        cx.b.switch_to_block(copy);
        self.fill_tail(cx, target);
    }

    /// Fills the current block (a copy's, which its one jump has reached) with the tail
    /// at `pc`. The tail reads no memory, and its jump leads to the ordinary blocks,
    /// which a group's fast version reaches the same way when it leaves the group.
    fn fill_tail(&self, cx: &mut Cx<'_>, pc: usize) {
        let fast = cx.fast_version.take();
        cx.in_tail = true;
        self.fill(cx, pc, true);
        cx.in_tail = false;
        cx.fast_version = fast;
    }

    /// The counted loop `lp` whose head is `head`, strip-mined (`counted`), from the
    /// head's block on:
    /// - the head works out `T`, the trips to run untested: all `t` trips left to the
    ///   loop's exit when the fuel pays for them, else as many as it pays for, `⌊fuel /
    ///   len⌋` (none: the tested loop);
    /// - the strip, a copy of the loop's body whose jump compares the counter with its
    ///   value after `T` trips instead of with the bound, and has no fuel test;
    /// - after it, the fuel pays for the `T` trips; if the loop is over, on after it,
    ///   else into the tested loop for one trip, whose fuel test, failing, lets the
    ///   runtime refill the fuel or fault exactly where the loop would have, and whose
    ///   jump goes back to the head;
    /// - the tested loop: the block as [`Self::fill_code`] makes it.
    fn counted_loop(&self, cx: &mut Cx<'_>, head: usize, lp: &counted::CountedLoop) {
        let program = self.prog.program();
        let len = lp.len as i64;
        let fuel = cx.b.use_var(cx.remaining);
        // A 32-bit jump counts the counter's low half: the arithmetic below is at its
        // width, and its count zero-extended.
        let ty = if lp.width == Width::W32 { I32 } else { I64 };
        let at_width = |cx: &mut Cx<'_>, v: Value| {
            if ty == I32 {
                cx.b.ins().ireduce(I32, v)
            } else {
                v
            }
        };
        let start = cx.reg(lp.counter);
        let start = at_width(cx, start);
        let bound = match lp.bound {
            Source::Reg(r) => {
                let b = cx.reg(r);
                at_width(cx, b)
            }
            Source::Imm(i) => cx.imm(ty, i64::from(i)),
        };
        // Trips to the exit (0: 2^64 or 2^32), and whether the fuel pays for all of them.
        let trips = if lp.step > 0 {
            cx.b.ins().isub(bound, start)
        } else {
            cx.b.ins().isub(start, bound)
        };
        let trips = if ty == I32 {
            cx.b.ins().uextend(I64, trips)
        } else {
            trips
        };
        let below = cx.b.ins().iadd_imm_s(trips, -1);
        let few =
            cx.b.ins()
                .icmp_imm_s(IntCC::UnsignedLessThan, below, 1 << 32);
        let cost = cx.b.ins().imul_imm_s(trips, len);
        let paid = cx.b.ins().icmp(IntCC::SignedLessThanOrEqual, cost, fuel);
        let whole = cx.b.ins().band(few, paid);
        let strip_head = cx.b.create_block();
        let strip = cx.b.create_block();
        let partial = cx.b.create_block();
        let some = cx.b.create_block();
        let tested = cx.b.create_block();
        let after = cx.b.create_block();
        cx.b.append_block_param(strip_head, I64);
        cx.b.ins()
            .brif(whole, strip_head, &[BlockArg::Value(trips)], partial, &[]);
        cx.b.seal_block(partial);

        // Not all of them: as many as the fuel pays for, if any.
        cx.b.switch_to_block(partial);
        let poor = cx.b.ins().icmp_imm_s(IntCC::SignedLessThan, fuel, len);
        cx.b.ins().brif(poor, tested, &[], some, &[]);
        cx.b.seal_block(some);
        cx.b.switch_to_block(some);
        let paid_for = cx.b.ins().udiv_imm_s(fuel, len);
        cx.b.ins().jump(strip_head, &[BlockArg::Value(paid_for)]);
        cx.b.seal_block(strip_head);

        // The strip: the body, then the counter against its value after `T` trips.
        cx.b.switch_to_block(strip_head);
        let count = cx.b.block_params(strip_head)[0];
        let steps = at_width(cx, count);
        let stop = if lp.step > 0 {
            cx.b.ins().iadd(start, steps)
        } else {
            cx.b.ins().isub(start, steps)
        };
        cx.b.ins().jump(strip, &[]);
        cx.b.switch_to_block(strip);
        let mut pc = head;
        while pc < lp.jump {
            let Some(insn) = program.get(pc) else { break };
            self.insn(cx, pc, insn);
            pc += insn.slots();
        }
        let counter = cx.reg(lp.counter);
        let counter = at_width(cx, counter);
        let again = cx.b.ins().icmp(IntCC::NotEqual, counter, stop);
        cx.b.ins().brif(again, strip, &[], after, &[]);
        cx.b.seal_block(strip);
        cx.b.seal_block(after);

        // The trips' fuel; then out of the loop, or one tested trip.
        cx.b.switch_to_block(after);
        let spent = cx.b.ins().imul_imm_s(count, len);
        let left = cx.b.ins().isub(fuel, spent);
        cx.b.def_var(cx.remaining, left);
        let done = cx.b.ins().icmp(IntCC::Equal, count, trips);
        let exit = cx.block_for(lp.jump + 1);
        cx.b.ins().brif(done, exit, &[], tested, &[]);
        cx.b.seal_block(tested);

        cx.b.switch_to_block(tested);
        self.fill_code(cx, head, true);
    }

    /// At the leader of a coalesced group (`coalesce`), before its access, in the
    /// ordinary code: tests the group's whole span once and, when it is inside the
    /// window, goes on in the group's fast version, filled here (so that it is laid out
    /// right after the test), from the leader on, where the leader and the members
    /// access memory directly. The current block is then the ordinary code's, where the
    /// leader comes next, with its own test (and slow path, which makes its region the
    /// window when it was not: the test passes from the next time on).
    fn lead(&self, cx: &mut Cx<'_>, group: &Group) {
        let base = cx.reg(group.base);
        let first = cx.b.ins().iadd_imm_s(base, group.lo);
        let (wbase, limit) = cx.span_window((group.hi - group.lo) as u64, group.store);
        // `first - wbase < limit` puts the span's last byte inside the window, and its
        // first (below the window, `rel` wraps far above any limit); the window is
        // contiguous. (Cranelift lays out a branch's second target after it: the fast
        // version.)
        let rel = cx.b.ins().isub(first, wbase);
        let out =
            cx.b.ins()
                .icmp(IntCC::UnsignedGreaterThanOrEqual, rel, limit);
        let fast = cx.b.create_block();
        let ordinary = cx.b.create_block();
        cx.b.ins().brif(out, ordinary, &[], fast, &[]);
        cx.b.seal_block(fast);
        cx.b.seal_block(ordinary);

        let outer = cx.fast_version.replace(group.leader);
        cx.b.switch_to_block(fast);
        self.fill_rest(cx, group.leader);
        for &leader in &group.blocks {
            let block = cx.block_for(leader);
            cx.b.switch_to_block(block);
            self.fill(cx, leader, true);
        }
        cx.fast_version = outer;
        cx.b.switch_to_block(ordinary);
    }

    /// The shape of the function at `target` if a call to it from the code being filled
    /// is made inline: small (with what it calls inline), no memory access and no
    /// `r10` (so its frame is never observed: a frame is only zeroed for whoever reads
    /// it), no loop, no `may_goto` (its counter is per call), and no calls but inline
    /// ones. Such a callee can only fault where its caller would: the call's depth
    /// check and the fuel's test at the call, both made inline too. Never for a program
    /// with callbacks, whose functions exchange every register through the run record.
    fn inlinable(&self, cx: &Cx<'_>, target: usize) -> Option<Rc<Shape>> {
        if self.calls.callbacks || cx.inlined.len() >= MAX_INLINE_DEPTH {
            return None;
        }
        let mut size = 0;
        self.inline_shape(target, &mut size, &mut Vec::new())
    }

    /// [`Self::inlinable`]'s test of the callee at `entry` and, recursively, of what it
    /// calls; `size` counts the instructions inlined so far, `open` the callees being
    /// tested (a recursive call is never inline).
    fn inline_shape(
        &self,
        entry: usize,
        size: &mut usize,
        open: &mut Vec<usize>,
    ) -> Option<Rc<Shape>> {
        if open.contains(&entry) || open.len() >= MAX_INLINE_DEPTH {
            return None;
        }
        let program = self.prog.program();
        // Bounded: a call site must not cost the walk of a large callee.
        let (reachable, leaders, whole) = self.walk(entry, MAX_INLINE_INSNS);
        *size += reachable.len();
        if !whole || *size > MAX_INLINE_INSNS || reachable.is_empty() {
            return None;
        }
        open.push(entry);
        for &pc in &reachable {
            let insn = program.get(pc)?;
            let ok = match insn {
                Insn::Alu { dst, src, .. } => dst != Reg::R10 && src != Source::Reg(Reg::R10),
                Insn::Neg { .. } | Insn::Endian { .. } | Insn::Exit => true,
                Insn::LdDw { kind, .. } => kind != LdDwKind::Func,
                Insn::Ja { off, .. } => branch(pc, i64::from(off)) > pc,
                Insn::Jmp { dst, src, off, .. } => {
                    branch(pc, i64::from(off)) > pc
                        && dst != Reg::R10
                        && src != Source::Reg(Reg::R10)
                }
                Insn::Call {
                    kind: CallKind::Local,
                    imm,
                } => self
                    .inline_shape(branch(pc, i64::from(imm)), size, open)
                    .is_some(),
                _ => false,
            };
            if !ok {
                return None;
            }
        }
        open.pop();
        // An inline callee's blocks are not copied (`Cx::copies`).
        let tails = BTreeSet::new();
        Some(Rc::new(Shape {
            reachable,
            leaders,
            tails,
        }))
    }

    /// A local call made inline: the depth check and the fuel test of the call, then the
    /// callee's blocks, filled here, in the same register variables (BPF functions share
    /// `r0`–`r5`), its `exit` restoring the caller's `r6`–`r9` as the call's return does.
    /// The current block is then the continuation after the call.
    fn inline(&self, cx: &mut Cx<'_>, pc: usize, target: usize, shape: Rc<Shape>) {
        let level = cx.inlined.len() as i64 + 1;
        // The callee's depth, `depth + level`, must be a frame: as `call_local`'s check.
        let too_deep = cx.b.ins().icmp_imm_s(
            IntCC::UnsignedGreaterThanOrEqual,
            cx.depth,
            MAX_CALL_FRAMES as i64 - level,
        );
        let deep = cx.b.create_block();
        let ok = cx.b.create_block();
        cx.b.set_cold_block(deep);
        cx.b.ins().brif(too_deep, deep, &[], ok, &[]);
        cx.b.seal_block(deep);
        cx.b.seal_block(ok);
        cx.b.switch_to_block(deep);
        cx.raise(RAISE_DEPTH, pc);
        cx.b.switch_to_block(ok);
        cx.poll(pc);
        let saved = [6, 7, 8, 9].map(|r| cx.b.use_var(cx.regs[r]));
        let cont = cx.b.create_block();
        let blocks = shape
            .leaders
            .iter()
            .map(|&leader| (leader, cx.b.create_block()))
            .collect();
        cx.inlined.push(Inline {
            shape: Rc::clone(&shape),
            blocks,
            cont,
            saved,
        });
        let first = cx.block_for(target);
        cx.b.ins().jump(first, &[]);
        for &leader in &shape.leaders {
            let block = cx.block_for(leader);
            cx.b.switch_to_block(block);
            self.fill(cx, leader, true);
        }
        cx.inlined.pop();
        cx.b.switch_to_block(cont);
    }

    /// Which window limits (`JitRun::fast_limits` indices) the function's accesses outside
    /// coalesced groups test.
    fn window_uses(&self, reachable: &BTreeSet<usize>, groups: &Groups) -> [bool; 8] {
        let program = self.prog.program();
        let mut used = [false; 8];
        for &pc in reachable {
            if groups.in_group(pc) {
                continue;
            }
            let (size, store) = match program.get(pc) {
                Some(Insn::Load { size, src, off, .. }) => {
                    if in_frame(src == Reg::R10, off, size) {
                        continue;
                    }
                    (size, false)
                }
                Some(Insn::Store { size, dst, off, .. }) => {
                    if in_frame(dst == Reg::R10, off, size) {
                        continue;
                    }
                    (size, true)
                }
                Some(Insn::Atomic { size, .. } | Insn::StoreRelease { size, .. }) => (size, true),
                Some(Insn::LoadAcquire { size, .. }) => (size, false),
                _ => continue,
            };
            used[limit_index(size.bytes() as u64, store)] = true;
        }
        used
    }

    /// Instructions executed from `leader` to the end of its block.
    fn block_len(&self, leader: usize, leaders: &BTreeSet<usize>) -> usize {
        let program = self.prog.program();
        let mut pc = leader;
        let mut n = 0;
        while let Some(insn) = program.get(pc) {
            n += 1;
            if matches!(
                insn,
                Insn::Exit | Insn::Ja { .. } | Insn::Jmp { .. } | Insn::MayGoto { .. }
            ) {
                break;
            }
            pc += insn.slots();
            if leaders.contains(&pc) {
                break;
            }
        }
        n
    }

    fn insn(&self, cx: &mut Cx<'_>, pc: usize, insn: Insn) -> Flow {
        match insn {
            Insn::Alu {
                width,
                op,
                dst,
                src,
            } => {
                // A move does not read its destination. Reading it anyway (the operand
                // is unused) would make the register live into the block, and a loop
                // would carry its old value around as a block parameter for nothing.
                let moves = matches!(
                    op,
                    AluOp::Mov | AluOp::MovSx8 | AluOp::MovSx16 | AluOp::MovSx32
                );
                let a = if moves { cx.fp } else { cx.reg(dst) };
                let v = match width {
                    Width::W64 => cx.alu64(op, a, src),
                    Width::W32 => cx.alu32(op, a, src),
                };
                cx.set(dst, v);
            }
            Insn::Neg { width, dst } => {
                let a = cx.reg(dst);
                let v = match width {
                    Width::W64 => cx.b.ins().ineg(a),
                    Width::W32 => {
                        let x = cx.b.ins().ireduce(I32, a);
                        let n = cx.b.ins().ineg(x);
                        cx.b.ins().uextend(I64, n)
                    }
                };
                cx.set(dst, v);
            }
            Insn::Endian { op, bits, dst } => {
                let a = cx.reg(dst);
                let v = cx.endian(op, bits, a);
                cx.set(dst, v);
            }
            Insn::LdDw {
                dst,
                kind,
                imm,
                next_imm,
            } => {
                let value = match kind {
                    LdDwKind::Func => self.prog.code_address(branch(pc, i64::from(imm))),
                    LdDwKind::MapFd
                    | LdDwKind::MapIdx
                    | LdDwKind::MapValue
                    | LdDwKind::MapIdxValue => self.prog.lddw_value(pc).unwrap_or_default(),
                    _ => Insn::lddw_value(imm, next_imm),
                };
                let v = cx.imm(I64, value as i64);
                cx.set(dst, v);
            }
            Insn::Load {
                size,
                signed,
                dst,
                src,
                off,
            } => {
                let direct = in_frame(src == Reg::R10, off, size) || cx.covered(pc);
                let base = cx.reg(src);
                let v = cx.load(pc, (base, direct, off), size, false);
                let v = if signed { cx.sext(v, size) } else { v };
                cx.set(dst, v);
            }
            Insn::Store {
                size,
                dst,
                off,
                src,
            } => {
                let value = match src {
                    Source::Reg(r) => cx.reg(r),
                    Source::Imm(i) => cx.imm(I64, i64::from(i)),
                };
                let direct = in_frame(dst == Reg::R10, off, size) || cx.covered(pc);
                let base = cx.reg(dst);
                cx.store(pc, (base, direct, off), size, value, false);
            }
            Insn::Atomic {
                size,
                op,
                dst,
                src,
                off,
            } => cx.atomic(pc, size, op, dst, src, off),
            Insn::LoadAcquire {
                size,
                dst,
                src,
                off,
            } => {
                let base = cx.reg(src);
                let v = cx.load(pc, (base, false, off), size, true);
                cx.set(dst, v);
            }
            Insn::StoreRelease {
                size,
                dst,
                src,
                off,
            } => {
                let base = cx.reg(dst);
                let value = cx.reg(src);
                cx.store(pc, (base, false, off), size, value, true);
            }
            Insn::LdAbs { size, imm } => {
                let offset = cx.imm(I64, i64::from(imm as u32));
                cx.ld_packet(pc, offset, size);
            }
            Insn::LdInd { size, src, imm } => {
                let s = cx.reg(src);
                let s = cx.b.ins().ireduce(I32, s);
                let k = cx.imm(I32, i64::from(imm));
                let o = cx.b.ins().iadd(s, k);
                let o = cx.b.ins().uextend(I64, o);
                cx.ld_packet(pc, o, size);
            }
            Insn::Ja { off, .. } => {
                let target = branch(pc, i64::from(off));
                if target <= pc {
                    cx.poll(pc);
                }
                self.goto(cx, target);
                return Flow::Closed;
            }
            Insn::Jmp {
                width,
                op,
                dst,
                src,
                off,
            } => {
                if let Some(tree) = cx.trees.get(&pc).filter(|_| cx.inlined.is_empty()) {
                    cx.dispatch(tree);
                    return Flow::Closed;
                }
                let target = branch(pc, i64::from(off));
                let cond = cx.condition(width, op, dst, src);
                cx.branch(pc, cond, target, pc + 1);
                return Flow::Closed;
            }
            Insn::MayGoto { off } => {
                let target = branch(pc, i64::from(off));
                let counter = cx.b.use_var(cx.may_goto);
                let exhausted = cx.b.ins().icmp_imm_s(IntCC::Equal, counter, 0);
                let decrement = cx.b.create_block();
                let taken = cx.b.create_block();
                cx.b.ins().brif(exhausted, taken, &[], decrement, &[]);
                cx.b.seal_block(taken);
                cx.b.seal_block(decrement);
                cx.b.switch_to_block(taken);
                if target <= pc {
                    cx.poll(pc);
                }
                let t = cx.block_for(target);
                cx.b.ins().jump(t, &[]);
                cx.b.switch_to_block(decrement);
                let less = cx.b.ins().iadd_imm_s(counter, -1);
                cx.b.def_var(cx.may_goto, less);
                let f = cx.block_for(pc + 1);
                cx.b.ins().jump(f, &[]);
                return Flow::Closed;
            }
            Insn::Call { kind, imm } => match kind {
                CallKind::Local => {
                    let target = branch(pc, i64::from(imm));
                    match self.inlinable(cx, target) {
                        Some(shape) => self.inline(cx, pc, target, shape),
                        None => cx.call_local(pc, target),
                    }
                }
                CallKind::Helper => match cx.direct_calls.get(&pc) {
                    // A lookup in a known hash map or array with its key in the frame:
                    // the map itself and the key's address (`Cx::lookup`).
                    Some(call) if let Some(lookup) = lookup_shim(self.prog, call) => {
                        let key = cx.b.ins().iadd_imm_s(cx.fp, call.key);
                        cx.lookup(pc, &lookup, key);
                    }
                    // Another map helper with a known map and its arguments in the
                    // frame: the map's index instead of the helper id.
                    Some(call) => {
                        let shim = match call.helper {
                            MapHelper::Lookup => Shim::MapLookup,
                            MapHelper::Update => Shim::MapUpdate,
                            MapHelper::Delete => Shim::MapDelete,
                        };
                        let map = cx.b.ins().iconst(I64, call.map as i64);
                        cx.call_runtime(pc, shim, map);
                    }
                    None => {
                        let id = cx.b.ins().iconst(I64, i64::from(imm));
                        cx.call_runtime(pc, Shim::Helper, id);
                    }
                },
                CallKind::Kfunc => {
                    let id = cx.b.ins().iconst(I64, i64::from(imm));
                    cx.call_runtime(pc, Shim::Kfunc, id);
                }
            },
            Insn::Callx { reg } => {
                let value = cx.reg(reg);
                cx.call_runtime(pc, Shim::Callx, value);
            }
            Insn::Exit => {
                match cx.inlined.last() {
                    // The end of an inline callee: back to its caller.
                    Some(inline) => {
                        let (saved, cont) = (inline.saved, inline.cont);
                        for (r, v) in [6, 7, 8, 9].into_iter().zip(saved) {
                            cx.b.def_var(cx.regs[r], v);
                        }
                        cx.b.ins().jump(cont, &[]);
                    }
                    None => cx.exit(),
                }
                return Flow::Closed;
            }
        }
        Flow::Next
    }
}

/// A direct lookup whose map is one of the kinds whose lookup the shim makes inline
/// (hash-family maps and arrays).
struct Lookup {
    shim: Shim,
    /// The map's address.
    map: usize,
    /// The shared window's limits for a value the lookup finds (`JitRun::shared_limits`).
    limits: [u64; 8],
    /// A hash map whose chains the code may walk itself, with the key's size.
    walk: Option<(HashWalk, Size)>,
    /// The value's length, with bit 32 set when programs may write it (`JitRun::values`).
    desc: u64,
}

fn lookup_shim(prog: &LoadedProgram, call: &DirectCall) -> Option<Lookup> {
    if call.helper != MapHelper::Lookup {
        return None;
    }
    let map = prog.maps().get(call.map)?;
    let any = map.as_any();
    let (shim, addr, walk) = if let Some(hash) = any.downcast_ref::<HashTabMap>() {
        // The code reads the key as a number in the host's order, and a head is the
        // key's bytes as a little-endian one.
        let le = cfg!(target_endian = "little");
        let walk = hash.walk().filter(|_| le).and_then(|walk| {
            let size = match walk.key_size {
                1 => Size::B,
                2 => Size::H,
                4 => Size::W,
                8 => Size::DW,
                _ => return None,
            };
            Some((walk, size))
        });
        (Shim::HashLookup, std::ptr::from_ref(hash).addr(), walk)
    } else {
        let array = any.downcast_ref::<ArrayMap>()?;
        (Shim::ArrayLookup, std::ptr::from_ref(array).addr(), None)
    };
    // As the map's `lookup_value` describes the value (`ValueRef`): `value_size` bytes,
    // writable unless the map is read-only to programs.
    let spec = map.spec();
    let len = u64::from(spec.value_size);
    let store_len = if spec.flags & F_RDONLY_PROG == 0 {
        len
    } else {
        0
    };
    Some(Lookup {
        shim,
        map: addr,
        limits: runtime::limits(len, store_len),
        walk,
        desc: len | (u64::from(store_len != 0) << 32),
    })
}

/// Whether `[r10 + off]` of `size` bytes lies in the current frame, which is always
/// reachable: no check needed.
fn in_frame(base_is_fp: bool, off: i16, size: Size) -> bool {
    let off = i64::from(off);
    base_is_fp && off >= -(STACK_FRAME_SIZE as i64) && off + size.bytes() as i64 <= 0
}

/// The index into `JitRun::fast_limits` of an access.
fn limit_index(size: u64, store: bool) -> usize {
    let log2 = size.trailing_zeros().min(3) as usize;
    usize::from(store) * 4 + log2
}

/// The absolute target of a branch at `pc` with offset `rel` (validated in range, or past
/// the end for a fault block).
fn branch(pc: usize, rel: i64) -> usize {
    usize::try_from(pc as i64 + 1 + rel).unwrap_or(usize::MAX)
}

/// The state of one function's translation.
struct Cx<'f> {
    b: FunctionBuilder<'f>,
    run: Value,
    fp: Value,
    /// Whether the function keeps `JitRun::depth_now` (it has checked accesses, whose
    /// slow paths read it).
    tracks_depth: bool,
    depth: Value,
    regs: [Variable; 10],
    remaining: Variable,
    may_goto: Variable,
    /// Fast-path window: the base, then the limits (as `JitRun::fast_limits`), for those
    /// the function uses.
    fast: [Option<Variable>; 9],
    /// For each group span (`hi - lo` bytes, stores or loads), one past the last offset
    /// from the window's base where the whole span fits (0 when it fits nowhere): a
    /// group's test is then one compare, as an access's.
    spans: BTreeMap<(u64, bool), Variable>,
    blocks: BTreeMap<usize, Block>,
    unwind: Block,
    out_of_range: BTreeMap<usize, Block>,
    shims: &'f Shims,
    /// Which registers cross calls through the run record.
    calls: &'f CallRegs,
    /// Constant blinding: the key as loaded at the function's entry, and its value at
    /// compile time.
    blind: Option<(Value, u64)>,
    /// Whether this function has the internal convention (fuel in and out as values).
    internal: bool,
    /// This function's outputs (stored at `exit`).
    outputs: RegSet,
    /// Shim signatures imported so far (imported on first use, so dumps show only those
    /// a function calls).
    sig_refs: BTreeMap<Shim, SigRef>,
    local_funcs: BTreeMap<usize, FuncRef>,
    /// The register-preserving trampolines of the slow-path shims (addresses).
    trampolines: BTreeMap<Shim, usize>,
    /// Their signature, imported on first use.
    trampoline_sig: Option<SigRef>,
    /// The function's reachable pcs and block leaders.
    shape: Rc<Shape>,
    /// The callees being made inline, innermost last.
    inlined: Vec<Inline>,
    /// Its coalesced window tests, and while a group's fast version is being filled, the
    /// group (by leader) and the fast copies of its blocks.
    groups: &'f Groups,
    /// The map helper calls made directly (`map_calls`).
    direct_calls: &'f BTreeMap<usize, DirectCall>,
    fast_version: Option<usize>,
    fast_blocks: BTreeMap<usize, Block>,
    /// Whether a copy of a tail is being filled (copies are not made from copies).
    in_tail: bool,
    /// The copies of tails that conditional jumps go to, with the tail's pc: filled
    /// after the function's blocks, so that each jump's fall-through stays next to it.
    tail_copies: Vec<(Block, usize)>,
    /// The compare trees dispatched through jump tables (`switches`), by root.
    trees: &'f BTreeMap<usize, Tree>,
}

/// The pcs of a function (or of an inline callee), its block leaders, and the leaders
/// of its tails (`tails`: blocks that each jump into gets a copy of).
struct Shape {
    reachable: BTreeSet<usize>,
    leaders: BTreeSet<usize>,
    tails: BTreeSet<usize>,
}

/// A callee being made inline (`FunctionTranslator::inline`).
struct Inline {
    shape: Rc<Shape>,
    /// Its blocks, by leader pc.
    blocks: BTreeMap<usize, Block>,
    /// Where its `exit` goes: the caller's code after the call.
    cont: Block,
    /// The caller's `r6`–`r9`, put back at `exit`.
    saved: [Value; 4],
}

/// The most instructions a call makes inline (with nested inline calls), and the
/// deepest nesting.
const MAX_INLINE_INSNS: usize = 64;
const MAX_INLINE_DEPTH: usize = 4;

impl Cx<'_> {
    /// The pcs and leaders of the code being filled: the innermost inline callee's, or
    /// the function's.
    fn shape(&self) -> Rc<Shape> {
        Rc::clone(self.inlined.last().map_or(&self.shape, |i| &i.shape))
    }

    /// Whether the access at `pc` is the leader or a member of the group whose fast
    /// version is being filled: its bytes were tested with the group's span.
    fn covered(&self, pc: usize) -> bool {
        let groups = self.groups;
        self.fast_version
            .and_then(|leader| groups.led_by(leader))
            .is_some_and(|g| g.leader == pc || g.members.contains(&pc))
    }

    /// Whether a jump to `pc` gets a copy of its block (`tails`): not within an inline
    /// callee or a copy, nor to a block a group's fast version copies. (Tails are never
    /// loop heads, so such a jump is never a back-edge.)
    fn copies(&self, pc: usize) -> bool {
        let groups = self.groups;
        self.inlined.is_empty()
            && !self.in_tail
            && self.shape.tails.contains(&pc)
            && !self
                .fast_version
                .and_then(|leader| groups.led_by(leader))
                .is_some_and(|g| g.blocks.contains(&pc))
    }

    /// The jump through `tree`'s table that replaces its root's compare: the register,
    /// clamped to the table's length (whose entry is the default), selects the leaf.
    fn dispatch(&mut self, tree: &Tree) {
        let r = self.reg(tree.reg);
        let len = self.iconst(tree.table.len() as i64);
        let clamped = self.b.ins().umin(r, len);
        let index = self.b.ins().ireduce(I32, clamped);
        let mut entries = Vec::with_capacity(tree.table.len());
        for &leaf in &tree.table {
            let block = self.block_for(leaf);
            entries.push(self.b.func.dfg.block_call(block, &[]));
        }
        let default = self.block_for(tree.default);
        let default = self.b.func.dfg.block_call(default, &[]);
        let table = self
            .b
            .create_jump_table(JumpTableData::new(default, &entries));
        self.b.ins().br_table(index, table);
    }

    /// A block for a copy of a tail, which the jump about to be made will be the only
    /// way into (it is sealed once that jump exists): cold if the jump's block is.
    fn new_tail_block(&mut self) -> Block {
        let copy = self.b.create_block();
        if self.in_cold_block() {
            self.b.set_cold_block(copy);
        }
        copy
    }

    /// The block a conditional jump to the tail at `pc` goes to: a copy of the tail,
    /// filled with the function's other copies after its blocks.
    fn tail_copy(&mut self, pc: usize) -> Block {
        let copy = self.new_tail_block();
        self.tail_copies.push((copy, pc));
        copy
    }

    /// The block of the code at `pc`: in a fast version, the copy of a block it
    /// duplicates.
    fn block_for(&mut self, pc: usize) -> Block {
        if let Some(inline) = self.inlined.last() {
            if let Some(&b) = inline.blocks.get(&pc) {
                return b;
            }
            return *self
                .out_of_range
                .entry(pc)
                .or_insert_with(|| self.b.create_block());
        }
        let groups = self.groups;
        let copied = self
            .fast_version
            .and_then(|leader| groups.led_by(leader))
            .is_some_and(|g| g.blocks.contains(&pc));
        if copied {
            return *self
                .fast_blocks
                .entry(pc)
                .or_insert_with(|| self.b.create_block());
        }
        if let Some(&b) = self.blocks.get(&pc) {
            return b;
        }
        *self
            .out_of_range
            .entry(pc)
            .or_insert_with(|| self.b.create_block())
    }

    fn reg(&mut self, r: Reg) -> Value {
        match self.regs.get(usize::from(r.index())) {
            Some(&v) => self.b.use_var(v),
            None => self.fp,
        }
    }

    fn set(&mut self, r: Reg, v: Value) {
        if let Some(&var) = self.regs.get(usize::from(r.index())) {
            self.b.def_var(var, v);
        }
    }

    fn iconst(&mut self, v: i64) -> Value {
        self.b.ins().iconst(I64, v)
    }

    /// An immediate of the program (not one the JIT makes up) at type `ty` (I32 or I64):
    /// with constant blinding, `(v ^ key) ^ key`, the first XOR done now and the second
    /// at run time. A value that fits 32 bits (every immediate but a `lddw`'s) is blinded
    /// with the key's low 32 bits, sign-extended, so that the blinded value still fits an
    /// instruction's 32-bit immediate field; a wider one with the whole 64-bit key.
    fn imm(&mut self, ty: Type, v: i64) -> Value {
        let Some((key, k)) = self.blind else {
            return self.b.ins().iconst(ty, v);
        };
        let k32 = i64::from(k as u32 as i32);
        let (blinded, key) = if ty == I32 {
            let key = self.b.ins().ireduce(I32, key);
            (v ^ k32, key)
        } else if i32::try_from(v).is_ok() {
            let low = self.b.ins().ireduce(I32, key);
            (v ^ k32, self.b.ins().sextend(I64, low))
        } else {
            (v ^ k as i64, key)
        };
        let blinded = self.b.ins().iconst(ty, blinded);
        self.b.ins().bxor(blinded, key)
    }

    fn field_load(&mut self, offset: i32) -> Value {
        self.b
            .ins()
            .load(I64, MemFlagsData::trusted(), self.run, offset)
    }

    fn field_store(&mut self, offset: i32, v: Value) {
        self.b
            .ins()
            .store(MemFlagsData::trusted(), v, self.run, offset);
    }

    fn reload_fast(&mut self) {
        let off = JitRun::OFFSETS;
        for (i, var) in self.fast.into_iter().enumerate() {
            let Some(var) = var else { continue };
            let field = if i == 0 {
                off.fast_base
            } else {
                off.fast_limits + 8 * (i as i32 - 1)
            };
            let v = self.field_load(field);
            self.b.def_var(var, v);
        }
        let spans: Vec<((u64, bool), Variable)> =
            self.spans.iter().map(|(&k, &v)| (k, v)).collect();
        for ((span, store), var) in spans {
            // The 1-byte limit is the window's length (0 when the kind is not allowed);
            // the span fits below `len - (span - 1)`, and nowhere when that is negative.
            let index = limit_index(1, store);
            let len = match self.fast[1 + index] {
                Some(limit) => self.b.use_var(limit),
                None => self.field_load(off.fast_limits + 8 * index as i32),
            };
            let tail = self.iconst(span as i64 - 1);
            let at_least = self.b.ins().umax(len, tail);
            let limit = self.b.ins().isub(at_least, tail);
            self.b.def_var(var, limit);
        }
    }

    /// The window's base and its limit for `(size, store)` accesses: from the variables
    /// when the function keeps them, otherwise from the run record.
    fn window(&mut self, size: u64, store: bool) -> (Value, Value) {
        match (self.fast[0], self.fast[1 + limit_index(size, store)]) {
            (Some(base), Some(limit)) => (self.b.use_var(base), self.b.use_var(limit)),
            _ => {
                let off = JitRun::OFFSETS;
                let base = self.field_load(off.fast_base);
                let limit = self.field_load(off.fast_limits + 8 * limit_index(size, store) as i32);
                (base, limit)
            }
        }
    }

    /// The window's base and the limit of a group's span (`Cx::spans`).
    fn span_window(&mut self, span: u64, store: bool) -> (Value, Value) {
        let (Some(base), Some(&limit)) = (self.fast[0], self.spans.get(&(span, store))) else {
            unreachable!("every group's span has its variables")
        };
        (self.b.use_var(base), self.b.use_var(limit))
    }

    /// Calls a shim directly; its result, or 0 for shims without one.
    fn call_shim(&mut self, shim: Shim, args: &[Value]) -> Value {
        let sig = match self.sig_refs.get(&shim) {
            Some(&sig) => sig,
            None => {
                let sig = self.b.import_signature(self.shims.signature(shim).clone());
                self.sig_refs.insert(shim, sig);
                sig
            }
        };
        let addr = self.iconst(shim.address() as i64);
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(self.run);
        all.extend_from_slice(args);
        let call = self.b.ins().call_indirect(sig, addr, &all);
        match self.b.inst_results(call).first() {
            Some(&v) => v,
            None => self.iconst(0),
        }
    }

    /// After a call: unwind if the run's status says so. The continuation is cold when
    /// the call was (a slow path's code stays out of the hot layout).
    fn check_status(&mut self) {
        let status = self.field_load(JitRun::OFFSETS.status);
        let cont = self.b.create_block();
        let unwind = self.unwind;
        self.b.ins().brif(status, unwind, &[], cont, &[]);
        self.b.seal_block(cont);
        if self.in_cold_block() {
            self.b.set_cold_block(cont);
        }
        self.b.switch_to_block(cont);
    }

    /// Whether the block being filled is cold (laid out after the hot code).
    fn in_cold_block(&self) -> bool {
        self.b
            .current_block()
            .is_some_and(|block| self.b.func.layout.is_cold(block))
    }

    /// Records a fault found by the code and unwinds. Closes the current block.
    fn raise(&mut self, why: u64, pc: usize) {
        let rem = self.b.use_var(self.remaining);
        self.field_store(JitRun::OFFSETS.remaining, rem);
        let why = self.iconst(why as i64);
        let pc = self.iconst(pc as i64);
        self.call_shim(Shim::Raise, &[why, pc]);
        let unwind = self.unwind;
        self.b.ins().jump(unwind, &[]);
    }

    /// The check of back-edges and calls: one test of the fuel's sign on the hot path. When
    /// the fuel has run out, the runtime checks the cancel flag, refills the fuel from the
    /// budget or faults, and the code goes on.
    fn poll(&mut self, pc: usize) {
        let rem = self.b.use_var(self.remaining);
        let empty = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, rem, 0);
        let slow = self.b.create_block();
        let cont = self.b.create_block();
        self.b.ins().brif(empty, slow, &[], cont, &[]);
        self.b.seal_block(slow);
        self.b.set_cold_block(slow);
        self.b.switch_to_block(slow);
        self.field_store(JitRun::OFFSETS.remaining, rem);
        let pc = self.iconst(pc as i64);
        self.call_slow(Shim::Poll, &[pc]);
        self.check_status();
        let refilled = self.field_load(JitRun::OFFSETS.remaining);
        self.b.def_var(self.remaining, refilled);
        self.b.ins().jump(cont, &[]);
        self.b.seal_block(cont);
        self.b.switch_to_block(cont);
    }

    /// A conditional jump. A back-edge (`target <= pc`) polls the fuel first, on both
    /// paths: the test then stays out of the loop's path to its head, so a loop runs its
    /// body, the fuel test and one taken branch per iteration. (Fuel below zero means the
    /// instructions counted so far exceed what the runtime handed out, whichever way the
    /// branch goes; the runtime refills or faults exactly as it would at the next poll.)
    fn branch(&mut self, pc: usize, cond: Value, target: usize, fall: usize) {
        let t = if self.copies(target) {
            self.tail_copy(target)
        } else {
            self.block_for(target)
        };
        let f = self.block_for(fall);
        if target <= pc {
            self.poll(pc);
        }
        self.b.ins().brif(cond, t, &[], f, &[]);
    }

    fn condition(&mut self, width: Width, op: JmpOp, dst: Reg, src: Source) -> Value {
        let a = self.reg(dst);
        let (a, b) = match (width, src) {
            (Width::W64, Source::Reg(r)) => (a, self.reg(r)),
            (Width::W64, Source::Imm(i)) => (a, self.imm(I64, i64::from(i))),
            (Width::W32, Source::Reg(r)) => {
                let s = self.reg(r);
                let x = self.b.ins().ireduce(I32, a);
                (x, self.b.ins().ireduce(I32, s))
            }
            (Width::W32, Source::Imm(i)) => {
                let x = self.b.ins().ireduce(I32, a);
                (x, self.imm(I32, i64::from(i)))
            }
        };
        let cc = match op {
            JmpOp::Eq => IntCC::Equal,
            JmpOp::Ne => IntCC::NotEqual,
            JmpOp::Gt => IntCC::UnsignedGreaterThan,
            JmpOp::Ge => IntCC::UnsignedGreaterThanOrEqual,
            JmpOp::Lt => IntCC::UnsignedLessThan,
            JmpOp::Le => IntCC::UnsignedLessThanOrEqual,
            JmpOp::Sgt => IntCC::SignedGreaterThan,
            JmpOp::Sge => IntCC::SignedGreaterThanOrEqual,
            JmpOp::Slt => IntCC::SignedLessThan,
            JmpOp::Sle => IntCC::SignedLessThanOrEqual,
            JmpOp::Set => {
                let m = self.b.ins().band(a, b);
                return self.b.ins().icmp_imm_s(IntCC::NotEqual, m, 0);
            }
        };
        self.b.ins().icmp(cc, a, b)
    }

    /// The second operand of an ALU instruction at type `ty`.
    fn operand(&mut self, src: Source, ty: Type) -> Value {
        match src {
            Source::Reg(r) => {
                let v = self.reg(r);
                if ty == I32 {
                    self.b.ins().ireduce(I32, v)
                } else {
                    v
                }
            }
            Source::Imm(i) => self.imm(ty, i64::from(i)),
        }
    }

    fn alu64(&mut self, op: AluOp, a: Value, src: Source) -> Value {
        self.alu(op, a, src, I64)
    }

    fn alu32(&mut self, op: AluOp, a: Value, src: Source) -> Value {
        let x = self.b.ins().ireduce(I32, a);
        let r = self.alu(op, x, src, I32);
        self.b.ins().uextend(I64, r)
    }

    /// `a op src` at type `ty` (I32 or I64), with RFC 9669's semantics.
    fn alu(&mut self, op: AluOp, a: Value, src: Source, ty: Type) -> Value {
        let bits = ty.bits() as i64;
        let imm = match src {
            Source::Imm(i) => Some(i64::from(i)),
            Source::Reg(_) => None,
        };
        // The immediate at the operation's width: sign-extended for 64, its bits for 32.
        let imm_w = imm.map(|i| if ty == I32 { i64::from(i as u32) } else { i });
        match (op, imm_w) {
            (AluOp::Div | AluOp::SDiv, Some(0)) => return self.b.ins().iconst(ty, 0),
            (AluOp::Mod | AluOp::SMod, Some(0)) => return a,
            (AluOp::SDiv, Some(i)) if is_minus_one(i, ty) => return self.b.ins().ineg(a),
            (AluOp::SMod, Some(i)) if is_minus_one(i, ty) => return self.b.ins().iconst(ty, 0),
            _ => {}
        }
        let b = self.operand(src, ty);
        let ins = self.b.ins();
        match op {
            AluOp::Add => ins.iadd(a, b),
            AluOp::Sub => ins.isub(a, b),
            AluOp::Mul => ins.imul(a, b),
            AluOp::Or => ins.bor(a, b),
            AluOp::And => ins.band(a, b),
            AluOp::Xor => ins.bxor(a, b),
            AluOp::Mov => b,
            AluOp::Lsh | AluOp::Rsh | AluOp::Arsh => {
                let amount = ins.band_imm_s(b, bits - 1);
                match op {
                    AluOp::Lsh => self.b.ins().ishl(a, amount),
                    AluOp::Rsh => self.b.ins().ushr(a, amount),
                    _ => self.b.ins().sshr(a, amount),
                }
            }
            AluOp::MovSx8 | AluOp::MovSx16 | AluOp::MovSx32 => {
                let narrow = match op {
                    AluOp::MovSx8 => I8,
                    AluOp::MovSx16 => I16,
                    _ => I32,
                };
                if narrow.bits() >= ty.bits() {
                    b
                } else {
                    let n = ins.ireduce(narrow, b);
                    self.b.ins().sextend(ty, n)
                }
            }
            AluOp::Div | AluOp::SDiv | AluOp::Mod | AluOp::SMod => {
                if imm_w.is_some() {
                    // A constant divisor that is neither 0 nor -1: the plain operation.
                    match op {
                        AluOp::Div => ins.udiv(a, b),
                        AluOp::SDiv => ins.sdiv(a, b),
                        AluOp::Mod => ins.urem(a, b),
                        _ => ins.srem(a, b),
                    }
                } else {
                    self.divide(op, a, b, ty)
                }
            }
        }
    }

    /// Division and modulo by a register: by zero gives 0 (div) or `a` (mod); signed by
    /// -1 gives `-a` (wrapping) or 0, never a trap.
    fn divide(&mut self, op: AluOp, a: Value, b: Value, ty: Type) -> Value {
        let zero = self.b.ins().icmp_imm_s(IntCC::Equal, b, 0);
        let one = self.b.ins().iconst(ty, 1);
        let c0 = self.b.ins().iconst(ty, 0);
        match op {
            AluOp::Div | AluOp::Mod => {
                let d = self.b.ins().select(zero, one, b);
                if op == AluOp::Div {
                    let q = self.b.ins().udiv(a, d);
                    self.b.ins().select(zero, c0, q)
                } else {
                    let r = self.b.ins().urem(a, d);
                    self.b.ins().select(zero, a, r)
                }
            }
            _ => {
                let minus_one = self.b.ins().icmp_imm_s(IntCC::Equal, b, -1);
                let special = self.b.ins().bor(zero, minus_one);
                let d = self.b.ins().select(special, one, b);
                if op == AluOp::SDiv {
                    let q = self.b.ins().sdiv(a, d);
                    let neg = self.b.ins().ineg(a);
                    let q = self.b.ins().select(minus_one, neg, q);
                    self.b.ins().select(zero, c0, q)
                } else {
                    let r = self.b.ins().srem(a, d);
                    let r = self.b.ins().select(minus_one, c0, r);
                    self.b.ins().select(zero, a, r)
                }
            }
        }
    }

    fn endian(&mut self, op: EndianOp, bits: u8, a: Value) -> Value {
        let ty = match bits {
            16 => I16,
            32 => I32,
            _ => I64,
        };
        let swap = match op {
            EndianOp::Swap => true,
            EndianOp::ToLe => cfg!(target_endian = "big"),
            EndianOp::ToBe => cfg!(target_endian = "little"),
        };
        let narrow = if ty == I64 {
            a
        } else {
            self.b.ins().ireduce(ty, a)
        };
        let v = if swap {
            self.b.ins().bswap(narrow)
        } else {
            narrow
        };
        if ty == I64 {
            v
        } else {
            self.b.ins().uextend(I64, v)
        }
    }

    fn sext(&mut self, v: Value, size: Size) -> Value {
        let ty = match size {
            Size::B => I8,
            Size::H => I16,
            Size::W => I32,
            Size::DW => return v,
        };
        let n = self.b.ins().ireduce(ty, v);
        self.b.ins().sextend(I64, n)
    }

    /// The fast-path test: `addr..addr+size` inside the window for this kind of access
    /// (one subtract and one compare), and for atomics naturally aligned.
    fn in_window(&mut self, addr: Value, size: u64, store: bool, aligned: bool) -> Value {
        let (base, limit) = self.window(size, store);
        self.range_test(addr, base, limit, size, aligned)
    }

    /// `addr - base < limit` (one past the last offset where `size` bytes fit), and with
    /// `aligned` a multiple of `size`: every inline test is this.
    fn range_test(
        &mut self,
        addr: Value,
        base: Value,
        limit: Value,
        size: u64,
        aligned: bool,
    ) -> Value {
        let rel = self.b.ins().isub(addr, base);
        let ok = self.b.ins().icmp(IntCC::UnsignedLessThan, rel, limit);
        if aligned && size > 1 {
            let low = self.b.ins().band_imm_s(addr, size as i64 - 1);
            let is_aligned = self.b.ins().icmp_imm_s(IntCC::Equal, low, 0);
            self.b.ins().band(ok, is_aligned)
        } else {
            ok
        }
    }

    /// `addr..addr+size` inside the reachable stack (frames `0..=depth`, always plain and
    /// writable): the second inline test, for pointers into the stack that are not
    /// `r10`-relative (a stack buffer walked through a register).
    fn in_stack(&mut self, addr: Value, size: u64, aligned: bool) -> Value {
        // Frames `0..=depth` lie below frame 0's frame pointer (`JitRun::stack_top`).
        let depth = self.cold_depth();
        let frames = self.b.ins().iadd_imm_s(depth, 1);
        let stack_len = self.b.ins().imul_imm_s(frames, STACK_FRAME_SIZE as i64);
        let top = self.field_load(JitRun::OFFSETS.stack_top);
        let stack_lo = self.b.ins().isub(top, stack_len);
        let limit = self.b.ins().iadd_imm_s(stack_len, 1 - size as i64);
        self.range_test(addr, stack_lo, limit, size, aligned)
    }

    /// `depth` for a checked access's slow path, from the run record
    /// (`Cx::tracks_depth`).
    fn cold_depth(&mut self) -> Value {
        if self.tracks_depth {
            self.field_load(JitRun::OFFSETS.depth_now)
        } else {
            self.depth
        }
    }

    /// `addr..addr+size` inside the shared window and naturally aligned (map values are
    /// accessed inline only atomically). Read from the run record: this is the third test.
    fn in_shared(&mut self, addr: Value, size: u64, store: bool) -> Value {
        let off = JitRun::OFFSETS;
        let base = self.field_load(off.shared_base);
        let limit = self.field_load(off.shared_limits + 8 * limit_index(size, store) as i32);
        self.range_test(addr, base, limit, size, true)
    }

    /// A checked access `(addr, size, store, aligned)`: the window test, the stack test,
    /// then the shared (map value) test; `fast(cx, shared)` emits the inline access (with
    /// atomic instructions when `shared`), `slow` the runtime call. Each produces an I64;
    /// the result is the one that ran.
    fn checked(
        &mut self,
        (addr, size, store, aligned): (Value, u64, bool, bool),
        fast: impl Fn(&mut Self, bool) -> Value,
        slow: impl FnOnce(&mut Self) -> Value,
    ) -> Value {
        let ok = self.in_window(addr, size, store, aligned);
        let fast_block = self.b.create_block();
        let stack_block = self.b.create_block();
        let shared_test = self.b.create_block();
        let shared_block = self.b.create_block();
        let slow_block = self.b.create_block();
        let join = self.b.create_block();
        self.b.append_block_param(join, I64);
        self.b.ins().brif(ok, fast_block, &[], stack_block, &[]);
        // Only the window test and the plain access are hot: the stack and shared-window
        // tests are laid out after the function's hot code, so that an access in the
        // window falls through to its load or store.
        for block in [stack_block, shared_test, shared_block, slow_block] {
            self.b.set_cold_block(block);
        }
        self.b.seal_block(stack_block);
        self.b.switch_to_block(stack_block);
        if self.calls.names_fp {
            let in_stack = self.in_stack(addr, size, aligned);
            self.b
                .ins()
                .brif(in_stack, fast_block, &[], shared_test, &[]);
        } else {
            // A program that never names `r10` has no pointer into the stack, and its
            // frame 0 is zeroed only when the runtime builds the regions: an address
            // there goes to the runtime, as any other outside the windows.
            self.b.ins().jump(shared_test, &[]);
        }
        self.b.seal_block(fast_block);
        self.b.seal_block(shared_test);
        self.b.switch_to_block(shared_test);
        let in_shared = self.in_shared(addr, size, store);
        self.b
            .ins()
            .brif(in_shared, shared_block, &[], slow_block, &[]);
        self.b.seal_block(shared_block);
        self.b.seal_block(slow_block);
        self.b.switch_to_block(fast_block);
        let v = fast(self, false);
        self.b.ins().jump(join, &[BlockArg::Value(v)]);
        self.b.switch_to_block(shared_block);
        let v = fast(self, true);
        self.b.ins().jump(join, &[BlockArg::Value(v)]);
        self.b.switch_to_block(slow_block);
        let v = slow(self);
        self.b.ins().jump(join, &[BlockArg::Value(v)]);
        self.b.seal_block(join);
        self.b.switch_to_block(join);
        self.b.block_params(join)[0]
    }

    /// Calls a memory shim and continues after it (unwinding on a fault).
    fn memory_shim(&mut self, shim: Shim, args: &[Value]) -> Value {
        let v = self.call_slow(shim, args);
        self.check_status();
        self.reload_fast();
        v
    }

    /// Calls a slow-path shim through its trampoline; its result (0 for those without).
    fn call_slow(&mut self, shim: Shim, args: &[Value]) -> Value {
        let Some(&tramp) = self.trampolines.get(&shim) else {
            // Every trampolined shim has one (both come from `Shim::TRAMPOLINED`); a direct
            // call is as correct, only slower.
            return self.call_shim(shim, args);
        };
        for (i, &arg) in args.iter().enumerate() {
            self.field_store(JitRun::OFFSETS.slow_args + 8 * i as i32, arg);
        }
        let sig = match self.trampoline_sig {
            Some(sig) => sig,
            None => {
                let sig = self.b.import_signature(Shim::trampoline_signature());
                self.trampoline_sig = Some(sig);
                sig
            }
        };
        let addr = self.iconst(tramp as i64);
        self.b.ins().call_indirect(sig, addr, &[self.run]);
        if shim.shape().1 {
            self.field_load(JitRun::OFFSETS.result)
        } else {
            self.iconst(0)
        }
    }

    /// A zero-extended load of `size` at `base + off`, `direct` when it needs no test (in
    /// the current frame, or covered by a coalesced test); with `acquire`, a
    /// load-acquire: naturally aligned and atomic, and always tested.
    fn load(
        &mut self,
        pc: usize,
        (base, direct, off): (Value, bool, i16),
        size: Size,
        acquire: bool,
    ) -> Value {
        let addr = self.b.ins().iadd_imm_s(base, i64::from(off));
        let bytes = size.bytes() as u64;
        if !acquire && direct {
            return self.raw_load(addr, size);
        }
        let shim = if acquire {
            Shim::LoadAcquire
        } else {
            Shim::Load
        };
        self.checked(
            (addr, bytes, false, acquire),
            |cx, shared| {
                if shared || acquire {
                    cx.atomic_load_zx(addr, size)
                } else {
                    cx.raw_load(addr, size)
                }
            },
            |cx| {
                let size = cx.iconst(bytes as i64);
                let pc = cx.iconst(pc as i64);
                let depth = cx.cold_depth();
                cx.memory_shim(shim, &[addr, size, depth, pc])
            },
        )
    }

    /// An atomic load of `size` bytes at `addr` (naturally aligned), zero-extended.
    fn atomic_load_zx(&mut self, addr: Value, size: Size) -> Value {
        let ty = int_type(size);
        let v = self.b.ins().atomic_load(ty, MemFlagsData::new(), addr);
        if ty == I64 {
            v
        } else {
            self.b.ins().uextend(I64, v)
        }
    }

    /// An atomic store of the low `size` bytes of `value` at `addr` (naturally aligned).
    fn atomic_store_low(&mut self, addr: Value, size: Size, value: Value) {
        let ty = int_type(size);
        let v = if ty == I64 {
            value
        } else {
            self.b.ins().ireduce(ty, value)
        };
        self.b.ins().atomic_store(MemFlagsData::new(), v, addr);
    }

    fn raw_load(&mut self, addr: Value, size: Size) -> Value {
        let flags = MemFlagsData::new();
        match size {
            Size::B => self.b.ins().uload8(I64, flags, addr, 0),
            Size::H => self.b.ins().uload16(I64, flags, addr, 0),
            Size::W => self.b.ins().uload32(flags, addr, 0),
            Size::DW => self.b.ins().load(I64, flags, addr, 0),
        }
    }

    /// A store of the low `size` bytes of `value` at `base + off`, `direct` when it needs
    /// no test (as for `load`); with `release`, a store-release: naturally aligned and
    /// atomic, and always tested.
    fn store(
        &mut self,
        pc: usize,
        (base, direct, off): (Value, bool, i16),
        size: Size,
        value: Value,
        release: bool,
    ) {
        let addr = self.b.ins().iadd_imm_s(base, i64::from(off));
        let bytes = size.bytes() as u64;
        if !release && direct {
            self.raw_store(addr, size, value);
            return;
        }
        let shim = if release {
            Shim::StoreRelease
        } else {
            Shim::Store
        };
        self.checked(
            (addr, bytes, true, release),
            |cx, shared| {
                if shared || release {
                    cx.atomic_store_low(addr, size, value);
                } else {
                    cx.raw_store(addr, size, value);
                }
                cx.iconst(0)
            },
            |cx| {
                let size = cx.iconst(bytes as i64);
                let pc = cx.iconst(pc as i64);
                let depth = cx.cold_depth();
                cx.memory_shim(shim, &[addr, size, value, depth, pc])
            },
        );
    }

    fn raw_store(&mut self, addr: Value, size: Size, value: Value) {
        let flags = MemFlagsData::new();
        match size {
            Size::B => self.b.ins().istore8(flags, value, addr, 0),
            Size::H => self.b.ins().istore16(flags, value, addr, 0),
            Size::W => self.b.ins().istore32(flags, value, addr, 0),
            Size::DW => self.b.ins().store(flags, value, addr, 0),
        };
    }

    fn atomic(&mut self, pc: usize, size: Size, op: AtomicOp, dst: Reg, src: Reg, off: i16) {
        let base = self.reg(dst);
        let addr = self.b.ins().iadd_imm_s(base, i64::from(off));
        let value = self.reg(src);
        let expected = self.reg(Reg::R0);
        let (ty, bytes, wide) = match size {
            Size::DW => (I64, 8u64, 0x1000),
            _ => (I32, 4, 0),
        };
        let old = self.checked(
            (addr, bytes, true, true),
            |cx, _shared| {
                let flags = MemFlagsData::new();
                let (v, e) = if ty == I32 {
                    (
                        cx.b.ins().ireduce(I32, value),
                        cx.b.ins().ireduce(I32, expected),
                    )
                } else {
                    (value, expected)
                };
                let old = match op {
                    AtomicOp::CmpXchg => cx.b.ins().atomic_cas(flags, addr, e, v),
                    _ => {
                        let rmw = match op {
                            AtomicOp::Add { .. } => AtomicRmwOp::Add,
                            AtomicOp::Or { .. } => AtomicRmwOp::Or,
                            AtomicOp::And { .. } => AtomicRmwOp::And,
                            AtomicOp::Xor { .. } => AtomicRmwOp::Xor,
                            _ => AtomicRmwOp::Xchg,
                        };
                        cx.b.ins().atomic_rmw(ty, flags, rmw, addr, v)
                    }
                };
                if ty == I32 {
                    cx.b.ins().uextend(I64, old)
                } else {
                    old
                }
            },
            |cx| {
                let code = cx.iconst(i64::from(op.imm()) | wide);
                let pc = cx.iconst(pc as i64);
                let depth = cx.cold_depth();
                cx.memory_shim(Shim::Atomic, &[addr, code, value, expected, depth, pc])
            },
        );
        match op {
            AtomicOp::CmpXchg => self.set(Reg::R0, old),
            _ if op.fetches() => self.set(src, old),
            _ => {}
        }
    }

    fn ld_packet(&mut self, pc: usize, offset: Value, size: Size) {
        let size = self.iconst(size.bytes().min(4) as i64);
        let pc = self.iconst(pc as i64);
        let v = self.memory_shim(Shim::LdPacket, &[offset, size, pc]);
        self.set(Reg::R0, v);
    }

    /// Hands the budget, and those of `r0`, `r6`–`r9` in `inputs`, to whatever is
    /// called next.
    fn before_call(&mut self, inputs: RegSet, fuel: bool) {
        let off = JitRun::OFFSETS;
        for (slot, reg) in IN_REGS.into_iter().enumerate() {
            if inputs & (1 << reg) != 0 {
                let v = self.b.use_var(self.regs[reg]);
                self.field_store(off.in_regs + 8 * slot as i32, v);
            }
        }
        if fuel {
            let rem = self.b.use_var(self.remaining);
            self.field_store(off.remaining, rem);
        }
    }

    /// Takes back the budget and those of `r1`–`r5` in `outputs`
    /// (the others are zero, as after a helper, or dead).
    fn after_call(&mut self, r0: Value, outputs: RegSet, fuel: Option<Value>) {
        let off = JitRun::OFFSETS;
        let rem = match fuel {
            Some(fuel) => fuel,
            None => self.field_load(off.remaining),
        };
        self.b.def_var(self.remaining, rem);
        self.reload_fast();
        if self.tracks_depth {
            // What was called may have run other functions, which wrote theirs.
            self.field_store(off.depth_now, self.depth);
        }
        for i in 0..5 {
            let v = if outputs & (1 << (i + 1)) != 0 {
                self.field_load(off.ret_regs + 8 * i)
            } else {
                self.iconst(0)
            };
            self.b.def_var(self.regs[i as usize + 1], v);
        }
        self.b.def_var(self.regs[0], r0);
    }

    /// What a helper call hands over and takes back: everything when it may run
    /// callbacks, otherwise nothing (it leaves `r1`–`r5` zero).
    fn helper_regs(&self) -> (RegSet, RegSet) {
        if self.calls.callbacks {
            (CALLEE_VISIBLE, ARGS)
        } else {
            (0, 0)
        }
    }

    fn args(&mut self) -> [Value; 5] {
        std::array::from_fn(|i| self.b.use_var(self.regs[i + 1]))
    }

    fn call_local(&mut self, pc: usize, target: usize) {
        let Some(&func) = self.local_funcs.get(&target) else {
            self.raise(RAISE_PC, pc);
            let dead = self.b.create_block();
            self.b.seal_block(dead);
            self.b.switch_to_block(dead);
            return;
        };
        let internal = self.calls.internal(target);
        self.before_call(self.calls.inputs(target), !internal);
        // One test on the hot path: the callee's frame was reached before. Otherwise (a
        // frame reached for the first time, or one past the last: `frames_ready` never
        // exceeds `MAX_CALL_FRAMES`) the cold path faults as the interpreter's depth check
        // does, or has the runtime zero the frame. Then the cancellation poll, as in the
        // interpreter. A call costs no runtime visit on the hot path (nor does the return:
        // the shims set the regions' depth when they next need it).
        // `depth + 1 >= frames_ready`, written as `depth >= frames_ready - 1` (never below
        // zero: frame 0 is always ready) so that no loop-invariant `depth + 1` stays live.
        let ready = self.field_load(JitRun::OFFSETS.frames_ready);
        let last_ready = self.b.ins().iadd_imm_s(ready, -1);
        let fresh = self
            .b
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, self.depth, last_ready);
        let cold = self.b.create_block();
        let deep = self.b.create_block();
        let prepare = self.b.create_block();
        let ready_block = self.b.create_block();
        for block in [cold, deep, prepare] {
            self.b.set_cold_block(block);
        }
        self.b.ins().brif(fresh, cold, &[], ready_block, &[]);
        self.b.seal_block(cold);
        self.b.switch_to_block(cold);
        // No `depth + 1` here either (Cranelift would hoist it out of a loop and keep it
        // in a register): the callee's depth is `MAX_CALL_FRAMES` or more when this one's
        // is the last frame's, and `jit_enter` takes this function's depth.
        let too_deep = self.b.ins().icmp_imm_s(
            IntCC::UnsignedGreaterThanOrEqual,
            self.depth,
            MAX_CALL_FRAMES as i64 - 1,
        );
        self.b.ins().brif(too_deep, deep, &[], prepare, &[]);
        self.b.seal_block(deep);
        self.b.seal_block(prepare);
        self.b.switch_to_block(deep);
        self.raise(RAISE_DEPTH, pc);
        self.b.switch_to_block(prepare);
        // Through its register-preserving trampoline, as the slow paths: a plain call
        // here would keep every value live across it in a callee-saved register.
        let pc_v = self.iconst(pc as i64);
        self.call_slow(Shim::Enter, &[self.depth, pc_v]);
        self.check_status();
        self.b.ins().jump(ready_block, &[]);
        self.b.seal_block(ready_block);
        self.b.switch_to_block(ready_block);
        self.poll(pc);
        if internal {
            // The callee computes its own frame and depth from this function's.
            let mut args = vec![self.run, self.fp, self.depth];
            args.push(self.b.use_var(self.remaining));
            let reads = self.calls.arguments(target);
            for i in 1..=5 {
                if reads & (1 << i) != 0 {
                    let v = self.b.use_var(self.regs[i]);
                    args.push(v);
                }
            }
            let inst = self.b.ins().call(func, &args);
            let &[r0, fuel] = self.b.inst_results(inst) else {
                unreachable!("the internal convention returns r0 and the fuel")
            };
            // A fault or a finished tail call inside the callee returns a negative fuel:
            // the status is checked only then.
            let low = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, fuel, 0);
            let check = self.b.create_block();
            let cont = self.b.create_block();
            self.b.ins().brif(low, check, &[], cont, &[]);
            self.b.seal_block(check);
            self.b.set_cold_block(check);
            self.b.switch_to_block(check);
            self.check_status();
            self.b.ins().jump(cont, &[]);
            self.b.seal_block(cont);
            self.b.switch_to_block(cont);
            self.after_call(r0, self.calls.outputs(target), Some(fuel));
        } else {
            // The callee's frame is just below this one.
            let fp = self.b.ins().iadd_imm_s(self.fp, -(STACK_FRAME_SIZE as i64));
            let callee_depth = self.b.ins().iadd_imm_s(self.depth, 1);
            let [a1, a2, a3, a4, a5] = self.args();
            let inst = self
                .b
                .ins()
                .call(func, &[self.run, a1, a2, a3, a4, a5, fp, callee_depth]);
            let r0 = self.b.inst_results(inst)[0];
            self.check_status();
            self.after_call(r0, self.calls.outputs(target), None);
        }
    }

    /// A helper, kfunc or `callx` through the runtime.
    fn call_runtime(&mut self, pc: usize, shim: Shim, first: Value) {
        let (inputs, outputs) = self.helper_regs();
        self.before_call(inputs, true);
        let [a1, a2, a3, a4, a5] = self.args();
        let pc_v = self.iconst(pc as i64);
        let r0 = self.call_shim(shim, &[first, a1, a2, a3, a4, a5, self.depth, pc_v]);
        let status = self.field_load(JitRun::OFFSETS.status);
        let special = self.b.create_block();
        let cont = self.b.create_block();
        self.b.ins().brif(status, special, &[], cont, &[]);
        self.b.seal_block(special);
        self.b.seal_block(cont);
        // A tail call completed: this function returns its r0; otherwise unwind.
        self.b.set_cold_block(special);
        self.b.switch_to_block(special);
        let tail = self
            .b
            .ins()
            .icmp_imm_s(IntCC::Equal, status, STATUS_TAIL_RETURN as i64);
        let tail_block = self.b.create_block();
        let unwind = self.unwind;
        self.b.ins().brif(tail, tail_block, &[], unwind, &[]);
        self.b.seal_block(tail_block);
        self.b.switch_to_block(tail_block);
        let zero = self.iconst(0);
        self.field_store(JitRun::OFFSETS.status, zero);
        // The tail-called program spent fuel from the run record.
        let rem = self.field_load(JitRun::OFFSETS.remaining);
        self.b.def_var(self.remaining, rem);
        self.ret(r0);
        self.b.switch_to_block(cont);
        self.after_call(r0, outputs, None);
        // As the interpreter, which polls after a helper returns.
        self.poll(pc);
    }

    /// A direct lookup (`lookup_shim`) of the key at `key`: through the shim, or, in a
    /// hash map the code may walk once the run has pinned the epoch, by the code's own
    /// walk of the chain (`walk`). A lookup runs no program code and leaves `r1`–`r5`
    /// zero, so nothing goes through the run record but the status (set only when a shim
    /// caught a panic). The plain window cannot have changed; a value found is the last
    /// region hit, so the code makes it the shared window, as `JitRun::refresh_shared`
    /// would (the regions' hot copy is that value now), and a miss changes nothing.
    fn lookup(&mut self, pc: usize, lookup: &Lookup, key: Value) {
        let join = self.b.create_block();
        self.b.append_block_param(join, I64);
        let shim = |cx: &mut Self| {
            let map = cx.iconst(lookup.map as i64);
            let r0 = cx.call_shim(lookup.shim, &[map, key]);
            cx.check_status();
            cx.b.ins().jump(join, &[BlockArg::Value(r0)]);
        };
        match lookup.walk {
            Some((walk, size)) => {
                // The first lookup of a run goes through the shim, which pins the epoch
                // for the rest of the run; the others walk the chain here.
                let ready = self.field_load(JitRun::OFFSETS.walk_ready);
                let here = self.b.create_block();
                let first = self.b.create_block();
                self.b.ins().brif(ready, here, &[], first, &[]);
                self.b.seal_block(here);
                self.b.seal_block(first);
                self.b.set_cold_block(first);
                self.b.switch_to_block(first);
                shim(self);
                self.b.switch_to_block(here);
                self.walk(&walk, size, lookup.desc, key, join);
            }
            None => shim(self),
        }
        self.b.seal_block(join);
        self.b.switch_to_block(join);
        let r0 = self.b.block_params(join)[0];
        let found = self.b.create_block();
        let cont = self.b.create_block();
        self.b.ins().brif(r0, found, &[], cont, &[]);
        self.b.seal_block(found);
        self.b.switch_to_block(found);
        let off = JitRun::OFFSETS;
        self.field_store(off.shared_base, r0);
        for (i, limit) in lookup.limits.into_iter().enumerate() {
            let limit = self.iconst(limit as i64);
            self.field_store(off.shared_limits + 8 * i as i32, limit);
        }
        self.b.ins().jump(cont, &[]);
        self.b.seal_block(cont);
        self.b.switch_to_block(cont);
        let zero = self.iconst(0);
        for r in 1..=5 {
            self.b.def_var(self.regs[r], zero);
        }
        self.b.def_var(self.regs[0], r0);
        // As the interpreter, which polls after a helper returns.
        self.poll(pc);
    }

    /// `HashTabMap::walk`'s lookup, in the code: the key's head (its bytes as a
    /// little-endian number), its hash (`short_hash`: a folded multiply), the
    /// bucket's chain walked with acquire loads, as the map's readers walk it, until a
    /// node with the same head (every key of the map has this size, so the head is the
    /// whole key) or the chain's end. A value found is logged for the run's regions
    /// (`log_value`). Jumps to `join` with the value's address or 0.
    fn walk(&mut self, walk: &HashWalk, size: Size, desc: u64, key: Value, join: Block) {
        let head = self.raw_load(key, size);
        let seeded = self.iconst(walk.seeds[0] as i64);
        let x = self.b.ins().bxor(head, seeded);
        let k = self.iconst(walk.seeds[1] as i64);
        let lo = self.b.ins().imul(x, k);
        let hi = self.b.ins().umulhi(x, k);
        let hash = self.b.ins().bxor(lo, hi);
        let index = self.b.ins().band_imm_s(hash, walk.mask as i64);
        let offset = self.b.ins().ishl_imm_u(index, 3);
        let buckets = self.iconst(walk.buckets as i64);
        let bucket = self.b.ins().iadd(buckets, offset);
        let first = self.b.ins().atomic_load(I64, MemFlagsData::new(), bucket);
        let chain = self.b.create_block();
        let node = self.b.append_block_param(chain, I64);
        let test = self.b.create_block();
        let next = self.b.create_block();
        let hit = self.b.create_block();
        let zero = self.iconst(0);
        self.b.ins().jump(chain, &[BlockArg::Value(first)]);
        self.b.switch_to_block(chain);
        self.b
            .ins()
            .brif(node, test, &[], join, &[BlockArg::Value(zero)]);
        self.b.seal_block(test);
        self.b.switch_to_block(test);
        let node_head = self
            .b
            .ins()
            .load(I64, MemFlagsData::trusted(), node, walk.head_offset);
        let same = self.b.ins().icmp(IntCC::Equal, node_head, head);
        self.b.ins().brif(same, hit, &[], next, &[]);
        self.b.seal_block(next);
        self.b.switch_to_block(next);
        let link = self.b.ins().iadd_imm_s(node, i64::from(walk.next_offset));
        let following = self.b.ins().atomic_load(I64, MemFlagsData::new(), link);
        self.b.ins().jump(chain, &[BlockArg::Value(following)]);
        self.b.seal_block(chain);
        self.b.seal_block(hit);
        self.b.switch_to_block(hit);
        let value = self
            .b
            .ins()
            .load(I64, MemFlagsData::trusted(), node, walk.value_offset);
        self.log_value(value, desc);
        self.b.ins().jump(join, &[BlockArg::Value(value)]);
    }

    /// Appends the value a walk found to the run's log (`JitRun::values`), after asking
    /// the runtime to take the log in when it is full (cold: once per `VALUE_LOG`
    /// values at most).
    fn log_value(&mut self, value: Value, desc: u64) {
        let off = JitRun::OFFSETS;
        let len = self.field_load(off.values_len);
        let full =
            self.b
                .ins()
                .icmp_imm_u(IntCC::UnsignedGreaterThanOrEqual, len, VALUE_LOG as i64);
        let take = self.b.create_block();
        let append = self.b.create_block();
        let at = self.b.append_block_param(append, I64);
        self.b
            .ins()
            .brif(full, take, &[], append, &[BlockArg::Value(len)]);
        self.b.seal_block(take);
        self.b.set_cold_block(take);
        self.b.switch_to_block(take);
        self.call_shim(Shim::TakeValues, &[]);
        self.check_status();
        let zero = self.iconst(0);
        self.b.ins().jump(append, &[BlockArg::Value(zero)]);
        self.b.seal_block(append);
        self.b.switch_to_block(append);
        let entry = self.b.ins().ishl_imm_u(at, 4);
        let slot = self.b.ins().iadd(self.run, entry);
        let flags = MemFlagsData::trusted();
        self.b.ins().store(flags, value, slot, off.values);
        let desc = self.iconst(desc as i64);
        self.b.ins().store(flags, desc, slot, off.values + 8);
        let next = self.b.ins().iadd_imm_s(at, 1);
        self.field_store(off.values_len, next);
    }

    fn exit(&mut self) {
        let off = JitRun::OFFSETS;
        for i in 0..5 {
            if self.outputs & (1 << (i + 1)) != 0 {
                let v = self.b.use_var(self.regs[i + 1]);
                self.field_store(off.ret_regs + 8 * i as i32, v);
            }
        }
        let r0 = self.b.use_var(self.regs[0]);
        self.ret(r0);
    }

    /// Returns `r0` with the fuel: as a second value in the internal convention,
    /// through the run record in `JitFn`'s.
    fn ret(&mut self, r0: Value) {
        if self.internal {
            let rem = self.b.use_var(self.remaining);
            self.b.ins().return_(&[r0, rem]);
        } else {
            let rem = self.b.use_var(self.remaining);
            self.field_store(JitRun::OFFSETS.remaining, rem);
            self.b.ins().return_(&[r0]);
        }
    }
}

fn is_minus_one(i: i64, ty: Type) -> bool {
    if ty == I32 {
        i as u32 == u32::MAX
    } else {
        i == -1
    }
}

fn int_type(size: Size) -> Type {
    match size {
        Size::B => I8,
        Size::H => I16,
        Size::W => I32,
        Size::DW => I64,
    }
}

#[cfg(test)]
mod tests {
    use super::Shim;

    #[test]
    fn shim_discriminants_index_all() {
        // `Shims::signature` indexes by discriminant.
        for (i, shim) in Shim::ALL.into_iter().enumerate() {
            assert_eq!(shim as usize, i, "{shim:?}");
        }
    }
}
