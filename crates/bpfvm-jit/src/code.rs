//! A program's native code: one Cranelift function per BPF function, in a `JITModule` of
//! its own whose memory is freed when the program (its engine cache) is dropped.

use std::sync::{Mutex, OnceLock};

use bpfvm_isa::{CallKind, Insn, LdDwKind};
use bpfvm_runtime::LoadedProgram;
use cranelift_codegen::ir::{AbiParam, Signature, types};
use cranelift_codegen::isa::{CallConv, OwnedTargetIsa};
use cranelift_codegen::settings::Configurable;
use cranelift_codegen::{Context, settings};
use cranelift_frontend::FunctionBuilderContext;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module, default_libcall_names};

use crate::JitError;
use crate::liveness::CallRegs;
use crate::runtime::JitRun;
use crate::translate::{Callees, FunctionTranslator, Shim, Shims, build_trampoline};

/// The native signature of every compiled BPF function:
/// `(run, r1, r2, r3, r4, r5, fp, depth) -> r0`.
pub(crate) type JitFn = unsafe extern "C" fn(*mut JitRun, u64, u64, u64, u64, u64, u64, u64) -> u64;

/// The host's instruction set, built once per process: the fixed cost of the JIT.
pub(crate) fn host_isa() -> Result<OwnedTargetIsa, JitError> {
    static ISA: OnceLock<Result<OwnedTargetIsa, String>> = OnceLock::new();
    ISA.get_or_init(|| {
        let mut flags = settings::builder();
        let set = |flags: &mut settings::Builder, name: &str, value: &str| {
            flags
                .set(name, value)
                .map_err(|e| format!("cranelift setting {name}={value}: {e}"))
        };
        set(&mut flags, "opt_level", "speed")?;
        set(&mut flags, "is_pic", "false")?;
        // Cranelift's IR verifier costs compile time; the tests run with it.
        let verify = if cfg!(debug_assertions) {
            "true"
        } else {
            "false"
        };
        set(&mut flags, "enable_verifier", verify)?;
        let builder = cranelift_native::builder().map_err(|e| format!("host ISA: {e}"))?;
        builder
            .finish(settings::Flags::new(flags))
            .map_err(|e| format!("host ISA: {e}"))
    })
    .clone()
    .map_err(JitError::Isa)
}

/// The slow-path trampolines of the process.
struct Trampolines {
    /// `(shim, address)`.
    addrs: Vec<(Shim, usize)>,
    /// The address of their module, boxed and never freed: the code stays mapped for
    /// the process, since every compiled program calls into it. Kept here (rather than
    /// the module forgotten) so that leak checkers, such as the fuzz targets'
    /// LeakSanitizer, find it reachable.
    _module: usize,
}

/// The slow-path trampolines, built once per process in a module of their own that is
/// never freed (like the ISA, a fixed cost not paid per program): `(shim, address)`.
fn trampolines() -> Result<&'static [(Shim, usize)], JitError> {
    static TRAMPOLINES: OnceLock<Result<Trampolines, String>> = OnceLock::new();
    let built = TRAMPOLINES.get_or_init(|| {
        let isa = host_isa().map_err(|e| e.to_string())?;
        let mut module = JITModule::new(JITBuilder::with_isa(isa.clone(), default_libcall_names()));
        let shims = Shims::new(isa.default_call_conv());
        let mut ctx = Context::new();
        let mut fbc = FunctionBuilderContext::new();
        let mut ids = Vec::with_capacity(Shim::TRAMPOLINED.len());
        for shim in Shim::TRAMPOLINED {
            let sig = Shim::trampoline_signature();
            let id = module
                .declare_function(&format!("bpfvm_slow_{shim:?}"), Linkage::Local, &sig)
                .map_err(|e| e.to_string())?;
            ctx.func.signature = sig;
            build_trampoline(shim, &shims, &mut ctx.func, &mut fbc, isa.frontend_config())?;
            module
                .define_function(id, &mut ctx)
                .map_err(|e| format!("trampoline {shim:?}: {e:?}"))?;
            module.clear_context(&mut ctx);
            ids.push((shim, id));
        }
        module.finalize_definitions().map_err(|e| e.to_string())?;
        let addrs = ids
            .iter()
            .map(|&(shim, id)| (shim, module.get_finalized_function(id).addr()))
            .collect();
        Ok(Trampolines {
            addrs,
            _module: Box::into_raw(Box::new(module)).addr(),
        })
    });
    match built {
        Ok(t) => Ok(&t.addrs),
        Err(reason) => Err(JitError::Codegen {
            entry: 0,
            reason: format!("slow-path trampolines: {reason}"),
        }),
    }
}

/// What `--dump-ir` / `--dump-asm` show of one function.
#[derive(Debug, Clone)]
pub struct FunctionDump {
    /// The BPF pc where the function starts.
    pub entry: usize,
    /// Cranelift IR after translation, before optimization.
    pub ir: String,
    /// The machine code Cranelift emitted, in its own disassembly syntax (VCode).
    pub asm: String,
}

/// Owner of the code memory; frees it on drop.
struct CodeMemory(Option<JITModule>);

impl Drop for CodeMemory {
    fn drop(&mut self) {
        if let Some(module) = self.0.take() {
            // SAFETY: the module's functions are reachable only through the
            // `CompiledProgram` being dropped; runs borrow it (or keep its program's
            // engine data alive) for as long as they execute its code, so none runs now
            // and none will.
            unsafe { module.free_memory() };
        }
    }
}

// SAFETY: `JITModule` holds raw pointers to its code memory and symbol table, which makes
// it neither Send nor Sync. After `finalize_definitions` it is never used again except to
// free the memory once, in `Drop` (behind `&mut`); the code itself is immutable and
// position-fixed, so sharing the owner between threads is sound.
unsafe impl Send for CodeMemory {}
// SAFETY: see `Send`: no `&self` method touches the module.
unsafe impl Sync for CodeMemory {}

/// A program compiled to native code.
pub struct CompiledProgram {
    /// Function entry pc → native address, sorted by pc.
    functions: Vec<(usize, usize)>,
    /// Each function's code length in bytes, in `functions`' order.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "the blinding tests read the code through it")
    )]
    lengths: Vec<usize>,
    /// The constant-blinding key (0: not blinded).
    blind_key: u64,
    /// Whether the program names `r10` anywhere (`CallRegs::names_fp`): a run zeroes
    /// frame 0 before the code starts only then.
    names_fp: bool,
    dumps: Vec<FunctionDump>,
    _memory: Mutex<CodeMemory>,
}

impl std::fmt::Debug for CompiledProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledProgram")
            .field("functions", &self.functions.len())
            .finish_non_exhaustive()
    }
}

impl CompiledProgram {
    /// Compiles `prog` (the engine cache's constructor).
    pub(crate) fn build(prog: &LoadedProgram) -> Result<CompiledProgram, JitError> {
        Self::compile(prog, false, false)
    }

    /// Compiles `prog`; with `dump`, keeps each function's IR and disassembly; with
    /// `blind`, blinds the program's immediates with a fresh random key.
    pub(crate) fn compile(
        prog: &LoadedProgram,
        dump: bool,
        blind: bool,
    ) -> Result<CompiledProgram, JitError> {
        let isa = host_isa()?;
        let blind_key = if blind { blinding_key() } else { 0 };
        let mut module = JITModule::new(JITBuilder::with_isa(isa.clone(), default_libcall_names()));
        let entries = function_entries(prog);
        let call_regs = CallRegs::new(prog.program(), &entries);
        let call_conv = isa.default_call_conv();
        let mut ids: Vec<(usize, FuncId)> = Vec::with_capacity(entries.len());
        let mut sigs = Vec::with_capacity(entries.len());
        for &pc in &entries {
            let sig = function_signature(&call_regs, pc, call_conv);
            let id = module
                .declare_function(&format!("bpf_fn_{pc}"), Linkage::Local, &sig)
                .map_err(|e| JitError::Codegen {
                    entry: pc,
                    reason: e.to_string(),
                })?;
            ids.push((pc, id));
            sigs.push(sig);
        }
        let shims = Shims::new(isa.default_call_conv());
        let mut ctx = Context::new();
        let mut fbc = FunctionBuilderContext::new();
        let trampolines = trampolines()?;
        let mut dumps = Vec::new();
        let mut lengths = Vec::with_capacity(ids.len());
        for (&(pc, id), sig) in ids.iter().zip(sigs) {
            ctx.func.signature = sig;
            ctx.set_disasm(dump);
            let translator = FunctionTranslator::new(prog, &shims, &call_regs, pc, blind_key);
            let ir = translator.translate(
                &mut ctx.func,
                &mut fbc,
                &mut module,
                Callees {
                    functions: &ids,
                    trampolines,
                },
                isa.frontend_config(),
                dump,
            );
            let ir = ir.map_err(|reason| JitError::Codegen { entry: pc, reason })?;
            module
                .define_function(id, &mut ctx)
                .map_err(|e| JitError::Codegen {
                    entry: pc,
                    reason: format!("{e:?}"),
                })?;
            lengths.push(ctx.compiled_code().map_or(0, |c| c.code_buffer().len()));
            if dump {
                let asm = ctx
                    .compiled_code()
                    .and_then(|c| c.vcode.clone())
                    .unwrap_or_default();
                dumps.push(FunctionDump {
                    entry: pc,
                    ir: ir.unwrap_or_default(),
                    asm,
                });
            }
            module.clear_context(&mut ctx);
        }
        module
            .finalize_definitions()
            .map_err(|e| JitError::Codegen {
                entry: 0,
                reason: e.to_string(),
            })?;
        let functions = ids
            .iter()
            .map(|&(pc, id)| (pc, module.get_finalized_function(id).addr()))
            .collect();
        Ok(CompiledProgram {
            functions,
            lengths,
            blind_key,
            names_fp: call_regs.names_fp,
            dumps,
            _memory: Mutex::new(CodeMemory(Some(module))),
        })
    }

    /// Whether the program names `r10` (so its code may reach frame 0 directly).
    pub(crate) fn names_fp(&self) -> bool {
        self.names_fp
    }

    /// The function starting at `pc`, if one does.
    pub(crate) fn function_at(&self, pc: usize) -> Option<JitFn> {
        let i = self.functions.binary_search_by_key(&pc, |&(p, _)| p).ok()?;
        let addr = self.functions.get(i)?.1;
        // SAFETY: `addr` is a finalized function of this module compiled with the `JitFn`
        // signature (`compile`); it stays mapped while `self` lives.
        Some(unsafe { std::mem::transmute::<usize, JitFn>(addr) })
    }

    /// The program's entry function (pc 0).
    pub(crate) fn entry(&self) -> JitFn {
        // `compile` always compiles pc 0 first.
        let addr = self.functions.first().map_or(0, |&(_, a)| a);
        debug_assert_ne!(addr, 0);
        // SAFETY: as in `function_at`.
        unsafe { std::mem::transmute::<usize, JitFn>(addr) }
    }

    /// The functions' IR and disassembly (empty unless compiled for a dump).
    pub fn dumps(&self) -> &[FunctionDump] {
        &self.dumps
    }

    /// How many functions were compiled.
    pub fn function_count(&self) -> usize {
        self.functions.len()
    }

    /// The constant-blinding key generated code XORs its immediates with (0: the code is
    /// not blinded).
    pub(crate) fn blind_key(&self) -> u64 {
        self.blind_key
    }

    /// The machine code of every function, as mapped for execution.
    #[cfg(test)]
    pub(crate) fn code_bytes(&self) -> Vec<&[u8]> {
        self.functions
            .iter()
            .zip(&self.lengths)
            .map(|(&(_, addr), &len)| {
                // SAFETY: `addr..addr + len` is one finalized function of this module,
                // mapped read-execute (readable) and never written while `self` lives.
                unsafe { std::slice::from_raw_parts(addr as *const u8, len) }
            })
            .collect()
    }
}

/// A program's code compiled with constant blinding: a separate entry of the program's
/// engine cache, so that blinded and plain JITs can run the same program.
struct Blinded(Result<CompiledProgram, JitError>);

/// Calls `f` with the code of `prog`, blinded or not, compiled on first use and cached in
/// the program (one entry per mode).
#[inline]
pub(crate) fn with_code<R>(
    prog: &LoadedProgram,
    blind: bool,
    f: impl FnOnce(Result<&CompiledProgram, &JitError>) -> R,
) -> R {
    if blind {
        let data = prog.engine_data(|p| Blinded(CompiledProgram::compile(p, false, true)));
        f(data.0.as_ref())
    } else {
        let data = prog.engine_data(CompiledProgram::build);
        f(data.as_ref())
    }
}

/// A fresh random key for constant blinding, never 0. `RandomState` is seeded from the
/// operating system's randomness (per thread, then stepped for each new state), which is
/// what the key needs: unknown to whoever wrote the program.
fn blinding_key() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x6a09_e667_f3bc_c909);
    hasher.finish() | 1
}

/// The native signature of the BPF function at `entry`: `JitFn` for those the runtime
/// enters; for the others, the internal convention of `translate` (the run, the caller's
/// `fp` and depth, the fuel and the argument registers the function reads; `r0` and the
/// fuel back).
pub(crate) fn function_signature(calls: &CallRegs, entry: usize, call_conv: CallConv) -> Signature {
    let mut sig = Signature::new(call_conv);
    let i64p = AbiParam::new(types::I64);
    if calls.internal(entry) {
        let args = calls.arguments(entry).count_ones() as usize;
        sig.params.extend(std::iter::repeat_n(i64p, 4 + args));
        sig.returns.extend([i64p, i64p]);
    } else {
        sig.params.extend(std::iter::repeat_n(i64p, 8));
        sig.returns.push(i64p);
    }
    sig
}

/// Where functions start: pc 0, every local call's target and every code address a
/// `lddw src=4` loads (callbacks, `callx` targets). Sorted, pc 0 first.
pub(crate) fn function_entries(prog: &LoadedProgram) -> Vec<usize> {
    let mut entries = vec![0];
    for (pc, insn) in prog.program().iter() {
        let rel = match insn {
            Insn::Call {
                kind: CallKind::Local,
                imm,
            } => i64::from(imm),
            Insn::LdDw {
                kind: LdDwKind::Func,
                imm,
                ..
            } => i64::from(imm),
            _ => continue,
        };
        let target = pc as i64 + 1 + rel;
        if let Ok(t) = usize::try_from(target)
            && prog.program().get(t).is_some()
        {
            entries.push(t);
        }
    }
    entries.sort_unstable();
    entries.dedup();
    entries
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use bpfvm_isa::Program;
    use bpfvm_runtime::ProgramType;

    /// The process's memory mappings, from `/proc/self/maps`.
    fn mappings() -> Vec<String> {
        std::fs::read_to_string("/proc/self/maps")
            .expect("/proc/self/maps")
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn program() -> LoadedProgram {
        // r0 = 7 ; call local f (pc 3) ; exit ; f: r0 += 1 ; exit
        let bytes = [
            [0xb7, 0, 0, 0, 7, 0, 0, 0],
            [0x85, 0x10, 0, 0, 1, 0, 0, 0],
            [0x95, 0, 0, 0, 0, 0, 0, 0],
            [0x07, 0, 0, 0, 1, 0, 0, 0],
            [0x95, 0, 0, 0, 0, 0, 0, 0],
        ];
        let prog = Program::from_bytes(bytes.as_flattened()).expect("valid");
        LoadedProgram::new(prog, ProgramType::Conformance).expect("loads")
    }

    #[test]
    fn code_is_never_writable_and_executable() {
        let prog = program();
        let code = CompiledProgram::build(&prog).expect("compiles");
        assert_eq!(code.function_count(), 2);
        let wx: Vec<String> = mappings()
            .into_iter()
            .filter(|m| {
                m.split_whitespace()
                    .nth(1)
                    .is_some_and(|p| p.starts_with("rwx"))
            })
            .collect();
        assert!(wx.is_empty(), "writable and executable mappings: {wx:?}");
    }

    #[test]
    fn dropping_a_program_frees_its_code() {
        // Warm up (the ISA, allocator pools), then compile and drop many programs: the
        // mapping count must not grow with them (each module maps at least one page).
        drop(CompiledProgram::build(&program()).expect("compiles"));
        let before = mappings().len();
        for _ in 0..60 {
            let prog = program();
            drop(CompiledProgram::build(&prog).expect("compiles"));
        }
        let after = mappings().len();
        assert!(
            after < before + 20,
            "mappings grew from {before} to {after} over 60 dropped programs"
        );
    }
}
